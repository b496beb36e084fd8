//! [`compare`]: one run's figures against a named [`Baseline`], check by check, with the noise band of
//! each check measured from the history of the same environment. In strict mode every figure must be
//! decided (a check missing from the baseline, or an unknown noise band, is a problem that fails the
//! comparison); in lenient mode those checks are listed and skipped. A baseline from another environment
//! is never compared unless asked for explicitly.

use serde::{Deserialize, Serialize};

use super::{
    decision::{decide, Estimate, Outcome, Rule, Verdict},
    history::{Direction, Record},
    named::Baseline,
    noise::{measure_noise, MIN_RUNS},
    Error,
};

/// What a missing baseline or an undecidable check means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// It fails the comparison.
    Strict,
    /// It is reported and skipped.
    Lenient,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Mode::Strict),
            "lenient" => Ok(Mode::Lenient),
            _ => Err(format!("baseline mode `{s}`: expected strict or lenient")),
        }
    }
}

/// How to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Strict or lenient.
    pub mode: Mode,
    /// Relative change that counts as a regression (0.10).
    pub threshold: f64,
    /// One-sided confidence of decisions (0.99).
    pub confidence: f64,
    /// Compare with a baseline from another environment anyway (said in every row).
    pub allow_other_environment: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { mode: Mode::Strict, threshold: 0.10, confidence: 0.99, allow_other_environment: false }
    }
}

/// One check's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Check id.
    pub check: String,
    /// Unit of the figures.
    pub unit: String,
    /// Baseline figure (geometric mean of its runs).
    pub baseline: Option<f64>,
    /// This run's figure.
    pub current: f64,
    /// The decision, or why there is none.
    pub outcome: Result<Outcome, String>,
}

/// A run compared with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Baseline name.
    pub baseline: String,
    /// Run id.
    pub run: String,
    /// The baseline is from another environment (compared because it was asked for).
    pub cross_environment: bool,
    /// One row per check with a figure and a better direction.
    pub rows: Vec<Row>,
    /// What strict mode does not accept (empty in lenient mode).
    pub problems: Vec<String>,
}

impl Comparison {
    /// Rows decided as regressions.
    pub fn regressions(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| matches!(&r.outcome, Ok(o) if o.verdict == Verdict::Regression)).collect()
    }

    /// Rows with a decision.
    pub fn decided(&self) -> usize {
        self.rows.iter().filter(|r| r.outcome.is_ok()).count()
    }
}

fn estimate(r: &Record) -> Estimate {
    Estimate { value: r.value.unwrap_or(f64::NAN), ci_low: r.ci_low, ci_high: r.ci_high, n: r.n.unwrap_or(0) }
}

