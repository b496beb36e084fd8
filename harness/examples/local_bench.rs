//! Figures of the local platform, measured side by side in one run (`cargo run --release -p harness
//! --example local_bench`; `-- --quick` for fewer samples). Prints a table and writes
//! target/bench/local_platform.json.
//!
//! 1. Warm invoke overhead: client time of warm invocations whose handler does no work, minus the
//!    REPORT Duration (the handler's own time as the platform measured it); the same client time under
//!    AWS's Runtime Interface Emulator for reference.
//! 2. Process-mode cold start: client time of invocations forced cold (a configuration update retires the
//!    environment before each), fixture without init work: exec to response.
//! 3. Container-mode cold start vs a bare `docker run` of the same image to its first Runtime API request,
//!    alternating, same CPU and memory limits.
//! 4. Scale: 200 concurrent environments in process mode, 50 in container mode; errors and leftovers.
//! 5. Fidelity, both modes: a fixture whose init sleeps `INIT_DELAY_MS=300` and whose handler sleeps
//!    `WORK_MS=50`; the REPORT line's Init Duration of forced cold starts against 300 ms, and its Duration of
//!    warm invocations against 50 ms plus the Duration of a handler with no work (the platform's own share).

use std::{
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use harness::{
    local::{fixtures, leftovers, FunctionSpec, ModeChoice, Platform, PlatformConfig, Source},
    platform::lambda_client::LambdaClient,
};
use serde_json::{json, Value};

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn spec(name: &str, memory_mb: u32) -> FunctionSpec {
    let mut f = FunctionSpec::new(name, Source::Fixture("rust".into()));
    f.memory_mb = memory_mb;
    f.init_timeout_s = 120.0;
    f.timeout_s = 60.0;
    f
}

async fn platform(mode: ModeChoice, fs: Vec<FunctionSpec>) -> Result<Platform> {
    let mut c = PlatformConfig::new(fs);
    c.mode = mode;
    Ok(Platform::start(c).await?)
}

async fn warm(mode: ModeChoice, memory: u32, n: usize) -> Result<Value> {
    let p = platform(mode, vec![spec("f", memory)]).await?;
    let c = LambdaClient::new(p.invoke_url(), "bench");
    for _ in 0..20 {
        c.invoke("f", &json!({}), true).await?;
    }
    let (mut client, mut overhead, mut duration) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let o = c.invoke("f", &json!({}), true).await?;
        ensure!(o.status == 200 && o.function_error.is_none(), "warm invoke failed: {o:?}");
        let r = o.report.context("REPORT line")?;
        client.push(ms(o.latency));
        duration.push(r.duration_ms);
        overhead.push(ms(o.latency) - r.duration_ms);
    }
    let id = p.run_id().to_string();
    p.shutdown().await;
    ensure!(leftovers(&id) == Default::default(), "warm bench left environments");
    Ok(json!({"n": n, "client_p50_ms": pct(&client, 50.0), "report_duration_p50_ms": pct(&duration, 50.0),
              "overhead_p50_ms": pct(&overhead, 50.0), "overhead_p95_ms": pct(&overhead, 95.0)}))
}

async fn warm_rie(n: usize) -> Result<Value> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let api = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = tokio::process::Command::new(fixtures::runtime_interface_emulator()?)
        .args([
            "--runtime-interface-emulator-address",
            &format!("127.0.0.1:{port}"),
            "--runtime-api-address",
            &format!("127.0.0.1:{api}"),
        ])
        .arg(fixtures::build_rust_fixture()?)
        .env("AWS_LAMBDA_FUNCTION_NAME", "f")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(start.elapsed() < Duration::from_secs(30), "RIE did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = LambdaClient::new(format!("http://127.0.0.1:{port}"), "bench");
    for _ in 0..20 {
        c.invoke("function", &json!({}), false).await?;
    }
    let mut client = Vec::new();
    for _ in 0..n {
        let o = c.invoke("function", &json!({}), false).await?;
        ensure!(o.status == 200, "RIE invoke failed");
        client.push(ms(o.latency));
    }
    if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ok(json!({"n": n, "client_p50_ms": pct(&client, 50.0), "client_p95_ms": pct(&client, 95.0)}))
}

