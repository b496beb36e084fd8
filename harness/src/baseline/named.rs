//! [`Baseline`]: a named set of figures saved from the last comparable runs of the history
//! (`<history>/baselines/<name>.json`), with the environment they were measured in.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    decision::Estimate,
    history::{run_ids, Direction, History, Record},
    Error,
};
use crate::fingerprint::Fingerprint;

/// One run's figure of a check in a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Run id.
    pub run: String,
    /// The figure.
    pub value: f64,
    /// Lower bound of its 95% interval.
    pub ci_low: Option<f64>,
    /// Upper bound of its 95% interval.
    pub ci_high: Option<f64>,
    /// Samples behind it.
    pub n: u64,
}

impl Figure {
    /// As an estimate.
    pub fn estimate(&self) -> Estimate {
        Estimate { value: self.value, ci_low: self.ci_low, ci_high: self.ci_high, n: self.n }
    }
}

/// A check's figures in a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Statistic (`p95`), if any.
    pub statistic: Option<String>,
    /// Unit.
    pub unit: String,
    /// Which way it gets worse.
    pub direction: Direction,
    /// One figure per baseline run.
    pub figures: Vec<Figure>,
}

/// A named baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Name.
    pub name: String,
    /// When it was saved.
    pub saved: DateTime<Utc>,
    /// Profile of its runs.
    pub profile: String,
    /// Target of its runs.
    pub target: String,
    /// Environment of its runs.
    pub environment: Fingerprint,
    /// Run ids it was saved from, oldest first.
    pub runs: Vec<String>,
    /// Figures by check id.
    pub checks: BTreeMap<String, Entry>,
}

/// The file of baseline `name` under history directory `dir`.
pub fn path(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        || name.starts_with('.')
    {
        return Err(Error::BadName(name.into()));
    }
    Ok(dir.join("baselines").join(format!("{name}.json")))
}

/// Saves baseline `name` from the last `runs` runs of `history` that share the environment, profile and
/// target of run `until` (default: the latest run), `until` included.
pub fn save(history: &History, name: &str, runs: usize, until: Option<&str>) -> Result<Baseline, Error> {
    path(history.dir(), name)?;
    let records = history.records()?;
    let ids = run_ids(&records);
    let reference = match until {
        Some(r) => ids
            .iter()
            .find(|i| *i == r)
            .ok_or_else(|| Error::Empty(format!("run {r} is not in the history {}", history.dir().display())))?,
        None => ids.last().ok_or_else(|| {
            Error::Empty(format!(
                "the history {} holds no runs: run the suite with --history first",
                history.dir().display()
            ))
        })?,
    };
    let first = records.iter().find(|r| &r.run == reference).expect("reference run has records");
    let key = first.environment.comparable_key();
    let same =
        |r: &Record| r.environment.comparable_key() == key && r.profile == first.profile && r.target == first.target;
    let upto = ids.iter().position(|i| i == reference).expect("reference is listed");
    let chosen: Vec<String> = ids[..=upto]
        .iter()
        .filter(|id| records.iter().any(|r| &r.run == *id && same(r)))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(runs.max(1))
        .rev()
        .collect();
    let picked: Vec<&Record> = records.iter().filter(|r| chosen.contains(&r.run) && same(r)).collect();
    let b = from_records(name, &picked, chosen)?;
    write(history.dir(), &b)?;
    Ok(b)
}

/// Baseline `name` from `records` (one environment, profile and target: those of the first record),
/// the figures of runs `runs`.
pub fn from_records(name: &str, records: &[&Record], runs: Vec<String>) -> Result<Baseline, Error> {
    let first = records.first().ok_or_else(|| Error::Empty(format!("baseline `{name}`: no records to save")))?;
    let mut checks: BTreeMap<String, Entry> = BTreeMap::new();
    for r in records.iter().filter(|r| runs.contains(&r.run) && r.has_figure()) {
        let e = checks.entry(r.check.clone()).or_insert_with(|| Entry {
            statistic: r.statistic.clone(),
            unit: r.unit.clone().unwrap_or_default(),
            direction: r.direction,
            figures: Vec::new(),
        });
        e.figures.push(Figure {
            run: r.run.clone(),
            value: r.value.unwrap_or(f64::NAN),
            ci_low: r.ci_low,
            ci_high: r.ci_high,
            n: r.n.unwrap_or(0),
        });
    }
    if checks.is_empty() {
        return Err(Error::Empty(format!("runs {} hold no measured figure to save as a baseline", runs.join(", "))));
    }
    Ok(Baseline {
        name: name.into(),
        saved: Utc::now(),
        profile: first.profile.clone(),
        target: first.target.clone(),
        environment: first.environment.clone(),
        runs,
        checks,
    })
}

/// Writes `b` under history directory `dir` (atomically: a reader sees the old file or the new one).
pub fn write(dir: &Path, b: &Baseline) -> Result<PathBuf, Error> {
    let file = path(dir, &b.name)?;
    let parent = file.parent().expect("baselines dir");
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, serde_json::to_string_pretty(b).expect("baseline serializes")).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &file).map_err(|e| Error::io(&file, e))?;
    Ok(file)
}

/// Loads baseline `name` from history directory `dir`.
pub fn load(dir: &Path, name: &str) -> Result<Baseline, Error> {
    let file = path(dir, name)?;
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoBaseline { name: name.into(), path: file })
        }
        Err(e) => return Err(Error::io(&file, e)),
    };
    serde_json::from_str(&text).map_err(|e| Error::Corrupt { path: file, line: e.line(), detail: e.to_string() })
}

/// Names of the baselines under history directory `dir`.
pub fn list(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir.join("baselines"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.path()
                .file_stem()
                .filter(|_| e.path().extension().is_some_and(|x| x == "json"))
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::history::tests::record;

    #[test]
    fn saves_the_last_runs_and_loads_them_back() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        for (i, v) in [50.0, 51.0, 52.0, 53.0].iter().enumerate() {
            h.append(&[
                record(&format!("r{i}"), "AC2.warm", *v, i as i64),
                record(&format!("r{i}"), "AC2.cold", 10.0 * v, i as i64),
            ])
            .unwrap();
        }
        let b = save(&h, "main", 2, None).unwrap();
        assert_eq!(b.runs, vec!["r2", "r3"]);
        assert_eq!(b.checks["AC2.warm"].figures.iter().map(|f| f.value).collect::<Vec<_>>(), vec![52.0, 53.0]);
        assert_eq!(load(d.path(), "main").unwrap(), b);
        assert_eq!(list(d.path()), vec!["main"]);
        let upto = save(&h, "old", 3, Some("r1")).unwrap();
        assert_eq!(upto.runs, vec!["r0", "r1"]);
    }

    #[test]
    fn a_missing_baseline_says_how_to_make_one() {
        let d = tempfile::tempdir().unwrap();
        let e = load(d.path(), "nightly").unwrap_err();
        assert!(matches!(e, Error::NoBaseline { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("nightly") && msg.contains("baselines/nightly.json") && msg.contains("harness baseline save"),
            "{msg}"
        );
        assert!(matches!(path(d.path(), "../x"), Err(Error::BadName(_))));
        let h = History::open(d.path()).unwrap();
        assert!(matches!(save(&h, "x", 1, None), Err(Error::Empty(_))));
    }
}
