//! Resources on knative. [`limits_report`]: which CPU and memory requests and limits a function's revision
//! lacks (per function, from the Revision, where Knative's defaults are already applied).
//! [`utilization_samples`]: usage per pod and metrics-server window from `metrics.k8s.io/v1beta1`
//! PodMetrics. The `resources` procedure puts steady load on a function, samples its pods' usage against
//! their requests, and counts starvation: server errors and unanswered requests, OOM-killed containers,
//! and (when a Prometheus with cAdvisor data is configured) CPU-throttled pods.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use kube::{
    api::{Api, DynamicObject, ListParams},
    ResourceExt,
};
use serde_json::Value;

use super::{
    error::{Error, Result},
    function::{Function, Revision},
    procedures::{median, Ctx},
    route::{HttpRoute, Route},
    traffic::{constant_rate, InFlight},
    units::quantity,
    watch::{oom_killed, restarts},
};
use crate::measure::types::{MeasurementSet, Metric};

/// What one function's revision declares about resources.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsFinding {
    /// Function (Knative Service) name.
    pub function: String,
    /// Revision inspected.
    pub revision: String,
    /// What is missing: `cpu limit`, `memory limit`, `cpu request`, `memory request`.
    pub missing: Vec<String>,
}

impl LimitsFinding {
    /// Whether a CPU or memory limit is missing.
    pub fn limits_missing(&self) -> bool {
        self.missing.iter().any(|m| m.ends_with("limit"))
    }
}

fn has(r: &ResourceRequirements, limits: bool, res: &str) -> bool {
    let map = if limits { r.limits.as_ref() } else { r.requests.as_ref() };
    map.and_then(|m| m.get(res)).and_then(|q| quantity(&q.0)).is_some_and(|v| v > 0.0)
}

/// The requests and limits `rev`'s user container lacks.
pub fn limits_report(function: &str, rev: &Revision) -> LimitsFinding {
    let default = ResourceRequirements::default();
    let r = rev.user_container().map_or(&default, |(_, r)| r);
    let missing = [
        ("cpu", true, "cpu limit"),
        ("memory", true, "memory limit"),
        ("cpu", false, "cpu request"),
        ("memory", false, "memory request"),
    ]
    .into_iter()
    .filter(|(res, limits, _)| !has(r, *limits, res))
    .map(|(_, _, what)| what.to_string())
    .collect();
    LimitsFinding { function: function.into(), revision: rev.name.clone(), missing }
}

/// One metrics-server reading of one pod's container.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageSample {
    /// Pod.
    pub pod: String,
    /// End of the metrics window (the reading's `timestamp`).
    pub timestamp: String,
    /// CPU in cores.
    pub cpu_cores: f64,
    /// Memory (working set) in bytes.
    pub memory_bytes: f64,
}

/// Readings of `container` in PodMetrics objects (pods without that container are skipped).
pub fn utilization_samples(podmetrics: &[DynamicObject], container: &str) -> Vec<UsageSample> {
    podmetrics
        .iter()
        .filter_map(|pm| {
            let c = pm
                .data
                .get("containers")?
                .as_array()?
                .iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
            let usage = c.get("usage")?;
            Some(UsageSample {
                pod: pm.name_any(),
                timestamp: pm.data.get("timestamp").and_then(Value::as_str).unwrap_or_default().to_string(),
                cpu_cores: quantity(usage.get("cpu")?.as_str()?)?,
                memory_bytes: quantity(usage.get("memory")?.as_str()?)?,
            })
        })
        .collect()
}

async fn poll_metrics(
    api: Api<DynamicObject>,
    selector: String,
    container: String,
    every: Duration,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<Vec<UsageSample>> {
    let mut seen: BTreeMap<(String, String), UsageSample> = BTreeMap::new();
    let mut tick = tokio::time::interval(every);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return Ok(seen.into_values().collect()),
            _ = tick.tick() => {
                let list = api.list(&ListParams::default().labels(&selector)).await.map_err(Error::api("list metrics.k8s.io/v1beta1 PodMetrics (is metrics-server installed?)"))?;
                for s in utilization_samples(&list.items, &container) {
                    seen.entry((s.pod.clone(), s.timestamp.clone())).or_insert(s);
                }
            }
        }
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `data.result` of a Prometheus API answer to GET `path` (with query) at `base`.
async fn prom_result(base: &str, path: &str) -> Result<Vec<Value>> {
    let url = format!("{base}{}", path.split('?').next().unwrap_or(path));
    let route = HttpRoute::new(base, None, Duration::from_secs(30))?;
    let reply = route.get(path).await?;
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| Error::Route { url: url.clone(), detail: format!("HTTP {}: not JSON: {e}", reply.status) })?;
    if body.get("status").and_then(Value::as_str) != Some("success") {
        return Err(Error::Route {
            url,
            detail: format!("HTTP {}: {}", reply.status, body.get("error").unwrap_or(&body)),
        });
    }
    Ok(body.pointer("/data/result").and_then(Value::as_array).cloned().unwrap_or_default())
}

