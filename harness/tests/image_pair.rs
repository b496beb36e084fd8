//! `cold_start.baseline_reduction` on the local target: the build fixture's baseline (single-stage) and
//! optimized (multi-stage) images run as two functions, their cold starts measured by the shared cold-start
//! procedure, and the reduction of the median Init Duration decides the check. Ground truth is injected with
//! the fixture's `INIT_DELAY_MS` on one image's function: a large delay on the baseline must pass ">= 15%",
//! the same delay on the optimized image must fail it. No timing is asserted beyond that margin (a 1.5 s
//! sleep against an init of a few hundred milliseconds).

use std::path::Path;

use harness::{
    criteria::Profile,
    evidence::{Evidence, Status},
    platform::{LocalConfig, Target},
    run::Runner,
    run_dir::RunDir,
};

/// The default functions file's shape, with nothing but the function the cold_start series needs.
const CONTAINERS: &str = "mode: auto\nfunctions:\n  - name: fixture-rust\n    fixture: rust\n";
const PROCESSES: &str = "mode: process\nfunctions:\n  - name: fixture-rust\n    fixture: rust\n";

fn run(functions: &str, images: &str) -> Evidence {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "profile: t\ntitle: t\nsource: test\ndefaults:\n  cold_start: {{ function: fixture-rust, samples: 3 }}\nchecks:\n  \
         - {{ id: SIZE.cold_start_improvement, ac: SIZE, title: t, measure: cold_start.baseline_reduction, \
         expect: \">= 15%\", params: {{ images: {images} }} }}\n"
    );
    let path = tmp.path().join("profile.yaml");
    std::fs::write(&path, text).unwrap();
    let p = Profile::load(&path).unwrap();
    let fpath = tmp.path().join("functions.yaml");
    std::fs::write(&fpath, functions).unwrap();
    let dir = RunDir::open(&tmp.path().join("run")).unwrap();
    let r =
        Runner::new(p.clone(), Target::Local(LocalConfig { functions: Some(fpath) }), dir, "image-pair-test").unwrap();
    r.run_check(&p.checks[0]).unwrap()
}

fn docker() -> bool {
    std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success())
}

fn slowed(variant: &str) -> String {
    format!("{{ fixture: python-fn, {variant}_environment: {{ INIT_DELAY_MS: \"1500\", INIT_MODE: sleep }} }}")
}

/// The baseline's function sleeps 1.5 s in its init: the optimized image's Init Duration is far below it,
/// the reduction clearly positive, and ">= 15%" passes with both ledgers and a confidence interval reported.
#[test]
fn a_slow_baseline_passes_the_improvement_check() {
    if !docker() {
        panic!("needs the Docker engine (scripts/setup.sh starts it)");
    }
    let e = run(CONTAINERS, &slowed("baseline"));
    assert_eq!(e.status, Status::Passed, "{}\n{:#?}", e.reason, e.notes);
    let m = e.measured.as_ref().unwrap();
    assert!(m.value >= 15.0, "{m:?}");
    assert_eq!(m.n, 3, "{m:?}");
    assert!(m.ci_low.is_some() && m.ci_high.is_some(), "{m:?}");
    for variant in ["baseline", "optimized"] {
        assert!(
            e.notes.iter().any(|n| n.contains(&format!("{variant} image")) && n.contains("3 counted")),
            "no {variant} ledger in {:#?}",
            e.notes
        );
    }
}

/// The same delay on the optimized image: the reduction is clearly negative and the check fails on its figure.
#[test]
fn a_slow_optimized_image_fails_the_improvement_check() {
    if !docker() {
        panic!("needs the Docker engine (scripts/setup.sh starts it)");
    }
    let e = run(CONTAINERS, &slowed("optimized"));
    assert_eq!(e.status, Status::Failed, "{}\n{:#?}", e.reason, e.notes);
    let m = e.measured.as_ref().expect("failed on the measured figure, not for want of one");
    assert!(m.value < 0.0, "{m:?}: {}", e.reason);
    assert!(e.reason.contains("does not meet >= 15%"), "{}", e.reason);
}

/// Without a Docker engine (process mode) the images cannot run as functions: missing, with that reason.
#[test]
fn process_mode_reports_the_reduction_missing_with_the_reason() {
    let e = run(PROCESSES, "python-fn");
    assert_eq!(e.status, Status::Failed, "{}", e.reason);
    assert!(e.measured.is_none(), "{:?}", e.measured);
    assert!(e.reason.contains("not measured") && e.reason.contains("process mode"), "{}", e.reason);
}

/// A check that names no image pair is missing its figure, saying what would measure it.
#[test]
fn without_images_the_reduction_is_missing_saying_how_to_name_them() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "profile: t\ntitle: t\nsource: test\ndefaults:\n  cold_start: { function: fixture-rust, samples: 2 }\nchecks:\n  \
                - { id: C.improvement, ac: C, title: t, measure: cold_start.baseline_reduction, expect: \">= 15%\" }\n";
    let path = tmp.path().join("profile.yaml");
    std::fs::write(&path, text).unwrap();
    let p = Profile::load(&path).unwrap();
    let fpath = tmp.path().join("functions.yaml");
    std::fs::write(&fpath, PROCESSES).unwrap();
    let dir = RunDir::open(&tmp.path().join("run")).unwrap();
    let r =
        Runner::new(p.clone(), Target::Local(LocalConfig { functions: Some(fpath) }), dir, "image-pair-test").unwrap();
    let e = r.run_check(&p.checks[0]).unwrap();
    assert_eq!(e.status, Status::Failed, "{}", e.reason);
    assert!(e.measured.is_none() && e.reason.contains("images: python-fn"), "{}", e.reason);
}

/// A fixture without the two Dockerfiles is bad input: an error naming it, before anything is started.
#[test]
fn a_fixture_without_both_dockerfiles_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("half-fn");
    std::fs::create_dir(&fixture).unwrap();
    std::fs::write(fixture.join("Dockerfile.baseline"), "FROM scratch\n").unwrap();
    let e = run(PROCESSES, &fixture.display().to_string());
    assert_eq!(e.status, Status::Error, "{}", e.reason);
    assert!(
        e.reason.contains("images")
            && e.reason.contains(&fixture.display().to_string())
            && e.reason.contains("Dockerfile.optimized"),
        "{}",
        e.reason
    );
    assert!(!Path::new(&fixture).join("target").exists());
}
