//! Chart inputs: the small serializable structs a procedure writes as raw data next to its measurement, the
//! trend points the history store hands over, and how the HTML report finds the charts of a check.
//!
//! # File convention
//!
//! A procedure writes its chart data with [`write_chart`] under `raw/<procedure>/` and lists the returned
//! path in `MeasurementSet.raw` (the check's `Evidence.raw` then carries it):
//!
//! | file | struct | drawn for |
//! |---|---|---|
//! | `raw/<procedure>/samples-<metric>.json` | [`LatencySamples`] | checks reading `<procedure>.<metric>`: CDF with threshold and the statistic's CI |
//! | `raw/<procedure>/timeline.json` | [`Timeline`] | every check of the procedure: environments and load against time |
//! | `raw/<procedure>/sweep.json` | [`Sweep`] | every check of the procedure: duration and cost per memory size |
//! | `raw/<procedure>/build_times.json` | [`BuildTimes`] | every check of the procedure: build times and cache hit rates |
//! | `trends.json` (run directory root) | [`Trends`] | the check named in it: values over the last runs |
//!
//! Values are plain numbers in the unit the file names; nothing here is computed or invented for a chart:
//! a check whose files are absent shows "no chart data".

use std::path::{Path, PathBuf};

use crate::evidence::Evidence;
pub use crate::measure::raw::*;

/// The data of one chart.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// A distribution ([`LatencySamples`]).
    Distribution(LatencySamples),
    /// A [`Timeline`].
    Timeline(Timeline),
    /// A memory [`Sweep`].
    Sweep(Sweep),
    /// [`BuildTimes`].
    Builds(BuildTimes),
}

/// Chart data that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: cannot read chart data: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold what its name promises, or holds nothing to draw.
    #[error("{path}: unusable chart data: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A chart file listed for a check, loaded or with what is wrong with it.
#[derive(Debug)]
pub struct Found {
    /// Path relative to the run directory.
    pub path: PathBuf,
    /// The data.
    pub chart: Result<Chart, Error>,
}

/// The charts that explain a check: the chart files among its raw data that belong to the metric it reads
/// (`measure` = `procedure.metric`), in the order listed. Without `measure`, distributions are left out
/// (they could be another metric's).
pub fn for_check(run_dir: &Path, e: &Evidence, measure: Option<&str>) -> Vec<Found> {
    let (procedure, metric) = measure.and_then(|m| m.split_once('.')).unzip();
    let mut out = Vec::new();
    for rel in &e.raw {
        let Some(name) = rel.file_name().and_then(|n| n.to_str()) else { continue };
        let dir = rel.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
        if procedure.is_some() && dir != procedure {
            continue;
        }
        let abs = run_dir.join(rel);
        let chart = match name {
            TIMELINE_FILE => load(&abs).and_then(|t| valid_timeline(&abs, t)).map(Chart::Timeline),
            SWEEP_FILE => load(&abs).and_then(|s| valid_sweep(&abs, s)).map(Chart::Sweep),
            BUILD_TIMES_FILE => load(&abs).and_then(|b| valid_builds(&abs, b)).map(Chart::Builds),
            n if metric.is_some_and(|m| n == samples_file(m)) => {
                load(&abs).and_then(|s| valid_samples(&abs, s)).map(Chart::Distribution)
            }
            _ => continue,
        };
        out.push(Found { path: rel.clone(), chart });
    }
    out
}

/// Reads `trends.json` from the run directory; no file means no trends.
pub fn load_trends(run_dir: &Path) -> Result<Trends, Error> {
    let p = run_dir.join(TRENDS_FILE);
    if !p.exists() {
        return Ok(Trends::new());
    }
    load(&p)
}

fn load<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(p).map_err(|source| Error::Read { path: p.into(), source })?;
    serde_json::from_str(&text).map_err(|e| Error::Invalid { path: p.into(), detail: e.to_string() })
}

fn invalid(p: &Path, detail: impl Into<String>) -> Error {
    Error::Invalid { path: p.into(), detail: detail.into() }
}

fn valid_samples(p: &Path, s: LatencySamples) -> Result<LatencySamples, Error> {
    if !s.values.iter().any(|v| v.is_finite()) {
        return Err(invalid(p, "no finite samples"));
    }
    Ok(s)
}

fn valid_timeline(p: &Path, t: Timeline) -> Result<Timeline, Error> {
    if t.t_s.is_empty() {
        return Err(invalid(p, "empty timeline"));
    }
    if t.envs.len() != t.t_s.len() || t.load_rps.len() != t.t_s.len() {
        return Err(invalid(
            p,
            format!(
                "t_s, envs and load_rps differ in length ({}, {}, {})",
                t.t_s.len(),
                t.envs.len(),
                t.load_rps.len()
            ),
        ));
    }
    Ok(t)
}

