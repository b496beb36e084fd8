//! Scaling procedures on knative. `scale_up`: spikes out of idle, the latency of each until the pods the
//! autoscaler asked for were ready. `scale_down`: intermittent bursts with gaps shorter than the stable
//! window, then idle; counts pods removed before the window had passed and says whether idle pods were
//! retired after it. `concurrency`: a spike above capacity, peak pods against `max-scale`. All three watch
//! the revision's Deployment, sample it once a second with the requests in flight, and relate the
//! concurrency per ready pod to `containerConcurrency` and the autoscaling target.

use std::{sync::Arc, time::Duration};

use super::{
    error::{Error, Result},
    function::{annotation, cluster_stable_window, Function, Revision},
    procedures::{median, Ctx},
    route::Route,
    scale::{premature_scale_downs, scale_up_latency, Sample, ScalePoint, ScaleTracker},
    traffic::{closed_loop, InFlight},
};
use crate::measure::types::{MeasurementSet, Metric};

/// Slack for watch delivery when judging a scale-down against the stable window.
const WINDOW_TOLERANCE_S: f64 = 2.0;
/// Knative's default stable window.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Knative's default scale-to-zero grace period.
const SCALE_TO_ZERO_GRACE: Duration = Duration::from_secs(30);

struct Setup<R> {
    f: Function,
    rev: Revision,
    route: Arc<R>,
    path: String,
}

async fn setup<R: Route>(x: &Ctx<'_>, make_route: &impl Fn(&Function) -> Result<R>) -> Result<Setup<R>> {
    let f = Function::resolve(x.c, x.p.str("function")?).await?;
    let rev = Revision::get(x.c, &f.ready_revision()?).await?;
    let route = Arc::new(make_route(&f)?);
    Ok(Setup { f, rev, route, path: x.p.opt_str("path")?.unwrap_or("/").to_string() })
}

fn scale_log_csv(x: &Ctx<'_>, log: &[ScalePoint], samples: &[Sample]) -> Result<Vec<std::path::PathBuf>> {
    Ok(vec![
        x.raw_csv(
            "scale-events.csv",
            "t_s,desired,ready",
            log.iter().map(|p| format!("{:.3},{},{}", p.t, p.desired, p.ready)),
        )?,
        x.raw_csv(
            "scale-samples.csv",
            "t_s,desired,ready,in_flight",
            samples.iter().map(|s| format!("{:.3},{},{},{}", s.t, s.desired, s.ready, s.in_flight)),
        )?,
    ])
}

/// Concurrency per ready pod observed in the samples, against what the revision declares.
fn concurrency_note(rev: &Revision, samples: &[Sample]) -> Option<String> {
    let per_pod: Vec<f64> = samples
        .iter()
        .filter(|s| s.ready > 0 && s.in_flight > 0)
        .map(|s| s.in_flight as f64 / f64::from(s.ready))
        .collect();
    if per_pod.is_empty() {
        return None;
    }
    let peak = per_pod.iter().copied().fold(0.0, f64::max);
    let cc = rev.container_concurrency.map_or("unlimited".to_string(), |c| c.to_string());
    let target = rev.annotations.get(annotation::TARGET).cloned().unwrap_or_else(|| "cluster default".into());
    let queued = rev.container_concurrency.is_some_and(|c| peak > c as f64);
    Some(format!(
        "requests in flight per ready pod: median {:.1}, peak {peak:.1} over {} samples (containerConcurrency {cc}, autoscaling target {target}){}",
        median(&per_pod),
        per_pod.len(),
        if queued { "; above containerConcurrency the excess waited in the activator/queue-proxy" } else { "" }
    ))
}

