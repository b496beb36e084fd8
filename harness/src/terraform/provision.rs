//! [`Stack`]: a Terraform module the run brings up itself (`harness run --provision`, `HARNESS_PROVISION=1`)
//! and takes down at its end, whatever the end is.
//!
//! The module directory is copied into the stack's working directory beside the run directory
//! (`<run>.provision/module/`, see [`work_dir`]) and applied there in a workspace named after the run. The copy gives each run its own working directory (`.terraform`, lock
//! file, local state): parallel runs never share one, and the user's module directory is never written to.
//! The workspace keeps parallel runs apart when the module declares a remote backend, where every copy would
//! otherwise read and write the same state key. Before the apply, [`Record`] (`provision/record.json`) says
//! what was applied, where and with which variables (their values in `<run>.provision/vars.json`, 0600), so
//! that `harness restore --run DIR` ([`destroy_recorded`]) can destroy it after the run was killed outright.
//!
//! Destroy runs after a normal run, a failed check, a signal (the run's checks end, then the destroy runs to
//! its end) and a panic ([`Stack`]'s `Drop`). A failed apply destroys what it created before reporting.
//! Only the transient errors of [`TRANSIENT`] are retried; each is named.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::Utc;

pub use super::record::{phases, work_dir, workspace_name, Phase, Phases, Record, State};
use super::{
    command::{tail, Failure, OnSignal, Ran, Terraform},
    record::Values,
};

/// The record of a provisioned run, relative to its run directory.
pub const RECORD: &str = "provision/record.json";
/// `terraform init` deadline (providers are downloaded unless cached).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(600);
/// `terraform apply` / `destroy` deadline (API Gateway and CloudFront changes take minutes, never this long).
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the first healthy invoke after the apply is waited for.
pub const HEALTHY_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts of an apply or destroy that fails with a [`TRANSIENT`] error.
pub const ATTEMPTS: u32 = 3;
/// Wait before the first retry; tripled before each further one.
pub const RETRY_BACKOFF: Duration = Duration::from_secs(15);

/// A transient error that terraform or AWS document as "retry later", recognised in Terraform's message.
#[derive(Debug)]
pub struct Transient {
    /// Its name, said when it is retried.
    pub name: &'static str,
    /// Text of Terraform's error output that identifies it.
    pub patterns: &'static [&'static str],
}

/// The only errors an apply or destroy is retried for (any other error is reported at once).
pub const TRANSIENT: &[Transient] = &[
    // AWS API throttling: "retry with exponential backoff" (AWS SDK and API error-retry documentation);
    // the provider retries too, and gives up after its own attempts under sustained throttling.
    Transient {
        name: "AWS API throttling",
        patterns: &["ThrottlingException", "Rate exceeded", "TooManyRequestsException", "RequestLimitExceeded"],
    },
    // IAM is eventually consistent: a role created moments ago cannot be assumed by Lambda yet (AWS IAM
    // "changes that I make are not always immediately visible").
    Transient { name: "IAM eventual consistency", patterns: &["cannot be assumed by Lambda"] },
    // Lambda refuses a change while the function's LastUpdateStatus is InProgress.
    Transient { name: "Lambda update in progress", patterns: &["An update is in progress"] },
    // API Gateway: "ConflictException ... concurrent modification", documented as retryable.
    Transient { name: "API Gateway concurrent modification", patterns: &["concurrent modification"] },
];

/// The transient error Terraform's error output shows, if any.
pub fn transient(stderr: &str) -> Option<&'static Transient> {
    TRANSIENT.iter().find(|t| t.patterns.iter().any(|p| stderr.contains(p)))
}

/// Errors of provisioning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The module directory does not exist or holds no `.tf` file.
    #[error("--tf-dir {dir}: {problem}")]
    BadModule {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A `--var` is not `NAME=VALUE`, or a `--var-file` cannot be read.
    #[error("{0}")]
    BadVar(String),
    /// `terraform` is not installed.
    #[error("`{program}` not found (provisioning {dir}): install Terraform >= 1.5 or set TERRAFORM to its path")]
    TerraformMissing {
        /// Program looked for.
        program: String,
        /// The module.
        dir: PathBuf,
    },
    /// A Terraform command failed.
    #[error(
        "`terraform {}` of {} failed ({}){}: {}{}",
        .0.command, .0.dir.display(), .0.status, .0.retried, .0.message, .0.cleanup
    )]
    Failed(Box<CommandFailed>),
    /// A file of the run directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The record is not readable.
    #[error("{path}: not a provisioning record: {detail}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The applied module's outputs break the contract.
    #[error(transparent)]
    Outputs(Box<super::Error>),
}

