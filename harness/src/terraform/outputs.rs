//! [`Outputs`]: a `terraform output -json` document, read from a saved file or by running `terraform` in a
//! module directory, with typed access that names the output, its expected type and the module that should
//! declare it whenever something is missing or mistyped.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use super::contract::{spec, OutputType, MODULE};

/// How long `terraform output -json` may take (remote state backends answer slowly, never this slowly).
pub const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors of the `terraform` module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither a module directory nor a saved outputs file was given.
    #[error(
        "the aws and localstack targets read their resources from Terraform outputs: pass --tf-dir DIR (runs \
         `terraform output -json` there) or --tf-outputs FILE (a saved `terraform output -json`)"
    )]
    NoSource,
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The document is not JSON.
    #[error("{source_name}: not JSON at line {line}, column {column}: {detail} (expected the output of `terraform output -json`)")]
    Json {
        /// Where it came from.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        detail: String,
    },
    /// The document is JSON but not a `terraform output -json` document.
    #[error("{source_name}: not a `terraform output -json` document: {detail}")]
    NotOutputs {
        /// Where it came from.
        source_name: String,
        /// What is wrong.
        detail: String,
    },
    /// The document has no outputs at all.
    #[error(
        "{source_name}: no outputs: has the module been applied (terraform apply), and is this its directory or state?"
    )]
    Empty {
        /// Where it came from.
        source_name: String,
    },
    /// `terraform` is not installed.
    #[error(
        "`{program}` not found (running `terraform output -json` in {dir}): install Terraform >= 1.5, set \
         TERRAFORM to its path, or pass --tf-outputs FILE with a saved `terraform output -json`"
    )]
    TerraformMissing {
        /// Program that was looked for.
        program: String,
        /// Module directory.
        dir: PathBuf,
    },
    /// `terraform output -json` failed.
    #[error("`terraform output -json` in {dir} exited with {status}: {stderr}")]
    TerraformFailed {
        /// Module directory.
        dir: PathBuf,
        /// Exit status.
        status: String,
        /// Its error output (trimmed).
        stderr: String,
    },
    /// `terraform output -json` did not finish in time.
    #[error("`terraform output -json` in {dir} did not finish within {} s; it was killed", after.as_secs())]
    TerraformTimeout {
        /// Module directory.
        dir: PathBuf,
        /// The deadline.
        after: Duration,
    },
    /// A required output is absent or null.
    #[error(
        "terraform output `{name}` is {state} in {source_name}: the harness reads it as {expected} ({about}); \
         declare `output \"{name}\"` in {module}"
    )]
    Missing {
        /// Output name.
        name: String,
        /// `missing` or `null`.
        state: &'static str,
        /// Expected type.
        expected: &'static str,
        /// What it is.
        about: &'static str,
        /// Where the outputs came from.
        source_name: String,
        /// The module that should declare it.
        module: &'static str,
    },
    /// An output has the wrong type.
    #[error(
        "terraform output `{name}` in {source_name} is {found}, expected {expected} ({about}); fix `output \
         \"{name}\"` in {module}"
    )]
    WrongType {
        /// Output name.
        name: String,
        /// Expected type.
        expected: &'static str,
        /// Type found.
        found: String,
        /// What it is.
        about: &'static str,
        /// Where the outputs came from.
        source_name: String,
        /// The module that should declare it.
        module: &'static str,
    },
    /// Several outputs are missing or mistyped (all of them are listed, in contract order).
    #[error("{} terraform outputs are missing or mistyped:\n  {}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Several {
        /// One error per output.
        errors: Vec<Error>,
    },
    /// An output has the right type but an unusable value.
    #[error("terraform output `{name}` in {source_name}: {problem}; fix `output \"{name}\"` in {module}")]
    BadValue {
        /// Output name.
        name: String,
        /// What is wrong (never the value of a secret).
        problem: String,
        /// Where the outputs came from.
        source_name: String,
        /// The module that should declare it.
        module: &'static str,
    },
}

/// One output of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Its value.
    pub value: Value,
    /// Its Terraform type, as `terraform output -json` writes it (`"string"`, `["map","string"]`, ...).
    pub ty: Value,
    /// Whether Terraform marks it sensitive.
    pub sensitive: bool,
}

/// A `terraform output -json` document.
#[derive(Debug, Clone)]
pub struct Outputs {
    source_name: String,
    outputs: BTreeMap<String, Output>,
}