fn cadvisor_selector(namespace: &str, revision: &str, container: &str) -> String {
    format!(r#"namespace="{namespace}",pod=~"{revision}-deployment-.*",container="{container}""#)
}

/// Pods whose user container was CPU-throttled in more than `pct`% of its CFS periods over `range`,
/// from cAdvisor series in the Prometheus at `base`.
async fn throttled_pods(
    base: &str,
    namespace: &str,
    revision: &str,
    range: Duration,
    pct: f64,
) -> Result<Vec<(String, f64)>> {
    let sel = cadvisor_selector(namespace, revision, "user-container");
    let r = format!("{}s", range.as_secs().max(60));
    let q = format!(
        "sum by (pod) (increase(container_cpu_cfs_throttled_periods_total{{{sel}}}[{r}])) / sum by (pod) (increase(container_cpu_cfs_periods_total{{{sel}}}[{r}]))"
    );
    let result = prom_result(base, &format!("/api/v1/query?query={}", percent_encode(&q))).await?;
    Ok(result
        .iter()
        .filter_map(|s| {
            let pod = s.pointer("/metric/pod")?.as_str()?.to_string();
            let ratio: f64 = s.pointer("/value/1")?.as_str()?.parse().ok()?;
            (ratio * 100.0 > pct).then_some((pod, ratio * 100.0))
        })
        .collect())
}

fn matrix(series: &[Value]) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for s in series {
        let Some(pod) = s.pointer("/metric/pod").and_then(Value::as_str) else { continue };
        for v in s.get("values").and_then(Value::as_array).into_iter().flatten() {
            let (Some(t), Some(x)) = (
                v.get(0).and_then(Value::as_f64),
                v.get(1).and_then(Value::as_str).and_then(|x| x.parse::<f64>().ok()),
            ) else {
                continue;
            };
            out.insert((pod.to_string(), format!("{t:.0}")), x);
        }
    }
    out
}

/// Usage readings from two Prometheus range answers (CPU cores and memory bytes per pod), joined on pod and
/// time; a reading needs both.
pub fn join_usage(cpu: &[Value], memory: &[Value]) -> Vec<UsageSample> {
    let mem = matrix(memory);
    matrix(cpu)
        .into_iter()
        .filter_map(|((pod, t), cores)| {
            mem.get(&(pod.clone(), t.clone())).map(|&bytes| UsageSample {
                pod,
                timestamp: t,
                cpu_cores: cores,
                memory_bytes: bytes,
            })
        })
        .collect()
}

/// Usage of `container` in revision `revision`'s pods between the unix times `start` and `end`, every
/// `step`, from cAdvisor series in the Prometheus at `base` (when metrics-server is not there).
async fn prometheus_usage(
    base: &str,
    namespace: &str,
    revision: &str,
    container: &str,
    start: f64,
    end: f64,
    step: Duration,
) -> Result<Vec<UsageSample>> {
    let sel = cadvisor_selector(namespace, revision, container);
    let range = |q: String| {
        format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={}s",
            percent_encode(&q),
            step.as_secs().max(1)
        )
    };
    let cpu = prom_result(base, &range(format!("sum by (pod) (rate(container_cpu_usage_seconds_total{{{sel}}}[1m]))")))
        .await?;
    let mem = prom_result(base, &range(format!("sum by (pod) (container_memory_working_set_bytes{{{sel}}})"))).await?;
    Ok(join_usage(&cpu, &mem))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `resources`: limits per function, then `rate` req/s on the function for `duration_s` with its pods'
