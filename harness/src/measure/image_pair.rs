//! `cold_start.baseline_reduction` on the local target: [`Pair`] names a build fixture (`images: python-fn`, a
//! directory with `Dockerfile.baseline` and `Dockerfile.optimized`), and [`measure`] builds its two images on
//! the local Docker engine (or reuses them: each is tagged with a hash of its build context, Dockerfile and
//! base images), runs each as a function of the embedded platform, measures their cold starts with the shared
//! cold-start series of [`super::start`] in alternating blocks (so a change of the machine's load falls on
//! both), and reports the reduction of the median Init Duration of the optimized image against the baseline
//! one, with a bootstrap 95% interval, the smaller sample count, and both ledgers.
//!
//! Parameter `images`: a fixture name or path, or `{ fixture, memory_mb (1024), baseline_environment,
//! optimized_environment }`; the environments are the functions' variables (the fixture's knobs, e.g.
//! `INIT_DELAY_MS`). `samples`, `max_failures` and `force_new_env` of `cold_start` apply to each image; the
//! failure budget covers the two images' attempts together.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use serde_json::Value;

use super::{
    local_session::{put_chart, P},
    start::{cold_series, ColdSample},
    Error, Ledger, MeasurementSet, Metric,
};
use crate::{
    criteria::Params,
    image_build::{ensure_base_images, BuildFixture, BuildRequest, Change, Docker, DockerOptions, Variant},
    local::{FunctionSpec, Source},
    measure::raw::LatencySamples,
    platform::{
        local::{LocalFunctions, Session},
        LocalConfig,
    },
    run_dir::RunDir,
};

/// Cold starts of one image before the other image takes its turn.
const BLOCK: u64 = 5;
/// Memory size of the two functions unless `images` sets `memory_mb` (CPU share 0.58 vCPU).
const MEMORY_MB: u32 = 1024;
/// Bootstrap resamples of the ratio of medians, and its fixed seed (the interval is reproducible).
const RESAMPLES: usize = 2000;
const SEED: u64 = 0x1ea5_ba5e;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    fixture: String,
    #[serde(default)]
    memory_mb: Option<u32>,
    #[serde(default)]
    baseline_environment: BTreeMap<String, String>,
    #[serde(default)]
    optimized_environment: BTreeMap<String, String>,
}

/// The image pair a `cold_start` measurement on the local target compares.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    fixture: BuildFixture,
    memory_mb: u32,
    environment: [BTreeMap<String, String>; 2],
}

const VARIANTS: [Variant; 2] = [Variant::Baseline, Variant::Optimized];

fn param(problem: String) -> Error {
    Error::Param { procedure: "cold_start".into(), param: "images".into(), problem }
}

impl Pair {
    /// The pair `procedure`'s parameters name (`images`), checked before anything starts: a fixture without
    /// both Dockerfiles is an error naming it. `None` for other procedures or without `images`.
    pub fn of(procedure: &str, params: &Params) -> Result<Option<Pair>, Error> {
        let Some(v) = params.get("images").filter(|_| procedure == "cold_start") else { return Ok(None) };
        let raw = match v {
            Value::String(s) => Raw {
                fixture: s.clone(),
                memory_mb: None,
                baseline_environment: BTreeMap::new(),
                optimized_environment: BTreeMap::new(),
            },
            Value::Object(_) => serde_json::from_value(v.clone()).map_err(|e| {
                param(format!(
                    "{e} (expected a build fixture, or {{ fixture, memory_mb, baseline_environment, optimized_environment }} with string values in the environments)"
                ))
            })?,
            other => return Err(param(format!("expected a build fixture name or path, got {other}"))),
        };
        let fixture = BuildFixture::resolve(&raw.fixture).map_err(|e| {
            param(format!("`{}` is not a build fixture with a baseline and an optimized image: {e}", raw.fixture))
        })?;
        let memory_mb = raw.memory_mb.unwrap_or(MEMORY_MB);
        if !(128..=10240).contains(&memory_mb) {
            return Err(param(format!("memory_mb {memory_mb} is outside 128..=10240")));
        }
        Ok(Some(Pair { fixture, memory_mb, environment: [raw.baseline_environment, raw.optimized_environment] }))
    }

