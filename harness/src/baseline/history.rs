//! [`History`]: the run history, a directory of JSON lines (`history.jsonl`, one [`Record`] per check per
//! run, with the environment fingerprint) that nightly CI keeps between runs. Appends hold a lock so that
//! parallel test processes of one run do not interleave lines; reading keeps the last record of a
//! (run, check) pair, so appending a run twice is harmless. Records of in-run scenario sessions (see
//! [`super::scenario`]) carry a `scenario` tag so that nobody mistakes them for runs of the suite.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Error;
use crate::{
    evidence::{Evidence, Status},
    fingerprint::Fingerprint,
    run_dir::{RunDir, RunInfo},
};

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smaller is better (latencies, sizes): the threshold is `<` or `<=`.
    LowerIsBetter,
    /// Larger is better (reductions, hit rates, throughput): the threshold is `>` or `>=`.
    HigherIsBetter,
    /// Not a performance figure (flags, exact counts).
    None,
}

impl Direction {
    /// The direction a check's threshold operator implies.
    pub fn from_op(op: &str) -> Direction {
        match op {
            "<" | "<=" => Direction::LowerIsBetter,
            ">" | ">=" => Direction::HigherIsBetter,
            _ => Direction::None,
        }
    }
}

/// One check of one run, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Run id.
    pub run: String,
    /// When the figure was measured (else when the run started).
    pub time: DateTime<Utc>,
    /// Profile name.
    pub profile: String,
    /// Target name.
    pub target: String,
    /// Check id.
    pub check: String,
    /// Outcome.
    pub status: Status,
    /// Statistic compared (`p95`), if any.
    #[serde(default)]
    pub statistic: Option<String>,
    /// The figure, if one was measured.
    #[serde(default)]
    pub value: Option<f64>,
    /// Its unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Samples behind it.
    #[serde(default)]
    pub n: Option<u64>,
    /// Lower bound of its 95% confidence interval.
    #[serde(default)]
    pub ci_low: Option<f64>,
    /// Upper bound of its 95% confidence interval.
    #[serde(default)]
    pub ci_high: Option<f64>,
    /// Which way the figure gets worse.
    pub direction: Direction,
    /// The environment it was measured in.
    pub environment: Fingerprint,
    /// Set on a session the regression procedure measured as a step of its in-run scenario (not a run of
    /// the suite): which run, step and session it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

impl Record {
    /// The record of `e`, a check of run `info`.
    pub fn from_evidence(e: &Evidence, info: &RunInfo) -> Record {
        let m = e.measured.as_ref();
        Record {
            run: info.id.clone(),
            time: e.measured_at.unwrap_or(info.started),
            profile: info.profile.clone(),
            target: e.target.clone(),
            check: e.id.clone(),
            status: e.status,
            statistic: e.statistic.clone(),
            value: m.map(|m| m.value),
            unit: m.map(|m| m.unit.clone()),
            n: m.map(|m| m.n),
            ci_low: m.and_then(|m| m.ci_low),
            ci_high: m.and_then(|m| m.ci_high),
            direction: e.threshold.as_ref().map_or(Direction::None, |t| Direction::from_op(&t.op)),
            environment: info.environment.clone(),
            scenario: None,
        }
    }

    /// Whether it holds a figure that can be compared (measured, finite).
    pub fn has_figure(&self) -> bool {
        matches!(self.status, Status::Passed | Status::Failed) && self.value.is_some_and(f64::is_finite)
    }
}

/// The history directory.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

/// The history file inside the directory.
pub const FILE: &str = "history.jsonl";

