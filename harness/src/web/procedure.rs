//! The `portal` procedure: starts the [`PortalStack`] with the knobs its parameters name, drives it with
//! the portal's traffic and reads each figure where the guide reads it: the Redis hit rate from `INFO stats`
//! before and after the API load, the database query time from `pg_stat_statements`, the CDN hit rate from
//! nginx's per-request cache status under a mix of page views. The raw evidence (both `INFO` snapshots,
//! the `pg_stat_statements` rows, the access log, the API's own counters) goes to the run directory.

use std::{
    path::{Path, PathBuf},
    sync::atomic::Ordering,
    time::Duration,
};

use futures::{stream, StreamExt};
use serde_json::json;

use super::{
    browser::Browser,
    lighthouse,
    nginx::hit_count,
    origin::{HERO, LOGO, SCRIPT, STYLE},
    postgres::{of_statements, weighted_mean, INVOICES_QUERY, METRICS_QUERY},
    redis::keyspace,
    stack::{Knobs, PortalStack},
    Error,
};
use crate::{
    criteria::Params,
    measure::{MeasurementSet, Metric},
    metrics::{Auth, HttpClient},
    run_dir::RunDir,
    stats::SplitMix64,
};

/// What the procedure does, from its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalParams {
    /// API requests of the Redis/database phase.
    pub requests: u64,
    /// Page views of the CDN phase (each: the page, its four assets, two API calls).
    pub page_views: u64,
    /// Customers active during the run (the working set), drawn with a Zipf(1.1) skew.
    pub customers: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Page loads in headless Chromium, cold (browser cache cleared) and warm alternating.
    pub page_loads: u64,
    /// Lighthouse runs (the median score is reported).
    pub lighthouse_runs: u64,
    /// Faults.
    pub knobs: Knobs,
}

fn get<'a>(params: &'a Params, name: &str) -> Option<&'a serde_json::Value> {
    params.get(name)
}

fn uint(params: &Params, name: &str, default: u64, min: u64) -> Result<u64, Error> {
    match get(params, name) {
        None => Ok(default),
        Some(v) => v.as_u64().filter(|n| *n >= min).ok_or_else(|| Error::Param {
            param: name.into(),
            problem: format!("expected an integer >= {min}, got {v}"),
        }),
    }
}

fn boolean(params: &Params, name: &str, default: bool) -> Result<bool, Error> {
    match get(params, name) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| Error::Param { param: name.into(), problem: format!("expected true or false, got {v}") }),
    }
}

impl PortalParams {
    /// Reads the parameters: `requests`, `page_views`, `customers`, `concurrency`, `page_loads`, `lighthouse_runs`, and the knobs
    /// `cdn_cache`, `redis_ttl_s`, `indexes`, `slow_path` with `slow_ms`, `script_busy_ms`, `metric_rows`.
    pub fn from_params(params: &Params) -> Result<PortalParams, Error> {
        let slow = match (get(params, "slow_path"), get(params, "slow_ms")) {
            (None, None) => None,
            (Some(p), Some(_)) => {
                let path = p.as_str().filter(|p| p.starts_with('/')).ok_or_else(|| Error::Param {
                    param: "slow_path".into(),
                    problem: format!("expected a path starting with /, got {p}"),
                })?;
                Some((path.to_string(), Duration::from_millis(uint(params, "slow_ms", 0, 1)?)))
            }
            _ => {
                return Err(Error::Param {
                    param: "slow_path".into(),
                    problem: "slow_path and slow_ms go together".into(),
                })
            }
        };
        let knobs = Knobs {
            cdn_cache: boolean(params, "cdn_cache", true)?,
            redis_ttl_s: get(params, "redis_ttl_s").map(|_| uint(params, "redis_ttl_s", 0, 0)).transpose()?,
            indexes: boolean(params, "indexes", true)?,
            slow,
            script_busy_ms: get(params, "script_busy_ms").map(|_| uint(params, "script_busy_ms", 0, 1)).transpose()?,
            metric_rows: uint(params, "metric_rows", Knobs::default().metric_rows, 1000)?,
        };
        Ok(PortalParams {
            requests: uint(params, "requests", 2000, 1)?,
            page_views: uint(params, "page_views", 300, 1)?,
            customers: uint(params, "customers", 50, 1)? as u32,
            concurrency: uint(params, "concurrency", 8, 1)? as usize,
            page_loads: uint(params, "page_loads", 30, 1)?,
            lighthouse_runs: uint(params, "lighthouse_runs", 3, 1)?,
            knobs,
        })
    }
}

/// Draws customer ids with a Zipf(1.1) skew over a working set, and the guide's date ranges.
struct Mix {
    rng: SplitMix64,
    cumulative: Vec<f64>,
}

