//! [`decide`]: is a figure a regression against its baseline?
//!
//! Figures are compared on a log scale (a relative change), after turning "worse" into "larger". With `d`
//! the change of this run's figure against the mean of the K baseline runs, `se` its sampling standard
//! error (from the runs' 95% confidence intervals), `j = σ·√(1 + 1/K)` the run-to-run jitter of the
//! environment beyond sampling (σ measured from the history, see `noise`), `t = √(se² + j²)` and `z` the
//! one-sided quantile of the decision's confidence (99%), from the Student t distribution with the
//! Welch-Satterthwaite degrees of freedom of `t` (exact quantiles: 31.8 with 1 degree of freedom, 6.96 with
//! 2, so a noise band measured from 2-3 runs is as wide as such a history really leaves it):
//!
//! - the **noise band** is `z_j·j`, where the confidence is split between the two sources in proportion to
//!   their size (`z_s = z·se/t`, `z_j = z·j/t`), so that the change's interval `d ± z_s·se` lies wholly
//!   beyond the band exactly when `d > z·t`: under no change that happens with probability 1 - confidence,
//!   whichever source dominates;
//! - **regression**: the change lies beyond the band in that sense, it is statistically significant on its
//!   own sampling error (one-sided p < [`SIGNIFICANCE`]), and the estimate itself exceeds the threshold:
//!   `d > ln(1 + threshold)`. A true change of exactly the threshold is therefore flagged about half the
//!   time; a change the rule must catch is one clearly over it (the regression procedure injects twice the
//!   threshold, see `examples/regression_power.rs`);
//! - **below threshold**: beyond the band and significant, but the estimate is within the threshold;
//! - **improvement**: the interval lies wholly below `-band`;
//! - **within noise**: anything else.
//!
//! The reported interval is the change's 95% sampling interval `d ± 1.96·se` (a fixed level; the decision's
//! split interval has a level that varies with the share of noise, and is not printed).

use serde::{Deserialize, Serialize};

use super::history::Direction;

/// A figure of one run with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The figure.
    pub value: f64,
    /// Lower bound of its 95% confidence interval.
    pub ci_low: Option<f64>,
    /// Upper bound of its 95% confidence interval.
    pub ci_high: Option<f64>,
    /// Samples behind it.
    pub n: u64,
}

impl Estimate {
    /// Standard error of `ln(value)` from the 95% interval (`None` when unbounded or not positive).
    pub fn log_se(&self) -> Option<f64> {
        let (lo, hi) = (self.ci_low?, self.ci_high?);
        (lo > 0.0 && hi >= lo && self.value > 0.0).then(|| (hi.ln() - lo.ln()) / (2.0 * Z95))
    }
}

/// One-sided p-value below which a change is significant on its sampling error alone.
pub const SIGNIFICANCE: f64 = 0.05;

/// Two-sided 95% normal quantile: the intervals the evidence carries.
pub const Z95: f64 = 1.959_963_984_540_054;

/// How to decide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Relative change that counts as a regression (0.10 for 10%).
    pub threshold: f64,
    /// One-sided confidence of the decision (0.99).
    pub confidence: f64,
    /// Which way the figure gets worse.
    pub direction: Direction,
}

/// The environment's run-to-run jitter of a figure beyond its sampling error, on a log scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// Standard deviation of the run-to-run jitter of `ln(figure)`.
    pub sigma: f64,
    /// Runs it was measured from.
    pub runs: usize,
    /// Degrees of freedom of the estimate of `sigma` (infinite when known exactly).
    #[serde(default = "infinite")]
    pub dof: f64,
}

fn infinite() -> f64 {
    f64::INFINITY
}

impl Noise {
    /// Noise known exactly (simulations, tests).
    pub fn exact(sigma: f64) -> Noise {
        Noise { sigma, runs: usize::MAX, dof: f64::INFINITY }
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond noise, and possibly by the threshold or more.
    Regression,
    /// Worse beyond noise but shown to be smaller than the threshold.
    BelowThreshold,
    /// Better beyond noise.
    Improvement,
    /// Not distinguishable from the environment's noise.
    WithinNoise,
}

/// A decision with its figures (relative changes: 0.12 means 12% worse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The decision.
    pub verdict: Verdict,
    /// Relative change towards worse (negative: better).
    pub change: f64,
    /// Its 95% confidence interval from sampling error (relative; (change, change) without sampling error).
    pub ci: (f64, f64),
    /// The noise band (relative).
    pub band: f64,
    /// One-sided p-value of "no change" from sampling error alone.
    pub p_value: f64,
    /// One line for the report.
    pub explanation: String,
}

