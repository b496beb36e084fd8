//! Records which build of the harness this is (git commit, cargo profile, optimization level) for the
//! environment fingerprint and the run directory. Works without git and outside a clone: the commit is then
//! `HARNESS_GIT_COMMIT` if set, else "unknown".

use std::{env, path::Path, process::Command};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Reruns this script when `path` changes (only an existing file: a missing one would rerun it every build).
fn watch(path: Option<String>) {
    if let Some(p) = path.filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={p}");
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=HARNESS_GIT_COMMIT");
    let commit = env::var("HARNESS_GIT_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        // Rebuild when HEAD moves: HEAD itself and the branch it points at.
        for name in ["HEAD", "logs/HEAD"] {
            watch(git(&["rev-parse", "--git-path", name]));
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(git(&["rev-parse", "--git-path", &branch]));
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=HARNESS_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    // The profile's directory name: target/[<triple>/]<profile>/build/<pkg>-<hash>/out ("debug" for dev).
    let out_dir = env::var("OUT_DIR").unwrap_or_default();
    let profile = Path::new(&out_dir)
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent())
        .and_then(|p| p.file_name())
        .map_or_else(|| "unknown".to_string(), |n| n.to_string_lossy().into_owned());
    println!("cargo:rustc-env=HARNESS_BUILD_PROFILE={profile}");
    println!("cargo:rustc-env=HARNESS_OPT_LEVEL={}", env::var("OPT_LEVEL").unwrap_or_else(|_| "unknown".into()));
}
