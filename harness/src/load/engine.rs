//! The run loop behind [`super::LoadSpec::run`]: the open-model scheduler (sleeps until each request's intended
//! time, sends it on its own task if a connection slot is free, else counts it dropped) and the closed-model
//! workers; every request is bounded by its timeout and by the run's deadline, so the run ends by itself.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hyper::header::HeaderName;
use tokio::{
    sync::Semaphore,
    task::JoinSet,
    time::{sleep_until, timeout_at, Instant, Sleep},
};

use super::{
    client::Client,
    outcome::ErrorClass,
    recorder::Recorder,
    report::{LoadReport, ModelSummary, PhaseReport, StopReason},
    schedule::Schedule,
    spec::{LoadSpec, Model, Observe, Observed},
    Error,
};

/// After the deadline, how long the scheduler waits for request tasks to record their (timed-out) end.
const GRACE: Duration = Duration::from_millis(500);
/// Requests sent back to back while behind schedule before the scheduler lets finished requests run.
const BURST: u32 = 32;

struct Shared {
    client: Arc<Client>,
    recorder: Mutex<Recorder>,
    start: Instant,
    deadline: Instant,
    timeout: Duration,
    observer: Option<Arc<dyn Observe>>,
    seq_header: Option<HeaderName>,
}

impl Shared {
    fn rec(&self) -> MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends request `seq`, bounded by its timeout and the run's deadline on `timer` (a worker's one timer, reset
    /// for each request: moving a timer later costs next to nothing, a new one costs a timer-wheel insertion and
    /// removal), and records its end.
    async fn request(
        &self,
        mut timer: Pin<&mut Sleep>,
        seq: u64,
        phase: usize,
        at: Duration,
        intended: Option<Instant>,
        sent: Instant,
    ) {
        let second = at.as_secs();
        let until = (sent + self.timeout).min(self.deadline);
        timer.as_mut().reset(until);
        let result = tokio::select! {
            biased;
            r = self.client.send(self.seq_header.as_ref(), seq) => Ok(r),
            () = timer => Err(()),
        };
        let done = Instant::now();
        let raw = done - sent;
        let corrected = intended.map(|i| done - i);
        let (failure, bytes) = match result {
            Err(_) if until == self.deadline => {
                (Some((ErrorClass::Timeout, "still in flight at the run's deadline".to_string())), 0)
            }
            Err(_) => (Some((ErrorClass::Timeout, format!("no complete response within {:?}", self.timeout))), 0),
            Ok(Err(f)) => (Some((f.class, f.detail)), 0),
            Ok(Ok(a)) => {
                if let (Some(obs), Some((headers, body))) = (&self.observer, &a.kept) {
                    obs.observe(&Observed { phase, seq, at, latency: raw, status: a.status, headers, body });
                }
                let class = ErrorClass::of_response(a.status, a.function_error);
                let detail = |c| {
                    (
                        c,
                        format!(
                            "HTTP {}{}",
                            a.status,
                            if a.function_error { " with X-Amz-Function-Error" } else { "" }
                        ),
                    )
                };
                (class.map(detail), a.bytes)
            }
        };
        self.rec().done(phase, second, failure, bytes, raw, corrected);
    }
}

pub(crate) async fn run(spec: LoadSpec) -> Result<LoadReport, Error> {
    let client = Client::new(spec.request.clone(), &spec.trust, spec.observer.is_some()).await?;
    let phases = match &spec.model {
        Model::Open { schedule, .. } => schedule.phases().len(),
        Model::Closed { .. } => 1,
    };
    let started_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        client: client.clone(),
        recorder: Mutex::new(Recorder::new(phases)),
        start,
        deadline: start + spec.deadline(),
        timeout: spec.timeout,
        observer: spec.observer.clone(),
        seq_header: spec.seq_header.clone(),
    });
    let (stopped_by, scheduling) = match &spec.model {
        Model::Open { schedule, max_in_flight, late_tolerance } => {
            open(&shared, schedule, *max_in_flight, *late_tolerance, spec.max_requests).await
        }
        Model::Closed { workers, think_time, duration } => {
            let until = (start + *duration).min(shared.deadline);
            closed(&shared, *workers, *think_time, until, spec.max_requests).await
        }
    };
    let elapsed = start.elapsed();
    let recorder = std::mem::replace(&mut *shared.rec(), Recorder::new(phases));
    Ok(report(&spec, recorder, started_unix_ms, scheduling, elapsed, stopped_by, client.connections_opened()))
}

