//! Check (d), tuning operations are audited: every [`ConfigChange`] the suite made must appear in the
//! target's audit log (JSON Lines, one `{time, key, function, field, from, to}` object per change).
//!
//! A change matches an entry with the same function, the same field (compared without case, `_` or `-`:
//! `MemorySize` = `memory_size`), the same old and new values (numbers compared as numbers, `"512"` = `512`),
//! and a time inside the window around the change. Each entry matches at most one change.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Error;

/// A configuration change the suite made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// When the change was requested.
    pub time: DateTime<Utc>,
    /// Function changed.
    pub function: String,
    /// Field changed (`MemorySize`, `ReservedConcurrency`, `stage.rate`).
    pub field: String,
    /// Old value.
    pub from: serde_json::Value,
    /// New value.
    pub to: serde_json::Value,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the platform applied the change.
    pub time: DateTime<Utc>,
    /// Who made it (the API key id or principal), when recorded.
    #[serde(default)]
    pub key: Option<String>,
    /// Function changed.
    pub function: String,
    /// Field changed.
    pub field: String,
    /// Old value.
    #[serde(default)]
    pub from: serde_json::Value,
    /// New value.
    #[serde(default)]
    pub to: serde_json::Value,
}

/// How close in time an entry must be to its change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// An entry may precede the change by this much (clock skew between harness and platform).
    pub before: Duration,
    /// And follow it by this much (changes applied asynchronously).
    pub after: Duration,
}

impl Default for Window {
    fn default() -> Window {
        Window { before: Duration::from_secs(5), after: Duration::from_secs(60) }
    }
}

/// The result of check (d).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The log read.
    pub log: PathBuf,
    /// Whether it existed.
    pub log_exists: bool,
    /// Changes the suite made.
    pub changes: usize,
    /// Entries in the log.
    pub entries: usize,
    /// Changes without a matching entry.
    pub missing: Vec<ConfigChange>,
}

/// Reads a JSONL audit log; a line that is not an entry is an error naming the file and line.
pub fn read_log(path: &Path) -> Result<Vec<AuditEntry>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let name = path.display().to_string();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::parse(&name, Some(i + 1), e.to_string())))
        .collect()
}

/// The changes missing from the log at `path`. A log that does not exist misses every change.
pub fn check(changes: &[ConfigChange], path: &Path, window: Window) -> Result<AuditReport, Error> {
    let log_exists = path.exists();
    let entries = if log_exists { read_log(path)? } else { Vec::new() };
    Ok(AuditReport {
        log: path.to_path_buf(),
        log_exists,
        changes: changes.len(),
        entries: entries.len(),
        missing: missing(changes, &entries, window),
    })
}

/// The changes that no entry matches (see the module documentation).
pub fn missing(changes: &[ConfigChange], entries: &[AuditEntry], window: Window) -> Vec<ConfigChange> {
    let mut used = vec![false; entries.len()];
    let mut out = Vec::new();
    for c in changes {
        let lo = c.time - chrono::Duration::from_std(window.before).unwrap_or_default();
        let hi = c.time + chrono::Duration::from_std(window.after).unwrap_or_default();
        let found = entries.iter().enumerate().position(|(i, e)| {
            !used[i]
                && e.function == c.function
                && same_field(&e.field, &c.field)
                && same_value(&e.from, &c.from)
                && same_value(&e.to, &c.to)
                && e.time >= lo
                && e.time <= hi
        });
        match found {
            Some(i) => used[i] = true,
            None => out.push(c.clone()),
        }
    }
    out
}

fn same_field(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_lowercase();
    norm(a) == norm(b)
}

fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(secs: i64, field: &str, from: serde_json::Value, to: serde_json::Value) -> ConfigChange {
        ConfigChange {
            time: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            function: "fn".into(),
            field: field.into(),
            from,
            to,
        }
    }

    fn entry(c: &ConfigChange, delay: i64) -> AuditEntry {
        AuditEntry {
            time: c.time + chrono::Duration::seconds(delay),
            key: Some("k1".into()),
            function: c.function.clone(),
            field: c.field.to_lowercase(),
            from: c.from.clone(),
            to: c.to.clone(),
        }
    }

    #[test]
    fn matches_on_function_field_values_and_time() {
        let a = change(0, "MemorySize", json!(128), json!(512));
        let b = change(1, "ReservedConcurrency", json!(null), json!(10));
        let mut eb = entry(&b, 2);
        eb.to = json!("10");
        let entries = vec![entry(&a, 1), eb];
        assert!(missing(&[a.clone(), b.clone()], &entries, Window::default()).is_empty());
        let late = vec![entry(&a, 3600), entry(&b, 2)];
        assert_eq!(missing(&[a.clone(), b.clone()], &late, Window::default()), vec![a.clone()]);
        let wrong_value = vec![AuditEntry { to: json!(256), ..entry(&a, 0) }];
        assert_eq!(missing(std::slice::from_ref(&a), &wrong_value, Window::default()).len(), 1);
    }

    #[test]
    fn one_entry_matches_one_change() {
        let a = change(0, "MemorySize", json!(128), json!(512));
        assert_eq!(missing(&[a.clone(), a.clone()], &[entry(&a, 0)], Window::default()).len(), 1);
    }

    #[test]
    fn bad_lines_name_file_and_line_and_a_missing_log_misses_everything() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        std::fs::write(&p, "{\"time\":\"2024-01-01T00:00:00Z\",\"function\":\"f\",\"field\":\"x\"}\n\nnot json\n")
            .unwrap();
        let err = read_log(&p).unwrap_err().to_string();
        assert!(err.contains("audit.jsonl: line 3"), "{err}");
        let a = change(0, "MemorySize", json!(128), json!(512));
        let r = check(std::slice::from_ref(&a), &dir.path().join("none.jsonl"), Window::default()).unwrap();
        assert_eq!((r.log_exists, r.missing.len()), (false, 1));
    }
}
