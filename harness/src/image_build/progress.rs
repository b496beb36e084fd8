//! [`parse_plain`]: BuildKit's plain progress output (`docker build --progress=plain`) read into the
//! [`Step`]s of one build: which Dockerfile instruction each vertex ran, whether it came from the build
//! cache, how long it took, and the error that stopped the build.
//!
//! The format is line oriented and interleaved (stages run in parallel): every line starts with `#N`, the
//! vertex id. The first line of a vertex names it (`#9 [deps 3/3] RUN pip install ...`), later lines are
//! its digest, timestamped output (`#9 1.048 Collecting ...`), progress (`#13 exporting layers 0.0s done`)
//! and one final state: `#9 DONE 8.4s`, `#9 CACHED`, `#9 ERROR: ...` or `#9 CANCELED`.

use std::collections::BTreeMap;

/// How a vertex ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran to completion.
    Done,
    /// Served from the build cache.
    Cached,
    /// Failed; the build failed with it.
    Error,
    /// Stopped because another vertex failed.
    Canceled,
    /// No final state in the output (the build was cut short).
    Unfinished,
}

/// One vertex of a build.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Vertex id (`#N`).
    pub id: u32,
    /// Its name as printed (`[deps 3/3] RUN pip install ...`, `exporting to image`).
    pub name: String,
    /// Stage name for Dockerfile steps of a named or implicit stage (`deps`, `stage-1`); `None` for a
    /// single-stage build's steps and for internal vertices.
    pub stage: Option<String>,
    /// Position `(k, n)` of a Dockerfile step within its stage; `None` for internal vertices.
    pub position: Option<(u32, u32)>,
    /// The Dockerfile instruction (`RUN python3 -m venv ...`) for Dockerfile steps.
    pub instruction: Option<String>,
    /// How it ended.
    pub status: StepStatus,
    /// Duration BuildKit printed with `DONE`, in seconds.
    pub seconds: Option<f64>,
    /// The error line, for a failed vertex.
    pub error: Option<String>,
    /// Lines of output the step printed.
    pub output_lines: u32,
}

impl Step {
    /// The instruction keyword (`RUN`, `COPY`, `FROM` ...), upper-case.
    pub fn keyword(&self) -> Option<&str> {
        self.instruction.as_deref().and_then(|i| i.split_whitespace().next())
    }

    /// Whether the step is a Dockerfile instruction whose result the build cache can hold: every step of
    /// the Dockerfile except `FROM` (BuildKit prints base images as `CACHED` or `DONE` whatever the cache
    /// holds) and the internal vertices (context transfer, metadata, export).
    pub fn cacheable(&self) -> bool {
        self.position.is_some() && !self.keyword().is_some_and(|k| k.eq_ignore_ascii_case("FROM"))
    }

    /// Whether the step installs or declares dependencies: a `RUN` of a package manager's install
    /// command, or a `COPY`/`ADD` of dependency manifests only (`requirements.txt`, `package.json`,
    /// `Cargo.lock` ...). These are the steps layer ordering must keep cached across source changes.
    pub fn is_dependency_step(&self) -> bool {
        let Some(instr) = self.instruction.as_deref() else { return false };
        let lower = instr.to_ascii_lowercase();
        match self.keyword().map(str::to_ascii_uppercase).as_deref() {
            Some("RUN") => installs(&lower),
            Some("COPY" | "ADD") => {
                let args: Vec<&str> = lower.split_whitespace().skip(1).filter(|a| !a.starts_with("--")).collect();
                let sources = args.len().saturating_sub(1);
                sources > 0 && args[..sources].iter().all(|s| is_manifest(s))
            }
            _ => false,
        }
    }
}

