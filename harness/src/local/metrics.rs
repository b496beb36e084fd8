//! [`Metrics`]: the platform's Prometheus metrics (cold start and invocation duration histograms,
//! invocations and throttles by status, concurrent executions, environments by state, memory used, scale
//! events, front door requests), rendered in the text exposition format of [`crate::metrics::exposition`].

use std::{collections::BTreeMap, sync::Mutex};

use crate::metrics::exposition::{self, Family, Kind};

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Name, type and help of every family.
const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "function_cold_start_duration_seconds",
        Kind::Histogram,
        "Init Duration of cold starts (start of the environment to its first request for work).",
    ),
    (
        "function_invocation_duration_seconds",
        Kind::Histogram,
        "Duration of invocations as in the REPORT line (handler time).",
    ),
    (
        "function_invocations_total",
        Kind::Counter,
        "Invocations by outcome: success, error (handled or unhandled), timeout, throttled.",
    ),
    ("function_throttles_total", Kind::Counter, "Invocations refused with 429, by reason."),
    ("function_concurrent_executions", Kind::Gauge, "Invocations in flight."),
    ("function_environments", Kind::Gauge, "Execution environments by state."),
    ("function_max_memory_used_bytes", Kind::Gauge, "Max Memory Used of the last invocation."),
    ("function_memory_size_bytes", Kind::Gauge, "Configured memory size."),
    (
        "function_memory_used_bytes",
        Kind::Gauge,
        "Peak memory used by the function's environments so far (the Max Memory Used of its REPORT lines).",
    ),
    ("function_memory_limit_bytes", Kind::Gauge, "Memory limit of each environment (the configured memory size)."),
    (
        "function_cpu_seconds_total",
        Kind::Counter,
        "CPU seconds used by the function's environments, read at the end of each invocation.",
    ),
    (
        "function_scale_events_total",
        Kind::Counter,
        "Execution environments started (up) and retired (down), by reason.",
    ),
    ("api_gateway_requests_total", Kind::Counter, "Front door requests by status code."),
];

pub(crate) type Labels = Vec<(&'static str, String)>;

/// A gauge sample computed at scrape time.
pub(crate) type Sample = (&'static str, Labels, f64);

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), f64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The platform's metric registry.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inc(&self, name: &'static str, labels: Labels) {
        *self.lock().counters.entry((name, labels)).or_default() += 1.0;
    }

    pub fn add(&self, name: &'static str, labels: Labels, v: f64) {
        *self.lock().counters.entry((name, labels)).or_default() += v;
    }

    pub fn set(&self, name: &'static str, labels: Labels, v: f64) {
        self.lock().gauges.insert((name, labels), v);
    }

    pub fn observe(&self, name: &'static str, labels: Labels, seconds: f64) {
        let mut g = self.lock();
        let h = g.histograms.entry((name, labels)).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The text exposition; `live` adds gauges computed at scrape time (environments by state).
    pub fn render(&self, live: &[Sample]) -> String {
        let g = self.lock();
        let mut families = Vec::with_capacity(FAMILIES.len());
        for &(name, kind, help) in FAMILIES {
            let mut f = Family::new(name, kind, Some(help.into()));
            let values = g.counters.iter().chain(g.gauges.iter()).map(|((n, l), v)| (*n, l, *v));
            for (_, labels, v) in values.chain(live.iter().map(|(n, l, v)| (*n, l, *v))).filter(|s| s.0 == name) {
                f.samples.push(exposition::Sample::new(name, labels_of(labels), v));
            }
            for ((_, labels), h) in g.histograms.iter().filter(|((n, _), _)| *n == name) {
                let mut buckets: Vec<(f64, f64)> = BUCKETS.iter().zip(h.counts).map(|(b, c)| (*b, c as f64)).collect();
                buckets.push((f64::INFINITY, h.count as f64));
                let h = exposition::Histogram { labels: labels_of(labels), buckets, sum: h.sum, count: h.count as f64 };
                f.samples.extend(h.samples(name));
            }
            families.push(f);
        }
        exposition::encode(&families)
    }
}

fn labels_of(labels: &Labels) -> exposition::Labels {
    labels.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        let l = || vec![("function", "f\"x".to_string())];
        m.observe("function_cold_start_duration_seconds", l(), 0.003);
        m.observe("function_cold_start_duration_seconds", l(), 0.2);
        m.inc("function_invocations_total", vec![("function", "f".into()), ("status", "success".into())]);
        let text =
            m.render(&[("function_environments", vec![("function", "f".into()), ("state", "idle".into())], 2.0)]);
        assert!(
            text.contains("function_cold_start_duration_seconds_bucket{function=\"f\\\"x\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("function_cold_start_duration_seconds_bucket{function=\"f\\\"x\",le=\"0.25\"} 2"),
            "{text}"
        );
        assert!(text.contains("function_cold_start_duration_seconds_count{function=\"f\\\"x\"} 2"), "{text}");
        assert!(text.contains("function_invocations_total{function=\"f\",status=\"success\"} 1"), "{text}");
        assert!(text.contains("function_environments{function=\"f\",state=\"idle\"} 2"), "{text}");
        assert!(text.contains("# TYPE function_invocation_duration_seconds histogram"));
        let fams = exposition::parse(&text, "render").unwrap();
        let cold = fams.iter().find(|f| f.name == "function_cold_start_duration_seconds").unwrap();
        let h = cold.histograms().unwrap();
        assert_eq!((h[0].count, h[0].sum, h[0].labels["function"].as_str()), (2.0, 0.203, "f\"x"));
    }

    #[test]
    fn cpu_seconds_accumulate_and_resource_families_are_declared() {
        let m = Metrics::default();
        let l = || vec![("function", "f".to_string())];
        m.add("function_cpu_seconds_total", l(), 0.25);
        m.add("function_cpu_seconds_total", l(), 0.5);
        m.set("function_memory_limit_bytes", l(), 134217728.0);
        let text = m.render(&[]);
        assert!(text.contains("function_cpu_seconds_total{function=\"f\"} 0.75"), "{text}");
        assert!(text.contains("function_memory_limit_bytes{function=\"f\"} 134217728"), "{text}");
        for family in ["function_cpu_seconds_total counter", "function_memory_used_bytes gauge"] {
            assert!(text.contains(&format!("# TYPE {family}")), "{text}");
        }
    }
}
