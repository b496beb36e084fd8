//! The knative target from the command line: an unreachable cluster stops `harness run` with exit code 2
//! and a message naming the kubeconfig context and the server; `harness list` says which checks apply.

use std::{net::TcpListener, path::PathBuf, process::Command};

use harness::platform::{knative, KnativeConfig};

fn profile() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/criteria/sre-002.yaml")
}

/// A kubeconfig whose only context points at a loopback port nobody listens on.
fn dead_kubeconfig(dir: &std::path::Path) -> (PathBuf, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = format!("https://127.0.0.1:{port}");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-perf-acceptance\nclusters:\n- name: kind-perf-acceptance\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: kind-perf-acceptance\n  context:\n    cluster: kind-perf-acceptance\n    user: kind-perf-acceptance\n    namespace: functions\nusers:\n- name: kind-perf-acceptance\n  user:\n    token: not-a-secret\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    (path, server)
}

#[tokio::test]
async fn connecting_to_an_unreachable_cluster_names_context_and_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, server) = dead_kubeconfig(tmp.path());
    let err =
        knative::connect(&KnativeConfig { kubeconfig: Some(path), ..KnativeConfig::default() }).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, knative::Error::Unreachable { .. }), "{err:?}");
    assert!(msg.contains("context `kind-perf-acceptance`") && msg.contains(&server), "{msg}");
}

#[test]
fn harness_run_against_an_unreachable_cluster_exits_2_naming_the_context() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, server) = dead_kubeconfig(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--target", "knative", "--kubeconfig"])
        .arg(&path)
        .arg("--profile")
        .arg(profile())
        .arg("--out")
        .arg(tmp.path().join("run"))
        .env_remove("HARNESS_TARGET")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cluster unreachable") && stderr.contains("kind-perf-acceptance") && stderr.contains(&server),
        "{stderr}"
    );
    assert!(!tmp.path().join("run/evidence").exists(), "no check ran");

    let missing = tmp.path().join("nope.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--target", "knative", "--context", "prod", "--kubeconfig"])
        .arg(&missing)
        .arg("--profile")
        .arg(profile())
        .arg("--out")
        .arg(tmp.path().join("run2"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

#[test]
fn harness_list_shows_what_applies_on_knative() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["list", "--target", "knative", "--profile"])
        .arg(profile())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |id: &str| {
        text.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id} not listed:\n{text}")).to_string()
    };
    assert!(line("AC2.cold_start_p95 ").ends_with("applies"));
    assert!(line("AC3.no_premature_scale_down ").ends_with("applies"));
    assert!(line("S4.no_over_allocation ").contains("skipped: the memory sweep applies to Lambda-style memory sizes"));
    assert!(line("AC1.build_time_reduction ").contains("skipped: compares the baseline and optimized Dockerfiles"));
}
