//! Bounded traffic for the knative procedures: a closed loop of concurrent workers (a load spike) and an
//! open-model constant rate (steady load), both over a [`Route`], both bounded in time and request count,
//! both counting what they could not send instead of silently sending less. The number of requests in
//! flight is shared through [`InFlight`] so the scaling samplers can relate it to the pods serving it.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::time::{Instant, MissedTickBehavior};

use super::route::Route;

/// Requests currently in flight, shared between a load driver and samplers.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicU64>);

impl InFlight {
    /// Requests in flight now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }
}

struct InFlightGuard(Arc<AtomicU64>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a load run sent and got back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Requests sent.
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Other non-2xx answers.
    pub rejected: u64,
    /// Requests without an HTTP answer (refused, reset, timed out).
    pub no_answer: u64,
    /// Requests the open model could not start because `max_in_flight` were outstanding.
    pub dropped: u64,
    /// Client latency of answered requests, in seconds.
    pub latencies_s: Vec<f64>,
    /// Answers from an environment's first request (when the function reports it).
    pub cold: u64,
    /// Answers that said whether they were cold.
    pub reported: u64,
    /// Distinct environments that answered (when the function reports it).
    pub envs: BTreeSet<String>,
    /// Each reported answer: when its request was sent and the environment that served it.
    pub served: Vec<(Instant, String)>,
    /// First error seen, for messages.
    pub first_error: Option<String>,
}

impl Tally {
    /// Errors that count as starvation: server errors and requests without an answer.
    pub fn starvation(&self) -> u64 {
        self.server_errors + self.no_answer
    }

    fn record(&mut self, started: Instant, result: super::error::Result<super::route::Reply>) {
        match result {
            Ok(reply) => {
                self.latencies_s.push(started.elapsed().as_secs_f64());
                if reply.ok() {
                    self.ok += 1;
                } else if reply.status >= 500 {
                    self.server_errors += 1;
                } else {
                    self.rejected += 1;
                }
                if !reply.ok() && self.first_error.is_none() {
                    self.first_error = Some(format!("HTTP {}", reply.status));
                }
                if let Some(s) = reply.served() {
                    self.reported += 1;
                    self.cold += u64::from(s.cold);
                    self.served.push((started, s.env_id.clone()));
                    self.envs.insert(s.env_id);
                }
            }
            Err(e) => {
                self.no_answer += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// A load spike: `workers` concurrent request loops for `duration`, at most `max_requests` in all.
pub async fn closed_loop<R: Route>(
    route: Arc<R>,
    path: &str,
    workers: usize,
    duration: Duration,
    max_requests: u64,
    in_flight: &InFlight,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let budget = Arc::new(AtomicU64::new(max_requests));
    let end = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (route, tally, budget, in_flight, path) =
            (route.clone(), tally.clone(), budget.clone(), in_flight.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end
                && budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1)).is_ok()
            {
                let started = Instant::now();
                let result = {
                    let _g = in_flight.enter();
                    tokio::time::timeout_at(end + Duration::from_secs(60), route.get(&path)).await
                };
                let mut t = tally.lock().expect("tally lock");
                t.sent += 1;
                match result {
                    Ok(r) => t.record(started, r),
                    Err(_) => {
                        t.no_answer += 1;
                        t.first_error.get_or_insert_with(|| {
                            format!("no answer within 60s after the spike ended ({})", route.describe())
                        });
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(tally)
        .map(|m| m.into_inner().expect("tally lock"))
        .unwrap_or_else(|a| a.lock().expect("tally lock").clone())
}

/// Steady load: `rate` requests per second for `duration` (open model), never more than `max_in_flight`
/// outstanding; requests that could not start are counted as dropped.
pub async fn constant_rate<R: Route>(
    route: Arc<R>,
    path: &str,
    rate: f64,
    duration: Duration,
    max_in_flight: u64,
    in_flight: &InFlight,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..total {
        tick.tick().await;
        if in_flight.get() >= max_in_flight {
            tally.lock().expect("tally lock").dropped += 1;
            continue;
        }
        let (route, tally, guard, path) = (route.clone(), tally.clone(), in_flight.enter(), path.to_string());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = route.get(&path).await;
            drop(guard);
            let mut t = tally.lock().expect("tally lock");
            t.sent += 1;
            t.record(started, r);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(tally)
        .map(|m| m.into_inner().expect("tally lock"))
        .unwrap_or_else(|a| a.lock().expect("tally lock").clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::knative::{
        error::{Error, Result},
        route::Reply,
    };

    struct Slow {
        delay: Duration,
        status: u16,
    }

    impl Route for Slow {
        async fn get(&self, _path: &str) -> Result<Reply> {
            tokio::time::sleep(self.delay).await;
            if self.status == 0 {
                return Err(Error::Route { url: "fake".into(), detail: "refused".into() });
            }
            Ok(Reply { status: self.status, body: bytes::Bytes::from_static(br#"{"env_id":"a","cold":false}"#) })
        }
        fn describe(&self) -> String {
            "fake".into()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spike_keeps_its_workers_busy_and_stops_on_time() {
        let inf = InFlight::default();
        let route = Arc::new(Slow { delay: Duration::from_millis(100), status: 200 });
        let t = closed_loop(route, "/", 4, Duration::from_secs(1), 1000, &inf).await;
        assert_eq!(t.sent, 40);
        assert_eq!((t.ok, t.reported, t.cold, t.envs.len()), (40, 40, 0, 1));
        assert_eq!(inf.get(), 0);
        let capped = closed_loop(
            Arc::new(Slow { delay: Duration::from_millis(100), status: 503 }),
            "/",
            4,
            Duration::from_secs(1),
            6,
            &inf,
        )
        .await;
        assert_eq!((capped.sent, capped.server_errors, capped.starvation()), (6, 6, 6));
        assert_eq!(capped.first_error.as_deref(), Some("HTTP 503"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_open_model_counts_what_it_could_not_send() {
        let inf = InFlight::default();
        let t = constant_rate(
            Arc::new(Slow { delay: Duration::from_millis(10), status: 200 }),
            "/",
            50.0,
            Duration::from_secs(2),
            10,
            &inf,
        )
        .await;
        assert_eq!((t.sent, t.dropped), (100, 0));
        let slow = constant_rate(
            Arc::new(Slow { delay: Duration::from_secs(10), status: 0 }),
            "/",
            10.0,
            Duration::from_secs(2),
            5,
            &inf,
        )
        .await;
        assert_eq!((slow.sent, slow.dropped, slow.no_answer), (5, 15, 5));
        assert!(slow.first_error.unwrap().contains("refused"));
    }
}
