//! Calibrates the latency noise model of `harness::baseline::simulate` on this machine: loopback HTTP
//! round trips (keep-alive, sequential) measured in separate processes, one process per "run", so that the
//! run-to-run jitter includes what changes between runs (process start, sockets, CPU placement).
//!
//! `cargo run --release -p harness --example noise_calibration [-- RUNS N]` (default 20 runs of 2000).
//! Prints each run's P50/P95 with the 95% CI and the fitted `NoiseModel`.

use std::{process::Command, time::Instant};

use bytes::Bytes;
use harness::{baseline::Z95, stats};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{service::service_fn, Request, Response};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one-run") {
        let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
        return one_run(n);
    }
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let me = std::env::current_exe()?;
    println!("{runs} runs of {n} sequential loopback HTTP requests, one process each");
    println!("{:>4} {:>10} {:>10} {:>22}", "run", "p50 µs", "p95 µs", "p95 95% CI µs");
    let mut p50s = Vec::new();
    let mut p95s = Vec::new();
    let mut ses = Vec::new();
    for i in 0..runs {
        let out = Command::new(&me).args(["--one-run", &n.to_string()]).output()?;
        anyhow::ensure!(out.status.success(), "run {i}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Vec<f64> =
            String::from_utf8(out.stdout)?.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
        let (p50, p95, lo, hi) = (v[0], v[1], v[2], v[3]);
        println!("{i:>4} {:>10.1} {:>10.1} {:>10.1} .. {:>8.1}", p50 * 1e6, p95 * 1e6, lo * 1e6, hi * 1e6);
        p50s.push(p50);
        p95s.push(p95);
        ses.push((hi.ln() - lo.ln()) / (2.0 * Z95));
    }
    let ln: Vec<f64> = p95s.iter().map(|v| v.ln()).collect();
    let mean = ln.iter().sum::<f64>() / ln.len() as f64;
    let total = (ln.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (ln.len() - 1) as f64).sqrt();
    let sampling = (ses.iter().map(|s| s * s).sum::<f64>() / ses.len() as f64).sqrt();
    // Run p95s are heavy-tailed here (a few runs land on a slow mode); the robust spread (MAD) is what
    // the lognormal model takes, the plain one is printed beside it.
    let mut sorted = ln.clone();
    sorted.sort_by(f64::total_cmp);
    let med = sorted[sorted.len() / 2];
    let mut dev: Vec<f64> = ln.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let robust = 1.4826 * dev[dev.len() / 2];
    let sigma_run = (robust.powi(2) - sampling.powi(2)).max(0.0).sqrt();
    let median = (p50s.iter().map(|v| v.ln()).sum::<f64>() / p50s.len() as f64).exp();
    let shape = p95s.iter().zip(&p50s).map(|(a, b)| (a / b).ln()).sum::<f64>() / p95s.len() as f64 / 1.644_854;
    println!(
        "\nrun-to-run spread of ln(p95): sd {total:.4}, robust (1.4826 MAD) {robust:.4}; sampling se {sampling:.4}; jitter beyond sampling {sigma_run:.4}"
    );
    println!(
        "NoiseModel {{ median: {:.0}e-6, sigma_within: {shape:.3}, sigma_run: {sigma_run:.3}, n: {n} }}",
        median * 1e6
    );
    Ok(())
}

fn one_run(n: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                            b"{\"ok\":true}",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("http://{addr}/invoke").parse()?;
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + 200 {
            let t = Instant::now();
            let resp = client.get(uri.clone()).await?;
            resp.into_body().collect().await?;
            if i >= 200 {
                samples.push(t.elapsed().as_secs_f64());
            }
        }
        let p50 = stats::percentile(&samples, 50.0, 0.95).expect("samples");
        let p95 = stats::percentile(&samples, 95.0, 0.95).expect("samples");
        println!("{} {} {} {}", p50.value, p95.value, p95.ci_low.unwrap_or(f64::NAN), p95.ci_high.unwrap_or(f64::NAN));
        anyhow::Ok(())
    })
}
