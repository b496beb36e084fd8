//! The platform's log lines for one invocation as AWS writes them (`START`, `END`, `REPORT` with Duration,
//! Billed Duration, Memory Size, Max Memory Used, Init Duration on cold starts, Status on timeouts), and the
//! AWS error documents it answers with when the runtime could not.

use std::time::Duration;

use serde_json::json;

/// Figures of one invocation's REPORT line.
#[derive(Debug, Clone)]
pub(crate) struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_mb: u32,
    pub max_memory_used_bytes: Option<u64>,
    pub init: Option<Duration>,
    pub status: Option<&'a str>,
    pub error_type: Option<&'a str>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Report<'_> {
    /// `REPORT RequestId: ...\tDuration: ... ms\t...`, tab separated with a trailing tab, as AWS writes it.
    pub fn line(&self) -> String {
        let billed = ms(self.duration).ceil().max(1.0) as u64;
        let mut s = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\t",
            self.request_id,
            ms(self.duration),
            self.memory_mb,
        );
        // A peak that could not be read is left out, never written as 0 MB.
        if let Some(b) = self.max_memory_used_bytes {
            s.push_str(&format!("Max Memory Used: {} MB\t", b.div_ceil(1024 * 1024)));
        }
        if let Some(init) = self.init {
            s.push_str(&format!("Init Duration: {:.2} ms\t", ms(init)));
        }
        if let Some(status) = self.status {
            s.push_str(&format!("Status: {status}\t"));
        }
        if let Some(t) = self.error_type {
            s.push_str(&format!("Error Type: {t}\t"));
        }
        s
    }

    /// The log tail: START, the function's own lines, END, REPORT.
    pub fn tail(&self, function_lines: &[String]) -> String {
        let mut s = format!("START RequestId: {} Version: $LATEST\n", self.request_id);
        for l in function_lines {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&format!("END RequestId: {}\n{}\n", self.request_id, self.line()));
        s
    }
}

/// The payload AWS answers when the runtime exited instead of answering.
pub(crate) fn exit_error(request_id: &str, code: Option<i64>) -> String {
    let why = code.map_or("signal: killed".to_string(), |c| format!("exit status {c}"));
    json!({
        "errorType": "Runtime.ExitError",
        "errorMessage": format!("RequestId: {request_id} Error: Runtime exited with error: {why}"),
    })
    .to_string()
}

/// The payload AWS answers when an invocation ran past the function's timeout.
pub(crate) fn timeout_error(request_id: &str, timeout_s: f64) -> String {
    json!({
        "errorType": "Sandbox.Timedout",
        "errorMessage": format!("RequestId: {request_id} Error: Task timed out after {timeout_s:.2} seconds"),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_has_aws_fields_and_rounding() {
        let r = Report {
            request_id: "r-1",
            duration: Duration::from_micros(1_234_560),
            memory_mb: 128,
            max_memory_used_bytes: Some(18 * 1024 * 1024 + 1),
            init: Some(Duration::from_micros(5_500)),
            status: None,
            error_type: None,
        };
        assert_eq!(
            r.line(),
            "REPORT RequestId: r-1\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\tMemory Size: 128 MB\tMax Memory Used: 19 MB\tInit Duration: 5.50 ms\t"
        );
        let tail = r.tail(&["hello".into()]);
        assert!(tail.starts_with("START RequestId: r-1 Version: $LATEST\nhello\nEND RequestId: r-1\nREPORT"), "{tail}");
    }

    #[test]
    fn timeout_status_is_reported() {
        let r = Report {
            request_id: "r",
            duration: Duration::from_secs(1),
            memory_mb: 128,
            max_memory_used_bytes: None,
            init: None,
            status: Some("timeout"),
            error_type: None,
        };
        assert!(r.line().ends_with("Status: timeout\t"));
        assert!(timeout_error("r", 1.0).contains("Task timed out after 1.00 seconds"));
    }
}
