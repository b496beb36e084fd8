//! [`BuildFixture`]: a function directory with a baseline and an optimized Dockerfile, copied into build
//! contexts with a source-only or a dependency change applied, and [`TestSummary`], what the fixture's own
//! tests reported when run inside a built image.
//!
//! A build fixture holds `Dockerfile.baseline` (as a team writes it first) and `Dockerfile.optimized`
//! (its `Dockerfile.optimized.dockerignore` beside it), one source file the harness edits for a
//! source-only change, one dependency manifest it edits for a dependency change, and a `tests/`
//! directory. Edits are made in copies, never in the repository.

use std::path::{Path, PathBuf};

use super::Error;

/// The source files tried, in order, for a source-only change.
const SOURCES: &[&str] = &["app.py", "main.py", "handler.py", "index.js", "src/main.rs", "main.go"];
/// The dependency manifests tried, in order, for a dependency change (formats with `#` comments).
const MANIFESTS: &[&str] = &["requirements.txt", "pyproject.toml", "Cargo.toml"];

/// A function directory that can be built the baseline and the optimized way.
#[derive(Debug, Clone)]
pub struct BuildFixture {
    /// Short name (the directory name).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// Source file edited for a source-only change, relative to `dir`.
    pub source_file: PathBuf,
    /// Dependency manifest edited for a dependency change, relative to `dir`.
    pub dependency_file: PathBuf,
    /// Test directory, relative to `dir`, if the fixture has tests.
    pub tests: Option<PathBuf>,
}

/// Which Dockerfile of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// `Dockerfile.baseline`.
    Baseline,
    /// `Dockerfile.optimized`.
    Optimized,
}

impl Variant {
    /// `baseline` or `optimized`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Baseline => "baseline",
            Variant::Optimized => "optimized",
        }
    }

    /// The Dockerfile's file name.
    pub fn dockerfile(self) -> &'static str {
        match self {
            Variant::Baseline => "Dockerfile.baseline",
            Variant::Optimized => "Dockerfile.optimized",
        }
    }
}

/// A change applied to a context copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The fixture as committed.
    None,
    /// A line appended to the source file (`nonce` makes it unique).
    Source(String),
    /// A comment line appended to the dependency manifest, which is what invalidates dependency layers.
    Dependencies(String),
}

