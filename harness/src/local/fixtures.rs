//! Building the fixture functions: [`build_rust_fixture`] compiles `fixtures/functions/rust-fn` as a static
//! binary (glibc, `+crt-static`) into its own target dir, so it never invalidates the main build cache, and
//! rebuilds only when a source is newer than the binary; [`rust_fixture_image`] wraps it in a `FROM
//! scratch` image tagged by the binary's hash.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::SystemTime,
};

use super::{docker::Docker, Error};

const TARGET: &str = "x86_64-unknown-linux-gnu";
static BUILD: Mutex<()> = Mutex::new(());

/// The repository root (the workspace this harness was built from).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|e| newest_mtime(&e.ok()?.path())).max()
}

/// Builds (when stale) and returns the static Rust fixture binary.
pub fn build_rust_fixture() -> Result<PathBuf, Error> {
    let root = workspace_root();
    let bin = root.join("target/fixtures").join(TARGET).join("release/fixture-fn");
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let sources = [
        root.join("fixtures/functions/rust-fn/src"),
        root.join("fixtures/functions/rust-fn/Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    let newest = sources.iter().filter_map(|p| newest_mtime(p)).max();
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if let (Some(b), Some(n)) = (built, newest) {
        if b >= n {
            return Ok(bin);
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "-p",
            "fixture-fn",
            "--release",
            "--target",
            TARGET,
            "--target-dir",
            "target/fixtures",
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| Error::Build {
            fixture: "rust".into(),
            message: format!("cannot run {}: {e}", cargo.to_string_lossy()),
        })?;
    if !out.status.success() || !bin.exists() {
        return Err(Error::Build {
            fixture: "rust".into(),
            message: format!(
                "`cargo build -p fixture-fn --release --target {TARGET}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    // Cargo leaves an up-to-date binary untouched; stamp it so the mtime check skips cargo next time.
    if let Ok(f) = std::fs::File::options().append(true).open(&bin) {
        let _ = f.set_modified(SystemTime::now());
    }
    Ok(bin)
}

/// FNV-1a of a file: a stable content tag for images.
pub(crate) fn file_hash(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(Error::io(format!("read {}", path.display())))?;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    Ok(format!("{h:016x}"))
}

/// A `FROM scratch` image holding `binary` as `/var/runtime/bootstrap`, tagged `repo:<hash>`; built only
/// when the engine does not have it yet.
pub(crate) fn scratch_image(docker: &Docker, binary: &Path, repo: &str) -> Result<String, Error> {
    let tag = format!("{repo}:{}", file_hash(binary)?);
    if docker.image_exists(&tag)? {
        return Ok(tag);
    }
    let ctx = tempfile::tempdir().map_err(Error::io("temp dir for an image build"))?;
    std::fs::copy(binary, ctx.path().join("bootstrap")).map_err(Error::io(format!("copy {}", binary.display())))?;
    let dockerfile = workspace_root().join("fixtures/functions/rust-fn/Dockerfile");
    std::fs::copy(&dockerfile, ctx.path().join("Dockerfile"))
        .map_err(Error::io(format!("copy {}", dockerfile.display())))?;
    let out = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(ctx.path())
        .env("DOCKER_HOST", format!("unix://{}", docker.socket().display()))
        .output()
        .map_err(|e| Error::Build {
            fixture: repo.into(),
            message: format!("cannot run `docker build` (is the docker CLI installed?): {e}"),
        })?;
    if !out.status.success() {
        return Err(Error::Build {
            fixture: repo.into(),
            message: format!("`docker build -t {tag}` failed: {}", String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(tag)
}

/// The Rust fixture's image (`perf-acceptance/fixture-rust:<hash>`), building binary and image as needed.
pub fn rust_fixture_image() -> Result<String, Error> {
    let bin = build_rust_fixture()?;
    scratch_image(&Docker::new(None), &bin, "perf-acceptance/fixture-rust")
}

/// AWS's Runtime Interface Emulator, the reference the platform is checked against: the static binary
/// inside the aws-sam-cli wheel on PyPI, fetched once (`pip download --no-deps`) and cached under
/// target/rie/.
pub fn runtime_interface_emulator() -> Result<PathBuf, Error> {
    let dir = workspace_root().join("target/rie");
    let bin = dir.join("aws-lambda-rie-x86_64");
    if bin.is_file() {
        return Ok(bin);
    }
    let fail = |message: String| Error::Build { fixture: "aws-lambda-rie".into(), message };
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let wheel_dir = tempfile::tempdir_in(&dir).map_err(Error::io("temp dir for the aws-sam-cli wheel"))?;
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "aws-sam-cli", "-d"])
        .arg(wheel_dir.path())
        .output()
        .map_err(|e| fail(format!("cannot run python3 -m pip (needed to fetch the RIE from PyPI): {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "`pip download --no-deps aws-sam-cli` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let script = "import glob, os, sys, zipfile\n\
                  w = glob.glob(os.path.join(sys.argv[1], 'aws_sam_cli-*.whl'))[0]\n\
                  data = zipfile.ZipFile(w).read('samcli/local/rapid/aws-lambda-rie-x86_64')\n\
                  tmp = sys.argv[2] + '.part' + str(os.getpid())\n\
                  open(tmp, 'wb').write(data)\n\
                  os.chmod(tmp, 0o755)\n\
                  os.replace(tmp, sys.argv[2])\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(wheel_dir.path())
        .arg(&bin)
        .output()
        .map_err(|e| fail(format!("cannot run python3: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "extracting samcli/local/rapid/aws-lambda-rie-x86_64 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(bin)
}
