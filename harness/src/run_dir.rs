//! [`RunDir`]: the directory of one run (`run.json`, `measurements/`, `evidence/`, `raw/`, the locks).
//! Measurements are taken once per run, one at a time across processes (an exclusive file lock), stored here
//! and reused by every check and every test process of the run.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    criteria::Params,
    evidence::Evidence,
    fingerprint::Build,
    measure::types::{self as measure, MeasurementSet},
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
    /// The directory holds another run (or another build's) measurements and resuming it was not asked for.
    #[error("run directory {path}: {detail}")]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// Whose it is and what to do.
        detail: String,
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
    /// Environment fingerprint (with the build of the harness that started the run).
    pub environment: crate::fingerprint::Fingerprint,
    /// The invocation that started the run ([`process_invocation`], or the test runner's run shared by its
    /// processes); empty in runs recorded before invocations were.
    #[serde(default)]
    pub invocation: String,
}

/// Who took a measurement: the build of the harness, the invocation, and the start of the run it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// The harness build.
    pub build: Build,
    /// The invocation.
    pub invocation: String,
    /// When the run the measurement belongs to started (`run.json`), if it was recorded.
    pub run_started: Option<DateTime<Utc>>,
    /// When the measurement was stored.
    pub stored: DateTime<Utc>,
}

/// A stored measurement with its stamp.
#[derive(Debug, Serialize, Deserialize)]
struct Stored<T> {
    stamp: Stamp,
    taken: T,
}

/// This process's invocation id: host, process id and start time, so two invocations never share one.
pub fn process_invocation() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}-{}", host.trim(), std::process::id(), Utc::now().format("%Y%m%dT%H%M%S%.9fZ"))
    })
    .clone()
}

/// The directory of one run: `run.json`, `measurements/`, `evidence/`, `raw/`, and the lock.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    invocation: String,
    resume: bool,
}

impl RunDir {
    /// Opens (creating if needed) the run directory at `path` for this process's invocation
    /// ([`process_invocation`]), not resuming.
    pub fn open(path: &Path) -> Result<RunDir, Error> {
        for sub in ["measurements", "evidence", "raw"] {
            let p = path.join(sub);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(RunDir { path: path.to_path_buf(), invocation: process_invocation(), resume: false })
    }

    /// The invocation this process belongs to, when several processes make one run (every test process of
    /// one test-runner run).
    pub fn shared_by(mut self, invocation: &str) -> RunDir {
        self.invocation = invocation.to_string();
        self
    }

    /// Whether to resume a run another invocation or build started (its measurements are reused, each noted
    /// as such) instead of refusing the directory.
    pub fn resume(mut self, yes: bool) -> RunDir {
        self.resume = yes;
        self
    }

    fn stamp(&self) -> Stamp {
        let run_started = self.info().ok().map(|i| i.started);
        Stamp { build: Build::current(), invocation: self.invocation.clone(), run_started, stored: Utc::now() }
    }

    fn refuse(&self, whose: String) -> Error {
        Error::Foreign {
            path: self.path.clone(),
            detail: format!(
                "{whose}; its figures would be reported as this run's. Use a new output directory, or resume that \
                 run explicitly (`harness run --resume`, HARNESS_RESUME=1)"
            ),
        }
    }

    /// Why the recorded run is not this one (another invocation or another build), if it is not.
    fn foreign(&self, existing: &RunInfo) -> Option<String> {
        let build = Build::current();
        let holds = format!("holds run {} started {}", existing.id, existing.started.to_rfc3339());
        if existing.environment.build != build {
            Some(format!("{holds} by {}, not by this build ({build})", existing.environment.build))
        } else if existing.invocation != self.invocation {
            let other = if existing.invocation.is_empty() { "unrecorded" } else { existing.invocation.as_str() };
            Some(format!("{holds} by another invocation ({other})"))
        } else {
            None
        }
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

    /// Writes `run.json` unless another process of the run already did; returns what is recorded. A
    /// directory another invocation or build wrote is refused unless resuming; so is one holding
    /// measurements or evidence without a `run.json`.
    pub fn init(&self, mut info: RunInfo) -> Result<RunInfo, Error> {
        let _lock = self.lock("run")?;
        info.invocation = self.invocation.clone();
        let p = self.path.join("run.json");
        if !p.exists() && !self.resume {
            for sub in ["measurements", "evidence"] {
                let d = self.path.join(sub);
                if fs::read_dir(&d).map_err(io(&d))?.next().is_some() {
                    return Err(self.refuse(format!("holds {sub} of a run that recorded no run.json")));
                }
            }
        }
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
            if let (Some(why), false) = (self.foreign(&existing), self.resume) {
                return Err(self.refuse(why));
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
    /// `take` while holding the measurement lock (so measurements never overlap), and stored with its
    /// [`Stamp`]. A failure is stored too, so the checks of the run agree on it. A stored measurement of
    /// another invocation or build is refused unless resuming; a resumed one says where it came from.
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
            let stored: Stored<MeasurementSet> = self.read_stored(&ok)?;
            let mut set = stored.taken;
            if let Some(note) = self.resumed_note(&stored.stamp)? {
                set.notes.push(note);
            }
            return Ok(Ok(set));
        }
        if failed.exists() {
            let stored: Stored<measure::Error> = self.read_stored(&failed)?;
            self.resumed_note(&stored.stamp)?;
            return Ok(Err(stored.taken));
        }
        let result = take(self);
        if result.is_err() && crate::interrupt::interrupted() {
            // Stopped by a signal: not a finding of this run, so a later process of the run measures again.
            return Ok(result);
        }
        let stamp = self.stamp();
        match &result {
            Ok(set) => write_json(&ok, &Stored { stamp, taken: set })?,
            Err(e) => write_json(&failed, &Stored { stamp, taken: e })?,
        }
        Ok(result)
    }

    fn read_stored<T: serde::de::DeserializeOwned>(&self, p: &Path) -> Result<Stored<T>, Error> {
        let text = fs::read_to_string(p).map_err(io(p))?;
        serde_json::from_str(&text).map_err(|e| match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) if v.get("stamp").is_none() => {
                self.refuse(format!("holds {} from a build that recorded no stamp", p.display()))
            }
            _ => Error::Corrupt { path: p.into(), detail: e.to_string() },
        })
    }

