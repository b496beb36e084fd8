//! The aws target against recorded responses (fixtures/aws/responses/, in the wire shape AWS documents)
//! served over loopback HTTP, for what no emulator does: a function in state Failed, a failed update, an
//! update that never settles, control-plane throttling (retried with backoff, bounded), Invoke with a log
//! tail and a throttled Invoke (not retried), provisioned concurrency set and restored.

use std::time::Duration;

use aws_smithy_types::base64;
use harness::platform::aws::{AuditLog, Error, Phase, State};

use super::support::{self, fixture, Recorded, Replay, FUNCTION};

fn config(name: &str) -> Recorded {
    Recorded::json(200, &fixture(&format!("responses/{name}.json")))
}

fn lambda_error(status: u16, code: &str, file: &str) -> Recorded {
    Recorded::json(status, &fixture(&format!("responses/{file}.json"))).header("x-amzn-ErrorType", code)
}

async fn target_at(replay: &Replay, dir: &std::path::Path) -> harness::platform::aws::AwsTarget {
    support::target(support::settings(&replay.url), support::options(dir)).await
}

#[tokio::test]
async fn a_function_in_state_failed_names_its_reason_code() {
    let replay = Replay::start(vec![config("get-function-configuration-failed")]).await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let e = t.check_function().await.unwrap_err();
    assert!(matches!(&e, Error::FunctionFailed { reason_code, .. } if reason_code == "ImageAccessDenied"), "{e}");
    let m = e.to_string();
    assert!(
        m.contains(&format!("function {FUNCTION} is in state Failed (ImageAccessDenied)")) && m.contains("ECR"),
        "{m}"
    );
    let seen = replay.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/2015-03-31/functions/perf-fixture/configuration")
    );
}

