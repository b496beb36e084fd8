//! [`RuntimeApi`]: the Lambda Runtime API one execution environment talks to (`GET invocation/next`,
//! `POST invocation/{id}/response`, `POST invocation/{id}/error`, `POST init/error`), on its own loopback
//! port, so every request is known to come from that environment and init and invoke times are exact.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::Error;

const PREFIX: &str = "/2018-06-01/runtime";

/// One invocation handed to the environment.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub reply: oneshot::Sender<Outcome>,
}

/// What the runtime answered for an invocation.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `POST .../response`: the payload.
    Response { body: Bytes, delivered: Instant, at: Instant },
    /// `POST .../error`: the error document and its `Lambda-Runtime-Function-Error-Type`.
    Error { error_type: Option<String>, body: Bytes, delivered: Instant, at: Instant },
}

/// Lifecycle events of the environment.
#[derive(Debug)]
pub(crate) enum Signal {
    /// The runtime asked for its first invocation: init is done.
    Ready(Instant),
    /// The runtime reported an init error.
    InitError { error_type: Option<String>, body: Bytes },
    /// The process or container stopped (exit code when known).
    Exited(Option<i64>),
}

struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    current: Mutex<Option<(String, oneshot::Sender<Outcome>, Instant)>>,
    signals: mpsc::UnboundedSender<Signal>,
    ready_sent: AtomicBool,
}

/// A running Runtime API server for one environment.
pub(crate) struct RuntimeApi {
    pub addr: SocketAddr,
    pub invocations: mpsc::Sender<Invocation>,
    pub signals: tokio::sync::Mutex<mpsc::UnboundedReceiver<Signal>>,
    pub signal_tx: mpsc::UnboundedSender<Signal>,
    task: JoinHandle<()>,
}

impl RuntimeApi {
    /// Binds a loopback port and serves the Runtime API on it.
    pub async fn start() -> Result<RuntimeApi, Error> {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.map_err(Error::io("bind 127.0.0.1:0 for a Runtime API"))?;
        let addr = listener.local_addr().map_err(Error::io("Runtime API address"))?;
        let (inv_tx, inv_rx) = mpsc::channel(1);
        let (sig_tx, sig_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(inv_rx),
            current: Mutex::new(None),
            signals: sig_tx.clone(),
            ready_sent: AtomicBool::new(false),
        });
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), req));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(RuntimeApi { addr, invocations: inv_tx, signals: tokio::sync::Mutex::new(sig_rx), signal_tx: sig_tx, task })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            json!({"errorMessage": format!("unknown path {path}"), "errorType": "InvalidPath"}),
        ));
    };
    let method = req.method().clone();
    let error_type =
        req.headers().get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let resp = match (method, parts.as_slice()) {
        (Method::GET, ["invocation", "next"]) => return Ok(next(&shared).await),
        (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let at = Instant::now();
            let mut cur = shared.current.lock().unwrap_or_else(|p| p.into_inner());
            match cur.take() {
                Some((rid, tx, delivered)) if rid == *id => {
                    let outcome = if *kind == "response" {
                        Outcome::Response { body, delivered, at }
                    } else {
                        Outcome::Error { error_type, body, delivered, at }
                    };
                    let _ = tx.send(outcome);
                    reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
                }
                other => {
                    *cur = other;
                    reply(
                        StatusCode::BAD_REQUEST,
                        json!({"errorMessage": format!("Invalid request ID: {id}"), "errorType": "InvalidRequestID"}),
                    )
                }
            }
        }
        (Method::POST, ["init", "error"]) => {
            let _ = shared.signals.send(Signal::InitError { error_type, body });
            reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"errorMessage": format!("unknown path {path}"), "errorType": "InvalidPath"}),
        ),
    };
    Ok(resp)
}

async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    if !shared.ready_sent.swap(true, Ordering::SeqCst) {
        let _ = shared.signals.send(Signal::Ready(Instant::now()));
    }
    let inv = {
        let mut rx = shared.next.lock().await;
        rx.recv().await
    };
    let Some(inv) = inv else {
        return reply(StatusCode::GONE, json!({"errorMessage": "environment retired", "errorType": "Gone"}));
    };
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &inv.request_id)
        .header("lambda-runtime-deadline-ms", inv.deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &inv.function_arn)
        .header(
            "lambda-runtime-trace-id",
            format!("Root=1-00000000-{};Sampled=0", &inv.request_id.replace('-', "")[..24]),
        )
        .body(Full::new(inv.payload))
        .unwrap_or_default();
    *shared.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((inv.request_id, inv.reply, Instant::now()));
    resp
}
