//! `harness`: run a profile's checks against a target, rebuild reports, list checks, serve the local target.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use harness::{
    baseline::{self, named, History, Mode},
    criteria::{catalog, Decision, Profile, TargetKind},
    evidence::Status,
    interrupt,
    local::ModeChoice,
    platform::{AwsConfig, KnativeConfig, LocalConfig, Target},
    progress,
    report::{table, Report},
    run,
    run_dir::RunDir,
    terraform::provision::{self, Spec},
};

/// Exit code: every applicable check passed.
const OK: u8 = 0;
/// Exit code: at least one check failed or could not be measured.
const CHECKS_FAILED: u8 = 1;
/// Exit code: bad input or set-up error.
const BAD_INPUT: u8 = 2;

/// Every environment variable the harness reads, for `--help`.
const ENVIRONMENT: &str = "\
Environment (flags win over variables):
  HARNESS_PROFILE, HARNESS_TARGET        defaults of --profile and --target
  HARNESS_RUN_ID                         run id (else NEXTEST_RUN_ID, else a new one); names target/harness/<id>
  HARNESS_OUT                            run directory of the acceptance test binary (cargo test --test acceptance)
  HARNESS_HISTORY                        run history and named baselines (default target/harness/history)
  HARNESS_BASELINE, HARNESS_BASELINE_MODE  baseline name (main) and mode (establish, strict, lenient) of AC6
  HARNESS_LOG                            log filter (tracing EnvFilter syntax, e.g. harness=debug)
  HARNESS_PROGRESS, HARNESS_PROGRESS_EVERY  progress: live, lines or off; seconds between lines in CI
  CI, COLUMNS                            CI set: plain progress lines; terminal width of the live line
  HARNESS_API_KEY, HARNESS_METRICS_TOKEN serve-local: front door API key, /metrics bearer token
  HARNESS_API_CA                         PEM bundle trusted for the API's HTTPS (aws targets)
  SSL_CERT_FILE                          system CA bundle override for HTTPS load
  HARNESS_PROMETHEUS_URL, HARNESS_ALERTMANAGER_URL, HARNESS_PUSHGATEWAY_URL
                                         monitoring servers to use instead of starting local ones; each with
                                         _TOKEN, or _USER and _PASSWORD
  HARNESS_PROMETHEUS_BIN, HARNESS_PROMTOOL_BIN, HARNESS_PROMETHEUS_ALERTMANAGER_BIN, HARNESS_AMTOOL_BIN,
  HARNESS_PROMETHEUS_PUSHGATEWAY_BIN      paths of the monitoring programs (else found on PATH)
  HARNESS_SERVICES_DIR                   pid files of started servers (default $TMPDIR/perf-acceptance-services)
  HARNESS_FIXTURES                       fixtures directory (default: the workspace's fixtures/)
  DOCKER_HOST, PERF_ACCEPTANCE_DOCKER    Docker engine address; docker CLI used for image builds
  PERF_ACCEPTANCE_BUILD_NETWORK          network of image builds (AC1)
  CARGO                                  cargo used to build the Rust fixture function
  AWS_ENDPOINT_URL, AWS_PROFILE, AWS_ACCESS_KEY_ID (and the AWS SDK's default chain)
                                         aws and localstack targets; the API key output may name another
                                         variable (env:<VAR>)
  TERRAFORM                              terraform program for --tf-dir and --provision (default terraform)
  HARNESS_PROVISION                      1: --provision (also for the acceptance test binary, with HARNESS_TF_DIR)
  HARNESS_TF_DIR                         acceptance test binary: the module HARNESS_PROVISION applies
  TF_VAR_<name>                          Terraform variables; with --provision recorded for the destroy
  KUBECONFIG, HARNESS_KUBE_CONTEXT, HARNESS_KNATIVE_NAMESPACE, HARNESS_KNATIVE_INGRESS,
  HARNESS_LAMBDA_API, HARNESS_KNATIVE_SERVING_API, HARNESS_KNATIVE_PROMETHEUS
                                         knative target (see --kubeconfig, --context, --namespace, --ingress)
";

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Validate serverless performance acceptance criteria against a target",
    after_long_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Target")]
struct TargetArgs {
    /// Where the functions run.
    #[arg(long, value_enum, default_value_t = TargetKind::Local, env = "HARNESS_TARGET")]
    target: TargetKind,
    /// Directory to run `terraform output -json` in (aws, localstack).
    #[arg(long, conflicts_with = "tf_outputs")]
    tf_dir: Option<PathBuf>,
    /// Saved `terraform output -json` file (aws, localstack).
    #[arg(long)]
    tf_outputs: Option<PathBuf>,
    /// AWS endpoint override (makes aws talk to LocalStack or an emulator); also `AWS_ENDPOINT_URL`.
    #[arg(long)]
    endpoint: Option<String>,
    /// Kubeconfig file (knative).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (knative).
    #[arg(long)]
    context: Option<String>,
    /// Namespace of the functions (knative; default: HARNESS_KNATIVE_NAMESPACE, else the context's namespace).
    #[arg(long)]
    namespace: Option<String>,
    /// Ingress address for requests, the route's host sent as Host header (knative; Kourier on kind:
    /// http://127.0.0.1:31080; default: HARNESS_KNATIVE_INGRESS, else the Knative Service's status.url).
    #[arg(long)]
    ingress: Option<String>,
    /// Functions file of the local target.
    #[arg(long)]
    functions: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Provisioning")]
struct ProvisionArgs {
    /// Apply --tf-dir before the checks (terraform init + apply, in a copy of the module beside the run
    /// directory and a workspace named after the run) and destroy it after them, also after a failed check or a
    /// signal; `harness restore --run DIR` destroys what a killed run left (aws, localstack).
    #[arg(long, env = "HARNESS_PROVISION", value_parser = clap::builder::BoolishValueParser::new())]
    provision: bool,
    /// With --provision: leave the stack up at the end and print the command that removes it.
    #[arg(long, requires = "provision")]
    keep: bool,
    /// With --provision: a Terraform variable, NAME=VALUE (repeatable; passed as -var after the var files).
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "provision")]
    vars: Vec<String>,
    /// With --provision: a Terraform variable file (repeatable; passed as -var-file in order).
    #[arg(long = "var-file", value_name = "FILE", requires = "provision")]
    var_files: Vec<PathBuf>,
}

#[derive(Subcommand)]
#[expect(clippy::large_enum_variant, reason = "one command is parsed per process; boxing buys nothing")]
enum Command {
    /// Run the checks of a profile against a target; print the table and write report.json, report.md,
    /// report.html, junit.xml. Progress goes to stderr: a live line on a terminal, plain lines in CI.
    Run {
        /// Profile file or name under fixtures/criteria/.
        #[arg(long, default_value = "sre-002", env = "HARNESS_PROFILE")]
        profile: String,
        #[command(flatten)]
        target: TargetArgs,
        /// Output (run) directory; default target/harness/<run-id>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only checks whose id contains this text (several: comma-separated).
        #[arg(long)]
        only: Option<String>,
        /// History directory to append this run's evidence to (nightly CI keeps it); the regression checks
        /// read it and save the named baselines there [default: target/harness/history]
        #[arg(long, env = "HARNESS_HISTORY")]
        history: Option<PathBuf>,
        /// Resume the run in --out that another invocation or another build of the harness started: its
        /// measurements are reused (each noted as resumed). Without it such a directory is refused.
        #[arg(long, env = "HARNESS_RESUME", value_parser = clap::builder::BoolishValueParser::new())]
        resume: bool,
        /// Which checks make the exit code 1.
        #[arg(long, value_enum, default_value_t = FailOn::NotPassed)]
        fail_on: FailOn,
        #[command(flatten)]
        provision: ProvisionArgs,
    },
    /// Run history and named baselines: save, show, compare, trend, record.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Write the report files of a run from the evidence its test processes wrote.
    Report {
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
        /// Which checks make the exit code 1.
        #[arg(long, value_enum, default_value_t = FailOn::NotPassed)]
        fail_on: FailOn,
        /// A JUnit file a test runner wrote for this run's acceptance tests (nextest:
        /// target/nextest/acceptance/junit-acceptance.xml): rewritten in place with each check's figures, and
        /// every skipped check as skipped with its reason.
        #[arg(long, value_name = "FILE")]
        annotate_junit: Option<PathBuf>,
    },
    /// Put back what a run left changed when it was killed before it could restore (SIGKILL, a lost
    /// machine, a second Ctrl-C): every change of its audit log not restored yet, and local environments and
    /// server processes of dead runs. Idempotent; prints what it did.
    Restore {
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
    },
    /// List the checks of a profile and whether each applies to a target.
    List {
        /// Profile file or name under fixtures/criteria/.
        #[arg(long, default_value = "sre-002", env = "HARNESS_PROFILE")]
        profile: String,
        /// Where the functions run.
        #[arg(long, value_enum, default_value_t = TargetKind::Local, env = "HARNESS_TARGET")]
        target: TargetKind,
        /// List the measurement catalog instead.
        #[arg(long)]
        catalog: bool,
    },
    /// Run the embedded local platform in the foreground and print its endpoints (Ctrl-C stops it and
    /// removes every environment it started).
    ServeLocal {
        /// Functions file (default fixtures/targets/local.yaml).
        #[arg(long)]
        functions: Option<PathBuf>,
        /// Execution mode (default: the file's `mode`).
        #[arg(long, value_enum)]
        mode: Option<ModeChoice>,
        /// Invoke API port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Front door HTTP port (0: any).
        #[arg(long, default_value_t = 0)]
        http_port: u16,
        /// Front door HTTPS port (0: any).
        #[arg(long, default_value_t = 0)]
        https_port: u16,
        /// API key the front door requires (default: random).
        #[arg(long, env = "HARNESS_API_KEY")]
        api_key: Option<String>,
        /// Bearer token of /metrics (default: random).
        #[arg(long, env = "HARNESS_METRICS_TOKEN")]
        metrics_token: Option<String>,
    },
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Save a named baseline from the last runs of the history that share the latest run's environment.
    Save {
        /// Baseline name.
        #[arg(long, default_value = "main", env = "HARNESS_BASELINE")]
        name: String,
        /// History directory.
        #[arg(long, env = "HARNESS_HISTORY")]
        history: PathBuf,
        /// Runs to take (a baseline of several runs is steadier than one).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Take the runs up to this run id instead of the latest.
        #[arg(long)]
        until: Option<String>,
    },
    /// Show a named baseline.
    Show {
        /// Baseline name.
        #[arg(long, default_value = "main", env = "HARNESS_BASELINE")]
        name: String,
        /// History directory.
        #[arg(long, env = "HARNESS_HISTORY")]
        history: PathBuf,
    },
    /// Compare a run with a named baseline (exit 1 on a regression, or in strict mode on anything undecided).
    Compare {
        /// Baseline name.
        #[arg(long, default_value = "main", env = "HARNESS_BASELINE")]
        name: String,
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
        /// History directory (noise bands come from it).
        #[arg(long, env = "HARNESS_HISTORY")]
        history: PathBuf,
        /// What a missing baseline or an undecidable check means.
        #[arg(long, value_enum, default_value_t = Mode::Strict, env = "HARNESS_BASELINE_MODE")]
        mode: Mode,
        /// Relative change that counts as a regression, in %.
        #[arg(long, default_value_t = 10.0)]
        threshold_pct: f64,
        /// Compare with a baseline from another environment anyway.
        #[arg(long)]
        allow_other_environment: bool,
    },
    /// Show the last runs of each check with change points marked.
    Trend {
        /// Only checks whose id contains this text.
        #[arg(long)]
        check: Option<String>,
        /// Runs per check.
        #[arg(long, default_value_t = 20)]
        last: usize,
        /// History directory.
        #[arg(long, env = "HARNESS_HISTORY")]
        history: PathBuf,
    },
    /// Append a run's evidence to the history.
    Record {
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
        /// History directory.
        #[arg(long, env = "HARNESS_HISTORY")]
        history: PathBuf,
    },
    /// List the named baselines.
    List {
        /// History directory.
        #[arg(long, env = "HARNESS_HISTORY")]
        history: PathBuf,
    },
}

/// Which checks make `harness run` and `harness report` exit with 1.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum FailOn {
    /// A check that failed or errored (a check without evidence is an error).
    NotPassed,
    /// Only a check left undecided: an error, or no figure where the check measures one. CI of the harness
    /// itself uses this: a threshold missed on a busy machine is a decision, not a defect.
    Undecided,
}

