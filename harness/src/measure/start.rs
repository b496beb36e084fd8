//! `cold_start` and `warm_start`, once for every [`FunctionPlatform`].
//!
//! Cold start: per sample, force a new execution environment (a configuration update retires the old ones,
//! as on Lambda), invoke, and count the sample only if it provably came from a new environment: the
//! platform's REPORT carries an Init (or SnapStart Restore) Duration and, where the function reports
//! itself, it says `cold: true`, `invocations: 1` and an environment id never seen before. Warm start:
//! invocations on an environment that served before (no Init Duration, the function's `cold: false`).
//!
//! Every attempt lands in a [`Ledger`]: failed invocations (function errors, timeouts, throttles, failed
//! calls) are counted as failures, never dropped like a rejected sample; the checks reading the figures fail
//! when failures exceed `max_failures` (default 0). Rejections (not cold, not warm) are retried, up to as
//! many attempts again as samples were asked for.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{
    local_session::{put_samples, quantile, P},
    Error, Ledger, MeasurementSet, Metric, Rejection,
};
use crate::{
    criteria::Params,
    platform::functions::{FunctionPlatform, Invocation},
    run_dir::RunDir,
};

/// A verified cold start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdSample {
    /// Client latency, ms.
    pub client_ms: f64,
    /// Init (or Restore) Duration from the platform's REPORT, ms.
    pub init_ms: f64,
    /// The function's own init code time, ms, when it reports it.
    pub init_code_ms: Option<f64>,
}

/// Why an invocation is not a sample: a failure (its outcome) or a rejection.
#[derive(Debug, Clone, PartialEq)]
pub enum NotCounted {
    /// The invocation failed.
    Failed,
    /// It succeeded but is not a sample of what is measured.
    Rejected(Rejection, String),
}

impl std::fmt::Display for NotCounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotCounted::Failed => f.write_str("the invocation failed"),
            NotCounted::Rejected(_, why) => f.write_str(why),
        }
    }
}

/// The REPORT of a successful invocation: a failure is a failure, a success without the platform's record is
/// unverifiable.
fn succeeded(inv: &Invocation) -> Result<&crate::platform::report_line::Report, NotCounted> {
    if !inv.ok() {
        return Err(NotCounted::Failed);
    }
    inv.report.as_ref().map_err(|e| NotCounted::Rejected(Rejection::Unverifiable, format!("no REPORT line: {e}")))
}

/// Checks that `inv` came from a new, cold environment (`seen`: environment ids met before).
pub fn verify_cold(inv: &Invocation, seen: &BTreeSet<String>) -> Result<ColdSample, NotCounted> {
    let report = succeeded(inv)?;
    let says_first = inv.own.as_ref().is_some_and(|f| f.cold && f.invocations == 1);
    let init_ms = report.startup_ms().ok_or_else(|| match says_first {
        true => NotCounted::Rejected(
            Rejection::Unverifiable,
            "a new environment whose Init Duration the platform could not measure (no Init Duration in REPORT)".into(),
        ),
        false => NotCounted::Rejected(
            Rejection::NotCold,
            "the REPORT line has no Init Duration (not a new environment)".into(),
        ),
    })?;
    if let Some(f) = &inv.own {
        if seen.contains(&f.env_id) {
            return Err(NotCounted::Rejected(
                Rejection::NotCold,
                format!("environment {} served an earlier invocation: not new", f.env_id),
            ));
        }
        if !f.cold || f.invocations != 1 {
            return Err(NotCounted::Rejected(
                Rejection::NotCold,
                format!("environment {} says cold: {}, invocations: {}", f.env_id, f.cold, f.invocations),
            ));
        }
    }
    Ok(ColdSample {
        client_ms: inv.latency.as_secs_f64() * 1000.0,
        init_ms,
        init_code_ms: inv.own.as_ref().and_then(|f| f.init_code_ms),
    })
}

