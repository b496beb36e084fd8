//! [`Scanner`]: finds secrets in what a platform exposes (a Prometheus text exposition, Prometheus series,
//! function configuration JSON, base64 log tails) and in the harness's own files, and reports each as a
//! [`Finding`] that names where it is and what kind it is, never the secret itself.

use std::{
    collections::HashSet,
    hash::{DefaultHasher, Hash, Hasher},
    ops::Range,
    path::Path,
};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{
    detect::{self, Kind},
    Error,
};
use crate::metrics::exposition;

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// The input: a URL, a file, `function config`.
    pub source: String,
    /// The field within it: `metric{label}`, a JSON path, an environment variable.
    #[serde(default)]
    pub field: Option<String>,
    /// 1-based line, for line-oriented inputs.
    #[serde(default)]
    pub line: Option<usize>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        Ok(())
    }
}

/// One secret found. It holds a redacted fingerprint, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Kind of secret.
    pub kind: Kind,
    /// Where it is.
    pub location: Location,
    /// The first characters and the length (`AKIA… (20 chars)`): enough to find it, not enough to use it.
    pub fingerprint: String,
    /// Byte range of the secret in the scanned fragment: the whole text for [`Scanner::text`], the label
    /// value or name for expositions and series, the string value for configuration.
    #[serde(skip)]
    pub span: Range<usize>,
    #[serde(skip)]
    digest: u64,
}

impl Finding {
    fn new(kind: Kind, mut location: Location, secret: &str, span: Range<usize>) -> Finding {
        let fingerprint = fingerprint(kind, secret);
        if !secret.is_empty() {
            location.source = location.source.replace(secret, &fingerprint);
            location.field = location.field.map(|f| f.replace(secret, &fingerprint));
        }
        let mut h = DefaultHasher::new();
        secret.hash(&mut h);
        Finding { kind, location, fingerprint, span, digest: h.finish() }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}: {}", self.kind, self.location, self.fingerprint)
    }
}

/// A redacted fingerprint: up to 4 leading characters (fewer for short secrets, none for private keys) and
/// the length.
pub fn fingerprint(kind: Kind, secret: &str) -> String {
    let n = secret.chars().count();
    let shown = if kind == Kind::PrivateKey { 0 } else { (n / 4).min(4) };
    let head: String = secret.chars().take(shown).collect();
    format!("{head}… ({n} chars)")
}

/// The secret scanner. Credentials the harness was given are found verbatim wherever they appear.
#[derive(Debug, Clone)]
pub struct Scanner {
    known: Vec<String>,
    entropy: bool,
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner { known: Vec::new(), entropy: true }
    }
}

/// Credentials shorter than this are not searched for verbatim: they would match ordinary text.
pub const MIN_KNOWN_LEN: usize = 6;

