//! [`Prometheus`]: a Prometheus server the suite starts (generated configuration: scrape jobs with bearer
//! or basic auth, rule files, an Alertmanager, short intervals, basic auth on its own API) or one the user
//! names by URL and credentials.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use serde_json::{json, Value};

use super::{
    auth::{write_secret, WebAuth},
    launch::{launch, Launched},
    process::{ServerProcess, PROMETHEUS},
    Error,
};
use crate::metrics::{Auth, Endpoint, PromClient};

/// A scrape job for one metrics URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeJob {
    /// Job name (the `job` label).
    pub job: String,
    /// Full URL of the metrics page, e.g. `https://127.0.0.1:8443/metrics`.
    pub url: String,
    /// Credentials for it.
    pub auth: Auth,
    /// Keep the labels the page sets (`job`, `instance`), as a Pushgateway needs.
    pub honor_labels: bool,
    /// Skip TLS certificate verification (a self-signed test endpoint).
    pub insecure_tls: bool,
}

impl ScrapeJob {
    /// A job scraping `url` with `auth`.
    pub fn new(job: &str, url: &str, auth: Auth) -> ScrapeJob {
        ScrapeJob { job: job.into(), url: url.into(), auth, honor_labels: false, insecure_tls: false }
    }
}

/// How to start Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    /// Scrape interval.
    pub scrape_interval: Duration,
    /// Rule evaluation interval.
    pub evaluation_interval: Duration,
    /// Scrape jobs.
    pub jobs: Vec<ScrapeJob>,
    /// Rule files (loaded as given; one that fails to load fails the start with Prometheus' message).
    pub rule_files: Vec<PathBuf>,
    /// Alertmanager to send alerts to.
    pub alertmanager: Option<Endpoint>,
    /// Require basic auth on Prometheus' own API with these credentials.
    pub web_auth: Option<WebAuth>,
    /// How long to wait for readiness.
    pub ready_timeout: Duration,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        PrometheusOptions {
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: Duration::from_secs(1),
            jobs: Vec::new(),
            rule_files: Vec::new(),
            alertmanager: None,
            web_auth: None,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Splits `http(s)://host:port/path?x` into scheme, `host:port` and path (empty when none).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    (matches!(scheme, "http" | "https") && !host.is_empty()).then_some((scheme, host, path))
}