/// Checks that `inv` was served by a warm environment; returns (client latency, REPORT Duration) in ms.
pub fn verify_warm(inv: &Invocation) -> Result<(f64, f64), NotCounted> {
    let report = succeeded(inv)?;
    if report.is_cold() {
        return Err(NotCounted::Rejected(
            Rejection::NotWarm,
            "the REPORT line has an Init Duration: a cold start".into(),
        ));
    }
    if let Some(f) = inv.own.as_ref().filter(|f| f.cold || f.invocations < 2) {
        return Err(NotCounted::Rejected(
            Rejection::NotWarm,
            format!("environment {} says cold: {}, invocations: {}", f.env_id, f.cold, f.invocations),
        ));
    }
    Ok((inv.latency.as_secs_f64() * 1000.0, report.duration_ms))
}

fn book(ledger: &mut Ledger, inv: &Invocation, r: &Result<impl Sized, NotCounted>) {
    match r {
        Ok(_) => ledger.count(),
        Err(NotCounted::Failed) => ledger.fail(inv.outcome.class(), inv.outcome.detail()),
        Err(NotCounted::Rejected(why, detail)) => ledger.reject(*why, detail.clone()),
    }
}

/// The body's result after the platform's changes were put back: a failed restore is an error even when the
/// body succeeded, and is not lost when the body failed too.
pub fn with_restore<T>(body: Result<T, Error>, restored: Result<(), Error>) -> Result<T, Error> {
    match (body, restored) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(b), Ok(())) => Err(b),
        (Ok(_), Err(r)) => Err(r),
        (Err(b), Err(r)) => Err(Error::Failed(format!("{b}; and putting the platform's changes back failed: {r}"))),
    }
}

fn start_set<F: FunctionPlatform>(fp: &F, procedure: &str, params: &Params) -> MeasurementSet {
    let mut set = MeasurementSet::new(procedure, fp.target(), params);
    set.notes.extend(fp.describe());
    set
}

/// Runs `cold_start` on `fp`. Params: `samples` (30), `max_failures` (0), `force_new_env` (true; false is a
/// test hook that leaves the environments alive, so every sample after the first must be rejected).
pub async fn cold_start<F: FunctionPlatform>(fp: &F, params: &Params, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "cold_start", params };
    match fp.target() {
        // `images`: the image pair the local target compares (super::image_pair).
        "local" => p.only(&["samples", "max_failures", "force_new_env", "images"])?,
        _ => p.only(&["samples", "max_failures", "force_new_env"])?,
    }
    let samples = p.count("samples", 30)?;
    let budget = p.u64("max_failures", 0)?;
    let force = p.bool("force_new_env", true)?;
    let body = cold_series(fp, samples, budget, force).await;
    let (got, ledger) = with_restore(body, fp.restore().await)?;

    let mut set = start_set(fp, "cold_start", params);
    set.notes.push(format!(
        "{} cold starts of `{}` verified (Init Duration in REPORT; where the function reports itself: cold: true, invocations: 1, a new env_id)",
        got.len(),
        fp.function()
    ));
    set.notes.extend(ledger.notes("cold_start attempts"));
    put_samples(&mut set, dir, "client_latency", got.iter().map(|s| s.client_ms).collect(), "ms")?;
    put_samples(&mut set, dir, "init_duration", got.iter().map(|s| s.init_ms).collect(), "ms")?;
    let code: Option<Vec<f64>> = got.iter().map(|s| s.init_code_ms).collect();
    match code.filter(|v| !v.is_empty()) {
        Some(code) => {
            // Bootstrap (runtime and dependency loading) is Init Duration less the function's own init code;
            // a sample where the two clocks disagree (init code longer than Init Duration) has no bootstrap
            // figure rather than a zero.
            let pairs: Vec<(f64, f64)> = got.iter().map(|s| s.init_ms).zip(code.iter().copied()).collect();
            let boot: Vec<f64> = pairs.iter().filter(|(i, c)| i >= c).map(|(i, c)| i - c).collect();
            if boot.len() < pairs.len() {
                set.notes.push(format!(
                    "bootstrap: {} of {} samples left out: the function's init code took longer than the platform's Init Duration",
                    pairs.len() - boot.len(),
                    pairs.len()
                ));
            }
            put_samples(&mut set, dir, "init_code", code, "ms")?;
            put_samples(&mut set, dir, "bootstrap", boot, "ms")?;
        }
        None => {
            let why = "the function does not report its own init code time (init_code_ms) in every cold response";
            set.metrics.insert("init_code".into(), Metric::Missing { reason: why.into() });
            set.metrics.insert(
                "bootstrap".into(),
                Metric::Missing { reason: format!("{why}, so Init Duration cannot be split") },
            );
        }
    }
    set.metrics.insert(
        "baseline_reduction".into(),
        Metric::Missing {
            reason: format!(
                "the cold starts of one function (`{}`) measure no image pair: the figure compares a build fixture's baseline (single-stage) and optimized images run as two functions, which the local target does when the check names the fixture (`images: python-fn`)",
                fp.function()
            ),
        },
    );
    for m in ["client_latency", "init_duration", "init_code", "bootstrap"] {
        set.ledgers.insert(m.into(), ledger.clone());
    }
    Ok(set.finish())
}