impl Scanner {
    /// A scanner without known credentials.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Adds credentials the harness was given (API keys, tokens, passwords) to look for verbatim.
    pub fn with_credentials<I, S>(mut self, credentials: I) -> Scanner
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for c in credentials {
            let c = c.as_ref();
            if c.chars().count() >= MIN_KNOWN_LEN && !self.known.iter().any(|k| k == c) {
                self.known.push(c.to_string());
            }
        }
        self
    }

    /// Leaves out the entropy detector: for the harness's own files, whose serialized histograms and
    /// checksums are random by nature; credentials and patterned secrets are still found.
    pub fn without_entropy(mut self) -> Scanner {
        self.entropy = false;
        self
    }

    fn fragment(&self, text: &str, field: Option<&str>, location: &Location, out: &mut Vec<Finding>) {
        for hit in detect::detect(text, field, &self.known, self.entropy) {
            out.push(Finding::new(hit.kind, location.clone(), &text[hit.span.clone()], hit.span));
        }
    }

    /// Scans free text (a log, a report); findings carry their line and a span into `text`.
    pub fn text(&self, source: &str, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        let loc = Location { source: source.to_string(), field: None, line: None };
        self.fragment(text, None, &loc, &mut out);
        for f in &mut out {
            f.location.line = Some(text[..f.span.start].matches('\n').count() + 1);
        }
        dedup(out)
    }

    /// Scans a Prometheus text exposition: every metric name, label name, label value and HELP text. Lines
    /// that do not parse are scanned as text, so malformed input cannot hide a secret.
    pub fn exposition(&self, source: &str, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let loc = |field: String| Location { source: source.to_string(), field: Some(field), line: Some(i + 1) };
            let trimmed = line.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                let mut parts = comment.trim_start().splitn(3, char::is_whitespace);
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("TYPE"), Some(_), _) => {}
                    (Some("HELP"), Some(name), help) => {
                        self.fragment(name, None, &loc("metric name".into()), &mut out);
                        self.fragment(help.unwrap_or(""), None, &loc(format!("HELP of {name}")), &mut out);
                    }
                    _ => self.fragment(line, None, &loc("comment".into()), &mut out),
                }
                continue;
            }
            match exposition::split_sample(trimmed) {
                Ok((metric, labels, rest)) => {
                    self.fragment(metric, None, &loc("metric name".into()), &mut out);
                    for (name, value) in &labels {
                        self.fragment(name, None, &loc(format!("label name of {metric}")), &mut out);
                        self.fragment(value, Some(name), &loc(format!("{metric}{{{name}}}")), &mut out);
                    }
                    // Value, timestamp and any exemplar, as written: an exemplar's labels can carry a secret.
                    self.fragment(rest, None, &loc(format!("value of {metric}")), &mut out);
                }
                Err(_) => self.fragment(line, None, &loc("unparsed line".into()), &mut out),
            }
        }
        dedup(out)
    }

    /// Scans the answer of Prometheus' `/api/v1/series`: every label name and value of every series.
    pub fn series(&self, source: &str, body: &str) -> Result<Vec<Finding>, Error> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| Error::parse(source, Some(e.line()), format!("not JSON: {e}")))?;
        if v.get("status").and_then(|s| s.as_str()) != Some("success") {
            return Err(Error::parse(source, None, format!("status is not success: {}", short(body))));
        }
        let series = v
            .get("data")
            .and_then(|d| d.as_array())
            .ok_or_else(|| Error::parse(source, None, "no `data` array in the series answer"))?;
        let mut out = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let labels =
                s.as_object().ok_or_else(|| Error::parse(source, None, format!("series {i} is not an object")))?;
            let metric = labels.get("__name__").and_then(|n| n.as_str()).unwrap_or("");
            for (name, value) in labels {
                let loc = |field: String| Location { source: source.to_string(), field: Some(field), line: None };
                self.fragment(name, None, &loc(format!("series {i}: label name of {metric}")), &mut out);
                let value = value.as_str().unwrap_or_default();
                self.fragment(value, Some(name), &loc(format!("series {i}: {metric}{{{name}}}")), &mut out);
            }
        }
        Ok(dedup(out))
    }

    /// Scans a JSON document (function configuration, environment variables): every key and string value,
    /// values judged together with their key (`DB_PASSWORD: hunter2`).
    pub fn config(&self, source: &str, body: &str) -> Result<Vec<Finding>, Error> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| Error::parse(source, Some(e.line()), format!("not JSON: {e}")))?;
        let mut out = Vec::new();
        self.walk(source, "$", None, &v, &mut out);
        Ok(dedup(out))
    }

    fn walk(&self, source: &str, path: &str, key: Option<&str>, v: &serde_json::Value, out: &mut Vec<Finding>) {
        let loc = |field: String| Location { source: source.to_string(), field: Some(field), line: None };
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    let child_path = format!("{path}.{k}");
                    self.fragment(k, None, &loc(format!("key {child_path}")), out);
                    self.walk(source, &child_path, Some(k), child, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.walk(source, &format!("{path}[{i}]"), key, child, out);
                }
            }
            serde_json::Value::String(s) => self.fragment(s, key, &loc(path.to_string()), out),
            _ => {}
        }
    }

    /// Scans a base64 log tail (the `LogResult` of an invoke with `LogType: Tail`) after decoding it.
    pub fn log_tail(&self, source: &str, base64_tail: &str) -> Result<Vec<Finding>, Error> {
        let compact: String = base64_tail.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| Error::parse(source, None, format!("log tail is not base64: {e}")))?;
        Ok(self.text(&format!("{source} (decoded log tail)"), &String::from_utf8_lossy(&bytes)))
    }

    /// Scans a file as text (reports, raw data). Binary files (holding NUL bytes) are skipped: `Ok(None)`.
    pub fn file(&self, path: &Path) -> Result<Option<Vec<Finding>>, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if bytes.contains(&0) {
            return Ok(None);
        }
        Ok(Some(self.text(&path.display().to_string(), &String::from_utf8_lossy(&bytes))))
    }

    /// Scans every text file under `dir` (sorted, recursively); returns the findings and the files scanned.
    pub fn dir(&self, dir: &Path) -> Result<(Vec<Finding>, usize), Error> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let mut out = Vec::new();
        let mut scanned = 0;
        for f in files {
            if let Some(found) = self.file(&f)? {
                scanned += 1;
                out.extend(found);
            }
        }
        Ok((out, scanned))
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let ty = entry.file_type().map_err(io)?;
        if ty.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// One secret repeated (a label on every bucket line of a histogram) is one finding: the first one.
fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut seen = HashSet::new();
    findings
        .into_iter()
        .filter(|f| seen.insert((f.kind, f.location.source.clone(), f.location.field.clone(), f.digest)))
        .collect()
}