async fn open(
    shared: &Arc<Shared>,
    schedule: &Schedule,
    max_in_flight: usize,
    tolerance: Duration,
    max_requests: u64,
) -> (StopReason, Duration) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut burst = 0u32;
    let mut stop = (StopReason::Completed, schedule.duration());
    for (seq, a) in (0u64..).zip(schedule.iter()) {
        let intended = shared.start + a.at;
        if seq == max_requests {
            stop = (StopReason::MaxRequests, a.at);
            break;
        }
        if intended >= shared.deadline {
            stop = (StopReason::MaxDuration, shared.deadline - shared.start);
            break;
        }
        if intended > Instant::now() {
            sleep_until(intended).await;
            burst = 0;
        } else if burst >= BURST {
            tokio::task::yield_now().await;
            burst = 0;
        }
        burst += 1;
        let second = a.at.as_secs();
        shared.rec().scheduled(a.phase, second);
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => Some(s),
            Err(_) => {
                tokio::task::yield_now().await;
                slots.clone().try_acquire_owned().ok()
            }
        };
        let Some(slot) = slot else {
            shared.rec().dropped(a.phase, second);
            continue;
        };
        let sent = Instant::now();
        shared.rec().sent(a.phase, second, sent.saturating_duration_since(intended) > tolerance);
        let s = shared.clone();
        tokio::spawn(async move {
            let timer = sleep_until(sent + s.timeout);
            tokio::pin!(timer);
            s.request(timer, seq, a.phase, a.at, Some(intended), sent).await;
            drop(slot);
        });
    }
    let _ = timeout_at(shared.deadline + GRACE, slots.acquire_many(max_in_flight as u32)).await;
    stop
}

async fn closed(
    shared: &Arc<Shared>,
    workers: usize,
    think: Duration,
    until: Instant,
    max_requests: u64,
) -> (StopReason, Duration) {
    let issued = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (s, issued) = (shared.clone(), issued.clone());
        set.spawn(async move {
            let mut last_start = Duration::ZERO;
            let timer = sleep_until(until);
            tokio::pin!(timer);
            loop {
                let now = Instant::now();
                if now >= until {
                    return last_start;
                }
                let seq = issued.fetch_add(1, Ordering::Relaxed);
                if seq >= max_requests {
                    return last_start;
                }
                let at = now - s.start;
                let second = at.as_secs();
                {
                    let mut r = s.rec();
                    r.scheduled(0, second);
                    r.sent(0, second, false);
                }
                s.request(timer.as_mut(), seq, 0, at, None, now).await;
                last_start = at;
                if !think.is_zero() {
                    sleep_until((Instant::now() + think).min(until)).await;
                }
            }
        });
    }
    let mut span = Duration::ZERO;
    while let Some(r) = set.join_next().await {
        span = span.max(r.unwrap_or_default());
    }
    let by_count = issued.load(Ordering::Relaxed) >= max_requests;
    if by_count {
        (StopReason::MaxRequests, span.max(Duration::from_nanos(1)))
    } else if until < shared.deadline {
        (StopReason::Completed, until - shared.start)
    } else {
        (StopReason::MaxDuration, until - shared.start)
    }
}

fn report(
    spec: &LoadSpec,
    recorder: Recorder,
    started_unix_ms: u64,
    scheduling: Duration,
    elapsed: Duration,
    stopped_by: StopReason,
    connections_opened: u64,
) -> LoadReport {
    let (tallies, timeline, first_errors) = recorder.finish();
    let (model, spans): (ModelSummary, Vec<(String, f64)>) = match &spec.model {
        Model::Open { schedule, max_in_flight, late_tolerance } => {
            let mut begin = 0.0;
            let spans = schedule
                .phases()
                .iter()
                .map(|p| {
                    let played = (scheduling.as_secs_f64() - begin).clamp(0.0, p.duration.as_secs_f64());
                    begin += p.duration.as_secs_f64();
                    (p.name.clone(), played)
                })
                .collect();
            let summary = ModelSummary::Open {
                schedule: schedule.clone(),
                max_in_flight: *max_in_flight as u64,
                late_tolerance_s: late_tolerance.as_secs_f64(),
            };
            (summary, spans)
        }
        Model::Closed { workers, think_time, duration } => (
            ModelSummary::Closed {
                workers: *workers as u64,
                think_time_s: think_time.as_secs_f64(),
                duration_s: duration.as_secs_f64(),
            },
            vec![("closed".to_string(), scheduling.as_secs_f64())],
        ),
    };
    let open = matches!(spec.model, Model::Open { .. });
    let phases: Vec<PhaseReport> = tallies
        .into_iter()
        .zip(spans)
        .map(|(t, (name, duration_s))| PhaseReport {
            name,
            duration_s,
            counts: t.counts,
            latency: t.latency,
            corrected: open.then_some(t.corrected),
        })
        .collect();
    let mut totals = PhaseReport {
        name: "total".into(),
        duration_s: scheduling.as_secs_f64(),
        counts: Default::default(),
        latency: Default::default(),
        corrected: open.then(Default::default),
    };
    for p in &phases {
        totals.counts.merge(&p.counts);
        totals.latency.merge(&p.latency).expect("histograms of one run share their range");
        if let (Some(t), Some(c)) = (totals.corrected.as_mut(), p.corrected.as_ref()) {
            t.merge(c).expect("histograms of one run share their range");
        }
    }
    LoadReport {
        target: spec.request.describe(),
        model,
        started_unix_ms,
        scheduling_s: scheduling.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        stopped_by,
        sources: 1,
        connections_opened,
        phases,
        totals,
        timeline,
        first_errors,
    }
}
