//! [`LoadReport`]: everything a load run measured, serializable as plain values: counts by phase and by second,
//! raw service latency and coordinated-omission-corrected latency (from the intended send time) side by side,
//! errors by class, and the [`Delivery`] of the asked rate: a run that could not deliver it says so
//! ([`LoadReport::check_delivery`]). Reports of several generator processes running the same spec merge exactly
//! ([`LoadReport::merge`]).

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::{
    histogram::LatencyHistogram,
    outcome::{Counts, ErrorClass, ErrorCounts},
    schedule::Schedule,
    timeline::TimelineSecond,
    Error,
};

/// How the load was generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSummary {
    /// Requests sent on schedule whether or not earlier ones returned.
    Open {
        /// The schedule asked for.
        schedule: Schedule,
        /// Most requests in flight at once (one connection each); beyond it requests are dropped.
        max_in_flight: u64,
        /// A request sent later than this after its intended time counts as late.
        late_tolerance_s: f64,
    },
    /// A fixed number of workers, each sending its next request when the previous one finished.
    Closed {
        /// Number of workers (one connection each).
        workers: u64,
        /// Pause of a worker between two requests.
        think_time_s: f64,
        /// How long workers started requests, seconds.
        duration_s: f64,
    },
}

/// Why the run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The whole schedule was played (open), or the workers' duration ended (closed).
    Completed,
    /// The request count bound was reached.
    MaxRequests,
    /// The time bound was reached.
    MaxDuration,
}

/// Counts and latencies of one phase (or of the whole run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Phase name (`total` for the whole run).
    pub name: String,
    /// Time over which this phase's requests were due (played part of the schedule; closed model: sending time).
    pub duration_s: f64,
    /// Request counts.
    pub counts: Counts,
    /// Service latency of successful requests: from the actual send to the end of the response body.
    pub latency: LatencyHistogram,
    /// Latency of successful requests from their intended send time (coordinated-omission corrected; open
    /// model only). Never smaller than `latency` request by request.
    pub corrected: Option<LatencyHistogram>,
}

impl PhaseReport {
    /// Requests due per second.
    pub fn asked_rate(&self) -> f64 {
        per_second(self.counts.scheduled, self.duration_s)
    }

    /// Requests sent per second.
    pub fn delivered_rate(&self) -> f64 {
        per_second(self.counts.sent, self.duration_s)
    }

    fn merge(&mut self, o: &Self) -> Result<(), Error> {
        if self.name != o.name {
            return Err(Error::Merge(format!("phase {:?} vs {:?}", self.name, o.name)));
        }
        self.duration_s = self.duration_s.max(o.duration_s);
        self.counts.merge(&o.counts);
        self.latency.merge(&o.latency)?;
        match (&mut self.corrected, &o.corrected) {
            (Some(a), Some(b)) => a.merge(b)?,
            (None, None) => {}
            _ => return Err(Error::Merge("open and closed model results".into())),
        }
        Ok(())
    }
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Everything a load run measured; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Method and URL (headers left out: they may carry keys).
    pub target: String,
    /// How the load was generated.
    pub model: ModelSummary,
    /// Start of the run, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Time over which requests were due (open) or started (closed), seconds.
    pub scheduling_s: f64,
    /// Whole run, including waiting for the last responses, seconds.
    pub elapsed_s: f64,
    /// Why it stopped.
    pub stopped_by: StopReason,
    /// Generator processes whose results are in this report.
    pub sources: u32,
    /// TCP connections opened (keep-alive reuses them).
    pub connections_opened: u64,
    /// Per phase (one `closed` phase in the closed model).
    pub phases: Vec<PhaseReport>,
    /// The whole run (phases added).
    pub totals: PhaseReport,
    /// Per second.
    pub timeline: Vec<TimelineSecond>,
    /// The first error message seen of each class, to say what went wrong.
    pub first_errors: BTreeMap<ErrorClass, String>,
}

/// How much of the asked load was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Requests due.
    pub scheduled: u64,
    /// Requests sent.
    pub sent: u64,
    /// Requests not sent for lack of a free connection.
    pub dropped: u64,
    /// Requests sent beyond the lateness tolerance.
    pub late: u64,
    /// `(sent - late) / scheduled`.
    pub on_time_fraction: f64,
    /// Requests due per second.
    pub asked_rate: f64,
    /// Requests sent per second.
    pub delivered_rate: f64,
    /// Whether the schedule was played to its end (or to the request bound), not cut by the time bound.
    pub complete: bool,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "asked {:.1} req/s, delivered {:.1} req/s: {} of {} requests sent on time ({:.2}%), {} dropped (no free \
             connection), {} late{}",
            self.asked_rate,
            self.delivered_rate,
            self.sent - self.late.min(self.sent),
            self.scheduled,
            100.0 * self.on_time_fraction,
            self.dropped,
            self.late,
            if self.complete { "" } else { "; the schedule was cut short by the run's time bound" }
        )
    }
}

/// The asked load was not delivered (see [`LoadReport::check_delivery`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the load generator did not deliver the asked load to {target}: {delivery}; needed {needed_pct:.2}% on time")]
pub struct Shortfall {
    /// The run's target.
    pub target: String,
    /// What was delivered.
    pub delivery: Delivery,
    /// Share of requests that had to be sent on time, %.
    pub needed_pct: f64,
}

