//! `cold_start`, `warm_start` and `cold_start_rate` on the aws and localstack targets.
//!
//! Cold start: each sample forces new execution environments by a configuration update (an environment
//! variable bump through the [`Changes`] guard, waiting for `LastUpdateStatus: Successful`), then invokes
//! `$LATEST` with `LogType: Tail`. A sample counts only when the REPORT line carries an Init (or SnapStart
//! Restore) Duration and, when the function reports itself, it says `cold: true`, `invocations: 1` and an
//! environment id never seen before; anything else is rejected with the reason in the notes. Warm start:
//! invocations on an environment that served before (no Init Duration, `cold: false`). Cold start rate:
//! open-model traffic through the API URL with the API key, counted by the function's own `cold` field.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{json, Value};

use super::{
    aws::Ctx,
    aws_load::api_request,
    local_session::{put_samples, quantile},
    Error, MeasurementSet, Metric,
};
use crate::{
    load::{LoadSpec, Observe, Observed, Schedule},
    platform::aws::{Changes, Invocation},
};

/// A verified cold start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsCold {
    /// Client latency, ms.
    pub client_ms: f64,
    /// Init (or Restore) Duration from the REPORT line, ms.
    pub init_ms: f64,
    /// The function's own init code time, ms, when it reports it.
    pub init_code_ms: Option<f64>,
}

/// Checks that `inv` came from a new, cold environment (`seen`: environment ids met before); the error
/// says why it is not a cold start.
pub fn verify_cold(inv: &Invocation, seen: &BTreeSet<String>) -> Result<AwsCold, String> {
    if inv.status_code != 200 || inv.function_error.is_some() {
        return Err(format!(
            "invocation failed: status {} {}",
            inv.status_code,
            inv.function_error.as_deref().unwrap_or("")
        ));
    }
    let report = inv.report.as_ref().map_err(|e| format!("no REPORT line: {e}"))?;
    let init_ms = report.startup_ms().ok_or("the REPORT line has no Init Duration (not a new environment)")?;
    if let Some(f) = &inv.function {
        if seen.contains(&f.env_id) {
            return Err(format!("environment {} served an earlier invocation: not new", f.env_id));
        }
        if !f.cold || f.invocations != 1 {
            return Err(format!("environment {} says cold: {}, invocations: {}", f.env_id, f.cold, f.invocations));
        }
    }
    Ok(AwsCold {
        client_ms: inv.client_latency.as_secs_f64() * 1000.0,
        init_ms,
        init_code_ms: inv.function.as_ref().and_then(|f| f.init_code_ms),
    })
}

/// Checks that `inv` was served by a warm environment; returns (client latency, REPORT Duration) in ms.
pub fn verify_warm(inv: &Invocation) -> Result<(f64, f64), String> {
    if inv.status_code != 200 || inv.function_error.is_some() {
        return Err(format!("invocation failed: status {}", inv.status_code));
    }
    let report = inv.report.as_ref().map_err(|e| format!("no REPORT line: {e}"))?;
    if report.is_cold() {
        return Err("the REPORT line has an Init Duration: a cold start".into());
    }
    if let Some(f) = inv.function.as_ref().filter(|f| f.cold || f.invocations < 2) {
        return Err(format!("environment {} says cold: {}, invocations: {}", f.env_id, f.cold, f.invocations));
    }
    Ok((inv.client_latency.as_secs_f64() * 1000.0, report.duration_ms))
}

/// `cold_start`. Params: `samples` (30).
pub async fn cold_start(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    let samples = c.p.count("samples", 30)?;
    let mut ch = c.changes()?;
    let r = cold_series(c, &mut ch, samples).await;
    let (got, rejected, reporting) = c.restore(ch, r).await?;
    let mut set = c.set();
    set.notes.push(format!(
        "{} cold starts verified ({}); {} rejected; each forced by an update of environment variable HARNESS_COLD_START (LastUpdateStatus Successful awaited, restored at the end)",
        got.len(),
        if reporting == got.len() && !got.is_empty() {
            "Init Duration in REPORT, and the function's own cold: true, invocations: 1, new env_id".to_string()
        } else {
            format!("Init Duration in REPORT; {reporting} of them also by the function's own report")
        },
        rejected.len()
    ));
    for (i, why) in rejected.iter().enumerate().take(5) {
        set.notes.push(format!("rejected sample {}: {why}", i + 1));
    }
    let dir = c.dir;
    put_samples(&mut set, dir, "client_latency", got.iter().map(|s| s.client_ms).collect(), "ms")?;
    put_samples(&mut set, dir, "init_duration", got.iter().map(|s| s.init_ms).collect(), "ms")?;
    let code: Option<Vec<f64>> = got.iter().map(|s| s.init_code_ms).collect();
    match code.filter(|v| !v.is_empty()) {
        Some(code) => {
            let boot = got.iter().zip(&code).map(|(s, c)| (s.init_ms - c).max(0.0)).collect();
            put_samples(&mut set, dir, "init_code", code, "ms")?;
            put_samples(&mut set, dir, "bootstrap", boot, "ms")?;
        }
        None => {
            let why = "the function does not report its own init code time (init_code_ms) in every cold response";
            set.metrics.insert("init_code".into(), Metric::Missing { reason: why.into() });
            set.metrics.insert(
                "bootstrap".into(),
                Metric::Missing { reason: format!("{why}, so Init Duration cannot be split") },
            );
        }
    }
    set.metrics.insert(
        "baseline_reduction".into(),
        Metric::Missing { reason: "the baseline (single-stage) image is not deployed as a second function by the Terraform module; measured on the local target".into() },
    );
    Ok(set)
}

