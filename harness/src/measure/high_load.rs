//! `high_load` on the local target: `rate` req/s for `duration_s` through the front door (plain HTTP with
//! the API key) with the open-model load generator, after a warm baseline at a low rate on the same path.
//!
//! The front door's stage throttle is raised above the asked rate for this procedure (noted): the test is of
//! the function under load, not of the throttle (SEC.rate_limiting_maintained checks the throttle). A
//! delivery shortfall of the generator is reported and makes `delivered_rate` fail its bound. Environments
//! are sampled every 250 ms during the baseline and the load (count, invocations served by each, Max Memory
//! Used); invocation counters are read from the platform's `/metrics` (bearer token) before and after and
//! compared with the responses the generator received.
//!
//! Auto-scaling is judged on environments *serving* (those whose invocation count rose within a 1 s window),
//! not on environments existing: container cold starts that overlap at the low baseline rate can leave many
//! idle environments behind, and an idle environment says nothing about how the platform answers the load.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    local_session::{function_spec, put_chart, put_samples, Session, P},
    Error, Ledger, MeasurementSet, Metric,
};
use crate::{
    criteria::Params,
    load::{Counts, ErrorClass, LoadReport, LoadSpec, Observe, Observed, Phase, RequestTemplate, Schedule},
    measure::raw::{Mark, Timeline, TIMELINE_FILE},
    platform::LocalConfig,
    run_dir::RunDir,
};

/// Latencies of successful responses of the measured phase (the last one), in ms.
struct Latencies(usize, Mutex<Vec<f64>>);

/// True when the load engine counts `r` as a success (in `Counts::ok`): what a latency sample is.
pub(super) fn succeeded(r: &Observed<'_>) -> bool {
    ErrorClass::of_response(r.status, r.headers.contains_key("x-amz-function-error")).is_none()
}

impl Observe for Latencies {
    fn observe(&self, r: &Observed<'_>) {
        if succeeded(r) && r.phase == self.0 {
            self.1.lock().unwrap_or_else(|p| p.into_inner()).push(r.latency.as_secs_f64() * 1000.0);
        }
    }
}

/// `availability` and `error_rate` of a load phase, over every request the schedule asked for: a request
/// the generator could not send (dropped) and a throttled one (429) are not successes, and a throttle is an
/// error; the classes are noted. Missing when nothing was scheduled.
pub fn availability_and_errors(set: &mut MeasurementSet, c: &Counts, what: &str) {
    let e = &c.errors;
    let failed = e.timeout + e.connection + e.other_status + e.function_error + e.throttled;
    let unanswered = c.scheduled.saturating_sub(c.ok + failed);
    set.notes.push(format!(
        "{what}: {} requests scheduled, {} sent, {} dropped by the generator; {} ok, {failed} failed ({} throttled, {} function errors, {} other statuses, {} timeouts, {} connection errors){}; availability and error rate count every scheduled request",
        c.scheduled,
        c.sent,
        c.dropped,
        c.ok,
        e.throttled,
        e.function_error,
        e.other_status,
        e.timeout,
        e.connection,
        if unanswered > c.dropped { format!(", {} without an answer", unanswered - c.dropped) } else { String::new() }
    ));
    let none = || Metric::Missing { reason: format!("{what}: no request was scheduled") };
    if c.scheduled == 0 {
        set.metrics.insert("availability".into(), none());
        set.metrics.insert("error_rate".into(), none());
        return;
    }
    let n = c.scheduled;
    set.metrics.insert("availability".into(), Metric::value(c.ok as f64 / n as f64 * 100.0, "%", n));
    set.metrics.insert("error_rate".into(), Metric::value((n - c.ok.min(n)) as f64 / n as f64 * 100.0, "%", n));
}

/// One phase of a load whose latencies make a figure: the successes' latencies (ms), the phase's counts and
/// its rate.
pub(super) struct LoadPhase<'a> {
    pub latencies: &'a [f64],
    pub counts: &'a Counts,
    pub rate: f64,
}

