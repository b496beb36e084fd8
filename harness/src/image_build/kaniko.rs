//! [`parse_kaniko`]: a Kaniko executor's log (the build Job's `kaniko` container on the knative target)
//! read into a [`KanikoBuild`]: cache lookups and their outcome, snapshots, pushes, duration and error.
//!
//! Kaniko logs through logrus in one of three shapes, all accepted: the default colored text
//! (`\x1b[36mINFO\x1b[0m[0012] msg`, seconds since start in brackets), the same without colors or with a
//! full timestamp (`INFO[2026-01-08T10:00:01Z] msg`, `--log-timestamp`), and JSON (`--log-format=json`).
//! Lines without a level (the output of `RUN` commands, the final `error building image: ...`) are
//! command output, or the build's error. The cache figures follow Kaniko's own meaning: every
//! `Checking for cached layer` is a request; `Using caching version of cmd` a hit; `No cached layer found
//! for cmd` a miss (after which Kaniko stops looking up the rest of the stage). A registry's rate limit
//! (`429 Too Many Requests`, `TOOMANYREQUESTS`) is counted on any line, levelled or not.

use chrono::DateTime;

/// The outcome of one cache lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheLookup {
    /// The layer came from the cache repo.
    Hit,
    /// No layer in the cache repo; the command ran.
    Miss,
}

/// A command Kaniko looked up in its layer cache.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KanikoCommand {
    /// Index of the stage (0-based, in build order).
    pub stage: usize,
    /// The command as Kaniko prints it (`RUN pip install ...`).
    pub command: String,
    /// Hit or miss.
    pub lookup: CacheLookup,
}

/// What one Kaniko build log says.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct KanikoBuild {
    /// Base image of each stage, in build order.
    pub stages: Vec<String>,
    /// Cache lookups with their outcome.
    pub commands: Vec<KanikoCommand>,
    /// `Checking for cached layer` lines.
    pub cache_requests: u32,
    /// Snapshots taken (`Taking snapshot of ...`).
    pub snapshots: u32,
    /// Layers pushed to the cache repo (`Pushing layer ... to cache now`).
    pub cache_pushes: u32,
    /// References pushed (`Pushed <ref>@sha256:...`), cache repo and destination alike.
    pub pushed: Vec<String>,
    /// Seconds from the first to the last levelled line (whole seconds with the default format).
    pub seconds: Option<f64>,
    /// Lines reporting a registry rate limit (HTTP 429, `TOOMANYREQUESTS`).
    pub rate_limited: u32,
    /// The error that ended the build, if any.
    pub error: Option<String>,
}

impl KanikoBuild {
    /// Lookups served from the cache.
    pub fn cache_hits(&self) -> u32 {
        self.commands.iter().filter(|c| c.lookup == CacheLookup::Hit).count() as u32
    }

    /// Lookups that found nothing.
    pub fn cache_misses(&self) -> u32 {
        self.commands.iter().filter(|c| c.lookup == CacheLookup::Miss).count() as u32
    }

    /// Hits / requests in %, `None` when nothing was looked up (a rate of nothing is no evidence).
    pub fn hit_rate(&self) -> Option<f64> {
        (self.cache_requests > 0).then(|| 100.0 * f64::from(self.cache_hits()) / f64::from(self.cache_requests))
    }

    /// Whether the build pushed its image (any push outside the cache repo counts when `cache_repo` is set).
    pub fn pushed_image(&self, cache_repo: Option<&str>) -> bool {
        self.pushed.iter().any(|r| cache_repo.is_none_or(|c| !r.starts_with(c)))
    }
}

/// One levelled log line.
struct Entry {
    level: String,
    msg: String,
    at: Option<f64>,
}

/// Parses a Kaniko log.
pub fn parse_kaniko(text: &str) -> KanikoBuild {
    let mut b = KanikoBuild::default();
    let (mut first, mut last): (Option<f64>, Option<f64>) = (None, None);
    let mut elapsed_form = false;
    for raw in text.lines() {
        let line = strip_ansi(raw);
        let line = line.trim();
        if line.contains("429 Too Many Requests") || line.contains("TOOMANYREQUESTS") {
            b.rate_limited += 1;
        }
        let Some(e) = entry(line, &mut elapsed_form) else {
            if line.starts_with("error building image") || line.starts_with("Error: ") {
                b.error = Some(line.to_string());
            }
            continue;
        };
        if let Some(t) = e.at {
            first.get_or_insert(t);
            last = Some(t);
        }
        if matches!(e.level.as_str(), "error" | "fatal" | "erro" | "fata" | "panic") && b.error.is_none() {
            b.error = Some(e.msg.clone());
        }
        apply(&mut b, &e.msg);
    }
    b.seconds = match (first, last) {
        (Some(_), Some(l)) if elapsed_form => Some(l),
        (Some(f), Some(l)) => Some(l - f),
        _ => None,
    };
    b
}

