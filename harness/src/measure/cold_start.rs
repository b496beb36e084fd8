//! `cold_start` on the local target: force a new environment (a configuration update retires the old ones,
//! as on AWS), invoke, and count the sample only if it provably came from a new, cold environment: the
//! fixture says `cold: true` and `invocations == 1`, its `env_id` was never seen before, and the REPORT
//! line carries an Init Duration. Anything else is rejected with the reason in the notes, never counted.
//! Init Duration comes from the REPORT line, the init code time from the fixture, bootstrap (runtime and
//! dependency loading) is their difference.

use std::collections::BTreeSet;

use serde_json::json;

use super::{
    local_session::{function_spec, put_samples, Invoked, Session, P},
    Error, MeasurementSet, Metric,
};
use crate::{criteria::Params, platform::LocalConfig, run_dir::RunDir};

/// A verified cold start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdSample {
    /// Client latency, ms.
    pub client_ms: f64,
    /// Init Duration from the REPORT line, ms.
    pub init_ms: f64,
    /// The function's own init code, ms.
    pub init_code_ms: f64,
}

/// Checks that `inv` came from a new, cold environment (`seen`: fixture env ids met before); the error
/// says why the sample is not a cold start.
pub fn verify_cold(inv: &Invoked, seen: &BTreeSet<String>) -> Result<ColdSample, String> {
    if !inv.ok() {
        return Err(format!(
            "invocation failed: status {} {}",
            inv.status,
            inv.function_error.as_deref().unwrap_or("")
        ));
    }
    let env = inv.env_id.as_deref().ok_or("the response names no env_id")?;
    if seen.contains(env) {
        return Err(format!("environment {env} served an earlier invocation: not new"));
    }
    if inv.cold != Some(true) {
        return Err(format!("environment {env} says cold: {:?}", inv.cold));
    }
    if inv.invocations != Some(1) {
        return Err(format!("environment {env} served {:?} invocations, not 1", inv.invocations));
    }
    let report = inv.report.as_ref().ok_or("no REPORT line in the log tail")?;
    let init_ms = report.init_duration_ms.ok_or("the REPORT line has no Init Duration")?;
    let init_code_ms = inv.init_code_ms.ok_or("the response has no init_code_ms")?;
    Ok(ColdSample { client_ms: inv.latency.as_secs_f64() * 1000.0, init_ms, init_code_ms })
}

/// Runs the procedure. Params: `function`, `samples` (30), `force_new_env` (true; false is a test hook
/// that leaves the environments alive, so every sample after the first must be rejected).
pub async fn run(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "cold_start", params };
    let function = p.str("function", "fixture-rust")?;
    let samples = p.count("samples", 30)?;
    let force = p.bool("force_new_env", true)?;
    let spec = function_spec(cfg, &function)?;
    let s = Session::start(cfg, |_| {}).await?;
    let r = series(&s, &function, &spec, samples, force).await;
    let mode = s.mode_note();
    s.shutdown().await;
    let (got, rejected) = r?;

    let mut set = MeasurementSet::new("cold_start", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "{} cold starts of `{function}` verified (cold: true, invocations == 1, env_id new, Init Duration in REPORT); {} rejected",
        got.len(),
        rejected.len()
    ));
    for (i, why) in rejected.iter().enumerate().take(5) {
        set.notes.push(format!("rejected sample {}: {why}", i + 1));
    }
    put_samples(&mut set, dir, "client_latency", got.iter().map(|c| c.client_ms).collect(), "ms")?;
    put_samples(&mut set, dir, "init_duration", got.iter().map(|c| c.init_ms).collect(), "ms")?;
    put_samples(&mut set, dir, "init_code", got.iter().map(|c| c.init_code_ms).collect(), "ms")?;
    put_samples(&mut set, dir, "bootstrap", got.iter().map(|c| (c.init_ms - c.init_code_ms).max(0.0)).collect(), "ms")?;
    set.metrics.insert(
        "baseline_reduction".into(),
        Metric::Missing {
            reason: "the baseline (single-stage) image is not deployed as a function on the local target; the build procedure compares the two images (build.image_size_reduction)".into(),
        },
    );
    Ok(set.finish())
}

async fn series(
    s: &Session,
    function: &str,
    spec: &crate::local::FunctionSpec,
    samples: u64,
    force: bool,
) -> Result<(Vec<ColdSample>, Vec<String>), Error> {
    let phase = crate::progress::phase(&format!("cold_start: {samples} cold starts of {function}"), Some(samples));
    let mut seen = BTreeSet::new();
    let (mut got, mut rejected) = (Vec::new(), Vec::new());
    // Rejections are retried, up to as many attempts again as samples asked for.
    for _ in 0..samples * 2 {
        if got.len() as u64 >= samples {
            break;
        }
        if force {
            phase.waiting_for("the configuration update to retire the environments");
            s.retire_all(function, spec).await?;
        }
        let inv = s.invoke(function, &json!({})).await?;
        match verify_cold(&inv, &seen) {
            Ok(c) => {
                got.push(c);
                phase.inc();
            }
            Err(why) => rejected.push(why),
        }
        if let Some(e) = inv.env_id {
            seen.insert(e);
        }
    }
    phase.finish();
    Ok((got, rejected))
}
