//! [`HttpClient`]: the small HTTP(S) client the harness uses for metrics servers (Prometheus, Alertmanager,
//! Pushgateway, a platform's `/metrics`), with [`Auth`] and a time limit on every request.
//!
//! Plain `http://` needs nothing else; `https://` uses rustls with the machine's root certificates, built
//! on first use so that a machine without certificates still reaches loopback servers.

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

use super::Error;

/// Credentials for a server.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <redacted> }}"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
        }
    }
}

/// A server: base URL (no trailing slash) and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Credentials.
    pub auth: Auth,
}

impl Endpoint {
    /// An endpoint at `url` (a trailing `/` is dropped).
    pub fn new(url: &str, auth: Auth) -> Endpoint {
        Endpoint { url: url.trim_end_matches('/').to_string(), auth }
    }

    /// `url` joined with `path` (which starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Plain = Client<HttpConnector, Full<Bytes>>;
type Tls = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP(S) client with a per-request time limit. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    plain: Plain,
    tls: Arc<OnceLock<Result<Tls, String>>>,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new(Duration::from_secs(10))
    }
}

impl HttpClient {
    /// A client whose requests each give up after `timeout`.
    pub fn new(timeout: Duration) -> HttpClient {
        let plain = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        HttpClient { plain, tls: Arc::new(OnceLock::new()), timeout }
    }

    fn tls(&self) -> Result<&Tls, String> {
        self.tls
            .get_or_init(|| {
                let b = HttpsConnectorBuilder::new().with_native_roots().map_err(|e| {
                    format!(
                        "no TLS root certificates on this machine ({e}); install the Debian package ca-certificates"
                    )
                })?;
                Ok(Client::builder(TokioExecutor::new()).build(b.https_or_http().enable_http1().build()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// `GET url`.
    pub async fn get(&self, url: &str, auth: &Auth) -> Result<Response, Error> {
        self.send(Method::GET, url, auth, None, Bytes::new(), "").await
    }

    /// Sends a request; `query` only names the request in errors (the PromQL, or empty).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        auth: &Auth,
        content_type: Option<&str>,
        body: Bytes,
        query: &str,
    ) -> Result<Response, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| Error::Url { url: url.into(), detail: e.to_string() })?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => {
                return Err(Error::Url { url: url.into(), detail: format!("scheme {other:?}: expected http or https") })
            }
        };
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(h) = auth.header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body)).map_err(|e| Error::Url { url: url.into(), detail: e.to_string() })?;
        let unreachable = |detail: String| Error::Unreachable { url: url.into(), query: query.into(), detail };
        let call = async {
            let resp =
                if https { self.tls().map_err(unreachable)?.request(req).await } else { self.plain.request(req).await }
                    .map_err(|e| unreachable(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| unreachable(error_chain(&e)))?.to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(self.timeout, call).await.map_err(|_| Error::Timeout {
            url: url.into(),
            query: query.into(),
            after: self.timeout,
        })?
    }

    /// Sends a request and fails unless the status is 2xx.
    pub async fn send_ok(
        &self,
        method: Method,
        url: &str,
        auth: &Auth,
        content_type: Option<&str>,
        body: Bytes,
        query: &str,
    ) -> Result<Response, Error> {
        let r = self.send(method, url, auth, content_type, body, query).await?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(Error::Status { url: url.into(), query: query.into(), status: r.status, body: snippet(&r.text()) })
        }
    }
}

/// The error and its causes on one line (hyper's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// The first 300 characters of a body, for error messages.
pub fn snippet(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug() {
        let a = Auth::Basic { user: "u".into(), password: "hunter2".into() };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", Auth::Bearer("tok123".into())).contains("tok123"));
    }

    #[test]
    fn basic_auth_header_is_base64_of_user_colon_password() {
        let a = Auth::Basic { user: "Aladdin".into(), password: "open sesame".into() };
        assert_eq!(a.header().unwrap(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn form_encoding_escapes_promql() {
        assert_eq!(
            form_encode(&[("query", "sum(rate(x{a=\"b c\"}[1m])) > 0.5")]),
            "query=sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%29%20%3E%200.5"
        );
    }

    #[tokio::test]
    async fn unreachable_and_bad_urls_name_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/api/v1/query");
        let c = HttpClient::new(Duration::from_secs(5));
        let e = c.send(Method::POST, &url, &Auth::None, None, Bytes::new(), "up").await.unwrap_err();
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&url) && msg.contains("`up`"), "{msg}");
        let e = c.get("ftp://x/y", &Auth::None).await.unwrap_err();
        assert!(matches!(e, Error::Url { .. }) && e.to_string().contains("ftp://x/y"), "{e}");
    }
}
