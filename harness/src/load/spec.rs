//! [`LoadSpec`]: what a load run sends, how (open model on a [`Schedule`], or closed model with N workers), and
//! its bounds in count and time, so every run stops by itself. [`Observe`] lets a procedure look at each
//! response (e.g. whether the function reported a cold start) without the generator knowing why.

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use hyper::{header::HeaderName, HeaderMap, StatusCode};

use super::{engine, report::LoadReport, request::RequestTemplate, schedule::Schedule, tls::Trust, Error};

/// Sees every complete response of a run (called on the request's task; keep it quick).
pub trait Observe: Send + Sync {
    /// One complete response.
    fn observe(&self, response: &Observed<'_>);
}

/// A complete response, as shown to an [`Observe`]r.
#[derive(Debug)]
pub struct Observed<'a> {
    /// Phase index.
    pub phase: usize,
    /// The request's number: its index in the schedule (open model; dropped requests leave gaps) or in the
    /// order workers started requests (closed model).
    pub seq: u64,
    /// Intended (open) or actual (closed) send time from the run's start.
    pub at: Duration,
    /// Service latency (from the actual send to the end of the body).
    pub latency: Duration,
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: &'a HeaderMap,
    /// Response body.
    pub body: &'a Bytes,
}

/// How requests are issued.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Requests are sent on the schedule whether or not earlier ones returned.
    Open {
        /// When requests are due.
        schedule: Schedule,
        /// Most requests in flight (= connections); a request due when all are busy is dropped and counted.
        max_in_flight: usize,
        /// A request sent later than this after its intended time counts as late.
        late_tolerance: Duration,
    },
    /// `workers` loops, each sending its next request when the previous one finished (after `think_time`),
    /// for `duration`.
    Closed {
        /// Number of workers (= connections).
        workers: usize,
        /// Pause between a worker's requests.
        think_time: Duration,
        /// How long workers start requests.
        duration: Duration,
    },
}

/// A bounded load run; see the module docs. Build with [`LoadSpec::open`] or [`LoadSpec::closed`], adjust,
/// then [`LoadSpec::run`].
#[derive(Clone)]
pub struct LoadSpec {
    pub(crate) request: RequestTemplate,
    pub(crate) model: Model,
    pub(crate) max_requests: u64,
    pub(crate) max_duration: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) trust: Trust,
    pub(crate) observer: Option<Arc<dyn Observe>>,
    pub(crate) seq_header: Option<HeaderName>,
}

impl fmt::Debug for LoadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadSpec")
            .field("request", &self.request.describe())
            .field("model", &self.model)
            .field("max_requests", &self.max_requests)
            .field("max_duration", &self.max_duration)
            .field("timeout", &self.timeout)
            .field("trust", &self.trust)
            .field("observer", &self.observer.is_some())
            .field("seq_header", &self.seq_header)
            .finish()
    }
}

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default most requests in flight in the open model.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default lateness tolerance in the open model: above timer and scheduling jitter, below anything that
/// changes the load's shape.
pub const DEFAULT_LATE_TOLERANCE: Duration = Duration::from_millis(50);

impl LoadSpec {
    /// Open model on `schedule`. Bounds default to the schedule's request count and its length plus the
    /// request timeout (for the last responses).
    pub fn open(request: RequestTemplate, schedule: Schedule) -> Self {
        let expected = schedule.expected_requests();
        let max_requests = match schedule.arrivals() {
            super::schedule::Arrivals::Uniform => expected.ceil() as u64,
            super::schedule::Arrivals::Poisson { .. } => (expected + 10.0 * expected.sqrt() + 10.0).ceil() as u64,
        };
        Self {
            request,
            model: Model::Open {
                schedule,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                late_tolerance: DEFAULT_LATE_TOLERANCE,
            },
            max_requests,
            max_duration: None,
            timeout: DEFAULT_TIMEOUT,
            trust: Trust::System,
            observer: None,
            seq_header: None,
        }
    }