/// Why no decision could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Undecided(pub String);

/// Decides whether `current` regressed against `baseline` (one estimate per baseline run).
pub fn decide(baseline: &[Estimate], current: &Estimate, noise: &Noise, rule: &Rule) -> Result<Outcome, Undecided> {
    if rule.direction == Direction::None {
        return Err(Undecided("not a performance figure (its threshold has no better direction)".into()));
    }
    if baseline.is_empty() {
        return Err(Undecided("the baseline holds no figure for it".into()));
    }
    if !positive(current.value) || !baseline.iter().all(|b| positive(b.value)) {
        return Err(Undecided("figures are not all positive: no relative change".into()));
    }
    // A figure without a bounded interval (a single value, or a percentile of few samples) brings no
    // sampling error of its own: the history's run-to-run variation, which then holds all of its noise,
    // decides alone.
    let se_c = current.log_se().unwrap_or(0.0);
    let se_b: Vec<f64> = baseline.iter().map(|b| b.log_se().unwrap_or(0.0)).collect();
    let k = baseline.len() as f64;
    let base_log = baseline.iter().map(|b| b.value.ln()).sum::<f64>() / k;
    let sign = if rule.direction == Direction::HigherIsBetter { -1.0 } else { 1.0 };
    let d = sign * (current.value.ln() - base_log);
    let se = (se_c.powi(2) + se_b.iter().map(|s| s * s).sum::<f64>() / (k * k)).sqrt();
    let jitter = noise.sigma * (1.0 + 1.0 / k).sqrt();
    let total = (se * se + jitter * jitter).sqrt();
    // σ is estimated from a short history: a Student t quantile with the Welch-Satterthwaite degrees of
    // freedom of the total (the sampling part is taken as known) keeps false alarms at the bound. Those
    // are never fewer than the spread of the history's runs has (`spread_dof`): a jitter that is a sliver of
    // that spread is not known with fewer (Satterthwaite's figure then goes towards 0 and its quantile to
    // infinity, a band no change could leave).
    let dof = if jitter > 0.0 {
        (total.powi(4) / (jitter.powi(4) / noise.dof)).max(spread_dof(noise.runs))
    } else {
        f64::INFINITY
    };
    let z = student_t_quantile(rule.confidence, dof);
    let (z_s, z_j) = if total > 0.0 { (z * se / total, z * jitter / total) } else { (z, 0.0) };
    let band = z_j * jitter;
    let (lo, hi) = (d - z_s * se, d + z_s * se);
    let limit = (1.0 + rule.threshold).ln();
    let p_value = if se > 0.0 {
        1.0 - normal_cdf(d / se)
    } else if d > 0.0 {
        0.0
    } else {
        1.0
    };
    let verdict = if lo > band && p_value < SIGNIFICANCE {
        if d > limit {
            Verdict::Regression
        } else {
            Verdict::BelowThreshold
        }
    } else if hi < -band {
        Verdict::Improvement
    } else {
        Verdict::WithinNoise
    };
    let rel = |x: f64| x.exp() - 1.0;
    let pct = |x: f64| format!("{:+.1}%", 100.0 * rel(x));
    let ci95 = (d - Z95 * se, d + Z95 * se);
    let sampling = if se > 0.0 {
        format!("95% CI {}..{}, p={p_value:.2e}", pct(ci95.0), pct(ci95.1))
    } else {
        "no sampling interval".to_string()
    };
    let explanation = format!(
        "{} worse ({sampling}), noise band ±{:.1}% from {}, threshold {:.0}%: {}",
        pct(d),
        100.0 * rel(band),
        match (noise.runs, noise.sigma > 0.0) {
            (usize::MAX, _) => "known noise".to_string(),
            (runs, true) => format!("{runs} runs"),
            // Not a missing figure: the runs' spread was no wider than their own sampling intervals, so
            // the decision rests on those intervals alone.
            (runs, false) => format!("{runs} runs, whose spread is within their sampling error"),
        },
        100.0 * rule.threshold,
        match verdict {
            Verdict::Regression => "regression",
            Verdict::BelowThreshold => "a real change, smaller than the threshold",
            Verdict::Improvement => "improvement",
            Verdict::WithinNoise => "within noise",
        }
    );
    Ok(Outcome { verdict, change: rel(d), ci: (rel(ci95.0), rel(ci95.1)), band: rel(band), p_value, explanation })
}

