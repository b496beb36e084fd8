//! Check (b), rate limiting holds under a burst: a [`Throttle`] (token bucket: `rate` tokens per second,
//! `burst` capacity) is driven well past its limit, then well within it, then probed once.
//!
//! Expectation. A token bucket that starts full accepts `burst + rate * window` requests of a saturating burst.
//! Rather than that formula alone, the check replays the client's own send times through a model bucket,
//! which gives the exact count the configured limit allows for the traffic really sent (stalls of the sender
//! included), and compares the count the stage accepted with it, over the whole burst and over its second
//! half (where only the rate matters, so a stage with the right burst and the wrong rate is caught too).
//!
//! Tolerance: `2 + 10% of the prediction + rate * 0.25 s`. Two tokens for the bucket edges at both ends of the
//! window; 10% because platforms refill in steps and enforce limits approximately (API Gateway documents its
//! throttling as best effort); `rate * 0.25 s` for the gap between the client's send times and the server's
//! arrival times on a loaded machine. The burst is sized so that a stage without throttling accepts at
//! least twice the prediction, far outside the tolerance.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{
    auth::Protected,
    http::{Conn, HttpClient, Req},
    Error,
};

/// A stage's throttle: token bucket refill rate and capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    /// Steady-state requests per second.
    pub rate: f64,
    /// Bucket capacity (requests accepted at once from idle).
    pub burst: u32,
}

impl Throttle {
    /// Time for an empty bucket to fill.
    pub fn refill(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst) / self.rate.max(1e-3))
    }

    /// The tolerance on an accepted count predicted as `predicted` (see the module documentation).
    pub fn tolerance(&self, predicted: f64) -> f64 {
        2.0 + 0.1 * predicted + self.rate * 0.25
    }
}

/// How hard and how long to push.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Length of the burst past the limit.
    pub burst_duration: Duration,
    /// Length of the phase within the limit (at half the rate; at least 5 requests).
    pub within_duration: Duration,
    /// Connections used for the burst (the sender's concurrency).
    pub connections: usize,
    /// Longest wait for the bucket to refill before a phase.
    pub max_refill_wait: Duration,
    /// Highest send rate used, whatever the limit (bounds the traffic).
    pub max_send_rate: f64,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            burst_duration: Duration::from_secs(2),
            within_duration: Duration::from_secs(2),
            connections: 32,
            max_refill_wait: Duration::from_secs(20),
            max_send_rate: 4000.0,
        }
    }
}

/// What the burst, the phase within the limit and the probe showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitReport {
    /// The limit checked (`None`: the stage has none).
    pub throttle: Option<Throttle>,
    /// Send rate of the burst.
    pub send_rate: f64,
    /// Requests sent in the burst.
    pub sent: usize,
    /// Of those, answered 2xx.
    pub accepted: usize,
    /// Of those, answered 429.
    pub throttled: usize,
    /// Of those, answered 5xx or failed in transport.
    pub failed: usize,
    /// Burst window, first to last send, seconds.
    pub window_s: f64,
    /// `burst + rate * window`.
    pub formula: f64,
    /// What the model bucket accepts of the traffic really sent.
    pub predicted: f64,
    /// Accepted in the second half of the window, and the model's count there.
    pub second_half: (usize, f64),
    /// Requests sent within the limit, and how many of them got 429.
    pub within: (usize, usize),
    /// Status of the probe after the burst (`None`: it failed in transport).
    pub probe: Option<u16>,
    /// Expectations violated, in words.
    pub violations: Vec<String>,
    /// Remarks (waits shortened, and the like).
    pub notes: Vec<String>,
    /// The burst's requests: seconds since its start and status (0: transport failure).
    pub log: Vec<(f64, u16)>,
}

/// Replays send times (seconds, ascending) through a token bucket that starts full; returns which were accepted.
pub fn simulate(throttle: Throttle, times: &[f64]) -> Vec<bool> {
    let cap = f64::from(throttle.burst);
    let mut tokens = cap;
    let mut last = times.first().copied().unwrap_or(0.0);
    times
        .iter()
        .map(|&t| {
            tokens = (tokens + throttle.rate * (t - last).max(0.0)).min(cap);
            last = t;
            let ok = tokens >= 1.0 - 1e-9;
            if ok {
                tokens -= 1.0;
            }
            ok
        })
        .collect()
}

