//! [`Origin`]: the portal's origin, a small HTTP server inside the harness on a loopback port. It serves
//! the portal page and its static assets with the guide's `Cache-Control` (HTML 1 hour, `/assets/*` 1 year
//! immutable, `/static/*` 7 days, `/api/*` 5 minutes) and the portal's API, which does the guide's
//! cache-aside: `GET` from Redis, on a miss the guide's query on PostgreSQL, then `SETEX` with the guide's
//! TTL (real-time metrics 5 minutes, invoices 1 hour).
//!
//! It runs in the harness rather than as a function on the local platform so that the stack needs no
//! container image and each query's time is taken next to the query; the API is what a SecureBase Lambda
//! does behind API Gateway, and the platform's own figures are measured by the other procedures.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_postgres::Client;

use super::{
    error::io,
    postgres::{INVOICES_QUERY, METRICS_QUERY},
    redis::RedisConn,
    Error,
};

/// Content-hashed asset names, as the guide's build emits them.
pub const SCRIPT: &str = "/assets/app.3f9a1c.js";
/// The stylesheet.
pub const STYLE: &str = "/assets/app.8b2e47.css";
/// An image under `/static/`.
pub const LOGO: &str = "/static/logo.svg";
/// A second image under `/static/`.
pub const HERO: &str = "/static/hero.svg";

/// How the origin behaves; the fault knobs are the non-default values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginOptions {
    /// Redis TTL of real-time metrics, s (guide: 300). 0: nothing is kept.
    pub metrics_ttl_s: u64,
    /// Redis TTL of invoices, s (guide: 3600). 0: nothing is kept.
    pub invoices_ttl_s: u64,
    /// A path served only after a delay and marked `no-store` (the slow-asset fault).
    pub slow: Option<(String, Duration)>,
    /// The portal's script keeps the browser's main thread busy this long (the slow-script fault).
    pub script_busy_ms: Option<u64>,
}

impl Default for OriginOptions {
    fn default() -> Self {
        OriginOptions { metrics_ttl_s: 300, invoices_ttl_s: 3600, slow: None, script_busy_ms: None }
    }
}

/// What the API did, counted by the API itself (evidence beside Redis' own counters).
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Redis GETs that found the key.
    pub cache_hits: AtomicU64,
    /// Redis GETs that did not.
    pub cache_misses: AtomicU64,
    /// Redis commands that failed (the API then queried the database).
    pub cache_errors: AtomicU64,
    /// Database queries that failed (answered 502).
    pub db_errors: AtomicU64,
    /// Each database query's time as the API saw it, ms.
    pub query_ms: Mutex<Vec<f64>>,
}

struct Shared {
    opts: OriginOptions,
    redis_addr: String,
    redis_password: String,
    redis_pool: Mutex<Vec<RedisConn>>,
    db: Vec<Client>,
    next_db: AtomicUsize,
    counters: Arc<ApiCounters>,
}

/// The running origin; stops serving on drop.
#[derive(Debug)]
pub struct Origin {
    url: String,
    counters: Arc<ApiCounters>,
    task: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("opts", &self.opts).finish_non_exhaustive()
    }
}

impl Origin {
    /// Starts serving on a free loopback port, with database connections `db` (at least one).
    pub async fn start(
        opts: OriginOptions,
        redis_addr: &str,
        redis_password: &str,
        db: Vec<Client>,
    ) -> Result<Origin, Error> {
        assert!(!db.is_empty(), "the origin needs a database connection");
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| io("127.0.0.1:0".as_ref(), e))?;
        let addr = listener.local_addr().map_err(|e| io("127.0.0.1:0".as_ref(), e))?;
        let counters = Arc::new(ApiCounters::default());
        let shared = Arc::new(Shared {
            opts,
            redis_addr: redis_addr.into(),
            redis_password: redis_password.into(),
            redis_pool: Mutex::new(Vec::new()),
            db,
            next_db: AtomicUsize::new(0),
            counters: counters.clone(),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, s.clone()));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(Origin { url: format!("http://{addr}"), counters, task })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The API's own counters.
    pub fn counters(&self) -> &ApiCounters {
        &self.counters
    }
}

fn reply(status: u16, cache_control: &str, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("cache-control", cache_control)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("static headers are valid")
}

/// The portal page: it loads the assets and calls the API for one customer's metrics and invoices.
pub fn page_html() -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="SecureBase customer portal: usage and invoices">
<title>SecureBase portal</title><link rel="stylesheet" href="{STYLE}"></head>
<body><header><img src="{LOGO}" alt="SecureBase" width="120" height="32"></header>
<main><h1>Usage</h1><img src="{HERO}" alt="" width="600" height="120"><table id="metrics"></table>
<h2>Invoices</h2><ul id="invoices"></ul></main>
<script src="{SCRIPT}" defer></script></body></html>"#
    )
}

const SCRIPT_JS: &str = r#"(function () {
  var c = new URLSearchParams(location.search).get('customer') || 'cust0042';
  fetch('/api/metrics?customer_id=' + c + '&date_range=30').then(function (r) { return r.json(); })
    .then(function (d) { document.getElementById('metrics').textContent = d.rows.length + ' readings'; });
  fetch('/api/invoices?customer_id=' + c).then(function (r) { return r.json(); })
    .then(function (d) { document.getElementById('invoices').textContent = d.rows.length + ' invoices'; });
})();
"#;
/// The portal's script; with the slow-script fault it first keeps the main thread busy for `ms` after the
/// load event, in 200 ms tasks (after the first paint, so Lighthouse's Total Blocking Time counts them).
fn script(opts: &OriginOptions) -> String {
    match opts.script_busy_ms {
        Some(ms) => format!(
            "window.addEventListener('load', function () {{ var left = {ms}; (function busy() {{ \
             var t = performance.now(), chunk = Math.min(200, left); while (performance.now() - t < chunk) {{}} \
             left -= chunk; if (left > 0) setTimeout(busy, 0); }})(); }});\n{SCRIPT_JS}"
        ),
        None => SCRIPT_JS.to_string(),
    }
}

