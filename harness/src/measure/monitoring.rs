//! The `monitoring` procedure (AC5): a real Prometheus (the suite's own, scraping the platform and a
//! Pushgateway with the shipped rules; or the user's) is asked, over a window in which the procedure itself
//! produced cold starts, warm traffic and a build, whether each metric family the criteria need holds data
//! from that window, whether its cold start P95 agrees with the platform's own Init Durations within the
//! histogram's bucket resolution, whether every dashboard panel query returns data, and whether every
//! required alert rule is loaded and healthy.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::json;

use super::{platform::Platform, Error, MeasurementSet, Metric};
use crate::{
    criteria::Params,
    metrics::{dashboard::Dashboard, promql_string, quantile::agreement, PromClient},
    run_dir::RunDir,
    services::{self, fixtures_dir, shipped_rule_files, wait, Monitoring, Stack, StackOptions},
    stats,
};

/// How a family shows data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Histogram: its `_count` must be above zero.
    Histogram,
    /// Counter or gauge: it must have samples.
    Sampled,
}

/// A metric family the criteria need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Name.
    pub name: &'static str,
    /// Kind.
    pub kind: Kind,
    /// Pushed to a Pushgateway (then its push must be from the window too) rather than scraped.
    pub pushed: bool,
}

const fn fam(name: &'static str, kind: Kind, pushed: bool) -> Family {
    Family { name, kind, pushed }
}

/// Build metrics (AC1), pushed by builds. `image_size_bytes` is a histogram (the seed reads
/// `image_size_bytes_bucket`): asking for bare `image_size_bytes` samples found none, though the family was there.
/// `builds_in_progress` is the gauge behind the seed's "Concurrent builds" panel (0 once the builds ended).
pub const BUILD: &[Family] = &[
    fam("build_duration_seconds", Kind::Histogram, true),
    fam("build_cache_hits_total", Kind::Sampled, true),
    fam("build_cache_requests_total", Kind::Sampled, true),
    fam("image_size_bytes", Kind::Histogram, true),
    fam("builds_in_progress", Kind::Sampled, true),
];
/// Cold and warm start metrics (AC2).
pub const COLD_WARM: &[Family] = &[
    fam("function_cold_start_duration_seconds", Kind::Histogram, false),
    fam("function_invocation_duration_seconds", Kind::Histogram, false),
    fam("function_invocations_total", Kind::Sampled, false),
];
/// Scaling metrics (AC3).
pub const SCALING: &[Family] = &[
    fam("function_concurrent_executions", Kind::Sampled, false),
    fam("function_environments", Kind::Sampled, false),
    fam("function_scale_events_total", Kind::Sampled, false),
    fam("function_throttles_total", Kind::Sampled, false),
];
/// Resource metrics (AC4).
pub const RESOURCE: &[Family] = &[
    fam("function_memory_used_bytes", Kind::Sampled, false),
    fam("function_memory_limit_bytes", Kind::Sampled, false),
];

struct Settings {
    baseline: Option<(PathBuf, String, BTreeMap<String, String>)>,
    interval: Duration,
    cold_starts: usize,
    warm: Duration,
    data_timeout: Duration,
    dashboards: Vec<PathBuf>,
    alerts: Vec<String>,
    rule_files: Vec<PathBuf>,
    alertmanager_config: PathBuf,
}

fn param_err(param: &str, problem: impl Into<String>) -> Error {
    Error::Param { procedure: "monitoring".into(), param: param.into(), problem: problem.into() }
}

fn num(params: &Params, name: &str, default: f64) -> Result<f64, Error> {
    super::local_session::P { procedure: "monitoring", params }.positive(name, default)
}

fn paths(params: &Params, name: &str) -> Result<Option<Vec<PathBuf>>, Error> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(PathBuf::from)).collect::<Option<Vec<_>>>())
            .map(Some)
            .ok_or_else(|| param_err(name, "expected a list of paths")),
    }
}

