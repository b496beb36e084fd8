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
        if procedure == "run" {
            return self.pass_rate(check);
        }
        let result = self.dir.measurement(procedure, params, |dir| {
            self.rt.block_on(measure::run(procedure, params, &self.target, dir))
        })?;
        Ok(match result {
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