/// Degrees of freedom of the run-to-run spread (mean squared successive difference) of `runs` runs: 1 for
/// 2 runs, 1.6 for 3, 7.8 for 12 (infinite for known noise).
pub fn spread_dof(runs: usize) -> f64 {
    if runs == usize::MAX {
        return f64::INFINITY;
    }
    let m = runs.max(2) as f64;
    2.0 * (m - 1.0).powi(2) / (3.0 * m - 4.0)
}

fn positive(x: f64) -> bool {
    x > 0.0
}

/// Standard normal CDF (via erfc; absolute error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    // Numerical Recipes' erfcc (Chebyshev fit), fractional error < 1.2e-7 everywhere.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Student t quantile with `dof` degrees of freedom (exact; the normal quantile when `dof` is infinite or
/// not positive-finite enough to define the distribution).
pub fn student_t_quantile(p: f64, dof: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(t) if dof.is_finite() => t.inverse_cdf(p.clamp(1e-300, 1.0 - 1e-16)),
        _ => normal_quantile(p),
    }
}

/// Standard normal quantile, `p` clamped into the open interval so the decision never sees an infinity
/// (the approximation itself lives in [`crate::stats::normal_quantile`]).
pub fn normal_quantile(p: f64) -> f64 {
    crate::stats::normal_quantile(p.clamp(1e-300, 1.0 - 1e-16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(v: f64, rel_half_width: f64) -> Estimate {
        Estimate {
            value: v,
            ci_low: Some(v * (1.0 - rel_half_width)),
            ci_high: Some(v * (1.0 + rel_half_width)),
            n: 500,
        }
    }

    const RULE: Rule = Rule { threshold: 0.10, confidence: 0.99, direction: Direction::LowerIsBetter };

    #[test]
    fn normal_functions_match_tables() {
        assert!((normal_quantile(0.99) - 2.326_347_874).abs() < 1e-6);
        assert!((normal_quantile(0.975) - Z95).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-2.326_348) - 0.01).abs() < 1e-6);
        for (dof, t) in [(6.0, 3.143), (10.0, 2.764), (20.0, 2.528), (60.0, 2.390)] {
            let got = student_t_quantile(0.99, dof);
            assert!((got - t).abs() / t < 0.005, "t(0.99, {dof}) = {got}, tables say {t}");
        }
        assert_eq!(student_t_quantile(0.99, f64::INFINITY), normal_quantile(0.99));
    }

    #[test]
    fn student_t_quantiles_are_exact_for_a_history_of_two_or_three_runs() {
        for (dof, t) in [(1.0, 31.820_516), (2.0, 6.964_557), (3.0, 4.540_703), (4.0, 3.746_947)] {
            let got = student_t_quantile(0.99, dof);
            assert!((got - t).abs() < 1e-4, "t(0.99, {dof}) = {got}, tables say {t}");
        }
    }

    #[test]
    fn a_noise_band_from_two_runs_does_not_flag_what_it_cannot_rule_out() {
        // No sampling intervals: the history's run-to-run spread decides alone. Measured from two runs (one
        // degree of freedom) a σ of 2% leaves a 12% change indistinguishable from noise.
        let bare = |v: f64| Estimate { value: v, ci_low: None, ci_high: None, n: 1 };
        let noise = Noise { sigma: 0.02, runs: 2, dof: 1.0 };
        let o = decide(&[bare(100.0), bare(100.0)], &bare(112.0), &noise, &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::WithinNoise, "{}", o.explanation);
        // The same spread known from a long history does flag it.
        let known = Noise { dof: 200.0, ..noise };
        let o = decide(&[bare(100.0), bare(100.0)], &bare(112.0), &known, &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::Regression, "{}", o.explanation);
    }

    #[test]
    fn the_threshold_applies_to_the_estimate() {
        // Significant and beyond the noise band in both cases; only the size of the change differs.
        let base = [est(100.0, 0.02), est(100.0, 0.02), est(100.0, 0.02)];
        let noise = Noise::exact(0.01);
        let under = decide(&base, &est(106.0, 0.03), &noise, &RULE).unwrap();
        assert!(under.p_value < SIGNIFICANCE && under.ci.0 > 0.0, "{}", under.explanation);
        assert_eq!(under.verdict, Verdict::BelowThreshold, "a 6% change flagged at 10%: {}", under.explanation);
        let over = decide(&base, &est(118.0, 0.03), &noise, &RULE).unwrap();
        assert_eq!(over.verdict, Verdict::Regression, "{}", over.explanation);
    }

    #[test]
    fn the_printed_interval_is_the_95_percent_sampling_interval() {
        let base = [est(100.0, 0.02)];
        let re = regex::Regex::new(r"\d+% CI").unwrap();
        for sigma in [0.0, 0.01, 0.05] {
            let o = decide(&base, &est(110.0, 0.02), &Noise::exact(sigma), &RULE).unwrap();
            assert!(o.explanation.contains("(95% CI "), "{}", o.explanation);
            assert_eq!(re.find_iter(&o.explanation).count(), 1, "{}", o.explanation);
        }
    }

    #[test]
    fn a_clear_slowdown_is_a_regression_and_no_change_is_not() {
        let base = [est(100.0, 0.02), est(101.0, 0.02), est(99.0, 0.02)];
        let noise = Noise::exact(0.01);
        let o = decide(&base, &est(125.0, 0.02), &noise, &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::Regression, "{}", o.explanation);
        assert!(o.change > 0.2 && o.ci.0 > o.band && o.p_value < 1e-6);
        let o = decide(&base, &est(100.5, 0.02), &noise, &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::WithinNoise, "{}", o.explanation);
        let o = decide(&base, &est(80.0, 0.02), &noise, &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::Improvement, "{}", o.explanation);
    }

    #[test]
    fn a_precise_small_change_is_below_threshold() {
        let base = [est(100.0, 0.002)];
        let o = decide(&base, &est(103.0, 0.002), &Noise::exact(0.001), &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::BelowThreshold, "{}", o.explanation);
    }

    #[test]
    fn a_noisy_environment_absorbs_a_change_the_sampling_error_alone_would_flag() {
        let base = [est(100.0, 0.01)];
        let quiet = decide(&base, &est(115.0, 0.01), &Noise::exact(0.0), &RULE).unwrap();
        assert_eq!(quiet.verdict, Verdict::Regression);
        let noisy = decide(&base, &est(115.0, 0.01), &Noise::exact(0.08), &RULE).unwrap();
        assert_eq!(noisy.verdict, Verdict::WithinNoise, "{}", noisy.explanation);
    }

    #[test]
    fn higher_is_better_figures_regress_downwards() {
        let rule = Rule { direction: Direction::HigherIsBetter, ..RULE };
        let base = [est(80.0, 0.01)];
        let o = decide(&base, &est(60.0, 0.01), &Noise::exact(0.01), &rule).unwrap();
        assert_eq!(o.verdict, Verdict::Regression, "{}", o.explanation);
        let o = decide(&base, &est(95.0, 0.01), &Noise::exact(0.01), &rule).unwrap();
        assert_eq!(o.verdict, Verdict::Improvement);
    }

    #[test]
    fn undecidable_inputs_say_why() {
        let noise = Noise::exact(0.01);
        let unbounded = Estimate { value: 1.3, ci_low: Some(0.9), ci_high: None, n: 19 };
        let o = decide(&[est(1.0, 0.1)], &unbounded, &noise, &RULE).unwrap();
        assert_eq!(o.verdict, Verdict::Regression, "an unbounded figure is judged on the noise band alone");
        assert!(decide(&[], &est(1.0, 0.1), &noise, &RULE).unwrap_err().0.contains("no figure"));
        let flag = Rule { direction: Direction::None, ..RULE };
        assert!(decide(&[est(1.0, 0.1)], &est(1.0, 0.1), &noise, &flag).is_err());
        assert!(decide(&[est(1.0, 0.1)], &est(0.0, 0.1), &noise, &RULE).unwrap_err().0.contains("positive"));
    }
}
