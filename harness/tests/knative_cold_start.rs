//! Scale from zero on the knative target, against a mocked API server replaying recorded object shapes and
//! timed watch streams on a paused clock: the client time, the Deployment leaving zero and the pod turning
//! Ready are read from the watches; min-scale is lowered for the measurement and restored; a pod stuck
//! Pending ends in a timeout that names the pod, its conditions and its events.

mod knative_common;

use std::time::Duration;

use harness::{
    criteria::Params,
    measure::Metric,
    platform::knative::{self, Error, Revision},
    run_dir::RunDir,
};
use knative_common::*;
use serde_json::json;

const SVC: &str = "/apis/serving.knative.dev/v1/namespaces/default/services";
const REV: &str = "/apis/serving.knative.dev/v1/namespaces/default/revisions";
const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const POD: &str = "fixture-rust-00001-deployment-7d9f8c6b5d-x2k4q";
const SEL: (&str, &str) = ("labelSelector", "serving.knative.dev/revision=fixture-rust-00001");

fn params(v: serde_json::Value) -> Params {
    serde_json::from_value(v).unwrap()
}

/// One cold sample's API traffic: pods and deployment listed and watched, the route answered after `answer`.
async fn one_cold_sample(api: &mut ApiServer, routes: &mut RouteServer, sel: (&str, &str), answer: Duration) {
    let hold = Duration::from_secs(30);
    api.list_then_watch(PODS, sel, list("PodList", "v1", "15100", vec![]), stream("cold-start-pods"), hold).await;
    api.list_then_watch(
        DEPLOYMENTS,
        sel,
        list("DeploymentList", "apps/v1", "15100", vec![object("deployment")]),
        stream("cold-start-deployment"),
        hold,
    )
    .await;
    let (path, tx) = routes.next().await;
    assert_eq!(path, "/");
    tokio::spawn(async move {
        tokio::time::sleep(answer).await;
        let _ = tx.send(reply(POD, true, 12.0));
    });
}