/// `latency` (the loaded phase's samples) and `p95_increase` (loaded P95 over the baseline's), once for every
/// platform. Every request the schedule asked for is in the figures' ledger: a request that failed, timed out,
/// was throttled or could not be sent counts as slower than every answer (its latency is at least the
/// answers'), so failures push the P95 up and, beyond 5% of the requests, leave no P95 at all: the check
/// fails saying so instead of reading the survivors. The baseline's P95 is over its answers alone (a lower
/// bound: its failures must not shrink the increase). `max_failures`, when the profile sets it, is a budget
/// on top.
pub(super) fn latency_figures(
    set: &mut MeasurementSet,
    dir: &RunDir,
    base: LoadPhase<'_>,
    loaded: LoadPhase<'_>,
    max_failures: Option<u64>,
) -> Result<(), Error> {
    let (bl, ll) = (Ledger::of_load(base.counts, None), Ledger::of_load(loaded.counts, max_failures));
    set.notes.extend(bl.notes(&format!("baseline latency at {} req/s", base.rate)));
    // The baseline's P95 is taken over its answers alone: counting its failures as slow would raise the base
    // of the ratio and make the increase look smaller. Without them it is a lower bound, so the increase is
    // at least what is reported.
    let bl = Ledger { censored: false, ..bl };
    if bl.failures() > 0 {
        set.notes.push(format!(
            "baseline P95 over its {} answers only ({} failed): a lower bound, so the increase is not understated",
            bl.counted,
            bl.failures()
        ));
    }
    set.notes.extend(ll.notes(&format!("latency at {} req/s", loaded.rate)));
    let conf = crate::stats::CONFIDENCE;
    let metric = match (bl.percentile(base.latencies, 95.0, conf), ll.percentile(loaded.latencies, 95.0, conf)) {
        (Ok(b), Ok(h)) if b.value > 0.0 => {
            set.notes.push(format!(
                "P95 over every request: {:.2} ms at {} req/s (n={}) vs {:.2} ms at {} req/s (n={})",
                b.value, base.rate, b.n, h.value, loaded.rate, h.n
            ));
            Metric::value((h.value - b.value) / b.value * 100.0, "%", h.n)
        }
        (Ok(b), Ok(_)) => {
            Metric::Missing { reason: format!("the baseline P95 is {} ms: no base for a ratio", b.value) }
        }
        (Err(e), _) => Metric::Missing { reason: format!("no baseline P95 at {} req/s: {e}", base.rate) },
        (_, Err(e)) => Metric::Missing { reason: format!("no P95 at {} req/s: {e}", loaded.rate) },
    };
    set.metrics.insert("p95_increase".into(), metric);
    set.ledgers.insert("p95_increase".into(), ll.clone());
    put_samples(set, dir, "latency", loaded.latencies.to_vec(), "ms")?;
    set.ledgers.insert("latency".into(), ll);
    Ok(())
}

/// Sum of the samples of `metric` whose labels include every `labels` pair, in Prometheus text.
pub fn prom_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One sample of a function's environments: seconds since the phase began, invocations served so far by
/// each environment (by id), and the mean Max Memory Used in MiB (NaN when none is known).
#[derive(Debug, Clone)]
pub struct EnvSample {
    /// Seconds since the sampled phase began.
    pub t_s: f64,
    /// Invocations served so far, by environment id.
    pub served: BTreeMap<String, u64>,
    /// Mean Max Memory Used of the environments, MiB.
    pub mem_mib: f64,
}

/// For each window of `window_s` seconds (consecutive, from the first sample), how many environments served
/// at least one invocation in it: those whose count rose, or that appeared with a count above zero.
pub fn serving_per_window(samples: &[EnvSample], window_s: f64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, s) in samples.iter().enumerate() {
        if s.t_s - samples[start].t_s + 1e-9 >= window_s {
            let before = &samples[start].served;
            out.push(s.served.iter().filter(|(id, n)| **n > before.get(*id).copied().unwrap_or(0)).count());
            start = i;
        }
    }
    out
}

fn median_usize(v: &[usize]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2] as f64),
        n => Some((v[n / 2 - 1] + v[n / 2]) as f64 / 2.0),
    }
}

/// Notes how the generator delivered (`what` first) and records `delivered_rate`: the rate sent, or, when fewer
/// than 99.5% of the requests went out on time, only the on-time share of the asked rate. The measured (last)
/// phase's counts.
pub(super) fn delivery<'r>(set: &mut MeasurementSet, report: &'r LoadReport, what: &str) -> Result<&'r Counts, Error> {
    let d = report.delivery();
    let shortfall = report.check_delivery(0.995).is_err();
    let c = &report.phases.last().ok_or_else(|| Error::Failed("the load report has no phase".into()))?.counts;
    set.notes.push(format!(
        "{what}: scheduled {}, sent {}, dropped {}, late {}, delivered {:.1} req/s{}; measured phase: {} sent, {} ok, errors {:?}",
        d.scheduled,
        d.sent,
        d.dropped,
        d.late,
        d.delivered_rate,
        if shortfall {
            " (SHORTFALL: fewer than 99.5% of the requests went out on time; delivered_rate counts on-time requests only)"
        } else {
            ""
        },
        c.sent,
        c.ok,
        c.errors
    ));
    let delivered = if shortfall { d.on_time_fraction * d.asked_rate } else { d.delivered_rate };
    set.metrics.insert("delivered_rate".into(), Metric::value(delivered, "req/s", d.sent));
    Ok(c)
}

