//! [`AuditLog`]: every change the suite makes in an account (function environment, reserved and provisioned
//! concurrency) as JSON lines in the run directory: what was there before, what it was set to, and whether
//! it was restored. An entry is written before each change is attempted and after it, so a run that dies
//! in between still leaves a record of what it may have changed.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Error;

/// File name of the audit log inside a run directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// Why an entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The suite changes a setting for a measurement.
    Change,
    /// The suite puts a setting back as it was.
    Restore,
}

/// How far an entry's operation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// About to call the API.
    Started,
    /// The API accepted the change (and the resource settled, where the suite waits for that).
    Done,
    /// The call failed; `error` says why.
    Failed,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub ts: DateTime<Utc>,
    /// Target (`aws`, `localstack`).
    pub target: String,
    /// Endpoint the change went to.
    pub endpoint: String,
    /// Change or restore.
    pub phase: Phase,
    /// Started, done, failed.
    pub state: State,
    /// Resource (`function:perf-fixture`, `function:perf-fixture:live`).
    pub resource: String,
    /// Setting (`environment.HARNESS_COLD_START`, `reserved_concurrency`, `provisioned_concurrency`).
    pub setting: String,
    /// Value before (null: not set).
    pub before: Value,
    /// Value after (null: removed).
    pub after: Value,
    /// Error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The audit log of one run.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (appending) the audit log at `path`.
    pub fn open(path: &Path) -> Result<AuditLog, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Audit { path: path.into(), source })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Audit { path: path.into(), source })?;
        Ok(AuditLog { path: path.into(), file: Mutex::new(file) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as one write, so entries of concurrent writers never interleave.
    pub fn write(&self, entry: &AuditEntry) -> Result<(), Error> {
        let mut line =
            serde_json::to_string(entry).map_err(|e| Error::Audit { path: self.path.clone(), source: e.into() })?;
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(line.as_bytes()).map_err(|source| Error::Audit { path: self.path.clone(), source })
    }

    /// Reads every entry of the audit log at `path`.
    pub fn read(path: &Path) -> Result<Vec<AuditEntry>, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Audit { path: path.into(), source })?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| Error::Audit {
                    path: path.into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line {}: {e}", i + 1)),
                })
            })
            .collect()
    }

    /// Changes that were made (done, or started and never finished) and not restored since, by resource and
    /// setting: what a later run or a person must put back.
    pub fn unrestored(entries: &[AuditEntry]) -> Vec<&AuditEntry> {
        let mut open: Vec<&AuditEntry> = Vec::new();
        for e in entries {
            let key = |x: &AuditEntry| (x.resource.clone(), x.setting.clone());
            match (e.phase, e.state) {
                (Phase::Change, State::Done | State::Started) if !open.iter().any(|o| key(o) == key(e)) => open.push(e),
                (Phase::Restore, State::Done) => open.retain(|o| key(o) != key(e)),
                _ => {}
            }
        }
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(phase: Phase, state: State, setting: &str) -> AuditEntry {
        AuditEntry {
            ts: Utc::now(),
            target: "aws".into(),
            endpoint: "http://127.0.0.1:1".into(),
            phase,
            state,
            resource: "function:f".into(),
            setting: setting.into(),
            before: Value::Null,
            after: 5.into(),
            error: None,
        }
    }

    #[test]
    fn entries_round_trip_and_unrestored_changes_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("run/audit.jsonl")).unwrap();
        log.write(&entry(Phase::Change, State::Started, "reserved_concurrency")).unwrap();
        log.write(&entry(Phase::Change, State::Done, "reserved_concurrency")).unwrap();
        log.write(&entry(Phase::Change, State::Started, "environment.HARNESS_COLD_START")).unwrap();
        log.write(&entry(Phase::Restore, State::Done, "reserved_concurrency")).unwrap();
        let all = AuditLog::read(log.path()).unwrap();
        assert_eq!(all.len(), 4);
        let open = AuditLog::unrestored(&all);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].setting, "environment.HARNESS_COLD_START");
    }

    #[test]
    fn a_corrupt_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        std::fs::write(&p, "{}\n").unwrap();
        let e = AuditLog::read(&p).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
