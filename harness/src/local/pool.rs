//! [`Pool`]: Lambda's scaling model over execution environments. One environment per concurrent
//! invocation; idle ones are reused (most recently used first, so the others age out) and retired after the
//! idle timeout; provisioned ones are started ahead and kept; reserved concurrency caps invocations in
//! flight (429 beyond); a configuration update retires the environments of the old configuration, so the
//! next invocation is cold, as on AWS.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use serde_json::{json, Value};

use super::{
    audit::AuditLog,
    environment::{Ended, EnvInfo, EnvState, Environment, InitFailure, Launch, RunMark},
    metrics::Metrics,
    report::{exit_error, timeout_error, Report},
    FunctionSpec,
};

/// An error of the Invoke or control API, in AWS's shape (status, `x-amzn-ErrorType`, message).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into(), reason: None }
    }

    fn not_found(name: &str) -> ApiError {
        ApiError::new(404, "ResourceNotFoundException", format!("Function not found: {}", arn(name)))
    }

    /// The JSON body AWS sends with the error.
    pub fn body(&self) -> Value {
        let mut b = json!({ "Type": "User", "message": self.message });
        if let Some(r) = self.reason {
            b["Reason"] = json!(r);
        }
        b
    }
}

pub(crate) fn arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")
}

/// The result of an invocation that reached the function.
#[derive(Debug)]
pub(crate) struct InvokeResult {
    pub request_id: String,
    pub function_error: Option<&'static str>,
    pub payload: Bytes,
    pub log_tail: String,
}

/// What every function shares.
pub(crate) struct Ctx {
    pub mark: RunMark,
    pub metrics: Arc<Metrics>,
    pub audit: AuditLog,
    pub account_limit: u32,
    account_in_flight: AtomicU32,
    removals: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct FnInner {
    spec: FunctionSpec,
    generation: u64,
    envs: Vec<Arc<Environment>>,
    in_flight: u32,
    provisioning: u32,
    last_modified: String,
    /// When provisioned concurrency was last put.
    provisioned_modified: String,
    revision: String,
}

/// One function and its environments.
pub(crate) struct Function {
    name: String,
    launch: Launch,
    code_size: u64,
    inner: Mutex<FnInner>,
}

/// All functions of the platform.
pub(crate) struct Pool {
    functions: BTreeMap<String, Arc<Function>>,
    pub ctx: Arc<Ctx>,
}

fn now_aws() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

struct Flight<'a> {
    f: &'a Function,
    ctx: &'a Ctx,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let n = {
            let mut g = self.f.lock();
            g.in_flight -= 1;
            g.in_flight
        };
        self.ctx.account_in_flight.fetch_sub(1, Ordering::SeqCst);
        self.ctx.metrics.set("function_concurrent_executions", vec![("function", self.f.name.clone())], n as f64);
    }
}

impl Function {
    fn lock(&self) -> std::sync::MutexGuard<'_, FnInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pool {
    pub fn new(specs: Vec<(FunctionSpec, Launch, u64)>, ctx: Ctx) -> Pool {
        let functions = specs
            .into_iter()
            .map(|(spec, launch, code_size)| {
                ctx.metrics.set(
                    "function_memory_size_bytes",
                    vec![("function", spec.name.clone())],
                    spec.memory_mb as f64 * 1048576.0,
                );
                ctx.metrics.set(
                    "function_memory_limit_bytes",
                    vec![("function", spec.name.clone())],
                    spec.memory_mb as f64 * 1048576.0,
                );
                // Error and throttle series start at zero, so that the error ratio and throttle rate the
                // rules and dashboard compute exist (as zero) before the first error or throttle.
                for status in ["error", "throttled"] {
                    ctx.metrics.add(
                        "function_invocations_total",
                        vec![("function", spec.name.clone()), ("status", status.into())],
                        0.0,
                    );
                }
                for reason in ["ReservedFunctionConcurrentInvocationLimitExceeded", "ConcurrentInvocationLimitExceeded"]
                {
                    ctx.metrics.add(
                        "function_throttles_total",
                        vec![("function", spec.name.clone()), ("reason", reason.into())],
                        0.0,
                    );
                }
                let f = Function {
                    name: spec.name.clone(),
                    launch,
                    code_size,
                    inner: Mutex::new(FnInner {
                        spec,
                        generation: 1,
                        envs: Vec::new(),
                        in_flight: 0,
                        provisioning: 0,
                        last_modified: now_aws(),
                        provisioned_modified: now_aws(),
                        revision: super::platform::random_uuid(),
                    }),
                };
                (f.name.clone(), Arc::new(f))
            })
            .collect();
        Pool { functions, ctx: Arc::new(ctx) }
    }

