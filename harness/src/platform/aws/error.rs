//! [`Error`]: why an operation of the aws target failed, each message naming the service, operation,
//! function or resource and endpoint, and what to do; [`classify`] turns an SDK error into one of them
//! (rejected credentials, missing permissions, a resource that does not exist, throttling that outlasted the
//! retries, an unreachable endpoint, an API the endpoint does not implement).

use std::time::Duration;

use aws_sdk_lambda::{
    config::http::HttpResponse,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
};

use crate::{platform::report_line, terraform};

/// Errors of the aws target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Terraform outputs could not be read.
    #[error(transparent)]
    Settings(Box<terraform::Error>),
    /// No credentials were found.
    #[error(
        "{service} {operation} at {endpoint}: no AWS credentials found ({detail}); set AWS_PROFILE or \
         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an instance/task role is available"
    )]
    NoCredentials {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Endpoint.
        endpoint: String,
        /// What the SDK said.
        detail: String,
    },
    /// The endpoint rejected the credentials.
    #[error(
        "{service} {operation} at {endpoint}: the credentials were rejected ({code}: {message}); check \
         AWS_PROFILE / AWS_ACCESS_KEY_ID, that the session token has not expired, and the region"
    )]
    Credentials {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Endpoint.
        endpoint: String,
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
    /// The credentials lack a permission.
    #[error("{service} {operation} on {resource} at {endpoint}: access denied ({message}); the role needs permission for {service}:{operation}")]
    AccessDenied {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Resource.
        resource: String,
        /// Endpoint.
        endpoint: String,
        /// Error message.
        message: String,
    },
    /// The resource does not exist.
    #[error("{service} {operation}: {resource} not found at {endpoint} ({message}); check the Terraform outputs the names came from")]
    NotFound {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Resource.
        resource: String,
        /// Endpoint.
        endpoint: String,
        /// Error message.
        message: String,
    },
    /// The endpoint does not implement the operation (an emulator without it).
    #[error("{service} {operation}: not implemented by the endpoint {endpoint} (HTTP {status}); run this against AWS or LocalStack")]
    Unsupported {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
    },
    /// The control plane kept throttling after every retry.
    #[error("{service} {operation} at {endpoint}: still throttled after {attempts} attempts with backoff ({code}: {message})")]
    Throttled {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Endpoint.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
    /// An invocation was throttled (429): data for concurrency checks, not retried.
    #[error("Lambda Invoke of {function}: throttled ({code}: {message})")]
    InvokeThrottled {
        /// Function.
        function: String,
        /// Error code (`TooManyRequestsException`).
        code: String,
        /// Error message (reason).
        message: String,
        /// Client time until the 429 arrived.
        latency: Duration,
    },
    /// The endpoint could not be reached or did not answer in time.
    #[error("{service} {operation}: endpoint {endpoint} unreachable: {detail}")]
    Unreachable {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Endpoint.
        endpoint: String,
        /// What happened.
        detail: String,
    },
    /// Any other API error.
    #[error("{service} {operation} at {endpoint}: {code} (HTTP {status}): {message}")]
    Api {
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// Endpoint.
        endpoint: String,
        /// Error code.
        code: String,
        /// HTTP status (0 when there was no response).
        status: u16,
        /// Error message.
        message: String,
    },
    /// The function is in state Failed.
    #[error("function {function} is in state Failed ({reason_code}): {reason}")]
    FunctionFailed {
        /// Function.
        function: String,
        /// `StateReasonCode`.
        reason_code: String,
        /// `StateReason`.
        reason: String,
    },
    /// A configuration update failed.
    #[error("function {function}: configuration update failed (LastUpdateStatus Failed, {reason_code}): {reason}")]
    UpdateFailed {
        /// Function.
        function: String,
        /// `LastUpdateStatusReasonCode`.
        reason_code: String,
        /// `LastUpdateStatusReason`.
        reason: String,
    },
    /// A wait ran out of time.
    #[error("{what}: still {last} after {} s (waited for {wanted})", waited.as_secs_f64().round())]
    WaitTimeout {
        /// What was awaited (function, alias).
        what: String,
        /// The state wanted.
        wanted: String,
        /// The last state seen.
        last: String,
        /// How long it waited.
        waited: Duration,
    },
    /// Provisioned concurrency could not be allocated.
    #[error("provisioned concurrency of {function}:{qualifier} FAILED: {reason}")]
    ProvisionedFailed {
        /// Function.
        function: String,
        /// Alias or version.
        qualifier: String,
        /// `StatusReason`.
        reason: String,
    },
    /// An invocation's response could not be used.
    #[error("Lambda Invoke of {function}: {detail}")]
    Invoke {
        /// Function.
        function: String,
        /// What is wrong.
        detail: String,
    },
    /// A log line from the platform could not be read.
    #[error("{0}")]
    Report(#[from] report_line::Error),
    /// A response could not be read.
    #[error("{what}: {detail}")]
    Response {
        /// What was read.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The audit log could not be written.
    #[error("audit log {path}: {source}")]
    Audit {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Restoring what the suite changed failed; each entry names the setting and the error.
    #[error("could not restore {} setting(s) the suite changed: {}; restore them by hand (see the audit log)", failures.len(), failures.join("; "))]
    Restore {
        /// One line per setting.
        failures: Vec<String>,
    },
}

impl From<terraform::Error> for Error {
    fn from(e: terraform::Error) -> Error {
        Error::Settings(Box::new(e))
    }
}

impl Error {
    /// True for an invocation answered with 429 (the function's concurrency limit, not a failure).
    pub fn is_invoke_throttle(&self) -> bool {
        matches!(self, Error::InvokeThrottled { .. })
    }
}

/// Where an operation went, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<'a> {
    pub service: &'static str,
    pub operation: &'static str,
    pub resource: &'a str,
    pub endpoint: &'a str,
    pub attempts: u32,
}

const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
];
const THROTTLE_CODES: &[&str] = &[
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "LimitExceededException",
];
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NotFoundException",
    "ResourceNotFound",
    "ProvisionedConcurrencyConfigNotFoundException",
];

/// Maps an SDK error to an [`Error`] naming what failed where.
pub(crate) fn classify<E>(ctx: &Ctx<'_>, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let (code, message) = match e.as_service_error() {
        Some(se) => (se.code().unwrap_or("").to_string(), se.message().unwrap_or("").to_string()),
        None => (String::new(), String::new()),
    };
    let detail = DisplayErrorContext(&e).to_string();
    let endpoint = ctx.endpoint.to_string();
    let (service, operation) = (ctx.service, ctx.operation);
    match &e {
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) if is_no_credentials(&detail) => {
            return Error::NoCredentials { service, operation, endpoint, detail: short(&detail) };
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return Error::Unreachable { service, operation, endpoint, detail: short(&detail) };
        }
        _ => {}
    }
    let message = if message.is_empty() { short(&detail) } else { message };
    let code_is = |list: &[&str]| list.iter().any(|c| *c == code);
    let token_rejected = message.contains("security token included in the request is invalid");
    if code_is(CREDENTIAL_CODES) || token_rejected || status == 401 || (status == 403 && code.is_empty()) {
        let code = if code.is_empty() { format!("HTTP {status}") } else { code };
        return Error::Credentials { service, operation, endpoint, code, message };
    }
    if code == "AccessDeniedException" || code == "AccessDenied" || status == 403 {
        return Error::AccessDenied { service, operation, resource: ctx.resource.to_string(), endpoint, message };
    }
    if code_is(THROTTLE_CODES) || status == 429 {
        let code = if code.is_empty() { format!("HTTP {status}") } else { code };
        return Error::Throttled { service, operation, endpoint, attempts: ctx.attempts, code, message };
    }
    if code_is(NOT_FOUND_CODES) {
        return Error::NotFound { service, operation, resource: ctx.resource.to_string(), endpoint, message };
    }
    if code.is_empty() && matches!(status, 404 | 405 | 501) {
        return Error::Unsupported { service, operation, endpoint, status };
    }
    let code = if code.is_empty() { "error".into() } else { code };
    Error::Api { service, operation, endpoint, code, status, message }
}

fn is_no_credentials(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("no credentials")
        || d.contains("credentials provider was not enabled")
        || d.contains("failed to load credentials")
}

fn short(detail: &str) -> String {
    let s: String = detail.chars().take(600).collect();
    s.replace('\n', " ")
}
