//! [`HttpClient`]: the small HTTP/1.1 client the security checks probe with, over plain TCP or TLS
//! (tokio-rustls, aws-lc-rs provider, trusting a given CA), either on one kept-alive [`Conn`] or on a new
//! connection per request. The checks need that control (the TLS overhead compares both), and they time
//! each request themselves.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{client::conn::http1, Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_rustls::TlsConnector;

use super::Error;

/// Deadline of one request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Absolute URL (`http://` or `https://`).
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

impl Req {
    /// A GET of `url`.
    pub fn get(url: &str) -> Req {
        Req { method: Method::GET, url: url.to_string(), headers: Vec::new(), body: Bytes::new() }
    }

    /// A POST of `body` to `url`.
    pub fn post(url: &str, body: impl Into<Bytes>) -> Req {
        Req { method: Method::POST, url: url.to_string(), headers: Vec::new(), body: body.into() }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Bytes,
    /// From sending the request (or opening the connection, for a new one) to the end of the body.
    pub elapsed: Duration,
}

/// A parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path_and_query: String,
}

fn parse(url: &str) -> Result<Target, Error> {
    let bad = |detail: &str| Error::Url { url: url.to_string(), detail: detail.to_string() };
    let uri: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad("scheme must be http or https")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?.trim_matches(['[', ']']).to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path_and_query = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
    Ok(Target { tls, host, port, path_and_query })
}

/// Opens plain and TLS connections; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("tls", &self.tls.is_some()).finish()
    }
}

impl HttpClient {
    /// A client for plain HTTP and, when `ca_pem` is given, HTTPS to servers whose certificate chains to it.
    pub fn new(ca_pem: Option<&[u8]>) -> Result<HttpClient, Error> {
        let Some(pem) = ca_pem else { return Ok(HttpClient { tls: None }) };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::Tls(format!("CA certificate PEM: {e}")))?;
            roots.add(cert).map_err(|e| Error::Tls(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::Tls("the CA PEM holds no certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpClient { tls: Some(TlsConnector::from(Arc::new(config))) })
    }

    /// Opens a connection to the host of `url` (TCP, then TLS for `https`).
    pub async fn connect(&self, url: &str) -> Result<Conn, Error> {
        let target = parse(url)?;
        tokio::time::timeout(REQUEST_TIMEOUT, self.open(url, &target))
            .await
            .map_err(|_| unreachable(url, format!("no connection within {REQUEST_TIMEOUT:?}")))?
    }

    async fn open(&self, url: &str, t: &Target) -> Result<Conn, Error> {
        let tcp = TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|e| unreachable(url, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let authority = format!("{}:{}", t.host, t.port);
        if !t.tls {
            let (sender, conn) =
                http1::handshake(TokioIo::new(tcp)).await.map_err(|e| unreachable(url, e.to_string()))?;
            return Ok(Conn { sender, authority, tls: false, driver: tokio::spawn(async move { conn.await.is_ok() }) });
        }
        let connector = self.tls.as_ref().ok_or_else(|| Error::Tls(format!("{url}: https needs a CA certificate")))?;
        let name =
            ServerName::try_from(t.host.clone()).map_err(|e| Error::Url { url: url.into(), detail: e.to_string() })?;
        let tls = connector.connect(name, tcp).await.map_err(|e| unreachable(url, format!("TLS handshake: {e}")))?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls)).await.map_err(|e| unreachable(url, e.to_string()))?;
        Ok(Conn { sender, authority, tls: true, driver: tokio::spawn(async move { conn.await.is_ok() }) })
    }

    /// Sends `req` on a new connection (closed afterwards); `elapsed` includes connecting and the handshake.
    pub async fn send(&self, req: &Req) -> Result<Resp, Error> {
        let start = Instant::now();
        let mut conn = self.connect(&req.url).await?;
        let mut resp = conn.send(req).await?;
        resp.elapsed = start.elapsed();
        Ok(resp)
    }
}

fn unreachable(url: &str, detail: String) -> Error {
    Error::Unreachable { url: url.to_string(), detail }
}

/// One open HTTP/1.1 connection, reused for sequential requests (keep-alive).
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
    tls: bool,
    driver: JoinHandle<bool>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("authority", &self.authority).field("tls", &self.tls).finish()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Sends `req` on this connection; its URL must name the connection's host and scheme.
    pub async fn send(&mut self, req: &Req) -> Result<Resp, Error> {
        let t = parse(&req.url)?;
        if t.tls != self.tls || format!("{}:{}", t.host, t.port) != self.authority {
            return Err(Error::Url {
                url: req.url.clone(),
                detail: format!("not the connection's origin {}", self.authority),
            });
        }
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req, &t.path_and_query))
            .await
            .map_err(|_| unreachable(&req.url, format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }

    async fn exchange(&mut self, req: &Req, path: &str) -> Result<Resp, Error> {
        let url = &req.url;
        self.sender.ready().await.map_err(|e| unreachable(url, format!("connection closed: {e}")))?;
        let mut builder = Request::builder().method(req.method.clone()).uri(path);
        // A request may name another host than the one connected to (an emulator routing by Host).
        if !req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            builder = builder.header("host", &self.authority);
        }
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| Error::Url { url: url.clone(), detail: format!("bad request: {e}") })?;
        let start = Instant::now();
        let resp = self.sender.send_request(request).await.map_err(|e| unreachable(url, e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| unreachable(url, format!("body: {e}")))?.to_bytes();
        Ok(Resp { status, body, elapsed: start.elapsed() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_with_default_ports() {
        let t = parse("https://127.0.0.1/metrics?x=1").unwrap();
        assert_eq!(t, Target { tls: true, host: "127.0.0.1".into(), port: 443, path_and_query: "/metrics?x=1".into() });
        assert_eq!(parse("http://[::1]:8080").unwrap().host, "::1");
        assert!(matches!(parse("ftp://h/"), Err(Error::Url { .. })));
    }

    #[test]
    fn a_ca_pem_without_certificates_is_refused() {
        assert!(matches!(HttpClient::new(Some(b"not a pem")), Err(Error::Tls(_))));
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_unreachable_with_its_url() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let err = HttpClient::new(None).unwrap().send(&Req::get(&url)).await.unwrap_err();
        assert!(matches!(&err, Error::Unreachable { url: u, .. } if *u == url), "{err}");
    }
}