/// Times the low-rate baseline is measured before it is given up as never warm.
const BASE_ATTEMPTS: usize = 3;

/// Environments present in the last sample that the first sample at or after `from_s` did not have: those
/// started during the part of the phase from `from_s` on; `None` when no sample covers that part (unknown,
/// which the caller must not take for "none started").
pub fn started_after(samples: &[EnvSample], from_s: f64) -> Option<usize> {
    let first = samples.iter().find(|x| x.t_s >= from_s)?;
    let last = samples.last()?;
    Some(last.served.keys().filter(|id| !first.served.contains_key(*id)).count())
}

/// Runs `work` while sampling the environments of `function` every 250 ms.
async fn sampled<T>(s: &Session, function: &str, work: impl Future<Output = T>) -> (T, Vec<EnvSample>) {
    tokio::pin!(work);
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let take = |samples: &mut Vec<EnvSample>| {
        let envs = s.envs(function);
        let mem: Vec<f64> =
            envs.iter().filter_map(|e| e.max_memory_used_bytes).map(|b| b as f64 / 1_048_576.0).collect();
        let mem_mib = if mem.is_empty() { f64::NAN } else { mem.iter().sum::<f64>() / mem.len() as f64 };
        samples.push(EnvSample {
            t_s: t0.elapsed().as_secs_f64(),
            served: envs.into_iter().map(|e| (e.id, e.invocations)).collect(),
            mem_mib,
        });
    };
    take(&mut samples);
    let out = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tokio::time::sleep(Duration::from_millis(250)) => take(&mut samples),
        }
    };
    take(&mut samples);
    (out, samples)
}

/// Growth in % of the mean of the last third of `values` over the mean of the first third.
pub fn growth_pct(values: &[f64]) -> Option<f64> {
    let third = values.len() / 3;
    if third == 0 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (first, last) = (mean(&values[..third]), mean(&values[values.len() - third..]));
    (first > 0.0).then(|| (last - first) / first * 100.0)
}

async fn scrape(s: &Session) -> Result<String, Error> {
    let url = s.t.platform.metrics_url();
    let req = RequestTemplate::get(&url)
        .and_then(|r| r.header("authorization", &format!("Bearer {}", s.t.platform.metrics_token())))
        .map_err(|e| Error::Failed(format!("metrics request: {e}")))?;
    let obs = Arc::new(Body::default());
    let rep = LoadSpec::closed(req, 1)
        .max_requests(1)
        .observer(obs.clone())
        .run()
        .await
        .map_err(|e| Error::Unavailable { what: url.clone(), detail: e.to_string() })?;
    let body = obs.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    body.filter(|_| rep.totals.counts.ok == 1)
        .ok_or_else(|| Error::Unavailable { what: url, detail: "no successful scrape of /metrics".into() })
}

#[derive(Default)]
struct Body(Mutex<Option<String>>);

impl Observe for Body {
    fn observe(&self, r: &Observed<'_>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(String::from_utf8_lossy(r.body).into_owned());
    }
}

/// A warm-up phase (`warm_s`, not measured) then the measured phase, both at `rate`.
async fn load(
    s: &Session,
    function: &str,
    rate: f64,
    warm_s: f64,
    secs: f64,
    payload: &str,
    obs: Arc<Latencies>,
) -> Result<LoadReport, Error> {
    let url = format!("{}/{function}", s.t.platform.front_door_http());
    let req = RequestTemplate::post(&url, payload.to_string())
        .and_then(|r| r.header("x-api-key", s.t.platform.api_key()))
        .and_then(|r| r.header("content-type", "application/json"))
        .map_err(|e| Error::Failed(format!("request template: {e}")))?;
    let schedule = Schedule::new(vec![
        Phase::constant("warm-up", Duration::from_secs_f64(warm_s), rate),
        Phase::constant("measured", Duration::from_secs_f64(secs), rate),
    ])
    .map_err(|e| Error::Param { procedure: "high_load".into(), param: "rate".into(), problem: e.to_string() })?;
    LoadSpec::open(req, schedule)
        .observer(obs)
        .run()
        .await
        .map_err(|e| Error::Failed(format!("load run on {url}: {e}")))
}