/// Package managers and the verbs that install with them.
const INSTALLERS: &[(&str, &[&str])] = &[
    ("pip", &["install", "sync"]),
    ("pip3", &["install"]),
    ("poetry", &["install"]),
    ("uv", &["sync", "install"]),
    ("pipenv", &["install", "sync"]),
    ("npm", &["ci", "install"]),
    ("yarn", &["install"]),
    ("pnpm", &["install"]),
    ("cargo", &["fetch", "build"]),
    ("go", &["download"]),
    ("bundle", &["install"]),
    ("composer", &["install"]),
    ("apt-get", &["install"]),
    ("apt", &["install"]),
    ("apk", &["add"]),
];

/// Whether one shell command of a `RUN` runs a package manager's install verb (`pip ... install`, also
/// `python -m pip --python /venv install` and `/venv/bin/pip install`).
fn installs(run: &str) -> bool {
    run.split([';', '&', '|']).any(|cmd| {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        INSTALLERS.iter().any(|(tool, verbs)| {
            words
                .iter()
                .position(|w| w.rsplit('/').next() == Some(tool))
                .is_some_and(|at| words[at + 1..].iter().any(|w| verbs.contains(w)))
        })
    })
}

fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.starts_with("requirements") && name.ends_with(".txt"))
        || matches!(
            name,
            "pyproject.toml"
                | "poetry.lock"
                | "pipfile"
                | "pipfile.lock"
                | "uv.lock"
                | "setup.cfg"
                | "package.json"
                | "package-lock.json"
                | "yarn.lock"
                | "pnpm-lock.yaml"
                | "cargo.toml"
                | "cargo.lock"
                | "go.mod"
                | "go.sum"
                | "gemfile"
                | "gemfile.lock"
                | "composer.json"
                | "composer.lock"
        )
}

/// What one build's plain progress output says.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Vertices in order of id.
    pub steps: Vec<Step>,
    /// The build's closing error text (`executor failed running ...`, `failed to solve: ...`), if any.
    pub error: Option<String>,
}

impl Progress {
    /// Dockerfile steps the cache could serve.
    pub fn cacheable(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.cacheable())
    }

    /// `(served from cache, cacheable)` over the Dockerfile steps.
    pub fn cache_counts(&self) -> (u32, u32) {
        let total = self.cacheable().count() as u32;
        let hits = self.cacheable().filter(|s| s.status == StepStatus::Cached).count() as u32;
        (hits, total)
    }

    /// `(served from cache, total)` over the dependency steps.
    pub fn dependency_counts(&self) -> (u32, u32) {
        let deps: Vec<&Step> = self.cacheable().filter(|s| s.is_dependency_step()).collect();
        (deps.iter().filter(|s| s.status == StepStatus::Cached).count() as u32, deps.len() as u32)
    }

    /// The first failed step.
    pub fn failed_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.status == StepStatus::Error)
    }
}

/// Parses BuildKit plain progress output. Lines that do not start with `#N ` are kept only as the
/// closing error (the `------` block and the line after it).
pub fn parse_plain(text: &str) -> Progress {
    let mut steps: BTreeMap<u32, Step> = BTreeMap::new();
    let mut trailer: Vec<&str> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        let Some((id, rest)) = vertex_line(line) else {
            if !line.is_empty() {
                trailer.push(line);
            }
            continue;
        };
        let step = steps.entry(id).or_insert_with(|| named(id, rest));
        if step.name != rest {
            update(step, rest);
        }
    }
    let mut steps: Vec<Step> = steps.into_values().collect();
    for s in &mut steps {
        if s.error.is_some() {
            s.status = StepStatus::Error;
        }
    }
    Progress { steps, error: closing_error(&trailer) }
}

fn vertex_line(line: &str) -> Option<(u32, &str)> {
    let rest = line.strip_prefix('#')?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    let id = rest[..end].parse().ok()?;
    let rest = rest[end..].strip_prefix(' ')?;
    Some((id, rest))
}

fn named(id: u32, name: &str) -> Step {
    let (stage, position, instruction) = parse_name(name);
    Step {
        id,
        name: name.to_string(),
        stage,
        position,
        instruction,
        status: StepStatus::Unfinished,
        seconds: None,
        error: None,
        output_lines: 0,
    }
}

