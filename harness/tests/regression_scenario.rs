//! Scenario 5 inside one run (AC6 on a first run): on a fresh history store, the `regression` procedure
//! measures reference and current sessions, records them as tagged in-run scenario sessions and saves the
//! missing baseline of this environment; what needs an earlier run (history, trends, improved or
//! maintained) is left to the next run, which compares with that saved baseline and counts the first run as
//! earlier history; strict mode still fails on a missing baseline. The platform is the seeded fake one (figures are a model, not
//! timings: the assertions are on counts, states and decisions whose margins no seed can flip).

mod monitoring_support;

use harness::{
    baseline::{named, scenario, History},
    criteria::Params,
    fingerprint::Fingerprint,
    measure::{regression, MeasurementSet, Metric},
    run_dir::{RunDir, RunInfo},
};
use monitoring_support::{Exposes, FakePlatform};
use serde_json::json;

fn run_dir(root: &std::path::Path, id: &str) -> RunDir {
    let dir = RunDir::open(&root.join(id)).unwrap();
    dir.init(RunInfo {
        id: id.into(),
        profile: "sre-002".into(),
        profile_path: "fixtures/criteria/sre-002.yaml".into(),
        target: "local".into(),
        started: chrono::Utc::now(),
        environment: Fingerprint::current(),
        invocation: String::new(),
    })
    .unwrap();
    dir
}

fn params(history: &std::path::Path, mode: Option<&str>) -> Params {
    let mut p: Params = [
        ("history".to_string(), json!(history)),
        ("reference_sessions".to_string(), json!(6)),
        ("sessions".to_string(), json!(2)),
        ("session_seconds".to_string(), json!(0.5)),
        // Synthetic figures: a variant twice as slow is far beyond the model's noise, whatever the seed.
        ("injected_factor".to_string(), json!(2.0)),
    ]
    .into();
    if let Some(m) = mode {
        p.insert("mode".into(), json!(m));
    }
    p
}

fn value(set: &MeasurementSet, name: &str) -> (f64, u64) {
    match &set.metrics[name] {
        Metric::Value { value, n, .. } => (*value, *n),
        other => panic!("{name}: {other:?}\n{:#?}", set.notes),
    }
}

fn note<'a>(set: &'a MeasurementSet, needle: &str) -> &'a str {
    set.notes.iter().find(|n| n.contains(needle)).unwrap_or_else(|| panic!("no note with {needle:?}: {:#?}", set.notes))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_run_establishes_its_baseline_and_history_and_a_later_run_compares_with_it() {
    let platform = FakePlatform::start(41, Exposes { resources: true }).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("history");

    let first =
        regression::measure_without_alert(&platform, &params(&store, None), &run_dir(tmp.path(), "r1"), "local")
            .await
            .unwrap();
    assert_eq!(value(&first, "baseline"), (1.0, 6), "baseline saved from the 6 reference sessions");
    // This run's own sessions are not history, and a baseline saved from them cannot judge this run.
    for m in ["history_runs", "trend_checks", "regressions"] {
        let Metric::NeedsEarlierRun { reason } = &first.metrics[m] else { panic!("{m}: {:?}", first.metrics[m]) };
        assert!(reason.starts_with("first run") && reason.contains("the next run decides"), "{m}: {reason}");
    }
    assert!(matches!(&first.metrics["regressions"], Metric::NeedsEarlierRun { reason } if reason.contains("saved")));
    assert_eq!(value(&first, "injected_detected").0, 1.0);
    assert!(matches!(first.metrics["alert_time"], Metric::Missing { .. }));
    assert!(note(&first, "none existed for this environment").contains("baselines/main.json"));
    assert!(note(&first, "entries read back").contains("8 in-run scenario sessions of THIS run"));

    let h = History::open(&store).unwrap();
    let records = h.records().unwrap();
    assert_eq!(records.len(), 8);
    assert!(records.iter().all(|r| r.check == scenario::CHECK && r.run.starts_with("r1~s5-") && r.scenario.is_some()));
    let saved = named::load(&store, "main").unwrap();
    assert_eq!(saved.checks[scenario::CHECK].figures.len(), 6);

    let second =
        regression::measure_without_alert(&platform, &params(&store, None), &run_dir(tmp.path(), "r2"), "local")
            .await
            .unwrap();
    assert_eq!(value(&second, "baseline"), (1.0, 6));
    assert_eq!(value(&second, "history_runs").0, 2.0, "the first run and this one");
    assert!(value(&second, "trend_checks").0 >= 1.0, "the session P95 over the two runs");
    assert_eq!(value(&second, "regressions"), (0.0, 1), "the unchanged current variant, against run r1's baseline");
    assert!(note(&second, "baseline `main` saved").contains("r1~s5-reference-1"));
    let summary = note(&second, "entries read back");
    assert!(
        summary.contains("8 in-run scenario sessions of THIS run")
            && summary.contains("8 scenario sessions of earlier runs"),
        "{summary}"
    );
    assert_eq!(named::load(&store, "main").unwrap().runs, saved.runs, "the saved baseline is kept, not replaced");
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_mode_fails_on_a_missing_baseline_and_saves_none() {
    let platform = FakePlatform::start(42, Exposes { resources: true }).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("history");
    let set = regression::measure_without_alert(
        &platform,
        &params(&store, Some("strict")),
        &run_dir(tmp.path(), "r1"),
        "local",
    )
    .await
    .unwrap();
    for m in ["baseline", "regressions"] {
        let Metric::Missing { reason } = &set.metrics[m] else { panic!("{m}: {:?}", set.metrics[m]) };
        assert!(reason.contains("no baseline named `main`") && reason.contains("baselines/main.json"), "{reason}");
    }
    assert!(!store.join("baselines/main.json").exists());
    assert_eq!(value(&set, "injected_detected").0, 1.0, "detection needs no saved baseline");
}
