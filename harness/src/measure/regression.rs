//! The `regression` procedure (AC6). From the history store and a named baseline: whether a comparable
//! baseline exists, how many runs the history holds, how many checks have a trend, and how many of this
//! run's figures regressed. From a running [`Platform`]: whether an injected slowdown of the threshold's
//! size is detected while an unchanged run is not, and how long an injected regression takes to reach
//! Alertmanager as the shipped `PerformanceRegression` alert (and that it resolves once removed).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    monitoring::{connect, prom_time, svc_err},
    platform::Platform,
    Error, MeasurementSet, Metric,
};
use crate::{
    baseline::{
        self, compare, decide, measure_noise, named, trend, Estimate, History, Mode, Options as CompareOptions, Record,
        Rule, Verdict,
    },
    criteria::Params,
    metrics::{
        exposition::{Family, Kind, Sample},
        promql_string,
    },
    run::RunDir,
    services::{fixtures_dir, shipped_rule_files, wait},
    stats,
};

/// Name of the alert the injected regression must raise.
pub const ALERT: &str = "PerformanceRegression";
/// Pushgateway job of the baseline gauges.
pub const BASELINE_JOB: &str = "perf-baseline";

struct Settings {
    history: Option<PathBuf>,
    baseline: String,
    mode: Mode,
    options: CompareOptions,
    trend_last: usize,
    batches: usize,
    batch: Duration,
    injected_factor: f64,
    alert_factor: f64,
    warmup: Duration,
    alert_timeout: Duration,
    interval: Duration,
}

fn param_err(param: &str, problem: impl Into<String>) -> Error {
    Error::Param { procedure: "regression".into(), param: param.into(), problem: problem.into() }
}

fn num(params: &Params, name: &str, default: f64) -> Result<f64, Error> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|x| *x > 0.0)
            .ok_or_else(|| param_err(name, format!("expected a positive number, got {v}"))),
    }
}

fn text(params: &Params, name: &str, env: &str) -> Option<String> {
    params
        .get(name)
        .and_then(|v| v.as_str())
        .map(String::from)
        .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
}

impl Settings {
    fn from_params(params: &Params) -> Result<Settings, Error> {
        let mode: Mode = text(params, "mode", "HARNESS_BASELINE_MODE")
            .unwrap_or_else(|| "strict".into())
            .parse()
            .map_err(|e: String| param_err("mode", e))?;
        let threshold = num(params, "threshold_pct", 10.0)? / 100.0;
        let allow = params.get("allow_other_environment").and_then(|v| v.as_bool()).unwrap_or(false);
        Ok(Settings {
            history: text(params, "history", "HARNESS_HISTORY").map(PathBuf::from),
            baseline: text(params, "baseline", "HARNESS_BASELINE").unwrap_or_else(|| "main".into()),
            mode,
            options: CompareOptions { mode, threshold, confidence: 0.99, allow_other_environment: allow },
            trend_last: num(params, "trend_runs", 20.0)? as usize,
            batches: (num(params, "noise_batches", 6.0)? as usize).max(baseline::MIN_RUNS),
            batch: Duration::from_secs_f64(num(params, "batch_seconds", 3.0)?),
            injected_factor: num(params, "injected_factor", 1.0 + threshold)?,
            alert_factor: num(params, "alert_factor", 1.5)?,
            warmup: Duration::from_secs_f64(num(params, "warmup_seconds", 20.0)?),
            alert_timeout: Duration::from_secs_f64(num(params, "alert_timeout_seconds", 300.0)?),
            interval: Duration::from_secs_f64(num(params, "scrape_interval_seconds", 1.0)?),
        })
    }
}

/// Takes the history and baseline part; the platform's metrics are reported missing with `why`.
pub fn measure_history_only(params: &Params, dir: &RunDir, target: &str, why: &str) -> Result<MeasurementSet, Error> {
    let s = Settings::from_params(params)?;
    let mut set = history_part(&s, params, dir, target)?;
    for m in ["injected_detected", "alert_time"] {
        set = set.with(m, Metric::Missing { reason: why.into() });
    }
    Ok(set.finish())
}

