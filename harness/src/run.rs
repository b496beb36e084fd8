//! [`Runner`]: one run of a profile against a target: which checks apply, the measurement each needs
//! (taken once per run through the [`RunDir`]), and the evidence that decides it.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::{
    criteria::{Check, Decision, Params, Profile},
    evidence::{self, Evidence},
    measure::{self, MeasurementSet, Support},
    platform::Target,
    run_dir::{Error, RunDir, RunInfo},
};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Whether a check applies to the target, and why not.
pub fn applicability(check: &Check, target: &Target) -> Result<(), String> {
    let kind = target.kind();
    match &check.decision {
        Decision::Manual { reason } => return Err(format!("manual: {reason}")),
        Decision::Measured { .. } => {}
    }
    if let Some(ts) = &check.targets {
        if !ts.contains(&kind) {
            let names: Vec<&str> = ts.iter().map(|t| t.name()).collect();
            return Err(format!("applies to {} only", names.join(", ")));
        }
    }
    let Decision::Measured { measure, .. } = &check.decision else { unreachable!("manual checks returned above") };
    match measure::support_metric(measure, kind) {
        Support::Yes => Ok(()),
        Support::NotApplicable(why) => Err(why),
    }
}

/// Runs checks of one profile against one target, writing evidence into a run directory.
pub struct Runner {
    /// The profile.
    pub profile: Profile,
    /// The target.
    pub target: Target,
    /// The run directory.
    pub dir: RunDir,
    rt: tokio::runtime::Runtime,
}

impl Runner {
    /// A runner; records the run in `dir`.
    pub fn new(profile: Profile, target: Target, dir: RunDir, id: &str) -> Result<Runner, Error> {
        dir.init(RunInfo {
            id: id.into(),
            profile: profile.name.clone(),
            profile_path: profile.path.clone(),
            target: target.kind().name().into(),
            started: Utc::now(),
            environment: crate::fingerprint::Fingerprint::current(),
            invocation: String::new(), // the run directory's invocation, set by `init`
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(io(dir.path()))?;
        Ok(Runner { profile, target, dir, rt })
    }

    /// Decides one check (measuring what it needs unless this run already has it) and stores the evidence.
    pub fn run_check(&self, check: &Check) -> Result<Evidence, Error> {
        let e = self.evaluate(check)?;
        self.dir.write_evidence(&e)?;
        Ok(e)
    }

    fn evaluate(&self, check: &Check) -> Result<Evidence, Error> {
        let target = self.target.kind().name();
        if let Err(why) = applicability(check, &self.target) {
            return Ok(Evidence::skipped(check, target, why));
        }
        let Decision::Measured { params, .. } = &check.decision else { unreachable!("manual checks are skipped") };
        let procedure = check.procedure().unwrap_or_default();
        if crate::interrupt::interrupted() {
            return Ok(Evidence::error(check, target, crate::interrupt::reason_not_run()));
        }
        if procedure == "run" {
            return self.pass_rate(check);
        }
        // A signal drops the measurement's future (its guards restore and remove what it holds).
        let result = self.dir.measurement(procedure, params, |dir| {
            let run = crate::interrupt::or_cancelled(measure::run(procedure, params, &self.target, dir));
            self.rt.block_on(run).unwrap_or_else(|| Err(measure::Error::Failed(crate::interrupt::reason())))
        })?;
        Ok(match result {
            Err(_) if crate::interrupt::interrupted() => Evidence::error(check, target, crate::interrupt::reason()),
            Ok(set) => evidence::decide(check, target, &set),
            Err(measure::Error::NotApplicable { reason, .. }) => Evidence::skipped(check, target, reason),
            Err(e) => Evidence::error(check, target, e.to_string()),
        })
    }

    /// `run.pass_rate`: decides every other applicable check of the profile (reusing this run's
    /// measurements) and reports the share that passed.
    fn pass_rate(&self, check: &Check) -> Result<Evidence, Error> {
        let mut applicable = 0u64;
        let mut passed = 0u64;
        for other in self.profile.checks.iter().filter(|c| c.id != check.id && c.procedure() != Some("run")) {
            let e = self.evaluate(other)?;
            if e.status != evidence::Status::Skipped {
                applicable += 1;
                passed += u64::from(e.status == evidence::Status::Passed);
            }
        }
        let set = MeasurementSet::new("run", self.target.kind().name(), &Params::new()).with(
            "pass_rate",
            if applicable == 0 {
                measure::Metric::Missing { reason: "no applicable checks in this run".into() }
            } else {
                measure::Metric::value(100.0 * passed as f64 / applicable as f64, "%", applicable)
            },
        );
        Ok(evidence::decide(check, self.target.kind().name(), &set.finish()))
    }
}

/// The run id: `HARNESS_RUN_ID`, else nextest's `NEXTEST_RUN_ID` (so that every test process of one
/// `cargo nextest run` shares a run), else a new one from the clock and the process id.
pub fn run_id_from_env() -> String {
    std::env::var("HARNESS_RUN_ID")
        .or_else(|_| std::env::var("NEXTEST_RUN_ID"))
        .unwrap_or_else(|_| format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), std::process::id()))
}

