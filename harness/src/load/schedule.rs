//! [`Schedule`]: the open model's arrival schedule, a sequence of [`Phase`]s whose request rate is constant or
//! changes linearly (ramps), so warm-up, sustained load, spikes and ramp-down are all one shape; arrivals are
//! evenly spaced or Poisson (seeded). The schedule is pure: it yields the intended send time of every request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::stats::SplitMix64;

/// A stretch of the schedule whose rate goes linearly from `from_rate` to `to_rate` (req/s) over `duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Name in the report (`warm-up`, `sustained`, `spike`, `ramp-down`).
    pub name: String,
    /// How long the phase lasts.
    pub duration: Duration,
    /// Rate at the phase's start, requests per second.
    pub from_rate: f64,
    /// Rate at the phase's end, requests per second.
    pub to_rate: f64,
}

impl Phase {
    /// A phase at a constant rate (a spike is a short constant phase at a high rate).
    pub fn constant(name: &str, duration: Duration, rate: f64) -> Self {
        Self { name: name.to_string(), duration, from_rate: rate, to_rate: rate }
    }

    /// A phase whose rate changes linearly from `from` to `to`.
    pub fn ramp(name: &str, duration: Duration, from: f64, to: f64) -> Self {
        Self { name: name.to_string(), duration, from_rate: from, to_rate: to }
    }

    /// Expected requests in the phase: the integral of the rate.
    pub fn expected_requests(&self) -> f64 {
        (self.from_rate + self.to_rate) / 2.0 * self.duration.as_secs_f64()
    }

    /// Offset into the phase (seconds) at which `y` requests are expected: the inverse of the rate's integral
    /// `a t + (b - a) t^2 / 2D`, in the form that is stable for constant rates and ramps from zero.
    fn offset_of(&self, y: f64) -> f64 {
        if y <= 0.0 {
            return 0.0;
        }
        let (a, b, d) = (self.from_rate, self.to_rate, self.duration.as_secs_f64());
        2.0 * y / (a + (a * a + 2.0 * (b - a) * y / d).max(0.0).sqrt())
    }
}

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrivals {
    /// Evenly spaced at the current rate (the first request at the start).
    Uniform,
    /// A Poisson process with the schedule's rate; the seed makes it reproducible.
    Poisson {
        /// Seed of the inter-arrival draws.
        seed: u64,
    },
}

/// The open model's schedule: phases played one after another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    phases: Vec<Phase>,
    arrivals: Arrivals,
}

/// One scheduled request: its intended send time from the run's start, and the phase it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Intended send time, from the start of the run.
    pub at: Duration,
    /// Index of its phase in [`Schedule::phases`].
    pub phase: usize,
}

impl Schedule {
    /// A schedule of `phases` with evenly spaced arrivals. Rates must be finite and non-negative, durations
    /// positive, and some phase must have requests.
    pub fn new(phases: Vec<Phase>) -> Result<Self, Error> {
        if phases.is_empty() {
            return Err(Error::Spec("a schedule needs at least one phase".into()));
        }
        for p in &phases {
            let ok_rate = |r: f64| r.is_finite() && r >= 0.0;
            if !ok_rate(p.from_rate) || !ok_rate(p.to_rate) {
                return Err(Error::Spec(format!(
                    "phase {:?}: rates must be finite and >= 0 req/s, got {} -> {}",
                    p.name, p.from_rate, p.to_rate
                )));
            }
            if p.duration.is_zero() {
                return Err(Error::Spec(format!("phase {:?}: duration must be positive", p.name)));
            }
        }
        let s = Self { phases, arrivals: Arrivals::Uniform };
        if s.expected_requests() < 1.0 {
            return Err(Error::Spec("the schedule sends no request (all rates are ~0)".into()));
        }
        Ok(s)
    }

    /// A constant rate for `duration`: `rate * duration` requests.
    pub fn constant(rate: f64, duration: Duration) -> Result<Self, Error> {
        Self::new(vec![Phase::constant("constant", duration, rate)])
    }

    /// The staged shape of the load tests in the tuning guides the criteria come from: a warm-up at
    /// `base / 10`, sustained `base`, a spike at `spike`, and a linear ramp-down to zero.
    pub fn staged(
        base: f64,
        spike: f64,
        warm_up: Duration,
        sustained: Duration,
        spike_for: Duration,
        ramp_down: Duration,
    ) -> Result<Self, Error> {
        Self::new(vec![
            Phase::constant("warm-up", warm_up, base / 10.0),
            Phase::constant("sustained", sustained, base),
            Phase::constant("spike", spike_for, spike),
            Phase::ramp("ramp-down", ramp_down, base, 0.0),
        ])
    }

    /// The same schedule with Poisson arrivals drawn from `seed`.
    pub fn poisson(mut self, seed: u64) -> Self {
        self.arrivals = Arrivals::Poisson { seed };
        self
    }

    /// The phases, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// How arrivals are spaced.
    pub fn arrivals(&self) -> Arrivals {
        self.arrivals
    }

    /// Total length of the schedule.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// Expected number of requests over the whole schedule (exact for evenly spaced arrivals, rounded up).
    pub fn expected_requests(&self) -> f64 {
        self.phases.iter().map(Phase::expected_requests).sum()
    }

