//! The local target as the runtime procedures use it: a [`Session`] starts the embedded platform from the
//! target's functions file for one procedure (container mode when the Docker engine answers, processes
//! otherwise, noted), invokes through the Invoke API and reads what the fixture says about the environment
//! that served (`env_id`, `cold`, `invocations`, `init_code_ms`), forces new environments the way AWS does
//! (a configuration update retires the old ones) and shuts the platform down at the end. Typed parameter
//! reads ([`P`]) and the chart-file helper live here too, so each procedure file holds only its method.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{Error, MeasurementSet, Metric};
use crate::{
    criteria::Params,
    local::{EnvInfo, FunctionSpec, Mode, PlatformConfig},
    platform::{
        lambda_client::{InvokeOutput, ReportLine},
        local::{default_functions_file, LocalTarget},
        LocalConfig,
    },
    report::charts::{self, LatencySamples},
    run_dir::RunDir,
};

/// Typed view of a procedure's parameters; errors name the procedure and the parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct P<'a> {
    pub procedure: &'a str,
    pub params: &'a Params,
}

impl P<'_> {
    fn wrong(&self, key: &str, want: &str, got: &Value) -> Error {
        Error::Param {
            procedure: self.procedure.into(),
            param: key.into(),
            problem: format!("expected {want}, got {got}"),
        }
    }

    /// A string, `default` when absent.
    pub fn str(&self, key: &str, default: &str) -> Result<String, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    /// A positive number, `default` when absent.
    pub fn positive(&self, key: &str, default: f64) -> Result<f64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => {
                v.as_f64().filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| self.wrong(key, "a positive number", v))
            }
        }
    }

    /// A non-negative number, `default` when absent.
    pub fn f64(&self, key: &str, default: f64) -> Result<f64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| self.wrong(key, "a non-negative number", v)),
        }
    }

    /// A count of at least 1, `default` when absent.
    pub fn count(&self, key: &str, default: u64) -> Result<u64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| self.wrong(key, "an integer >= 1", v)),
        }
    }

    /// A boolean, `default` when absent.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.wrong(key, "true or false", v)),
        }
    }

    /// A list of numbers, `default` when absent.
    pub fn list(&self, key: &str, default: &[f64]) -> Result<Vec<f64>, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default.to_vec()),
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| v.as_f64().filter(|x| *x > 0.0).ok_or_else(|| self.wrong(key, "positive numbers", v)))
                .collect(),
            Some(v) => Err(self.wrong(key, "a non-empty list of numbers", v)),
        }
    }
}

/// The functions file of a local target configuration.
pub(crate) fn functions_file(cfg: &LocalConfig) -> std::path::PathBuf {
    cfg.functions.clone().unwrap_or_else(default_functions_file)
}

/// The spec of `function` in the target's functions file.
pub(crate) fn function_spec(cfg: &LocalConfig, function: &str) -> Result<FunctionSpec, Error> {
    let file = functions_file(cfg);
    let config = PlatformConfig::from_file(&file).map_err(|e| Error::Unavailable {
        what: format!("functions file {}", file.display()),
        detail: e.to_string(),
    })?;
    config.functions.into_iter().find(|f| f.name == function).ok_or_else(|| Error::Unavailable {
        what: format!("function `{function}`"),
        detail: format!("not defined in {} (add it there or name another in the profile's params)", file.display()),
    })
}

/// One invocation as a procedure sees it.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// HTTP status of the Invoke call.
    pub status: u16,
    /// Client-side latency.
    pub latency: Duration,
    /// `X-Amz-Function-Error`, if any.
    pub function_error: Option<String>,
    /// The REPORT line of the log tail.
    pub report: Option<ReportLine>,
    /// The fixture's environment id (random per process).
    pub env_id: Option<String>,
    /// The fixture's own word on whether this was its first invocation.
    pub cold: Option<bool>,
    /// Invocations the environment served, this one included.
    pub invocations: Option<u64>,
    /// How long the fixture's init code took.
    pub init_code_ms: Option<f64>,
}

impl Invoked {
    /// From a client answer.
    pub fn from_output(out: &InvokeOutput) -> Invoked {
        let body = out.json().unwrap_or(Value::Null);
        Invoked {
            status: out.status,
            latency: out.latency,
            function_error: out.function_error.clone(),
            report: out.report.clone(),
            env_id: body.get("env_id").and_then(Value::as_str).map(str::to_string),
            cold: body.get("cold").and_then(Value::as_bool),
            invocations: body.get("invocations").and_then(Value::as_u64),
            init_code_ms: body.get("init_code_ms").and_then(Value::as_f64),
        }
    }

    /// A 200 without a function error.
    pub fn ok(&self) -> bool {
        self.status == 200 && self.function_error.is_none()
    }
}

/// The platform started for one procedure.
pub(crate) struct Session {
    /// Platform and client.
    pub t: LocalTarget,
    bumps: std::sync::atomic::AtomicU64,
}

