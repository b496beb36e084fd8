//! The security checks and the `security` procedure against tiny hyper servers: a fake platform with a
//! front door (HTTP and HTTPS with a CA made per test, `x-api-key`, a token-bucket throttle) and a `/metrics`
//! endpoint behind a bearer token, each behaviour switchable so that every check is shown to detect what it
//! should: an endpoint without auth, a secret in a label and in an env var, a stage without throttling, an
//! audit log missing an entry, controls broken by tuning.

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use harness::{
    measure::Metric,
    run_dir::RunDir,
    security::{
        self,
        audit::{self, ConfigChange},
        auth::{self, Credential, Protected},
        http::HttpClient,
        ratelimit::{self, Throttle},
        tls, Error, FrontDoor, MetricsFormat, MetricsSource, SecuritySubject, Surface,
    },
};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

const KEY: &str = "fd-key-7Hq2Lx9Vb4";
const TOKEN: &str = "metrics-token-3Kp8Wz1Rt6";

/// What the fake platform does; shared by its listeners and switchable while it runs.
#[derive(Debug, Clone)]
struct Behaviour {
    api_key: Option<String>,
    metrics_token: Option<String>,
    throttle: Option<Throttle>,
    exposition: String,
}

impl Behaviour {
    fn secure(throttle: Throttle) -> Behaviour {
        Behaviour {
            api_key: Some(KEY.into()),
            metrics_token: Some(TOKEN.into()),
            throttle: Some(throttle),
            exposition: "# HELP lambda_invocations_total Invocations.\n# TYPE lambda_invocations_total counter\n\
                         lambda_invocations_total{function=\"fixture-rust\",instance=\"127.0.0.1:9000\"} 42\n\
                         lambda_duration_seconds_bucket{function=\"fixture-rust\",le=\"0.005\"} 3\n"
                .into(),
        }
    }
}

struct State {
    behaviour: Behaviour,
    tokens: f64,
    last: Instant,
}

