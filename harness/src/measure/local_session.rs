//! What the procedures share: typed parameter reads ([`P`]) and the chart-file helpers.

use serde_json::Value;

use super::{Error, MeasurementSet, Metric};
pub(crate) use crate::platform::local::{function_spec, Invoked, Session};
use crate::{
    criteria::Params,
    measure::raw::{self as charts, LatencySamples},
    run_dir::RunDir,
};

/// Typed view of a procedure's parameters; errors name the procedure and the parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct P<'a> {
    pub procedure: &'a str,
    pub params: &'a Params,
}

impl P<'_> {
    fn wrong(&self, key: &str, want: &str, got: &Value) -> Error {
        Error::Param {
            procedure: self.procedure.into(),
            param: key.into(),
            problem: format!("expected {want}, got {got}"),
        }
    }

    /// Refuses a parameter this procedure does not read: a setting that would be ignored silently is an
    /// error naming it and the ones that exist (`function` is every procedure's).
    pub fn only(&self, known: &[&str]) -> Result<(), Error> {
        match self.params.keys().find(|k| k.as_str() != "function" && !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(Error::Param {
                procedure: self.procedure.into(),
                param: k.clone(),
                problem: format!(
                    "not a parameter of `{}` (it would be ignored); its parameters: function, {}",
                    self.procedure,
                    known.join(", ")
                ),
            }),
        }
    }

    /// A string, `default` when absent.
    pub fn str(&self, key: &str, default: &str) -> Result<String, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    /// A positive number, `default` when absent.
    pub fn positive(&self, key: &str, default: f64) -> Result<f64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => {
                v.as_f64().filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| self.wrong(key, "a positive number", v))
            }
        }
    }

    /// A non-negative number, `default` when absent.
    pub fn f64(&self, key: &str, default: f64) -> Result<f64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| self.wrong(key, "a non-negative number", v)),
        }
    }

    /// A count (0 allowed), `default` when absent.
    pub fn u64(&self, key: &str, default: u64) -> Result<u64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| self.wrong(key, "an integer >= 0", v)),
        }
    }

    /// A count (0 allowed), `None` when absent.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.wrong(key, "an integer >= 0", v)),
        }
    }

    /// A count of at least 1, `default` when absent.
    pub fn count(&self, key: &str, default: u64) -> Result<u64, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| self.wrong(key, "an integer >= 1", v)),
        }
    }

    /// A boolean, `default` when absent.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.wrong(key, "true or false", v)),
        }
    }

    /// A list of numbers, `default` when absent.
    pub fn list(&self, key: &str, default: &[f64]) -> Result<Vec<f64>, Error> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(default.to_vec()),
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| v.as_f64().filter(|x| *x > 0.0).ok_or_else(|| self.wrong(key, "positive numbers", v)))
                .collect(),
            Some(v) => Err(self.wrong(key, "a non-empty list of numbers", v)),
        }
    }
}

/// Adds a distribution metric and writes its chart file (`raw/<procedure>/samples-<metric>.json`).
pub(crate) fn put_samples(
    set: &mut MeasurementSet,
    dir: &RunDir,
    metric: &str,
    values: Vec<f64>,
    unit: &str,
) -> Result<(), Error> {
    let path = charts::write_chart(
        dir,
        &set.procedure.clone(),
        &charts::samples_file(metric),
        &LatencySamples { unit: unit.into(), values: values.clone() },
    )
    .map_err(|e| Error::Failed(format!("write the samples of {metric}: {e}")))?;
    set.raw.push(path);
    set.metrics.insert(metric.into(), Metric::samples(values, unit));
    Ok(())
}

/// Writes a chart file and lists it.
pub(crate) fn put_chart<T: serde::Serialize>(
    set: &mut MeasurementSet,
    dir: &RunDir,
    file: &str,
    data: &T,
) -> Result<(), Error> {
    let path = charts::write_chart(dir, &set.procedure.clone(), file, data)
        .map_err(|e| Error::Failed(format!("write {file}: {e}")))?;
    set.raw.push(path);
    Ok(())
}

/// The `q` quantile (0..1) of `values`, nearest rank.
pub(crate) fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    crate::stats::percentile_sorted(&v, q * 100.0)
}

/// How a procedure drives its traffic: `workers` clients back to back, or an open model at `rate` req/s
/// (a request started every 1/rate s, whether or not earlier ones have answered).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Drive {
    /// Closed loop with this many clients.
    Closed(usize),
    /// Open model at this many requests per second.
    Open(f64),
}

impl Drive {
    /// From the `rate` parameter when present, else `workers` (default `workers_default`).
    pub fn from_params(p: &P<'_>, workers_default: u64) -> Result<Drive, Error> {
        match p.params.get("rate") {
            Some(_) => Ok(Drive::Open(p.positive("rate", 1.0)?)),
            None => Ok(Drive::Closed(p.count("workers", workers_default)? as usize)),
        }
    }

    /// For notes.
    pub fn describe(&self) -> String {
        match self {
            Drive::Closed(w) => format!("{w} closed-loop clients"),
            Drive::Open(r) => format!("{r} req/s (open model)"),
        }
    }

    /// Calls `f` as this shape says until `d` has passed; returns every result, in completion order.
    pub async fn run<T, Fut: std::future::Future<Output = T>>(
        &self,
        d: std::time::Duration,
        f: impl Fn() -> Fut,
    ) -> Vec<T> {
        use futures::StreamExt;
        let end = std::time::Instant::now() + d;
        match *self {
            Drive::Closed(workers) => {
                let out = std::sync::Mutex::new(Vec::new());
                let client = || async {
                    while std::time::Instant::now() < end {
                        let r = f().await;
                        out.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                };
                futures::future::join_all((0..workers).map(|_| client())).await;
                out.into_inner().unwrap_or_else(|p| p.into_inner())
            }
            Drive::Open(rate) => {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(1.0 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut pending = futures::stream::FuturesUnordered::new();
                let mut out = Vec::new();
                loop {
                    let sending = std::time::Instant::now() < end;
                    if !sending && pending.is_empty() {
                        break;
                    }
                    tokio::select! {
                        _ = tick.tick(), if sending => pending.push(f()),
                        Some(r) = pending.next(), if !pending.is_empty() => out.push(r),
                    }
                }
                out
            }
        }
    }
}