impl From<super::Error> for Error {
    fn from(e: super::Error) -> Self {
        Error::Outputs(Box::new(e))
    }
}

/// A Terraform command that failed.
#[derive(Debug)]
pub struct CommandFailed {
    /// The command (`apply`, `destroy`, ...).
    pub command: String,
    /// The module (the user's directory).
    pub dir: PathBuf,
    /// Exit status or `timed out after N s`.
    pub status: String,
    /// Retries done, if any.
    pub retried: String,
    /// The end of Terraform's error output.
    pub message: String,
    /// What was done about what the failed apply created.
    pub cleanup: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// What to provision: the module and its variables.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The module directory (`--tf-dir`).
    pub module: PathBuf,
    /// `NAME=VALUE` (`--var`), passed as `-var` after the files.
    pub vars: Vec<String>,
    /// `--var-file` files, passed as `-var-file` in order.
    pub var_files: Vec<PathBuf>,
}

impl Spec {
    /// Checks the input before anything is created: the directory holds `.tf` files, each var is
    /// `NAME=VALUE`, each var file is readable.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |problem: &str| Error::BadModule { dir: self.module.clone(), problem: problem.into() };
        let entries = std::fs::read_dir(&self.module).map_err(|e| bad(&format!("cannot read the directory: {e}")))?;
        if !entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "tf" || x == "json")) {
            return Err(bad("no Terraform configuration (*.tf) in it"));
        }
        for v in &self.vars {
            if v.split_once('=').is_none_or(|(n, _)| n.trim().is_empty()) {
                return Err(Error::BadVar(format!("--var {}: expected NAME=VALUE", v.split('=').next().unwrap_or(""))));
            }
        }
        for f in &self.var_files {
            std::fs::metadata(f).map_err(|e| Error::BadVar(format!("--var-file {}: {e}", f.display())))?;
        }
        Ok(())
    }
}

/// A stack up for this run; destroyed when dropped unless [`Stack::destroy`] or [`Stack::keep`] ran.
pub struct Stack {
    run: PathBuf,
    record: Record,
    tf: Terraform,
    settled: bool,
    apply_started: bool,
    _pending: crate::interrupt::Pending,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("run", &self.run).field("record", &self.record).finish_non_exhaustive()
    }
}

/// The Terraform of a recorded stack: its working directory's data dir and its workspace, whatever the
/// environment says.
fn terraform_for(record: &Record) -> Terraform {
    Terraform::from_env()
        .with_env("TF_DATA_DIR", record.module.join(".terraform").display().to_string())
        .with_env("TF_WORKSPACE", record.workspace.clone())
        .with_env("CHECKPOINT_DISABLE", "1")
}

/// `-var-file` and `-var` arguments of a recorded stack, and its Terraform with the recorded `TF_VAR_*`.
fn var_args(record: &Record, tf: &Terraform) -> Result<(Vec<String>, Terraform), Error> {
    let values = Values::load(&record.work())?;
    // The values of recorded variables are needed to destroy what they made: without them, the destroy could
    // refresh another stack (a defaulted region) and find nothing, and the state would be removed with the
    // resources still up.
    if values.vars.len() < record.var_names.len() {
        return Err(Error::Record {
            path: record.work().join("vars.json"),
            detail: format!(
                "the values of the variables {} that the stack was applied with are missing; set them and run `harness restore` again, or destroy with `terraform destroy` in {}",
                record.var_names.join(", "),
                record.module.display()
            ),
        });
    }
    let mut args: Vec<String> = record.var_files.iter().map(|f| format!("-var-file={}", f.display())).collect();
    args.extend(values.vars.iter().map(|v| format!("-var={v}")));
    let tf = values.tf_var_env.iter().fold(tf.clone(), |tf, (k, v)| tf.with_env(k, v.clone()));
    Ok((args, tf))
}

