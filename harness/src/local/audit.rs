//! [`AuditLog`]: one JSON line per configuration change (function, action, field, from, to, when, and the
//! access key that asked), appended and flushed before the change is acknowledged.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde_json::{json, Value};

use super::Error;

/// An append-only JSONL audit log.
#[derive(Debug)]
pub(crate) struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    pub fn open(path: &Path) -> Result<AuditLog, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::io(format!("open audit log {}", path.display())))?;
        Ok(AuditLog { path: path.into(), file: Mutex::new(file) })
    }

    /// Records that `key` changed `field` of `function` from `from` to `to` through `action`.
    pub fn record(
        &self,
        function: &str,
        action: &str,
        field: &str,
        from: Value,
        to: Value,
        key: &str,
    ) -> Result<(), Error> {
        let line = json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "function": function,
            "action": action,
            "field": field,
            "from": from,
            "to": to,
            "key": key,
        });
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(f, "{line}")
            .and_then(|_| f.flush())
            .map_err(Error::io(format!("write audit log {}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_one_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
        log.record("f", "UpdateFunctionConfiguration", "MemorySize", json!(128), json!(256), "AKID").unwrap();
        log.record("f", "PutFunctionConcurrency", "ReservedConcurrentExecutions", Value::Null, json!(2), "AKID")
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0]["from"].clone(), lines[0]["to"].clone(), lines[0]["key"].clone()),
            (json!(128), json!(256), json!("AKID"))
        );
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    }
}
