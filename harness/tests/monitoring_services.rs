//! The suite's own Prometheus, Alertmanager and Pushgateway, started for real from the Debian packages:
//! authentication, scraping a bearer-protected platform, rules loaded, pushes scraped, clean stop; and the
//! failures a user must be able to read (a rule file that does not load, a missing program, a server that
//! is down, a query without data).

mod monitoring_support;

use std::time::Duration;

use harness::{
    metrics::{self, quantile, Auth, Endpoint, HttpClient, PromClient},
    services::{self, fixtures_dir, wait, Prometheus, PrometheusOptions, Stack, StackOptions},
    stats,
};
use monitoring_support::{Exposes, FakePlatform};

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

async fn until_value(prom: &PromClient, q: &str) -> f64 {
    wait::until(&format!("`{q}` to have a value"), Duration::from_secs(30), Duration::from_millis(100), || async {
        Ok(match prom.query(q, None).await?.first() {
            Some(s) if s.value.is_finite() => Ok(s.value),
            other => Err(format!("{other:?}")),
        })
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn stack_requires_auth_scrapes_a_bearer_protected_platform_loads_the_rules_and_stops_cleanly() {
    let platform = FakePlatform::start(1, Exposes { resources: true }).await;
    let mut wrong = harness::measure::Platform::scrape_job(&platform);
    wrong.job = "wrong-token".into();
    wrong.auth = Auth::Bearer("not-the-token".into());
    let jobs = vec![harness::measure::Platform::scrape_job(&platform), wrong];
    let stack = Stack::start(&StackOptions::shipped(&fixtures_dir(), jobs).unwrap()).await.unwrap();
    let prom = stack.prometheus.client();

    // Performance data requires authentication on all three servers.
    let http = HttpClient::default();
    for ep in [stack.prometheus.endpoint(), stack.alertmanager.endpoint(), stack.pushgateway.endpoint()] {
        let anonymous = http.get(&ep.join("/-/ready"), &Auth::None).await.unwrap();
        assert_eq!(anonymous.status, 401, "{} served without credentials", ep.url);
        let wrong = http
            .get(&ep.join("/-/ready"), &Auth::Basic { user: "harness".into(), password: "guess".into() })
            .await
            .unwrap();
        assert_eq!(wrong.status, 401, "{} served with a wrong password", ep.url);
        assert_eq!(http.get(&ep.join("/-/ready"), &ep.auth).await.unwrap().status, 200);
    }

    assert_eq!(until_value(&prom, "up{job=\"platform\"}").await, 1.0);
    let targets = wait::until(
        "the wrong-token target to be scraped",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let t = prom.targets().await?;
            Ok(match t.iter().find(|t| t.labels.get("job").map(String::as_str) == Some("wrong-token")) {
                Some(t) if t.health == "down" => Ok(t.clone()),
                other => Err(format!("{other:?}")),
            })
        },
    )
    .await
    .unwrap();
    assert!(targets.last_error.contains("401"), "{}", targets.last_error);

    let groups = prom.rules().await.unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["perf-acceptance-alerts", "perf-acceptance-recording"]);
    let alerts: Vec<&str> =
        groups.iter().flat_map(|g| &g.rules).filter(|r| r.kind == "alerting").map(|r| r.name.as_str()).collect();
    assert!(alerts.contains(&"PerformanceRegression") && alerts.contains(&"ColdStartP95High"), "{alerts:?}");
    assert!(prom.metric_names().await.unwrap().iter().any(|n| n == "function_invocations_total"));

    // Pushed families are scraped with the pushed job label kept.
    let gauge = metrics::exposition::parse("# TYPE perf_baseline_p95_seconds gauge\nperf_baseline_p95_seconds{metric=\"warm_start\",function=\"hello\"} 0.042\n", "t").unwrap();
    stack.pushgateway.client().push("perf-baseline", &[("function", "hello")], &gauge).await.unwrap();
    assert_eq!(until_value(&prom, "perf_baseline_p95_seconds{job=\"perf-baseline\",function=\"hello\"}").await, 0.042);

    let pids: Vec<u32> = [stack.prometheus.process(), stack.alertmanager.process(), stack.pushgateway.process()]
        .iter()
        .map(|p| p.unwrap().pid())
        .collect();
    let dirs: Vec<std::path::PathBuf> =
        [stack.prometheus.process(), stack.alertmanager.process(), stack.pushgateway.process()]
            .iter()
            .map(|p| p.unwrap().dir().to_path_buf())
            .collect();
    let webhook = stack.webhook.url().to_string();
    drop(stack);
    for pid in pids {
        assert!(!pid_alive(pid), "server {pid} survived the stack");
    }
    for d in dirs {
        assert!(!d.exists(), "{} was not removed", d.display());
    }
    assert!(http.get(&webhook, &Auth::None).await.is_err(), "the webhook receiver still answers");
}

#[tokio::test]
async fn a_rule_file_that_fails_to_load_is_named_with_prometheus_own_message() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("broken.rules.yml");
    std::fs::write(&bad, "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: rate(foo[1m] >\n")
        .unwrap();
    let opts = PrometheusOptions { rule_files: vec![bad], ..PrometheusOptions::default() };
    let e = Prometheus::start(&opts).await.unwrap_err();
    assert!(matches!(e, services::Error::Exited { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("broken.rules.yml") && msg.contains("parse error"), "{msg}");
}

#[tokio::test]
async fn a_missing_program_names_its_debian_package() {
    // This test binary's own process: no other test sees the variable.
    std::env::set_var("HARNESS_PROMETHEUS_BIN", "/nonexistent/prometheus");
    let e = Prometheus::start(&PrometheusOptions::default()).await.unwrap_err();
    std::env::remove_var("HARNESS_PROMETHEUS_BIN");
    let msg = e.to_string();
    assert!(msg.contains("apt-get install prometheus") && msg.contains("HARNESS_PROMETHEUS_BIN"), "{msg}");
}

#[tokio::test]
async fn prometheus_down_and_empty_results_name_the_url_and_the_query() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = PromClient::new(Endpoint::new(&format!("http://127.0.0.1:{port}"), Auth::None));
    let e = down.query("up", None).await.unwrap_err();
    assert!(matches!(e, metrics::Error::Unreachable { .. }));
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}/api/v1/query")) && e.to_string().contains("`up`"), "{e}");

    let prom = Prometheus::start(&PrometheusOptions::default()).await.unwrap();
    let c = prom.client();
    let q = "function_cold_start_duration_seconds_count{function=\"nope\"}";
    let e = c.query_nonempty(q, None, "the platform's cold start histogram").await.unwrap_err();
    assert!(matches!(e, metrics::Error::Empty { .. }));
    let msg = e.to_string();
    assert!(msg.contains(q) && msg.contains(&c.url().to_string()) && msg.contains("cold start histogram"), "{msg}");
    let e = c.query("sum(", None).await.unwrap_err();
    assert!(matches!(e, metrics::Error::Api { .. }) && e.to_string().contains("sum("), "{e}");
}

