//! The `regression` procedure (AC6 and scenario 5). On a running [`Platform`] it plays scenario 5 inside
//! the run: the function's warm P95 in several reference sessions (step 1: establish a baseline) and
//! several current sessions (step 3: improved or maintained?), in rounds with as many sessions of a
//! variant slowed by twice the threshold's share of the reference P95 (a change the rule must catch: it
//! flags an estimate over the threshold, so a change of exactly the threshold is a coin toss) (step 4: is
//! it detected, and is the
//! unchanged variant left alone?), then the path of an injected regression to Alertmanager as the shipped
//! `PerformanceRegression` alert and its resolution (step 5).
//!
//! The reference and current sessions are appended to the history store as entries tagged as this run's
//! scenario sessions ([`baseline::scenario`]); the history figures (`history_runs`, `trend_checks`) are
//! read back from the store, and the report note says how many entries are this run's sessions and how
//! many are earlier runs. The named baseline of this environment is loaded, or saved from this run's
//! reference sessions when none exists (mode `establish`, the default; mode `strict` fails instead).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    monitoring::{connect, prom_time, svc_err},
    platform::Platform,
    Error, MeasurementSet, Metric,
};
use crate::{
    baseline::{
        self, compare, decide, measure_noise, named,
        scenario::{self, Established, Step, Summary},
        trend, Baseline, Estimate, History, Mode, Options as CompareOptions, Outcome, Record, Rule, Verdict,
    },
    criteria::Params,
    metrics::{
        exposition::{Family, Kind, Sample},
        promql_string,
    },
    run_dir::{RunDir, RunInfo},
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
    /// Save the baseline from this run's reference sessions when none exists for this environment.
    establish: bool,
    options: CompareOptions,
    trend_last: usize,
    reference_sessions: usize,
    sessions: usize,
    session: Duration,
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
    super::local_session::P { procedure: "regression", params }.positive(name, default)
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
        let mode_text = text(params, "mode", "HARNESS_BASELINE_MODE").unwrap_or_else(|| "establish".into());
        let (mode, establish) = match mode_text.as_str() {
            "establish" => (Mode::Lenient, true),
            other => (
                other.parse().map_err(|e: String| param_err("mode", format!("{e} (or establish, the default)")))?,
                false,
            ),
        };
        let threshold = num(params, "threshold_pct", 10.0)? / 100.0;
        let allow = params.get("allow_other_environment").and_then(|v| v.as_bool()).unwrap_or(false);
        Ok(Settings {
            history: text(params, "history", "HARNESS_HISTORY").map(PathBuf::from),
            baseline: text(params, "baseline", "HARNESS_BASELINE").unwrap_or_else(|| "main".into()),
            mode,
            establish,
            options: CompareOptions { mode, threshold, confidence: 0.99, allow_other_environment: allow },
            trend_last: num(params, "trend_runs", 20.0)? as usize,
            // 12 rounds of 3 s sessions: detection of a true slowdown of twice the threshold at 2% session
            // jitter with a loaded machine's heavy-tailed P95 in examples/regression_power.rs (in-run table).
            reference_sessions: (num(params, "reference_sessions", 12.0)? as usize).max(baseline::MIN_RUNS),
            sessions: (num(params, "sessions", 12.0)? as usize).max(1),
            session: Duration::from_secs_f64(num(params, "session_seconds", 3.0)?),
            injected_factor: num(params, "injected_factor", 1.0 + 2.0 * threshold)?,
            alert_factor: num(params, "alert_factor", 1.5)?,
            warmup: Duration::from_secs_f64(num(params, "warmup_seconds", 20.0)?),
            alert_timeout: Duration::from_secs_f64(num(params, "alert_timeout_seconds", 300.0)?),
            interval: Duration::from_secs_f64(num(params, "scrape_interval_seconds", 1.0)?),
        })
    }

    fn rule(&self) -> Rule {
        Rule {
            threshold: self.options.threshold,
            confidence: self.options.confidence,
            direction: baseline::Direction::LowerIsBetter,
        }
    }
}

/// The sessions of the in-run scenario.
#[derive(Debug, Clone)]
struct Sessions {
    reference: Vec<(Estimate, DateTime<Utc>)>,
    current: Vec<(Estimate, DateTime<Utc>)>,
    /// Geometric mean of the current sessions' P95s.
    current_mean: Estimate,
    /// Whether the slowed variant was detected and the current one left alone.
    injected: Result<Metric, Error>,
}