/// Takes the whole measurement.
pub async fn measure<P: Platform>(
    platform: &P,
    params: &Params,
    dir: &RunDir,
    target: &str,
) -> Result<MeasurementSet, Error> {
    let s = Settings::from_params(params)?;
    let mut set = history_part(&s, params, dir, target)?;
    let mut raw = BTreeMap::new();
    let detected = with_restore(platform, injected(platform, &s, &mut set.notes, &mut raw)).await;
    set = set.with("injected_detected", detected.unwrap_or_else(|e| Metric::Missing { reason: e.to_string() }));
    let alert = with_restore(platform, alert_time(platform, &s, &mut set.notes, &mut raw)).await;
    set = set.with("alert_time", alert.unwrap_or_else(|e| Metric::Missing { reason: e.to_string() }));
    write_raw(dir, "platform.json", &json!(raw), &mut set)?;
    Ok(set.finish())
}

/// Runs `work`, then restores the platform's original function whatever happened.
async fn with_restore<P: Platform, T>(
    platform: &P,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let r = work.await;
    let restored = platform.set_slowdown(1.0).await;
    match (r, restored) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(Error::Failed(format!("the original function could not be restored: {e}"))),
    }
}

fn write_raw(dir: &RunDir, name: &str, v: &serde_json::Value, set: &mut MeasurementSet) -> Result<(), Error> {
    let raw_dir = dir.raw_dir("regression").map_err(|e| Error::Failed(e.to_string()))?;
    let file = raw_dir.join(name);
    std::fs::write(&file, serde_json::to_string_pretty(v).expect("json"))
        .map_err(|e| Error::Failed(format!("{}: {e}", file.display())))?;
    set.raw.push(PathBuf::from(format!("raw/regression/{name}")));
    Ok(())
}

fn history_part(s: &Settings, params: &Params, dir: &RunDir, target: &str) -> Result<MeasurementSet, Error> {
    let mut set = MeasurementSet::new("regression", target, params);
    let Some(hdir) = &s.history else {
        let why = "no history store: give `--history DIR` or set HARNESS_HISTORY (nightly CI keeps that directory)";
        for m in ["baseline", "history_runs", "trend_checks", "regressions"] {
            set = set.with(m, Metric::Missing { reason: why.into() });
        }
        return Ok(set);
    };
    let bad = |e: baseline::Error| Error::Unavailable {
        what: format!("the history store {}", hdir.display()),
        detail: e.to_string(),
    };
    let history = History::open(hdir).map_err(bad)?;
    let info = dir.info().map_err(|e| Error::Failed(e.to_string()))?;
    let current: Vec<Record> = dir
        .evidence()
        .map_err(|e| Error::Failed(e.to_string()))?
        .iter()
        .map(|e| Record::from_evidence(e, &info))
        .collect();
    let past: Vec<Record> = history.records().map_err(bad)?.into_iter().filter(|r| r.run != info.id).collect();
    let runs = baseline::run_ids(&past).len() + 1;
    set = set.with("history_runs", Metric::value(runs as f64, "", runs as u64));
    let key = info.environment.comparable_key();
    let mut trends = Vec::new();
    let mut checks: Vec<&String> = current.iter().chain(&past).map(|r| &r.check).collect();
    checks.sort();
    checks.dedup();
    for check in checks {
        let series: Vec<&Record> = past
            .iter()
            .chain(&current)
            .filter(|r| &r.check == check && r.environment.comparable_key() == key)
            .collect();
        let t = trend(check, &series, s.trend_last, baseline::WINDOW, baseline::Z);
        for c in &t.change_points {
            set.notes.push(format!("trend {check}: level changed by {:+.1}% at run {}", 100.0 * c.change, c.run));
        }
        if t.points.len() >= 2 {
            trends.push(t);
        }
    }
    set = set.with("trend_checks", Metric::value(trends.len() as f64, "", runs as u64));
    write_raw(dir, "trends.json", &json!(trends), &mut set)?;
    let (flag, regressions) = match named::load(hdir, &s.baseline) {
        Err(e @ baseline::Error::NoBaseline { .. }) => {
            let reason = e.to_string();
            set.notes.push(format!("{} mode: {reason}", if s.mode == Mode::Strict { "strict" } else { "lenient" }));
            match s.mode {
                Mode::Strict => (Metric::Missing { reason: reason.clone() }, Metric::Missing { reason }),
                Mode::Lenient => {
                    (Metric::flag(false, 1), Metric::Missing { reason: format!("nothing compared: {reason}") })
                }
            }
        }
        Err(e) => return Err(bad(e)),
        Ok(b) => match compare(&b, &current, &past, &s.options) {
            Err(e) => {
                let reason = e.to_string();
                (Metric::Missing { reason: reason.clone() }, Metric::Missing { reason })
            }
            Ok(c) => {
                write_raw(dir, "comparison.json", &json!(c), &mut set)?;
                for r in &c.rows {
                    match &r.outcome {
                        Ok(o) if o.verdict != Verdict::WithinNoise => {
                            set.notes.push(format!("{}: {}", r.check, o.explanation))
                        }
                        Err(why) => set.notes.push(format!("{}: not compared: {why}", r.check)),
                        Ok(_) => {}
                    }
                }
                let reg = if !c.problems.is_empty() {
                    Metric::Missing {
                        reason: format!(
                            "strict comparison with baseline `{}` failed: {}",
                            b.name,
                            c.problems.join("; ")
                        ),
                    }
                } else if c.decided() == 0 {
                    Metric::Missing {
                        reason: format!("no check of this run could be compared with baseline `{}`", b.name),
                    }
                } else {
                    Metric::value(c.regressions().len() as f64, "", c.decided() as u64)
                };
                (Metric::flag(true, b.runs.len() as u64), reg)
            }
        },
    };
    Ok(set.with("baseline", flag).with("regressions", regressions))
}

