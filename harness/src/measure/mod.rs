//! Measurement procedures: each takes figures from a target and returns a [`MeasurementSet`] holding the
//! metrics the [`crate::criteria::catalog`] lists for it.

pub mod aws;
mod aws_load;
mod aws_monitoring;
mod aws_rate;
mod aws_resources;
mod aws_scale;
pub mod cold_rate;
mod high_load;
mod image;
mod image_pair;
pub mod ledger;
pub mod local_platform;
mod local_rate;
mod local_session;
pub mod monitoring;
mod platform;
pub mod raw;
pub mod regression;
mod resources;
mod scaling;
pub mod start;
pub mod sweep;
pub mod types;

pub use crate::platform::local::Invoked;
pub use high_load::{growth_pct, prom_sum};
pub use ledger::{Ledger, Rejection};
pub use platform::Platform;
pub use scaling::{concurrency_excess, holds, premature, Departure};
pub use start::{verify_cold, verify_warm, ColdSample, NotCounted};
pub use sweep::recommend;
pub use types::{Error, MeasurementSet, Metric};

use crate::{
    criteria::{catalog, Params, TargetKind},
    platform::{
        functions::FunctionPlatform,
        local::{function_spec, LocalFunctions, Session},
        LocalConfig, Target,
    },
    run_dir::RunDir,
};

/// The procedures written once against [`FunctionPlatform`], for every platform that implements it.
pub const SHARED: &[&str] = &["cold_start", "warm_start", "memory_sweep"];

/// Runs one of the [`SHARED`] procedures on `fp`.
pub async fn run_shared<F: FunctionPlatform>(
    procedure: &str,
    fp: &F,
    params: &Params,
    dir: &RunDir,
) -> Result<MeasurementSet, Error> {
    match procedure {
        "cold_start" => start::cold_start(fp, params, dir).await,
        "warm_start" => start::warm_start(fp, params, dir).await,
        "memory_sweep" => sweep::memory_sweep(fp, params, dir).await,
        other => Err(Error::NotImplemented { procedure: other.into(), target: fp.target().into() }),
    }
}

/// Runs a [`SHARED`] procedure on the local platform: started for the procedure from the functions file,
/// the profile's `function` (default `fixture-rust`) driven, stopped at the end; `cold_start` with `images`
/// then measures the image pair ([`image_pair`]).
async fn run_local_shared(
    procedure: &str,
    params: &Params,
    cfg: &LocalConfig,
    dir: &RunDir,
) -> Result<MeasurementSet, Error> {
    let function = local_session::P { procedure, params }.str("function", "fixture-rust")?;
    let spec = function_spec(cfg, &function)?;
    let pair = image_pair::Pair::of(procedure, params)?;
    let session = Session::start(cfg, |_| {}).await?;
    let fp = LocalFunctions::new(&session, &function, spec);
    let r = run_shared(procedure, &fp, params, dir).await;
    let engine = if session.containers() { Ok(()) } else { Err(session.mode_note()) };
    session.shutdown().await;
    match (r, pair) {
        (Ok(set), Some(pair)) => {
            image_pair::measure(set, pair, engine, params, cfg, dir).await.map(MeasurementSet::finish)
        }
        (r, _) => r,
    }
}

/// Whether a procedure can run on a target kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// The procedure runs on the target.
    Yes,
    /// The procedure does not apply to the target (reported as skipped with this reason).
    NotApplicable(String),
}

/// Whether `procedure` applies to targets of `kind`.
pub fn support(procedure: &str, kind: TargetKind) -> Support {
    use TargetKind::*;
    let na = |why: &str| Support::NotApplicable(why.to_string());
    match (procedure, kind) {
        ("build", Aws | Localstack) => {
            na("AWS Lambda does not build images; build checks run on the local engine or the knative target's Kaniko")
        }
        ("scale_down", Aws | Localstack) => {
            na("Lambda does not expose when it retires an idle execution environment (no API lists environments)")
        }
        ("portal", Aws | Localstack | Knative) => {
            na("the portal stack (Redis, PostgreSQL, nginx as the CDN) is started on this machine: run it with --target local")
        }
        ("memory_sweep", Knative) => na("the memory sweep applies to Lambda-style memory sizes, not pod resources"),
        _ if catalog::procedures().contains(&procedure) => Support::Yes,
        _ => na("unknown procedure"),
    }
}

