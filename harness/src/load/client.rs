//! [`Client`]: the HTTP/1.1 client of a load run: its own keep-alive connection pool (at most one request per
//! connection at a time, connections reused most-recently-used first), TCP_NODELAY, optional TLS. The pool is
//! ours rather than a general-purpose client's so the run controls exactly how many connections exist and
//! every connection failure is seen and counted. A connection is driven by the task using it (not by a task of
//! its own): a request then costs no hand-over between tasks, which is a large share of a loopback request's
//! CPU time.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{
    client::conn::http1,
    header::{HeaderName, HeaderValue},
    HeaderMap, StatusCode,
};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{outcome::ErrorClass, request::RequestTemplate, tls::Trust, Error};

type Sender = http1::SendRequest<Full<Bytes>>;
type Driver = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// A connection: the handle to send on, and the connection's own future, polled while the handle is in use.
struct Conn {
    sender: Sender,
    driver: Driver,
}

/// Runs `fut` while driving the connection; `Err` when the connection ended first.
async fn drive<F: Future>(driver: &mut Driver, fut: F) -> Result<F::Output, Failure> {
    tokio::select! {
        biased;
        out = fut => Ok(out),
        end = driver => Err(match end {
            Ok(()) => Failure { class: ErrorClass::Connection, detail: "connection closed".into() },
            Err(e) => fail(ErrorClass::Connection, &e),
        }),
    }
}

/// A complete response.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) function_error: bool,
    pub(crate) bytes: u64,
    /// Headers and body, kept only when an observer wants them.
    pub(crate) kept: Option<(HeaderMap, Bytes)>,
}

/// A request that got no complete response.
pub(crate) struct Failure {
    pub(crate) class: ErrorClass,
    pub(crate) detail: String,
}

pub(crate) struct Client {
    template: RequestTemplate,
    addrs: Vec<SocketAddr>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    pool: Mutex<Vec<Conn>>,
    opened: AtomicU64,
    keep: bool,
}

impl Client {
    /// Resolves the target once (a load run must not measure DNS) and prepares TLS.
    pub(crate) async fn new(template: RequestTemplate, trust: &Trust, keep: bool) -> Result<Arc<Self>, Error> {
        let (host, port) = (template.host().to_string(), template.port());
        let resolve = |reason: String| Error::Resolve { host: host.clone(), port, reason };
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| resolve(e.to_string()))?.collect();
        if addrs.is_empty() {
            return Err(resolve("no address".into()));
        }
        let tls = if template.is_tls() {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| Error::Url { url: template.describe(), reason: format!("TLS server name: {e}") })?;
            Some((TlsConnector::from(trust.client_config()?), name))
        } else {
            None
        };
        Ok(Arc::new(Self { template, addrs, tls, pool: Mutex::new(Vec::new()), opened: AtomicU64::new(0), keep }))
    }

    pub(crate) fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sends the template once (with `seq` as the value of the header `seq_header`, when given) and reads the
    /// whole response body.
    pub(crate) async fn send(&self, seq_header: Option<&HeaderName>, seq: u64) -> Result<Answer, Failure> {
        let Conn { mut sender, mut driver } = self.checkout().await?;
        let mut req = self.template.build();
        if let Some(name) = seq_header {
            req.headers_mut().insert(name.clone(), HeaderValue::from(seq));
        }
        let resp = drive(&mut driver, sender.send_request(req)).await?.map_err(|e| fail(ErrorClass::Connection, &e))?;
        let status = resp.status();
        let function_error = resp.headers().contains_key("x-amz-function-error");
        let (parts, mut body) = resp.into_parts();
        let mut bytes = 0u64;
        let mut kept = self.keep.then(BytesMut::new);
        while let Some(frame) = drive(&mut driver, body.frame()).await? {
            let frame = frame.map_err(|e| fail(ErrorClass::Connection, &e))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
                if let Some(k) = kept.as_mut() {
                    k.extend_from_slice(data);
                }
            }
        }
        if !sender.is_closed() {
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(Conn { sender, driver });
        }
        Ok(Answer { status, function_error, bytes, kept: kept.map(|k| (parts.headers, k.freeze())) })
    }

    async fn checkout(&self) -> Result<Conn, Failure> {
        loop {
            let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match pooled {
                Some(mut c) => {
                    if let Ok(Ok(())) = drive(&mut c.driver, c.sender.ready()).await {
                        return Ok(c);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let tcp = TcpStream::connect(&self.addrs[..]).await.map_err(|e| fail(ErrorClass::Connection, &e))?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| fail(ErrorClass::Connection, &e))?;
                handshake(tls).await
            }
        }
    }
}

async fn handshake<S>(io: S) -> Result<Conn, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await.map_err(|e| fail(ErrorClass::Connection, &e))?;
    Ok(Conn { sender, driver: Box::pin(conn) })
}

fn fail(class: ErrorClass, e: &dyn std::error::Error) -> Failure {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    Failure { class, detail }
}
