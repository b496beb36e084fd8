//! [`Ledger`]: every attempt a figure took, and what became of the ones that are not in it: failed (by
//! class: function error, timeout, throttled, failed call) or rejected (not cold, not warm, unverifiable).
//! A figure is computed on the counted samples and reported with its ledger; failures beyond the budget
//! (`max_failures`, default none) fail the checks that read the figure ([`Ledger::over_budget`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::load::{Counts, ErrorClass};

/// Why an attempt was not counted although the invocation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// It did not provably come from a new environment.
    NotCold,
    /// It did not provably come from a warm environment.
    NotWarm,
    /// The platform's record needed to verify or measure it was missing (no REPORT line, no Init Duration).
    Unverifiable,
}

impl Rejection {
    fn name(self) -> &'static str {
        match self {
            Rejection::NotCold => "not cold",
            Rejection::NotWarm => "not warm",
            Rejection::Unverifiable => "unverifiable",
        }
    }
}

/// The attempts behind one figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Attempts made.
    pub attempts: u64,
    /// Attempts counted as samples.
    pub counted: u64,
    /// Failed attempts by class (`function error`, `timeout`, `throttled`, `failed call`).
    pub failed: BTreeMap<String, u64>,
    /// Successful attempts rejected, by reason.
    pub rejected: BTreeMap<Rejection, u64>,
    /// The first message of each failure class and rejection, for the notes.
    pub first: BTreeMap<String, String>,
    /// Failures the profile allows (`max_failures`).
    pub max_failures: u64,
    /// Samples the procedure was asked for (0: no fixed number).
    #[serde(default)]
    pub asked: u64,
    /// Failed attempts are observations of the figure, slower than every counted sample (a request under
    /// load that failed or timed out took at least as long as any answer): a percentile is taken over every
    /// attempt with the failures at the top, and a mean or maximum with failures has no finite value.
    #[serde(default)]
    pub censored: bool,
}

impl Ledger {
    /// An empty ledger allowing `max_failures` failed attempts.
    pub fn new(max_failures: u64) -> Ledger {
        Ledger { max_failures, ..Ledger::default() }
    }

    /// The ledger of the latencies of a load phase: every request the schedule asked for, the successes
    /// counted, the others failed by class (requests the generator could not send as `not sent`). The
    /// failures are censored (slower than every success); `max_failures` is a budget on top when set.
    pub fn of_load(c: &Counts, max_failures: Option<u64>) -> Ledger {
        let mut l = Ledger { max_failures: max_failures.unwrap_or(u64::MAX), censored: true, ..Ledger::default() };
        l.count_n(c.ok);
        for class in ErrorClass::ALL {
            l.fail_n(
                class.name(),
                c.errors.get(class),
                format!("{} responses of class {}", c.errors.get(class), class.name()),
            );
        }
        l.fail_n(
            "not sent",
            c.dropped,
            format!("{} requests the generator could not send on time (every connection busy)", c.dropped),
        );
        let unanswered = c.scheduled.saturating_sub(l.attempts);
        l.fail_n(
            "unanswered",
            unanswered,
            format!("{unanswered} requests sent without an answer before the run ended"),
        );
        l
    }