#[tokio::test]
async fn a_failed_update_stops_the_wait_with_its_reason() {
    let replay = Replay::start(vec![
        config("get-function-configuration-update-in-progress"),
        config("get-function-configuration-update-failed"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let e = t.wait_settled().await.unwrap_err();
    assert!(matches!(&e, Error::UpdateFailed { reason_code, .. } if reason_code == "KMSKeyAccessDenied"), "{e}");
    assert_eq!(replay.seen().len(), 2);
}

#[tokio::test]
async fn an_update_that_never_settles_times_out_saying_what_it_saw() {
    let replay =
        Replay::start((0..400).map(|_| config("get-function-configuration-update-in-progress")).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = support::options(dir.path());
    opts.settle_timeout = Duration::from_millis(300);
    opts.poll_interval = Duration::from_millis(20);
    let t = support::target(support::settings(&replay.url), opts).await;
    let e = t.wait_settled().await.unwrap_err();
    assert!(matches!(e, Error::WaitTimeout { .. }), "{e}");
    let m = e.to_string();
    assert!(m.contains("LastUpdateStatus InProgress") && m.contains("waited for LastUpdateStatus Successful"), "{m}");
    assert!(replay.seen().len() >= 2, "it polled");
}

#[tokio::test]
async fn throttled_control_plane_calls_are_retried_then_succeed() {
    let throttled = || lambda_error(429, "TooManyRequestsException", "too-many-requests");
    let replay = Replay::start(vec![throttled(), throttled(), config("get-function-configuration-active")]).await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let s = t.check_function().await.unwrap();
    assert_eq!((s.state.as_str(), s.memory_mb), ("Active", Some(512)));
    assert_eq!(replay.seen().len(), 3, "two throttled attempts, then the answer");
}

#[tokio::test]
async fn throttling_beyond_the_retry_budget_is_an_error_after_exactly_max_attempts() {
    let throttled = || lambda_error(429, "TooManyRequestsException", "too-many-requests");
    let replay = Replay::start((0..10).map(|_| throttled()).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let e = t.reserved_concurrency().await.unwrap_err();
    assert!(matches!(&e, Error::Throttled { attempts: 3, code, .. } if code == "TooManyRequestsException"), "{e}");
    assert!(e.to_string().contains("still throttled after 3 attempts"), "{e}");
    assert_eq!(replay.seen().len(), 3, "bounded by RetryPolicy::max_attempts");
}

#[tokio::test]
async fn invoke_reads_the_report_and_the_functions_own_account() {
    let tail = base64::encode(fixture("logs/text-cold.log"));
    let replay = Replay::start(vec![config("invoke-payload-cold")
        .header("X-Amz-Log-Result", &tail)
        .header("X-Amz-Executed-Version", "$LATEST")
        .header("x-amzn-Remapped-Content-Length", "0")])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let inv = t.invoke(br#"{"work_ms":5}"#, None).await.unwrap();
    let report = inv.report.as_ref().unwrap();
    assert_eq!(report.init_duration_ms, Some(458.75));
    assert!(inv.platform_cold());
    let f = inv.function.as_ref().unwrap();
    assert_eq!((f.env_id.as_str(), f.cold, f.invocations), ("9f2c41d07ab35e11", true, 1));
    assert_eq!(
        (inv.status_code, inv.executed_version.as_deref(), inv.function_error.as_deref()),
        (200, Some("$LATEST"), None)
    );
    let seen = replay.seen();
    assert_eq!(seen[0].path, "/2015-03-31/functions/perf-fixture/invocations");
    let header = |k: &str| seen[0].headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    assert_eq!(header("x-amz-log-type").as_deref(), Some("Tail"));
    assert_eq!(header("x-amz-invocation-type").as_deref(), Some("RequestResponse"));
    assert!(header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")), "SigV4-signed");
    assert_eq!(seen[0].body, r#"{"work_ms":5}"#);
}

#[tokio::test]
async fn an_invoke_without_a_log_tail_says_the_report_is_missing() {
    let replay = Replay::start(vec![config("invoke-payload-cold")]).await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let inv = t.invoke(b"{}", None).await.unwrap();
    let e = inv.report.unwrap_err();
    assert!(e.to_string().contains("no X-Amz-Log-Result header"), "{e}");
}

#[tokio::test]
async fn a_throttled_invoke_is_reported_once_and_not_retried() {
    let throttled = || lambda_error(429, "TooManyRequestsException", "invoke-too-many-requests");
    let replay = Replay::start(vec![throttled(), throttled(), throttled()]).await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let e = t.invoke(b"{}", None).await.unwrap_err();
    assert!(e.is_invoke_throttle(), "{e}");
    assert!(e.to_string().contains("Rate Exceeded."), "{e}");
    assert_eq!(replay.seen().len(), 1, "a 429 from Invoke is data, never retried");
}

#[tokio::test]
async fn provisioned_concurrency_is_set_waited_for_and_removed_on_restore() {
    let replay = Replay::start(vec![
        lambda_error(404, "ProvisionedConcurrencyConfigNotFoundException", "provisioned-concurrency-not-found"),
        Recorded::json(202, &fixture("responses/provisioned-concurrency-in-progress.json")),
        Recorded::json(200, &fixture("responses/provisioned-concurrency-in-progress.json")),
        Recorded::json(200, &fixture("responses/provisioned-concurrency-ready.json")),
        Recorded::json(204, ""),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let t = target_at(&replay, dir.path()).await;
    let mut changes = t.changes().unwrap();
    changes.set_provisioned_concurrency("live", Some(2)).await.unwrap();
    changes.restore().await.unwrap();
    let calls: Vec<(String, String)> = replay.seen().into_iter().map(|s| (s.method, s.path)).collect();
    let path = "/2019-09-30/functions/perf-fixture/provisioned-concurrency?Qualifier=live";
    assert_eq!(
        calls,
        [("GET", path), ("PUT", path), ("GET", path), ("GET", path), ("DELETE", path)]
            .map(|(m, p)| (m.to_string(), p.to_string()))
    );
    let audit = AuditLog::read(t.audit_path().unwrap()).unwrap();
    let states: Vec<(Phase, State)> = audit.iter().map(|e| (e.phase, e.state)).collect();
    assert_eq!(
        states,
        [
            (Phase::Change, State::Started),
            (Phase::Change, State::Done),
            (Phase::Restore, State::Started),
            (Phase::Restore, State::Done)
        ]
    );
    assert_eq!((audit[0].before.clone(), audit[0].after.clone()), (serde_json::Value::Null, serde_json::json!(2)));
}

#[tokio::test]
async fn changes_are_refused_without_an_audit_log() {
    let replay = Replay::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = support::options(dir.path());
    opts.audit = None;
    let t = support::target(support::settings(&replay.url), opts).await;
    let e = t.changes().unwrap_err();
    assert!(e.to_string().contains("no audit log"), "{e}");
    assert!(replay.seen().is_empty());
}

#[tokio::test]
async fn no_credentials_anywhere_is_a_clear_error_before_any_request() {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let replay = Replay::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = support::options(dir.path());
    opts.credentials = None;
    let t = support::target(support::settings(&replay.url), opts).await;
    let e = t.check_function().await.unwrap_err();
    assert!(matches!(e, Error::NoCredentials { .. }), "{e}");
    assert!(e.to_string().contains("set AWS_PROFILE or AWS_ACCESS_KEY_ID"), "{e}");
    assert!(replay.seen().is_empty(), "nothing was sent unsigned");
}
