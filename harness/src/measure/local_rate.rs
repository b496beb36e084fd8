//! `cold_start_rate` on the local target: open-model traffic (or closed-loop clients) through the Invoke API,
//! with the provisioned concurrency the profile names; the share of
//! answered requests whose environment says `cold: true`, every scheduled request in the ledger
//! ([`super::cold_rate`]).

use std::{sync::Arc, time::Duration};

use serde_json::json;

use super::{
    cold_rate::{figures, ColdCounter},
    local_session::{Session, P},
    Error, MeasurementSet,
};
use crate::{
    criteria::Params,
    load::{LoadSpec, RequestTemplate, Schedule},
    platform::LocalConfig,
    run_dir::RunDir,
};

/// Runs `cold_start_rate`. Params: `function`, `rate` (req/s, 20), `duration_s` (10), `payload`, `max_failures`
/// (0), `provisioned_concurrency` (the function's own when absent: set on the platform for the run, and
/// awaited until that many environments are ready before traffic starts), `concurrency` (closed model with that
/// many clients instead of the open-model `rate`).
pub async fn run_rate(params: &Params, cfg: &LocalConfig, _dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "cold_start_rate", params };
    p.only(&["rate", "duration_s", "payload", "max_failures", "provisioned_concurrency", "concurrency"])?;
    let function = p.str("function", "fixture-rust")?;
    let rate = p.f64("rate", 20.0)?;
    let secs = p.f64("duration_s", 10.0)?;
    let payload = params.get("payload").cloned().unwrap_or_else(|| json!({"work_ms": 20, "work_mode": "sleep"}));
    let provisioned = params.get("provisioned_concurrency").map(|_| p.u64("provisioned_concurrency", 0)).transpose()?;
    let clients = params.get("concurrency").map(|_| p.count("concurrency", 1)).transpose()?;
    let mut unknown = None;
    let s = Session::start(cfg, |pc| {
        if let Some(n) = provisioned {
            match pc.functions.iter_mut().find(|f| f.name == function) {
                Some(f) => f.provisioned_concurrency = n as u32,
                None => unknown = Some(function.clone()),
            }
        }
    })
    .await?;
    if let Some(f) = unknown {
        s.shutdown().await;
        return Err(Error::Unavailable { what: format!("function `{f}`"), detail: "not in the functions file".into() });
    }
    let budget = p.u64("max_failures", 0)?;
    let counter = Arc::new(ColdCounter::default());
    let shape = match clients {
        Some(c) => format!("{c} closed-loop clients for {secs} s"),
        None => format!("{rate} req/s for {secs} s (open model)"),
    };
    let r = async {
        if let Some(n) = provisioned.filter(|n| *n > 0) {
            let start = std::time::Instant::now();
            while (s.envs(&function).len() as u64) < n {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err(Error::Failed(format!(
                        "{function}: {} of {n} provisioned environments ready after 60 s",
                        s.envs(&function).len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let req = RequestTemplate::invoke(&s.t.platform.invoke_url(), &function, None, payload.to_string())
            .map_err(|e| Error::Failed(format!("request template: {e}")))?;
        let spec = match clients {
            Some(c) => LoadSpec::closed(req, c as usize).duration(Duration::from_secs_f64(secs)),
            None => {
                let schedule = Schedule::constant(rate, Duration::from_secs_f64(secs)).map_err(|e| Error::Param {
                    procedure: "cold_start_rate".into(),
                    param: "rate".into(),
                    problem: e.to_string(),
                })?;
                LoadSpec::open(req, schedule)
            }
        };
        let phase = crate::progress::phase(&format!("cold_start_rate: {shape} on {function}"), None);
        let report = spec.observer(counter.clone()).run().await.map_err(|e| Error::Failed(format!("load run: {e}")))?;
        phase.finish();
        Ok::<_, Error>(report)
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let report = r?;
    let mut set = MeasurementSet::new("cold_start_rate", "local", params);
    set.notes.push(mode);
    if let Some(n) = provisioned {
        set.notes.push(format!("provisioned concurrency {n} set on `{function}` for the run; {n} environments were ready before the traffic"));
    }
    figures(&mut set, counter.tally(), &report.totals.counts, budget, &format!("{shape} on `{function}`"));
    Ok(set.finish())
}
