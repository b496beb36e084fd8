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

/// Latencies of one kind of request in one environment. A run takes its `n` samples in `batches`
/// separate sessions (processes, connections, environments); each session's level jitters around the
/// run's (`sigma_batch`), and each run's level around the environment's (`sigma_run`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    /// Median latency (seconds).
    pub median: f64,
    /// Lognormal shape within a session (σ of `ln(latency)`).
    pub sigma_within: f64,
    /// Session-to-session jitter of the level (σ of `ln(median)`).
    pub sigma_batch: f64,
    /// Jitter of the level common to all sessions of a run (σ of `ln(median)`).
    pub sigma_run: f64,
    /// Samples per run.
    pub n: usize,
    /// Sessions per run.
    pub batches: usize,
}

impl NoiseModel {
    /// Calibrated on this machine kind (2 vCPU VM) by `examples/noise_calibration.rs`: loopback HTTP round
    /// trips, one process per session. The robust session-to-session spread of the P95 beyond sampling
    /// error was 1.1%..2.3% with the machine otherwise quiet and up to 9% (with heavy tails) while other
    /// builds loaded it (see [`NoiseModel::LOADED`]). A real function's latency is wider within a session
    /// than a loopback round trip (σ 0.02..0.07), so a typical 0.25 is taken; the jitter common to a whole
    /// run (drift between nightly runs) cannot be measured in one sitting and is set to 1%.
    pub const THIS_MACHINE: NoiseModel =
        NoiseModel { median: 17e-6, sigma_within: 0.25, sigma_batch: 0.02, sigma_run: 0.01, n: 2000, batches: 1 };

    /// [`NoiseModel::THIS_MACHINE`] while parallel builds load it: 9% session jitter.
    pub const LOADED: NoiseModel = NoiseModel { sigma_batch: 0.09, ..NoiseModel::THIS_MACHINE };

    /// Samples of one run whose level is `factor` times the model's.
    pub fn run(&self, factor: f64, rng: &mut Rng) -> Vec<f64> {
        let level = self.median.ln() + factor.ln() + self.sigma_run * rng.normal();
        let batches = self.batches.max(1);
        let mut out = Vec::with_capacity(self.n);
        for b in 0..batches {
            let lb = level + self.sigma_batch * rng.normal();
            let count = self.n / batches + usize::from(b < self.n % batches);
            out.extend((0..count).map(|_| (lb + self.sigma_within * rng.normal()).exp()));
        }
        out
    }

    /// The percentile `q` of one run as the harness reports it (nearest rank, 95% order-statistic CI).
    ///
    /// The interval covers sampling error only; the session jitter of a run of few sessions is part of
    /// the environment's noise, which the noise band accounts for.
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
    /// True relative change of the changed runs (0.20: 20% slower, twice the threshold: a change the rule,
    /// which asks the estimate to exceed the threshold, must catch; one of exactly the threshold is a coin
    /// toss by construction).
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
            change: 0.20,
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
        let history: Vec<Estimate> =
            (0..cfg.history_runs).map(|_| model.estimate(1.0, cfg.percentile, &mut rng)).collect();
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

/// The in-run design of the regression procedure: `reference` sessions of the unchanged function (noise
/// band and baseline from them), then `sessions` sessions of the unchanged function and as many of one
/// `1 + cfg.change` times slower, each summed up as the mean of its sessions' P95s and decided against the reference sessions with
/// the pooled noise ([`super::scenario::pooled_noise`]). Sessions take `model.n` samples each and share
/// one run level (one sitting).
pub fn power_in_run(model: &NoiseModel, reference: usize, sessions: usize, cfg: &PowerConfig, seed: u64) -> Power {
    let mut rng = Rng::new(seed);
    let mut p = Power { trials: cfg.trials, detected: 0, false_alarms: 0, undecided: 0 };
    let one = NoiseModel { batches: 1, sigma_run: 0.0, ..*model };
    for _ in 0..cfg.trials {
        let base: Vec<Estimate> = (0..reference).map(|_| one.estimate(1.0, cfg.percentile, &mut rng)).collect();
        let Some(noise) = measure_noise(&base) else {
            p.undecided += 1;
            continue;
        };
        let noise = super::scenario::pooled_noise(&noise, base.len(), sessions);
        let mut mean = |factor: f64| {
            let s: Vec<Estimate> = (0..sessions).map(|_| one.estimate(factor, cfg.percentile, &mut rng)).collect();
            super::scenario::session_mean(&s).expect("positive figures")
        };
        let same = mean(1.0);
        let changed = mean(1.0 + cfg.change);
        match (decide(&base, &same, &noise, &cfg.rule), decide(&base, &changed, &noise, &cfg.rule)) {
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
        let a: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..100_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
    }

    #[test]
    fn a_large_change_is_always_found_and_a_tiny_one_never_flagged_as_regression() {
        let model = NoiseModel { n: 400, ..NoiseModel::THIS_MACHINE };
        let big = power(&model, &PowerConfig { trials: 40, change: 1.0, ..Default::default() }, 5);
        assert_eq!(big.detected, 40 - big.undecided);
        assert_eq!(big.undecided, 0);
        let none = power(&model, &PowerConfig { trials: 40, change: 0.0, ..Default::default() }, 6);
        assert!(none.detected <= 2, "{none:?}");
    }

    #[test]
    fn the_in_run_design_finds_a_doubling_and_leaves_no_change_alone() {
        let model = NoiseModel { n: 150, ..NoiseModel::THIS_MACHINE };
        let big = power_in_run(&model, 10, 4, &PowerConfig { trials: 30, change: 1.0, ..Default::default() }, 8);
        assert_eq!((big.detected, big.undecided), (30, 0), "{big:?}");
        assert!(big.false_alarms <= 2, "{big:?}");
    }
}
