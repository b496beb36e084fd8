//! The fault matrix of a run on the local target, with the real `harness` binary, the real engine and real
//! child processes: SIGINT and SIGTERM in the middle of a measurement, a malformed functions file, a port
//! already taken, an unwritable output directory. Each ends failed or with an error naming the reason,
//! never passed, and leaves no container and no process behind.
//!
//! The harness runs in a session of its own (`setsid`), so every process it started, whatever its process
//! group, is found by session id after it exits.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use harness::local::owned_by;
use rstest::rstest;
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The harness binary in a new session, with the environment's HARNESS_ and DOCKER_ settings removed.
fn harness(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new("setsid");
    cmd.arg(env!("CARGO_BIN_EXE_harness")).args(args).current_dir(root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HARNESS_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HARNESS_HISTORY", dir.join("history")).env("HARNESS_SERVICES_DIR", dir.join("services"));
    cmd
}

/// The local functions file with `mode` forced.
/// The local target's functions in `mode`, `fixture-rust` given 20 ms of handler work: in process mode on a
/// quiet machine the two checks otherwise finish in well under a second, before a signal can land mid-run.
fn functions_file(dir: &Path, mode: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("fixtures/targets/local.yaml")).unwrap();
    let entry = "  - name: fixture-rust\n    fixture: rust\n";
    assert!(text.contains(entry), "fixtures/targets/local.yaml no longer has the fixture-rust entry");
    let text = text.replace("mode: auto", &format!("mode: {mode}")).replacen(
        entry,
        &format!("{entry}    environment:\n      WORK_MS: \"20\"\n      WORK_MODE: sleep\n"),
        1,
    );
    let p = dir.join("functions.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Processes of session `sid` still alive (zombies count: nobody reaped them).
fn session_processes(sid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        // Fields after the command: state, ppid, pgrp, session.
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.get(3).and_then(|s| s.parse::<u32>().ok()) == Some(sid) {
            found.push(format!("{pid} {}", &stat[..close + 1]));
        }
    }
    found
}

/// Polls `cond` every 200 ms until it holds or `limit` passes; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for `child` to exit within `limit` (killing it and panicking otherwise).
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the harness did not exit within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts that harness process `pid` (a session leader) left nothing: no container it owned, no process it
/// marked, no process of its session, within 10 s of its exit.
fn assert_nothing_left(pid: u32) {
    let mut last = (Default::default(), Vec::new());
    let clean = wait_until(Duration::from_secs(10), || {
        last = (owned_by(pid), session_processes(pid));
        last.0 == harness::local::Swept::default() && last.1.is_empty()
    });
    assert!(clean, "harness {pid} left {:?} and processes {:?}", last.0, last.1);
}

fn checks(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("report.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.join("report.json").display()));
    serde_json::from_str::<Value>(&text).unwrap()["checks"].as_array().unwrap().clone()
}

fn send(pid: u32, sig: Signal) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), sig).unwrap();
}