/// `samples` verified cold starts of `fp` (rejections retried, up to as many attempts again), every attempt in
/// the ledger; the one cold-start series, also of the image pair ([`super::image_pair`]).
pub(crate) async fn cold_series<F: FunctionPlatform>(
    fp: &F,
    samples: u64,
    budget: u64,
    force: bool,
) -> Result<(Vec<ColdSample>, Ledger), Error> {
    let phase =
        crate::progress::phase(&format!("cold_start: {samples} cold starts of {}", fp.function()), Some(samples));
    let mut seen = BTreeSet::new();
    let mut got = Vec::new();
    let mut ledger = Ledger::new(budget).asking(samples);
    for _ in 0..samples * 2 {
        if got.len() as u64 >= samples {
            break;
        }
        if force {
            phase.waiting_for("the configuration update to retire the environments");
            fp.force_cold().await?;
        }
        let inv = fp.invoke(&json!({})).await?;
        let r = verify_cold(&inv, &seen);
        book(&mut ledger, &inv, &r);
        if let Ok(c) = r {
            got.push(c);
            phase.inc();
        }
        if let Some(f) = inv.own {
            seen.insert(f.env_id);
        }
    }
    phase.finish();
    Ok((got, ledger))
}

/// Runs `warm_start` on `fp`. Params: `samples` (300), `max_failures` (0), `payload` (an event, `{}`).
pub async fn warm_start<F: FunctionPlatform>(fp: &F, params: &Params, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "warm_start", params };
    p.only(&["samples", "max_failures", "payload"])?;
    let samples = p.count("samples", 300)?;
    let budget = p.u64("max_failures", 0)?;
    let payload = params.get("payload").cloned().unwrap_or_else(|| json!({}));
    let body = warm_series(fp, samples, budget, &payload).await;
    let (lat, dur, ledger, warmup) = with_restore(body, fp.restore().await)?;
    let mut set = start_set(fp, "warm_start", params);
    set.notes.push(format!(
        "{} warm invocations of `{}` verified (no Init Duration in REPORT; where the function reports itself: cold: false, environment served before) after {warmup} warm-up invocation(s)",
        lat.len(),
        fp.function()
    ));
    set.notes.extend(ledger.notes("warm_start attempts"));
    if let (Some(p50), Some(p95)) = (quantile(&lat, 0.5), quantile(&lat, 0.95)) {
        set.notes.push(format!("client latency median {p50:.2} ms, P95 {p95:.2} ms"));
    }
    put_samples(&mut set, dir, "client_latency", lat, "ms")?;
    put_samples(&mut set, dir, "duration", dur, "ms")?;
    for m in ["client_latency", "duration"] {
        set.ledgers.insert(m.into(), ledger.clone());
    }
    Ok(set.finish())
}

type WarmSeries = (Vec<f64>, Vec<f64>, Ledger, u64);

