//! The per-second [`TimelineSecond`] rows of a run (by intended send second in the open model, by send second in
//! the closed one): counts, and the median and P99 latency of the requests of that second. A second's small
//! histograms live only until its last request finished, so memory stays bounded however long the run.

use std::{collections::VecDeque, time::Duration};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::outcome::ErrorClass;
use crate::stats::bucket_at_rank;

/// One second of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineSecond {
    /// Seconds from the run's start.
    pub second: u64,
    /// Requests due in this second.
    pub scheduled: u64,
    /// Requests sent.
    pub sent: u64,
    /// Requests dropped (no free connection).
    pub dropped: u64,
    /// Requests sent late.
    pub late: u64,
    /// Successful responses.
    pub ok: u64,
    /// 429 responses.
    pub throttled: u64,
    /// Other failures (function errors, other statuses, timeouts, connection failures).
    pub errors: u64,
    /// Median service latency of this second's successes, seconds (2 significant digits).
    pub p50_s: Option<f64>,
    /// P99 service latency of this second's successes, seconds (2 significant digits).
    pub p99_s: Option<f64>,
    /// P99 latency from the intended send time (open model), seconds (2 significant digits).
    pub p99_corrected_s: Option<f64>,
}

struct Open {
    pending: u64,
    raw: Histogram<u32>,
    corrected: Histogram<u32>,
}

impl Open {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("constant bounds are valid");
        Self { pending: 0, raw: h(), corrected: h() }
    }
}

/// Builds the rows as events arrive; see the module docs.
pub(crate) struct Timeline {
    rows: Vec<TimelineSecond>,
    open: VecDeque<Open>,
    first_open: u64,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Self { rows: Vec::new(), open: VecDeque::new(), first_open: 0 }
    }

    fn row(&mut self, second: u64) -> &mut TimelineSecond {
        let i = second as usize;
        while self.rows.len() <= i {
            let s = self.rows.len() as u64;
            self.rows.push(TimelineSecond { second: s, ..Default::default() });
        }
        &mut self.rows[i]
    }

    fn open(&mut self, second: u64) -> Option<&mut Open> {
        let i = second.checked_sub(self.first_open)? as usize;
        while self.open.len() <= i {
            self.open.push_back(Open::new());
        }
        self.open.get_mut(i)
    }

    pub(crate) fn scheduled(&mut self, second: u64) {
        self.row(second).scheduled += 1;
    }

    pub(crate) fn dropped(&mut self, second: u64) {
        self.row(second).dropped += 1;
    }

    pub(crate) fn sent(&mut self, second: u64, late: bool) {
        let r = self.row(second);
        r.sent += 1;
        r.late += u64::from(late);
        if let Some(o) = self.open(second) {
            o.pending += 1;
        }
    }

    pub(crate) fn done(
        &mut self,
        second: u64,
        failure: Option<ErrorClass>,
        raw: Duration,
        corrected: Option<Duration>,
    ) {
        let r = self.row(second);
        match failure {
            None => r.ok += 1,
            Some(ErrorClass::Throttled) => r.throttled += 1,
            Some(_) => r.errors += 1,
        }
        if let Some(o) = self.open(second) {
            o.pending = o.pending.saturating_sub(1);
            if failure.is_none() {
                o.raw.saturating_record(raw.as_nanos() as u64);
                if let Some(c) = corrected {
                    o.corrected.saturating_record(c.as_nanos() as u64);
                }
            }
        }
    }

    /// Closes the seconds before `now_second - 1` whose requests all finished (one second of slack: events of
    /// concurrent workers may arrive slightly out of order).
    pub(crate) fn advance(&mut self, now_second: u64) {
        while self.first_open + 1 < now_second && self.open.front().is_none_or(|o| o.pending == 0) {
            self.close_front();
        }
    }

    fn close_front(&mut self) {
        let second = self.first_open;
        let o = self.open.pop_front().unwrap_or_else(Open::new);
        let p = |h: &Histogram<u32>, q: f64| {
            let rank = ((q * h.len() as f64).ceil() as u64).max(1);
            bucket_at_rank(h, rank).map(|(_, hi)| hi as f64 / 1e9)
        };
        let (p50, p99, p99c) = (p(&o.raw, 0.5), p(&o.raw, 0.99), p(&o.corrected, 0.99));
        let r = self.row(second);
        (r.p50_s, r.p99_s, r.p99_corrected_s) = (p50, p99, p99c);
        self.first_open += 1;
    }

    /// All rows, every second closed.
    pub(crate) fn finish(mut self) -> Vec<TimelineSecond> {
        while (self.first_open as usize) < self.rows.len() {
            self.close_front();
        }
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_close_only_when_their_requests_are_done() {
        let mut t = Timeline::new();
        t.scheduled(0);
        t.sent(0, false);
        t.scheduled(0);
        t.dropped(0);
        t.advance(5);
        assert_eq!(t.first_open, 0, "second 0 has a request in flight");
        t.done(0, None, Duration::from_millis(3), Some(Duration::from_millis(4)));
        t.sent(3, true);
        t.done(3, Some(ErrorClass::Throttled), Duration::from_millis(1), None);
        t.advance(5);
        assert_eq!(t.first_open, 4);
        let rows = t.finish();
        assert_eq!(rows.len(), 4);
        let r0 = &rows[0];
        assert_eq!((r0.scheduled, r0.sent, r0.dropped, r0.ok), (2, 1, 1, 1));
        assert!((r0.p50_s.unwrap() - 0.003).abs() < 0.003 * 0.01);
        assert!((r0.p99_corrected_s.unwrap() - 0.004).abs() < 0.004 * 0.01);
        assert_eq!((rows[3].late, rows[3].throttled, rows[3].p99_s), (1, 1, None));
        assert_eq!(rows[1], TimelineSecond { second: 1, ..Default::default() });
    }

    #[test]
    fn events_for_a_closed_second_still_count() {
        let mut t = Timeline::new();
        t.advance(10);
        t.sent(2, false);
        t.done(2, None, Duration::from_millis(1), None);
        let rows = t.finish();
        assert_eq!((rows[2].sent, rows[2].ok, rows[2].p50_s), (1, 1, None));
    }
}
