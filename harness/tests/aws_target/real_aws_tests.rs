//! Against a real deployment of `terraform/` (an AWS account, or LocalStack with `AWS_ENDPOINT_URL`): never
//! run by plain `cargo test`. Point them at the deployment with `PERF_TF_DIR` (runs `terraform output
//! -json` there) or `PERF_TF_OUTPUTS` (a saved file); the default credential chain signs the requests.
//!
//! ```text
//! PERF_TF_DIR=terraform cargo nextest run -p harness --test aws_target --run-ignored only -E 'test(/real_aws/)'
//! ```

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use harness::{
    platform::aws::{check_alarms, AlarmExpectation, AuditLog, AwsOptions, AwsTarget},
    terraform,
};

async fn deployed(audit_dir: &std::path::Path) -> AwsTarget {
    let dir = std::env::var_os("PERF_TF_DIR").map(PathBuf::from);
    let file = std::env::var_os("PERF_TF_OUTPUTS").map(PathBuf::from);
    let settings = terraform::load_settings(dir.as_deref(), file.as_deref())
        .expect("set PERF_TF_DIR or PERF_TF_OUTPUTS to the deployment");
    let opts = AwsOptions {
        endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        audit: Some(Arc::new(AuditLog::open(&audit_dir.join("audit.jsonl")).unwrap())),
        ..AwsOptions::default()
    };
    AwsTarget::connect(settings, opts).await.unwrap()
}

#[tokio::test]
#[ignore = "needs aws"]
async fn real_aws_forced_cold_start_is_cold_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let t = deployed(dir.path()).await;
    let before = t.check_function().await.unwrap();
    let mut changes = t.changes().unwrap();
    changes.force_cold_start().await.unwrap();
    let cold = t.invoke(b"{}", None).await.unwrap();
    let warm = t.invoke(b"{}", None).await.unwrap();
    changes.restore().await.unwrap();
    let report = cold.report.as_ref().expect("REPORT in the log tail");
    assert!(report.is_cold(), "first invocation after the bump has Init Duration: {report:?}");
    assert!(!warm.platform_cold(), "second one reuses the environment");
    if let (Some(c), Some(w)) = (&cold.function, &warm.function) {
        assert!(c.cold && !w.cold && c.env_id == w.env_id, "{c:?} {w:?}");
    }
    assert_eq!(t.function_state(None).await.unwrap().environment, before.environment);
    assert!(AuditLog::unrestored(&AuditLog::read(t.audit_path().unwrap()).unwrap()).is_empty());
}

#[tokio::test]
#[ignore = "needs aws"]
async fn real_aws_monitoring_and_throttling_match_the_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let t = deployed(dir.path()).await;
    let memory = t.check_function().await.unwrap().memory_mb.unwrap();
    let alarms = t.alarms().await.unwrap();
    let problems =
        check_alarms(&AlarmExpectation::seeds(memory), &t.settings().alarm_names, &alarms, &t.settings().function_name);
    assert!(problems.is_empty(), "{problems:#?}");
    let d = t.dashboard().await.unwrap();
    assert!(d.widgets.iter().any(|w| !w.metrics.is_empty()), "{d:?}");
    let s = t.stage_throttling().await.unwrap();
    assert!(s.effective().is_some_and(|e| e.is_set()), "{s:?}");
    t.invoke(b"{}", None).await.unwrap();
    // CloudWatch publishes Lambda metrics a minute or more after the fact: poll, bounded.
    let start = std::time::Instant::now();
    let has_data = loop {
        let now = SystemTime::now();
        let series = t
            .metric_data(&[t.lambda_metric("Invocations", "Sum", 60)], now - Duration::from_secs(3600), now)
            .await
            .unwrap();
        if series[0].has_data() || start.elapsed() > Duration::from_secs(300) {
            break series[0].has_data();
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    };
    assert!(has_data, "Invocations has no data within 5 minutes of an invocation");
    let now = SystemTime::now();
    let logs = t.log_reports(now - Duration::from_secs(3600), now, 10_000).await.unwrap();
    assert!(!logs.reports.is_empty(), "REPORT lines in {}", t.settings().log_group);
}

/// The nightly command on a real deployment with the end-to-end profile: every runtime check decided
/// (passed or failed with a figure, or skipped with a reason) and every change restored.
#[test]
#[ignore = "needs aws"]
fn real_aws_harness_run_decides_every_runtime_check() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.current_dir(&root)
        .args(["run", "--target", "aws", "--profile"])
        .arg(root.join("harness/tests/data/localstack-e2e.yaml"));
    match (std::env::var_os("PERF_TF_DIR"), std::env::var_os("PERF_TF_OUTPUTS")) {
        (Some(d), _) => cmd.arg("--tf-dir").arg(d),
        (None, Some(f)) => cmd.arg("--tf-outputs").arg(f),
        (None, None) => panic!("set PERF_TF_DIR or PERF_TF_OUTPUTS to the deployment"),
    };
    let out = cmd.arg("--out").arg(dir.path()).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    for c in report["checks"].as_array().unwrap() {
        let decided = match c["status"].as_str().unwrap() {
            "passed" => c["measured"]["n"].as_u64().unwrap_or(0) >= 1,
            "failed" | "skipped" => !c["reason"].as_str().unwrap_or_default().is_empty(),
            _ => false,
        };
        assert!(decided, "{c:#}");
    }
    assert!(AuditLog::unrestored(&AuditLog::read(&dir.path().join("audit.jsonl")).unwrap()).is_empty());
}