#[tokio::test(start_paused = true)]
async fn scale_from_zero_is_timed_from_the_watch_streams() {
    let (cluster, mut api) = cluster();
    let (fake, mut routes) = route();
    let scenario = tokio::spawn(async move {
        api.expect("GET", &format!("{SVC}/fixture-rust"), &[]).await.json(200, &object("service"));
        api.expect("GET", &format!("{REV}/fixture-rust-00001"), &[]).await.json(200, &object("revision"));
        api.list_then_watch(PODS, SEL, list("PodList", "v1", "15090", vec![]), vec![], Duration::from_secs(5)).await;
        one_cold_sample(&mut api, &mut routes, SEL, Duration::from_millis(1950)).await;
        let mut leaving = object("pod-ready");
        leaving["metadata"]["deletionTimestamp"] = json!("2026-11-20T10:22:31Z");
        api.list_then_watch(PODS, SEL, list("PodList", "v1", "15300", vec![leaving]), vec![], Duration::from_secs(5))
            .await;
        one_cold_sample(&mut api, &mut routes, SEL, Duration::from_millis(2500)).await;
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let p = params(json!({"function": "fixture-rust", "samples": 2, "cold_timeout_s": 60}));
    let set = knative::run("cold_start", &p, &cluster, &dir, |_| Ok(fake.clone())).await.unwrap();
    scenario.await.unwrap();

    let values = |m: &str| match &set.metrics[m] {
        Metric::Samples { values, .. } => values.clone(),
        other => panic!("{m}: {other:?}"),
    };
    let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
    assert!(close(&values("client_latency"), &[1.95, 2.5]), "{:?}", values("client_latency"));
    assert!(close(&values("init_duration"), &[1.9, 1.9]), "{:?}", values("init_duration"));
    assert!(close(&values("init_code"), &[0.012, 0.012]));
    assert!(close(&values("bootstrap"), &[1.888, 1.888]));
    assert!(matches!(&set.metrics["baseline_reduction"], Metric::Missing { .. }));
    let csv = std::fs::read_to_string(tmp.path().join(&set.raw[0])).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with(&format!("1,1.950,0.410,1.900,{POD},200,true,12")), "{csv}");
    assert!(set.notes.iter().any(|n| n.contains("Deployment left 0 replicas: 0.410s")), "{:?}", set.notes);
}

#[tokio::test(start_paused = true)]
async fn min_scale_is_lowered_for_the_measurement_and_restored() {
    let (cluster, mut api) = cluster();
    let (fake, mut routes) = route();
    let scenario = tokio::spawn(async move {
        let mut svc = object("service");
        svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = json!("1");
        let mut rev = object("revision");
        rev["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = json!("1");
        api.expect("GET", &format!("{SVC}/fixture-rust"), &[]).await.json(200, &svc);
        api.expect("GET", &format!("{REV}/fixture-rust-00001"), &[]).await.json(200, &rev);
        let patch = api.expect("PATCH", &format!("{SVC}/fixture-rust"), &[]).await;
        assert_eq!(
            patch.body_json(),
            json!({"spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "0"}}}}})
        );
        patch.json(200, &svc);
        let mut rolled = svc.clone();
        rolled["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = json!("0");
        rolled["status"]["latestCreatedRevisionName"] = json!("fixture-rust-00002");
        rolled["status"]["latestReadyRevisionName"] = json!("fixture-rust-00002");
        let by_name = ("fieldSelector", "metadata.name=fixture-rust");
        let events =
            vec![Timed { after: Duration::from_millis(3200), event: json!({"type": "MODIFIED", "object": rolled}) }];
        api.list_then_watch(
            SVC,
            by_name,
            list("ServiceList", "serving.knative.dev/v1", "15400", vec![svc.clone()]),
            events,
            Duration::from_secs(10),
        )
        .await;
        let mut rev2 = object("revision");
        rev2["metadata"]["name"] = json!("fixture-rust-00002");
        api.expect("GET", &format!("{REV}/fixture-rust-00002"), &[]).await.json(200, &rev2);
        let sel2 = ("labelSelector", "serving.knative.dev/revision=fixture-rust-00002");
        api.list_then_watch(PODS, sel2, list("PodList", "v1", "15500", vec![]), vec![], Duration::from_secs(5)).await;
        one_cold_sample(&mut api, &mut routes, sel2, Duration::from_millis(2000)).await;
        let restore = api.expect("PATCH", &format!("{SVC}/fixture-rust"), &[]).await;
        assert_eq!(
            restore.body_json(),
            json!({"spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}}}}})
        );
        restore.json(200, &svc);
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let p = params(json!({"function": "fixture-rust", "samples": 1}));
    let set = knative::run("cold_start", &p, &cluster, &dir, |_| Ok(fake.clone())).await.unwrap();
    scenario.await.unwrap();
    assert!(matches!(&set.metrics["client_latency"], Metric::Samples { values, .. } if values.len() == 1));
    assert!(set.notes.iter().any(|n| n.contains("min-scale was changed") && n.contains("restored")), "{:?}", set.notes);
}

#[tokio::test(start_paused = true)]
async fn a_pod_stuck_pending_times_out_naming_the_pod_its_conditions_and_events() {
    let (cluster, mut api) = cluster();
    let (fake, mut routes) = route();
    let scenario = tokio::spawn(async move {
        let hold = Duration::from_secs(120);
        api.list_then_watch(PODS, SEL, list("PodList", "v1", "15200", vec![]), stream("unschedulable-pods"), hold)
            .await;
        api.list_then_watch(
            DEPLOYMENTS,
            SEL,
            list("DeploymentList", "apps/v1", "15200", vec![object("deployment")]),
            stream("unschedulable-deployment"),
            hold,
        )
        .await;
        let (_path, never_answered) = routes.next().await;
        api.expect(
            "GET",
            "/api/v1/namespaces/default/events",
            &[("fieldSelector", &format!("involvedObject.name={POD}"))],
        )
        .await
        .json(200, &object("events-failed-scheduling"));
        drop(never_answered);
    });
    let rev = Revision::from_object(&serde_json::from_value(object("revision")).unwrap()).unwrap();
    let err = knative::cold_sample(&cluster, &rev, &fake, "/", Duration::from_secs(30)).await.unwrap_err();
    scenario.await.unwrap();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in [
        "timed out after 30s",
        POD,
        "is Pending",
        "PodScheduled=False (Unschedulable",
        "1 Insufficient memory",
        "Warning FailedScheduling",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }
}