async fn warm_series<F: FunctionPlatform>(
    fp: &F,
    samples: u64,
    budget: u64,
    payload: &Value,
) -> Result<WarmSeries, Error> {
    let phase =
        crate::progress::phase(&format!("warm_start: {samples} warm invocations of {}", fp.function()), Some(samples));
    // Warm-up: until an environment answers warm. Its expected cold answers are not samples; its failures
    // are failures like any other.
    let mut ledger = Ledger::new(budget).asking(samples);
    let mut warmup = 0;
    let mut last = String::new();
    loop {
        if warmup == 5 {
            return Err(Error::Failed(format!(
                "{}: no warm invocation after 5 warm-up invocations (last: {last})",
                fp.function()
            )));
        }
        warmup += 1;
        let inv = fp.invoke(payload).await?;
        match verify_warm(&inv) {
            Ok(_) => break,
            Err(NotCounted::Failed) => {
                ledger.fail(inv.outcome.class(), format!("warm-up: {}", inv.outcome.detail()));
                last = format!("{} {:?}", inv.outcome.class(), inv.outcome);
            }
            Err(NotCounted::Rejected(_, why)) => last = why,
        }
    }
    let (mut lat, mut dur) = (Vec::new(), Vec::new());
    // Rejections are retried, up to as many attempts again as samples asked for.
    for _ in 0..samples * 2 {
        if lat.len() as u64 >= samples {
            break;
        }
        let inv = fp.invoke(payload).await?;
        let r = verify_warm(&inv);
        book(&mut ledger, &inv, &r);
        if let Ok((l, d)) = r {
            lat.push(l);
            dur.push(d);
            phase.inc();
        }
    }
    phase.finish();
    Ok((lat, dur, ledger, warmup))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::platform::{
        functions::{Outcome, SelfReport},
        report_line,
    };

    fn inv(outcome: Outcome, init_ms: Option<f64>, me: Option<(&str, bool, u64)>) -> Invocation {
        let init = init_ms.map(|ms| format!("\tInit Duration: {ms} ms")).unwrap_or_default();
        let tail = format!("REPORT RequestId: r1\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB{init}\t\n");
        Invocation {
            outcome,
            latency: Duration::from_millis(12),
            report: report_line::last_report(&tail, "test tail"),
            own: me.map(|(id, cold, n)| SelfReport {
                env_id: id.into(),
                cold,
                invocations: n,
                init_code_ms: Some(1.5),
            }),
        }
    }

    #[test]
    fn a_failed_invocation_is_a_failure_never_a_rejection() {
        let none = BTreeSet::new();
        for o in [Outcome::Timeout, Outcome::Throttled, Outcome::FunctionError("Unhandled".into())] {
            assert_eq!(verify_cold(&inv(o.clone(), Some(80.0), Some(("e1", true, 1))), &none), Err(NotCounted::Failed));
            assert_eq!(verify_warm(&inv(o, None, Some(("e1", false, 3)))), Err(NotCounted::Failed));
        }
        let mut ledger = Ledger::new(0);
        let failed = inv(Outcome::Timeout, Some(80.0), None);
        book(&mut ledger, &failed, &verify_cold(&failed, &none));
        let not_cold = inv(Outcome::Ok, None, Some(("e2", false, 2)));
        book(&mut ledger, &not_cold, &verify_cold(&not_cold, &none));
        assert_eq!((ledger.failures(), ledger.rejections()), (1, 1));
        assert!(ledger.over_budget());
    }

    #[test]
    fn cold_and_warm_need_the_platforms_record_and_the_functions_word() {
        let none = BTreeSet::new();
        let ok = verify_cold(&inv(Outcome::Ok, Some(80.0), Some(("e1", true, 1))), &none).unwrap();
        assert_eq!((ok.client_ms, ok.init_ms, ok.init_code_ms), (12.0, 80.0, Some(1.5)));
        let seen: BTreeSet<String> = ["e1".to_string()].into();
        assert!(verify_cold(&inv(Outcome::Ok, Some(80.0), Some(("e1", true, 1))), &seen)
            .unwrap_err()
            .to_string()
            .contains("not new"));
        assert!(verify_cold(&inv(Outcome::Ok, None, None), &none)
            .unwrap_err()
            .to_string()
            .contains("no Init Duration"));
        assert_eq!(verify_cold(&inv(Outcome::Ok, Some(80.0), None), &none).unwrap().init_code_ms, None);
        assert_eq!(verify_warm(&inv(Outcome::Ok, None, Some(("e1", false, 4)))).unwrap(), (12.0, 2.5));
        assert!(verify_warm(&inv(Outcome::Ok, Some(50.0), None)).unwrap_err().to_string().contains("cold start"));
        assert!(verify_warm(&inv(Outcome::Ok, None, Some(("e1", true, 1))))
            .unwrap_err()
            .to_string()
            .contains("cold: true"));
    }
}