/// A signal in the middle of a measurement with live environments: the run stops, the check is an error
/// "interrupted", the partial report is written, the exit code is 128 + the signal, and 10 s after the
/// exit no container and no process of the run is left.
#[rstest]
#[case::sigint_containers("container", Signal::INT, 130)]
#[case::sigterm_processes("process", Signal::TERM, 143)]
fn a_signal_mid_run_stops_it_and_leaves_nothing(#[case] mode: &str, #[case] sig: Signal, #[case] code: i32) {
    if mode == "container" && Command::new("docker").arg("info").output().map(|o| !o.status.success()).unwrap_or(true) {
        panic!("this test needs the Docker engine (docker info fails)");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let functions = functions_file(dir.path(), mode);
    let mut child = harness(
        &[
            "run",
            "--target",
            "local",
            "--functions",
            functions.to_str().unwrap(),
            "--only",
            "AC2.cold_start_p95,AC2.warm_start_p95",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    // Mid-run: environments of the measurement are live.
    let live = wait_until(Duration::from_secs(300), || {
        let o = owned_by(pid);
        o.containers + o.processes > 0 || child.try_wait().unwrap().is_some()
    });
    assert!(live && child.try_wait().unwrap().is_none(), "the run started no environment: {}", log.join().unwrap());
    send(pid, sig);
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(code), "{log}");
    assert!(log.contains("received: stopping the load"), "{log}");
    // A check decided before the signal keeps its evidence; the one under way and those after it are errors.
    let checks = checks(&out);
    assert_eq!(checks.len(), 2, "{checks:#?}");
    let interrupted: Vec<&Value> =
        checks.iter().filter(|c| c["reason"].as_str().unwrap().starts_with("interrupted")).collect();
    assert!(!interrupted.is_empty(), "no check was interrupted: {checks:#?}");
    for c in interrupted {
        assert_eq!(c["status"], "error", "{c:#}");
    }
    assert_eq!(checks.last().unwrap()["status"], "error", "the last check cannot have finished: {checks:#?}");
    assert!(!dir.path().join("history").exists(), "an interrupted run is not appended to the history");
    assert_nothing_left(pid);
}

/// A functions file that is not YAML: the check is an error naming the file, nothing is left.
#[test]
fn a_malformed_functions_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let functions = dir.path().join("functions.yaml");
    std::fs::write(&functions, "mode: process\nfunctions:\n  - name: [unclosed\n").unwrap();
    let child = harness(
        &[
            "run",
            "--target",
            "local",
            "--functions",
            functions.to_str().unwrap(),
            "--only",
            "AC2.cold_start_p95",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let c = &checks(&out)[0];
    assert_eq!(c["status"], "error", "{c:#}");
    assert!(c["reason"].as_str().unwrap().contains("functions.yaml"), "{c:#}");
    assert_nothing_left(pid);
}

/// An output directory that cannot be created: exit 2 with a message naming it, nothing is left.
#[test]
fn an_unwritable_output_directory_is_bad_input_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // Under a regular file: no directory can be created there, whoever runs the test.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let out = blocker.join("run");
    let child = harness(
        &["run", "--target", "local", "--only", "AC2.cold_start_p95", "--out", out.to_str().unwrap()],
        dir.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(blocker.to_str().unwrap()), "{err}");
    assert_nothing_left(pid);
}

/// `serve-local` on a port already taken: exit 2 naming the port, nothing is left; SIGTERM stops a running
/// one with exit 143 after removing its environments.
#[test]
fn serve_local_on_a_taken_port_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let functions = functions_file(dir.path(), "process");
    let child = harness(&["serve-local", "--functions", functions.to_str().unwrap(), "--port", &port], dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_nothing_left(pid);
}

/// `serve-local` stopped by SIGTERM exits 143 and removes its environments.
#[test]
fn serve_local_stopped_by_sigterm_exits_143_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let functions = functions_file(dir.path(), "process");
    let mut child = harness(&["serve-local", "--functions", functions.to_str().unwrap()], dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let invoke = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("Invoke API:").map(|r| r.split_whitespace().next().unwrap_or("").to_string()))
        .expect("serve-local printed its Invoke API");
    std::thread::spawn(move || lines.for_each(drop));
    // One environment, started by an invocation.
    let url = format!("{invoke}/2015-03-31/functions/fixture-rust/invocations");
    let ok = Command::new("curl").args(["-sf", "-XPOST", "-d", "{}", &url]).output().unwrap();
    assert!(ok.status.success(), "invoke {url}: {}", String::from_utf8_lossy(&ok.stderr));
    assert!(owned_by(pid).processes > 0, "an environment is live");
    send(pid, Signal::TERM);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(143));
    assert_nothing_left(pid);
}

/// A second signal exits at once (130 for a first SIGINT) and names what it did not clean up; `harness
/// restore --run DIR` then removes what the dead run left, and a second restore finds nothing.
#[test]
fn a_second_signal_exits_at_once_and_harness_restore_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let functions = functions_file(dir.path(), "process");
    let mut child = harness(
        &[
            "run",
            "--target",
            "local",
            "--functions",
            functions.to_str().unwrap(),
            "--only",
            "AC3.no_premature_scale_down",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let live =
        wait_until(Duration::from_secs(300), || owned_by(pid).processes > 0 || child.try_wait().unwrap().is_some());
    assert!(live && child.try_wait().unwrap().is_none(), "the run started no environment: {}", log.join().unwrap());
    send(pid, Signal::INT);
    std::thread::sleep(Duration::from_millis(100));
    // The process may already be gone when the first signal's clean-up was quicker than this.
    let _ = kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::TERM);
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(130), "the first signal decides the exit code: {log}");
    if log.contains("second signal") {
        assert!(log.contains("not cleaned up: local platform") || log.contains("nothing was outstanding"), "{log}");
    }
    let restore = |what: &str| {
        let o = harness(&["restore", "--run", out.to_str().unwrap()], dir.path()).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(0), "{what}: {text}{}", String::from_utf8_lossy(&o.stderr));
        text
    };
    let first = restore("first restore");
    assert!(first.contains("nothing to put back"), "a local run changes no account setting: {first}");
    // What the dead run left is gone after the first restore; a second one is harmless.
    assert_nothing_left(pid);
    let second = restore("second restore");
    assert!(second.contains("nothing to put back"), "{second}");
}

