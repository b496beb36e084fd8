//! Scaling on the knative target against a mocked API server: intermittent bursts shorter apart than the
//! stable window, a recorded Deployment watch in which the autoscaler drops pods 7 s after the traffic
//! (premature) and scales to zero 40 s after the last burst (on time); all on a paused clock.

mod knative_common;

use std::time::Duration;

use harness::{criteria::Params, measure::Metric, platform::knative, run_dir::RunDir};
use knative_common::*;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn premature_scale_down_inside_the_stable_window_is_detected() {
    let (cluster, mut api) = cluster();
    let (fake, routes) = route();
    let served = routes.serve(
        Duration::from_millis(100),
        r#"{"env_id":"fixture-rust-00001-deployment-7d9f8c6b5d-x2k4q","cold":false}"#,
    );
    let scenario = tokio::spawn(async move {
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/services/fixture-rust", &[])
            .await
            .json(200, &object("service"));
        let mut rev = object("revision");
        rev["metadata"]["annotations"]["autoscaling.knative.dev/window"] = json!("30s");
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/revisions/fixture-rust-00001", &[])
            .await
            .json(200, &rev);
        let sel = ("labelSelector", "serving.knative.dev/revision=fixture-rust-00001");
        api.list_then_watch(
            "/apis/apps/v1/namespaces/default/deployments",
            sel,
            list("DeploymentList", "apps/v1", "16000", vec![object("deployment")]),
            stream("scale-down-deployment"),
            Duration::from_secs(200),
        )
        .await;
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let p: Params = serde_json::from_value(
        json!({"function": "fixture-rust", "bursts": 2, "burst_s": 5, "gap_s": 20, "concurrency": 2, "observe_s": 90}),
    )
    .unwrap();
    let set = knative::run("scale_down", &p, &cluster, &dir, |_| Ok(fake.clone())).await.unwrap();
    scenario.await.unwrap();
    drop(fake);
    assert!(served.await.unwrap() >= 100, "both bursts sent traffic");

    assert_eq!(set.metrics["premature"], Metric::value(2.0, "", 2), "{:?}", set.notes);
    assert_eq!(set.metrics["retired_after_idle"], Metric::flag(true, 1));
    let downs = std::fs::read_to_string(tmp.path().join("raw/scale_down/scale-downs.csv")).unwrap();
    let rows: Vec<&str> = downs.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{downs}");
    assert!(rows[0].starts_with("12.000,3,1,") && rows[0].ends_with(",true"), "{downs}");
    assert!(rows[1].starts_with("70.000,3,0,") && rows[1].ends_with(",false"), "{downs}");
    let samples = std::fs::read_to_string(tmp.path().join("raw/scale_down/scale-samples.csv")).unwrap();
    assert!(samples.lines().count() > 60, "one sample a second over the run");
    assert!(
        set.notes.iter().any(|n| n.contains("stable window 30s (the revision's autoscaling.knative.dev/window)")
            && n.contains("2 pod(s) removed inside the window")),
        "{:?}",
        set.notes
    );
}

#[tokio::test(start_paused = true)]
async fn a_gap_as_long_as_the_window_is_refused() {
    let (cluster, mut api) = cluster();
    let (fake, _routes) = route();
    let scenario = tokio::spawn(async move {
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/services/fixture-rust", &[])
            .await
            .json(200, &object("service"));
        let mut rev = object("revision");
        rev["metadata"]["annotations"]["autoscaling.knative.dev/window"] = json!("30s");
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/revisions/fixture-rust-00001", &[])
            .await
            .json(200, &rev);
    });
    let tmp = tempfile::tempdir().unwrap();
    let p: Params = serde_json::from_value(json!({"function": "fixture-rust", "gap_s": 30})).unwrap();
    let err = knative::run("scale_down", &p, &cluster, &RunDir::open(tmp.path()).unwrap(), |_| Ok(fake.clone()))
        .await
        .unwrap_err();
    scenario.await.unwrap();
    let msg = err.to_string();
    assert!(msg.contains("`gap_s`") && msg.contains("stable window (30s)"), "{msg}");
}
