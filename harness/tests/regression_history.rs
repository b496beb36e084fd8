//! The history and baseline part of the `regression` procedure (AC6) on a real history directory and run
//! directory: no history, a missing baseline in strict and lenient mode, a regression against a saved
//! baseline, trends with a change point, and a baseline from another environment.

use harness::{
    baseline::{named, History, Record},
    criteria::Params,
    evidence::{Evidence, Measured, Status, Threshold},
    fingerprint::Fingerprint,
    measure::{regression, MeasurementSet, Metric},
    run_dir::{RunDir, RunInfo},
};
use serde_json::json;

fn evidence(id: &str, value: f64) -> Evidence {
    Evidence {
        id: id.into(),
        ac: "AC2".into(),
        title: "warm start P95".into(),
        target: "local".into(),
        status: Status::Passed,
        reason: String::new(),
        statistic: Some("p95".into()),
        measured: Some(Measured {
            value,
            unit: "ms".into(),
            n: 2000,
            ci_low: Some(value * 0.985),
            ci_high: Some(value * 1.015),
        }),
        threshold: Some(Threshold { op: "<".into(), value: 100.0, unit: "ms".into() }),
        raw: vec![],
        notes: vec![],
        measured_at: Some(chrono::Utc::now()),
    }
}

fn run_dir(root: &std::path::Path, id: &str, env: &Fingerprint, evidence: &[Evidence]) -> RunDir {
    let dir = RunDir::open(&root.join(id)).unwrap();
    dir.init(RunInfo {
        id: id.into(),
        profile: "sre-002".into(),
        profile_path: "fixtures/criteria/sre-002.yaml".into(),
        target: "local".into(),
        started: chrono::Utc::now(),
        environment: env.clone(),
        invocation: String::new(),
    })
    .unwrap();
    for e in evidence {
        dir.write_evidence(e).unwrap();
    }
    dir
}

/// A history of `values` (one run each) of check AC2.warm_p95.
fn history(root: &std::path::Path, values: &[f64]) -> History {
    let h = History::open(&root.join("history")).unwrap();
    for (i, v) in values.iter().enumerate() {
        let d = run_dir(
            &root.join("runs"),
            &format!("run{i:02}"),
            &Fingerprint::current(),
            &[evidence("AC2.warm_p95", *v)],
        );
        h.append_run(&d).unwrap();
    }
    h
}

fn params(root: &std::path::Path, mode: &str) -> Params {
    [("history".to_string(), json!(root.join("history"))), ("mode".to_string(), json!(mode))].into()
}

fn missing(set: &MeasurementSet, name: &str) -> String {
    match &set.metrics[name] {
        Metric::Missing { reason } => reason.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn value(set: &MeasurementSet, name: &str) -> (f64, u64) {
    match &set.metrics[name] {
        Metric::Value { value, n, .. } => (*value, *n),
        other => panic!("{name}: {other:?}\n{:#?}", set.notes),
    }
}

const NOISE: [f64; 8] = [50.0, 50.6, 49.7, 50.3, 49.5, 50.9, 50.1, 49.8];

#[test]
fn without_a_history_store_every_history_figure_is_missing_and_says_how_to_give_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = run_dir(tmp.path(), "now", &Fingerprint::current(), &[evidence("AC2.warm_p95", 50.0)]);
    std::env::remove_var("HARNESS_HISTORY");
    let set = regression::measure_history_only(&Params::new(), &d, "local", "no platform").unwrap();
    for m in ["baseline", "history_runs", "trend_checks", "regressions"] {
        assert!(missing(&set, m).contains("--history DIR"), "{m}");
    }
    assert_eq!(missing(&set, "alert_time"), "no platform");
}

#[test]
fn a_missing_baseline_fails_in_strict_mode_and_is_only_reported_in_lenient_mode() {
    let tmp = tempfile::tempdir().unwrap();
    history(tmp.path(), &NOISE);
    let d = run_dir(tmp.path(), "now", &Fingerprint::current(), &[evidence("AC2.warm_p95", 50.0)]);
    let strict = regression::measure_history_only(&params(tmp.path(), "strict"), &d, "local", "-").unwrap();
    let why = missing(&strict, "baseline");
    assert!(why.contains("no baseline named `main`") && why.contains("harness baseline save --name main"), "{why}");
    assert!(missing(&strict, "regressions").contains("main"));
    assert_eq!(value(&strict, "history_runs"), (9.0, 9));
    let lenient = regression::measure_history_only(&params(tmp.path(), "lenient"), &d, "local", "-").unwrap();
    assert!(matches!(lenient.metrics["baseline"], Metric::Value { value, .. } if value == 0.0));
    assert!(lenient.notes.iter().any(|n| n.starts_with("lenient mode: no baseline named `main`")));
}

#[test]
fn a_slower_run_is_a_regression_against_the_saved_baseline_and_an_equal_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path(), &NOISE);
    named::save(&h, "main", 5, None).unwrap();
    let slow = run_dir(tmp.path(), "slow", &Fingerprint::current(), &[evidence("AC2.warm_p95", 60.0)]);
    let set = regression::measure_history_only(&params(tmp.path(), "strict"), &slow, "local", "-").unwrap();
    assert_eq!(value(&set, "baseline"), (1.0, 5));
    assert_eq!(value(&set, "regressions"), (1.0, 1), "{:#?}", set.notes);
    assert!(set.notes.iter().any(|n| n.starts_with("AC2.warm_p95: +") && n.contains("regression")), "{:#?}", set.notes);
    assert_eq!(value(&set, "trend_checks").0, 1.0);
    let same = run_dir(tmp.path(), "same", &Fingerprint::current(), &[evidence("AC2.warm_p95", 50.2)]);
    let set = regression::measure_history_only(&params(tmp.path(), "strict"), &same, "local", "-").unwrap();
    assert_eq!(value(&set, "regressions"), (0.0, 1), "{:#?}", set.notes);
}

#[test]
fn a_step_in_the_history_is_marked_as_a_change_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mut values = NOISE.to_vec();
    values.extend(NOISE.iter().map(|v| v * 1.3));
    history(tmp.path(), &values);
    let d = run_dir(tmp.path(), "now", &Fingerprint::current(), &[evidence("AC2.warm_p95", 65.0)]);
    let set = regression::measure_history_only(&params(tmp.path(), "lenient"), &d, "local", "-").unwrap();
    let note = set
        .notes
        .iter()
        .find(|n| n.starts_with("trend AC2.warm_p95: level changed by +"))
        .unwrap_or_else(|| panic!("{:#?}", set.notes));
    let pct: f64 = note.split('+').nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
    assert!((25.0..35.0).contains(&pct) && note.ends_with("at run run08"), "{note}");
    let trends: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("raw/regression/trends.json")).unwrap()).unwrap();
    assert_eq!(trends[0]["points"].as_array().unwrap().len(), 17);
}

#[test]
fn a_baseline_from_another_environment_is_not_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path(), &NOISE);
    named::save(&h, "main", 5, None).unwrap();
    let mut other = Fingerprint::current();
    other.cores += 14;
    let d = run_dir(tmp.path(), "elsewhere", &other, &[evidence("AC2.warm_p95", 70.0)]);
    let set = regression::measure_history_only(&params(tmp.path(), "strict"), &d, "local", "-").unwrap();
    let why = missing(&set, "regressions");
    assert!(why.contains("another environment"), "{why}");
    assert!(missing(&set, "baseline").contains("another environment"));
    let r = Record::from_evidence(&evidence("x", 1.0), &d.info().unwrap());
    assert_eq!(r.environment, other);
}
