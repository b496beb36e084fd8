//! The measurement catalog: every `procedure.metric` a profile may name, with its dimension and shape.
//!
//! This is the contract between the criteria (data) and the procedures in `measure` (code): a profile is
//! validated against it at load time, and a procedure must produce exactly the metrics listed for it.

use super::threshold::Dimension;

/// Whether a metric is a set of samples (percentiles apply) or one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Many samples; any statistic applies.
    Distribution,
    /// One figure (a ratio, a size, a count, a flag); only `value` applies.
    Scalar,
}

/// One entry of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Procedure that produces it (`cold_start`).
    pub procedure: &'static str,
    /// Metric name within the procedure (`client_latency`).
    pub metric: &'static str,
    /// Dimension of its values.
    pub dimension: Dimension,
    /// Shape.
    pub shape: Shape,
    /// What it is, for `harness list` and the report.
    pub about: &'static str,
}

use Dimension::*;
use Shape::*;

macro_rules! m {
    ($p:literal, $m:literal, $d:expr, $s:expr, $a:literal) => {
        MetricDef { procedure: $p, metric: $m, dimension: $d, shape: $s, about: $a }
    };
}

/// Every metric the procedures produce.
pub const CATALOG: &[MetricDef] = &[
    // AC1: builds
    m!("build", "time_reduction", Percent, Scalar, "P95 clean build time of the optimized Dockerfile vs the baseline one, reduction in %"),
    m!("build", "incremental_reduction", Percent, Scalar, "median rebuild time after a source-only change vs a clean build, reduction in %"),
    m!("build", "dependency_cache_hit_rate", Percent, Scalar, "dependency steps served from cache after a source-only change, %"),
    m!("build", "cache_hit_rate", Percent, Scalar, "steps served from cache on an unchanged rebuild / cacheable steps, %"),
    m!("build", "metrics_missing", Count, Scalar, "build metric families (duration, cache hits, layer sizes) missing from Prometheus"),
    m!("build", "quality_failures", Count, Scalar, "the fixture's own tests failing inside the optimized image"),
    m!("build", "image_size_reduction", Percent, Scalar, "optimized image size vs baseline image size, reduction in %"),
    m!("build", "clean_duration", Time, Distribution, "clean (no cache) build time of the optimized Dockerfile"),
    m!("build", "concurrent_p95", Time, Scalar, "P95 build time with concurrent builds"),
    m!("build", "peak_memory", Bytes, Scalar, "peak memory of one build"),
    m!("build", "duration", Time, Distribution, "build time of the optimized Dockerfile after a source-only change with the build cache enabled (the everyday build; Kaniko with its cache repo on knative)"),
    m!("build", "layer_cache_hit_rate", Percent, Scalar, "layers served from the build cache / layers looked up, over the source-change builds of a run (Kaniko: cache hits / cache requests), %"),
    m!("build", "concurrent_peak", Count, Scalar, "builds running at the same time at the peak, when a batch of builds is triggered at once"),
    m!("build", "concurrent_batch_duration", Time, Scalar, "time from triggering a batch of concurrent builds until the last of them finished"),
    m!("build", "oom_killed", Count, Scalar, "builds of the concurrent batch killed for exceeding their memory limit (OOMKilled)"),
    m!("build", "rate_limited", Count, Scalar, "builds of the concurrent batch that hit a registry or API rate limit"),
    m!("build", "baseline_clean_duration", Time, Distribution, "clean (no cache) build time of the baseline Dockerfile"),
    m!("build", "dependency_change_duration", Time, Distribution, "build time of the optimized Dockerfile after a change to its dependency manifest, cache on"),
    m!("build", "concurrent_throughput", Rate, Scalar, "builds finished per second when a batch of builds is triggered at once"),
    // AC2: cold and warm start
    m!("cold_start", "client_latency", Time, Distribution, "client time of invocations verified to hit a new, cold environment"),
    m!("cold_start", "init_duration", Time, Distribution, "the platform's Init Duration of those cold starts"),
    m!("cold_start", "init_code", Time, Distribution, "time the function's own init code took, as the function reports it"),
    m!("cold_start", "bootstrap", Time, Distribution, "Init Duration minus the function's init code: runtime and dependency loading"),
    m!("cold_start", "baseline_reduction", Percent, Scalar, "median Init Duration of the optimized image vs the baseline (single-stage) image, reduction in %"),
    m!("image", "size", Bytes, Scalar, "size of the function's container image"),
    m!("warm_start", "client_latency", Time, Distribution, "client time of invocations on warm environments"),
    m!("warm_start", "duration", Time, Distribution, "the platform's Duration of warm invocations"),
    m!("cold_start_rate", "rate", Percent, Scalar, "share of invocations that were cold under the profile's traffic shape"),
    // AC3: scaling
    m!("scale_up", "latency", Time, Distribution, "time from a spike out of idle until the target concurrency is served"),
    m!("scale_down", "premature", Count, Scalar, "environments retired before the idle window ended under intermittent load"),
    m!("scale_down", "retired_after_idle", Bool, Scalar, "idle environments were retired after the idle window"),
    m!("concurrency", "over_limit", Count, Scalar, "peak concurrent environments above the reserved concurrency"),
    m!("concurrency", "excess_throttled", Percent, Scalar, "share of requests beyond the limit answered with 429"),
    // AC4: resources
    m!("resources", "memory_utilization", Percent, Distribution, "Max Memory Used / memory size, per invocation under load"),
    m!("resources", "cpu_utilization", Percent, Distribution, "CPU time / (wall time x CPU share), per environment under load"),
    m!("resources", "utilization", Percent, Distribution, "mean of CPU and memory utilization, per environment under load"),
    m!("resources", "limits_missing", Count, Scalar, "functions without memory and CPU limits"),
    m!("resources", "starvation", Count, Scalar, "errors, timeouts, OOM kills under load"),
    m!("memory_sweep", "recommended", Bool, Scalar, "a memory size was recommended from a sweep over sizes"),
    m!("memory_sweep", "over_allocation", Percent, Scalar, "configured memory above the sweep's balanced recommendation, %"),
    // Scenario 6: high load
    m!("high_load", "delivered_rate", Rate, Scalar, "request rate delivered through the front door"),
    m!("high_load", "latency", Time, Distribution, "client latency under high load"),
    m!("high_load", "p95_increase", Percent, Scalar, "P95 under high load vs the warm baseline P95, increase in %"),
    m!("high_load", "availability", Percent, Scalar, "successful responses / requests sent under load"),
    m!("high_load", "error_rate", Percent, Scalar, "server errors (5xx), timeouts and connection failures / requests sent under load, %; throttled (429) requests are not errors"),
    m!("high_load", "scaled", Bool, Scalar, "more environments served the load than at idle"),
    m!("high_load", "over_limit", Count, Scalar, "environments above the function's concurrency limit"),
    m!("high_load", "metrics_deviation", Percent, Scalar, "invocations counted by the platform's metrics vs requests served, %"),
    m!("high_load", "memory_growth", Percent, Scalar, "growth of environments' memory from the first to the last third of the run"),
    // AC5: monitoring
    m!("monitoring", "build_missing", Count, Scalar, "build metric families without data in Prometheus"),
    m!("monitoring", "cold_warm_missing", Count, Scalar, "cold/warm start metric families without data in Prometheus"),
    m!("monitoring", "scaling_missing", Count, Scalar, "scaling metric families without data in Prometheus"),
    m!("monitoring", "resource_missing", Count, Scalar, "resource metric families without data in Prometheus"),
    m!("monitoring", "dashboard_missing", Count, Scalar, "dashboard panel queries that return no data"),
    m!("monitoring", "alerts_missing", Count, Scalar, "required alert rules not loaded or unhealthy"),
    m!("monitoring", "cold_start_p95_deviation", Percent, Scalar, "Prometheus' cold start P95 vs the harness's, %"),
    // AC6: regression
    m!("regression", "baseline", Bool, Scalar, "a baseline of this environment was read, or saved from this run's reference sessions"),
    m!("regression", "injected_detected", Bool, Scalar, "an injected 10% regression was detected and an unchanged run was not flagged"),
    m!("regression", "alert_time", Time, Scalar, "time from an injected regression to its alert reaching Alertmanager"),
    m!("regression", "history_runs", Count, Scalar, "entries read back from the history store: earlier runs and sessions, and this run's scenario sessions (or this run)"),
    m!("regression", "trend_checks", Count, Scalar, "checks with a trend over at least two history entries"),
    m!("regression", "regressions", Count, Scalar, "checks that regressed against the baseline"),
    // Security
    m!("security", "unauthenticated_access", Count, Scalar, "performance-data endpoints that served without or with wrong credentials"),
    m!("security", "secret_findings", Count, Scalar, "secrets found in metrics, configuration, logs and reports"),
    m!("security", "rate_limit_violations", Count, Scalar, "rate-limit expectations violated under burst (429s missing, or 429s within the limit)"),
    m!("security", "tls_overhead", Percent, Scalar, "HTTPS vs HTTP latency overhead on warm requests"),
    m!("security", "tls_overhead_new_connection", Percent, Scalar, "HTTPS vs HTTP latency overhead with a new connection per request (connect and handshake included)"),
    m!("security", "audit_missing", Count, Scalar, "configuration changes the suite made that the audit log lacks"),
    m!("security", "controls_after_tuning", Count, Scalar, "security controls failing after the tuned configuration is applied"),
    m!("security", "findings_after_tuning", Count, Scalar, "security findings on the tuned configuration"),
    // The SecureBase portal stack (local target)
    m!("portal", "redis_hit_rate", Percent, Scalar, "Redis keyspace hits / lookups (INFO stats before and after) under the portal's API load, %"),
    m!("portal", "query_time", Time, Scalar, "mean execution time of the API's statements, pg_stat_statements mean_exec_time weighted by calls"),
    m!("portal", "query_client_time", Time, Distribution, "each database query of the API as the API timed it (round trip included)"),
    m!("portal", "cdn_hit_rate", Percent, Scalar, "requests the caching proxy served from its cache (HIT) / requests, under a mix of page views, %"),
    m!("portal", "page_load", Time, Distribution, "loadEventEnd of the portal page in headless Chromium (Navigation Timing) through the CDN, browser cache cleared and warm alternating"),
    m!("portal", "ttfb", Time, Distribution, "responseStart (time to first byte) of those page loads (Navigation Timing)"),
    m!("portal", "lighthouse_performance", Count, Scalar, "Lighthouse 12 performance score (0-100) of the portal page through the CDN, default settings, median of the runs"),
    // The run itself
    m!("run", "pass_rate", Percent, Scalar, "checks of this profile that passed, of those that apply"),
];

/// Looks up `procedure.metric`.
pub fn lookup(measure: &str) -> Option<&'static MetricDef> {
    let (p, m) = measure.split_once('.')?;
    CATALOG.iter().find(|d| d.procedure == p && d.metric == m)
}

/// The procedures in the catalog, in order of first appearance.
pub fn procedures() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for d in CATALOG {
        if !out.contains(&d.procedure) {
            out.push(d.procedure);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lookup_finds_them() {
        for (i, d) in CATALOG.iter().enumerate() {
            let key = format!("{}.{}", d.procedure, d.metric);
            assert!(CATALOG[..i].iter().all(|e| (e.procedure, e.metric) != (d.procedure, d.metric)), "{key}");
            assert_eq!(lookup(&key).map(|e| e.about), Some(d.about));
        }
        assert!(lookup("cold_start.nope").is_none());
        assert!(lookup("nodot").is_none());
    }
}
