//! [`FakePlatform`]: a stand-in for the local platform in the monitoring and regression tests. It serves
//! the platform's metric families on a loopback `/metrics` behind a bearer token (a real hyper server that
//! the real Prometheus scrapes), and produces cold starts, warm traffic and builds whose figures come from
//! a seeded lognormal model, so that what Prometheus computes can be compared with exactly what was
//! observed. `set_slowdown` scales the model and `add_latency` shifts it, as deploying a slower variant would.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use harness::{
    baseline::simulate::Rng,
    measure::{self, Platform},
    metrics::{
        exposition::{encode, Family, Histogram, Kind, Labels, Sample},
        Auth, Endpoint,
    },
    services::{PushClient, ScrapeJob},
};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

/// Which families the fake exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposes {
    /// `function_memory_*` families.
    pub resources: bool,
}

#[derive(Debug)]
struct Hist {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
}

impl Hist {
    fn new(bounds: Vec<f64>) -> Hist {
        let n = bounds.len() + 1;
        Hist { bounds, counts: vec![0; n], sum: 0.0 }
    }

    fn observe(&mut self, v: f64) {
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
    }

    fn histogram(&self, labels: &Labels) -> Histogram {
        let mut cum = 0.0;
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (i, b) in self.bounds.iter().chain(std::iter::once(&f64::INFINITY)).enumerate() {
            cum += self.counts[i] as f64;
            buckets.push((*b, cum));
        }
        Histogram { labels: labels.clone(), buckets, sum: self.sum, count: cum }
    }
}

#[derive(Debug)]
struct State {
    rng: Rng,
    slowdown: f64,
    /// Seconds added to every warm invocation (a handler that sleeps longer).
    added: f64,
    cold: Hist,
    warm: Hist,
    ok: u64,
    errors: u64,
    throttles: u64,
    scale_up: u64,
    scale_down: u64,
    environments: u64,
    cpu_seconds: f64,
    exposes: Exposes,
}

/// Median cold start Init Duration of the fake (seconds).
pub const COLD_MEDIAN: f64 = 0.25;
/// Median warm invocation Duration of the fake (seconds).
pub const WARM_MEDIAN: f64 = 0.020;
/// Warm invocations per second the fake reports while traffic runs.
pub const WARM_RATE: f64 = 200.0;
/// Function label.
pub const FUNCTION: &str = "hello";

