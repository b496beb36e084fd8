//! The local platform driven through its Invoke API with the harness's own client: cold and warm
//! environments, REPORT lines, configuration updates, reserved and provisioned concurrency, idle
//! retirement, AWS error shapes, the front door, /metrics and the audit log, in process and container mode.

mod local_support;

use std::time::Duration;

use harness::{
    local::{EnvState, Mode, ModeChoice, PlatformConfig},
    platform::lambda_client::LambdaClient,
};
use local_support::{fixture, shutdown_clean, start, wait_until};
use rstest::rstest;
use serde_json::{json, Value};

fn client(p: &harness::local::Platform) -> LambdaClient {
    LambdaClient::new(p.invoke_url(), "AKIDLOCALTEST")
}

#[rstest]
#[case::process(ModeChoice::Process, Mode::Process)]
#[case::container(ModeChoice::Container, Mode::Container)]
#[tokio::test]
async fn cold_then_warm_in_the_same_environment(#[case] choice: ModeChoice, #[case] mode: Mode) {
    let p = start(choice, vec![fixture("f", &[])]).await;
    assert_eq!(p.mode(), mode);
    let c = client(&p);
    let first = c.invoke("f", &json!({"alloc_mb": 16}), true).await.unwrap();
    let second = c.invoke("f", &json!({}), true).await.unwrap();
    let (a, b) = (first.json().unwrap(), second.json().unwrap());
    assert_eq!((first.status, a["cold"].clone(), a["invocations"].clone()), (200, json!(true), json!(1)));
    assert_eq!((b["cold"].clone(), b["invocations"].clone()), (json!(false), json!(2)));
    assert_eq!(a["env_id"], b["env_id"], "the warm invocation reused the environment");
    let r1 = first.report.expect("REPORT in the tail of the cold invocation");
    let r2 = second.report.expect("REPORT in the tail of the warm invocation");
    // Present on the cold start; its size is not asserted: a fixture with no init work reaches the Runtime
    // API within about a millisecond of its start, which the container mode takes from the engine's
    // `State.StartedAt` (recorded just after the exec), so it can round to 0.
    // A cold start reports a positive Init Duration; in container mode the platform may be unable to measure
    // one (the runtime called before the engine's recorded start) and then leaves it out, never 0 ms.
    match mode {
        Mode::Process => {
            assert!(r1.init_duration_ms.is_some_and(|d| d > 0.0), "cold start reports Init Duration: {r1:?}")
        }
        Mode::Container => assert!(r1.init_duration_ms.is_none_or(|d| d > 0.0), "Init Duration never 0: {r1:?}"),
    }
    assert_eq!(r2.init_duration_ms, None, "warm invocation has no Init Duration");
    assert_eq!(r1.memory_size_mb, Some(128));
    assert!(
        r1.max_memory_used_mb.is_some_and(|m| m >= 16),
        "16 MB allocated and touched shows in Max Memory Used: {r1:?}"
    );
    assert_eq!(r1.request_id, first.request_id);
    let envs = p.environments("f");
    assert_eq!(envs.len(), 1);
    assert_eq!((envs[0].state, envs[0].invocations, envs[0].cold), (EnvState::Idle, 2, false));
    shutdown_clean(p).await;
}

