//! What became of each request: [`ErrorClass`] (throttled, function error, other status, timeout, connection)
//! and the [`Counts`] a phase, a second or a whole run keeps of them.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

/// Why a request did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// HTTP 429 (Lambda `TooManyRequestsException`, API Gateway throttling).
    Throttled,
    /// An `X-Amz-Function-Error` response header (the function failed) or a 5xx status.
    FunctionError,
    /// Another 4xx status (e.g. 403 for a missing API key): the request itself was refused.
    OtherStatus,
    /// No complete response within the request timeout (or before the run's deadline).
    Timeout,
    /// The connection could not be opened, or broke before a complete response (refused, reset, closed, TLS).
    Connection,
}

impl ErrorClass {
    /// Every class, in report order.
    pub const ALL: [ErrorClass; 5] =
        [Self::Throttled, Self::FunctionError, Self::OtherStatus, Self::Timeout, Self::Connection];

    /// The class's name in ledgers and notes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::FunctionError => "function error",
            Self::OtherStatus => "other status",
            Self::Timeout => "timeout",
            Self::Connection => "connection error",
        }
    }

    /// The class of a complete response, `None` when it is a success.
    pub fn of_response(status: StatusCode, function_error_header: bool) -> Option<Self> {
        match status.as_u16() {
            429 => Some(Self::Throttled),
            _ if function_error_header || status.is_server_error() => Some(Self::FunctionError),
            400..=499 => Some(Self::OtherStatus),
            _ => None,
        }
    }
}

/// Requests that failed, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// [`ErrorClass::Throttled`].
    pub throttled: u64,
    /// [`ErrorClass::FunctionError`].
    pub function_error: u64,
    /// [`ErrorClass::OtherStatus`].
    pub other_status: u64,
    /// [`ErrorClass::Timeout`].
    pub timeout: u64,
    /// [`ErrorClass::Connection`].
    pub connection: u64,
}

impl ErrorCounts {
    /// The counter of `class`.
    pub fn get(&self, class: ErrorClass) -> u64 {
        match class {
            ErrorClass::Throttled => self.throttled,
            ErrorClass::FunctionError => self.function_error,
            ErrorClass::OtherStatus => self.other_status,
            ErrorClass::Timeout => self.timeout,
            ErrorClass::Connection => self.connection,
        }
    }

    pub(crate) fn add(&mut self, class: ErrorClass) {
        let c = match class {
            ErrorClass::Throttled => &mut self.throttled,
            ErrorClass::FunctionError => &mut self.function_error,
            ErrorClass::OtherStatus => &mut self.other_status,
            ErrorClass::Timeout => &mut self.timeout,
            ErrorClass::Connection => &mut self.connection,
        };
        *c += 1;
    }

    /// All failed requests.
    pub fn total(&self) -> u64 {
        ErrorClass::ALL.iter().map(|&c| self.get(c)).sum()
    }

    fn merge(&mut self, o: &Self) {
        self.throttled += o.throttled;
        self.function_error += o.function_error;
        self.other_status += o.other_status;
        self.timeout += o.timeout;
        self.connection += o.connection;
    }
}

/// Request counts of a phase or a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests due by the schedule (open model) or started by the workers (closed model).
    pub scheduled: u64,
    /// Requests actually sent.
    pub sent: u64,
    /// Requests due but not sent: every connection allowed was busy (k6's dropped iterations).
    pub dropped: u64,
    /// Requests sent later than the tolerance after their intended time (the generator fell behind).
    pub late: u64,
    /// Complete responses that are successes (not 429, no function error, not 4xx/5xx).
    pub ok: u64,
    /// Failed requests by class.
    pub errors: ErrorCounts,
    /// Response body bytes received (all complete responses).
    pub bytes_received: u64,
}

impl Counts {
    /// Adds another source's counts (exact).
    pub fn merge(&mut self, o: &Self) {
        self.scheduled += o.scheduled;
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.late += o.late;
        self.ok += o.ok;
        self.errors.merge(&o.errors);
        self.bytes_received += o.bytes_received;
    }

    /// Requests that got an answer or failed (sent and finished).
    pub fn completed(&self) -> u64 {
        self.ok + self.errors.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let c = |s: u16, h| ErrorClass::of_response(StatusCode::from_u16(s).unwrap(), h);
        assert_eq!(c(200, false), None);
        assert_eq!(c(204, false), None);
        assert_eq!(c(200, true), Some(ErrorClass::FunctionError));
        assert_eq!(c(502, false), Some(ErrorClass::FunctionError));
        assert_eq!(c(429, true), Some(ErrorClass::Throttled));
        assert_eq!(c(403, false), Some(ErrorClass::OtherStatus));
        let mut e = ErrorCounts::default();
        for class in ErrorClass::ALL {
            e.add(class);
            e.add(class);
        }
        assert_eq!(e.total(), 10);
        assert!(ErrorClass::ALL.iter().all(|&c| e.get(c) == 2));
    }
}
