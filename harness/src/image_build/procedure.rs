//! [`measure`]: the `build` procedure on the local Docker engine. It builds a fixture's baseline and
//! optimized Dockerfiles clean (`--no-cache`) `repeats` times each, rebuilds the optimized one unchanged,
//! after source-only changes and after a dependency change, rebuilds the baseline after a source-only
//! change, runs the fixture's tests inside the optimized image, triggers a batch of concurrent builds, and
//! pushes every build's figures to a Pushgateway and reads them back. [`Outcome::metrics`] turns what it
//! saw into the catalog's `build.*` metrics.
//!
//! A clean build looks nothing up in the build cache (`--no-cache`). The engine's cache is not pruned:
//! BuildKit keeps no cache per image, and pruning the engine's would disturb other builds on it.

use std::{collections::BTreeMap, path::Path, path::PathBuf, time::Duration};

use super::{
    base::ensure_base_images,
    build_metrics::BuildMetrics,
    docker::DockerOptions,
    figures,
    fixture::{BuildFixture, Change, TestSummary, Variant},
    outcome::{Batch, Outcome, Recorded, Tests},
    session::{Kind, Session},
    Docker, Error,
};
use crate::{
    criteria::Params,
    measure::types::{self as measure, MeasurementSet},
    metrics::{exposition, Auth, Endpoint},
    platform::Target,
    run_dir::RunDir,
    services::{self, endpoint_from_env, Pushgateway},
};

/// Pushgateway job of the build metrics; the run id is the `instance` of the group.
pub const JOB: &str = "perf_acceptance_build";

/// The procedure's settings, from its parameters.
#[derive(Debug, Clone)]
pub struct Config {
    /// Build fixture: a directory, or a name under `fixtures/functions/`.
    pub fixture: String,
    /// Clean builds per Dockerfile, and source-change builds (`repeats`, or `runs`).
    pub repeats: usize,
    /// Builds asked for in the concurrent batch (default: what the machine allows).
    pub concurrent: Option<usize>,
    /// A Pushgateway to push to (default: a private one started for the run). Its credentials are those of
    /// `HARNESS_PUSHGATEWAY_*` when `HARNESS_PUSHGATEWAY_URL` names the same gateway.
    pub pushgateway: Option<String>,
    /// `--network` for builds.
    pub network: Option<String>,
    /// Which CLI and engine.
    pub docker: DockerOptions,
    /// Deadline per build.
    pub timeout: Duration,
    /// Command running the fixture's tests inside the image (from its working directory).
    pub test_command: Vec<String>,
}

impl Config {
    /// Reads the parameters; unknown ones are ignored (profiles share defaults across procedures).
    pub fn from_params(params: &Params) -> Result<Config, Error> {
        let text = |k: &str| -> Result<Option<String>, Error> {
            match params.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(Error::Param { param: k.into(), problem: format!("expected a string, got {v}") }),
            }
        };
        let number = |k: &str, min: u64, max: u64| -> Result<Option<usize>, Error> {
            match params.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if (min..=max).contains(&n) => Ok(Some(n as usize)),
                    _ => Err(Error::Param {
                        param: k.into(),
                        problem: format!("expected a whole number from {min} to {max}, got {v}"),
                    }),
                },
            }
        };
        let fixture = match (text("fixture")?, text("function")?) {
            (Some(f), _) => f,
            (None, Some(function)) => fixture_of_function(&function)?,
            (None, None) => "python-fn".into(),
        };
        let test_command = match params.get("test_command") {
            None => ["python", "-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."].map(String::from).to_vec(),
            Some(v) => {
                serde_json::from_value::<Vec<String>>(v.clone()).ok().filter(|c| !c.is_empty()).ok_or_else(|| {
                    Error::Param {
                        param: "test_command".into(),
                        problem: format!("expected a list of strings, got {v}"),
                    }
                })?
            }
        };
        Ok(Config {
            fixture,
            repeats: number("repeats", 1, 50)?.or(number("runs", 1, 50)?).unwrap_or(3),
            concurrent: number("concurrent", 1, 1000)?,
            pushgateway: text("pushgateway")?,
            network: text("network")?.or_else(|| std::env::var("PERF_ACCEPTANCE_BUILD_NETWORK").ok()),
            docker: DockerOptions { cli: text("docker_cli")?.map(PathBuf::from), host: text("docker_host")? },
            timeout: Duration::from_secs(number("build_timeout_s", 10, 7200)?.unwrap_or(900) as u64),
            test_command,
        })
    }
}

