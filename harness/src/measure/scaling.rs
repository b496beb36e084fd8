//! `scale_up`, `scale_down` and `concurrency` on the local target, observed from the platform's own list of
//! environments (sampled every few ms) and the responses.
//!
//! Scale-up: from idle (a configuration update retires every environment), `concurrency` invocations that
//! each sleep `work_ms` are sent at once; the sample is the time until that many distinct environments are
//! initialized and serving, and the responses must name that many distinct environments. Scale-down: a
//! short-idle function under bursts separated by gaps shorter than its idle timeout; an environment that
//! disappears while its last activity is less than the idle timeout ago is premature; after the load, every
//! environment must be gone within the idle window plus a bounded slack. Concurrency: reserved concurrency
//! R, 3R simultaneous invocations; the peak of live environments must stay at or below R and the excess
//! must be answered 429.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    local_session::{function_spec, put_chart, put_samples, Session, P},
    Error, Ledger, MeasurementSet, Metric,
};
use crate::{
    criteria::Params,
    local::EnvState,
    measure::raw::{Mark, Timeline, TIMELINE_FILE},
    platform::LocalConfig,
    run_dir::RunDir,
};

const POLL: Duration = Duration::from_millis(20);

/// Peak live environments of a sampled timeline (`(t_s, live environments)`) and by how many it exceeds
/// `limit`.
pub fn concurrency_excess(samples: &[(f64, usize)], limit: usize) -> (usize, usize) {
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    (peak, peak.saturating_sub(limit))
}

/// Requests sent per second in each sampling interval: the sends in `(t[i-1], t[i]]` over its length (the
/// first interval starts at 0).
pub(crate) fn send_rates(t_s: &[f64], sends: &[f64]) -> Vec<f64> {
    let mut prev = 0.0;
    t_s.iter()
        .enumerate()
        .map(|(i, &t)| {
            let n = sends.iter().filter(|&&x| (x > prev || (i == 0 && x >= prev)) && x <= t).count();
            let r = if t > prev { n as f64 / (t - prev) } else { 0.0 };
            prev = t;
            r
        })
        .collect()
}

/// An environment that left the platform's list: when it was last seen active and when it was gone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Departure {
    /// Seconds since the start when it was last seen initializing or busy (or its invocation count moved).
    pub last_active_s: f64,
    /// Seconds since the start when it was first seen missing.
    pub gone_s: f64,
}

/// Departures whose idle time was shorter than `idle_s` by more than `slack_s` (the sampling period plus
/// the platform's upkeep tick): retired before their idle window ended.
pub fn premature(departures: &[Departure], idle_s: f64, slack_s: f64) -> usize {
    departures.iter().filter(|d| d.gone_s - d.last_active_s < idle_s - slack_s).count()
}

/// Follows the environments of a function: activity per environment and departures.
#[derive(Default)]
struct Tracker {
    alive: BTreeMap<String, (f64, u64)>,
    departures: Vec<Departure>,
    t: Vec<f64>,
    envs: Vec<f64>,
}

impl Tracker {
    fn sample(&mut self, s: &Session, function: &str, t: f64) -> usize {
        let now: BTreeMap<String, (EnvState, u64)> =
            s.envs(function).into_iter().map(|e| (e.id, (e.state, e.invocations))).collect();
        let gone: Vec<String> = self.alive.keys().filter(|k| !now.contains_key(*k)).cloned().collect();
        for k in gone {
            let (last, _) = self.alive.remove(&k).unwrap_or((t, 0));
            self.departures.push(Departure { last_active_s: last, gone_s: t });
        }
        for (id, (state, inv)) in &now {
            let e = self.alive.entry(id.clone()).or_insert((t, *inv));
            if matches!(state, EnvState::Busy | EnvState::Initializing) || *inv != e.1 {
                *e = (t, *inv);
            }
        }
        self.t.push(t);
        self.envs.push(now.len() as f64);
        now.len()
    }
}

