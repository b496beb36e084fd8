//! [`Record`]: what a `--provision` run applied, where and with which variables (`provision/record.json` of
//! its run directory), the wall times of its [`Phases`], and where its working directory is ([`work_dir`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::provision::{Error, RECORD};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Where the stack is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// `init`/`apply` under way (or killed during it): restore destroys what the state holds.
    Applying,
    /// Up, the run measures it.
    Applied,
    /// Left up on purpose (`--keep`).
    Kept,
    /// Destroyed; nothing left.
    Destroyed,
    /// The destroy failed; restore tries again.
    DestroyFailed,
}

/// One phase's wall time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Wall time in seconds.
    pub seconds: f64,
    /// Attempts it took.
    pub attempts: u32,
    /// What came of it.
    pub outcome: String,
}

impl Phase {
    pub(crate) fn text(&self, name: &str) -> String {
        let attempts = if self.attempts == 1 { "1 attempt".into() } else { format!("{} attempts", self.attempts) };
        format!("provisioning: {name} {:.1} s ({attempts}): {}", self.seconds, self.outcome)
    }
}

/// Wall times of the provisioning phases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// `terraform init` + `apply` (+ reading the outputs).
    pub init_apply: Option<Phase>,
    /// From the end of the apply to the first successful invocation of the function the outputs name.
    pub first_healthy_invoke: Option<Phase>,
    /// `terraform destroy`.
    pub destroy: Option<Phase>,
}

impl Phases {
    /// One line per phase measured.
    pub fn text(&self) -> String {
        let mut t = String::new();
        for (name, p) in [
            ("init+apply", &self.init_apply),
            ("first healthy invoke", &self.first_healthy_invoke),
            ("destroy", &self.destroy),
        ] {
            if let Some(p) = p {
                t += &p.text(name);
                t.push('\n');
            }
        }
        t
    }
}

/// What a run provisioned (`provision/record.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The user's module directory.
    pub source: PathBuf,
    /// The copy that was applied (in the run directory).
    pub module: PathBuf,
    /// The workspace (named after the run).
    pub workspace: String,
    /// Names of the variables set with `--var` (values in `vars.json`, never here).
    pub var_names: Vec<String>,
    /// Copies of the `--var-file` files, in order.
    pub var_files: Vec<PathBuf>,
    /// Where the stack is.
    pub state: State,
    /// When the state last changed.
    pub updated: DateTime<Utc>,
    /// Wall times.
    pub phases: Phases,
}

impl Record {
    /// The stack's working directory (the module copy's parent): outside the run directory.
    pub fn work(&self) -> PathBuf {
        self.module.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    pub(crate) fn save(&mut self, run: &Path) -> Result<(), Error> {
        self.updated = Utc::now();
        let path = run.join(RECORD);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("a record serializes");
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)).map_err(io(&path))
    }

    /// Reads the record of the run in `run`, if it provisioned.
    pub fn load(run: &Path) -> Result<Option<Record>, Error> {
        let path = run.join(RECORD);
        match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, source: e }),
            Ok(text) => {
                serde_json::from_str(&text).map(Some).map_err(|e| Error::Record { path, detail: e.to_string() })
            }
        }
    }
}

/// The phases of the run in `run`, when it provisioned.
pub fn phases(run: &Path) -> Option<Phases> {
    Record::load(run).ok().flatten().map(|r| r.phases)
}

/// A workspace name from a run id (letters, digits, `-`, `_`).
pub fn workspace_name(run_id: &str) -> String {
    let clean: String =
        run_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    format!("perf-{clean}")
}

/// The variable values of a stack (`vars.json` of its working directory, owner-only): `--var`s, and the `TF_VAR_*` of the
/// environment the apply ran in (given to the destroy the same way, so their precedence is Terraform's).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Values {
    pub(crate) vars: Vec<String>,
    pub(crate) tf_var_env: Vec<(String, String)>,
}

impl Values {
    pub(crate) fn load(work: &Path) -> Result<Values, Error> {
        let path = work.join("vars.json");
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| Error::Record { path, detail: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Values::default()),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }
}

/// The working directory of the stack of the run in `run`: `<run>.provision`, beside the run directory and
/// not in it, since it holds what may be secret (variable values, outputs, Terraform's state) and a run
/// directory is what CI keeps as an artifact. Removed after a successful destroy.
pub fn work_dir(run: &Path) -> PathBuf {
    let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    run.with_file_name(format!("{name}.provision"))
}