impl BuildFixture {
    /// Opens a fixture directory, checking it has both Dockerfiles, a source file and a manifest.
    pub fn open(dir: &Path) -> Result<BuildFixture, Error> {
        let err = |detail: String| Error::Fixture { dir: dir.to_path_buf(), detail };
        if !dir.is_dir() {
            return Err(err("no such directory".into()));
        }
        for v in [Variant::Baseline, Variant::Optimized] {
            if !dir.join(v.dockerfile()).is_file() {
                return Err(err(format!(
                    "no {} (a build fixture needs Dockerfile.baseline and Dockerfile.optimized)",
                    v.dockerfile()
                )));
            }
        }
        let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|p| dir.join(p).is_file());
        let source_file = find(SOURCES)
            .ok_or_else(|| err(format!("no source file to change (looked for {})", SOURCES.join(", "))))?;
        let dependency_file = find(MANIFESTS)
            .ok_or_else(|| err(format!("no dependency manifest to change (looked for {})", MANIFESTS.join(", "))))?;
        let tests = Some(PathBuf::from("tests")).filter(|t| dir.join(t).is_dir());
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "fixture".into());
        Ok(BuildFixture { name, dir: dir.to_path_buf(), source_file, dependency_file, tests })
    }

    /// Resolves `name_or_path`: an existing directory, or a name under `fixtures/functions/` of the
    /// repository (found from the working directory upwards, else next to this crate).
    pub fn resolve(name_or_path: &str) -> Result<BuildFixture, Error> {
        let p = Path::new(name_or_path);
        if p.is_dir() {
            return BuildFixture::open(p);
        }
        BuildFixture::open(&repo_root().join("fixtures/functions").join(name_or_path))
    }

    /// Base images its Dockerfiles name that are made locally (`perf-acceptance/...`).
    pub fn local_base_images(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for v in [Variant::Baseline, Variant::Optimized] {
            let p = self.dir.join(v.dockerfile());
            let text = std::fs::read_to_string(&p).map_err(Error::io(&p))?;
            for line in text.lines() {
                let mut words = line.split_whitespace();
                if words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
                    let image = words.find(|w| !w.starts_with("--")).unwrap_or_default();
                    if image.starts_with("perf-acceptance/") && !out.iter().any(|o| o == image) {
                        out.push(image.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Copies the fixture into `parent/label` and applies `change`; returns the context directory.
    pub fn context(&self, parent: &Path, label: &str, change: &Change) -> Result<PathBuf, Error> {
        let dest = parent.join(label);
        copy_dir(&self.dir, &dest)?;
        let (file, line) = match change {
            Change::None => return Ok(dest),
            Change::Source(n) => (&self.source_file, format!("perf-acceptance source change {n}")),
            Change::Dependencies(n) => (&self.dependency_file, format!("perf-acceptance dependency change {n}")),
        };
        let comment = if file.extension().is_some_and(|e| e == "rs" || e == "js" || e == "go") { "//" } else { "#" };
        let p = dest.join(file);
        let mut text = std::fs::read_to_string(&p).map_err(Error::io(&p))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{comment} {line}\n"));
        std::fs::write(&p, text).map_err(Error::io(&p))?;
        Ok(dest)
    }
}

/// The repository root: the nearest ancestor of the working directory holding `fixtures/functions`,
/// else the parent of this crate's directory.
pub fn repo_root() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(r) = cwd.ancestors().find(|a| a.join("fixtures/functions").is_dir()) {
            return r.to_path_buf();
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Copies a directory tree, leaving out bytecode caches and VCS data (they would make the baseline's
/// context, which has no ignore file, depend on what ran in the checkout before).
fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(Error::io(to))?;
    for entry in std::fs::read_dir(from).map_err(Error::io(from))? {
        let entry = entry.map_err(Error::io(from))?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if matches!(n.as_ref(), "__pycache__" | ".pytest_cache" | ".git" | "target" | "node_modules")
            || n.ends_with(".pyc")
        {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let ty = entry.file_type().map_err(Error::io(&src))?;
        if ty.is_dir() {
            copy_dir(&src, &dst)?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst).map_err(Error::io(&src))?;
        }
    }
    Ok(())
}

/// What a test run printed, read from unittest's or pytest's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TestSummary {
    /// Tests run.
    pub ran: u32,
    /// Failed assertions.
    pub failures: u32,
    /// Tests that raised.
    pub errors: u32,
    /// Tests skipped.
    pub skipped: u32,
}

impl TestSummary {
    /// Failures and errors.
    pub fn failed(&self) -> u32 {
        self.failures + self.errors
    }

    /// Reads unittest's `Ran N tests` / `OK` / `FAILED (failures=1, errors=2)` or pytest's
    /// `== 3 passed, 1 failed in 0.2s ==`; `None` when neither summary is there.
    pub fn parse(output: &str) -> Option<TestSummary> {
        unittest(output).or_else(|| pytest(output))
    }
}

fn count(text: &str, key: &str) -> u32 {
    text.split(|c: char| c == ',' || c == '(' || c == ')' || c.is_whitespace())
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .filter_map(|n| n.parse::<u32>().ok())
        .sum()
}

fn unittest(output: &str) -> Option<TestSummary> {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    let ran_at = lines.iter().rposition(|l| l.starts_with("Ran ") && l.contains(" test"))?;
    let ran = lines[ran_at].split_whitespace().nth(1)?.parse().ok()?;
    let verdict = lines[ran_at + 1..].iter().find(|l| l.starts_with("OK") || l.starts_with("FAILED"))?;
    Some(TestSummary {
        ran,
        failures: count(verdict, "failures"),
        errors: count(verdict, "errors"),
        skipped: count(verdict, "skipped"),
    })
}

fn pytest(output: &str) -> Option<TestSummary> {
    let line = output.lines().rev().map(str::trim).find(|l| {
        l.starts_with('=')
            && l.contains(" in ")
            && (l.contains("passed") || l.contains("failed") || l.contains("error"))
    })?;
    let mut s = TestSummary::default();
    let words: Vec<&str> =
        line.trim_matches('=').split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).collect();
    for pair in words.windows(2) {
        let Ok(n) = pair[0].parse::<u32>() else { continue };
        match pair[1] {
            "passed" => s.ran += n,
            "failed" => (s.ran, s.failures) = (s.ran + n, s.failures + n),
            "error" | "errors" => s.errors += n,
            "skipped" => s.skipped += n,
            _ => {}
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_fn() -> BuildFixture {
        BuildFixture::resolve("python-fn").unwrap()
    }

    #[test]
    fn the_python_fixture_is_a_build_fixture() {
        let f = python_fn();
        assert_eq!(f.source_file, PathBuf::from("app.py"));
        assert_eq!(f.dependency_file, PathBuf::from("requirements.txt"));
        assert_eq!(f.tests, Some(PathBuf::from("tests")));
        let images = f.local_base_images().unwrap();
        assert!(images.contains(&"perf-acceptance/python:3.11".to_string()), "{images:?}");
        assert!(images.contains(&"perf-acceptance/python:3.11-slim".to_string()), "{images:?}");
    }

    #[test]
    fn changes_are_made_in_copies() {
        let f = python_fn();
        let tmp = tempfile::tempdir().unwrap();
        let before = std::fs::read_to_string(f.dir.join("app.py")).unwrap();
        let src = f.context(tmp.path(), "src", &Change::Source("n1".into())).unwrap();
        let deps = f.context(tmp.path(), "deps", &Change::Dependencies("n2".into())).unwrap();
        let plain = f.context(tmp.path(), "plain", &Change::None).unwrap();
        assert!(std::fs::read_to_string(src.join("app.py")).unwrap().ends_with("# perf-acceptance source change n1\n"));
        assert!(std::fs::read_to_string(deps.join("requirements.txt")).unwrap().contains("dependency change n2"));
        assert_eq!(std::fs::read_to_string(plain.join("app.py")).unwrap(), before);
        assert_eq!(std::fs::read_to_string(f.dir.join("app.py")).unwrap(), before, "the repository is untouched");
        assert!(plain.join("tests/test_app.py").is_file() && plain.join("Dockerfile.optimized.dockerignore").is_file());
    }

    #[test]
    fn a_directory_without_dockerfiles_is_refused_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let e = BuildFixture::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("Dockerfile.baseline") && e.contains(&tmp.path().display().to_string()), "{e}");
        let e = BuildFixture::resolve("no-such-fixture").unwrap_err().to_string();
        assert!(e.contains("no-such-fixture") && e.contains("no such directory"), "{e}");
    }

    #[test]
    fn unittest_and_pytest_summaries_are_read() {
        let ok = "test_a ... ok\n\n----------------------------------------------------------------------\nRan 7 tests in 0.622s\n\nOK\n";
        assert_eq!(TestSummary::parse(ok), Some(TestSummary { ran: 7, ..Default::default() }));
        let bad = "Ran 7 tests in 60.4s\n\nFAILED (failures=1, errors=2, skipped=1)\n";
        let s = TestSummary::parse(bad).unwrap();
        assert_eq!((s.ran, s.failures, s.errors, s.skipped, s.failed()), (7, 1, 2, 1, 3));
        let skipped = "Ran 2 tests in 0.1s\n\nOK (skipped=2)\n";
        assert_eq!(TestSummary::parse(skipped).unwrap().skipped, 2);
        let py = "===== 5 passed, 1 failed, 2 skipped in 0.31s =====\n";
        assert_eq!(TestSummary::parse(py), Some(TestSummary { ran: 6, failures: 1, errors: 0, skipped: 2 }));
        assert_eq!(TestSummary::parse("Traceback: ImportError\n"), None);
        assert_eq!(TestSummary::parse("Ran 3 tests in 0.1s\n"), None, "no verdict: the run was cut short");
    }
}
