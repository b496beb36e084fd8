//! [`LambdaClient`]: a small hyper client for the Lambda Invoke API and the control calls the harness
//! makes (get/update function configuration, put/get/delete function concurrency), for the local platform
//! and other unsigned endpoints on loopback; it times each call at the client and parses the REPORT line
//! of the log tail ([`ReportLine`], text or JSON log format, with Init and Restore Duration).

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde::Serialize;
use serde_json::{json, Value};

/// An error of a Lambda API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be sent or the response not read.
    #[error("{method} {url}: {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// The URL called.
        url: String,
        /// What failed.
        message: String,
    },
    /// The API answered with an error.
    #[error("{method} {url}: {status} {kind}: {message}")]
    Api {
        /// HTTP method.
        method: String,
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// `x-amzn-ErrorType` (`ResourceNotFoundException`).
        kind: String,
        /// The error message.
        message: String,
    },
}

/// The figures of a REPORT log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportLine {
    /// Request id.
    pub request_id: String,
    /// Duration in ms.
    pub duration_ms: f64,
    /// Billed Duration in ms.
    pub billed_duration_ms: f64,
    /// Memory Size in MB.
    pub memory_size_mb: u64,
    /// Max Memory Used in MB.
    pub max_memory_used_mb: u64,
    /// Init Duration in ms (cold starts only).
    pub init_duration_ms: Option<f64>,
    /// Restore Duration in ms (SnapStart restores).
    pub restore_duration_ms: Option<f64>,
    /// Billed Restore Duration in ms (SnapStart restores).
    pub billed_restore_duration_ms: Option<f64>,
    /// Status (`timeout`, `error`), when not a success.
    pub status: Option<String>,
    /// Error Type, when the line names one.
    pub error_type: Option<String>,
}

impl ReportLine {
    /// Parses one REPORT record: the text line (`REPORT RequestId: ...\tDuration: 1.00 ms\t...`) or the
    /// JSON log format's `{"type":"platform.report","record":{...}}`.
    pub fn parse(line: &str) -> Option<ReportLine> {
        let line = line.trim();
        if line.starts_with('{') {
            return Self::parse_json(&serde_json::from_str(line).ok()?);
        }
        let body = line.strip_prefix("REPORT ")?;
        let mut r = ReportLine {
            request_id: String::new(),
            duration_ms: f64::NAN,
            billed_duration_ms: f64::NAN,
            memory_size_mb: 0,
            max_memory_used_mb: 0,
            init_duration_ms: None,
            restore_duration_ms: None,
            billed_restore_duration_ms: None,
            status: None,
            error_type: None,
        };
        let (mut seen_duration, mut seen_memory) = (false, false);
        for field in body.split('\t').map(str::trim).filter(|f| !f.is_empty()) {
            let Some((k, v)) = field.split_once(": ") else {
                continue;
            };
            let num = || v.split_whitespace().next().and_then(|n| n.parse::<f64>().ok());
            match k {
                "RequestId" => r.request_id = v.to_string(),
                "Duration" => {
                    r.duration_ms = num()?;
                    seen_duration = true;
                }
                "Billed Duration" => r.billed_duration_ms = num()?,
                "Memory Size" => {
                    r.memory_size_mb = num()? as u64;
                    seen_memory = true;
                }
                "Max Memory Used" => r.max_memory_used_mb = num()? as u64,
                "Init Duration" => r.init_duration_ms = num(),
                "Restore Duration" => r.restore_duration_ms = num(),
                "Billed Restore Duration" => r.billed_restore_duration_ms = num(),
                "Status" => r.status = Some(v.to_string()),
                "Error Type" => r.error_type = Some(v.to_string()),
                _ => {}
            }
        }
        (seen_duration && seen_memory && !r.request_id.is_empty()).then_some(r)
    }

