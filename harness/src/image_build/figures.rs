//! The arithmetic of the build procedure, kept free of I/O so it can be checked on its own: reductions
//! between two sets of build times, hit rates that refuse to be computed from nothing, the peak number of
//! builds in flight, and how many concurrent builds a machine can take.

use crate::{evidence::CONFIDENCE, stats};

/// `(before - after) / before` in %; `None` when `before` is not a positive number.
pub fn reduction(before: f64, after: f64) -> Option<f64> {
    (before.is_finite() && after.is_finite() && before > 0.0).then(|| 100.0 * (before - after) / before)
}

/// Nearest-rank percentile `q` with its order-statistic confidence interval.
pub fn percentile(values: &[f64], q: f64) -> Option<stats::Estimate> {
    stats::percentile(values, q, CONFIDENCE)
}

/// `hits / total` in %; `None` when nothing was looked up (a rate of nothing is no evidence).
pub fn rate(hits: u32, total: u32) -> Option<f64> {
    (total > 0).then(|| 100.0 * f64::from(hits) / f64::from(total))
}

/// The largest number of `(start, end)` intervals open at one instant.
pub fn peak_overlap(intervals: &[(f64, f64)]) -> usize {
    let mut events: Vec<(f64, i32)> = intervals.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut peak) = (0i32, 0i32);
    for (_, d) in events {
        open += d;
        peak = peak.max(open);
    }
    peak as usize
}

/// How many builds this machine takes at once: four per core (a build mostly waits on I/O and the
/// engine), at most one per 512 MiB of available memory, at most 32.
pub fn concurrency_bound(cores: usize, available_bytes: u64) -> usize {
    let by_memory = (available_bytes / (512 * 1024 * 1024)) as usize;
    (4 * cores.max(1)).min(by_memory.max(1)).min(32)
}

/// Cores and available memory of this machine (1 GiB assumed when `/proc/meminfo` cannot be read: a bound on
/// build parallelism, not a figure).
pub fn machine() -> (usize, u64) {
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    (cores, crate::fingerprint::meminfo_bytes("MemAvailable").unwrap_or(1 << 30))
}

/// Whether a failed build's message says it was killed for memory.
pub fn looks_oom(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("oomkilled")
        || m.contains("out of memory")
        || m.contains("exit code: 137")
        || m.contains("signal: killed")
}

/// Whether a failed build's message says a registry or API limited its rate.
pub fn looks_rate_limited(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("toomanyrequests") || m.contains("429 too many requests") || m.contains("rate limit")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reductions_are_relative_to_the_before_figure() {
        assert_eq!(reduction(10.0, 7.5), Some(25.0));
        assert_eq!(reduction(10.0, 12.0), Some(-20.0));
        assert_eq!(reduction(0.0, 1.0), None);
        assert_eq!(reduction(f64::NAN, 1.0), None);
    }

    #[test]
    fn rates_of_nothing_are_refused() {
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(3, 4), Some(75.0));
    }

    #[test]
    fn overlap_counts_builds_in_flight() {
        assert_eq!(peak_overlap(&[]), 0);
        assert_eq!(peak_overlap(&[(0.0, 1.0), (1.0, 2.0)]), 1, "one ending as the next starts is not overlap");
        assert_eq!(peak_overlap(&[(0.0, 5.0), (1.0, 2.0), (1.5, 3.0), (4.0, 6.0)]), 3);
    }

    #[test]
    fn the_bound_follows_cores_and_memory() {
        assert_eq!(concurrency_bound(2, 24 << 30), 8);
        assert_eq!(concurrency_bound(2, 1 << 30), 2);
        assert_eq!(concurrency_bound(64, 1 << 40), 32);
        assert_eq!(concurrency_bound(0, 0), 1);
    }

    #[test]
    fn failure_messages_are_classified() {
        assert!(looks_oom("executor failed running [/bin/sh -c pip install]: exit code: 137"));
        assert!(looks_rate_limited("toomanyrequests: You have reached your pull rate limit"));
        assert!(!looks_oom("exit code: 1") && !looks_rate_limited("exit code: 1"));
    }

    proptest! {
        #[test]
        fn peak_is_between_one_and_the_number_of_intervals(v in proptest::collection::vec((0.0f64..100.0, 0.1f64..50.0), 1..40)) {
            let iv: Vec<(f64, f64)> = v.iter().map(|&(s, d)| (s, s + d)).collect();
            let p = peak_overlap(&iv);
            prop_assert!(p >= 1 && p <= iv.len());
        }
    }
}
