//! [`LocalPlatform`]: the embedded local platform as a [`Platform`] for the `monitoring` and `regression`
//! procedures. It starts the platform, lets Prometheus scrape its `/metrics` with the platform's bearer
//! token, forces cold starts by changing the function's configuration (which retires its environments, as
//! on Lambda) before each invoke, drives warm traffic through the Invoke API with the log tail, and deploys
//! a slower variant by scaling the function's own `WORK_MS` / `INIT_DELAY_MS`, or by adding whole
//! milliseconds to a sleeping handler's `WORK_MS`, through UpdateFunctionConfiguration (every change lands
//! in the platform's audit log).
//!
//! Builds: the platform runs none itself; [`Platform::build`] pushes the build metrics this run's `build`
//! procedure measured (`raw/build/pushed.prom`), and says so when that procedure has not run.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{Error, Platform};
use crate::{
    metrics::{exposition, Auth, Endpoint},
    platform::{local::LocalTarget, LocalConfig},
    services::{PushClient, ScrapeJob},
};

/// Environment variables whose milliseconds a slower variant scales.
const SCALED: [&str; 2] = ["WORK_MS", "INIT_DELAY_MS"];
/// Variable changed to force a new execution environment.
const NONCE: &str = "HARNESS_COLD_START";

/// The local platform, started for one procedure, driving one function.
#[derive(Debug)]
pub struct LocalPlatform {
    target: LocalTarget,
    function: String,
    original: BTreeMap<String, String>,
    current: Mutex<BTreeMap<String, String>>,
    build_metrics: Option<PathBuf>,
}

fn unavailable(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Unavailable { what: what.into(), detail: e.to_string() }
}

fn variables(config: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(config["Environment"]["Variables"].clone()).unwrap_or_default()
}

impl LocalPlatform {
    /// Starts the platform of `config` and reads `function`'s configuration; `build_metrics` is this run's
    /// `raw/build/pushed.prom`.
    pub async fn start(config: &LocalConfig, function: &str, build_metrics: Option<PathBuf>) -> Result<Self, Error> {
        let target = LocalTarget::start(config).await.map_err(|e| unavailable("the local platform", e))?;
        let cfg = target
            .client
            .get_configuration(function)
            .await
            .map_err(|e| unavailable(format!("function {function} on the local platform"), e))?;
        let original = variables(&cfg);
        Ok(LocalPlatform {
            target,
            function: function.to_string(),
            current: Mutex::new(original.clone()),
            original,
            build_metrics,
        })
    }

    /// The started target (its platform and client).
    pub fn target(&self) -> &LocalTarget {
        &self.target
    }

    fn current(&self) -> BTreeMap<String, String> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn deploy(&self, vars: BTreeMap<String, String>) -> Result<(), Error> {
        self.target
            .client
            .update_configuration(&self.function, &json!({ "Environment": { "Variables": vars } }))
            .await
            .map_err(|e| unavailable(format!("UpdateFunctionConfiguration of {}", self.function), e))?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = vars;
        Ok(())
    }

    /// Invokes the function; its REPORT and whether the function says it was its environment's first invocation.
    async fn invoke(&self) -> Result<(crate::platform::report_line::Report, bool), Error> {
        let out = self
            .target
            .client
            .invoke(&self.function, &json!({}), true)
            .await
            .map_err(|e| unavailable(format!("Invoke of {}", self.function), e))?;
        if out.status != 200 || out.function_error.is_some() {
            return Err(Error::Failed(format!(
                "invoke of {} answered {} ({:?}): {}",
                self.function,
                out.status,
                out.function_error.or(out.error_kind),
                String::from_utf8_lossy(&out.payload)
            )));
        }
        let first = crate::platform::functions::SelfReport::from_payload(&out.payload).is_some_and(|f| f.cold);
        let report = out.report.ok_or_else(|| {
            Error::Failed(format!("invoke of {} returned no REPORT line in its log tail", self.function))
        })?;
        Ok((report, first))
    }

    /// Stops the platform (removing every environment).
    pub async fn shutdown(self) {
        self.target.platform.shutdown().await;
    }
}

impl Platform for LocalPlatform {
    fn scrape_job(&self) -> ScrapeJob {
        ScrapeJob::new(
            "local-platform",
            &self.target.platform.metrics_url(),
            Auth::Bearer(self.target.platform.metrics_token().to_string()),
        )
    }

    fn function(&self) -> String {
        self.function.clone()
    }

