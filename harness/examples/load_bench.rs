//! Benchmark of the `load` generator against `wrk` and `oha` on the same loopback HTTP server, in one run, side
//! by side, over several repetitions (medians and ratios):
//!
//! - maximum throughput with the generator pinned to one core (closed model, same connection count for all);
//! - delivered share of an asked rate of 1k and 10k req/s (open model with its default cap of 1024 requests in
//!   flight, connections opened on demand; `oha -q` with the same connection count; `wrk` has no fixed-rate mode);
//! - peak resident memory (VmHWM) over one million requests.
//!
//! Run it in release mode (debug builds are not representative, and it refuses to run as one):
//!
//! ```text
//! cargo run --release -p harness --example load_bench
//! cargo run --release -p harness --example load_bench -- --reps 5 --seconds 5 --rate-seconds 10
//! ```
//!
//! The goals it checks (printed last, and in the JSON): harness/wrk maximum throughput >= 1.0 and generator CPU
//! per request <= wrk's (medians); every run at 1k and 10k req/s delivered in full (every due request sent on
//! time, none dropped); peak resident memory over one million requests under 10 MB.
//!
//! The server (a tiny hyper server, current-thread runtime) is pinned to the last core with `taskset`, every
//! generator to core 0. `wrk` comes from Debian (`scripts/setup.sh`); `oha` is installed from crates.io into
//! `target/load-bench/tools` on first use (it is a benchmark peer only, never a dependency). Results are printed
//! and written to `target/load-bench/results.json`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use harness::load::{LoadSpec, RequestTemplate, Schedule};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Benchmark of the load generator against wrk and oha")]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Repetitions of each measurement.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Length of each maximum-throughput run, seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Length of each fixed-rate run, seconds.
    #[arg(long, default_value_t = 10)]
    rate_seconds: u64,
    /// Connections of every generator.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Requests of the memory run.
    #[arg(long, default_value_t = 1_000_000)]
    memory_requests: u64,
    /// Path of an `oha` binary (default: target/load-bench/tools/bin/oha, installed there if missing).
    #[arg(long)]
    oha: Option<PathBuf>,
    /// Leave `oha` out.
    #[arg(long)]
    no_oha: bool,
}

#[derive(Subcommand)]
enum Role {
    /// (internal) The loopback HTTP server.
    Serve,
    /// (internal) One run of the harness's generator; prints a JSON summary.
    Gen {
        #[arg(long)]
        url: String,
        /// Asked rate (open model); without it, closed model at full speed.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value_t = u64::MAX)]
        requests: u64,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.role {
        Some(Role::Serve) => serve(),
        Some(Role::Gen { ref url, rate, seconds, connections, requests }) => {
            generate(url, rate, seconds, connections, requests)
        }
        None => {
            if cfg!(debug_assertions) {
                bail!("debug builds are not representative: run `cargo run --release -p harness --example load_bench`");
            }
            orchestrate(&args)
        }
    }
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn serve() -> Result<()> {
    use http_body_util::Full;
    use hyper::{server::conn::http1, service::service_fn, Response};
    use hyper_util::rt::TokioIo;
    current_thread()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from_static(
                        b"hello world\n",
                    ))))
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

