//! [`Report`]: the platform's own account of one invocation, read from the `REPORT` line Lambda writes after
//! every invocation (text log format) or from its `platform.report` record (JSON log format), and
//! [`InitReport`] from `INIT_REPORT` / `platform.initReport` (an init phase that failed or timed out, or the
//! init of a SnapStart version).
//!
//! The same lines arrive in two ways: in the last 4 KB of an invocation's log (`LogType: Tail`, base64 in
//! `X-Amz-Log-Result`) and from CloudWatch Logs. A tail may start mid-line and holds function output too, so
//! the parser reads line by line, ignores what is not a report, and fails loudly on a report line it cannot
//! read (a wrong figure must not slip into a percentile).
//!
//! Text lines separate fields by tabs, but copies of them often have spaces instead; fields are found by
//! their labels, longest first ("Billed Restore Duration:" before "Restore Duration:" before "Duration:").

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which log format a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// `REPORT RequestId: ...` text line.
    Text,
    /// `{"type":"platform.report", ...}` JSON record.
    Json,
}

/// The figures of one `REPORT` line / `platform.report` record. Times in milliseconds, sizes in MB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Request id, when the line names one.
    pub request_id: Option<String>,
    /// Duration of the invocation (handler time).
    pub duration_ms: f64,
    /// Billed duration.
    pub billed_duration_ms: Option<f64>,
    /// Configured memory.
    pub memory_size_mb: Option<u64>,
    /// Peak memory of the execution environment.
    pub max_memory_used_mb: Option<u64>,
    /// Init Duration: present only on the first invocation of a new environment (a cold start).
    pub init_duration_ms: Option<f64>,
    /// SnapStart Restore Duration: present only when the environment was restored from a snapshot.
    pub restore_duration_ms: Option<f64>,
    /// SnapStart Billed Restore Duration.
    pub billed_restore_duration_ms: Option<f64>,
    /// `Status:` (`timeout`, `error`), absent on success in the text format.
    pub status: Option<String>,
    /// `Error Type:` (`Runtime.OutOfMemory`, ...).
    pub error_type: Option<String>,
    /// The format it came from.
    pub format: LogFormat,
}

impl Report {
    /// True when the invocation started a new execution environment (Init or Restore Duration present).
    pub fn is_cold(&self) -> bool {
        self.init_duration_ms.is_some() || self.restore_duration_ms.is_some()
    }

    /// The platform's start-up time of a cold invocation: Init Duration, or Restore Duration for SnapStart.
    pub fn startup_ms(&self) -> Option<f64> {
        self.init_duration_ms.or(self.restore_duration_ms)
    }

    /// True when the report says the invocation did not succeed (timeout, error).
    pub fn failed(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s != "success")
    }
}

/// The figures of an `INIT_REPORT` line / `platform.initReport` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitReport {
    /// Init Duration.
    pub init_duration_ms: f64,
    /// `init` or `invoke` (an init retried inside the first invocation).
    pub phase: Option<String>,
    /// `success`, `error`, `timeout`.
    pub status: Option<String>,
    /// Error type of a failed init.
    pub error_type: Option<String>,
    /// The format it came from.
    pub format: LogFormat,
}

/// One line of a log that the platform wrote about an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformLine {
    /// `REPORT` / `platform.report`.
    Report(Report),
    /// `INIT_REPORT` / `platform.initReport`.
    InitReport(InitReport),
}

/// A report line that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A report line lacks a field or holds a value that is not a number.
    #[error("malformed {kind} line (line {line}): {problem}: `{text}`")]
    Malformed {
        /// `REPORT`, `INIT_REPORT`, `platform.report`, ...
        kind: &'static str,
        /// 1-based line number in the text that was parsed.
        line: usize,
        /// What is wrong.
        problem: String,
        /// The line (truncated).
        text: String,
    },
    /// The log holds no report line at all.
    #[error("no REPORT line (text format) or platform.report record (JSON format) in {source_name}: {excerpt}")]
    NoReport {
        /// Where the log came from (the invocation tail, a log group).
        source_name: String,
        /// The end of the log, to show what was there instead.
        excerpt: String,
    },
}