/// Cold invocations (each after a configuration update retired the environment): client time and Init
/// Duration.
async fn cold(p: &Platform, c: &LambdaClient, i: usize) -> Result<(f64, f64)> {
    c.update_configuration("f", &json!({"Environment": {"Variables": {"ROUND": i.to_string()}}})).await?;
    // The retired environment's container is removed in the background; let the engine finish that first,
    // so the cold start is not measured against a concurrent removal.
    let start = Instant::now();
    while leftovers(p.run_id()).containers > 0 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let o = c.invoke("f", &json!({}), true).await?;
    ensure!(o.status == 200 && o.json().is_some_and(|v| v["cold"] == json!(true)), "not a cold start: {o:?}");
    Ok((ms(o.latency), o.report.and_then(|r| r.init_duration_ms).context("Init Duration")?))
}

async fn cold_process(n: usize) -> Result<Value> {
    let p = platform(ModeChoice::Process, vec![spec("f", 128)]).await?;
    let c = LambdaClient::new(p.invoke_url(), "bench");
    cold(&p, &c, 0).await?;
    let (mut client, mut init) = (Vec::new(), Vec::new());
    for i in 1..=n {
        let (a, b) = cold(&p, &c, i).await?;
        client.push(a);
        init.push(b);
    }
    p.shutdown().await;
    Ok(
        json!({"n": n, "client_p50_ms": pct(&client, 50.0), "client_p95_ms": pct(&client, 95.0), "init_duration_p50_ms": pct(&init, 50.0)}),
    )
}

