//! [`WorkerResult`]: what one load worker (one generator process running a share of a rate) hands back, as plain
//! serializable values: its delivery counts (scheduled, sent, dropped, late), outcomes by error class, and its raw
//! and coordinated-omission-corrected latency histograms in the HdrHistogram V2 encoding. [`WorkerResult::merge`]
//! combines the results of N workers exactly: counts add, histograms add bucket by bucket, so merged percentiles
//! are those of the union of every worker's samples within the histogram's precision; each worker's own delivery
//! stays beside the merged figures so an under-delivering worker can be named.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    histogram::LatencyHistogram,
    outcome::{Counts, ErrorClass},
    report::{LoadReport, StopReason},
    Error,
};

/// One worker's result; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerResult {
    /// The worker's name, unique among the workers of a run.
    pub worker: String,
    /// Start of the worker's run, milliseconds since the Unix epoch (its own clock).
    pub started_unix_ms: u64,
    /// Time over which its requests were due, seconds.
    pub scheduling_s: f64,
    /// Its whole run, seconds.
    pub elapsed_s: f64,
    /// Why it stopped.
    pub stopped_by: StopReason,
    /// Scheduled, sent, dropped, late, successes, failures by class, bytes.
    pub counts: Counts,
    /// Service latency of its successful requests.
    pub latency: LatencyHistogram,
    /// Latency from the intended send time (open model only).
    pub corrected: Option<LatencyHistogram>,
    /// The first error message of each class it saw.
    pub first_errors: BTreeMap<ErrorClass, String>,
}

/// One worker's delivery, kept beside the merged figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerDelivery {
    /// The worker's name.
    pub worker: String,
    /// Why it stopped.
    pub stopped_by: StopReason,
    /// Its counts.
    pub counts: Counts,
}

/// The results of N workers combined; see [`WorkerResult::merge`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedResult {
    /// Every worker's own delivery, in the order given.
    pub workers: Vec<WorkerDelivery>,
    /// Earliest start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Longest scheduling time of a worker, seconds.
    pub scheduling_s: f64,
    /// From the earliest start to the latest end, seconds.
    pub elapsed_s: f64,
    /// Counts of all workers added.
    pub counts: Counts,
    /// Service latency of all workers' successes.
    pub latency: LatencyHistogram,
    /// Corrected latency of all workers' successes (open model).
    pub corrected: Option<LatencyHistogram>,
    /// The first error message of each class, from the first worker that saw it.
    pub first_errors: BTreeMap<ErrorClass, String>,
}

impl WorkerResult {
    /// The result of a worker named `worker` that ran `report`.
    pub fn from_report(worker: &str, report: &LoadReport) -> Self {
        Self {
            worker: worker.to_string(),
            started_unix_ms: report.started_unix_ms,
            scheduling_s: report.scheduling_s,
            elapsed_s: report.elapsed_s,
            stopped_by: report.stopped_by,
            counts: report.totals.counts,
            latency: report.totals.latency.clone(),
            corrected: report.totals.corrected.clone(),
            first_errors: report.first_errors.clone(),
        }
    }

    /// Combines the results of the workers of one run exactly. Fails on no result, on a worker name given twice
    /// (its requests would count twice), and on open-model results mixed with closed-model ones.
    pub fn merge(results: &[WorkerResult]) -> Result<MergedResult, Error> {
        let first = results.first().ok_or_else(|| Error::Merge("no worker result to merge".into()))?;
        let mut names = BTreeSet::new();
        let mut m = MergedResult {
            workers: Vec::with_capacity(results.len()),
            started_unix_ms: first.started_unix_ms,
            scheduling_s: 0.0,
            elapsed_s: 0.0,
            counts: Counts::default(),
            latency: LatencyHistogram::new(),
            corrected: first.corrected.as_ref().map(|_| LatencyHistogram::new()),
            first_errors: BTreeMap::new(),
        };
        let mut end_ms = 0.0f64;
        for r in results {
            if !names.insert(r.worker.as_str()) {
                return Err(Error::Merge(format!("worker {:?} appears twice", r.worker)));
            }
            match (m.corrected.as_mut(), r.corrected.as_ref()) {
                (Some(a), Some(b)) => a.merge(b)?,
                (None, None) => {}
                _ => {
                    return Err(Error::Merge(format!(
                        "worker {:?} ran another model (open and closed results do not merge)",
                        r.worker
                    )))
                }
            }
            m.latency.merge(&r.latency)?;
            m.counts.merge(&r.counts);
            m.started_unix_ms = m.started_unix_ms.min(r.started_unix_ms);
            m.scheduling_s = m.scheduling_s.max(r.scheduling_s);
            end_ms = end_ms.max(r.started_unix_ms as f64 + r.elapsed_s * 1e3);
            for (k, v) in &r.first_errors {
                m.first_errors.entry(*k).or_insert_with(|| format!("{}: {v}", r.worker));
            }
            m.workers.push(WorkerDelivery { worker: r.worker.clone(), stopped_by: r.stopped_by, counts: r.counts });
        }
        m.elapsed_s = (end_ms - m.started_unix_ms as f64) / 1e3;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::SplitMix64;

    /// A worker result holding `raw` (and `raw` plus a queueing delay as its corrected latency), with its counts.
    fn worker(name: &str, raw: &[u64], delays: &[u64], dropped: u64) -> WorkerResult {
        let (mut latency, mut corrected) = (LatencyHistogram::new(), LatencyHistogram::new());
        for (&r, &d) in raw.iter().zip(delays) {
            latency.record(Duration::from_nanos(r));
            corrected.record(Duration::from_nanos(r + d));
        }
        let mut counts = Counts {
            scheduled: raw.len() as u64 + dropped + 3,
            sent: raw.len() as u64 + 3,
            dropped,
            late: dropped / 2,
            ok: raw.len() as u64,
            ..Counts::default()
        };
        counts.errors.add(ErrorClass::Throttled);
        counts.errors.add(ErrorClass::Timeout);
        counts.errors.add(ErrorClass::Connection);
        WorkerResult {
            worker: name.to_string(),
            started_unix_ms: 1_000_000,
            scheduling_s: 10.0,
            elapsed_s: 10.5,
            stopped_by: StopReason::Completed,
            counts,
            latency,
            corrected: Some(corrected),
            first_errors: BTreeMap::from([(ErrorClass::Timeout, "no complete response within 10s".to_string())]),
        }
    }

    /// Nearest-rank percentile of exact samples.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank - 1]
    }

