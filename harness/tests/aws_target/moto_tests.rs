//! The aws target against a real AWS API emulator (`moto_server` on loopback): the Lambda control plane
//! (configuration, cold-start bump, reserved concurrency, restore, audit), CloudWatch (metric data, alarms,
//! dashboard), Logs (REPORT lines) and API Gateway (stage throttling, usage plan, API key), and credentials
//! the endpoint rejects.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use harness::{
    platform::aws::{check_alarms, AlarmExpectation, AuditLog, Error, Phase, State, COLD_START_VAR},
    terraform::{AwsSettings, SecretRef},
};

use super::support::{self, fixture, Moto, API_KEY, FUNCTION};

async fn sdk(moto: &Moto) -> SdkConfig {
    support::sdk(moto).await
}

async fn deploy(moto: &Moto) -> AwsSettings {
    support::deploy(moto, FUNCTION, true).await
}

#[tokio::test]
async fn control_plane_changes_are_audited_and_restored() {
    let moto = Moto::start(&[]);
    let settings = deploy(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let t = support::target(settings, support::options(dir.path())).await;

    let before = t.check_function().await.unwrap();
    assert_eq!(before.state, "Active");
    assert_eq!(before.memory_mb, Some(128));
    assert_eq!(t.reserved_concurrency().await.unwrap(), None);

    let mut changes = t.changes().unwrap();
    let first = changes.force_cold_start().await.unwrap();
    let second = changes.force_cold_start().await.unwrap();
    assert_ne!(first, second, "every bump must change the configuration");
    let env = t.function_state(None).await.unwrap().environment.unwrap();
    assert_eq!(env.get(COLD_START_VAR), Some(&second));
    assert_eq!(env.get("WORK_MS").map(String::as_str), Some("5"), "the function's own variables are kept");
    changes.set_reserved_concurrency(Some(5)).await.unwrap();
    assert_eq!(t.reserved_concurrency().await.unwrap(), Some(5));
    assert!(changes.pending());

    changes.restore().await.unwrap();
    let after = t.function_state(None).await.unwrap();
    assert_eq!(after.environment, before.environment, "environment restored exactly");
    assert_eq!(t.reserved_concurrency().await.unwrap(), None);

    let audit = AuditLog::read(t.audit_path().unwrap()).unwrap();
    let done = |phase: Phase, setting: &str| {
        audit.iter().filter(|e| e.phase == phase && e.state == State::Done && e.setting == setting).count()
    };
    assert_eq!(done(Phase::Change, "environment.HARNESS_COLD_START"), 2);
    assert_eq!(done(Phase::Change, "reserved_concurrency"), 1);
    assert_eq!(done(Phase::Restore, "reserved_concurrency"), 1);
    assert_eq!(done(Phase::Restore, "environment.HARNESS_COLD_START"), 1);
    assert!(audit
        .iter()
        .all(|e| e.target == "aws" && e.endpoint == moto.url && e.resource == format!("function:{FUNCTION}")));
    assert!(AuditLog::unrestored(&audit).is_empty(), "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_restored_when_a_measurement_panics() {
    let moto = Moto::start(&[]);
    let settings = deploy(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let t = support::target(settings, support::options(dir.path())).await;
    let before = t.function_state(None).await.unwrap().environment;

    let t2 = t.clone();
    let measurement = tokio::spawn(async move {
        let mut changes = t2.changes().unwrap();
        changes.set_reserved_concurrency(Some(3)).await.unwrap();
        changes.force_cold_start().await.unwrap();
        panic!("measurement failed half-way");
    });
    let joined = measurement.await;
    assert!(joined.is_err_and(|e| e.is_panic()));

    assert_eq!(t.reserved_concurrency().await.unwrap(), None, "reserved concurrency restored on drop");
    assert_eq!(t.function_state(None).await.unwrap().environment, before, "environment restored on drop");
    let audit = AuditLog::read(t.audit_path().unwrap()).unwrap();
    assert!(AuditLog::unrestored(&audit).is_empty(), "{audit:?}");
    assert_eq!(audit.iter().filter(|e| e.phase == Phase::Restore && e.state == State::Done).count(), 2);
}

#[tokio::test]
async fn an_endpoint_without_provisioned_concurrency_says_so() {
    let moto = Moto::start(&[]);
    let settings = deploy(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let t = support::target(settings, support::options(dir.path())).await;
    let e = t.provisioned_concurrency("live").await.unwrap_err();
    assert!(matches!(e, Error::Unsupported { status: 404, .. }), "{e}");
    let m = e.to_string();
    assert!(m.contains("GetProvisionedConcurrencyConfig") && m.contains(&moto.url), "{m}");
}

#[tokio::test]
async fn cloudwatch_metrics_alarms_and_dashboard() {
    let moto = Moto::start(&[]);
    let settings = deploy(&moto).await;
    let conf = sdk(&moto).await;
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    cw.put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Invocations")
                .dimensions(Dimension::builder().name("FunctionName").value(FUNCTION).build())
                .value(3.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = support::target(settings, support::options(dir.path())).await;

    let now = SystemTime::now();
    let queries = [t.lambda_metric("Invocations", "Sum", 60), t.lambda_metric("Errors", "Sum", 60)];
    let series = t.metric_data(&queries, now - Duration::from_secs(600), now + Duration::from_secs(60)).await.unwrap();
    assert_eq!(series.len(), 2);
    assert!(series[0].has_data(), "{series:?}");
    assert_eq!(series[0].points.iter().map(|p| p.1).sum::<f64>(), 3.0);
    assert!(!series[1].has_data(), "no Errors were put: {series:?}");

    let alarms = t.alarms().await.unwrap();
    assert_eq!(alarms.len(), 6);
    let expected = AlarmExpectation::seeds(128);
    assert_eq!(check_alarms(&expected, &t.settings().alarm_names, &alarms, FUNCTION), vec![]);
    let strict: Vec<AlarmExpectation> = expected
        .into_iter()
        .map(|mut x| {
            if x.role == "duration" {
                x.watches[0].threshold = 10_000.0;
            }
            x
        })
        .collect();
    let problems = check_alarms(&strict, &t.settings().alarm_names, &alarms, FUNCTION);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].problem.contains("threshold Some(5000.0), expected 10000"), "{problems:?}");

    let d = t.dashboard().await.unwrap();
    assert_eq!(d.widgets.len(), 2);
    let names: Vec<&str> = d.widgets.iter().flat_map(|w| w.metrics.iter().map(|m| m.name.as_str())).collect();
    assert_eq!(names, ["Invocations", "Errors", "ColdStarts", "InitDuration"]);
    let dashboard_series = t
        .metric_data(&d.widgets[0].metrics, now - Duration::from_secs(600), now + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(dashboard_series.iter().map(|s| s.has_data()).collect::<Vec<_>>(), [true, false]);
}

#[tokio::test]
async fn report_lines_are_read_from_the_log_group() {
    let moto = Moto::start(&[]);
    let settings = deploy(&moto).await;
    let conf = sdk(&moto).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let group = settings.log_group.clone();
    logs.create_log_stream().log_group_name(&group).log_stream_name("s1").send().await.unwrap();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let lines: Vec<String> =
        [fixture("logs/text-cold.log"), fixture("logs/text-warm-spaces.log"), fixture("logs/json-cold.log")]
            .iter()
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
    let events: Vec<InputLogEvent> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| InputLogEvent::builder().timestamp(now + i as i64).message(l).build().unwrap())
        .collect();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s1")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let t = support::target(settings, support::options(dir.path())).await;
    let start = SystemTime::now() - Duration::from_secs(600);
    let found = t.log_reports(start, SystemTime::now() + Duration::from_secs(60), 1000).await.unwrap();
    let inits: Vec<Option<f64>> = found.reports.iter().map(|r| r.init_duration_ms).collect();
    assert_eq!(inits, [Some(458.75), None, Some(463.512)]);
    assert!(!found.truncated);

    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s1")
        .log_events(
            InputLogEvent::builder()
                .timestamp(now + 100)
                .message("REPORT RequestId: x\tDuration: n/a ms")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let e = t.log_reports(start, SystemTime::now() + Duration::from_secs(60), 1000).await.unwrap_err();
    assert!(e.to_string().contains("`n/a ms` is not a number"), "{e}");
}

#[tokio::test]
async fn stage_throttling_usage_plan_and_api_key() {
    let moto = Moto::start(&[]);
    let settings = deploy(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let t = support::target(settings, support::options(dir.path())).await;
    let s = t.stage_throttling().await.unwrap();
    let stage = s.stage_default().unwrap();
    assert_eq!((stage.rate_limit, stage.burst_limit), (Some(100.0), Some(200)));
    assert!(s.usage_plan_covers_stage);
    let eff = s.effective().unwrap();
    assert_eq!((eff.rate_limit, eff.burst_limit), (Some(50.0), Some(100)));
    let key = t.api_key().await.unwrap();
    assert_eq!(key.expose(), API_KEY);
    assert_eq!(format!("{key} {key:?}"), "*** Secret(***)");

    let wrong = harness::terraform::AwsSettings { usage_plan_id: "nope".into(), ..t.settings().clone() };
    let t2 = support::target(wrong, support::options(dir.path())).await;
    let e = t2.stage_throttling().await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("usage plan nope"), "{e}");
}

#[tokio::test]
async fn rejected_credentials_are_a_clear_error() {
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = support::options(dir.path());
    opts.credentials = Some(aws_sdk_lambda::config::Credentials::new("AKIAWRONGKEY", "wrong", None, None, "test"));
    let t = support::target(support::settings(&moto.url), opts).await;
    let e = t.check_function().await.unwrap_err();
    assert!(matches!(e, Error::Credentials { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("credentials were rejected") && m.contains("GetFunctionConfiguration") && m.contains(&moto.url),
        "{m}"
    );
    let e = t.alarms().await.unwrap_err();
    assert!(matches!(e, Error::Credentials { service: "CloudWatch", .. }), "{e}");
}

/// The path `harness run --target localstack --tf-outputs FILE` takes: settings from a saved outputs file,
/// the endpoint from the outputs, LocalStack's default credentials, the audit log in the run directory.
#[tokio::test]
async fn the_localstack_target_connects_from_saved_outputs() {
    let moto = Moto::start(&[]);
    let s = deploy(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let SecretRef::ApiGatewayKey(key) = &s.api_key else { unreachable!() };
    let str_out = |v: &str| serde_json::json!({"sensitive": false, "type": "string", "value": v});
    let doc = serde_json::json!({
        "region": str_out(&s.region), "function_name": str_out(&s.function_name), "api_id": str_out(&s.api_id),
        "api_url": str_out(&s.api_url), "api_stage": str_out(&s.api_stage), "usage_plan_id": str_out(&s.usage_plan_id),
        "api_key_secret": {"sensitive": true, "type": "string", "value": format!("apigateway-key:{key}")},
        "log_group": str_out(&s.log_group), "alarm_names": {"sensitive": false, "type": ["map", "string"], "value": s.alarm_names},
        "dashboard_name": str_out(&s.dashboard_name), "endpoint_url": str_out(&moto.url),
    });
    let file = dir.path().join("outputs.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let cfg = harness::platform::AwsConfig { tf_dir: None, tf_outputs: Some(file), endpoint: None, localstack: true };
    let run_dir = harness::run_dir::RunDir::open(&dir.path().join("run")).unwrap();
    for var in ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL"] {
        std::env::remove_var(var);
    }
    let t = harness::platform::aws::AwsTarget::from_config(&cfg, &run_dir).await.unwrap();
    assert_eq!(t.check_function().await.unwrap().state, "Active");
    assert_eq!(t.api_key().await.unwrap().expose(), API_KEY);
    let mut changes = t.changes().unwrap();
    changes.set_reserved_concurrency(Some(2)).await.unwrap();
    changes.restore().await.unwrap();
    let audit = AuditLog::read(&dir.path().join("run/audit.jsonl")).unwrap();
    assert_eq!(audit.len(), 4);
    assert!(audit.iter().all(|e| e.target == "localstack"), "{audit:?}");
}