/// The fake platform; stops serving on drop.
pub struct FakePlatform {
    url: String,
    token: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakePlatform {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePlatform {
    /// Starts serving `/metrics` on a free loopback port.
    pub async fn start(seed: u64, exposes: Exposes) -> FakePlatform {
        let cold_bounds = vec![0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];
        let warm_bounds: Vec<f64> = (0..40).map(|k| 0.001 * 1.2f64.powi(k)).collect();
        let state = Arc::new(Mutex::new(State {
            rng: Rng::new(seed),
            slowdown: 1.0,
            added: 0.0,
            cold: Hist::new(cold_bounds),
            warm: Hist::new(warm_bounds),
            ok: 0,
            errors: 0,
            throttles: 0,
            scale_up: 0,
            scale_down: 0,
            environments: 1,
            cpu_seconds: 0.0,
            exposes,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = format!("token-{seed:x}");
        let (s, t) = (state.clone(), token.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, t) = (s.clone(), t.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| serve(req, s.clone(), t.clone()));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        FakePlatform { url: format!("http://{addr}/metrics"), token, state, task }
    }

    /// The metrics URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The current exposition text.
    pub fn exposition(&self) -> String {
        exposition(&self.state.lock().unwrap())
    }
}

async fn serve(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    token: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorized = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {token}").as_str());
    let (code, body) = if !authorized {
        (401, "unauthorized\n".to_string())
    } else if req.uri().path() != "/metrics" {
        (404, "not found\n".to_string())
    } else {
        (200, exposition(&state.lock().unwrap()))
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
    Ok(r)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn scalar(name: &str, kind: Kind, samples: Vec<(Labels, f64)>) -> Family {
    Family {
        name: name.into(),
        kind,
        help: Some(format!("{name} of the fake platform")),
        samples: samples
            .into_iter()
            .map(|(labels, value)| Sample { name: name.into(), labels, value, timestamp_ms: None })
            .collect(),
    }
}

fn exposition(s: &State) -> String {
    let f = labels(&[("function", FUNCTION)]);
    let hist = |name: &str, h: &Hist| Family {
        name: name.into(),
        kind: Kind::Histogram,
        help: Some(name.into()),
        samples: h.histogram(&f).samples(name),
    };
    let mut fams = vec![
        hist("function_cold_start_duration_seconds", &s.cold),
        hist("function_invocation_duration_seconds", &s.warm),
        scalar(
            "function_invocations_total",
            Kind::Counter,
            vec![
                (labels(&[("function", FUNCTION), ("status", "ok")]), s.ok as f64),
                (labels(&[("function", FUNCTION), ("status", "error")]), s.errors as f64),
            ],
        ),
        scalar("function_throttles_total", Kind::Counter, vec![(f.clone(), s.throttles as f64)]),
        scalar("function_concurrent_executions", Kind::Gauge, vec![(f.clone(), 1.0)]),
        scalar(
            "function_environments",
            Kind::Gauge,
            vec![
                (labels(&[("function", FUNCTION), ("state", "busy")]), 1.0),
                (labels(&[("function", FUNCTION), ("state", "idle")]), (s.environments - 1) as f64),
            ],
        ),
        scalar(
            "function_scale_events_total",
            Kind::Counter,
            vec![
                (labels(&[("function", FUNCTION), ("direction", "up")]), s.scale_up as f64),
                (labels(&[("function", FUNCTION), ("direction", "down")]), s.scale_down as f64),
            ],
        ),
        scalar("function_cpu_seconds_total", Kind::Counter, vec![(f.clone(), s.cpu_seconds)]),
    ];
    if s.exposes.resources {
        fams.push(scalar(
            "function_memory_used_bytes",
            Kind::Gauge,
            vec![(labels(&[("function", FUNCTION), ("environment", "e1")]), 61e6)],
        ));
        fams.push(scalar("function_memory_limit_bytes", Kind::Gauge, vec![(f, 128e6)]));
    }
    encode(&fams)
}

impl Platform for FakePlatform {
    fn scrape_job(&self) -> ScrapeJob {
        ScrapeJob::new("platform", &self.url, Auth::Bearer(self.token.clone()))
    }

    fn function(&self) -> String {
        FUNCTION.into()
    }

    async fn cold_starts(&self, n: usize) -> Result<Vec<f64>, measure::Error> {
        let mut s = self.state.lock().unwrap();
        let level = (COLD_MEDIAN * s.slowdown).ln();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let v = (level + 0.3 * s.rng.normal()).exp();
            s.cold.observe(v);
            out.push(v);
        }
        s.scale_up += n as u64;
        s.scale_down += n as u64;
        s.environments = 2;
        Ok(out)
    }

    async fn warm_traffic(&self, duration: Duration) -> Result<Vec<f64>, measure::Error> {
        let tick = Duration::from_millis(50);
        let ticks = (duration.as_secs_f64() / tick.as_secs_f64()).ceil().max(1.0) as usize;
        let per_tick = (WARM_RATE * tick.as_secs_f64()) as usize;
        let mut out = Vec::new();
        for _ in 0..ticks {
            {
                let mut s = self.state.lock().unwrap();
                let level = (WARM_MEDIAN * s.slowdown).ln();
                for _ in 0..per_tick {
                    let v = (level + 0.25 * s.rng.normal()).exp() + s.added;
                    s.warm.observe(v);
                    s.ok += 1;
                    s.cpu_seconds += v * 0.5;
                    out.push(v);
                }
            }
            tokio::time::sleep(tick).await;
        }
        Ok(out)
    }

    async fn build(&self, pushgateway: &Endpoint) -> Result<(), measure::Error> {
        let mut h = Hist::new(vec![10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0]);
        for v in [12.0, 14.5, 25.0] {
            h.observe(v);
        }
        let mut sizes = Hist::new(vec![1e6, 10e6, 100e6]);
        sizes.observe(2.1e6);
        let none = Labels::new();
        let fams = vec![
            Family {
                name: "build_duration_seconds".into(),
                kind: Kind::Histogram,
                help: Some("build time".into()),
                samples: h.histogram(&none).samples("build_duration_seconds"),
            },
            scalar("build_cache_hits_total", Kind::Counter, vec![(none.clone(), 8.0)]),
            scalar("build_cache_requests_total", Kind::Counter, vec![(none.clone(), 10.0)]),
            Family {
                name: "image_size_bytes".into(),
                kind: Kind::Histogram,
                help: Some("image size".into()),
                samples: sizes.histogram(&labels(&[("dockerfile", "optimized")])).samples("image_size_bytes"),
            },
            scalar("builds_in_progress", Kind::Gauge, vec![(none, 0.0)]),
        ];
        PushClient::new(pushgateway.clone())
            .push("build", &[("function", FUNCTION)], &fams)
            .await
            .map_err(|e| measure::Error::Unavailable { what: "the Pushgateway".into(), detail: e.to_string() })
    }

    async fn set_slowdown(&self, factor: f64) -> Result<(), measure::Error> {
        let mut s = self.state.lock().unwrap();
        (s.slowdown, s.added) = (factor, 0.0);
        Ok(())
    }

    async fn add_latency(&self, extra: Duration) -> Result<Duration, measure::Error> {
        let mut s = self.state.lock().unwrap();
        (s.slowdown, s.added) = (1.0, extra.as_secs_f64());
        Ok(extra)
    }
}
