//! The knative target against a real kind cluster with Knative Serving, Kourier, metrics-server and the
//! fixture function deployed (scripts/kind/create-cluster.sh, install.sh, build-fixture.sh,
//! deploy-fixture.sh). Ignored unless asked for:
//!
//! ```text
//! cargo nextest run -p harness --test knative_kind --run-ignored ignored-only
//! ```
//!
//! Settings come from the environment like the acceptance suite's (`KUBECONFIG`, `HARNESS_KNATIVE_*`).
//! The tests assert behaviour (samples taken, state restored, limits read), never timings.

use harness::{
    criteria::Params,
    measure::Metric,
    platform::{knative, KnativeConfig},
    run_dir::RunDir,
};
use serde_json::json;

fn config() -> KnativeConfig {
    let mut c = KnativeConfig::from_env();
    c.ingress.get_or_insert_with(|| "http://127.0.0.1:31080".into());
    c
}

async fn measure(procedure: &str, params: serde_json::Value) -> harness::measure::MeasurementSet {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let p: Params = serde_json::from_value(params).unwrap();
    knative::measure(procedure, &p, &config(), &dir).await.unwrap_or_else(|e| panic!("{procedure}: {e}"))
}

fn samples(set: &harness::measure::MeasurementSet, m: &str) -> Vec<f64> {
    match &set.metrics[m] {
        Metric::Samples { values, .. } => values.clone(),
        other => panic!("{m}: {other:?} ({:?})", set.notes),
    }
}

#[tokio::test]
#[ignore = "needs kind"]
async fn the_fixture_function_is_found_and_ready() {
    let c = knative::connect(&config()).await.unwrap();
    let f = knative::Function::resolve(&c, "fixture-rust").await.unwrap();
    assert_eq!(f.source, knative::Source::Service);
    let rev = knative::Revision::get(&c, &f.ready_revision().unwrap()).await.unwrap();
    assert!(rev.user_container().is_some());
    assert!(f.url().unwrap().starts_with("http://fixture-rust."));
}

#[tokio::test]
#[ignore = "needs kind"]
async fn scale_from_zero_samples_come_from_new_pods() {
    let set = measure("cold_start", json!({"function": "fixture-rust", "samples": 2})).await;
    let client = samples(&set, "client_latency");
    let ready = samples(&set, "init_duration");
    assert_eq!((client.len(), ready.len()), (2, 2), "{:?}", set.notes);
    assert!(client.iter().zip(&ready).all(|(c, r)| c > &0.0 && r > &0.0));
    assert_eq!(samples(&set, "init_code").len(), 2, "the fixture reports its init time");
}

#[tokio::test]
#[ignore = "needs kind"]
async fn resources_of_the_fixture_are_read_under_load() {
    let set =
        measure("resources", json!({"function": "fixture-rust", "rate": 5, "duration_s": 40, "scope": "function"}))
            .await;
    assert_eq!(set.metrics["limits_missing"], Metric::value(0.0, "", 1), "fixtures/knative/service.yaml sets limits");
    assert!(!samples(&set, "cpu_utilization").is_empty(), "metrics-server readings: {:?}", set.notes);
    assert!(matches!(set.metrics["starvation"], Metric::Value { .. }), "{:?}", set.metrics["starvation"]);
}

#[tokio::test]
#[ignore = "needs kind"]
async fn a_spike_out_of_zero_is_scaled_for() {
    let set =
        measure("scale_up", json!({"function": "fixture-rust", "spikes": 1, "concurrency": 30, "spike_s": 30})).await;
    assert_eq!(samples(&set, "latency").len(), 1, "{:?}", set.notes);
}
