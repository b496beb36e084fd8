//! The knative arm of `measure::run`: [`measure`] connects to the cluster and runs a procedure with real
//! HTTP routes; [`run`] does the same on a given [`Cluster`] and route maker (tests hand in a client over a
//! mocked API server and an in-process route). Also the helpers the procedures share: raw CSV files under
//! the run directory, and a temporary min-scale that is always restored.

use std::{path::PathBuf, time::Duration};

use super::{
    connect::{connect, Cluster},
    error::{Error, Result},
    function::{Function, Revision},
    kaniko,
    params::P,
    proc_scale, proc_start, resources,
    route::{HttpRoute, Route},
};
use crate::{
    criteria::Params,
    measure::types::{self as measure, MeasurementSet},
    platform::KnativeConfig,
    run_dir::RunDir,
};

/// Procedures this target implements.
pub const PROCEDURES: &[&str] =
    &["cold_start", "warm_start", "cold_start_rate", "scale_up", "scale_down", "concurrency", "resources", "build"];

/// Per-request timeout of the real HTTP route (a cold start through the activator included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `procedure` against the cluster `cfg` names.
pub async fn measure(
    procedure: &str,
    params: &Params,
    cfg: &KnativeConfig,
    dir: &RunDir,
) -> Result<MeasurementSet, measure::Error> {
    if !PROCEDURES.contains(&procedure) {
        return Err(measure::Error::NotImplemented { procedure: procedure.into(), target: "knative".into() });
    }
    let cluster = connect(cfg).await.map_err(|e| e.into_measure(procedure))?;
    let ingress = cfg.ingress.clone();
    run(procedure, params, &cluster, dir, move |f: &Function| {
        HttpRoute::for_function(f, ingress.as_deref(), REQUEST_TIMEOUT)
    })
    .await
}

/// Runs `procedure` on `cluster`, reaching functions through the routes `make_route` builds.
pub async fn run<R: Route>(
    procedure: &str,
    params: &Params,
    cluster: &Cluster,
    dir: &RunDir,
    make_route: impl Fn(&Function) -> Result<R>,
) -> Result<MeasurementSet, measure::Error> {
    let p = P(params);
    let ctx = Ctx { c: cluster, p, dir, procedure };
    let result = match procedure {
        "cold_start" => proc_start::cold_start(&ctx, &make_route).await,
        "warm_start" => proc_start::warm_start(&ctx, &make_route).await,
        "cold_start_rate" => proc_start::cold_start_rate(&ctx, &make_route).await,
        "scale_up" => proc_scale::scale_up(&ctx, &make_route).await,
        "scale_down" => proc_scale::scale_down(&ctx, &make_route).await,
        "concurrency" => proc_scale::concurrency(&ctx, &make_route).await,
        "resources" => resources::procedure(&ctx, &make_route).await,
        "build" => kaniko::procedure(&ctx).await,
        _ => return Err(measure::Error::NotImplemented { procedure: procedure.into(), target: "knative".into() }),
    };
    result.map(MeasurementSet::finish).map_err(|e| e.into_measure(procedure))
}

/// What a procedure runs with.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The cluster.
    pub c: &'a Cluster,
    /// Its parameters.
    pub p: P<'a>,
    /// The run directory.
    pub dir: &'a RunDir,
    /// The procedure's name.
    pub procedure: &'a str,
}

impl Ctx<'_> {
    /// An empty measurement set of this procedure.
    pub fn set(&self) -> MeasurementSet {
        MeasurementSet::new(self.procedure, "knative", self.p.0)
    }

    /// Writes a CSV file of raw data; returns its path relative to the run directory.
    pub fn raw_csv(&self, file: &str, header: &str, rows: impl IntoIterator<Item = String>) -> Result<PathBuf> {
        let dir = self.dir.raw_dir(self.procedure).map_err(|e| Error::Io {
            path: self.dir.path().join("raw"),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = dir.join(file);
        let mut text = format!("{header}\n");
        for r in rows {
            text.push_str(&r);
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(|source| Error::Io { path: path.clone(), source })?;
        Ok(PathBuf::from("raw").join(self.procedure).join(file))
    }
}

/// A template annotation the procedure changed and must put back.
#[derive(Debug)]
pub struct Override {
    key: &'static str,
    original: Option<String>,
}

/// Makes `f` run with min-scale `want` (a new revision) unless its ready revision already does; returns
/// the function and revision to measure, and the override to [`restore`] afterwards.
pub async fn with_min_scale(
    c: &Cluster,
    f: Function,
    want: u64,
    rollout: Duration,
) -> Result<(Function, Revision, Option<Override>)> {
    let rev = Revision::get(c, &f.ready_revision()?).await?;
    if rev.min_scale() == want {
        return Ok((f, rev, None));
    }
    let (key, original) = f.template_min_scale();
    f.set_template_annotation(c, key, Some(&want.to_string())).await?;
    let ov = Override { key, original };
    match super::cold::wait_new_revision(c, &f, &rev.name, rollout).await {
        Ok((f, rev)) => Ok((f, rev, Some(ov))),
        Err(e) => match restore(c, &f, Some(ov)).await {
            Ok(()) => Err(e),
            Err(r) => Err(Error::Measurement(format!("{e}; and restoring it failed: {r}"))),
        },
    }
}

/// Puts an overridden annotation back (removing it when it was not set before).
pub async fn restore(c: &Cluster, f: &Function, ov: Option<Override>) -> Result<()> {
    match ov {
        Some(ov) => f.set_template_annotation(c, ov.key, ov.original.as_deref()).await,
        None => Ok(()),
    }
}

/// Runs `body`, then restores `ov` whatever happened; a failed restore is reported with the result.
pub async fn restoring<T>(
    c: &Cluster,
    f: &Function,
    ov: Option<Override>,
    body: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Vec<String>)> {
    let changed = ov.as_ref().map(|o| o.key);
    let out = body.await;
    let restored = restore(c, f, ov).await;
    let mut notes = Vec::new();
    if let Some(key) = changed {
        match &restored {
            Ok(()) => notes.push(format!(
                "{key} was changed on Knative Service {} for the measurement and restored after it",
                f.service_name()
            )),
            Err(e) => notes.push(format!("{key} of Knative Service {} could NOT be restored: {e}", f.service_name())),
        }
    }
    out.map(|t| (t, notes))
}

/// Median of `v` (which must not be empty), for notes.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
