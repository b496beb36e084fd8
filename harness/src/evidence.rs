//! [`Evidence`]: the record of one check's decision in one run, and [`decide`], the only way to a
//! `passed` status: it needs a figure measured in this run.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    criteria::{fmt_num, Check, Decision, Dimension, Expectation, Statistic, Unit},
    measure::types::{MeasurementSet, Metric},
    stats,
};

pub use crate::stats::CONFIDENCE;

/// Outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Measured in this run and within the threshold.
    Passed,
    /// Measured and outside the threshold, or too little evidence.
    Failed,
    /// Does not apply to this target or profile, or is manual.
    Skipped,
    /// Could not be measured (set-up, unreachable target, missing procedure).
    Error,
}

impl Status {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Error => "error",
        }
    }
}

/// The measured figure of a check, in the threshold's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The statistic's value.
    pub value: f64,
    /// Unit (the threshold's).
    pub unit: String,
    /// Samples behind it.
    pub n: u64,
    /// Lower bound of the 95% confidence interval, when it applies and can be bounded.
    pub ci_low: Option<f64>,
    /// Upper bound of the 95% confidence interval, when it applies and can be bounded.
    pub ci_high: Option<f64>,
}

/// The threshold of a check as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Comparison operator (`<`, `>=` ...).
    pub op: String,
    /// Threshold value in `unit`.
    pub value: f64,
    /// Unit as written.
    pub unit: String,
}

/// Evidence for one check in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Check id.
    pub id: String,
    /// Criterion group.
    pub ac: String,
    /// The ticket's words.
    pub title: String,
    /// Target name.
    pub target: String,
    /// Outcome.
    pub status: Status,
    /// Why: the comparison made, or what was missing.
    pub reason: String,
    /// The statistic that was compared (`p95`), if measured.
    #[serde(default)]
    pub statistic: Option<String>,
    /// The figure, if one was measured.
    pub measured: Option<Measured>,
    /// The threshold, for measured checks.
    pub threshold: Option<Threshold>,
    /// Raw data files, relative to the run directory.
    #[serde(default)]
    pub raw: Vec<PathBuf>,
    /// Notes from the procedure.
    #[serde(default)]
    pub notes: Vec<String>,
    /// When the measurement was taken.
    #[serde(default)]
    pub measured_at: Option<DateTime<Utc>>,
}

impl Evidence {
    fn base(check: &Check, target: &str, status: Status, reason: String) -> Evidence {
        let threshold = match &check.decision {
            Decision::Measured { expect, .. } => Some(threshold_of(expect)),
            Decision::Manual { .. } => None,
        };
        let statistic = match &check.decision {
            Decision::Measured { expect, .. } if expect.statistic != Statistic::Value => {
                Some(expect.statistic.to_string())
            }
            _ => None,
        };
        Evidence {
            id: check.id.clone(),
            ac: check.ac.clone(),
            title: check.title.clone(),
            target: target.into(),
            status,
            reason,
            statistic,
            measured: None,
            threshold,
            raw: Vec::new(),
            notes: Vec::new(),
            measured_at: None,
        }
    }

    /// A skipped check.
    pub fn skipped(check: &Check, target: &str, reason: impl Into<String>) -> Evidence {
        Evidence::base(check, target, Status::Skipped, reason.into())
    }

    /// A check that could not be measured.
    pub fn error(check: &Check, target: &str, reason: impl Into<String>) -> Evidence {
        Evidence::base(check, target, Status::Error, reason.into())
    }

    /// A check that failed without a figure (for example too few samples).
    pub fn failed(check: &Check, target: &str, reason: impl Into<String>) -> Evidence {
        Evidence::base(check, target, Status::Failed, reason.into())
    }
}

fn threshold_of(e: &Expectation) -> Threshold {
    Threshold { op: e.op.symbol().into(), value: e.value, unit: display_unit(e.unit).into() }
}

fn display_unit(u: Unit) -> &'static str {
    if u.dimension == Dimension::Bool {
        "bool"
    } else {
        u.symbol
    }
}