/// Takes the history and baseline part; the platform's metrics are reported missing with `why`.
pub fn measure_history_only(params: &Params, dir: &RunDir, target: &str, why: &str) -> Result<MeasurementSet, Error> {
    let s = Settings::from_params(params)?;
    let mut set = history_part(&s, params, dir, target, None)?;
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
    let (mut set, mut raw) = scenario_part(platform, &s, params, dir, target).await?;
    let alert = with_restore(platform, alert_time(platform, &s, &mut set.notes, &mut raw)).await;
    set = set.with("alert_time", alert.unwrap_or_else(|e| Metric::Missing { reason: e.to_string() }));
    write_raw(dir, "platform.json", &json!(raw), &mut set)?;
    Ok(set.finish())
}

/// Takes every figure but the alert path (no monitoring servers needed); `alert_time` is reported missing.
pub async fn measure_without_alert<P: Platform>(
    platform: &P,
    params: &Params,
    dir: &RunDir,
    target: &str,
) -> Result<MeasurementSet, Error> {
    let s = Settings::from_params(params)?;
    let (mut set, raw) = scenario_part(platform, &s, params, dir, target).await?;
    let why = "the alert path was not measured (measure_without_alert)";
    set = set.with("alert_time", Metric::Missing { reason: why.into() });
    write_raw(dir, "platform.json", &json!(raw), &mut set)?;
    Ok(set.finish())
}

type Raw = BTreeMap<String, serde_json::Value>;