/// Runs the check against `target` (the front door with its key). `throttle: None` is itself a violation.
pub async fn check(
    client: &HttpClient,
    target: &Protected,
    throttle: Option<Throttle>,
    plan: &Plan,
) -> Result<RateLimitReport, Error> {
    let Some(th) = throttle else {
        return Ok(RateLimitReport::without_throttle());
    };
    if !(th.rate > 0.0 && th.burst > 0) {
        return Err(Error::Measurement(format!("throttle rate {} / burst {} cannot be checked", th.rate, th.burst)));
    }
    let mut notes = Vec::new();
    refill_wait(th, plan, &mut notes).await;
    let d = plan.burst_duration.as_secs_f64();
    let send_rate = (4.0 * th.rate).max(2.5 * (f64::from(th.burst) / d + th.rate)).min(plan.max_send_rate);
    let log = burst(client, target, send_rate, plan).await?;
    let mut r = summarize(th, send_rate, log, notes)?;
    refill_wait(th, plan, &mut r.notes).await;
    r.within = within_limit(client, target, th, plan).await?;
    tokio::time::sleep(Duration::from_secs_f64(2.0 / th.rate).min(plan.max_refill_wait)).await;
    r.probe = client.send(&request(target)).await.ok().map(|resp| resp.status);
    r.judge(th);
    Ok(r)
}

impl RateLimitReport {
    fn without_throttle() -> RateLimitReport {
        RateLimitReport {
            throttle: None,
            send_rate: 0.0,
            sent: 0,
            accepted: 0,
            throttled: 0,
            failed: 0,
            window_s: 0.0,
            formula: 0.0,
            predicted: 0.0,
            second_half: (0, 0.0),
            within: (0, 0),
            probe: None,
            violations: vec!["the stage has no throttle (rate and burst) configured".into()],
            notes: Vec::new(),
            log: Vec::new(),
        }
    }

    fn judge(&mut self, th: Throttle) {
        let mut v = Vec::new();
        if self.throttled == 0 {
            v.push(format!(
                "no 429 among {} requests sent at {:.0}/s past a limit of {}/s (burst {})",
                self.sent, self.send_rate, th.rate, th.burst
            ));
        }
        let tol = th.tolerance(self.predicted);
        if (self.accepted as f64 - self.predicted).abs() > tol {
            v.push(format!(
                "accepted {} of {} in {:.2} s; the limit allows {:.0} (burst {} + {}/s x window) ± {:.0}",
                self.accepted, self.sent, self.window_s, self.predicted, th.burst, th.rate, tol
            ));
        }
        let (got, want) = self.second_half;
        let tol2 = th.tolerance(want);
        if (got as f64 - want).abs() > tol2 {
            v.push(format!(
                "accepted {got} in the second half of the burst, where the rate allows {want:.0} ± {tol2:.0}"
            ));
        }
        if self.failed > 0 {
            v.push(format!("{} requests failed (5xx or transport) under the burst", self.failed));
        }
        if self.within.1 > 0 {
            v.push(format!("{} of {} requests within the limit got 429", self.within.1, self.within.0));
        }
        match self.probe {
            Some(s) if (200..300).contains(&s) => {}
            Some(s) => v.push(format!("the function answered {s} to a probe after the burst")),
            None => v.push("the probe after the burst failed in transport".into()),
        }
        self.violations = v;
    }
}

async fn refill_wait(th: Throttle, plan: &Plan, notes: &mut Vec<String>) {
    let want = th.refill().mul_f64(1.1);
    if want > plan.max_refill_wait {
        notes.push(format!("waited {:?} for the bucket to refill instead of {want:?}", plan.max_refill_wait));
    }
    tokio::time::sleep(want.min(plan.max_refill_wait)).await;
}

fn request(target: &Protected) -> Req {
    let mut req = match &target.body {
        Some(b) => Req::post(&target.url, b.clone()),
        None => Req::get(&target.url),
    };
    for (k, v) in target.credential.headers() {
        req = req.header(&k, &v);
    }
    req
}