/// `latency` of a scale-up test and its ledger (every spike: counted, or failed by class), once for every
/// platform: a spike that did not scale, or whose invocations failed, fails the check beyond the failure
/// budget (`max_failures`, default 0) instead of leaving the figure to the spikes that went well; fewer
/// counted spikes than asked is a shortfall.
pub(super) fn scale_up_figures(
    set: &mut MeasurementSet,
    dir: &RunDir,
    samples: Vec<f64>,
    unit: &str,
    ledger: Ledger,
) -> Result<(), Error> {
    set.notes.extend(ledger.notes("scale_up spikes"));
    put_samples(set, dir, "latency", samples, unit)?;
    set.ledgers.insert("latency".into(), ledger);
    Ok(())
}

/// Refuses a spike the local platform cannot hold, before anything starts: each environment is given its
/// function's memory size, and `concurrency` of them must fit in the machine's available memory.
pub fn holds(concurrency: usize, memory_mb: u32, available_bytes: u64) -> Result<(), Error> {
    let per_env = u64::from(memory_mb) * 1024 * 1024;
    let fits = available_bytes / per_env.max(1);
    if concurrency as u64 <= fits {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(Error::Param {
        procedure: "scale_up".into(),
        param: "concurrency".into(),
        problem: format!(
            "{concurrency} concurrent environments of {memory_mb} MB need {:.1} GiB; the local platform holds at most {fits} of that size in this machine's {:.1} GiB of available memory (lower `concurrency`, or run the spike on the aws or knative target)",
            gib(per_env * concurrency as u64),
            gib(available_bytes)
        ),
    })
}

/// Runs `scale_up`. Params: `function`, `concurrency` (20), `spikes` (5), `work_ms` (1000), `timeout_s` (30),
/// `max_failures` (0 spikes).
pub async fn scale_up(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "scale_up", params };
    p.only(&["concurrency", "spikes", "work_ms", "timeout_s", "max_failures"])?;
    let budget = p.u64("max_failures", 0)?;
    let function = p.str("function", "fixture-rust")?;
    let c = p.count("concurrency", 20)? as usize;
    let spikes = p.count("spikes", 5)?;
    let work_ms = p.f64("work_ms", 1000.0)?;
    let timeout = Duration::from_secs_f64(p.f64("timeout_s", 30.0)?);
    let spec = function_spec(cfg, &function)?;
    // Unknown available memory refuses nothing (the spike then shows what the machine holds).
    if let Some(available) = crate::fingerprint::meminfo_bytes("MemAvailable") {
        holds(c, spec.memory_mb, available)?;
    }
    let s = Session::start(cfg, |_| {}).await?;
    let r = async {
        let phase = crate::progress::phase(&format!("scale_up: {spikes} spikes to {c} concurrent on {function}"), Some(spikes));
        let (mut lat, mut ledger) = (Vec::new(), Ledger::new(budget).asking(spikes.saturating_sub(budget)));
        let mut tl = Timeline { t_s: vec![], envs: vec![], load_rps: vec![], limit: spec.reserved_concurrency.map(f64::from), marks: vec![] };
        let t0 = Instant::now();
        let mut sends = Vec::new();
        for i in 0..spikes {
            phase.waiting_for("the configuration update to retire the environments (back to idle)");
            s.retire_all(&function, &spec).await?;
            let start = Instant::now();
            let at = t0.elapsed().as_secs_f64();
            tl.marks.push(Mark { t_s: at, label: format!("spike {}", i + 1) });
            sends.extend(std::iter::repeat_n(at, c));
            let calls: Vec<_> = (0..c)
                .map(|_| {
                    let s = &s;
                    let f = function.clone();
                    async move { s.invoke(&f, &json!({"work_ms": work_ms as u64, "work_mode": "sleep"})).await }
                })
                .collect();
            let mut all = Box::pin(futures::future::join_all(calls));
            let mut reached = None;
            let results = loop {
                tokio::select! {
                    r = &mut all => break r,
                    _ = tokio::time::sleep(POLL) => {
                        let serving = s.envs(&function).iter().filter(|e| !matches!(e.state, EnvState::Initializing | EnvState::Retired)).count();
                        tl.t_s.push(t0.elapsed().as_secs_f64());
                        tl.envs.push(serving as f64);
                        if reached.is_none() && serving >= c {
                            reached = Some(start.elapsed());
                            tl.marks.push(Mark { t_s: t0.elapsed().as_secs_f64(), label: "target reached".into() });
                        }
                        if start.elapsed() > timeout {
                            return Err(Error::Failed(format!("spike {}: invocations still in flight after {:.0} s", i + 1, timeout.as_secs_f64())));
                        }
                    }
                }
            };
            let ok: Vec<_> = results.into_iter().collect::<Result<Vec<_>, _>>()?;
            let distinct: BTreeSet<_> = ok.iter().filter(|r| r.ok()).filter_map(|r| r.env_id.clone()).collect();
            let failed = ok.iter().filter(|r| !r.ok()).count();
            let spike = i + 1;
            match reached {
                _ if failed > 0 => {
                    let first = ok.iter().find(|r| !r.ok()).map(|r| r.status).unwrap_or_default();
                    ledger.fail("invocations failed", format!("spike {spike}: {failed} of {c} invocations failed (first status {first})"));
                }
                Some(d) if distinct.len() >= c => {
                    lat.push(d.as_secs_f64());
                    ledger.count();
                }
                Some(_) => ledger.fail("not scaled", format!("spike {spike}: {c} environments were up but {} distinct ones answered the {c} invocations", distinct.len())),
                None => ledger.fail("not scaled", format!(
                    "spike {spike}: {c} serving environments never reached while the {c} invocations of {work_ms} ms ran ({} distinct answered)",
                    distinct.len()
                )),
            }
            phase.inc();
        }
        phase.finish();
        tl.load_rps = send_rates(&tl.t_s, &sends);
        Ok::<_, Error>((lat, ledger, tl))
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let (lat, ledger, tl) = r?;
    let mut set = MeasurementSet::new("scale_up", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "{} of {spikes} spikes from idle to {c} concurrent invocations ({work_ms} ms each) reached {c} initialized environments and got answers from {c} distinct ones",
        lat.len()
    ));
    scale_up_figures(&mut set, dir, lat, "s", ledger)?;
    put_chart(&mut set, dir, TIMELINE_FILE, &tl)?;
    Ok(set.finish())
}

