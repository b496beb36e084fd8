//! [`LocalSubject`]: the embedded local platform as a [`SecuritySubject`]. Its surface is the platform's
//! `/metrics` (bearer token), a Prometheus the suite starts with basic auth scraping that endpoint (its
//! series API is performance data too), the front door over HTTP and HTTPS behind the API key with the
//! per-run CA, the stage throttle the platform was configured with, and the platform's JSONL audit log.
//! The function's configuration comes from GetFunctionConfiguration; the tuned configuration doubles the
//! function's memory through UpdateFunctionConfiguration.

use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};

use super::{
    audit::ConfigChange,
    auth::{Credential, Protected},
    ratelimit::Throttle,
    Error, FrontDoor, MetricsFormat, MetricsSource, SecuritySubject, Surface,
};
use crate::{
    criteria::Params,
    local::{Platform, PlatformConfig},
    measure::types as measure,
    metrics::Auth,
    platform::{lambda_client::LambdaClient, local::default_functions_file, LocalConfig},
    run_dir::RunDir,
    services::{fixtures_dir, ScrapeJob, Stack, StackOptions},
};

/// The local platform, a Prometheus scraping it, and the function under test.
#[derive(Debug)]
pub struct LocalSubject {
    platform: Platform,
    client: LambdaClient,
    stack: Stack,
    function: String,
    throttle: Throttle,
}

fn unavailable(what: impl Into<String>, e: impl std::fmt::Display) -> measure::Error {
    measure::Error::Unavailable { what: what.into(), detail: e.to_string() }
}

fn credential(auth: &Auth) -> Credential {
    match auth {
        Auth::Basic { user, password } => Credential::Basic { user: user.clone(), password: password.clone() },
        Auth::Bearer(token) => Credential::Bearer { token: token.clone() },
        // No credential: the auth check then finds the endpoint open, which is the finding.
        Auth::None => Credential::Header { name: "authorization".into(), value: String::new() },
    }
}

impl LocalSubject {
    /// Starts the platform of `config` (stage throttle from `stage_rate_limit` / `stage_burst_limit` when
    /// the parameters set them) and a Prometheus with basic auth scraping its `/metrics`.
    pub async fn start(config: &LocalConfig, params: &Params) -> Result<LocalSubject, measure::Error> {
        let file = config.functions.clone().unwrap_or_else(default_functions_file);
        let mut pc = PlatformConfig::from_file(&file).map_err(|e| unavailable(file.display().to_string(), e))?;
        if let Some(r) = params.get("stage_rate_limit").and_then(Value::as_f64) {
            pc.stage_rate_limit = r;
        }
        if let Some(b) = params.get("stage_burst_limit").and_then(Value::as_u64) {
            pc.stage_burst_limit = b as u32;
        }
        let throttle = Throttle { rate: pc.stage_rate_limit, burst: pc.stage_burst_limit };
        let platform = Platform::start(pc).await.map_err(|e| unavailable("the local platform", e))?;
        let client = LambdaClient::new(platform.invoke_url(), "harness-security");
        let function = params.get("function").and_then(Value::as_str).unwrap_or("fixture-rust").to_string();
        let job =
            ScrapeJob::new("local-platform", &platform.metrics_url(), Auth::Bearer(platform.metrics_token().into()));
        let opts =
            StackOptions::shipped(&fixtures_dir(), vec![job]).map_err(|e| unavailable("the monitoring servers", e))?;
        let stack = Stack::start(&opts).await.map_err(|e| unavailable("the monitoring servers", e))?;
        Ok(LocalSubject { platform, client, stack, function, throttle })
    }

    /// Stops Prometheus and the platform.
    pub async fn shutdown(self) {
        drop(self.stack);
        self.platform.shutdown().await;
    }
}

impl SecuritySubject for LocalSubject {
    fn surface(&self) -> Surface {
        let p = &self.platform;
        let prom = self.stack.prometheus.endpoint();
        Surface {
            metrics: vec![
                MetricsSource {
                    endpoint: Protected {
                        name: "platform /metrics".into(),
                        url: p.metrics_url(),
                        credential: Credential::Bearer { token: p.metrics_token().into() },
                        body: None,
                    },
                    format: MetricsFormat::Exposition,
                },
                MetricsSource {
                    endpoint: Protected {
                        name: "Prometheus series API".into(),
                        url: super::subject::series_url(&prom.url),
                        credential: credential(&prom.auth),
                        body: None,
                    },
                    format: MetricsFormat::Series,
                },
            ],
            front_door: FrontDoor::new(
                &p.front_door_http(),
                &p.front_door_https(),
                &format!("/{}", self.function),
                "x-api-key",
                p.api_key(),
                Some("{}"),
            ),
            ca_pem: Some(p.ca_pem().as_bytes().to_vec()),
            throttle: Some(self.throttle),
            audit_log: p.audit_log_path().to_path_buf(),
            other_credentials: Vec::new(),
        }
    }

    async fn function_config(&self) -> Result<String, Error> {
        let v = self
            .client
            .get_configuration(&self.function)
            .await
            .map_err(|e| Error::Subject(format!("GetFunctionConfiguration of {}: {e}", self.function)))?;
        Ok(v.to_string())
    }

    async fn apply_tuning(&self) -> Result<Vec<ConfigChange>, Error> {
        let unavailable = |e: crate::platform::lambda_client::Error| {
            Error::Subject(format!("configuration of {}: {e}", self.function))
        };
        let before = self.client.get_configuration(&self.function).await.map_err(unavailable)?;
        let from = before["MemorySize"].as_u64().unwrap_or(128);
        let to = (from * 2).min(10240);
        let time = Utc::now();
        self.client.update_configuration(&self.function, &json!({ "MemorySize": to })).await.map_err(unavailable)?;
        Ok(vec![ConfigChange {
            time,
            function: self.function.clone(),
            field: "MemorySize".into(),
            from: json!(from),
            to: json!(to),
        }])
    }

    async fn log_tail(&self) -> Result<Option<String>, Error> {
        let out = self
            .client
            .invoke(&self.function, &json!({}), true)
            .await
            .map_err(|e| Error::Subject(format!("Invoke of {}: {e}", self.function)))?;
        Ok(out.log_tail.map(|t| base64::engine::general_purpose::STANDARD.encode(t)))
    }
}

/// Runs the procedure on a local platform started from `config`.
pub async fn run(
    params: &Params,
    config: &LocalConfig,
    dir: &RunDir,
) -> Result<measure::MeasurementSet, measure::Error> {
    let subject = LocalSubject::start(config, params).await?;
    let r = super::measure(&subject, params, dir, "local").await;
    subject.shutdown().await;
    r
}