fn set_private(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// Writes `text` to `path`, readable by the owner only (variable values and outputs may be secrets).
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io(path))
}

/// Copies the module `from` into `to`, leaving out Terraform's working files and state of the source.
fn copy_module(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for e in std::fs::read_dir(from).map_err(io(from))?.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == ".terraform" || n == ".git" || n.starts_with("terraform.tfstate") {
            continue;
        }
        let src = e.path();
        let dst = to.join(&name);
        if src.is_dir() {
            copy_module(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io(&src))?;
        }
    }
    Ok(())
}

/// Appends a command's output to `provision/terraform.log`.
fn log(run: &Path, command: &str, ran: &Ran) {
    use std::io::Write;
    // `terraform output -json` prints sensitive outputs in clear; the log is in the run directory.
    let stdout = if command == "output" { "(outputs: in the stack's working directory)\n" } else { &ran.stdout };
    let path = run.join("provision/terraform.log");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(
            f,
            "=== terraform {command} ({}) at {}\n{}{}",
            ran.status,
            Utc::now().to_rfc3339(),
            stdout,
            ran.stderr
        );
    }
}

/// Runs one command of a recorded stack with the named retries; returns its output and the attempts.
fn run_step(
    run: &Path,
    record: &Record,
    tf: &Terraform,
    args: Vec<String>,
    timeout: Duration,
    on_signal: OnSignal,
) -> Result<(Ran, u32), Error> {
    run_step_with(run, record, tf, args, timeout, on_signal, RETRY_BACKOFF)
}

