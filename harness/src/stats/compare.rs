//! Two-sample comparisons for regression and overhead checks ([`Comparison`]): the Hodges-Lehmann shift with
//! its distribution-free (Mann-Whitney) interval, the ratio of medians with a seeded percentile bootstrap, and
//! the ratio of two percentile estimates from their own intervals (for histograms, whose samples are gone).

use super::{percentile_sorted, rng::SplitMix64, Estimate};

/// How a new sample compares with a base sample, with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Point estimate (a shift in the samples' unit, or a ratio new / base).
    pub value: f64,
    /// Lower bound of the interval (`None`: too few samples to bound it at this level).
    pub ci_low: Option<f64>,
    /// Upper bound of the interval (`None`: too few samples to bound it at this level).
    pub ci_high: Option<f64>,
    /// Confidence level of the interval (at least this coverage).
    pub level: f64,
    /// Size of the base sample.
    pub n_base: u64,
    /// Size of the new sample.
    pub n_new: u64,
}

impl Comparison {
    /// Whether the whole interval lies above `x` (e.g. a ratio interval above 1.10: a regression beyond 10%).
    pub fn above(&self, x: f64) -> bool {
        self.ci_low.is_some_and(|l| l > x)
    }

    /// Whether the whole interval lies below `x`.
    pub fn below(&self, x: f64) -> bool {
        self.ci_high.is_some_and(|h| h < x)
    }
}

/// Hodges-Lehmann estimate of the shift `new - base`: the median of all pairwise differences, with the
/// distribution-free interval from the Mann-Whitney distribution (exact for `n_base * n_new <= 2500`, normal
/// approximation with continuity correction above). Assumes the two distributions differ by a shift; ties
/// make the interval slightly conservative. `None` when a sample is empty.
pub fn hodges_lehmann(base: &[f64], new: &[f64], level: f64) -> Option<Comparison> {
    let a = sorted_finite(base);
    let b = sorted_finite(new);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let total = (a.len() * b.len()) as u64;
    let value = if total % 2 == 1 {
        kth_difference(&a, &b, total.div_ceil(2))
    } else {
        (kth_difference(&a, &b, total / 2) + kth_difference(&a, &b, total / 2 + 1)) / 2.0
    };
    let k = mann_whitney_k(a.len() as u64, b.len() as u64, level);
    let (ci_low, ci_high) = if k >= 1 {
        (Some(kth_difference(&a, &b, k)), Some(kth_difference(&a, &b, total + 1 - k)))
    } else {
        (None, None)
    };
    Some(Comparison { value, ci_low, ci_high, level, n_base: a.len() as u64, n_new: b.len() as u64 })
}

/// Ratio `median(new) / median(base)` with a percentile bootstrap interval from `resamples` resamplings of
/// both samples; deterministic given `seed`. `None` when a sample is empty, the base median is not positive,
/// or fewer than 100 resamples are asked.
pub fn ratio_of_medians(base: &[f64], new: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Comparison> {
    let a = sorted_finite(base);
    let b = sorted_finite(new);
    if a.is_empty() || b.is_empty() || resamples < 100 {
        return None;
    }
    let (ma, mb) = (median(&mut a.clone()), median(&mut b.clone()));
    if ma <= 0.0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        ra.iter_mut().for_each(|x| *x = a[rng.below(a.len())]);
        rb.iter_mut().for_each(|x| *x = b[rng.below(b.len())]);
        let m = median(&mut ra);
        if m > 0.0 {
            ratios.push(median(&mut rb) / m);
        }
    }
    ratios.sort_by(f64::total_cmp);
    let tail = 100.0 * (1.0 - level) / 2.0;
    Some(Comparison {
        value: mb / ma,
        ci_low: percentile_sorted(&ratios, tail),
        ci_high: percentile_sorted(&ratios, 100.0 - tail),
        level,
        n_base: a.len() as u64,
        n_new: b.len() as u64,
    })
}

/// Ratio `new / base` of two positive estimates (e.g. P95 under load vs the warm P95), with the interval
/// `[new.low / base.high, new.high / base.low]`. When each estimate's interval has level `each_level`, the
/// ratio's interval covers with at least `2 * each_level - 1` (Bonferroni), which is the level reported.
pub fn ratio_of_estimates(base: &Estimate, new: &Estimate, each_level: f64) -> Option<Comparison> {
    if base.value <= 0.0 || !base.value.is_finite() || !new.value.is_finite() {
        return None;
    }
    let positive = |x: Option<f64>| x.filter(|v| *v > 0.0);
    Some(Comparison {
        value: new.value / base.value,
        ci_low: new.ci_low.zip(base.ci_high).map(|(n, b)| n / b),
        ci_high: new.ci_high.zip(positive(base.ci_low)).map(|(n, b)| n / b),
        level: 2.0 * each_level - 1.0,
        n_base: base.n,
        n_new: new.n,
    })
}

