//! Doubles for the aws target's tests: [`Moto`], a real `moto_server` on a free loopback port (killed on
//! drop, and exiting by itself when this process dies: it watches its stdin), and [`Replay`], a loopback
//! HTTP server that answers with recorded responses in order and keeps the requests it received.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_config::{Region, SdkConfig};
use aws_sdk_apigateway::types::{Op, PatchOperation, ThrottleSettings};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_lambda::{
    primitives::Blob,
    types::{Environment, FunctionCode, Runtime},
};
use bytes::Bytes;
use harness::{
    platform::aws::{AuditLog, AwsOptions, AwsTarget, RetryPolicy},
    terraform::{AwsSettings, SecretRef, ALARM_ROLES},
};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub fn fixture(rel: &str) -> String {
    let p = root().join("fixtures/aws").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub const FUNCTION: &str = "perf-fixture";
/// The API key value `deploy` creates.
pub const API_KEY: &str = "perfkey0123456789abcdefghijklmno";
pub const REGION: &str = "us-east-1";

/// Settings as the Terraform module's outputs would give them, for a deployment at `endpoint`.
pub fn settings(endpoint: &str) -> AwsSettings {
    AwsSettings {
        region: REGION.into(),
        function_name: FUNCTION.into(),
        function_arn: None,
        function_alias: None,
        api_id: "unset".into(),
        api_url: format!("{endpoint}/perf"),
        api_stage: "perf".into(),
        usage_plan_id: "unset".into(),
        api_key: SecretRef::Env("UNSET_FOR_TEST".into()),
        log_group: format!("/aws/lambda/{FUNCTION}"),
        alarm_names: ALARM_ROLES
            .iter()
            .map(|r| (r.to_string(), format!("{FUNCTION}-{}", r.replace('_', "-"))))
            .collect(),
        dashboard_name: FUNCTION.into(),
        endpoint_url: Some(endpoint.into()),
        lambda_endpoint_url: None,
        source_name: "test settings".into(),
    }
}

/// Options for tests: static credentials, short backoff and waits, an audit log in `audit_dir`.
pub fn options(audit_dir: &Path) -> AwsOptions {
    AwsOptions {
        credentials: Some(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test")),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        settle_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        call_timeout: Duration::from_secs(20),
        invoke_timeout: Duration::from_secs(20),
        audit: Some(Arc::new(AuditLog::open(&audit_dir.join("audit.jsonl")).unwrap())),
        ..AwsOptions::default()
    }
}

pub async fn target(settings: AwsSettings, opts: AwsOptions) -> AwsTarget {
    AwsTarget::connect(settings, opts).await.unwrap()
}

/// A `moto_server` child process (started by `moto_boot.py`).
pub struct Moto {
    child: Child,
    pub url: String,
}

fn moto_python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_PYTHON") {
        return p.into();
    }
    let venv = root().join("target/tools/moto/bin/python");
    if venv.exists() {
        return venv;
    }
    let system = PathBuf::from("python3");
    let ok = Command::new(&system)
        .args(["-c", "import moto.server, flask, cbor2"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "moto_server not found: run scripts/setup.sh (installs moto[server] into target/tools/moto), or pip install \
         'moto[server]' cbor2, or set MOTO_PYTHON to a Python that has it"
    );
    system
}

impl Moto {
    /// Starts moto_server; `env` adds variables (`INITIAL_NO_AUTH_ACTION_COUNT=0` enforces credentials).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        let mut cmd = Command::new(moto_python());
        cmd.arg(root().join("harness/tests/aws_target/moto_boot.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start moto_server");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("http://127.0.0.1:") {
                    let _ = tx.send(Ok(line[at..].split_whitespace().next().unwrap_or_default().to_string()));
                } else if seen.len() < 4000 {
                    seen += &line;
                    seen.push('\n');
                }
            }
            let _ = tx.send(Err(seen));
        });
        let mut moto = Moto { child, url: String::new() };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(url)) => moto.url = url,
            Ok(Err(out)) => panic!("moto_server exited before listening:\n{out}"),
            Err(_) => panic!("moto_server did not report its address within 60 s"),
        }
        moto
    }

    /// Sends a raw query-protocol request (for IAM, which the harness has no SDK client for).
    pub fn query(&self, service: &str, form: &str) -> String {
        let hostport = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(hostport).unwrap();
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{service} {form}: {out}");
        out
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One recorded response.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn json(status: u16, body: &str) -> Recorded {
        Recorded { status, headers: vec![("content-type".into(), "application/json".into())], body: body.into() }
    }

    pub fn header(mut self, k: &str, v: &str) -> Recorded {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// A request the replay server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A loopback server answering with recorded responses in order.
pub struct Replay {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Replay {
    pub async fn start(responses: Vec<Recorded>) -> Replay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let queue = Arc::new(Mutex::new(VecDeque::from(responses)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (q, s) = (queue.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (q, s) = (q.clone(), s.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (q, s) = (q.clone(), s.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            s.lock().unwrap().push(Seen {
                                method: parts.method.to_string(),
                                path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                    .collect(),
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            let next = q.lock().unwrap().pop_front();
                            let r = next.unwrap_or_else(|| {
                                Recorded::json(599, r#"{"message":"replay: no recorded response left"}"#)
                            });
                            let mut b = Response::builder().status(r.status);
                            for (k, v) in &r.headers {
                                b = b.header(k, v);
                            }
                            Ok::<_, std::convert::Infallible>(b.body(Full::new(Bytes::from(r.body))).unwrap())
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Replay { url, seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// SDK configuration for `moto` with its test credentials.
pub async fn sdk(moto: &Moto) -> SdkConfig {
    aws_config::defaults(harness::platform::aws::behavior_version())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(&moto.url)
        .load()
        .await
}

/// What the Terraform module creates, created in moto for `function` (the Lambda function itself only when
/// `lambda`: the end-to-end test serves it from the local platform); returns the settings its outputs would give.
pub async fn deploy(moto: &Moto, function: &str, lambda: bool) -> AwsSettings {
    let role = "perf-fixture-lambda";
    moto.query("iam", &format!("Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument=%7B%7D"));
    let conf = sdk(moto).await;
    if lambda {
        aws_sdk_lambda::Client::new(&conf)
            .create_function()
            .function_name(function)
            .role(format!("arn:aws:iam::123456789012:role/{role}"))
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .code(FunctionCode::builder().zip_file(Blob::new(b"fixture".to_vec())).build())
            .environment(Environment::builder().variables("WORK_MS", "5").build())
            .memory_size(128)
            .send()
            .await
            .unwrap();
    }

    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let group = format!("/aws/lambda/{function}");
    logs.create_log_group().log_group_name(&group).send().await.unwrap();

    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let ns = format!("PerfAcceptance/{function}");
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
            .alarm_name(format!("{function}-{}", role.replace('_', "-")))
            .namespace(namespace)
            .metric_name(metric)
            .statistic(stat)
            .period(period)
            .evaluation_periods(1)
            .threshold(threshold)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold);
        if namespace == "AWS/Lambda" {
            req = req.dimensions(Dimension::builder().name("FunctionName").value(function).build());
        }
        req.send().await.unwrap();
    }
    let body = serde_json::json!({"widgets": [
        {"type": "metric", "properties": {"title": "Overview", "stat": "Sum", "period": 60, "region": REGION, "metrics": [
            ["AWS/Lambda", "Invocations", "FunctionName", function, {"id": "inv"}],
            [".", "Errors", ".", ".", {"id": "err"}],
            [{"expression": "100 * (1 - err / inv)", "label": "Success rate %", "id": "ok"}]
        ]}},
        {"type": "metric", "properties": {"title": "Cold start analysis", "period": 60, "region": REGION, "metrics": [
            [ns, "ColdStarts", {"stat": "Sum"}], [".", "InitDuration", {"stat": "p95"}]
        ]}}
    ]});
    cw.put_dashboard().dashboard_name(function).dashboard_body(body.to_string()).send().await.unwrap();

    let ag = aws_sdk_apigateway::Client::new(&conf);
    let api = ag.create_rest_api().name(function).send().await.unwrap().id.unwrap();
    let root = ag.get_resources().rest_api_id(&api).send().await.unwrap().items.unwrap()[0].id.clone().unwrap();
    ag.put_method()
        .rest_api_id(&api)
        .resource_id(&root)
        .http_method("ANY")
        .authorization_type("NONE")
        .api_key_required(true)
        .send()
        .await
        .unwrap();
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

    let mut s = settings(&moto.url);
    s.function_name = function.into();
    s.log_group = group;
    s.alarm_names =
        ALARM_ROLES.iter().map(|r| (r.to_string(), format!("{function}-{}", r.replace('_', "-")))).collect();
    s.dashboard_name = function.into();
    AwsSettings { api_id: api, usage_plan_id: plan, api_key: SecretRef::ApiGatewayKey(key), ..s }
}