fn run_step_with(
    run: &Path,
    record: &Record,
    tf: &Terraform,
    args: Vec<String>,
    timeout: Duration,
    on_signal: OnSignal,
    backoff: Duration,
) -> Result<(Ran, u32), Error> {
    let command = args.first().cloned().unwrap_or_default();
    let mut retried: Vec<&str> = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let ran = match tf.run(&record.module, &args, timeout, on_signal) {
            Ok(r) => r,
            Err(Failure::Missing) => {
                return Err(Error::TerraformMissing { program: tf.program.clone(), dir: record.source.clone() })
            }
            Err(Failure::Io(e)) => return Err(Error::Io { path: tf.path(), source: e }),
            Err(Failure::Timeout) => {
                return Err(Error::Failed(Box::new(CommandFailed {
                    command,
                    dir: record.source.clone(),
                    status: format!("timed out after {} s; killed", timeout.as_secs()),
                    retried: String::new(),
                    message: String::new(),
                    cleanup: String::new(),
                })))
            }
        };
        log(run, &command, &ran);
        if ran.status.success() {
            return Ok((ran, attempt));
        }
        let retry = transient(&ran.stderr).filter(|_| attempt < ATTEMPTS && !crate::interrupt::interrupted());
        match retry {
            Some(t) => {
                let wait = backoff * 3u32.pow(attempt - 1);
                eprintln!(
                    "provisioning: terraform {command} failed with a transient error ({}); retrying in {} s",
                    t.name,
                    wait.as_secs()
                );
                retried.push(t.name);
                let end = Instant::now() + wait;
                while Instant::now() < end && !crate::interrupt::interrupted() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            None => {
                return Err(Error::Failed(Box::new(CommandFailed {
                    command,
                    dir: record.source.clone(),
                    status: ran.status.to_string(),
                    retried: if retried.is_empty() {
                        String::new()
                    } else {
                        format!(" after retrying {}", retried.join(", "))
                    },
                    message: tail(&ran.stderr, 2000),
                    cleanup: String::new(),
                })));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// `terraform init` of a recorded stack.
fn init(run: &Path, record: &Record, tf: &Terraform, on_signal: OnSignal) -> Result<u32, Error> {
    let args = vec!["init".into(), "-input=false".into(), "-no-color".into()];
    run_step(run, record, tf, args, INIT_TIMEOUT, on_signal).map(|(_, n)| n)
}

/// The number of resources `terraform destroy` says it destroyed.
fn destroyed_count(stdout: &str) -> Option<u64> {
    let at = stdout.rfind("Resources: ")?;
    stdout[at + "Resources: ".len()..].split_whitespace().next()?.parse().ok()
}

/// Removes the working directory of a destroyed stack (its state is empty; what else it holds may be secret).
fn remove_work(record: &Record) {
    let work = record.work();
    if work.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".provision")) {
        if let Err(e) = std::fs::remove_dir_all(&work) {
            eprintln!("provisioning: {}: not removed: {e}", work.display());
        }
    }
}

/// Destroys a recorded stack (init first: a run killed during its init has no working directory yet),
/// then deletes its workspace. Returns the destroy phase.
fn destroy_stack(run: &Path, record: &mut Record, tf: &Terraform) -> Result<Phase, Error> {
    let start = Instant::now();
    let result = (|| {
        init(run, record, tf, OnSignal::Finish)?;
        let mut args: Vec<String> =
            ["destroy", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=300s"].map(String::from).into();
        let (vars, tf) = var_args(record, tf)?;
        args.extend(vars);
        run_step(run, record, &tf, args, APPLY_TIMEOUT, OnSignal::Finish)
    })();
    match result {
        Ok((ran, attempts)) => {
            let outcome = match destroyed_count(&ran.stdout) {
                Some(n) => format!("destroyed {n} resource{}", if n == 1 { "" } else { "s" }),
                None => "destroy complete (Terraform printed no resource count)".into(),
            };
            // The workspace is empty now; deleting it leaves no empty state behind (a remote backend keeps one
            // object per workspace). A workspace that cannot be deleted is only untidy: said in the log.
            let default = Terraform::from_env()
                .with_env("TF_DATA_DIR", record.module.join(".terraform").display().to_string())
                .with_env("CHECKPOINT_DISABLE", "1");
            let args = vec!["workspace".into(), "delete".into(), "-no-color".into(), record.workspace.clone()];
            if let Ok(r) = default.run(&record.module, &args, INIT_TIMEOUT, OnSignal::Finish) {
                log(run, "workspace delete", &r);
            }
            let phase = Phase { seconds: start.elapsed().as_secs_f64(), attempts, outcome };
            record.state = State::Destroyed;
            record.phases.destroy = Some(phase.clone());
            record.save(run)?;
            remove_work(record);
            Ok(phase)
        }
        Err(e) => {
            record.state = State::DestroyFailed;
            record.phases.destroy =
                Some(Phase { seconds: start.elapsed().as_secs_f64(), attempts: 1, outcome: format!("failed: {e}") });
            let _ = record.save(run);
            Err(e)
        }
    }
}

impl Stack {
    /// Copies `spec`'s module into the run directory `run`, records it, and runs `init` + `apply` in the
    /// workspace of `run_id`; reads the outputs of that apply into `outputs.json` of the working directory (checked against
    /// the harness's contract). A failed apply destroys what it created and says so in the error.
    pub fn apply(spec: &Spec, run: &Path, run_id: &str) -> Result<Stack, Error> {
        spec.check()?;
        let rec_dir = run.join("provision");
        std::fs::create_dir_all(&rec_dir).map_err(io(&rec_dir))?;
        let dir = work_dir(run);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        set_private(&dir)?;
        let module = dir.join("module");
        copy_module(&spec.module, &module)?;
        let mut var_files = Vec::new();
        for (i, f) in spec.var_files.iter().enumerate() {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let copy = dir.join(format!("var-file-{i}-{name}"));
            let text =
                std::fs::read_to_string(f).map_err(|e| Error::BadVar(format!("--var-file {}: {e}", f.display())))?;
            write_private(&copy, &text)?;
            var_files.push(copy);
        }
        // TF_VAR_* of the environment are recorded too: restore may run where they are not set.
        let values = Values {
            vars: spec.vars.clone(),
            tf_var_env: std::env::vars().filter(|(k, _)| k.starts_with("TF_VAR_")).collect(),
        };
        write_private(&dir.join("vars.json"), &serde_json::to_string(&values).expect("strings serialize"))?;
        let names = values.tf_var_env.iter().filter_map(|(k, _)| k.strip_prefix("TF_VAR_").map(str::to_string));
        let mut record = Record {
            source: spec.module.canonicalize().unwrap_or_else(|_| spec.module.clone()),
            module: module.canonicalize().map_err(io(&module))?,
            workspace: workspace_name(run_id),
            var_names: names
                .chain(values.vars.iter().filter_map(|v| v.split_once('=').map(|(n, _)| n.to_string())))
                .collect(),
            var_files,
            state: State::Applying,
            updated: Utc::now(),
            phases: Phases::default(),
        };
        record.save(run)?;
        let tf = terraform_for(&record);
        let pending = crate::interrupt::Pending::register(format!(
            "terraform stack of {} (workspace {}): `harness restore --run {}` destroys it",
            record.source.display(),
            record.workspace,
            run.display()
        ));
        let mut stack =
            Stack { run: run.to_path_buf(), record, tf, settled: false, apply_started: false, _pending: pending };
        let start = Instant::now();
        let applied = stack.init_apply();
        match applied {
            Ok(attempts) => {
                stack.record.phases.init_apply = Some(Phase {
                    seconds: start.elapsed().as_secs_f64(),
                    attempts,
                    outcome: format!(
                        "applied {} in workspace {}",
                        stack.record.source.display(),
                        stack.record.workspace
                    ),
                });
                stack.record.state = State::Applied;
                stack.record.save(run)?;
                Ok(stack)
            }
            Err(e) => {
                stack.record.phases.init_apply = Some(Phase {
                    seconds: start.elapsed().as_secs_f64(),
                    attempts: 1,
                    outcome: format!("failed: {e}"),
                });
                stack.settled = true;
                let cleanup = if !stack.apply_started {
                    stack.record.state = State::Destroyed;
                    stack.record.save(run)?;
                    remove_work(&stack.record);
                    "\nnothing was applied".to_string()
                } else {
                    match destroy_stack(run, &mut stack.record, &stack.tf) {
                        Ok(p) => format!("\nwhat the apply created was destroyed ({})", p.outcome),
                        Err(d) => format!(
                        "\nwhat the apply created could NOT be destroyed: {d}\nretry with: harness restore --run {}",
                        run.display()
                    ),
                    }
                };
                Err(match e {
                    Error::Failed(mut f) => {
                        f.cleanup = cleanup;
                        Error::Failed(f)
                    }
                    Error::Outputs(o) => Error::Failed(Box::new(CommandFailed {
                        command: "output -json".into(),
                        dir: spec.module.clone(),
                        status: "outputs break the contract".into(),
                        retried: String::new(),
                        message: o.to_string(),
                        cleanup,
                    })),
                    other => other,
                })
            }
        }
    }

    fn init_apply(&mut self) -> Result<u32, Error> {
        let (run, record, tf) = (&self.run, &self.record, &self.tf);
        let mut attempts = init(run, record, tf, OnSignal::Stop)?;
        self.apply_started = true;
        let mut args: Vec<String> =
            ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=300s"].map(String::from).into();
        let (vars, with_env) = var_args(record, tf)?;
        args.extend(vars);
        attempts += run_step(run, record, &with_env, args, APPLY_TIMEOUT, OnSignal::Stop)?.1 - 1;
        let args = vec!["output".into(), "-json".into(), "-no-color".into()];
        let (ran, _) = run_step(run, record, tf, args, super::TERRAFORM_TIMEOUT, OnSignal::Stop)?;
        let outputs = super::Outputs::parse(
            &ran.stdout,
            &format!("`terraform output -json` of {} (workspace {})", record.source.display(), record.workspace),
        )?;
        super::AwsSettings::from_outputs(&outputs)?;
        write_private(&self.outputs_file(), &ran.stdout)?;
        Ok(attempts)
    }

    /// The saved outputs of the apply (what `--tf-outputs` would read).
    pub fn outputs_file(&self) -> PathBuf {
        self.record.work().join("outputs.json")
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Records the first healthy invoke phase.
    pub fn set_first_invoke(&mut self, phase: Phase) -> Result<(), Error> {
        self.record.phases.first_healthy_invoke = Some(phase);
        self.record.save(&self.run)
    }

    /// Destroys the stack now (also when the run was interrupted: the destroy runs to its end).
    pub fn destroy(mut self) -> Result<Phase, Error> {
        self.settled = true;
        destroy_stack(&self.run, &mut self.record, &self.tf)
    }

    /// Leaves the stack up on purpose; returns the command that removes it.
    pub fn keep(mut self) -> Result<String, Error> {
        self.settled = true;
        self.record.state = State::Kept;
        self.record.save(&self.run)?;
        Ok(format!("harness restore --run {}", self.run.display()))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        eprintln!("provisioning: destroying {} (the run ended early)", self.record.source.display());
        match destroy_stack(&self.run, &mut self.record, &self.tf) {
            Ok(p) => eprintln!("{}", p.text("destroy")),
            Err(e) => {
                eprintln!("provisioning: NOT destroyed: {e}; retry with harness restore --run {}", self.run.display())
            }
        }
    }
}

/// Provisions `spec` for the session's run: applies it (see [`Stack::apply`]), points the session's aws or
/// localstack target at the outputs of that apply, and times the first healthy invoke of the function they
/// name. Prints one line per phase to stderr as it ends.
pub fn provision_session(session: &mut crate::run::Session, spec: &Spec) -> Result<Stack, Error> {
    use crate::platform::{AwsConfig, Target};
    let endpoint_and_kind = match &session.runner.target {
        Target::Aws(c) => (c.endpoint.clone(), c.localstack),
        other => {
            return Err(Error::BadModule {
                dir: spec.module.clone(),
                problem: format!(
                    "--provision applies a Terraform module for the aws and localstack targets, not {}",
                    other.kind().name()
                ),
            })
        }
    };
    eprintln!(
        "provisioning: terraform init + apply of {} (log: {})",
        spec.module.display(),
        session.out.join("provision/terraform.log").display()
    );
    let mut stack = Stack::apply(spec, &session.out, &session.id)?;
    if let Some(p) = &stack.record.phases.init_apply {
        eprintln!("{}", p.text("init+apply"));
    }
    let cfg = AwsConfig {
        tf_dir: None,
        tf_outputs: Some(stack.outputs_file()),
        endpoint: endpoint_and_kind.0,
        localstack: endpoint_and_kind.1,
    };
    session.runner.target = Target::Aws(cfg.clone());
    let phase = first_healthy_invoke(&cfg, &session.runner.dir);
    eprintln!("{}", phase.text("first healthy invoke"));
    stack.set_first_invoke(phase)?;
    Ok(stack)
}

/// Invokes the function the outputs name (empty payload, its alias if any) until one invocation succeeds,
/// within [`HEALTHY_TIMEOUT`]; every attempt is counted. Not a measurement of any check.
fn first_healthy_invoke(cfg: &crate::platform::AwsConfig, dir: &crate::run_dir::RunDir) -> Phase {
    let start = Instant::now();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Phase { seconds: 0.0, attempts: 0, outcome: format!("not measured: no runtime: {e}") },
    };
    rt.block_on(async {
        let target = match crate::platform::aws::AwsTarget::from_config(cfg, dir).await {
            Ok(t) => t,
            Err(e) => {
                return Phase {
                    seconds: start.elapsed().as_secs_f64(),
                    attempts: 0,
                    outcome: format!("not measured: {e}"),
                }
            }
        };
        let qualifier = target.settings().qualifier().map(str::to_string);
        let mut attempts = 0;
        let mut last = String::new();
        while start.elapsed() < HEALTHY_TIMEOUT && !crate::interrupt::interrupted() {
            attempts += 1;
            match target.invoke(b"{}", qualifier.as_deref()).await {
                Ok(i) if i.status_code == 200 && i.function_error.is_none() => {
                    return Phase {
                        seconds: start.elapsed().as_secs_f64(),
                        attempts,
                        outcome: format!("{} answered", target.settings().function_name),
                    }
                }
                Ok(i) => last = format!("status {}, function error {:?}", i.status_code, i.function_error),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let outcome = if crate::interrupt::interrupted() {
            format!(
                "{}: stopped before {} answered; last: {last}",
                crate::interrupt::REASON,
                target.settings().function_name
            )
        } else {
            format!(
                "no healthy invoke of {} within {} s; last: {last}",
                target.settings().function_name,
                HEALTHY_TIMEOUT.as_secs()
            )
        };
        Phase { seconds: start.elapsed().as_secs_f64(), attempts, outcome }
    })
}

/// What [`destroy_recorded`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The stack was destroyed now (the line says what).
    Destroyed(String),
    /// It was destroyed before.
    AlreadyDestroyed(String),
}

/// `harness restore --run DIR`: destroys the stack the run in `run` recorded unless it was destroyed already
/// (a stack kept with `--keep` too). `None` when the run did not provision.
pub fn destroy_recorded(run: &Path) -> Result<Option<Outcome>, Error> {
    let Some(mut record) = Record::load(run)? else { return Ok(None) };
    let what =
        format!("{} (copy of {}, workspace {})", record.module.display(), record.source.display(), record.workspace);
    if record.state == State::Destroyed {
        return Ok(Some(Outcome::AlreadyDestroyed(format!("terraform stack {what}: nothing to destroy"))));
    }
    let tf = terraform_for(&record);
    let phase = destroy_stack(run, &mut record, &tf)?;
    Ok(Some(Outcome::Destroyed(format!("terraform stack {what}: {} in {:.1} s", phase.outcome, phase.seconds))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_transient_errors_are_retried() {
        let t = |s: &str| transient(s).map(|t| t.name);
        assert_eq!(
            t("Error: creating Lambda Function: ThrottlingException: Rate exceeded"),
            Some("AWS API throttling")
        );
        assert_eq!(
            t("InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda."),
            Some("IAM eventual consistency")
        );
        assert_eq!(
            t("ResourceConflictException: An update is in progress for resource: arn:..."),
            Some("Lambda update in progress")
        );
        assert_eq!(
            t("ConflictException: Unable to complete operation due to concurrent modification"),
            Some("API Gateway concurrent modification")
        );
        assert_eq!(t("ResourceConflictException: Function already exist: fixture-rust"), None);
        assert_eq!(t("Error: Invalid reference"), None);
        assert_eq!(t("AccessDeniedException: not authorized"), None);
    }

    #[test]
    fn workspace_names_are_valid() {
        assert_eq!(workspace_name("20261207T221500Z-42"), "perf-20261207T221500Z-42");
        assert_eq!(workspace_name("a/b c"), "perf-a-b-c");
    }

    #[test]
    fn the_destroyed_count_is_read_from_terraforms_summary() {
        assert_eq!(destroyed_count("...\nDestroy complete! Resources: 3 destroyed.\n"), Some(3));
        assert_eq!(
            destroyed_count(
                "No changes. No objects need to be destroyed.\n\nDestroy complete! Resources: 0 destroyed."
            ),
            Some(0)
        );
        assert_eq!(destroyed_count("nothing"), None);
    }

    #[test]
    fn bad_input_names_the_directory_and_the_var() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let e = Spec { module: missing.clone(), ..Spec::default() }.check().unwrap_err();
        assert!(e.to_string().contains(&missing.display().to_string()), "{e}");
        let e = Spec { module: d.path().into(), ..Spec::default() }.check().unwrap_err();
        assert!(e.to_string().contains("no Terraform configuration"), "{e}");
        std::fs::write(d.path().join("main.tf"), "").unwrap();
        let e = Spec { module: d.path().into(), vars: vec!["novalue".into()], ..Spec::default() }.check().unwrap_err();
        assert!(e.to_string().contains("--var novalue: expected NAME=VALUE"), "{e}");
    }

    fn record_in(dir: &Path) -> Record {
        std::fs::create_dir_all(dir.join("provision")).unwrap();
        Record {
            source: dir.into(),
            module: dir.into(),
            workspace: "perf-test".into(),
            var_names: vec![],
            var_files: vec![],
            state: State::Applying,
            updated: Utc::now(),
            phases: Phases::default(),
        }
    }

    /// A stand-in `terraform` that fails with `stderr` until its `n`th call, which succeeds.
    fn flaky(dir: &Path, stderr: &str, n: u32) -> Terraform {
        use std::os::unix::fs::PermissionsExt;
        let fake = dir.join("fake-terraform");
        let count = dir.join("calls");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho x >> {c}\nif [ $(wc -l < {c}) -lt {n} ]; then echo '{stderr}' >&2; exit 1; fi\n\
                 echo 'Destroy complete! Resources: 2 destroyed.'\n",
                c = count.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Terraform { program: fake.display().to_string(), ..Terraform::from_env() }
    }

    fn step(dir: &Path, tf: &Terraform) -> Result<(Ran, u32), Error> {
        let record = record_in(dir);
        let args = vec!["apply".to_string()];
        // A fork of a concurrently spawning test may still hold the fresh script open for writing (ETXTBSY).
        for _ in 0..50 {
            match run_step_with(
                dir,
                &record,
                tf,
                args.clone(),
                Duration::from_secs(30),
                OnSignal::Finish,
                Duration::ZERO,
            ) {
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => return other,
            }
        }
        panic!("the stand-in terraform stayed busy")
    }

    #[test]
    fn a_transient_error_is_retried_and_a_permanent_one_is_not() {
        let d = tempfile::tempdir().unwrap();
        let tf = flaky(d.path(), "Error: ThrottlingException: Rate exceeded", 3);
        let (ran, attempts) = step(d.path(), &tf).unwrap();
        assert_eq!(attempts, 3);
        assert_eq!(destroyed_count(&ran.stdout), Some(2));

        let d = tempfile::tempdir().unwrap();
        let tf = flaky(d.path(), "Error: AccessDeniedException: not authorized", 3);
        let e = step(d.path(), &tf).unwrap_err();
        assert!(e.to_string().contains("AccessDeniedException") && !e.to_string().contains("retrying"), "{e}");
        assert_eq!(std::fs::read_to_string(d.path().join("calls")).unwrap().lines().count(), 1);

        let d = tempfile::tempdir().unwrap();
        let tf = flaky(d.path(), "Error: ThrottlingException: Rate exceeded", 10);
        let e = step(d.path(), &tf).unwrap_err();
        assert!(e.to_string().contains("after retrying AWS API throttling, AWS API throttling"), "{e}");
        assert_eq!(std::fs::read_to_string(d.path().join("calls")).unwrap().lines().count(), ATTEMPTS as usize);
    }

    /// A panic while the stack is up destroys it (`Drop`). Needs `terraform` (or `$TERRAFORM`).
    #[test]
    fn a_panic_destroys_the_stack() {
        if !Terraform::from_env()
            .run(Path::new("."), &["version".into()], Duration::from_secs(30), OnSignal::Finish)
            .is_ok_and(|r| r.status.success())
        {
            eprintln!("a_panic_destroys_the_stack: no terraform (TERRAFORM); not run");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/examples/local");
        let run = d.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let vars = ["invoke_endpoint=http://127.0.0.1:9", "api_url=http://127.0.0.1:9/f", "api_key=k"];
        let spec = Spec { module, vars: vars.map(String::from).into(), ..Spec::default() };
        let err = std::panic::catch_unwind(|| {
            let stack = Stack::apply(&spec, &run, "panic-test").expect("the example applies");
            assert_eq!(Record::load(&run).unwrap().unwrap().state, State::Applied);
            let _keep_it_alive = &stack;
            panic!("a check panicked");
        })
        .unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"a check panicked"));
        let record = Record::load(&run).unwrap().unwrap();
        assert_eq!(record.state, State::Destroyed, "{record:?}");
        assert!(record.phases.destroy.is_some_and(|p| p.outcome == "destroyed 1 resource"));
    }

    #[test]
    fn a_run_without_a_record_has_nothing_to_destroy() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(destroy_recorded(d.path()).unwrap(), None);
    }

    /// A stack applied with `--var` values cannot be destroyed without them: the destroy could refresh another
    /// stack, find nothing and remove the state with the resources still up. Missing values are an error
    /// naming the variables and the file, not an empty set.
    #[test]
    fn a_destroy_without_the_recorded_variable_values_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let module = tmp.path().join("run.provision").join("module");
        std::fs::create_dir_all(&module).unwrap();
        let record = Record {
            source: tmp.path().join("src"),
            module,
            workspace: "perf-x".into(),
            var_names: vec!["region".into()],
            var_files: vec![],
            state: crate::terraform::record::State::Applied,
            updated: chrono::Utc::now(),
            phases: Default::default(),
        };
        let e = var_args(&record, &Terraform::from_env()).unwrap_err().to_string();
        assert!(e.contains("vars.json") && e.contains("region"), "{e}");
    }
}