fn sorted_finite(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    s
}

fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (_, hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return hi;
    }
    let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo + hi) / 2.0
}

/// The `k`-th smallest (1-based) of the differences `b[j] - a[i]` over all pairs, without materializing them:
/// a bisection over the ordered bit patterns of f64 with an O(n + m) count per step. The smallest value whose
/// count reaches `k` is always one of the differences, so the result is exact.
pub(crate) fn kth_difference(a: &[f64], b: &[f64], k: u64) -> f64 {
    let count_le = |v: f64| -> u64 {
        let mut p = 0;
        let mut count = 0u64;
        for &bj in b {
            while p < a.len() && bj - a[p] > v {
                p += 1;
            }
            count += (a.len() - p) as u64;
        }
        count
    };
    let (mut lo, mut hi) = (key(b[0] - a[a.len() - 1]), key(b[b.len() - 1] - a[0]));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if count_le(unkey(mid)) >= k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    unkey(lo)
}

fn key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Largest `k` with `P(U <= k - 1) <= (1 - level) / 2` under the null Mann-Whitney distribution of sizes `n`,
/// `m`; the interval `[D(k), D(nm + 1 - k)]` of sorted pairwise differences then covers the shift with at least
/// `level`. 0 when no such interval exists (too few samples).
pub(crate) fn mann_whitney_k(n: u64, m: u64, level: f64) -> u64 {
    let tail = (1.0 - level) / 2.0;
    let total = n * m;
    if total <= 2500 {
        let pmf = mann_whitney_pmf(n as usize, m as usize);
        let mut cdf = 0.0;
        let mut k = 0;
        for (u, p) in pmf.iter().enumerate() {
            cdf += p;
            if cdf > tail * (1.0 + 1e-12) {
                break;
            }
            k = u as u64 + 1;
        }
        return k;
    }
    let (nf, mf) = (n as f64, m as f64);
    let sd = (nf * mf * (nf + mf + 1.0) / 12.0).sqrt();
    let k = (total as f64 / 2.0 + 0.5 - normal_quantile(1.0 - tail) * sd).floor();
    k.max(0.0) as u64
}

/// Null distribution of the Mann-Whitney U for sample sizes `n` and `m` (no ties), by the recursion on which
/// sample holds the largest value.
pub(crate) fn mann_whitney_pmf(n: usize, m: usize) -> Vec<f64> {
    let mut prev: Vec<Vec<f64>> = vec![vec![1.0]; m + 1];
    for i in 1..=n {
        let mut cur: Vec<Vec<f64>> = Vec::with_capacity(m + 1);
        cur.push(vec![1.0]);
        for j in 1..=m {
            let mut d = vec![0.0; i * j + 1];
            let (wi, wj) = (i as f64 / (i + j) as f64, j as f64 / (i + j) as f64);
            for (u, p) in prev[j].iter().enumerate() {
                d[u + j] += wi * p;
            }
            for (u, p) in cur[j - 1].iter().enumerate() {
                d[u] += wj * p;
            }
            cur.push(d);
        }
        prev = cur;
    }
    prev.pop().unwrap_or_else(|| vec![1.0])
}