/// The build fixture of a function (`fixture-python` -> `python-fn`).
fn fixture_of_function(function: &str) -> Result<String, Error> {
    let stem = function.strip_prefix("fixture-").unwrap_or(function);
    let root = super::fixture::repo_root().join("fixtures/functions");
    for dir in [format!("{stem}-fn"), stem.to_string()] {
        if BuildFixture::open(&root.join(&dir)).is_ok() {
            return Ok(dir);
        }
    }
    Err(Error::Param {
        param: "function".into(),
        problem: format!(
            "`{function}` has no build fixture (a directory under fixtures/functions with Dockerfile.baseline and \
             Dockerfile.optimized); the build checks measure `python-fn`: set `build: {{ fixture: python-fn }}` in the profile"
        ),
    })
}

/// The `build` procedure on `target`.
pub async fn measure(params: &Params, target: &Target, dir: &RunDir) -> Result<MeasurementSet, measure::Error> {
    match target {
        Target::Local(_) => {}
        Target::Knative(_) => {
            return Err(measure::Error::NotImplemented { procedure: "build".into(), target: "knative".into() });
        }
        Target::Aws(_) => {
            return Err(measure::Error::NotApplicable {
                target: target.kind().name().into(),
                reason: "AWS Lambda does not build images".into(),
            });
        }
    }
    let cfg = Config::from_params(params)?;
    let raw = dir.raw_dir("build").map_err(|e| measure::Error::Failed(e.to_string()))?;
    let run = dir.info().map(|i| i.id).unwrap_or_else(|_| format!("pid{}", std::process::id()));
    let outcome = run_local(&cfg, &run, &raw).await?;
    let mut set = outcome.metrics(MeasurementSet::new("build", target.kind().name(), params));
    set.raw = outcome
        .raw_files
        .iter()
        .map(|p| p.strip_prefix(dir.path()).map(PathBuf::from).unwrap_or_else(|_| p.clone()))
        .collect();
    Ok(set.finish())
}

/// Runs every build of the procedure and records them; images and the private Pushgateway are gone
/// when it returns, whatever happened.
pub async fn run_local(cfg: &Config, run: &str, raw: &Path) -> Result<Outcome, Error> {
    let docker = Docker::connect(&cfg.docker).await?;
    let swept = docker.sweep().await?;
    let fixture = BuildFixture::resolve(&cfg.fixture)?;
    let gateway = match &cfg.pushgateway {
        Some(url) => {
            let endpoint = gateway_endpoint(url).map_err(gateway_err(url))?;
            Pushgateway::connect(endpoint).await.map_err(gateway_err(url))?
        }
        None => Pushgateway::start(None).await.map_err(gateway_err("a private Pushgateway"))?,
    };
    let base = ensure_base_images(&docker, &fixture.local_base_images()?).await?;
    let mut s = Session::new(docker.clone(), fixture.clone(), run, raw, cfg.network.clone(), cfg.timeout)?;
    let result = measure_builds(cfg, &mut s, run, &gateway, raw).await;
    s.cleanup().await;
    let mut o = result?;
    o.engine = format!(
        "Docker engine {} via {} (client {}, BuildKit)",
        docker.server_version,
        docker.cli().display(),
        docker.client_version
    );
    o.fixture = fixture.dir.display().to_string();
    o.changed_files = (fixture.source_file.display().to_string(), fixture.dependency_file.display().to_string());
    o.base = Some(base);
    o.swept = swept;
    o.repeats = cfg.repeats;
    Ok(o)
}