async fn scenario_part<P: Platform>(
    platform: &P,
    s: &Settings,
    params: &Params,
    dir: &RunDir,
    target: &str,
) -> Result<(MeasurementSet, Raw), Error> {
    let mut raw = BTreeMap::new();
    let mut notes = Vec::new();
    let sessions = with_restore(platform, scenario_sessions(platform, s, &mut notes, &mut raw)).await;
    let mut set = match &sessions {
        Ok(sc) => history_part(s, params, dir, target, Some(sc))?,
        Err(e) => {
            notes.push(format!("scenario 5 sessions not measured: {e}"));
            history_part(s, params, dir, target, None)?
        }
    };
    set.notes.extend(notes);
    let detected = match sessions {
        Ok(sc) => sc.injected,
        Err(e) => Err(e),
    };
    set = set.with("injected_detected", detected.unwrap_or_else(|e| Metric::Missing { reason: e.to_string() }));
    Ok((set, raw))
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

fn p95(samples: &[f64], what: &str) -> Result<Estimate, Error> {
    let e = stats::percentile(samples, 95.0, 0.95)
        .ok_or_else(|| Error::Failed(format!("the platform reported no warm invocation in {what}")))?;
    Ok(Estimate { value: e.value, ci_low: e.ci_low, ci_high: e.ci_high, n: e.n })
}

/// The P95 of one session of warm traffic.
async fn session<P: Platform>(platform: &P, s: &Settings, what: &str) -> Result<Estimate, Error> {
    p95(&platform.warm_traffic(s.session).await?, what)
}

/// Steps 1, 3 and 4 of scenario 5, in rounds of one reference session, one current session and one
/// session of the variant slowed by `(injected_factor - 1)` times the first reference session's P95: in
/// rounds, so that a drift of the machine's load (other jobs starting or ending) shifts all three alike
/// instead of passing for a change of the function. Rounds run while either list still needs sessions.
/// The slowed sessions are not recorded in the history.
async fn scenario_sessions<P: Platform>(
    platform: &P,
    s: &Settings,
    notes: &mut Vec<String>,
    raw: &mut Raw,
) -> Result<Sessions, Error> {
    let (mut reference, mut current, mut slowed) = (Vec::new(), Vec::new(), Vec::new());
    let mut extra = None;
    let mut applied = Duration::ZERO;
    for i in 0..s.reference_sessions.max(s.sessions) {
        platform.set_slowdown(1.0).await?;
        if i < s.reference_sessions {
            let e = session(platform, s, &format!("reference session {}", i + 1)).await?;
            reference.push((e, Utc::now()));
        }
        if i < s.sessions {
            let e = session(platform, s, &format!("current session {}", i + 1)).await?;
            current.push((e, Utc::now()));
            let first = reference.first().map_or(e, |(r, _)| *r);
            let add = *extra.get_or_insert(Duration::from_secs_f64((s.injected_factor - 1.0) * first.value));
            applied = platform.add_latency(add).await?;
            slowed.push(session(platform, s, &format!("slowed session {}", i + 1)).await?);
        }
    }
    let base: Vec<Estimate> = reference.iter().map(|(e, _)| *e).collect();
    let ref_p95 = scenario::session_mean(&base)
        .ok_or_else(|| Error::Failed("the reference sessions have no positive P95".into()))?;
    platform.set_slowdown(1.0).await?;
    let mean = |list: &[Estimate], what: &str| {
        scenario::session_mean(list).ok_or_else(|| Error::Failed(format!("the {what} sessions have no positive P95")))
    };
    let current_mean = mean(&current.iter().map(|(e, _)| *e).collect::<Vec<_>>(), "current")?;
    let slowed_mean = mean(&slowed, "slowed")?;
    let injected_factor = 1.0 + applied.as_secs_f64() / ref_p95.value;
    let injected = injected(s, &base, &current_mean, &slowed_mean, injected_factor, notes, raw);
    raw.insert(
        "sessions".into(),
        json!({
            "session_seconds": s.session.as_secs_f64(),
            "reference": base, "reference_mean": ref_p95,
            "current": current.iter().map(|(e, _)| *e).collect::<Vec<_>>(), "current_mean": current_mean,
            "slowed": slowed, "slowed_mean": slowed_mean,
            "added_latency_seconds": applied.as_secs_f64(), "injected_factor_of_reference_p95": injected_factor,
        }),
    );
    Ok(Sessions { reference, current, current_mean, injected })
}

/// Whether the slowed sessions are a regression against the reference sessions while the current ones
/// are not, with the noise band of the reference sessions.
fn injected(
    s: &Settings,
    base: &[Estimate],
    current: &Estimate,
    slowed: &Estimate,
    factor: f64,
    notes: &mut Vec<String>,
    raw: &mut BTreeMap<String, serde_json::Value>,
) -> Result<Metric, Error> {
    let noise = measure_noise(base).ok_or_else(|| {
        Error::Failed(format!("{} reference sessions: too few to measure the noise band", base.len()))
    })?;
    let pooled = scenario::pooled_noise(&noise, base.len(), s.sessions);
    let undecided = |u: baseline::Undecided| Error::Failed(format!("warm P95 sessions: {u}"));
    let c = decide(base, current, &pooled, &s.rule()).map_err(undecided)?;
    let i = decide(base, slowed, &pooled, &s.rule()).map_err(undecided)?;
    notes.push(format!(
        "session-to-session noise of the warm P95: σ {:.1}% from {} reference sessions of {:.1}s; a figure \
         averaged over {} sessions is judged with σ {:.1}%",
        100.0 * noise.sigma,
        noise.runs,
        s.session.as_secs_f64(),
        s.sessions,
        100.0 * pooled.sigma
    ));
    notes.push(format!("current variant (mean of {} sessions): {}", s.sessions, c.explanation));
    notes.push(format!(
        "variant slowed by {:.1}% of the reference P95 (mean of {} sessions): {}",
        100.0 * (factor - 1.0),
        s.sessions,
        i.explanation
    ));
    raw.insert(
        "injected".into(),
        json!({ "noise": noise, "pooled_noise": pooled, "current_outcome": c, "slowed_outcome": i, "factor": factor }),
    );
    let ok = i.verdict == Verdict::Regression && c.verdict != Verdict::Regression;
    Ok(Metric::flag(ok, (base.len() + 2 * s.sessions) as u64))
}

fn history_part(
    s: &Settings,
    params: &Params,
    dir: &RunDir,
    target: &str,
    sessions: Option<&Sessions>,
) -> Result<MeasurementSet, Error> {
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
    let (reference, current_sessions) = match sessions {
        Some(sc) => (
            session_records(&info, target, Step::Reference, &sc.reference),
            session_records(&info, target, Step::Current, &sc.current),
        ),
        None => (Vec::new(), Vec::new()),
    };
    if !reference.is_empty() {
        history.append(&reference).map_err(bad)?;
        history.append(&current_sessions).map_err(bad)?;
    }
    let current: Vec<Record> = dir
        .evidence()
        .map_err(|e| Error::Failed(e.to_string()))?
        .iter()
        .map(|e| Record::from_evidence(e, &info))
        .collect();
    let stored = history.records().map_err(bad)?;
    let summary = Summary::of(&stored, &info.id);
    set.notes.push(summary.note(hdir));
    // Runs, not entries: this run's scenario sessions are this run, an earlier run's sessions are that run.
    let earlier: BTreeSet<&str> =
        stored.iter().map(|r| run_of(&r.run)).filter(|r| *r != info.id && !r.is_empty()).collect();
    let first_run = earlier.is_empty();
    let runs = earlier.len() + 1;
    let past: Vec<Record> = stored.iter().filter(|r| r.run != info.id).cloned().collect();
    let first = |what: &str| Metric::NeedsEarlierRun {
        reason: format!(
            "first run: the history store {} holds no earlier run ({} entries are this run's own scenario \
             sessions, not history); {what}, the next run decides",
            hdir.display(),
            summary.this_run.len()
        ),
    };
    set = set.with(
        "history_runs",
        if first_run { first("this run is recorded") } else { Metric::value(runs as f64, "", runs as u64) },
    );
    let trends = trends(s, &info, &past, &current, &mut set.notes);
    set = set.with(
        "trend_checks",
        if first_run { first("this run is recorded") } else { Metric::value(trends.len() as f64, "", runs as u64) },
    );
    write_raw(dir, "trends.json", &json!(trends), &mut set)?;
    let found = if reference.is_empty() {
        named::load(hdir, &s.baseline).and_then(|b| {
            if b.environment.comparable_key() == info.environment.comparable_key() || s.options.allow_other_environment
            {
                Ok(Established::Loaded(b))
            } else {
                named::load(hdir, &scenario::environment_name(&s.baseline, &info.environment.comparable_key()))
                    .map(Established::Loaded)
                    .or(Ok(Established::Loaded(b)))
            }
        })
    } else {
        scenario::establish(&history, &s.baseline, &reference, s.establish)
    };
    let mut saved_now = false;
    let b = match found {
        Err(e @ baseline::Error::NoBaseline { .. }) => {
            let reason = e.to_string();
            set.notes.push(format!("{} mode: {reason}", if s.mode == Mode::Strict { "strict" } else { "lenient" }));
            let (flag, reg) = match s.mode {
                Mode::Strict => (Metric::Missing { reason: reason.clone() }, Metric::Missing { reason }),
                Mode::Lenient => {
                    (Metric::flag(false, 1), Metric::Missing { reason: format!("nothing compared: {reason}") })
                }
            };
            return Ok(set.with("baseline", flag).with("regressions", reg));
        }
        Err(e) => return Err(bad(e)),
        Ok(Established::Saved(b, file)) => {
            saved_now = true;
            set.notes.push(format!(
                "baseline `{}`: none existed for this environment; saved {} from this run's {} reference sessions \
                 (in-run scenario step 1); later runs compare with it",
                b.name,
                file.display(),
                b.runs.len()
            ));
            b
        }
        Ok(Established::Loaded(b)) => {
            set.notes.push(format!(
                "baseline `{}` saved {} from {} entries ({} .. {})",
                b.name,
                b.saved.format("%Y-%m-%d %H:%M UTC"),
                b.runs.len(),
                b.runs.first().map_or("", String::as_str),
                b.runs.last().map_or("", String::as_str)
            ));
            b
        }
    };
    let key = info.environment.comparable_key();
    if b.environment.comparable_key() != key && !s.options.allow_other_environment {
        let reason = baseline::Error::NotComparable {
            name: b.name.clone(),
            baseline: b.environment.comparable_key(),
            current: key,
        }
        .to_string();
        return Ok(set
            .with("baseline", Metric::Missing { reason: reason.clone() })
            .with("regressions", Metric::Missing { reason }));
    }
    let flag = Metric::flag(true, b.runs.len() as u64);
    if saved_now {
        // A baseline saved from this run's own sessions cannot judge this run.
        let reason = format!(
            "first run in this environment: baseline `{}` saved from this run's reference sessions, the next run \
             decides",
            b.name
        );
        return Ok(set.with("baseline", flag).with("regressions", Metric::NeedsEarlierRun { reason }));
    }
    let mut problems = Vec::new();
    let (mut regressed, mut decided) = (0, 0);
    if !current.is_empty() {
        match compare(&b, &current, &past, &s.options) {
            Err(e) => problems.push(e.to_string()),
            Ok(c) => {
                write_raw(dir, "comparison.json", &json!(c), &mut set)?;
                for r in &c.rows {
                    match &r.outcome {
                        Ok(o) if o.verdict != Verdict::WithinNoise => {
                            set.notes.push(format!("{}: {}", r.check, o.explanation))
                        }
                        Err(why) if s.mode == Mode::Strict => {
                            set.notes.push(format!("{}: not compared: {why}", r.check))
                        }
                        _ => {}
                    }
                }
                if sessions.is_none() || s.mode == Mode::Strict {
                    problems.extend(c.problems.iter().cloned());
                }
                regressed += c.regressions().len();
                decided += c.decided();
            }
        }
    }
    if let Some(sc) = sessions {
        match scenario_outcome(s, &b, sc, &reference, &past, &info) {
            Ok(o) => {
                set.notes.push(format!(
                    "{} (scenario 5 step 3, mean of {} current sessions against baseline `{}`): {}",
                    scenario::CHECK,
                    sc.current.len(),
                    b.name,
                    o.explanation
                ));
                regressed += usize::from(o.verdict == Verdict::Regression);
                decided += 1;
            }
            Err(why) => problems.push(format!("{}: {why}", scenario::CHECK)),
        }
    }
    let reg = if !problems.is_empty() {
        Metric::Missing { reason: format!("comparison with baseline `{}` failed: {}", b.name, problems.join("; ")) }
    } else if decided == 0 {
        Metric::Missing { reason: format!("no figure of this run could be compared with baseline `{}`", b.name) }
    } else {
        Metric::value(regressed as f64, "", decided as u64)
    };
    Ok(set.with("baseline", flag).with("regressions", reg))
}

/// The run a history entry belongs to: the entry itself, or the run of a scenario session
/// (`<run>~s5-...`).
fn run_of(id: &str) -> &str {
    id.split_once("~s5-").map_or(id, |(run, _)| run)
}

fn session_records(info: &RunInfo, target: &str, step: Step, list: &[(Estimate, DateTime<Utc>)]) -> Vec<Record> {
    list.iter()
        .enumerate()
        .map(|(i, (e, t))| scenario::session_record(info, target, step, i + 1, list.len(), e, *t))
        .collect()
}

/// The mean of the current sessions against the baseline's session figures, or this run's reference sessions
/// when the baseline holds none; noise band from the history of the sessions' check in this environment
/// (earlier runs' sessions and this run's reference sessions; never the sessions being judged).
fn scenario_outcome(
    s: &Settings,
    b: &Baseline,
    sc: &Sessions,
    reference: &[Record],
    past: &[Record],
    info: &RunInfo,
) -> Result<Outcome, String> {
    let key = info.environment.comparable_key();
    let base: Vec<Estimate> = match b.checks.get(scenario::CHECK) {
        Some(e) if b.environment.comparable_key() == key => e.figures.iter().map(|f| f.estimate()).collect(),
        _ => reference
            .iter()
            .map(|r| Estimate {
                value: r.value.unwrap_or(f64::NAN),
                ci_low: r.ci_low,
                ci_high: r.ci_high,
                n: r.n.unwrap_or(0),
            })
            .collect(),
    };
    let current_ids: Vec<String> =
        (1..=sc.current.len()).map(|i| scenario::session_id(&info.id, Step::Current, i)).collect();
    let series: Vec<Estimate> = past
        .iter()
        .filter(|r| {
            r.check == scenario::CHECK
                && r.has_figure()
                && r.environment.comparable_key() == key
                && !current_ids.contains(&r.run)
        })
        .map(|r| Estimate {
            value: r.value.unwrap_or(f64::NAN),
            ci_low: r.ci_low,
            ci_high: r.ci_high,
            n: r.n.unwrap_or(0),
        })
        .collect();
    let noise = measure_noise(&series).ok_or_else(|| {
        format!("noise band unknown: {} comparable sessions, {} needed", series.len(), baseline::MIN_RUNS)
    })?;
    let pooled = scenario::pooled_noise(&noise, base.len(), sc.current.len());
    decide(&base, &sc.current_mean, &pooled, &s.rule()).map_err(|u| u.0)
}

fn trends(
    s: &Settings,
    info: &RunInfo,
    past: &[Record],
    current: &[Record],
    notes: &mut Vec<String>,
) -> Vec<baseline::Trend> {
    let key = info.environment.comparable_key();
    let mut out = Vec::new();
    let mut checks: Vec<&String> = current.iter().chain(past).map(|r| &r.check).collect();
    checks.sort();
    checks.dedup();
    for check in checks {
        let series: Vec<&Record> =
            past.iter().chain(current).filter(|r| &r.check == check && r.environment.comparable_key() == key).collect();
        let t = trend(check, &series, s.trend_last, baseline::WINDOW, baseline::Z);
        for c in &t.change_points {
            notes.push(format!("trend {check}: level changed by {:+.1}% at run {}", 100.0 * c.change, c.run));
        }
        // A trend over time: points from two runs or more (one run's scenario sessions are one run).
        let runs: BTreeSet<&str> = series.iter().map(|r| run_of(&r.run)).collect();
        if t.points.len() >= 2 && runs.len() >= 2 {
            out.push(t);
        }
    }
    out
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