impl Session {
    /// Starts the platform from the target's functions file; `tune` may change the platform configuration
    /// (the front door's stage throttle for the high-load run).
    pub async fn start(cfg: &LocalConfig, tune: impl FnOnce(&mut PlatformConfig)) -> Result<Session, Error> {
        let file = functions_file(cfg);
        let mut config = PlatformConfig::from_file(&file).map_err(|e| Error::Unavailable {
            what: format!("functions file {}", file.display()),
            detail: e.to_string(),
        })?;
        tune(&mut config);
        let platform = crate::local::Platform::start(config)
            .await
            .map_err(|e| Error::Unavailable { what: "the local platform".into(), detail: e.to_string() })?;
        let client = crate::platform::lambda_client::LambdaClient::new(platform.invoke_url(), "harness");
        Ok(Session { t: LocalTarget { platform, client }, bumps: Default::default() })
    }

    /// The note every procedure carries: the mode and why.
    pub fn mode_note(&self) -> String {
        format!(
            "local platform in {} mode ({}){}",
            self.t.platform.mode().name(),
            self.t.platform.mode_reason(),
            if self.t.platform.mode() == Mode::Process {
                ": environments are processes without memory limit or CPU share"
            } else {
                ": each environment a container with memory limit = memory size and a CPU share by memory (1769 MB = 1 vCPU)"
            }
        )
    }

    /// Whether environments are containers.
    pub fn containers(&self) -> bool {
        self.t.platform.mode() == Mode::Container
    }

    /// Live environments of `function`.
    pub fn envs(&self, function: &str) -> Vec<EnvInfo> {
        self.t.platform.environments(function)
    }

    /// Ids of the live environments of `function`.
    pub fn env_ids(&self, function: &str) -> BTreeSet<String> {
        self.envs(function).into_iter().map(|e| e.id).collect()
    }

    /// Invokes `function` with `payload`, asking for the log tail.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Invoked, Error> {
        let out = self.t.client.invoke(function, payload, true).await.map_err(|e| Error::Unavailable {
            what: format!("Invoke {function} on {}", self.t.platform.invoke_url()),
            detail: e.to_string(),
        })?;
        Ok(Invoked::from_output(&out))
    }

    /// UpdateFunctionConfiguration with `fields`, then waits until every environment of the old
    /// configuration is gone (idle ones are retired at once, busy ones when they finish).
    pub async fn update(&self, function: &str, fields: &Value, wait: Duration) -> Result<(), Error> {
        let before = self.env_ids(function);
        self.t.client.update_configuration(function, fields).await.map_err(|e| Error::Unavailable {
            what: format!("UpdateFunctionConfiguration {function} on {}", self.t.platform.invoke_url()),
            detail: e.to_string(),
        })?;
        let start = Instant::now();
        while self.env_ids(function).intersection(&before).next().is_some() {
            if start.elapsed() > wait {
                return Err(Error::Failed(format!(
                    "{function}: environments of the old configuration still alive {:.1} s after the update",
                    wait.as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Forces new environments as on AWS: an environment variable bump (configuration update), waiting
    /// until the old environments are retired.
    pub async fn retire_all(&self, function: &str, spec: &FunctionSpec) -> Result<(), Error> {
        let n = self.bumps.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let mut vars = spec.environment.clone();
        vars.insert("HARNESS_GENERATION".into(), n.to_string());
        self.update(function, &json!({ "Environment": { "Variables": vars } }), Duration::from_secs(30)).await
    }

    /// Stops the platform (every environment removed).
    pub async fn shutdown(self) {
        self.t.platform.shutdown().await;
    }
}

/// Adds a distribution metric and writes its chart file (`raw/<procedure>/samples-<metric>.json`).
pub(crate) fn put_samples(
    set: &mut MeasurementSet,
    dir: &RunDir,
    metric: &str,
    values: Vec<f64>,
    unit: &str,
) -> Result<(), Error> {
    let path = charts::write_chart(
        dir,
        &set.procedure.clone(),
        &charts::samples_file(metric),
        &LatencySamples { unit: unit.into(), values: values.clone() },
    )
    .map_err(|e| Error::Failed(format!("write the samples of {metric}: {e}")))?;
    set.raw.push(path);
    set.metrics.insert(metric.into(), Metric::samples(values, unit));
    Ok(())
}

/// Writes a chart file and lists it.
pub(crate) fn put_chart<T: serde::Serialize>(
    set: &mut MeasurementSet,
    dir: &RunDir,
    file: &str,
    data: &T,
) -> Result<(), Error> {
    let path = charts::write_chart(dir, &set.procedure.clone(), file, data)
        .map_err(|e| Error::Failed(format!("write {file}: {e}")))?;
    set.raw.push(path);
    Ok(())
}

/// The `q` quantile (0..1) of `values`, nearest rank.
pub(crate) fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    crate::stats::percentile_sorted(&v, q * 100.0)
}
