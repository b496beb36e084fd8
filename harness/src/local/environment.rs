//! [`Environment`]: one execution environment (a container or a child process) with its Runtime API, its
//! state and counters; it starts the code, waits for init, hands it invocations and measures its memory.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::oneshot,
};

use super::{
    docker::{cgroup_cpu_time, cgroup_peak_bytes, ContainerSpec, Docker},
    runtime_api::{Invocation, Outcome, RuntimeApi, Signal},
    Error, FunctionSpec,
};

/// Lifecycle state of an execution environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvState {
    /// Started; its runtime has not asked for an invocation yet.
    Initializing,
    /// Initialized and waiting for work.
    Idle,
    /// Serving an invocation.
    Busy,
    /// Stopped (idle timeout, configuration update, timeout, crash or shutdown).
    Retired,
}

impl EnvState {
    /// Name used in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            EnvState::Initializing => "initializing",
            EnvState::Idle => "idle",
            EnvState::Busy => "busy",
            EnvState::Retired => "retired",
        }
    }
}

/// What [`super::Platform::environments`] tells about one environment.
#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    /// Platform-side id (also in the container name and the log stream name).
    pub id: String,
    /// Current state.
    pub state: EnvState,
    /// True until it served its first invocation.
    pub cold: bool,
    /// Invocations served.
    pub invocations: u64,
    /// When it was started.
    pub started_at: SystemTime,
    /// Memory size (the limit) in MB.
    pub memory_mb: u32,
    /// Peak memory measured so far, in bytes (cgroup or `VmHWM`).
    pub max_memory_used_bytes: Option<u64>,
    /// Whether it was started for provisioned concurrency.
    pub provisioned: bool,
    /// Init Duration (start to first `next`), once initialized.
    pub init_duration: Option<Duration>,
    /// CPU time the environment used so far (cgroup `cpuacct.usage` / `cpu.stat`, or `/proc/<pid>/stat`).
    pub cpu_time: Option<Duration>,
    /// CPU share in cores (container mode: the NanoCpus limit sized by memory); `None` without a limit.
    pub cpu_share: Option<f64>,
}

#[derive(Debug)]
enum Exec {
    Process { pid: u32, kill: Option<oneshot::Sender<()>> },
    Container { id: String },
}

#[derive(Debug)]
struct Inner {
    state: EnvState,
    invocations: u64,
    last_used: Instant,
    spawned: Instant,
    init: Option<Duration>,
    exec: Option<Exec>,
    peak: Option<u64>,
    cpu_seconds: f64,
}

/// How to start the code of an environment.
#[derive(Debug, Clone)]
pub(crate) enum Launch {
    Process { binary: PathBuf },
    Container { docker: Docker, image: String },
}

/// Labels and environment variables marking what a run started, for cleanup and sweeping.
#[derive(Debug, Clone)]
pub(crate) struct RunMark {
    pub run_id: String,
    pub owner: String,
}

/// How an invocation ended, as the platform saw it.
#[derive(Debug)]
pub(crate) enum Ended {
    Response { body: Bytes, duration: Duration },
    Error { error_type: Option<String>, body: Bytes, duration: Duration },
    Exited { code: Option<i64>, duration: Duration },
    TimedOut { duration: Duration },
}

/// Why init failed.
#[derive(Debug)]
pub(crate) enum InitFailure {
    Reported { error_type: Option<String>, body: Bytes },
    Exited(Option<i64>),
    TimedOut,
}

/// One execution environment.
pub(crate) struct Environment {
    pub id: String,
    pub function: String,
    pub generation: u64,
    pub memory_mb: u32,
    pub provisioned: bool,
    pub started_at: SystemTime,
    api: RuntimeApi,
    inner: Mutex<Inner>,
    logs: Arc<Mutex<Vec<String>>>,
    docker: Option<Docker>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment").field("id", &self.id).field("function", &self.function).finish()
    }
}

/// CPU share Lambda gives a memory size: 1769 MB is one vCPU.
pub(crate) fn nano_cpus(memory_mb: u32) -> u64 {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    ((memory_mb as u64 * 1_000_000_000) / 1769).clamp(10_000_000, cores * 1_000_000_000)
}

