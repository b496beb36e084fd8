//! [`Platform::start`]: picks the execution mode, sweeps what killed runs left, builds the fixtures the
//! functions need, and starts the Invoke API, the front door (HTTP and HTTPS) and the pool's upkeep;
//! [`Platform::shutdown`] (or drop) removes everything it started.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{net::TcpListener, task::JoinHandle};

use super::{
    audit::AuditLog,
    config::{ModeChoice, PlatformConfig, Source},
    docker::Docker,
    environment::{EnvInfo, Launch, RunMark},
    fixtures,
    front_door::{self, FrontDoor, TokenBucket},
    invoke_api::{serve, InvokeApi},
    metrics::Metrics,
    pool::Pool,
    sweep, tls, Error, FunctionSpec,
};

/// How execution environments run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Containers on the Docker engine.
    Container,
    /// Child processes.
    Process,
}

impl Mode {
    /// `container` or `process`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Container => "container",
            Mode::Process => "process",
        }
    }
}

/// The running local platform. Dropping it removes every environment it started.
pub struct Platform {
    run_id: String,
    mode: Mode,
    mode_reason: String,
    pool: Arc<Pool>,
    docker: Option<Docker>,
    invoke_addr: SocketAddr,
    http_addr: SocketAddr,
    https_addr: SocketAddr,
    api_key: String,
    metrics_token: String,
    ca_pem: String,
    cert_pem: String,
    ca_path: PathBuf,
    audit_path: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    _state_dir: Option<tempfile::TempDir>,
    stopped: bool,
    _pending: crate::interrupt::Pending,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("run_id", &self.run_id)
            .field("mode", &self.mode)
            .field("invoke", &self.invoke_addr)
            .finish()
    }
}

/// `n` random bytes as hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b.iter_mut().enumerate().for_each(|(i, x)| *x = (t >> ((i % 16) * 8)) as u8 ^ i as u8);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random (v4-shaped) UUID.
pub(crate) fn random_uuid() -> String {
    let h = random_hex(16);
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

async fn bind(port: u16, what: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(("127.0.0.1", port)).await.map_err(Error::io(format!("bind 127.0.0.1:{port} for {what}")))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Engine { call: "blocking task".into(), message: e.to_string() })?
}

/// How a function's environments start, and its code size.
async fn resolve(spec: &FunctionSpec, mode: Mode, docker: &Docker) -> Result<(Launch, u64), Error> {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let name = spec.name.clone();
    match (&spec.source, mode) {
        (Source::Fixture(_), Mode::Process) => {
            let bin = blocking(fixtures::build_rust_fixture).await?;
            Ok((Launch::Process { binary: bin.clone() }, size(&bin)))
        }
        (Source::Binary(p), Mode::Process) => {
            if !p.is_file() {
                return Err(Error::Function {
                    function: name,
                    message: format!("binary {} does not exist", p.display()),
                });
            }
            Ok((Launch::Process { binary: p.clone() }, size(p)))
        }
        (Source::Image(i), Mode::Process) => Err(Error::Function {
            function: name,
            message: format!(
                "has only an image ({i}); process mode needs a `binary` or `fixture` (or run with a Docker engine)"
            ),
        }),
        (Source::Fixture(_) | Source::Binary(_), Mode::Container) => {
            let d = docker.clone();
            let src = spec.source.clone();
            let fname = name.clone();
            let (image, bin) = blocking(move || {
                let (bin, repo) = match src {
                    Source::Binary(p) => (p, format!("perf-acceptance/fn-{}", fname.to_lowercase())),
                    _ => (fixtures::build_rust_fixture()?, "perf-acceptance/fixture-rust".to_string()),
                };
                Ok((fixtures::scratch_image(&d, &bin, &repo)?, bin))
            })
            .await?;
            Ok((Launch::Container { docker: docker.clone(), image }, size(&bin)))
        }
        (Source::Image(i), Mode::Container) => {
            let d = docker.clone();
            let img = i.clone();
            if !blocking(move || d.image_exists(&img)).await? {
                return Err(Error::Function {
                    function: name,
                    message: format!(
                        "image {i} is not on the engine at {} (images are built locally: build it first)",
                        docker.socket().display()
                    ),
                });
            }
            Ok((Launch::Container { docker: docker.clone(), image: i.clone() }, 0))
        }
    }
}

