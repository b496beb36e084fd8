//! Nothing of a run remains: a child test process starts the platform with live environments and then
//! panics (the platform's drop removes everything while the panic unwinds) or is killed with SIGKILL (the
//! next platform start sweeps what the dead run left), in container and process mode.

mod local_support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use harness::local::{leftovers, ModeChoice};
use local_support::{fixture, start};
use rstest::rstest;
use serde_json::json;

const CHILD_ENV: &str = "PERF_ACCEPTANCE_CLEANUP_CHILD";

/// Runs in the child process only: starts environments, reports the run id, then panics or hangs.
#[tokio::test]
#[ignore = "child process of the cleanup tests"]
async fn cleanup_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (how, mode) = spec.split_once(',').expect("how,mode");
    let mode = if mode == "container" { ModeChoice::Container } else { ModeChoice::Process };
    let p = start(mode, vec![fixture("f", &[])]).await;
    let c = harness::platform::lambda_client::LambdaClient::new(p.invoke_url(), "child");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let c = c.clone();
        set.spawn(async move { c.invoke("f", &json!({"work_ms": 200, "work_mode": "sleep"}), false).await.unwrap() });
    }
    set.join_all().await;
    println!("RUN_ID={}", p.run_id());
    println!("ENVIRONMENTS={}", p.environments("f").len());
    if how == "panic" {
        panic!("deliberate panic with {} live environments", p.environments("f").len());
    }
    tokio::time::sleep(Duration::from_secs(120)).await;
}

fn spawn_child(how: &str, mode: &str) -> (std::process::Child, String, usize) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "cleanup_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{how},{mode}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut run_id = None;
    let mut envs = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        // libtest prints `test cleanup_child ... ` before the test's first line.
        if let Some(at) = line.find("RUN_ID=") {
            run_id = Some(line[at + "RUN_ID=".len()..].trim().to_string());
        }
        if let Some(n) = line.strip_prefix("ENVIRONMENTS=") {
            envs = n.parse().unwrap();
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (child, run_id.expect("the child printed its run id"), envs)
}

#[rstest]
#[case::container("container")]
#[case::process("process")]
fn a_panicking_run_removes_its_environments(#[case] mode: &str) {
    let (mut child, run, envs) = spawn_child("panic", mode);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child test panicked");
    assert_eq!(envs, 3, "the child had three live environments when it panicked");
    let left = leftovers(&run);
    assert_eq!((left.containers, left.processes), (0, 0), "run {run} left {left:?} after a panic");
}

#[rstest]
#[case::container("container")]
#[case::process("process")]
#[tokio::test]
async fn a_killed_run_is_swept_at_the_next_start(#[case] mode: &str) {
    let (mut child, run, envs) = spawn_child("hang", mode);
    assert_eq!(envs, 3);
    let before = leftovers(&run);
    // A container's process is visible on the host too, so container mode counts each environment twice.
    let expected = if mode == "container" { (3, 3) } else { (0, 3) };
    assert_eq!((before.containers, before.processes), expected, "three environments live before the kill");
    child.kill().unwrap();
    child.wait().unwrap();
    let p = start(ModeChoice::Process, vec![fixture("f", &[])]).await;
    let left = leftovers(&run);
    assert_eq!((left.containers, left.processes), (0, 0), "run {run} left {left:?} after the sweep");
    local_support::shutdown_clean(p).await;
}
