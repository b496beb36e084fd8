//! The Lambda **Invoke API** and control calls on loopback, in the shapes `aws-sdk-lambda` sends and
//! parses: `POST /2015-03-31/functions/{name}/invocations` (RequestResponse, Event, DryRun; `X-Amz-Log-Type:
//! Tail`), `GET|PUT /2015-03-31/functions/{name}/configuration`, `PUT|DELETE /2017-10-31/functions/{name}/concurrency`,
//! `GET /2019-09-30/functions/{name}/concurrency`, `PUT|GET|DELETE
//! /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=...`, `GET /2015-03-31/functions/`, and `/metrics` (Prometheus
//! text, bearer token). Errors carry `x-amzn-ErrorType` and AWS's JSON body.

use std::{convert::Infallible, future::Future, sync::Arc};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use super::pool::{ApiError, Pool};

/// Largest synchronous invocation payload AWS accepts.
pub(crate) const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

pub(crate) type Resp = Response<Full<Bytes>>;

/// Serves HTTP/1.1 on `listener` with `handler` until the task is aborted.
pub(crate) fn serve<H, F>(listener: TcpListener, handler: H) -> tokio::task::JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let h = handler.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let h = h.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
            while conns.try_join_next().is_some() {}
        }
    })
}

pub(crate) fn json_response(status: u16, body: &Value) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

pub(crate) fn error_response(e: &ApiError, request_id: &str) -> Resp {
    let mut r = json_response(e.status, &e.body());
    let h = r.headers_mut();
    if let Ok(v) = e.kind.parse() {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = request_id.parse() {
        h.insert("x-amzn-requestid", v);
    }
    r
}

/// The access key id of a SigV4 `Authorization` header, for the audit log.
fn access_key(req: &Request<Incoming>) -> String {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .map_or_else(|| "anonymous".to_string(), str::to_string)
}

/// Shared state of the Invoke API server.
pub(crate) struct InvokeApi {
    pub pool: Arc<Pool>,
    pub metrics_token: String,
}

impl InvokeApi {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let rid = super::platform::random_uuid();
        match self.route(req, &rid).await {
            Ok(r) => r,
            Err(e) => error_response(&e, &rid),
        }
    }

    async fn route(&self, req: Request<Incoming>, rid: &str) -> Result<Resp, ApiError> {
        let path = req.uri().path().to_string();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = req.method().clone();
        let key = access_key(&req);
        let not_found = || ApiError::new(404, "UnknownOperationException", format!("no operation at {method} {path}"));
        match (method.clone(), parts.as_slice()) {
            (Method::GET, ["metrics"]) => Ok(self.metrics(&req)),
            (Method::POST, ["2015-03-31", "functions", name, "invocations"]) => {
                let name = decode_name(name);
                let kind = header(&req, "x-amz-invocation-type").unwrap_or_else(|| "RequestResponse".into());
                let tail = header(&req, "x-amz-log-type").is_some_and(|t| t.eq_ignore_ascii_case("tail"));
                let body = read_body(req).await?;
                if !body.is_empty() {
                    if let Err(e) = serde_json::from_slice::<Value>(&body) {
                        return Err(ApiError::new(
                            400,
                            "InvalidRequestContentException",
                            format!("Could not parse request body into json: {e}"),
                        ));
                    }
                }
                let payload = if body.is_empty() { Bytes::from_static(b"{}") } else { body };
                match kind.as_str() {
                    "DryRun" => {
                        self.pool.configuration(&name)?;
                        Ok(empty(204))
                    }
                    "Event" => {
                        self.pool.configuration(&name)?;
                        let pool = self.pool.clone();
                        tokio::spawn(async move {
                            let _ = pool.invoke(&name, payload).await;
                        });
                        Ok(empty(202))
                    }
                    "RequestResponse" => {
                        let r = self.pool.invoke_detached(&name, payload).await?;
                        let mut resp = Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .header("x-amzn-requestid", &r.request_id)
                            .header("x-amz-executed-version", "$LATEST");
                        if let Some(fe) = r.function_error {
                            resp = resp.header("x-amz-function-error", fe);
                        }
                        if tail {
                            resp = resp.header(
                                "x-amz-log-result",
                                base64::engine::general_purpose::STANDARD.encode(last_4k(&r.log_tail)),
                            );
                        }
                        Ok(resp.body(Full::new(r.payload)).unwrap_or_default())
                    }
                    other => Err(ApiError::new(
                        400,
                        "InvalidParameterValueException",
                        format!("unknown X-Amz-Invocation-Type `{other}`"),
                    )),
                }
            }
            (Method::GET, ["2015-03-31", "functions", name, "configuration"]) => {
                Ok(json_response(200, &self.pool.configuration(&decode_name(name))?))
            }
            (Method::PUT, ["2015-03-31", "functions", name, "configuration"]) => {
                let name = decode_name(name);
                let body = json_body(req).await?;
                Ok(json_response(200, &self.pool.update_configuration(&name, &body, &key)?))
            }
            (Method::PUT, [_, "functions", name, "concurrency"]) => {
                let name = decode_name(name);
                let body = json_body(req).await?;
                Ok(json_response(200, &self.pool.put_concurrency(&name, &body, &key)?))
            }
            (Method::GET, [_, "functions", name, "concurrency"]) => {
                Ok(json_response(200, &self.pool.get_concurrency(&decode_name(name))?))
            }
            (Method::DELETE, [_, "functions", name, "concurrency"]) => {
                self.pool.delete_concurrency(&decode_name(name), &key)?;
                Ok(empty(204))
            }
            (Method::PUT, [_, "functions", name, "provisioned-concurrency"]) => {
                let (name, q) = (decode_name(name), qualifier(&req)?);
                let body = json_body(req).await?;
                Ok(json_response(202, &self.pool.put_provisioned(&name, &q, &body, &key)?))
            }
            (Method::GET, [_, "functions", name, "provisioned-concurrency"]) => {
                Ok(json_response(200, &self.pool.get_provisioned(&decode_name(name), &qualifier(&req)?)?))
            }
            (Method::DELETE, [_, "functions", name, "provisioned-concurrency"]) => {
                self.pool.delete_provisioned(&decode_name(name), &qualifier(&req)?, &key)?;
                Ok(empty(204))
            }
            (Method::GET, ["2015-03-31", "functions"]) => Ok(json_response(200, &self.pool.list_functions())),
            _ => {
                let _ = rid;
                Err(not_found())
            }
        }
    }

    fn metrics(&self, req: &Request<Incoming>) -> Resp {
        let ok = header(req, "authorization").is_some_and(|a| a == format!("Bearer {}", self.metrics_token));
        if !ok {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Bearer realm=\"metrics\"")
                .body(Full::new(Bytes::from_static(b"unauthorized: /metrics needs `Authorization: Bearer <token>`\n")))
                .unwrap_or_default();
        }
        let text = self.pool.ctx.metrics.render(&self.pool.env_gauges());
        Response::builder()
            .status(200)
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(text)))
            .unwrap_or_default()
    }
}

