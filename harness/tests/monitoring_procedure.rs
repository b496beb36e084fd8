//! The `monitoring` procedure (AC5) end to end: the fake platform is scraped by the suite's real Prometheus
//! with the shipped rules; the procedure drives cold starts, warm traffic and a build, then asks
//! Prometheus about families, the cold start P95, the dashboard and the alerts.

mod monitoring_support;

use harness::{
    baseline::{named, Direction, History, Record},
    criteria::Params,
    evidence::Status,
    fingerprint::Fingerprint,
    measure::{monitoring, MeasurementSet, Metric},
    run_dir::RunDir,
};
use monitoring_support::{Exposes, FakePlatform};
use serde_json::json;

fn value(set: &MeasurementSet, name: &str) -> (f64, u64) {
    match &set.metrics[name] {
        Metric::Value { value, n, .. } => (*value, *n),
        other => panic!("{name}: {other:?}\nnotes: {:#?}", set.notes),
    }
}

fn history_with_baseline(dir: &std::path::Path) {
    let h = History::open(dir).unwrap();
    let rec = Record {
        run: "r1".into(),
        time: chrono::Utc::now(),
        profile: "sre-002".into(),
        target: "local".into(),
        check: "AC2.warm_p95".into(),
        status: Status::Passed,
        statistic: Some("p95".into()),
        value: Some(30.0),
        unit: Some("ms".into()),
        n: Some(1000),
        ci_low: Some(29.0),
        ci_high: Some(31.0),
        direction: Direction::LowerIsBetter,
        environment: Fingerprint::current(),
        scenario: None,
    };
    h.append(&[rec]).unwrap();
    named::save(&h, "main", 1, None).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_with_every_family_passes_every_monitoring_question() {
    let platform = FakePlatform::start(21, Exposes { resources: true }).await;
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::open(&tmp.path().join("run")).unwrap();
    history_with_baseline(&tmp.path().join("history"));
    let params: Params = [
        ("cold_starts".to_string(), json!(40)),
        ("warm_seconds".to_string(), json!(3)),
        ("history".to_string(), json!(tmp.path().join("history"))),
        ("baseline_checks".to_string(), json!({ "warm_start": "AC2.warm_p95" })),
    ]
    .into();
    let set = monitoring::measure(&platform, &params, &run, "local").await.unwrap();
    assert_eq!(value(&set, "build_missing"), (0.0, 5), "{:#?}", set.notes);
    assert_eq!(value(&set, "cold_warm_missing"), (0.0, 3), "{:#?}", set.notes);
    assert_eq!(value(&set, "scaling_missing"), (0.0, 4), "{:#?}", set.notes);
    assert_eq!(value(&set, "resource_missing"), (0.0, 2), "{:#?}", set.notes);
    assert_eq!(value(&set, "dashboard_missing").0, 0.0, "{:#?}", set.notes);
    assert!(value(&set, "dashboard_missing").1 >= 15);
    assert_eq!(value(&set, "alerts_missing"), (0.0, 9), "{:#?}", set.notes);
    let (_, n) = value(&set, "cold_start_p95_deviation");
    assert_eq!(n, 40);
    assert!(set.notes.iter().any(|n| n.contains("agree within the bucket resolution")), "{:#?}", set.notes);
    assert!(set.notes.iter().any(|n| n.contains("pushed 1 figures of baseline `main`")), "{:#?}", set.notes);
    assert!(run.path().join(&set.raw[0]).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_families_and_panels_without_data_are_counted_and_named() {
    let platform = FakePlatform::start(22, Exposes { resources: false }).await;
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::open(tmp.path()).unwrap();
    let params: Params = [("cold_starts".to_string(), json!(20)), ("warm_seconds".to_string(), json!(2))].into();
    let set = monitoring::measure(&platform, &params, &run, "local").await.unwrap();
    assert_eq!(value(&set, "resource_missing"), (2.0, 2));
    assert_eq!(value(&set, "cold_warm_missing"), (0.0, 3));
    for family in ["function_memory_used_bytes", "function_memory_limit_bytes"] {
        assert!(set.notes.iter().any(|n| n.starts_with(family) && n.contains("no data")), "{family}: {:#?}", set.notes);
    }
    // Memory utilization reads the missing families; with no saved baseline, the baseline panel shows
    // this run's own warm P95 (said in a note) and has data.
    assert_eq!(value(&set, "dashboard_missing").0, 1.0, "{:#?}", set.notes);
    assert!(
        set.notes.iter().any(|n| n.contains("Resource utilization: memory") && n.contains("no data")),
        "{:#?}",
        set.notes
    );
    assert!(set.notes.iter().any(|n| n.contains("baseline=\"in-run\"")), "{:#?}", set.notes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_named_prometheus_that_is_down_is_named() {
    let platform = FakePlatform::start(23, Exposes { resources: true }).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // This test binary's own process: no other test sees the variable.
    std::env::set_var("HARNESS_PROMETHEUS_URL", format!("http://127.0.0.1:{port}"));
    let tmp = tempfile::tempdir().unwrap();
    let e =
        monitoring::measure(&platform, &Params::new(), &RunDir::open(tmp.path()).unwrap(), "local").await.unwrap_err();
    std::env::remove_var("HARNESS_PROMETHEUS_URL");
    let msg = e.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("cannot reach"), "{msg}");
}
