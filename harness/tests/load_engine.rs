//! The load generator against real loopback servers started here: a hyper server whose paths answer 200, 429,
//! 500, 403, a function error, or slowly; raw TCP servers that close every connection or never answer; an HTTPS
//! server with a freshly generated CA. Assertions are on counts, classes and states, never on timings (a run's
//! elapsed time is only checked against its deadline with a 10x margin).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use harness::load::{
    ErrorClass, LoadReport, LoadSpec, Observe, Observed, Phase, RequestTemplate, Schedule, StopReason, Trust,
};
use http_body_util::Full;
use hyper::{body::Incoming, header::HeaderName, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::TlsAcceptor;

const SEQ: HeaderName = HeaderName::from_static("x-load-seq");

/// What the test server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    seqs: Mutex<Vec<u64>>,
}

/// A server on a free loopback port, stopped (with all its connections) when dropped.
struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The hyper test server, plain or behind `tls`.
    async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (s, tls) = (s.clone(), tls.clone());
                conns.spawn(async move {
                    let service = service_fn(move |req| handle(s.clone(), req));
                    match tls {
                        None => {
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Server { addr, seen, task }
    }

    /// A raw TCP server that accepts connections and then closes them (`hold: false`) or keeps them open
    /// without ever answering (`hold: true`).
    async fn raw(hold: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let mut held: JoinSet<()> = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                s.requests.fetch_add(1, Ordering::Relaxed);
                if hold {
                    held.spawn(async move {
                        let mut buf = [0u8; 4096];
                        while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                    });
                } else {
                    drop::<TcpStream>(stream);
                }
            }
        });
        Server { addr, seen, task }
    }
}

