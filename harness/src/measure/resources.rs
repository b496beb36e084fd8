//! `resources` on the local target.
//!
//! Resources: `workers` closed-loop clients (or an open model at `rate` req/s) invoke a function sized so its work fills what it is given
//! (see `fixture-rust-busy` in fixtures/targets/local.yaml) for `duration_s`. Memory utilization per
//! invocation is the REPORT line's Max Memory Used / Memory Size; CPU utilization per environment is the
//! CPU time its cgroup used over the window / (window x its CPU share); utilization per environment is the
//! mean of the two. Starvation counts failed invocations (errors, timeouts, 429) and environments lost
//! during the window (crashes, OOM kills). Process mode has no limits: CPU figures are Missing and
//! `limits_missing` counts the function.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    local_session::{function_spec, put_samples, Drive, Invoked, Session, P},
    Error, Ledger, MeasurementSet, Metric, Rejection,
};
use crate::{criteria::Params, platform::LocalConfig, run_dir::RunDir};

/// The ledger of `memory_utilization`: every invocation of the window, the ones with a REPORT's Max Memory
/// Used counted, failed ones by class (they are judged by `starvation`, so no budget here), successful ones
/// without the figure rejected as unverifiable.
pub(super) fn memory_ledger(counted: u64, failed: &[(&str, u64)], unreported: u64) -> Ledger {
    let mut l = Ledger::new(u64::MAX);
    l.count_n(counted);
    for (class, n) in failed {
        l.fail_n(class, *n, format!("{n} invocations: {class}"));
    }
    l.reject_n(
        Rejection::Unverifiable,
        unreported,
        format!("{unreported} successful invocations without Max Memory Used in their REPORT line"),
    );
    l
}

/// Runs `resources`. Params: `function` (`fixture-rust-busy`), `workers` (6) or `rate` (req/s, open model),
/// `duration_s` (10).
pub async fn resources(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "resources", params };
    p.only(&["workers", "rate", "duration_s"])?;
    let function = p.str("function", "fixture-rust-busy")?;
    let drive_as = Drive::from_params(&p, 6)?;
    let secs = p.f64("duration_s", 10.0)?;
    let spec = function_spec(cfg, &function)?;
    let s = Session::start(cfg, |_| {}).await?;
    let r = async {
        let phase =
            crate::progress::phase(&format!("resources: {} on {function} for {secs} s", drive_as.describe()), None);
        // Warm-up: the environments start (their init CPU is outside the window).
        let _ = drive(&s, &function, drive_as, Duration::from_millis(1500)).await;
        let before: BTreeMap<String, (Option<Duration>, Option<f64>)> =
            s.envs(&function).into_iter().map(|e| (e.id, (e.cpu_time, e.cpu_share))).collect();
        let t = Instant::now();
        let results = drive(&s, &function, drive_as, Duration::from_secs_f64(secs)).await;
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
        .filter(|r| r.ok())
        .filter_map(|r| r.report.as_ref())
        .filter_map(|r| Some((r.max_memory_used_mb?, r.memory_size_mb.filter(|m| *m > 0)?)))
        .map(|(used, size)| used as f64 / size as f64 * 100.0)
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
        "{} invocations in {wall:.1} s by {}; {failed} failed, {lost} environments lost during the window; {} environments with CPU figures",
        results.len(),
        drive_as.describe(),
        cpu.len()
    ));
    let ok = results.len() - failed;
    let ledger = memory_ledger(mem.len() as u64, &[("failed", failed as u64)], (ok - mem.len().min(ok)) as u64);
    set.notes.extend(ledger.notes("memory_utilization"));
    put_samples(&mut set, dir, "memory_utilization", mem, "%")?;
    set.ledgers.insert("memory_utilization".into(), ledger);
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

/// Invokes `function` as `shape` says until `d` has passed; a call the platform could not take is kept as a
/// failed invocation (status 0), never dropped.
async fn drive(s: &Session, function: &str, shape: Drive, d: Duration) -> Vec<Invoked> {
    shape
        .run(d, || async {
            s.invoke(function, &json!({})).await.unwrap_or_else(|e| Invoked {
                status: 0,
                latency: Duration::ZERO,
                function_error: Some(format!("transport: {e}")),
                report: None,
                env_id: None,
                cold: None,
                invocations: None,
                init_code_ms: None,
            })
        })
        .await
}