    pub fn ctx_new(mark: RunMark, metrics: Arc<Metrics>, audit: AuditLog, account_limit: u32) -> Ctx {
        Ctx {
            mark,
            metrics,
            audit,
            account_limit,
            account_in_flight: AtomicU32::new(0),
            removals: Mutex::new(Vec::new()),
        }
    }

    fn function(&self, name: &str) -> Result<&Arc<Function>, ApiError> {
        self.functions.get(name).ok_or_else(|| ApiError::not_found(name))
    }

    pub fn names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    /// Live environments of a function (none for an unknown one).
    pub fn environments(&self, name: &str) -> Vec<EnvInfo> {
        self.functions.get(name).map(|f| f.lock().envs.iter().map(|e| e.info()).collect()).unwrap_or_default()
    }

    /// Retires an environment: off the list now, its process or container stopped in the background.
    fn retire(&self, f: &Function, env: &Arc<Environment>, reason: &'static str) {
        f.lock().envs.retain(|e| !Arc::ptr_eq(e, env));
        self.ctx.metrics.inc(
            "function_scale_events_total",
            vec![("function", f.name.clone()), ("direction", "down".into()), ("reason", reason.into())],
        );
        if env.is_container() {
            let env = env.clone();
            let h = tokio::task::spawn_blocking(move || env.retire_blocking());
            let mut r = self.ctx.removals.lock().unwrap_or_else(|p| p.into_inner());
            r.retain(|h| !h.is_finished());
            r.push(h);
        } else {
            env.retire_blocking();
        }
    }

    async fn launch(
        &self,
        f: &Function,
        spec: &FunctionSpec,
        generation: u64,
        provisioned: bool,
    ) -> Result<Arc<Environment>, ApiError> {
        let env = Environment::launch(spec, generation, provisioned, &f.launch, &self.ctx.mark).await.map_err(|e| {
            ApiError::new(500, "ServiceException", format!("cannot start an execution environment: {e}"))
        })?;
        f.lock().envs.push(env.clone());
        let kind = if provisioned { "provisioned" } else { "on_demand" };
        self.ctx.metrics.inc(
            "function_scale_events_total",
            vec![("function", f.name.clone()), ("direction", "up".into()), ("reason", kind.into())],
        );
        Ok(env)
    }

    /// Invokes `name` with `payload` on a task of its own, so a caller that goes away mid-invocation does
    /// not leave an environment half-initialized or busy forever.
    pub async fn invoke_detached(self: &Arc<Self>, name: &str, payload: Bytes) -> Result<InvokeResult, ApiError> {
        let (pool, name) = (self.clone(), name.to_string());
        tokio::spawn(async move { pool.invoke(&name, payload).await })
            .await
            .unwrap_or_else(|e| Err(ApiError::new(500, "ServiceException", format!("invocation task failed: {e}"))))
    }

