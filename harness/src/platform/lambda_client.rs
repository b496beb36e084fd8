//! [`LambdaClient`]: a small hyper client for the Lambda Invoke API and the control calls the harness
//! makes (get/update function configuration, put/get/delete function concurrency), for the local platform
//! and other unsigned endpoints on loopback; it times each call at the client and parses the REPORT line
//! of the log tail with the one REPORT parser ([`report_line`]).

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::{json, Value};

use super::report_line::{self, Report};

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
    pub report: Option<Report>,
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
            report: log_tail.as_deref().and_then(|t| report_line::last_report(t, "the log tail").ok()),
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
