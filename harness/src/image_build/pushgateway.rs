//! [`Pushgateway`]: a Prometheus Pushgateway to record build metrics in, either a private one started
//! here (the Debian `prometheus-pushgateway` binary on a free loopback port, killed on drop) or one the
//! user runs (a URL). Pushes replace a group (`PUT /metrics/job/<job>/<label>/<value>`); reads take the
//! gateway's own `/metrics`.
//!
//! Kept apart so that a shared starter for Prometheus' servers can replace [`Pushgateway::start`] without
//! touching the build procedure.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::process::{Child, Command};

use super::Error;

const BINARIES: &[&str] = &["prometheus-pushgateway", "pushgateway"];
const READY: Duration = Duration::from_secs(20);
const REQUEST: Duration = Duration::from_secs(10);

/// A reachable Pushgateway; a started one is killed on drop.
#[derive(Debug)]
pub struct Pushgateway {
    url: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    log: Option<PathBuf>,
}

impl Pushgateway {
    /// Starts a private Pushgateway on a free loopback port and waits until it answers `/-/ready`.
    pub async fn start() -> Result<Pushgateway, Error> {
        let bin = BINARIES.iter().find_map(|b| find_on_path(b)).ok_or_else(|| Error::Pushgateway {
            endpoint: BINARIES[0].into(),
            detail: "not installed: apt-get install prometheus-pushgateway (scripts/setup.sh installs it), or pass a running one with the `pushgateway` parameter".into(),
        })?;
        let dir = tempfile::Builder::new()
            .prefix("perf-acceptance-pushgateway")
            .tempdir()
            .map_err(Error::io(std::env::temp_dir()))?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(Error::io("127.0.0.1:0"))?;
            let log = dir.path().join(format!("pushgateway-{port}.log"));
            let file = std::fs::File::create(&log).map_err(Error::io(&log))?;
            let err = file.try_clone().map_err(Error::io(&log))?;
            let child = Command::new(&bin)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(err)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| Error::Pushgateway {
                    endpoint: bin.display().to_string(),
                    detail: format!("cannot start: {e}"),
                })?;
            let mut gw =
                Pushgateway { url: format!("http://127.0.0.1:{port}"), child: Some(child), _dir: None, log: Some(log) };
            match gw.wait_ready().await {
                Ok(()) => {
                    gw._dir = Some(dir);
                    return Ok(gw);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(Error::Pushgateway { endpoint: bin.display().to_string(), detail: format!("did not become ready: {last}") })
    }

    /// A Pushgateway the user runs; fails unless it answers now.
    pub async fn connect(url: &str) -> Result<Pushgateway, Error> {
        let url = url.trim_end_matches('/').to_string();
        let gw = Pushgateway { url, child: None, _dir: None, log: None };
        let (status, body) = gw.request(Method::GET, "/metrics", None).await?;
        if status != 200 {
            return Err(Error::Pushgateway {
                endpoint: gw.url.clone(),
                detail: format!("GET /metrics answered {status}: {}", short(&body)),
            });
        }
        Ok(gw)
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this process started it.
    pub fn is_private(&self) -> bool {
        self.child.is_some()
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + READY;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = self.log.as_ref().and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
                return Err(Error::Pushgateway {
                    endpoint: self.url.clone(),
                    detail: format!("exited with {status}: {}", short(&log)),
                });
            }
            if let Ok((200, _)) = self.request(Method::GET, "/-/ready", None).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("Pushgateway {}/-/ready", self.url),
                    seconds: READY.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Replaces the group `job` + `grouping` with the metrics in `text` (Prometheus text format).
    pub async fn push(&self, job: &str, grouping: &[(&str, &str)], text: String) -> Result<(), Error> {
        let path = group_path(job, grouping);
        let (status, body) = self.request(Method::PUT, &path, Some(text)).await?;
        if !(200..300).contains(&status) {
            return Err(Error::Pushgateway {
                endpoint: format!("{}{path}", self.url),
                detail: format!("push answered {status}: {}", short(&body)),
            });
        }
        Ok(())
    }

    /// Deletes the group `job` + `grouping`.
    pub async fn delete(&self, job: &str, grouping: &[(&str, &str)]) -> Result<(), Error> {
        self.request(Method::DELETE, &group_path(job, grouping), None).await.map(|_| ())
    }

    /// The gateway's `/metrics` (every group it holds, in text format).
    pub async fn metrics(&self) -> Result<String, Error> {
        let (status, body) = self.request(Method::GET, "/metrics", None).await?;
        if status != 200 {
            return Err(Error::Pushgateway {
                endpoint: format!("{}/metrics", self.url),
                detail: format!("answered {status}: {}", short(&body)),
            });
        }
        Ok(body)
    }

    async fn request(&self, method: Method, path: &str, body: Option<String>) -> Result<(u16, String), Error> {
        let url = format!("{}{path}", self.url);
        let fail = |detail: String| Error::Pushgateway { endpoint: url.clone(), detail };
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| fail(format!("bad request: {e}")))?;
        let res = tokio::time::timeout(REQUEST, client.request(req))
            .await
            .map_err(|_| fail(format!("no answer to {method} within {} s", REQUEST.as_secs())))?
            .map_err(|e| fail(format!("unreachable ({method}): {}; is it running?", chain(&e))))?;
        let status = res.status().as_u16();
        let bytes = tokio::time::timeout(REQUEST, res.into_body().collect())
            .await
            .map_err(|_| fail("body not received in time".into()))?
            .map_err(|e| fail(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// An error with its causes (`client error (Connect): tcp connect error: Connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

fn group_path(job: &str, grouping: &[(&str, &str)]) -> String {
    let mut p = format!("/metrics/job/{}", escape(job));
    for (k, v) in grouping {
        p.push_str(&format!("/{}/{}", escape(k), escape(v)));
    }
    p
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.len() > 300 {
        format!("{}...", &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_escape_label_values() {
        assert_eq!(group_path("build", &[("instance", "run 1/a")]), "/metrics/job/build/instance/run%201%2Fa");
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_a_clear_error() {
        let port = free_port().unwrap();
        let e = Pushgateway::connect(&format!("http://127.0.0.1:{port}")).await.unwrap_err().to_string();
        assert!(e.contains(&format!("127.0.0.1:{port}")) && e.contains("unreachable"), "{e}");
    }
}