impl Settings {
    fn from_params(params: &Params) -> Result<Settings, Error> {
        let fixtures = fixtures_dir();
        let unavailable = |e: services::Error| Error::Unavailable {
            what: "the shipped Prometheus rules".into(),
            detail: e.to_string(),
        };
        let rule_files = match paths(params, "rules")? {
            Some(p) => p,
            None => shipped_rule_files(&fixtures).map_err(unavailable)?,
        };
        let dashboards = match paths(params, "dashboards")? {
            Some(p) => p,
            None => json_files(&fixtures.join("dashboards"))?,
        };
        let alerts = match params.get("alerts") {
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect::<Option<Vec<_>>>())
                .ok_or_else(|| param_err("alerts", "expected a list of alert names"))?,
            None => alert_names(&rule_files)?,
        };
        let history = params
            .get("history")
            .and_then(|v| v.as_str())
            .map(String::from)
            .or_else(|| std::env::var("HARNESS_HISTORY").ok().filter(|v| !v.is_empty()));
        let name = params
            .get("baseline")
            .and_then(|v| v.as_str())
            .map(String::from)
            .or_else(|| std::env::var("HARNESS_BASELINE").ok())
            .unwrap_or_else(|| "main".into());
        let checks: BTreeMap<String, String> = match params.get("baseline_checks") {
            None => BTreeMap::new(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                param_err("baseline_checks", "expected a map from metric (warm_start, cold_start, build) to check id")
            })?,
        };
        let baseline = match (history, checks.is_empty()) {
            (Some(h), false) => Some((PathBuf::from(h), name, checks)),
            _ => None,
        };
        Ok(Settings {
            baseline,
            interval: Duration::from_secs_f64(num(params, "scrape_interval_seconds", 1.0)?),
            cold_starts: num(params, "cold_starts", 20.0)? as usize,
            warm: Duration::from_secs_f64(num(params, "warm_seconds", 5.0)?),
            data_timeout: Duration::from_secs_f64(num(params, "data_timeout_seconds", 60.0)?),
            dashboards,
            alerts,
            rule_files,
            alertmanager_config: params
                .get("alertmanager_config")
                .and_then(|v| v.as_str())
                .map_or_else(|| fixtures.join("prometheus/alertmanager.yml"), PathBuf::from),
        })
    }
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Unavailable { what: format!("dashboards in {}", dir.display()), detail: e.to_string() })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    Ok(out)
}

/// Names of the alerting rules in `files`.
pub fn alert_names(files: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::Unavailable { what: f.display().to_string(), detail: e.to_string() })?;
        let v: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| Error::Failed(format!("{}: {e}", f.display())))?;
        for g in v["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                if let Some(a) = r["alert"].as_str() {
                    out.push(a.to_string());
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn prom_err(e: crate::metrics::Error) -> Error {
    Error::Unavailable { what: "Prometheus".into(), detail: e.to_string() }
}

pub(crate) fn svc_err(e: services::Error) -> Error {
    Error::Unavailable { what: "the monitoring servers".into(), detail: e.to_string() }
}

/// The user's servers (`HARNESS_PROMETHEUS_URL` ...) or a stack started for `platform`.
/// `interval` is the scrape and rule evaluation interval of a started stack.
pub(crate) async fn connect<P: Platform>(
    platform: &P,
    rule_files: Vec<PathBuf>,
    am_config: PathBuf,
    interval: Duration,
) -> Result<Monitoring, Error> {
    if let Some(m) = Monitoring::from_env().map_err(svc_err)? {
        return Ok(m);
    }
    let opts = StackOptions {
        rule_files,
        alertmanager_config: am_config,
        scrape_interval: interval,
        evaluation_interval: interval,
        ..StackOptions::shipped(&fixtures_dir(), vec![platform.scrape_job()]).map_err(svc_err)?
    };
    let stack = Stack::start(&opts).await.map_err(svc_err)?;
    let m = Monitoring::own(stack);
    let job = platform.scrape_job();
    wait::until(
        &format!("Prometheus to scrape {} successfully", job.url),
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let targets = m.prometheus.targets().await.map_err(services::Error::from)?;
            Ok(match targets.iter().find(|t| t.labels.get("job") == Some(&job.job)) {
                Some(t) if t.health == "up" => Ok(()),
                Some(t) => Err(format!("target {} is {} ({})", t.scrape_url, t.health, t.last_error)),
                None => Err(format!("no target for job {}", job.job)),
            })
        },
    )
    .await
    .map_err(|e| Error::Unavailable {
        what: format!("the platform's metrics at {}", job.url),
        detail: e.to_string(),
    })?;
    Ok(m)
}

