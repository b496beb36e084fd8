//! [`Monitoring`]: the Prometheus, Alertmanager and Pushgateway a measurement talks to: a [`Stack`] the
//! suite starts (wired together: Prometheus scrapes the given targets and the Pushgateway, loads the rule
//! files, alerts to Alertmanager, which notifies the suite's webhook; per-run basic auth on all three), or
//! servers the user names through `HARNESS_PROMETHEUS_URL` and friends.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    alertmanager::{Alertmanager, AlertmanagerOptions},
    auth::WebAuth,
    prometheus::{Prometheus, PrometheusOptions, ScrapeJob},
    pushgateway::{PushClient, Pushgateway},
    webhook::WebhookReceiver,
    Error,
};
use crate::metrics::{AmClient, Auth, Endpoint, PromClient};

/// The project's fixtures directory: `HARNESS_FIXTURES`, else `./fixtures`, else the source tree's.
pub fn fixtures_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HARNESS_FIXTURES") {
        return PathBuf::from(p);
    }
    // Absolute: Prometheus resolves relative rule file paths against its own config's directory.
    let cwd = std::env::current_dir().unwrap_or_default().join("fixtures");
    if cwd.join("prometheus").is_dir() {
        return cwd;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The shipped rule files (`fixtures/prometheus/rules/*.yml`), sorted.
pub fn shipped_rule_files(fixtures: &Path) -> Result<Vec<PathBuf>, Error> {
    let dir = fixtures.join("prometheus/rules");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::Config { path: dir, detail: "no rule files (*.yml)".into() });
    }
    Ok(out)
}

/// How to start a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Targets Prometheus scrapes besides the Pushgateway.
    pub jobs: Vec<ScrapeJob>,
    /// Rule files.
    pub rule_files: Vec<PathBuf>,
    /// Alertmanager configuration file.
    pub alertmanager_config: PathBuf,
    /// Scrape interval.
    pub scrape_interval: Duration,
    /// Rule evaluation interval.
    pub evaluation_interval: Duration,
    /// Basic auth with per-run credentials on the three servers.
    pub auth: bool,
}

impl StackOptions {
    /// The shipped rules and Alertmanager configuration from `fixtures`, 1 s intervals, auth on.
    pub fn shipped(fixtures: &Path, jobs: Vec<ScrapeJob>) -> Result<StackOptions, Error> {
        Ok(StackOptions {
            jobs,
            rule_files: shipped_rule_files(fixtures)?,
            alertmanager_config: fixtures.join("prometheus/alertmanager.yml"),
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: Duration::from_secs(1),
            auth: true,
        })
    }
}

/// The job name under which Prometheus scrapes the stack's Pushgateway.
pub const PUSHGATEWAY_JOB: &str = "pushgateway";

/// Prometheus, Alertmanager, Pushgateway and the webhook receiver, started together; all stopped on drop.
#[derive(Debug)]
pub struct Stack {
    /// Prometheus.
    pub prometheus: Prometheus,
    /// Alertmanager.
    pub alertmanager: Alertmanager,
    /// Pushgateway.
    pub pushgateway: Pushgateway,
    /// The suite's webhook receiver.
    pub webhook: WebhookReceiver,
    /// The per-run credentials, when auth is on.
    pub web_auth: Option<WebAuth>,
}

impl Stack {
    /// Starts the four servers (needs a tokio runtime).
    pub async fn start(opts: &StackOptions) -> Result<Stack, Error> {
        let web_auth = if opts.auth { Some(WebAuth::generate()?) } else { None };
        let webhook = WebhookReceiver::start().await?;
        let am_opts = AlertmanagerOptions {
            webhook_url: Some(webhook.url().to_string()),
            web_auth: web_auth.clone(),
            ..AlertmanagerOptions::new(opts.alertmanager_config.clone())
        };
        let (alertmanager, pushgateway) =
            tokio::try_join!(Alertmanager::start(&am_opts), Pushgateway::start(web_auth.as_ref()))?;
        let mut jobs = opts.jobs.clone();
        jobs.push(ScrapeJob {
            honor_labels: true,
            ..ScrapeJob::new(
                PUSHGATEWAY_JOB,
                &pushgateway.endpoint().join("/metrics"),
                pushgateway.endpoint().auth.clone(),
            )
        });
        let prom_opts = PrometheusOptions {
            scrape_interval: opts.scrape_interval,
            evaluation_interval: opts.evaluation_interval,
            jobs,
            rule_files: opts.rule_files.clone(),
            alertmanager: Some(alertmanager.endpoint().clone()),
            web_auth: web_auth.clone(),
            ..PrometheusOptions::default()
        };
        let prometheus = Prometheus::start(&prom_opts).await?;
        Ok(Stack { prometheus, alertmanager, pushgateway, webhook, web_auth })
    }
}

/// The servers a measurement uses.
#[derive(Debug)]
pub struct Monitoring {
    /// Prometheus' API.
    pub prometheus: PromClient,
    /// Alertmanager's API, if there is one.
    pub alertmanager: Option<AmClient>,
    /// The Pushgateway, if there is one.
    pub pushgateway: Option<PushClient>,
    /// The suite's own servers, when it started them.
    pub stack: Option<Stack>,
}

impl Monitoring {
    /// Servers the suite started.
    pub fn own(stack: Stack) -> Monitoring {
        Monitoring {
            prometheus: stack.prometheus.client(),
            alertmanager: Some(stack.alertmanager.client()),
            pushgateway: Some(stack.pushgateway.client()),
            stack: Some(stack),
        }
    }

    /// Servers the user names: `HARNESS_PROMETHEUS_URL` (then Prometheus must already scrape the target),
    /// optional `HARNESS_ALERTMANAGER_URL` and `HARNESS_PUSHGATEWAY_URL`; each with `_TOKEN`, or `_USER` and
    /// `_PASSWORD`. `None` when no Prometheus URL is set.
    pub fn from_env() -> Result<Option<Monitoring>, Error> {
        let Some(prometheus) = endpoint_from_env("PROMETHEUS")? else { return Ok(None) };
        Ok(Some(Monitoring {
            prometheus: PromClient::new(prometheus),
            alertmanager: endpoint_from_env("ALERTMANAGER")?.map(AmClient::new),
            pushgateway: endpoint_from_env("PUSHGATEWAY")?.map(PushClient::new),
            stack: None,
        }))
    }

    /// The webhook receiver, when the suite runs one.
    pub fn webhook(&self) -> Option<&WebhookReceiver> {
        self.stack.as_ref().map(|s| &s.webhook)
    }
}

/// `HARNESS_<NAME>_URL` with `_TOKEN` or `_USER`/`_PASSWORD`.
pub fn endpoint_from_env(name: &str) -> Result<Option<Endpoint>, Error> {
    let var = |s: &str| std::env::var(format!("HARNESS_{name}_{s}")).ok().filter(|v| !v.is_empty());
    let Some(url) = var("URL") else { return Ok(None) };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Env {
            var: format!("HARNESS_{name}_URL"),
            detail: format!("`{url}` is not an http(s) URL"),
        });
    }
    let auth = match (var("TOKEN"), var("USER"), var("PASSWORD")) {
        (Some(t), None, None) => Auth::Bearer(t),
        (None, Some(user), Some(password)) => Auth::Basic { user, password },
        (None, None, None) => Auth::None,
        _ => {
            return Err(Error::Env {
                var: format!("HARNESS_{name}_TOKEN / _USER / _PASSWORD"),
                detail: "give either a token, or a user and a password".into(),
            })
        }
    };
    Ok(Some(Endpoint::new(&url, auth)))
}
