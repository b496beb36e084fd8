//! The aws target against a real AWS API emulator (`moto_server` on loopback): the Lambda control plane
//! (configuration, cold-start bump, reserved concurrency, restore, audit), CloudWatch (metric data, alarms,
//! dashboard), Logs (REPORT lines) and API Gateway (stage throttling, usage plan, API key), and credentials
//! the endpoint rejects.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigateway::types::{Op, PatchOperation, ThrottleSettings};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, Statistic};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_lambda::{
    primitives::Blob,
    types::{Environment, FunctionCode, Runtime},
};
use harness::{
    target::aws::{check_alarms, AlarmExpectation, AuditLog, Error, Phase, State, COLD_START_VAR},
    terraform::{AwsSettings, SecretRef},
};

use super::support::{self, fixture, Moto, FUNCTION, REGION};

const API_KEY: &str = "perfkey0123456789abcdefghijklmno";

async fn sdk(moto: &Moto) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(&moto.url)
        .load()
        .await
}

/// What the Terraform module creates, created in moto; returns the settings its outputs would give.
async fn deploy(moto: &Moto) -> AwsSettings {
    let role = "perf-fixture-lambda";
    moto.query("iam", &format!("Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument=%7B%7D"));
    let conf = sdk(moto).await;
    let lambda = aws_sdk_lambda::Client::new(&conf);
    lambda
        .create_function()
        .function_name(FUNCTION)
        .role(format!("arn:aws:iam::123456789012:role/{role}"))
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .code(FunctionCode::builder().zip_file(Blob::new(b"fixture".to_vec())).build())
        .environment(Environment::builder().variables("WORK_MS", "5").build())
        .memory_size(128)
        .send()
        .await
        .unwrap();

    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let group = format!("/aws/lambda/{FUNCTION}");
    logs.create_log_group().log_group_name(&group).send().await.unwrap();

    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let ns = format!("PerfAcceptance/{FUNCTION}");
    let alarms = [
        ("cold_starts", ns.as_str(), "ColdStarts", Statistic::Sum, 300, 10.0),
        ("init_duration", ns.as_str(), "InitDuration", Statistic::Maximum, 300, 2000.0),
        ("memory", ns.as_str(), "MaxMemoryUsedMB", Statistic::Maximum, 300, 108.0),
        ("throttles", "AWS/Lambda", "Throttles", Statistic::Sum, 60, 0.0),
        ("duration", "AWS/Lambda", "Duration", Statistic::Average, 300, 5000.0),
        ("errors", "AWS/Lambda", "Errors", Statistic::Sum, 300, 5.0),
    ];
    for (role, namespace, metric, stat, period, threshold) in alarms {
        let mut req = cw
            .put_metric_alarm()
            .alarm_name(format!("{FUNCTION}-{}", role.replace('_', "-")))
            .namespace(namespace)
            .metric_name(metric)
            .statistic(stat)
            .period(period)
            .evaluation_periods(1)
            .threshold(threshold)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold);
        if namespace == "AWS/Lambda" {
            req = req.dimensions(Dimension::builder().name("FunctionName").value(FUNCTION).build());
        }
        req.send().await.unwrap();
    }
    let body = serde_json::json!({"widgets": [
        {"type": "metric", "properties": {"title": "Overview", "stat": "Sum", "period": 60, "region": REGION, "metrics": [
            ["AWS/Lambda", "Invocations", "FunctionName", FUNCTION, {"id": "inv"}],
            [".", "Errors", ".", ".", {"id": "err"}],
            [{"expression": "100 * (1 - err / inv)", "label": "Success rate %", "id": "ok"}]
        ]}},
        {"type": "metric", "properties": {"title": "Cold start analysis", "period": 60, "region": REGION, "metrics": [
            [ns, "ColdStarts", {"stat": "Sum"}], [".", "InitDuration", {"stat": "p95"}]
        ]}}
    ]});
    cw.put_dashboard().dashboard_name(FUNCTION).dashboard_body(body.to_string()).send().await.unwrap();

    let ag = aws_sdk_apigateway::Client::new(&conf);
    let api = ag.create_rest_api().name(FUNCTION).send().await.unwrap().id.unwrap();
    let root = ag.get_resources().rest_api_id(&api).send().await.unwrap().items.unwrap()[0].id.clone().unwrap();
    ag.put_method().rest_api_id(&api).resource_id(&root).http_method("ANY").authorization_type("NONE").api_key_required(true).send().await.unwrap();
    ag.put_integration()
        .rest_api_id(&api)
        .resource_id(&root)
        .http_method("ANY")
        .r#type(aws_sdk_apigateway::types::IntegrationType::Mock)
        .send()
        .await
        .unwrap();
    let deployment = ag.create_deployment().rest_api_id(&api).send().await.unwrap().id.unwrap();
    ag.create_stage().rest_api_id(&api).stage_name("perf").deployment_id(deployment).send().await.unwrap();
    let patch = |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    ag.update_stage()
        .rest_api_id(&api)
        .stage_name("perf")
        .patch_operations(patch("/*/*/throttling/rateLimit", "100"))
        .patch_operations(patch("/*/*/throttling/burstLimit", "200"))
        .send()
        .await
        .unwrap();
    let key = ag.create_api_key().name("perf").enabled(true).value(API_KEY).send().await.unwrap().id.unwrap();
    let plan = ag
        .create_usage_plan()
        .name("perf")
        .throttle(ThrottleSettings::builder().rate_limit(50.0).burst_limit(100).build())
        .api_stages(aws_sdk_apigateway::types::ApiStage::builder().api_id(&api).stage("perf").build())
        .send()
        .await
        .unwrap()
        .id
        .unwrap();
    ag.create_usage_plan_key().usage_plan_id(&plan).key_id(&key).key_type("API_KEY").send().await.unwrap();

    AwsSettings { api_id: api, usage_plan_id: plan, api_key: SecretRef::ApiGatewayKey(key), ..support::settings(&moto.url) }
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
    let done = |phase: Phase, setting: &str| audit.iter().filter(|e| e.phase == phase && e.state == State::Done && e.setting == setting).count();
    assert_eq!(done(Phase::Change, "environment.HARNESS_COLD_START"), 2);
    assert_eq!(done(Phase::Change, "reserved_concurrency"), 1);
    assert_eq!(done(Phase::Restore, "reserved_concurrency"), 1);
    assert_eq!(done(Phase::Restore, "environment.HARNESS_COLD_START"), 1);
    assert!(audit.iter().all(|e| e.target == "aws" && e.endpoint == moto.url && e.resource == format!("function:{FUNCTION}")));
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
    let dashboard_series = t.metric_data(&d.widgets[0].metrics, now - Duration::from_secs(600), now + Duration::from_secs(60)).await.unwrap();
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
    let lines: Vec<String> = [fixture("logs/text-cold.log"), fixture("logs/text-warm-spaces.log"), fixture("logs/json-cold.log")]
        .iter()
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let events: Vec<InputLogEvent> =
        lines.iter().enumerate().map(|(i, l)| InputLogEvent::builder().timestamp(now + i as i64).message(l).build().unwrap()).collect();
    logs.put_log_events().log_group_name(&group).log_stream_name("s1").set_log_events(Some(events)).send().await.unwrap();

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
        .log_events(InputLogEvent::builder().timestamp(now + 100).message("REPORT RequestId: x\tDuration: n/a ms").build().unwrap())
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
    assert!(m.contains("credentials were rejected") && m.contains("GetFunctionConfiguration") && m.contains(&moto.url), "{m}");
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
    let cfg = harness::target::AwsConfig { tf_dir: None, tf_outputs: Some(file), endpoint: None, localstack: true };
    let run_dir = harness::run::RunDir::open(&dir.path().join("run")).unwrap();
    for var in ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL"] {
        std::env::remove_var(var);
    }
    let t = harness::target::aws::AwsTarget::from_config(&cfg, &run_dir).await.unwrap();
    assert_eq!(t.check_function().await.unwrap().state, "Active");
    assert_eq!(t.api_key().await.unwrap().expose(), API_KEY);
    let mut changes = t.changes().unwrap();
    changes.set_reserved_concurrency(Some(2)).await.unwrap();
    changes.restore().await.unwrap();
    let audit = AuditLog::read(&dir.path().join("run/audit.jsonl")).unwrap();
    assert_eq!(audit.len(), 4);
    assert!(audit.iter().all(|e| e.target == "localstack"), "{audit:?}");
}
