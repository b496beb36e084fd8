//! `resources` and `image` on the aws and localstack targets.
//!
//! Resources: `workers` closed-loop clients invoke the function for `duration_s` with the log tail; memory
//! utilization is each REPORT line's Max Memory Used over its Memory Size. Lambda reports no CPU time
//! (neither in REPORT lines nor in `AWS/Lambda` metrics), so CPU and combined utilization are `Missing` with
//! that reason. Memory sweep: the memory size is set per step through the change guard (restored after),
//! warm invocations with a fixed amount of CPU work give median Duration and billed GB-seconds per size, and
//! the shared recommendation picks the balanced size. Image: the deployment package size Lambda reports.

use serde_json::json;

use super::{
    aws::Ctx,
    local_session::{quantile, Drive},
    Error, MeasurementSet, Metric,
};
use crate::platform::aws::{FunctionState, Invocation};

const NO_CPU: &str =
    "Lambda exposes no CPU time per invocation or environment (REPORT lines and AWS/Lambda metrics carry none; CPU is allotted in proportion to memory)";

/// `resources`. Params: `workers` (6), `duration_s` (10), `payload` (`{}`: the function's configured work).
pub async fn resources(c: &Ctx<'_>, state: &FunctionState) -> Result<MeasurementSet, Error> {
    c.p.only(&["workers", "rate", "duration_s", "payload"])?;
    let drive_as = Drive::from_params(&c.p, 6)?;
    let secs = c.p.f64("duration_s", 10.0)?;
    let payload = c.p.params.get("payload").cloned().unwrap_or_else(|| json!({}));
    let phase = crate::progress::phase(&format!("resources: {} for {secs} s", drive_as.describe()), None);
    let results: Vec<Result<Result<Invocation, String>, Error>> = drive_as
        .run(std::time::Duration::from_secs_f64(secs), || async {
            Ok(c.invoke(&payload).await?.map_err(|e| e.to_string()))
        })
        .await;
    phase.finish();
    let results = results.into_iter().collect::<Result<Vec<_>, Error>>()?;
    let mut set = c.set();
    let mut mem = Vec::new();
    let (mut starved, mut throttled, mut no_report, mut failed_unreported) = (0u64, 0u64, 0u64, 0u64);
    for r in &results {
        match r {
            Err(_) => throttled += 1,
            Ok(inv) => {
                let rep = inv.report.as_ref().ok();
                let oom = rep.is_some_and(|r| {
                    r.error_type.as_deref().is_some_and(|t| t.contains("OutOfMemory")) || r.status.is_some()
                });
                let failed = inv.status_code != 200 || inv.function_error.is_some() || oom;
                starved += u64::from(failed);
                // A failed invocation's memory (an OOM reads near 100%) is no utilization sample.
                match rep.and_then(|r| Some((r.max_memory_used_mb?, r.memory_size_mb.filter(|m| *m > 0)?))) {
                    _ if failed => failed_unreported += 1,
                    Some((used, size)) => mem.push(used as f64 / size as f64 * 100.0),
                    None => no_report += 1,
                }
            }
        }
    }
    set.notes.push(format!(
        "{} for {secs} s with payload {payload}: {} invocations, {throttled} throttled or failed to call, {starved} errors/timeouts/OOM, {no_report} without Max Memory Used in REPORT; memory {} MB",
        drive_as.describe(),
        results.len(),
        state.memory_mb.map_or_else(|| "unknown".into(), |m| m.to_string())
    ));
    if let Some(m) = quantile(&mem, 0.5) {
        set.notes.push(format!("memory utilization median {m:.1}% over {} REPORT lines", mem.len()));
    }
    let ledger = super::resources::memory_ledger(
        mem.len() as u64,
        &[("throttled or failed call", throttled), ("error, timeout or OOM", failed_unreported)],
        no_report,
    );
    set.notes.extend(ledger.notes("memory_utilization"));
    super::local_session::put_samples(&mut set, c.dir, "memory_utilization", mem, "%")?;
    set.ledgers.insert("memory_utilization".into(), ledger);
    set.metrics.insert("cpu_utilization".into(), Metric::Missing { reason: NO_CPU.into() });
    set.metrics.insert("utilization".into(), Metric::Missing { reason: format!("needs CPU utilization: {NO_CPU}") });
    set.metrics.insert(
        "limits_missing".into(),
        Metric::value(f64::from(u8::from(state.memory_mb.is_none_or(|m| m <= 0))), "", 1),
    );
    set.metrics.insert(
        "starvation".into(),
        if results.is_empty() {
            Metric::Missing { reason: "no invocation completed".into() }
        } else {
            Metric::value((starved + throttled) as f64, "", results.len() as u64)
        },
    );
    Ok(set)
}

/// `image`: the deployment package size (`CodeSize`) of a Zip function; for a container image Lambda
/// reports none (it lives in ECR), so the size is `Missing` with that reason.
pub async fn image(c: &Ctx<'_>, state: &FunctionState) -> Result<MeasurementSet, Error> {
    let mut set = c.set();
    let kind = state.package_type.as_deref().unwrap_or("Zip");
    set.notes.push(format!("GetFunctionConfiguration: PackageType {kind}, CodeSize {} bytes", state.code_size));
    let metric = if state.code_size > 0 {
        Metric::value(state.code_size as f64, "B", 1)
    } else if kind == "Image" {
        Metric::Missing { reason: "Lambda reports no size for a container image function (CodeSize 0); the image's size is in ECR (DescribeImages), which this harness does not read".into() }
    } else {
        Metric::Missing {
            reason: format!("GetFunctionConfiguration of {} reports CodeSize {}", state.name, state.code_size),
        }
    };
    set.metrics.insert("size".into(), metric);
    Ok(set)
}
