//! `concurrency` and `scale_up` on the aws and localstack targets, observed from the invocations
//! themselves: Lambda lists no environments, but every invocation runs alone in its environment, and the
//! fixture names its environment (`env_id`) in each response.
//!
//! Concurrency: reserved concurrency R set for the test (through the change guard, restored after), then
//! 3R simultaneous invocations that each sleep `work_ms`; the excess must be answered 429
//! (TooManyRequestsException), and the environments running a handler at the same moment (each handler's
//! interval from the response time and its REPORT Duration) must never exceed R. Scale-up: from cold (a configuration update
//! retires every environment), `concurrency` simultaneous invocations; the sample is the time until the last
//! of them started its handler on a new environment (response time less the REPORT Duration), kept only
//! when every one succeeded, was cold, and (where the function reports it) each named a distinct
//! environment.

use std::{collections::BTreeSet, time::Instant};

use super::{
    aws::{sleep_payload, Ctx},
    local_session::put_chart,
    Error, Ledger, MeasurementSet, Rejection,
};
use crate::{
    measure::raw::{Mark, Timeline, TIMELINE_FILE},
    platform::aws::{self, Invocation},
};

/// One invocation of a burst: when it was sent and answered (s from the burst's start) and its outcome.
struct Shot {
    sent_s: f64,
    done_s: f64,
    outcome: Result<Invocation, aws::Error>,
}

impl Shot {
    fn ok(&self) -> Option<&Invocation> {
        self.outcome.as_ref().ok().filter(|i| i.status_code == 200 && i.function_error.is_none())
    }
}

async fn burst(c: &Ctx<'_>, n: usize, work_ms: f64) -> Result<(Vec<Shot>, f64), Error> {
    let payload = sleep_payload(work_ms);
    let t0 = Instant::now();
    let calls = (0..n).map(|_| async {
        let sent_s = t0.elapsed().as_secs_f64();
        let outcome = c.invoke(&payload).await?;
        Ok::<_, Error>(Shot { sent_s, done_s: t0.elapsed().as_secs_f64(), outcome })
    });
    let shots = futures::future::join_all(calls).await.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((shots, t0.elapsed().as_secs_f64()))
}

/// When the environment of a successful shot started its handler, as seen from the client: the response
/// time less the REPORT Duration (both ends shifted by the same return transit, so handler overlaps are
/// kept while the request's queueing and connection set-up are left out), never before it was sent.
fn busy_from(s: &Shot, inv: &Invocation) -> f64 {
    let handler_s = inv.report.as_ref().map_or(s.done_s - s.sent_s, |r| r.duration_ms / 1000.0);
    (s.done_s - handler_s).max(s.sent_s)
}

/// Peak number of distinct environments serving at the same moment, from successful invocations'
/// `(start, end, environment)` intervals, and the `(t, serving)` timeline at each interval start.
pub fn peak_overlap(intervals: &[(f64, f64, String)]) -> (usize, Vec<(f64, usize)>) {
    let mut timeline: Vec<(f64, usize)> = intervals
        .iter()
        .map(|(t, _, _)| {
            let live: BTreeSet<&str> =
                intervals.iter().filter(|(s, e, _)| s <= t && t < e).map(|(_, _, id)| id.as_str()).collect();
            (*t, live.len())
        })
        .collect();
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    (timeline.iter().map(|s| s.1).max().unwrap_or(0), timeline)
}