/// Compares `current` (the records of one run) with `baseline`; `history` supplies the noise bands (records
/// of the current run in it are ignored).
pub fn compare(
    baseline: &Baseline,
    current: &[Record],
    history: &[Record],
    opts: &Options,
) -> Result<Comparison, Error> {
    let first = current.first().ok_or_else(|| Error::Empty("the run has no checks to compare".into()))?;
    let key = first.environment.comparable_key();
    let base_key = baseline.environment.comparable_key();
    let cross = key != base_key;
    if cross && !opts.allow_other_environment {
        return Err(Error::NotComparable { name: baseline.name.clone(), baseline: base_key, current: key });
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for r in current.iter().filter(|r| r.has_figure() && r.direction != Direction::None) {
        let cur = estimate(r);
        let entry = baseline.checks.get(&r.check);
        let base: Vec<Estimate> = entry.map(|e| e.figures.iter().map(|f| f.estimate()).collect()).unwrap_or_default();
        let base_value = (!base.is_empty() && base.iter().all(|b| b.value > 0.0))
            .then(|| (base.iter().map(|b| b.value.ln()).sum::<f64>() / base.len() as f64).exp());
        let relative = cur.value > 0.0 && base.iter().all(|b| b.value > 0.0);
        let outcome = if entry.is_none() {
            Err(format!("baseline `{}` has no figure for this check", baseline.name))
        } else if entry.is_some_and(|e| e.unit != r.unit.clone().unwrap_or_default()) {
            Err(format!(
                "unit changed from {} to {}",
                entry.map_or("", |e| e.unit.as_str()),
                r.unit.as_deref().unwrap_or("")
            ))
        } else if !relative {
            Err("figures are not all positive: no relative change to judge".to_string())
        } else {
            let series: Vec<Estimate> = history
                .iter()
                .filter(|h| {
                    h.check == r.check && h.run != r.run && h.has_figure() && h.environment.comparable_key() == key
                })
                .map(estimate)
                .collect();
            match measure_noise(&series) {
                None => Err(format!(
                    "noise band unknown: {} comparable runs of this check in the history, {MIN_RUNS} needed",
                    series.len()
                )),
                Some(noise) => {
                    let rule = Rule { threshold: opts.threshold, confidence: opts.confidence, direction: r.direction };
                    decide(&base, &cur, &noise, &rule).map_err(|u| u.0)
                }
            }
        };
        // A zero figure (no errors, nothing throttled) has no relative change to judge: reported, not a problem.
        if let (Err(why), Mode::Strict, true) = (&outcome, opts.mode, relative || entry.is_none()) {
            problems.push(format!("{}: {why}", r.check));
        }
        rows.push(Row {
            check: r.check.clone(),
            unit: r.unit.clone().unwrap_or_default(),
            baseline: base_value,
            current: cur.value,
            outcome,
        });
    }
    if rows.is_empty() {
        problems.push("no check of this run has a figure that can regress".into());
    }
    Ok(Comparison { baseline: baseline.name.clone(), run: first.run.clone(), cross_environment: cross, rows, problems })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{
        history::{tests::record, History},
        named,
        simulate::Rng,
    };

    fn history_with(runs: usize, seed: u64) -> (tempfile::TempDir, History) {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        let mut rng = Rng::new(seed);
        for i in 0..runs {
            let v = 50.0 * (0.01 * rng.normal()).exp();
            h.append(&[record(&format!("r{i}"), "AC2.warm", v, i as i64)]).unwrap();
        }
        (d, h)
    }

    #[test]
    fn a_slower_run_regresses_and_an_equal_one_does_not() {
        let (_d, h) = history_with(8, 1);
        let b = named::save(&h, "main", 3, None).unwrap();
        let hist = h.records().unwrap();
        let slow = [record("now", "AC2.warm", 75.0, 100)];
        let c = compare(&b, &slow, &hist, &Options::default()).unwrap();
        assert_eq!(c.regressions().len(), 1, "{c:?}");
        assert!(c.problems.is_empty());
        let same = [record("now", "AC2.warm", 50.0, 100)];
        let c = compare(&b, &same, &hist, &Options::default()).unwrap();
        assert_eq!((c.regressions().len(), c.decided()), (0, 1));
    }

    #[test]
    fn strict_mode_lists_what_it_cannot_decide_and_lenient_mode_skips_it() {
        let (_d, h) = history_with(3, 2);
        let b = named::save(&h, "main", 3, None).unwrap();
        let hist = h.records().unwrap();
        let run = [record("now", "AC2.warm", 50.0, 100), record("now", "AC2.cold", 400.0, 100)];
        let strict = compare(&b, &run, &hist, &Options::default()).unwrap();
        assert_eq!(strict.problems.len(), 2, "{:?}", strict.problems);
        assert!(strict.problems.iter().any(|p| p.contains("AC2.cold") && p.contains("no figure")));
        assert!(strict.problems.iter().any(|p| p.contains("AC2.warm") && p.contains("noise band unknown")));
        let lenient = compare(&b, &run, &hist, &Options { mode: Mode::Lenient, ..Options::default() }).unwrap();
        assert!(lenient.problems.is_empty());
        assert_eq!(lenient.decided(), 0);
    }

    #[test]
    fn a_zero_figure_is_reported_but_not_a_strict_problem() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        for i in 0..6 {
            h.append(&[record(&format!("r{i}"), "AC3.throttled", 0.0, i)]).unwrap();
        }
        let b = named::save(&h, "main", 3, None).unwrap();
        let c = compare(&b, &[record("now", "AC3.throttled", 0.0, 100)], &h.records().unwrap(), &Options::default())
            .unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(matches!(&c.rows[0].outcome, Err(why) if why.contains("not all positive")));
    }

    #[test]
    fn another_environment_is_refused_unless_asked_for() {
        let (_d, h) = history_with(8, 3);
        let b = named::save(&h, "main", 3, None).unwrap();
        let hist = h.records().unwrap();
        let mut other = record("now", "AC2.warm", 50.0, 100);
        other.environment.cores += 6;
        let e = compare(&b, std::slice::from_ref(&other), &hist, &Options::default()).unwrap_err();
        assert!(matches!(e, Error::NotComparable { .. }), "{e}");
        assert!(e.to_string().contains("another environment"));
        let c = compare(
            &b,
            &[other],
            &hist,
            &Options { allow_other_environment: true, mode: Mode::Lenient, ..Options::default() },
        )
        .unwrap();
        assert!(c.cross_environment);
    }

    #[test]
    fn a_baseline_of_another_build_profile_is_refused_and_the_reason_says_so() {
        let (_d, h) = history_with(8, 4);
        let b = named::save(&h, "main", 3, None).unwrap();
        let hist = h.records().unwrap();
        let mut other = record("now", "AC2.warm", 50.0, 100);
        other.environment.build.profile = "a-custom-profile".into();
        let e = compare(&b, std::slice::from_ref(&other), &hist, &Options::default()).unwrap_err();
        assert!(matches!(e, Error::NotComparable { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("harness build") && text.contains("build=a-custom-profile"), "{text}");
        // Another commit of the same build profile is what a baseline is compared with.
        let mut next = record("now", "AC2.warm", 50.0, 100);
        next.environment.build.commit = "fedcba987654".into();
        assert!(compare(&b, &[next], &hist, &Options::default()).is_ok());
    }
}