/// Decides a measured check from the measurement set of its procedure (taken in this run).
pub fn decide(check: &Check, target: &str, set: &MeasurementSet) -> Evidence {
    let Decision::Measured { measure, expect, min_samples, .. } = &check.decision else {
        return Evidence::skipped(check, target, "manual");
    };
    let metric_name = measure.split_once('.').map_or(measure.as_str(), |(_, m)| m);
    let with_set = |mut e: Evidence| {
        e.raw = set.raw.clone();
        e.notes = set.notes.clone();
        e.measured_at = Some(set.finished);
        e
    };
    let Some(metric) = set.metrics.get(metric_name) else {
        return with_set(Evidence::error(
            check,
            target,
            format!("procedure `{}` produced no metric `{metric_name}`", set.procedure),
        ));
    };
    if let Metric::NeedsEarlierRun { reason } = metric {
        return with_set(Evidence::skipped(check, target, format!("{measure}: {reason}")));
    }
    let ledger = set.ledgers.get(metric_name);
    let attempts = ledger.map(|l| format!("; {}", l.summary())).unwrap_or_default();
    let estimate = match estimate(metric, expect, ledger.filter(|l| l.censored)) {
        Ok(e) => e,
        Err(reason) => {
            return with_set(Evidence::failed(check, target, format!("{measure}: {reason}{attempts}")));
        }
    };
    let (est, unit) = estimate;
    if est.n < u64::from(*min_samples) {
        return with_set(Evidence::failed(
            check,
            target,
            format!("too few samples: n={} but the check needs at least {min_samples}", est.n),
        ));
    }
    let conv = |v: f64| expect.unit.from_canonical(unit.to_canonical(v));
    let measured = Measured {
        value: conv(est.value),
        unit: display_unit(expect.unit).into(),
        n: est.n,
        ci_low: est.ci_low.map(conv),
        ci_high: est.ci_high.map(conv),
    };
    let holds = expect.op.holds(unit.to_canonical(est.value), expect.canonical_value());
    let over_budget = ledger.and_then(crate::measure::ledger::Ledger::verdict);
    let shown = |v: f64| {
        if expect.unit.dimension == Dimension::Bool {
            (v != 0.0).to_string()
        } else {
            let space = if expect.unit.symbol.contains('/') { " " } else { "" };
            format!("{}{space}{}", fmt_num(v), expect.unit.symbol)
        }
    };
    let stat = match expect.statistic {
        Statistic::Value => String::new(),
        s => format!("{s} "),
    };
    let ci = match (measured.ci_low, measured.ci_high) {
        (Some(l), Some(h)) => format!(" (95% CI {}..{})", shown(l), shown(h)),
        (Some(l), None) => format!(" (95% CI {}..unbounded at n={})", shown(l), est.n),
        (None, Some(h)) => format!(" (95% CI unbounded..{} at n={})", shown(h), est.n),
        _ => String::new(),
    };
    let mut reason = format!(
        "{stat}{}{ci} {} {}{attempts}",
        shown(measured.value),
        if holds { "meets" } else { "does not meet" },
        expect.threshold_text()
    );
    if let Some(why) = &over_budget {
        reason = format!("{why}; the figure of the rest: {reason}");
    }
    let passed = holds && over_budget.is_none();
    let mut e = with_set(Evidence::base(check, target, if passed { Status::Passed } else { Status::Failed }, reason));
    e.measured = Some(measured);
    e
}

