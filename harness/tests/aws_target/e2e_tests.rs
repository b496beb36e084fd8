//! End to end, as CI runs the localstack target: `moto_server` holds what the Terraform module creates
//! around the function (CloudWatch alarms and dashboard, the log group, the API Gateway stage and API key),
//! the embedded local platform serves the function itself (Lambda Invoke API and control plane, its front
//! door as the API URL), and the real `harness` binary runs a profile with `--target localstack --endpoint
//! <moto> --tf-outputs <file>`. The assertions are on `report.json` and the audit log: each runtime check is
//! decided from a figure the harness measured (with its n), checks that cannot apply are skipped with a
//! reason, a metric the platform cannot give fails with the reason, and every change is restored.
//!
//! Nothing in CI publishes Lambda's CloudWatch metrics, so the test publishes data points as the deployment
//! would, except `Throttles`: the scaling family must then be reported with one metric missing.

use std::{collections::BTreeMap, path::Path, process::Command, time::Instant};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use harness::{
    local::{ModeChoice, Platform, PlatformConfig},
    platform::aws::{AuditLog, Phase, State},
    terraform::SecretRef,
};
use serde_json::{json, Value};

use super::support::{self, fixture, root, Moto, Recorded, Replay, API_KEY};

pub(crate) const FUNCTION: &str = "fixture-rust";

/// Publishes one data point of each metric the module's alarms and dashboard read, except `Throttles`.
async fn publish_metrics(moto: &Moto) {
    let cw = aws_sdk_cloudwatch::Client::new(&support::sdk(moto).await);
    let fn_dim = Dimension::builder().name("FunctionName").value(FUNCTION).build();
    let custom = format!("PerfAcceptance/{FUNCTION}");
    let points: [(&str, &str, f64, bool); 7] = [
        (&custom, "ColdStarts", 2.0, false),
        (&custom, "InitDuration", 150.0, false),
        (&custom, "MaxMemoryUsedMB", 20.0, false),
        ("AWS/Lambda", "Invocations", 10.0, true),
        ("AWS/Lambda", "Duration", 5.0, true),
        ("AWS/Lambda", "Errors", 0.0, true),
        ("AWS/Lambda", "ConcurrentExecutions", 2.0, true),
    ];
    for (ns, name, value, dims) in points {
        let mut d =
            MetricDatum::builder().metric_name(name).value(value).timestamp(std::time::SystemTime::now().into());
        if dims {
            d = d.dimensions(fn_dim.clone());
        }
        cw.put_metric_data().namespace(ns).metric_data(d.build()).send().await.unwrap();
    }
}

pub(crate) fn outputs_file(
    dir: &Path,
    s: &harness::terraform::AwsSettings,
    platform: &Platform,
    moto: &Moto,
) -> std::path::PathBuf {
    outputs_file_with_alias(dir, s, platform, moto, None)
}

/// [`outputs_file`] naming `alias` as the function's alias.
pub(crate) fn outputs_file_with_alias(
    dir: &Path,
    s: &harness::terraform::AwsSettings,
    platform: &Platform,
    moto: &Moto,
    alias: Option<&str>,
) -> std::path::PathBuf {
    let SecretRef::ApiGatewayKey(key) = &s.api_key else { unreachable!("deploy creates an API Gateway key") };
    let out = |v: &str| json!({"sensitive": false, "type": "string", "value": v});
    let doc = json!({
        "region": out(&s.region), "function_name": out(FUNCTION), "function_alias": {"sensitive": false, "type": "string", "value": alias},
        "api_id": out(&s.api_id), "api_url": out(&format!("{}/{FUNCTION}", platform.front_door_http())),
        "api_stage": out(&s.api_stage), "usage_plan_id": out(&s.usage_plan_id),
        "api_key_secret": {"sensitive": true, "type": "string", "value": format!("apigateway-key:{key}")},
        "log_group": out(&s.log_group), "alarm_names": {"sensitive": false, "type": ["map", "string"], "value": s.alarm_names},
        "dashboard_name": out(&s.dashboard_name), "endpoint_url": out(&moto.url), "lambda_endpoint_url": out(&platform.invoke_url()),
    });
    let file = dir.join("outputs.json");
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    file
}

