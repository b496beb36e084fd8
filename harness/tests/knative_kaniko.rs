//! Kaniko builds of the knative-lambda-operator: cache hits and rate limits read from recorded Kaniko
//! logs by the one Kaniko log parser, and a rebuild of a `LambdaFunction` followed through a mocked API server (source-only change
//! patched in, new build Job watched to completion, pod memory sampled from metrics-server, log read,
//! spec restored).

mod knative_common;

use std::time::Duration;

use harness::{criteria::Params, image_build::parse_kaniko, measure::Metric, platform::knative, run_dir::RunDir};
use knative_common::*;
use serde_json::json;

const JOB: &str = "parser-build-1795680123";

#[test]
fn cache_hits_misses_and_rate_limits_are_counted_from_kaniko_logs() {
    let b = parse_kaniko(&text("kaniko-build.log"));
    assert_eq!((b.cache_hits(), b.cache_misses(), b.cache_requests, b.rate_limited), (2, 1, 3, 0));
    let b = parse_kaniko(&text("kaniko-rate-limited.log"));
    assert_eq!((b.cache_hits(), b.cache_misses(), b.cache_requests, b.rate_limited), (0, 0, 0, 1));
    assert_eq!(parse_kaniko(""), Default::default());
}

#[tokio::test(start_paused = true)]
async fn a_lambda_function_rebuild_is_followed_to_its_figures() {
    let (cluster, mut api) = cluster();
    let scenario = tokio::spawn(async move {
        let lambdas = "/apis/lambda.knative.io/v1alpha1/namespaces/default/lambdafunctions";
        let lambda = object("lambdafunction");
        let original = lambda["spec"]["source"]["inline"]["code"].as_str().unwrap().to_string();
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/services/parser", &[])
            .await
            .not_found("services.serving.knative.dev", "parser");
        api.expect("GET", &format!("{lambdas}/parser"), &[]).await.json(200, &lambda);
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/services/parser", &[])
            .await
            .json(200, &object("service-parser"));
        let patch = api.expect("PATCH", &format!("{lambdas}/parser"), &[]).await;
        assert_eq!(
            patch.body_json()["spec"]["source"]["inline"]["code"],
            json!(format!("{original}\n# perf-acceptance rebuild 1\n"))
        );
        patch.json(200, &lambda);
        let by_name = ("fieldSelector", "metadata.name=parser");
        api.list_then_watch(
            lambdas,
            by_name,
            list("LambdaFunctionList", "lambda.knative.io/v1alpha1", "21000", vec![lambda.clone()]),
            stream("rebuild-lambdafunction"),
            Duration::from_secs(60),
        )
        .await;
        let by_job = ("fieldSelector", format!("metadata.name={JOB}"));
        let by_job = (by_job.0, by_job.1.as_str());
        tokio::time::sleep(Duration::from_millis(800)).await;
        api.list_then_watch(
            "/apis/batch/v1/namespaces/default/jobs",
            by_job,
            list("JobList", "batch/v1", "21002", vec![object("job-kaniko-running")]),
            stream("rebuild-job"),
            Duration::from_secs(60),
        )
        .await;
        let job_pods = ("labelSelector", format!("job-name={JOB}"));
        let job_pods = (job_pods.0, job_pods.1.as_str());
        for _ in 0..3 {
            api.expect("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", &[job_pods])
                .await
                .json(200, &object("podmetrics-kaniko"));
        }
        api.expect("GET", "/api/v1/namespaces/default/pods", &[job_pods])
            .await
            .json(200, &list("PodList", "v1", "21080", vec![object("pod-kaniko")]));
        api.expect("GET", &format!("/api/v1/namespaces/default/pods/{JOB}-h7xkq/log"), &[("container", "kaniko")])
            .await
            .text(&text("kaniko-build.log"));
        let restore = api.expect("PATCH", &format!("{lambdas}/parser"), &[]).await;
        assert_eq!(restore.body_json()["spec"]["source"]["inline"]["code"], json!(original));
        restore.json(200, &lambda);
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let p: Params = serde_json::from_value(json!({"function": "parser", "runs": 1})).unwrap();
    let set = knative::run("build", &p, &cluster, &dir, |_| Ok(route().0)).await.unwrap();
    scenario.await.unwrap();

    assert_eq!(set.metrics["duration"], Metric::samples(vec![42.0], "s"));
    let Metric::Value { value, n, .. } = set.metrics["layer_cache_hit_rate"] else {
        panic!("{:?}", set.metrics["layer_cache_hit_rate"])
    };
    assert!((value - 200.0 / 3.0).abs() < 1e-9 && n == 3, "{value} {n}");
    assert_eq!(set.metrics["peak_memory"], Metric::value(1_153_434.0 * 1024.0, "B", 1));
    assert!(matches!(&set.metrics["concurrent_peak"], Metric::Missing { .. }));
    let csv = std::fs::read_to_string(tmp.path().join(&set.raw[0])).unwrap();
    assert_eq!(csv.lines().nth(1).unwrap(), format!("{JOB},42,2,1,1181116416,false,0"));
    assert!(set.notes.iter().any(|n| n.contains("restored")), "{:?}", set.notes);
}

#[tokio::test(start_paused = true)]
async fn a_plain_knative_service_has_no_kaniko_build() {
    let (cluster, mut api) = cluster();
    let scenario = tokio::spawn(async move {
        api.expect("GET", "/apis/serving.knative.dev/v1/namespaces/default/services/fixture-rust", &[])
            .await
            .json(200, &object("service"));
    });
    let tmp = tempfile::tempdir().unwrap();
    let p: Params = serde_json::from_value(json!({"function": "fixture-rust"})).unwrap();
    let err =
        knative::run("build", &p, &cluster, &RunDir::open(tmp.path()).unwrap(), |_| Ok(route().0)).await.unwrap_err();
    scenario.await.unwrap();
    assert!(
        err.to_string().contains(
            "plain Knative Service; Kaniko builds need the operator's LambdaFunction (lambda.knative.io/v1alpha1)"
        ),
        "{err}"
    );
}
