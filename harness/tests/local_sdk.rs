//! The local platform driven by `aws-sdk-lambda`, the client code the aws target uses: invoke with the log
//! tail and its REPORT line, get and update the configuration (the next invocation is cold), reserved
//! concurrency and the 429s beyond it, and the SDK's view of AWS error shapes.

mod local_support;

use aws_sdk_lambda::{
    config::{retry::RetryConfig, Credentials, Region},
    primitives::Blob,
    types::{LastUpdateStatus, LogType},
    Client,
};
use base64::Engine as _;
use harness::{
    local::ModeChoice,
    platform::report_line::{self, Report},
};
use local_support::{fixture, shutdown_clean, start};
use serde_json::{json, Value};

fn sdk(endpoint: &str) -> Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(harness::platform::aws::behavior_version())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDSDKTEST", "not-a-secret", None, None, "static"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

async fn invoke(c: &Client, name: &str, payload: Value) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
    c.invoke()
        .function_name(name)
        .payload(Blob::new(payload.to_string()))
        .log_type(LogType::Tail)
        .send()
        .await
        .expect("invoke succeeds")
}

fn body(out: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    serde_json::from_slice(out.payload().expect("payload").as_ref()).expect("JSON payload")
}

fn report(out: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Report {
    let tail = base64::engine::general_purpose::STANDARD.decode(out.log_result().expect("log result")).unwrap();
    report_line::last_report(&String::from_utf8_lossy(&tail), "tail").expect("REPORT line in the tail")
}

#[tokio::test]
async fn sdk_invokes_reads_report_updates_configuration_and_sees_throttles() {
    let p = start(ModeChoice::Process, vec![fixture("fixture-rust", &[])]).await;
    let c = sdk(&p.invoke_url());

    let cold = invoke(&c, "fixture-rust", json!({})).await;
    assert_eq!((cold.status_code(), cold.function_error()), (200, None));
    assert_eq!(body(&cold)["cold"], json!(true));
    let r = report(&cold);
    assert!(r.init_duration_ms.is_some() && r.memory_size_mb == Some(128), "{r:?}");
    let warm = invoke(&c, "fixture-rust", json!({})).await;
    assert_eq!(body(&warm)["env_id"], body(&cold)["env_id"]);
    assert_eq!(report(&warm).init_duration_ms, None);

    let cfg = c.get_function_configuration().function_name("fixture-rust").send().await.unwrap();
    assert_eq!((cfg.memory_size(), cfg.timeout()), (Some(128), Some(3)));
    let upd = c.update_function_configuration().function_name("fixture-rust").memory_size(512).send().await.unwrap();
    assert_eq!((upd.memory_size(), upd.last_update_status()), (Some(512), Some(&LastUpdateStatus::Successful)));
    let after = invoke(&c, "fixture-rust", json!({})).await;
    assert_eq!(body(&after)["cold"], json!(true), "an update retires the environments");
    assert_eq!(report(&after).memory_size_mb, Some(512));

    let put = c
        .put_function_concurrency()
        .function_name("fixture-rust")
        .reserved_concurrent_executions(1)
        .send()
        .await
        .unwrap();
    assert_eq!(put.reserved_concurrent_executions(), Some(1));
    let got = c.get_function_concurrency().function_name("fixture-rust").send().await.unwrap();
    assert_eq!(got.reserved_concurrent_executions(), Some(1));
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { invoke(&c, "fixture-rust", json!({"work_ms": 3000, "work_mode": "sleep"})).await })
    };
    local_support::wait_until("one invocation in flight", std::time::Duration::from_secs(30), || {
        p.environments("fixture-rust").iter().any(|e| e.state == harness::local::EnvState::Busy)
    })
    .await;
    let err = c.invoke().function_name("fixture-rust").payload(Blob::new("{}")).send().await.unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_too_many_requests_exception(), "beyond reserved concurrency 1: {err:?}");
    assert_eq!(slow.await.unwrap().status_code(), 200);
    c.delete_function_concurrency().function_name("fixture-rust").send().await.unwrap();
    assert_eq!(invoke(&c, "fixture-rust", json!({})).await.status_code(), 200);

    let audit = std::fs::read_to_string(p.audit_log_path()).unwrap();
    assert_eq!(audit.lines().count(), 3, "MemorySize, put and delete concurrency: {audit}");
    assert!(audit.lines().all(|l| l.contains("\"key\":\"AKIDSDKTEST\"")), "{audit}");
    shutdown_clean(p).await;
}

#[tokio::test]
async fn sdk_sees_aws_error_shapes() {
    let p = start(ModeChoice::Process, vec![fixture("f", &[]), fixture("initcrash", &[("INIT_FAIL", "exit")])]).await;
    let c = sdk(&p.invoke_url());
    let e = c.invoke().function_name("missing").send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let e = c.invoke().function_name("f").payload(Blob::new("{oops")).send().await.unwrap_err().into_service_error();
    assert!(e.is_invalid_request_content_exception(), "{e:?}");
    let e = c.get_function_configuration().function_name("missing").send().await.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let handled = invoke(&c, "f", json!({"fail": true})).await;
    assert_eq!(handled.function_error(), Some("Unhandled"));
    assert_eq!(body(&handled)["errorType"], "FixtureError");
    let init = invoke(&c, "initcrash", json!({})).await;
    assert_eq!(init.function_error(), Some("Unhandled"));
    assert_eq!(body(&init)["errorType"], "Runtime.ExitError");
    assert_eq!(report(&init).error_type.as_deref(), Some("Runtime.ExitError"));
    shutdown_clean(p).await;
}
