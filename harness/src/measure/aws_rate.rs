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

/// `cold_start_rate`. Params: `rate` (req/s, 20), `duration_s` (10), `payload`, `max_failures` (0),
/// `provisioned_concurrency` (set on the function's alias, output `function_alias`, awaited READY and restored
/// afterwards), `concurrency` (that many closed-loop clients instead of the open-model `rate`).
pub async fn cold_start_rate(c: &Ctx<'_>) -> Result<MeasurementSet, Error> {
    c.p.only(&["rate", "duration_s", "payload", "max_failures", "provisioned_concurrency", "concurrency"])?;
    let rate = c.p.f64("rate", 20.0)?;
    let secs = c.p.f64("duration_s", 10.0)?;
    let payload: Value = c.p.params.get("payload").cloned().unwrap_or_else(|| super::aws::sleep_payload(20.0));
    let provisioned =
        c.p.params.get("provisioned_concurrency").map(|_| c.p.count("provisioned_concurrency", 1)).transpose()?;
    let clients = c.p.params.get("concurrency").map(|_| c.p.count("concurrency", 1)).transpose()?;
    let alias =
        match (provisioned, c.t.settings().qualifier()) {
            (Some(_), None) => return Err(Error::Param {
                procedure: "cold_start_rate".into(),
                param: "provisioned_concurrency".into(),
                problem:
                    "provisioned concurrency is set on an alias or version, and the outputs name no `function_alias`"
                        .into(),
            }),
            (_, q) => q.unwrap_or_default().to_string(),
        };
    let (req, trust) = api_request(c, &payload).await?;
    let url = req.describe();
    let spec = match clients {
        Some(n) => LoadSpec::closed(req, n as usize).duration(Duration::from_secs_f64(secs)),
        None => LoadSpec::open(
            req,
            Schedule::constant(rate, Duration::from_secs_f64(secs)).map_err(|e| Error::Param {
                procedure: "cold_start_rate".into(),
                param: "rate".into(),
                problem: e.to_string(),
            })?,
        ),
    };
    let shape = match clients {
        Some(n) => format!("{n} closed-loop clients for {secs} s"),
        None => format!("{rate} req/s for {secs} s (open model)"),
    };
    let budget = c.p.u64("max_failures", 0)?;
    let counter = Arc::new(ColdCounter::default());
    let mut ch = c.changes()?;
    let body = async {
        if let Some(n) = provisioned {
            let phase =
                crate::progress::phase(&format!("cold_start_rate: provisioned concurrency {n} on {alias}"), None);
            phase.waiting_for("provisioned concurrency to be READY");
            ch.set_provisioned_concurrency(&alias, Some(n as i32)).await.map_err(|e| c.err(e))?;
            phase.finish();
        }
        let phase = crate::progress::phase(&format!("cold_start_rate: {shape} through {url}"), None);
        let report = spec
            .trust(trust)
            .observer(counter.clone())
            .run()
            .await
            .map_err(|e| Error::Unavailable { what: format!("the API at {url}"), detail: e.to_string() })?;
        phase.finish();
        Ok(report)
    }
    .await;
    let report = c.restore(ch, body).await?;
    let mut set = c.set();
    if let Some(n) = provisioned {
        set.notes.push(format!(
            "provisioned concurrency {n} set on {}:{alias} and READY before the traffic; restored afterwards",
            c.t.settings().function_name
        ));
    }
    figures(&mut set, counter.tally(), &report.totals.counts, budget, &format!("{shape} through {url}"));
    Ok(set)
}