/// Whether the metric `measure` (`procedure.metric`) applies to targets of `kind`: [`support`] of its
/// procedure, less the metrics that only exist on some platforms.
pub fn support_metric(measure: &str, kind: TargetKind) -> Support {
    let (procedure, metric) = measure.split_once('.').unwrap_or((measure, ""));
    let na = |why: &str| Support::NotApplicable(why.to_string());
    match (procedure, metric, kind) {
        ("warm_start", "duration", TargetKind::Knative) => {
            na("Lambda's per-invocation Duration (REPORT line) has no Knative counterpart; warm_start.client_latency is measured instead")
        }
        ("concurrency", "excess_throttled", TargetKind::Knative) => {
            na("Knative queues requests beyond capacity in the activator and queue-proxy instead of answering 429")
        }
        ("cold_start", "baseline_reduction", TargetKind::Knative | TargetKind::Aws | TargetKind::Localstack) => {
            na("needs the baseline (single-stage) image deployed as a second function beside the optimized one, which this target's deployment does not provide")
        }
        ("monitoring", "build_missing", TargetKind::Aws | TargetKind::Localstack) => {
            na("Lambda runs no builds: build metrics come from the build pipeline (build procedure on the local or knative target)")
        }
        (
            "build",
            "time_reduction" | "incremental_reduction" | "dependency_cache_hit_rate" | "cache_hit_rate" | "quality_failures"
            | "image_size_reduction" | "clean_duration",
            TargetKind::Knative,
        ) => na("compares the baseline and optimized Dockerfiles on the local Docker engine; run it with --target local"),
        _ => support(procedure, kind),
    }
}

/// Runs `procedure` on `target` with `params`.
pub async fn run(procedure: &str, params: &Params, target: &Target, dir: &RunDir) -> Result<MeasurementSet, Error> {
    if let Target::Knative(cfg) = target {
        return crate::platform::knative::measure(procedure, params, cfg, dir).await;
    }
    if let (Target::Aws(cfg), true) = (target, aws::PROCEDURES.contains(&procedure) || procedure == "scale_down") {
        return aws::run(procedure, params, cfg, dir).await;
    }
    if let (Target::Local(cfg), "monitoring" | "regression") = (target, procedure) {
        return local_platform::run(procedure, params, cfg, dir).await;
    }
    let kind = target.kind().name();
    if let Target::Local(cfg) = target {
        match procedure {
            p if SHARED.contains(&p) => return run_local_shared(p, params, cfg, dir).await,
            "cold_start_rate" => return local_rate::run_rate(params, cfg, dir).await,
            "image" => return image::run(params, cfg).await,
            "scale_up" => return scaling::scale_up(params, cfg, dir).await,
            "scale_down" => return scaling::scale_down(params, cfg, dir).await,
            "concurrency" => return scaling::concurrency(params, cfg, dir).await,
            "resources" => return resources::resources(params, cfg, dir).await,
            "high_load" => return high_load::run(params, cfg, dir).await,
            "portal" => return crate::web::run(params, dir).await.map_err(Error::from),
            _ => {}
        }
    }
    match procedure {
        "build" => crate::image_build::measure(params, target, dir).await,
        "security" => crate::security::run(params, target, dir).await,
        // The injected regression and the alert path need a `Platform` for the target; until the target
        // provides one, the history and baseline figures are measured and those two are reported missing.
        "regression" => regression::measure_history_only(
            params,
            dir,
            kind,
            &format!("target {kind} provides no measure::Platform yet to inject a slower variant"),
        ),
        _ => Err(Error::NotImplemented { procedure: procedure.to_string(), target: kind.to_string() }),
    }
}