fn generate(url: &str, rate: Option<f64>, seconds: f64, connections: usize, requests: u64) -> Result<()> {
    let template = RequestTemplate::get(url)?;
    let secs = Duration::from_secs_f64(seconds);
    let spec = match rate {
        Some(r) => LoadSpec::open(template, Schedule::constant(r, secs)?),
        None => LoadSpec::closed(template, connections).duration(secs).max_requests(requests),
    };
    let report = current_thread()?.block_on(spec.run())?;
    let c = report.totals.counts;
    let d = report.delivery();
    let p = |q| report.latency().percentile(q, 0.95).map(|e| e.value);
    let out = json!({
        "scheduled": c.scheduled, "sent": c.sent, "ok": c.ok, "errors": c.errors.total(),
        "dropped": c.dropped, "late": c.late, "on_time_fraction": d.on_time_fraction,
        "elapsed_s": report.elapsed_s, "scheduling_s": report.scheduling_s,
        "rps": c.completed() as f64 / report.scheduling_s,
        "p50_s": p(50.0), "p99_s": p(99.0),
        "corrected_p99_s": report.corrected_latency().and_then(|h| h.percentile(99.0, 0.95)).map(|e| e.value),
        "vmhwm_kb": proc_status_kb("self", "VmHWM"),
        "cpu_s": proc_cpu_s(std::process::id()),
        "connections": report.connections_opened,
    });
    println!("{out}");
    Ok(())
}

/// A child process, killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proc_status_kb(pid: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// user + system CPU seconds of a process (clock ticks of 1/100 s, the Linux default).
fn proc_cpu_s(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// What one measured process did.
struct Sample {
    stdout: String,
    wall_s: f64,
    cpu_s: f64,
    vmhwm_kb: u64,
    server_cpu_s: f64,
}

fn pinned(core: Option<usize>, program: &Path, args: &[String]) -> Command {
    match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program).args(args);
            cmd
        }
        None => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            cmd
        }
    }
}

/// Runs a generator to its end, sampling its CPU time and VmHWM (taskset execs the program: same pid).
fn measure(mut cmd: Command, server_pid: u32) -> Result<Sample> {
    let server_before = proc_cpu_s(server_pid).unwrap_or(0.0);
    let start = Instant::now();
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("{cmd:?}"))?;
    let pid = child.id();
    let mut child = Guard(child);
    let (mut cpu_s, mut vmhwm_kb) = (0.0, 0);
    let stdout = child.0.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    loop {
        if let Some(c) = proc_cpu_s(pid) {
            cpu_s = c;
        }
        if let Some(v) = proc_status_kb(&pid.to_string(), "VmHWM") {
            vmhwm_kb = v;
        }
        if let Some(status) = child.0.try_wait()? {
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                bail!("{cmd:?} failed ({status}): {err}");
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall_s = start.elapsed().as_secs_f64();
    let server_cpu_s = proc_cpu_s(server_pid).unwrap_or(0.0) - server_before;
    let stdout = reader.join().unwrap_or_default();
    Ok(Sample { stdout, wall_s, cpu_s, vmhwm_kb, server_cpu_s })
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

fn find_oha(args: &Args) -> Result<PathBuf, String> {
    if let Some(p) = &args.oha {
        return Ok(p.clone());
    }
    let root = target_dir().join("load-bench").join("tools");
    let bin = root.join("bin").join("oha");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("load_bench: installing oha into {} (cargo install, one time)", root.display());
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "oha", "--locked", "--root"])
        .arg(&root)
        .status()
        .map_err(|e| format!("cargo install oha: {e}"))?;
    if status.success() && bin.exists() {
        Ok(bin)
    } else {
        Err(format!("cargo install oha failed ({status})"))
    }
}

struct Tools {
    me: PathBuf,
    wrk: Option<PathBuf>,
    oha: Result<PathBuf, String>,
    gen_core: Option<usize>,
    url: String,
    server_pid: u32,
    connections: usize,
}

impl Tools {
    fn ours(&self, rate: Option<f64>, seconds: f64, requests: Option<u64>) -> Result<(Value, Sample)> {
        let mut a: Vec<String> = vec!["gen".into(), "--url".into(), self.url.clone()];
        a.extend(["--seconds".into(), seconds.to_string(), "--connections".into(), self.connections.to_string()]);
        if let Some(r) = rate {
            a.extend(["--rate".into(), r.to_string()]);
        }
        if let Some(n) = requests {
            a.extend(["--requests".into(), n.to_string()]);
        }
        let s = measure(pinned(self.gen_core, &self.me, &a), self.server_pid)?;
        let v: Value = serde_json::from_str(s.stdout.trim()).with_context(|| format!("gen output {:?}", s.stdout))?;
        Ok((v, s))
    }