fn p95(samples: &[f64]) -> Result<Estimate, Error> {
    let e = stats::percentile(samples, 95.0, 0.95)
        .ok_or_else(|| Error::Failed("the platform reported no warm invocation".into()))?;
    Ok(Estimate { value: e.value, ci_low: e.ci_low, ci_high: e.ci_high, n: e.n })
}

async fn injected<P: Platform>(
    platform: &P,
    s: &Settings,
    notes: &mut Vec<String>,
    raw: &mut BTreeMap<String, serde_json::Value>,
) -> Result<Metric, Error> {
    let mut batches = Vec::new();
    for _ in 0..s.batches {
        batches.push(p95(&platform.warm_traffic(s.batch).await?)?);
    }
    let noise = measure_noise(&batches).ok_or_else(|| Error::Failed("too few batches to measure the noise".into()))?;
    let control = p95(&platform.warm_traffic(s.batch).await?)?;
    platform.set_slowdown(s.injected_factor).await?;
    let slowed = p95(&platform.warm_traffic(s.batch).await?)?;
    platform.set_slowdown(1.0).await?;
    let base = &batches[batches.len() - baseline::MIN_RUNS.min(batches.len())..];
    let rule = Rule {
        threshold: s.options.threshold,
        confidence: s.options.confidence,
        direction: baseline::Direction::LowerIsBetter,
    };
    let undecided = |u: baseline::Undecided| Error::Failed(format!("warm P95 batches: {u}"));
    let c = decide(base, &control, &noise, &rule).map_err(undecided)?;
    let i = decide(base, &slowed, &noise, &rule).map_err(undecided)?;
    notes.push(format!("unchanged batch: {}", c.explanation));
    notes.push(format!("batch {:.2}x slower: {}", s.injected_factor, i.explanation));
    raw.insert("injected".into(), json!({ "batches": batches, "control": control, "slowed": slowed, "factor": s.injected_factor, "control_outcome": c, "slowed_outcome": i }));
    let ok = i.verdict == Verdict::Regression && c.verdict != Verdict::Regression;
    Ok(Metric::flag(ok, (batches.len() + 2) as u64))
}

/// Runs `work` while warm traffic flows; a traffic failure ends it.
async fn under_traffic<P: Platform, T>(
    platform: &P,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let stop = AtomicBool::new(false);
    let traffic = async {
        while !stop.load(Ordering::Relaxed) {
            platform.warm_traffic(Duration::from_millis(500)).await?;
        }
        std::future::pending::<Result<T, Error>>().await
    };
    tokio::select! {
        r = work => { stop.store(true, Ordering::Relaxed); r }
        e = traffic => e,
    }
}