    /// Closed model with `workers` workers; they start requests for 60 s ([`LoadSpec::duration`]) or until one
    /// million requests were started ([`LoadSpec::max_requests`]).
    pub fn closed(request: RequestTemplate, workers: usize) -> Self {
        Self {
            request,
            model: Model::Closed { workers, think_time: Duration::ZERO, duration: Duration::from_secs(60) },
            max_requests: 1_000_000,
            max_duration: None,
            timeout: DEFAULT_TIMEOUT,
            trust: Trust::System,
            observer: None,
            seq_header: None,
        }
    }

    /// At most `n` requests are sent (open: scheduled).
    pub fn max_requests(mut self, n: u64) -> Self {
        self.max_requests = n;
        self
    }

    /// Hard time bound: the run ends by `d` after its start whatever is in flight (requests still in flight
    /// then count as timeouts), and no request is started after it. Default: the sending window (the schedule,
    /// or the closed model's duration) plus the request timeout, so every request gets its full timeout.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = Some(d);
        self
    }

    /// How long the closed model's workers start requests (default 60 s); requests in flight at the end may
    /// finish within their timeout.
    pub fn duration(mut self, d: Duration) -> Self {
        if let Model::Closed { duration, .. } = &mut self.model {
            *duration = d;
        }
        self
    }

    /// The sending window: the schedule's length (open) or the workers' duration (closed).
    pub fn sending_window(&self) -> Duration {
        match &self.model {
            Model::Open { schedule, .. } => schedule.duration(),
            Model::Closed { duration, .. } => *duration,
        }
    }

    /// The hard time bound in effect (see [`LoadSpec::max_duration`]).
    pub fn deadline(&self) -> Duration {
        self.max_duration.unwrap_or_else(|| self.sending_window() + self.timeout)
    }

    /// A request without a complete response after `d` counts as a timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Most requests in flight (open model).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        if let Model::Open { max_in_flight, .. } = &mut self.model {
            *max_in_flight = n;
        }
        self
    }

    /// Lateness tolerance (open model).
    pub fn late_tolerance(mut self, d: Duration) -> Self {
        if let Model::Open { late_tolerance, .. } = &mut self.model {
            *late_tolerance = d;
        }
        self
    }

    /// Pause between a worker's requests (closed model).
    pub fn think_time(mut self, d: Duration) -> Self {
        if let Model::Closed { think_time, .. } = &mut self.model {
            *think_time = d;
        }
        self
    }

    /// The CAs trusted for `https` targets (default: the system bundle).
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// Shows every complete response to `observer` (bodies are then kept per request until observed).
    pub fn observer(mut self, observer: Arc<dyn Observe>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sends each request's number (see [`Observed::seq`]) in the header `name`, so a server or an observer can
    /// tell requests apart and check their order.
    pub fn sequence_header(mut self, name: HeaderName) -> Self {
        self.seq_header = Some(name);
        self
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Spec(m.to_string()));
        if self.max_requests == 0 {
            return bad("max_requests must be at least 1");
        }
        if self.deadline().is_zero() || self.timeout.is_zero() || self.sending_window().is_zero() {
            return bad("max_duration, duration and timeout must be positive");
        }
        match &self.model {
            Model::Open { max_in_flight, .. } if !(1..=1_000_000).contains(max_in_flight) => {
                bad("max_in_flight must be between 1 and 1000000")
            }
            Model::Closed { workers, .. } if !(1..=100_000).contains(workers) => {
                bad("workers must be between 1 and 100000")
            }
            _ => Ok(()),
        }
    }

    /// Runs the load and returns what it measured. Errors only when the run cannot start (bad spec, host
    /// not resolving, CA unusable); failed requests are counted in the report.
    pub async fn run(self) -> Result<LoadReport, Error> {
        self.validate()?;
        engine::run(self).await
    }
}