async fn handle(seen: Arc<Seen>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(seq) = req.headers().get(&SEQ).and_then(|v| v.to_str().ok()?.parse().ok()) {
        seen.seqs.lock().unwrap().push(seq);
    }
    let reply = |status: u16, body: &'static str| Response::builder().status(status).body(Full::new(Bytes::from(body)));
    let path = req.uri().path().to_string();
    let resp = match path.as_str() {
        "/429" => reply(429, "TooManyRequestsException"),
        "/500" => reply(500, "boom"),
        "/403" => reply(403, "Forbidden"),
        "/fnerr" => Response::builder()
            .header("X-Amz-Function-Error", "Unhandled")
            .body(Full::new(Bytes::from(r#"{"errorMessage":"x"}"#))),
        "/2015-03-31/functions/fixture/invocations" if req.method() == hyper::Method::POST => {
            reply(200, r#"{"cold":false}"#)
        }
        p if p.starts_with("/slow/") => {
            let ms: u64 = p["/slow/".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(200, "slow")
        }
        _ => reply(200, "ok"),
    };
    Ok(resp.unwrap())
}

/// Records what an observer saw: (seq, intended time) of every response.
#[derive(Default)]
struct Order(Mutex<BTreeMap<u64, Duration>>);

impl Observe for Order {
    fn observe(&self, r: &Observed<'_>) {
        self.0.lock().unwrap().insert(r.seq, r.at);
    }
}

#[tokio::test]
async fn open_model_sends_exactly_n_in_order_of_intended_time() {
    let server = Server::start(None).await;
    let order = Arc::new(Order::default());
    let schedule = Schedule::constant(200.0, Duration::from_secs(2)).unwrap();
    let report = LoadSpec::open(RequestTemplate::get(&server.url("/ok")).unwrap(), schedule)
        .sequence_header(SEQ)
        .observer(order.clone())
        .run()
        .await
        .unwrap();
    let c = report.totals.counts;
    assert_eq!((c.scheduled, c.sent, c.dropped, c.ok), (400, 400, 0, 400), "{report:#?}");
    assert_eq!(server.seen.requests.load(Ordering::Relaxed), 400);
    let mut seqs = server.seen.seqs.lock().unwrap().clone();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..400).collect::<Vec<u64>>(), "each scheduled request reached the server once");
    let order = order.0.lock().unwrap();
    assert_eq!(order.len(), 400);
    assert!(order.values().zip(order.values().skip(1)).all(|(a, b)| a < b), "sent in order of intended time");
    assert_eq!(report.stopped_by, StopReason::Completed);
    assert_eq!(report.timeline.iter().map(|s| s.scheduled).collect::<Vec<_>>(), vec![200, 200]);
    assert_eq!(report.timeline.iter().map(|s| s.ok).sum::<u64>(), 400);
    assert_eq!(report.latency().count(), 400);
    assert_eq!(c.bytes_received, 800);
}

#[tokio::test]
async fn phases_are_counted_separately() {
    let server = Server::start(None).await;
    let ms = Duration::from_millis;
    let schedule = Schedule::new(vec![
        Phase::constant("warm-up", ms(500), 20.0),
        Phase::constant("sustained", ms(500), 100.0),
        Phase::constant("spike", ms(200), 400.0),
        Phase::ramp("ramp-down", ms(500), 100.0, 0.0),
    ])
    .unwrap();
    let report = LoadSpec::open(RequestTemplate::get(&server.url("/ok")).unwrap(), schedule).run().await.unwrap();
    let scheduled: Vec<u64> = report.phases.iter().map(|p| p.counts.scheduled).collect();
    assert_eq!(scheduled, vec![10, 50, 80, 25]);
    let names: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["warm-up", "sustained", "spike", "ramp-down"]);
    assert_eq!(report.totals.counts.scheduled, 165);
    assert_eq!(report.phases.iter().map(|p| p.latency.count()).sum::<u64>(), report.latency().count());
    assert_eq!(server.seen.requests.load(Ordering::Relaxed), 165);
}

#[tokio::test]
async fn closed_model_sends_the_bounded_count_over_at_most_one_connection_per_worker() {
    let server = Server::start(None).await;
    let t = RequestTemplate::invoke(&format!("http://{}", server.addr), "fixture", None, "{}").unwrap();
    let report = LoadSpec::closed(t, 4).max_requests(300).run().await.unwrap();
    assert_eq!(report.stopped_by, StopReason::MaxRequests);
    assert_eq!((report.totals.counts.sent, report.totals.counts.ok), (300, 300));
    assert_eq!(server.seen.requests.load(Ordering::Relaxed), 300);
    assert!(report.connections_opened <= 4, "{}", report.connections_opened);
    assert!(report.corrected_latency().is_none(), "no schedule, no correction");
    assert!(report.target.ends_with("/2015-03-31/functions/fixture/invocations"));
}

async fn run_against(url: &str, n: u64, timeout: Duration) -> LoadReport {
    let schedule = Schedule::constant(100.0, Duration::from_secs_f64(n as f64 / 100.0)).unwrap();
    LoadSpec::open(RequestTemplate::get(url).unwrap(), schedule).timeout(timeout).run().await.unwrap()
}

#[tokio::test]
async fn errors_are_classified() {
    let server = Server::start(None).await;
    let closing = Server::raw(false).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cases = [
        (server.url("/429"), ErrorClass::Throttled),
        (server.url("/500"), ErrorClass::FunctionError),
        (server.url("/fnerr"), ErrorClass::FunctionError),
        (server.url("/403"), ErrorClass::OtherStatus),
        (server.url("/slow/5000"), ErrorClass::Timeout),
        (closing.url("/"), ErrorClass::Connection),
        (format!("http://{refused}/"), ErrorClass::Connection),
    ];
    for (url, class) in cases {
        let r = run_against(&url, 20, Duration::from_millis(200)).await;
        let e = r.errors();
        assert_eq!(e.get(class), 20, "{url}: {e:?}");
        assert_eq!(e.total(), 20, "{url}: only {class:?} expected, got {e:?}");
        assert_eq!(r.totals.counts.ok, 0);
        assert!(r.latency().is_empty(), "failed requests stay out of the latency histogram");
        assert!(r.first_errors.contains_key(&class), "{url}: {:?}", r.first_errors);
        assert!(r.missing_evidence(1).unwrap().contains(&url), "{url}");
        assert_eq!(r.error_rate(), if class == ErrorClass::Throttled { 0.0 } else { 1.0 });
    }
}

#[tokio::test]
async fn a_server_that_never_answers_ends_at_the_deadline_with_timeouts() {
    let silent = Server::raw(true).await;
    let schedule = Schedule::constant(50.0, Duration::from_secs(1)).unwrap();
    let report = LoadSpec::open(RequestTemplate::get(&silent.url("/")).unwrap(), schedule)
        .timeout(Duration::from_secs(600))
        .max_duration(Duration::from_secs(2))
        .run()
        .await
        .unwrap();
    assert_eq!(report.totals.counts.sent, 50);
    assert_eq!(report.errors().timeout, 50, "{:?}", report.errors());
    assert!(report.first_errors[&ErrorClass::Timeout].contains("deadline"));
    assert!(report.elapsed_s < 20.0, "bounded by its 2 s deadline, took {} s", report.elapsed_s);
    assert!(report.missing_evidence(1).is_some());
}

#[tokio::test]
async fn a_schedule_cut_by_the_time_bound_is_a_shortfall() {
    let server = Server::start(None).await;
    let schedule = Schedule::constant(100.0, Duration::from_secs(5)).unwrap();
    let report = LoadSpec::open(RequestTemplate::get(&server.url("/ok")).unwrap(), schedule)
        .max_duration(Duration::from_millis(500))
        .run()
        .await
        .unwrap();
    assert_eq!(report.stopped_by, StopReason::MaxDuration);
    assert!(report.totals.counts.scheduled <= 50);
    let e = report.check_delivery(0.995).unwrap_err().to_string();
    assert!(e.contains("cut short"), "{e}");
}

#[tokio::test]
async fn requests_are_dropped_and_reported_when_the_server_is_slower_than_the_schedule() {
    let server = Server::start(None).await;
    let schedule = Schedule::constant(100.0, Duration::from_secs(1)).unwrap();
    let report = LoadSpec::open(RequestTemplate::get(&server.url("/slow/200")).unwrap(), schedule)
        .max_in_flight(2)
        .run()
        .await
        .unwrap();
    let c = report.totals.counts;
    assert_eq!(c.scheduled, 100);
    assert_eq!(c.sent + c.dropped, 100);
    // Two slots of >= 200 ms each can take at most 12 requests in one second.
    assert!(c.dropped >= 80, "{c:?}");
    assert_eq!(c.ok, c.sent);
    assert!(report.connections_opened <= 2);
    let shortfall = report.check_delivery(0.995).unwrap_err();
    assert_eq!(shortfall.delivery.dropped, c.dropped);
    assert!(shortfall.to_string().contains("dropped"), "{shortfall}");
    assert_eq!(report.timeline.iter().map(|s| s.dropped).sum::<u64>(), c.dropped);
}

#[tokio::test]
async fn corrected_latency_is_never_below_raw_latency() {
    let server = Server::start(None).await;
    let schedule = Schedule::constant(200.0, Duration::from_secs(1)).unwrap().poisson(3);
    let report = LoadSpec::open(RequestTemplate::get(&server.url("/slow/3")).unwrap(), schedule)
        .max_in_flight(4)
        .run()
        .await
        .unwrap();
    let raw = report.latency();
    let corrected = report.corrected_latency().unwrap();
    assert!(raw.count() > 0);
    assert_eq!(raw.count(), corrected.count());
    assert!(corrected.min() >= raw.min() && corrected.max() >= raw.max());
    for q in [1.0, 50.0, 90.0, 99.0, 100.0] {
        let (r, c) = (raw.percentile(q, 0.95).unwrap(), corrected.percentile(q, 0.95).unwrap());
        assert!(c.value >= r.value, "p{q}: corrected {} < raw {}", c.value, r.value);
    }
}

#[tokio::test]
async fn reports_of_concurrent_generators_merge_exactly() {
    let server = Server::start(None).await;
    let spec = || {
        let schedule = Schedule::constant(150.0, Duration::from_secs(1)).unwrap();
        LoadSpec::open(RequestTemplate::get(&server.url("/slow/1")).unwrap(), schedule).run()
    };
    let (a, b) = tokio::join!(spec(), spec());
    let (a, b) = (a.unwrap(), b.unwrap());
    let wire = |r: &LoadReport| -> LoadReport { serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap() };
    assert_eq!(wire(&a), a, "a report survives JSON unchanged");
    let mut merged = wire(&a);
    merged.merge(&wire(&b)).unwrap();
    assert_eq!(merged.sources, 2);
    assert_eq!(merged.totals.counts.sent, a.totals.counts.sent + b.totals.counts.sent);
    let mut direct = a.latency().clone();
    direct.merge(b.latency()).unwrap();
    assert_eq!(merged.latency(), &direct);
    assert_eq!(merged.latency().count(), a.latency().count() + b.latency().count());
    assert_eq!(merged.latency().percentile(99.0, 0.95), direct.percentile(99.0, 0.95));
    assert_eq!(merged.timeline.iter().map(|s| s.sent).sum::<u64>(), merged.totals.counts.sent);
    let mut closed = wire(&a);
    closed.target = "GET elsewhere".into();
    assert!(closed.merge(&b).is_err(), "different targets do not merge");
}

fn tls_server_config() -> (Vec<u8>, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    (ca.pem().into_bytes(), Arc::new(config))
}

#[tokio::test]
async fn https_with_a_self_signed_ca() {
    let (ca_pem, config) = tls_server_config();
    let server = Server::start(Some(TlsAcceptor::from(config))).await;
    let url = format!("https://127.0.0.1:{}/ok", server.addr.port());
    let run = |trust| LoadSpec::closed(RequestTemplate::get(&url).unwrap(), 2).max_requests(50).trust(trust).run();
    let report = run(Trust::Pem(ca_pem)).await.unwrap();
    assert_eq!(report.totals.counts.ok, 50, "{:?}", report.first_errors);
    assert!(report.connections_opened <= 2);
    let (other_ca, _) = tls_server_config();
    let refused = run(Trust::Pem(other_ca)).await.unwrap();
    assert_eq!(refused.errors().connection, 50);
    let why = &refused.first_errors[&ErrorClass::Connection];
    assert!(why.to_lowercase().contains("certificate"), "{why}");
}
