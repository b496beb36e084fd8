//! `high_load` on the aws and localstack targets: a warm baseline at a low rate, then `rate` req/s for
//! `duration_s` through the API URL with the API key (the open-model load generator), the latencies of the
//! measured phase, and what the platform says about the run: environments (the function's own `env_id` in
//! the responses), CloudWatch `Invocations` against the responses received, `ConcurrentExecutions` against
//! reserved concurrency, and Max Memory Used from the REPORT lines in the log group.
//!
//! The stage throttle is not raised (the suite changes only what its change guard can restore): 429s from
//! it are counted as throttled, not as errors, and the stage's settings are noted. CloudWatch publishes
//! with a delay: its figures are polled for up to `metrics_wait_s`, and are `Missing` (with the reason)
//! when no data point arrived, never assumed.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use super::{
    aws::{sleep_payload, Ctx},
    high_load::{delivery, growth_pct, latency_figures, LoadPhase},
    Error, MeasurementSet, Metric,
};
use crate::load::{LoadReport, LoadSpec, Observe, Observed, Phase, RequestTemplate, Schedule, Trust};

/// Variable naming a PEM file of CAs to trust for an `https` API URL signed by a private CA (the local
/// front door's); the system bundle otherwise.
pub const API_CA_VAR: &str = "HARNESS_API_CA";

/// A POST of `payload` to the outputs' API URL with the API key, and the CAs to trust.
pub(crate) async fn api_request(c: &Ctx<'_>, payload: &Value) -> Result<(RequestTemplate, Trust), Error> {
    let url = c.t.settings().api_url.clone();
    let key = c.t.api_key().await.map_err(|e| c.err(e))?;
    let req = RequestTemplate::post(&url, payload.to_string())
        .and_then(|r| r.header("x-api-key", key.expose()))
        .and_then(|r| r.header("content-type", "application/json"))
        .map_err(|e| Error::Unavailable {
            what: format!("the API URL `{url}` (output api_url)"),
            detail: e.to_string(),
        })?;
    let trust =
        std::env::var_os(API_CA_VAR).filter(|v| !v.is_empty()).map_or(Trust::System, |p| Trust::PemFile(p.into()));
    Ok((req, trust))
}

/// Per phase: latencies of successful responses (ms) and the environments that served them.
#[derive(Default)]
struct Seen(Mutex<Vec<(Vec<f64>, BTreeSet<String>)>>);

impl Observe for Seen {
    fn observe(&self, r: &Observed<'_>) {
        if !super::high_load::succeeded(r) {
            return;
        }
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while g.len() <= r.phase {
            g.push(Default::default());
        }
        g[r.phase].0.push(r.latency.as_secs_f64() * 1000.0);
        if let Some(f) = crate::platform::functions::SelfReport::from_payload(r.body) {
            g[r.phase].1.insert(f.env_id);
        }
    }
}

/// `high_load`. Params: `rate` (1000), `duration_s` (20), `baseline_rate` (50), `baseline_s` (5),
/// `warmup_s` (3), `work_ms` (1), `metrics_wait_s` (180 on aws, 10 on localstack), `max_failures` (none:
/// failed requests count in the latency figures as slower than every answer).
pub async fn high_load(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    c.p.only(&[
        "rate",
        "duration_s",
        "baseline_rate",
        "baseline_s",
        "warmup_s",
        "work_ms",
        "metrics_wait_s",
        "max_failures",
    ])?;
    let rate = c.p.f64("rate", 1000.0)?;
    let secs = c.p.f64("duration_s", 20.0)?;
    let base_rate = c.p.f64("baseline_rate", 50.0)?;
    let base_s = c.p.f64("baseline_s", 5.0)?;
    let warm_s = c.p.f64("warmup_s", 3.0)?;
    let work_ms = c.p.f64("work_ms", 1.0)?;
    let wait = c.p.f64("metrics_wait_s", if c.kind == "aws" { 180.0 } else { 10.0 })?;
    let max_failures = c.p.opt_u64("max_failures")?;
    let (req, trust) = api_request(c, &sleep_payload(work_ms)).await?;
    let url = req.describe();
    let phases = vec![
        Phase::constant("baseline", Duration::from_secs_f64(base_s), base_rate),
        Phase::constant("warm-up", Duration::from_secs_f64(warm_s), rate),
        Phase::constant("measured", Duration::from_secs_f64(secs), rate),
    ];
    let schedule = Schedule::new(phases).map_err(|e| Error::Param {
        procedure: "high_load".into(),
        param: "rate".into(),
        problem: e.to_string(),
    })?;
    let seen = Arc::new(Seen::default());
    let phase = crate::progress::phase(
        &format!("high_load: {base_rate} req/s, then {rate} req/s for {secs} s through {url}"),
        None,
    );
    let start = SystemTime::now();
    let report = LoadSpec::open(req, schedule)
        .trust(trust)
        .observer(seen.clone())
        .run()
        .await
        .map_err(|e| Error::Unavailable { what: format!("the API at {url}"), detail: e.to_string() })?;
    let end = SystemTime::now() + Duration::from_secs(1);
    phase.finish();
    let per_phase = std::mem::take(&mut *seen.0.lock().unwrap_or_else(|p| p.into_inner()));
    let mut set = c.set();
    loaded_figures(c, &mut set, &report, &per_phase, (base_rate, rate), &url, max_failures)?;
    platform_figures(c, &mut set, &report, start, end, wait).await?;
    Ok(set)
}

