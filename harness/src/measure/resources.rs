//! `resources` and `memory_sweep` on the local target.
//!
//! Resources: `workers` closed-loop clients invoke a function sized so its work fills what it is given
//! (see `fixture-rust-busy` in fixtures/targets/local.yaml) for `duration_s`. Memory utilization per
//! invocation is the REPORT line's Max Memory Used / Memory Size; CPU utilization per environment is the
//! CPU time its cgroup used over the window / (window x its CPU share); utilization per environment is the
//! mean of the two. Starvation counts failed invocations (errors, timeouts, 429) and environments lost
//! during the window (crashes, OOM kills). Process mode has no limits: CPU figures are Missing and
//! `limits_missing` counts the function.
//!
//! Memory sweep: the same fixed amount of CPU work (`work_units`) at several memory sizes (set through
//! UpdateFunctionConfiguration MemorySize), median Duration and cost (GB-s x price) per size; the
//! recommendations for cost, speed and balance follow the Lambda power-tuning method (balance: the least
//! sum of cost and duration, each normalized by its maximum over the sizes).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    local_session::{function_spec, put_chart, put_samples, quantile, Invoked, Session, P},
    Error, MeasurementSet, Metric,
};
use crate::{
    criteria::Params,
    platform::LocalConfig,
    report::charts::{Sweep, SweepPoint, SWEEP_FILE},
    run_dir::RunDir,
};

/// Runs `resources`. Params: `function` (`fixture-rust-busy`), `workers` (6), `duration_s` (10).
pub async fn resources(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "resources", params };
    let function = p.str("function", "fixture-rust-busy")?;
    let workers = p.count("workers", 6)? as usize;
    let secs = p.f64("duration_s", 10.0)?;
    let spec = function_spec(cfg, &function)?;
    let s = Session::start(cfg, |_| {}).await?;
    let r = async {
        let phase = crate::progress::phase(
            &format!("resources: {workers} closed-loop clients on {function} for {secs} s"),
            None,
        );
        // Warm-up: the environments start (their init CPU is outside the window).
        let _ = drive(&s, &function, workers, Duration::from_millis(1500)).await;
        let before: BTreeMap<String, (Option<Duration>, Option<f64>)> =
            s.envs(&function).into_iter().map(|e| (e.id, (e.cpu_time, e.cpu_share))).collect();
        let t = Instant::now();
        let results = drive(&s, &function, workers, Duration::from_secs_f64(secs)).await;
        let wall = t.elapsed().as_secs_f64();
        let after = s.envs(&function);
        phase.finish();
        Ok::<_, Error>((before, after, results, wall))
    }
    .await;
    let mode = s.mode_note();
    let containers = s.containers();
    s.shutdown().await;
    let (before, after, results, wall) = r?;

    let mut set = MeasurementSet::new("resources", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "`{function}`: memory {} MB, environment {:?}; sized so its work fills what it is given (resident allocation near the memory size, CPU-bound handler), so a utilization below the bound means the measurement, not the fixture, is off",
        spec.memory_mb, spec.environment
    ));
    let mem: Vec<f64> = results
        .iter()
        .filter_map(|r| r.report.as_ref())
        .filter(|r| r.memory_size_mb > 0)
        .map(|r| r.max_memory_used_mb as f64 / r.memory_size_mb as f64 * 100.0)
        .collect();
    let failed = results.iter().filter(|r| !r.ok()).count();
    let lost = before.keys().filter(|id| !after.iter().any(|e| &e.id == *id)).count();
    let mut cpu = Vec::new();
    let mut util = Vec::new();
    for e in &after {
        let Some((Some(c0), _)) = before.get(&e.id) else { continue };
        let (Some(c1), Some(share)) = (e.cpu_time, e.cpu_share) else { continue };
        let c = (c1.saturating_sub(*c0)).as_secs_f64() / (wall * share) * 100.0;
        cpu.push(c);
        if let Some(m) = e.max_memory_used_bytes {
            util.push((c + m as f64 / (e.memory_mb as f64 * 1_048_576.0) * 100.0) / 2.0);
        }
    }
    set.notes.push(format!(
        "{} invocations in {wall:.1} s by {workers} clients; {failed} failed, {lost} environments lost during the window; {} environments with CPU figures",
        results.len(),
        cpu.len()
    ));
    put_samples(&mut set, dir, "memory_utilization", mem, "%")?;
    if containers && !cpu.is_empty() {
        put_samples(&mut set, dir, "cpu_utilization", cpu, "%")?;
        put_samples(&mut set, dir, "utilization", util, "%")?;
    } else {
        let why = if containers {
            "no environment's cgroup CPU time could be read (cpuacct.usage / cpu.stat) at both ends of the window"
                .to_string()
        } else {
            "process mode: environments have no CPU share to utilize (start the Docker engine for container mode)"
                .to_string()
        };
        set.metrics.insert("cpu_utilization".into(), Metric::Missing { reason: why.clone() });
        set.metrics.insert("utilization".into(), Metric::Missing { reason: why });
    }
    set.metrics.insert("limits_missing".into(), Metric::value(if containers { 0.0 } else { 1.0 }, "", 1));
    set.metrics.insert("starvation".into(), Metric::value((failed + lost) as f64, "", results.len() as u64));
    Ok(set.finish())
}

