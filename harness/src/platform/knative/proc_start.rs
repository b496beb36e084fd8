//! Start procedures on knative: `cold_start` (scale from zero, one request per sample), `warm_start`
//! (sequential requests to a ready pod) and `cold_start_rate` (share of requests served by a pod that was
//! not yet ready when the request was sent, under a given min-scale and concurrency).

use std::sync::Arc;

use super::{
    cold::{cold_sample, wait_no_pods, ColdSample, PodReadiness},
    error::{Error, Result},
    function::Function,
    procedures::{median, restoring, with_min_scale, Ctx},
    route::Route,
    scale::ScaleTracker,
    traffic::{closed_loop, InFlight},
};
use crate::measure::types::{MeasurementSet, Metric};

fn fmt_s(v: f64) -> String {
    format!("{v:.3}")
}

/// `cold_start`: `samples` scale-from-zero requests. min-scale is set to 0 for the measurement when the
/// revision keeps pods warm, and restored after.
pub async fn cold_start<R: Route>(x: &Ctx<'_>, make_route: &impl Fn(&Function) -> Result<R>) -> Result<MeasurementSet> {
    let (c, p) = (x.c, x.p);
    let samples = p.count("samples", 30)?;
    let path = p.opt_str("path")?.unwrap_or("/").to_string();
    let idle = p.secs("idle_timeout_s", 600.0)?;
    let cold_to = p.secs("cold_timeout_s", 120.0)?;
    let rollout = p.secs("rollout_timeout_s", 300.0)?;
    let f = Function::resolve(c, p.str("function")?).await?;
    let (f, rev, ov) = with_min_scale(c, f, 0, rollout).await?;
    let route = make_route(&f)?;
    let body = async {
        let mut out: Vec<ColdSample> = Vec::new();
        for i in 0..samples {
            wait_no_pods(c, &rev, idle).await?;
            let s = cold_sample(c, &rev, &route, &path, cold_to).await?;
            if !(200..300).contains(&s.status) {
                return Err(Error::Measurement(format!(
                    "cold request {} of {samples} through {} answered HTTP {}",
                    i + 1,
                    route.describe(),
                    s.status
                )));
            }
            out.push(s);
        }
        Ok(out)
    };
    let (all, mut notes) = restoring(c, &f, ov, body).await?;
    let (cold, warm): (Vec<&ColdSample>, Vec<&ColdSample>) =
        all.iter().partition(|s| s.served.as_ref().is_none_or(|v| v.cold));
    if !warm.is_empty() {
        notes.push(format!(
            "{} sample(s) excluded: the function said they were not its environment's first request",
            warm.len()
        ));
    }
    let raw = x.raw_csv(
        "cold.csv",
        "sample,client_s,replicas_up_s,pod_ready_s,pod,status,first_request,init_code_ms",
        all.iter().enumerate().map(|(i, s)| {
            let served = s.served.as_ref();
            format!(
                "{},{},{},{},{},{},{},{}",
                i + 1,
                fmt_s(s.client_s),
                s.scaled_s.map(fmt_s).unwrap_or_default(),
                fmt_s(s.ready_s),
                s.pod,
                s.status,
                served.map(|v| v.cold.to_string()).unwrap_or_default(),
                served.and_then(|v| v.init_code_ms).map(|m| m.to_string()).unwrap_or_default()
            )
        }),
    )?;
    let client: Vec<f64> = cold.iter().map(|s| s.client_s).collect();
    let ready: Vec<f64> = cold.iter().map(|s| s.ready_s).collect();
    let init_code: Option<Vec<f64>> =
        cold.iter().map(|s| s.served.as_ref().and_then(|v| v.init_code_ms).map(|m| m / 1000.0)).collect();
    let scaled: Vec<f64> = cold.iter().filter_map(|s| s.scaled_s).collect();
    notes.push(format!(
        "knative revision {}: each sample waited for zero pods, then timed one request through the route on the client clock; init_duration is the time until the new pod was Ready (pod watch)",
        rev.name
    ));
    if !scaled.is_empty() {
        notes.push(format!(
            "median time until the Deployment left 0 replicas: {:.3}s ({} samples)",
            median(&scaled),
            scaled.len()
        ));
    }
    let missing = |r: &str| Metric::Missing { reason: r.into() };
    let mut set = x
        .set()
        .with("client_latency", Metric::samples(client, "s"))
        .with("init_duration", Metric::samples(ready.clone(), "s"));
    set = match init_code.filter(|v| !v.is_empty()) {
        Some(code) => {
            let boot = ready.iter().zip(&code).map(|(r, c)| (r - c).max(0.0)).collect();
            set.with("init_code", Metric::samples(code, "s")).with("bootstrap", Metric::samples(boot, "s"))
        }
        None => {
            let why =
                "the function does not report its init time (init_code_ms in its response, as the fixture in fixtures/knative/fn does)";
            set.with("init_code", missing(why)).with("bootstrap", missing(why))
        }
    };
    set = set.with(
        "baseline_reduction",
        missing("not measured on knative: it needs the baseline (single-stage) image deployed as a second function"),
    );
    set.raw.push(raw);
    set.notes = notes;
    Ok(set)
}

