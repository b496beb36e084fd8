//! `memory_sweep`, once for every [`FunctionPlatform`]: the same fixed amount of CPU work (`work_units`) at
//! several memory sizes, and at the function's configured size (added when the list lacks it, so the
//! configured size is judged on the same measurement), median Duration and cost (GB-s x price) per size.
//! The recommendations for cost, speed and balance follow the Lambda power-tuning method (balance: the least
//! sum of cost and duration, each normalized by its maximum over the sizes).
//!
//! A size at which an invocation fails (an OOM kill, a timeout) is infeasible: left out of the
//! recommendation and named in the notes, its attempts in the ledger; when the configured size itself fails,
//! there is no allocation to judge and both figures are missing. `recommended` is true when the configured
//! size is the balanced recommendation or its neighbour among the swept sizes (the resources follow the
//! metrics); `over_allocation` is the configured size above the balanced recommendation, in percent of it.

use serde_json::json;

use super::{
    local_session::{put_chart, quantile, P},
    raw::{Sweep, SweepPoint, SWEEP_FILE},
    Error, Ledger, MeasurementSet, Metric, Rejection,
};
use crate::{criteria::Params, platform::functions::FunctionPlatform, run_dir::RunDir};

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

/// The figures of a sweep, decided from the feasible points: `over_allocation` is the configured size above
/// the balanced recommendation, in percent of it; `recommended` is true when the configured size is the
/// balanced one or a neighbour of it among the swept sizes (the resources already follow the metrics), false
/// when the sweep recommends another size. Both are missing when fewer than two sizes were feasible or the
/// configured size itself failed (`configured_failed`: why).
pub fn decide(
    points: &[SweepPoint],
    configured_mb: f64,
    n: u64,
    configured_failed: Option<&str>,
) -> (Metric, Metric, Option<f64>) {
    if let Some(why) = configured_failed {
        let why = format!("the function fails at its configured {configured_mb} MB ({why}): no allocation to judge");
        return (Metric::Missing { reason: why.clone() }, Metric::Missing { reason: why }, None);
    }
    if points.len() < 2 {
        let why = format!(
            "{} feasible memory size(s) measured: a recommendation needs at least two to compare",
            points.len()
        );
        return (Metric::Missing { reason: why.clone() }, Metric::Missing { reason: why }, None);
    }
    let (_, _, bal) = recommend(points).expect("two points");
    let balanced = points[bal].memory_mb;
    let at = points.iter().position(|p| p.memory_mb == configured_mb);
    let follows = at.is_some_and(|i| i.abs_diff(bal) <= 1);
    (Metric::flag(follows, n), Metric::value((configured_mb - balanced) / balanced * 100.0, "%", n), Some(balanced))
}