fn apply(b: &mut KanikoBuild, msg: &str) {
    let stage = b.stages.len().saturating_sub(1);
    if let Some(rest) = msg.strip_prefix("Building stage '") {
        b.stages.push(rest.split('\'').next().unwrap_or_default().to_string());
    } else if msg.starts_with("Checking for cached layer ") {
        b.cache_requests += 1;
    } else if let Some(cmd) = msg.strip_prefix("Using caching version of cmd: ") {
        b.commands.push(KanikoCommand { stage, command: cmd.to_string(), lookup: CacheLookup::Hit });
    } else if let Some(cmd) = msg.strip_prefix("No cached layer found for cmd ") {
        b.commands.push(KanikoCommand { stage, command: cmd.to_string(), lookup: CacheLookup::Miss });
    } else if msg.starts_with("Taking snapshot of ") {
        b.snapshots += 1;
    } else if msg.starts_with("Pushing layer ") && msg.ends_with(" to cache now") {
        b.cache_pushes += 1;
    } else if let Some(r) = msg.strip_prefix("Pushed ") {
        b.pushed.push(r.split_whitespace().next().unwrap_or_default().to_string());
    }
}

/// A levelled line in any of Kaniko's formats; `elapsed` is set when the bracket holds seconds.
fn entry(line: &str, elapsed: &mut bool) -> Option<Entry> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let msg = v.get("msg")?.as_str()?.trim().to_string();
        let level = v.get("level").and_then(|l| l.as_str()).unwrap_or("info").to_ascii_lowercase();
        let at = v.get("time").and_then(|t| t.as_str()).and_then(timestamp);
        return Some(Entry { level, msg, at });
    }
    if let Some(rest) = line.strip_prefix("time=\"") {
        let (t, rest) = rest.split_once('"')?;
        let level = rest.trim().strip_prefix("level=")?.split_whitespace().next()?.to_string();
        let msg = rest.split_once("msg=")?.1.trim().trim_matches('"').replace("\\\"", "\"");
        return Some(Entry { level, msg, at: timestamp(t) });
    }
    for level in ["INFO", "WARN", "ERRO", "FATA", "DEBU", "TRAC", "PANI"] {
        let Some(pos) = line.find(&format!("{level}[")) else { continue };
        let rest = &line[pos + level.len() + 1..];
        let (inside, msg) = rest.split_once(']')?;
        let at = if inside.bytes().all(|c| c.is_ascii_digit()) && !inside.is_empty() {
            *elapsed = true;
            inside.parse().ok()
        } else {
            timestamp(inside)
        };
        return Some(Entry { level: level.to_ascii_lowercase(), msg: msg.trim().to_string(), at });
    }
    None
}