const STYLE_CSS: &str = "body{font-family:sans-serif;margin:0}header{background:#123;padding:8px}main{padding:16px}\n";
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32"><rect width="120" height="32" fill="#123"/></svg>"##;
const HERO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="120"><rect width="600" height="120" fill="#9bd"/></svg>"##;

async fn handle(req: Request<Incoming>, s: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let slow = s.opts.slow.as_ref().filter(|(p, _)| *p == path).map(|(_, d)| *d);
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    let mut resp = match path.as_str() {
        "/" | "/index.html" => reply(200, "public, max-age=3600", "text/html; charset=utf-8", page_html()),
        SCRIPT => reply(200, "public, max-age=31536000, immutable", "application/javascript", script(&s.opts)),
        STYLE => reply(200, "public, max-age=31536000, immutable", "text/css", STYLE_CSS),
        LOGO => reply(200, "public, max-age=604800", "image/svg+xml", LOGO_SVG),
        HERO => reply(200, "public, max-age=604800", "image/svg+xml", HERO_SVG),
        "/api/metrics" | "/api/invoices" => api(&s, &path, &query).await,
        "/favicon.ico" => reply(204, "public, max-age=604800", "image/x-icon", Bytes::new()),
        _ => reply(404, "no-store", "text/plain", "not found\n"),
    };
    if slow.is_some() {
        resp.headers_mut().insert("cache-control", hyper::header::HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

async fn api(s: &Shared, path: &str, query: &str) -> Response<Full<Bytes>> {
    let Some(customer) = param(query, "customer_id").filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric())) else {
        return reply(400, "no-store", "application/json", r#"{"error":"customer_id missing or malformed"}"#);
    };
    let (key, ttl) = if path == "/api/metrics" {
        let days: i32 = match param(query, "date_range").unwrap_or("30").parse() {
            Ok(d) if (1..=3650).contains(&d) => d,
            _ => return reply(400, "no-store", "application/json", r#"{"error":"date_range must be 1..3650 days"}"#),
        };
        (format!("metrics:{customer}:{days}"), s.opts.metrics_ttl_s)
    } else {
        (format!("invoices:{customer}"), s.opts.invoices_ttl_s)
    };
    let api_cc = "max-age=300, public";
    if let Some(cached) = cache_get(s, &key).await {
        return reply(200, api_cc, "application/json", cached);
    }
    let started = Instant::now();
    let db = &s.db[s.next_db.fetch_add(1, Ordering::Relaxed) % s.db.len()];
    let result = if path == "/api/metrics" {
        let days: i32 = param(query, "date_range").unwrap_or("30").parse().unwrap_or(30);
        db.query(METRICS_QUERY, &[&customer, &days]).await.map(|rows| {
            rows.iter()
                .map(|r| {
                    let at: chrono::DateTime<chrono::Utc> = r.get(2);
                    json!({ "metric": r.get::<_, String>(0), "value": r.get::<_, f64>(1), "at": at.to_rfc3339() })
                })
                .collect::<Vec<Value>>()
        })
    } else {
        db.query(INVOICES_QUERY, &[&customer]).await.map(|rows| {
            rows.iter()
                .map(|r| {
                    let date: chrono::NaiveDate = r.get(2);
                    json!({ "id": r.get::<_, i64>(0), "amount_cents": r.get::<_, i64>(1), "date": date.to_string() })
                })
                .collect::<Vec<Value>>()
        })
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(rows) => {
            s.counters.query_ms.lock().expect("query times").push(ms);
            let body = json!({ "customer_id": customer, "rows": rows }).to_string();
            if ttl > 0 {
                cache_set(s, &key, ttl, &body).await;
            }
            reply(200, api_cc, "application/json", body)
        }
        Err(e) => {
            s.counters.db_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("portal API: database query failed: {e}");
            reply(502, "no-store", "application/json", r#"{"error":"database query failed"}"#)
        }
    }
}

async fn conn(s: &Shared) -> Result<RedisConn, Error> {
    let pooled = s.redis_pool.lock().expect("redis pool").pop();
    match pooled {
        Some(c) => Ok(c),
        None => RedisConn::connect(&s.redis_addr, &s.redis_password).await,
    }
}

fn give_back(s: &Shared, c: RedisConn) {
    s.redis_pool.lock().expect("redis pool").push(c);
}

async fn cache_get(s: &Shared, key: &str) -> Option<String> {
    let result = match conn(s).await {
        Ok(mut c) => {
            let r = c.get(key).await;
            if r.is_ok() {
                give_back(s, c);
            }
            r
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(Some(v)) => {
            s.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            Some(String::from_utf8_lossy(&v).into_owned())
        }
        Ok(None) => {
            s.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(e) => {
            s.counters.cache_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("portal API: redis GET {key}: {e}");
            None
        }
    }
}

async fn cache_set(s: &Shared, key: &str, ttl: u64, body: &str) {
    let result = match conn(s).await {
        Ok(mut c) => {
            let r = c.setex(key, ttl, body).await;
            if r.is_ok() {
                give_back(s, c);
            }
            r
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        s.counters.cache_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("portal API: redis SETEX {key}: {e}");
    }
}