/// Runs `scale_down`. Params: `function` (a short idle timeout), `bursts` (4), `concurrency` (3),
/// `work_ms` (200), `gap_fraction` (0.5 of the idle timeout).
pub async fn scale_down(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "scale_down", params };
    let function = p.str("function", "fixture-rust-idle")?;
    let bursts = p.count("bursts", 4)?;
    let c = p.count("concurrency", 3)? as usize;
    let work_ms = p.f64("work_ms", 200.0)?;
    let spec = function_spec(cfg, &function)?;
    let idle = spec.idle_timeout_s;
    let gap = Duration::from_secs_f64(idle * p.f64("gap_fraction", 0.5)?.min(0.9));
    if idle > 30.0 {
        return Err(Error::Param {
            procedure: "scale_down".into(),
            param: "function".into(),
            problem: format!("`{function}` has an idle timeout of {idle} s; the procedure needs a short one (<= 30 s) to stay bounded"),
        });
    }
    let s = Session::start(cfg, |_| {}).await?;
    let r = async {
        let phase =
            crate::progress::phase(&format!("scale_down: {bursts} bursts on {function}, then {idle} s idle"), None);
        let t0 = Instant::now();
        let mut tr = Tracker::default();
        let mut marks = Vec::new();
        let mut sends = Vec::new();
        for b in 0..bursts {
            let at = t0.elapsed().as_secs_f64();
            marks.push(Mark { t_s: at, label: format!("burst {}", b + 1) });
            sends.extend(std::iter::repeat_n(at, c));
            let payload = json!({"work_ms": work_ms as u64, "work_mode": "sleep"});
            let calls: Vec<_> = (0..c).map(|_| s.invoke(&function, &payload)).collect();
            let mut all = Box::pin(futures::future::join_all(calls));
            let res = loop {
                tokio::select! {
                    r = &mut all => break r,
                    _ = tokio::time::sleep(POLL) => { tr.sample(&s, &function, t0.elapsed().as_secs_f64()); }
                }
            };
            for r in res {
                r?;
            }
            tr.sample(&s, &function, t0.elapsed().as_secs_f64());
            if b + 1 < bursts {
                phase.waiting_for("a gap shorter than the idle timeout");
                let until = Instant::now() + gap;
                while Instant::now() < until {
                    tokio::time::sleep(POLL * 5).await;
                    tr.sample(&s, &function, t0.elapsed().as_secs_f64());
                }
            }
        }
        let load_end = t0.elapsed().as_secs_f64();
        marks.push(Mark { t_s: load_end, label: "load stops".into() });
        marks.push(Mark { t_s: load_end + idle, label: "idle window ends".into() });
        let during_load = tr.departures.len();
        let peak = tr.envs.iter().cloned().fold(0.0, f64::max) as usize;
        phase.waiting_for("the idle window to end");
        let deadline = Instant::now() + Duration::from_secs_f64(idle + 5.0);
        while Instant::now() < deadline {
            tokio::time::sleep(POLL * 5).await;
            if tr.sample(&s, &function, t0.elapsed().as_secs_f64()) == 0 {
                break;
            }
        }
        phase.finish();
        let left = s.envs(&function).len();
        Ok::<_, Error>((tr, marks, during_load, peak, left, load_end, sends))
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let (tr, marks, during_load, peak, left, load_end, sends) = r?;
    let slack = (POLL * 5).as_secs_f64() + 0.15;
    let early = premature(&tr.departures, idle, slack);
    let mut set = MeasurementSet::new("scale_down", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "`{function}` (idle timeout {idle} s): {bursts} bursts of {c} x {work_ms} ms, gaps {:.1} s; peak {peak} environments, {during_load} left during the load, {} departures in all, {early} before their idle window ended (slack {slack:.2} s)",
        gap.as_secs_f64(),
        tr.departures.len()
    ));
    if let Some(d) =
        tr.departures.iter().filter(|d| d.gone_s >= load_end).map(|d| d.gone_s - d.last_active_s).reduce(f64::max)
    {
        set.notes.push(format!("after the load, the last environment went {d:.2} s after its last activity; {left} still alive at the end of the wait"));
    }
    let n = tr.departures.len() as u64 + left as u64;
    if peak == 0 {
        return Err(Error::Failed(format!("`{function}`: no environment was ever seen during the load")));
    }
    set.metrics.insert("premature".into(), Metric::value(early as f64, "", n));
    set.metrics.insert("retired_after_idle".into(), Metric::flag(left == 0 && early == 0, n));
    put_chart(
        &mut set,
        dir,
        TIMELINE_FILE,
        &Timeline {
            load_rps: send_rates(&tr.t, &sends),
            t_s: tr.t,
            envs: tr.envs,
            limit: spec.reserved_concurrency.map(f64::from),
            marks,
        },
    )?;
    Ok(set.finish())
}

