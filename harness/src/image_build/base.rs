//! [`ensure_base_images`]: the locally made base images (`perf-acceptance/debian-base:bookworm` from
//! debootstrap, `perf-acceptance/python:3.11` and `:3.11-slim` on top of it), made by
//! `fixtures/images/python.sh` when one is missing and reused otherwise. No registry can be pulled from
//! where this runs, so these stand in for the official images the seeds' Dockerfiles start from.
//!
//! Making them takes minutes on a cold machine and several test processes may need them at once, so the
//! script runs under an exclusive lock on a file in the temp directory, and each process checks again once
//! it holds the lock.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use super::{docker::tail, fixture::repo_root, Docker, Error};

/// Every image the script makes.
pub const BASE_IMAGES: &[&str] =
    &["perf-acceptance/debian-base:bookworm", "perf-acceptance/python:3.11-slim", "perf-acceptance/python:3.11"];

const DEADLINE: Duration = Duration::from_secs(20 * 60);

/// What [`ensure_base_images`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaseImages {
    /// Whether this call made any of them (else they existed).
    pub made: bool,
    /// Seconds spent making them (0 when they existed).
    pub seconds: f64,
    /// Each image with its size in bytes.
    pub sizes: Vec<(String, u64)>,
}

/// Makes the base images `needed` unless they exist. Images outside [`BASE_IMAGES`] must exist already.
pub async fn ensure_base_images(docker: &Docker, needed: &[String]) -> Result<BaseImages, Error> {
    let script = repo_root().join("fixtures/images/python.sh");
    let mut made = false;
    let mut seconds = 0.0;
    if !all_exist(docker, needed).await? {
        let lock_path = std::env::temp_dir().join("perf-acceptance-base-images.lock");
        let lock = tokio::task::spawn_blocking({
            let p = lock_path.clone();
            move || -> std::io::Result<std::fs::File> {
                let f = std::fs::File::options().create(true).truncate(false).write(true).open(&p)?;
                f.lock()?;
                Ok(f)
            }
        })
        .await
        .map_err(|e| Error::BaseImage { script: script.clone(), detail: format!("lock task failed: {e}") })?
        .map_err(Error::io(&lock_path))?;
        if !all_exist(docker, needed).await? {
            let unknown: Vec<&String> = needed.iter().filter(|n| !BASE_IMAGES.contains(&n.as_str())).collect();
            if !unknown.is_empty() {
                return Err(Error::BaseImage {
                    script,
                    detail: format!("{unknown:?} are not made by it and do not exist; build them first"),
                });
            }
            let start = Instant::now();
            run_script(docker, &script).await?;
            seconds = start.elapsed().as_secs_f64();
            made = true;
        }
        drop(lock);
    }
    let mut sizes = Vec::new();
    for image in needed {
        sizes.push((image.clone(), docker.image_size(image).await?));
    }
    Ok(BaseImages { made, seconds, sizes })
}

async fn all_exist(docker: &Docker, images: &[String]) -> Result<bool, Error> {
    for i in images {
        if !docker.image_exists(i).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn run_script(docker: &Docker, script: &PathBuf) -> Result<(), Error> {
    if !script.is_file() {
        return Err(Error::BaseImage { script: script.clone(), detail: "script not found".into() });
    }
    let mut c = tokio::process::Command::new("bash");
    c.arg(script)
        .env("DOCKER", docker.cli())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(h) = docker.host() {
        c.env("DOCKER_HOST", h);
    }
    if let Ok(n) = std::env::var("PERF_ACCEPTANCE_BUILD_NETWORK") {
        c.env("NETWORK", n);
    }
    let out = tokio::time::timeout(DEADLINE, c.output())
        .await
        .map_err(|_| Error::Timeout {
            what: format!("{} (base images)", script.display()),
            seconds: DEADLINE.as_secs(),
        })?
        .map_err(|e| Error::BaseImage { script: script.clone(), detail: format!("cannot run bash: {e}") })?;
    if !out.status.success() {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        return Err(Error::BaseImage {
            script: script.clone(),
            detail: format!("exit {}: {}", out.status, tail(&text, 15)),
        });
    }
    Ok(())
}