fn timestamp(s: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp_millis() as f64 / 1000.0)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A recorded log under `fixtures/`.
    fn fixture(dir: &str, name: &str) -> KanikoBuild {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(dir).join(name);
        parse_kaniko(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
    }

    fn recorded(name: &str) -> KanikoBuild {
        fixture("builds/kaniko", name)
    }

    /// A log of the knative-lambda-operator's build Job.
    fn knative(name: &str) -> KanikoBuild {
        fixture("knative", name)
    }

    #[test]
    fn first_build_against_an_empty_cache_misses_and_fills_it() {
        let b = recorded("cold-cache.log");
        assert_eq!(b.stages.len(), 2);
        assert!(b.stages[1].ends_with("python:3.11-slim"));
        assert_eq!((b.cache_requests, b.cache_hits(), b.cache_misses()), (1, 0, 1));
        assert_eq!(b.hit_rate(), Some(0.0));
        assert_eq!(b.cache_pushes, 1);
        assert!(b.commands[0].command.starts_with("RUN python3 -m venv"));
        assert!(b.pushed_image(Some("registry.local:5000/kaniko-cache")));
        assert_eq!(b.pushed.len(), 2, "the cache layer and the image");
        assert_eq!(b.seconds, Some(31.0));
        assert!(b.snapshots >= 5);
        assert!(b.error.is_none());
    }

    #[test]
    fn rebuild_after_a_source_change_uses_the_cached_dependency_layer() {
        let b = recorded("source-change.log");
        assert_eq!((b.cache_requests, b.cache_hits(), b.cache_misses()), (1, 1, 0));
        assert_eq!(b.hit_rate(), Some(100.0));
        assert_eq!(b.cache_pushes, 0);
        assert_eq!(b.commands[0].stage, 0);
    }

    #[test]
    fn failed_build_keeps_the_error_and_the_lookups_before_it() {
        let b = recorded("failed.log");
        assert_eq!((b.cache_requests, b.cache_hits(), b.cache_misses()), (2, 1, 1));
        assert_eq!(b.hit_rate(), Some(50.0));
        assert!(b.error.as_deref().unwrap().contains("exit status 1"), "{:?}", b.error);
        assert!(!b.pushed_image(None));
    }

    #[test]
    fn json_format_is_read_with_timestamps() {
        let b = recorded("json.log");
        assert_eq!((b.cache_requests, b.cache_hits()), (1, 1));
        assert_eq!(b.seconds, Some(14.0));
        assert_eq!(b.pushed.len(), 1);
    }

    #[test]
    fn logfmt_and_full_timestamp_lines_are_read() {
        let text = "time=\"2026-01-08T10:00:00Z\" level=info msg=\"Checking for cached layer r/c:1...\"\n\
                    INFO[2026-01-08T10:00:04Z] No cached layer found for cmd RUN make\n\
                    ERRO[2026-01-08T10:00:05Z] error building image: boom\n";
        let b = parse_kaniko(text);
        assert_eq!((b.cache_requests, b.cache_misses()), (1, 1));
        assert_eq!(b.seconds, Some(5.0));
        assert_eq!(b.error.as_deref(), Some("error building image: boom"));
    }

    #[test]
    fn an_operator_build_log_gives_each_layer_its_lookup_the_push_and_the_time() {
        let b = knative("kaniko-build.log");
        let looked_up: Vec<(&str, CacheLookup)> = b.commands.iter().map(|c| (c.command.as_str(), c.lookup)).collect();
        assert_eq!(
            looked_up,
            [
                ("RUN pip install --no-cache-dir -r requirements.txt", CacheLookup::Hit),
                ("RUN python -m compileall -q /var/task/deps", CacheLookup::Hit),
                ("RUN python -m compileall -q /var/task/app", CacheLookup::Miss),
            ]
        );
        assert_eq!((b.cache_requests, b.cache_pushes, b.rate_limited), (3, 1, 0));
        assert!(b.pushed_image(Some("localhost:5001/kaniko-cache")));
        assert_eq!(
            b.pushed[1],
            "localhost:5001/default/parser@sha256:e8c2a6f0b4d8e2c6a0f4b8d2e6c0a4f8b2d6e0c4a8f2b6d0e4c8a2f6b0d4e8c2"
        );
        assert_eq!(b.seconds, Some(41.0));
        assert_eq!(b.stages, ["localhost:5001/python:3.11-slim"]);
    }

    #[test]
    fn a_rate_limited_pull_is_counted_and_ends_the_build() {
        let b = knative("kaniko-rate-limited.log");
        assert_eq!((b.rate_limited, b.cache_requests, b.hit_rate()), (1, 0, None));
        assert!(b.error.as_deref().unwrap().contains("TOOMANYREQUESTS"), "{:?}", b.error);
        assert!(!b.pushed_image(None));
        let logfmt = "time=\"2026-01-08T10:00:00Z\" level=error msg=\"GET https://r/v2/x: 429 Too Many Requests\"\n";
        assert_eq!(parse_kaniko(logfmt).rate_limited, 1);
    }

    #[test]
    fn a_log_without_lookups_has_no_hit_rate() {
        assert_eq!(parse_kaniko("INFO[0000] Retrieving image manifest x\n").hit_rate(), None);
        assert_eq!(parse_kaniko("").seconds, None);
    }

    proptest! {
        #[test]
        fn never_panics_and_counts_every_lookup_line(lines in proptest::collection::vec(
            prop_oneof![
                Just("INFO[0001] Checking for cached layer r/c:1...".to_string()),
                Just("INFO[0002] Using caching version of cmd: RUN a".to_string()),
                Just("INFO[0002] No cached layer found for cmd RUN b".to_string()),
                ".{0,40}",
            ], 0..30)) {
            let b = parse_kaniko(&lines.join("\n"));
            let lookups = lines.iter().filter(|l| l.contains("Checking for cached layer")).count() as u32;
            prop_assert_eq!(b.cache_requests, lookups);
            let hits = lines.iter().filter(|l| l.contains("Using caching version of cmd")).count() as u32;
            let misses = lines.iter().filter(|l| l.contains("No cached layer found for cmd")).count() as u32;
            prop_assert_eq!((b.cache_hits(), b.cache_misses()), (hits, misses));
            prop_assert_eq!(b.hit_rate().is_some(), lookups > 0);
        }
    }
}
