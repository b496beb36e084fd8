//! Measurement procedures: each takes figures from a target and returns a [`MeasurementSet`] holding the
//! metrics the [`crate::criteria::catalog`] lists for it.

pub mod aws;
mod aws_load;
mod aws_monitoring;
mod aws_resources;
mod aws_scale;
mod aws_start;
mod cold_start;
mod high_load;
mod image;
pub mod local_platform;
mod local_session;
pub mod monitoring;
mod platform;
pub mod regression;
mod resources;
mod scaling;
mod types;
mod warm_start;

pub use cold_start::{verify_cold, ColdSample};
pub use high_load::{growth_pct, prom_sum};
pub use local_session::Invoked;
pub use platform::Platform;
pub use resources::recommend;
pub use scaling::{concurrency_excess, premature, Departure};
pub use types::{Error, MeasurementSet, Metric};

use crate::{
    criteria::{catalog, Params, TargetKind},
    platform::Target,
    run_dir::RunDir,
};

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
        ("cold_start", "baseline_reduction", TargetKind::Knative) => {
            na("needs the baseline (single-stage) image deployed as a second function; measured on the local target")
        }
        ("monitoring", "build_missing", TargetKind::Aws | TargetKind::Localstack) => {
            na("Lambda runs no builds: build metrics come from the build pipeline (build procedure on the local or knative target)")
        }
        ("cold_start", "baseline_reduction", TargetKind::Aws | TargetKind::Localstack) => {
            na("needs the baseline (single-stage) image deployed as a second function; measured on the local target")
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
            "cold_start" => return cold_start::run(params, cfg, dir).await,
            "warm_start" => return warm_start::run(params, cfg, dir).await,
            "cold_start_rate" => return warm_start::run_rate(params, cfg, dir).await,
            "image" => return image::run(params, cfg).await,
            "scale_up" => return scaling::scale_up(params, cfg, dir).await,
            "scale_down" => return scaling::scale_down(params, cfg, dir).await,
            "concurrency" => return scaling::concurrency(params, cfg, dir).await,
            "resources" => return resources::resources(params, cfg, dir).await,
            "memory_sweep" => return resources::memory_sweep(params, cfg, dir).await,
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
