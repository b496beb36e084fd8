//! Helpers shared by the local platform's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use harness::local::{FunctionSpec, ModeChoice, Platform, PlatformConfig, Source};

/// The Rust fixture as a function named `name` with `env` knobs.
pub fn fixture(name: &str, env: &[(&str, &str)]) -> FunctionSpec {
    let mut f = FunctionSpec::new(name, Source::Fixture("rust".into()));
    f.environment = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    f
}

/// Starts a platform in `mode` serving `functions`.
pub async fn start(mode: ModeChoice, functions: Vec<FunctionSpec>) -> Platform {
    let mut c = PlatformConfig::new(functions);
    c.mode = mode;
    Platform::start(c).await.expect("platform starts")
}

/// Polls `cond` every 50 ms until it holds or `limit` passes; panics naming `what` on timeout.
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Shuts the platform down and asserts nothing of its run remains.
pub async fn shutdown_clean(p: Platform) {
    let id = p.run_id().to_string();
    p.shutdown().await;
    let left = harness::local::leftovers(&id);
    assert_eq!((left.containers, left.processes), (0, 0), "run {id} left {left:?}");
}
