//! [`SecuritySubject`]: what the `security` procedure needs from a target, as a small trait so that each
//! target (the local platform, AWS, Knative) plugs in with a few lines: a [`Surface`] of endpoints,
//! credentials, throttle and audit log; the function's configuration; and a way to apply a tuned
//! configuration that says what it changed.

use std::{future::Future, path::PathBuf};

use super::{
    audit::ConfigChange,
    auth::{Credential, EndpointResult, Protected},
    ratelimit::Throttle,
    Error,
};

/// How a metrics endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// Prometheus text exposition (`/metrics`).
    Exposition,
    /// Prometheus HTTP API `/api/v1/series` JSON (see [`series_url`]).
    Series,
}

/// An endpoint serving performance data: checked for authentication, and its answer scanned for secrets.
#[derive(Debug, Clone)]
pub struct MetricsSource {
    /// The endpoint and its credential.
    pub endpoint: Protected,
    /// What it answers.
    pub format: MetricsFormat,
}

/// The front door: one function route over HTTP and over HTTPS, behind the same API key.
#[derive(Debug, Clone)]
pub struct FrontDoor {
    /// The route over plain HTTP.
    pub http: Protected,
    /// The same route over HTTPS.
    pub https: Protected,
}

impl FrontDoor {
    /// A front door whose route is `path` on both base URLs (`http://127.0.0.1:8080`, `https://...:8443`),
    /// opened by `header: key`; `body` is POSTed when given.
    pub fn new(
        http_base: &str,
        https_base: &str,
        path: &str,
        header: &str,
        key: &str,
        body: Option<&str>,
    ) -> FrontDoor {
        let route = |base: &str, scheme: &str| Protected {
            name: format!("front door ({scheme})"),
            url: format!("{}{path}", base.trim_end_matches('/')),
            credential: Credential::Header { name: header.to_string(), value: key.to_string() },
            body: body.map(str::to_string),
        };
        FrontDoor { http: route(http_base, "http"), https: route(https_base, "https") }
    }
}

/// Everything the procedure probes on a target.
#[derive(Debug, Clone)]
pub struct Surface {
    /// Metrics endpoints (the platform's `/metrics`, Prometheus' series API).
    pub metrics: Vec<MetricsSource>,
    /// The front door.
    pub front_door: FrontDoor,
    /// CA certificate (PEM) the HTTPS front door's certificate chains to.
    pub ca_pem: Option<Vec<u8>>,
    /// The stage's throttle (`None`: none configured, which the rate-limit check counts as a violation).
    pub throttle: Option<Throttle>,
    /// The audit log (JSON Lines).
    pub audit_log: PathBuf,
    /// Other credentials the harness holds, to find verbatim and to redact.
    pub other_credentials: Vec<String>,
}

impl Surface {
    /// Every endpoint that must refuse requests without the right credential, each URL once (a front door
    /// reachable over one scheme only has the same route in both fields).
    pub fn protected(&self) -> Vec<Protected> {
        let mut out: Vec<Protected> = self.metrics.iter().map(|m| m.endpoint.clone()).collect();
        for p in [&self.front_door.http, &self.front_door.https] {
            if !out.iter().any(|o| o.url == p.url) {
                out.push(p.clone());
            }
        }
        out
    }

    /// Every secret the harness was given for this surface.
    pub fn credentials(&self) -> Vec<String> {
        let mut out: Vec<String> = self.protected().iter().flat_map(|p| p.credential.secrets()).collect();
        out.extend(self.other_credentials.iter().cloned());
        out.sort();
        out.dedup();
        out
    }
}

/// The series API URL matching every series of a Prometheus at `base` (query string percent-encoded).
pub fn series_url(base: &str) -> String {
    format!("{}/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B%22%7D", base.trim_end_matches('/'))
}

/// A target as the `security` procedure sees it.
pub trait SecuritySubject: Sync {
    /// Endpoints, credentials, throttle and audit log, as configured now (asked again after tuning).
    fn surface(&self) -> Surface;

    /// The function's configuration as JSON (`GetFunctionConfiguration`: environment variables included).
    fn function_config(&self) -> impl Future<Output = Result<String, Error>> + Send;

    /// Applies the tuned configuration and returns each change made, as the suite requested it.
    fn apply_tuning(&self) -> impl Future<Output = Result<Vec<ConfigChange>, Error>> + Send;

    /// A base64 log tail of one invocation (`LogType: Tail`), when the target can give one.
    fn log_tail(&self) -> impl Future<Output = Result<Option<String>, Error>> + Send {
        async { Ok(None) }
    }

    /// Endpoints whose credential is not a header the auth check can send (an IAM-signed API), asked and
    /// judged by the subject itself: added to the authentication check.
    fn signed_endpoints(&self) -> impl Future<Output = Result<Vec<EndpointResult>, Error>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Further texts to scan for secrets (source name, text), such as recent log events.
    fn extra_texts(&self) -> impl Future<Output = Result<Vec<(String, String)>, Error>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Why HTTPS cannot be compared with HTTP on this surface (one scheme only), when it cannot.
    fn tls_unavailable(&self) -> Option<String> {
        None
    }

    /// What the report should say about where the surface came from (throttle source, emulator caveats).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}