impl History {
    /// Opens (creating) the history directory `dir`.
    pub fn open(dir: &Path) -> Result<History, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(History { dir: dir.to_path_buf() })
    }

    /// The history directory of the environment: `HARNESS_HISTORY`, if set.
    pub fn from_env() -> Result<Option<History>, Error> {
        match std::env::var_os("HARNESS_HISTORY").filter(|v| !v.is_empty()) {
            Some(d) => History::open(Path::new(&d)).map(Some),
            None => Ok(None),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Appends `records` as one block under the history lock.
    pub fn append(&self, records: &[Record]) -> Result<(), Error> {
        let lock_path = self.dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let path = self.file();
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).expect("records serialize"));
            text.push('\n');
        }
        let mut f = File::options().create(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?;
        f.write_all(text.as_bytes()).map_err(|e| Error::io(&path, e))?;
        f.sync_data().map_err(|e| Error::io(&path, e))
    }

    /// Appends the evidence of the run in `run_dir`; returns how many records were written.
    pub fn append_run(&self, run_dir: &RunDir) -> Result<usize, Error> {
        let info = run_dir.info().map_err(|e| Error::io(run_dir.path(), e))?;
        let mut evidence = run_dir.evidence().map_err(|e| Error::io(run_dir.path(), e))?;
        evidence.sort_by(|a, b| a.id.cmp(&b.id));
        if evidence.is_empty() {
            return Err(Error::Empty(format!("{}: the run holds no evidence yet", run_dir.path().display())));
        }
        let records: Vec<Record> = evidence.iter().map(|e| Record::from_evidence(e, &info)).collect();
        self.append(&records)?;
        Ok(records.len())
    }

    /// Every record, oldest first; of several records of one (run, check) the last one written.
    pub fn records(&self) -> Result<Vec<Record>, Error> {
        let path = self.file();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut by_key: BTreeMap<(String, String), (usize, Record)> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: Record = serde_json::from_str(line).map_err(|e| Error::Corrupt {
                path: path.clone(),
                line: i + 1,
                detail: e.to_string(),
            })?;
            by_key.insert((r.run.clone(), r.check.clone()), (i, r));
        }
        let mut out: Vec<(usize, Record)> = by_key.into_values().collect();
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// Run ids, oldest first (by their earliest record).
    pub fn runs(&self) -> Result<Vec<String>, Error> {
        Ok(run_ids(&self.records()?))
    }
}

/// Distinct run ids of `records` in order of first appearance.
pub fn run_ids(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records {
        if !out.contains(&r.run) {
            out.push(r.run.clone());
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(run: &str, check: &str, value: f64, minute: i64) -> Record {
        Record {
            run: run.into(),
            time: DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap(),
            profile: "sre-002".into(),
            target: "local".into(),
            check: check.into(),
            status: Status::Passed,
            statistic: Some("p95".into()),
            value: Some(value),
            unit: Some("ms".into()),
            n: Some(200),
            ci_low: Some(value * 0.97),
            ci_high: Some(value * 1.03),
            direction: Direction::LowerIsBetter,
            environment: Fingerprint::current(),
            scenario: None,
        }
    }

    #[test]
    fn appends_and_reads_back_with_the_last_record_of_a_pair_winning() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        assert!(h.records().unwrap().is_empty());
        h.append(&[record("r1", "AC2.warm", 50.0, 0), record("r1", "AC2.cold", 400.0, 0)]).unwrap();
        h.append(&[record("r2", "AC2.warm", 52.0, 10)]).unwrap();
        h.append(&[record("r1", "AC2.warm", 51.0, 0)]).unwrap();
        let all = h.records().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(h.runs().unwrap(), vec!["r1", "r2"]);
        let warm_r1 = all.iter().find(|r| r.run == "r1" && r.check == "AC2.warm").unwrap();
        assert_eq!(warm_r1.value, Some(51.0));
    }

    #[test]
    fn a_corrupt_line_is_reported_with_its_number() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        h.append(&[record("r1", "a", 1.0, 0)]).unwrap();
        fs::write(
            d.path().join(FILE),
            format!("{}\nnot json\n", fs::read_to_string(d.path().join(FILE)).unwrap().trim()),
        )
        .unwrap();
        let e = h.records().unwrap_err().to_string();
        assert!(e.contains("history.jsonl:2:"), "{e}");
    }

    #[test]
    fn direction_follows_the_threshold() {
        assert_eq!(Direction::from_op("<"), Direction::LowerIsBetter);
        assert_eq!(Direction::from_op(">="), Direction::HigherIsBetter);
        assert_eq!(Direction::from_op("=="), Direction::None);
    }
}
