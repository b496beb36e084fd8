//! [`Recorder`]: where the scheduler and the request tasks of a run write what happened (per phase counts and
//! latency histograms, the timeline, the first error message of each class). One per run, behind a mutex.

use std::{collections::BTreeMap, time::Duration};

use super::{
    histogram::LatencyHistogram,
    outcome::{Counts, ErrorClass},
    timeline::{Timeline, TimelineSecond},
};

/// Counts and latencies of one phase (or of the whole closed-model run).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) counts: Counts,
    pub(crate) latency: LatencyHistogram,
    pub(crate) corrected: LatencyHistogram,
}

pub(crate) struct Recorder {
    pub(crate) phases: Vec<Tally>,
    timeline: Timeline,
    pub(crate) first_errors: BTreeMap<ErrorClass, String>,
}

impl Recorder {
    pub(crate) fn new(phases: usize) -> Self {
        Self { phases: vec![Tally::default(); phases.max(1)], timeline: Timeline::new(), first_errors: BTreeMap::new() }
    }

    pub(crate) fn scheduled(&mut self, phase: usize, second: u64) {
        self.phases[phase].counts.scheduled += 1;
        self.timeline.scheduled(second);
        self.timeline.advance(second);
    }

    pub(crate) fn dropped(&mut self, phase: usize, second: u64) {
        self.phases[phase].counts.dropped += 1;
        self.timeline.dropped(second);
    }

    pub(crate) fn sent(&mut self, phase: usize, second: u64, late: bool) {
        let c = &mut self.phases[phase].counts;
        c.sent += 1;
        c.late += u64::from(late);
        self.timeline.sent(second, late);
    }

    /// A finished request: `failure` with its detail, or a success with `bytes` of body; latency from the actual
    /// send (`raw`) and from the intended send time (`corrected`, open model only).
    pub(crate) fn done(
        &mut self,
        phase: usize,
        second: u64,
        failure: Option<(ErrorClass, String)>,
        bytes: u64,
        raw: Duration,
        corrected: Option<Duration>,
    ) {
        let t = &mut self.phases[phase];
        t.counts.bytes_received += bytes;
        let class = failure.map(|(class, detail)| {
            t.counts.errors.add(class);
            self.first_errors.entry(class).or_insert(detail);
            class
        });
        if class.is_none() {
            t.counts.ok += 1;
            t.latency.record(raw);
            if let Some(c) = corrected {
                t.corrected.record(c);
            }
        }
        self.timeline.done(second, class, raw, corrected);
    }

    pub(crate) fn finish(self) -> (Vec<Tally>, Vec<TimelineSecond>, BTreeMap<ErrorClass, String>) {
        (self.phases, self.timeline.finish(), self.first_errors)
    }
}