impl Platform {
    /// Starts the platform: every listener bound on loopback, provisioned environments starting.
    pub async fn start(config: PlatformConfig) -> Result<Platform, Error> {
        let docker = Docker::new(config.docker_socket.clone());
        let ping = {
            let d = docker.clone();
            tokio::task::spawn_blocking(move || d.ping()).await.unwrap_or_else(|e| Err(Error::Tls(e.to_string())))
        };
        let (mode, mode_reason) = match (config.mode, &ping) {
            (ModeChoice::Process, _) => (Mode::Process, "mode: process asked for".to_string()),
            (ModeChoice::Container, Ok(())) => (Mode::Container, "mode: container asked for".to_string()),
            (ModeChoice::Container, Err(e)) => {
                return Err(Error::EngineUnavailable {
                    socket: docker.socket().display().to_string(),
                    reason: e.to_string(),
                })
            }
            (ModeChoice::Auto, Ok(())) => (Mode::Container, format!("Docker engine at {}", docker.socket().display())),
            (ModeChoice::Auto, Err(e)) => (Mode::Process, format!("no Docker engine, processes instead: {e}")),
        };
        let engine = ping.is_ok().then(|| docker.clone());
        {
            let e = engine.clone();
            let swept =
                tokio::task::spawn_blocking(move || sweep::sweep_dead_owners(e.as_ref())).await.unwrap_or_default();
            if swept != sweep::Swept::default() {
                tracing::info!(
                    "swept what killed runs left: {} containers, {} processes",
                    swept.containers,
                    swept.processes
                );
            }
        }
        let run_id = config.run_id.clone().unwrap_or_else(|| random_hex(6));
        let mut specs = Vec::new();
        for spec in &config.functions {
            spec.validate().map_err(|m| Error::Function { function: spec.name.clone(), message: m })?;
            let (launch, size) = resolve(spec, mode, &docker).await?;
            specs.push((spec.clone(), launch, size));
        }
        let (state_dir, tmp) = match &config.state_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(Error::io(format!("create {}", d.display())))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("perf-acceptance-local-")
                    .tempdir()
                    .map_err(Error::io("create a state dir"))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let audit_path = state_dir.join(format!("audit-{run_id}.jsonl"));
        let audit = AuditLog::open(&audit_path)?;
        let tls = tls::generate()?;
        let ca_path = state_dir.join(format!("front-door-ca-{run_id}.pem"));
        std::fs::write(&ca_path, &tls.ca_pem).map_err(Error::io(format!("write {}", ca_path.display())))?;
        let metrics = Arc::new(Metrics::default());
        let mark = RunMark { run_id: run_id.clone(), owner: sweep::this_owner() };
        let pool = Arc::new(Pool::new(specs, Pool::ctx_new(mark, metrics, audit, config.account_concurrency)));
        let api_key = config.api_key.clone().unwrap_or_else(|| random_hex(20));
        let metrics_token = config.metrics_token.clone().unwrap_or_else(|| random_hex(20));

        let invoke_l = bind(config.invoke_port, "the Invoke API").await?;
        let http_l = bind(config.front_door_http_port, "the front door (HTTP)").await?;
        let https_l = bind(config.front_door_https_port, "the front door (HTTPS)").await?;
        let addr = |l: &TcpListener| l.local_addr().map_err(Error::io("listener address"));
        let (invoke_addr, http_addr, https_addr) = (addr(&invoke_l)?, addr(&http_l)?, addr(&https_l)?);

        let api = Arc::new(InvokeApi { pool: pool.clone(), metrics_token: metrics_token.clone() });
        let door = Arc::new(FrontDoor {
            pool: pool.clone(),
            api_key: api_key.clone(),
            bucket: TokenBucket::new(config.stage_rate_limit, config.stage_burst_limit),
        });
        let mut tasks = vec![
            serve(invoke_l, move |req| api.clone().handle(req)),
            {
                let door = door.clone();
                serve(http_l, move |req| door.clone().handle(req, "HTTP/1.1"))
            },
            front_door::serve_tls(https_l, tls.config.clone(), door),
        ];
        let upkeep = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                upkeep.maintain();
            }
        }));
        tracing::info!("local platform {run_id}: {} mode ({mode_reason}), Invoke API on {invoke_addr}", mode.name());
        let pending = crate::interrupt::Pending::register(format!(
            "local platform {run_id}: its execution environments ({} mode)",
            mode.name()
        ));
        Ok(Platform {
            run_id,
            mode,
            mode_reason,
            pool,
            docker: engine,
            invoke_addr,
            http_addr,
            https_addr,
            api_key,
            metrics_token,
            ca_pem: tls.ca_pem,
            cert_pem: tls.cert_pem,
            ca_path,
            audit_path,
            tasks,
            _state_dir: tmp,
            stopped: false,
            _pending: pending,
        })
    }

    /// Base URL of the Invoke API (`http://127.0.0.1:PORT`), the endpoint URL for `aws-sdk-lambda`.
    pub fn invoke_url(&self) -> String {
        format!("http://{}", self.invoke_addr)
    }

    /// Front door base URL over plain HTTP.
    pub fn front_door_http(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Front door base URL over HTTPS (certificate for `localhost` and `127.0.0.1`).
    pub fn front_door_https(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    /// PEM of the CA that signed the front door's certificate: what clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA PEM written to a file (for curl `--cacert`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// PEM of the front door's own certificate.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The `x-api-key` the front door requires.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// `/metrics` URL (Prometheus text; needs `Authorization: Bearer <metrics_token>`).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.invoke_addr)
    }

    /// Bearer token of `/metrics`.
    pub fn metrics_token(&self) -> &str {
        &self.metrics_token
    }

    /// The JSONL audit log of configuration changes.
    pub fn audit_log_path(&self) -> &Path {
        &self.audit_path
    }

    /// Live execution environments of `function`.
    pub fn environments(&self, function: &str) -> Vec<EnvInfo> {
        self.pool.environments(function)
    }

    /// Names of the functions served.
    pub fn functions(&self) -> Vec<String> {
        self.pool.names()
    }

    /// Which mode ran.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Why that mode (engine found, asked for, or the engine error that made it fall back).
    pub fn mode_reason(&self) -> &str {
        &self.mode_reason
    }

    /// Run id labeling its containers (`perf-acceptance.run`) and processes (`PERF_ACCEPTANCE_RUN`).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Stops listeners and removes every environment; waits for container removals (at most 60 s).
    pub async fn shutdown(mut self) {
        self.stop_tasks();
        self.pool.shutdown(Duration::from_secs(60)).await;
        let (d, id) = (self.docker.clone(), self.run_id.clone());
        let _ = tokio::task::spawn_blocking(move || sweep::remove_run(d.as_ref(), &id)).await;
        self.stopped = true;
    }

    fn stop_tasks(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.stop_tasks();
        self.pool.shutdown_blocking();
        sweep::remove_run(self.docker.as_ref(), &self.run_id);
    }
}