/// Prometheus' clock (the windows are in its time, which may differ from ours for a remote server).
pub(crate) async fn prom_time(prom: &PromClient) -> Result<f64, Error> {
    prom.query_value("time()", None, "time() always has a value").await.map_err(prom_err)
}

/// Takes the measurement.
pub async fn measure<P: Platform>(
    platform: &P,
    params: &Params,
    dir: &RunDir,
    target: &str,
) -> Result<MeasurementSet, Error> {
    let s = Settings::from_params(params)?;
    let mut set = MeasurementSet::new("monitoring", target, params);
    let mon = connect(platform, s.rule_files.clone(), s.alertmanager_config.clone(), s.interval).await?;
    let prom = &mon.prometheus;
    let f = promql_string(&platform.function());
    let t0 = prom_time(prom).await?;
    let init = platform.cold_starts(s.cold_starts).await?;
    let warm = platform.warm_traffic(s.warm).await?;
    set.notes.push(format!("drove {} cold starts and {} warm invocations of {f}", init.len(), warm.len()));
    let pushed_from = prom_time(prom).await?;
    let mut pushed = false;
    let mut baseline_pushed = false;
    match &mon.pushgateway {
        Some(pg) => match platform.build(pg.endpoint()).await {
            Ok(()) => pushed = true,
            Err(e) => set.notes.push(format!("no build pushed its metrics: {e}")),
        },
        None => set.notes.push("no Pushgateway: build metrics must come from the user's pipeline".into()),
    }
    if let (Some(pg), Some((dir, name, checks))) = (&mon.pushgateway, &s.baseline) {
        match push_baseline(pg, dir, name, checks, &platform.function()).await {
            Ok(n) => {
                pushed = true;
                baseline_pushed = true;
                set.notes.push(format!("pushed {n} figures of baseline `{name}` as perf_baseline_p95_seconds"));
            }
            Err(e) => set.notes.push(format!("no baseline pushed for the dashboard: {e}")),
        }
    }
    if let (Some(pg), false) = (&mon.pushgateway, baseline_pushed) {
        // No saved baseline to show (a first run, or none configured): the "P95 against baseline" panel
        // compares with this run's own warm P95 as the harness measured it, said so in the label and note.
        match push_in_run_reference(pg, &platform.function(), &warm).await {
            Ok(v) => {
                pushed = true;
                set.notes.push(format!(
                    "no saved baseline for the dashboard (params history and baseline_checks): pushed this run's own \
                     warm P95 {v:.4}s (n={}) as perf_baseline_p95_seconds{{baseline=\"in-run\"}}",
                    warm.len()
                ));
            }
            Err(e) => set.notes.push(format!("no baseline pushed for the dashboard: {e}")),
        }
    }
    let sel = format!("function_cold_start_duration_seconds_count{{function={f}}}");
    let delta = format!("(sum({sel}) or vector(0)) - (sum({sel} @ {t0:.3}) or vector(0))");
    let push_q = format!("max(push_time_seconds) >= {pushed_from:.3}");
    let want = init.len() as f64;
    let what = format!(
        "Prometheus to count the {want} cold starts ({delta}){}",
        if pushed { format!(" and scrape the pushes ({push_q})") } else { String::new() }
    );
    let arrived = wait::until(&what, s.data_timeout, Duration::from_millis(250), || async {
        let got = prom.query(&delta, None).await?.first().map_or(0.0, |x| x.value);
        let scraped = !pushed || !prom.query(&push_q, None).await?.is_empty();
        Ok(if got >= want && scraped {
            Ok(())
        } else {
            Err(format!("{got} cold starts counted, pushes scraped: {scraped}"))
        })
    })
    .await
    .and(Ok(prom_time(prom).await?));
    let arrived = arrived
        .map_err(|e| Error::Unavailable { what: "this run's data in Prometheus".into(), detail: e.to_string() })?;
    // Recording rules see the data at their next evaluation.
    wait::until(
        "every rule group to be evaluated after the data arrived",
        s.data_timeout,
        Duration::from_millis(250),
        || async {
            let groups = prom.rules().await?;
            let late: Vec<&str> = groups
                .iter()
                .filter(|g| g.last_evaluation_unix().is_none_or(|t| t < arrived))
                .map(|g| g.name.as_str())
                .collect();
            Ok(if late.is_empty() { Ok(()) } else { Err(format!("not yet evaluated: {}", late.join(", "))) })
        },
    )
    .await
    .map_err(svc_err)?;
    let t1 = prom_time(prom).await?;
    let window = (t1 - t0).ceil() as u64 + 2;
    let mut raw = BTreeMap::new();
    for (metric, families) in [
        ("build_missing", BUILD),
        ("cold_warm_missing", COLD_WARM),
        ("scaling_missing", SCALING),
        ("resource_missing", RESOURCE),
    ] {
        let mut missing = 0;
        for fam in families {
            let (ok, why) = family_has_data(prom, fam, t0, t1, window).await;
            raw.insert(fam.name.to_string(), json!({ "ok": ok, "detail": why }));
            if !ok {
                missing += 1;
                set.notes.push(format!("{}: {why}", fam.name));
            }
        }
        set = set.with(metric, Metric::value(f64::from(missing), "", families.len() as u64));
    }
    let dev = deviation(prom, &f, &init, t0, t1, &mut set.notes).await;
    set = set.with("cold_start_p95_deviation", dev);
    let (dash_missing, dash_total, dash_raw) = dashboards(prom, &s.dashboards, t0, t1, &mut set.notes).await?;
    set = set.with("dashboard_missing", Metric::value(dash_missing as f64, "", dash_total as u64));
    let (alerts_missing, alerts_raw) = alerts(prom, &s.alerts, &mut set.notes).await?;
    set = set.with("alerts_missing", Metric::value(alerts_missing as f64, "", s.alerts.len() as u64));
    let raw_dir = dir.raw_dir("monitoring").map_err(|e| Error::Failed(e.to_string()))?;
    let file = raw_dir.join("prometheus.json");
    let doc = json!({
        "prometheus": prom.url(), "window": [t0, t1], "cold_start_init_seconds": init,
        "families": raw, "dashboards": dash_raw, "alerts": alerts_raw,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&doc).expect("json"))
        .map_err(|e| Error::Failed(format!("{}: {e}", file.display())))?;
    set.raw.push(PathBuf::from("raw/monitoring/prometheus.json"));
    drop(mon);
    Ok(set.finish())
}

