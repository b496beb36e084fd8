//! Measurement procedures: each takes figures from a target and returns a [`MeasurementSet`] holding the
//! metrics the [`crate::criteria::catalog`] lists for it.

mod types;

pub use types::{Error, MeasurementSet, Metric};

use crate::{
    criteria::{catalog, Params, TargetKind},
    run::RunDir,
    target::Target,
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
        ("memory_sweep", Knative) => na("the memory sweep applies to Lambda-style memory sizes, not pod resources"),
        _ if catalog::procedures().contains(&procedure) => Support::Yes,
        _ => na("unknown procedure"),
    }
}

/// Runs `procedure` on `target` with `params`.
pub async fn run(procedure: &str, params: &Params, target: &Target, dir: &RunDir) -> Result<MeasurementSet, Error> {
    match procedure {
        "security" => crate::security::run(params, target, dir).await,
        _ => Err(Error::NotImplemented { procedure: procedure.to_string(), target: target.kind().name().to_string() }),
    }
}