const TEXT_LABELS: &[(&str, Field)] = &[
    ("Billed Restore Duration:", Field::BilledRestore),
    ("Max Memory Used:", Field::MaxMemory),
    ("Restore Duration:", Field::Restore),
    ("Billed Duration:", Field::Billed),
    ("Init Duration:", Field::Init),
    ("Memory Size:", Field::MemorySize),
    ("Error Type:", Field::ErrorType),
    ("XRAY TraceId:", Field::Ignored),
    ("SegmentId:", Field::Ignored),
    ("RequestId:", Field::RequestId),
    ("Duration:", Field::Duration),
    ("Sampled:", Field::Ignored),
    ("Status:", Field::Status),
    ("Phase:", Field::Phase),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    RequestId,
    Duration,
    Billed,
    MemorySize,
    MaxMemory,
    Init,
    Restore,
    BilledRestore,
    Status,
    ErrorType,
    Phase,
    Ignored,
}

/// Reads one log line: `Ok(None)` when it is not a platform report (function output, START, END, XRAY).
pub fn parse_line(text: &str, line: usize) -> Result<Option<PlatformLine>, Error> {
    let t = text.trim_start_matches('\u{feff}').trim();
    if let Some(rest) = t.strip_prefix("REPORT ") {
        return text_report(rest, text, line).map(|r| Some(PlatformLine::Report(r)));
    }
    if let Some(rest) = t.strip_prefix("INIT_REPORT ") {
        return text_init_report(rest, text, line).map(|r| Some(PlatformLine::InitReport(r)));
    }
    if t.starts_with('{') && t.contains("platform.") {
        return json_line(t, line);
    }
    Ok(None)
}

/// Every platform line of `text`, in order; malformed report lines are errors in place.
pub fn platform_lines(text: &str) -> Vec<Result<PlatformLine, Error>> {
    text.lines().enumerate().filter_map(|(i, l)| parse_line(l, i + 1).transpose()).collect()
}

/// The last `REPORT` of `text` (a log tail holds the report of its own invocation last).
pub fn last_report(text: &str, source_name: &str) -> Result<Report, Error> {
    let mut last = None;
    for item in platform_lines(text) {
        if let PlatformLine::Report(r) = item? {
            last = Some(r);
        }
    }
    last.ok_or_else(|| Error::NoReport { source_name: source_name.to_string(), excerpt: excerpt(text) })
}

/// The last `INIT_REPORT` of `text`, if any (a failed or timed-out init writes one).
pub fn last_init_report(text: &str) -> Option<InitReport> {
    platform_lines(text).into_iter().rev().find_map(|r| match r {
        Ok(PlatformLine::InitReport(i)) => Some(i),
        _ => None,
    })
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return "(empty log)".into();
    }
    let chars: Vec<char> = t.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(300)..].iter().collect();
    format!("`...{}`", tail.replace('\n', "\\n"))
}

fn shorten(text: &str) -> String {
    let t: String = text.trim().chars().take(200).collect();
    t.replace('\t', "\\t")
}

/// Splits `rest` into (field, value) pairs by label.
fn fields(rest: &str) -> Vec<(Field, String)> {
    let mut marks: Vec<(usize, usize, Field)> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let at_boundary = i == 0 || rest[..i].ends_with(char::is_whitespace);
        if at_boundary {
            if let Some((label, f)) = TEXT_LABELS.iter().find(|(label, _)| rest[i..].starts_with(label)) {
                marks.push((i, i + label.len(), *f));
                i += label.len();
                continue;
            }
        }
        i += rest[i..].chars().next().map_or(1, char::len_utf8);
    }
    let mut out = Vec::new();
    for (n, (_, value_start, f)) in marks.iter().enumerate() {
        let end = marks.get(n + 1).map_or(rest.len(), |m| m.0);
        out.push((*f, rest[*value_start..end].trim().to_string()));
    }
    out
}

fn number(kind: &'static str, value: &str, unit: &str, line: usize, raw: &str) -> Result<f64, Error> {
    let v = value.strip_suffix(unit).map(str::trim_end).unwrap_or(value);
    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| Error::Malformed {
        kind,
        line,
        problem: format!("`{value}` is not a number of {unit}"),
        text: shorten(raw),
    })
}