impl LoadReport {
    /// How much of the asked load was delivered. In the closed model nothing is due on a schedule: every
    /// started request counts as on time.
    pub fn delivery(&self) -> Delivery {
        let c = &self.totals.counts;
        Delivery {
            scheduled: c.scheduled,
            sent: c.sent,
            dropped: c.dropped,
            late: c.late,
            on_time_fraction: if c.scheduled == 0 {
                0.0
            } else {
                (c.sent - c.late.min(c.sent)) as f64 / c.scheduled as f64
            },
            asked_rate: per_second(c.scheduled, self.scheduling_s),
            delivered_rate: per_second(c.sent, self.scheduling_s),
            complete: self.stopped_by != StopReason::MaxDuration,
        }
    }

    /// Whether at least `min_fraction` of the due requests were sent on time over the whole schedule: a check
    /// that needs the asked rate must fail when this fails.
    pub fn check_delivery(&self, min_fraction: f64) -> Result<Delivery, Shortfall> {
        let d = self.delivery();
        if d.complete && d.scheduled > 0 && d.on_time_fraction >= min_fraction {
            Ok(d)
        } else {
            Err(Shortfall { target: self.target.clone(), delivery: d, needed_pct: 100.0 * min_fraction })
        }
    }

    /// Service latency of successful requests over the whole run.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.totals.latency
    }

    /// Coordinated-omission-corrected latency over the whole run (open model).
    pub fn corrected_latency(&self) -> Option<&LatencyHistogram> {
        self.totals.corrected.as_ref()
    }

    /// Failed requests by class.
    pub fn errors(&self) -> &ErrorCounts {
        &self.totals.counts.errors
    }

    /// Share of sent requests that failed other than by throttling (function errors, other statuses,
    /// timeouts, connection failures); 429s are the platform protecting itself, counted apart.
    pub fn error_rate(&self) -> f64 {
        let c = &self.totals.counts;
        let e = c.errors.total() - c.errors.throttled;
        if c.sent == 0 {
            0.0
        } else {
            e as f64 / c.sent as f64
        }
    }

    /// A message naming what is missing when fewer than `min_ok` requests succeeded (no evidence to decide on),
    /// with the first error of each class.
    pub fn missing_evidence(&self, min_ok: u64) -> Option<String> {
        let c = &self.totals.counts;
        if c.ok >= min_ok {
            return None;
        }
        let firsts: Vec<String> = self.first_errors.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
        Some(format!(
            "{} successful responses from {} (needed {min_ok}); {} sent, {} failed{}",
            c.ok,
            self.target,
            c.sent,
            c.errors.total(),
            if firsts.is_empty() { String::new() } else { format!(" (first errors: {})", firsts.join("; ")) }
        ))
    }

    /// Adds the results of another generator process that ran the same spec at the same time: counts and
    /// histograms add exactly; the timeline is aligned on wall-clock seconds, its counts added, and a second's
    /// percentiles are dropped where both sources had requests (percentiles do not add).
    pub fn merge(&mut self, other: &LoadReport) -> Result<(), Error> {
        if self.target != other.target || self.phases.len() != other.phases.len() {
            return Err(Error::Merge(format!(
                "different runs: {} ({} phases) vs {} ({} phases)",
                self.target,
                self.phases.len(),
                other.target,
                other.phases.len()
            )));
        }
        for (a, b) in self.phases.iter_mut().zip(&other.phases) {
            a.merge(b)?;
        }
        self.totals.merge(&other.totals)?;
        let start = self.started_unix_ms.min(other.started_unix_ms);
        let end = |r: &LoadReport| r.started_unix_ms as f64 / 1e3 + r.elapsed_s;
        self.elapsed_s = end(self).max(end(other)) - start as f64 / 1e3;
        self.scheduling_s = self.scheduling_s.max(other.scheduling_s);
        self.timeline = merge_timelines(self, other, start);
        self.started_unix_ms = start;
        self.sources += other.sources;
        self.connections_opened += other.connections_opened;
        if other.stopped_by == StopReason::MaxDuration {
            self.stopped_by = StopReason::MaxDuration;
        }
        for (k, v) in &other.first_errors {
            self.first_errors.entry(*k).or_insert_with(|| v.clone());
        }
        Ok(())
    }
}

fn merge_timelines(a: &LoadReport, b: &LoadReport, start_ms: u64) -> Vec<TimelineSecond> {
    let mut out: Vec<TimelineSecond> = Vec::new();
    for r in [a, b] {
        let shift = ((r.started_unix_ms - start_ms) as f64 / 1e3).round() as u64;
        for row in &r.timeline {
            let s = (row.second + shift) as usize;
            while out.len() <= s {
                out.push(TimelineSecond { second: out.len() as u64, ..Default::default() });
            }
            let o = &mut out[s];
            let both = o.sent > 0 && row.sent > 0;
            o.scheduled += row.scheduled;
            o.sent += row.sent;
            o.dropped += row.dropped;
            o.late += row.late;
            o.ok += row.ok;
            o.throttled += row.throttled;
            o.errors += row.errors;
            if both {
                (o.p50_s, o.p99_s, o.p99_corrected_s) = (None, None, None);
            } else if row.sent > 0 {
                (o.p50_s, o.p99_s, o.p99_corrected_s) = (row.p50_s, row.p99_s, row.p99_corrected_s);
            }
        }
    }
    out
}