async fn cold_series(c: &Ctx<'_>, ch: &mut Changes, samples: u64) -> Result<(Vec<AwsCold>, Vec<String>, usize), Error> {
    let phase =
        crate::progress::phase(&format!("cold_start: {samples} forced cold starts of {}", c.function()), Some(samples));
    let mut seen = BTreeSet::new();
    let (mut got, mut rejected, mut reporting) = (Vec::new(), Vec::new(), 0);
    // Rejections are retried, up to as many attempts again as samples asked for.
    for _ in 0..samples * 2 {
        if got.len() as u64 >= samples {
            break;
        }
        phase.waiting_for("the configuration update (LastUpdateStatus Successful)");
        ch.force_cold_start().await.map_err(|e| c.err(e))?;
        let inv = match c.invoke(&json!({})).await? {
            Ok(inv) => inv,
            Err(throttled) => {
                rejected.push(throttled.to_string());
                continue;
            }
        };
        match verify_cold(&inv, &seen) {
            Ok(s) => {
                reporting += usize::from(inv.function.is_some());
                got.push(s);
                phase.inc();
            }
            Err(why) => rejected.push(why),
        }
        if let Some(f) = inv.function {
            seen.insert(f.env_id);
        }
    }
    phase.finish();
    Ok((got, rejected, reporting))
}

/// `warm_start`. Params: `samples` (300), `payload` (`{}`).
pub async fn warm_start(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    let samples = c.p.count("samples", 300)?;
    let payload = c.p.params.get("payload").cloned().unwrap_or_else(|| json!({}));
    let phase =
        crate::progress::phase(&format!("warm_start: {samples} warm invocations of {}", c.function()), Some(samples));
    let mut warm = false;
    for _ in 0..5 {
        if verify_warm(&c.invoke_ok(&payload).await?).is_ok() {
            warm = true;
            break;
        }
    }
    if !warm {
        return Err(Error::Failed(format!("{}: no warm invocation after 5 warm-up invocations", c.function())));
    }
    let (mut lat, mut dur, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        match c.invoke(&payload).await? {
            Ok(inv) => match verify_warm(&inv) {
                Ok((l, d)) => {
                    lat.push(l);
                    dur.push(d);
                }
                Err(why) => rejected.push(why),
            },
            Err(throttled) => rejected.push(throttled.to_string()),
        }
        phase.inc();
    }
    phase.finish();
    let mut set = c.set();
    set.notes.push(format!(
        "{} warm invocations verified (no Init Duration in REPORT; the function's own cold: false where it reports it); {} rejected{}",
        lat.len(),
        rejected.len(),
        rejected.first().map(|r| format!(" (first: {r})")).unwrap_or_default()
    ));
    if let (Some(p50), Some(p95)) = (quantile(&lat, 0.5), quantile(&lat, 0.95)) {
        set.notes.push(format!("client latency median {p50:.2} ms, P95 {p95:.2} ms"));
    }
    put_samples(&mut set, c.dir, "client_latency", lat, "ms")?;
    put_samples(&mut set, c.dir, "duration", dur, "ms")?;
    Ok(set)
}

/// Counts responses by the function's `cold` field (the body of the API's proxy response).
#[derive(Default)]
struct ColdCounter(Mutex<(u64, u64)>);

impl Observe for ColdCounter {
    fn observe(&self, r: &Observed<'_>) {
        if r.status.as_u16() != 200 {
            return;
        }
        let cold = crate::platform::aws::FunctionReport::from_payload(r.body).map(|f| f.cold);
        if let Some(cold) = cold {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if cold {
                g.0 += 1;
            } else {
                g.1 += 1;
            }
        }
    }
}