async fn alert_time<P: Platform>(
    platform: &P,
    s: &Settings,
    notes: &mut Vec<String>,
    raw: &mut BTreeMap<String, serde_json::Value>,
) -> Result<Metric, Error> {
    let fixtures = fixtures_dir();
    let rules = shipped_rule_files(&fixtures).map_err(svc_err)?;
    let mon = connect(platform, rules, fixtures.join("prometheus/alertmanager.yml"), s.interval).await?;
    let (Some(pg), Some(am)) = (&mon.pushgateway, &mon.alertmanager) else {
        return Err(Error::Unavailable {
            what: "Pushgateway and Alertmanager".into(),
            detail: "set HARNESS_PUSHGATEWAY_URL and HARNESS_ALERTMANAGER_URL next to HARNESS_PROMETHEUS_URL".into(),
        });
    };
    let prom = &mon.prometheus;
    let f = platform.function();
    let labels: BTreeMap<String, String> = [
        ("alertname".to_string(), ALERT.to_string()),
        ("function".into(), f.clone()),
        ("metric".into(), "warm_start".into()),
    ]
    .into();
    let p95_q = format!("perf:p95_seconds{{metric=\"warm_start\",function={}}}", promql_string(&f));
    under_traffic(platform, async {
        tokio::time::sleep(s.warmup).await;
        let base = wait::until(&format!("a warm P95 from Prometheus ({p95_q})"), Duration::from_secs(60), Duration::from_millis(250), || async {
            Ok(match prom.query(&p95_q, None).await?.first().map(|x| x.value) {
                Some(v) if v.is_finite() && v > 0.0 => Ok(v),
                other => Err(format!("{other:?}")),
            })
        })
        .await
        .map_err(svc_err)?;
        let gauge = Family {
            name: "perf_baseline_p95_seconds".into(),
            kind: Kind::Gauge,
            help: Some("P95 the PerformanceRegression alert compares against".into()),
            samples: vec![Sample { name: "perf_baseline_p95_seconds".into(), labels: [("metric".to_string(), "warm_start".to_string()), ("function".into(), f.clone())].into(), value: base, timestamp_ms: None }],
        };
        pg.push(BASELINE_JOB, &[("function", &f)], &[gauge]).await.map_err(svc_err)?;
        wait::until("Prometheus to read the pushed baseline with the alert inactive", Duration::from_secs(60), Duration::from_millis(250), || async {
            let seen = !prom.query(&format!("perf_baseline_p95_seconds{{function={}}}", promql_string(&f)), None).await?.is_empty();
            let active = prom.alerts().await?.into_iter().filter(|a| a.labels.get("alertname").map(String::as_str) == Some(ALERT)).count();
            Ok(if seen && active == 0 { Ok(()) } else { Err(format!("baseline seen: {seen}, active {ALERT} alerts: {active}")) })
        })
        .await
        .map_err(svc_err)?;
        let prom_t = prom_time(prom).await?;
        let start = Instant::now();
        platform.set_slowdown(s.alert_factor).await?;
        let am_seen = wait::until(&format!("{ALERT} for {f} to reach Alertmanager at {}", am.url()), s.alert_timeout, Duration::from_millis(100), || async {
            let alerts = am.alerts().await?;
            Ok(if alerts.iter().any(|a| a.status.state == "active" && labels.iter().all(|(k, v)| a.labels.get(k) == Some(v))) {
                Ok(start.elapsed())
            } else {
                Err(format!("{} alerts in Alertmanager, none {ALERT} for {f}", alerts.len()))
            })
        })
        .await
        .map_err(|e| Error::Failed(e.to_string()))?;
        let webhook = match mon.webhook() {
            Some(w) => Some(w.wait_for(ALERT, "firing", &labels, start, s.alert_timeout).await.map_err(|e| Error::Failed(e.to_string()))?.at - start),
            None => None,
        };
        platform.set_slowdown(1.0).await?;
        let restored = Instant::now();
        let resolved = match mon.webhook() {
            Some(w) => w.wait_for(ALERT, "resolved", &labels, restored, s.alert_timeout).await.map(|n| n.at - restored),
            None => wait::until(&format!("{ALERT} to leave Alertmanager"), s.alert_timeout, Duration::from_millis(250), || async {
                let active = am.alerts().await?.iter().any(|a| a.status.state == "active" && labels.iter().all(|(k, v)| a.labels.get(k) == Some(v)));
                Ok(if active { Err("still active".to_string()) } else { Ok(restored.elapsed()) })
            })
            .await,
        }
        .map_err(|e| Error::Failed(format!("the alert did not resolve after the regression was removed: {e}")))?;
        notes.push(format!(
            "{ALERT}: baseline warm P95 {:.4}s pushed; function {:.2}x slower at Prometheus time {prom_t:.0}; in Alertmanager after {:.1}s{}; resolved {:.1}s after the original was restored",
            base,
            s.alert_factor,
            am_seen.as_secs_f64(),
            webhook.map_or(String::new(), |w| format!(", at the webhook after {:.1}s", w.as_secs_f64())),
            resolved.as_secs_f64()
        ));
        raw.insert("alert".into(), json!({ "baseline_p95": base, "factor": s.alert_factor, "alertmanager_s": am_seen.as_secs_f64(), "webhook_s": webhook.map(|w| w.as_secs_f64()), "resolved_s": resolved.as_secs_f64() }));
        Ok(Metric::value(am_seen.as_secs_f64(), "s", 1))
    })
    .await
}
