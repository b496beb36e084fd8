//! [`Docker`]: the local Docker engine driven through its CLI, building with BuildKit
//! (`DOCKER_BUILDKIT=1 docker build --progress=plain`), reading image sizes and layer history, and running
//! a fixture's tests inside a built image.
//!
//! The CLI is used rather than the engine API because BuildKit builds need the CLI's session (context
//! transfer, Dockerfile-specific ignore files). A CLI from 23.0 on builds with BuildKit only through the
//! buildx plugin; the Debian docker.io CLI (20.10) has it built in. [`Docker::connect`] picks the first CLI
//! on the machine that can, and says why each other one was passed over. Everything created carries the
//! label [`OWNER_LABEL`] (`host:pid`), so leftovers of a killed run are swept by the next one.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::Command;

use super::{
    progress::{parse_plain, Progress},
    Error,
};

/// Label on every image and container this module creates: `hostname:pid` of the creating process.
pub const OWNER_LABEL: &str = "perf-acceptance.build.owner";

const QUICK: Duration = Duration::from_secs(60);

/// Which CLI and engine to use.
#[derive(Debug, Clone, Default)]
pub struct DockerOptions {
    /// The CLI (default: `PERF_ACCEPTANCE_DOCKER`, else `docker` on `PATH`, else `/usr/bin/docker`).
    pub cli: Option<PathBuf>,
    /// Engine address (`unix:///var/run/docker.sock`, `tcp://...`); default: `DOCKER_HOST` or the CLI's own.
    pub host: Option<String>,
}

/// A connected engine and a BuildKit-capable CLI.
#[derive(Debug, Clone)]
pub struct Docker {
    cli: PathBuf,
    host: Option<String>,
    /// CLI version.
    pub client_version: String,
    /// Engine version.
    pub server_version: String,
}

/// One image build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Build context directory.
    pub context: PathBuf,
    /// Dockerfile (its `<name>.dockerignore` beside it applies).
    pub dockerfile: PathBuf,
    /// Tag for the image.
    pub tag: String,
    /// `--no-cache`: no step is looked up in the build cache.
    pub no_cache: bool,
    /// `--network` for `RUN` steps (`host` when the bridge has no outbound route).
    pub network: Option<String>,
    /// Deadline for the whole build.
    pub timeout: Duration,
    /// Leave the image without the owner label [`OWNER_LABEL`], so that [`Docker::sweep`] does not remove it
    /// once this process is gone (an image kept for reuse, tagged by its content).
    pub keep: bool,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image tag.
    pub tag: String,
    /// Wall time of `docker build`, from start to exit, in seconds.
    pub seconds: f64,
    /// When it started and ended (for overlap of concurrent builds).
    pub started: Instant,
    /// When it ended.
    pub finished: Instant,
    /// The parsed progress output.
    pub progress: Progress,
    /// The raw progress output.
    pub log: String,
}

/// One layer of an image, from `docker history`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// The instruction that made it.
    pub created_by: String,
    /// Size in bytes.
    pub size: u64,
}

/// The output of a command run in a container.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    /// Exit code (`None`: killed).
    pub exit_code: Option<i32>,
    /// stdout and stderr.
    pub output: String,
}

impl Docker {
    /// Finds a CLI that builds with BuildKit and checks that the engine answers.
    pub async fn connect(opts: &DockerOptions) -> Result<Docker, Error> {
        let host = opts.host.clone().or_else(|| std::env::var("DOCKER_HOST").ok()).filter(|h| !h.is_empty());
        let shown = host.clone().unwrap_or_else(|| "the default socket".into());
        let candidates =
            match opts.cli.clone().or_else(|| std::env::var_os("PERF_ACCEPTANCE_DOCKER").map(PathBuf::from)) {
                Some(c) => vec![c],
                None => default_clis(),
            };
        if candidates.is_empty() {
            return Err(Error::Engine {
                host: shown,
                detail: "no docker CLI on PATH: install the docker.io package and start dockerd (scripts/setup.sh does both)"
                    .into(),
            });
        }
        let mut tried = Vec::new();
        for cli in candidates {
            let probe = Docker {
                cli: cli.clone(),
                host: host.clone(),
                client_version: String::new(),
                server_version: String::new(),
            };
            let out =
                match probe.output(&["version", "--format", "{{.Client.Version}}|{{.Server.Version}}"], QUICK).await {
                    Ok(o) => o,
                    Err(e) => {
                        tried.push(format!("{}: {e}", cli.display()));
                        continue;
                    }
                };
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let (client, server) = stdout.split_once('|').unwrap_or((stdout.as_str(), ""));
            if !out.status.success() || server.is_empty() {
                let err = String::from_utf8_lossy(&out.stderr);
                return Err(Error::Engine {
                    host: shown,
                    detail: format!(
                        "the engine does not answer `{} version`: {}; start it (scripts/setup.sh starts dockerd) or fix DOCKER_HOST",
                        cli.display(),
                        first_line(&err)
                    ),
                });
            }
            if major(client) >= 23
                && !probe.output(&["buildx", "version"], QUICK).await.is_ok_and(|o| o.status.success())
            {
                tried.push(format!("{} (client {client}) has no buildx plugin", cli.display()));
                continue;
            }
            return Ok(Docker { client_version: client.into(), server_version: server.into(), ..probe });
        }
        Err(Error::NoBuildKit { tried: tried.join("; ") })
    }