impl State {
    /// Token bucket: refill by elapsed time, take one if there is one.
    fn admit(&mut self) -> bool {
        let Some(t) = self.behaviour.throttle else { return true };
        let now = Instant::now();
        self.tokens = (self.tokens + t.rate * (now - self.last).as_secs_f64()).min(f64::from(t.burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder().status(status).body(Full::new(body.into())).expect("response")
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (auth, key) = (header("authorization"), header("x-api-key"));
    let _ = req.into_body().collect().await;
    let mut s = state.lock().expect("state");
    let b = s.behaviour.clone();
    Ok(match path.as_str() {
        "/metrics" => match &b.metrics_token {
            Some(t) if auth.as_deref() != Some(&format!("Bearer {t}")) => reply(401, "unauthorized"),
            _ => reply(200, b.exposition),
        },
        "/invoke" => match &b.api_key {
            Some(k) if key.as_deref() != Some(k.as_str()) => reply(403, "{\"message\":\"Forbidden\"}"),
            _ if !s.admit() => reply(429, "{\"message\":\"Too Many Requests\"}"),
            _ => reply(200, "{\"ok\":true}"),
        },
        _ => reply(404, "not found"),
    })
}

/// The fake platform: plain and TLS listeners on loopback, served from their own thread and runtime (so the
/// client's scheduling does not shift the throttle's clock); stopped and joined on drop.
struct Fake {
    http: SocketAddr,
    https: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}

impl Fake {
    fn start(behaviour: Behaviour) -> Fake {
        let tokens = behaviour.throttle.map_or(0.0, |t| f64::from(t.burst));
        let state = Arc::new(Mutex::new(State { behaviour, tokens, last: Instant::now() }));
        let (acceptor, ca_pem) = tls_acceptor();
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let secure = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (http, https) = (plain.local_addr().unwrap(), secure.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                plain.set_nonblocking(true).unwrap();
                secure.set_nonblocking(true).unwrap();
                let plain = tokio::net::TcpListener::from_std(plain).unwrap();
                let secure = tokio::net::TcpListener::from_std(secure).unwrap();
                let serve = async {
                    loop {
                        let st = st.clone();
                        tokio::select! {
                            Ok((tcp, _)) = plain.accept() => {
                                tokio::spawn(async move {
                                    let svc = service_fn(move |r| handle(r, st.clone()));
                                    let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                                });
                            }
                            Ok((tcp, _)) = secure.accept() => {
                                let acceptor = acceptor.clone();
                                tokio::spawn(async move {
                                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                                    let svc = service_fn(move |r| handle(r, st.clone()));
                                    let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
                                });
                            }
                        }
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Fake { http, https, ca_pem, state, stop: Some(stop), thread: Some(thread) }
    }

    fn http_base(&self) -> String {
        format!("http://{}", self.http)
    }

    fn https_base(&self) -> String {
        format!("https://127.0.0.1:{}", self.https.port())
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap().behaviour);
    }

    fn front_door(&self) -> FrontDoor {
        FrontDoor::new(&self.http_base(), &self.https_base(), "/invoke", "x-api-key", KEY, Some("{}"))
    }

    fn metrics(&self) -> Protected {
        Protected {
            name: "platform /metrics".into(),
            url: format!("{}/metrics", self.http_base()),
            credential: Credential::Bearer { token: TOKEN.into() },
            body: None,
        }
    }

    fn client(&self) -> HttpClient {
        HttpClient::new(Some(self.ca_pem.as_bytes())).unwrap()
    }
}

fn quick_plan() -> ratelimit::Plan {
    ratelimit::Plan {
        burst_duration: Duration::from_secs(2),
        within_duration: Duration::from_secs(1),
        ..Default::default()
    }
}

// ------------------------------------------------------------------------------------------------ (a) auth

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_flags_exactly_the_endpoint_without_auth() {
    let fake = Fake::start(Behaviour::secure(Throttle { rate: 1000.0, burst: 1000 }));
    let endpoints = vec![fake.metrics(), fake.front_door().http, fake.front_door().https];
    let report = auth::check(&fake.client(), &endpoints).await.unwrap();
    assert_eq!(report.violations(), 0, "{report:#?}");
    assert_eq!(
        report.endpoints.iter().map(|e| (e.none, e.wrong, e.right)).collect::<Vec<_>>(),
        vec![(401, 401, 200), (403, 403, 200), (403, 403, 200)]
    );

    fake.set(|b| b.metrics_token = None);
    let report = auth::check(&fake.client(), &endpoints).await.unwrap();
    assert_eq!(report.violations(), 1);
    let open = &report.endpoints[0];
    assert_eq!(open.name, "platform /metrics");
    assert!(open.problems[0].contains("without a credential"), "{:?}", open.problems);
}

#[tokio::test]
async fn auth_on_an_unreachable_endpoint_is_an_error_not_a_pass() {
    let fake = Fake::start(Behaviour::secure(Throttle { rate: 1000.0, burst: 1000 }));
    let mut ep = fake.metrics();
    ep.url = "http://127.0.0.1:1/metrics".into();
    assert!(matches!(auth::check(&fake.client(), &[ep]).await, Err(Error::Unreachable { .. })));
    assert!(matches!(auth::check(&fake.client(), &[]).await, Err(Error::Measurement(_))));
}

// ------------------------------------------------------------------------------------------------ (b) rate limit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_stage_holds_under_burst() {
    let th = Throttle { rate: 10.0, burst: 5 };
    let fake = Fake::start(Behaviour::secure(th));
    let r = ratelimit::check(&fake.client(), &fake.front_door().http, Some(th), &quick_plan()).await.unwrap();
    assert!(r.violations.is_empty(), "{:#?}", RateSummary(&r));
    assert!(r.throttled > 0 && r.accepted > 0);
    assert_eq!(r.sent, r.accepted + r.throttled);
    assert_eq!((r.within.1, r.probe), (0, Some(200)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_without_throttling_is_detected() {
    let th = Throttle { rate: 10.0, burst: 5 };
    let fake = Fake::start(Behaviour { throttle: None, ..Behaviour::secure(th) });
    let r = ratelimit::check(&fake.client(), &fake.front_door().http, Some(th), &quick_plan()).await.unwrap();
    assert_eq!(r.throttled, 0);
    assert!(r.accepted as f64 >= 2.0 * r.predicted, "{:#?}", RateSummary(&r));
    assert!(r.violations.iter().any(|v| v.starts_with("no 429")), "{:#?}", r.violations);
    assert!(r.violations.iter().any(|v| v.starts_with("accepted")), "{:#?}", r.violations);

    let none = ratelimit::check(&fake.client(), &fake.front_door().http, None, &quick_plan()).await.unwrap();
    assert_eq!(none.violations, vec!["the stage has no throttle (rate and burst) configured".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_with_ten_times_the_configured_burst_is_detected() {
    let declared = Throttle { rate: 10.0, burst: 5 };
    let fake = Fake::start(Behaviour::secure(Throttle { rate: 10.0, burst: 50 }));
    let r = ratelimit::check(&fake.client(), &fake.front_door().http, Some(declared), &quick_plan()).await.unwrap();
    assert!(r.throttled > 0);
    assert!(r.violations.iter().any(|v| v.starts_with("accepted")), "{:#?}", RateSummary(&r));
}

/// The report without its request log, for failure messages.
struct RateSummary<'a>(&'a ratelimit::RateLimitReport);

impl std::fmt::Debug for RateSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        write!(f, "sent {} accepted {} throttled {} predicted {} window {} 2nd half {:?} within {:?} probe {:?} violations {:?}",
            r.sent, r.accepted, r.throttled, r.predicted, r.window_s, r.second_half, r.within, r.probe, r.violations)
    }
}

// ------------------------------------------------------------------------------------------------ (c) TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_overhead_is_measured_in_both_modes_with_an_interval() {
    let fake = Fake::start(Behaviour::secure(Throttle { rate: 100_000.0, burst: 100_000 }));
    let door = fake.front_door();
    let plan = tls::Plan { pairs: 30, warmup: 3, pace: None, ..Default::default() };
    let r = tls::measure(&fake.client(), &door.http, &door.https, &plan).await.unwrap();
    for o in [&r.keep_alive, &r.new_connection] {
        assert_eq!(o.n, 30);
        assert!(o.ci_low <= o.overhead_pct && o.overhead_pct <= o.ci_high, "{o:?}");
        assert!(o.http_median_ms > 0.0 && o.https_median_ms > 0.0);
    }
    assert_eq!(r.samples.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_overhead_refuses_to_compare_throttled_answers() {
    let fake = Fake::start(Behaviour::secure(Throttle { rate: 0.001, burst: 1 }));
    let door = fake.front_door();
    let err = tls::measure(
        &fake.client(),
        &door.http,
        &door.https,
        &tls::Plan { pairs: 10, warmup: 0, pace: None, ..Default::default() },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("answered 429"), "{err}");
    let slow =
        tls::Plan { pairs: 100, warmup: 0, pace: Some(Duration::from_secs(1)), max_duration: Duration::from_secs(60) };
    let err = tls::measure(&fake.client(), &door.http, &door.https, &slow).await.unwrap_err();
    assert!(err.to_string().contains("raise the test stage's rate limit"), "{err}");
}

/// The figure for the record: `cargo test --release -p harness --test security_checks -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints the TLS overhead against a local hyper HTTP+HTTPS server"]
async fn tls_overhead_figure() {
    let fake = Fake::start(Behaviour::secure(Throttle { rate: 1e9, burst: 1_000_000_000 }));
    let door = fake.front_door();
    let r = tls::measure(
        &fake.client(),
        &door.http,
        &door.https,
        &tls::Plan { pairs: 1000, warmup: 50, pace: None, ..Default::default() },
    )
    .await
    .unwrap();
    for o in [&r.keep_alive, &r.new_connection] {
        println!(
            "TLS overhead {}: {:+.1}% [95% CI {:+.1}%, {:+.1}%], median HTTP {:.3} ms, HTTPS {:.3} ms, n={}",
            o.mode, o.overhead_pct, o.ci_low, o.ci_high, o.http_median_ms, o.https_median_ms, o.n
        );
    }
}

// ------------------------------------------------------------------------------------------------ (d) audit

#[test]
fn an_audit_log_missing_an_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let now = chrono::Utc::now();
    let changes = vec![
        ConfigChange {
            time: now,
            function: "fixture-rust".into(),
            field: "MemorySize".into(),
            from: json!(128),
            to: json!(512),
        },
        ConfigChange {
            time: now,
            function: "fixture-rust".into(),
            field: "ReservedConcurrency".into(),
            from: json!(null),
            to: json!(10),
        },
    ];
    let line =
        json!({"time": now, "key": "k1", "function": "fixture-rust", "field": "MemorySize", "from": 128, "to": 512});
    std::fs::write(&log, format!("{line}\n")).unwrap();
    let r = audit::check(&changes, &log, audit::Window::default()).unwrap();
    assert_eq!((r.changes, r.entries), (2, 1));
    assert_eq!(r.missing, vec![changes[1].clone()]);
}

// ------------------------------------------------------------------------------------------------ procedure

/// What the fake's tuning does besides changing the memory size.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tuning {
    /// Changes memory, audits it.
    Clean,
    /// Changes memory and concurrency, audits only memory, and opens /metrics (a broken control).
    Careless,
}

struct FakeSubject {
    fake: Fake,
    declared: Throttle,
    env: serde_json::Value,
    tuning: Tuning,
    audit_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeSubject {
    fn new(behaviour: Behaviour, env: serde_json::Value, tuning: Tuning) -> FakeSubject {
        let declared = behaviour.throttle.unwrap();
        let dir = tempfile::tempdir().unwrap();
        FakeSubject {
            fake: Fake::start(behaviour),
            declared,
            env,
            tuning,
            audit_log: dir.path().join("audit.jsonl"),
            _dir: dir,
        }
    }

    fn audit(&self, c: &ConfigChange) -> Result<(), Error> {
        use std::io::Write;
        let line =
            json!({"time": c.time, "key": "k1", "function": c.function, "field": c.field, "from": c.from, "to": c.to});
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.audit_log)
            .map_err(|e| Error::Subject(e.to_string()))?;
        writeln!(f, "{line}").map_err(|e| Error::Subject(e.to_string()))
    }
}

impl SecuritySubject for FakeSubject {
    fn surface(&self) -> Surface {
        Surface {
            metrics: vec![MetricsSource { endpoint: self.fake.metrics(), format: MetricsFormat::Exposition }],
            front_door: self.fake.front_door(),
            ca_pem: Some(self.fake.ca_pem.clone().into_bytes()),
            throttle: Some(self.declared),
            audit_log: self.audit_log.clone(),
            other_credentials: Vec::new(),
        }
    }

    async fn function_config(&self) -> Result<String, Error> {
        Ok(json!({"FunctionName": "fixture-rust", "MemorySize": 128, "Environment": {"Variables": self.env}})
            .to_string())
    }

    async fn apply_tuning(&self) -> Result<Vec<ConfigChange>, Error> {
        let at = chrono::Utc::now();
        let memory = ConfigChange {
            time: at,
            function: "fixture-rust".into(),
            field: "MemorySize".into(),
            from: json!(128),
            to: json!(512),
        };
        self.audit(&memory)?;
        if self.tuning == Tuning::Clean {
            return Ok(vec![memory]);
        }
        let concurrency = ConfigChange {
            time: at,
            function: "fixture-rust".into(),
            field: "ReservedConcurrency".into(),
            from: json!(null),
            to: json!(20),
        };
        self.fake.set(|b| b.metrics_token = None);
        Ok(vec![memory, concurrency])
    }
}

fn params() -> harness::criteria::Params {
    let mut p = harness::criteria::Params::new();
    for (k, v) in [
        ("burst_seconds", json!(1.5)),
        ("within_seconds", json!(1)),
        ("tls_pairs", json!(20)),
        ("tls_warmup", json!(2)),
    ] {
        p.insert(k.into(), v);
    }
    p
}

fn value(set: &harness::measure::MeasurementSet, name: &str) -> (f64, u64) {
    match &set.metrics[name] {
        Metric::Value { value, n, .. } => (*value, *n),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procedure_on_a_sound_subject_measures_every_metric_and_finds_nothing() {
    let subject = FakeSubject::new(
        Behaviour::secure(Throttle { rate: 40.0, burst: 20 }),
        json!({"LOG_LEVEL": "info"}),
        Tuning::Clean,
    );
    let out = tempfile::tempdir().unwrap();
    let dir = RunDir::open(out.path()).unwrap();
    let set = security::measure(&subject, &params(), &dir, "fake").await.unwrap();
    for name in harness::criteria::catalog::CATALOG.iter().filter(|d| d.procedure == "security").map(|d| d.metric) {
        assert!(set.metrics.contains_key(name), "{name} missing");
    }
    assert_eq!(value(&set, "unauthenticated_access"), (0.0, 3));
    assert_eq!(value(&set, "secret_findings").0, 0.0, "{:#?}", set.notes);
    assert_eq!(value(&set, "rate_limit_violations").0, 0.0, "{:#?}", set.notes);
    assert_eq!(value(&set, "audit_missing"), (0.0, 1));
    assert_eq!(value(&set, "controls_after_tuning"), (0.0, 3));
    assert_eq!(value(&set, "findings_after_tuning").0, 0.0);
    assert!(matches!(set.metrics["tls_overhead"], Metric::Value { n: 20, ci_low: Some(_), ci_high: Some(_), .. }));
    assert!(set.raw.iter().any(|p| p.ends_with("tls_samples.csv")));
    for p in &set.raw {
        let text = std::fs::read_to_string(out.path().join(p)).unwrap();
        assert!(!text.contains(KEY) && !text.contains(TOKEN), "{} holds a credential", p.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procedure_finds_planted_secrets_missing_audit_and_controls_broken_by_tuning() {
    let label_secret = "ghp_Zr8Kq2Xw7Lm4Np1Vt6Yb3Hc9Jd5Fs0Ga8Qe2";
    let env_secret = "s3cr3t-Pa55w0rd";
    let mut behaviour = Behaviour::secure(Throttle { rate: 40.0, burst: 20 });
    behaviour
        .exposition
        .push_str(&format!("lambda_errors_total{{function=\"fixture-rust\",deploy_token=\"{label_secret}\"}} 1\n"));
    let subject =
        FakeSubject::new(behaviour, json!({"LOG_LEVEL": "info", "DB_PASSWORD": env_secret}), Tuning::Careless);
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("previous-report.md"), format!("called the front door with x-api-key: {KEY}\n"))
        .unwrap();
    let dir = RunDir::open(out.path()).unwrap();
    let set = security::measure(&subject, &params(), &dir, "fake").await.unwrap();

    assert_eq!(value(&set, "unauthenticated_access").0, 0.0, "metrics are open only after tuning");
    assert_eq!(value(&set, "secret_findings").0, 3.0, "{:#?}", set.notes);
    assert_eq!(value(&set, "audit_missing"), (1.0, 2));
    assert_eq!(value(&set, "controls_after_tuning").0, 2.0, "auth and secrets fail after tuning: {:#?}", set.notes);
    assert!(value(&set, "findings_after_tuning").0 >= 3.0);
    let notes = set.notes.join("\n");
    assert!(notes.contains("lambda_errors_total{deploy_token}"), "{notes}");
    assert!(notes.contains("$.Environment.Variables.DB_PASSWORD"), "{notes}");
    assert!(notes.contains("previous-report.md"), "{notes}");
    assert!(notes.contains("audit missing: fixture-rust ReservedConcurrency"), "{notes}");
    let mut written = notes.clone();
    for p in &set.raw {
        written.push_str(&std::fs::read_to_string(out.path().join(p)).unwrap());
    }
    for secret in [label_secret, env_secret, KEY, TOKEN] {
        assert!(!written.contains(secret), "a note or raw file holds {secret}");
    }
}

/// A subject shaped like the aws target's: one front door URL (plain HTTP only), no scrapeable metrics
/// endpoint, an IAM-signed API it probes itself (here: one that served an unsigned request), log events to
/// scan, and no second scheme for TLS.
struct OneSchemeSubject(FakeSubject);

impl SecuritySubject for OneSchemeSubject {
    fn surface(&self) -> Surface {
        let mut s = self.0.surface();
        s.metrics.clear();
        s.front_door.https = s.front_door.http.clone();
        s
    }

    async fn function_config(&self) -> Result<String, Error> {
        self.0.function_config().await
    }

    async fn apply_tuning(&self) -> Result<Vec<ConfigChange>, Error> {
        self.0.apply_tuning().await
    }

    async fn signed_endpoints(&self) -> Result<Vec<auth::EndpointResult>, Error> {
        Ok(vec![auth::EndpointResult {
            name: "signed API".into(),
            url: "http://127.0.0.1:9/".into(),
            none: 200,
            wrong: 403,
            right: 200,
            problems: vec!["answered 200 to an unsigned request".into()],
        }])
    }

    async fn extra_texts(&self) -> Result<Vec<(String, String)>, Error> {
        Ok(vec![("log group /aws/lambda/f".into(), format!("START\nconnecting with DB_PASSWORD={LOG_SECRET}\nEND"))])
    }

    fn tls_unavailable(&self) -> Option<String> {
        Some("the API URL is served over plain HTTP only".into())
    }

    fn notes(&self) -> Vec<String> {
        vec!["subject: one scheme".into()]
    }
}

const LOG_SECRET: &str = "hunter2-Xq9vLr7T";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procedure_counts_signed_endpoints_scans_extra_texts_and_reports_tls_missing_on_one_scheme() {
    let subject = OneSchemeSubject(FakeSubject::new(
        Behaviour::secure(Throttle { rate: 40.0, burst: 20 }),
        json!({"LOG_LEVEL": "info"}),
        Tuning::Clean,
    ));
    let out = tempfile::tempdir().unwrap();
    let dir = RunDir::open(out.path()).unwrap();
    let set = security::measure(&subject, &params(), &dir, "fake").await.unwrap();
    // The front door once (its two schemes are one URL) and the signed API, which served unsigned.
    assert_eq!(value(&set, "unauthenticated_access"), (1.0, 2), "{:#?}", set.notes);
    assert_eq!(value(&set, "secret_findings").0, 1.0, "{:#?}", set.notes);
    assert_eq!(value(&set, "audit_missing"), (0.0, 1));
    for m in ["tls_overhead", "tls_overhead_new_connection"] {
        assert!(
            matches!(&set.metrics[m], Metric::Missing { reason } if reason.contains("plain HTTP only")),
            "{m}: {:?}",
            set.metrics[m]
        );
    }
    assert_eq!(set.notes[0], "subject: one scheme");
    let notes = set.notes.join("\n");
    assert!(notes.contains("log group /aws/lambda/f"), "{notes}");
    assert!(notes.contains("signed API http://127.0.0.1:9/: answered 200 to an unsigned request"), "{notes}");
    let mut written = notes.clone();
    for p in &set.raw {
        written.push_str(&std::fs::read_to_string(out.path().join(p)).unwrap());
    }
    assert!(!written.contains(LOG_SECRET) && !written.contains(KEY), "a note or raw file holds a secret");
    assert!(!set.raw.iter().any(|p| p.ends_with("tls_samples.csv")), "no TLS samples without a second scheme");
}
