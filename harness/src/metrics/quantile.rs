//! [`histogram_quantile`] as Prometheus computes it from cumulative buckets, and [`agreement`]: whether
//! Prometheus' quantile and the harness's own nearest-rank percentile of the same observations agree
//! within the resolution of the buckets (the best a bucketed histogram can do).

use serde::{Deserialize, Serialize};

/// Prometheus' `histogram_quantile(q, ...)` over cumulative `(upper bound, count)` buckets: linear
/// interpolation inside the bucket holding rank `q * total`; the lowest bucket starts at 0 when its bound is
/// positive; a rank in the `+Inf` bucket gives the highest finite bound. `None` when there are no
/// observations or no `+Inf` bucket.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let mut b: Vec<(f64, f64)> = buckets.to_vec();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.len() < 2 || b.last()?.0 != f64::INFINITY {
        return None;
    }
    // Prometheus forces the counts monotonic (scrapes are not atomic across buckets).
    for i in 1..b.len() {
        b[i].1 = b[i].1.max(b[i - 1].1);
    }
    let total = b.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let i = b.iter().position(|&(_, c)| c >= rank)?;
    if i == b.len() - 1 {
        return Some(b[b.len() - 2].0);
    }
    if i == 0 && b[0].0 <= 0.0 {
        return Some(b[0].0);
    }
    let (start, below) = if i == 0 { (0.0, 0.0) } else { (b[i - 1].0, b[i - 1].1) };
    let (end, count) = b[i];
    if count - below == 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * (rank - below) / (count - below))
}

/// Cumulative bucket counts of `samples` for the finite `bounds` (ascending), with the `+Inf` bucket added.
pub fn bucket_counts(samples: &[f64], bounds: &[f64]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> =
        bounds.iter().map(|&b| (b, samples.iter().filter(|&&s| s <= b).count() as f64)).collect();
    out.push((f64::INFINITY, samples.len() as f64));
    out
}

/// How Prometheus' quantile compares with the harness's percentile of the same observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Prometheus' value.
    pub prometheus: f64,
    /// The harness's value.
    pub harness: f64,
    /// `|prometheus - harness| / harness`, in %.
    pub deviation_pct: f64,
    /// The bucket `(lower, upper]` holding the harness's value.
    pub bucket: (f64, f64),
    /// Width of that bucket relative to the harness's value, in % (how precise Prometheus can be there).
    pub resolution_pct: f64,
    /// Prometheus' value lies in that bucket.
    pub within_resolution: bool,
}

/// Compares `prometheus` with `harness` given the histogram's finite bucket bounds.
pub fn agreement(prometheus: f64, harness: f64, bounds: &[f64]) -> Agreement {
    let mut finite: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    finite.dedup();
    let upper_i = finite.iter().position(|&b| harness <= b);
    let bucket = match upper_i {
        Some(0) => (finite[0].min(0.0), finite[0]),
        Some(i) => (finite[i - 1], finite[i]),
        None => (finite.last().copied().unwrap_or(0.0), f64::INFINITY),
    };
    // A value beyond the last finite bound is reported by Prometheus as that bound.
    // Interpolating inside a bucket can land a rounding step past its bound (1.8160000000000003 for 1.816).
    let eps = 1e-9 * bucket.0.abs().max(bucket.1.abs()).max(1.0);
    let within = if bucket.1.is_infinite() {
        (prometheus - bucket.0).abs() <= 1e-9 * bucket.0.abs().max(1.0)
    } else {
        prometheus >= bucket.0 - eps && prometheus <= bucket.1 + eps
    };
    let rel = |d: f64| if harness != 0.0 { 100.0 * d / harness.abs() } else { f64::INFINITY };
    Agreement {
        prometheus,
        harness,
        deviation_pct: rel((prometheus - harness).abs()),
        bucket,
        resolution_pct: rel(bucket.1 - bucket.0),
        within_resolution: within,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stats;

    #[test]
    fn matches_prometheus_on_known_cases() {
        // rank 0.5*10 = 5 falls in (0.1, 0.5] holding counts 2..7: 0.1 + 0.4 * 3/5.
        let b = [(0.1, 2.0), (0.5, 7.0), (1.0, 9.0), (f64::INFINITY, 10.0)];
        assert!((histogram_quantile(0.5, &b).unwrap() - 0.34).abs() < 1e-12);
        // rank 9.9 in the +Inf bucket: the highest finite bound.
        assert_eq!(histogram_quantile(0.99, &b), Some(1.0));
        // the lowest bucket starts at 0.
        assert!((histogram_quantile(0.1, &b).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 3.0)]), None);
        assert_eq!(histogram_quantile(-1.0, &b), Some(f64::NEG_INFINITY));
        // non-monotonic counts are forced monotonic
        let nm = [(0.1, 5.0), (0.5, 4.0), (f64::INFINITY, 10.0)];
        assert_eq!(
            histogram_quantile(0.4, &nm),
            histogram_quantile(0.4, &[(0.1, 5.0), (0.5, 5.0), (f64::INFINITY, 10.0)])
        );
    }

    #[test]
    fn agreement_reports_bucket_and_resolution() {
        let a = agreement(0.30, 0.28, &[0.1, 0.25, 0.5, 1.0]);
        assert_eq!(a.bucket, (0.25, 0.5));
        assert!(a.within_resolution);
        assert!((a.deviation_pct - 100.0 * 0.02 / 0.28).abs() < 1e-9);
        assert!((a.resolution_pct - 100.0 * 0.25 / 0.28).abs() < 1e-9);
        assert!(!agreement(0.6, 0.28, &[0.1, 0.25, 0.5, 1.0]).within_resolution);
        let beyond = agreement(1.0, 3.0, &[0.5, 1.0]);
        assert_eq!(beyond.bucket, (1.0, f64::INFINITY));
        assert!(beyond.within_resolution);
    }

    proptest! {
        /// The quantile Prometheus computes from the buckets of the very samples the harness measured lies
        /// in the bucket holding the harness's nearest-rank percentile: the ranks agree (both are the first
        /// bucket whose cumulative count reaches q*n) and only the position inside the bucket differs.
        #[test]
        fn prometheus_and_harness_agree_within_a_bucket(
            samples in proptest::collection::vec(0.001f64..5.0, 1..400),
            bounds in proptest::collection::btree_set(1u32..5000, 1..20),
            q in 1u32..99,
        ) {
            let bounds: Vec<f64> = bounds.into_iter().map(|b| f64::from(b) / 1000.0).collect();
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let harness = stats::percentile_sorted(&sorted, f64::from(q)).unwrap();
            let prom = histogram_quantile(f64::from(q) / 100.0, &bucket_counts(&samples, &bounds)).unwrap();
            let a = agreement(prom, harness, &bounds);
            prop_assert!(a.within_resolution, "{:?}", a);
        }
    }
}