    async fn cold_starts(&self, n: usize) -> Result<Vec<f64>, Error> {
        let before = self.current();
        let mut out = Vec::with_capacity(n);
        let mut result = Ok(());
        // A new environment whose Init Duration the platform could not measure is tried again (up to as many
        // attempts again as asked); one that is not new is an error.
        for i in 0..2 * n {
            if out.len() == n {
                break;
            }
            let mut vars = before.clone();
            vars.insert(NONCE.into(), format!("{}-{i}", std::process::id()));
            if let Err(e) = self.deploy(vars).await {
                result = Err(e);
                break;
            }
            match self.invoke().await {
                Ok((r, first)) => match r.init_duration_ms {
                    Some(ms) => out.push(ms / 1000.0),
                    None if first => continue,
                    None => {
                        result = Err(Error::Failed(format!(
                            "invoke {i} of {} after a configuration change reported no Init Duration (not a new environment)",
                            self.function
                        )));
                        break;
                    }
                },
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() && out.len() < n {
            result = Err(Error::Failed(format!(
                "{} of {n} cold starts of {} had an Init Duration the platform could measure",
                out.len(),
                self.function
            )));
        }
        let restored = self.deploy(before).await;
        result.and(restored).map(|()| out)
    }

    async fn warm_traffic(&self, duration: Duration) -> Result<Vec<f64>, Error> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < duration || out.len() < 2 {
            let (r, first) = self.invoke().await?;
            if r.init_duration_ms.is_none() && !first {
                out.push(r.duration_ms / 1000.0);
            }
        }
        Ok(out)
    }

    async fn build(&self, pushgateway: &Endpoint) -> Result<(), Error> {
        let Some(file) = self.build_metrics.as_ref().filter(|f| f.is_file()) else {
            return Err(Error::Unavailable {
                what: "this run's build metrics (raw/build/pushed.prom)".into(),
                detail: "the build procedure (AC1) has not run in this run: run AC1 with AC5, e.g. --only AC1,AC5"
                    .into(),
            });
        };
        let text = std::fs::read_to_string(file).map_err(|e| unavailable(file.display().to_string(), e))?;
        let families =
            exposition::parse(&text, &file.display().to_string()).map_err(|e| Error::Failed(e.to_string()))?;
        if families.is_empty() {
            return Err(Error::Failed(format!("{} holds no build metrics", file.display())));
        }
        PushClient::new(pushgateway.clone())
            .push("build", &[("function", &self.function)], &families)
            .await
            .map_err(|e| unavailable(format!("the Pushgateway at {}", pushgateway.url), e))
    }

    async fn set_slowdown(&self, factor: f64) -> Result<(), Error> {
        let mut vars = self.original.clone();
        if (factor - 1.0).abs() > f64::EPSILON {
            let mut scaled = 0;
            for k in SCALED {
                if let Some(ms) = vars.get(k).and_then(|v| v.parse::<f64>().ok()).filter(|ms| *ms > 0.0) {
                    vars.insert(k.into(), format!("{}", (ms * factor).round() as u64));
                    scaled += 1;
                }
            }
            if scaled == 0 {
                return Err(Error::Unavailable {
                    what: format!("a slower variant of {}", self.function),
                    detail: format!(
                        "its configuration sets neither {} above zero: choose a function with handler or init work (fixture-rust-work)",
                        SCALED.join(" nor ")
                    ),
                });
            }
        }
        if vars == self.current() {
            return Ok(());
        }
        self.deploy(vars).await
    }

    async fn add_latency(&self, extra: Duration) -> Result<Duration, Error> {
        let mut vars = self.original.clone();
        let work: u64 = match vars.get("WORK_MS").map(|v| v.parse::<u64>()) {
            Some(Ok(ms)) if vars.get("WORK_MODE").is_some_and(|m| m == "sleep") => ms,
            _ => {
                return Err(Error::Unavailable {
                    what: format!("a variant of {} with added latency", self.function),
                    detail: "its configuration has no WORK_MS with WORK_MODE=sleep (a handler time that adds up): \
                             choose a function like fixture-rust-sleep"
                        .into(),
                })
            }
        };
        // The fixture sleeps whole milliseconds: rounding up keeps the added latency at least what was asked.
        let add = (extra.as_secs_f64() * 1000.0).ceil() as u64;
        vars.insert("WORK_MS".into(), (work + add).to_string());
        if vars != self.current() {
            self.deploy(vars).await?;
        }
        Ok(Duration::from_millis(add))
    }
}

/// Runs `monitoring` or `regression` on a local platform started from `config` for the function the
/// parameters name (`function`, default `fixture-rust`), then stops it.
pub async fn run(
    procedure: &str,
    params: &crate::criteria::Params,
    config: &LocalConfig,
    dir: &crate::run_dir::RunDir,
) -> Result<super::MeasurementSet, Error> {
    let function = params.get("function").and_then(Value::as_str).unwrap_or("fixture-rust");
    let mut params = params.clone();
    if !params.contains_key("history") && std::env::var("HARNESS_HISTORY").map_or(true, |v| v.is_empty()) {
        // Beside the run directories (`target/harness/<run-id>`), where `harness run --history` appends.
        let default = dir.path().parent().unwrap_or(dir.path()).join("history");
        params.insert("history".into(), Value::String(default.display().to_string()));
    }
    let params = &params;
    let platform = LocalPlatform::start(config, function, Some(dir.path().join("raw/build/pushed.prom"))).await?;
    let r = match procedure {
        "monitoring" => super::monitoring::measure(&platform, params, dir, "local").await,
        "regression" => super::regression::measure(&platform, params, dir, "local").await,
        other => Err(Error::NotImplemented { procedure: other.into(), target: "local".into() }),
    };
    platform.shutdown().await;
    r
}
