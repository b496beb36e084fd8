//! Raw measurement data: the small serializable structs a procedure writes next to its measurement under
//! `raw/<procedure>/` ([`write_chart`]), which the report draws (`crate::report::charts` finds them for a
//! check). Values are plain numbers in the unit the file names; nothing here is computed for a chart.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run_dir::{self, RunDir};

/// Prefix of a distribution's file name: `samples-<metric>.json`.
pub const SAMPLES_PREFIX: &str = "samples-";
/// File name of a [`Timeline`].
pub const TIMELINE_FILE: &str = "timeline.json";
/// File name of a [`Sweep`].
pub const SWEEP_FILE: &str = "sweep.json";
/// File name of [`BuildTimes`].
pub const BUILD_TIMES_FILE: &str = "build_times.json";
/// File name of the [`Trends`], at the root of the run directory.
pub const TRENDS_FILE: &str = "trends.json";

/// The samples of a distribution metric (cold or warm start latency, scale-up latency ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySamples {
    /// Unit of the values (`s`, `ms`, `%`: any unit the criteria know).
    pub unit: String,
    /// One value per observation, in the order taken.
    pub values: Vec<f64>,
}

/// Environments (or pods) and offered load against time, sampled by the procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Seconds since the start of the phase, ascending.
    pub t_s: Vec<f64>,
    /// Environments (pods) alive at each instant.
    pub envs: Vec<f64>,
    /// Offered load at each instant, requests per second.
    pub load_rps: Vec<f64>,
    /// Concurrency limit to draw as a line, if the function has one.
    #[serde(default)]
    pub limit: Option<f64>,
    /// Events to mark (`spike`, `target reached`, `idle window ends`).
    #[serde(default)]
    pub marks: Vec<Mark>,
}

/// A labelled instant of a [`Timeline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Seconds since the start of the phase.
    pub t_s: f64,
    /// What happened.
    pub label: String,
}

/// One memory size of a memory sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Configured memory, MB.
    pub memory_mb: f64,
    /// Median invocation duration at that size, ms.
    pub duration_ms: f64,
    /// Cost of one invocation, GB-seconds (memory x billed duration).
    pub cost_gbs: f64,
}

/// A memory sweep: duration and cost per memory size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// The sizes tried, ascending.
    pub points: Vec<SweepPoint>,
    /// The size the sweep recommends, MB.
    #[serde(default)]
    pub recommended_mb: Option<f64>,
    /// The size the function is configured with, MB.
    #[serde(default)]
    pub configured_mb: Option<f64>,
}

/// Build times of the baseline and the optimized Dockerfile, and cache hits of the rebuilds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildTimes {
    /// Unit of the durations (`s`).
    pub unit: String,
    /// Clean builds of the baseline (single-stage) Dockerfile.
    pub baseline: Vec<f64>,
    /// Clean builds of the optimized (multi-stage) Dockerfile.
    pub optimized: Vec<f64>,
    /// Rebuilds of the optimized Dockerfile after a source-only change, with the cache.
    #[serde(default)]
    pub incremental: Vec<f64>,
    /// Cache lookups per rebuild.
    #[serde(default)]
    pub cache: Vec<CacheHits>,
}

/// Cache hits of one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheHits {
    /// Which build (`unchanged rebuild`, `source change #2`).
    pub build: String,
    /// Steps served from the cache.
    pub hits: u32,
    /// Cacheable steps looked up.
    pub lookups: u32,
}

/// One run's value of a check, as the history store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// Run id.
    pub run_id: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// The check's measured value in that run, in the trend's unit.
    pub value: f64,
    /// The run is (part of) the baseline the check is compared with.
    #[serde(default)]
    pub is_baseline: bool,
    /// A change point was detected at this run.
    #[serde(default)]
    pub change_point: bool,
}

/// A check's values over the last runs, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckTrend {
    /// Unit of the values (the check's threshold unit, as in `report.json`).
    pub unit: String,
    /// The runs, oldest first; the current run last.
    pub points: Vec<TrendPoint>,
}

/// Trends by check id: the content of `trends.json`.
pub type Trends = BTreeMap<String, CheckTrend>;

/// Writes chart data as `raw/<procedure>/<file>` and returns the path to list in `MeasurementSet.raw`.
pub fn write_chart<T: Serialize>(
    dir: &RunDir,
    procedure: &str,
    file: &str,
    data: &T,
) -> Result<PathBuf, run_dir::Error> {
    let abs = dir.raw_dir(procedure)?.join(file);
    run_dir::write_json(&abs, data)?;
    Ok(Path::new("raw").join(procedure).join(file))
}

/// File name of the samples of `metric`.
pub fn samples_file(metric: &str) -> String {
    format!("{SAMPLES_PREFIX}{metric}.json")
}