fn loaded_figures(
    c: &Ctx<'_>,
    set: &mut MeasurementSet,
    report: &LoadReport,
    per_phase: &[(Vec<f64>, BTreeSet<String>)],
    (base_rate, rate): (f64, f64),
    url: &str,
    max_failures: Option<u64>,
) -> Result<(), Error> {
    let counts = delivery(set, report, &format!("POST {url} with x-api-key: asked {rate} req/s"))?;
    let empty = (Vec::new(), BTreeSet::new());
    let base = per_phase.first().unwrap_or(&empty);
    let loaded = per_phase.get(2).unwrap_or(&empty);
    let base_counts = report.phases.first().map(|ph| ph.counts).unwrap_or_default();
    latency_figures(
        set,
        c.dir,
        LoadPhase { latencies: &base.0, counts: &base_counts, rate: base_rate },
        LoadPhase { latencies: &loaded.0, counts, rate },
        max_failures,
    )?;
    super::high_load::availability_and_errors(set, counts, &format!("the measured phase through {url}"));
    if base.1.is_empty() || loaded.1.is_empty() {
        set.metrics.insert(
            "scaled".into(),
            Metric::Missing { reason: "the responses name no environment (the function reports no env_id), so scaling is not observable from them".into() },
        );
    } else {
        set.notes.push(format!(
            "environments: {} served the baseline, {} the measured phase",
            base.1.len(),
            loaded.1.len()
        ));
        set.metrics.insert("scaled".into(), Metric::flag(loaded.1.len() > base.1.len(), loaded.0.len() as u64));
    }
    Ok(())
}

/// Polls `f` until it yields `Some` or `wait_s` has passed.
async fn poll<T, F, Fut>(wait_s: f64, mut f: F) -> Result<Option<T>, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, Error>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await? {
            return Ok(Some(v));
        }
        if start.elapsed().as_secs_f64() >= wait_s {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_secs(2).min(Duration::from_secs_f64(wait_s.max(0.1)))).await;
    }
}

async fn platform_figures(
    c: &Ctx<'_>,
    set: &mut MeasurementSet,
    report: &LoadReport,
    start: SystemTime,
    end: SystemTime,
    wait: f64,
) -> Result<(), Error> {
    let served = report.totals.counts.ok as f64;
    let q = [c.t.lambda_metric("Invocations", "Sum", 60), c.t.lambda_metric("ConcurrentExecutions", "Maximum", 60)];
    let series = poll(wait, || async {
        let s = c.t.metric_data(&q, start, end).await.map_err(|e| c.err(e))?;
        Ok(s.iter().any(|s| s.has_data()).then_some(s))
    })
    .await;
    let cw = "CloudWatch (GetMetricData AWS/Lambda";
    // The load figures stand without CloudWatch: its failure makes only its own figures missing.
    let no_data = |m: &str| match &series {
        Err(e) => format!("{cw} {m}) failed: {e}"),
        Ok(_) => format!("{cw} {m}) returned no data point for the run's window within {wait} s"),
    };
    let (invocations, peak) = match &series {
        Ok(Some(s)) => (
            s[0].has_data().then(|| s[0].points.iter().map(|p| p.1).sum::<f64>()),
            s[1].has_data().then(|| s[1].points.iter().map(|p| p.1).fold(0.0, f64::max)),
        ),
        _ => (None, None),
    };
    set.metrics.insert(
        "metrics_deviation".into(),
        match invocations {
            Some(_) if served == 0.0 => Metric::Missing { reason: "no successful response to compare with".into() },
            Some(n) => {
                set.notes.push(format!(
                    "{cw} Invocations): {n} invocations in the run's window; {served} successful responses received"
                ));
                Metric::value((n - served).abs() / served * 100.0, "%", served as u64)
            }
            None => Metric::Missing { reason: no_data("Invocations") },
        },
    );
    let reserved = c.t.reserved_concurrency().await.map_err(|e| c.err(e))?;
    set.metrics.insert(
        "over_limit".into(),
        match (peak, reserved) {
            (Some(p), Some(r)) => {
                set.notes.push(format!("{cw} ConcurrentExecutions): peak {p} against reserved concurrency {r}"));
                Metric::value((p - f64::from(r)).max(0.0), "", 1)
            }
            (None, _) => Metric::Missing { reason: no_data("ConcurrentExecutions") },
            (Some(_), None) => Metric::Missing { reason: "the function has no reserved concurrency: the limit is the account's, which this procedure does not read".into() },
        },
    );
    let logs = c.t.log_reports(start, end, 20_000).await;
    let mem: Vec<f64> = match &logs {
        Ok(l) => l.reports.iter().filter_map(|r| r.max_memory_used_mb).map(|m| m as f64).collect(),
        Err(_) => Vec::new(),
    };
    set.metrics.insert(
        "memory_growth".into(),
        match growth_pct(&mem) {
            Some(g) => Metric::value(g, "%", mem.len() as u64),
            None => Metric::Missing {
                reason: match logs {
                    Ok(_) => format!(
                        "{} REPORT lines with Max Memory Used in log group {} for the run's window: too few for thirds",
                        mem.len(),
                        c.t.settings().log_group
                    ),
                    Err(e) => format!("the REPORT lines of the run could not be read: {e}"),
                },
            },
        },
    );
    Ok(())
}
