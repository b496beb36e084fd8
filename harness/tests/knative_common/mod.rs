//! A mocked Kubernetes API server for the knative target's tests: a `tower_test` mock service under a real
//! kube-rs `Client`, driven by a scenario that asserts each request (method, path, query) in order and
//! answers with the recorded object shapes under `fixtures/knative/` — plain JSON, or a watch stream whose
//! events are released at their recorded times on the test's paused clock. Also [`FakeRoute`], a route
//! whose answers the scenario gives, so request timing is as deterministic as the watches.

#![allow(dead_code, reason = "each test binary uses a part of the helpers")]

use std::{
    collections::BTreeMap,
    convert::Infallible,
    path::PathBuf,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use harness::platform::{
    knative::{self, Cluster, Reply, Route},
    KnativeConfig,
};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use kube::client::Body as KubeBody;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower_test::mock::{self, Handle, SendResponse};

/// A response body: a whole buffer, or a channel of chunks (a watch stream).
pub enum MockBody {
    /// The whole body.
    Full(Option<Bytes>),
    /// Chunks until the sender is dropped.
    Chan(mpsc::UnboundedReceiver<Bytes>),
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Chan(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
}

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/knative")
}

/// A fixture object (`api/<name>.json`).
pub fn object(name: &str) -> Value {
    let p = fixtures().join("api").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// A fixture text file.
pub fn text(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

/// A list of `items` as the API server returns it.
pub fn list(kind: &str, api_version: &str, rv: &str, items: Vec<Value>) -> Value {
    serde_json::json!({ "apiVersion": api_version, "kind": kind, "metadata": { "resourceVersion": rv }, "items": items })
}

/// One timed watch event of a stream fixture.
pub struct Timed {
    /// Release time after the watch request.
    pub after: Duration,
    /// The wire event (`type` and `object`).
    pub event: Value,
}

/// A timed watch stream fixture (`watch/<name>.ndjson`).
pub fn stream(name: &str) -> Vec<Timed> {
    text(&format!("watch/{name}.ndjson"))
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let after = Duration::from_millis(v["after_ms"].as_u64().unwrap());
            v.as_object_mut().unwrap().remove("after_ms");
            Timed { after, event: v }
        })
        .collect()
}

/// The client side of the mock and its cluster (namespace `default`).
pub fn cluster() -> (Cluster, ApiServer) {
    cluster_with(KnativeConfig::default())
}

/// Same, with target settings.
pub fn cluster_with(config: KnativeConfig) -> (Cluster, ApiServer) {
    let (svc, handle) = mock::pair::<http::Request<KubeBody>, http::Response<MockBody>>();
    let client = kube::Client::new(svc, "default");
    (Cluster::with_client(client, "default", config).unwrap(), ApiServer { handle })
}

/// The server side: hands out requests in order.
pub struct ApiServer {
    handle: Handle<http::Request<KubeBody>, http::Response<MockBody>>,
}

/// One request awaiting its answer.
pub struct Exchange {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// Request body.
    pub body: Bytes,
    send: SendResponse<http::Response<MockBody>>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

impl ApiServer {
    /// The next request; asserts its method, path, and the given query parameters.
    pub async fn expect(&mut self, method: &str, path: &str, query: &[(&str, &str)]) -> Exchange {
        let (req, send) = tokio::time::timeout(Duration::from_secs(3600), self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let q: BTreeMap<String, String> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        let ex =
            Exchange { method: parts.method.to_string(), path: parts.uri.path().to_string(), query: q, body, send };
        assert_eq!((ex.method.as_str(), ex.path.as_str()), (method, path), "unexpected request (query {:?})", ex.query);
        for (k, v) in query {
            assert_eq!(
                ex.query.get(*k).map(String::as_str),
                Some(*v),
                "{method} {path}: query `{k}` in {:?}",
                ex.query
            );
        }
        ex
    }

    /// Answers a LIST then a WATCH of `path` (label or field selector `sel`): the list (see [`list`]), the
    /// watch from the list's resource version with `events` released at their times. Returns at once; the
    /// stream stays open until `hold` has passed, so the client's watch does not end early.
    pub async fn list_then_watch(
        &mut self,
        path: &str,
        sel: (&str, &str),
        listed: Value,
        events: Vec<Timed>,
        hold: Duration,
    ) {
        let rv =
            listed["metadata"]["resourceVersion"].as_str().expect("list fixture has a resourceVersion").to_string();
        self.expect("GET", path, &[sel]).await.json(200, &listed);
        let w = self.expect("GET", path, &[sel, ("watch", "true"), ("resourceVersion", rv.as_str())]).await;
        let tx = w.watch();
        let t0 = tokio::time::Instant::now();
        tokio::spawn(async move {
            for e in events {
                tokio::time::sleep_until(t0 + e.after).await;
                if tx.send(Bytes::from(format!("{}\n", e.event))).is_err() {
                    return;
                }
            }
            tokio::time::sleep_until(t0 + hold).await;
            drop(tx);
        });
    }
}

impl Exchange {
    /// Answers with JSON.
    pub fn json(self, status: u16, v: &Value) {
        let resp = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(MockBody::Full(Some(Bytes::from(v.to_string()))))
            .unwrap();
        self.send.send_response(resp);
    }

    /// Answers with plain text.
    pub fn text(self, body: &str) {
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(MockBody::Full(Some(Bytes::from(body.to_string()))))
            .unwrap();
        self.send.send_response(resp);
    }

    /// Answers 404 the way the API server does.
    pub fn not_found(self, resource: &str, name: &str) {
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{resource} \"{name}\" not found"), "reason": "NotFound", "details": {"name": name, "kind": resource}, "code": 404});
        self.json(404, &status);
    }

    /// Starts a watch stream; events are sent as chunks, dropping the sender ends it.
    pub fn watch(self) -> mpsc::UnboundedSender<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(MockBody::Chan(rx))
            .unwrap();
        self.send.send_response(resp);
        tx
    }

    /// The request body as JSON.
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A route whose requests the scenario answers.
#[derive(Clone)]
pub struct FakeRoute {
    tx: mpsc::UnboundedSender<(String, oneshot::Sender<Reply>)>,
}