    fn function(&self, v: Variant) -> String {
        format!("{}-{}", self.fixture.name, v.name())
    }
}

/// Completes the local `cold_start` set with `baseline_reduction` of `pair`. `engine` is the platform's mode:
/// `Err(note)` when it runs processes, which cannot run images (the metric is then missing, saying so).
pub(crate) async fn measure(
    mut set: MeasurementSet,
    pair: Pair,
    engine: Result<(), String>,
    params: &Params,
    cfg: &LocalConfig,
    dir: &RunDir,
) -> Result<MeasurementSet, Error> {
    if let Err(mode) = engine {
        set.metrics.insert(
            "baseline_reduction".into(),
            Metric::Missing {
                reason: format!(
                    "{mode}; the images of `{}` run as functions only on a Docker engine (container mode)",
                    pair.fixture.name
                ),
            },
        );
        return Ok(set);
    }
    let p = P { procedure: "cold_start", params };
    let samples = p.count("samples", 30)?;
    let budget = p.u64("max_failures", 0)?;
    let force = p.bool("force_new_env", true)?;
    let docker = Docker::connect(&DockerOptions::default()).await?;
    let bases = ensure_base_images(&docker, &pair.fixture.local_base_images()?).await?;
    if bases.made {
        set.notes.push(format!("baseline_reduction: base images made locally in {:.0} s", bases.seconds));
    }
    let mut specs = Vec::new();
    for (i, v) in VARIANTS.into_iter().enumerate() {
        let (tag, note) = image(&docker, &pair.fixture, v).await?;
        set.notes.push(format!("baseline_reduction: {} image {note}", v.name()));
        let mut spec = FunctionSpec::new(pair.function(v), Source::Image(tag));
        spec.memory_mb = pair.memory_mb;
        spec.environment = pair.environment[i].clone();
        if !spec.environment.is_empty() {
            let vars: Vec<String> = spec.environment.iter().map(|(k, v)| format!("{k}={v}")).collect();
            set.notes.push(format!("baseline_reduction: {} image function environment {}", v.name(), vars.join(" ")));
        }
        specs.push(spec);
    }
    let session = Session::start(cfg, |c| c.functions.extend(specs.iter().cloned())).await?;
    let body = series(&session, &specs, samples, budget, force).await;
    session.shutdown().await;
    let (got, ledgers) = body?;

    let init: Vec<Vec<f64>> = got.iter().map(|s| s.iter().map(|c| c.init_ms).collect()).collect();
    set.notes.push(format!(
        "baseline_reduction: {samples} cold starts of each image as a function ({} MB) in alternating blocks of {BLOCK}, verified as cold_start verifies them",
        pair.memory_mb
    ));
    let mut merged = Ledger::new(budget);
    for (i, v) in VARIANTS.into_iter().enumerate() {
        let label = format!("cold_start {} image `{}` attempts", v.name(), specs[i].name);
        set.notes.extend(ledgers[i].notes(&label));
        if let Some(m) = median(&init[i]) {
            set.notes.push(format!(
                "baseline_reduction: {} image median Init Duration {m:.1} ms over {} cold starts",
                v.name(),
                init[i].len()
            ));
        }
        merge(&mut merged, &ledgers[i]);
        put_chart(
            &mut set,
            dir,
            &format!("samples-init_duration-{}-image.json", v.name()),
            &LatencySamples { unit: "ms".into(), values: init[i].clone() },
        )?;
    }
    let metric = reduction(&init[0], &init[1]).unwrap_or_else(|| Metric::Missing {
        reason: format!(
            "no median Init Duration of both images: {} of the baseline and {} of the optimized image verified",
            init[0].len(),
            init[1].len()
        ),
    });
    set.metrics.insert("baseline_reduction".into(), metric);
    set.ledgers.insert("baseline_reduction".into(), merged);
    Ok(set)
}