fn empty(status: u16) -> Resp {
    Response::builder().status(status).body(Full::new(Bytes::new())).unwrap_or_default()
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A function name from the path: a plain name, or the name inside a percent-encoded ARN.
fn decode_name(raw: &str) -> String {
    let decoded = raw.replace("%3A", ":").replace("%3a", ":");
    decoded.rsplit_once(":function:").map_or(decoded.clone(), |(_, n)| n.split(':').next().unwrap_or(n).to_string())
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(ApiError::new(
            413,
            "RequestTooLargeException",
            format!("Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"),
        )),
    }
}

async fn json_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let b = read_body(req).await?;
    if b.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&b).map_err(|e| {
        ApiError::new(400, "InvalidRequestContentException", format!("Could not parse request body into json: {e}"))
    })
}

/// AWS returns the last 4 KB of the log.
fn last_4k(s: &str) -> &str {
    if s.len() <= 4096 {
        return s;
    }
    let mut start = s.len() - 4096;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The `Qualifier` query parameter (an alias or version), which the provisioned concurrency operations need.
fn qualifier(req: &Request<Incoming>) -> Result<String, ApiError> {
    req.uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("Qualifier="))
        .filter(|q| !q.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(400, "InvalidParameterValueException", "the Qualifier query parameter is required")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_resolve_to_the_function_name() {
        assert_eq!(decode_name("fixture-rust"), "fixture-rust");
        assert_eq!(decode_name("arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af1"), "f1");
        assert_eq!(decode_name("arn:aws:lambda:us-east-1:1:function:f1:$LATEST"), "f1");
    }

    #[test]
    fn log_tail_keeps_the_last_4k() {
        let s = format!("{}REPORT", "x".repeat(5000));
        assert_eq!(last_4k(&s).len(), 4096);
        assert!(last_4k(&s).ends_with("REPORT"));
    }
}