/// Resolves a profile given as a path or as a name under `fixtures/criteria/` of `root`.
pub fn resolve_profile(name_or_path: &str, root: &Path) -> PathBuf {
    let p = Path::new(name_or_path);
    if p.extension().is_some() || p.components().count() > 1 {
        return if p.is_absolute() || p.exists() { p.to_path_buf() } else { root.join(p) };
    }
    root.join("fixtures/criteria").join(format!("{name_or_path}.yaml"))
}

/// Where a run keeps its files and history: what `harness run` and the acceptance test binary share, so
/// both behave the same (run id, output directory, history store, selection, history append).
pub struct Session {
    /// The runner.
    pub runner: Runner,
    /// The run id.
    pub id: String,
    /// The run directory.
    pub out: PathBuf,
    /// The history store the run is appended to (and the regression procedure reads).
    pub history: PathBuf,
}

/// What a session wrote at its end.
pub struct Finished {
    /// The report (of the selected checks).
    pub report: crate::report::Report,
    /// Report files written.
    pub written: Vec<PathBuf>,
    /// Records appended to the history (`Err`: why nothing was appended).
    pub appended: Result<usize, String>,
}

impl Session {
    /// Opens the run: id from `HARNESS_RUN_ID` / nextest's run id / the clock, directory `out` (default
    /// `<root>/target/harness/<id>`), history `history` (default `HARNESS_HISTORY`, else
    /// `<root>/target/harness/history`, exported as `HARNESS_HISTORY` for the regression procedure).
    pub fn open(
        profile: Profile,
        target: Target,
        out: Option<PathBuf>,
        history: Option<PathBuf>,
        root: &Path,
        configure: impl FnOnce(RunDir) -> RunDir,
    ) -> Result<Session, Error> {
        let env_history = std::env::var_os("HARNESS_HISTORY").filter(|v| !v.is_empty()).map(PathBuf::from);
        let history = history.or(env_history).unwrap_or_else(|| root.join("target/harness/history"));
        // The regression procedure reads and extends the same store the run is appended to at its end.
        std::env::set_var("HARNESS_HISTORY", &history);
        let id = run_id_from_env();
        let out = out.unwrap_or_else(|| root.join("target/harness").join(&id));
        let runner = Runner::new(profile, target, configure(RunDir::open(&out)?), &id)?;
        Ok(Session { runner, id, out, history })
    }

    /// The checks whose id contains one of the comma-separated `only` filters (all without a filter).
    pub fn select(&self, only: Option<&str>) -> Result<Vec<&Check>, String> {
        let filters: Vec<&str> =
            only.map(|o| o.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        let selected: Vec<&Check> = self
            .runner
            .profile
            .checks
            .iter()
            .filter(|c| filters.is_empty() || filters.iter().any(|f| c.id.contains(f)))
            .collect();
        if selected.is_empty() {
            return Err(format!(
                "--only {}: no check of profile {} matches",
                only.unwrap_or_default(),
                self.runner.profile.name
            ));
        }
        Ok(selected)
    }

    /// Writes the report files of the checks `keep` accepts (from every evidence of the run), returns that
    /// report, and appends the run's evidence to the history (a run appended again replaces its
    /// earlier records, so every test process of one run may do this).
    pub fn finish(&self, keep: impl Fn(&str) -> bool) -> Result<Finished, Box<dyn std::error::Error>> {
        let mut report = crate::report::Report::from_run(&self.runner.dir, &self.runner.profile)?;
        report.checks.retain(|e| keep(&e.id));
        let written = report.write(&self.out)?;
        // A partial (interrupted) run is not history: its evidence stays in the run directory only.
        let appended = if let Some(code) = crate::interrupt::exit_code() {
            Err(format!("the run was interrupted (exit {code}): a partial run is not appended"))
        } else {
            crate::baseline::History::open(&self.history)
                .and_then(|h| h.append_run(&self.runner.dir))
                .map_err(|e| e.to_string())
        };
        Ok(Finished { report, written, appended })
    }
}