type Named = (Option<String>, Option<(u32, u32)>, Option<String>);

/// `[deps 3/3] RUN ...` -> (Some("deps"), Some((3, 3)), Some("RUN ...")); `[2/4] COPY . .` -> no stage.
fn parse_name(name: &str) -> Named {
    let Some(inner_end) = name.strip_prefix('[').and_then(|r| r.find(']')) else { return (None, None, None) };
    let inner = &name[1..=inner_end];
    let instruction = name[inner_end + 2..].trim();
    let (stage, pos) = match inner.rsplit_once(' ') {
        Some((stage, pos)) => (Some(stage.to_string()), pos),
        None => (None, inner),
    };
    let Some((k, n)) = pos.split_once('/') else { return (None, None, None) };
    match (k.parse(), n.parse()) {
        (Ok(k), Ok(n)) => (stage, Some((k, n)), Some(instruction.to_string()).filter(|s| !s.is_empty())),
        _ => (None, None, None),
    }
}

fn update(step: &mut Step, rest: &str) {
    if let Some(d) = rest.strip_prefix("DONE ") {
        step.status = StepStatus::Done;
        step.seconds = d.trim().strip_suffix('s').and_then(|v| v.parse().ok());
    } else if rest == "CACHED" {
        step.status = StepStatus::Cached;
    } else if rest == "CANCELED" {
        step.status = StepStatus::Canceled;
    } else if let Some(e) = rest.strip_prefix("ERROR:").or_else(|| rest.strip_prefix("ERROR ")) {
        step.status = StepStatus::Error;
        step.error = Some(e.trim().to_string());
    } else if rest.starts_with("sha256:") {
    } else {
        step.output_lines += 1;
    }
}