    /// Every request's intended send time, in order.
    pub fn iter(&self) -> ArrivalIter<'_> {
        let rng = match self.arrivals {
            Arrivals::Uniform => None,
            Arrivals::Poisson { seed } => Some(SplitMix64::new(seed)),
        };
        ArrivalIter { schedule: self, phase: 0, phase_start: 0.0, lambda_start: 0.0, next: 0.0, rng }
    }
}

/// Iterator over a schedule's arrivals (see [`Schedule::iter`]).
#[derive(Debug)]
pub struct ArrivalIter<'a> {
    schedule: &'a Schedule,
    phase: usize,
    phase_start: f64,
    lambda_start: f64,
    next: f64,
    rng: Option<SplitMix64>,
}

impl Iterator for ArrivalIter<'_> {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        if let (Some(rng), true) = (self.rng.as_mut(), self.next == 0.0) {
            self.next = rng.exponential();
        }
        let y = self.next;
        loop {
            let p = self.schedule.phases.get(self.phase)?;
            let lambda_end = self.lambda_start + p.expected_requests();
            if y < lambda_end {
                let t = self.phase_start + p.offset_of(y - self.lambda_start).min(p.duration.as_secs_f64());
                self.next = match self.rng.as_mut() {
                    None => y + 1.0,
                    Some(rng) => y + rng.exponential(),
                };
                return Some(Arrival { at: Duration::from_secs_f64(t), phase: self.phase });
            }
            self.phase += 1;
            self.phase_start += p.duration.as_secs_f64();
            self.lambda_start = lambda_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn constant_rate_sends_rate_times_duration_evenly() {
        let s = Schedule::constant(100.0, S(2)).unwrap();
        let a: Vec<Arrival> = s.iter().collect();
        assert_eq!(a.len(), 200);
        assert_eq!(a[0].at, Duration::ZERO);
        assert_eq!(a[1].at, Duration::from_millis(10));
        assert_eq!(a[199].at, Duration::from_millis(1990));
    }

    #[test]
    fn ramps_follow_the_integral_of_the_rate() {
        // 0 -> 200 req/s over 10 s: 1000 requests, and half of them in the last 2.93 s (t = 10/sqrt(2)).
        let s = Schedule::new(vec![Phase::ramp("up", S(10), 0.0, 200.0)]).unwrap();
        let a: Vec<Arrival> = s.iter().collect();
        assert_eq!(a.len(), 1000);
        let t500 = a[500].at.as_secs_f64();
        assert!((t500 - 10.0 / 2f64.sqrt()).abs() < 1e-9, "{t500}");
        let down = Schedule::new(vec![Phase::ramp("down", S(10), 200.0, 0.0)]).unwrap();
        assert_eq!(down.iter().count(), 1000);
        assert!(down.iter().last().unwrap().at < S(10));
    }

    #[test]
    fn staged_phases_are_played_in_order() {
        let s = Schedule::staged(100.0, 200.0, S(2), S(3), S(1), S(2)).unwrap();
        let a: Vec<Arrival> = s.iter().collect();
        let per_phase: Vec<usize> = (0..4).map(|i| a.iter().filter(|x| x.phase == i).count()).collect();
        assert_eq!(per_phase, vec![20, 300, 200, 100]);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at && w[0].phase <= w[1].phase));
        assert_eq!(s.duration(), S(8));
    }

    #[test]
    fn bad_schedules_are_rejected_with_the_phase_named() {
        let e = Schedule::new(vec![Phase::constant("spike", S(1), f64::NAN)]).unwrap_err();
        assert!(e.to_string().contains("spike"), "{e}");
        assert!(Schedule::new(vec![]).is_err());
        assert!(Schedule::new(vec![Phase::constant("zero", Duration::ZERO, 10.0)]).is_err());
        assert!(Schedule::constant(0.0, S(5)).is_err());
    }

    #[test]
    fn poisson_is_seeded_and_keeps_the_rate() {
        let s = Schedule::constant(1000.0, S(20)).unwrap().poisson(9);
        let a: Vec<Duration> = s.iter().map(|x| x.at).collect();
        let b: Vec<Duration> = s.iter().map(|x| x.at).collect();
        assert_eq!(a, b);
        // 20000 expected; the count is Poisson (sd ~141): the fixed seed makes this deterministic.
        assert!((19_000..21_000).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    proptest! {
        #[test]
        fn arrivals_are_ordered_and_inside_the_schedule(
            rates in proptest::collection::vec((0.0f64..500.0, 0.0f64..500.0, 1u64..5), 1..5),
        ) {
            let phases: Vec<Phase> = rates.iter().map(|&(a, b, d)| Phase::ramp("p", S(d), a, b)).collect();
            let Ok(s) = Schedule::new(phases) else { return Ok(()) };
            let a: Vec<Arrival> = s.iter().collect();
            prop_assert_eq!(a.len() as f64, s.expected_requests().ceil());
            prop_assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert!(a.iter().all(|x| x.at <= s.duration()));
        }
    }
}
