//! [`FunctionsFile`] and [`PlatformConfig`]: which functions the local platform serves and how, loaded from
//! YAML with every error located at file:line:column.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Error;

/// Where an execution environment's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A fixture of this repository, built on demand (`rust`).
    Fixture(String),
    /// A container image on the local engine.
    Image(String),
    /// An executable speaking the Runtime API (process mode; container mode wraps it in a `FROM scratch`
    /// image, so it must be static).
    Binary(PathBuf),
}

/// One function as configured (the live configuration may change through UpdateFunctionConfiguration).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// Function name, as in the Invoke API path.
    pub name: String,
    /// Its code.
    pub source: Source,
    /// Memory size in MB (128-10240): the container's memory limit and its CPU share.
    pub memory_mb: u32,
    /// Invocation timeout in seconds.
    pub timeout_s: f64,
    /// Environment variables given to each execution environment.
    pub environment: BTreeMap<String, String>,
    /// Reserved concurrency: at most this many concurrent executions, 429 beyond.
    pub reserved_concurrency: Option<u32>,
    /// Environments kept initialized and warm.
    pub provisioned_concurrency: u32,
    /// An idle environment is retired after this many seconds.
    pub idle_timeout_s: f64,
    /// The init phase (start to first `next`) may take at most this long.
    pub init_timeout_s: f64,
    /// Injected fault (`faults: { over_allocate: true }` in a functions file): the platform ignores the
    /// reserved concurrency and starts an environment for every concurrent invocation, so tests can show
    /// that the checks of the limit catch a platform that over-allocates.
    pub fault_over_allocate: bool,
}

impl FunctionSpec {
    /// A function with Lambda's defaults (128 MB, 3 s timeout) and a 300 s idle timeout.
    pub fn new(name: impl Into<String>, source: Source) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            source,
            memory_mb: 128,
            timeout_s: 3.0,
            environment: BTreeMap::new(),
            reserved_concurrency: None,
            provisioned_concurrency: 0,
            idle_timeout_s: 300.0,
            init_timeout_s: 10.0,
            fault_over_allocate: false,
        }
    }

    /// Checks the values Lambda would reject.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("function name `{n}` must be 1-64 letters, digits, `-` or `_`"));
        }
        if !(128..=10240).contains(&self.memory_mb) {
            return Err(format!("function `{n}`: memory_mb {} is outside 128..=10240", self.memory_mb));
        }
        if !(self.timeout_s > 0.0 && self.timeout_s <= 900.0) {
            return Err(format!("function `{n}`: timeout_s {} is outside (0, 900]", self.timeout_s));
        }
        if self.idle_timeout_s.is_nan()
            || self.idle_timeout_s <= 0.0
            || self.init_timeout_s.is_nan()
            || self.init_timeout_s <= 0.0
        {
            return Err(format!("function `{n}`: idle_timeout_s and init_timeout_s must be positive"));
        }
        if let Some(r) = self.reserved_concurrency {
            if self.provisioned_concurrency > r {
                return Err(format!(
                    "function `{n}`: provisioned_concurrency {} exceeds reserved_concurrency {r}",
                    self.provisioned_concurrency
                ));
            }
        }
        Ok(())
    }
}

/// How execution environments run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ModeChoice {
    /// Containers when a Docker engine answers, processes otherwise.
    #[default]
    Auto,
    /// Containers; an unreachable engine is an error.
    Container,
    /// Child processes.
    Process,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    mode: ModeChoice,
    functions: Vec<RawFunction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: Spanned<String>,
    #[serde(default)]
    fixture: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    binary: Option<PathBuf>,
    #[serde(default)]
    memory_mb: Option<u32>,
    #[serde(default)]
    timeout_s: Option<f64>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    reserved_concurrency: Option<u32>,
    #[serde(default)]
    provisioned_concurrency: Option<u32>,
    #[serde(default)]
    idle_timeout_s: Option<f64>,
    #[serde(default)]
    init_timeout_s: Option<f64>,
    #[serde(default)]
    faults: RawFaults,
}

/// Faults a functions file can inject into the local platform, for tests of the checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    #[serde(default)]
    over_allocate: bool,
}

/// A functions file: the functions and the execution mode.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionsFile {
    /// Execution mode asked for.
    pub mode: ModeChoice,
    /// The functions, in file order.
    pub functions: Vec<FunctionSpec>,
}

impl FunctionsFile {
    /// Loads a functions file; relative binary paths are relative to the file's directory.
    pub fn load(path: &Path) -> Result<FunctionsFile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        FunctionsFile::parse(&text, path)
    }

    /// Parses functions file text; `path` is used in messages and to resolve relative binary paths.
    pub fn parse(text: &str, path: &Path) -> Result<FunctionsFile, Error> {
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = e.to_string();
            Error::Invalid { path: path.into(), line, column, message: msg.lines().next().unwrap_or(&msg).to_string() }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut functions: Vec<FunctionSpec> = Vec::new();
        for f in raw.functions {
            let at = f.name.referenced;
            let invalid =
                |message: String| Error::Invalid { path: path.into(), line: at.line(), column: at.column(), message };
            let name = f.name.value;
            let source = match (f.fixture, f.image, f.binary) {
                (Some(x), None, None) if x == "rust" => Source::Fixture(x),
                (Some(x), None, None) => {
                    return Err(invalid(format!("function `{name}`: unknown fixture `{x}` (expected `rust`)")))
                }
                (None, Some(i), None) => Source::Image(i),
                (None, None, Some(b)) => Source::Binary(if b.is_absolute() { b } else { base.join(b) }),
                _ => {
                    return Err(invalid(format!("function `{name}`: give exactly one of `fixture`, `image`, `binary`")))
                }
            };
            let mut spec = FunctionSpec::new(name, source);
            spec.memory_mb = f.memory_mb.unwrap_or(spec.memory_mb);
            spec.timeout_s = f.timeout_s.unwrap_or(spec.timeout_s);
            spec.environment = f.environment;
            spec.reserved_concurrency = f.reserved_concurrency;
            spec.provisioned_concurrency = f.provisioned_concurrency.unwrap_or(0);
            spec.idle_timeout_s = f.idle_timeout_s.unwrap_or(spec.idle_timeout_s);
            spec.init_timeout_s = f.init_timeout_s.unwrap_or(spec.init_timeout_s);
            spec.fault_over_allocate = f.faults.over_allocate;
            spec.validate().map_err(&invalid)?;
            if functions.iter().any(|g| g.name == spec.name) {
                return Err(invalid(format!("duplicate function name `{}`", spec.name)));
            }
            functions.push(spec);
        }
        if functions.is_empty() {
            return Err(Error::Invalid {
                path: path.into(),
                line: 0,
                column: 0,
                message: "no functions defined".into(),
            });
        }
        Ok(FunctionsFile { mode: raw.mode, functions })
    }
}

