//! The figures of `cold_start_rate`, once for every platform: the share of answered requests whose
//! environment says it was cold, with every scheduled request in the ledger. A failed request (a throttle, a
//! function error, another status, a timeout, a connection error) or one the generator could not send is a
//! failure, not a request left out: a function whose cold starts fail cannot score "0% cold" by losing them.

use std::sync::Mutex;

use super::{Ledger, MeasurementSet, Metric, Rejection};
use crate::{
    load::{Counts, Observe, Observed},
    platform::functions::SelfReport,
};

/// Counts answered requests by the function's own `cold` field.
#[derive(Debug, Default)]
pub struct ColdCounter(Mutex<Tally>);

/// What the [`ColdCounter`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Successful responses from a cold environment.
    pub cold: u64,
    /// Successful responses from a warm environment.
    pub warm: u64,
    /// Successful responses without the function's report.
    pub unreported: u64,
}

impl Observe for ColdCounter {
    fn observe(&self, r: &Observed<'_>) {
        let ok = r.status.as_u16() == 200 && !r.headers.contains_key("x-amz-function-error");
        if !ok {
            return;
        }
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match SelfReport::from_payload(r.body).map(|f| f.cold) {
            Some(true) => g.cold += 1,
            Some(false) => g.warm += 1,
            None => g.unreported += 1,
        }
    }
}

impl ColdCounter {
    /// What was counted.
    pub fn tally(&self) -> Tally {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Puts `rate` (with its ledger) into `set` from the counter and the load's counts; `max_failures` is the
/// budget; `what` names the traffic for the notes.
pub fn figures(set: &mut MeasurementSet, t: Tally, c: &Counts, max_failures: u64, what: &str) {
    let mut ledger = Ledger::new(max_failures);
    ledger.count_n(t.cold + t.warm);
    ledger.reject_n(Rejection::Unverifiable, t.unreported, "a successful response without the function's `cold` field");
    let e = &c.errors;
    ledger.fail_n("throttled", e.throttled, "429");
    ledger.fail_n("function error", e.function_error, "X-Amz-Function-Error");
    ledger.fail_n("failed call", e.other_status, "another HTTP status");
    ledger.fail_n("timeout", e.timeout, "no answer within the request timeout");
    ledger.fail_n("failed call", e.connection, "connection error");
    ledger.fail_n("not sent", c.dropped, "the generator could not send it on time (dropped)");
    set.notes.push(format!(
        "{what}: {} scheduled, {} sent, {} cold and {} warm responses by the function's `cold` field",
        c.scheduled, c.sent, t.cold, t.warm
    ));
    set.notes.extend(ledger.notes("cold_start_rate requests"));
    let n = t.cold + t.warm;
    set.metrics.insert(
        "rate".into(),
        if n == 0 {
            Metric::Missing { reason: format!("{what}: no successful response carried the function's `cold` field") }
        } else {
            Metric::value(t.cold as f64 / n as f64 * 100.0, "%", n)
        },
    );
    set.ledgers.insert("rate".into(), ledger);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_cold_starts_are_failures_not_left_out() {
        let mut set = MeasurementSet::new("cold_start_rate", "local", &Default::default());
        let mut c = Counts { scheduled: 100, sent: 100, ok: 90, ..Counts::default() };
        c.errors.function_error = 10;
        figures(&mut set, Tally { cold: 0, warm: 90, unreported: 0 }, &c, 0, "test");
        assert!(matches!(set.metrics["rate"], Metric::Value { value, .. } if value == 0.0));
        let l = &set.ledgers["rate"];
        assert_eq!((l.attempts, l.counted, l.failures()), (100, 90, 10));
        assert!(l.over_budget(), "10 failed requests beyond a budget of 0 fail the check");
    }
}