    fn wrk(&self, seconds: u64) -> Result<Option<(f64, Sample)>> {
        let Some(wrk) = &self.wrk else { return Ok(None) };
        let a = vec!["-t1".into(), format!("-c{}", self.connections), format!("-d{seconds}s"), self.url.clone()];
        let s = measure(pinned(self.gen_core, wrk, &a), self.server_pid)?;
        let rps = s
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("wrk output: {}", s.stdout))?;
        Ok(Some((rps, s)))
    }

    fn oha(&self, extra: &[String]) -> Result<Option<(Value, Sample)>> {
        let Ok(oha) = &self.oha else { return Ok(None) };
        let mut a: Vec<String> = vec!["--no-tui".into(), "--output-format".into(), "json".into()];
        a.extend(["-c".into(), self.connections.to_string()]);
        a.extend(extra.iter().cloned());
        a.push(self.url.clone());
        let s = measure(pinned(self.gen_core, oha, &a), self.server_pid)?;
        let v: Value = serde_json::from_str(s.stdout.trim()).with_context(|| format!("oha output {:?}", s.stdout))?;
        Ok(Some((v, s)))
    }
}

fn oha_total(v: &Value) -> f64 {
    let s = &v["summary"];
    let dist: f64 = v["statusCodeDistribution"].as_object().map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum());
    if dist > 0.0 {
        dist
    } else {
        s["requestsPerSec"].as_f64().unwrap_or(0.0) * s["total"].as_f64().unwrap_or(0.0)
    }
}