fn short(s: &str) -> String {
    let head: String = s.chars().take(120).collect();
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_metric_label_and_line_without_the_secret() {
        let expo = "# HELP lambda_invocations_total Invocations.\n# TYPE lambda_invocations_total counter\n\
                    lambda_invocations_total{function=\"fixture-rust\",owner=\"ops@example.com\"} 3\n\
                    lambda_duration_seconds_bucket{function=\"fixture-rust\",le=\"0.005\"} 1\n\
                    lambda_duration_seconds_bucket{function=\"fixture-rust\",le=\"+Inf\"} 2\n";
        let f = Scanner::new().exposition("http://127.0.0.1:9/metrics", expo);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, Kind::Email);
        assert_eq!(f[0].location.line, Some(3));
        assert_eq!(f[0].location.field.as_deref(), Some("lambda_invocations_total{owner}"));
        assert!(!f[0].to_string().contains("ops@example.com"));
    }

    #[test]
    fn repeated_label_is_one_finding_and_malformed_lines_are_still_scanned() {
        let token = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
        let expo = format!(
            "m_bucket{{t=\"{token}\",le=\"1\"}} 1\nm_bucket{{t=\"{token}\",le=\"2\"}} 1\nbroken{{t=\"{token}\n"
        );
        let f = Scanner::new().exposition("x", &expo);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[1].location.field.as_deref(), Some("unparsed line"));
        assert_eq!(f[1].location.line, Some(3));
    }

    #[test]
    fn without_entropy_still_finds_patterns_and_known_credentials() {
        let s = Scanner::new().with_credentials(["perf-key-0001"]).without_entropy();
        let text = "hist HISTFAAAAEx4nJNpmSzMwMDAxQABzFCaEUTX7H7IYGQAAJwDB7Ak9Zq2Lm8RfX3c= key perf-key-0001 AKIAQ3EGRTW5L7XYZ4PA";
        let kinds: Vec<Kind> = s.text("raw", text).into_iter().map(|f| f.kind).collect();
        assert_eq!(kinds, vec![Kind::KnownCredential, Kind::AwsAccessKeyId]);
        let all: Vec<Kind> = Scanner::new().text("raw", text).into_iter().map(|f| f.kind).collect();
        assert_eq!(all, vec![Kind::HighEntropy, Kind::AwsAccessKeyId]);
    }

    #[test]
    fn a_secret_in_an_exemplar_or_an_unquoted_label_is_found() {
        let token = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
        let f = Scanner::new().exposition("x", &format!("m{{a=\"1\"}} 1 # {{trace_id=\"{token}\"}} 0.5\n"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location.field.as_deref(), Some("value of m"));
        let f = Scanner::new().exposition("x", &format!("m{{a={token}}} 1\n"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location.field.as_deref(), Some("unparsed line"));
    }

    #[test]
    fn config_env_vars_are_judged_with_their_names() {
        let cfg = r#"{"FunctionName":"fixture-rust","CodeSha256":"n0u5dTsaFsQhcXaK2w4JcI5sXCM0Xjq5XsI6RKaHQHY=",
            "Environment":{"Variables":{"DB_PASSWORD":"hunter22","LOG_LEVEL":"info","API_KEY_FILE":"/run/k"}}}"#;
        let f = Scanner::new().config("function config", cfg).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, Kind::CredentialPair);
        assert_eq!(f[0].location.field.as_deref(), Some("$.Environment.Variables.DB_PASSWORD"));
        assert_eq!(f[0].fingerprint, "hu… (8 chars)");
        let err = Scanner::new().config("cfg.json", "{\n\"a\": }").unwrap_err();
        assert!(err.to_string().contains("cfg.json: line 2"), "{err}");
    }

    #[test]
    fn series_and_log_tails() {
        let series = r#"{"status":"success","data":[{"__name__":"up","job":"fn","url":"https://u:pw12345@h/"}]}"#;
        let f = Scanner::new().series("prometheus series", series).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::UrlPassword);
        assert_eq!(f[0].location.field.as_deref(), Some("series 0: up{url}"));
        assert!(Scanner::new().series("s", r#"{"status":"error"}"#).is_err());
        let tail = base64::engine::general_purpose::STANDARD.encode("START\nuser=a token=Zk29aQ81pLx7\nEND\n");
        let f = Scanner::new().log_tail("invoke", &tail).unwrap();
        assert_eq!((f.len(), f[0].location.line), (1, Some(2)));
        assert!(Scanner::new().log_tail("invoke", "not base64!").is_err());
    }

    #[test]
    fn known_credentials_short_ones_ignored_and_secret_in_a_name_is_masked() {
        let s = Scanner::new().with_credentials(["abc", "api-key-0001"]);
        let f = s.exposition("m", "requests{api-key-0001=\"1\"} 1\n");
        assert!(f.iter().all(|f| f.kind != Kind::KnownCredential || !f.to_string().contains("api-key-0001")));
        assert!(f.iter().any(|f| f.kind == Kind::KnownCredential));
        assert!(s.text("t", "abc abc").is_empty());
    }
}
