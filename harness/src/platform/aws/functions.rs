//! [`AwsFunctions`]: the function a deployment's outputs name, as a [`FunctionPlatform`] (AWS Lambda, or
//! LocalStack through an endpoint override). Every change goes through one [`Changes`] guard (audited,
//! restored by [`FunctionPlatform::restore`], or by the guard's `Drop` when a measurement panics).

use serde_json::Value;
use tokio::sync::Mutex;

use super::{AwsTarget, Changes, Error};
use crate::{
    measure::types as measure,
    platform::functions::{Capability, FunctionPlatform, Invocation, Outcome, SelfReport},
};

/// A target error as a measurement error of `procedure`: an unreachable or refusing endpoint, missing
/// outputs or a function that cannot run are `Unavailable` (they name what is missing), the rest `Failed`.
pub fn target_error(procedure: &str, e: Error) -> measure::Error {
    use Error as E;
    match e {
        E::Settings(_)
        | E::NoCredentials { .. }
        | E::Credentials { .. }
        | E::AccessDenied { .. }
        | E::NotFound { .. }
        | E::Unsupported { .. }
        | E::Throttled { .. }
        | E::Unreachable { .. }
        | E::FunctionFailed { .. }
        | E::UpdateFailed { .. } => {
            measure::Error::Unavailable { what: format!("{procedure}: the deployment"), detail: e.to_string() }
        }
        other => measure::Error::Failed(format!("{procedure}: {other}")),
    }
}

/// The deployment's function for one procedure.
pub struct AwsFunctions<'a> {
    target: &'a AwsTarget,
    kind: &'static str,
    procedure: &'a str,
    changes: Mutex<Option<Changes>>,
}

impl<'a> AwsFunctions<'a> {
    /// The function of `target` for `procedure`; `kind` is `aws` or `localstack`.
    pub fn new(
        target: &'a AwsTarget,
        kind: &'static str,
        procedure: &'a str,
    ) -> Result<AwsFunctions<'a>, measure::Error> {
        let changes = target.changes().map_err(|e| target_error(procedure, e))?;
        Ok(AwsFunctions { target, kind, procedure, changes: Mutex::new(Some(changes)) })
    }

    fn err(&self, e: Error) -> measure::Error {
        target_error(self.procedure, e)
    }

    async fn with_changes<T>(
        &self,
        f: impl AsyncFnOnce(&mut Changes) -> Result<T, Error>,
    ) -> Result<T, measure::Error> {
        let mut guard = self.changes.lock().await;
        let ch = guard
            .as_mut()
            .ok_or_else(|| measure::Error::Failed(format!("{}: changes already restored", self.procedure)))?;
        f(ch).await.map_err(|e| self.err(e))
    }
}

impl FunctionPlatform for AwsFunctions<'_> {
    fn target(&self) -> &'static str {
        self.kind
    }

    fn function(&self) -> &str {
        &self.target.settings().function_name
    }

    fn describe(&self) -> Vec<String> {
        let s = self.target.settings();
        vec![format!(
            "{} target: function `{}` in {} (Lambda at {}, other services at {}), names from {}",
            self.kind,
            s.function_name,
            s.region,
            self.target.endpoint_of("Lambda"),
            self.target.endpoint_of("CloudWatch"),
            s.source_name
        )]
    }

    async fn invoke(&self, payload: &Value) -> Result<Invocation, measure::Error> {
        match self.target.invoke(payload.to_string().as_bytes(), None).await {
            Ok(inv) => {
                let outcome = Invocation::classify(
                    u16::try_from(inv.status_code).unwrap_or(0),
                    inv.function_error.as_deref(),
                    &inv.report,
                    || inv.payload_text(),
                );
                Ok(Invocation {
                    outcome,
                    latency: inv.client_latency,
                    own: SelfReport::from_payload(&inv.payload),
                    report: inv.report,
                })
            }
            Err(Error::InvokeThrottled { code, message, latency, .. }) => Ok(Invocation {
                outcome: Outcome::Throttled,
                latency,
                report: Err(crate::platform::report_line::Error::NoReport {
                    source_name: "a throttled invocation".into(),
                    excerpt: format!("{code}: {message}"),
                }),
                own: None,
            }),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn force_cold(&self) -> Result<(), measure::Error> {
        self.with_changes(async |ch: &mut Changes| ch.force_cold_start().await.map(|_| ())).await
    }

    async fn configured_memory(&self) -> Result<u64, measure::Error> {
        let state = self.target.check_function().await.map_err(|e| self.err(e))?;
        state.memory_mb.and_then(|m| u64::try_from(m).ok()).filter(|m| *m > 0).ok_or_else(|| {
            measure::Error::Failed(format!("{}: GetFunctionConfiguration has no MemorySize", state.name))
        })
    }

    async fn set_memory(&self, mb: u64) -> Result<(), measure::Error> {
        let mb = i32::try_from(mb).map_err(|_| measure::Error::Failed(format!("memory size {mb} MB out of range")))?;
        self.with_changes(async move |ch: &mut Changes| ch.set_memory(mb).await).await
    }

    fn cpu_follows_memory(&self) -> Capability {
        Ok(())
    }

    async fn restore(&self) -> Result<(), measure::Error> {
        let taken = self.changes.lock().await.take();
        match taken {
            Some(ch) => ch.restore().await.map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
}
