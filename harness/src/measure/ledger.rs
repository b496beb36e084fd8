//! [`Ledger`]: every attempt a figure took, and what became of the ones that are not in it: failed (by
//! class: function error, timeout, throttled, failed call) or rejected (not cold, not warm, unverifiable).
//! A figure is computed on the counted samples and reported with its ledger; failures beyond the budget
//! (`max_failures`, default none) fail the checks that read the figure ([`Ledger::over_budget`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}

impl Ledger {
    /// An empty ledger allowing `max_failures` failed attempts.
    pub fn new(max_failures: u64) -> Ledger {
        Ledger { max_failures, ..Ledger::default() }
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
        s.push_str(&format!("; failure budget {}", self.max_failures));
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
}
