//! A run on the localstack target stopped while its changes are applied (moto_server for the AWS services, the
//! local platform as Lambda, the real `harness` binary): SIGTERM restores every change before the process
//! exits 143; a run killed with SIGKILL leaves its changes in the audit log, and `harness restore --run DIR`
//! puts them back (a second call finds nothing left).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use harness::platform::aws::AuditLog;
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

use super::{
    e2e_tests::{assert_function_as_before, localstack_args, outputs_file, start_platform, FUNCTION},
    support::{self, root, Moto},
};

fn harness_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).current_dir(root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_") || k.starts_with("HARNESS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Starts `harness run` of the checks that change the function; returns the child and the run directory.
fn start_run(outputs: &Path, endpoint: &str, dir: &Path) -> (Child, std::path::PathBuf) {
    let run = dir.join("run");
    let history = dir.join("history");
    let only = "E2E.cold_start_client,E2E.concurrency_limit,E2E.memory_sweep";
    let extra = ["--only", only, "--history", history.to_str().unwrap()];
    let args = localstack_args("localstack-e2e.yaml", Some(endpoint), outputs, &run, &extra);
    let child = harness_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, run)
}

/// Unrestored changes of the run's audit log (none when there is no log yet).
fn unrestored(run: &Path) -> usize {
    let p = run.join(harness::platform::aws::AUDIT_FILE);
    let entries = if p.exists() { AuditLog::read(&p).unwrap_or_default() } else { Vec::new() };
    AuditLog::unrestored(&entries).len()
}

/// Waits (bounded) until a change is applied and not restored, then sends `sig`.
fn signal_when_changed(child: &mut Child, run: &Path, sig: Signal) {
    let end = Instant::now() + Duration::from_secs(240);
    while unrestored(run) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before changing anything");
        assert!(Instant::now() < end, "the run changed nothing within 240 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), sig).unwrap();
}

fn wait_exit(child: Child) -> (Option<i32>, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let o = rx.recv_timeout(Duration::from_secs(180)).expect("the harness exits within 180 s").unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_changes_applied_restores_every_change() {
    let moto = Moto::start(&[]);
    let settings = support::deploy(&moto, FUNCTION, false).await;
    let platform = start_platform().await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = outputs_file(dir.path(), &settings, &platform, &moto);
    let (mut child, run) = start_run(&outputs, &moto.url, dir.path());
    let run2 = run.clone();
    let child = tokio::task::spawn_blocking(move || {
        signal_when_changed(&mut child, &run2, Signal::TERM);
        child
    })
    .await
    .unwrap();
    let (code, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(unrestored(&run), 0, "every change is restored before the exit: {stderr}");
    assert_function_as_before(&platform).await;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["status"] == "error" && c["reason"].as_str().unwrap().starts_with("interrupted")),
        "{checks:#?}"
    );
    assert!(!dir.path().join("history").exists(), "an interrupted run is not appended to the history");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_restore_puts_back_what_a_killed_run_left_changed() {
    let moto = Moto::start(&[]);
    let settings = support::deploy(&moto, FUNCTION, false).await;
    let platform = start_platform().await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = outputs_file(dir.path(), &settings, &platform, &moto);
    let (mut child, run) = start_run(&outputs, &moto.url, dir.path());
    let run2 = run.clone();
    let child = tokio::task::spawn_blocking(move || {
        signal_when_changed(&mut child, &run2, Signal::KILL);
        child
    })
    .await
    .unwrap();
    let (code, _) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert_eq!(code, None, "killed by SIGKILL");
    let left = unrestored(&run);
    assert!(left > 0, "the killed run left a change applied");

    let restore = |run: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || harness_cmd(&["restore", "--run", run.to_str().unwrap()]).output().unwrap())
            .await
            .unwrap()
    };
    let o = restore(run.clone()).await;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout.matches("restored function:").count(), left, "{stdout}");
    assert_eq!(unrestored(&run), 0, "{stdout}");
    assert_function_as_before(&platform).await;

    let again = restore(run.clone()).await;
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("nothing to put back"), "a second restore changes nothing: {stdout}");
    platform.shutdown().await;
}