/// Runs the procedure. Params: `function`, `rate` (1000), `duration_s` (20), `baseline_rate` (50),
/// `baseline_s` (5), `warmup_s` (3: each run starts with a warm-up phase at its rate, not measured, so
/// the environments the rate needs are started before the figures are taken), `work_ms` (1, sleep),
/// `max_failures` (none: failed requests count in the latency figures as slower than every answer).
pub async fn run(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "high_load", params };
    p.only(&["rate", "duration_s", "baseline_rate", "baseline_s", "warmup_s", "work_ms", "max_failures"])?;
    let function = p.str("function", "fixture-rust")?;
    let rate = p.f64("rate", 1000.0)?;
    let secs = p.f64("duration_s", 20.0)?;
    let base_rate = p.f64("baseline_rate", 50.0)?;
    let base_s = p.f64("baseline_s", 5.0)?;
    let work_ms = p.f64("work_ms", 1.0)? as u64;
    let warm_s = p.f64("warmup_s", 3.0)?;
    let max_failures = p.opt_u64("max_failures")?;
    let spec = function_spec(cfg, &function)?;
    let mut account = 1000u32;
    let mut throttle = (0.0, 0u32);
    let s = Session::start(cfg, |c| {
        account = c.account_concurrency;
        c.stage_rate_limit = c.stage_rate_limit.max(rate * 2.0);
        c.stage_burst_limit = c.stage_burst_limit.max((rate * 2.0) as u32);
        throttle = (c.stage_rate_limit, c.stage_burst_limit);
    })
    .await?;
    let limit = spec.reserved_concurrency.unwrap_or(account);
    let payload = json!({ "work_ms": work_ms, "work_mode": "sleep" }).to_string();
    let r = async {
        let phase = crate::progress::phase(
            &format!("high_load: baseline {base_rate} req/s, then {rate} req/s for {secs} s on {function}"),
            None,
        );
        // One environment first: a rate arriving at a function with none starts one per request until the
        // first is up (as on Lambda), and the baseline would begin at the concurrency cap.
        // A function error leaves its environment up, so only an invocation that never got one is retried
        // (up to 5 times); the load's ledger accounts for the function's failures.
        let mut first = s.invoke(&function, &json!({})).await?;
        for _ in 0..4 {
            if first.ok() || !s.envs(&function).is_empty() {
                break;
            }
            first = s.invoke(&function, &json!({})).await?;
        }
        if s.envs(&function).is_empty() {
            return Err(Error::Failed(format!(
                "{function}: no environment came up for the first invocations (last status {})",
                first.status
            )));
        }
        // The baseline must be warm: on a loaded machine, overlapping container starts at the low rate can
        // cascade (each slow start makes the next request find every environment busy), and a P95 of cold
        // starts is no warm baseline. It is measured again, up to BASE_ATTEMPTS times, until no environment
        // started during its measured part; the environments the cascade left behind serve the next attempt.
        let mut base_attempts = Vec::new();
        let (base, base_samples, base_lat) = loop {
            let base_obs = Arc::new(Latencies(1, Mutex::default()));
            let (base, base_samples) = sampled(
                &s,
                &function,
                load(&s, &function, base_rate, warm_s.min(2.0), base_s, &payload, base_obs.clone()),
            )
            .await;
            let base = base?;
            // No sample of the measured part counts as not warm: an unverified baseline is no baseline.
            let started = started_after(&base_samples, warm_s.min(2.0)).unwrap_or(usize::MAX);
            base_attempts.push(started);
            let base_lat = std::mem::take(&mut *base_obs.1.lock().unwrap_or_else(|p| p.into_inner()));
            if started == 0 || base_attempts.len() >= BASE_ATTEMPTS {
                break (base, base_samples, base_lat);
            }
        };
        let idle_envs = s.envs(&function).len();
        let before = scrape(&s).await?;
        let obs = Arc::new(Latencies(1, Mutex::default()));
        let (report, samples) =
            sampled(&s, &function, load(&s, &function, rate, warm_s, secs, &payload, obs.clone())).await;
        let report = report?;
        // Requests still finishing in the platform settle before the final count.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = scrape(&s).await?;
        phase.finish();
        let lat = std::mem::take(&mut *obs.1.lock().unwrap_or_else(|p| p.into_inner()));
        Ok::<_, Error>((base, base_lat, base_samples, base_attempts, report, lat, samples, idle_envs, before, after))
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let (base, base_lat, base_samples, base_attempts, report, lat, samples, idle_envs, before, after) = r?;

    let mut set = MeasurementSet::new("high_load", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "front door (HTTP, x-api-key) POST /{function} with {{\"work_ms\": {work_ms}, \"work_mode\": \"sleep\"}}; stage throttle raised to {} req/s, burst {} for this procedure",
        throttle.0, throttle.1
    ));
    let c = delivery(&mut set, &report, &format!("asked {rate} req/s for {warm_s} s warm-up + {secs} s measured"))?;
    let cold_base = base_attempts.last().copied().unwrap_or(0);
    set.notes.push(format!(
        "low-rate baseline: {} attempt(s); environments started during each attempt's measured part: {base_attempts:?}",
        base_attempts.len()
    ));
    let base_counts = base.phases.last().map(|ph| ph.counts).unwrap_or_default();
    latency_figures(
        &mut set,
        dir,
        LoadPhase { latencies: &base_lat, counts: &base_counts, rate: base_rate },
        LoadPhase { latencies: &lat, counts: c, rate },
        max_failures,
    )?;
    if cold_base > 0 {
        set.metrics.insert(
            "p95_increase".into(),
            Metric::Missing {
                reason: format!(
                    "no warm baseline: environments kept starting during the {base_rate} req/s baseline in all {} attempts ({base_attempts:?}), so its P95 is one of cold starts (the machine is too loaded for this function's container starts)",
                    base_attempts.len()
                ),
            },
        );
    }
    // Every successful response of the run (warm-up included) against the platform's counter delta.
    let served = report.totals.counts.ok as f64;
    availability_and_errors(&mut set, c, "the measured phase");
    let peak = samples.iter().map(|s| s.served.len()).max().unwrap_or(0);
    // Windows of the measured phases only: the baseline's after its 2 s warm-up, the load's after its warm-up.
    let after_warmup = |v: &[EnvSample], w: f64| v.iter().filter(|x| x.t_s >= w).cloned().collect::<Vec<_>>();
    let base_serving = serving_per_window(&after_warmup(&base_samples, warm_s.min(2.0)), 1.0);
    let load_serving = serving_per_window(&after_warmup(&samples, warm_s), 1.0);
    set.notes.push(format!(
        "environments: {idle_envs} existing after the low-rate baseline, peak {peak} existing under load (limit {limit}); serving per 1 s window (median [min..max]): {} at {base_rate} req/s vs {} at {rate} req/s",
        window_summary(&base_serving),
        window_summary(&load_serving),
    ));
    set.metrics.insert(
        "scaled".into(),
        match (median_usize(&base_serving), median_usize(&load_serving)) {
            (Some(b), Some(l)) => Metric::flag(l > b, (base_serving.len() + load_serving.len()) as u64),
            _ => Metric::Missing {
                reason: format!(
                    "too few environment samples for 1 s windows: {} in the baseline, {} under load",
                    base_samples.len(),
                    samples.len()
                ),
            },
        },
    );
    set.metrics.insert(
        "over_limit".into(),
        Metric::value(peak.saturating_sub(limit as usize) as f64, "", samples.len() as u64),
    );
    let f = function.as_str();
    let counted = prom_sum(&after, "function_invocations_total", &[("function", f), ("status", "success")])
        - prom_sum(&before, "function_invocations_total", &[("function", f), ("status", "success")]);
    set.notes.push(format!("/metrics: {counted} successful invocations counted during the run; {served} successful responses received (warm-up and measured phases)"));
    set.metrics.insert(
        "metrics_deviation".into(),
        if served == 0.0 {
            Metric::Missing { reason: "no successful response to compare with".into() }
        } else {
            Metric::value((counted - served).abs() / served * 100.0, "%", served as u64)
        },
    );
    let mem: Vec<f64> = samples.iter().map(|s| s.mem_mib).filter(|m| m.is_finite()).collect();
    set.metrics.insert(
        "memory_growth".into(),
        match growth_pct(&mem) {
            Some(g) => Metric::value(g, "%", mem.len() as u64),
            None => Metric::Missing {
                reason: format!("{} memory samples of the environments: too few for thirds", mem.len()),
            },
        },
    );
    put_chart(
        &mut set,
        dir,
        TIMELINE_FILE,
        &Timeline {
            t_s: samples.iter().map(|s| s.t_s).collect(),
            envs: samples.iter().map(|s| s.served.len() as f64).collect(),
            load_rps: samples
                .iter()
                .map(|s| report.timeline.get(s.t_s as usize).map(|t| t.sent as f64).unwrap_or(0.0))
                .collect(),
            limit: spec.reserved_concurrency.map(f64::from),
            marks: vec![Mark { t_s: 0.0, label: format!("{rate} req/s") }],
        },
    )?;
    Ok(set.finish())
}

