//! [`Session`]: the builds of one `build` measurement: contexts copied from the fixture with the change
//! each build needs, images tagged per run and removed when the session ends (also on panic), each
//! build's figures kept as a [`Measured`] and its progress log written to the run's raw directory.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use super::{
    build_metrics::BuildRecord,
    docker::{BuildRequest, Built},
    fixture::{BuildFixture, Change, Variant},
    progress::Step,
    Docker, Error,
};

/// What a build was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `--no-cache`.
    Clean,
    /// The same context again, cache on.
    Unchanged,
    /// The source file edited, cache on.
    SourceChange,
    /// The dependency manifest edited, cache on.
    DependencyChange,
    /// A source-change build of a concurrent batch.
    Concurrent,
}

impl Kind {
    /// Name in metrics and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Clean => "clean",
            Kind::Unchanged => "unchanged",
            Kind::SourceChange => "source_change",
            Kind::DependencyChange => "dependency_change",
            Kind::Concurrent => "concurrent",
        }
    }
}

/// One build as measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    /// Unique label within the run (`clean-optimized-2`).
    pub label: String,
    /// Which Dockerfile.
    pub variant: Variant,
    /// What for.
    pub kind: Kind,
    /// Wall time of `docker build`, seconds.
    pub seconds: f64,
    /// Start and end, seconds since the session started.
    pub span: (f64, f64),
    /// Cacheable steps served from the cache.
    pub cache_hits: u32,
    /// Cacheable steps.
    pub cache_requests: u32,
    /// Dependency steps served from the cache.
    pub dependency_hits: u32,
    /// Dependency steps.
    pub dependency_steps: u32,
    /// Image size, bytes.
    pub image_size: u64,
    /// The image tag.
    pub tag: String,
    /// BuildKit's steps.
    pub steps: Vec<Step>,
}

impl Measured {
    /// The record pushed as metrics.
    pub fn record(&self) -> BuildRecord {
        BuildRecord {
            dockerfile: self.variant.name().into(),
            kind: self.kind.name().into(),
            seconds: self.seconds,
            cache_hits: self.cache_hits,
            cache_requests: self.cache_requests,
            image_size: self.image_size,
        }
    }
}

/// A prepared build, not yet run.
#[derive(Debug, Clone)]
pub struct Planned {
    label: String,
    variant: Variant,
    kind: Kind,
    request: BuildRequest,
}

/// The builds of one measurement.
pub struct Session {
    /// The engine.
    pub docker: Docker,
    /// The fixture.
    pub fixture: BuildFixture,
    network: Option<String>,
    timeout: Duration,
    tag_prefix: String,
    tmp: tempfile::TempDir,
    logs: PathBuf,
    t0: Instant,
    images: Images,
    /// Every build so far.
    pub builds: Vec<Measured>,
}

impl Session {
    /// A session writing logs under `raw/logs`.
    pub fn new(
        docker: Docker,
        fixture: BuildFixture,
        run: &str,
        raw: &Path,
        network: Option<String>,
        timeout: Duration,
    ) -> Result<Session, Error> {
        let logs = raw.join("logs");
        std::fs::create_dir_all(&logs).map_err(Error::io(&logs))?;
        let tmp = tempfile::Builder::new()
            .prefix("perf-acceptance-build")
            .tempdir()
            .map_err(Error::io(std::env::temp_dir()))?;
        let tag_prefix = format!("perf-acceptance-build/{}:{}", sanitize(&fixture.name), sanitize(run));
        let images = Images { docker: docker.clone(), tags: Vec::new() };
        Ok(Session {
            docker,
            fixture,
            network,
            timeout,
            tag_prefix,
            tmp,
            logs,
            t0: Instant::now(),
            images,
            builds: Vec::new(),
        })
    }

    /// Prepares a build: copies the context with `change` applied.
    pub fn plan(&mut self, label: &str, variant: Variant, kind: Kind, change: &Change) -> Result<Planned, Error> {
        let context = self.fixture.context(self.tmp.path(), label, change)?;
        let tag = format!("{}-{label}", self.tag_prefix);
        self.images.tags.push(tag.clone());
        let request = BuildRequest {
            dockerfile: context.join(variant.dockerfile()),
            context,
            tag,
            no_cache: kind == Kind::Clean,
            network: self.network.clone(),
            timeout: self.timeout,
            keep: false,
        };
        Ok(Planned { label: label.into(), variant, kind, request })
    }