/// The figure a check reads from `metric`. With a censored ledger (failures are slower than every sample)
/// a percentile is taken over every attempt, and a mean or maximum with failures has no finite value.
fn estimate(
    metric: &Metric,
    expect: &Expectation,
    censored: Option<&crate::measure::Ledger>,
) -> Result<(stats::Estimate, Unit), String> {
    match metric {
        Metric::Missing { reason } => Err(format!("not measured: {reason}")),
        Metric::NeedsEarlierRun { reason } => Err(format!("not decidable in this run: {reason}")),
        Metric::Value { value, unit, n, ci_low, ci_high } => {
            check_dimension(*unit, expect)?;
            if !value.is_finite() {
                return Err(format!("measured value is not a number ({value})"));
            }
            if expect.statistic != Statistic::Value {
                return Err(format!("a single figure has no {}", expect.statistic));
            }
            Ok((stats::Estimate { value: *value, n: *n, ci_low: *ci_low, ci_high: *ci_high }, *unit))
        }
        Metric::Samples { unit, values } => {
            check_dimension(*unit, expect)?;
            if values.is_empty() {
                return Err("no samples".into());
            }
            let failed = censored.map_or(0, |l| l.failures());
            if failed > 0 && matches!(expect.statistic, Statistic::Mean | Statistic::Max) {
                return Err(format!(
                    "{failed} attempts failed and have no value: a {} over every attempt is unbounded",
                    expect.statistic
                ));
            }
            let est = match expect.statistic {
                Statistic::Percentile(q) => match censored {
                    Some(l) => return l.percentile(values, q, CONFIDENCE).map(|e| (e, *unit)),
                    None => stats::percentile(values, q, CONFIDENCE),
                },
                Statistic::Mean => stats::mean(values),
                Statistic::Min => values.iter().copied().reduce(f64::min).map(|v| exact(v, values.len())),
                Statistic::Max => values.iter().copied().reduce(f64::max).map(|v| exact(v, values.len())),
                Statistic::Value => return Err("many samples: the check must name a statistic (p95, mean ...)".into()),
            };
            est.map(|e| (e, *unit)).ok_or_else(|| "no finite samples".into())
        }
    }
}

fn exact(value: f64, n: usize) -> stats::Estimate {
    stats::Estimate { value, n: n as u64, ci_low: None, ci_high: None }
}