fn text_report(rest: &str, raw: &str, line: usize) -> Result<Report, Error> {
    const KIND: &str = "REPORT";
    let mut r = Report {
        request_id: None,
        duration_ms: f64::NAN,
        billed_duration_ms: None,
        memory_size_mb: None,
        max_memory_used_mb: None,
        init_duration_ms: None,
        restore_duration_ms: None,
        billed_restore_duration_ms: None,
        status: None,
        error_type: None,
        format: LogFormat::Text,
    };
    let ms = |v: &str| number(KIND, v, "ms", line, raw);
    let mb = |v: &str| number(KIND, v, "MB", line, raw).map(|x| x.round() as u64);
    for (f, v) in fields(rest) {
        match f {
            Field::RequestId => r.request_id = Some(v),
            Field::Duration => r.duration_ms = ms(&v)?,
            Field::Billed => r.billed_duration_ms = Some(ms(&v)?),
            Field::MemorySize => r.memory_size_mb = Some(mb(&v)?),
            Field::MaxMemory => r.max_memory_used_mb = Some(mb(&v)?),
            Field::Init => r.init_duration_ms = Some(ms(&v)?),
            Field::Restore => r.restore_duration_ms = Some(ms(&v)?),
            Field::BilledRestore => r.billed_restore_duration_ms = Some(ms(&v)?),
            Field::Status => r.status = Some(v),
            Field::ErrorType => r.error_type = Some(v),
            Field::Phase | Field::Ignored => {}
        }
    }
    if r.duration_ms.is_nan() {
        return Err(Error::Malformed { kind: KIND, line, problem: "no `Duration:` field".into(), text: shorten(raw) });
    }
    Ok(r)
}

fn text_init_report(rest: &str, raw: &str, line: usize) -> Result<InitReport, Error> {
    const KIND: &str = "INIT_REPORT";
    let mut r =
        InitReport { init_duration_ms: f64::NAN, phase: None, status: None, error_type: None, format: LogFormat::Text };
    for (f, v) in fields(rest) {
        match f {
            Field::Init => r.init_duration_ms = number(KIND, &v, "ms", line, raw)?,
            Field::Phase => r.phase = Some(v),
            Field::Status => r.status = Some(v),
            Field::ErrorType => r.error_type = Some(v),
            _ => {}
        }
    }
    if r.init_duration_ms.is_nan() {
        return Err(Error::Malformed {
            kind: KIND,
            line,
            problem: "no `Init Duration:` field".into(),
            text: shorten(raw),
        });
    }
    Ok(r)
}

fn json_line(t: &str, line: usize) -> Result<Option<PlatformLine>, Error> {
    let Ok(v) = serde_json::from_str::<Value>(t) else {
        // A function's own JSON log that merely mentions "platform." is not ours to judge; a platform record
        // that is not valid JSON is: tell which.
        if t.contains("\"platform.report\"") || t.contains("\"platform.initReport\"") {
            return Err(Error::Malformed {
                kind: "platform.report",
                line,
                problem: "not valid JSON".into(),
                text: shorten(t),
            });
        }
        return Ok(None);
    };
    let kind = match v.get("type").and_then(Value::as_str) {
        Some("platform.report") => "platform.report",
        Some("platform.initReport") => "platform.initReport",
        _ => return Ok(None),
    };
    let record = &v["record"];
    let metrics = &record["metrics"];
    let bad = |problem: String| Error::Malformed { kind, line, problem, text: shorten(t) };
    let opt = |key: &str| -> Result<Option<f64>, Error> {
        match metrics.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(Some)
                .ok_or_else(|| bad(format!("`metrics.{key}` is not a number: {x}"))),
        }
    };
    let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_string);
    let duration = opt("durationMs")?.ok_or_else(|| bad("no `record.metrics.durationMs`".into()))?;
    if kind == "platform.initReport" {
        return Ok(Some(PlatformLine::InitReport(InitReport {
            init_duration_ms: duration,
            phase: text("phase"),
            status: text("status"),
            error_type: text("errorType"),
            format: LogFormat::Json,
        })));
    }
    Ok(Some(PlatformLine::Report(Report {
        request_id: text("requestId"),
        duration_ms: duration,
        billed_duration_ms: opt("billedDurationMs")?,
        memory_size_mb: opt("memorySizeMB")?.map(|x| x.round() as u64),
        max_memory_used_mb: opt("maxMemoryUsedMB")?.map(|x| x.round() as u64),
        init_duration_ms: opt("initDurationMs")?,
        restore_duration_ms: opt("restoreDurationMs")?,
        billed_restore_duration_ms: opt("billedRestoreDurationMs")?,
        status: text("status"),
        error_type: text("errorType"),
        format: LogFormat::Json,
    })))
}