    /// Refuses a measurement stamped by another invocation or build unless resuming; when resuming, the note
    /// that says where it came from.
    fn resumed_note(&self, stamp: &Stamp) -> Result<Option<String>, Error> {
        if stamp.build == Build::current() && stamp.invocation == self.invocation {
            return Ok(None);
        }
        let whose = format!(
            "measurement stored {} by invocation {} of {}",
            stamp.stored.to_rfc3339(),
            stamp.invocation,
            stamp.build
        );
        if self.resume {
            Ok(Some(format!("resumed: {whose}")))
        } else {
            Err(self.refuse(format!("holds a {whose}")))
        }
    }

    /// The measurements taken in this run that succeeded, by file stem (failed ones hold no figures).
    pub fn measurements(&self) -> Vec<(String, MeasurementSet)> {
        let dir = self.path.join("measurements");
        let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.to_string_lossy().ends_with(".error.json"))
            .filter_map(|p| {
                let stored: Stored<MeasurementSet> = serde_json::from_str(&fs::read_to_string(&p).ok()?).ok()?;
                Some((p.file_stem()?.to_string_lossy().into_owned(), stored.taken))
            })
            .collect()
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

    fn info(id: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            profile: "p".into(),
            profile_path: "p.yaml".into(),
            target: "local".into(),
            started: Utc::now(),
            environment: crate::fingerprint::Fingerprint::current(),
            invocation: String::new(),
        }
    }

    fn measure_once(dir: &RunDir, value: f64) -> Result<Result<MeasurementSet, measure::Error>, Error> {
        dir.measurement("cold_start", &Params::new(), |_| {
            Ok(MeasurementSet::new("cold_start", "local", &Params::new())
                .with("p95", measure::Metric::value(value, "ms", 10)))
        })
    }

    fn figure(r: Result<Result<MeasurementSet, measure::Error>, Error>) -> f64 {
        match &r.unwrap().unwrap().metrics["p95"] {
            measure::Metric::Value { value, .. } => *value,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_invocation_s_run_directory_is_refused_unless_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let first = RunDir::open(tmp.path()).unwrap().shared_by("first");
        first.init(info("fixed-id")).unwrap();
        assert_eq!(figure(measure_once(&first, 100.0)), 100.0);
        // Another process of the same invocation (one test-runner run) shares the directory and its figures.
        let sibling = RunDir::open(tmp.path()).unwrap().shared_by("first");
        sibling.init(info("fixed-id")).unwrap();
        assert_eq!(figure(measure_once(&sibling, 200.0)), 100.0);
        // A later invocation with the same run id (or `--out` at the old run) is refused, naming the directory.
        let later = RunDir::open(tmp.path()).unwrap().shared_by("second");
        let e = later.init(info("fixed-id")).unwrap_err();
        assert!(matches!(e, Error::Foreign { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&tmp.path().display().to_string()) && text.contains("another invocation"), "{text}");
        assert!(text.contains("--resume"), "{text}");
        // Its stored measurement is refused too, even without `run.json` being consulted.
        assert!(matches!(measure_once(&later, 200.0), Err(Error::Foreign { .. })));
        // Resumed: the earlier figure is reused and says so.
        let resumed = RunDir::open(tmp.path()).unwrap().shared_by("second").resume(true);
        assert_eq!(resumed.init(info("fixed-id")).unwrap().invocation, "first");
        let set = measure_once(&resumed, 200.0).unwrap().unwrap();
        assert!(set.notes.iter().any(|n| n.starts_with("resumed: measurement stored")), "{:?}", set.notes);
    }

    #[test]
    fn another_build_s_run_directory_is_refused_unless_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let mut old = info("r");
        old.environment.build.profile = "some-other-profile".into();
        old.invocation = process_invocation();
        write_json(&tmp.path().join("run.json"), &old).unwrap();
        let e = dir.init(info("r")).unwrap_err();
        assert!(
            e.to_string().contains("some-other-profile build") && e.to_string().contains("not by this build"),
            "{e}"
        );
        assert!(dir.clone().resume(true).init(info("r")).is_ok());
    }

    #[test]
    fn measurements_without_a_stamp_or_without_a_run_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        // A measurement file as written before stamps: plain figures of an unknown build.
        let key = format!("cold_start-{:016x}", fnv1a(serde_json::to_string(&Params::new()).unwrap().as_bytes()));
        let plain = MeasurementSet::new("cold_start", "local", &Params::new());
        write_json(&tmp.path().join("measurements").join(format!("{key}.json")), &plain).unwrap();
        let e = dir.init(info("r")).unwrap_err();
        assert!(e.to_string().contains("recorded no run.json"), "{e}");
        let e = measure_once(&dir, 1.0).unwrap_err();
        assert!(e.to_string().contains("recorded no stamp"), "{e}");
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