/// The `authorization`/`basic_auth` part of a scrape or alerting config, secrets written to files in `dir`.
fn auth_config(auth: &Auth, dir: &std::path::Path, name: &str) -> Result<Value, Error> {
    Ok(match auth {
        Auth::None => json!({}),
        Auth::Bearer(t) => {
            let f = write_secret(&dir.join(format!("{name}.token")), t)?;
            json!({ "authorization": { "type": "Bearer", "credentials_file": f } })
        }
        Auth::Basic { user, password } => {
            let f = write_secret(&dir.join(format!("{name}.password")), password)?;
            json!({ "basic_auth": { "username": user, "password_file": f } })
        }
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

impl PrometheusOptions {
    /// The configuration file's content (JSON, which Prometheus reads as YAML); secrets go to files in `dir`.
    pub fn config(&self, dir: &std::path::Path) -> Result<Value, Error> {
        let mut scrape = Vec::new();
        for (i, j) in self.jobs.iter().enumerate() {
            let (scheme, host, path) = split_url(&j.url).ok_or_else(|| Error::Config {
                path: "scrape job".into(),
                detail: format!("job {}: `{}` is not an http(s) URL", j.job, j.url),
            })?;
            let (path, params) = path.split_once('?').unwrap_or((path, ""));
            let path = if path.is_empty() { "/metrics" } else { path };
            let mut job = json!({
                "job_name": j.job,
                "scheme": scheme,
                "metrics_path": path,
                "honor_labels": j.honor_labels,
                "static_configs": [{ "targets": [host] }],
            });
            if !params.is_empty() {
                let mut p = serde_json::Map::new();
                for kv in params.split('&') {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    p.insert(k.into(), json!([v]));
                }
                job["params"] = Value::Object(p);
            }
            if j.insecure_tls {
                job["tls_config"] = json!({ "insecure_skip_verify": true });
            }
            scrape.push(merge(job, auth_config(&j.auth, dir, &format!("scrape-{i}"))?));
        }
        let mut cfg = json!({
            "global": {
                "scrape_interval": secs(self.scrape_interval),
                "scrape_timeout": secs(self.scrape_interval.min(Duration::from_secs(10))),
                "evaluation_interval": secs(self.evaluation_interval),
            },
            "rule_files": self.rule_files,
            "scrape_configs": scrape,
        });
        if let Some(am) = &self.alertmanager {
            let (scheme, host, path) = split_url(&am.url).ok_or_else(|| Error::Config {
                path: "alertmanager".into(),
                detail: format!("`{}` is not an http(s) URL", am.url),
            })?;
            let prefix = if path.is_empty() { "/" } else { path };
            let target = merge(
                json!({ "scheme": scheme, "path_prefix": prefix, "static_configs": [{ "targets": [host] }] }),
                auth_config(&am.auth, dir, "alertmanager")?,
            );
            cfg["alerting"] = json!({ "alertmanagers": [target] });
        }
        Ok(cfg)
    }
}

/// A Prometheus server: started by the suite (stopped on drop) or named by the user.
#[derive(Debug)]
pub struct Prometheus {
    endpoint: Endpoint,
    process: Option<ServerProcess>,
}

impl Prometheus {
    /// Starts Prometheus with `opts` on a free loopback port and waits until it is ready.
    pub async fn start(opts: &PrometheusOptions) -> Result<Prometheus, Error> {
        let auth = opts.web_auth.as_ref().map_or(Auth::None, WebAuth::auth);
        let Launched { process, endpoint } =
            launch("prometheus", &PROMETHEUS, auth, opts.ready_timeout, |dir, listen| {
                let cfg_path = dir.join("prometheus.yml");
                let cfg = opts.config(dir)?;
                std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).expect("json"))
                    .map_err(|e| Error::io(&cfg_path, e))?;
                let mut args: Vec<OsString> = vec![
                    format!("--config.file={}", cfg_path.display()).into(),
                    format!("--storage.tsdb.path={}", dir.join("data").display()).into(),
                    format!("--web.listen-address={listen}").into(),
                    "--storage.tsdb.retention.time=1d".into(),
                    "--log.level=info".into(),
                ];
                if let Some(w) = &opts.web_auth {
                    args.push(format!("--web.config.file={}", w.write_web_config(dir)?.display()).into());
                }
                Ok(args)
            })
            .await?;
        Ok(Prometheus { endpoint, process: Some(process) })
    }

    /// A Prometheus the user runs.
    pub fn external(endpoint: Endpoint) -> Prometheus {
        Prometheus { endpoint, process: None }
    }

    /// Base URL and credentials.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// An API client.
    pub fn client(&self) -> PromClient {
        PromClient::new(self.endpoint.clone())
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
    fn scrape_jobs_become_static_configs_with_secret_files() {
        let d = tempfile::tempdir().unwrap();
        let opts = PrometheusOptions {
            jobs: vec![
                ScrapeJob::new("platform", "https://127.0.0.1:8443/metrics?x=1", Auth::Bearer("tok".into())),
                ScrapeJob {
                    honor_labels: true,
                    ..ScrapeJob::new(
                        "pushgateway",
                        "http://127.0.0.1:9091",
                        Auth::Basic { user: "u".into(), password: "p".into() },
                    )
                },
            ],
            alertmanager: Some(Endpoint::new("http://127.0.0.1:9093", Auth::None)),
            ..Default::default()
        };
        let cfg = opts.config(d.path()).unwrap();
        let j0 = &cfg["scrape_configs"][0];
        assert_eq!((j0["scheme"].as_str(), j0["metrics_path"].as_str()), (Some("https"), Some("/metrics")));
        assert_eq!(j0["params"]["x"][0], "1");
        assert_eq!(j0["static_configs"][0]["targets"][0], "127.0.0.1:8443");
        let token_file = j0["authorization"]["credentials_file"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(token_file).unwrap(), "tok");
        assert!(!cfg.to_string().contains("\"tok\""), "the token must not be inline");
        let j1 = &cfg["scrape_configs"][1];
        assert_eq!((j1["honor_labels"].as_bool(), j1["metrics_path"].as_str()), (Some(true), Some("/metrics")));
        assert_eq!(j1["basic_auth"]["username"], "u");
        assert_eq!(cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0], "127.0.0.1:9093");
        assert_eq!(cfg["global"]["scrape_interval"], "1000ms");
        let bad = PrometheusOptions {
            jobs: vec![ScrapeJob::new("x", "127.0.0.1:1/metrics", Auth::None)],
            ..Default::default()
        };
        assert!(bad.config(d.path()).unwrap_err().to_string().contains("127.0.0.1:1/metrics"));
    }
}