/// Pushes the figures of baseline `name` (history `dir`) for the checks `checks` maps metric labels to
/// (`warm_start` -> `AC2.warm_p95` ...) as `perf_baseline_p95_seconds{metric, function}`, in seconds.
pub async fn push_baseline(
    pg: &services::PushClient,
    dir: &Path,
    name: &str,
    checks: &BTreeMap<String, String>,
    function: &str,
) -> Result<usize, Error> {
    use crate::metrics::exposition::{Family as Fam, Kind as K, Sample};
    let b = crate::baseline::named::load(dir, name)
        .map_err(|e| Error::Unavailable { what: format!("baseline `{name}`"), detail: e.to_string() })?;
    let mut samples = Vec::new();
    for (metric, check) in checks {
        let entry = b.checks.get(check).ok_or_else(|| Error::Unavailable {
            what: format!("baseline `{name}`"),
            detail: format!("no figure for check {check}"),
        })?;
        let unit = crate::criteria::Unit::parse(&entry.unit)
            .ok_or_else(|| Error::Failed(format!("baseline `{name}`, check {check}: unknown unit `{}`", entry.unit)))?;
        let vals: Vec<f64> = entry.figures.iter().map(|f| f.value).filter(|v| *v > 0.0).collect();
        if vals.is_empty() {
            return Err(Error::Unavailable {
                what: format!("baseline `{name}`"),
                detail: format!("no positive figure for check {check}"),
            });
        }
        let geo = (vals.iter().map(|v| v.ln()).sum::<f64>() / vals.len() as f64).exp();
        let mut labels: BTreeMap<String, String> = [("metric".to_string(), metric.clone())].into();
        if metric != "build" {
            labels.insert("function".into(), function.into());
        }
        samples.push(Sample {
            name: "perf_baseline_p95_seconds".into(),
            labels,
            value: unit.to_canonical(geo),
            timestamp_ms: None,
        });
    }
    let n = samples.len();
    let fam = Fam {
        name: "perf_baseline_p95_seconds".into(),
        kind: K::Gauge,
        help: Some(format!("P95 of baseline {name}")),
        samples,
    };
    pg.push(crate::measure::regression::BASELINE_JOB, &[("baseline", name)], &[fam]).await.map_err(svc_err)?;
    Ok(n)
}

