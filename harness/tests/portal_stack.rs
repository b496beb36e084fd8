//! The securebase profile's portal checks on the local target, through `Runner` as a run decides them: on
//! the stack as built each passes, and each fails with the fault knob that breaks what it measures (the
//! CDN's cache off, a Redis TTL of 0, the guide's indexes missing, a slow uncacheable asset, a slow
//! document, a script that keeps the main thread busy). Decisions are asserted, never timings; the slow knobs are 10x beyond what the stack as built
//! takes. Needs Debian redis-server, postgresql, nginx and chromium (scripts/setup.sh).

use std::collections::BTreeMap;

use harness::{
    criteria::{Decision, Profile},
    evidence::{Evidence, Status},
    local::fixtures::workspace_root,
    platform::{LocalConfig, Target},
    run::Runner,
    run_dir::RunDir,
};
use serde_json::{json, Value};

const CDN: &str = "TGT.cloudfront_cache_hit_rate";
const REDIS: &str = "TGT.elasticache_hit_rate";
const QUERY: &str = "TGT.database_query_time";
const PAGE_LOAD: &str = "TGT.page_load_time";
const TTFB: &str = "TGT.ttfb";
const LIGHTHOUSE: &str = "TGT.lighthouse";
const ALL: [&str; 6] = [CDN, REDIS, QUERY, PAGE_LOAD, TTFB, LIGHTHOUSE];

/// Decides the three portal checks of the shipped profile with its `portal` parameters overridden by
/// `overrides` (smaller loads, knobs).
fn decide(overrides: Value) -> BTreeMap<String, Evidence> {
    let mut profile = Profile::load(&workspace_root().join("fixtures/criteria/securebase.yaml")).unwrap();
    profile.checks.retain(|c| ALL.contains(&c.id.as_str()));
    assert_eq!(profile.checks.len(), ALL.len(), "the profile lost a portal check");
    for c in &mut profile.checks {
        let Decision::Measured { params, .. } = &mut c.decision else { panic!("{} is not measured", c.id) };
        for (k, v) in overrides.as_object().unwrap() {
            params.insert(k.clone(), v.clone());
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(&tmp.path().join("run")).unwrap();
    let runner = Runner::new(profile.clone(), Target::Local(LocalConfig::default()), dir, "portal-test").unwrap();
    profile.checks.iter().map(|c| (c.id.clone(), runner.run_check(c).unwrap())).collect()
}

fn status(ev: &BTreeMap<String, Evidence>, id: &str) -> Status {
    let e = &ev[id];
    eprintln!("{id}: {:?} {}", e.status, e.reason);
    e.status
}

fn small(extra: Value) -> Value {
    let mut base = json!({ "requests": 1000, "page_views": 150, "metric_rows": 2000000, "lighthouse_runs": 1 });
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    base
}

#[test]
fn as_built_every_portal_check_passes() {
    let ev = decide(small(json!({ "page_loads": 20 })));
    for id in ALL {
        assert_eq!(status(&ev, id), Status::Passed, "{id}: {}", ev[id].reason);
    }
}

#[test]
fn cdn_cache_off_fails_the_cloudfront_hit_rate_only() {
    let ev = decide(small(json!({ "cdn_cache": false })));
    assert_eq!(status(&ev, CDN), Status::Failed, "{}", ev[CDN].reason);
    assert_eq!(status(&ev, REDIS), Status::Passed, "{}", ev[REDIS].reason);
}

#[test]
fn redis_ttl_zero_fails_the_elasticache_hit_rate() {
    let ev = decide(small(json!({ "redis_ttl_s": 0 })));
    assert_eq!(status(&ev, REDIS), Status::Failed, "{}", ev[REDIS].reason);
    assert_eq!(status(&ev, CDN), Status::Passed, "{}", ev[CDN].reason);
}

#[test]
fn a_missing_index_fails_the_database_query_time() {
    let ev = decide(small(json!({ "indexes": false, "requests": 300 })));
    assert_eq!(status(&ev, QUERY), Status::Failed, "{}", ev[QUERY].reason);
}

#[test]
fn a_slow_asset_fails_the_page_load_time() {
    let ev = decide(json!({ "requests": 50, "page_views": 5, "page_loads": 20, "metric_rows": 100000,
                            "lighthouse_runs": 1, "slow_path": "/static/hero.svg", "slow_ms": 2500 }));
    assert_eq!(status(&ev, PAGE_LOAD), Status::Failed, "{}", ev[PAGE_LOAD].reason);
}

#[test]
fn a_slow_document_fails_the_ttfb() {
    let ev = decide(json!({ "requests": 50, "page_views": 5, "page_loads": 20, "metric_rows": 100000,
                            "lighthouse_runs": 1, "slow_path": "/", "slow_ms": 2000 }));
    assert_eq!(status(&ev, TTFB), Status::Failed, "{}", ev[TTFB].reason);
}

/// Lighthouse's default (simulated) throttling estimates server response time per origin, so a slow
/// response barely moves its score; main-thread work is what it models, and what this knob adds.
#[test]
fn a_slow_script_fails_the_lighthouse_score() {
    let ev = decide(json!({ "requests": 50, "page_views": 5, "page_loads": 2, "metric_rows": 100000,
                            "lighthouse_runs": 1, "script_busy_ms": 600 }));
    assert_eq!(status(&ev, LIGHTHOUSE), Status::Failed, "{}", ev[LIGHTHOUSE].reason);
}