async fn measure_builds(
    cfg: &Config,
    s: &mut Session,
    run: &str,
    gateway: &Pushgateway,
    raw: &Path,
) -> Result<Outcome, Error> {
    let unique = unique_id();
    let nonce = |what: &str, i: usize| format!("{run}-{unique}-{what}-{i}");
    let mut kept = BTreeMap::new();
    for i in 0..cfg.repeats {
        let order =
            if i % 2 == 0 { [Variant::Baseline, Variant::Optimized] } else { [Variant::Optimized, Variant::Baseline] };
        for v in order {
            let b = s.build(&format!("clean-{}-{i}", v.name()), v, Kind::Clean, &Change::None).await?;
            if i + 1 < cfg.repeats {
                s.discard(&b.tag).await;
            } else {
                kept.insert(v, b.tag);
            }
        }
    }
    let b = s.build("unchanged-optimized", Variant::Optimized, Kind::Unchanged, &Change::None).await?;
    s.discard(&b.tag).await;
    for i in 0..cfg.repeats {
        let b = s
            .build(
                &format!("source-optimized-{i}"),
                Variant::Optimized,
                Kind::SourceChange,
                &Change::Source(nonce("src", i)),
            )
            .await?;
        s.discard(&b.tag).await;
    }
    let b =
        s.build("source-baseline-0", Variant::Baseline, Kind::SourceChange, &Change::Source(nonce("src", 0))).await?;
    s.discard(&b.tag).await;
    let b = s
        .build("deps-optimized-0", Variant::Optimized, Kind::DependencyChange, &Change::Dependencies(nonce("deps", 0)))
        .await?;
    s.discard(&b.tag).await;

    let mut layers = BTreeMap::new();
    for (v, tag) in &kept {
        layers.insert(*v, s.docker.layers(tag).await?);
    }
    let tests = run_tests(cfg, s, &kept[&Variant::Optimized], raw).await?;
    for tag in kept.values() {
        s.discard(tag).await;
    }
    let batch = concurrent_batch(cfg, s, &format!("{run}-{unique}"), gateway, run).await?;

    let mut o = Outcome { builds: s.builds.clone(), layers, tests, batch, ..Outcome::default() };
    o.recorded = Some(record(&o, gateway, run, raw).await?);
    let builds_json = raw.join("builds.json");
    std::fs::write(&builds_json, serde_json::to_vec_pretty(&o.builds).unwrap_or_default())
        .map_err(Error::io(&builds_json))?;
    // The report's chart of the AC1 checks (build times of each Dockerfile, cache hits per rebuild).
    let chart = raw.join(crate::report::charts::BUILD_TIMES_FILE);
    std::fs::write(&chart, serde_json::to_vec_pretty(&o.build_times()).unwrap_or_default())
        .map_err(Error::io(&chart))?;
    o.raw_files = [
        builds_json,
        chart,
        raw.join("logs"),
        raw.join("pushed.prom"),
        raw.join("readback.prom"),
        raw.join("tests.log"),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect();
    Ok(o)
}

/// A value no earlier measurement used: a change must be new to the build cache, also when a run id
/// is reused (a fixed `HARNESS_RUN_ID`, a rerun of the same test).
fn unique_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Runs the fixture's tests inside `image`, with its `tests/` copied into the image's working directory.
async fn run_tests(cfg: &Config, s: &Session, image: &str, raw: &Path) -> Result<Tests, Error> {
    let Some(tests) = &s.fixture.tests else { return Ok(Tests::NoTests) };
    let workdir = s.docker.workdir(image).await?;
    let dest = format!("{}/{}", workdir.trim_end_matches('/'), tests.display());
    let run = s
        .docker
        .run_with_files(image, &s.fixture.dir.join(tests), &dest, &cfg.test_command, Duration::from_secs(300))
        .await?;
    let log = raw.join("tests.log");
    std::fs::write(&log, &run.output).map_err(Error::io(&log))?;
    Ok(match TestSummary::parse(&run.output) {
        Some(summary) => Tests::Ran { summary, exit_code: run.exit_code, command: cfg.test_command.join(" ") },
        None => Tests::Unreadable { exit_code: run.exit_code, tail: super::docker::tail(&run.output, 8) },
    })
}

/// Triggers source-change builds of the optimized Dockerfile all at once, as many as asked and as the
/// machine allows.
async fn concurrent_batch(
    cfg: &Config,
    s: &mut Session,
    run: &str,
    gateway: &Pushgateway,
    group: &str,
) -> Result<Batch, Error> {
    let (cores, available) = figures::machine();
    let allowed = figures::concurrency_bound(cores, available);
    let n = cfg.concurrent.unwrap_or(allowed).min(allowed);
    // `builds_in_progress` while the batch runs; the run's full push that follows sets it back to 0.
    let mut gauge = exposition::Family::new("builds_in_progress", exposition::Kind::Gauge, None);
    let labels = [("builder".to_string(), "buildkit".to_string())].into();
    gauge.samples.push(exposition::Sample::new("builds_in_progress", labels, n as f64));
    let client = gateway.client();
    client.push(JOB, &[("instance", group)], &[gauge]).await.map_err(gateway_err(client.url()))?;
    let mut plans = Vec::new();
    for i in 0..n {
        plans.push(s.plan(
            &format!("concurrent-{i}"),
            Variant::Optimized,
            Kind::Concurrent,
            &Change::Source(format!("{run}-batch-{i}")),
        )?);
    }
    let (triggered, results) = s.build_concurrently(plans).await;
    let mut batch = Batch { asked: cfg.concurrent, allowed, cores, available, ran: n, ..Batch::default() };
    let trigger = s.since_start(triggered);
    for r in results {
        match r {
            Ok(b) => {
                batch.durations.push(b.seconds);
                batch.spans.push(b.span);
                batch.last_end = batch.last_end.max(b.span.1 - trigger);
                s.discard(&b.tag).await;
            }
            Err(e) => {
                let msg = e.to_string();
                batch.oom += u32::from(figures::looks_oom(&msg));
                batch.rate_limited += u32::from(figures::looks_rate_limited(&msg));
                batch.failures.push(msg);
            }
        }
    }
    Ok(batch)
}

/// Pushes the run's builds and final images' layers, then reads the gateway's `/metrics` back.
async fn record(o: &Outcome, gateway: &Pushgateway, run: &str, raw: &Path) -> Result<Recorded, Error> {
    let records: Vec<_> = o.builds.iter().map(|b| b.record()).collect();
    let layers = o
        .layers
        .iter()
        .map(|(v, ls)| (v.name().to_string(), ls.iter().map(|l| (keyword(&l.created_by), l.size)).collect()))
        .collect();
    let metrics = BuildMetrics::new("buildkit", &records, &layers);
    let families = metrics.families();
    let pushed = raw.join("pushed.prom");
    std::fs::write(&pushed, exposition::encode(&families)).map_err(Error::io(&pushed))?;
    let client = gateway.client();
    client.push(JOB, &[("instance", run)], &families).await.map_err(gateway_err(client.url()))?;
    let scrape = client.scrape().await.map_err(gateway_err(client.url()))?;
    let back = raw.join("readback.prom");
    std::fs::write(&back, &scrape).map_err(Error::io(&back))?;
    let source = gateway.endpoint().join("/metrics");
    let differences = metrics
        .compare(&scrape, &source, &[("job", JOB), ("instance", run)])
        .map_err(|e| Error::Pushgateway { endpoint: source.clone(), detail: format!("read back: {e}") })?;
    Ok(Recorded {
        url: gateway.endpoint().url.clone(),
        private: gateway.process().is_some(),
        samples: metrics.len(),
        differences,
    })
}

/// The user's gateway at `url`, with the credentials of `HARNESS_PUSHGATEWAY_*` when they are for it.
fn gateway_endpoint(url: &str) -> Result<Endpoint, services::Error> {
    let url = url.trim_end_matches('/');
    Ok(endpoint_from_env("PUSHGATEWAY")?.filter(|e| e.url == url).unwrap_or_else(|| Endpoint::new(url, Auth::None)))
}

fn gateway_err(endpoint: &str) -> impl FnOnce(services::Error) -> Error {
    let endpoint = endpoint.to_string();
    move |e| Error::Pushgateway { endpoint, detail: e.to_string() }
}

/// The instruction keyword of a history entry (`RUN`, `COPY`, `import` for an imported root filesystem).
fn keyword(created_by: &str) -> String {
    let c = created_by.trim();
    let c = c.strip_prefix("/bin/sh -c #(nop) ").or_else(|| c.strip_prefix("/bin/sh -c ").map(|_| "RUN")).unwrap_or(c);
    match c.split_whitespace().next() {
        Some(w) if w.chars().all(|ch| ch.is_ascii_uppercase()) => w.to_string(),
        Some(_) if c.contains("import") || c.is_empty() => "import".into(),
        Some(_) => "other".into(),
        None => "import".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_pushed_to_a_started_gateway_reads_back_the_same() {
        let gateway = Pushgateway::start(None).await.unwrap();
        let raw = tempfile::tempdir().unwrap();
        // A run id with a slash and a space still names one group.
        let r = record(&Outcome::default(), &gateway, "run 1/a", raw.path()).await.unwrap();
        assert!(r.private && r.samples > 0, "{r:?}");
        assert!(r.differences.is_empty(), "{:?}", r.differences);
        let back = std::fs::read_to_string(raw.path().join("readback.prom")).unwrap();
        assert!(back.contains("builds_in_progress{builder=\"buildkit\",instance=\"run 1/a\""), "{back}");
    }

    #[test]
    fn history_entries_name_their_instruction() {
        assert_eq!(keyword("RUN /bin/sh -c apt-get update # buildkit"), "RUN");
        assert_eq!(keyword("COPY /opt/venv /opt/venv # buildkit"), "COPY");
        assert_eq!(keyword("/bin/sh -c #(nop) COPY file:abc in / "), "COPY");
        assert_eq!(keyword("/bin/sh -c pip install x"), "RUN");
        assert_eq!(keyword(""), "import");
    }

    #[test]
    fn parameters_are_read_with_defaults_and_aliases() {
        let p: Params =
            serde_json::from_value(serde_json::json!({"runs": 5, "function": "fixture-python", "samples": 9})).unwrap();
        let c = Config::from_params(&p).unwrap();
        assert_eq!((c.repeats, c.fixture.as_str(), c.concurrent), (5, "python-fn", None));
        assert_eq!(c.test_command[..3], ["python", "-m", "unittest"].map(String::from));
        let c = Config::from_params(&Params::new()).unwrap();
        assert_eq!((c.repeats, c.fixture.as_str()), (3, "python-fn"));
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let p: Params = serde_json::from_value(serde_json::json!({"repeats": 0})).unwrap();
        assert!(Config::from_params(&p).unwrap_err().to_string().contains("`repeats`"));
        let p: Params = serde_json::from_value(serde_json::json!({"function": "fixture-rust"})).unwrap();
        let e = Config::from_params(&p).unwrap_err().to_string();
        assert!(e.contains("fixture-rust") && e.contains("fixture: python-fn"), "{e}");
        let p: Params = serde_json::from_value(serde_json::json!({"test_command": "pytest"})).unwrap();
        assert!(Config::from_params(&p).unwrap_err().to_string().contains("test_command"));
    }
}