    /// Invokes `name` with `payload` (RequestResponse).
    pub async fn invoke(&self, name: &str, payload: Bytes) -> Result<InvokeResult, ApiError> {
        let f = self.function(name)?;
        let fname = || ("function", name.to_string());
        let (idle, spec, generation) = {
            let mut g = f.lock();
            let throttle = |reason: &'static str| {
                self.ctx.metrics.inc("function_throttles_total", vec![fname(), ("reason", reason.into())]);
                self.ctx.metrics.inc("function_invocations_total", vec![fname(), ("status", "throttled".into())]);
                ApiError {
                    status: 429,
                    kind: "TooManyRequestsException",
                    message: "Rate Exceeded.".into(),
                    reason: Some(reason),
                }
            };
            if !g.spec.fault_over_allocate && g.spec.reserved_concurrency.is_some_and(|r| g.in_flight >= r) {
                return Err(throttle("ReservedFunctionConcurrentInvocationLimitExceeded"));
            }
            if self.ctx.account_in_flight.fetch_add(1, Ordering::SeqCst) >= self.ctx.account_limit {
                self.ctx.account_in_flight.fetch_sub(1, Ordering::SeqCst);
                return Err(throttle("ConcurrentInvocationLimitExceeded"));
            }
            g.in_flight += 1;
            self.ctx.metrics.set("function_concurrent_executions", vec![fname()], g.in_flight as f64);
            let generation = g.generation;
            let idle = g.envs.iter().rev().find(|e| e.generation == generation && e.claim()).cloned();
            (idle, g.spec.clone(), generation)
        };
        let _flight = Flight { f, ctx: &self.ctx };
        let request_id = super::platform::random_uuid();
        let (env, init) = match idle {
            Some(e) => (e, None),
            None => {
                let env = self.launch(f, &spec, generation, false).await?;
                match env.wait_ready(Duration::from_secs_f64(spec.init_timeout_s), EnvState::Busy).await {
                    Ok(d) => {
                        if let Some(d) = d {
                            self.ctx.metrics.observe(
                                "function_cold_start_duration_seconds",
                                vec![fname()],
                                d.as_secs_f64(),
                            );
                        }
                        (env, d)
                    }
                    Err(fail) => return Ok(self.init_failed(f, &env, &spec, &request_id, fail)),
                }
            }
        };
        let timeout = Duration::from_secs_f64(spec.timeout_s);
        let ended = env.invoke(&request_id, payload, &arn(name), timeout).await;
        let lines = env.take_logs();
        let (function_error, body, duration, status, error_type, keep) = match ended {
            Ended::Response { body, duration } => (None, body, duration, "success", None, true),
            Ended::Error { error_type, body, duration } => {
                let t = error_type
                    .or_else(|| serde_json::from_slice::<Value>(&body).ok()?["errorType"].as_str().map(str::to_string));
                (Some("Unhandled"), body, duration, "error", t, true)
            }
            Ended::Exited { code, duration } => (
                Some("Unhandled"),
                Bytes::from(exit_error(&request_id, code)),
                duration,
                "error",
                Some("Runtime.ExitError".to_string()),
                false,
            ),
            Ended::TimedOut { duration } => (
                Some("Unhandled"),
                Bytes::from(timeout_error(&request_id, spec.timeout_s)),
                duration,
                "timeout",
                Some("Sandbox.Timedout".to_string()),
                false,
            ),
        };
        let report = Report {
            request_id: &request_id,
            duration,
            memory_mb: spec.memory_mb,
            max_memory_used_bytes: env.peak_bytes(),
            init,
            status: (status == "timeout").then_some("timeout"),
            error_type: if status == "timeout" { None } else { error_type.as_deref().filter(|_| !keep) },
        };
        let log_tail = report.tail(&lines);
        self.ctx.metrics.inc("function_invocations_total", vec![fname(), ("status", status.into())]);
        self.ctx.metrics.observe("function_invocation_duration_seconds", vec![fname()], duration.as_secs_f64());
        if let Some(p) = env.peak_bytes() {
            self.ctx.metrics.set("function_max_memory_used_bytes", vec![fname()], p as f64);
            self.ctx.metrics.set("function_memory_used_bytes", vec![fname()], p as f64);
        }
        if let Some(cpu) = env.take_cpu_seconds() {
            self.ctx.metrics.add("function_cpu_seconds_total", vec![fname()], cpu);
        }
        let current = f.lock().generation == env.generation;
        if !keep {
            self.retire(f, &env, if status == "timeout" { "timeout" } else { "crash" });
        } else if !current {
            self.retire(f, &env, "configuration_update");
        } else if !env.release() {
            self.retire(f, &env, "retired");
        }
        Ok(InvokeResult { request_id, function_error, payload: body, log_tail })
    }

    fn init_failed(
        &self,
        f: &Function,
        env: &Arc<Environment>,
        spec: &FunctionSpec,
        request_id: &str,
        fail: InitFailure,
    ) -> InvokeResult {
        let (payload, error_type, status) = match fail {
            InitFailure::Reported { error_type, body } => {
                let t = error_type
                    .or_else(|| serde_json::from_slice::<Value>(&body).ok()?["errorType"].as_str().map(str::to_string));
                (body, t.unwrap_or_else(|| "Runtime.Unknown".into()), "error")
            }
            InitFailure::Exited(code) => {
                (Bytes::from(exit_error(request_id, code)), "Runtime.ExitError".into(), "error")
            }
            InitFailure::TimedOut => {
                (Bytes::from(timeout_error(request_id, spec.init_timeout_s)), "Sandbox.Timedout".into(), "timeout")
            }
        };
        let report = Report {
            request_id,
            duration: Duration::ZERO,
            memory_mb: spec.memory_mb,
            max_memory_used_bytes: env.peak_bytes(),
            init: env.started_at.elapsed().ok(),
            status: Some(status),
            error_type: Some(&error_type),
        };
        let log_tail = report.tail(&env.take_logs());
        self.ctx
            .metrics
            .inc("function_invocations_total", vec![("function", f.name.clone()), ("status", "error".into())]);
        self.retire(f, env, "init_error");
        InvokeResult { request_id: request_id.to_string(), function_error: Some("Unhandled"), payload, log_tail }
    }

    /// Retires environments idle past their timeout and keeps provisioned concurrency warm; called
    /// periodically.
    pub fn maintain(self: &Arc<Self>) {
        for f in self.functions.values() {
            let (expired, to_start, spec, generation) = {
                let mut g = f.lock();
                let generation = g.generation;
                let want = g.spec.provisioned_concurrency as usize;
                let idle_limit = Duration::from_secs_f64(g.spec.idle_timeout_s);
                let mut provisioned_kept = 0usize;
                let mut expired = Vec::new();
                for e in g.envs.iter().rev() {
                    let state = e.state();
                    if e.generation != generation && state == EnvState::Idle {
                        expired.push((e.clone(), "configuration_update"));
                    } else if e.provisioned && e.generation == generation && state != EnvState::Retired {
                        if provisioned_kept < want {
                            provisioned_kept += 1;
                        } else if state == EnvState::Idle && e.idle_for() > idle_limit {
                            expired.push((e.clone(), "idle_timeout"));
                        }
                    } else if state == EnvState::Idle && e.idle_for() > idle_limit {
                        expired.push((e.clone(), "idle_timeout"));
                    }
                }
                let to_start = want.saturating_sub(provisioned_kept + g.provisioning as usize);
                g.provisioning += to_start as u32;
                (expired, to_start, g.spec.clone(), generation)
            };
            for (e, reason) in expired {
                if e.state() == EnvState::Idle {
                    self.retire(f, &e, reason);
                }
            }
            for _ in 0..to_start {
                let pool = self.clone();
                let f = f.clone();
                let spec = spec.clone();
                tokio::spawn(async move {
                    let started = pool.launch(&f, &spec, generation, true).await;
                    if let Ok(env) = &started {
                        if let Err(e) =
                            env.wait_ready(Duration::from_secs_f64(spec.init_timeout_s), EnvState::Idle).await
                        {
                            tracing::warn!("provisioned environment of {} failed init: {e:?}", f.name);
                            pool.retire(&f, env, "init_error");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    f.lock().provisioning -= 1;
                });
            }
        }
    }

    /// Environment counts by state, for `/metrics`.
    pub fn env_gauges(&self) -> Vec<super::metrics::Sample> {
        let mut out = Vec::new();
        for f in self.functions.values() {
            let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
            for s in [EnvState::Initializing, EnvState::Idle, EnvState::Busy] {
                counts.insert(s.name(), 0);
            }
            for e in f.lock().envs.iter() {
                *counts.entry(e.state().name()).or_default() += 1;
            }
            for (state, n) in counts {
                out.push((
                    "function_environments",
                    vec![("function", f.name.clone()), ("state", state.to_string())],
                    n as f64,
                ));
            }
        }
        out
    }

    /// Stops every environment and waits for container removals (bounded by `deadline`).
    pub async fn shutdown(&self, deadline: Duration) {
        for f in self.functions.values() {
            let envs: Vec<_> = f.lock().envs.clone();
            for e in envs {
                self.retire(f, &e, "shutdown");
            }
        }
        let handles: Vec<_> = std::mem::take(&mut *self.ctx.removals.lock().unwrap_or_else(|p| p.into_inner()));
        let all = futures_join(handles);
        let _ = tokio::time::timeout(deadline, all).await;
    }

    /// Stops every environment without a runtime (Drop, panics).
    pub fn shutdown_blocking(&self) {
        for f in self.functions.values() {
            let envs: Vec<_> = std::mem::take(&mut f.lock().envs);
            for e in envs {
                e.retire_blocking();
            }
        }
    }

    // ----- control plane -----

    pub fn configuration(&self, name: &str) -> Result<Value, ApiError> {
        let f = self.function(name)?;
        let g = f.lock();
        Ok(self.config_json(f, &g))
    }

    fn config_json(&self, f: &Function, g: &FnInner) -> Value {
        let s = &g.spec;
        json!({
            "FunctionName": f.name,
            "FunctionArn": arn(&f.name),
            "Runtime": "provided.al2023",
            "Role": "arn:aws:iam::000000000000:role/perf-acceptance-local",
            "Handler": "bootstrap",
            "CodeSize": f.code_size,
            "Description": "",
            "Timeout": s.timeout_s.ceil() as u64,
            "MemorySize": s.memory_mb,
            "LastModified": g.last_modified,
            "CodeSha256": "",
            "Version": "$LATEST",
            "Environment": { "Variables": s.environment },
            "TracingConfig": { "Mode": "PassThrough" },
            "RevisionId": g.revision,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": if matches!(f.launch, Launch::Container { .. }) { "Image" } else { "Zip" },
            "Architectures": ["x86_64"],
            "EphemeralStorage": { "Size": 512 },
        })
    }

    /// UpdateFunctionConfiguration: MemorySize, Timeout, Environment.Variables. Retires the environments
    /// of the old configuration (busy ones when they finish).
    pub fn update_configuration(&self, name: &str, body: &Value, key: &str) -> Result<Value, ApiError> {
        let f = self.function(name)?;
        let invalid = |m: String| ApiError::new(400, "InvalidParameterValueException", m);
        let mut changes: Vec<(&'static str, Value, Value)> = Vec::new();
        let (config, idle) = {
            let mut g = f.lock();
            let mut spec = g.spec.clone();
            if let Some(m) = body.get("MemorySize") {
                let m = m
                    .as_u64()
                    .filter(|m| (128..=10240).contains(m))
                    .ok_or_else(|| invalid(format!("MemorySize {m} must be an integer in 128..=10240")))?;
                changes.push(("MemorySize", json!(spec.memory_mb), json!(m)));
                spec.memory_mb = m as u32;
            }
            if let Some(t) = body.get("Timeout") {
                let t = t
                    .as_u64()
                    .filter(|t| (1..=900).contains(t))
                    .ok_or_else(|| invalid(format!("Timeout {t} must be an integer in 1..=900")))?;
                changes.push(("Timeout", json!(spec.timeout_s), json!(t)));
                spec.timeout_s = t as f64;
            }
            if let Some(vars) = body.get("Environment").and_then(|e| e.get("Variables")) {
                let vars: BTreeMap<String, String> = serde_json::from_value(vars.clone())
                    .map_err(|e| invalid(format!("Environment.Variables must map names to strings: {e}")))?;
                // Values are not logged: environment variables may hold secrets.
                let keys = |m: &BTreeMap<String, String>| json!(m.keys().collect::<Vec<_>>());
                changes.push(("Environment.Variables", keys(&spec.environment), keys(&vars)));
                spec.environment = vars;
            }
            for (field, from, to) in &changes {
                self.ctx
                    .audit
                    .record(name, "UpdateFunctionConfiguration", field, from.clone(), to.clone(), key)
                    .map_err(|e| ApiError::new(500, "ServiceException", e.to_string()))?;
            }
            if !changes.is_empty() {
                g.spec = spec;
                g.generation += 1;
                g.last_modified = now_aws();
                g.revision = super::platform::random_uuid();
            }
            let generation = g.generation;
            let idle: Vec<_> =
                g.envs.iter().filter(|e| e.generation != generation && e.state() == EnvState::Idle).cloned().collect();
            (self.config_json(f, &g), idle)
        };
        self.ctx.metrics.set(
            "function_memory_size_bytes",
            vec![("function", name.to_string())],
            config["MemorySize"].as_f64().unwrap_or(0.0) * 1048576.0,
        );
        self.ctx.metrics.set(
            "function_memory_limit_bytes",
            vec![("function", name.to_string())],
            config["MemorySize"].as_f64().unwrap_or(0.0) * 1048576.0,
        );
        for e in idle {
            self.retire(f, &e, "configuration_update");
        }
        Ok(config)
    }

    pub fn put_concurrency(&self, name: &str, body: &Value, key: &str) -> Result<Value, ApiError> {
        let f = self.function(name)?;
        let n = body.get("ReservedConcurrentExecutions").and_then(Value::as_u64).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidParameterValueException",
                "ReservedConcurrentExecutions must be a non-negative integer",
            )
        })?;
        if n + 100 > self.ctx.account_limit as u64 {
            return Err(ApiError::new(
                400,
                "InvalidParameterValueException",
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].",
            ));
        }
        let mut g = f.lock();
        let from = g.spec.reserved_concurrency.map_or(Value::Null, |r| json!(r));
        self.ctx
            .audit
            .record(name, "PutFunctionConcurrency", "ReservedConcurrentExecutions", from, json!(n), key)
            .map_err(|e| ApiError::new(500, "ServiceException", e.to_string()))?;
        g.spec.reserved_concurrency = Some(n as u32);
        Ok(json!({ "ReservedConcurrentExecutions": n }))
    }

    pub fn get_concurrency(&self, name: &str) -> Result<Value, ApiError> {
        let f = self.function(name)?;
        let g = f.lock();
        Ok(g.spec.reserved_concurrency.map_or(json!({}), |r| json!({ "ReservedConcurrentExecutions": r })))
    }

    pub fn delete_concurrency(&self, name: &str, key: &str) -> Result<(), ApiError> {
        let f = self.function(name)?;
        let mut g = f.lock();
        let from = g.spec.reserved_concurrency.map_or(Value::Null, |r| json!(r));
        self.ctx
            .audit
            .record(name, "DeleteFunctionConcurrency", "ReservedConcurrentExecutions", from, Value::Null, key)
            .map_err(|e| ApiError::new(500, "ServiceException", e.to_string()))?;
        g.spec.reserved_concurrency = None;
        Ok(())
    }

    /// PutProvisionedConcurrencyConfig: keeps `ProvisionedConcurrentExecutions` environments initialized (the
    /// local platform has no versions or aliases: any qualifier names the function). Audited like the other
    /// configuration changes.
    pub fn put_provisioned(&self, name: &str, qualifier: &str, body: &Value, key: &str) -> Result<Value, ApiError> {
        let f = self.function(name)?;
        let n = body.get("ProvisionedConcurrentExecutions").and_then(Value::as_u64).filter(|n| *n >= 1).ok_or_else(
            || {
                ApiError::new(
                    400,
                    "InvalidParameterValueException",
                    "ProvisionedConcurrentExecutions must be an integer >= 1",
                )
            },
        )?;
        let mut g = f.lock();
        if g.spec.reserved_concurrency.is_some_and(|r| u64::from(r) < n) {
            return Err(ApiError::new(
                400,
                "InvalidParameterValueException",
                format!("Requested Provisioned Concurrency {n} exceeds the function's reserved concurrency"),
            ));
        }
        self.set_provisioned(&mut g, name, qualifier, n as u32, key)?;
        g.provisioned_modified = now_aws();
        Ok(provisioned_json(&g))
    }

    /// GetProvisionedConcurrencyConfig: READY once the environments asked for are initialized.
    pub fn get_provisioned(&self, name: &str, qualifier: &str) -> Result<Value, ApiError> {
        let f = self.function(name)?;
        let g = f.lock();
        if g.spec.provisioned_concurrency == 0 {
            return Err(ApiError::new(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                format!("No Provisioned Concurrency Config found for this function ({name}:{qualifier})"),
            ));
        }
        Ok(provisioned_json(&g))
    }

    /// DeleteProvisionedConcurrencyConfig.
    pub fn delete_provisioned(&self, name: &str, qualifier: &str, key: &str) -> Result<(), ApiError> {
        let f = self.function(name)?;
        let mut g = f.lock();
        self.set_provisioned(&mut g, name, qualifier, 0, key)
    }

    /// Sets the provisioned concurrency of `name` to `n` (0: none), audited as the operation that asked.
    fn set_provisioned(&self, g: &mut FnInner, name: &str, qualifier: &str, n: u32, key: &str) -> Result<(), ApiError> {
        let value = |p: u32| if p == 0 { Value::Null } else { json!(p) };
        let op = if n == 0 { "DeleteProvisionedConcurrencyConfig" } else { "PutProvisionedConcurrencyConfig" };
        self.ctx
            .audit
            .record(
                &format!("{name}:{qualifier}"),
                op,
                "ProvisionedConcurrentExecutions",
                value(g.spec.provisioned_concurrency),
                value(n),
                key,
            )
            .map_err(|e| ApiError::new(500, "ServiceException", e.to_string()))?;
        g.spec.provisioned_concurrency = n;
        Ok(())
    }

    pub fn list_functions(&self) -> Value {
        let fs: Vec<Value> = self.functions.values().map(|f| self.config_json(f, &f.lock())).collect();
        json!({ "Functions": fs })
    }
}

/// The provisioned concurrency config of a function as the Lambda API answers it.
fn provisioned_json(g: &FnInner) -> Value {
    let n = g.spec.provisioned_concurrency as usize;
    let ready = g
        .envs
        .iter()
        .filter(|e| {
            e.provisioned && e.generation == g.generation && matches!(e.state(), EnvState::Idle | EnvState::Busy)
        })
        .count()
        .min(n);
    json!({
        "RequestedProvisionedConcurrentExecutions": n,
        "AvailableProvisionedConcurrentExecutions": ready,
        "AllocatedProvisionedConcurrentExecutions": ready,
        "Status": if ready >= n { "READY" } else { "IN_PROGRESS" },
        "LastModified": g.provisioned_modified,
    })
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}