/// `concurrency`. Params: `reserved` (5), `work_ms` (1000).
pub async fn concurrency(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    let r_limit = c.p.count("reserved", 5)? as usize;
    let work_ms = c.p.f64("work_ms", 1000.0)?;
    let n = 3 * r_limit;
    let mut ch = c.changes()?;
    let body = async {
        ch.set_reserved_concurrency(Some(r_limit as i32)).await.map_err(|e| c.err(e))?;
        let got = c.t.reserved_concurrency().await.map_err(|e| c.err(e))?;
        if got != Some(r_limit as i32) {
            return Err(Error::Failed(format!(
                "reserved concurrency reads {got:?} after PutFunctionConcurrency {r_limit}"
            )));
        }
        ch.force_cold_start().await.map_err(|e| c.err(e))?;
        let phase = crate::progress::phase(
            &format!("concurrency: {n} simultaneous invocations at reserved concurrency {r_limit}"),
            None,
        );
        let r = burst(c, n, work_ms).await;
        phase.finish();
        r
    }
    .await;
    let (shots, _) = c.restore(ch, body).await?;
    let throttled = shots.iter().filter(|s| matches!(s.outcome, Err(aws::Error::InvokeThrottled { .. }))).count();
    let intervals: Vec<(f64, f64, String)> = shots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let inv = s.ok()?;
            let env = inv.function.as_ref().map_or_else(|| format!("invocation-{i}"), |f| f.env_id.clone());
            Some((busy_from(s, inv), s.done_s, env))
        })
        .collect();
    let (peak, timeline) = peak_overlap(&intervals);
    let failed = shots.len() - intervals.len() - throttled;
    let mut set = c.set();
    set.notes.push(format!(
        "reserved concurrency {r_limit} set for the test (restored after), {n} simultaneous invocations sleeping {work_ms} ms: {} ok, {throttled} answered 429 TooManyRequestsException, {failed} failed otherwise; peak {peak} environments running a handler at once",
        intervals.len()
    ));
    if intervals.is_empty() {
        return Err(Error::Failed(format!("none of {n} invocations succeeded: no environment observed")));
    }
    let succeeded = shots
        .iter()
        .filter(|s| s.outcome.as_ref().is_ok_and(|i| i.status_code == 200 && i.function_error.is_none()))
        .count();
    super::scaling::concurrency_figures(
        &mut set,
        r_limit,
        succeeded,
        peak.saturating_sub(r_limit),
        intervals.len() as u64,
        throttled,
        n - r_limit,
        shots.len() as u64,
    );
    put_chart(
        &mut set,
        c.dir,
        TIMELINE_FILE,
        &Timeline {
            t_s: timeline.iter().map(|s| s.0).collect(),
            envs: timeline.iter().map(|s| s.1 as f64).collect(),
            load_rps: vec![0.0; timeline.len()],
            limit: Some(r_limit as f64),
            marks: vec![Mark { t_s: 0.0, label: format!("{n} requests at once") }],
        },
    )?;
    Ok(set)
}

/// Why a spike is not a scale-up sample.
#[derive(Debug)]
enum SpikeMiss {
    /// Invocations failed.
    Failed(String),
    /// Not every invocation came from a new environment (a rejection: the platform said nothing wrong).
    NotCold(String),
    /// Fewer environments than invocations answered.
    NotScaled(String),
}

impl SpikeMiss {
    #[cfg(test)]
    fn why(&self) -> &str {
        match self {
            SpikeMiss::Failed(w) | SpikeMiss::NotCold(w) | SpikeMiss::NotScaled(w) => w,
        }
    }
}

/// Why a spike is not a scale-up sample, or the time until its last handler started (s).
fn spike_sample(shots: &[Shot], want: usize) -> Result<f64, SpikeMiss> {
    let ok: Vec<&Invocation> = shots.iter().filter_map(Shot::ok).collect();
    if ok.len() < want {
        let first = shots.iter().find_map(|s| s.outcome.as_ref().err().map(ToString::to_string));
        return Err(SpikeMiss::Failed(format!(
            "{} of {want} invocations succeeded{}",
            ok.len(),
            first.map(|f| format!(" (first failure: {f})")).unwrap_or_default()
        )));
    }
    let cold = ok.iter().filter(|i| i.platform_cold()).count();
    if cold < want {
        return Err(SpikeMiss::NotCold(format!(
            "{cold} of {want} REPORT lines carry an Init Duration: not all from new environments"
        )));
    }
    let envs: BTreeSet<&str> = ok.iter().filter_map(|i| i.function.as_ref().map(|f| f.env_id.as_str())).collect();
    if ok.iter().any(|i| i.function.is_some()) && envs.len() < want {
        return Err(SpikeMiss::NotScaled(format!("{} distinct environments answered, not {want}", envs.len())));
    }
    shots
        .iter()
        .filter_map(|s| Some(busy_from(s, s.ok()?)))
        .max_by(f64::total_cmp)
        .ok_or_else(|| SpikeMiss::Failed("no invocation".into()))
}