/// `over_limit` and `excess_throttled` of a concurrency test, once for every platform. The limit was only
/// tested if at least `limit` invocations succeeded at once: with fewer, nothing ran that could exceed it,
/// and both figures are missing with the reason instead of reading "0 over the limit".
#[allow(clippy::too_many_arguments)]
pub fn concurrency_figures(
    set: &mut MeasurementSet,
    limit: usize,
    ok: usize,
    over: usize,
    observations: u64,
    throttled: usize,
    excess: usize,
    sent: u64,
) {
    if ok < limit {
        let why = format!(
            "only {ok} of {sent} invocations succeeded, fewer than the reserved concurrency {limit}: the limit was never reached, so exceeding it could not be observed"
        );
        set.metrics.insert("over_limit".into(), Metric::Missing { reason: why.clone() });
        set.metrics.insert("excess_throttled".into(), Metric::Missing { reason: why });
        return;
    }
    set.metrics.insert("over_limit".into(), Metric::value(over as f64, "", observations));
    set.metrics.insert(
        "excess_throttled".into(),
        Metric::value(throttled.min(excess) as f64 / excess.max(1) as f64 * 100.0, "%", sent),
    );
}

/// Runs `concurrency`. Params: `function`, `reserved` (5), `work_ms` (1000).
pub async fn concurrency(params: &Params, cfg: &LocalConfig, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "concurrency", params };
    let function = p.str("function", "fixture-rust")?;
    let r_limit = p.count("reserved", 5)? as usize;
    let work_ms = p.f64("work_ms", 1000.0)?;
    let spec = function_spec(cfg, &function)?;
    let s = Session::start(cfg, |_| {}).await?;
    let r = async {
        let phase = crate::progress::phase(
            &format!("concurrency: {} requests at reserved concurrency {r_limit} on {function}", 3 * r_limit),
            None,
        );
        s.retire_all(&function, &spec).await?;
        s.t.client.put_concurrency(&function, r_limit as u32).await.map_err(|e| Error::Unavailable {
            what: format!("PutFunctionConcurrency {function}"),
            detail: e.to_string(),
        })?;
        let t0 = Instant::now();
        let payload = json!({"work_ms": work_ms as u64, "work_mode": "sleep"});
        let calls: Vec<_> = (0..3 * r_limit).map(|_| s.invoke(&function, &payload)).collect();
        let mut all = Box::pin(futures::future::join_all(calls));
        let mut samples = Vec::new();
        let res = loop {
            tokio::select! {
                r = &mut all => break r,
                _ = tokio::time::sleep(POLL) => {
                    let live = s.envs(&function).iter().filter(|e| e.state != EnvState::Retired).count();
                    samples.push((t0.elapsed().as_secs_f64(), live));
                }
            }
        };
        samples.push((t0.elapsed().as_secs_f64(), s.envs(&function).len()));
        let _ = s.t.client.delete_concurrency(&function).await;
        phase.finish();
        let res = res.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok::<_, Error>((samples, res))
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let (samples, res) = r?;
    let (listed, _) = concurrency_excess(&samples, r_limit);
    // A second observation, independent of the platform's list: the environments that answered. The
    // invocations were sent at once and each outlasts the burst's start, so every distinct environment
    // among the answers was live at the same time.
    let answered: BTreeSet<&str> = res.iter().filter(|r| r.ok()).filter_map(|r| r.env_id.as_deref()).collect();
    let peak = listed.max(answered.len());
    let over = peak.saturating_sub(r_limit);
    let throttled = res.iter().filter(|r| r.status == 429).count();
    let ok = res.iter().filter(|r| r.ok()).count();
    let excess = 3 * r_limit - r_limit;
    let mut set = MeasurementSet::new("concurrency", "local", params);
    set.notes.push(mode);
    set.notes.push(format!(
        "reserved concurrency {r_limit} on `{function}`, {} simultaneous invocations of {work_ms} ms: {ok} ok, {throttled} answered 429; peak {listed} live environments in the platform's list over {} samples, {} distinct environments in the answers",
        3 * r_limit,
        samples.len(),
        answered.len()
    ));
    concurrency_figures(&mut set, r_limit, ok, over, samples.len() as u64, throttled, excess, res.len() as u64);
    put_chart(
        &mut set,
        dir,
        TIMELINE_FILE,
        &Timeline {
            t_s: samples.iter().map(|s| s.0).collect(),
            envs: samples.iter().map(|s| s.1 as f64).collect(),
            load_rps: send_rates(&samples.iter().map(|s| s.0).collect::<Vec<_>>(), &vec![0.0; 3 * r_limit]),
            limit: Some(r_limit as f64),
            marks: vec![Mark { t_s: 0.0, label: format!("{} requests at once", 3 * r_limit) }],
        },
    )?;
    Ok(set.finish())
}