/// Fidelity of the REPORT line in `mode`: Init Duration of `n` forced cold starts of a 300 ms init, and
/// Duration of `n` warm invocations of a 50 ms handler beside one with no work.
async fn fidelity(mode: ModeChoice, n: usize) -> Result<Value> {
    let vars = |round: usize, work: bool| {
        let mut v = json!({"INIT_DELAY_MS": "300", "INIT_MODE": "sleep", "ROUND": round.to_string()});
        if work {
            v["WORK_MS"] = json!("50");
            v["WORK_MODE"] = json!("sleep");
        }
        json!({"Environment": {"Variables": v}})
    };
    let p = platform(mode, vec![spec("f", 1769)]).await?;
    let c = LambdaClient::new(p.invoke_url(), "bench");
    let (mut init, mut work, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=n {
        c.update_configuration("f", &vars(i, true)).await?;
        let start = Instant::now();
        while leftovers(p.run_id()).containers > 0 && start.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let o = c.invoke("f", &json!({}), true).await?;
        ensure!(o.status == 200 && o.json().is_some_and(|v| v["cold"] == json!(true)), "not a cold start: {o:?}");
        // The first round starts the engine's caches; it is not counted.
        if i > 0 {
            init.push(o.report.and_then(|r| r.init_duration_ms).context("Init Duration")?);
        }
    }
    for (vars, out) in [(vars(n + 1, true), &mut work), (vars(n + 2, false), &mut idle)] {
        c.update_configuration("f", &vars).await?;
        c.invoke("f", &json!({}), true).await?;
        for _ in 0..n {
            let o = c.invoke("f", &json!({}), true).await?;
            ensure!(o.json().is_some_and(|v| v["cold"] == json!(false)), "not warm: {o:?}");
            out.push(o.report.map(|r| r.duration_ms).context("Duration")?);
        }
    }
    p.shutdown().await;
    let (i50, w50, o50) = (pct(&init, 50.0), pct(&work, 50.0), pct(&idle, 50.0));
    Ok(json!({
        "n": n,
        "init_duration_p50_ms": i50,
        "init_vs_300ms_pct": (i50 / 300.0 - 1.0) * 100.0,
        "work_duration_p50_ms": w50,
        "no_work_duration_p50_ms": o50,
        "work_vs_50ms_plus_overhead_pct": (w50 / (50.0 + o50) - 1.0) * 100.0,
    }))
}

/// A bare `docker run` of `image` to its first Runtime API request (received on our own listener).
fn bare_docker_run(image: &str, memory_mb: u32, cpus: f64) -> Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let name = format!("perf-acceptance-bench-{}-{port}", std::process::id());
    let start = Instant::now();
    let mut child = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--name",
            &name,
            "--network",
            "host",
            "--memory",
            &format!("{memory_mb}m"),
            "--cpus",
            &format!("{cpus:.3}"),
        ])
        .args(["-e", &format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}"), "-e", "AWS_LAMBDA_FUNCTION_NAME=f"])
        .args([
            "-e",
            &format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE={memory_mb}"),
            "-e",
            "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
        ])
        .args(["-e", "AWS_LAMBDA_LOG_STREAM_NAME=s", "-e", "AWS_LAMBDA_LOG_GROUP_NAME=g", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let (mut s, _) = listener.accept()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    let elapsed = ms(start.elapsed());
    ensure!(
        String::from_utf8_lossy(&buf[..n]).starts_with("GET /2018-06-01/runtime/invocation/next"),
        "unexpected first request"
    );
    let _ = Command::new("docker").args(["rm", "-f", &name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    let _ = child.wait();
    Ok(elapsed)
}

async fn cold_container(n: usize) -> Result<Value> {
    let memory = 1769;
    let p = platform(ModeChoice::Container, vec![spec("f", memory)]).await?;
    let image = fixtures::rust_fixture_image()?;
    let c = LambdaClient::new(p.invoke_url(), "bench");
    cold(&p, &c, 0).await?;
    bare_docker_run(&image, memory, 1.0)?;
    let (mut platform_ms, mut init, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=n {
        let (a, b) = cold(&p, &c, i).await?;
        platform_ms.push(a);
        init.push(b);
        bare.push(tokio::task::block_in_place(|| bare_docker_run(&image, memory, 1.0))?);
    }
    let id = p.run_id().to_string();
    p.shutdown().await;
    ensure!(leftovers(&id) == Default::default(), "container cold bench left environments");
    let (pm, bm) = (pct(&platform_ms, 50.0), pct(&bare, 50.0));
    Ok(
        json!({"n": n, "memory_mb": memory, "platform_cold_invoke_p50_ms": pm, "platform_init_duration_p50_ms": pct(&init, 50.0),
              "bare_docker_run_to_first_next_p50_ms": bm, "ratio_p50": pm / bm}),
    )
}

async fn scale(mode: ModeChoice, n: usize, memory: u32) -> Result<Value> {
    let p = platform(mode, vec![spec("f", memory)]).await?;
    let c = LambdaClient::new(p.invoke_url(), "bench");
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let c = c.clone();
        set.spawn(async move { c.invoke("f", &json!({"work_ms": 2000, "work_mode": "sleep"}), false).await });
    }
    let mut peak_envs = 0;
    let mut errors = 0;
    let mut envs = std::collections::BTreeSet::new();
    while !set.is_empty() {
        peak_envs = peak_envs.max(p.environments("f").len());
        tokio::select! {
            r = set.join_next() => match r {
                Some(Ok(Ok(o))) if o.status == 200 && o.function_error.is_none() => { envs.insert(o.json().map(|v| v["env_id"].to_string())); }
                _ => errors += 1,
            },
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let wall = ms(start.elapsed());
    let id = p.run_id().to_string();
    p.shutdown().await;
    let left = leftovers(&id);
    Ok(
        json!({"mode": format!("{mode:?}"), "requests": n, "errors": errors, "distinct_environments": envs.len(), "peak_environments": peak_envs,
              "wall_ms": wall, "left_containers": left.containers, "left_processes": left.processes}),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--fidelity`: only section 5.
    if std::env::args().any(|a| a == "--fidelity") {
        let n = if quick { 5 } else { 15 };
        let out = json!({
            "fidelity_process": fidelity(ModeChoice::Process, n).await?,
            "fidelity_container": fidelity(ModeChoice::Container, n).await?,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let (nw, nc, ncc) = if quick { (100, 10, 5) } else { (500, 30, 15) };
    let mut out = serde_json::Map::new();
    eprintln!("warm invokes (process mode) ...");
    out.insert("warm_process".into(), warm(ModeChoice::Process, 128, nw).await?);
    eprintln!("warm invokes (container mode, 1769 MB = 1 vCPU) ...");
    out.insert("warm_container".into(), warm(ModeChoice::Container, 1769, nw).await?);
    eprintln!("warm invokes under the RIE ...");
    out.insert("warm_rie".into(), warm_rie(nw).await?);
    eprintln!("process-mode cold starts ...");
    out.insert("cold_process".into(), cold_process(nc).await?);
    eprintln!("container-mode cold starts vs bare docker run ...");
    out.insert("cold_container".into(), cold_container(ncc).await?);
    eprintln!("200 concurrent environments, process mode ...");
    out.insert("scale_process".into(), scale(ModeChoice::Process, 200, 128).await?);
    eprintln!("50 concurrent environments, container mode ...");
    out.insert("scale_container".into(), scale(ModeChoice::Container, 50, 128).await?);
    for (key, mode) in [("fidelity_process", ModeChoice::Process), ("fidelity_container", ModeChoice::Container)] {
        eprintln!("{key}: INIT_DELAY_MS=300, WORK_MS=50 ...");
        out.insert(key.into(), fidelity(mode, if quick { 5 } else { 15 }).await?);
    }
    let out = Value::Object(out);
    println!("{}", serde_json::to_string_pretty(&out)?);
    let dir = fixtures::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("local_platform.json"), serde_json::to_string_pretty(&out)?)?;
    Ok(())
}
