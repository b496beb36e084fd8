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
        if result.is_err() && crate::interrupt::interrupted() {
            // Stopped by a signal: not a finding of this run, so a later process of the run measures again.
            return Ok(result);
        }
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
