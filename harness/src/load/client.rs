//! [`Client`]: the HTTP/1.1 client of a load run: its own keep-alive connection pool (at most one request per
//! connection at a time, connections reused most-recently-used first), TCP_NODELAY, optional TLS. The pool is
//! ours rather than a general-purpose client's so the run controls exactly how many connections exist and
//! every connection failure is seen and counted.
//!
//! The request is encoded once, when the client is made ([`RequestTemplate::encode`]); a send writes those bytes
//! (with the sequence header spliced in when asked) and reads the response head with `httparse` and the body by
//! its framing (length, chunked, or until the connection closes), on the task that sent it. Response headers
//! and body are kept only when an observer wants them. This is the generator's hot path: one write and, for a
//! small response, one read per request, no task hand-over, no allocation unless an observer asks.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use hyper::{
    header::{HeaderName, HeaderValue},
    HeaderMap, StatusCode,
};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{client::TlsStream, TlsConnector};

use super::{outcome::ErrorClass, request::RequestTemplate, tls::Trust, Error};

/// Most response headers read (more is a malformed response for a load target).
const MAX_HEADERS: usize = 100;
/// Largest response head (status line and headers) read.
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer growth.
const READ_CHUNK: usize = 8 * 1024;

/// A connection's byte stream, plain or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection and the bytes read from it but not yet used.
struct Conn {
    io: Io,
    buf: BytesMut,
}

impl Conn {
    /// Whether a pooled connection can take a request: nothing arrived on it since its last response (no
    /// close, no stray bytes). Costs no system call while the socket has no event.
    fn idle(&mut self) -> bool {
        let mut probe = [0u8; 1];
        self.buf.is_empty() && self.io.read(&mut probe).now_or_never().is_none()
    }

    /// Reads more bytes into the buffer; the peer closing the connection is a failure.
    async fn fill(&mut self) -> Result<(), Failure> {
        if self.read().await? == 0 {
            return Err(closed());
        }
        Ok(())
    }

    /// Reads more bytes into the buffer; 0 when the peer closed the connection.
    async fn read(&mut self) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        self.io.read_buf(&mut self.buf).await.map_err(|e| fail(ErrorClass::Connection, &e))
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
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) class: ErrorClass,
    pub(crate) detail: String,
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the client needs of a response head.
#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    /// The connection cannot be reused after this response.
    close: bool,
    function_error: bool,
    headers: Option<HeaderMap>,
}

