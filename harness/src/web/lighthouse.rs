//! [`run`]: one Lighthouse run (the `lighthouse` CLI 12.2.3 from npm, installed by `scripts/setup.sh` under
//! `target/tools/lighthouse`) against a page, connected to the Chromium the procedure already runs (its
//! DevTools port), with the performance category only and Lighthouse's default settings (mobile, simulated
//! throttling). The JSON report is kept as evidence; [`performance_score`] reads the score from it.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::Error;
use crate::services::process::{server_dir, ServerProcess};

/// The Lighthouse version the project pins (Lighthouse 13 needs Node 22).
pub const VERSION: &str = "12.2.3";

/// The `lighthouse` program: `HARNESS_LIGHTHOUSE_BIN`, else the project's npm install under
/// `target/tools/lighthouse`.
pub fn locate() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("HARNESS_LIGHTHOUSE_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("HARNESS_LIGHTHOUSE_BIN={} is not a file", p.display())) };
    }
    let p = crate::local::fixtures::workspace_root().join("target/tools/lighthouse/node_modules/.bin/lighthouse");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "lighthouse {VERSION} is not installed at {}: run scripts/setup.sh (npm i -E lighthouse@{VERSION}; Node 20 or later), \
             or set HARNESS_LIGHTHOUSE_BIN",
            p.display()
        ))
    }
}

/// Runs Lighthouse on `url` through the Chromium listening on DevTools `port`, writing its JSON report to
/// `out`; returns the performance score (0-100).
pub async fn run(program: &Path, url: &str, port: u16, out: &Path, deadline: Duration) -> Result<f64, Error> {
    let dir = server_dir("lighthouse")?;
    let args: Vec<OsString> = vec![
        url.into(),
        format!("--port={port}").into(),
        "--hostname=127.0.0.1".into(),
        "--only-categories=performance".into(),
        "--output=json".into(),
        format!("--output-path={}", out.display()).into(),
        "--quiet".into(),
    ];
    let mut process = ServerProcess::spawn_program("lighthouse", program, &args, dir, None)?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = process.exit_status() {
            break status;
        }
        if start.elapsed() > deadline {
            return Err(Error::Tool {
                program: "lighthouse".into(),
                detail: format!("no result within {deadline:?} for {url}; log: {}", process.log_excerpt()),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = std::fs::read_to_string(out).map_err(|e| Error::Tool {
        program: "lighthouse".into(),
        detail: format!("exited ({status}) without a report at {}: {e}; log: {}", out.display(), process.log_excerpt()),
    })?;
    performance_score(&text)
        .map_err(|e| Error::Tool { program: "lighthouse".into(), detail: format!("{}: {e}", out.display()) })
}

/// The performance score (0-100) of a Lighthouse JSON report; a report without one (a runtime error, a
/// page that did not load) is an error naming Lighthouse's reason.
pub fn performance_score(report: &str) -> Result<f64, String> {
    let v: Value = serde_json::from_str(report).map_err(|e| format!("unreadable Lighthouse report: {e}"))?;
    if let Some(err) = v.get("runtimeError").filter(|e| !e.is_null()) {
        return Err(format!("Lighthouse runtime error: {err}"));
    }
    let version = v["lighthouseVersion"].as_str().unwrap_or("?");
    v["categories"]["performance"]["score"]
        .as_f64()
        .map(|s| s * 100.0)
        .ok_or_else(|| format!("Lighthouse {version} report has no performance score"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_read_and_a_missing_one_is_an_error() {
        let ok = r#"{"lighthouseVersion":"12.2.3","categories":{"performance":{"score":0.97}}}"#;
        assert!((performance_score(ok).unwrap() - 97.0).abs() < 1e-9);
        let none = r#"{"lighthouseVersion":"12.2.3","categories":{"performance":{"score":null}}}"#;
        assert!(performance_score(none).unwrap_err().contains("no performance score"));
        let err = r#"{"runtimeError":{"code":"NO_FCP"},"categories":{}}"#;
        assert!(performance_score(err).unwrap_err().contains("NO_FCP"));
    }
}