/// Sends at `send_rate` for the burst duration on a pool of kept-alive connections; a tick with no free
/// connection is not sent (and shows up as a lower `sent`).
async fn burst(client: &HttpClient, target: &Protected, send_rate: f64, plan: &Plan) -> Result<Vec<(f64, u16)>, Error> {
    let (tx, mut pool) = mpsc::channel::<Conn>(plan.connections);
    for _ in 0..plan.connections {
        tx.send(client.connect(&target.url).await?).await.expect("pool open");
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let req = request(target);
    let total = (send_rate * plan.burst_duration.as_secs_f64()).ceil() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / send_rate));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for _ in 0..total {
        tick.tick().await;
        let Ok(mut conn) = pool.try_recv() else { continue };
        let (tx, log, req, client) = (tx.clone(), log.clone(), req.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let t = start.elapsed().as_secs_f64();
            let status = match conn.send(&req).await {
                Ok(r) => r.status,
                Err(_) => {
                    conn = match client.connect(&req.url).await {
                        Ok(c) => c,
                        Err(_) => return log.lock().expect("log").push((t, 0)),
                    };
                    0
                }
            };
            log.lock().expect("log").push((t, status));
            let _ = tx.send(conn).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut log = std::mem::take(&mut *log.lock().expect("log"));
    log.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(log)
}

fn summarize(th: Throttle, send_rate: f64, log: Vec<(f64, u16)>, notes: Vec<String>) -> Result<RateLimitReport, Error> {
    let times: Vec<f64> = log.iter().map(|l| l.0).collect();
    let model = simulate(th, &times);
    let predicted = model.iter().filter(|&&a| a).count() as f64;
    let sent = log.len();
    if (sent as f64) < 1.5 * predicted.max(1.0) {
        return Err(Error::Measurement(format!(
            "the burst did not exceed the limit: sent {sent} requests at {send_rate:.0}/s where the limit allows {predicted:.0}; \
             the client could not deliver the rate (too few connections or a slow backend)"
        )));
    }
    let window_s = times.last().copied().unwrap_or(0.0) - times.first().copied().unwrap_or(0.0);
    let half = times.first().copied().unwrap_or(0.0) + window_s / 2.0;
    let ok = |s: u16| (200..300).contains(&s);
    let second_half = (
        log.iter().filter(|l| l.0 >= half && ok(l.1)).count(),
        times.iter().zip(&model).filter(|(t, a)| **t >= half && **a).count() as f64,
    );
    Ok(RateLimitReport {
        throttle: Some(th),
        send_rate,
        sent,
        accepted: log.iter().filter(|l| ok(l.1)).count(),
        throttled: log.iter().filter(|l| l.1 == 429).count(),
        failed: log.iter().filter(|l| l.1 == 0 || l.1 >= 500).count(),
        window_s,
        formula: f64::from(th.burst) + th.rate * window_s,
        predicted,
        second_half,
        within: (0, 0),
        probe: None,
        violations: Vec::new(),
        notes,
        log,
    })
}

/// Sends at half the rate on one connection; returns (sent, answered 429).
async fn within_limit(
    client: &HttpClient,
    target: &Protected,
    th: Throttle,
    plan: &Plan,
) -> Result<(usize, usize), Error> {
    let rate = th.rate / 2.0;
    let n = ((rate * plan.within_duration.as_secs_f64()).ceil() as usize).max(5);
    let mut conn = client.connect(&target.url).await?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let req = request(target);
    let mut throttled = 0;
    for _ in 0..n {
        tick.tick().await;
        let status = match conn.send(&req).await {
            Ok(r) => r.status,
            Err(_) => {
                conn = client.connect(&target.url).await?;
                conn.send(&req).await?.status
            }
        };
        throttled += usize::from(status == 429);
    }
    Ok((n, throttled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saturating_burst_gets_burst_plus_rate_times_window() {
        let th = Throttle { rate: 10.0, burst: 5 };
        let times: Vec<f64> = (0..=200).map(|i| f64::from(i) * 0.01).collect();
        let accepted = simulate(th, &times).iter().filter(|&&a| a).count();
        assert_eq!(accepted, 5 + 20, "burst 5 + 10/s x 2 s");
    }

    #[test]
    fn traffic_within_the_rate_is_all_accepted_and_stalls_do_not_bank_past_the_burst() {
        let th = Throttle { rate: 10.0, burst: 3 };
        let slow: Vec<f64> = (0..50).map(|i| f64::from(i) * 0.2).collect();
        assert!(simulate(th, &slow).iter().all(|&a| a));
        let stall: Vec<f64> = [0.0; 3].into_iter().chain([10.0; 10]).collect();
        assert_eq!(simulate(th, &stall).iter().filter(|&&a| a).count(), 6, "3 at start, 3 after the stall");
    }

    #[test]
    fn judging_names_each_violation() {
        let th = Throttle { rate: 10.0, burst: 5 };
        let log: Vec<(f64, u16)> = (0..=200).map(|i| (f64::from(i) * 0.01, 200)).collect();
        let mut r = summarize(th, 100.0, log, Vec::new()).unwrap();
        r.within = (5, 1);
        r.probe = Some(502);
        r.judge(th);
        assert_eq!(r.violations.len(), 5, "{:#?}", r.violations);
        assert!(RateLimitReport::without_throttle().violations[0].contains("no throttle"));
    }

    #[test]
    fn a_burst_that_never_exceeds_the_limit_is_an_error() {
        let th = Throttle { rate: 100.0, burst: 50 };
        let log: Vec<(f64, u16)> = (0..20).map(|i| (f64::from(i) * 0.1, 200)).collect();
        assert!(matches!(summarize(th, 100.0, log, Vec::new()), Err(Error::Measurement(_))));
    }
}
