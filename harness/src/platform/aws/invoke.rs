//! [`Invocation`]: one synchronous Lambda Invoke with `LogType: Tail`: the client's own latency, the
//! platform's REPORT (Duration, Init Duration on a cold start, Restore Duration with SnapStart) decoded from
//! `X-Amz-Log-Result`, and what the function says about itself ([`FunctionReport`]: its environment id,
//! whether this was its first invocation, its init code time), so a cold start can be proven cold.
//!
//! Works against any Lambda-compatible Invoke API (AWS, LocalStack, the local platform) signed with SigV4;
//! never retried (see [`super::client`]); a 429 comes back as [`Error::InvokeThrottled`].

use std::time::{Duration, Instant};

use aws_sdk_lambda::{
    primitives::Blob,
    types::{InvocationType, LogType},
};

use super::{error::classify, AwsTarget, Error};
use crate::platform::{
    functions::SelfReport,
    report_line::{self, InitReport, Report},
};

/// One invocation's result.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Time from sending the request to having the whole response, measured by the harness.
    pub client_latency: Duration,
    /// HTTP status of the Invoke call (200 for a synchronous invoke, also when the function failed).
    pub status_code: i32,
    /// `Handled`/`Unhandled` when the function returned an error.
    pub function_error: Option<String>,
    /// Version that ran.
    pub executed_version: Option<String>,
    /// Response payload.
    pub payload: Vec<u8>,
    /// Decoded log tail (last 4 KB of the invocation's log).
    pub log_tail: String,
    /// The platform's REPORT, or why there is none.
    pub report: Result<Report, report_line::Error>,
    /// The platform's INIT_REPORT, when init failed or timed out.
    pub init_report: Option<InitReport>,
    /// The function's report about itself, when it gives one.
    pub function: Option<SelfReport>,
}

impl Invocation {
    /// True when the platform says this invocation started a new environment.
    pub fn platform_cold(&self) -> bool {
        self.report.as_ref().is_ok_and(Report::is_cold)
    }

    /// The payload as text (for messages).
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload).chars().take(500).collect()
    }
}

impl AwsTarget {
    /// Invokes the function synchronously with `payload`, `LogType: Tail`; `qualifier` is an alias or version
    /// (`None`: `$LATEST`, the version a forced cold start affects).
    pub async fn invoke(&self, payload: &[u8], qualifier: Option<&str>) -> Result<Invocation, Error> {
        let name = &self.settings.function_name;
        let start = Instant::now();
        let r = self
            .invoker
            .invoke()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(Blob::new(payload))
            .send()
            .await;
        let client_latency = start.elapsed();
        let out = match r {
            Ok(out) => out,
            Err(e) => {
                if let Some(se) = e.as_service_error().filter(|se| se.is_too_many_requests_exception()) {
                    use aws_sdk_lambda::error::ProvideErrorMetadata;
                    let code = se.code().unwrap_or("TooManyRequestsException").to_string();
                    let message = se.message().unwrap_or_default().to_string();
                    return Err(Error::InvokeThrottled {
                        function: name.clone(),
                        code,
                        message,
                        latency: client_latency,
                    });
                }
                return Err(classify(&self.ctx("Lambda", "Invoke", &format!("function {name}")), e));
            }
        };
        let log_tail = match out.log_result() {
            Some(b64) => {
                let bytes = aws_smithy_types::base64::decode(b64).map_err(|e| Error::Invoke {
                    function: name.clone(),
                    detail: format!("X-Amz-Log-Result is not base64: {e}"),
                })?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            None => String::new(),
        };
        let source = format!("the log tail (X-Amz-Log-Result) of an invocation of {name}");
        let report = if out.log_result().is_none() {
            Err(report_line::Error::NoReport {
                source_name: source,
                excerpt: "the response had no X-Amz-Log-Result header".into(),
            })
        } else {
            report_line::last_report(&log_tail, &source)
        };
        let payload = out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        Ok(Invocation {
            client_latency,
            status_code: out.status_code(),
            function_error: out.function_error().map(str::to_string),
            executed_version: out.executed_version().map(str::to_string),
            function: SelfReport::from_payload(&payload),
            init_report: report_line::last_init_report(&log_tail),
            report,
            log_tail,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_reports_are_read_from_direct_and_proxy_responses() {
        let direct = br#"{"env_id":"00ab","cold":true,"invocations":1,"init_code_ms":12.5,"pad":""}"#;
        let r = SelfReport::from_payload(direct).unwrap();
        assert_eq!((r.env_id.as_str(), r.cold, r.invocations, r.init_code_ms), ("00ab", true, 1, Some(12.5)));
        let body =
            serde_json::json!({"env_id": "ff", "cold": false, "invocations": 7, "init_code_ms": 3.0}).to_string();
        let proxy = serde_json::json!({"statusCode": 200, "body": body}).to_string();
        let r = SelfReport::from_payload(proxy.as_bytes()).unwrap();
        assert_eq!((r.cold, r.invocations), (false, 7));
        assert_eq!(SelfReport::from_payload(b"{\"hello\":1}"), None);
        assert_eq!(SelfReport::from_payload(b"not json"), None);
    }
}