/// Pushes the harness's P95 of `warm` (seconds) as `perf_baseline_p95_seconds{metric="warm_start", function,
/// baseline="in-run"}`; returns it.
async fn push_in_run_reference(pg: &services::PushClient, function: &str, warm: &[f64]) -> Result<f64, Error> {
    use crate::metrics::exposition::{Family as Fam, Kind as K, Sample};
    let p95 = stats::percentile(warm, 95.0, 0.95)
        .ok_or_else(|| Error::Failed("the platform reported no warm invocation to take a P95 of".into()))?;
    let labels: BTreeMap<String, String> = [
        ("metric".to_string(), "warm_start".to_string()),
        ("function".into(), function.into()),
        ("baseline".into(), "in-run".into()),
    ]
    .into();
    let fam = Fam {
        name: "perf_baseline_p95_seconds".into(),
        kind: K::Gauge,
        help: Some("this run's own warm P95 (no saved baseline)".into()),
        samples: vec![Sample {
            name: "perf_baseline_p95_seconds".into(),
            labels,
            value: p95.value,
            timestamp_ms: None,
        }],
    };
    pg.push(crate::measure::regression::BASELINE_JOB, &[("baseline", "in-run")], &[fam]).await.map_err(svc_err)?;
    Ok(p95.value)
}

async fn family_has_data(prom: &PromClient, fam: &Family, t0: f64, t1: f64, window: u64) -> (bool, String) {
    let (sel, q) = match fam.kind {
        Kind::Histogram => {
            (format!("{}_count", fam.name), format!("max(max_over_time({}_count[{window}s] @ {t1:.3}))", fam.name))
        }
        Kind::Sampled => (fam.name.to_string(), format!("count(count_over_time({}[{window}s] @ {t1:.3}))", fam.name)),
    };
    let value = match prom.query(&q, None).await {
        Ok(r) => r.first().map_or(0.0, |x| x.value),
        Err(e) => return (false, e.to_string()),
    };
    if value.is_nan() || value <= 0.0 {
        return (false, format!("no data in Prometheus between {t0:.0} and {t1:.0} (query `{q}`)"));
    }
    if fam.pushed {
        let fresh = format!("count(({sel} @ {t1:.3}) and on (job, instance) (push_time_seconds @ {t1:.3} >= {t0:.3}))");
        match prom.query(&fresh, None).await {
            Ok(r) if r.first().is_some_and(|x| x.value > 0.0) => {}
            Ok(_) => return (false, format!("data present but not pushed during this run (query `{fresh}`)")),
            Err(e) => return (false, e.to_string()),
        }
    }
    (true, format!("data from this run ({q} = {value})"))
}