/// Runs the harness binary with `args` (the environment's AWS and HARNESS settings removed).
fn harness(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).current_dir(root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_") || k.starts_with("HARNESS_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run the harness binary")
}

pub(crate) async fn start_platform() -> Platform {
    let mut cfg = PlatformConfig::from_file(&root().join("fixtures/targets/local.yaml")).unwrap();
    // Processes start faster than containers on a loaded CI box; the procedures under test are the aws
    // target's, which see only the Invoke API either way.
    cfg.mode = ModeChoice::Process;
    cfg.api_key = Some(API_KEY.into());
    // The API URL's throttle is what `deploy` configures in API Gateway (usage plan 50/s, burst 100).
    cfg.stage_rate_limit = 50.0;
    cfg.stage_burst_limit = 100;
    Platform::start(cfg).await.expect("local platform starts")
}

/// Arguments of `harness run` of the test profile `profile` (in harness/tests/data) on the localstack target:
/// `--endpoint` when given, the outputs file `outputs`, the run directory `run`, then `extra`.
pub(crate) fn localstack_args(
    profile: &str,
    endpoint: Option<&str>,
    outputs: &Path,
    run: &Path,
    extra: &[&str],
) -> Vec<String> {
    let profile = root().join("harness/tests/data").join(profile);
    let mut args: Vec<String> =
        ["run", "--profile", profile.to_str().unwrap(), "--target", "localstack"].map(String::from).into();
    if let Some(e) = endpoint {
        args.extend(["--endpoint".to_string(), e.to_string()]);
    }
    args.extend(["--tf-outputs".into(), outputs.display().to_string(), "--out".into(), run.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// [`harness`] with `args`, off the async runtime.
async fn run_harness(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || harness(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

fn checks(report: &Value) -> BTreeMap<String, Value> {
    report["checks"].as_array().unwrap().iter().map(|c| (c["id"].as_str().unwrap().to_string(), c.clone())).collect()
}

fn assert_every_change_restored(audit: &Path) {
    let entries = AuditLog::read(audit).unwrap();
    assert!(!entries.is_empty(), "the run changed nothing: {}", audit.display());
    let mut last: BTreeMap<&str, (Phase, State)> = BTreeMap::new();
    for e in &entries {
        assert_ne!(e.state, State::Failed, "audit entry failed: {e:?}");
        last.insert(&e.setting, (e.phase, e.state));
    }
    for (setting, (phase, state)) in &last {
        assert_eq!((*phase, *state), (Phase::Restore, State::Done), "{setting} was not restored last: {entries:#?}");
    }
    for s in ["environment.HARNESS_COLD_START", "reserved_concurrency", "memory_size"] {
        assert!(last.contains_key(s), "no change of {s} in the audit log");
    }
}

pub(crate) async fn assert_function_as_before(platform: &Platform) {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(harness::platform::aws::behavior_version())
        .region(aws_sdk_lambda::config::Region::new(support::REGION))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(platform.invoke_url())
        .build();
    let c = aws_sdk_lambda::Client::from_conf(conf);
    let f = c.get_function_configuration().function_name(FUNCTION).send().await.unwrap();
    assert_eq!(f.memory_size(), Some(128));
    let vars = f.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert!(!vars.contains_key("HARNESS_COLD_START"), "{vars:?}");
    let r = c.get_function_concurrency().function_name(FUNCTION).send().await.unwrap();
    assert_eq!(r.reserved_concurrent_executions(), None);
}

/// The SEC checks that do not pass against moto, each for a reason the report states: moto's CloudWatch
/// serves unsigned and wrongly signed requests (authentication fails with 1 endpoint, before and after
/// tuning, while the API URL refuses without and with a wrong key), and the outputs' API URL is plain HTTP
/// only, so TLS overhead is not measured.
fn assert_sec_on_moto(by_id: &BTreeMap<String, Value>) {
    for id in ["E2E.sec_auth", "E2E.sec_after_tuning"] {
        let c = &by_id[id];
        assert_eq!((c["status"].as_str(), c["measured"]["value"].as_f64()), (Some("failed"), Some(1.0)), "{id}: {c:#}");
    }
    let notes = by_id["E2E.sec_auth"]["notes"].to_string();
    assert!(
        notes.contains("auth: API URL http://127.0.0.1:")
            && notes.contains("refuses without/wrong credential, serves the right one (403/403/200)"),
        "{notes}"
    );
    assert!(
        notes.contains("CloudWatch API (IAM-signed)") && notes.contains("answered 200 to an unsigned request"),
        "{notes}"
    );
    assert!(!notes.contains(API_KEY), "the API key is redacted from the notes");
    let tls = &by_id["E2E.sec_tls"];
    assert_eq!(tls["status"], "failed", "{tls:#}");
    assert!(tls["measured"].is_null() && tls["reason"].as_str().unwrap().contains("no HTTPS route"), "{tls:#}");
    assert_eq!(by_id["E2E.sec_audit"]["measured"]["n"], 1, "one tuning change looked up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_run_on_localstack_measures_every_runtime_check() {
    let t0 = Instant::now();
    let moto = Moto::start(&[]);
    let settings = support::deploy(&moto, FUNCTION, false).await;
    publish_metrics(&moto).await;
    let platform = start_platform().await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = outputs_file(dir.path(), &settings, &platform, &moto);
    let run = dir.path().join("run");
    let out = run_harness(localstack_args("localstack-e2e.yaml", Some(&moto.url), &outputs, &run, &[])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "harness run took {:.1} s (whole test so far {:.1} s)\n{stdout}",
        t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code 1 (some checks fail by design)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for m in std::fs::read_dir(run.join("measurements")).unwrap().flatten() {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(m.path()).unwrap()).unwrap_or_default();
        let at = |k: &str| v[k].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if let (Some(a), Some(b)) = (at("started"), at("finished")) {
            eprintln!(
                "{}: {:.1} s",
                v["procedure"].as_str().unwrap_or("?"),
                (b - a).num_milliseconds() as f64 / 1000.0
            );
        }
    }
    let text = std::fs::read_to_string(run.join("report.json")).unwrap();
    assert!(!text.contains("not implemented") && !text.contains("no measurement procedure"), "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["target"], "localstack");
    let by_id = checks(&report);
    let status =
        |id: &str| by_id.get(id).unwrap_or_else(|| panic!("no check {id}"))["status"].as_str().unwrap().to_string();

    for (id, c) in by_id.iter().filter(|(id, _)| id.starts_with("E2E.sec_")) {
        eprintln!("{id}: {} {}", c["status"], c["reason"]);
    }
    let measured_pass = [
        "E2E.cold_start_client",
        "E2E.cold_start_init",
        "E2E.image_size",
        "E2E.warm_start_client",
        "E2E.warm_start_duration",
        "E2E.cold_start_rate",
        "E2E.scale_up",
        "E2E.concurrency_limit",
        "E2E.concurrency_throttled",
        "E2E.memory_utilization",
        "E2E.starvation",
        "E2E.memory_sweep",
        "E2E.high_load_availability",
        "E2E.monitoring_cold_warm",
        "E2E.monitoring_resources",
        "E2E.monitoring_dashboard",
        "E2E.monitoring_alarms",
        "E2E.sec_secrets",
        "E2E.sec_rate_limit",
        "E2E.sec_audit",
    ];
    for id in measured_pass {
        let c = &by_id[id];
        assert_eq!(status(id), "passed", "{id}: {c:#}");
        assert!(c["measured"]["n"].as_u64().unwrap_or(0) >= 1, "{id} passed without a measured n: {c:#}");
    }
    assert_eq!(by_id["E2E.cold_start_client"]["measured"]["n"], 3);
    // Warm samples are rejected only when an environment was retired mid-series; min_samples (5) guards n.
    assert!(by_id["E2E.warm_start_client"]["measured"]["n"].as_u64().unwrap() <= 10);

    let scaling = &by_id["E2E.monitoring_scaling"];
    assert_eq!(
        (status("E2E.monitoring_scaling").as_str(), scaling["measured"]["value"].as_f64()),
        ("failed", Some(1.0)),
        "{scaling:#}"
    );
    assert!(scaling["notes"].to_string().contains("Throttles"), "{scaling:#}");

    let cpu = &by_id["E2E.cpu_utilization"];
    assert_eq!(status("E2E.cpu_utilization"), "failed", "{cpu:#}");
    assert!(cpu["measured"].is_null() && cpu["reason"].as_str().unwrap().contains("CPU"), "{cpu:#}");

    for id in ["E2E.cold_start_baseline", "E2E.scale_down", "E2E.monitoring_build", "E2E.build_time"] {
        let c = &by_id[id];
        assert_eq!(status(id), "skipped", "{id}: {c:#}");
        assert!(c["reason"].as_str().unwrap().len() > 20, "{id} skipped without a reason: {c:#}");
    }
    assert_sec_on_moto(&by_id);
    assert_eq!(by_id.len(), measured_pass.len() + 9, "every check of the profile is accounted for");

    assert_every_change_restored(&run.join("audit.jsonl"));
    assert_function_as_before(&platform).await;
    let run_id = platform.run_id().to_string();
    platform.shutdown().await;
    let left = harness::local::leftovers(&run_id);
    assert_eq!((left.containers, left.processes), (0, 0), "{left:?}");
    eprintln!("e2e test took {:.1} s", t0.elapsed().as_secs_f64());
}

/// Provisioned concurrency on the aws target: set on the outputs' alias through the SDK, awaited READY, the
/// traffic's first invocations land on environments initialized ahead (not cold: 0%), and the setting is
/// restored afterwards (audit log, and the function has none left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_concurrency_is_set_measured_and_restored() {
    let moto = Moto::start(&[]);
    let settings = support::deploy(&moto, FUNCTION, false).await;
    let platform = start_platform().await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = outputs_file_with_alias(dir.path(), &settings, &platform, &moto, Some("live"));
    let run = dir.path().join("run");
    let out = run_harness(localstack_args("localstack-provisioned.yaml", Some(&moto.url), &outputs, &run, &[])).await;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let c = &checks(&report)["PC.with"];
    assert_eq!(c["status"], "passed", "{c:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(c["notes"].to_string().contains("provisioned concurrency 3 set on fixture-rust:live"), "{c:#}");
    let entries = AuditLog::read(&run.join("audit.jsonl")).unwrap();
    let last = entries.iter().rev().find(|e| e.setting == "provisioned_concurrency.live").expect("audited");
    assert_eq!((last.phase, last.state), (Phase::Restore, State::Done), "{entries:#?}");
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(harness::platform::aws::behavior_version())
        .region(aws_sdk_lambda::config::Region::new(support::REGION))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(platform.invoke_url())
        .build();
    let left = aws_sdk_lambda::Client::from_conf(conf)
        .get_provisioned_concurrency_config()
        .function_name(FUNCTION)
        .qualifier("live")
        .send()
        .await;
    assert!(
        left.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_provisioned_concurrency_config_not_found_exception()),
        "provisioned concurrency left on the function: {left:?}"
    );
    platform.shutdown().await;
}

/// Runs `--only only` of the e2e profile on the localstack target whose every service is at `endpoint`;
/// returns the checks of report.json (the run must end with exit code 1) and the run directory.
async fn run_only_at(endpoint: &str, only: &str, dir: &Path) -> (Vec<Value>, std::path::PathBuf) {
    let s = support::settings(endpoint);
    let out = |v: &str| json!({"sensitive": false, "type": "string", "value": v});
    let doc = json!({
        "region": out(&s.region), "function_name": out(&s.function_name), "api_id": out("a1"), "api_url": out(&s.api_url),
        "api_stage": out("perf"), "usage_plan_id": out("u1"), "api_key_secret": {"sensitive": true, "type": "string", "value": "env:UNSET_KEY"},
        "log_group": out(&s.log_group), "alarm_names": {"sensitive": false, "type": ["map", "string"], "value": s.alarm_names},
        "dashboard_name": out(&s.dashboard_name), "endpoint_url": out(endpoint),
    });
    let file = dir.join("outputs.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let run = dir.join("run");
    let o = run_harness(localstack_args("localstack-e2e.yaml", None, &file, &run, &["--only", only])).await;
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    (report["checks"].as_array().unwrap().clone(), run)
}

/// Credentials the endpoint rejects: every check is an error naming the rejected credentials, the
/// operation and the endpoint; nothing passes and nothing is changed.
#[tokio::test]
async fn harness_run_with_rejected_credentials_errors_naming_them() {
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let dir = tempfile::tempdir().unwrap();
    let (checks, run) = run_only_at(&moto.url, "E2E.cold_start_client,E2E.concurrency_limit", dir.path()).await;
    assert_eq!(checks.len(), 2);
    for c in &checks {
        let reason = c["reason"].as_str().unwrap();
        assert_eq!(c["status"], "error", "{c:#}");
        assert!(
            reason.contains("credentials were rejected")
                && reason.contains("GetFunctionConfiguration")
                && reason.contains(&moto.url),
            "{reason}"
        );
    }
    let audit = run.join("audit.jsonl");
    assert!(
        !audit.exists() || AuditLog::read(&audit).unwrap().is_empty(),
        "nothing may be changed with rejected credentials"
    );
}

/// A function in state Failed: the check is an error with the function's StateReasonCode, before any
/// change or invocation.
#[tokio::test]
async fn harness_run_on_a_failed_function_errors_with_its_reason_code() {
    let replay =
        Replay::start(vec![Recorded::json(200, &fixture("responses/get-function-configuration-failed.json"))]).await;
    let dir = tempfile::tempdir().unwrap();
    let (checks, _) = run_only_at(&replay.url, "E2E.cold_start_client", dir.path()).await;
    let reason = checks[0]["reason"].as_str().unwrap();
    assert_eq!(checks[0]["status"], "error", "{:#}", checks[0]);
    assert!(reason.contains("is in state Failed (ImageAccessDenied)"), "{reason}");
    let seen = replay.seen();
    assert_eq!(seen.len(), 1, "no change and no invocation after the state was read: {seen:?}");
}

/// A control plane that keeps throttling: retried with backoff up to the bounded number of attempts, then
/// the check is an error saying so.
#[tokio::test]
async fn harness_run_on_a_throttling_control_plane_errors_after_bounded_retries() {
    let throttled = || {
        Recorded::json(429, &fixture("responses/too-many-requests.json"))
            .header("x-amzn-ErrorType", "TooManyRequestsException")
    };
    let replay = Replay::start((0..12).map(|_| throttled()).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let (checks, _) = run_only_at(&replay.url, "E2E.cold_start_client", dir.path()).await;
    let reason = checks[0]["reason"].as_str().unwrap();
    assert_eq!(checks[0]["status"], "error", "{:#}", checks[0]);
    assert!(
        reason.contains("still throttled after 6 attempts") && reason.contains("GetFunctionConfiguration"),
        "{reason}"
    );
    assert_eq!(replay.seen().len(), 6, "bounded by the default RetryPolicy (6 attempts)");
}