/// `scale_up`: `spikes` spikes of `concurrency` workers for `spike_s`, each out of the revision's idle
/// scale (min-scale pods).
pub async fn scale_up<R: Route>(x: &Ctx<'_>, make_route: &impl Fn(&Function) -> Result<R>) -> Result<MeasurementSet> {
    let p = x.p;
    let spikes = p.count("spikes", 5)?;
    let workers = p.count("concurrency", 20)? as usize;
    let spike = p.secs("spike_s", 30.0)?;
    let settle = p.secs("settle_timeout_s", 300.0)?;
    let s = setup(x, make_route).await?;
    let idle = s.rev.min_scale() as u32;
    let mut tracker = ScaleTracker::start(x.c, &s.rev).await?;
    let in_flight = InFlight::default();
    let sampler = tracker.sampler(&in_flight);
    let mut outcomes = Vec::new();
    let mut sent = 0;
    for _ in 0..spikes {
        tracker
            .wait(settle, &format!("its idle scale ({idle} pods)"), |p| p.desired <= idle && p.ready <= idle)
            .await?;
        let start = tracker.now();
        let tally = closed_loop(
            s.route.clone(),
            &s.path,
            workers,
            spike,
            workers as u64 * spike.as_secs().max(1) * 1000,
            &in_flight,
        )
        .await;
        sent += tally.sent;
        outcomes.push(scale_up_latency(&tracker.log(), start, tracker.now()));
    }
    let samples = sampler.finish().await;
    let mut set = x.set();
    set.raw = scale_log_csv(x, &tracker.log(), &samples)?;
    set.raw.push(x.raw_csv(
        "spikes.csv",
        "start_s,baseline_ready,needed,latency_s",
        outcomes.iter().map(|o| {
            format!(
                "{:.3},{},{},{}",
                o.start,
                o.baseline_ready,
                o.needed,
                o.latency.map(|l| format!("{l:.3}")).unwrap_or_default()
            )
        }),
    )?);
    let censored = outcomes.iter().filter(|o| o.latency.is_none()).count();
    let latencies: Vec<f64> = outcomes.iter().map(|o| o.latency.unwrap_or(spike.as_secs_f64())).collect();
    set = set.with("latency", Metric::samples(latencies, "s"));
    set.notes.push(format!(
        "revision {}: {spikes} spikes of {workers} workers for {}s from {idle} pods ({sent} requests); latency = until the peak desired pods were ready (Deployment watch, client clock)",
        s.rev.name,
        spike.as_secs()
    ));
    if censored > 0 {
        set.notes.push(format!(
            "{censored} spike(s) never got the pods the autoscaler asked for; counted as the spike length ({}s), a lower bound",
            spike.as_secs()
        ));
    }
    set.notes.extend(concurrency_note(&s.rev, &samples));
    if let Some(base) = &x.c.config.prometheus {
        set.notes.push(super::metrics::names_note(base).await);
    }
    Ok(set)
}

/// `scale_down`: `bursts` bursts of `concurrency` workers for `burst_s`, `gap_s` apart (shorter than the
/// stable window), then idle for `observe_s`.
pub async fn scale_down<R: Route>(x: &Ctx<'_>, make_route: &impl Fn(&Function) -> Result<R>) -> Result<MeasurementSet> {
    let p = x.p;
    let s = setup(x, make_route).await?;
    let (window, window_from) = match s.rev.window() {
        Some(w) => (w, "the revision's autoscaling.knative.dev/window"),
        None => match cluster_stable_window(x.c).await {
            Some(w) => (w, "config-autoscaler stable-window"),
            None => (DEFAULT_WINDOW, "Knative's default stable window (config-autoscaler not readable)"),
        },
    };
    let bursts = p.count("bursts", 3)?;
    let workers = p.count("concurrency", 10)? as usize;
    let burst = p.secs("burst_s", 10.0)?;
    let gap = p.secs("gap_s", window.as_secs_f64() / 2.0)?;
    if gap >= window {
        return Err(Error::Param {
            param: "gap_s".into(),
            problem: format!(
                "{}s is not shorter than the stable window ({}s): the load would not be intermittent",
                gap.as_secs_f64(),
                window.as_secs_f64()
            ),
        });
    }
    let observe = p.secs("observe_s", (window + SCALE_TO_ZERO_GRACE + Duration::from_secs(30)).as_secs_f64())?;
    let idle = s.rev.min_scale() as u32;
    let mut tracker = ScaleTracker::start(x.c, &s.rev).await?;
    let in_flight = InFlight::default();
    let sampler = tracker.sampler(&in_flight);
    let mut traffic = Vec::new();
    for i in 0..bursts {
        let start = tracker.now();
        closed_loop(
            s.route.clone(),
            &s.path,
            workers,
            burst,
            workers as u64 * burst.as_secs().max(1) * 1000,
            &in_flight,
        )
        .await;
        traffic.push((start, tracker.now()));
        if i + 1 < bursts {
            tokio::time::sleep(gap).await;
        }
    }
    let last_end = tracker.now();
    let retired =
        tracker.wait(observe, &format!("its idle scale ({idle} pods) after the load"), |p| p.desired <= idle).await;
    let retired = match retired {
        Ok(()) => true,
        Err(Error::Timeout { .. }) => false,
        Err(e) => return Err(e),
    };
    let samples = sampler.finish().await;
    let log = tracker.log();
    let downs = premature_scale_downs(&log, &traffic, window.as_secs_f64(), WINDOW_TOLERANCE_S);
    let premature: u32 = downs.iter().filter(|d| d.premature).map(|d| d.from - d.to).sum();
    let peak = log.iter().filter(|p| p.t >= traffic[0].0).map(|p| p.desired).max().unwrap_or(0);
    let mut set = x.set();
    set.raw = scale_log_csv(x, &log, &samples)?;
    set.raw.push(x.raw_csv(
        "scale-downs.csv",
        "t_s,from,to,since_traffic_s,premature",
        downs.iter().map(|d| {
            format!(
                "{:.3},{},{},{},{}",
                d.t,
                d.from,
                d.to,
                d.since_traffic.map(|v| format!("{v:.3}")).unwrap_or_default(),
                d.premature
            )
        }),
    )?);
    set = set.with("premature", Metric::value(f64::from(premature), "", downs.len().max(1) as u64));
    set = set.with(
        "retired_after_idle",
        if peak > idle {
            Metric::flag(retired, 1)
        } else {
            Metric::Missing {
                reason: format!(
                    "the bursts never scaled revision {} above its idle {idle} pod(s): nothing to retire; raise `concurrency`",
                    s.rev.name
                ),
            }
        },
    );
    set.notes.push(format!(
        "revision {}: {bursts} bursts of {workers} workers for {}s, {}s apart; stable window {}s ({window_from}); {} scale-down decision(s), {premature} pod(s) removed inside the window; peak {peak} desired pods; back to {idle} pods {}",
        s.rev.name,
        burst.as_secs(),
        gap.as_secs(),
        window.as_secs(),
        downs.len(),
        match log.iter().find(|p| p.t >= last_end && p.desired <= idle) {
            Some(p) if retired => format!("{:.0}s after the last burst", p.t - last_end),
            _ => format!("NOT within {}s of the last burst", observe.as_secs()),
        }
    ));
    set.notes.extend(concurrency_note(&s.rev, &samples));
    Ok(set)
}