impl Outputs {
    /// Reads a saved `terraform output -json` file.
    pub fn from_file(path: &Path) -> Result<Outputs, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Outputs::parse(&text, &format!("saved outputs {}", path.display()))
    }

    /// Runs `terraform output -json` in the module directory `dir` (`$TERRAFORM` or `terraform` on PATH).
    pub fn from_dir(dir: &Path) -> Result<Outputs, Error> {
        let program = std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into());
        let text = run_terraform_output(&program, dir, TERRAFORM_TIMEOUT)?;
        Outputs::parse(&text, &format!("`terraform output -json` in {}", dir.display()))
    }

    /// Parses a document; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Outputs, Error> {
        let doc: Value = serde_json::from_str(text).map_err(|e| Error::Json {
            source_name: source_name.into(),
            line: e.line(),
            column: e.column(),
            detail: e.to_string(),
        })?;
        let Value::Object(map) = doc else {
            return Err(Error::NotOutputs {
                source_name: source_name.into(),
                detail: "the top level is not an object".into(),
            });
        };
        let mut outputs = BTreeMap::new();
        for (name, o) in map {
            let Some(value) = o.get("value") else {
                return Err(Error::NotOutputs {
                    source_name: source_name.into(),
                    detail: format!("`{name}` has no `value` (each output is {{\"value\": ..., \"type\": ..., \"sensitive\": ...}})"),
                });
            };
            let ty = o.get("type").cloned().unwrap_or(Value::Null);
            let sensitive = o.get("sensitive").and_then(Value::as_bool).unwrap_or(false);
            outputs.insert(name, Output { value: value.clone(), ty, sensitive });
        }
        if outputs.is_empty() {
            return Err(Error::Empty { source_name: source_name.into() });
        }
        Ok(Outputs { source_name: source_name.into(), outputs })
    }

    /// Where the document came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The names of all outputs.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.outputs.keys().map(String::as_str)
    }

    /// The raw output `name`.
    pub fn get(&self, name: &str) -> Option<&Output> {
        self.outputs.get(name)
    }

    fn missing(&self, name: &str, state: &'static str) -> Error {
        let s = spec(name);
        Error::Missing {
            name: name.into(),
            state,
            expected: s.ty.hcl(),
            about: s.about,
            source_name: self.source_name.clone(),
            module: MODULE,
        }
    }

    fn wrong_type(&self, name: &str, o: &Output) -> Error {
        let s = spec(name);
        Error::WrongType {
            name: name.into(),
            expected: s.ty.hcl(),
            found: found_type(o),
            about: s.about,
            source_name: self.source_name.clone(),
            module: MODULE,
        }
    }

    /// An error about the value of output `name` (never print a secret's value in `problem`).
    pub fn bad_value(&self, name: &str, problem: impl Into<String>) -> Error {
        Error::BadValue {
            name: name.into(),
            problem: problem.into(),
            source_name: self.source_name.clone(),
            module: MODULE,
        }
    }

    /// Output `name` of the contract, checked against its declared type; `None` when an optional output is
    /// absent or null.
    fn checked(&self, name: &str, want: OutputType) -> Result<Option<&Value>, Error> {
        let s = spec(name);
        assert_eq!(s.ty, want, "harness bug: output `{name}` read as {want:?}, declared {:?} in the contract", s.ty);
        let o = match self.outputs.get(name) {
            None if s.required => return Err(self.missing(name, "missing")),
            None => return Ok(None),
            Some(o) => o,
        };
        if o.value.is_null() {
            return if s.required { Err(self.missing(name, "null")) } else { Ok(None) };
        }
        let ok = match want {
            OutputType::String => o.value.is_string(),
            OutputType::MapOfString => o.value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
        };
        if ok {
            Ok(Some(&o.value))
        } else {
            Err(self.wrong_type(name, o))
        }
    }

    /// Checks every output of the contract for presence and type; all problems are reported together.
    pub fn check_contract(&self) -> Result<(), Error> {
        let mut errors: Vec<Error> =
            super::contract::OUTPUTS.iter().filter_map(|s| self.checked(s.name, s.ty).err()).collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Several { errors }),
        }
    }

    /// A required string output.
    pub fn string(&self, name: &str) -> Result<String, Error> {
        Ok(self.optional_string(name)?.unwrap_or_else(|| panic!("harness bug: `{name}` is optional in the contract")))
    }

    /// An optional string output (absent, null or an empty string are `None`).
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, Error> {
        let v = self.checked(name, OutputType::String)?;
        let s = v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if s.is_none() && spec(name).required {
            return Err(self.bad_value(name, "it is an empty string"));
        }
        Ok(s)
    }

    /// A required map-of-strings output.
    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, Error> {
        let v =
            self.checked(name, OutputType::MapOfString)?.unwrap_or_else(|| panic!("harness bug: `{name}` is optional"));
        Ok(v.as_object()
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
            .unwrap_or_default())
    }
}