    /// The nearest-rank percentile `q` (0..100) of `samples` over every attempt of this ledger, failures
    /// counted as slower than every sample when the ledger is censored (else over the samples alone), with
    /// its distribution-free confidence interval at `level`. `Err` says why there is no finite value: no
    /// sample, or the percentile's rank falls among the failures.
    pub fn percentile(&self, samples: &[f64], q: f64, level: f64) -> Result<crate::stats::Estimate, String> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let failures = if self.censored { self.failures() } else { 0 };
        let (n, all) = (sorted.len() as u64, sorted.len() as u64 + failures);
        if n == 0 {
            return Err(format!("no sample ({})", self.summary()));
        }
        let rank = ((q / 100.0) * all as f64).ceil().clamp(1.0, all as f64) as u64;
        if rank > n {
            return Err(format!(
                "the P{} of all {all} attempts is a failure: {failures} failed, more than the {} the percentile leaves above it, so no latency bounds it ({})",
                fmt_q(q),
                all - ((q / 100.0) * all as f64).ceil() as u64,
                self.summary()
            ));
        }
        let (lo, hi) = crate::stats::order_statistic_ranks(all, q / 100.0, level);
        let at = |r: u64| (r <= n).then(|| sorted[(r - 1) as usize]);
        Ok(crate::stats::Estimate {
            value: sorted[(rank - 1) as usize],
            n: all,
            ci_low: lo.and_then(at),
            ci_high: hi.and_then(at),
        })
    }

    /// Records a counted sample.
    pub fn count(&mut self) {
        self.attempts += 1;
        self.counted += 1;
    }

    /// Records a failed attempt of `class` (`timeout`, `throttled`, ...).
    pub fn fail(&mut self, class: &str, detail: impl Into<String>) {
        self.fail_n(class, 1, detail);
    }

    /// Records `n` failed attempts of `class` at once (counted by a load generator).
    pub fn fail_n(&mut self, class: &str, n: u64, detail: impl Into<String>) {
        if n == 0 {
            return;
        }
        self.attempts += n;
        *self.failed.entry(class.to_string()).or_default() += n;
        self.first.entry(class.to_string()).or_insert_with(|| detail.into());
    }

    /// Records `n` counted samples at once.
    pub fn count_n(&mut self, n: u64) {
        self.attempts += n;
        self.counted += n;
    }

    /// Records `n` rejected attempts at once.
    pub fn reject_n(&mut self, why: Rejection, n: u64, detail: impl Into<String>) {
        if n == 0 {
            return;
        }
        self.attempts += n;
        *self.rejected.entry(why).or_default() += n;
        self.first.entry(why.name().to_string()).or_insert_with(|| detail.into());
    }

    /// Records a successful attempt that was not counted.
    pub fn reject(&mut self, why: Rejection, detail: impl Into<String>) {
        self.attempts += 1;
        *self.rejected.entry(why).or_default() += 1;
        self.first.entry(why.name().to_string()).or_insert_with(|| detail.into());
    }

    /// Failed attempts, all classes.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Rejected attempts, all reasons.
    pub fn rejections(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// True when more attempts failed than the budget allows.
    pub fn over_budget(&self) -> bool {
        self.failures() > self.max_failures
    }

    /// One line: `32 attempts: 30 counted, 1 failed (1 timeout), 1 rejected (1 not cold); failure budget 0`.
    pub fn summary(&self) -> String {
        let list = |m: Vec<(String, u64)>| m.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ");
        let mut s = format!("{} attempts: {} counted", self.attempts, self.counted);
        if self.failures() > 0 {
            s.push_str(&format!(
                ", {} failed ({})",
                self.failures(),
                list(self.failed.iter().map(|(k, v)| (k.clone(), *v)).collect())
            ));
        } else {
            s.push_str(", 0 failed");
        }
        if self.rejections() > 0 {
            s.push_str(&format!(
                ", {} rejected ({})",
                self.rejections(),
                list(self.rejected.iter().map(|(k, v)| (k.name().to_string(), *v)).collect())
            ));
        }
        if self.censored {
            s.push_str("; failures counted as slower than every sample");
        }
        if self.max_failures != u64::MAX {
            s.push_str(&format!("; failure budget {}", self.max_failures));
        }
        s
    }

    /// The summary followed by the first message of each class (for the notes).
    pub fn notes(&self, what: &str) -> Vec<String> {
        let mut out = vec![format!("{what}: {}", self.summary())];
        out.extend(self.first.iter().map(|(k, v)| format!("{what}: first {k}: {v}")));
        out
    }

    /// Asks for `n` samples: fewer counted is a shortfall that fails the checks reading the figure.
    pub fn asking(mut self, n: u64) -> Ledger {
        self.asked = n;
        self
    }

    /// Why a check reading this figure fails: failures beyond the budget, or fewer samples verified than
    /// asked for (rejections are retried; what still falls short is not a figure of what was asked).
    pub fn verdict(&self) -> Option<String> {
        if !self.over_budget() && self.counted < self.asked {
            return Some(format!(
                "too few samples: {} of the {} asked were verified ({})",
                self.counted,
                self.asked,
                self.summary()
            ));
        }
        self.over_budget().then(|| {
            format!(
                "{} of {} attempts failed ({}), beyond the failure budget of {} (parameter max_failures)",
                self.failures(),
                self.attempts,
                self.failed.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "),
                self.max_failures
            )
        })
    }
}

/// `95`, `99.9`: a percentile's number as written.
fn fmt_q(q: f64) -> String {
    if q.fract() == 0.0 {
        format!("{q:.0}")
    } else {
        format!("{q}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_rejections_are_kept_apart_and_the_budget_decides() {
        let mut l = Ledger::new(0);
        l.count();
        l.reject(Rejection::NotCold, "environment e1 served an earlier invocation");
        assert!(!l.over_budget(), "a rejection is not a failure");
        l.fail("timeout", "Task timed out after 3.00 seconds");
        assert!(l.over_budget());
        assert_eq!((l.attempts, l.counted, l.failures(), l.rejections()), (3, 1, 1, 1));
        let s = l.summary();
        assert!(s.contains("3 attempts: 1 counted, 1 failed (1 timeout), 1 rejected (1 not cold)"), "{s}");
        assert!(l.verdict().unwrap().contains("1 of 3 attempts failed (1 timeout)"));
        let mut lenient = Ledger::new(1);
        lenient.fail("throttled", "429");
        assert!(!lenient.over_budget() && lenient.verdict().is_none());
    }

    fn counts(ok: u64, timeout: u64, dropped: u64) -> Counts {
        let mut c = Counts { scheduled: ok + timeout + dropped, sent: ok + timeout, dropped, ok, ..Counts::default() };
        c.errors.timeout = timeout;
        c
    }

    #[test]
    fn failures_under_load_sit_above_every_answer_in_a_percentile() {
        let answers: Vec<f64> = (1..=96).map(f64::from).collect();
        // 96 answers of 1..96 ms and 4 timeouts: the P95 of the 100 requests is the 95th, 95 ms (the
        // survivors alone would say 92 ms).
        let l = Ledger::of_load(&counts(96, 4, 0), None);
        assert_eq!((l.attempts, l.counted, l.failures()), (100, 96, 4));
        assert!(!l.over_budget(), "no budget set: the percentile decides");
        let e = l.percentile(&answers, 95.0, 0.95).unwrap();
        assert_eq!((e.value, e.n), (95.0, 100));
        assert_eq!(e.ci_high, None, "the interval's upper rank falls among the failures: unbounded");
        assert_eq!(Ledger::new(0).percentile(&answers, 95.0, 0.95).unwrap().value, 92.0);
        // 6 failed (2 timeouts, 4 not sent) of 100: the 95th request is a failure.
        let answers: Vec<f64> = (1..=94).map(f64::from).collect();
        let l = Ledger::of_load(&counts(94, 2, 4), None);
        let why = l.percentile(&answers, 95.0, 0.95).unwrap_err();
        assert!(why.contains("P95 of all 100 attempts is a failure") && why.contains("4 not sent"), "{why}");
        let budget = Ledger::of_load(&counts(94, 2, 4), Some(5));
        assert!(budget.over_budget() && budget.summary().contains("failure budget 5"), "{}", budget.summary());
    }
}