/// `concurrency`: one spike of `concurrency` workers for `duration_s`; peak pods against `max-scale`.
pub async fn concurrency<R: Route>(
    x: &Ctx<'_>,
    make_route: &impl Fn(&Function) -> Result<R>,
) -> Result<MeasurementSet> {
    let p = x.p;
    let s = setup(x, make_route).await?;
    let workers = p.count("concurrency", 50)? as usize;
    let duration = p.secs("duration_s", 60.0)?;
    let tracker = ScaleTracker::start(x.c, &s.rev).await?;
    let in_flight = InFlight::default();
    let sampler = tracker.sampler(&in_flight);
    let start = tracker.now();
    let tally = closed_loop(
        s.route.clone(),
        &s.path,
        workers,
        duration,
        workers as u64 * duration.as_secs().max(1) * 1000,
        &in_flight,
    )
    .await;
    let samples = sampler.finish().await;
    let log = tracker.log();
    let peak = log.iter().filter(|p| p.t >= start).map(|p| p.desired.max(p.ready)).max().unwrap_or(0);
    let mut set = x.set();
    set.raw = scale_log_csv(x, &log, &samples)?;
    set = set.with(
        "over_limit",
        match s.rev.max_scale() {
            Some(max) => Metric::value(f64::from(peak.saturating_sub(max as u32)), "", samples.len().max(1) as u64),
            None => Metric::Missing {
                reason: format!(
                    "revision {} sets no autoscaling.knative.dev/max-scale: there is no pod limit to hold",
                    s.rev.name
                ),
            },
        },
    );
    set = set.with(
        "excess_throttled",
        Metric::Missing {
            reason: "Knative queues requests beyond capacity in the activator and queue-proxy instead of answering 429"
                .into(),
        },
    );
    set.notes.push(format!(
        "revision {} of {}: {workers} workers for {}s ({} requests, {} non-2xx, {} without answer); peak {peak} pods, max-scale {}",
        s.rev.name,
        s.f.service_name(),
        duration.as_secs(),
        tally.sent,
        tally.server_errors + tally.rejected,
        tally.no_answer,
        s.rev.max_scale().map_or("unset".to_string(), |m| m.to_string())
    ));
    set.notes.extend(concurrency_note(&s.rev, &samples));
    Ok(set)
}
