//! [`LocalTarget`]: the local target of a run, the embedded platform ([`crate::local::Platform`]) started
//! from a [`LocalConfig`] with a [`LambdaClient`] pointed at its Invoke API; [`Session`]: the platform
//! started for one procedure; [`LocalFunctions`]: one function of a session as a [`FunctionPlatform`].

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{
    functions::{Capability, FunctionPlatform, Invocation, SelfReport},
    lambda_client::{InvokeOutput, LambdaClient},
    report_line::{self, Report},
    LocalConfig,
};
use crate::{
    local::{fixtures::workspace_root, EnvInfo, Error, FunctionSpec, Mode, Platform, PlatformConfig},
    measure::types as measure,
};

/// The functions file used when a run names none.
pub fn default_functions_file() -> PathBuf {
    workspace_root().join("fixtures/targets/local.yaml")
}

/// A started local platform and a client for it.
#[derive(Debug)]
pub struct LocalTarget {
    /// The platform (dropping it removes every environment).
    pub platform: Platform,
    /// A client for its Invoke API and control calls.
    pub client: LambdaClient,
}

impl LocalTarget {
    /// Starts the platform with the functions of `config` (or the default functions file).
    pub async fn start(config: &LocalConfig) -> Result<LocalTarget, Error> {
        let file = config.functions.clone().unwrap_or_else(default_functions_file);
        let platform = Platform::start(PlatformConfig::from_file(&file)?).await?;
        let client = LambdaClient::new(platform.invoke_url(), "harness");
        Ok(LocalTarget { platform, client })
    }
}

/// The functions file of a local target configuration.
pub fn functions_file(cfg: &LocalConfig) -> std::path::PathBuf {
    cfg.functions.clone().unwrap_or_else(default_functions_file)
}

