//! [`Platform`]: the embedded local target, a Lambda-compatible function platform on this machine.
//!
//! It serves the AWS Lambda **Invoke API** and the control calls the aws target uses (get/update function
//! configuration, put/get/delete function concurrency) on loopback, so `aws-sdk-lambda` (or
//! [`crate::platform::lambda_client::LambdaClient`]) drives it like AWS. Each execution environment is a real
//! container on the Docker engine (memory limit = function memory, CPU share in proportion to memory as on
//! Lambda: 1769 MB = 1 vCPU) or a child process when no engine is reachable, and it speaks the Lambda
//! **Runtime API** (next, response, error, init error) to a server the platform runs for it, so init and
//! invoke timestamps are exact. Scaling follows Lambda: one environment per concurrent request, idle ones
//! reused and retired after the idle timeout, provisioned ones kept warm, reserved concurrency caps with 429
//! `TooManyRequestsException`. With `X-Amz-Log-Type: Tail` the response carries a REPORT line whose Max
//! Memory Used is measured (cgroup peak for containers, `VmHWM` for processes). A front door in the API
//! Gateway role (plain HTTP and HTTPS with a per-run certificate, `x-api-key`, stage throttling) routes
//! `/{function}` to invokes; `/metrics` serves Prometheus text behind a bearer token; every configuration
//! change is appended to a JSONL audit log. Everything it starts is labeled with the run id and removed on
//! [`Platform::shutdown`], on drop (also while a panic unwinds), and swept at the next start when a run was
//! killed.
//!
//! Limits, by design or not yet done: process mode neither caps memory nor shares CPU by memory size (Max
//! Memory Used is still measured, from `VmHWM`); the log tail carries the function's own output in process
//! mode only (container mode: START, END and REPORT); errors a runtime posts are reported as
//! `X-Amz-Function-Error: Unhandled`, as AWS does for the Runtime API (`Handled` is never produced); only
//! `$LATEST` exists (no versions, aliases or provisioned-concurrency API calls: provisioned concurrency is
//! set in the functions file); the Invoke API accepts any SigV4 signature and reads only the access key id
//! (for the audit log), so it must stay on loopback.

mod audit;
mod config;
mod docker;
mod environment;
mod error;
pub mod fixtures;
mod front_door;
mod invoke_api;
mod metrics;
mod platform;
mod pool;
mod report;
mod runtime_api;
mod sweep;
mod tls;

pub use config::{FunctionSpec, FunctionsFile, ModeChoice, PlatformConfig, Source};
pub use environment::{EnvInfo, EnvState};
pub use error::Error;
pub use platform::{Mode, Platform};
pub use sweep::{leftovers, owned_by, sweep_dead_runs, Swept, OWNER_LABEL, RUN_LABEL};
