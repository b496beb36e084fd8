//! [`RunDir`] and [`Runner`]: one run of a profile against a target. Measurements are taken once per run,
//! one at a time across processes (an exclusive file lock), stored in the run directory and reused by every
//! check and every test process of the run.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    criteria::{Check, Decision, Params, Profile},
    evidence::{self, Evidence},
    measure::{self, MeasurementSet, Support},
    target::Target,
};

/// Errors of the run directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the run directory could not be read or written.
    #[error("run directory {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file of the run directory holds something unexpected.
    #[error("run directory {path}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// What a run is about, written once as `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// Profile name.
    pub profile: String,
    /// Profile file.
    pub profile_path: PathBuf,
    /// Target name.
    pub target: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// Environment fingerprint.
    pub environment: crate::fingerprint::Fingerprint,
}

/// The directory of one run: `run.json`, `measurements/`, `evidence/`, `raw/`, and the lock.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Opens (creating if needed) the run directory at `path`.
    pub fn open(path: &Path) -> Result<RunDir, Error> {
        for sub in ["measurements", "evidence", "raw"] {
            let p = path.join(sub);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(RunDir { path: path.to_path_buf() })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Directory for a procedure's raw data.
    pub fn raw_dir(&self, procedure: &str) -> Result<PathBuf, Error> {
        let p = self.path.join("raw").join(procedure);
        fs::create_dir_all(&p).map_err(io(&p))?;
        Ok(p)
    }

    /// Writes `run.json` unless another process of the run already did; returns what is recorded.
    pub fn init(&self, info: RunInfo) -> Result<RunInfo, Error> {
        let _lock = self.lock("run")?;
        let p = self.path.join("run.json");
        if p.exists() {
            let existing: RunInfo = read_json(&p)?;
            if existing.profile != info.profile || existing.target != info.target {
                return Err(Error::Corrupt {
                    path: p,
                    detail: format!(
                        "this run is for profile {} on target {}, not {} on {}; use a new run directory",
                        existing.profile, existing.target, info.profile, info.target
                    ),
                });
            }
            return Ok(existing);
        }
        write_json(&p, &info)?;
        Ok(info)
    }

    /// Reads `run.json`.
    pub fn info(&self) -> Result<RunInfo, Error> {
        read_json(&self.path.join("run.json"))
    }

    /// Takes the exclusive lock `name` (blocking until other processes release it).
    pub fn lock(&self, name: &str) -> Result<Lock, Error> {
        let p = self.path.join(format!("{name}.lock"));
        let f = File::options().create(true).truncate(false).write(true).open(&p).map_err(io(&p))?;
        f.lock().map_err(io(&p))?;
        Ok(Lock(f))
    }

    /// The measurement of `procedure` with `params` in this run: read if already taken, else taken now by
    /// `take` while holding the measurement lock (so measurements never overlap), and stored. A failure is
    /// stored too, so the checks of the run agree on it.
    pub fn measurement<F>(
        &self,
        procedure: &str,
        params: &Params,
        take: F,
    ) -> Result<Result<MeasurementSet, measure::Error>, Error>
    where
        F: FnOnce(&RunDir) -> Result<MeasurementSet, measure::Error>,
    {
        let key = format!("{procedure}-{:016x}", fnv1a(serde_json::to_string(params).unwrap_or_default().as_bytes()));
        let ok = self.path.join("measurements").join(format!("{key}.json"));
        let failed = self.path.join("measurements").join(format!("{key}.error.json"));
        let _lock = self.lock("measure")?;
        if ok.exists() {
            return Ok(Ok(read_json(&ok)?));
        }
        if failed.exists() {
            return Ok(Err(read_json(&failed)?));
        }
        let result = take(self);
        match &result {
            Ok(set) => write_json(&ok, set)?,
            Err(e) => write_json(&failed, e)?,
        }
        Ok(result)
    }

    /// Stores a check's evidence.
    pub fn write_evidence(&self, e: &Evidence) -> Result<(), Error> {
        write_json(&self.path.join("evidence").join(format!("{}.json", e.id)), e)
    }

    /// All evidence stored in this run, in no particular order.
    pub fn evidence(&self) -> Result<Vec<Evidence>, Error> {
        let dir = self.path.join("evidence");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let p = entry.map_err(io(&dir))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(read_json(&p)?);
            }
        }
        Ok(out)
    }
}

/// An exclusive lock on a file of the run directory, released on drop (also when a process dies).
#[derive(Debug)]
pub struct Lock(#[expect(dead_code, reason = "held for its Drop")] File);

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T, Error> {
    let text = fs::read_to_string(p).map_err(io(p))?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt { path: p.into(), detail: e.to_string() })
}

pub(crate) fn write_json<T: Serialize>(p: &Path, v: &T) -> Result<(), Error> {
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    let text = serde_json::to_string_pretty(v).expect("evidence types serialize");
    f.write_all(text.as_bytes()).map_err(io(&tmp))?;
    f.write_all(b"\n").map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, p).map_err(io(p))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_is_taken_once_and_failures_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let params: Params = [("n".to_string(), serde_json::json!(3))].into();
        let mut calls = 0;
        for _ in 0..3 {
            let r = dir
                .measurement("cold_start", &params, |_| {
                    calls += 1;
                    Ok(MeasurementSet::new("cold_start", "local", &params))
                })
                .unwrap();
            assert!(r.is_ok());
        }
        assert_eq!(calls, 1);
        let other: Params = [("n".to_string(), serde_json::json!(4))].into();
        for _ in 0..2 {
            let r = dir
                .measurement("cold_start", &other, |_| {
                    calls += 1;
                    Err(measure::Error::Failed("boom".into()))
                })
                .unwrap();
            assert_eq!(r.unwrap_err(), measure::Error::Failed("boom".into()));
        }
        assert_eq!(calls, 2);
    }

    #[test]
    fn the_measure_lock_excludes_other_holders() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let held = dir.lock("measure").unwrap();
        let other = File::options().write(true).open(tmp.path().join("measure.lock")).unwrap();
        assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