fn window_summary(v: &[usize]) -> String {
    match (median_usize(v), v.iter().min(), v.iter().max()) {
        (Some(m), Some(lo), Some(hi)) => format!("{m} [{lo}..{hi}] over {} windows", v.len()),
        _ => "no complete window".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64, served: &[(&str, u64)]) -> EnvSample {
        EnvSample { t_s, served: served.iter().map(|(k, v)| (k.to_string(), *v)).collect(), mem_mib: f64::NAN }
    }

    #[test]
    fn idle_environments_do_not_count_as_serving() {
        // Five environments exist throughout; only "a" serves in the first second, "a".."d" in the second.
        let all = |a, b, c, d| vec![("a", a), ("b", b), ("c", c), ("d", d), ("e", 1)];
        let samples = vec![
            at(0.0, &all(1, 1, 1, 1)),
            at(0.5, &all(5, 1, 1, 1)),
            at(1.0, &all(9, 1, 1, 1)),
            at(1.5, &all(20, 4, 3, 1)),
            at(2.0, &all(30, 8, 6, 2)),
        ];
        assert_eq!(serving_per_window(&samples, 1.0), vec![1, 4]);
    }

    #[test]
    fn environments_started_after_the_warm_up_are_counted() {
        let samples =
            vec![at(0.0, &[("a", 1)]), at(2.0, &[("a", 5), ("b", 1)]), at(3.0, &[("a", 9), ("b", 2), ("c", 1)])];
        assert_eq!(started_after(&samples, 2.0), Some(1));
        assert_eq!(started_after(&samples, 0.0), Some(2));
        assert_eq!(started_after(&samples, 9.0), None);
    }

    #[test]
    fn a_new_environment_that_served_counts_and_an_incomplete_window_is_dropped() {
        let samples = vec![at(0.0, &[("a", 3)]), at(1.0, &[("a", 3), ("b", 2)]), at(1.5, &[("a", 9), ("b", 2)])];
        assert_eq!(serving_per_window(&samples, 1.0), vec![1]);
        assert_eq!(median_usize(&[]), None);
        assert_eq!(median_usize(&[3, 1, 2, 10]), Some(2.5));
    }

    /// Failures in the baseline must not shrink the increase: 94 answers at 10 ms, one at 30 ms and 5
    /// throttled would put a censored baseline P95 at 30 ms and the increase at 0%; over its answers it is
    /// 10 ms, and the loaded phase (every answer 30 ms) is +200%.
    #[test]
    fn baseline_failures_do_not_shrink_the_increase() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(&tmp.path().join("run")).unwrap();
        let mut base_lat = vec![10.0; 94];
        base_lat.push(30.0);
        let mut base = Counts { scheduled: 100, sent: 100, ok: 95, ..Counts::default() };
        base.errors.throttled = 5;
        let loaded_lat = vec![30.0; 100];
        let loaded = Counts { scheduled: 100, sent: 100, ok: 100, ..Counts::default() };
        let mut set = MeasurementSet::new("high_load", "local", &Params::default());
        latency_figures(
            &mut set,
            &dir,
            LoadPhase { latencies: &base_lat, counts: &base, rate: 5.0 },
            LoadPhase { latencies: &loaded_lat, counts: &loaded, rate: 50.0 },
            None,
        )
        .unwrap();
        let Some(Metric::Value { value, .. }) = set.metrics.get("p95_increase") else { panic!("{:?}", set.metrics) };
        assert!((value - 200.0).abs() < 1e-9, "{value}");
        assert!(set.notes.iter().any(|n| n.contains("a lower bound")), "{:#?}", set.notes);
    }
}
