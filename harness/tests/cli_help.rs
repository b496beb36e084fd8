//! `harness --help`: closed sets are enumerations with their values listed, the target flags are grouped, and
//! every environment variable the harness reads is named in `--help` or the README.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "harness {args:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn closed_sets_list_their_values() {
    let run = help(&["run"]);
    for value in ["local", "aws", "localstack", "knative", "not-passed", "undecided"] {
        assert!(run.contains(value), "`harness run --help` does not list `{value}`:\n{run}");
    }
    assert!(run.contains("Target:"), "the target flags are not grouped:\n{run}");
    let target_section = &run[run.find("Target:").unwrap()..];
    for flag in ["--target", "--tf-dir", "--tf-outputs", "--endpoint", "--kubeconfig", "--context", "--ingress"] {
        assert!(target_section.contains(flag), "{flag} is not in the Target group:\n{run}");
    }
    let serve = help(&["serve-local"]);
    for value in ["auto", "container", "process"] {
        assert!(serve.contains(value), "serve-local --mode: `{value}` missing:\n{serve}");
    }
    let compare = help(&["baseline", "compare"]);
    for value in ["strict", "lenient"] {
        assert!(compare.contains(value), "baseline compare --mode: `{value}` missing:\n{compare}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_harness")).args(["list", "--target", "gcp"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("gcp") && err.contains("knative"), "the error names the bad value and the valid ones: {err}");
}

#[test]
fn every_environment_variable_read_is_documented() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("harness/src"), &mut files);
    files.push(root.join("tests/acceptance.rs"));
    // A literal name in a line that reads the environment (`env::var("X")`, `var_os("X")`, clap's `env = "X"`,
    // a `..._VAR: &str = "X"` constant).
    let reads = regex::Regex::new(r#"(?:var(?:_os)?\(|env = |_VAR: &str = )"([A-Z][A-Z0-9_]+)""#).unwrap();
    let mut names = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for c in reads.captures_iter(&text) {
            names.insert(c[1].to_string());
        }
    }
    // Set by cargo for the build or for tests, or the shell's search path: not settings of the harness.
    for not_a_setting in ["CARGO_MANIFEST_DIR", "CARGO_PKG_VERSION", "PATH"] {
        names.remove(not_a_setting);
    }
    assert!(names.len() > 15 && names.contains("HARNESS_HISTORY"), "the scan found too little: {names:?}");
    let documented = help(&[]) + &std::fs::read_to_string(root.join("README.md")).unwrap();
    let missing: Vec<&String> = names.iter().filter(|n| !documented.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "read by the harness but in neither `harness --help` nor README.md: {missing:?}");
}

/// `harness report --fail-on undecided` (what `scripts/test.sh` runs the main job with): a check decided from a
/// figure, passed or failed, does not fail it; a check that errored or has no evidence does. The default
/// (`not-passed`) fails on the failed check too.
#[test]
fn fail_on_undecided_fails_only_on_undecided_checks() {
    use harness::{
        criteria::Profile,
        evidence::{self, Evidence},
        fingerprint::Fingerprint,
        measure::{MeasurementSet, Metric},
        run_dir::{RunDir, RunInfo},
    };
    let tmp = tempfile::tempdir().unwrap();
    let profile_path = tmp.path().join("p.yaml");
    std::fs::write(
        &profile_path,
        r#"
profile: fail-on
title: fail-on
source: harness/tests/cli_help.rs
checks:
  - { id: A.passes, ac: A, title: t, measure: image.size, expect: "< 500MB" }
  - { id: A.fails, ac: A, title: t, measure: image.size, expect: "< 1MB" }
  - { id: B.unmeasured, ac: B, title: t, measure: image.size, expect: "< 500MB" }
"#,
    )
    .unwrap();
    let profile = Profile::load(&profile_path).unwrap();
    let run = |evidence: &dyn Fn(&RunDir), args: &[&str]| -> Option<i32> {
        let dir_path = tempfile::tempdir_in(tmp.path()).unwrap().keep();
        let dir = RunDir::open(&dir_path).unwrap();
        dir.init(RunInfo {
            id: "fail-on-1".into(),
            profile: profile.name.clone(),
            profile_path: profile_path.clone(),
            target: "local".into(),
            started: chrono::Utc::now(),
            environment: Fingerprint {
                host: "h".into(),
                cores: 2,
                memory_mib: 1024,
                cpu: "c".into(),
                kernel: "k".into(),
                harness: "0".into(),
                build: harness::fingerprint::Build::current(),
            },
            invocation: String::new(),
        })
        .unwrap();
        evidence(&dir);
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["report", "--run"])
            .arg(&dir_path)
            .args(args)
            .output()
            .unwrap();
        out.status.code()
    };
    let set = MeasurementSet::new("image", "local", &Default::default()).with("size", Metric::value(200e6, "B", 1));
    let decided = |dir: &RunDir| {
        for c in &profile.checks[..2] {
            dir.write_evidence(&evidence::decide(c, "local", &set)).unwrap();
        }
    };
    let all_decided = |dir: &RunDir| {
        decided(dir);
        dir.write_evidence(&evidence::decide(&profile.checks[2], "local", &set)).unwrap();
    };
    let one_error = |dir: &RunDir| {
        decided(dir);
        dir.write_evidence(&Evidence::error(&profile.checks[2], "local", "endpoint unreachable")).unwrap();
    };
    assert_eq!(run(&all_decided, &["--fail-on", "undecided"]), Some(0), "a failed check is a decision");
    assert_eq!(run(&all_decided, &[]), Some(1), "the default fails on a failed check");
    assert_eq!(run(&one_error, &["--fail-on", "undecided"]), Some(1), "an error is undecided");
    assert_eq!(run(&decided, &["--fail-on", "undecided"]), Some(1), "a check without evidence is undecided");
}
