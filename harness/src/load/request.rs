//! [`RequestTemplate`]: the one HTTP request a load run sends over and over: method, URL, headers, body. The
//! AWS Lambda Invoke API is just another template ([`RequestTemplate::invoke`]), as are the HTTPS front door,
//! API Gateway URLs and Knative routes.

use bytes::Bytes;
use hyper::{
    header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING},
    HeaderMap, Method, Uri,
};

use super::Error;

/// A request sent by a load run; see the module docs.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: Method,
    tls: bool,
    host: String,
    port: u16,
    path_and_query: Uri,
    headers: HeaderMap,
    body: Bytes,
    url: String,
}

impl RequestTemplate {
    /// A request with `method` to an `http://` or `https://` URL, no body.
    pub fn new(method: Method, url: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Url { url: url.to_string(), reason: reason.to_string() };
        let uri: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported; send them in a header"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_and_query: Uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|_| bad("path"))?;
        let mut headers = HeaderMap::new();
        let host_value = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("host is not a valid header"))?;
        headers.insert(HOST, host_value);
        Ok(Self { method, tls, host, port, path_and_query, headers, body: Bytes::new(), url: url.to_string() })
    }

    /// A GET request to `url`.
    pub fn get(url: &str) -> Result<Self, Error> {
        Self::new(Method::GET, url)
    }

    /// A POST request to `url` with `body`.
    pub fn post(url: &str, body: impl Into<Bytes>) -> Result<Self, Error> {
        Ok(Self::new(Method::POST, url)?.body(body))
    }

    /// The AWS Lambda Invoke API call (`POST {endpoint}/2015-03-31/functions/{function}/invocations`) with a JSON
    /// `payload`, synchronous (`RequestResponse`). `function` is a name, a partial or a full ARN; `qualifier` a
    /// version or alias. Signing is not done here: the embedded local target accepts unsigned calls; AWS needs
    /// the SDK client.
    pub fn invoke(
        endpoint: &str,
        function: &str,
        qualifier: Option<&str>,
        payload: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.$".contains(c));
        if !valid(function) {
            return Err(Error::Spec(format!("invalid Lambda function name {function:?}")));
        }
        let query = match qualifier {
            Some(q) if valid(q) => format!("?Qualifier={q}"),
            Some(q) => return Err(Error::Spec(format!("invalid Lambda qualifier {q:?}"))),
            None => String::new(),
        };
        let url = format!("{}/2015-03-31/functions/{function}/invocations{query}", endpoint.trim_end_matches('/'));
        Self::post(&url, payload)?
            .header("x-amz-invocation-type", "RequestResponse")?
            .header(CONTENT_TYPE.as_str(), "application/json")
    }

    /// Adds (or replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Header { name: name.to_string(), reason: reason.to_string() };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid name"))?;
        let v = HeaderValue::from_str(value).map_err(|_| bad("invalid value"))?;
        if n == HOST {
            return Err(bad("the Host header comes from the URL"));
        }
        if n == CONTENT_LENGTH || n == TRANSFER_ENCODING {
            return Err(bad("the body's framing comes from the body"));
        }
        self.headers.insert(n, v);
        Ok(self)
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Method and URL, for reports. Headers are left out: they may carry API keys.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// Whether the target is `https`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Host name or IP address (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the method is HEAD (its responses have no body whatever their headers say).
    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// The request in HTTP/1.1 wire format: the request line and headers (each ending in CRLF, without the blank
    /// line that ends the head, so a header can be appended), and the body. `content-length` is sent when there
    /// is a body or the method expects one.
    pub(crate) fn encode(&self) -> (Vec<u8>, Bytes) {
        let mut head = Vec::with_capacity(128);
        head.extend_from_slice(self.method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(self.path_and_query.to_string().as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() || [Method::POST, Method::PUT, Method::PATCH].contains(&self.method) {
            head.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        (head, self.body.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(t: &RequestTemplate) -> String {
        let (head, body) = t.encode();
        format!("{}\r\n{}", String::from_utf8(head).unwrap(), String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn urls_are_split_into_connection_and_request() {
        let t = RequestTemplate::get("https://[::1]:8443/v1/health?x=1").unwrap();
        assert!(t.is_tls());
        assert_eq!((t.host(), t.port()), ("::1", 8443));
        assert_eq!(wire(&t), "GET /v1/health?x=1 HTTP/1.1\r\nhost: [::1]:8443\r\n\r\n");
        let plain = RequestTemplate::get("http://example.test").unwrap();
        assert_eq!(plain.port(), 80);
        assert_eq!(wire(&plain), "GET / HTTP/1.1\r\nhost: example.test\r\n\r\n");
    }

    #[test]
    fn invoke_api_shape() {
        let t = RequestTemplate::invoke("http://127.0.0.1:9001/", "fn-a", Some("live"), r#"{"k":1}"#).unwrap();
        assert_eq!(
            wire(&t),
            "POST /2015-03-31/functions/fn-a/invocations?Qualifier=live HTTP/1.1\r\nhost: 127.0.0.1:9001\r\n\
             x-amz-invocation-type: RequestResponse\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n\
             {\"k\":1}"
        );
        assert_eq!(t.describe(), "POST http://127.0.0.1:9001/2015-03-31/functions/fn-a/invocations?Qualifier=live");
        assert!(RequestTemplate::invoke("http://h", "a/b", None, "").is_err());
        assert!(RequestTemplate::invoke("http://h", "f", Some("x y"), "").is_err());
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let e = RequestTemplate::get("ftp://h/x").unwrap_err().to_string();
        assert!(e.contains("ftp://h/x") && e.contains("scheme"), "{e}");
        assert!(RequestTemplate::get("http://user:pw@h/").is_err());
        let e = RequestTemplate::get("http://h/").unwrap().header("bad name", "v").unwrap_err().to_string();
        assert!(e.contains("bad name"), "{e}");
        let t = RequestTemplate::get("http://h/").unwrap().header("x-api-key", "secret").unwrap();
        assert!(!t.describe().contains("secret"));
        assert!(wire(&t).contains("\r\nx-api-key: secret\r\n"));
        let e = t.header("Content-Length", "3").unwrap_err().to_string();
        assert!(e.contains("Content-Length") && e.contains("framing"), "{e}");
        let empty_post = RequestTemplate::post("http://h/", "").unwrap();
        assert!(wire(&empty_post).ends_with("content-length: 0\r\n\r\n"));
    }
}