fn check_dimension(unit: Unit, expect: &Expectation) -> Result<(), String> {
    let (a, b) = (unit.dimension, expect.unit.dimension);
    if a == b || (a == Dimension::Count && b == Dimension::Count) {
        Ok(())
    } else {
        Err(format!("measured in {a:?} but the threshold is in {b:?}"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;
    use crate::criteria::Profile;

    fn check(measure: &str, expect: &str, min: u32) -> Check {
        let text = format!(
            "profile: t\ntitle: T\nsource: s\nchecks:\n  - id: X.y\n    ac: X\n    title: t\n    measure: {measure}\n    expect: \"{expect}\"\n    min_samples: {min}\n"
        );
        Profile::parse(&text, Path::new("t.yaml")).unwrap().checks.remove(0)
    }

    fn set(metric: &str, m: Metric) -> MeasurementSet {
        MeasurementSet::new("p", "local", &Default::default()).with(metric, m)
    }

    #[test]
    fn no_metric_is_an_error_not_a_pass() {
        let c = check("cold_start.client_latency", "p95 < 1s", 1);
        let e = decide(&c, "local", &MeasurementSet::new("cold_start", "local", &Default::default()));
        assert_eq!(e.status, Status::Error);
        assert!(e.measured.is_none());
        assert!(e.reason.contains("no metric `client_latency`"), "{}", e.reason);
    }

    #[test]
    fn missing_metric_and_empty_samples_fail() {
        let c = check("cold_start.client_latency", "p95 < 1s", 1);
        let e = decide(&c, "local", &set("client_latency", Metric::Missing { reason: "engine down".into() }));
        assert_eq!((e.status, e.measured.is_none()), (Status::Failed, true));
        assert!(e.reason.contains("engine down"));
        let e = decide(&c, "local", &set("client_latency", Metric::samples(vec![], "s")));
        assert_eq!((e.status, e.measured.is_none()), (Status::Failed, true));
    }

    #[test]
    fn a_figure_that_needs_an_earlier_run_is_skipped_with_the_reason_not_passed() {
        let c = check("regression.history_runs", ">= 2", 1);
        let why = "first run: baseline saved, the next run decides";
        let e = decide(&c, "local", &set("history_runs", Metric::NeedsEarlierRun { reason: why.into() }));
        assert_eq!((e.status, e.measured.is_none()), (Status::Skipped, true));
        assert!(e.reason.contains(why), "{}", e.reason);
    }

    #[test]
    fn too_few_samples_fail_even_when_fast() {
        let c = check("cold_start.client_latency", "p95 < 1s", 20);
        let e = decide(&c, "local", &set("client_latency", Metric::samples(vec![0.01; 19], "s")));
        assert_eq!(e.status, Status::Failed);
        assert!(e.reason.contains("n=19") && e.reason.contains("at least 20"), "{}", e.reason);
    }

    #[test]
    fn nan_is_never_a_pass() {
        let c = check("image.size", "< 500MB", 1);
        let e = decide(&c, "local", &set("size", Metric::value(f64::NAN, "B", 1)));
        assert_eq!(e.status, Status::Failed);
    }

    #[rstest]
    #[case("p95 < 1s", 0.999, Status::Passed)]
    #[case("p95 < 1s", 1.0, Status::Failed)]
    #[case("p95 < 100ms", 0.0999, Status::Passed)]
    #[case("p95 < 100ms", 0.1, Status::Failed)]
    #[case("p95 <= 100ms", 0.1, Status::Passed)]
    fn percentile_decides_at_the_boundary(#[case] expect: &str, #[case] p95: f64, #[case] status: Status) {
        let c = check("cold_start.client_latency", expect, 20);
        let mut v = vec![0.001; 94];
        v.extend([p95; 6]);
        let e = decide(&c, "local", &set("client_latency", Metric::samples(v, "s")));
        assert_eq!(e.status, status, "{}", e.reason);
        let m = e.measured.unwrap();
        assert_eq!(m.n, 100);
        assert_eq!(m.unit, if expect.contains("ms") { "ms" } else { "s" });
    }

    #[rstest]
    #[case("image.size", "< 500MB", 499_999_999.0, "B", Status::Passed)]
    #[case("image.size", "< 500MB", 500_000_000.0, "B", Status::Failed)]
    #[case("build.time_reduction", ">= 20%", 20.0, "%", Status::Passed)]
    #[case("build.time_reduction", ">= 20%", 19.99, "%", Status::Failed)]
    #[case("resources.limits_missing", "== 0", 0.0, "", Status::Passed)]
    #[case("resources.limits_missing", "== 0", 1.0, "", Status::Failed)]
    #[case("regression.alert_time", "< 5min", 299.0, "s", Status::Passed)]
    #[case("regression.alert_time", "< 5min", 300.0, "s", Status::Failed)]
    #[case("high_load.delivered_rate", ">= 1000 req/s", 1000.0, "req/s", Status::Passed)]
    #[case("high_load.delivered_rate", ">= 1000 req/s", 999.0, "req/s", Status::Failed)]
    fn scalar_decides_at_the_boundary(
        #[case] measure: &str,
        #[case] expect: &str,
        #[case] value: f64,
        #[case] unit: &str,
        #[case] status: Status,
    ) {
        let c = check(measure, expect, 1);
        let metric = measure.split_once('.').unwrap().1;
        let e = decide(&c, "local", &set(metric, Metric::value(value, unit, 1)));
        assert_eq!(e.status, status, "{}", e.reason);
    }

    #[test]
    fn flags_decide() {
        let c = check("scale_down.retired_after_idle", "== true", 1);
        assert_eq!(decide(&c, "local", &set("retired_after_idle", Metric::flag(true, 3))).status, Status::Passed);
        assert_eq!(decide(&c, "local", &set("retired_after_idle", Metric::flag(false, 3))).status, Status::Failed);
    }

    #[test]
    fn wrong_measured_dimension_fails() {
        let c = check("image.size", "< 500MB", 1);
        let e = decide(&c, "local", &set("size", Metric::value(1.0, "s", 1)));
        assert_eq!(e.status, Status::Failed);
        assert!(e.reason.contains("Time"), "{}", e.reason);
    }

    proptest::proptest! {
        /// Whatever a measurement holds, `passed` comes with a measured figure that meets the threshold.
        #[test]
        fn passed_implies_a_measured_figure(values in proptest::collection::vec(0.0f64..3.0, 0..60), min in 0u32..40) {
            let c = check("cold_start.client_latency", "p95 < 1s", min);
            let e = decide(&c, "local", &set("client_latency", Metric::samples(values.clone(), "s")));
            if e.status == Status::Passed {
                let m = e.measured.expect("passed without a figure");
                proptest::prop_assert!(m.value < 1.0);
                proptest::prop_assert!(m.n as usize == values.len() && m.n >= u64::from(min));
            }
        }
    }
}