impl Mix {
    fn new(customers: u32, seed: u64) -> Mix {
        let mut acc = 0.0;
        let cumulative = (0..customers)
            .map(|k| {
                acc += 1.0 / f64::from(k + 1).powf(1.1);
                acc
            })
            .collect();
        Mix { rng: SplitMix64::new(seed), cumulative }
    }

    fn customer(&mut self) -> String {
        let total = *self.cumulative.last().expect("at least one customer");
        let x = self.rng.next_f64() * total;
        let k = self.cumulative.partition_point(|c| *c < x).min(self.cumulative.len() - 1);
        format!("cust{:04}", (k * 7) % 500)
    }

    fn date_range(&mut self) -> u32 {
        match self.rng.next_f64() {
            x if x < 0.7 => 30,
            x if x < 0.9 => 7,
            _ => 90,
        }
    }

    fn api_path(&mut self) -> String {
        let c = self.customer();
        if self.rng.next_f64() < 0.6 {
            format!("/api/metrics?customer_id={c}&date_range={}", self.date_range())
        } else {
            format!("/api/invoices?customer_id={c}")
        }
    }
}

/// Outcome of a batch of GETs: every attempt is counted.
#[derive(Debug, Default, Clone, PartialEq)]
struct Sent {
    ok: u64,
    http_errors: Vec<String>,
    failures: Vec<String>,
}