    #[test]
    fn four_merged_workers_give_the_percentiles_of_the_union_of_their_samples() {
        let mut rng = SplitMix64::new(19);
        let (mut all_raw, mut all_corrected, mut results) = (Vec::new(), Vec::new(), Vec::new());
        // Four workers with different latency shapes: a fast one, a slow one, one with a long tail, one tiny.
        for (i, (n, scale_ns)) in
            [(20_000, 800_000.0), (15_000, 5_000_000.0), (10_000, 2_000_000.0), (37, 9e7)].into_iter().enumerate()
        {
            let raw: Vec<u64> = (0..n)
                .map(|_| {
                    let tail = if i == 2 && rng.below(50) == 0 { 40.0 } else { 1.0 };
                    (scale_ns * tail * (0.2 + rng.exponential())) as u64 + 1
                })
                .collect();
            let delays: Vec<u64> =
                (0..n).map(|_| if rng.below(10) == 0 { rng.below(3_000_000) as u64 } else { 0 }).collect();
            all_raw.extend(&raw);
            all_corrected.extend(raw.iter().zip(&delays).map(|(r, d)| r + d));
            let r = worker(&format!("worker-{i}"), &raw, &delays, i as u64);
            // Every result crosses the wire (JSON, histograms in the HdrHistogram V2 encoding) before the merge.
            let wire = serde_json::to_string(&r).unwrap();
            let back: WorkerResult = serde_json::from_str(&wire).unwrap();
            assert_eq!(back, r);
            results.push(back);
        }
        let m = WorkerResult::merge(&results).unwrap();
        all_raw.sort_unstable();
        all_corrected.sort_unstable();
        let corrected = m.corrected.as_ref().unwrap();
        assert_eq!(m.latency.count(), all_raw.len() as u64);
        assert_eq!(corrected.count(), all_corrected.len() as u64);
        assert_eq!(m.latency.min(), Some(Duration::from_nanos(all_raw[0])));
        assert_eq!(m.latency.max(), Some(Duration::from_nanos(*all_raw.last().unwrap())));
        for (hist, samples) in [(&m.latency, &all_raw), (corrected, &all_corrected)] {
            for q in [50.0, 95.0, 99.0] {
                let want = exact(samples, q) as f64 / 1e9;
                let got = hist.percentile(q, 0.95).unwrap().value;
                // The histogram reports the top of the bucket holding the exact value: never below it, and at
                // most one bucket (3 significant digits) above it.
                assert!(got >= want && got <= want * 1.001 + 1e-9, "p{q}: merged {got} s, exact {want} s");
            }
        }
        let c = m.counts;
        let n = all_raw.len() as u64;
        assert_eq!((c.ok, c.sent, c.dropped, c.late), (n, n + 12, 6, 2));
        assert_eq!(c.scheduled, n + 12 + 6);
        assert_eq!((c.errors.throttled, c.errors.timeout, c.errors.connection, c.errors.total()), (4, 4, 4, 12));
        assert_eq!(m.workers.len(), 4);
        assert_eq!(m.workers[3].counts.dropped, 3, "each worker's own delivery stays visible");
        assert!(m.first_errors[&ErrorClass::Timeout].starts_with("worker-0: "));
        assert!((m.elapsed_s - 10.5).abs() < 1e-9);
    }

    #[test]
    fn merging_refuses_what_would_not_be_exact() {
        assert!(WorkerResult::merge(&[]).is_err());
        let a = worker("a", &[1_000], &[0], 0);
        let e = WorkerResult::merge(&[a.clone(), a.clone()]).unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("twice"), "{e}");
        let mut closed = worker("b", &[2_000], &[0], 0);
        closed.corrected = None;
        let e = WorkerResult::merge(&[a, closed]).unwrap_err().to_string();
        assert!(e.contains("\"b\""), "{e}");
    }
}
