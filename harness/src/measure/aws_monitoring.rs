//! `monitoring` (AC5) on the aws and localstack targets, against CloudWatch: the procedure makes traffic
//! (forced cold starts through the change guard, then warm invocations), then reads, for the run's window:
//! which metric families have data (GetMetricData `SampleCount`, polled up to `metrics_wait_s` because
//! CloudWatch publishes late), whether the alarms the outputs name watch the right metrics with the
//! seeds' thresholds ([`check_alarms`]), which dashboard metrics have no data, and the P95 of Init Duration
//! from the log group's REPORT lines against the harness's own. Percentiles are computed by the harness from
//! raw REPORT lines, not asked of CloudWatch (emulators compute none).
//!
//! A metric's namespace and dimensions come from the alarm or dashboard widget that names it (the module's
//! custom metrics live in its own namespace); `AWS/Lambda` metrics fall back to the function's dimension.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::{aws::Ctx, local_session::quantile, Error, MeasurementSet, Metric};
use crate::platform::aws::{check_alarms, AlarmExpectation, AlarmInfo, Dashboard, FunctionState, MetricQuery};

/// Families and the metrics each must have data for.
const FAMILIES: &[(&str, &[&str])] = &[
    ("cold_warm_missing", &["ColdStarts", "InitDuration", "Duration", "Invocations"]),
    ("scaling_missing", &["ConcurrentExecutions", "Throttles"]),
    ("resource_missing", &["MaxMemoryUsedMB"]),
];

const LAMBDA_METRICS: &[&str] = &["Duration", "Invocations", "ConcurrentExecutions", "Throttles", "Errors"];

/// The query for metric `name`: from an alarm or dashboard widget that names it, else `AWS/Lambda`.
fn resolve(c: &Ctx<'_>, name: &str, alarms: &[AlarmInfo], dash: &Dashboard) -> Option<MetricQuery> {
    let from_alarm = alarms.iter().find(|a| a.metric.as_deref() == Some(name)).and_then(|a| {
        Some(MetricQuery {
            namespace: a.namespace.clone()?,
            name: name.into(),
            dimensions: a.dimensions.clone(),
            stat: "SampleCount".into(),
            period_s: 60,
        })
    });
    let from_dash = || {
        dash.widgets.iter().flat_map(|w| &w.metrics).find(|q| q.name == name).map(|q| MetricQuery {
            stat: "SampleCount".into(),
            period_s: 60,
            ..q.clone()
        })
    };
    let lambda = || LAMBDA_METRICS.contains(&name).then(|| c.t.lambda_metric(name, "SampleCount", 60));
    from_alarm.or_else(from_dash).or_else(lambda)
}