#[cfg(test)]
mod tests {
    //! On real log lines recorded from AWS Lambda, committed under `fixtures/aws/logs/` (provenance in its
    //! README).

    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    fn fixture(name: &str) -> String {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/aws/logs").join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn report(name: &str) -> Report {
        last_report(&fixture(name), name).unwrap()
    }

    #[test]
    fn text_cold_start_has_init_duration_and_every_figure() {
        let r = report("text-cold.log");
        assert_eq!(r.request_id.as_deref(), Some("5f8149a4-e2fd-4b6b-af42-bcfc44f0d80f"));
        assert_eq!(r.duration_ms, 288.52);
        assert_eq!(r.billed_duration_ms, Some(289.0));
        assert_eq!((r.memory_size_mb, r.max_memory_used_mb), (Some(128), Some(77)));
        assert_eq!(r.init_duration_ms, Some(458.75));
        assert!(r.is_cold() && !r.failed());
        assert_eq!(r.format, LogFormat::Text);
    }

    #[test]
    fn xray_line_after_the_report_is_ignored() {
        let r = report("text-cold-xray.log");
        assert_eq!((r.duration_ms, r.init_duration_ms), (3906.38, Some(5960.19)));
        assert_eq!(r.max_memory_used_mb, Some(367));
    }

    #[test]
    fn space_separated_copy_parses_like_tabs() {
        let r = report("text-warm-spaces.log");
        assert_eq!((r.duration_ms, r.billed_duration_ms), (24792.85, Some(24800.0)));
        assert_eq!((r.memory_size_mb, r.max_memory_used_mb), (Some(128), Some(129)));
        assert!(!r.is_cold());
        assert_eq!(r.startup_ms(), None);
    }

    #[test]
    fn timeout_and_out_of_memory_statuses_are_kept() {
        let all: Vec<_> = platform_lines(&fixture("text-timeout.log")).into_iter().map(Result::unwrap).collect();
        assert_eq!(all.len(), 2);
        let PlatformLine::Report(first) = &all[0] else { panic!("{all:?}") };
        assert_eq!((first.duration_ms, first.status.as_deref()), (3000.0, Some("timeout")));
        assert!(first.failed());
        let oom = report("text-oom.log");
        assert_eq!((oom.status.as_deref(), oom.error_type.as_deref()), (Some("error"), Some("Runtime.OutOfMemory")));
        assert_eq!(oom.max_memory_used_mb, oom.memory_size_mb);
    }

    #[test]
    fn snapstart_restore_duration_is_not_confused_with_billed_restore() {
        let r = report("text-snapstart.log");
        assert_eq!(r.restore_duration_ms, Some(789.64));
        assert_eq!(r.billed_restore_duration_ms, Some(163.0));
        assert_eq!((r.duration_ms, r.billed_duration_ms), (149.53, Some(313.0)));
        assert_eq!(r.init_duration_ms, None);
        assert!(r.is_cold());
        assert_eq!(r.startup_ms(), Some(789.64));
        let inline = report("text-snapstart-xray-inline.log");
        assert_eq!((inline.restore_duration_ms, inline.billed_restore_duration_ms), (Some(325.93), Some(26.0)));
        assert_eq!(inline.max_memory_used_mb, Some(212));
    }

    #[test]
    fn failed_init_has_an_init_report_and_no_report() {
        let text = fixture("text-init-error.log");
        let init = last_init_report(&text).unwrap();
        assert_eq!(init.init_duration_ms, 99.65);
        assert_eq!((init.phase.as_deref(), init.status.as_deref()), (Some("invoke"), Some("error")));
        assert_eq!(init.error_type.as_deref(), Some("Runtime.ExitError"));
        let err = last_report(&text, "the invocation's log tail").unwrap_err();
        assert!(matches!(&err, Error::NoReport { excerpt, .. } if excerpt.contains("Runtime.ExitError")), "{err}");
        assert!(err.to_string().contains("no REPORT line"), "{err}");
    }