/// The spec of `function` in the target's functions file.
pub fn function_spec(cfg: &LocalConfig, function: &str) -> Result<FunctionSpec, measure::Error> {
    let file = functions_file(cfg);
    let config = PlatformConfig::from_file(&file).map_err(|e| measure::Error::Unavailable {
        what: format!("functions file {}", file.display()),
        detail: e.to_string(),
    })?;
    config.functions.into_iter().find(|f| f.name == function).ok_or_else(|| measure::Error::Unavailable {
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
    pub report: Option<Report>,
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
pub struct Session {
    /// Platform and client.
    pub t: LocalTarget,
    bumps: std::sync::atomic::AtomicU64,
}

impl Session {
    /// Starts the platform from the target's functions file; `tune` may change the platform configuration
    /// (the front door's stage throttle for the high-load run).
    pub async fn start(cfg: &LocalConfig, tune: impl FnOnce(&mut PlatformConfig)) -> Result<Session, measure::Error> {
        let file = functions_file(cfg);
        let mut config = PlatformConfig::from_file(&file).map_err(|e| measure::Error::Unavailable {
            what: format!("functions file {}", file.display()),
            detail: e.to_string(),
        })?;
        tune(&mut config);
        let platform = crate::local::Platform::start(config)
            .await
            .map_err(|e| measure::Error::Unavailable { what: "the local platform".into(), detail: e.to_string() })?;
        let client = LambdaClient::new(platform.invoke_url(), "harness");
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
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Invoked, measure::Error> {
        let out = self.t.client.invoke(function, payload, true).await.map_err(|e| measure::Error::Unavailable {
            what: format!("Invoke {function} on {}", self.t.platform.invoke_url()),
            detail: e.to_string(),
        })?;
        Ok(Invoked::from_output(&out))
    }

    /// UpdateFunctionConfiguration with `fields`, then waits until every environment of the old
    /// configuration is gone (idle ones are retired at once, busy ones when they finish).
    pub async fn update(&self, function: &str, fields: &Value, wait: Duration) -> Result<(), measure::Error> {
        let before = self.env_ids(function);
        self.t.client.update_configuration(function, fields).await.map_err(|e| measure::Error::Unavailable {
            what: format!("UpdateFunctionConfiguration {function} on {}", self.t.platform.invoke_url()),
            detail: e.to_string(),
        })?;
        let start = Instant::now();
        while self.env_ids(function).intersection(&before).next().is_some() {
            if start.elapsed() > wait {
                return Err(measure::Error::Failed(format!(
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
    pub async fn retire_all(&self, function: &str, spec: &FunctionSpec) -> Result<(), measure::Error> {
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

impl Session {
    /// Invokes `function` with `payload` and the log tail, as the one [`Invocation`] record: every answer
    /// of the platform is one (failures classified); an error only when the Invoke API could not be asked.
    pub async fn invocation(&self, function: &str, payload: &Value) -> Result<Invocation, measure::Error> {
        let url = self.t.platform.invoke_url();
        let out = self.t.client.invoke(function, payload, true).await.map_err(|e| measure::Error::Unavailable {
            what: format!("Invoke {function} on {url}"),
            detail: e.to_string(),
        })?;
        let source = format!("the log tail of an invocation of {function} on {url}");
        let report = match out.log_tail.as_deref() {
            Some(tail) => report_line::last_report(tail, &source),
            None => Err(report_line::Error::NoReport {
                source_name: source,
                excerpt: format!("status {}: no X-Amz-Log-Result header", out.status),
            }),
        };
        let outcome = Invocation::classify(out.status, out.function_error.as_deref(), &report, || {
            String::from_utf8_lossy(&out.payload).chars().take(300).collect()
        });
        Ok(Invocation { outcome, latency: out.latency, report, own: SelfReport::from_payload(&out.payload) })
    }
}

/// One function of a local [`Session`] as a [`FunctionPlatform`]: a configuration update retires the
/// function's environments (the next invocation is cold, as on Lambda), the memory size is set through
/// UpdateFunctionConfiguration, and CPU follows memory in container mode only.
pub struct LocalFunctions<'a> {
    session: &'a Session,
    function: String,
    spec: FunctionSpec,
    original_memory: Mutex<Option<u64>>,
}

impl<'a> LocalFunctions<'a> {
    /// `function` (defined in the session's functions file as `spec`) on `session`.
    pub fn new(session: &'a Session, function: &str, spec: FunctionSpec) -> LocalFunctions<'a> {
        LocalFunctions { session, function: function.into(), spec, original_memory: Mutex::new(None) }
    }
}

impl FunctionPlatform for LocalFunctions<'_> {
    fn target(&self) -> &'static str {
        "local"
    }

    fn function(&self) -> &str {
        &self.function
    }

    fn describe(&self) -> Vec<String> {
        vec![self.session.mode_note()]
    }

    async fn invoke(&self, payload: &Value) -> Result<Invocation, measure::Error> {
        self.session.invocation(&self.function, payload).await
    }

    async fn force_cold(&self) -> Result<(), measure::Error> {
        self.session.retire_all(&self.function, &self.spec).await
    }

    async fn configured_memory(&self) -> Result<u64, measure::Error> {
        let cfg =
            self.session.t.client.get_configuration(&self.function).await.map_err(|e| measure::Error::Unavailable {
                what: format!("GetFunctionConfiguration {} on {}", self.function, self.session.t.platform.invoke_url()),
                detail: e.to_string(),
            })?;
        cfg.get("MemorySize").and_then(Value::as_u64).ok_or_else(|| {
            measure::Error::Failed(format!("GetFunctionConfiguration of {} has no MemorySize", self.function))
        })
    }

    async fn set_memory(&self, mb: u64) -> Result<(), measure::Error> {
        let before = self.configured_memory().await?;
        {
            let mut original = self.original_memory.lock().unwrap_or_else(|p| p.into_inner());
            original.get_or_insert(before);
        }
        self.session.update(&self.function, &json!({ "MemorySize": mb }), Duration::from_secs(30)).await
    }

    fn cpu_follows_memory(&self) -> Capability {
        if self.session.containers() {
            Ok(())
        } else {
            Err(format!(
                "{}; in process mode every memory size gets the same CPU, so a sweep would measure nothing",
                self.session.mode_note()
            ))
        }
    }

    async fn restore(&self) -> Result<(), measure::Error> {
        let original = self.original_memory.lock().unwrap_or_else(|p| p.into_inner()).take();
        match original {
            Some(mb) => {
                self.session.update(&self.function, &json!({ "MemorySize": mb }), Duration::from_secs(30)).await
            }
            None => Ok(()),
        }
    }
}