    /// The CLI in use.
    pub fn cli(&self) -> &Path {
        &self.cli
    }

    /// The engine address in use, if not the CLI's default.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// A command of this CLI against this engine, with BuildKit on.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.cli);
        c.env("DOCKER_BUILDKIT", "1").env("BUILDKIT_PROGRESS", "plain").stdin(Stdio::null()).kill_on_drop(true);
        if let Some(h) = &self.host {
            c.env("DOCKER_HOST", h);
        }
        c
    }

    async fn output(&self, args: &[&str], timeout: Duration) -> Result<std::process::Output, Error> {
        let mut c = self.command();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let what = format!("`{} {}`", self.cli.display(), args.join(" "));
        match tokio::time::timeout(timeout, c.output()).await {
            Err(_) => Err(Error::Timeout { what, seconds: timeout.as_secs() }),
            Ok(Err(e)) => Err(Error::Engine {
                host: self.host.clone().unwrap_or_else(|| "default".into()),
                detail: format!("cannot run {what}: {e}"),
            }),
            Ok(Ok(o)) => Ok(o),
        }
    }

    /// Runs `docker args...` and returns its stdout, failing with its stderr.
    pub async fn run(&self, args: &[&str]) -> Result<String, Error> {
        let out = self.output(args, QUICK).await?;
        if !out.status.success() {
            return Err(Error::Command {
                args: args.join(" "),
                detail: first_line(&String::from_utf8_lossy(&out.stderr)).into(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Builds an image; a build that fails is an error naming the step and BuildKit's message.
    pub async fn build(&self, req: &BuildRequest) -> Result<Built, Error> {
        let mut c = self.command();
        c.arg("build").arg("--progress=plain").arg("-f").arg(&req.dockerfile).arg("-t").arg(&req.tag);
        if !req.keep {
            c.arg("--label").arg(format!("{OWNER_LABEL}={}", owner()));
        }
        if req.no_cache {
            c.arg("--no-cache");
        }
        if let Some(n) = &req.network {
            c.arg("--network").arg(n);
        }
        c.arg(&req.context).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let out = match tokio::time::timeout(req.timeout, c.output()).await {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("building {}", req.dockerfile.display()),
                    seconds: req.timeout.as_secs(),
                })
            }
            Ok(Err(e)) => {
                return Err(Error::Engine {
                    host: self.host.clone().unwrap_or_else(|| "default".into()),
                    detail: format!("cannot run docker build: {e}"),
                })
            }
            Ok(Ok(o)) => o,
        };
        let finished = Instant::now();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        let progress = parse_plain(&log);
        if !out.status.success() {
            let step = progress.failed_step().map(|s| s.name.clone());
            let detail = progress
                .error
                .clone()
                .or_else(|| progress.failed_step().and_then(|s| s.error.clone()))
                .unwrap_or_else(|| tail(&log, 12));
            return Err(Error::BuildFailed { dockerfile: req.dockerfile.clone(), step, detail });
        }
        Ok(Built {
            tag: req.tag.clone(),
            seconds: (finished - started).as_secs_f64(),
            started,
            finished,
            progress,
            log,
        })
    }

    /// Whether an image exists locally.
    pub async fn image_exists(&self, image: &str) -> Result<bool, Error> {
        Ok(self.output(&["image", "inspect", "--format", "{{.Id}}", image], QUICK).await?.status.success())
    }

    /// Size of an image in bytes, as the engine reports it.
    pub async fn image_size(&self, image: &str) -> Result<u64, Error> {
        let s = self.run(&["image", "inspect", "--format", "{{.Size}}", image]).await?;
        s.trim().parse().map_err(|_| Error::Command {
            args: format!("image inspect {image}"),
            detail: format!("size `{}` is not a number", s.trim()),
        })
    }

    /// The working directory configured in an image (`/` when none).
    pub async fn workdir(&self, image: &str) -> Result<String, Error> {
        let s = self.run(&["image", "inspect", "--format", "{{.Config.WorkingDir}}", image]).await?;
        Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "/".into()))
    }

    /// The layers of an image with their sizes, bottom (base) first; empty layers (metadata) left out.
    pub async fn layers(&self, image: &str) -> Result<Vec<Layer>, Error> {
        let out = self.run(&["history", "--no-trunc", "--human=false", "--format", "{{json .}}", image]).await?;
        let mut layers = Vec::new();
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::Command {
                args: format!("history {image}"),
                detail: format!("unreadable line `{line}`: {e}"),
            })?;
            let size = match &v["Size"] {
                serde_json::Value::String(s) => s.parse().unwrap_or(0),
                serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
                _ => 0,
            };
            if size > 0 {
                layers.push(Layer { created_by: v["CreatedBy"].as_str().unwrap_or_default().to_string(), size });
            }
        }
        layers.reverse();
        Ok(layers)
    }

    /// Removes images (missing ones are ignored).
    pub async fn remove_images(&self, refs: &[String]) {
        if refs.is_empty() {
            return;
        }
        let mut args = vec!["rmi", "-f"];
        args.extend(refs.iter().map(String::as_str));
        let _ = self.output(&args, QUICK).await;
    }

    /// Runs `cmd` in a new container of `image` after copying `files` into `dest` inside it; the
    /// container is removed afterwards, also when this future is dropped.
    pub async fn run_with_files(
        &self,
        image: &str,
        files: &Path,
        dest: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ContainerRun, Error> {
        let (entry, args) =
            cmd.split_first().ok_or_else(|| Error::Param { param: "test command".into(), problem: "empty".into() })?;
        let mut create = vec!["create", "--label"];
        let label = format!("{OWNER_LABEL}={}", owner());
        create.push(&label);
        create.extend(["--entrypoint", entry.as_str(), image]);
        create.extend(args.iter().map(String::as_str));
        let id = self.run(&create).await?.trim().to_string();
        let guard = ContainerGuard { docker: self.clone(), id: id.clone() };
        let target = format!("{id}:{dest}");
        self.run(&["cp", &files.to_string_lossy(), &target]).await?;
        let out = self.output(&["start", "-a", &id], timeout).await?;
        drop(guard);
        Ok(ContainerRun {
            exit_code: out.status.code(),
            output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// Removes images and containers left by processes of this host that no longer run.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let filter = format!("label={OWNER_LABEL}");
        let fmt = format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
        let mut removed = 0;
        let containers = self.run(&["ps", "-a", "--filter", &filter, "--format", &fmt]).await?;
        for id in stale(&containers) {
            removed += usize::from(self.output(&["rm", "-f", &id], QUICK).await.is_ok_and(|o| o.status.success()));
        }
        // `image ls` has no `.Label` placeholder (its template fails on the first row): the owners are read
        // with `image inspect` of the labelled images.
        let ids = self.run(&["image", "ls", "--filter", &filter, "--quiet", "--no-trunc"]).await?;
        let mut ids: Vec<&str> = ids.split_whitespace().collect();
        ids.dedup();
        let images = if ids.is_empty() {
            String::new()
        } else {
            let inspect = format!("{{{{.Id}}}} {{{{index .Config.Labels \"{OWNER_LABEL}\"}}}}");
            let mut args = vec!["image", "inspect", "--format", &inspect];
            args.extend(ids.iter().copied());
            self.run(&args).await?
        };
        for id in stale(&images) {
            removed += usize::from(self.output(&["rmi", "-f", &id], QUICK).await.is_ok_and(|o| o.status.success()));
        }
        Ok(removed)
    }
}

/// Removes a container on drop (synchronously: drop also runs while unwinding from a panic).
struct ContainerGuard {
    docker: Docker,
    id: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let mut c = std::process::Command::new(&self.docker.cli);
        if let Some(h) = &self.docker.host {
            c.env("DOCKER_HOST", h);
        }
        let _ = c.args(["rm", "-f", &self.id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// `hostname:pid` of this process.
pub fn owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Ids from `ID owner` lines whose owner is a process of this host that has exited.
fn stale(listing: &str) -> Vec<String> {
    let me = hostname();
    listing
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, owner)| {
            owner.rsplit_once(':').is_some_and(|(host, pid)| {
                host == me && pid.parse::<u32>().is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
            })
        })
        .map(|(id, _)| id.to_string())
        .collect()
}

fn default_clis() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("docker")).filter(|p| p.is_file()).collect::<Vec<_>>())
        .unwrap_or_default();
    for c in on_path.into_iter().chain([PathBuf::from("/usr/bin/docker")]) {
        let canon = std::fs::canonicalize(&c).unwrap_or(c.clone());
        if c.is_file() && !out.iter().any(|o| std::fs::canonicalize(o).unwrap_or(o.clone()) == canon) {
            out.push(c);
        }
    }
    out
}

fn major(version: &str) -> u32 {
    version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
}

fn first_line(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(no output)")
}

/// The last `n` non-empty lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_23_on_need_buildx() {
        assert_eq!(major("20.10.24+dfsg1"), 20);
        assert_eq!(major("28.2.2"), 28);
        assert_eq!(major(""), 0);
    }

    #[test]
    fn only_leftovers_of_exited_processes_of_this_host_are_stale() {
        let me = hostname();
        let listing =
            format!("aaa {me}:{}\nbbb {me}:4294967294\nccc otherhost:4294967294\nddd garbage\n", std::process::id());
        assert_eq!(stale(&listing), vec!["bbb".to_string()]);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 3), "");
    }
}
