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
