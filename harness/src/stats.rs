//! Statistics for acceptance decisions: nearest-rank percentiles with distribution-free (order-statistic)
//! confidence intervals ([`Estimate`]), from samples or from HDR histograms ([`percentile_hdr`]), means with t
//! intervals, and two-sample comparisons for regression and overhead checks ([`Comparison`]).

mod compare;
mod hdr;
mod rng;

pub use compare::{hodges_lehmann, normal_quantile, ratio_of_estimates, ratio_of_medians, Comparison};
pub use hdr::{bucket_at_rank, percentile_hdr};
pub use rng::SplitMix64;

/// Confidence level of the intervals in reports.
pub const CONFIDENCE: f64 = 0.95;

/// A statistic computed from samples, with its confidence interval where one exists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Point estimate.
    pub value: f64,
    /// Number of samples.
    pub n: u64,
    /// Lower bound of the confidence interval (`None`: too few samples to bound it at the level asked).
    pub ci_low: Option<f64>,
    /// Upper bound of the confidence interval (`None`: too few samples to bound it at the level asked).
    pub ci_high: Option<f64>,
}

/// Nearest-rank percentile `q` (0 < q < 100) of sorted samples: the smallest sample such that at least
/// q% of the samples are at or below it.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((q / 100.0) * n as f64).ceil().clamp(1.0, n as f64) as usize;
    Some(sorted[rank - 1])
}

/// Percentile with a two-sided distribution-free confidence interval at `level` (e.g. 0.95).
///
/// The interval is `[x(l), x(u)]` with ranks from the binomial distribution of the number of samples below
/// the true percentile; a bound whose rank falls outside `1..=n` is `None` (more samples are needed).
pub fn percentile(samples: &[f64], q: f64, level: f64) -> Option<Estimate> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let value = percentile_sorted(&sorted, q)?;
    let n = sorted.len() as u64;
    let (lo, hi) = order_statistic_ranks(n, q / 100.0, level);
    Some(Estimate {
        value,
        n,
        ci_low: lo.map(|r| sorted[(r - 1) as usize]),
        ci_high: hi.map(|r| sorted[(r - 1) as usize]),
    })
}

/// 1-based ranks `(l, u)` such that `P(x(l) <= ξ_p <= x(u)) >= level`, each `None` when out of range.
pub fn order_statistic_ranks(n: u64, p: f64, level: f64) -> (Option<u64>, Option<u64>) {
    let tail = (1.0 - level) / 2.0;
    // B = number of samples below ξ_p ~ Bin(n, p).  x(l) <= ξ_p  iff  B >= l;  x(u) >= ξ_p iff B <= u - 1.
    // Choose the largest l with P(B < l) <= tail and the smallest u with P(B >= u) <= tail.
    // The sum starts 40 standard deviations (+40) below the mean: the mass left out is below e^-80 by the
    // Chernoff bounds, and histograms of millions of requests then need thousands of terms, not millions.
    let sd = (n as f64 * p * (1.0 - p)).max(0.0).sqrt();
    let start = (n as f64 * p - 40.0 * sd - 40.0).floor().max(0.0) as u64;
    let mut cdf = 0.0;
    let mut lo = None;
    let mut hi = None;
    for k in start..=n {
        let before = cdf;
        cdf += binomial_pmf(n, k, p);
        if before <= tail {
            lo = Some(k);
        }
        if hi.is_none() && 1.0 - cdf <= tail {
            hi = Some(k + 1);
        }
        if hi.is_some() && before > tail {
            break;
        }
    }
    let lo = lo.filter(|&l| l >= 1);
    let hi = hi.filter(|&u| u <= n);
    (lo, hi)
}

fn binomial_pmf(n: u64, k: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if p >= 1.0 {
        return if k == n { 1.0 } else { 0.0 };
    }
    let (n, k) = (n as f64, k as f64);
    (ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0) + k * p.ln() + (n - k) * (1.0 - p).ln()).exp()
}

/// Natural log of the gamma function (Lanczos approximation, g = 7, n = 9; relative error < 1e-13).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Mean with a two-sided t interval at 95% (normal beyond 30 samples).
pub fn mean(samples: &[f64]) -> Option<Estimate> {
    let v: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let m = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(Estimate { value: m, n: 1, ci_low: None, ci_high: None });
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t95(n - 1) * (var / n as f64).sqrt();
    Some(Estimate { value: m, n: n as u64, ci_low: Some(m - half), ci_high: Some(m + half) })
}

fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    T.get(df.saturating_sub(1)).copied().unwrap_or(1.96)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_sorted(&s, 95.0), Some(95.0));
        assert_eq!(percentile_sorted(&s, 50.0), Some(50.0));
        assert_eq!(percentile_sorted(&s, 99.9), Some(100.0));
        assert_eq!(percentile_sorted(&[], 50.0), None);
    }

    #[test]
    fn order_statistic_ranks_match_known_tables() {
        // Median of 100 samples at 95%: ranks 40 and 61 (standard tables).
        assert_eq!(order_statistic_ranks(100, 0.5, 0.95), (Some(40), Some(61)));
        // p95 of 20 samples cannot be bounded above at 95%: x(20) covers only 1 - 0.95^20 = 64%.
        assert_eq!(order_statistic_ranks(20, 0.95, 0.95).1, None);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        for (n, f) in [(1.0, 1.0f64), (5.0, 24.0), (11.0, 3_628_800.0)] {
            assert!((ln_gamma(n) - f.ln()).abs() < 1e-10, "{n}");
        }
    }

    #[test]
    fn mean_interval_contains_mean() {
        let e = mean(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(e.value, 2.5);
        assert!(e.ci_low.unwrap() < 2.5 && e.ci_high.unwrap() > 2.5);
        assert_eq!(mean(&[]), None);
    }

    proptest! {
        #[test]
        fn ci_brackets_the_estimate(mut v in proptest::collection::vec(0.0f64..1e6, 1..400), q in 1.0f64..99.0) {
            v.sort_by(f64::total_cmp);
            let e = percentile(&v, q, 0.95).unwrap();
            if let Some(lo) = e.ci_low { prop_assert!(lo <= e.value); }
            if let Some(hi) = e.ci_high { prop_assert!(hi >= e.value); }
            prop_assert_eq!(e.n as usize, v.len());
        }

        #[test]
        fn coverage_is_at_least_the_level(n in 10u64..300, q in 5u32..95) {
            let p = f64::from(q) / 100.0;
            if let (Some(l), Some(u)) = order_statistic_ranks(n, p, 0.95) {
                let cover: f64 = (l..u).map(|k| binomial_pmf(n, k, p)).sum();
                prop_assert!(cover >= 0.95 - 1e-9, "n={} p={} l={} u={} cover={}", n, p, l, u, cover);
            }
        }
    }
}