/// A Docker engine the test can take away: a unix socket that forwards to the machine's engine until
/// [`EngineProxy::close`] removes it and cuts every open connection (the machine's engine keeps running).
struct EngineProxy {
    path: PathBuf,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl EngineProxy {
    fn start(path: PathBuf) -> EngineProxy {
        use std::os::unix::net::{UnixListener, UnixStream};
        let real = match std::env::var("DOCKER_HOST") {
            Ok(h) if h.starts_with("unix://") => PathBuf::from(&h["unix://".len()..]),
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        let listener = UnixListener::bind(&path).unwrap();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::<UnixStream>::new()));
        let kept = conns.clone();
        let socket = path.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !socket.exists() {
                    // Closed: refuse whatever was already queued.
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(engine) = UnixStream::connect(&real) else { continue };
                let mut list = kept.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(engine.try_clone().unwrap());
                drop(list);
                let (mut c1, mut e1) = (client.try_clone().unwrap(), engine.try_clone().unwrap());
                let (mut c2, mut e2) = (client, engine);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut e1);
                    let _ = e1.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut e2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        EngineProxy { path, conns }
    }

    fn close(&self) {
        let _ = std::fs::remove_file(&self.path);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The Docker engine becomes unreachable in the middle of a run on the local target: the check under way ends
/// failed or with an error naming the engine, never passed; the containers the run could no longer remove are
/// removed by `harness restore --run DIR` once the engine answers again.
#[test]
fn the_engine_unreachable_mid_run_is_an_error_and_restore_removes_the_rest() {
    if Command::new("docker").arg("info").output().map(|o| !o.status.success()).unwrap_or(true) {
        panic!("this test needs the Docker engine (docker info fails)");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let functions = functions_file(dir.path(), "container");
    let proxy = EngineProxy::start(dir.path().join("docker.sock"));
    let mut child = harness(
        &[
            "run",
            "--target",
            "local",
            "--functions",
            functions.to_str().unwrap(),
            "--only",
            "AC2.cold_start_p95",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    )
    .env("DOCKER_HOST", format!("unix://{}", proxy.path.display()))
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let live =
        wait_until(Duration::from_secs(300), || owned_by(pid).containers > 0 || child.try_wait().unwrap().is_some());
    assert!(live && child.try_wait().unwrap().is_none(), "the run started no container: {}", log.join().unwrap());
    proxy.close();
    let status = wait_exit(&mut child, Duration::from_secs(240));
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let c = &checks(&out)[0];
    assert!(c["status"] == "error" || c["status"] == "failed", "{c:#}");
    assert!(!c["reason"].as_str().unwrap().is_empty(), "{c:#}");
    assert!(log.contains("could not be listed or removed"), "the user is told what is left: {log}");
    eprintln!("{}: {}\nleft before restore: {:?}\n{log}", c["status"], c["reason"], owned_by(pid));
    // The engine answers again (the machine's own): restore removes what the run could not.
    let o = harness(&["restore", "--run", out.to_str().unwrap()], dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    assert_nothing_left(pid);
}

/// Pids of the processes of session `sid` whose command is `name`.
fn session_pids_named(sid: u32, name: &str) -> Vec<u32> {
    session_processes(sid)
        .iter()
        .filter(|l| l.contains(&format!("({name})")))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Prometheus killed in the middle of a monitoring measurement: the check ends failed or with an error saying
/// so, never passed, and the other servers of the run are stopped.
#[test]
fn prometheus_killed_mid_run_is_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let functions = functions_file(dir.path(), "process");
    let mut child = harness(
        &[
            "run",
            "--target",
            "local",
            "--functions",
            functions.to_str().unwrap(),
            "--only",
            "AC5.cold_warm_metrics",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut prometheus = Vec::new();
    let up = wait_until(Duration::from_secs(300), || {
        // Mid-run: Prometheus serves and the function's environments are live.
        prometheus = session_pids_named(pid, "prometheus");
        (!prometheus.is_empty() && owned_by(pid).processes > 0) || child.try_wait().unwrap().is_some()
    });
    assert!(up && child.try_wait().unwrap().is_none(), "the run started no Prometheus: {}", log.join().unwrap());
    for p in &prometheus {
        send(*p, Signal::KILL);
    }
    let status = wait_exit(&mut child, Duration::from_secs(240));
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let c = &checks(&out)[0];
    assert!(c["status"] == "error" || c["status"] == "failed", "{c:#}");
    eprintln!("{}: {}", c["status"], c["reason"]);
    assert_nothing_left(pid);
}