/// `workers` clients invoking back to back until `d` has passed.
async fn drive(s: &Session, function: &str, workers: usize, d: Duration) -> Vec<Invoked> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let end = Instant::now() + d;
    let tasks = (0..workers).map(|_| {
        let out = out.clone();
        async move {
            while Instant::now() < end {
                let r = s.invoke(function, &json!({})).await;
                let inv = r.unwrap_or_else(|_| Invoked {
                    status: 0,
                    latency: Duration::ZERO,
                    function_error: Some("transport".into()),
                    report: None,
                    env_id: None,
                    cold: None,
                    invocations: None,
                    init_code_ms: None,
                });
                out.lock().unwrap_or_else(|p| p.into_inner()).push(inv);
            }
        }
    });
    futures::future::join_all(tasks).await;
    let v = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
    v
}

/// Recommendations of a sweep: indexes of the cheapest, fastest and balanced points.
pub fn recommend(points: &[SweepPoint]) -> Option<(usize, usize, usize)> {
    if points.is_empty() {
        return None;
    }
    let argmin = |f: &dyn Fn(&SweepPoint) -> f64| {
        (0..points.len()).min_by(|a, b| f(&points[*a]).total_cmp(&f(&points[*b]))).unwrap_or(0)
    };
    let max_cost = points.iter().map(|p| p.cost_gbs).fold(f64::MIN, f64::max).max(f64::MIN_POSITIVE);
    let max_dur = points.iter().map(|p| p.duration_ms).fold(f64::MIN, f64::max).max(f64::MIN_POSITIVE);
    Some((
        argmin(&|p| p.cost_gbs),
        argmin(&|p| p.duration_ms),
        argmin(&|p| p.cost_gbs / max_cost + p.duration_ms / max_dur),
    ))
}

/// Runs `memory_sweep`. Params: `function`, `sizes` ([128, 256, 512, 1024, 1769]), `work_units` (20),
/// `samples` (5 per size), `price_per_gbs` (0.0000166667 USD, Lambda x86).
pub async fn memory_sweep(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "memory_sweep", params };
    let function = p.str("function", "fixture-rust")?;
    let sizes = p.list("sizes", &[128.0, 256.0, 512.0, 1024.0, 1769.0])?;
    let units = p.count("work_units", 20)?;
    let samples = p.count("samples", 5)?;
    let price = p.f64("price_per_gbs", 0.0000166667)?;
    let spec = function_spec(cfg, &function)?;
    let s = Session::start(cfg, |_| {}).await?;
    if !s.containers() {
        let why = s.mode_note();
        s.shutdown().await;
        return Err(Error::Unavailable {
            what: "container mode (CPU share by memory size)".into(),
            detail: format!(
                "{why}; in process mode every memory size gets the same CPU, so a sweep would measure nothing"
            ),
        });
    }
    let r = async {
        let phase = crate::progress::phase(
            &format!("memory_sweep: {} sizes of {function}", sizes.len()),
            Some(sizes.len() as u64),
        );
        let mut points = Vec::new();
        for &mb in &sizes {
            s.update(&function, &json!({ "MemorySize": mb as u64 }), Duration::from_secs(30)).await?;
            let payload = json!({ "work_units": units });
            let first = s.invoke(&function, &payload).await?;
            if !first.ok() {
                return Err(Error::Failed(format!(
                    "{function} at {mb} MB: status {} {:?}",
                    first.status, first.function_error
                )));
            }
            let (mut d, mut billed) = (Vec::new(), Vec::new());
            for _ in 0..samples {
                let inv = s.invoke(&function, &payload).await?;
                let rep = inv.report.as_ref().filter(|_| inv.ok() && inv.cold == Some(false)).ok_or_else(|| {
                    Error::Failed(format!(
                        "{function} at {mb} MB: a warm invocation failed or had no REPORT line (status {})",
                        inv.status
                    ))
                })?;
                if rep.memory_size_mb != mb as u64 {
                    return Err(Error::Failed(format!(
                        "{function}: REPORT says Memory Size {} MB after the update to {mb} MB",
                        rep.memory_size_mb
                    )));
                }
                d.push(rep.duration_ms);
                billed.push(rep.billed_duration_ms);
            }
            let med = quantile(&d, 0.5).unwrap_or(f64::NAN);
            let bmed = quantile(&billed, 0.5).unwrap_or(f64::NAN);
            points.push(SweepPoint { memory_mb: mb, duration_ms: med, cost_gbs: mb / 1024.0 * bmed / 1000.0 });
            phase.inc();
        }
        phase.finish();
        Ok::<_, Error>(points)
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let points = r?;
    let mut set = MeasurementSet::new("memory_sweep", "local", params);
    set.notes.push(mode);
    let (cheap, fast, bal) = recommend(&points).ok_or_else(|| Error::Failed("the sweep has no points".into()))?;
    for pt in &points {
        set.notes.push(format!(
            "{} MB: median duration {:.1} ms, {:.3e} GB-s = {:.3e} USD per invocation",
            pt.memory_mb,
            pt.duration_ms,
            pt.cost_gbs,
            pt.cost_gbs * price
        ));
    }
    let configured = spec.memory_mb as f64;
    let balanced = points[bal].memory_mb;
    set.notes.push(format!(
        "{units} work units x {samples} warm invocations per size; recommended: {} MB for cost, {} MB for speed, {balanced} MB balanced; `{function}` is configured with {configured} MB",
        points[cheap].memory_mb, points[fast].memory_mb
    ));
    let n = points.len() as u64 * samples;
    set.metrics.insert("recommended".into(), Metric::flag(true, n));
    set.metrics.insert("over_allocation".into(), Metric::value((configured - balanced) / balanced * 100.0, "%", n));
    put_chart(
        &mut set,
        dir,
        SWEEP_FILE,
        &Sweep { points, recommended_mb: Some(balanced), configured_mb: Some(configured) },
    )?;
    Ok(set.finish())
}