type Series = (Vec<Vec<ColdSample>>, Vec<Ledger>);

/// Cold starts of both functions, `BLOCK` at a time each, until each has had `samples` asked.
async fn series(
    session: &Session,
    specs: &[FunctionSpec],
    samples: u64,
    budget: u64,
    force: bool,
) -> Result<Series, Error> {
    let fps: Vec<LocalFunctions<'_>> = specs.iter().map(|s| LocalFunctions::new(session, &s.name, s.clone())).collect();
    let mut got = vec![Vec::new(), Vec::new()];
    let mut ledgers = vec![Ledger::new(budget), Ledger::new(budget)];
    let mut left = [samples, samples];
    while left.iter().any(|n| *n > 0) {
        for i in 0..2 {
            let k = left[i].min(BLOCK);
            if k == 0 {
                continue;
            }
            let (s, l) = cold_series(&fps[i], k, budget, force).await?;
            got[i].extend(s);
            merge(&mut ledgers[i], &l);
            left[i] -= k;
        }
    }
    Ok((got, ledgers))
}

/// Adds `other`'s attempts to `into` (the samples asked for included).
fn merge(into: &mut Ledger, other: &Ledger) {
    into.attempts += other.attempts;
    into.counted += other.counted;
    into.asked += other.asked;
    for (k, n) in &other.failed {
        *into.failed.entry(k.clone()).or_default() += n;
    }
    for (k, n) in &other.rejected {
        *into.rejected.entry(*k).or_default() += n;
    }
    for (k, v) in &other.first {
        into.first.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

fn median(v: &[f64]) -> Option<f64> {
    super::local_session::quantile(v, 0.5)
}

/// Reduction in % of the median of `optimized` against the median of `baseline`, with the bootstrap 95%
/// interval of the ratio of medians turned around; `n` is the smaller sample.
fn reduction(baseline: &[f64], optimized: &[f64]) -> Option<Metric> {
    let c = crate::stats::ratio_of_medians(baseline, optimized, 0.95, RESAMPLES, SEED)?;
    let pct = |r: f64| (1.0 - r) * 100.0;
    let Metric::Value { value, unit, n, .. } = Metric::value(pct(c.value), "%", c.n_base.min(c.n_new)) else {
        return None;
    };
    Some(Metric::Value { value, unit, n, ci_low: c.ci_high.map(pct), ci_high: c.ci_low.map(pct) })
}

/// The image of `fixture` built with `variant`'s Dockerfile: reused when the engine has the tag of its content
/// hash, else built (BuildKit, cache on) and older tags of the same repository removed. Returns the tag and a
/// note saying which.
async fn image(docker: &Docker, fixture: &BuildFixture, variant: Variant) -> Result<(String, String), Error> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Failed(format!("a temp dir for the build context: {e}")))?;
    let context = fixture.context(tmp.path(), variant.name(), &Change::None)?;
    let mut hash = Fnv::default();
    hash.add(variant.dockerfile().as_bytes());
    for base in fixture.local_base_images()? {
        hash.add(docker.run(&["image", "inspect", "--format", "{{.Id}}", &base]).await?.trim().as_bytes());
    }
    for file in files(&context) {
        hash.add(file.strip_prefix(&context).unwrap_or(&file).to_string_lossy().as_bytes());
        hash.add(&std::fs::read(&file).map_err(|e| Error::Failed(format!("read {}: {e}", file.display())))?);
    }
    let repo = format!("perf-acceptance/pair-{}-{}", repo_name(&fixture.name), variant.name());
    let tag = format!("{repo}:{:016x}", hash.0);
    let size_mb = |b: u64| b as f64 / 1e6;
    if docker.image_exists(&tag).await? {
        let size = docker.image_size(&tag).await?;
        return Ok((
            tag.clone(),
            format!("{tag} ({:.0} MB) reused: built before from the same content", size_mb(size)),
        ));
    }
    let built = docker
        .build(&BuildRequest {
            dockerfile: context.join(variant.dockerfile()),
            context,
            tag: tag.clone(),
            no_cache: false,
            network: std::env::var("PERF_ACCEPTANCE_BUILD_NETWORK").ok(),
            timeout: Duration::from_secs(900),
            keep: true,
        })
        .await?;
    let listed = docker.run(&["image", "ls", &repo, "--format", "{{.Repository}}:{{.Tag}}"]).await?;
    let old: Vec<String> =
        listed.lines().map(str::trim).filter(|t| !t.is_empty() && *t != tag).map(String::from).collect();
    docker.remove_images(&old).await;
    let size = docker.image_size(&tag).await?;
    Ok((
        tag.clone(),
        format!(
            "{tag} ({:.0} MB) built in {:.1} s (kept for the next run; {} older tag(s) removed)",
            size_mb(size),
            built.seconds,
            old.len()
        ),
    ))
}

