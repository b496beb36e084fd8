//! [`Platform`]: what the `monitoring` and `regression` procedures need from a running function platform:
//! where Prometheus scrapes it, a way to produce cold starts, warm traffic and a build, and a way to deploy
//! a slower variant of the function. A target implements it to get AC5 and AC6 measured.

use std::{future::Future, time::Duration};

use super::Error;
use crate::{metrics::Endpoint, services::ScrapeJob};

/// A running platform the monitoring and regression procedures drive.
pub trait Platform: Sync {
    /// Where Prometheus scrapes the platform's `/metrics`, with its credentials.
    fn scrape_job(&self) -> ScrapeJob;

    /// The function the procedures drive (the `function` label of its metrics).
    fn function(&self) -> String;

    /// Forces `n` cold starts of the function; returns the Init Duration the platform reported for each,
    /// in seconds (what its `function_cold_start_duration_seconds` histogram observed).
    fn cold_starts(&self, n: usize) -> impl Future<Output = Result<Vec<f64>, Error>> + Send;

    /// Invokes the function on warm environments for `duration`; returns the Duration the platform
    /// reported for each invocation, in seconds.
    fn warm_traffic(&self, duration: Duration) -> impl Future<Output = Result<Vec<f64>, Error>> + Send;

    /// Runs one build of the function that pushes its build metrics (`build_duration_seconds`,
    /// `build_cache_hits_total`, `build_cache_requests_total`, `image_size_bytes`) to `pushgateway`.
    fn build(&self, pushgateway: &Endpoint) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = pushgateway;
        async { Err(Error::Unavailable { what: "builds".into(), detail: "this platform runs no builds".into() }) }
    }

    /// Deploys a variant of the function `factor` times slower in init and handler (1.0 restores the
    /// original).
    fn set_slowdown(&self, factor: f64) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = factor;
        async {
            Err(Error::Unavailable {
                what: "a slower variant".into(),
                detail: "this platform cannot deploy one".into(),
            })
        }
    }

    /// Deploys a variant of the function whose handler takes `extra` longer on every invocation; returns
    /// the extra time actually configured (a platform may round it up to its granularity).
    /// [`Platform::set_slowdown`] with 1.0 restores the original.
    fn add_latency(&self, extra: Duration) -> impl Future<Output = Result<Duration, Error>> + Send {
        let _ = extra;
        async {
            Err(Error::Unavailable {
                what: "a variant with added latency".into(),
                detail: "this platform cannot deploy one".into(),
            })
        }
    }
}