/// `cold_start_rate`. Params: `rate` (req/s, 20), `duration_s` (10), `payload`.
pub async fn cold_start_rate(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    let rate = c.p.f64("rate", 20.0)?;
    let secs = c.p.f64("duration_s", 10.0)?;
    let payload: Value = c.p.params.get("payload").cloned().unwrap_or_else(|| super::aws::sleep_payload(20.0));
    let (req, trust) = api_request(c, &payload).await?;
    let url = req.describe();
    let schedule = Schedule::constant(rate, Duration::from_secs_f64(secs)).map_err(|e| Error::Param {
        procedure: "cold_start_rate".into(),
        param: "rate".into(),
        problem: e.to_string(),
    })?;
    let counter = Arc::new(ColdCounter::default());
    let phase = crate::progress::phase(&format!("cold_start_rate: {rate} req/s for {secs} s through {url}"), None);
    let report = LoadSpec::open(req, schedule)
        .trust(trust)
        .observer(counter.clone())
        .run()
        .await
        .map_err(|e| Error::Unavailable { what: format!("the API at {url}"), detail: e.to_string() })?;
    phase.finish();
    let (cold, warm) = *counter.0.lock().unwrap_or_else(|p| p.into_inner());
    let mut set = c.set();
    set.notes.push(format!(
        "{rate} req/s for {secs} s (open model) through {url}: {} sent, {} ok, {cold} cold and {warm} warm responses by the function's `cold` field",
        report.totals.counts.sent, report.totals.counts.ok
    ));
    let n = cold + warm;
    set.metrics.insert(
        "rate".into(),
        if n == 0 {
            Metric::Missing {
                reason: format!("no successful response through {url} carried the function's `cold` field"),
            }
        } else {
            Metric::value(cold as f64 / n as f64 * 100.0, "%", n)
        },
    );
    Ok(set)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::platform::{aws::FunctionReport, report_line};

    /// An invocation whose log tail ends with a REPORT line (`init_ms`: Init Duration) and whose payload is
    /// the fixture's own report (`me`: env id, cold, invocations).
    pub(crate) fn inv(init_ms: Option<f64>, me: Option<(&str, bool, u64)>) -> Invocation {
        let init = init_ms.map(|ms| format!("\tInit Duration: {ms} ms")).unwrap_or_default();
        let tail = format!("REPORT RequestId: r1\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB{init}\t\n");
        let function =
            me.map(|(id, cold, n)| FunctionReport { env_id: id.into(), cold, invocations: n, init_code_ms: Some(1.5) });
        Invocation {
            client_latency: Duration::from_millis(12),
            status_code: 200,
            function_error: None,
            executed_version: None,
            payload: Vec::new(),
            report: report_line::last_report(&tail, "test tail"),
            init_report: None,
            log_tail: tail,
            function,
        }
    }

    #[test]
    fn a_cold_start_needs_init_duration_and_a_new_first_time_environment() {
        let none = BTreeSet::new();
        let ok = verify_cold(&inv(Some(80.0), Some(("e1", true, 1))), &none).unwrap();
        assert_eq!((ok.client_ms, ok.init_ms, ok.init_code_ms), (12.0, 80.0, Some(1.5)));
        assert!(verify_cold(&inv(None, Some(("e1", true, 1))), &none).unwrap_err().contains("no Init Duration"));
        let seen: BTreeSet<String> = ["e1".to_string()].into();
        assert!(verify_cold(&inv(Some(80.0), Some(("e1", true, 1))), &seen).unwrap_err().contains("not new"));
        assert!(verify_cold(&inv(Some(80.0), Some(("e2", false, 3))), &none).unwrap_err().contains("invocations: 3"));
        assert_eq!(
            verify_cold(&inv(Some(80.0), None), &none).unwrap().init_code_ms,
            None,
            "a function that does not report itself: REPORT only"
        );
        let mut failed = inv(Some(80.0), None);
        failed.function_error = Some("Unhandled".into());
        assert!(verify_cold(&failed, &none).unwrap_err().contains("Unhandled"));
    }

    #[test]
    fn a_warm_invocation_has_no_init_duration_and_a_reused_environment() {
        assert_eq!(verify_warm(&inv(None, Some(("e1", false, 4)))).unwrap(), (12.0, 2.5));
        assert!(verify_warm(&inv(Some(50.0), Some(("e1", true, 1)))).unwrap_err().contains("cold start"));
        assert!(verify_warm(&inv(None, Some(("e1", true, 1)))).unwrap_err().contains("cold: true"));
        let mut no_tail = inv(None, None);
        no_tail.report = report_line::last_report("", "empty tail");
        assert!(verify_warm(&no_tail).unwrap_err().contains("no REPORT"));
    }
}