/// `scale_up`. Params: `concurrency` (20), `spikes` (5), `work_ms` (1000), `max_failures` (0 spikes).
pub async fn scale_up(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    c.p.only(&["concurrency", "spikes", "work_ms", "max_failures"])?;
    let want = c.p.count("concurrency", 20)? as usize;
    let budget = c.p.u64("max_failures", 0)?;
    let spikes = c.p.count("spikes", 5)?;
    let work_ms = c.p.f64("work_ms", 1000.0)?;
    let mut ch = c.changes()?;
    let body = async {
        let phase = crate::progress::phase(&format!("scale_up: {spikes} spikes of {want} from cold"), Some(spikes));
        let (mut got, mut ledger) = (Vec::new(), Ledger::new(budget).asking(spikes.saturating_sub(budget)));
        for i in 0..spikes {
            ch.force_cold_start().await.map_err(|e| c.err(e))?;
            let (shots, _) = burst(c, want, work_ms).await?;
            match spike_sample(&shots, want) {
                Ok(s) => {
                    got.push(s * 1000.0);
                    ledger.count();
                }
                Err(SpikeMiss::Failed(why)) => ledger.fail("invocations failed", format!("spike {}: {why}", i + 1)),
                Err(SpikeMiss::NotScaled(why)) => ledger.fail("not scaled", format!("spike {}: {why}", i + 1)),
                Err(SpikeMiss::NotCold(why)) => ledger.reject(Rejection::NotCold, format!("spike {}: {why}", i + 1)),
            }
            phase.inc();
        }
        phase.finish();
        Ok((got, ledger))
    }
    .await;
    let (got, ledger) = c.restore(ch, body).await?;
    let mut set = c.set();
    set.notes.push(format!(
        "{} of {spikes} spikes of {want} simultaneous invocations (each sleeping {work_ms} ms) from cold reached {want} new environments; sample = time until the last handler started (response time less REPORT Duration)",
        got.len()
    ));
    super::scaling::scale_up_figures(&mut set, c.dir, got, "ms", ledger)?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::platform::{functions::SelfReport, report_line};

    /// An invocation whose log tail ends with a REPORT line (`init_ms`: Init Duration) and whose payload is
    /// the fixture's own report (`me`: env id, cold, invocations).
    fn inv(init_ms: Option<f64>, me: Option<(&str, bool, u64)>) -> Invocation {
        let init = init_ms.map(|ms| format!("\tInit Duration: {ms} ms")).unwrap_or_default();
        let tail = format!("REPORT RequestId: r1\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB{init}\t\n");
        let function =
            me.map(|(id, cold, n)| SelfReport { env_id: id.into(), cold, invocations: n, init_code_ms: Some(1.5) });
        Invocation {
            client_latency: Duration::from_millis(12),
            status_code: 200,
            function_error: None,
            executed_version: None,
            payload: Vec::new(),
            report: report_line::last_report(&tail, "test tail"),
            init_report: None,
            log_tail: tail,
            function,
        }
    }

    #[test]
    fn overlap_counts_distinct_environments_serving_at_once() {
        let iv = |s: f64, e: f64, id: &str| (s, e, id.to_string());
        let (peak, timeline) =
            peak_overlap(&[iv(0.0, 1.0, "a"), iv(0.1, 1.0, "b"), iv(0.2, 0.5, "c"), iv(1.5, 2.0, "a")]);
        assert_eq!(peak, 3);
        assert_eq!(timeline.iter().map(|s| s.1).collect::<Vec<_>>(), vec![1, 2, 3, 1]);
        assert_eq!(peak_overlap(&[iv(0.0, 1.0, "a"), iv(0.5, 1.5, "a")]).0, 1, "one environment never counts twice");
        assert_eq!(peak_overlap(&[]).0, 0);
    }

    #[test]
    fn a_spike_counts_only_when_every_invocation_was_cold_on_its_own_environment() {
        let shot = |done_s: f64, i: Invocation| Shot { sent_s: 0.0, done_s, outcome: Ok(i) };
        let good =
            vec![shot(0.5, inv(Some(10.0), Some(("a", true, 1)))), shot(0.8, inv(Some(10.0), Some(("b", true, 1))))];
        let t = spike_sample(&good, 2).unwrap();
        assert!((t - (0.8 - 0.0025)).abs() < 1e-9, "last handler start: response time less REPORT Duration, got {t}");
        let same_env =
            vec![shot(0.5, inv(Some(10.0), Some(("a", true, 1)))), shot(0.8, inv(Some(10.0), Some(("a", true, 1))))];
        assert!(spike_sample(&same_env, 2).unwrap_err().why().contains("1 distinct"));
        let warm = vec![shot(0.5, inv(Some(10.0), Some(("a", true, 1)))), shot(0.8, inv(None, Some(("b", false, 2))))];
        assert!(spike_sample(&warm, 2).unwrap_err().why().contains("1 of 2 REPORT"));
        let throttled = vec![
            shot(0.5, inv(Some(10.0), Some(("a", true, 1)))),
            Shot {
                sent_s: 0.0,
                done_s: 0.1,
                outcome: Err(aws::Error::InvokeThrottled {
                    function: "f".into(),
                    code: "TooManyRequestsException".into(),
                    message: "Rate Exceeded.".into(),
                    latency: Default::default(),
                }),
            },
        ];
        assert!(spike_sample(&throttled, 2).unwrap_err().why().contains("TooManyRequestsException"));
    }
}