impl FailOn {
    fn exit_code(self, report: &Report) -> u8 {
        let bad = match self {
            FailOn::NotPassed => report.checks.iter().any(|e| matches!(e.status, Status::Failed | Status::Error)),
            FailOn::Undecided => !report.undecided().is_empty(),
        };
        if bad {
            CHECKS_FAILED
        } else {
            OK
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("HARNESS_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run { profile, target, out, only, history, resume, fail_on, provision } => {
            cmd_run(&profile, &target, out, only.as_deref(), history, resume, fail_on, &provision)
        }
        Command::Baseline { command } => cmd_baseline(command),
        Command::Report { run, fail_on, annotate_junit } => cmd_report(&run, fail_on, annotate_junit.as_deref()),
        Command::Restore { run } => cmd_restore(&run),
        Command::List { profile, target, catalog } => cmd_list(&profile, target, catalog),
        Command::ServeLocal { functions, mode, port, http_port, https_port, api_key, metrics_token } => {
            let opts = ServeOpts { functions, mode, port, http_port, https_port, api_key, metrics_token };
            cmd_serve_local(opts)
        }
    };
    ExitCode::from(code.unwrap_or_else(|e| {
        eprintln!("harness: {e}");
        BAD_INPUT
    }))
}

type Res = Result<u8, Box<dyn std::error::Error>>;

/// Prints to stdout; a closed pipe (`harness list | head`) ends output quietly instead of panicking.
fn emit(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

fn root() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

fn load_profile(name: &str) -> Result<Profile, Box<dyn std::error::Error>> {
    Ok(Profile::load(&run::resolve_profile(name, &root()))?)
}

fn make_target(a: &TargetArgs) -> Result<Target, Box<dyn std::error::Error>> {
    let kind = a.target;
    let endpoint = a.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    Ok(match kind {
        TargetKind::Local => Target::Local(LocalConfig { functions: a.functions.clone() }),
        TargetKind::Aws | TargetKind::Localstack => {
            let cfg = AwsConfig {
                tf_dir: a.tf_dir.clone(),
                tf_outputs: a.tf_outputs.clone(),
                endpoint,
                localstack: kind == TargetKind::Localstack,
            };
            // Bad or missing outputs are bad input: say so before any check runs, naming the output.
            harness::terraform::load_settings(cfg.tf_dir.as_deref(), cfg.tf_outputs.as_deref())?;
            Target::Aws(cfg)
        }
        TargetKind::Knative => {
            let env = KnativeConfig::from_env();
            Target::Knative(KnativeConfig {
                kubeconfig: a.kubeconfig.clone(),
                context: a.context.clone().or(env.context),
                namespace: a.namespace.clone().or(env.namespace),
                ingress: a.ingress.clone().or(env.ingress),
                ..env
            })
        }
    })
}

/// The module to provision, checked before anything is created (`None` without --provision).
fn provision_spec(ta: &TargetArgs, pa: &ProvisionArgs) -> Result<Option<Spec>, Box<dyn std::error::Error>> {
    if !pa.provision {
        return Ok(None);
    }
    if !matches!(ta.target, TargetKind::Aws | TargetKind::Localstack) {
        return Err(format!(
            "--provision applies a Terraform module for the aws and localstack targets, not {}",
            ta.target
        )
        .into());
    }
    let Some(module) = ta.tf_dir.clone() else {
        return Err("--provision needs --tf-dir DIR: the Terraform module to apply".into());
    };
    if ta.tf_outputs.is_some() {
        return Err("--provision reads the outputs of its own apply: drop --tf-outputs".into());
    }
    let spec = Spec { module, vars: pa.vars.clone(), var_files: pa.var_files.clone() };
    spec.check()?;
    Ok(Some(spec))
}

#[expect(clippy::too_many_arguments, reason = "one per flag of `harness run`")]
fn cmd_run(
    profile: &str,
    ta: &TargetArgs,
    out: Option<PathBuf>,
    only: Option<&str>,
    history: Option<PathBuf>,
    resume: bool,
    fail_on: FailOn,
    pa: &ProvisionArgs,
) -> Res {
    interrupt::install()?;
    let profile = load_profile(profile)?;
    let spec = provision_spec(ta, pa)?;
    let target = match &spec {
        // The outputs come from the apply; the target is pointed at them once it is done.
        Some(_) => Target::Aws(AwsConfig {
            endpoint: ta.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
            localstack: ta.target == TargetKind::Localstack,
            ..AwsConfig::default()
        }),
        None => make_target(ta)?,
    };
    if let Target::Knative(k) = &target {
        let origin = harness::platform::knative::preflight(k)?;
        eprintln!("knative: kubeconfig context {} at {}", origin.context, origin.server);
    }
    let mut session = run::Session::open(profile, target, out, history, &root(), |d| d.resume(resume))?;
    session.select(only)?;
    interrupt::set_run_dir(session.out.clone());
    let stack = match &spec {
        None => None,
        Some(spec) => match provision::provision_session(&mut session, spec) {
            Ok(stack) => Some(stack),
            Err(e) if interrupt::interrupted() => {
                eprintln!("harness: {e}");
                return Ok(interrupt::exit_code().unwrap_or(BAD_INPUT));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let selected = session.select(only)?;
    let checks = progress::phase("checks", Some(selected.len() as u64));
    for (i, check) in selected.iter().enumerate() {
        checks.println(&format!("[{}/{}] {} ...", i + 1, selected.len(), check.id));
        let e = session.runner.run_check(check)?;
        checks.println(&format!(
            "[{}/{}] {} {}: {}",
            i + 1,
            selected.len(),
            check.id,
            e.status.name().to_uppercase(),
            e.reason
        ));
        checks.inc();
    }
    checks.finish();
    let teardown = stack.map(|s| teardown(s, pa.keep, &session.out));
    let done = session.finish(|id| selected.iter().any(|c| c.id == id))?;
    emit(&table(&done.report));
    for p in &done.written {
        emit(&format!("wrote {}\n", p.display()));
    }
    if let Some(t) = &teardown {
        emit(&t.text);
    }
    let teardown_failed = teardown.as_ref().is_some_and(|t| t.failed);
    if let Some(code) = interrupt::exit_code() {
        // A partial run is not history: its evidence stays in the run directory only.
        drop(session);
        eprint!("harness: interrupted; after the clean-up:\n{}", interrupt::outstanding_text());
        return Ok(code);
    }
    match &done.appended {
        Ok(n) => println!("appended {n} checks to the history {}", session.history.display()),
        Err(e) => eprintln!("history {}: nothing appended: {e}", session.history.display()),
    }
    emit(&undecided_text(&done.report));
    emit(&format!("report: {}\n", session.out.join("report.html").display()));
    if teardown_failed {
        return Ok(BAD_INPUT);
    }
    Ok(fail_on.exit_code(&done.report))
}

/// What the end of a provisioned run printed.
struct Teardown {
    text: String,
    failed: bool,
}

/// Destroys the stack (or keeps it with --keep); the phase lines and what to do next.
fn teardown(stack: provision::Stack, keep: bool, run: &std::path::Path) -> Teardown {
    let mut failed = false;
    let last = if keep {
        match stack.keep() {
            Ok(cmd) => format!("provisioning: --keep: the stack is up; remove it with: {cmd}\n"),
            Err(e) => {
                failed = true;
                format!("provisioning: {e}\n")
            }
        }
    } else {
        match stack.destroy() {
            Ok(_) => String::new(),
            Err(e) => {
                failed = true;
                format!("provisioning: NOT destroyed: {e}\nretry with: harness restore --run {}\n", run.display())
            }
        }
    };
    let phases = provision::phases(run).map(|p| p.text()).unwrap_or_default();
    Teardown { text: phases + &last, failed }
}

/// The checks left undecided, one line each (empty when there are none).
fn undecided_text(report: &Report) -> String {
    let u = report.undecided();
    if u.is_empty() {
        return String::new();
    }
    let mut text = format!("{} checks left undecided:\n", u.len());
    for e in u {
        text += &format!("  {} {}: {}\n", e.id, e.status.name(), e.reason);
    }
    text
}

fn cmd_baseline(command: BaselineCommand) -> Res {
    match command {
        BaselineCommand::Save { name, history, runs, until } => {
            let b = named::save(&History::open(&history)?, &name, runs, until.as_deref())?;
            print!("{}", baseline::text::baseline(&b));
            println!("saved {}", named::path(&history, &name)?.display());
            Ok(OK)
        }
        BaselineCommand::Show { name, history } => {
            print!("{}", baseline::text::baseline(&named::load(&history, &name)?));
            Ok(OK)
        }
        BaselineCommand::Compare { name, run, history, mode, threshold_pct, allow_other_environment } => {
            let h = History::open(&history)?;
            let dir = RunDir::open(&run)?;
            let info = dir.info()?;
            let current: Vec<baseline::Record> =
                dir.evidence()?.iter().map(|e| baseline::Record::from_evidence(e, &info)).collect();
            let b = match named::load(&history, &name) {
                Err(e @ baseline::Error::NoBaseline { .. }) if mode == Mode::Lenient => {
                    println!("lenient: {e}; nothing compared");
                    return Ok(OK);
                }
                other => other?,
            };
            let past: Vec<baseline::Record> = h.records()?.into_iter().filter(|r| r.run != info.id).collect();
            let opts =
                baseline::Options { mode, threshold: threshold_pct / 100.0, confidence: 0.99, allow_other_environment };
            let c = baseline::compare(&b, &current, &past, &opts)?;
            print!("{}", baseline::text::comparison(&c));
            Ok(if c.regressions().is_empty() && c.problems.is_empty() { OK } else { CHECKS_FAILED })
        }
        BaselineCommand::Trend { check, last, history } => {
            let records = History::open(&history)?.records()?;
            let mut checks: Vec<&String> = records
                .iter()
                .map(|r| &r.check)
                .filter(|c| check.as_ref().is_none_or(|f| c.contains(f.as_str())))
                .collect();
            checks.sort();
            checks.dedup();
            let latest = records.last().map(|r| r.environment.comparable_key()).unwrap_or_default();
            let trends: Vec<baseline::Trend> = checks
                .iter()
                .map(|c| {
                    let series: Vec<&baseline::Record> =
                        records.iter().filter(|r| &&r.check == c && r.environment.comparable_key() == latest).collect();
                    baseline::trend(c, &series, last, baseline::WINDOW, baseline::Z)
                })
                .collect();
            print!("{}", baseline::text::trends(&trends));
            Ok(OK)
        }
        BaselineCommand::Record { run, history } => {
            let n = History::open(&history)?.append_run(&RunDir::open(&run)?)?;
            println!("appended {n} checks of {} to {}", run.display(), history.display());
            Ok(OK)
        }
        BaselineCommand::List { history } => {
            for n in named::list(&history) {
                println!("{n}");
            }
            Ok(OK)
        }
    }
}

fn cmd_report(run_dir: &std::path::Path, fail_on: FailOn, annotate: Option<&std::path::Path>) -> Res {
    if !run_dir.join("run.json").exists() {
        return Err(format!("{}: not a run directory (no run.json)", run_dir.display()).into());
    }
    let dir = RunDir::open(run_dir)?;
    let info = dir.info()?;
    let profile = Profile::load(&info.profile_path)?;
    let report = Report::from_run(&dir, &profile)?;
    emit(&table(&report));
    for p in report.write(run_dir)? {
        emit(&format!("wrote {}\n", p.display()));
    }
    if let Some(file) = annotate {
        let xml = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let annotated = harness::report::annotate_junit(&xml, &report)
            .map_err(|e| format!("{}: not a JUnit file: {e}", file.display()))?;
        // Written beside it and renamed: a failure leaves the runner's file as it was.
        let tmp = file.with_extension("xml.tmp");
        std::fs::write(&tmp, annotated).and_then(|()| std::fs::rename(&tmp, file)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", file.display())
        })?;
        emit(&format!("annotated {}\n", file.display()));
    }
    emit(&undecided_text(&report));
    emit(&format!("report: {}\n", run_dir.join("report.html").display()));
    Ok(fail_on.exit_code(&report))
}

fn cmd_restore(run_dir: &std::path::Path) -> Res {
    let rt = tokio::runtime::Runtime::new()?;
    let done = rt.block_on(harness::restore::restore_run(run_dir))?;
    emit(&done.text(run_dir));
    Ok(if done.failed.is_empty() { OK } else { CHECKS_FAILED })
}

fn cmd_list(profile: &str, kind: TargetKind, show_catalog: bool) -> Res {
    if show_catalog {
        for d in catalog::CATALOG {
            emit(&format!("{}.{}\t{:?}\t{:?}\t{}\n", d.procedure, d.metric, d.dimension, d.shape, d.about));
        }
        return Ok(OK);
    }
    let profile = load_profile(profile)?;
    let target = Target::from_kind(kind);
    let mut text =
        format!("{} ({}) on target {}: {} checks\n", profile.title, profile.name, kind, profile.checks.len());
    for c in &profile.checks {
        let what = match &c.decision {
            Decision::Measured { measure, expect, .. } => format!("{measure} {expect}"),
            Decision::Manual { .. } => "manual".into(),
        };
        let applies = match run::applicability(c, &target) {
            Ok(()) => "applies".to_string(),
            Err(why) => format!("skipped: {why}"),
        };
        text += &format!("{:<36} {:<5} {:<48} {}\n", c.id, c.ac, what, applies);
    }
    emit(&text);
    Ok(OK)
}

struct ServeOpts {
    functions: Option<PathBuf>,
    mode: Option<ModeChoice>,
    port: u16,
    http_port: u16,
    https_port: u16,
    api_key: Option<String>,
    metrics_token: Option<String>,
}

fn cmd_serve_local(o: ServeOpts) -> Res {
    use harness::local::{Platform, PlatformConfig};
    let file = o.functions.unwrap_or_else(harness::platform::local::default_functions_file);
    let mut config = PlatformConfig::from_file(&file)?;
    if let Some(m) = o.mode {
        config.mode = m;
    }
    config.invoke_port = o.port;
    config.front_door_http_port = o.http_port;
    config.front_door_https_port = o.https_port;
    config.api_key = o.api_key;
    config.metrics_token = o.metrics_token;
    interrupt::install()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let p = match interrupt::or_cancelled(Platform::start(config)).await {
            Some(p) => p?,
            None => return Ok(interrupt::exit_code().unwrap_or(OK)),
        };
        println!("local platform {} ({} mode: {})", p.run_id(), p.mode().name(), p.mode_reason());
        println!("functions:        {} (from {})", p.functions().join(", "), file.display());
        println!("Invoke API:       {}   (aws --endpoint-url, AWS_ENDPOINT_URL_LAMBDA)", p.invoke_url());
        println!("front door HTTP:  {}/{{function}}   (header x-api-key: {})", p.front_door_http(), p.api_key());
        println!("front door HTTPS: {}/{{function}}   (CA: {})", p.front_door_https(), p.ca_path().display());
        println!("metrics:          {}   (Authorization: Bearer {})", p.metrics_url(), p.metrics_token());
        println!("audit log:        {}", p.audit_log_path().display());
        println!("Ctrl-C (or SIGTERM) stops the platform and removes its environments.");
        interrupt::cancelled().await;
        eprintln!("stopping: removing environments");
        p.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(interrupt::exit_code().unwrap_or(OK))
    })
}
