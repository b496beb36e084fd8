//! Simulated runs for judging the regression decision: a seeded [`Rng`], a [`NoiseModel`] of latencies
//! (lognormal within a run, a lognormal run-to-run jitter of the level, both calibrated on this machine
//! by `examples/noise_calibration.rs`) and [`power`], which counts how often a true change is detected and
//! how often an unchanged run is flagged.

use super::{
    decision::{decide, Estimate, Rule, Verdict},
    history::Direction,
    noise::measure_noise,
};
use crate::stats;

/// xoshiro256** seeded through SplitMix64: small, fast, reproducible across platforms.
#[derive(Debug, Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Latencies of one kind of request in one environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    /// Median latency (seconds).
    pub median: f64,
    /// Lognormal shape within a run (σ of `ln(latency)`).
    pub sigma_within: f64,
    /// Run-to-run jitter of the level (σ of the run's `ln(median)`).
    pub sigma_run: f64,
    /// Samples per run.
    pub n: usize,
}

impl NoiseModel {
    /// Loopback HTTP round trips on this machine kind (2 vCPU), from `examples/noise_calibration.rs`:
    /// 20 separate processes of 2,000 sequential requests each.
    pub const LOOPBACK_HTTP: NoiseModel = NoiseModel { median: 95e-6, sigma_within: 0.20, sigma_run: 0.03, n: 2000 };

    /// Samples of one run whose level is `factor` times the model's.
    pub fn run(&self, factor: f64, rng: &mut Rng) -> Vec<f64> {
        let level = self.median.ln() + factor.ln() + self.sigma_run * rng.normal();
        (0..self.n).map(|_| (level + self.sigma_within * rng.normal()).exp()).collect()
    }

    /// The percentile `q` of one run as the harness reports it (nearest rank, 95% order-statistic CI).
    pub fn estimate(&self, factor: f64, q: f64, rng: &mut Rng) -> Estimate {
        let e = stats::percentile(&self.run(factor, rng), q, 0.95).expect("n > 0");
        Estimate { value: e.value, ci_low: e.ci_low, ci_high: e.ci_high, n: e.n }
    }
}

/// How to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerConfig {
    /// Comparable runs in the history (noise band measured from them).
    pub history_runs: usize,
    /// Runs the baseline was saved from (the last ones of the history).
    pub baseline_runs: usize,
    /// Simulated comparisons.
    pub trials: usize,
    /// True relative change of the changed runs (0.10: 10% slower).
    pub change: f64,
    /// Percentile compared.
    pub percentile: f64,
    /// Decision rule.
    pub rule: Rule,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig {
            history_runs: 10,
            baseline_runs: 5,
            trials: 1000,
            change: 0.10,
            percentile: 95.0,
            rule: Rule { threshold: 0.10, confidence: 0.99, direction: Direction::LowerIsBetter },
        }
    }
}

/// Detection and false-alarm counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Power {
    /// Trials run.
    pub trials: usize,
    /// Changed runs decided as regressions.
    pub detected: usize,
    /// Unchanged runs decided as regressions.
    pub false_alarms: usize,
    /// Trials without a decision (too few samples for a bounded interval).
    pub undecided: usize,
}

impl Power {
    /// Share of changed runs detected.
    pub fn detection_rate(&self) -> f64 {
        self.detected as f64 / self.trials as f64
    }

    /// Share of unchanged runs flagged.
    pub fn false_alarm_rate(&self) -> f64 {
        self.false_alarms as f64 / self.trials as f64
    }
}

/// Simulates `cfg.trials` comparisons: each with a fresh history of unchanged runs (noise band and
/// baseline taken from it), then one unchanged and one changed run decided against it.
pub fn power(model: &NoiseModel, cfg: &PowerConfig, seed: u64) -> Power {
    let mut rng = Rng::new(seed);
    let mut p = Power { trials: cfg.trials, detected: 0, false_alarms: 0, undecided: 0 };
    for _ in 0..cfg.trials {
        let history: Vec<Estimate> = (0..cfg.history_runs).map(|_| model.estimate(1.0, cfg.percentile, &mut rng)).collect();
        let Some(noise) = measure_noise(&history) else {
            p.undecided += 1;
            continue;
        };
        let baseline = &history[history.len() - cfg.baseline_runs.min(history.len())..];
        let same = model.estimate(1.0, cfg.percentile, &mut rng);
        let changed = model.estimate(1.0 + cfg.change, cfg.percentile, &mut rng);
        match (decide(baseline, &same, &noise, &cfg.rule), decide(baseline, &changed, &noise, &cfg.rule)) {
            (Ok(a), Ok(b)) => {
                p.false_alarms += usize::from(a.verdict == Verdict::Regression);
                p.detected += usize::from(b.verdict == Verdict::Regression);
            }
            _ => p.undecided += 1,
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_roughly_normal() {
        let a: Vec<u64> = { let mut r = Rng::new(42); (0..5).map(|_| r.next_u64()).collect() };
        let b: Vec<u64> = { let mut r = Rng::new(42); (0..5).map(|_| r.next_u64()).collect() };
        assert_eq!(a, b);
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..100_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
    }

    #[test]
    fn a_large_change_is_always_found_and_a_tiny_one_never_flagged_as_regression() {
        let model = NoiseModel { n: 400, ..NoiseModel::LOOPBACK_HTTP };
        let big = power(&model, &PowerConfig { trials: 40, change: 1.0, ..Default::default() }, 5);
        assert_eq!(big.detected, 40 - big.undecided);
        assert_eq!(big.undecided, 0);
        let none = power(&model, &PowerConfig { trials: 40, change: 0.0, ..Default::default() }, 6);
        assert!(none.detected <= 2, "{none:?}");
    }
}
