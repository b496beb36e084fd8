//! End to end on the local target: the AC5 (monitoring), AC6 / S5 / SM.regression_alert_time (regression)
//! and SEC (security) checks of sre-002, run through [`Runner`] on the embedded platform with the real
//! Prometheus, Alertmanager and Pushgateway the procedures start. A secret is planted in a function's
//! environment variables (the scan must find it) and the regression procedure injects a slower variant
//! (its alert must reach Alertmanager). The history checks are decided on the first run, on a fresh
//! history, from the regression procedure's in-run scenario sessions (which save the baseline); the
//! first run is then appended to the history and a second run compares with that saved baseline.
//!
//! No timing is asserted: only that each check is decided from a measured figure, and that the history
//! figures and the baseline behave as stated.

use std::path::Path;

use harness::{
    baseline::{named, History},
    criteria::Profile,
    evidence::{Evidence, Status},
    platform::{local::default_functions_file, LocalConfig, Target},
    run::Runner,
    run_dir::RunDir,
};

/// A fake AWS secret access key (the documentation's example value), planted in `fixture-rust`.
const PLANTED: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn selected(profile: &Profile) -> Vec<harness::criteria::Check> {
    profile
        .checks
        .iter()
        .filter(|c| ["AC5", "AC6", "SEC", "S5"].contains(&c.ac.as_str()) || c.id == "SM.regression_alert_time")
        .cloned()
        .collect()
}

fn functions_file(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(default_functions_file()).unwrap();
    let planted = text.replacen(
        "  - name: fixture-rust\n",
        &format!("  - name: fixture-rust\n    environment:\n      AWS_SECRET_ACCESS_KEY: \"{PLANTED}\"\n"),
        1,
    );
    assert_ne!(planted, text, "the default functions file no longer declares fixture-rust first");
    let file = dir.join("functions.yaml");
    std::fs::write(&file, planted).unwrap();
    file
}

fn run(profile: &Profile, functions: &Path, dir: &Path, id: &str, only: &[&str]) -> Vec<Evidence> {
    let target = Target::Local(LocalConfig { functions: Some(functions.to_path_buf()) });
    let runner = Runner::new(profile.clone(), target, RunDir::open(dir).unwrap(), id).unwrap();
    selected(profile)
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.id.as_str()))
        .map(|c| runner.run_check(c).unwrap())
        .collect()
}

fn get<'a>(evidence: &'a [Evidence], id: &str) -> &'a Evidence {
    evidence.iter().find(|e| e.id == id).unwrap_or_else(|| panic!("no evidence for {id}"))
}

const HISTORY_CHECKS: [&str; 5] =
    ["AC6.baseline", "AC6.historical_data", "AC6.trends_tracked", "S5.improved_or_maintained", "S5.historical_data"];

#[test]
#[ignore = "long (~10 min: every AC5/AC6/SEC measurement, then the regression procedure again); cargo nextest run -p harness --test wire_local_procedures --run-ignored only"]
fn ac5_ac6_sec_are_decided_from_the_local_platform_and_real_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    std::env::set_var("HARNESS_HISTORY", &history);
    std::env::set_var("HARNESS_BASELINE", "main");
    let profile =
        Profile::load(&harness::local::fixtures::workspace_root().join("fixtures/criteria/sre-002.yaml")).unwrap();
    let functions = functions_file(tmp.path());

    let first_dir = tmp.path().join("run-1");
    let first = run(&profile, &functions, &first_dir, "wire-1", &[]);
    let table: Vec<String> = first.iter().map(|e| format!("{} {:?}: {}", e.id, e.status, e.reason)).collect();
    let table = table.join("\n");
    for e in &first {
        if e.reason.contains("manual") && e.status == Status::Skipped {
            continue;
        }
        if HISTORY_CHECKS.contains(&e.id.as_str()) {
            continue;
        }
        assert_ne!(e.status, Status::Error, "{} errored:\n{table}", e.id);
        assert_ne!(e.status, Status::Skipped, "{} skipped:\n{table}", e.id);
        assert!(e.measured.is_some(), "{} has no figure:\n{table}", e.id);
    }
    let secret = get(&first, "SEC.no_sensitive_metrics");
    assert_eq!(secret.status, Status::Failed, "the planted secret was not found:\n{table}");
    assert!(secret.measured.as_ref().unwrap().value >= 1.0, "{table}");
    let alert = get(&first, "AC6.alerts_fire");
    assert!(alert.measured.as_ref().is_some_and(|m| m.n >= 1 && m.value > 0.0), "the alert did not fire:\n{table}");
    // A first run on an empty history establishes the baseline; what needs an earlier run waits for one.
    assert_eq!(get(&first, "AC6.baseline").status, Status::Passed, "{table}");
    for id in ["AC6.historical_data", "AC6.trends_tracked", "S5.historical_data", "S5.improved_or_maintained"] {
        let e = get(&first, id);
        assert_eq!(e.status, Status::Skipped, "{id} on a first run:\n{table}");
        assert!(e.reason.contains("first run") && e.reason.contains("the next run decides"), "{id}: {}", e.reason);
    }
    assert!(history.join("baselines/main.json").exists(), "the first run saved no baseline");
    let raw_text = std::fs::read_dir(first_dir.join("raw/security"))
        .unwrap()
        .flatten()
        .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!raw_text.contains(PLANTED), "a security raw file holds the planted secret");

    let h = History::open(&history).unwrap();
    assert!(h.append_run(&RunDir::open(&first_dir).unwrap()).unwrap() > 0);
    let saved = named::load(&history, "main").unwrap();

    // The AC5 figures give the comparison with the baseline something of this run to compare.
    let mut only: Vec<&str> = profile.checks.iter().filter(|c| c.ac == "AC5").map(|c| c.id.as_str()).collect();
    only.extend(HISTORY_CHECKS);
    let second = run(&profile, &functions, &tmp.path().join("run-2"), "wire-2", &only);
    let table: Vec<String> = second.iter().map(|e| format!("{} {:?}: {}", e.id, e.status, e.reason)).collect();
    let table = table.join("\n");
    for id in HISTORY_CHECKS {
        assert_ne!(get(&second, id).status, Status::Error, "{id} errored with a history and a baseline:\n{table}");
    }
    for id in ["AC6.baseline", "AC6.historical_data", "AC6.trends_tracked", "S5.historical_data"] {
        assert!(get(&second, id).measured.is_some(), "{id} has no figure:\n{table}");
    }
    // The first run is now earlier history; the saved baseline is compared, not replaced.
    assert_eq!(get(&second, "AC6.historical_data").measured.as_ref().unwrap().value, 2.0, "{table}");
    assert!(get(&second, "S5.improved_or_maintained").measured.is_some(), "not decided on a later run:\n{table}");
    assert_eq!(get(&second, "AC6.baseline").status, Status::Passed, "{table}");
    assert_eq!(named::load(&history, "main").unwrap().runs, saved.runs);
}