#[tokio::test]
async fn concurrent_requests_get_one_environment_each_and_reserved_concurrency_throttles() {
    let mut f = fixture("f", &[]);
    f.reserved_concurrency = Some(2);
    let p = start(ModeChoice::Process, vec![f, fixture("g", &[])]).await;
    let c = client(&p);
    let outs = concurrently(&c, "f", json!({"work_ms": 2000, "work_mode": "sleep"}), 6).await;
    let ok = outs.iter().filter(|o| o.status == 200).count();
    let throttled: Vec<_> = outs.iter().filter(|o| o.status == 429).collect();
    assert_eq!((ok, throttled.len()), (2, 4), "reserved concurrency 2 of 6 concurrent requests");
    assert!(throttled.iter().all(|o| o.error_kind.as_deref() == Some("TooManyRequestsException")));
    assert_eq!(throttled[0].json().unwrap()["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded");
    let envs: std::collections::BTreeSet<_> =
        outs.iter().filter_map(|o| o.json()).filter_map(|v| v["env_id"].as_str().map(str::to_string)).collect();
    assert_eq!(envs.len(), 2, "two concurrent invocations ran in two environments");
    let outs = concurrently(&c, "g", json!({"work_ms": 500, "work_mode": "sleep"}), 5).await;
    assert!(outs.iter().all(|o| o.status == 200));
    assert_eq!(p.environments("g").len(), 5, "five concurrent invocations, five environments");
    shutdown_clean(p).await;
}

/// `n` invocations of `function` sent at once; their outputs in completion order.
async fn concurrently(
    c: &LambdaClient,
    function: &str,
    payload: Value,
    n: usize,
) -> Vec<harness::platform::lambda_client::InvokeOutput> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (c, f, p) = (c.clone(), function.to_string(), payload.clone());
        set.spawn(async move { c.invoke(&f, &p, false).await.expect("invoke call") });
    }
    set.join_all().await
}