    fn parse_json(v: &Value) -> Option<ReportLine> {
        if v.get("type")?.as_str()? != "platform.report" {
            return None;
        }
        let rec = v.get("record")?;
        let m = rec.get("metrics")?;
        let f = |k: &str| m.get(k).and_then(Value::as_f64);
        let status = rec.get("status").and_then(Value::as_str).filter(|s| *s != "success").map(str::to_string);
        Some(ReportLine {
            request_id: rec.get("requestId")?.as_str()?.to_string(),
            duration_ms: f("durationMs")?,
            billed_duration_ms: f("billedDurationMs").unwrap_or(f64::NAN),
            memory_size_mb: f("memorySizeMB")? as u64,
            max_memory_used_mb: f("maxMemoryUsedMB").unwrap_or(0.0) as u64,
            init_duration_ms: f("initDurationMs"),
            restore_duration_ms: f("restoreDurationMs"),
            billed_restore_duration_ms: f("billedRestoreDurationMs"),
            status,
            error_type: rec.get("errorType").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The last REPORT record in a log (text lines or JSON lines).
    pub fn find_in(log: &str) -> Option<ReportLine> {
        log.lines().rev().find_map(ReportLine::parse)
    }
}

/// What an Invoke call returned.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    /// HTTP status (200 also for function errors; 429, 404, 400 ... for API errors).
    pub status: u16,
    /// Client time from sending the request to the last byte of the response.
    pub latency: Duration,
    /// `X-Amz-Function-Error` (`Unhandled`, `Handled`).
    pub function_error: Option<String>,
    /// `x-amzn-ErrorType` of an API error.
    pub error_kind: Option<String>,
    /// Decoded `X-Amz-Log-Result` (asked with `tail`).
    pub log_tail: Option<String>,
    /// The REPORT line of the tail.
    pub report: Option<ReportLine>,
    /// Raw response payload.
    pub payload: Bytes,
    /// Request id the platform gave.
    pub request_id: Option<String>,
}

impl InvokeOutput {
    /// The payload as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// A Lambda API client for an unsigned endpoint (the local platform).
#[derive(Clone, Debug)]
pub struct LambdaClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    access_key: String,
}

impl LambdaClient {
    /// A client for `base` (`http://127.0.0.1:PORT`); `access_key` is sent as the SigV4 credential id the
    /// platform's audit log records.
    pub fn new(base: impl Into<String>, access_key: impl Into<String>) -> LambdaClient {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(http);
        LambdaClient { base: base.into().trim_end_matches('/').to_string(), client, access_key: access_key.into() }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, hyper::HeaderMap, Bytes, Duration), Error> {
        let url = format!("{}{path}", self.base);
        let err = |m: String| Error::Transport { method: method.to_string(), url: url.clone(), message: m };
        let mut b = Request::builder().method(method.clone()).uri(&url).header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={}/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0", self.access_key),
        );
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body)).map_err(|e| err(e.to_string()))?;
        let start = Instant::now();
        let resp =
            self.client.request(req).await.map_err(|e| err(format!("{e} ({:?})", std::error::Error::source(&e))))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| err(e.to_string()))?.to_bytes();
        Ok((status, parts.headers, bytes, start.elapsed()))
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let (status, headers, body, _) =
            self.call(method.clone(), path, &[("content-type", "application/json")], bytes).await?;
        if status >= 300 {
            return Err(api_error(&method, &url, status, &headers, &body));
        }
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Invokes `function` synchronously; with `tail`, asks for the log tail and parses its REPORT line.
    pub async fn invoke(&self, function: &str, payload: &Value, tail: bool) -> Result<InvokeOutput, Error> {
        self.invoke_raw(function, Bytes::from(payload.to_string()), tail).await
    }

    /// Invokes with a raw payload (also one that is not JSON, to see the platform reject it).
    pub async fn invoke_raw(&self, function: &str, payload: Bytes, tail: bool) -> Result<InvokeOutput, Error> {
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let mut headers = vec![("x-amz-invocation-type", "RequestResponse"), ("content-type", "application/json")];
        if tail {
            headers.push(("x-amz-log-type", "Tail"));
        }
        let (status, h, payload, latency) = self.call(Method::POST, &path, &headers, payload).await?;
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let log_tail = get("x-amz-log-result")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(InvokeOutput {
            status,
            latency,
            function_error: get("x-amz-function-error"),
            error_kind: get("x-amzn-errortype").map(|k| k.split(':').next().unwrap_or(&k).to_string()),
            report: log_tail.as_deref().and_then(ReportLine::find_in),
            log_tail,
            payload,
            request_id: get("x-amzn-requestid"),
        })
    }

    /// GetFunctionConfiguration.
    pub async fn get_configuration(&self, function: &str) -> Result<Value, Error> {
        self.control(Method::GET, &format!("/2015-03-31/functions/{function}/configuration"), None).await
    }

    /// UpdateFunctionConfiguration with the given fields (`{"MemorySize": 256}`).
    pub async fn update_configuration(&self, function: &str, fields: &Value) -> Result<Value, Error> {
        self.control(Method::PUT, &format!("/2015-03-31/functions/{function}/configuration"), Some(fields.clone()))
            .await
    }

    /// PutFunctionConcurrency.
    pub async fn put_concurrency(&self, function: &str, reserved: u32) -> Result<Value, Error> {
        let body = json!({ "ReservedConcurrentExecutions": reserved });
        self.control(Method::PUT, &format!("/2017-10-31/functions/{function}/concurrency"), Some(body)).await
    }

    /// GetFunctionConcurrency: the reserved concurrency, if any.
    pub async fn get_concurrency(&self, function: &str) -> Result<Option<u64>, Error> {
        let v = self.control(Method::GET, &format!("/2019-09-30/functions/{function}/concurrency"), None).await?;
        Ok(v.get("ReservedConcurrentExecutions").and_then(Value::as_u64))
    }

    /// DeleteFunctionConcurrency.
    pub async fn delete_concurrency(&self, function: &str) -> Result<(), Error> {
        self.control(Method::DELETE, &format!("/2017-10-31/functions/{function}/concurrency"), None).await.map(|_| ())
    }
}