/// Runs `memory_sweep` on `fp`. Params: `sizes` ([128, 256, 512, 1024, 1769]), `work_units` (CPU work per
/// invocation, 20), `work_ms` (time the handler sleeps, 0: an I/O-bound handler whose time does not depend on
/// memory), `samples` (5 per size), `price_per_gbs` (0.0000166667 USD, Lambda x86).
pub async fn memory_sweep<F: FunctionPlatform>(fp: &F, params: &Params, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "memory_sweep", params };
    p.only(&["sizes", "work_units", "work_ms", "samples", "price_per_gbs"])?;
    let mut sizes = p.list("sizes", &[128.0, 256.0, 512.0, 1024.0, 1769.0])?;
    let units = p.u64("work_units", 20)?;
    let sleep_ms = p.u64("work_ms", 0)?;
    let mode = if sleep_ms > 0 { format!("{sleep_ms} ms sleep") } else { "cpu".to_string() };
    let samples = p.count("samples", 5)?;
    let price = p.f64("price_per_gbs", 0.0000166667)?;
    if let Err(why) = fp.cpu_follows_memory() {
        return Err(Error::Unavailable { what: "CPU that follows the memory size".into(), detail: why });
    }
    let configured = fp.configured_memory().await? as f64;
    let added = !sizes.contains(&configured);
    if added {
        sizes.push(configured);
        sizes.sort_by(f64::total_cmp);
    }
    let payload =
        json!({ "work_units": units, "work_ms": sleep_ms, "work_mode": if sleep_ms > 0 { "sleep" } else { "cpu" } });
    let body = async {
        let phase = crate::progress::phase(
            &format!("memory_sweep: {} sizes of {}", sizes.len(), fp.function()),
            Some(sizes.len() as u64),
        );
        let mut points = Vec::new();
        let mut infeasible = Vec::new();
        let mut ledger = Ledger::new(0);
        for &mb in &sizes {
            fp.set_memory(mb as u64).await?;
            // The first invocation after the update starts a new environment: not a sample.
            let first = fp.invoke(&payload).await?;
            let (mut d, mut billed, mut failed) = (Vec::new(), Vec::new(), None);
            if !first.ok() {
                ledger.fail(first.outcome.class(), first.outcome.detail());
                failed = Some(format!("{} ({:?})", first.outcome.class(), first.outcome));
            }
            // Rejections are retried, up to as many attempts again as samples asked for.
            let mut attempts = 0;
            while failed.is_none() && (d.len() as u64) < samples {
                if attempts == samples * 2 {
                    failed = Some(format!("{} of {attempts} invocations were warm", d.len()));
                    break;
                }
                attempts += 1;
                let inv = fp.invoke(&payload).await?;
                if !inv.ok() {
                    ledger.fail(inv.outcome.class(), inv.outcome.detail());
                    failed = Some(format!("{} ({:?})", inv.outcome.class(), inv.outcome));
                    break;
                }
                let rep = match &inv.report {
                    Ok(r) if !r.is_cold() => r,
                    Ok(_) => {
                        ledger.reject(Rejection::NotWarm, format!("at {mb} MB: an Init Duration in a warm invocation"));
                        continue;
                    }
                    Err(e) => return Err(Error::Failed(format!("{} at {mb} MB: {e}", fp.function()))),
                };
                if rep.memory_size_mb != Some(mb as u64) {
                    return Err(Error::Failed(format!(
                        "{}: REPORT says Memory Size {:?} MB after the update to {mb} MB",
                        fp.function(),
                        rep.memory_size_mb
                    )));
                }
                ledger.count();
                d.push(rep.duration_ms);
                billed.push(rep.billed_duration_ms.unwrap_or(rep.duration_ms.ceil()));
            }
            match failed {
                Some(why) => infeasible.push((mb, why)),
                None => {
                    let med = quantile(&d, 0.5).unwrap_or(f64::NAN);
                    let bmed = quantile(&billed, 0.5).unwrap_or(f64::NAN);
                    points.push(SweepPoint { memory_mb: mb, duration_ms: med, cost_gbs: mb / 1024.0 * bmed / 1000.0 });
                }
            }
            phase.inc();
        }
        phase.finish();
        Ok::<_, Error>((points, infeasible, ledger))
    }
    .await;
    let (points, infeasible, ledger) = super::start::with_restore(body, fp.restore().await)?;

    let mut set = MeasurementSet::new("memory_sweep", fp.target(), params);
    set.notes.extend(fp.describe());
    for pt in &points {
        set.notes.push(format!(
            "{} MB: median duration {:.1} ms, {:.3e} GB-s = {:.3e} USD per invocation",
            pt.memory_mb,
            pt.duration_ms,
            pt.cost_gbs,
            pt.cost_gbs * price
        ));
    }
    for (mb, why) in &infeasible {
        set.notes.push(format!("infeasible, left out of the recommendation: {mb} MB: {why}"));
    }
    let configured_failed = infeasible.iter().find(|(mb, _)| *mb == configured).map(|(_, why)| why.as_str());
    if added {
        set.notes.push(format!("the configured size {configured} MB was added to the swept sizes"));
    }
    set.notes.extend(ledger.notes("memory_sweep samples"));
    let n = ledger.counted;
    let (recommended, over, balanced) = decide(&points, configured, n, configured_failed);
    if let (Some(balanced), Some((cheap, fast, _))) = (balanced, recommend(&points)) {
        set.notes.push(format!(
            "{units} work units ({mode}) x {samples} warm invocations per size (memory size restored after); recommended: {} MB for cost, {} MB for speed, {balanced} MB balanced; `{}` is configured with {configured} MB",
            points[cheap].memory_mb,
            points[fast].memory_mb,
            fp.function()
        ));
    }
    set.metrics.insert("recommended".into(), recommended);
    set.metrics.insert("over_allocation".into(), over);
    put_chart(&mut set, dir, SWEEP_FILE, &Sweep { points, recommended_mb: balanced, configured_mb: Some(configured) })?;
    Ok(set.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(mb: f64, ms: f64) -> SweepPoint {
        SweepPoint { memory_mb: mb, duration_ms: ms, cost_gbs: mb / 1024.0 * ms.ceil() / 1000.0 }
    }

    #[test]
    fn over_allocation_and_recommended_follow_the_configured_size() {
        // A handler whose time does not depend on memory: the smallest size is the balanced one.
        let flat = [pt(128.0, 10.0), pt(512.0, 10.0), pt(1769.0, 10.0)];
        let (rec, over, bal) = decide(&flat, 1769.0, 15, None);
        assert_eq!(bal, Some(128.0));
        assert_eq!(rec, Metric::flag(false, 15), "configured far above the recommendation: not adjusted");
        assert!(matches!(over, Metric::Value { value, .. } if value > 1000.0), "{over:?}");
        let (rec, at, _) = decide(&flat, 128.0, 15, None);
        assert_eq!(rec, Metric::flag(true, 15), "configured at the recommendation");
        assert!(matches!(at, Metric::Value { value, .. } if value == 0.0), "{at:?}");
        // CPU-bound: duration halves with memory up to the top; 128 MB is under-allocated, not over.
        let cpu = [pt(128.0, 800.0), pt(512.0, 200.0), pt(1769.0, 58.0)];
        let (rec, over, _) = decide(&cpu, 128.0, 15, None);
        assert_eq!(rec, Metric::flag(false, 15));
        assert!(matches!(over, Metric::Value { value, .. } if value < 0.0), "{over:?}");
        let (rec, over, bal) = decide(&flat[..1], 128.0, 5, None);
        assert!(matches!(rec, Metric::Missing { .. }) && matches!(over, Metric::Missing { .. }) && bal.is_none());
        // The configured size fails (an OOM kill): nothing to judge, never a pass.
        let (rec, over, _) = decide(&flat[1..], 128.0, 10, Some("function error"));
        assert!(matches!(rec, Metric::Missing { .. }) && matches!(over, Metric::Missing { .. }));
    }
}