    #[test]
    fn json_format_cold_warm_and_snapstart() {
        let cold = report("json-cold.log");
        assert_eq!(cold.format, LogFormat::Json);
        assert_eq!(cold.request_id.as_deref(), Some("79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36"));
        assert_eq!((cold.duration_ms, cold.init_duration_ms), (1233.96, Some(463.512)));
        assert_eq!((cold.memory_size_mb, cold.max_memory_used_mb), (Some(256), Some(123)));
        assert_eq!(cold.status.as_deref(), Some("success"));
        assert!(cold.is_cold() && !cold.failed());
        let warm = report("json-warm.log");
        assert!(!warm.is_cold());
        assert_eq!(warm.duration_ms, 1072.145);
        let snap = report("json-snapstart.log");
        assert_eq!((snap.restore_duration_ms, snap.billed_restore_duration_ms), (Some(500.795), Some(53.0)));
        assert_eq!(snap.startup_ms(), Some(500.795));
        let telemetry = report("json-telemetry-report.log");
        assert_eq!(telemetry.init_duration_ms, Some(549.04));
    }

    #[test]
    fn a_tail_that_starts_mid_line_still_finds_its_report() {
        let text = fixture("text-cold.log");
        let cut = &text[17..];
        assert_eq!(last_report(cut, "tail").unwrap().init_duration_ms, Some(458.75));
    }

    #[test]
    fn malformed_report_lines_are_errors_naming_the_line() {
        let e = last_report("START x\nREPORT RequestId: a\tDuration: fast ms\t", "tail").unwrap_err();
        assert!(matches!(e, Error::Malformed { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("`fast ms` is not a number of ms"), "{e}");
        let e = last_report("REPORT RequestId: a\tMemory Size: 128 MB", "tail").unwrap_err();
        assert!(e.to_string().contains("no `Duration:` field"), "{e}");
        let e =
            last_report(r#"{"type":"platform.report","record":{"metrics":{"durationMs":"x"}}}"#, "tail").unwrap_err();
        assert!(e.to_string().contains("durationMs"), "{e}");
        let e = last_report(r#"{"type":"platform.report","record":{"metrics":{}}}"#, "tail").unwrap_err();
        assert!(e.to_string().contains("no `record.metrics.durationMs`"), "{e}");
    }

    #[test]
    fn function_output_is_not_a_report() {
        assert_eq!(parse_line("2024-01-01T00:00:00Z\tabc\tINFO\tREPORT RequestId: mentioned in output", 1), Ok(None));
        assert_eq!(parse_line(r#"{"level":"INFO","message":"platform.report is a word here"}"#, 1), Ok(None));
        assert_eq!(parse_line("END RequestId: x", 1), Ok(None));
        let e = last_report("", "the invocation's log tail").unwrap_err();
        assert!(e.to_string().contains("(empty log)"), "{e}");
    }

    proptest! {
        #[test]
        fn text_lines_round_trip(d in 0.0f64..1e6, b in 0u64..1_000_000, m in 128u64..10_240, used in 1u64..10_240,
                                 init in proptest::option::of(0.0f64..1e5), tabs in any::<bool>()) {
            let sep = if tabs { "\t" } else { " " };
            let mut line = format!("REPORT RequestId: 0e5c8424{sep}Duration: {d:.2} ms{sep}Billed Duration: {b} ms{sep}\
                                    Memory Size: {m} MB{sep}Max Memory Used: {used} MB{sep}");
            if let Some(i) = init {
                line += &format!("Init Duration: {i:.2} ms{sep}");
            }
            let r = last_report(&line, "generated").unwrap();
            prop_assert!((r.duration_ms - (d * 100.0).round() / 100.0).abs() < 1e-6);
            prop_assert_eq!(r.billed_duration_ms, Some(b as f64));
            prop_assert_eq!((r.memory_size_mb, r.max_memory_used_mb), (Some(m), Some(used)));
            prop_assert_eq!(r.init_duration_ms.is_some(), init.is_some());
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = platform_lines(&s);
        }
    }
}
