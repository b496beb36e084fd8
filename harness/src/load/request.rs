//! [`RequestTemplate`]: the one HTTP request a load run sends over and over: method, URL, headers, body. The
//! AWS Lambda Invoke API is just another template ([`RequestTemplate::invoke`]), as are the HTTPS front door,
//! API Gateway URLs and Knative routes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST},
    HeaderMap, Method, Request, Uri,
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

    pub(crate) fn build(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path_and_query.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_connection_and_request() {
        let t = RequestTemplate::get("https://[::1]:8443/v1/health?x=1").unwrap();
        assert!(t.is_tls());
        assert_eq!((t.host(), t.port()), ("::1", 8443));
        let r = t.build();
        assert_eq!(r.uri(), "/v1/health?x=1");
        assert_eq!(r.headers()[HOST], "[::1]:8443");
        let plain = RequestTemplate::get("http://example.test").unwrap();
        assert_eq!((plain.port(), plain.build().uri().to_string().as_str()), (80, "/"));
    }

    #[test]
    fn invoke_api_shape() {
        let t = RequestTemplate::invoke("http://127.0.0.1:9001/", "fn-a", Some("live"), r#"{"k":1}"#).unwrap();
        let r = t.build();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/2015-03-31/functions/fn-a/invocations?Qualifier=live");
        assert_eq!(r.headers()["x-amz-invocation-type"], "RequestResponse");
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
        assert_eq!(t.build().headers()["x-api-key"], "secret");
    }
}