fn orchestrate(args: &Args) -> Result<()> {
    let me = std::env::current_exe()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset").arg("-V").output().is_ok();
    let (server_core, gen_core) = if cores >= 2 && taskset { (Some(cores - 1), Some(0)) } else { (None, None) };
    if gen_core.is_none() {
        eprintln!("load_bench: fewer than 2 cores or no taskset: server and generators are not pinned");
    }
    let wrk = Command::new("wrk").arg("--version").output().ok().map(|_| PathBuf::from("wrk"));
    let oha = if args.no_oha { Err("left out (--no-oha)".to_string()) } else { find_oha(args) };
    if let Err(why) = &oha {
        eprintln!("load_bench: oha unavailable: {why}");
    }

    let mut server = Guard(pinned(server_core, &me, &["serve".into()]).stdout(Stdio::piped()).spawn()?);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let addr = line.trim().strip_prefix("listening ").context("server did not say where it listens")?.to_string();
    let t = Tools {
        me,
        wrk,
        oha,
        gen_core,
        url: format!("http://{addr}/"),
        server_pid: server.0.id(),
        connections: args.connections,
    };
    println!(
        "load_bench: server {} on core {:?}, generators on core {:?}, {} connections, {} repetitions",
        t.url, server_core, gen_core, t.connections, args.reps
    );
    t.ours(None, 1.0, None)?;

    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string();
    println!("load_bench: /proc/loadavg at start: {} (other work on the machine skews every figure)", loadavg());
    let mut results = json!({ "connections": t.connections, "reps": args.reps, "cores": cores,
        "server_core": server_core, "generator_core": gen_core, "loadavg_start": loadavg() });

    // 1. Maximum throughput, tools interleaved so drift hits all alike.
    let (mut ours_rps, mut wrk_rps, mut oha_rps) = (vec![], vec![], vec![]);
    let (mut ours_util, mut wrk_util, mut oha_util) = (vec![], vec![], vec![]);
    let (mut ours_cpu, mut wrk_cpu, mut oha_cpu) = (vec![], vec![], vec![]);
    for rep in 0..args.reps {
        for turn in 0..3 {
            match (rep + turn) % 3 {
                0 => {
                    let (v, s) = t.ours(None, args.seconds as f64, None)?;
                    let rps = v["rps"].as_f64().unwrap_or(0.0);
                    ours_rps.push(rps);
                    ours_util.push(s.server_cpu_s / s.wall_s);
                    ours_cpu.push(s.cpu_s * 1e6 / (rps * args.seconds as f64));
                }
                1 => {
                    if let Some((rps, s)) = t.wrk(args.seconds)? {
                        wrk_rps.push(rps);
                        wrk_util.push(s.server_cpu_s / s.wall_s);
                        wrk_cpu.push(s.cpu_s * 1e6 / (rps * args.seconds as f64));
                    }
                }
                _ => {
                    if let Some((v, s)) = t.oha(&["-z".into(), format!("{}s", args.seconds)])? {
                        let rps = v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0);
                        oha_rps.push(rps);
                        oha_util.push(s.server_cpu_s / s.wall_s);
                        oha_cpu.push(s.cpu_s * 1e6 / (rps * args.seconds as f64));
                    }
                }
            }
        }
        eprintln!("load_bench: throughput rep {} done", rep + 1);
    }
    let (mo, mw, mh) = (median(ours_rps.clone()), median(wrk_rps.clone()), median(oha_rps.clone()));
    println!(
        "\n## Maximum throughput, generator pinned to one core ({} s runs, median of {})",
        args.seconds, args.reps
    );
    println!("| tool | req/s (median) | runs | generator CPU µs/request | server core busy |");
    println!("|---|---|---|---|---|");
    for (name, m, runs, cpu, util) in [
        ("harness load", mo, &ours_rps, &ours_cpu, &ours_util),
        ("wrk", mw, &wrk_rps, &wrk_cpu, &wrk_util),
        ("oha", mh, &oha_rps, &oha_cpu, &oha_util),
    ] {
        let runs: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "| {name} | {m:.0} | {} | {:.2} | {:.0}% |",
            runs.join(", "),
            median(cpu.clone()),
            100.0 * median(util.clone())
        );
    }
    println!("ratio harness/wrk = {:.3}, harness/oha = {:.3}", mo / mw, mo / mh);
    results["throughput"] = json!({
        "ours_rps": ours_rps, "wrk_rps": wrk_rps, "oha_rps": oha_rps,
        "median": {"ours": mo, "wrk": mw, "oha": mh},
        "ratio_vs_wrk": mo / mw, "ratio_vs_oha": mo / mh,
        "cpu_us_per_request": {"ours": median(ours_cpu), "wrk": median(wrk_cpu), "oha": median(oha_cpu)},
        "server_core_busy": {"ours": median(ours_util), "wrk": median(wrk_util), "oha": median(oha_util)},
    });

    // 2. Fixed rates.
    let rate_reps = args.reps.clamp(1, 3);
    let secs = args.rate_seconds as f64;
    println!(
        "\n## Asked rates ({} s runs, {} repetitions; delivered = sent on time / asked)",
        args.rate_seconds, rate_reps
    );
    println!("| rate | tool | on time / asked (median) | runs | sent / asked (median) | late | dropped | p99 raw | p99 corrected |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rates = serde_json::Map::new();
    for rate in [1_000.0, 10_000.0] {
        let (mut od, mut os, mut hd) = (vec![], vec![], vec![]);
        let mut last = Value::Null;
        for _ in 0..rate_reps {
            let (v, _) = t.ours(Some(rate), secs, None)?;
            let asked = rate * secs;
            let on_time = v["sent"].as_f64().unwrap_or(0.0) - v["late"].as_f64().unwrap_or(0.0);
            od.push(on_time / asked);
            os.push(v["sent"].as_f64().unwrap_or(0.0) / asked);
            last = v;
            if let Some((v, _)) =
                t.oha(&["-q".into(), rate.to_string(), "-z".into(), format!("{}s", args.rate_seconds)])?
            {
                hd.push(oha_total(&v) / asked);
            }
        }
        let fmt = |v: &[f64]| v.iter().map(|x| format!("{:.4}", x)).collect::<Vec<_>>().join(", ");
        let ms = |v: &Value| v.as_f64().map_or("-".into(), |s| format!("{:.3} ms", s * 1e3));
        println!(
            "| {rate:.0} | harness load | {:.4} | {} | {:.4} | {} | {} | {} | {} |",
            median(od.clone()),
            fmt(&od),
            median(os.clone()),
            last["late"],
            last["dropped"],
            ms(&last["p99_s"]),
            ms(&last["corrected_p99_s"])
        );
        if !hd.is_empty() {
            println!(
                "| {rate:.0} | oha | (not reported by oha) | | {:.4} ({}) | - | - | - | - |",
                median(hd.clone()),
                fmt(&hd)
            );
        }
        println!("| {rate:.0} | wrk | no fixed-rate mode | | | | | | |");
        rates.insert(format!("{rate:.0}"), json!({"ours": od, "ours_sent": os, "oha": hd, "ours_last": last}));
    }
    results["rates"] = Value::Object(rates);

    // 3. Memory over one million requests.
    let (v, s) = t.ours(None, 600.0, Some(args.memory_requests))?;
    let ours_hwm = v["vmhwm_kb"].as_u64().unwrap_or(s.vmhwm_kb);
    println!("\n## Peak resident memory (VmHWM) over {} requests", args.memory_requests);
    println!("| tool | requests completed | VmHWM |");
    println!("|---|---|---|");
    println!("| harness load | {} | {:.1} MB |", v["ok"], ours_hwm as f64 / 1024.0);
    let mut mem = json!({"ours_kb": ours_hwm, "ours_requests": v["ok"]});
    if let Some((hv, hs)) = t.oha(&["-n".into(), args.memory_requests.to_string()])? {
        println!("| oha | {:.0} | {:.1} MB |", oha_total(&hv), hs.vmhwm_kb as f64 / 1024.0);
        mem["oha_kb"] = json!(hs.vmhwm_kb);
    }
    results["memory"] = mem;

    let delivered_min = ["1000", "10000"]
        .iter()
        .filter_map(|r| results["rates"][r]["ours"].as_array())
        .flat_map(|a| a.iter().filter_map(Value::as_f64))
        .fold(f64::INFINITY, f64::min);
    let cpu = &results["throughput"]["cpu_us_per_request"];
    let (ours_cpu, wrk_cpu) = (cpu["ours"].as_f64().unwrap_or(f64::NAN), cpu["wrk"].as_f64().unwrap_or(f64::NAN));
    println!(
        "\n## Against wrk (medians)\nthroughput harness/wrk = {:.3}; generator CPU per request harness {:.2} µs, wrk \
         {:.2} µs (harness/wrk = {:.3}); lowest delivered share at 1k and 10k req/s = {:.4}; VmHWM over {} requests = \
         {:.1} MB",
        mo / mw,
        ours_cpu,
        wrk_cpu,
        ours_cpu / wrk_cpu,
        delivered_min,
        args.memory_requests,
        ours_hwm as f64 / 1024.0
    );
    let goals = json!({
        "throughput_ge_1.0_wrk": mo / mw >= 1.0,
        "cpu_per_request_le_wrk": ours_cpu <= wrk_cpu,
        "delivered_100pct_every_run": delivered_min >= 1.0,
        "memory_lt_10MB": (ours_hwm as f64) < 10.0 * 1024.0,
    });
    println!("\n## Goals\n{}", serde_json::to_string_pretty(&goals)?);
    results["goals"] = goals;
    results["loadavg_end"] = json!(loadavg());
    println!("load_bench: /proc/loadavg at end: {}", loadavg());
    let dir = target_dir().join("load-bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("results: {}", path.display());
    drop(server);
    Ok(())
}