async fn send_all(http: &HttpClient, urls: Vec<String>, concurrency: usize) -> Sent {
    let results: Vec<(String, Result<u16, String>)> = stream::iter(urls)
        .map(|url| async move {
            let r = http.get(&url, &Auth::None).await.map(|r| r.status).map_err(|e| e.to_string());
            (url, r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut sent = Sent::default();
    for (url, r) in results {
        match r {
            Ok(s) if (200..300).contains(&s) => sent.ok += 1,
            Ok(s) => sent.http_errors.push(format!("{url}: HTTP {s}")),
            Err(e) => sent.failures.push(e),
        }
    }
    sent
}

fn describe(what: &str, total: usize, s: &Sent) -> String {
    let first = s.http_errors.first().or(s.failures.first()).map(|e| format!("; first: {e}")).unwrap_or_default();
    format!(
        "{what}: {total} requests sent, {} answered 2xx, {} answered otherwise, {} failed without an answer{first}",
        s.ok,
        s.http_errors.len(),
        s.failures.len()
    )
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, Error> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| super::error::io(&p, e))?;
    Ok(p)
}

/// Runs the procedure on the local target.
pub async fn run(params: &Params, dir: &RunDir) -> Result<MeasurementSet, Error> {
    let p = PortalParams::from_params(params)?;
    let raw =
        dir.raw_dir("portal").map_err(|e| Error::Tool { program: "run directory".into(), detail: e.to_string() })?;
    let mut set = MeasurementSet::new("portal", "local", params);
    let stack = PortalStack::start(&p.knobs).await?;
    set.notes.push(format!(
        "stack: redis-server {}, postgres {} ({} usage_metrics rows, indexes {}), origin {}, nginx {} (proxy_cache {}); knobs {:?}",
        stack.redis.addr(),
        stack.postgres.addr(),
        p.knobs.metric_rows,
        if p.knobs.indexes { "created" } else { "missing" },
        stack.origin.url(),
        stack.nginx.url(),
        if p.knobs.cdn_cache { "on" } else { "off" },
        p.knobs
    ));
    let http = HttpClient::new(Duration::from_secs(30));
    let rel = |path: PathBuf| path.strip_prefix(dir.path()).map(Path::to_path_buf).unwrap_or(path);

    // API phase: straight to the origin's API, as API Gateway passes requests to the function.
    let mut mix = Mix::new(p.customers, 0x5ec_ba5e);
    let mut redis = stack.redis.connect().await?;
    let before = redis.info("stats").await?;
    let urls: Vec<String> = (0..p.requests).map(|_| format!("{}{}", stack.origin.url(), mix.api_path())).collect();
    let api = send_all(&http, urls, p.concurrency).await;
    let after = redis.info("stats").await?;
    set.notes.push(describe("API load (origin)", p.requests as usize, &api));
    set.raw.push(rel(write(&raw, "redis-info-before.txt", &before)?));
    set.raw.push(rel(write(&raw, "redis-info-after.txt", &after)?));
    let counters = stack.origin.counters();
    let api_counts = json!({
        "cache_hits": counters.cache_hits.load(Ordering::Relaxed),
        "cache_misses": counters.cache_misses.load(Ordering::Relaxed),
        "cache_errors": counters.cache_errors.load(Ordering::Relaxed),
        "db_errors": counters.db_errors.load(Ordering::Relaxed),
        "query_ms": *counters.query_ms.lock().expect("query times"),
    });
    set.raw.push(rel(write(&raw, "api-counters.json", &serde_json::to_string_pretty(&api_counts).expect("json"))?));
    set = set.with("redis_hit_rate", redis_hit_rate(&before, &after, &api));

    let all = stack.postgres.statement_stats().await?;
    set.raw.push(rel(write(&raw, "pg_stat_statements.json", &serde_json::to_string_pretty(&all).expect("json"))?));
    let stats = of_statements(&all, &[METRICS_QUERY, INVOICES_QUERY]);
    let query_time = match weighted_mean(&stats) {
        Some((mean, calls)) => {
            set.notes.push(format!(
                "query time: mean_exec_time over {calls} calls of {} statements (pg_stat_statements)",
                stats.len()
            ));
            Metric::value(mean, "ms", calls)
        }
        None => Metric::Missing {
            reason: format!(
                "pg_stat_statements holds no call of the API's statements after {} API requests ({} answered 2xx); \
                 it holds {} other statements: {}",
                p.requests,
                api.ok,
                all.len(),
                all.iter().map(|s| s.query.as_str()).take(5).collect::<Vec<_>>().join(" | ")
            ),
        },
    };
    set = set.with("query_time", query_time);
    let client_times = counters.query_ms.lock().expect("query times").clone();
    set = set.with(
        "query_client_time",
        if client_times.is_empty() {
            Metric::Missing { reason: "the API ran no database query (every request was a cache hit or failed)".into() }
        } else {
            Metric::samples(client_times, "ms")
        },
    );

    // CDN phase: page views through nginx, each the page, its assets and its two API calls.
    let mut mix = Mix::new(p.customers, 0xcd_0001);
    let log_start = stack.nginx.entries()?.len();
    let mut urls = Vec::new();
    for _ in 0..p.page_views {
        let c = mix.customer();
        for path in ["/", STYLE, SCRIPT, LOGO, HERO] {
            urls.push(format!("{}{path}", stack.nginx.url()));
        }
        urls.push(format!("{}/api/metrics?customer_id={c}&date_range={}", stack.nginx.url(), mix.date_range()));
        urls.push(format!("{}/api/invoices?customer_id={c}", stack.nginx.url()));
    }
    let total = urls.len();
    let cdn = send_all(&http, urls, p.concurrency).await;
    set.notes.push(describe("page views (CDN)", total, &cdn));
    let entries = stack.nginx.entries_at_least(log_start + total, Duration::from_secs(5)).await?;
    let log_text = std::fs::read_to_string(stack.nginx.access_log()).unwrap_or_default();
    set.raw.push(rel(write(&raw, "nginx-access.log", &log_text)?));
    set = set.with("cdn_hit_rate", cdn_hit_rate(&entries[log_start.min(entries.len())..], total));

    let page = format!("{}/", stack.nginx.url());
    let mut browser = Browser::start().await.map_err(|e| format!("headless Chromium could not be started: {e}"));
    let (page_load, ttfb) = page_loads(browser.as_mut(), &page, p.page_loads, &raw, &mut set).await;
    set.raw.push(rel(raw.join("navigation-timings.json")));
    let score = lighthouse_score(browser.as_ref(), &page, p.lighthouse_runs, &raw, &mut set).await;
    set.raw.extend(
        (1..=p.lighthouse_runs).map(|i| raw.join(format!("lighthouse-{i}.json"))).filter(|f| f.is_file()).map(rel),
    );
    Ok(set.with("page_load", page_load).with("ttfb", ttfb).with("lighthouse_performance", score).finish())
}

/// `n` page loads of `url` in headless Chromium, cold and warm alternating; every load is kept in
/// `navigation-timings.json`, a failed one ends the series and is reported.
async fn page_loads(
    browser: Result<&mut Browser, &mut String>,
    url: &str,
    n: u64,
    raw: &Path,
    set: &mut MeasurementSet,
) -> (Metric, Metric) {
    let mut timings = Vec::new();
    let mut failure = None;
    match browser {
        Ok(b) => {
            for i in 0..n {
                match b.load(url, i % 2 == 0).await {
                    Ok(t) => timings.push(t),
                    Err(e) => {
                        failure = Some(format!("page load {} of {n} failed: {e}", i + 1));
                        break;
                    }
                }
            }
        }
        Err(e) => failure = Some(e.clone()),
    }
    let _ = std::fs::write(
        raw.join("navigation-timings.json"),
        serde_json::to_string_pretty(&json!({ "url": url, "loads": timings, "failure": failure })).expect("json"),
    );
    let cold = timings.iter().filter(|t| t.cold).count();
    set.notes.push(format!(
        "page loads in headless Chromium through the CDN: {} of {n} measured ({cold} with the browser cache cleared, {} warm){}",
        timings.len(),
        timings.len() - cold,
        failure.as_ref().map(|f| format!("; {f}")).unwrap_or_default()
    ));
    if let Some(f) = failure {
        let m = || Metric::Missing { reason: f.clone() };
        return (m(), m());
    }
    (
        Metric::samples(timings.iter().map(|t| t.load_ms).collect(), "ms"),
        Metric::samples(timings.iter().map(|t| t.ttfb_ms).collect(), "ms"),
    )
}

/// `runs` Lighthouse runs on `url` through `browser`; the median score, each report kept as
/// `lighthouse-<i>.json`. A failed run leaves the metric missing with Lighthouse's reason.
async fn lighthouse_score(
    browser: Result<&Browser, &String>,
    url: &str,
    runs: u64,
    raw: &Path,
    set: &mut MeasurementSet,
) -> Metric {
    let browser = match browser {
        Ok(b) => b,
        Err(e) => return Metric::Missing { reason: e.clone() },
    };
    let program = match lighthouse::locate() {
        Ok(p) => p,
        Err(e) => return Metric::Missing { reason: e },
    };
    let mut scores = Vec::new();
    for i in 1..=runs {
        let out = raw.join(format!("lighthouse-{i}.json"));
        match lighthouse::run(&program, url, browser.port(), &out, Duration::from_secs(240)).await {
            Ok(s) => scores.push(s),
            Err(e) => {
                set.notes.push(format!("lighthouse run {i} of {runs} failed: {e}"));
                return Metric::Missing { reason: format!("lighthouse run {i} of {runs} failed: {e}") };
            }
        }
    }
    set.notes.push(format!(
        "lighthouse {} performance scores (default settings: mobile, simulated throttling): {scores:?}; the median is reported",
        lighthouse::VERSION
    ));
    scores.sort_by(f64::total_cmp);
    let n = scores.len();
    let median = if n % 2 == 1 { scores[n / 2] } else { (scores[n / 2 - 1] + scores[n / 2]) / 2.0 };
    Metric::value(median, "", n as u64)
}

fn redis_hit_rate(before: &str, after: &str, api: &Sent) -> Metric {
    let (Some((h0, m0)), Some((h1, m1))) = (keyspace(before), keyspace(after)) else {
        return Metric::Missing { reason: "INFO stats lacks keyspace_hits or keyspace_misses".into() };
    };
    let (hits, misses) = (h1.saturating_sub(h0), m1.saturating_sub(m0));
    if hits + misses == 0 {
        return Metric::Missing {
            reason: format!("Redis counted no lookup during the API load ({} requests answered 2xx)", api.ok),
        };
    }
    Metric::value(100.0 * hits as f64 / (hits + misses) as f64, "%", hits + misses)
}

fn cdn_hit_rate(entries: &[super::nginx::LogEntry], sent: usize) -> Metric {
    let (hits, logged) = hit_count(entries);
    if logged == 0 {
        return Metric::Missing { reason: format!("nginx logged none of the {sent} requests sent through it") };
    }
    if (logged as usize) < sent {
        return Metric::Missing {
            reason: format!(
                "nginx logged {logged} of the {sent} requests sent through it: the access log is incomplete"
            ),
        };
    }
    Metric::value(100.0 * hits as f64 / logged as f64, "%", logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn knobs_come_from_params_and_bad_ones_are_named() {
        let p = PortalParams::from_params(&params(json!({"cdn_cache": false, "redis_ttl_s": 0, "indexes": false})))
            .unwrap();
        assert_eq!((p.knobs.cdn_cache, p.knobs.redis_ttl_s, p.knobs.indexes), (false, Some(0), false));
        let slow =
            PortalParams::from_params(&params(json!({"slow_path": "/static/hero.svg", "slow_ms": 2500}))).unwrap();
        assert_eq!(slow.knobs.slow, Some(("/static/hero.svg".into(), Duration::from_millis(2500))));
        let e = PortalParams::from_params(&params(json!({"slow_path": "/x"}))).unwrap_err().to_string();
        assert!(e.contains("slow_path"), "{e}");
        let e = PortalParams::from_params(&params(json!({"requests": 0}))).unwrap_err().to_string();
        assert!(e.contains("requests") && e.contains(">= 1"), "{e}");
    }

    #[test]
    fn hit_rates_refuse_missing_evidence() {
        let sent = Sent::default();
        assert!(matches!(redis_hit_rate("keyspace_hits:1\n", "x", &sent), Metric::Missing { .. }));
        let same = "keyspace_hits:5\nkeyspace_misses:5\n";
        assert!(matches!(redis_hit_rate(same, same, &sent), Metric::Missing { .. }));
        let after = "keyspace_hits:13\nkeyspace_misses:7\n";
        assert_eq!(redis_hit_rate(same, after, &sent), Metric::value(80.0, "%", 10));
        assert!(matches!(cdn_hit_rate(&[], 3), Metric::Missing { .. }));
    }
}