#[tokio::test]
async fn configuration_update_forces_a_cold_start_and_is_audited() {
    let p = start(ModeChoice::Process, vec![fixture("f", &[])]).await;
    let c = client(&p);
    let before = c.invoke("f", &json!({}), true).await.unwrap().json().unwrap();
    let cfg = c
        .update_configuration(
            "f",
            &json!({"MemorySize": 256, "Timeout": 5, "Environment": {"Variables": {"WORK_MS": "1"}}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (cfg["MemorySize"].clone(), cfg["Timeout"].clone(), cfg["LastUpdateStatus"].clone()),
        (json!(256), json!(5), json!("Successful"))
    );
    let after = c.invoke("f", &json!({}), true).await.unwrap();
    let a = after.json().unwrap();
    assert_ne!(a["env_id"], before["env_id"], "a new environment after the update");
    assert_eq!(a["cold"], json!(true));
    let r = after.report.unwrap();
    assert!(r.init_duration_ms.is_some());
    assert_eq!(r.memory_size_mb, Some(256));
    assert_eq!(c.get_configuration("f").await.unwrap()["MemorySize"], json!(256));
    c.put_concurrency("f", 3).await.unwrap();
    assert_eq!(c.get_concurrency("f").await.unwrap(), Some(3));
    c.delete_concurrency("f").await.unwrap();
    assert_eq!(c.get_concurrency("f").await.unwrap(), None);
    let lines: Vec<Value> = std::fs::read_to_string(p.audit_log_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fields: Vec<_> = lines.iter().map(|l| l["field"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        fields,
        [
            "MemorySize",
            "Timeout",
            "Environment.Variables",
            "ReservedConcurrentExecutions",
            "ReservedConcurrentExecutions"
        ]
    );
    assert_eq!((lines[0]["from"].clone(), lines[0]["to"].clone()), (json!(128), json!(256)));
    assert!(lines.iter().all(|l| l["key"] == "AKIDLOCALTEST" && l["function"] == "f"));
    assert_eq!(lines[2]["to"], json!(["WORK_MS"]), "variable names are audited, not their values");
    shutdown_clean(p).await;
}

#[tokio::test]
async fn errors_have_aws_shapes() {
    let mut slow = fixture("slow", &[]);
    slow.timeout_s = 1.0;
    let p = start(
        ModeChoice::Process,
        vec![
            fixture("f", &[]),
            fixture("initexit", &[("INIT_FAIL", "exit")]),
            fixture("initreport", &[("INIT_FAIL", "report")]),
            slow,
        ],
    )
    .await;
    let c = client(&p);
    let e = c.invoke("nope", &json!({}), false).await.unwrap();
    assert_eq!((e.status, e.error_kind.as_deref()), (404, Some("ResourceNotFoundException")));
    assert!(e.json().unwrap()["message"].as_str().unwrap().contains("Function not found"));
    let e = c.invoke_raw("f", bytes::Bytes::from_static(b"{not json"), false).await.unwrap();
    assert_eq!((e.status, e.error_kind.as_deref()), (400, Some("InvalidRequestContentException")));

    let handled = c.invoke("f", &json!({"fail": true}), true).await.unwrap();
    assert_eq!((handled.status, handled.function_error.as_deref()), (200, Some("Unhandled")));
    assert_eq!(handled.json().unwrap()["errorType"], "FixtureError");
    let env_after_error = c.invoke("f", &json!({}), false).await.unwrap().json().unwrap();
    assert_eq!(env_after_error["cold"], json!(false), "a returned error keeps the environment");

    let crash = c.invoke("f", &json!({"crash": true}), true).await.unwrap();
    assert_eq!(crash.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(crash.json().unwrap()["errorType"], "Runtime.ExitError");
    assert!(crash.json().unwrap()["errorMessage"].as_str().unwrap().contains("exit status 3"));
    assert_eq!(
        c.invoke("f", &json!({}), false).await.unwrap().json().unwrap()["cold"],
        json!(true),
        "a crash retires the environment"
    );

    let ie = c.invoke("initexit", &json!({}), true).await.unwrap();
    assert_eq!((ie.status, ie.function_error.as_deref()), (200, Some("Unhandled")));
    assert_eq!(ie.json().unwrap()["errorType"], "Runtime.ExitError");
    assert!(ie.report.as_ref().unwrap().error_type.as_deref() == Some("Runtime.ExitError"));
    let ir = c.invoke("initreport", &json!({}), true).await.unwrap();
    assert_eq!(ir.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(ir.json().unwrap()["errorType"], "FixtureInitError");
    assert!(p.environments("initexit").is_empty() && p.environments("initreport").is_empty());

    let t = c.invoke("slow", &json!({"work_ms": 30000, "work_mode": "sleep"}), true).await.unwrap();
    assert_eq!(t.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(t.json().unwrap()["errorType"], "Sandbox.Timedout");
    assert!(t.json().unwrap()["errorMessage"].as_str().unwrap().contains("Task timed out after 1.00 seconds"));
    assert_eq!(t.report.unwrap().status.as_deref(), Some("timeout"));
    assert!(t.latency < Duration::from_secs(25), "the invocation was cut at the timeout, not after the handler's 30 s");
    assert!(p.environments("slow").is_empty(), "a timed-out environment is retired");
    shutdown_clean(p).await;
}

#[tokio::test]
async fn idle_environments_retire_and_provisioned_ones_stay_warm() {
    let mut idle = fixture("idle", &[]);
    idle.idle_timeout_s = 0.3;
    let mut prov = fixture("prov", &[]);
    prov.provisioned_concurrency = 2;
    prov.idle_timeout_s = 0.3;
    let p = start(ModeChoice::Process, vec![idle, prov]).await;
    let c = client(&p);
    wait_until("2 provisioned environments idle", Duration::from_secs(30), || {
        p.environments("prov").iter().filter(|e| e.state == EnvState::Idle && e.provisioned).count() == 2
    })
    .await;
    let r = c.invoke("prov", &json!({}), true).await.unwrap();
    assert_eq!(
        r.report.unwrap().init_duration_ms,
        None,
        "provisioned environments were initialized before the invocation"
    );
    c.invoke("idle", &json!({}), false).await.unwrap();
    assert_eq!(p.environments("idle").len(), 1);
    wait_until("the idle environment to retire", Duration::from_secs(30), || p.environments("idle").is_empty()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(p.environments("prov").len(), 2, "provisioned environments outlive the idle timeout");
    shutdown_clean(p).await;
}

#[tokio::test]
async fn front_door_needs_the_key_throttles_and_serves_https() {
    let mut cfg = PlatformConfig::new(vec![fixture("f", &[])]);
    cfg.mode = ModeChoice::Process;
    cfg.stage_rate_limit = 0.01;
    cfg.stage_burst_limit = 2;
    let p = harness::local::Platform::start(cfg).await.unwrap();
    let http = reqwest_like::Client::new(None);
    let (s, _) = http.get(&format!("{}/f", p.front_door_http()), None).await;
    assert_eq!(s, 403, "no API key");
    let (s, body) = http.get(&format!("{}/f?work_ms=1", p.front_door_http()), Some(p.api_key())).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["work_ms"].clone(), v["cold"].clone()), (json!(1), json!(true)));
    let https = reqwest_like::Client::new(Some(p.ca_pem()));
    let (s, body) = https.get(&format!("{}/f", p.front_door_https()), Some(p.api_key())).await;
    assert_eq!(s, 200, "HTTPS with the run's CA: {body}");
    let (s, _) = http.get(&format!("{}/f", p.front_door_http()), Some(p.api_key())).await;
    assert_eq!(s, 429, "burst of 2 used up at 0.01 req/s");

    let (s, _) = http.get(&p.metrics_url(), None).await;
    assert_eq!(s, 401, "/metrics needs the bearer token");
    let (s, text) = http.get_bearer(&p.metrics_url(), p.metrics_token()).await;
    assert_eq!(s, 200);
    for needle in [
        "function_cold_start_duration_seconds_bucket{function=\"f\",le=\"+Inf\"} 1",
        "function_invocations_total{function=\"f\",status=\"success\"} 2",
        "function_invocation_duration_seconds_count{function=\"f\"} 2",
        "function_environments{function=\"f\",state=\"idle\"} 1",
        "function_scale_events_total{direction=\"up\",function=\"f\",reason=\"on_demand\"} 1",
        "api_gateway_requests_total{stage=\"local\",status=\"429\"}",
        "function_max_memory_used_bytes{function=\"f\"}",
    ] {
        assert!(text.contains(needle) || label_permuted(&text, needle), "missing `{needle}` in\n{text}");
    }
    shutdown_clean(p).await;
}

/// Label order in the exposition is the order the platform recorded them; accept any order.
fn label_permuted(text: &str, needle: &str) -> bool {
    let Some((name, rest)) = needle.split_once('{') else {
        return false;
    };
    let Some((labels, value)) = rest.split_once('}') else {
        return false;
    };
    let want: std::collections::BTreeSet<&str> = labels.split(',').collect();
    text.lines().any(|l| {
        let Some((n, r)) = l.split_once('{') else {
            return false;
        };
        let Some((ls, v)) = r.split_once('}') else {
            return false;
        };
        n == name && ls.split(',').collect::<std::collections::BTreeSet<_>>() == want && v.starts_with(value)
    })
}

#[tokio::test]
async fn missing_engine_is_a_clear_error_and_auto_falls_back_to_processes() {
    let mut cfg = PlatformConfig::new(vec![fixture("f", &[])]);
    cfg.mode = ModeChoice::Container;
    cfg.docker_socket = Some("/nonexistent/perf-acceptance/docker.sock".into());
    let e = harness::local::Platform::start(cfg.clone()).await.unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent/perf-acceptance/docker.sock")
            && e.contains("apt-get install docker.io")
            && e.contains("mode: process"),
        "{e}"
    );
    cfg.mode = ModeChoice::Auto;
    let p = harness::local::Platform::start(cfg).await.unwrap();
    assert_eq!(p.mode(), Mode::Process);
    assert!(p.mode_reason().contains("no Docker engine"), "{}", p.mode_reason());
    assert_eq!(client(&p).invoke("f", &json!({}), false).await.unwrap().status, 200);
    shutdown_clean(p).await;
}

#[tokio::test]
async fn functions_file_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("functions.yaml");
    std::fs::write(&path, "functions:\n  - name: f\n    fixture: rust\n    memory_mb: 100000\n").unwrap();
    let e = PlatformConfig::from_file(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:2:", path.display())) && e.contains("memory_mb"), "{e}");
    let default = harness::platform::local::default_functions_file();
    let cfg = PlatformConfig::from_file(&default).unwrap();
    assert!(cfg.functions.iter().any(|f| f.name == "fixture-rust"), "{} defines fixture-rust", default.display());
}

/// A minimal HTTP(S) GET client for the front door tests (hyper + rustls, trusting only the run's CA).
mod reqwest_like {
    use std::sync::Arc;

    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    pub struct Client {
        tls: Option<Arc<rustls::ClientConfig>>,
    }

    impl Client {
        pub fn new(ca_pem: Option<&str>) -> Client {
            let tls = ca_pem.map(|pem| {
                let mut roots = rustls::RootCertStore::empty();
                let der = pem_to_der(pem);
                roots.add(rustls::pki_types::CertificateDer::from(der)).unwrap();
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                Arc::new(
                    rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .unwrap()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            });
            Client { tls }
        }

        pub async fn get(&self, url: &str, api_key: Option<&str>) -> (u16, String) {
            self.send(url, api_key.map(|k| ("x-api-key", k.to_string()))).await
        }

        pub async fn get_bearer(&self, url: &str, token: &str) -> (u16, String) {
            self.send(url, Some(("authorization", format!("Bearer {token}")))).await
        }

        async fn send(&self, url: &str, header: Option<(&str, String)>) -> (u16, String) {
            let uri: hyper::Uri = url.parse().unwrap();
            let host = uri.host().unwrap().to_string();
            let port = uri.port_u16().unwrap();
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
            let mut req = hyper::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
                .header("host", format!("{host}:{port}"));
            if let Some((k, v)) = header {
                req = req.header(k, v);
            }
            let req = req.body(Empty::<Bytes>::new()).unwrap();
            let resp = if let Some(tls) = &self.tls {
                let name = rustls::pki_types::ServerName::try_from(host.clone()).unwrap();
                let stream = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.unwrap();
                let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                tokio::spawn(conn);
                s.send_request(req).await.unwrap()
            } else {
                let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
                tokio::spawn(conn);
                s.send_request(req).await.unwrap()
            };
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    }
}

#[tokio::test]
async fn serve_local_prints_endpoints_serves_and_cleans_up_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["serve-local", "--mode", "process"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut run_id = String::new();
    let mut invoke = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("local platform ") {
            run_id = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(rest) = line.strip_prefix("Invoke API:") {
            invoke = rest.split_whitespace().next().unwrap().to_string();
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    assert!(!run_id.is_empty() && invoke.starts_with("http://127.0.0.1:"), "serve-local printed its endpoints");
    let out = LambdaClient::new(&invoke, "cli").invoke("fixture-rust", &json!({}), true).await.unwrap();
    assert_eq!((out.status, out.json().unwrap()["cold"].clone()), (200, json!(true)));
    assert_eq!(harness::local::leftovers(&run_id).processes, 1);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143), "SIGTERM: exit 143 after the clean-up");
    let left = harness::local::leftovers(&run_id);
    assert_eq!((left.containers, left.processes), (0, 0), "serve-local left {left:?}");
}

#[tokio::test]
async fn a_caller_that_goes_away_mid_invocation_leaves_the_environment_reusable() {
    let p = start(ModeChoice::Process, vec![fixture("f", &[])]).await;
    let c = client(&p);
    let call = {
        let c = c.clone();
        tokio::spawn(async move { c.invoke("f", &json!({"work_ms": 500, "work_mode": "sleep"}), false).await })
    };
    wait_until("the invocation to be in flight", Duration::from_secs(30), || {
        p.environments("f").iter().any(|e| e.state == EnvState::Busy)
    })
    .await;
    call.abort();
    wait_until("the environment to finish the abandoned invocation", Duration::from_secs(30), || {
        p.environments("f").iter().all(|e| e.state == EnvState::Idle && e.invocations == 1)
    })
    .await;
    let next = c.invoke("f", &json!({}), false).await.unwrap().json().unwrap();
    assert_eq!((next["cold"].clone(), next["invocations"].clone()), (json!(false), json!(2)));
    shutdown_clean(p).await;
}
