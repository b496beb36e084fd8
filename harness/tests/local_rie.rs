//! Conformance with AWS's Runtime Interface Emulator: the same Rust fixture runs under the RIE (the static
//! binary inside the aws-sam-cli wheel, fetched once with `pip download --no-deps` and cached under
//! target/rie/) and under the local platform, invoked serially (the RIE crashes on parallel invokes), and
//! the two must agree on payloads, error documents (handled, unhandled, init errors) and REPORT fields.
//!
//! Where the RIE departs from AWS the platform follows AWS, and the test says so: the RIE answers a crashed
//! or failed-init invocation with HTTP 502 (AWS: 200 with `X-Amz-Function-Error: Unhandled`), omits
//! `X-Amz-Function-Error` on returned errors, and reports Max Memory Used as the memory size.

mod local_support;

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use harness::{
    local::{fixtures, ModeChoice},
    platform::{
        lambda_client::{InvokeOutput, LambdaClient},
        report_line,
    },
};
use local_support::{fixture, shutdown_clean, start};
use serde_json::{json, Value};

fn rie_binary() -> PathBuf {
    fixtures::runtime_interface_emulator().expect("the RIE (python3 and PyPI are needed once to fetch it)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One RIE process running the fixture; stopped (with its runtime) on drop.
struct Rie {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rie {
    async fn start(env: &[(&str, &str)]) -> Rie {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rie.log");
        let port = free_port();
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(rie_binary());
        cmd.args(["--runtime-interface-emulator-address", &format!("127.0.0.1:{port}")])
            .args(["--runtime-api-address", &format!("127.0.0.1:{}", free_port())])
            .arg(fixtures::build_rust_fixture().unwrap())
            .env("AWS_LAMBDA_FUNCTION_NAME", "f")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd.spawn().unwrap();
        let rie = Rie { child, port, log, _dir: dir };
        local_support::wait_until("the RIE to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        rie
    }

    async fn invoke(&self, payload: &Value) -> InvokeOutput {
        LambdaClient::new(format!("http://127.0.0.1:{}", self.port), "rie")
            .invoke("function", payload, false)
            .await
            .unwrap()
    }

    fn reports(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("REPORT "))
            .map(str::to_string)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Rie {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The payload without what differs between any two environments (ids, timings).
fn stable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["env_id", "request_id", "init_code_ms", "function_name"] {
            o.remove(k);
        }
    }
    v
}

/// An error document with request and environment ids masked.
fn masked(v: &Value, ids: &[&str]) -> Value {
    let mut s = v.to_string();
    for id in ids {
        if !id.is_empty() {
            s = s.replace(id, "<id>");
        }
    }
    serde_json::from_str(&s).unwrap()
}

fn field_names(report: &str) -> BTreeSet<String> {
    report
        .trim_start_matches("REPORT ")
        .split('\t')
        .filter_map(|f| f.split_once(": ").map(|(k, _)| k.trim().to_string()))
        .collect()
}

#[tokio::test]
async fn local_platform_agrees_with_the_runtime_interface_emulator() {
    let p = start(
        ModeChoice::Process,
        vec![
            fixture("f", &[]),
            fixture("initreport", &[("INIT_FAIL", "report")]),
            fixture("initexit", &[("INIT_FAIL", "exit")]),
        ],
    )
    .await;
    let local = LambdaClient::new(p.invoke_url(), "conformance");

    // Successful invocations, cold then warm: payloads and REPORT fields.
    let rie = Rie::start(&[]).await;
    let ask = json!({"work_ms": 1, "response_bytes": 10, "alloc_mb": 1});
    let (r_cold, r_warm) = (rie.invoke(&ask).await, rie.invoke(&ask).await);
    let (l_cold, l_warm) = (local.invoke("f", &ask, true).await.unwrap(), local.invoke("f", &ask, true).await.unwrap());
    for (r, l) in [(&r_cold, &l_cold), (&r_warm, &l_warm)] {
        assert_eq!((r.status, l.status), (200, 200));
        assert_eq!(stable(&r.json().unwrap()), stable(&l.json().unwrap()), "same payload under the RIE and locally");
    }
    assert_eq!(r_cold.json().unwrap()["cold"], json!(true));
    assert_eq!(r_warm.json().unwrap()["cold"], json!(false));
    let rie_reports = rie.reports();
    assert_eq!(rie_reports.len(), 2, "the RIE wrote one REPORT per invocation: {rie_reports:?}");
    let local_reports: Vec<String> = [&l_cold, &l_warm]
        .iter()
        .map(|o| o.log_tail.as_deref().unwrap().lines().find(|l| l.starts_with("REPORT ")).unwrap().to_string())
        .collect();
    for (r, l) in rie_reports.iter().zip(&local_reports) {
        assert_eq!(field_names(r), field_names(l), "REPORT fields\n RIE:   {r}\n local: {l}");
        let (rp, lp) = (report_line::last_report(r, "rie").unwrap(), report_line::last_report(l, "local").unwrap());
        assert_eq!(rp.memory_size_mb, lp.memory_size_mb);
        assert_eq!(rp.init_duration_ms.is_some(), lp.init_duration_ms.is_some());
        assert!(
            lp.max_memory_used_mb.is_some_and(|m| m >= 1 && Some(m) < lp.memory_size_mb),
            "local Max Memory Used is measured: {l}"
        );
    }
    assert!(
        field_names(&rie_reports[0]).contains("Init Duration")
            && !field_names(&rie_reports[1]).contains("Init Duration")
    );

    // A returned (handled) error: same error document.
    let r = rie.invoke(&json!({"fail": true})).await;
    let l = local.invoke("f", &json!({"fail": true}), false).await.unwrap();
    let ids = |o: &InvokeOutput, env: &Value| {
        vec![o.request_id.clone().unwrap_or_default(), env.as_str().unwrap_or_default().to_string()]
    };
    let (r_env, l_env) = (r_cold.json().unwrap()["env_id"].clone(), l_cold.json().unwrap()["env_id"].clone());
    let (ri, li) = (ids(&r, &r_env), ids(&l, &l_env));
    assert_eq!(
        masked(&r.json().unwrap(), &ri.iter().map(String::as_str).collect::<Vec<_>>()),
        masked(&l.json().unwrap(), &li.iter().map(String::as_str).collect::<Vec<_>>())
    );
    assert_eq!((r.status, l.status, l.function_error.as_deref()), (200, 200, Some("Unhandled")));

    // A crash during an invocation: same Runtime.ExitError document.
    let r = rie.invoke(&json!({"crash": true})).await;
    let l = local.invoke("f", &json!({"crash": true}), false).await.unwrap();
    let mask_rid = |v: Value| {
        let msg = v["errorMessage"].as_str().unwrap_or_default().to_string();
        let rest = msg.split_once(" Error: ").map(|(_, r)| r.to_string()).unwrap_or(msg);
        json!({"errorType": v["errorType"], "error": rest})
    };
    assert_eq!(mask_rid(r.json().unwrap()), mask_rid(l.json().unwrap()));
    assert_eq!(l.json().unwrap()["errorType"], "Runtime.ExitError");
    assert!(
        r.status >= 500 && l.function_error.as_deref() == Some("Unhandled"),
        "RIE {} / local {:?}",
        r.status,
        l.function_error
    );
    let again_r = rie.invoke(&json!({})).await.json().unwrap();
    let again_l = local.invoke("f", &json!({}), false).await.unwrap().json().unwrap();
    assert_eq!(
        (again_r["cold"].clone(), again_l["cold"].clone()),
        (json!(true), json!(true)),
        "both start a new environment after a crash"
    );
    drop(rie);

    // An init error the runtime reports: same document.
    let rie = Rie::start(&[("INIT_FAIL", "report")]).await;
    let r = rie.invoke(&json!({})).await;
    let l = local.invoke("initreport", &json!({}), false).await.unwrap();
    assert_eq!(r.json().unwrap(), l.json().unwrap());
    assert_eq!(l.json().unwrap()["errorType"], "FixtureInitError");
    assert!(r.status >= 500 && l.function_error.as_deref() == Some("Unhandled"));
    drop(rie);

    // A runtime that exits during init: the same cause (the RIE answers with an empty 502 and logs it).
    let rie = Rie::start(&[("INIT_FAIL", "exit")]).await;
    let r = rie.invoke(&json!({})).await;
    let l = local.invoke("initexit", &json!({}), false).await.unwrap();
    assert!(r.status >= 500);
    let cause = "Runtime exited with error: exit status 2";
    assert!(rie.log().contains(cause), "RIE log names the exit: {}", rie.log());
    assert!(l.json().unwrap()["errorMessage"].as_str().unwrap().contains(cause), "{:?}", l.json());
    assert_eq!(l.json().unwrap()["errorType"], "Runtime.ExitError");
    drop(rie);
    shutdown_clean(p).await;
}
