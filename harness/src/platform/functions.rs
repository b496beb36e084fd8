//! [`FunctionPlatform`]: what the runtime procedures need from a platform that runs functions, and
//! [`Invocation`], the one record of an invocation every platform answers with.
//!
//! The procedures (`crate::measure`) are written once against this trait; each platform implements it:
//! the embedded local platform ([`super::local::LocalFunctions`]), AWS Lambda and LocalStack
//! ([`super::aws::AwsFunctions`]), and a scripted double for tests ([`super::scripted::Scripted`]). A
//! capability a platform lacks is answered here, once, with the reason ([`Capability`]), and the procedure
//! reports the figure missing or skipped with that reason.

use std::{future::Future, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::report_line::{self, Report};
use crate::measure::types::Error;

/// What the fixture functions report about themselves in every response, so that a cold start is proven
/// cold, not assumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReport {
    /// Id of the execution environment (random per process).
    pub env_id: String,
    /// True on the environment's first invocation.
    pub cold: bool,
    /// Invocations this environment has served, this one included.
    pub invocations: u64,
    /// Time the function's own init code took, in ms.
    pub init_code_ms: Option<f64>,
}

impl SelfReport {
    /// Reads the report from a response payload: the handler's JSON, or the JSON `body` of an API Gateway
    /// proxy response. `None` when the function does not report itself.
    pub fn from_payload(payload: &[u8]) -> Option<SelfReport> {
        let v: Value = serde_json::from_slice(payload).ok()?;
        let v = match v.get("body").and_then(Value::as_str) {
            Some(body) if v.get("statusCode").is_some() => serde_json::from_str(body).ok()?,
            _ => v,
        };
        Some(SelfReport {
            env_id: v.get("env_id")?.as_str()?.to_string(),
            cold: v.get("cold")?.as_bool()?,
            invocations: v.get("invocations")?.as_u64()?,
            init_code_ms: v.get("init_code_ms").and_then(Value::as_f64),
        })
    }
}

/// How an invocation ended, as the platform said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// Status 200 and no function error.
    Ok,
    /// The function returned an error (`X-Amz-Function-Error`), other than a timeout.
    FunctionError(String),
    /// The invocation ran into the function's timeout (REPORT `Status: timeout`).
    Timeout,
    /// The platform refused it for concurrency or rate (429, TooManyRequestsException).
    Throttled,
    /// Any other refusal of the call (an HTTP status other than 200, a transport failure).
    Failed(String),
}

impl Outcome {
    /// The class name used in ledgers and notes.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::FunctionError(_) => "function error",
            Outcome::Timeout => "timeout",
            Outcome::Throttled => "throttled",
            Outcome::Failed(_) => "failed call",
        }
    }

    /// What the platform said about a failure (the class itself when it said nothing more).
    pub fn detail(&self) -> String {
        match self {
            Outcome::FunctionError(d) | Outcome::Failed(d) => d.clone(),
            other => other.class().to_string(),
        }
    }
}

/// One invocation as every platform reports it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// How it ended.
    pub outcome: Outcome,
    /// Time from sending the request to having the whole response, measured by the harness.
    pub latency: Duration,
    /// The platform's REPORT (Duration, Init Duration, Memory Size, Max Memory Used), or why there is none.
    pub report: Result<Report, report_line::Error>,
    /// What the function says about itself, when it does.
    pub own: Option<SelfReport>,
}

impl Invocation {
    /// Classifies a raw answer: HTTP status, `X-Amz-Function-Error`, the REPORT of the log tail.
    pub fn classify(
        status: u16,
        function_error: Option<&str>,
        report: &Result<Report, report_line::Error>,
        detail: impl FnOnce() -> String,
    ) -> Outcome {
        let timed_out = report.as_ref().is_ok_and(|r| r.status.as_deref() == Some("timeout"));
        match (status, function_error) {
            (429, _) => Outcome::Throttled,
            (200, None) if !timed_out => Outcome::Ok,
            (200, _) if timed_out => Outcome::Timeout,
            (200, Some(e)) => {
                let detail = detail();
                if detail.contains("Task timed out") || detail.contains("Sandbox.Timedout") {
                    Outcome::Timeout
                } else {
                    Outcome::FunctionError(format!("{e}: {detail}"))
                }
            }
            (s, _) => Outcome::Failed(format!("status {s}: {}", detail())),
        }
    }

    /// True when the invocation succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Whether a platform can do something, and why not.
pub type Capability = Result<(), String>;

/// A function on a platform, as the runtime procedures drive it. Every change a procedure makes through it
/// (memory size, reserved concurrency, the bump that forces a cold start) is recorded and put back by
/// [`FunctionPlatform::restore`].
pub trait FunctionPlatform: Sync {
    /// The target's name (`local`, `aws`, `localstack`).
    fn target(&self) -> &'static str;

    /// The function the procedures measure.
    fn function(&self) -> &str;

    /// Notes that say what was measured where (mode, endpoints, where the names came from).
    fn describe(&self) -> Vec<String>;

    /// Invokes the function synchronously with the log tail. An error only when the platform could not be
    /// asked at all (unreachable, misconfigured): every answer, failures included, is an [`Invocation`].
    fn invoke(&self, payload: &Value) -> impl Future<Output = Result<Invocation, Error>> + Send;

    /// Makes the next invocation start a new execution environment (as on Lambda: a configuration update
    /// retires the environments of the old configuration), waiting until that has happened.
    fn force_cold(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// The memory size the function is configured with, in MB.
    fn configured_memory(&self) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Sets the memory size (restored by [`FunctionPlatform::restore`]).
    fn set_memory(&self, mb: u64) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether CPU follows the memory size on this platform (what makes a memory sweep measure something).
    fn cpu_follows_memory(&self) -> Capability;

    /// Puts back every change made through this platform.
    fn restore(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// How long a forced cold start may take before it is an error.
    fn cold_deadline(&self) -> Duration {
        Duration::from_secs(60)
    }
}