/// usage sampled against their requests, and starvation counted.
pub async fn procedure<R: Route>(x: &Ctx<'_>, make_route: &impl Fn(&Function) -> Result<R>) -> Result<MeasurementSet> {
    let (c, p) = (x.c, x.p);
    let rate = p.f64("rate", 50.0)?;
    let duration = p.secs("duration_s", 30.0)?;
    let every = p.secs("metrics_interval_s", 15.0)?;
    let throttle_pct = p.f64("throttle_pct", 25.0)?;
    let f = Function::resolve(c, p.str("function")?).await?;
    let rev = Revision::get(c, &f.ready_revision()?).await?;
    let mut set = x.set();

    let services: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.service);
    let mut findings = Vec::new();
    let scope = p.opt_str("scope")?.unwrap_or("namespace");
    let others = match scope {
        "namespace" => {
            services
                .list(&ListParams::default())
                .await
                .map_err(Error::api(format!("list Knative Services in namespace {}", c.namespace)))?
                .items
        }
        "function" => vec![f.service.clone()],
        other => {
            return Err(Error::Param {
                param: "scope".into(),
                problem: format!("`{other}`: expected namespace or function"),
            })
        }
    };
    for svc in &others {
        let fun = Function {
            name: svc.name_any(),
            source: super::function::Source::Service,
            service: svc.clone(),
            lambda: None,
        };
        match fun.ready_revision() {
            Ok(r) if r == rev.name => findings.push(limits_report(&fun.name, &rev)),
            Ok(r) => findings.push(limits_report(&fun.name, &Revision::get(c, &r).await?)),
            Err(_) => set
                .notes
                .push(format!("Knative Service {} has no ready revision; its resources were not checked", fun.name)),
        }
    }
    let lacking: Vec<String> = findings
        .iter()
        .filter(|f| !f.missing.is_empty())
        .map(|f| format!("{} ({}): no {}", f.function, f.revision, f.missing.join(", no ")))
        .collect();
    let missing_limits = findings.iter().filter(|f| f.limits_missing()).count();
    set = set.with(
        "limits_missing",
        if findings.is_empty() {
            Metric::Missing { reason: format!("no Knative Service with a ready revision in namespace {}", c.namespace) }
        } else {
            Metric::value(missing_limits as f64, "", findings.len() as u64)
        },
    );
    set.notes.push(format!(
        "{} function(s) checked for CPU/memory requests and limits ({scope}){}",
        findings.len(),
        if lacking.is_empty() { String::new() } else { format!(": {}", lacking.join("; ")) }
    ));

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &c.namespace);
    let lp = ListParams::default().labels(&rev.selector());
    let before: BTreeMap<String, i32> = pods
        .list(&lp)
        .await
        .map_err(Error::api(format!("list pods of revision {}", rev.name)))?
        .items
        .iter()
        .map(|p| (p.name_any(), restarts(p)))
        .collect();
    let (container, requests) =
        rev.user_container().cloned().unwrap_or_else(|| ("user-container".into(), ResourceRequirements::default()));
    let pm_api: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.pod_metrics);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let poller = tokio::spawn(poll_metrics(pm_api, rev.selector(), container.clone(), every, stopped));
    let route = Arc::new(make_route(&f)?);
    let load_start = unix_now();
    let tally = constant_rate(
        route.clone(),
        p.opt_str("path")?.unwrap_or("/"),
        rate,
        duration,
        p.u64("max_in_flight", 500)?,
        &InFlight::default(),
    )
    .await;
    tokio::time::sleep(every).await;
    let _ = stop.send(());
    let usage = poller.await.map_err(|e| Error::Shape(format!("metrics poller: {e}")))?;
    let usage = match (usage, &c.config.prometheus) {
        (Err(e), Some(base)) => {
            match prometheus_usage(base, &c.namespace, &rev.name, &container, load_start, unix_now(), every).await {
                Ok(u) => {
                    set.notes.push(format!(
                        "metrics-server unavailable ({e}); usage read from cAdvisor series in Prometheus at {base}"
                    ));
                    Ok(u)
                }
                Err(pe) => Err(Error::Measurement(format!("{e}; and cAdvisor series from Prometheus at {base}: {pe}"))),
            }
        }
        (u, _) => u,
    };
    let after = pods.list(&lp).await.map_err(Error::api(format!("list pods of revision {}", rev.name)))?.items;
    let oom: Vec<String> = after
        .iter()
        .filter(|p| {
            restarts(p) > before.get(&p.name_any()).copied().unwrap_or(0) || !before.contains_key(&p.name_any())
        })
        .flat_map(|p| oom_killed(p).into_iter().map(move |c| format!("{}/{c}", p.name_any())))
        .collect();

    let req = |res: &str| {
        requests.requests.as_ref().and_then(|m| m.get(res)).and_then(|q| quantity(&q.0)).filter(|v| *v > 0.0)
    };
    let unavailable = |e: &Error| {
        format!("metrics.k8s.io/v1beta1 PodMetrics unavailable ({e}); install metrics-server (scripts/kind/install.sh does)")
    };
    let (cpu, mem) = match &usage {
        Err(e) => (Metric::Missing { reason: unavailable(e) }, Metric::Missing { reason: unavailable(e) }),
        Ok(u) if u.is_empty() => {
            let why = format!(
                "metrics-server returned no reading for container {container} of revision {} during the load",
                rev.name
            );
            (Metric::Missing { reason: why.clone() }, Metric::Missing { reason: why })
        }
        Ok(u) => {
            let of = |res: &str, pick: fn(&UsageSample) -> f64| {
                match req(res) {
                Some(r) => Metric::samples(u.iter().map(|s| 100.0 * pick(s) / r).collect(), "%"),
                None => Metric::Missing {
                    reason: format!(
                        "container {container} of revision {} has no {res} request: utilization against requests is undefined",
                        rev.name
                    ),
                },
            }
            };
            (of("cpu", |s| s.cpu_cores), of("memory", |s| s.memory_bytes))
        }
    };
    let both = match (&cpu, &mem) {
        (Metric::Samples { values: c, .. }, Metric::Samples { values: m, .. }) => {
            Metric::samples(c.iter().zip(m).map(|(a, b)| (a + b) / 2.0).collect(), "%")
        }
        (Metric::Missing { reason }, _) | (_, Metric::Missing { reason }) => Metric::Missing { reason: reason.clone() },
        _ => Metric::Missing { reason: "utilization samples missing".into() },
    };
    if let Ok(u) = &usage {
        set.raw.push(x.raw_csv(
            "usage.csv",
            "pod,timestamp,cpu_cores,memory_bytes",
            u.iter().map(|s| format!("{},{},{},{}", s.pod, s.timestamp, s.cpu_cores, s.memory_bytes)),
        )?);
    }
    set = set.with("cpu_utilization", cpu).with("memory_utilization", mem).with("utilization", both);

    let throttled = match &c.config.prometheus {
        Some(base) => match throttled_pods(base, &c.namespace, &rev.name, duration + every, throttle_pct).await {
            Ok(t) => Ok(t),
            Err(e) => Err(format!("CPU throttling could not be read from Prometheus at {base}: {e}")),
        },
        None => {
            set.notes.push("CPU throttling not measured: no Prometheus configured (HARNESS_KNATIVE_PROMETHEUS)".into());
            Ok(Vec::new())
        }
    };
    set = set.with(
        "starvation",
        match &throttled {
            Ok(t) => {
                Metric::value((tally.starvation() + oom.len() as u64 + t.len() as u64) as f64, "", tally.sent.max(1))
            }
            Err(e) => Metric::Missing { reason: e.clone() },
        },
    );
    let lat = if tally.latencies_s.is_empty() {
        "no answers".to_string()
    } else {
        format!("median latency {:.3}s", median(&tally.latencies_s))
    };
    set.notes.push(format!(
        "revision {}: {rate} req/s for {}s through {} ({} sent, {} dropped, {lat}); starvation: {} server errors, {} without answer, OOM-killed {:?}, throttled above {throttle_pct}% {:?}",
        rev.name,
        duration.as_secs(),
        route.describe(),
        tally.sent,
        tally.dropped,
        tally.server_errors,
        tally.no_answer,
        oom,
        throttled.unwrap_or_default()
    ));
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadvisor_ranges_are_joined_per_pod_and_time() {
        let cpu: Vec<Value> = serde_json::from_value(serde_json::json!([
            {"metric": {"pod": "a"}, "values": [[1795680000, "0.08"], [1795680015, "0.09"]]},
            {"metric": {"pod": "b"}, "values": [[1795680000, "0.05"]]}
        ]))
        .unwrap();
        let mem: Vec<Value> = serde_json::from_value(serde_json::json!([
            {"metric": {"pod": "a"}, "values": [[1795680000, "41943040"], [1795680015, "42991616"]]}
        ]))
        .unwrap();
        let u = join_usage(&cpu, &mem);
        assert_eq!(u.len(), 2, "b has no memory reading");
        assert_eq!(
            (u[1].pod.as_str(), u[1].timestamp.as_str(), u[1].cpu_cores, u[1].memory_bytes),
            ("a", "1795680015", 0.09, 42_991_616.0)
        );
    }

    #[test]
    fn percent_encoding_keeps_promql_intact() {
        assert_eq!(percent_encode(r#"a{b="c"}[1m] / d"#), "a%7Bb%3D%22c%22%7D%5B1m%5D%20%2F%20d");
    }
}
