//! [`MeasurementSet`] and [`Metric`]: what a procedure produced, serialized into the run directory so that
//! every check (and every test process) of one run reads the same figures.

use std::{collections::BTreeMap, path::PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::criteria::{Params, Unit};

/// One metric of a procedure's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Metric {
    /// Many samples, in `unit`.
    Samples {
        /// Unit of the values.
        unit: Unit,
        /// The samples.
        values: Vec<f64>,
    },
    /// One figure, in `unit`, computed from `n` observations.
    Value {
        /// The figure.
        value: f64,
        /// Unit of the figure.
        unit: Unit,
        /// Observations behind it.
        n: u64,
        /// Lower bound of its confidence interval, if it has one.
        #[serde(default)]
        ci_low: Option<f64>,
        /// Upper bound of its confidence interval, if it has one.
        #[serde(default)]
        ci_high: Option<f64>,
    },
    /// The procedure ran but could not produce this metric.
    Missing {
        /// What was missing and why.
        reason: String,
    },
    /// The metric needs an earlier run than this one (a first run has no history to judge it from): the
    /// check is skipped with the reason, and a later run decides it.
    NeedsEarlierRun {
        /// What this run did instead (for example: saved the baseline) and what decides it.
        reason: String,
    },
}

impl Metric {
    /// A single figure without a confidence interval.
    pub fn value(value: f64, unit: &str, n: u64) -> Metric {
        Metric::Value { value, unit: unit_or_panic(unit), n, ci_low: None, ci_high: None }
    }

    /// A set of samples.
    pub fn samples(values: Vec<f64>, unit: &str) -> Metric {
        Metric::Samples { unit: unit_or_panic(unit), values }
    }

    /// A true/false finding from `n` observations.
    pub fn flag(value: bool, n: u64) -> Metric {
        Metric::value(if value { 1.0 } else { 0.0 }, "bool", n)
    }
}

fn unit_or_panic(unit: &str) -> Unit {
    Unit::parse(unit).unwrap_or_else(|| panic!("procedure used unknown unit `{unit}`"))
}

/// Everything one procedure measured in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementSet {
    /// Procedure name.
    pub procedure: String,
    /// Target name.
    pub target: String,
    /// Parameters it ran with.
    pub params: Params,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it finished.
    pub finished: DateTime<Utc>,
    /// Metrics by name.
    pub metrics: BTreeMap<String, Metric>,
    /// Raw data files (relative to the run directory).
    #[serde(default)]
    pub raw: Vec<PathBuf>,
    /// Remarks for the report (what was verified, what was excluded).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The attempts behind a metric, by metric name: checks that read it fail when its failures exceed
    /// the budget, and report it with the figure.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ledgers: BTreeMap<String, super::ledger::Ledger>,
}

impl MeasurementSet {
    /// An empty set for `procedure` started now.
    pub fn new(procedure: &str, target: &str, params: &Params) -> MeasurementSet {
        let now = Utc::now();
        MeasurementSet {
            procedure: procedure.into(),
            target: target.into(),
            params: params.clone(),
            started: now,
            finished: now,
            metrics: BTreeMap::new(),
            raw: Vec::new(),
            notes: Vec::new(),
            ledgers: BTreeMap::new(),
        }
    }

    /// Adds a metric.
    pub fn with(mut self, name: &str, metric: Metric) -> Self {
        self.metrics.insert(name.into(), metric);
        self
    }

    /// Marks the end of the measurement.
    pub fn finish(mut self) -> Self {
        self.finished = Utc::now();
        self
    }
}

/// Why a procedure produced no measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Error {
    /// The procedure does not apply to this target (the check is skipped).
    #[error("does not apply to target {target}: {reason}")]
    NotApplicable {
        /// Target name.
        target: String,
        /// Why not.
        reason: String,
    },
    /// The procedure is not implemented for this target yet.
    #[error("no measurement procedure `{procedure}` for target {target} yet: nothing was measured")]
    NotImplemented {
        /// Procedure name.
        procedure: String,
        /// Target name.
        target: String,
    },
    /// A parameter is missing or has the wrong type.
    #[error("procedure `{procedure}`: parameter `{param}`: {problem}")]
    Param {
        /// Procedure name.
        procedure: String,
        /// Parameter name.
        param: String,
        /// What is wrong.
        problem: String,
    },
    /// Something the procedure needs is missing or unreachable (engine, endpoint, server, data).
    #[error("{what}: {detail}")]
    Unavailable {
        /// What was needed (an endpoint, a server, a query result).
        what: String,
        /// What happened and what to do.
        detail: String,
    },
    /// The measurement itself failed.
    #[error("{0}")]
    Failed(String),
}