/// How `terraform output -json` describes an output's type, in HCL notation (`map(string)`), or the JSON
/// kind of its value when the document has no type.
fn found_type(o: &Output) -> String {
    fn hcl(t: &Value) -> Option<String> {
        match t {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => match (a.first().and_then(Value::as_str), a.get(1)) {
                (Some(k @ ("list" | "set" | "map")), Some(inner)) => Some(format!("{k}({})", hcl(inner)?)),
                (Some("object"), Some(Value::Object(fields))) => {
                    let inner: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{k} = {}", hcl(v).unwrap_or_default())).collect();
                    Some(format!("object({{{}}})", inner.join(", ")))
                }
                (Some("tuple"), Some(Value::Array(items))) => {
                    Some(format!("tuple([{}])", items.iter().filter_map(hcl).collect::<Vec<_>>().join(", ")))
                }
                _ => None,
            },
            _ => None,
        }
    }
    let kind = match &o.value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    };
    hcl(&o.ty).unwrap_or_else(|| kind.to_string())
}

fn run_terraform_output(program: &str, dir: &Path, timeout: Duration) -> Result<String, Error> {
    use super::command::{Failure, OnSignal, Terraform};
    let tf = Terraform { program: program.into(), ..Terraform::from_env() };
    let args = ["output", "-json", "-no-color"].map(String::from);
    let ran = tf.run(dir, &args, timeout, OnSignal::Stop).map_err(|f| match f {
        Failure::Missing => Error::TerraformMissing { program: program.into(), dir: dir.into() },
        Failure::Io(source) => Error::Io { path: program.into(), source },
        Failure::Timeout => Error::TerraformTimeout { dir: dir.into(), after: timeout },
    })?;
    if !ran.status.success() {
        let stderr: String = ran.stderr.trim().chars().take(2000).collect();
        return Err(Error::TerraformFailed { dir: dir.into(), status: ran.status.to_string(), stderr });
    }
    Ok(ran.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_line_and_column() {
        let e = Outputs::parse("{\n  \"a\": ", "f.json").unwrap_err();
        assert!(matches!(e, Error::Json { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("f.json") && e.to_string().contains("terraform output -json"), "{e}");
    }

    #[test]
    fn documents_that_are_not_outputs_are_rejected() {
        let e = Outputs::parse("[1]", "f").unwrap_err();
        assert!(e.to_string().contains("top level is not an object"), "{e}");
        let e = Outputs::parse(r#"{"region": "eu-west-1"}"#, "f").unwrap_err();
        assert!(e.to_string().contains("`region` has no `value`"), "{e}");
        let e = Outputs::parse("{}", "f").unwrap_err();
        assert!(matches!(e, Error::Empty { .. }), "{e}");
    }

    #[test]
    fn found_types_are_written_in_hcl_notation() {
        let o = |value: Value, ty: Value| Output { value, ty, sensitive: false };
        assert_eq!(found_type(&o(serde_json::json!(3), serde_json::json!("number"))), "number");
        assert_eq!(found_type(&o(serde_json::json!(["a"]), serde_json::json!(["list", "string"]))), "list(string)");
        assert_eq!(
            found_type(&o(serde_json::json!({"a": 1}), serde_json::json!(["object", {"a": "number"}]))),
            "object({a = number})"
        );
        assert_eq!(found_type(&o(serde_json::json!(true), Value::Null)), "bool");
    }

    #[test]
    fn a_missing_terraform_binary_is_named() {
        let e = run_terraform_output("/nonexistent/terraform-for-test", Path::new("."), Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(e, Error::TerraformMissing { .. }), "{e}");
        assert!(e.to_string().contains("--tf-outputs FILE"), "{e}");
    }

    /// Writes an executable script; runs it, retrying while another test's fork still holds the file open
    /// for writing (ETXTBSY), which only a concurrently spawning test process can cause.
    fn fake_terraform(script: &str, timeout: Duration) -> Error {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("terraform");
        std::fs::write(&fake, script).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        for _ in 0..50 {
            match run_terraform_output(fake.to_str().unwrap(), dir.path(), timeout) {
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => return other.unwrap_err(),
            }
        }
        panic!("{} stayed busy", fake.display())
    }

    #[test]
    fn a_failing_terraform_reports_its_stderr() {
        let e = fake_terraform("#!/bin/sh\necho 'Error: No outputs found' >&2\nexit 1\n", Duration::from_secs(30));
        assert!(matches!(&e, Error::TerraformFailed { stderr, .. } if stderr.contains("No outputs found")), "{e}");
    }

    #[test]
    fn a_hanging_terraform_is_killed_at_the_deadline() {
        let e = fake_terraform("#!/bin/sh\nexec sleep 30\n", Duration::from_millis(300));
        assert!(matches!(e, Error::TerraformTimeout { .. }), "{e}");
    }
}
