//! Percentiles with confidence intervals from an HDR histogram: the order-statistic ranks of
//! [`super::order_statistic_ranks`] mapped to the histogram's buckets, so a load run of millions of requests
//! gets the same distribution-free interval as a list of samples, in bounded memory.

use hdrhistogram::{Counter, Histogram};

use super::{order_statistic_ranks, Estimate};

/// Nearest-rank percentile `q` (0 < q <= 100) of the values recorded in `h`, with a two-sided
/// distribution-free confidence interval at `level`, in the histogram's unit.
///
/// A histogram keeps each value only to its precision, so every rank maps to a bucket: the point estimate and
/// the upper bound are the highest value equivalent to their bucket, the lower bound the lowest. The interval is
/// thereby widened by the recording precision, never narrowed. `None` when the histogram is empty.
pub fn percentile_hdr<T: Counter>(h: &Histogram<T>, q: f64, level: f64) -> Option<Estimate> {
    let n = h.len();
    if n == 0 || !(q > 0.0 && q <= 100.0) {
        return None;
    }
    let rank = ((q / 100.0) * n as f64).ceil().clamp(1.0, n as f64) as u64;
    let (lo, hi) = order_statistic_ranks(n, q / 100.0, level);
    let value = bucket_at_rank(h, rank)?.1;
    Some(Estimate {
        value: value as f64,
        n,
        ci_low: lo.and_then(|r| bucket_at_rank(h, r)).map(|b| b.0 as f64),
        ci_high: hi.and_then(|r| bucket_at_rank(h, r)).map(|b| b.1 as f64),
    })
}

/// The `(lowest, highest)` equivalent values of the bucket holding the `rank`-th smallest recorded value
/// (1-based); `None` when fewer than `rank` values were recorded.
pub fn bucket_at_rank<T: Counter>(h: &Histogram<T>, rank: u64) -> Option<(u64, u64)> {
    if rank == 0 {
        return None;
    }
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_at_value().as_u64();
        if seen >= rank {
            let x = v.value_iterated_to();
            return Some((h.lowest_equivalent(x), h.highest_equivalent(x)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stats::percentile;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn exact_below_the_precision_limit() {
        // Values under 2048 are stored exactly at 3 significant digits.
        let v: Vec<u64> = (1..=1000).collect();
        let e = percentile_hdr(&hist(&v), 95.0, 0.95).unwrap();
        let s = percentile(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), 95.0, 0.95).unwrap();
        assert_eq!(e, s);
        assert_eq!(percentile_hdr(&hist(&[]), 50.0, 0.95), None);
        assert_eq!(percentile_hdr(&hist(&v), 100.0, 0.95).unwrap().value, 1000.0);
    }

    #[test]
    fn large_counts_are_fast_enough_and_bounded() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record_n(v * 1000, 200).unwrap();
        }
        assert_eq!(h.len(), 2_000_000);
        let e = percentile_hdr(&h, 99.0, 0.95).unwrap();
        assert!(e.ci_low.unwrap() <= e.value && e.value <= e.ci_high.unwrap());
    }

    proptest! {
        #[test]
        fn widens_never_narrows_the_sample_interval(
            v in proptest::collection::vec(0u64..50_000_000_000, 1..500), q in 1.0f64..100.0,
        ) {
            let h = hist(&v);
            let e = percentile_hdr(&h, q, 0.95).unwrap();
            let s = percentile(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), q, 0.95).unwrap();
            prop_assert_eq!(e.n, s.n);
            prop_assert!(e.value >= s.value);
            prop_assert!(e.value <= s.value * 1.001 + 1.0, "{} vs {}", e.value, s.value);
            prop_assert_eq!(e.ci_low.is_some(), s.ci_low.is_some());
            prop_assert_eq!(e.ci_high.is_some(), s.ci_high.is_some());
            if let (Some(a), Some(b)) = (e.ci_low, s.ci_low) { prop_assert!(a <= b); }
            if let (Some(a), Some(b)) = (e.ci_high, s.ci_high) { prop_assert!(a >= b); }
        }
    }
}
