//! `warm_start` and `cold_start_rate` on the local target.
//!
//! Warm start: warm an environment up (invoke until one answers `cold: false`), then invoke `samples` times
//! one after another; a sample counts only if the fixture says `cold: false` and its environment served
//! earlier invocations, so no cold start hides in the warm figures. Client latency and the REPORT line's
//! Duration are kept. Cold start rate: an open-model traffic shape through the Invoke API; the share of
//! successful responses whose environment says `cold: true`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{json, Value};

use super::{
    local_session::{put_samples, Invoked, Session, P},
    Error, MeasurementSet, Metric,
};
use crate::{
    criteria::Params,
    load::{LoadSpec, Observe, Observed, RequestTemplate, Schedule},
    platform::LocalConfig,
    run_dir::RunDir,
};

/// Whether a response is a verified warm invocation.
pub fn verify_warm(inv: &Invoked) -> Result<(f64, f64), String> {
    if !inv.ok() {
        return Err(format!("invocation failed: status {}", inv.status));
    }
    if inv.cold != Some(false) || inv.invocations.unwrap_or(0) < 2 {
        return Err(format!("not warm: cold {:?}, invocations {:?}", inv.cold, inv.invocations));
    }
    let d = inv.report.as_ref().map(|r| r.duration_ms).ok_or("no REPORT line in the log tail")?;
    Ok((inv.latency.as_secs_f64() * 1000.0, d))
}

/// Runs `warm_start`. Params: `function`, `samples` (300), `payload` (an event, `{}`).
pub async fn run(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "warm_start", params };
    let function = p.str("function", "fixture-rust")?;
    let samples = p.count("samples", 300)?;
    let payload = params.get("payload").cloned().unwrap_or_else(|| json!({}));
    let s = Session::start(cfg, |_| {}).await?;
    let r = series(&s, &function, samples, &payload).await;
    let mode = s.mode_note();
    s.shutdown().await;
    let (lat, dur, rejected) = r?;
    let mut set = MeasurementSet::new("warm_start", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "{} warm invocations of `{function}` verified (cold: false, environment served before); {} rejected{}",
        lat.len(),
        rejected.len(),
        rejected.first().map(|r| format!(" (first: {r})")).unwrap_or_default()
    ));
    put_samples(&mut set, dir, "client_latency", lat, "ms")?;
    put_samples(&mut set, dir, "duration", dur, "ms")?;
    Ok(set.finish())
}

async fn series(
    s: &Session,
    function: &str,
    samples: u64,
    payload: &Value,
) -> Result<(Vec<f64>, Vec<f64>, Vec<String>), Error> {
    let phase = crate::progress::phase(&format!("warm_start: {samples} warm invocations of {function}"), Some(samples));
    let mut warm = false;
    for _ in 0..5 {
        let inv = s.invoke(function, payload).await?;
        if inv.ok() && inv.cold == Some(false) {
            warm = true;
            break;
        }
    }
    if !warm {
        return Err(Error::Failed(format!("{function}: no warm environment after 5 warm-up invocations")));
    }
    let (mut lat, mut dur, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        let inv = s.invoke(function, payload).await?;
        match verify_warm(&inv) {
            Ok((l, d)) => {
                lat.push(l);
                dur.push(d);
            }
            Err(why) => rejected.push(why),
        }
        phase.inc();
    }
    phase.finish();
    Ok((lat, dur, rejected))
}

/// Counts cold and warm responses by the fixture's `cold` field.
#[derive(Default)]
struct ColdCounter(Mutex<(u64, u64)>);

impl Observe for ColdCounter {
    fn observe(&self, r: &Observed<'_>) {
        if r.status.as_u16() != 200 {
            return;
        }
        let cold = serde_json::from_slice::<Value>(r.body).ok().and_then(|v| v.get("cold").and_then(Value::as_bool));
        if let Some(c) = cold {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if c {
                g.0 += 1;
            } else {
                g.1 += 1;
            }
        }
    }
}

/// Runs `cold_start_rate`. Params: `function`, `rate` (req/s, 20), `duration_s` (10), `payload`.
pub async fn run_rate(params: &Params, cfg: &LocalConfig, _dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "cold_start_rate", params };
    let function = p.str("function", "fixture-rust")?;
    let rate = p.f64("rate", 20.0)?;
    let secs = p.f64("duration_s", 10.0)?;
    let payload = params.get("payload").cloned().unwrap_or_else(|| json!({"work_ms": 20, "work_mode": "sleep"}));
    let s = Session::start(cfg, |_| {}).await?;
    let counter = Arc::new(ColdCounter::default());
    let r = async {
        let req = RequestTemplate::invoke(&s.t.platform.invoke_url(), &function, None, payload.to_string())
            .map_err(|e| Error::Failed(format!("request template: {e}")))?;
        let schedule = Schedule::constant(rate, Duration::from_secs_f64(secs)).map_err(|e| Error::Param {
            procedure: "cold_start_rate".into(),
            param: "rate".into(),
            problem: e.to_string(),
        })?;
        let phase = crate::progress::phase(&format!("cold_start_rate: {rate} req/s for {secs} s on {function}"), None);
        let report = LoadSpec::open(req, schedule)
            .observer(counter.clone())
            .run()
            .await
            .map_err(|e| Error::Failed(format!("load run: {e}")))?;
        phase.finish();
        Ok::<_, Error>(report)
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let report = r?;
    let (cold, warm) = *counter.0.lock().unwrap_or_else(|p| p.into_inner());
    let mut set = MeasurementSet::new("cold_start_rate", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "{rate} req/s for {secs} s (open model) on `{function}`: {} sent, {cold} cold and {warm} warm responses by the fixture's `cold` field",
        report.totals.counts.sent
    ));
    let n = cold + warm;
    set.metrics.insert(
        "rate".into(),
        if n == 0 {
            Metric::Missing { reason: "no successful response carried the fixture's `cold` field".into() }
        } else {
            Metric::value(cold as f64 / n as f64 * 100.0, "%", n)
        },
    );
    Ok(set.finish())
}
