//! `cold_start_rate` on the aws and localstack targets: open-model traffic through the API URL with the API
//! key, counted by the function's own `cold` field.

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use super::{
    aws::Ctx,
    aws_load::api_request,
    cold_rate::{figures, ColdCounter},
    Error, MeasurementSet,
};
use crate::load::{LoadSpec, Schedule};

/// `cold_start_rate`. Params: `rate` (req/s, 20), `duration_s` (10), `payload`, `max_failures` (0).
pub async fn cold_start_rate(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    let rate = c.p.f64("rate", 20.0)?;
    let secs = c.p.f64("duration_s", 10.0)?;
    let payload: Value = c.p.params.get("payload").cloned().unwrap_or_else(|| super::aws::sleep_payload(20.0));
    let (req, trust) = api_request(c, &payload).await?;
    let url = req.describe();
    let schedule = Schedule::constant(rate, Duration::from_secs_f64(secs)).map_err(|e| Error::Param {
        procedure: "cold_start_rate".into(),
        param: "rate".into(),
        problem: e.to_string(),
    })?;
    let budget = c.p.u64("max_failures", 0)?;
    let counter = Arc::new(ColdCounter::default());
    let phase = crate::progress::phase(&format!("cold_start_rate: {rate} req/s for {secs} s through {url}"), None);
    let report = LoadSpec::open(req, schedule)
        .trust(trust)
        .observer(counter.clone())
        .run()
        .await
        .map_err(|e| Error::Unavailable { what: format!("the API at {url}"), detail: e.to_string() })?;
    phase.finish();
    let mut set = c.set();
    figures(
        &mut set,
        counter.tally(),
        &report.totals.counts,
        budget,
        &format!("{rate} req/s for {secs} s (open model) through {url}"),
    );
    Ok(set)
}
