//! `harness baseline record|save|show|compare|trend|list` on real run directories and a history
//! directory, through the built binary: exit codes and what the user reads.

use std::{path::Path, process::Command};

use harness::{
    evidence::{Evidence, Measured, Status, Threshold},
    fingerprint::Fingerprint,
    run_dir::{RunDir, RunInfo},
};

fn run_dir(root: &Path, id: &str, value: f64) -> std::path::PathBuf {
    let path = root.join(id);
    let dir = RunDir::open(&path).unwrap();
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
    dir.write_evidence(&Evidence {
        id: "AC2.warm_p95".into(),
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
    })
    .unwrap();
    path
}

fn harness(args: &[&str], history: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env("HARNESS_HISTORY", history)
        .env_remove("HARNESS_BASELINE")
        .env_remove("HARNESS_BASELINE_MODE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn record_save_compare_and_trend_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    let runs = tmp.path().join("runs");

    let (code, out) =
        harness(&["baseline", "compare", "--run", run_dir(&runs, "first", 50.0).to_str().unwrap()], &history);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no baseline named `main`") && out.contains("harness baseline save --name main"), "{out}");

    for (i, v) in [50.0, 50.6, 49.7, 50.3, 49.5, 50.9, 50.1, 49.8].iter().enumerate() {
        let d = run_dir(&runs, &format!("run{i}"), *v);
        let (code, out) = harness(&["baseline", "record", "--run", d.to_str().unwrap()], &history);
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = harness(&["baseline", "save", "--name", "nightly", "--runs", "3"], &history);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("runs: run5, run6, run7"), "{out}");
    let (code, out) = harness(&["baseline", "show", "--name", "nightly"], &history);
    assert_eq!(code, 0);
    assert!(out.contains("AC2.warm_p95") && out.contains("50.9 50.1 49.8"), "{out}");
    assert_eq!(harness(&["baseline", "list"], &history).1.trim(), "nightly");

    let slow = run_dir(&runs, "slow", 62.0);
    let (code, out) = harness(&["baseline", "compare", "--name", "nightly", "--run", slow.to_str().unwrap()], &history);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 regressions in 1 compared checks") && out.contains("regression"), "{out}");
    let same = run_dir(&runs, "same", 50.1);
    let (code, out) = harness(&["baseline", "compare", "--name", "nightly", "--run", same.to_str().unwrap()], &history);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 regressions in 1 compared checks"), "{out}");

    let (code, out) = harness(&["baseline", "trend", "--check", "warm"], &history);
    assert_eq!(code, 0);
    assert!(out.contains("AC2.warm_p95 (8 runs, ms)"), "{out}");
}

#[test]
fn harness_run_refuses_an_earlier_run_s_directory_before_measuring_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    // An earlier run's directory with its evidence: `--out` pointed at it must not report it as this run's.
    let old = run_dir(tmp.path(), "earlier", 50.0);
    let profile = harness::local::fixtures::workspace_root().join("fixtures/criteria/sre-002.yaml");
    let args = ["run", "--profile", profile.to_str().unwrap(), "--target", "local", "--out", old.to_str().unwrap()];
    let (code, out) = harness(&[&args[..], &["--only", "AC2."]].concat(), &history);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&old.display().to_string()) && out.contains("holds run earlier"), "{out}");
    assert!(out.contains("--resume"), "{out}");
    assert!(!history.exists(), "a refused run appended to the history:\n{out}");
}
