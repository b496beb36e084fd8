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
    target::aws::{check_alarms, AlarmExpectation, AuditLog, AwsOptions, AwsTarget},
    terraform,
};

async fn deployed(audit_dir: &std::path::Path) -> AwsTarget {
    let dir = std::env::var_os("PERF_TF_DIR").map(PathBuf::from);
    let file = std::env::var_os("PERF_TF_OUTPUTS").map(PathBuf::from);
    let settings = terraform::load_settings(dir.as_deref(), file.as_deref()).expect("set PERF_TF_DIR or PERF_TF_OUTPUTS to the deployment");
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
    let problems = check_alarms(&AlarmExpectation::seeds(memory), &t.settings().alarm_names, &alarms, &t.settings().function_name);
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
        let series = t.metric_data(&[t.lambda_metric("Invocations", "Sum", 60)], now - Duration::from_secs(3600), now).await.unwrap();
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