fn valid_sweep(p: &Path, s: Sweep) -> Result<Sweep, Error> {
    if s.points.is_empty() {
        return Err(invalid(p, "no memory sizes"));
    }
    Ok(s)
}

fn valid_builds(p: &Path, b: BuildTimes) -> Result<BuildTimes, Error> {
    if b.baseline.is_empty() && b.optimized.is_empty() && b.incremental.is_empty() && b.cache.is_empty() {
        return Err(invalid(p, "no builds"));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evidence::Status, run_dir::RunDir};

    fn evidence(raw: &[&str]) -> Evidence {
        let mut e = crate::report::tests::sample().checks.remove(0);
        e.status = Status::Passed;
        e.raw = raw.iter().map(PathBuf::from).collect();
        e
    }

    #[test]
    fn a_check_gets_its_own_metric_and_its_procedures_charts_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let s = LatencySamples { unit: "s".into(), values: vec![0.3, 0.4] };
        let mine = write_chart(&dir, "cold_start", &samples_file("client_latency"), &s).unwrap();
        let other = write_chart(&dir, "cold_start", &samples_file("init_duration"), &s).unwrap();
        let tl = Timeline { t_s: vec![0.0], envs: vec![1.0], load_rps: vec![5.0], limit: None, marks: vec![] };
        let timeline = write_chart(&dir, "cold_start", TIMELINE_FILE, &tl).unwrap();
        assert_eq!(mine, Path::new("raw/cold_start/samples-client_latency.json"));
        let e = evidence(&[
            mine.to_str().unwrap(),
            other.to_str().unwrap(),
            timeline.to_str().unwrap(),
            "raw/cold_start/log.txt",
        ]);
        let found = for_check(tmp.path(), &e, Some("cold_start.client_latency"));
        let paths: Vec<_> = found.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, vec![mine.clone(), timeline.clone()]);
        assert!(matches!(found[0].chart, Ok(Chart::Distribution(ref d)) if d == &s));
        let found = for_check(tmp.path(), &e, None);
        assert_eq!(found.iter().map(|f| f.path.clone()).collect::<Vec<_>>(), vec![timeline]);
        assert!(for_check(tmp.path(), &e, Some("warm_start.client_latency")).is_empty());
    }

    #[test]
    fn broken_or_empty_chart_data_is_reported_not_drawn() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let empty = write_chart(
            &dir,
            "scale_up",
            &samples_file("latency"),
            &LatencySamples { unit: "s".into(), values: vec![] },
        )
        .unwrap();
        let bad =
            Timeline { t_s: vec![0.0, 1.0], envs: vec![1.0], load_rps: vec![1.0, 2.0], limit: None, marks: vec![] };
        let ragged = write_chart(&dir, "scale_up", TIMELINE_FILE, &bad).unwrap();
        std::fs::write(tmp.path().join("raw/scale_up").join(SWEEP_FILE), "{not json").unwrap();
        let missing = "raw/scale_up/build_times.json";
        let e = evidence(&[empty.to_str().unwrap(), ragged.to_str().unwrap(), "raw/scale_up/sweep.json", missing]);
        let found = for_check(tmp.path(), &e, Some("scale_up.latency"));
        let msgs: Vec<String> = found.iter().map(|f| f.chart.as_ref().unwrap_err().to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].contains("no finite samples"), "{}", msgs[0]);
        assert!(msgs[1].contains("differ in length (2, 1, 2)"), "{}", msgs[1]);
        assert!(msgs[2].contains("sweep.json: unusable chart data"), "{}", msgs[2]);
        assert!(msgs[3].contains("build_times.json: cannot read"), "{}", msgs[3]);
    }

    #[test]
    fn trends_file_is_optional() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(load_trends(tmp.path()).unwrap().is_empty());
        let t: Trends = [(
            "AC2.cold_start_p95".to_string(),
            CheckTrend {
                unit: "s".into(),
                points: vec![TrendPoint {
                    run_id: "r1".into(),
                    started: "2026-01-01T00:00:00Z".parse().unwrap(),
                    value: 0.4,
                    is_baseline: true,
                    change_point: false,
                }],
            },
        )]
        .into();
        std::fs::write(tmp.path().join(TRENDS_FILE), serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(load_trends(tmp.path()).unwrap(), t);
    }
}
