//! The `build` procedure end to end on the local engine: the Python fixture's baseline and optimized
//! Dockerfiles really built (base images made first when missing), the AC1 checks of a profile decided
//! from those builds, the build metrics pushed to a private Pushgateway and read back, and nothing left
//! behind. Asserts what is decided and recorded, never how long anything took.

use harness::{
    criteria::Profile,
    evidence::Status,
    image_build::OWNER_LABEL,
    platform::{LocalConfig, Target},
    run::Runner,
    run_dir::RunDir,
};

const PROFILE: &str = r#"
profile: build-e2e
title: AC1 build checks, end to end
source: harness/tests/build_procedure.rs
defaults:
  build: { fixture: python-fn, repeats: 2, concurrent: 3 }
checks:
  - { id: AC1.build_time_reduction, ac: AC1, title: t, measure: build.time_reduction, expect: ">= 20%" }
  - { id: AC1.incremental_builds_faster, ac: AC1, title: t, measure: build.incremental_reduction, expect: "> 0%" }
  - { id: AC1.multi_stage_layer_caching, ac: AC1, title: t, measure: build.dependency_cache_hit_rate, expect: "== 100%" }
  - { id: AC1.artifacts_cached_reused, ac: AC1, title: t, measure: build.cache_hit_rate, expect: "== 100%" }
  - { id: AC1.build_metrics_recorded, ac: AC1, title: t, measure: build.metrics_missing, expect: "== 0" }
  - { id: AC1.no_quality_degradation, ac: AC1, title: t, measure: build.quality_failures, expect: "== 0" }
  - { id: SIZE.reduction, ac: SIZE, title: t, measure: build.image_size_reduction, expect: "> 50%" }
  - { id: LT.p95, ac: LT, title: t, measure: build.concurrent_p95, expect: "< 10min" }
  - { id: LT.peak, ac: LT, title: t, measure: build.concurrent_peak, expect: ">= 1" }
  - { id: PT.duration, ac: PT, title: t, measure: build.duration, expect: "p95 < 10min", min_samples: 2 }
  - { id: AC.kaniko_job_memory, ac: AC, title: t, measure: build.peak_memory, expect: "< 1.5Gi" }
"#;

fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker").args(args).output().expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
}

#[test]
fn the_ac1_checks_are_decided_from_real_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("build-e2e.yaml");
    std::fs::write(&path, PROFILE).unwrap();
    let profile = Profile::load(&path).unwrap();
    let dir = RunDir::open(&tmp.path().join("run")).unwrap();
    let runner = Runner::new(profile.clone(), Target::Local(LocalConfig::default()), dir.clone(), "build-e2e").unwrap();
    let evidence: Vec<_> = profile.checks.iter().map(|c| runner.run_check(c).unwrap()).collect();
    let by_id = |id: &str| evidence.iter().find(|e| e.id == id).unwrap();
    let mut report: Vec<String> = evidence.iter().map(|e| format!("{} {:?}: {}", e.id, e.status, e.reason)).collect();
    report.extend(evidence[0].notes.iter().cloned());

    for id in [
        "AC1.multi_stage_layer_caching",
        "AC1.artifacts_cached_reused",
        "AC1.build_metrics_recorded",
        "AC1.no_quality_degradation",
        "SIZE.reduction",
        "LT.p95",
        "LT.peak",
        "PT.duration",
    ] {
        assert_eq!(by_id(id).status, Status::Passed, "{id}\n{}", report.join("\n"));
    }
    for id in ["AC1.build_time_reduction", "AC1.incremental_builds_faster"] {
        let e = by_id(id);
        assert!(
            matches!(e.status, Status::Passed | Status::Failed) && e.measured.is_some(),
            "{id} decided from a figure\n{}",
            report.join("\n")
        );
        assert_eq!(e.measured.as_ref().unwrap().n, 4, "two clean builds of each Dockerfile, or two of each kind");
    }
    // report.html draws these figures: the build times of each Dockerfile and the cache hits of every rebuild.
    let written = harness::report::Report::from_run(&dir, &profile).unwrap().write(dir.path()).unwrap();
    let page = std::fs::read_to_string(written.iter().find(|p| p.ends_with("report.html")).unwrap()).unwrap();
    for id in [
        "AC1.build_time_reduction",
        "AC1.incremental_builds_faster",
        "AC1.multi_stage_layer_caching",
        "AC1.artifacts_cached_reused",
    ] {
        let at = page.find(&format!("data-check=\"{id}\"")).unwrap_or_else(|| panic!("{id}: no card"));
        let card = &page[at..at + page[at..].find("</figure>").unwrap()];
        assert!(card.contains("<svg") && !card.contains(harness::report::NO_CHART_DATA), "{id}: no chart:\n{card}");
    }
    let memory = by_id("AC.kaniko_job_memory");
    assert!(memory.status == Status::Failed && memory.reason.contains("not measured"), "{}", memory.reason);

    let notes = &by_id("AC1.build_metrics_recorded").notes;
    assert!(notes.iter().any(|n| n.contains("read back") && n.contains("every sample equal")), "{notes:#?}");
    let raw = dir.path().join("raw/build");
    let pushed = std::fs::read_to_string(raw.join("pushed.prom")).unwrap();
    let readback = std::fs::read_to_string(raw.join("readback.prom")).unwrap();
    for family in [
        "build_duration_seconds_bucket",
        "build_cache_hits_total",
        "kaniko_cache_requests_total",
        "image_size_bytes_count",
        "image_layer_size_bytes",
    ] {
        assert!(pushed.contains(family) && readback.contains(family), "{family} pushed and read back");
    }
    assert!(readback.contains("instance=\"build-e2e\"") && readback.contains("job=\"perf_acceptance_build\""));
    let tests_log = std::fs::read_to_string(raw.join("tests.log")).unwrap();
    assert!(tests_log.contains("test_runtime_client_serves_invocations_and_reports_errors"), "{tests_log}");
    let builds: serde_json::Value = serde_json::from_slice(&std::fs::read(raw.join("builds.json")).unwrap()).unwrap();
    let builds = builds.as_array().unwrap();
    assert_eq!(
        builds.len(),
        2 * 2 + 1 + 2 + 1 + 1 + 3,
        "clean x4, unchanged, source x2, baseline source, deps, batch x3"
    );
    let labelled = |l: &str| builds.iter().find(|b| b["label"] == l).unwrap_or_else(|| panic!("no build {l}"));
    let deps =
        |l: &str| (labelled(l)["dependency_hits"].as_u64().unwrap(), labelled(l)["dependency_steps"].as_u64().unwrap());
    assert_eq!(
        deps("source-baseline-0"),
        (0, 1),
        "the baseline reinstalls its dependencies after a source-only change"
    );
    assert_eq!(deps("deps-optimized-0"), (0, 2), "a dependency change rebuilds the optimized dependency steps");
    assert_eq!(deps("source-optimized-1"), (2, 2));
    assert!(
        labelled("clean-optimized-0")["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] != "cached" || s["name"].as_str().unwrap().contains("FROM")),
        "a clean build uses no cache"
    );

    let owner = format!("label={OWNER_LABEL}={}", harness::image_build::owner());
    assert!(docker_lines(&["image", "ls", "-q", "--filter", &owner]).is_empty(), "the run's images were removed");
    assert!(docker_lines(&["ps", "-aq", "--filter", &owner]).is_empty(), "the test container was removed");
    let note = notes.iter().find(|n| n.contains("private Pushgateway")).expect("a private Pushgateway was used");
    let addr = note.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err(), "the private Pushgateway at {addr} was stopped");
}
