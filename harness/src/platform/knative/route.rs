//! [`Route`]: how requests reach a function. [`HttpRoute`] sends plain HTTP either to the Service's own
//! `status.url`, or to a configured ingress address with the route's host in the `Host` header (Kourier on
//! kind listens on a node port mapped to the host; the hostname under `sslip.io` or `example.com` need not
//! resolve). Procedures are generic over [`Route`] so tests can stand in for the network deterministically.

use std::{future::Future, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{header::HOST, Request, Uri};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde::Deserialize;

use super::{
    error::{Error, Result},
    function::Function,
};

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Bytes,
}

/// What the harness's Knative fixture function reports about the environment that served a request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Served {
    /// The serving environment: the pod name (`HOSTNAME`) for the Knative fixture.
    pub env_id: String,
    /// Whether this was the environment's first request.
    #[serde(default)]
    pub cold: bool,
    /// Time the process's own init code took, in ms.
    #[serde(default)]
    pub init_code_ms: Option<f64>,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The fixture's account of the serving environment, when the body carries one.
    pub fn served(&self) -> Option<Served> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Something that sends GET requests to a function.
pub trait Route: Send + Sync + 'static {
    /// GETs `path` (with query) from the function.
    fn get(&self, path: &str) -> impl Future<Output = Result<Reply>> + Send;
    /// Where requests go, for messages.
    fn describe(&self) -> String;
}

/// Plain HTTP to the function's URL or through an ingress address.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    base: String,
    host: Option<String>,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl HttpRoute {
    /// A route to `base` (`http://host[:port]`), sending `host` as the `Host` header when given.
    pub fn new(base: &str, host: Option<String>, timeout: Duration) -> Result<HttpRoute> {
        let uri: Uri =
            base.parse().map_err(|e| Error::Route { url: base.into(), detail: format!("not a URL: {e}") })?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(Error::Route {
                url: base.into(),
                detail: "only plain http://host[:port] routes are supported; for an https route give the cluster's plain-HTTP ingress address with --ingress".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(HttpRoute { base: base.trim_end_matches('/').to_string(), host, timeout, client })
    }

    /// The route to `f`: through `ingress` with the Service URL's host as `Host`, else to the URL itself.
    pub fn for_function(f: &Function, ingress: Option<&str>, timeout: Duration) -> Result<HttpRoute> {
        let url = f.url().ok_or_else(|| {
            Error::Shape(format!("Knative Service {} has no status.url (is it ready?)", f.service_name()))
        })?;
        match ingress {
            Some(ingress) => {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| Error::Route { url: url.into(), detail: format!("status.url is not a URL: {e}") })?;
                let host = uri
                    .host()
                    .ok_or_else(|| Error::Route { url: url.into(), detail: "status.url has no host".into() })?;
                HttpRoute::new(ingress, Some(host.to_string()), timeout)
            }
            None => HttpRoute::new(url, None, timeout),
        }
    }
}

impl Route for HttpRoute {
    async fn get(&self, path: &str) -> Result<Reply> {
        let url = format!("{}{}", self.base, if path.starts_with('/') { path.to_string() } else { format!("/{path}") });
        let err = |detail: String| Error::Route { url: self.describe_url(&url), detail };
        let mut req = Request::get(&url);
        if let Some(h) = &self.host {
            req = req.header(HOST, h);
        }
        let req = req.body(Empty::new()).map_err(|e| err(e.to_string()))?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| err(format!("{e}: {}", source_chain(&e))))?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| err(format!("reading body: {e}")))?.to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| err(format!("no answer within {}s", self.timeout.as_secs_f64())))?
    }

    fn describe(&self) -> String {
        self.describe_url(&self.base)
    }
}

impl HttpRoute {
    fn describe_url(&self, url: &str) -> String {
        match &self.host {
            Some(h) => format!("{url} (Host: {h})"),
            None => url.to_string(),
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out.join(": ")
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use hyper::{body::Incoming, service::service_fn, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    async fn server() -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<Incoming>| async move {
                        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
                        let status = if host.starts_with("fixture.default.") { 200 } else { 404 };
                        let body =
                            format!(r#"{{"env_id":"e1","cold":true,"init_code_ms":1.5,"path":"{}"}}"#, req.uri());
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(http_body_util::Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        (format!("http://{addr}"), task)
    }

    #[tokio::test]
    async fn ingress_routes_carry_the_service_host() {
        let (base, task) = server().await;
        let through =
            HttpRoute::new(&base, Some("fixture.default.127.0.0.1.sslip.io".into()), Duration::from_secs(10)).unwrap();
        let r = through.get("/?work_ms=1").await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.served(), Some(Served { env_id: "e1".into(), cold: true, init_code_ms: Some(1.5) }));
        assert!(through.describe().contains("Host: fixture.default."));
        let direct = HttpRoute::new(&base, None, Duration::from_secs(10)).unwrap();
        assert_eq!(direct.get("x").await.unwrap().status, 404);
        task.abort();
    }

    #[tokio::test]
    async fn refused_and_unsupported_routes_name_the_url() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let r =
            HttpRoute::new(&format!("http://{addr}"), Some("h.example.com".into()), Duration::from_secs(10)).unwrap();
        let e = r.get("/").await.unwrap_err().to_string();
        assert!(e.contains(&addr.to_string()) && e.contains("Host: h.example.com"), "{e}");
        let e = HttpRoute::new("https://f.example.com", None, Duration::from_secs(1)).unwrap_err().to_string();
        assert!(e.contains("--ingress"), "{e}");
    }
}