fn api_error(method: &Method, url: &str, status: u16, headers: &hyper::HeaderMap, body: &[u8]) -> Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.split(':').next().unwrap_or(k).to_string())
        .or_else(|| v.get("__type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "Unknown".into());
    let message = ["message", "Message", "errorMessage"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_string);
    Error::Api { method: method.to_string(), url: url.to_string(), status, kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_report_with_init_duration() {
        let l = "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 120.33 ms\t";
        let r = ReportLine::parse(l).unwrap();
        assert_eq!(r.request_id, "3604209a-e9a3-11e6-939a-754dd98c7be3");
        assert_eq!(
            (r.duration_ms, r.billed_duration_ms, r.memory_size_mb, r.max_memory_used_mb),
            (12.34, 13.0, 128, 18)
        );
        assert_eq!(r.init_duration_ms, Some(120.33));
        assert_eq!(r.restore_duration_ms, None);
    }

    #[test]
    fn snapstart_restore_and_timeout_status() {
        let l = "REPORT RequestId: r1\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\tRestore Duration: 250.10 ms\tBilled Restore Duration: 120 ms\tStatus: timeout";
        let r = ReportLine::parse(l).unwrap();
        assert_eq!((r.restore_duration_ms, r.billed_restore_duration_ms), (Some(250.10), Some(120.0)));
        assert_eq!(r.status.as_deref(), Some("timeout"));
        assert_eq!(r.init_duration_ms, None);
    }

    #[test]
    fn json_log_format_platform_report() {
        let l = r#"{"time":"2024-01-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"r2","metrics":{"durationMs":1.5,"billedDurationMs":2,"memorySizeMB":128,"maxMemoryUsedMB":20,"initDurationMs":80.2},"status":"success"}}"#;
        let r = ReportLine::parse(l).unwrap();
        assert_eq!((r.request_id.as_str(), r.duration_ms, r.init_duration_ms, r.status), ("r2", 1.5, Some(80.2), None));
        assert!(ReportLine::parse(r#"{"type":"platform.start","record":{}}"#).is_none());
    }

    #[test]
    fn finds_report_in_a_tail_and_rejects_other_lines() {
        let tail = "START RequestId: r Version: $LATEST\nhello\nEND RequestId: r\nREPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 5 MB\t\n";
        assert_eq!(ReportLine::find_in(tail).unwrap().max_memory_used_mb, 5);
        assert!(ReportLine::parse("START RequestId: r").is_none());
        assert!(ReportLine::parse("REPORT RequestId: r\tDuration: x ms").is_none());
    }

    proptest::proptest! {
        #[test]
        fn report_lines_round_trip(d in 0.0f64..100000.0, mem in 128u64..10240, used in 0u64..10240, init in proptest::option::of(0.0f64..10000.0)) {
            let mut l = format!("REPORT RequestId: id\tDuration: {d:.2} ms\tBilled Duration: {} ms\tMemory Size: {mem} MB\tMax Memory Used: {used} MB\t", d.ceil());
            if let Some(i) = init { l.push_str(&format!("Init Duration: {i:.2} ms\t")); }
            let r = ReportLine::parse(&l).unwrap();
            proptest::prop_assert!((r.duration_ms - d).abs() < 0.006);
            proptest::prop_assert_eq!((r.memory_size_mb, r.max_memory_used_mb), (mem, used));
            proptest::prop_assert_eq!(r.init_duration_ms.is_some(), init.is_some());
        }
    }
}