async fn deviation(prom: &PromClient, f: &str, init: &[f64], t0: f64, t1: f64, notes: &mut Vec<String>) -> Metric {
    let Some(harness) = stats::percentile(init, 95.0, 0.95) else {
        return Metric::Missing { reason: "the platform reported no cold start Init Duration".into() };
    };
    let b = format!("function_cold_start_duration_seconds_bucket{{function={f}}}");
    let q =
        format!("histogram_quantile(0.95, sum by (le) (({b} @ {t1:.3}) - (({b} @ {t0:.3}) or ({b} @ {t1:.3}) * 0)))");
    let value =
        match prom.query_value(&q, None, "the platform's cold start histogram over this run's cold starts").await {
            Ok(v) => v,
            Err(e) => return Metric::Missing { reason: e.to_string() },
        };
    let bounds: Vec<f64> = match prom.query(&format!("{b} @ {t1:.3}"), None).await {
        Ok(r) => r
            .iter()
            .filter_map(|s| s.metric.get("le").and_then(|le| crate::metrics::exposition::parse_value(le)))
            .collect(),
        Err(e) => return Metric::Missing { reason: e.to_string() },
    };
    let a = agreement(value, harness.value, &bounds);
    notes.push(format!(
        "cold start P95: Prometheus {:.4}s, harness {:.4}s (n={}), {:.1}% apart; bucket ({}, {}] is {:.0}% wide there: {}",
        a.prometheus,
        a.harness,
        harness.n,
        a.deviation_pct,
        a.bucket.0,
        a.bucket.1,
        a.resolution_pct,
        if a.within_resolution { "agree within the bucket resolution" } else { "DISAGREE beyond the bucket resolution" }
    ));
    Metric::value(a.deviation_pct, "%", harness.n)
}

async fn dashboards(
    prom: &PromClient,
    files: &[PathBuf],
    t0: f64,
    t1: f64,
    notes: &mut Vec<String>,
) -> Result<(usize, usize, serde_json::Value), Error> {
    if files.is_empty() {
        return Err(Error::Unavailable { what: "dashboards".into(), detail: "no dashboard files to check".into() });
    }
    let names = prom.metric_names().await.map_err(prom_err)?;
    let (mut missing, mut total) = (0, 0);
    let mut raw = Vec::new();
    let range = format!("{}s", (t1 - t0).ceil() as u64 + 2);
    let step = ((t1 - t0) / 30.0).max(1.0);
    // The last point at t1 exactly: the latest recording-rule outputs are only seconds old.
    let start = t1 - step * ((t1 - t0) / step).ceil();
    for file in files {
        let d = Dashboard::load(file)
            .map_err(|e| Error::Unavailable { what: "a dashboard".into(), detail: e.to_string() })?;
        for q in &d.queries {
            total += 1;
            let promql = q.promql("1m", &range);
            let unknown: Vec<String> =
                crate::metrics::dashboard::metric_names(&promql).into_iter().filter(|n| !names.contains(n)).collect();
            let result = prom.query_range(&promql, start, t1, step).await;
            let points = result.as_ref().map_or(0, |r| r.iter().map(|s| s.points.len()).sum::<usize>());
            if points == 0 {
                missing += 1;
                let why = match &result {
                    Err(e) => e.to_string(),
                    Ok(_) if !unknown.is_empty() => format!("no data; unknown metrics {}", unknown.join(", ")),
                    Ok(_) => "no data in this run's window".into(),
                };
                notes.push(format!("dashboard {} panel `{}` ({}): {why}", d.title, q.panel, q.ref_id));
            }
            raw.push(json!({ "dashboard": d.title, "panel": q.panel, "ref": q.ref_id, "query": promql, "points": points, "unknown_metrics": unknown }));
        }
    }
    Ok((missing, total, serde_json::Value::Array(raw)))
}

async fn alerts(
    prom: &PromClient,
    required: &[String],
    notes: &mut Vec<String>,
) -> Result<(usize, serde_json::Value), Error> {
    let groups = prom.rules().await.map_err(prom_err)?;
    let mut missing = 0;
    let mut raw = Vec::new();
    for name in required {
        let rule = groups
            .iter()
            .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
            .find(|(_, r)| r.kind == "alerting" && &r.name == name);
        let problem = match rule {
            None => Some("not loaded in Prometheus".to_string()),
            Some((_, r)) if r.health != "ok" => {
                Some(format!("unhealthy ({}): {}", r.health, r.last_error.clone().unwrap_or_default()))
            }
            Some(_) => None,
        };
        if let Some(p) = &problem {
            missing += 1;
            notes.push(format!("alert {name}: {p}"));
        }
        raw.push(json!({ "alert": name, "file": rule.map(|(g, _)| g.file.clone()), "problem": problem }));
    }
    Ok((missing, serde_json::Value::Array(raw)))
}