/// The scenario's end of a [`FakeRoute`].
pub struct RouteServer {
    rx: mpsc::UnboundedReceiver<(String, oneshot::Sender<Reply>)>,
}

/// A fake route and its server end.
pub fn route() -> (FakeRoute, RouteServer) {
    let (tx, rx) = mpsc::unbounded_channel();
    (FakeRoute { tx }, RouteServer { rx })
}

impl Route for FakeRoute {
    async fn get(&self, path: &str) -> knative::Result<Reply> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((path.to_string(), tx))
            .map_err(|_| knative::Error::Route { url: "fake".into(), detail: "route server gone".into() })?;
        rx.await.map_err(|_| knative::Error::Route { url: "fake".into(), detail: "no answer".into() })
    }

    fn describe(&self) -> String {
        "http://fake-ingress (Host: fixture-rust.default.127.0.0.1.sslip.io)".into()
    }
}

impl RouteServer {
    /// The next request: its path and where to answer.
    pub async fn next(&mut self) -> (String, oneshot::Sender<Reply>) {
        self.rx.recv().await.expect("route client gone")
    }

    /// Answers every request after `delay` with 200 and `body`, until the clients are gone.
    pub fn serve(mut self, delay: Duration, body: &'static str) -> tokio::task::JoinHandle<u64> {
        tokio::spawn(async move {
            let mut n = 0;
            while let Some((_, tx)) = self.rx.recv().await {
                n += 1;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Reply { status: 200, body: Bytes::from_static(body.as_bytes()) });
                });
            }
            n
        })
    }
}

/// A JSON reply of the Knative fixture function.
pub fn reply(pod: &str, cold: bool, init_code_ms: f64) -> Reply {
    Reply {
        status: 200,
        body: Bytes::from(
            serde_json::json!({"env_id": pod, "cold": cold, "invocations": 1, "init_code_ms": init_code_ms})
                .to_string(),
        ),
    }
}