/// The quantile the real Prometheus computes from the fake platform's buckets equals the harness's own
/// reimplementation and agrees with the harness's percentile of the very observations within a bucket.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_histogram_quantile_agrees_with_the_harness() {
    let platform = FakePlatform::start(9, Exposes { resources: true }).await;
    let opts = PrometheusOptions {
        jobs: vec![harness::measure::Platform::scrape_job(&platform)],
        ..PrometheusOptions::default()
    };
    let prom = Prometheus::start(&opts).await.unwrap();
    let c = prom.client();
    let init = harness::measure::Platform::cold_starts(&platform, 200).await.unwrap();
    let q = "histogram_quantile(0.95, sum by (le) (function_cold_start_duration_seconds_bucket))";
    let count_q = "sum(function_cold_start_duration_seconds_count)";
    wait::until("the 200 cold starts to be scraped", Duration::from_secs(30), Duration::from_millis(100), || async {
        Ok(match c.query(count_q, None).await?.first().map(|s| s.value) {
            Some(v) if v >= 200.0 => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await
    .unwrap();
    let from_prometheus = c.query_value(q, None, "scraped histogram").await.unwrap();
    let text = platform.exposition();
    let fams = metrics::exposition::parse(&text, platform.url()).unwrap();
    let h =
        fams.iter().find(|f| f.name == "function_cold_start_duration_seconds").unwrap().histograms().unwrap().remove(0);
    let ours = quantile::histogram_quantile(0.95, &h.buckets).unwrap();
    assert!((from_prometheus - ours).abs() <= 1e-9 * ours, "Prometheus {from_prometheus} vs harness {ours}");
    let bounds: Vec<f64> = h.buckets.iter().map(|b| b.0).collect();
    let p95 = stats::percentile(&init, 95.0, 0.95).unwrap().value;
    let a = quantile::agreement(from_prometheus, p95, &bounds);
    assert!(a.within_resolution, "{a:?}");
}
