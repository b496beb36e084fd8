//! [`Metrics`]: the platform's Prometheus metrics (cold start and invocation duration histograms,
//! invocations and throttles by status, concurrent executions, environments by state, memory used, scale
//! events, front door requests), rendered in the text exposition format.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Name, type and help of every family.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "function_cold_start_duration_seconds",
        "histogram",
        "Init Duration of cold starts (start of the environment to its first request for work).",
    ),
    (
        "function_invocation_duration_seconds",
        "histogram",
        "Duration of invocations as in the REPORT line (handler time).",
    ),
    (
        "function_invocations_total",
        "counter",
        "Invocations by outcome: success, error (handled or unhandled), timeout, throttled.",
    ),
    ("function_throttles_total", "counter", "Invocations refused with 429, by reason."),
    ("function_concurrent_executions", "gauge", "Invocations in flight."),
    ("function_environments", "gauge", "Execution environments by state."),
    ("function_max_memory_used_bytes", "gauge", "Max Memory Used of the last invocation."),
    ("function_memory_size_bytes", "gauge", "Configured memory size."),
    (
        "function_memory_used_bytes",
        "gauge",
        "Peak memory used by the function's environments so far (the Max Memory Used of its REPORT lines).",
    ),
    ("function_memory_limit_bytes", "gauge", "Memory limit of each environment (the configured memory size)."),
    (
        "function_cpu_seconds_total",
        "counter",
        "CPU seconds used by the function's environments, read at the end of each invocation.",
    ),
    ("function_scale_events_total", "counter", "Execution environments started (up) and retired (down), by reason."),
    ("api_gateway_requests_total", "counter", "Front door requests by status code."),
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
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in g.counters.iter().chain(g.gauges.iter()) {
                if n == name {
                    let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                }
            }
            for (n, labels, v) in live {
                if n == name {
                    let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                }
            }
            for ((n, labels), h) in &g.histograms {
                if n != name {
                    continue;
                }
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "{name}_bucket{} {}", fmt_labels(labels, Some(&b.to_string())), h.counts[i]);
                }
                let _ = writeln!(out, "{name}_bucket{} {}", fmt_labels(labels, Some("+Inf")), h.count);
                let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum);
                let _ = writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
            }
        }
        out
    }
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
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