/// `monitoring`. Params: `cold_starts` (3), `warm_invocations` (10), `metrics_wait_s` (300 on aws, 10 on
/// localstack).
pub async fn monitoring(c: &Ctx<'_>, state: &FunctionState) -> Result<MeasurementSet, Error> {
    let cold_n = c.p.count("cold_starts", 3)?;
    let warm_n = c.p.count("warm_invocations", 10)?;
    let wait = c.p.f64("metrics_wait_s", if c.kind == "aws" { 300.0 } else { 10.0 })?;
    // Data points sit at period boundaries: the window opens a period before the traffic.
    let start = SystemTime::now() - Duration::from_secs(120);
    let mut ch = c.changes()?;
    let body = async {
        let mut own = Vec::new();
        // A new environment whose Init Duration the platform did not measure is tried again, up to as many
        // attempts again as asked; one that is not new is an error.
        for _ in 0..2 * cold_n {
            if own.len() as u64 == cold_n {
                break;
            }
            ch.force_cold_start().await.map_err(|e| c.err(e))?;
            let inv = c.invoke_ok(&json!({})).await?;
            match inv.report.as_ref().ok().and_then(|r| r.startup_ms()) {
                Some(ms) => own.push(ms),
                None if inv.function.as_ref().is_some_and(|f| f.cold && f.invocations == 1) => continue,
                None => {
                    return Err(Error::Failed(
                        "an invocation after a forced cold start reported no Init Duration".into(),
                    ))
                }
            }
        }
        if (own.len() as u64) < cold_n {
            return Err(Error::Failed(format!(
                "{} of {cold_n} forced cold starts had an Init Duration the platform measured",
                own.len()
            )));
        }
        for _ in 0..warm_n {
            c.invoke_ok(&json!({})).await?;
        }
        Ok(own)
    }
    .await;
    let own = c.restore(ch, body).await?;
    let alarms = c.t.alarms().await.map_err(|e| c.err(e))?;
    let dash = c.t.dashboard().await.map_err(|e| c.err(e))?;
    let mut set = c.set();
    set.notes.push(format!(
        "traffic: {cold_n} forced cold starts and {warm_n} warm invocations; CloudWatch polled up to {wait} s for data"
    ));

    let mut queries: Vec<(&str, &str, Option<MetricQuery>)> = Vec::new();
    for (family, names) in FAMILIES {
        for n in *names {
            queries.push((family, n, resolve(c, n, &alarms, &dash)));
        }
    }
    let dash_queries: Vec<MetricQuery> = dash
        .widgets
        .iter()
        .flat_map(|w| &w.metrics)
        .map(|q| MetricQuery { stat: "SampleCount".into(), period_s: 60, ..q.clone() })
        .collect();
    let mut all: Vec<MetricQuery> = queries.iter().filter_map(|q| q.2.clone()).collect();
    all.extend(dash_queries.iter().cloned());
    let t0 = Instant::now();
    let has = loop {
        let series =
            c.t.metric_data(&all, start, SystemTime::now() + Duration::from_secs(60)).await.map_err(|e| c.err(e))?;
        let has: Vec<bool> = series.iter().map(|s| s.has_data()).collect();
        if has.iter().all(|h| *h) || t0.elapsed().as_secs_f64() >= wait {
            break has;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let mut i = 0;
    for (family, _) in FAMILIES {
        let mut missing = Vec::new();
        for (f, n, q) in &queries {
            if f != family {
                continue;
            }
            match q {
                Some(q) => {
                    if !has[i] {
                        missing.push(format!("{}/{} (no data point)", q.namespace, n));
                    }
                    i += 1;
                }
                None => {
                    missing.push(format!("{n} (no alarm or dashboard widget names it, so its namespace is unknown)"))
                }
            }
        }
        let names = FAMILIES.iter().find(|x| x.0 == *family).map_or(0, |x| x.1.len());
        set.notes.push(format!(
            "{family}: {} of {names} metrics without data{}",
            missing.len(),
            if missing.is_empty() { String::new() } else { format!(": {}", missing.join(", ")) }
        ));
        set.metrics.insert((*family).into(), Metric::value(missing.len() as f64, "", names as u64));
    }
    let dash_missing: Vec<String> = dash_queries
        .iter()
        .zip(&has[i..])
        .filter(|(_, h)| !**h)
        .map(|(q, _)| format!("{}/{}", q.namespace, q.name))
        .collect();
    set.notes.push(format!(
        "dashboard {}: {} widgets, {} metrics, {} without data{}",
        dash.name,
        dash.widgets.len(),
        dash_queries.len(),
        dash_missing.len(),
        if dash_missing.is_empty() { String::new() } else { format!(": {}", dash_missing.join(", ")) }
    ));
    set.metrics.insert(
        "dashboard_missing".into(),
        if dash_queries.is_empty() {
            Metric::Missing { reason: format!("dashboard {} plots no metric", dash.name) }
        } else {
            Metric::value(dash_missing.len() as f64, "", dash_queries.len() as u64)
        },
    );
    let expected = AlarmExpectation::seeds(state.memory_mb.unwrap_or(0));
    let problems = check_alarms(&expected, &c.t.settings().alarm_names, &alarms, &state.name);
    for p in &problems {
        set.notes.push(format!("alarm {} ({}): {}", p.name, p.role, p.problem));
    }
    set.metrics.insert("alerts_missing".into(), Metric::value(problems.len() as f64, "", expected.len() as u64));
    set.metrics.insert("build_missing".into(), Metric::Missing { reason: "Lambda runs no builds: build metrics come from the build pipeline (the build procedure on the local or knative target)".into() });
    p95_deviation(c, &mut set, &own, start, wait).await;
    Ok(set)
}

async fn p95_deviation(c: &Ctx<'_>, set: &mut MeasurementSet, own: &[f64], start: SystemTime, wait: f64) {
    let group = &c.t.settings().log_group;
    let t0 = Instant::now();
    let logged = loop {
        let r = c.t.log_reports(start, SystemTime::now() + Duration::from_secs(60), 20_000).await;
        let inits: Result<Vec<f64>, String> =
            r.map(|l| l.reports.iter().filter_map(|r| r.startup_ms()).collect()).map_err(|e| e.to_string());
        let done =
            matches!(&inits, Ok(v) if v.len() >= own.len()) || inits.is_err() || t0.elapsed().as_secs_f64() >= wait;
        if done {
            break inits;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let metric = match (logged, quantile(own, 0.95)) {
        (Ok(v), Some(mine)) if !v.is_empty() && mine > 0.0 => {
            let theirs = quantile(&v, 0.95).unwrap_or(f64::NAN);
            set.notes.push(format!("Init Duration P95: {theirs:.1} ms from {} REPORT lines in {group} vs {mine:.1} ms measured by the harness ({} cold starts)", v.len(), own.len()));
            Metric::value((theirs - mine).abs() / mine * 100.0, "%", v.len() as u64)
        }
        (Ok(_), _) => Metric::Missing {
            reason: format!(
                "no REPORT line with an Init Duration in log group {group} for the run's window within {wait} s"
            ),
        },
        (Err(e), _) => {
            Metric::Missing { reason: format!("the REPORT lines of log group {group} could not be read: {e}") }
        }
    };
    set.metrics.insert("cold_start_p95_deviation".into(), metric);
}