/// `warm_start`: one request to make sure a pod is ready, then `samples` sequential requests.
pub async fn warm_start<R: Route>(x: &Ctx<'_>, make_route: &impl Fn(&Function) -> Result<R>) -> Result<MeasurementSet> {
    let (c, p) = (x.c, x.p);
    let samples = p.count("samples", 300)?;
    let path = p.opt_str("path")?.unwrap_or("/").to_string();
    let f = Function::resolve(c, p.str("function")?).await?;
    let route = make_route(&f)?;
    let first = route.get(&path).await?;
    if !first.ok() {
        return Err(Error::Measurement(format!(
            "warm-up request through {} answered HTTP {}",
            route.describe(),
            first.status
        )));
    }
    let (mut lat, mut errors, mut cold) = (Vec::new(), 0u64, 0u64);
    for _ in 0..samples {
        let t = tokio::time::Instant::now();
        let r = route.get(&path).await?;
        let s = t.elapsed().as_secs_f64();
        match (r.ok(), r.served().is_some_and(|v| v.cold)) {
            (false, _) => errors += 1,
            (true, true) => cold += 1,
            (true, false) => lat.push(s),
        }
    }
    let raw = x.raw_csv(
        "warm.csv",
        "request,client_s",
        lat.iter().enumerate().map(|(i, s)| format!("{},{}", i + 1, fmt_s(*s))),
    )?;
    let mut set = x.set().with("client_latency", Metric::samples(lat, "s")).with(
        "duration",
        Metric::Missing {
            reason: "Knative reports no per-invocation duration to the caller (Lambda's REPORT line); the client latency is the figure"
                .into(),
        },
    );
    set.notes.push(format!("{samples} sequential requests through {} after one warm-up request", route.describe()));
    if errors + cold > 0 {
        set.notes.push(format!("excluded: {errors} non-2xx answer(s), {cold} answer(s) from a new environment"));
    }
    set.raw.push(raw);
    Ok(set)
}

/// `cold_start_rate`: with min-scale `min_scale` (set for the measurement when different) and its pods
/// ready, `concurrency` workers send requests for `duration_s`; a request is cold when the pod that served
/// it (the fixture reports its pod name) was not ready when the request was sent.
pub async fn cold_start_rate<R: Route>(
    x: &Ctx<'_>,
    make_route: &impl Fn(&Function) -> Result<R>,
) -> Result<MeasurementSet> {
    let (c, p) = (x.c, x.p);
    let min_scale = p.u64("min_scale", 1)?;
    let workers = p.count("concurrency", 10)? as usize;
    let duration = p.secs("duration_s", 30.0)?;
    let rollout = p.secs("rollout_timeout_s", 300.0)?;
    let path = p.opt_str("path")?.unwrap_or("/").to_string();
    let f = Function::resolve(c, p.str("function")?).await?;
    let (f, rev, ov) = with_min_scale(c, f, min_scale, rollout).await?;
    let route = Arc::new(make_route(&f)?);
    let body = async {
        let mut tracker = ScaleTracker::start(c, &rev).await?;
        tracker
            .wait(rollout, &format!("{min_scale} ready pod(s) (min-scale)"), |s| s.ready as u64 >= min_scale)
            .await?;
        let (readiness, task) = PodReadiness::track(c, &rev).await?;
        let tally = closed_loop(
            route.clone(),
            &path,
            workers,
            duration,
            (workers as u64) * duration.as_secs().max(1) * 1000,
            &InFlight::default(),
        )
        .await;
        task.abort();
        Ok((tally, readiness))
    };
    let ((tally, readiness), notes) = restoring(c, &f, ov, body).await?;
    let cold =
        tally.served.iter().filter(|(sent, env)| readiness.ready_at(env).is_none_or(|ready| ready > *sent)).count();
    let recognised = tally.served.iter().filter(|(_, env)| readiness.ready_at(env).is_some()).count();
    let metric = if tally.served.is_empty() {
        Metric::Missing {
            reason: format!(
                "no answer named its environment ({} requests, first error: {:?})",
                tally.sent, tally.first_error
            ),
        }
    } else if recognised == 0 {
        Metric::Missing {
            reason: format!(
                "the function's env_id does not name a pod of revision {} (the fixture reports HOSTNAME)",
                rev.name
            ),
        }
    } else {
        Metric::value(100.0 * cold as f64 / tally.served.len() as f64, "%", tally.served.len() as u64)
    };
    let mut set = x.set().with("rate", metric);
    set.notes = notes;
    set.notes.push(format!(
        "{} requests from {workers} workers over {}s with min-scale {min_scale}; {} pod(s) served; {} non-2xx, {} without answer",
        tally.sent,
        duration.as_secs(),
        tally.envs.len(),
        tally.server_errors + tally.rejected,
        tally.no_answer
    ));
    Ok(set)
}
