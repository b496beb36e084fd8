//! `cold_start_rate` on the local target: an open-model traffic shape through the Invoke API; the share of
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

/// Runs `cold_start_rate`. Params: `function`, `rate` (req/s, 20), `duration_s` (10), `payload`, `max_failures` (0).
pub async fn run_rate(params: &Params, cfg: &LocalConfig, _dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = P { procedure: "cold_start_rate", params };
    let function = p.str("function", "fixture-rust")?;
    let rate = p.f64("rate", 20.0)?;
    let secs = p.f64("duration_s", 10.0)?;
    let payload = params.get("payload").cloned().unwrap_or_else(|| json!({"work_ms": 20, "work_mode": "sleep"}));
    let s = Session::start(cfg, |_| {}).await?;
    let budget = p.u64("max_failures", 0)?;
    let counter = Arc::new(ColdCounter::default());
    let r = async {
        let req = RequestTemplate::invoke(&s.t.platform.invoke_url(), &function, None, payload.to_string())
            .map_err(|e| Error::Failed(format!("request template: {e}")))?;
        let schedule = Schedule::constant(rate, Duration::from_secs_f64(secs)).map_err(|e| Error::Param {
            procedure: "cold_start_rate".into(),
            param: "rate".into(),
            problem: e.to_string(),
        })?;
        let phase = crate::progress::phase(&format!("cold_start_rate: {rate} req/s for {secs} s on {function}"), None);
        let report = LoadSpec::open(req, schedule)
            .observer(counter.clone())
            .run()
            .await
            .map_err(|e| Error::Failed(format!("load run: {e}")))?;
        phase.finish();
        Ok::<_, Error>(report)
    }
    .await;
    let mode = s.mode_note();
    s.shutdown().await;
    let report = r?;
    let mut set = MeasurementSet::new("cold_start_rate", "local", params);
    set.notes.push(mode);
    figures(
        &mut set,
        counter.tally(),
        &report.totals.counts,
        budget,
        &format!("{rate} req/s for {secs} s (open model) on `{function}`"),
    );
    Ok(set.finish())
}
