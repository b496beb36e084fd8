//! [`Pushgateway`] (started by the suite or named by the user) and [`PushClient`], which pushes metric
//! families (build metrics, the `perf_baseline_*` gauges the regression alert compares against) to it and
//! reads back what it holds. Pushes replace a group (`PUT /metrics/job/<job>/<label>/<value>`, each part
//! base64url-encoded); every request carries the endpoint's credentials and gives up after 10 s.

use std::{ffi::OsString, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use hyper::Method;

use super::{
    auth::WebAuth,
    launch::{launch, Launched},
    process::{ServerProcess, PUSHGATEWAY},
    Error,
};
use crate::metrics::{
    exposition::{encode, Family},
    Auth, Endpoint, HttpClient,
};

/// Pushes to a Pushgateway.
#[derive(Debug, Clone)]
pub struct PushClient {
    endpoint: Endpoint,
    http: HttpClient,
}

impl PushClient {
    /// A client for the Pushgateway at `endpoint`.
    pub fn new(endpoint: Endpoint) -> PushClient {
        PushClient { endpoint, http: HttpClient::new(Duration::from_secs(10)) }
    }

    /// The group URL `/metrics/job/<job>/<label>/<value>...`, every part base64url-encoded so that any
    /// value (slashes included) is safe.
    fn group_url(&self, job: &str, grouping: &[(&str, &str)]) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
        let mut url = self.endpoint.join(&format!("/metrics/job@base64/{}", b64(job)));
        for (k, v) in grouping {
            url.push_str(&format!("/{k}@base64/{}", b64(v)));
        }
        url
    }

    /// Replaces the metrics of group (`job`, `grouping`) with `families`.
    pub async fn push(&self, job: &str, grouping: &[(&str, &str)], families: &[Family]) -> Result<(), Error> {
        let url = self.group_url(job, grouping);
        let body = encode(families);
        self.http
            .send_ok(Method::PUT, &url, &self.endpoint.auth, Some("text/plain; version=0.0.4"), Bytes::from(body), "")
            .await?;
        Ok(())
    }

    /// Deletes group (`job`, `grouping`).
    pub async fn delete(&self, job: &str, grouping: &[(&str, &str)]) -> Result<(), Error> {
        let url = self.group_url(job, grouping);
        self.http.send_ok(Method::DELETE, &url, &self.endpoint.auth, None, Bytes::new(), "").await?;
        Ok(())
    }

    /// The gateway's `/metrics`: every group it holds, in text exposition.
    pub async fn scrape(&self) -> Result<String, Error> {
        let url = self.endpoint.join("/metrics");
        Ok(self.http.send_ok(Method::GET, &url, &self.endpoint.auth, None, Bytes::new(), "").await?.text())
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// Base URL and credentials.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// A Pushgateway: started by the suite (stopped on drop) or named by the user.
#[derive(Debug)]
pub struct Pushgateway {
    endpoint: Endpoint,
    process: Option<ServerProcess>,
}

impl Pushgateway {
    /// Starts a Pushgateway (no persistence) on a free loopback port and waits until it is ready.
    pub async fn start(web_auth: Option<&WebAuth>) -> Result<Pushgateway, Error> {
        let auth = web_auth.map_or(Auth::None, WebAuth::auth);
        let Launched { process, endpoint } =
            launch("pushgateway", &PUSHGATEWAY, auth, Duration::from_secs(30), |dir, listen| {
                let mut args: Vec<OsString> = vec![
                    format!("--web.listen-address={listen}").into(),
                    // The packaged default persists to /var/lib; the suite's gateway lives for one run.
                    "--persistence.file=".into(),
                    "--log.level=info".into(),
                ];
                if let Some(w) = web_auth {
                    args.push(format!("--web.config.file={}", w.write_web_config(dir)?.display()).into());
                }
                Ok(args)
            })
            .await?;
        Ok(Pushgateway { endpoint, process: Some(process) })
    }

    /// A Pushgateway the user runs.
    pub fn external(endpoint: Endpoint) -> Pushgateway {
        Pushgateway { endpoint, process: None }
    }

    /// A Pushgateway the user runs; fails unless it answers `/metrics` now.
    pub async fn connect(endpoint: Endpoint) -> Result<Pushgateway, Error> {
        let gw = Pushgateway::external(endpoint);
        gw.client().scrape().await?;
        Ok(gw)
    }

    /// Base URL and credentials.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A push client.
    pub fn client(&self) -> PushClient {
        PushClient::new(self.endpoint.clone())
    }

    /// The server process, when the suite started it.
    pub fn process(&self) -> Option<&ServerProcess> {
        self.process.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_urls_encode_every_part() {
        let c = PushClient::new(Endpoint::new("http://127.0.0.1:9091/", Auth::None));
        // base64url of "build", "run 1/a": a slash or space in a value cannot split the path.
        assert_eq!(
            c.group_url("build", &[("instance", "run 1/a")]),
            "http://127.0.0.1:9091/metrics/job@base64/YnVpbGQ=/instance@base64/cnVuIDEvYQ=="
        );
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_a_clear_error() {
        let port = super::super::process::free_port().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let e = Pushgateway::connect(Endpoint::new(&url, Auth::None)).await.unwrap_err().to_string();
        assert!(e.contains(&format!("{url}/metrics")) && e.contains("cannot reach"), "{e}");
    }
}