impl Environment {
    /// Starts an environment of `spec`; returns once the code was started (init runs on).
    pub async fn launch(
        spec: &FunctionSpec,
        generation: u64,
        provisioned: bool,
        launch: &Launch,
        mark: &RunMark,
    ) -> Result<Arc<Environment>, Error> {
        let api = RuntimeApi::start().await?;
        let id = super::platform::random_hex(8);
        let mut env: BTreeMap<String, String> = spec.environment.clone();
        let stream = format!("{}/[$LATEST]{id}", chrono::Utc::now().format("%Y/%m/%d"));
        for (k, v) in [
            ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE",
                if provisioned { "provisioned-concurrency" } else { "on-demand" }.into(),
            ),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("LAMBDA_TASK_ROOT", "/var/task".into()),
            ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
            ("TZ", ":UTC".into()),
            ("PERF_ACCEPTANCE_RUN", mark.run_id.clone()),
            ("PERF_ACCEPTANCE_OWNER", mark.owner.clone()),
        ] {
            env.insert(k.to_string(), v);
        }
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (exec, spawned, docker) = match launch {
            Launch::Process { binary } => {
                let (exec, spawned) = spawn_process(binary, &env, &api, &logs, &spec.name)?;
                (exec, spawned, None)
            }
            Launch::Container { docker, image } => {
                let c = ContainerSpec {
                    name: format!("perf-acceptance-{}-{}-{id}", mark.run_id, spec.name),
                    image: image.clone(),
                    env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    labels: BTreeMap::from([
                        (super::sweep::RUN_LABEL.to_string(), mark.run_id.clone()),
                        (super::sweep::OWNER_LABEL.to_string(), mark.owner.clone()),
                        ("perf-acceptance.function".to_string(), spec.name.clone()),
                    ]),
                    memory_bytes: spec.memory_mb as u64 * 1024 * 1024,
                    nano_cpus: nano_cpus(spec.memory_mb),
                };
                let (exec, spawned) = spawn_container(docker.clone(), c, &api).await?;
                (exec, spawned, Some(docker.clone()))
            }
        };
        Ok(Arc::new(Environment {
            id,
            function: spec.name.clone(),
            generation,
            memory_mb: spec.memory_mb,
            provisioned,
            started_at: SystemTime::now(),
            api,
            inner: Mutex::new(Inner {
                state: EnvState::Initializing,
                invocations: 0,
                last_used: Instant::now(),
                spawned,
                init: None,
                exec: Some(exec),
                peak: None,
                cpu_seconds: 0.0,
            }),
            logs,
            docker,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for init to finish and moves to `then` (busy for the invocation that started it, idle for a
    /// provisioned one); its Init Duration, `None` when it could not be measured: the runtime's first `next`
    /// came before the instant the engine recorded as the process's start (its `State.StartedAt` is written
    /// after the process runs), and a duration that cannot be negative is not read as zero.
    pub async fn wait_ready(&self, timeout: Duration, then: EnvState) -> Result<Option<Duration>, InitFailure> {
        let mut signals = self.api.signals.lock().await;
        let sig = match tokio::time::timeout(timeout, signals.recv()).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(InitFailure::Exited(None)),
            Err(_) => return Err(InitFailure::TimedOut),
        };
        match sig {
            Signal::Ready(at) => {
                let mut g = self.lock();
                let init = at.checked_duration_since(g.spawned).filter(|d| !d.is_zero());
                g.init = init;
                if g.state == EnvState::Initializing {
                    g.state = then;
                }
                Ok(init)
            }
            Signal::InitError { error_type, body } => Err(InitFailure::Reported { error_type, body }),
            Signal::Exited(code) => Err(InitFailure::Exited(code)),
        }
    }

    /// Takes an idle environment for an invocation; false if it is not idle.
    pub fn claim(&self) -> bool {
        let mut g = self.lock();
        if g.state != EnvState::Idle {
            return false;
        }
        g.state = EnvState::Busy;
        true
    }

    /// Hands the environment one invocation and waits for its outcome, its exit or the timeout.
    pub async fn invoke(&self, request_id: &str, payload: Bytes, arn: &str, timeout: Duration) -> Ended {
        let start = Instant::now();
        let deadline_ms = (SystemTime::now() + timeout)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let (tx, rx) = oneshot::channel();
        let inv = Invocation {
            request_id: request_id.to_string(),
            payload,
            deadline_ms,
            function_arn: arn.to_string(),
            reply: tx,
        };
        let mut signals = self.api.signals.lock().await;
        if self.api.invocations.send(inv).await.is_err() {
            return Ended::Exited { code: None, duration: start.elapsed() };
        }
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        let mut rx = rx;
        let ended = loop {
            tokio::select! {
                out = &mut rx => break match out {
                    Ok(Outcome::Response { body, delivered, at }) => Ended::Response { body, duration: at.saturating_duration_since(delivered) },
                    Ok(Outcome::Error { error_type, body, delivered, at }) => Ended::Error { error_type, body, duration: at.saturating_duration_since(delivered) },
                    Err(_) => Ended::Exited { code: None, duration: start.elapsed() },
                },
                sig = signals.recv() => match sig {
                    Some(Signal::Exited(code)) => break Ended::Exited { code, duration: start.elapsed() },
                    None => break Ended::Exited { code: None, duration: start.elapsed() },
                    Some(_) => continue,
                },
                _ = &mut sleep => break Ended::TimedOut { duration: start.elapsed() },
            }
        };
        let peak = self.measure_peak();
        let mut g = self.lock();
        g.invocations += 1;
        g.last_used = Instant::now();
        if let Some(p) = peak {
            g.peak = Some(g.peak.map_or(p, |q| q.max(p)));
        }
        ended
    }

    /// Back to idle after an invocation; false if it was retired meanwhile.
    pub fn release(&self) -> bool {
        let mut g = self.lock();
        if g.state == EnvState::Retired {
            return false;
        }
        g.state = EnvState::Idle;
        true
    }

    fn measure_peak(&self) -> Option<u64> {
        match &self.lock().exec {
            Some(Exec::Process { pid, .. }) => vm_hwm_bytes(*pid),
            Some(Exec::Container { id }) => cgroup_peak_bytes(id),
            None => None,
        }
    }

    /// CPU seconds the environment used since the last call (init included in the first), from the
    /// container's cgroup or the process' `/proc/<pid>/stat`; `None` when neither can be read.
    pub fn take_cpu_seconds(&self) -> Option<f64> {
        let total = match &self.lock().exec {
            Some(Exec::Process { pid, .. }) => proc_cpu_time(*pid),
            Some(Exec::Container { id }) => cgroup_cpu_time(id),
            None => None,
        }?
        .as_secs_f64();
        let mut g = self.lock();
        let delta = (total - g.cpu_seconds).max(0.0);
        g.cpu_seconds = g.cpu_seconds.max(total);
        Some(delta)
    }

    /// Peak memory measured so far.
    pub fn peak_bytes(&self) -> Option<u64> {
        self.lock().peak
    }

    pub fn state(&self) -> EnvState {
        self.lock().state
    }

    pub fn idle_for(&self) -> Duration {
        self.lock().last_used.elapsed()
    }

    /// Log lines the code wrote since the last call (process mode).
    pub fn take_logs(&self) -> Vec<String> {
        std::mem::take(&mut *self.logs.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn info(&self) -> EnvInfo {
        let g = self.lock();
        EnvInfo {
            id: self.id.clone(),
            state: g.state,
            cold: g.invocations == 0,
            invocations: g.invocations,
            started_at: self.started_at,
            memory_mb: self.memory_mb,
            max_memory_used_bytes: g.peak,
            provisioned: self.provisioned,
            init_duration: g.init,
            cpu_time: match &g.exec {
                Some(Exec::Process { pid, .. }) => proc_cpu_time(*pid),
                Some(Exec::Container { id }) => cgroup_cpu_time(id),
                None => None,
            },
            cpu_share: match &g.exec {
                Some(Exec::Container { .. }) => Some(nano_cpus(self.memory_mb) as f64 / 1e9),
                _ => None,
            },
        }
    }

    /// Stops the code: kills the process, or removes the container (blocking engine call; run it off the
    /// async threads). Idempotent.
    pub fn retire_blocking(&self) {
        let exec = {
            let mut g = self.lock();
            g.state = EnvState::Retired;
            g.exec.take()
        };
        match exec {
            Some(Exec::Process { pid, kill }) => {
                if let Some(k) = kill {
                    let _ = k.send(());
                }
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
            Some(Exec::Container { id }) => {
                if let Some(d) = &self.docker {
                    if let Err(e) = d.remove(&id) {
                        tracing::warn!("removing container {id}: {e}");
                    }
                }
            }
            None => {}
        }
    }

    /// True if a container was started for it (removal is an engine call).
    pub fn is_container(&self) -> bool {
        matches!(self.lock().exec, Some(Exec::Container { .. }))
    }
}

fn spawn_process(
    binary: &PathBuf,
    env: &BTreeMap<String, String>,
    api: &RuntimeApi,
    logs: &Arc<Mutex<Vec<String>>>,
    function: &str,
) -> Result<(Exec, Instant), Error> {
    let mut cmd = tokio::process::Command::new(binary);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = cmd.spawn().map_err(|e| Error::Function {
        function: function.to_string(),
        message: format!("cannot start {}: {e}", binary.display()),
    })?;
    let pid = child.id().unwrap_or(0);
    for out in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let logs = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut l = logs.lock().unwrap_or_else(|p| p.into_inner());
                if l.len() < 1000 {
                    l.push(line);
                }
            }
        });
    }
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let signals = api.signal_tx.clone();
    tokio::spawn(async move {
        let code = tokio::select! {
            s = child.wait() => s.ok().and_then(|s| s.code()).map(i64::from),
            _ = kill_rx => { let _ = child.kill().await; None }
        };
        let _ = signals.send(Signal::Exited(code));
    });
    Ok((Exec::Process { pid, kill: Some(kill_tx) }, spawned))
}

async fn spawn_container(docker: Docker, c: ContainerSpec, api: &RuntimeApi) -> Result<(Exec, Instant), Error> {
    let d = docker.clone();
    let (id, spawned) = tokio::task::spawn_blocking(move || -> Result<(String, Instant), Error> {
        let id = d.create(&c)?;
        let created = Instant::now();
        if let Err(e) = d.start(&id) {
            let _ = d.remove(&id);
            return Err(e);
        }
        Ok((id.clone(), process_start(&d, &id, created)))
    })
    .await
    .map_err(|e| Error::Engine { call: "create/start".into(), message: e.to_string() })??;
    let signals = api.signal_tx.clone();
    let wid = id.clone();
    // A plain thread, not `spawn_blocking`: a runtime waits for its blocking tasks when it shuts down.
    std::thread::spawn(move || {
        let code = docker.wait(&wid).ok();
        let _ = signals.send(Signal::Exited(code));
    });
    Ok((Exec::Container { id }, spawned))
}

/// The instant the container's process started: Init Duration runs from there (the client's cold-start latency
/// still includes the whole sandbox creation). Read from the kernel's start time of the container's first
/// process (`/proc/<pid>/stat`, on the boot clock, 10 ms ticks): the container runtime's init before it execs
/// the function's runtime, so the last part of the container's setup counts as init (an upper bound of Lambda's
/// Init Duration, which leaves the sandbox's creation out); the engine's `State.StartedAt` is written
/// after the process runs (a runtime's first `next` can come before it, and Init Durations of ~1 ms came out
/// of it), so it is only the fallback where `/proc` does not show the container (an engine in a VM). Without
/// either, the instant after `create` (then the engine's start work counts as init).
fn process_start(d: &Docker, id: &str, created: Instant) -> Instant {
    if let Some(t) = d.pid(id).ok().flatten().and_then(kernel_start) {
        return t.max(created);
    }
    let Ok(at) = d.started_at(id) else { return created };
    let ago = std::time::SystemTime::now().duration_since(at).unwrap_or_default();
    Instant::now().checked_sub(ago).map_or(created, |t| t.max(created))
}

/// When process `pid` started, from its `starttime` (field 22 of `/proc/<pid>/stat`, clock ticks since boot at
/// USER_HZ = 100) against the time since boot (`/proc/uptime`): both on the kernel's boot clock.
pub(crate) fn kernel_start(pid: u32) -> Option<Instant> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis (field 3 on).
    let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: u64 = f.get(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    let ago = uptime - ticks as f64 / 100.0;
    Instant::now().checked_sub(Duration::from_secs_f64(ago.max(0.0)))
}

/// CPU time (user + system) of a process from `/proc/<pid>/stat` (fields 14 and 15, in USER_HZ = 100 ticks
/// per second, the value Linux fixes for this interface).
pub(crate) fn proc_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// `VmHWM` (peak resident set) of a process in bytes.
pub(crate) fn vm_hwm_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's start time of a child lands in the window in which it was spawned (within the clock's
    /// 10 ms ticks; the margin is wide so a loaded machine cannot fail it), not at the engine's later record.
    #[test]
    fn a_process_start_is_read_on_the_kernel_clock() {
        let before = Instant::now();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let after = Instant::now();
        let at = kernel_start(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let at = at.expect("/proc shows the child");
        let margin = Duration::from_secs(1);
        assert!(
            at + margin >= before && at <= after + margin,
            "{:?} before, {:?} after",
            before - at.min(before),
            at.saturating_duration_since(after)
        );
        assert_eq!(kernel_start(u32::MAX), None, "no such process");
    }
}
