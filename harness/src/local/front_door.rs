//! [`FrontDoor`]: the API Gateway role in front of the functions. `GET|POST /{function}` (plain HTTP on
//! one port, HTTPS on another) becomes an invocation with an API Gateway proxy event; a missing or wrong
//! `x-api-key` gets 403, requests beyond the stage's token bucket (rate and burst) get 429, function errors
//! 502, as API Gateway answers them.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::{
    invoke_api::{json_response, Resp, MAX_PAYLOAD},
    pool::Pool,
};

/// Token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> TokenBucket {
        TokenBucket { rate, burst: burst as f64, state: Mutex::new((burst as f64, Instant::now())) }
    }

    /// Takes one token if there is one.
    pub fn take(&self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *g;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if refilled >= 1.0 {
            *g = (refilled - 1.0, now);
            true
        } else {
            *g = (refilled, now);
            false
        }
    }
}

/// The front door's shared state.
pub(crate) struct FrontDoor {
    pub pool: Arc<Pool>,
    pub api_key: String,
    pub bucket: TokenBucket,
}

impl FrontDoor {
    fn count(&self, status: u16) {
        self.pool
            .ctx
            .metrics
            .inc("api_gateway_requests_total", vec![("stage", "local".into()), ("status", status.to_string())]);
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, scheme: &'static str) -> Resp {
        let r = self.route(req, scheme).await;
        self.count(r.status().as_u16());
        r
    }

    async fn route(&self, req: Request<Incoming>, scheme: &'static str) -> Resp {
        let key_ok = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()).is_some_and(|k| k == self.api_key);
        if !key_ok {
            return json_response(403, &json!({"message": "Forbidden"}));
        }
        if !self.bucket.take() {
            return json_response(429, &json!({"message": "Too Many Requests"}));
        }
        let path = req.uri().path().to_string();
        let function = path.trim_matches('/').split('/').next().unwrap_or_default().to_string();
        let method = req.method().clone();
        if function.is_empty() || !(method == hyper::Method::GET || method == hyper::Method::POST) {
            return json_response(404, &json!({"message": "Not Found"}));
        }
        let query: BTreeMap<String, String> = req
            .uri()
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let headers: BTreeMap<String, String> = req
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str() != "x-api-key")
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return json_response(413, &json!({"message": "Request Too Long"})),
        };
        let event = json!({
            "resource": "/{function}",
            "path": path,
            "httpMethod": method.as_str(),
            "headers": headers,
            "queryStringParameters": if query.is_empty() { Value::Null } else { json!(query) },
            "body": if body.is_empty() { Value::Null } else { Value::String(String::from_utf8_lossy(&body).into_owned()) },
            "isBase64Encoded": false,
            "requestContext": { "stage": "local", "protocol": scheme, "requestId": super::platform::random_uuid() },
        });
        match self.pool.invoke_detached(&function, Bytes::from(event.to_string())).await {
            Err(e) if e.status == 404 => json_response(404, &json!({"message": "Not Found"})),
            Err(e) if e.status == 429 => json_response(429, &json!({"message": "Too Many Requests"})),
            Err(e) => json_response(502, &json!({"message": "Internal server error", "detail": e.message})),
            Ok(r) if r.function_error.is_some() => json_response(502, &json!({"message": "Internal server error"})),
            Ok(r) => proxy_response(&r.payload),
        }
    }
}

/// A proxy integration's `{statusCode, headers, body}` as the HTTP response; any other payload as JSON.
fn proxy_response(payload: &Bytes) -> Resp {
    let v: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let Some(status) = v.get("statusCode").and_then(Value::as_u64) else {
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(payload.clone()))
            .unwrap_or_default();
    };
    let mut b = Response::builder().status(status as u16);
    if let Some(h) = v.get("headers").and_then(Value::as_object) {
        for (k, val) in h {
            if let Some(s) = val.as_str() {
                b = b.header(k.as_str(), s);
            }
        }
    }
    let body = match v.get("body") {
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(Value::Null) | None => Bytes::new(),
        Some(other) => Bytes::from(other.to_string()),
    };
    b.body(Full::new(body)).unwrap_or_else(|_| json_response(502, &json!({"message": "Internal server error"})))
}

/// Serves the front door over TLS on `listener`.
pub(crate) fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    door: Arc<FrontDoor>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let door = door.clone();
            conns.spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let door = door.clone();
                    async move { Ok::<_, Infallible>(door.handle(req, "HTTPS/1.1").await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
            while conns.try_join_next().is_some() {}
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let b = TokenBucket::new(10.0, 3);
        let t0 = Instant::now();
        assert_eq!((0..5).filter(|_| b.take_at(t0)).count(), 3);
        assert!(!b.take_at(t0 + Duration::from_millis(50)));
        assert!(b.take_at(t0 + Duration::from_millis(160)));
    }

    #[test]
    fn proxy_payloads_map_to_status_headers_and_body() {
        let r = proxy_response(&Bytes::from(r#"{"statusCode":201,"headers":{"x-a":"1"},"body":"hi"}"#));
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        let r = proxy_response(&Bytes::from(r#"{"ok":true}"#));
        assert_eq!(r.status(), 200);
    }
}