/// Quantile of the standard normal distribution (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn mann_whitney_matches_published_critical_values() {
        // Two-sided 5% critical U (reject when U <= c): n = m = 10 -> 23; n = m = 20 -> 127; n = 5, m = 8 -> 6.
        assert_eq!(mann_whitney_k(10, 10, 0.95), 24);
        assert_eq!(mann_whitney_k(20, 20, 0.95), 128);
        assert_eq!(mann_whitney_k(5, 8, 0.95), 7);
        assert_eq!(mann_whitney_k(2, 2, 0.95), 0);
        let pmf = mann_whitney_pmf(7, 9);
        assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(pmf.iter().zip(pmf.iter().rev()).all(|(a, b)| (a - b).abs() < 1e-15));
    }

    #[test]
    fn normal_approximation_agrees_with_the_exact_distribution_at_the_boundary() {
        let exact = mann_whitney_k(50, 50, 0.95);
        let (nf, mf) = (50.0f64, 50.0f64);
        let sd = (nf * mf * (nf + mf + 1.0) / 12.0).sqrt();
        let approx = (2500.0 / 2.0 + 0.5 - normal_quantile(0.975) * sd).floor() as u64;
        assert!(exact.abs_diff(approx) <= 1, "{exact} vs {approx}");
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-8);
    }

    #[test]
    fn hodges_lehmann_covers_a_zero_shift_at_the_nominal_rate() {
        let mut rng = SplitMix64::new(2024);
        let trials = 400;
        let mut covered = 0;
        for _ in 0..trials {
            let a: Vec<f64> = (0..20).map(|_| rng.exponential()).collect();
            let b: Vec<f64> = (0..20).map(|_| rng.exponential()).collect();
            let c = hodges_lehmann(&a, &b, 0.95).unwrap();
            if c.ci_low.unwrap() <= 0.0 && 0.0 <= c.ci_high.unwrap() {
                covered += 1;
            }
        }
        // Fixed seed: deterministic. The exact interval covers at least 95% in expectation.
        assert!(covered >= 370, "covered {covered} of {trials}");
    }

    #[test]
    fn ratio_of_estimates_uses_the_outer_bounds() {
        let base = Estimate { value: 100.0, n: 50, ci_low: Some(90.0), ci_high: Some(110.0) };
        let new = Estimate { value: 120.0, n: 60, ci_low: Some(115.0), ci_high: Some(130.0) };
        let r = ratio_of_estimates(&base, &new, 0.975).unwrap();
        assert_eq!(r.value, 1.2);
        assert_eq!(r.ci_low, Some(115.0 / 110.0));
        assert_eq!(r.ci_high, Some(130.0 / 90.0));
        assert!((r.level - 0.95).abs() < 1e-12);
        assert!(r.above(1.0) && !r.above(1.1) && r.below(1.5));
        let open = Estimate { ci_high: None, ..base };
        assert_eq!(ratio_of_estimates(&open, &new, 0.975).unwrap().ci_low, None);
    }

    #[test]
    fn empty_or_non_positive_inputs_give_none() {
        assert!(hodges_lehmann(&[], &[1.0], 0.95).is_none());
        assert!(ratio_of_medians(&[1.0], &[], 0.95, 1000, 1).is_none());
        assert!(ratio_of_medians(&[0.0, 0.0], &[1.0], 0.95, 1000, 1).is_none());
        assert!(ratio_of_medians(&[1.0], &[1.0], 0.95, 10, 1).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn kth_difference_matches_brute_force(
            a in proptest::collection::vec(-1e6f64..1e6, 1..30),
            b in proptest::collection::vec(-1e6f64..1e6, 1..30),
        ) {
            let (a, b) = (sorted_finite(&a), sorted_finite(&b));
            let mut all: Vec<f64> = b.iter().flat_map(|bj| a.iter().map(move |ai| bj - ai)).collect();
            all.sort_by(f64::total_cmp);
            for k in 1..=all.len() as u64 {
                prop_assert_eq!(kth_difference(&a, &b, k), all[(k - 1) as usize]);
            }
        }

        #[test]
        fn shift_is_equivariant_and_antisymmetric(
            a in proptest::collection::vec(0i32..100_000, 1..60), shift in -1000i32..1000,
        ) {
            let a: Vec<f64> = a.into_iter().map(f64::from).collect();
            let b: Vec<f64> = a.iter().map(|x| x + f64::from(shift)).collect();
            let c = hodges_lehmann(&a, &b, 0.95).unwrap();
            prop_assert_eq!(c.value, f64::from(shift));
            if let (Some(l), Some(h)) = (c.ci_low, c.ci_high) {
                prop_assert!(l <= c.value && c.value <= h);
            }
            let back = hodges_lehmann(&b, &a, 0.95).unwrap();
            prop_assert_eq!(back.value, -c.value);
        }

        #[test]
        fn ratio_is_scale_equivariant_and_seeded(
            a in proptest::collection::vec(1.0f64..1e4, 5..80), seed in any::<u64>(),
        ) {
            let b: Vec<f64> = a.iter().map(|x| x * 1.5).collect();
            let r = ratio_of_medians(&a, &b, 0.95, 500, seed).unwrap();
            prop_assert!((r.value - 1.5).abs() < 1e-12);
            prop_assert!(r.ci_low.unwrap() <= r.ci_high.unwrap());
            let c: Vec<f64> = a.iter().rev().map(|x| x * 1.1 + 3.0).collect();
            let once = ratio_of_medians(&a, &c, 0.9, 300, seed).unwrap();
            prop_assert_eq!(once, ratio_of_medians(&a, &c, 0.9, 300, seed).unwrap());
            prop_assert!(once.ci_low.unwrap() <= once.ci_high.unwrap());
        }
    }
}