/// `name` as a Docker repository path component (lowercase letters, digits, `-`).
fn repo_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// FNV-1a, 64 bits, with a separator between the parts.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes.iter().chain([&0xff]) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(images: Value) -> Params {
        [("images".to_string(), images)].into()
    }

    #[test]
    fn the_reduction_is_of_the_medians_with_the_interval_turned_around() {
        let m = reduction(&[400.0, 410.0, 420.0, 430.0, 440.0], &[300.0, 310.0, 315.0, 320.0, 330.0]).unwrap();
        let Metric::Value { value, n, ci_low, ci_high, .. } = m else { panic!("{m:?}") };
        assert!((value - 25.0).abs() < 1e-9, "{value}");
        assert_eq!(n, 5);
        let (lo, hi) = (ci_low.unwrap(), ci_high.unwrap());
        assert!(lo <= value && value <= hi, "{lo} {value} {hi}");
        let worse = reduction(&[100.0, 100.0, 100.0], &[200.0, 200.0, 200.0]).unwrap();
        assert!(matches!(worse, Metric::Value { value, .. } if (value + 100.0).abs() < 1e-9), "{worse:?}");
        assert!(reduction(&[], &[1.0]).is_none());
    }

    #[test]
    fn images_names_a_fixture_with_both_dockerfiles() {
        let pair = Pair::of("cold_start", &params(json!("python-fn"))).unwrap().unwrap();
        assert_eq!((pair.function(Variant::Baseline), pair.memory_mb), ("python-fn-baseline".into(), MEMORY_MB));
        let long =
            json!({ "fixture": "python-fn", "memory_mb": 512, "optimized_environment": { "INIT_DELAY_MS": "100" } });
        let pair = Pair::of("cold_start", &params(long)).unwrap().unwrap();
        assert_eq!((pair.memory_mb, pair.environment[1]["INIT_DELAY_MS"].as_str()), (512, "100"));
        assert!(Pair::of("warm_start", &params(json!("python-fn"))).unwrap().is_none());
        assert!(Pair::of("cold_start", &Params::new()).unwrap().is_none());
        let e = Pair::of("cold_start", &params(json!("rust-fn"))).unwrap_err().to_string();
        assert!(e.contains("images") && e.contains("rust-fn") && e.contains("Dockerfile.baseline"), "{e}");
        let e = Pair::of("cold_start", &params(json!({ "fixture": "python-fn", "memroy_mb": 1 }))).unwrap_err();
        assert!(e.to_string().contains("memroy_mb"), "{e}");
    }

    #[test]
    fn ledgers_merge_attempt_by_attempt() {
        let mut a = Ledger::new(0).asking(3);
        a.count();
        a.fail("timeout", "t");
        let mut b = Ledger::new(0).asking(3);
        b.count();
        b.reject(crate::measure::Rejection::NotCold, "n");
        let mut m = Ledger::new(0);
        merge(&mut m, &a);
        merge(&mut m, &b);
        assert_eq!((m.attempts, m.counted, m.asked, m.failures(), m.rejections()), (4, 2, 6, 1, 1));
        assert!(m.over_budget());
    }
}