/// The text after BuildKit's `------ > [step]: ... ------` block, or an `ERROR: failed to solve` line.
fn closing_error(trailer: &[&str]) -> Option<String> {
    if let Some(l) = trailer.iter().rev().find(|l| l.starts_with("ERROR:") || l.starts_with("error:")) {
        return Some(l.to_string());
    }
    let last_rule = trailer.iter().rposition(|l| *l == "------")?;
    let after: Vec<&str> = trailer[last_rule + 1..].iter().copied().filter(|l| !l.trim().is_empty()).collect();
    (!after.is_empty()).then(|| after.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> Progress {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/builds/buildkit").join(name);
        parse_plain(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
    }

    #[test]
    fn clean_multi_stage_build_runs_every_step() {
        let p = recorded("optimized-clean.log");
        let (hits, total) = p.cache_counts();
        assert_eq!((hits, total), (0, 5), "{:#?}", p.steps);
        let run = p.steps.iter().find(|s| s.keyword() == Some("RUN")).unwrap();
        assert_eq!(run.stage.as_deref(), Some("deps"));
        assert_eq!(run.position, Some((3, 3)));
        assert_eq!(run.status, StepStatus::Done);
        assert!(run.seconds.unwrap() > 0.0);
        assert!(run.output_lines > 3, "pip's output lines are counted");
        assert!(run.is_dependency_step());
        assert_eq!(p.dependency_counts(), (0, 2));
        assert!(p.error.is_none());
    }

    #[test]
    fn source_change_keeps_dependency_steps_cached() {
        let p = recorded("optimized-source-change.log");
        assert_eq!(p.cache_counts(), (4, 5));
        assert_eq!(p.dependency_counts(), (2, 2));
        let copy = p.cacheable().find(|s| s.status != StepStatus::Cached).unwrap();
        assert_eq!(copy.instruction.as_deref(), Some("COPY app.py ./"));
        assert_eq!(copy.stage.as_deref(), Some("stage-1"));
    }

    #[test]
    fn unchanged_rebuild_is_served_from_cache() {
        assert_eq!(recorded("optimized-unchanged.log").cache_counts(), (5, 5));
    }

    #[test]
    fn baseline_reinstalls_dependencies_after_a_source_change() {
        let p = recorded("baseline-source-change.log");
        assert_eq!(p.dependency_counts(), (0, 1));
        let (hits, total) = p.cache_counts();
        assert_eq!((hits, total), (1, 3), "only WORKDIR, before COPY . ., is cached");
        assert!(p.steps.iter().all(|s| s.stage.is_none()), "single-stage steps have no stage name");
    }

    #[test]
    fn failed_run_step_names_the_step_and_the_exit_code() {
        let p = recorded("failing-run.log");
        let f = p.failed_step().unwrap();
        assert_eq!(f.instruction.as_deref(), Some("RUN echo preparing && exit 3"));
        assert!(f.error.as_deref().unwrap().contains("exit code: 3"));
        assert!(p.error.as_deref().unwrap().contains("exit code: 3"), "{:?}", p.error);
    }

    #[test]
    fn failed_copy_is_reported() {
        let p = recorded("failing-copy.log");
        assert_eq!(p.failed_step().unwrap().keyword(), Some("COPY"));
        assert!(p.error.as_deref().unwrap().contains("not found"));
    }

    #[test]
    fn names_are_split_into_stage_position_and_instruction() {
        assert_eq!(
            parse_name("[stage-1 2/4] COPY --from=deps /opt/venv /opt/venv"),
            (Some("stage-1".into()), Some((2, 4)), Some("COPY --from=deps /opt/venv /opt/venv".into()))
        );
        assert_eq!(parse_name("[2/4] WORKDIR /var/task"), (None, Some((2, 4)), Some("WORKDIR /var/task".into())));
        assert_eq!(parse_name("[internal] load build context"), (None, None, None));
        assert_eq!(parse_name("exporting to image"), (None, None, None));
    }

    #[test]
    fn dependency_steps_are_installs_and_manifest_copies() {
        let step = |i: &str| named(1, &format!("[1/2] {i}"));
        assert!(step("COPY requirements.txt /tmp/requirements.txt").is_dependency_step());
        assert!(step("COPY --chown=app package.json package-lock.json ./").is_dependency_step());
        assert!(step("RUN npm ci --omit=dev").is_dependency_step());
        assert!(!step("COPY . .").is_dependency_step());
        assert!(!step("COPY app.py requirements.txt ./").is_dependency_step());
        assert!(!step("RUN python -m compileall .").is_dependency_step());
        assert!(step("RUN python3 -m venv /v && python3 -m pip --python /v/bin/python install -r r.txt")
            .is_dependency_step());
        assert!(step("RUN /opt/venv/bin/pip install -r requirements.txt").is_dependency_step());
        assert!(!step("RUN echo pip; echo install").is_dependency_step(), "tool and verb in different commands");
    }

    proptest::proptest! {
        #[test]
        fn any_output_parses_into_consistent_counts(lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just("#3 [deps 1/2] RUN pip install x".to_string()),
                proptest::strategy::Just("#3 CACHED".to_string()),
                proptest::strategy::Just("#4 [2/2] COPY . .".to_string()),
                proptest::strategy::Just("#4 DONE 0.2s".to_string()),
                proptest::strategy::Just("#5 ERROR: boom".to_string()),
                "#[0-9]{1,2} .{0,30}",
                ".{0,40}",
            ], 0..40)) {
            let p = parse_plain(&lines.join("\n"));
            let (hits, total) = p.cache_counts();
            let (dep_hits, deps) = p.dependency_counts();
            proptest::prop_assert!(hits <= total && dep_hits <= deps && deps <= total);
            proptest::prop_assert!(total as usize <= p.steps.len());
        }
    }

    #[test]
    fn garbage_and_truncated_output_do_not_panic() {
        let p = parse_plain("#\n#x y\nrandom\n#7 [1/2] RUN true\n#7 0.1 out\n");
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].status, StepStatus::Unfinished);
        assert_eq!(p.cache_counts(), (0, 1));
    }
}