    /// Plans and runs one build.
    pub async fn build(
        &mut self,
        label: &str,
        variant: Variant,
        kind: Kind,
        change: &Change,
    ) -> Result<Measured, Error> {
        let p = self.plan(label, variant, kind, change)?;
        let built = self.docker.build(&p.request).await;
        self.finish(p, built).await
    }

    /// Runs planned builds all at once; each result in plan order (a failed build is its error).
    pub async fn build_concurrently(&mut self, plans: Vec<Planned>) -> (Instant, Vec<Result<Measured, Error>>) {
        let triggered = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in plans.iter().enumerate() {
            let (docker, req) = (self.docker.clone(), p.request.clone());
            set.spawn(async move { (i, docker.build(&req).await) });
        }
        let mut results: Vec<Option<Result<Built, Error>>> = (0..plans.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, r)) => results[i] = Some(r),
                Err(e) => tracing::warn!("a concurrent build task failed: {e}"),
            }
        }
        let mut out = Vec::new();
        for (p, r) in plans.into_iter().zip(results) {
            let r = r.unwrap_or_else(|| {
                Err(Error::Command {
                    args: format!("build {}", p.request.tag),
                    detail: "the build task panicked".into(),
                })
            });
            out.push(self.finish(p, r).await);
        }
        (triggered, out)
    }

    async fn finish(&mut self, p: Planned, built: Result<Built, Error>) -> Result<Measured, Error> {
        let _ = std::fs::remove_dir_all(&p.request.context);
        let built = built.map_err(|e| match e {
            Error::BuildFailed { step, detail, .. } => Error::BuildFailed {
                dockerfile: self.fixture.dir.join(p.variant.dockerfile()),
                step,
                detail: format!("{detail} ({} build `{}`)", p.kind.name().replace('_', " "), p.label),
            },
            other => other,
        })?;
        let log = self.logs.join(format!("{}.log", p.label));
        std::fs::write(&log, &built.log).map_err(Error::io(&log))?;
        let image_size = self.docker.image_size(&built.tag).await?;
        let (cache_hits, cache_requests) = built.progress.cache_counts();
        let (dependency_hits, dependency_steps) = built.progress.dependency_counts();
        let m = Measured {
            label: p.label,
            variant: p.variant,
            kind: p.kind,
            seconds: built.seconds,
            span: ((built.started - self.t0).as_secs_f64(), (built.finished - self.t0).as_secs_f64()),
            cache_hits,
            cache_requests,
            dependency_hits,
            dependency_steps,
            image_size,
            tag: built.tag,
            steps: built.progress.steps,
        };
        self.builds.push(m.clone());
        Ok(m)
    }

    /// Removes an image now (its figures were read).
    pub async fn discard(&mut self, tag: &str) {
        self.docker.remove_images(&[tag.to_string()]).await;
        self.images.tags.retain(|t| t != tag);
    }

    /// Seconds from the session's start to `t`.
    pub fn since_start(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    /// Removes every image the session still holds.
    pub async fn cleanup(&mut self) {
        let tags = std::mem::take(&mut self.images.tags);
        self.docker.remove_images(&tags).await;
    }
}

/// Image tags removed on drop (synchronously, so a panic or a cancelled measurement leaves none).
struct Images {
    docker: Docker,
    tags: Vec<String>,
}

impl Drop for Images {
    fn drop(&mut self) {
        if self.tags.is_empty() {
            return;
        }
        let mut c = std::process::Command::new(self.docker.cli());
        if let Some(h) = self.docker.host() {
            c.env("DOCKER_HOST", h);
        }
        let _ = c.arg("rmi").arg("-f").args(&self.tags).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A tag component: lower-case letters, digits, `.`, `_`, `-`.
fn sanitize(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '-' })
        .collect();
    t.trim_matches(|c| c == '.' || c == '-').chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_made_valid() {
        assert_eq!(sanitize("20260101T120000Z-4242"), "20260101t120000z-4242");
        assert_eq!(sanitize("a/b c"), "a-b-c");
    }
}
