//! The runtime procedures on the aws and localstack targets: [`run`] connects an [`AwsTarget`] from the
//! Terraform outputs, refuses a function in state Failed, and dispatches to the procedure files
//! (`aws_start`, `aws_scale`, `aws_resources`, `aws_load`, `aws_monitoring`). [`Ctx`] is what they share:
//! the target, typed parameters, the run directory, and the mapping of target errors to measurement errors
//! (each naming the service, operation and endpoint that failed).
//!
//! Every change to the deployment goes through one [`Changes`] guard per procedure, restored at the end of
//! the procedure whether it succeeded or not (and on a panic by the guard's `Drop`); the audit log in the
//! run directory holds each change and restore.

use serde_json::{json, Value};

use super::{local_session::P, Error, MeasurementSet};
use crate::{
    criteria::Params,
    platform::{
        aws::{self, AwsTarget, Changes, Invocation},
        AwsConfig,
    },
    run_dir::RunDir,
};

/// What an aws procedure runs with.
pub(crate) struct Ctx<'a> {
    /// The deployment.
    pub t: AwsTarget,
    /// Typed parameters.
    pub p: P<'a>,
    /// The run directory.
    pub dir: &'a RunDir,
    /// `aws` or `localstack`.
    pub kind: &'static str,
}

impl Ctx<'_> {
    /// An empty measurement set of this procedure, with the deployment noted.
    pub fn set(&self) -> MeasurementSet {
        let mut set = MeasurementSet::new(self.p.procedure, self.kind, self.p.params);
        let s = self.t.settings();
        set.notes.push(format!(
            "{} target: function `{}` in {} (Lambda at {}, other services at {}), names from {}",
            self.kind,
            s.function_name,
            s.region,
            self.t.endpoint_of("Lambda"),
            self.t.endpoint_of("CloudWatch"),
            s.source_name
        ));
        set
    }

    /// The function the outputs name; a `function` parameter naming another one is noted, not followed:
    /// the profile's names are those of the local fixtures.
    pub fn function(&self) -> String {
        self.t.settings().function_name.clone()
    }

    /// A target error as a measurement error of this procedure.
    pub fn err(&self, e: aws::Error) -> Error {
        target_error(self.p.procedure, e)
    }

    /// Invokes `$LATEST` with `payload`; a throttle is data (returned as `Ok(Err(..))`), any other failure
    /// of the call an error.
    pub async fn invoke(&self, payload: &Value) -> Result<Result<Invocation, aws::Error>, Error> {
        match self.t.invoke(payload.to_string().as_bytes(), None).await {
            Ok(i) => Ok(Ok(i)),
            Err(e @ aws::Error::InvokeThrottled { .. }) => Ok(Err(e)),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Invokes `$LATEST` and requires a successful answer (status 200, no function error).
    pub async fn invoke_ok(&self, payload: &Value) -> Result<Invocation, Error> {
        let inv = self.invoke(payload).await?.map_err(|e| self.err(e))?;
        if inv.status_code != 200 || inv.function_error.is_some() {
            return Err(Error::Failed(format!(
                "invoke of {} answered {} ({}): {}",
                self.function(),
                inv.status_code,
                inv.function_error.as_deref().unwrap_or("no function error"),
                inv.payload_text()
            )));
        }
        Ok(inv)
    }

    /// A change guard for this procedure (every change audited; see [`Ctx::restore`]).
    pub fn changes(&self) -> Result<Changes, Error> {
        self.t.changes().map_err(|e| self.err(e))
    }

    /// Restores every change of `changes` after the procedure's body gave `r` (also when it failed); a
    /// failed restore is an error even when the body succeeded.
    pub async fn restore<T>(&self, changes: Changes, r: Result<T, Error>) -> Result<T, Error> {
        let restored = changes.restore().await.map_err(|e| self.err(e));
        match (r, restored) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }
}

/// A target error as a measurement error of `procedure`.
pub(crate) use crate::platform::aws::target_error;

/// Runs `procedure` on the aws or localstack target `cfg`.
pub async fn run(procedure: &str, params: &Params, cfg: &AwsConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let kind = if cfg.localstack { "localstack" } else { "aws" };
    if procedure == "scale_down" {
        return Err(Error::NotApplicable {
            target: kind.into(),
            reason: "Lambda does not expose when it retires an idle execution environment (no API lists environments), so premature retirement cannot be observed".into(),
        });
    }
    if !PROCEDURES.contains(&procedure) {
        return Err(Error::NotImplemented { procedure: procedure.into(), target: kind.into() });
    }
    let t = AwsTarget::from_config(cfg, dir).await.map_err(|e| target_error(procedure, e))?;
    let ctx = Ctx { t, p: P { procedure, params }, dir, kind };
    let state = ctx.t.check_function().await.map_err(|e| ctx.err(e))?;
    if let Some(f) = params.get("function").and_then(Value::as_str).filter(|f| *f != state.name) {
        tracing::info!("{procedure}: parameter function `{f}` names a local fixture; the aws target measures `{}` from the outputs", state.name);
    }
    let started = chrono::Utc::now();
    let mut set = match procedure {
        p if super::SHARED.contains(&p) => {
            let fp = aws::AwsFunctions::new(&ctx.t, kind, procedure)?;
            super::run_shared(p, &fp, params, dir).await
        }
        "cold_start_rate" => super::aws_rate::cold_start_rate(&ctx).await,
        "concurrency" => super::aws_scale::concurrency(&ctx).await,
        "scale_up" => super::aws_scale::scale_up(&ctx).await,
        "resources" => super::aws_resources::resources(&ctx, &state).await,
        "image" => super::aws_resources::image(&ctx, &state).await,
        "high_load" => super::aws_load::high_load(&ctx).await,
        "monitoring" => super::aws_monitoring::monitoring(&ctx, &state).await,
        other => Err(Error::NotImplemented { procedure: other.into(), target: kind.into() }),
    }?;
    // The sets are built after the traffic; the measurement started here.
    set.started = started;
    Ok(set.finish())
}

/// The procedures this module measures (the others are dispatched elsewhere or not applicable).
pub const PROCEDURES: &[&str] = &[
    "cold_start",
    "warm_start",
    "cold_start_rate",
    "concurrency",
    "scale_up",
    "resources",
    "memory_sweep",
    "image",
    "high_load",
    "monitoring",
];

/// The payload that makes the fixture functions sleep `ms` in the handler.
pub(crate) fn sleep_payload(ms: f64) -> Value {
    json!({ "work_ms": ms.round() as u64, "work_mode": "sleep" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_errors_name_what_is_missing_and_keep_the_platforms_reason() {
        let failed = aws::Error::FunctionFailed {
            function: "perf-fixture".into(),
            reason_code: "InvalidImage".into(),
            reason: "image not found".into(),
        };
        match target_error("cold_start", failed) {
            Error::Unavailable { what, detail } => {
                assert_eq!(what, "cold_start: the deployment");
                assert!(
                    detail.contains("perf-fixture")
                        && detail.contains("state Failed")
                        && detail.contains("InvalidImage"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        let throttled = aws::Error::Throttled {
            service: "Lambda",
            operation: "GetFunctionConfiguration",
            endpoint: "http://127.0.0.1:1".into(),
            attempts: 6,
            code: "TooManyRequestsException".into(),
            message: "Rate exceeded".into(),
        };
        let e = target_error("warm_start", throttled).to_string();
        assert!(e.contains("still throttled after 6 attempts") && e.contains("GetFunctionConfiguration"), "{e}");
        let invoke = aws::Error::Invoke { function: "f".into(), detail: "bad tail".into() };
        assert!(matches!(target_error("warm_start", invoke), Error::Failed(m) if m.starts_with("warm_start: ")));
    }

    #[test]
    fn the_sleep_payload_is_what_the_fixture_reads() {
        assert_eq!(sleep_payload(299.6), json!({"work_ms": 300, "work_mode": "sleep"}));
    }
}