pub(crate) struct Client {
    /// Request line and headers, without the blank line that ends them.
    head: Vec<u8>,
    /// The whole request as sent when no sequence header is asked.
    whole: Bytes,
    body: Bytes,
    bodiless_response: bool,
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
        let (head, body) = template.encode();
        let mut whole = Vec::with_capacity(head.len() + 2 + body.len());
        whole.extend_from_slice(&head);
        whole.extend_from_slice(b"\r\n");
        whole.extend_from_slice(&body);
        Ok(Arc::new(Self {
            head,
            whole: whole.into(),
            body,
            bodiless_response: template.is_head(),
            addrs,
            tls,
            pool: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
            keep,
        }))
    }

    pub(crate) fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sends the template once (with `seq` as the value of the header `seq_header`, when given) and reads the
    /// whole response body.
    pub(crate) async fn send(&self, seq_header: Option<&HeaderName>, seq: u64) -> Result<Answer, Failure> {
        let mut conn = self.checkout().await?;
        let (answer, reusable) = self.exchange(&mut conn, seq_header, seq).await?;
        if reusable {
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
        Ok(answer)
    }

    /// One request and its response on `conn`; also whether the connection can be reused.
    async fn exchange(
        &self,
        conn: &mut Conn,
        seq_header: Option<&HeaderName>,
        seq: u64,
    ) -> Result<(Answer, bool), Failure> {
        let written = match seq_header {
            None => conn.io.write_all(&self.whole).await,
            Some(name) => {
                let mut req = Vec::with_capacity(self.whole.len() + name.as_str().len() + 26);
                req.extend_from_slice(&self.head);
                req.extend_from_slice(name.as_str().as_bytes());
                req.extend_from_slice(format!(": {seq}\r\n\r\n").as_bytes());
                req.extend_from_slice(&self.body);
                conn.io.write_all(&req).await
            }
        };
        written.map_err(|e| fail(ErrorClass::Connection, &e))?;
        conn.io.flush().await.map_err(|e| fail(ErrorClass::Connection, &e))?;

        let head = loop {
            if let Some(h) = parse_head(&conn.buf, self.keep, self.bodiless_response)? {
                conn.buf.advance(h.len);
                // Interim responses (100 Continue, 103 Early Hints) precede the real one.
                if (100..200).contains(&h.status) && h.status != 101 {
                    continue;
                }
                break h;
            }
            if conn.buf.len() > MAX_HEAD {
                return Err(Failure {
                    class: ErrorClass::Connection,
                    detail: format!("response head larger than {MAX_HEAD} bytes"),
                });
            }
            conn.fill().await?;
        };
        let status = StatusCode::from_u16(head.status).map_err(|_| malformed("status code out of range"))?;

        let mut bytes = 0u64;
        let mut kept = self.keep.then(BytesMut::new);
        let mut take = |conn: &mut Conn, n: usize| {
            bytes += n as u64;
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&conn.buf[..n]);
            }
            conn.buf.advance(n);
        };
        let mut close = head.close;
        match head.framing {
            Framing::Length(mut left) => loop {
                let n = (conn.buf.len() as u64).min(left) as usize;
                take(conn, n);
                left -= n as u64;
                if left == 0 {
                    break;
                }
                conn.fill().await?;
            },
            Framing::Chunked => loop {
                let size = loop {
                    match httparse::parse_chunk_size(&conn.buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            conn.buf.advance(used);
                            break size;
                        }
                        Ok(httparse::Status::Partial) => conn.fill().await?,
                        Err(_) => return Err(malformed("invalid chunk size line")),
                    }
                };
                if size == 0 {
                    // Trailer lines up to the blank line that ends the message.
                    loop {
                        match conn.buf.windows(2).position(|w| w == b"\r\n") {
                            Some(0) => {
                                conn.buf.advance(2);
                                break;
                            }
                            Some(end) => conn.buf.advance(end + 2),
                            None => conn.fill().await?,
                        }
                    }
                    break;
                }
                let mut left = size;
                loop {
                    let n = (conn.buf.len() as u64).min(left) as usize;
                    take(conn, n);
                    left -= n as u64;
                    if left == 0 {
                        break;
                    }
                    conn.fill().await?;
                }
                while conn.buf.len() < 2 {
                    conn.fill().await?;
                }
                if &conn.buf[..2] != b"\r\n" {
                    return Err(malformed("chunk not followed by CRLF"));
                }
                conn.buf.advance(2);
            },
            Framing::UntilClose => loop {
                let n = conn.buf.len();
                take(conn, n);
                if conn.read().await? == 0 {
                    close = true;
                    break;
                }
            },
        }
        let reusable = !close && conn.buf.is_empty();
        let kept = match (kept, head.headers) {
            (Some(body), Some(headers)) => Some((headers, body.freeze())),
            _ => None,
        };
        Ok((Answer { status, function_error: head.function_error, bytes, kept }, reusable))
    }

    async fn checkout(&self) -> Result<Conn, Failure> {
        loop {
            let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match pooled {
                Some(mut c) => {
                    if c.idle() {
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
        let io = match &self.tls {
            None => Io::Plain(tcp),
            Some((connector, name)) => Io::Tls(Box::new(
                connector.connect(name.clone(), tcp).await.map_err(|e| fail(ErrorClass::Connection, &e))?,
            )),
        };
        Ok(Conn { io, buf: BytesMut::with_capacity(READ_CHUNK) })
    }
}

/// Parses a response head at the start of `buf`: `None` while incomplete.
fn parse_head(buf: &[u8], keep_headers: bool, bodiless: bool) -> Result<Option<Head>, Failure> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(&format!("invalid response head: {e}"))),
    };
    let status = resp.code.ok_or_else(|| malformed("no status code"))?;
    let http10 = resp.version == Some(0);
    let (mut length, mut chunked, mut close, mut keep_alive, mut function_error) = (None, false, false, false, false);
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            let v = v.ok_or_else(|| malformed("invalid content-length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(malformed("conflicting content-length headers"));
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("x-amz-function-error") {
            function_error = true;
        }
    }
    // HTTP/1.0 closes after the response unless it asked to keep the connection alive.
    close |= http10 && !keep_alive;
    let framing = if bodiless || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let headers = if keep_headers {
        let mut map = HeaderMap::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| malformed("invalid header name"))?;
            let value = HeaderValue::from_bytes(h.value).map_err(|_| malformed("invalid header value"))?;
            map.append(name, value);
        }
        Some(map)
    } else {
        None
    };
    Ok(Some(Head { len, status, framing, close, function_error, headers }))
}

fn closed() -> Failure {
    Failure { class: ErrorClass::Connection, detail: "connection closed before a complete response".into() }
}

fn malformed(what: &str) -> Failure {
    Failure { class: ErrorClass::Connection, detail: format!("malformed HTTP response: {what}") }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes(), true, false).unwrap_or_else(|f| panic!("{}", f.detail)).expect("complete head")
    }

    #[test]
    fn response_heads_are_framed_by_length_chunks_or_close() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nhello world\n");
        assert_eq!((h.status, h.framing, h.close, h.len), (200, Framing::Length(12), false, 39));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
        let h = head("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(0));
        let h = head("HTTP/1.1 429 Too Many\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((h.status, h.close), (429, true));
        assert!(head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").close, "HTTP/1.0 closes by default");
        assert!(!head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n").close);
        let h = head("HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: 0\r\n\r\n");
        assert!(h.function_error);
        assert_eq!(h.headers.unwrap()["x-amz-function-error"], "Unhandled");
        let bodiless = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, true).unwrap().unwrap();
        assert_eq!((bodiless.framing, bodiless.headers.is_none()), (Framing::Length(0), true));
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false, false).unwrap_or_else(|_| panic!()).is_none());
        assert!(parse_head(b"", false, false).unwrap_or_else(|_| panic!()).is_none());
        let bad = |raw: &str| parse_head(raw.as_bytes(), false, false).err().map(|f| (f.class, f.detail));
        let (class, detail) = bad("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").unwrap();
        assert_eq!(class, ErrorClass::Connection);
        assert!(detail.contains("content-length"), "{detail}");
        assert!(bad("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_some());
        assert!(bad("SMTP ready\r\n\r\n").is_some());
    }
}
