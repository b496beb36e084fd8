//! Resources on the knative target against a mocked API server: a function whose revision has no CPU or
//! memory limit is counted, utilization is read from recorded metrics-server PodMetrics against the
//! container's requests (one reading per pod and window), and an OOM-killed container counts as starvation.

mod knative_common;

use std::time::Duration;

use harness::{criteria::Params, measure::Metric, platform::knative, run_dir::RunDir};
use knative_common::*;
use serde_json::json;

const SEL: (&str, &str) = ("labelSelector", "serving.knative.dev/revision=fixture-rust-00001");

#[tokio::test(start_paused = true)]
async fn missing_limits_utilization_and_oom_kills_are_measured() {
    let (cluster, mut api) = cluster();
    let (fake, routes) = route();
    let served = routes.serve(
        Duration::from_millis(100),
        r#"{"env_id":"fixture-rust-00001-deployment-7d9f8c6b5d-x2k4q","cold":false}"#,
    );
    let scenario = tokio::spawn(async move {
        let svc = "/apis/serving.knative.dev/v1/namespaces/default/services";
        let rev = "/apis/serving.knative.dev/v1/namespaces/default/revisions";
        api.expect("GET", &format!("{svc}/fixture-rust"), &[]).await.json(200, &object("service"));
        api.expect("GET", &format!("{rev}/fixture-rust-00001"), &[]).await.json(200, &object("revision"));
        api.expect("GET", svc, &[]).await.json(200, &object("service-list"));
        api.expect("GET", &format!("{rev}/legacy-api-00003"), &[]).await.json(200, &object("revision-no-limits"));
        let pods = "/api/v1/namespaces/default/pods";
        api.expect("GET", pods, &[SEL]).await.json(200, &list("PodList", "v1", "15600", vec![object("pod-ready")]));
        let metrics = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods";
        let first = object("podmetrics-list");
        let mut later = first.clone();
        for item in later["items"].as_array_mut().unwrap() {
            item["timestamp"] = json!("2026-11-20T10:21:30Z");
        }
        for answer in [&first, &first, &later] {
            api.expect("GET", metrics, &[SEL]).await.json(200, answer);
        }
        api.expect("GET", pods, &[SEL])
            .await
            .json(200, &list("PodList", "v1", "15700", vec![object("pod-ready"), object("pod-oomkilled")]));
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let p: Params = serde_json::from_value(
        json!({"function": "fixture-rust", "rate": 2, "duration_s": 30, "metrics_interval_s": 15}),
    )
    .unwrap();
    let set = knative::run("resources", &p, &cluster, &dir, |_| Ok(fake.clone())).await.unwrap();
    scenario.await.unwrap();
    drop(fake);
    assert_eq!(served.await.unwrap(), 60);

    assert_eq!(set.metrics["limits_missing"], Metric::value(1.0, "", 2));
    assert!(
        set.notes
            .iter()
            .any(|n| n.contains("legacy-api (legacy-api-00003): no cpu limit, no memory limit, no memory request")),
        "{:?}",
        set.notes
    );
    let values = |m: &str| match &set.metrics[m] {
        Metric::Samples { values, .. } => values.clone(),
        other => panic!("{m}: {other:?}"),
    };
    let mut cpu = values("cpu_utilization");
    cpu.sort_by(f64::total_cmp);
    let want_cpu = [76.54321, 76.54321, 81.234567, 81.234567];
    assert!(cpu.iter().zip(want_cpu).all(|(a, b)| (a - b).abs() < 1e-6) && cpu.len() == 4, "{cpu:?}");
    let mut mem = values("memory_utilization");
    mem.sort_by(f64::total_cmp);
    assert!(
        mem.iter().zip([64.0625, 64.0625, 68.75, 68.75]).all(|(a, b)| (a - b).abs() < 1e-9) && mem.len() == 4,
        "{mem:?}"
    );
    assert_eq!(values("utilization").len(), 4);
    assert_eq!(set.metrics["starvation"], Metric::value(1.0, "", 60), "{:?}", set.notes);
    assert!(
        set.notes
            .iter()
            .any(|n| n.contains("OOM-killed [\"fixture-rust-00001-deployment-7d9f8c6b5d-m8wzp/user-container\"]")),
        "{:?}",
        set.notes
    );
    assert!(set.notes.iter().any(|n| n.contains("CPU throttling not measured")), "{:?}", set.notes);
}

#[tokio::test(start_paused = true)]
async fn without_metrics_server_utilization_is_missing_with_the_reason() {
    let (cluster, mut api) = cluster();
    let (fake, routes) = route();
    let _served = routes.serve(Duration::from_millis(50), "ok");
    let scenario = tokio::spawn(async move {
        let svc = "/apis/serving.knative.dev/v1/namespaces/default/services";
        api.expect("GET", &format!("{svc}/fixture-rust"), &[]).await.json(200, &object("service"));
        let rev = object("revision");
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/revisions/fixture-rust-00001", &[])
            .await
            .json(200, &rev);
        api.expect("GET", "/api/v1/namespaces/default/pods", &[SEL])
            .await
            .json(200, &list("PodList", "v1", "1", vec![]));
        api.expect("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", &[SEL])
            .await
            .not_found("pods.metrics.k8s.io", "");
        api.expect("GET", "/api/v1/namespaces/default/pods", &[SEL])
            .await
            .json(200, &list("PodList", "v1", "2", vec![]));
    });
    let tmp = tempfile::tempdir().unwrap();
    let p: Params = serde_json::from_value(
        json!({"function": "fixture-rust", "rate": 1, "duration_s": 5, "metrics_interval_s": 15, "scope": "function"}),
    )
    .unwrap();
    let set = knative::run("resources", &p, &cluster, &RunDir::open(tmp.path()).unwrap(), |_| Ok(fake.clone()))
        .await
        .unwrap();
    scenario.await.unwrap();
    for m in ["cpu_utilization", "memory_utilization", "utilization"] {
        let Metric::Missing { reason } = &set.metrics[m] else { panic!("{m}: {:?}", set.metrics[m]) };
        assert!(reason.contains("metrics.k8s.io/v1beta1") && reason.contains("install metrics-server"), "{reason}");
    }
    assert_eq!(set.metrics["limits_missing"], Metric::value(0.0, "", 1));
}