/// Everything [`super::Platform::start`] needs. Build it with [`PlatformConfig::new`] or
/// [`PlatformConfig::from_file`], then adjust the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlatformConfig {
    /// The functions served.
    pub functions: Vec<FunctionSpec>,
    /// Containers, processes, or whichever works.
    pub mode: ModeChoice,
    /// Run id labeling everything started (random when `None`).
    pub run_id: Option<String>,
    /// Directory for the audit log and the front door's certificate (a fresh temp dir when `None`).
    pub state_dir: Option<PathBuf>,
    /// Docker engine socket (`DOCKER_HOST` if it is `unix://...`, else `/var/run/docker.sock`).
    pub docker_socket: Option<PathBuf>,
    /// Loopback ports (0: any free port).
    pub invoke_port: u16,
    /// Front door plain HTTP port (0: any).
    pub front_door_http_port: u16,
    /// Front door HTTPS port (0: any).
    pub front_door_https_port: u16,
    /// API key the front door requires (random when `None`).
    pub api_key: Option<String>,
    /// Bearer token `/metrics` requires (random when `None`).
    pub metrics_token: Option<String>,
    /// Stage throttling: steady requests per second.
    pub stage_rate_limit: f64,
    /// Stage throttling: burst (bucket size).
    pub stage_burst_limit: u32,
    /// Account-wide concurrent executions (Lambda's default is 1000).
    pub account_concurrency: u32,
}

impl PlatformConfig {
    /// A configuration serving `functions` with defaults for everything else.
    pub fn new(functions: Vec<FunctionSpec>) -> PlatformConfig {
        PlatformConfig {
            functions,
            mode: ModeChoice::Auto,
            run_id: None,
            state_dir: None,
            docker_socket: None,
            invoke_port: 0,
            front_door_http_port: 0,
            front_door_https_port: 0,
            api_key: None,
            metrics_token: None,
            stage_rate_limit: 2000.0,
            stage_burst_limit: 5000,
            account_concurrency: 1000,
        }
    }

    /// A configuration from a functions file.
    pub fn from_file(path: &Path) -> Result<PlatformConfig, Error> {
        let f = FunctionsFile::load(path)?;
        let mut c = PlatformConfig::new(f.functions);
        c.mode = f.mode;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
mode: process
functions:
  - name: fixture-rust
    fixture: rust
    memory_mb: 256
    environment: { WORK_MS: \"5\" }
    reserved_concurrency: 4
  - name: other
    binary: bin/fn
";

    fn err(text: &str) -> String {
        FunctionsFile::parse(text, Path::new("/x/f.yaml")).unwrap_err().to_string()
    }

    #[test]
    fn loads_functions_with_defaults_and_resolves_binaries() {
        let f = FunctionsFile::parse(GOOD, Path::new("/x/f.yaml")).unwrap();
        assert_eq!(f.mode, ModeChoice::Process);
        assert_eq!(f.functions[0].memory_mb, 256);
        assert_eq!(f.functions[0].reserved_concurrency, Some(4));
        assert_eq!(f.functions[0].environment["WORK_MS"], "5");
        assert_eq!(f.functions[1].source, Source::Binary(PathBuf::from("/x/bin/fn")));
        assert_eq!((f.functions[1].memory_mb, f.functions[1].timeout_s), (128, 3.0));
    }

    #[test]
    fn unknown_key_is_located() {
        let e = err(&GOOD.replace("memory_mb: 256", "memory: 256"));
        assert!(e.starts_with("/x/f.yaml:5:"), "{e}");
        assert!(e.contains("memory"), "{e}");
    }

    #[test]
    fn bad_values_are_located_at_the_function() {
        let e = err(&GOOD.replace("memory_mb: 256", "memory_mb: 64"));
        assert!(e.starts_with("/x/f.yaml:3:11:") && e.contains("outside 128..=10240"), "{e}");
        let e = err(&GOOD.replace("name: other", "name: fixture-rust"));
        assert!(e.starts_with("/x/f.yaml:8:") && e.contains("duplicate"), "{e}");
        let e = err(&GOOD.replace("    binary: bin/fn\n", ""));
        assert!(e.contains("exactly one of"), "{e}");
        let e = err(&GOOD.replace("fixture: rust", "fixture: cobol"));
        assert!(e.contains("unknown fixture `cobol`"), "{e}");
    }

    #[test]
    fn provisioned_beyond_reserved_is_rejected() {
        let e =
            err(&GOOD.replace("reserved_concurrency: 4", "reserved_concurrency: 1\n    provisioned_concurrency: 2"));
        assert!(e.contains("exceeds reserved_concurrency"), "{e}");
    }
}
