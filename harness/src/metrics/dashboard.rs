//! Grafana dashboards as the suite checks them: [`Dashboard::load`] reads a dashboard JSON and lists every
//! panel query ([`PanelQuery`]), [`PanelQuery::promql`] substitutes Grafana's variables so Prometheus can
//! run the query, and [`metric_names`] lists the metrics a PromQL expression reads (to check that a
//! dashboard references only metrics that exist).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Error;

/// One query of one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelQuery {
    /// Panel title.
    pub panel: String,
    /// Query id within the panel (`A`, `B` ...).
    pub ref_id: String,
    /// The expression as written in the dashboard.
    pub expr: String,
}

/// A dashboard file.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// File it was read from.
    pub path: PathBuf,
    /// Title.
    pub title: String,
    /// Panel titles (rows excluded).
    pub panels: Vec<String>,
    /// Every query of every panel.
    pub queries: Vec<PanelQuery>,
}

impl Dashboard {
    /// Reads a Grafana dashboard JSON file (panels nested in collapsed rows included).
    pub fn load(path: &Path) -> Result<Dashboard, Error> {
        let bad = |detail: String| Error::Exposition { source_name: path.display().to_string(), line: 0, detail };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::Exposition {
            source_name: path.display().to_string(),
            line: e.line(),
            detail: e.to_string(),
        })?;
        let title = v["title"].as_str().ok_or_else(|| bad("no dashboard title".into()))?.to_string();
        let mut panels = Vec::new();
        let mut queries = Vec::new();
        let mut stack: Vec<&Value> = v["panels"].as_array().ok_or_else(|| bad("no panels".into()))?.iter().collect();
        stack.reverse();
        while let Some(p) = stack.pop() {
            if p["type"] == "row" {
                for inner in p["panels"].as_array().into_iter().flatten().rev() {
                    stack.push(inner);
                }
                continue;
            }
            let name = p["title"].as_str().unwrap_or("(untitled)").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                    queries.push(PanelQuery {
                        panel: name.clone(),
                        ref_id: t["refId"].as_str().unwrap_or("").into(),
                        expr: expr.into(),
                    });
                }
            }
            panels.push(name);
        }
        Ok(Dashboard { path: path.to_path_buf(), title, panels, queries })
    }
}

impl PanelQuery {
    /// The expression with Grafana's variables replaced: rate intervals by `rate_interval`, `$__range` by
    /// `range`, and any template variable by `.+` (the dashboard uses them in `=~` matchers).
    pub fn promql(&self, rate_interval: &str, range: &str) -> String {
        let mut out = self.expr.replace("$__rate_interval", rate_interval).replace("${__rate_interval}", rate_interval);
        out = out.replace("$__interval", rate_interval).replace("${__interval}", rate_interval);
        out = out.replace("$__range", range).replace("${__range}", range);
        let mut res = String::with_capacity(out.len());
        let mut chars = out.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                res.push(c);
                continue;
            }
            if chars.peek() == Some(&'{') {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
            } else {
                while chars.peek().is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_') {
                    chars.next();
                }
            }
            res.push_str(".+");
        }
        res
    }
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "inf",
    "nan",
];

/// Metric names a PromQL expression reads (functions, keywords, labels, strings and durations left out).
pub fn metric_names(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut depth_braces = 0;
    let mut after_grouping = false;
    while i < b.len() {
        let c = b[i] as char;
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < b.len() && b[i] as char != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => {
                depth_braces += 1;
                i += 1;
            }
            '}' => {
                depth_braces -= 1;
                i += 1;
            }
            '[' => {
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
            }
            '(' if after_grouping => {
                while i < b.len() && b[i] != b')' {
                    i += 1;
                }
                after_grouping = false;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &expr[start..i];
                let mut j = i;
                while j < b.len() && (b[j] as char).is_whitespace() {
                    j += 1;
                }
                let is_call = j < b.len() && b[j] == b'(';
                let number = start > 0 && ((b[start - 1] as char).is_ascii_digit() || b[start - 1] == b'.');
                after_grouping = matches!(word, "by" | "without" | "on" | "ignoring" | "group_left" | "group_right");
                if depth_braces == 0
                    && !is_call
                    && !number
                    && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                    && !out.iter().any(|o| o == word)
                {
                    out.push(word.to_string());
                }
            }
            _ => {
                if !c.is_whitespace() {
                    after_grouping = false;
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_keywords_labels_and_durations() {
        let e = r#"histogram_quantile(0.95, sum by (function, le) (rate(function_cold_start_duration_seconds_bucket{function=~"a|b", le!="x"}[5m])))"#;
        assert_eq!(metric_names(e), vec!["function_cold_start_duration_seconds_bucket"]);
        let e = "perf:p95_seconds > on (metric, function) group_left () (1.1 * max by (metric, function) (perf_baseline_p95_seconds)) offset 1m";
        assert_eq!(metric_names(e), vec!["perf:p95_seconds", "perf_baseline_p95_seconds"]);
        assert_eq!(
            metric_names(
                "sum(build_cache_hits_total) / sum without (job) (build_cache_requests_total) or vector(0) > 1e3"
            ),
            vec!["build_cache_hits_total", "build_cache_requests_total"]
        );
        assert_eq!(metric_names(r#"label_replace(up, "x", "$1", "job", "(.*)")"#), vec!["up"]);
    }

    #[test]
    fn grafana_variables_are_substituted() {
        let q = PanelQuery {
            panel: "p".into(),
            ref_id: "A".into(),
            expr: r#"sum(rate(x{function=~"$function", stage=~"${stage}"}[$__rate_interval])) / $__range_s"#.into(),
        };
        assert_eq!(q.promql("1m", "10m"), r#"sum(rate(x{function=~".+", stage=~".+"}[1m])) / 10m_s"#);
    }

    #[test]
    fn loads_panels_from_rows_and_reports_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.json");
        std::fs::write(
            &p,
            r#"{"title":"T","panels":[{"type":"timeseries","title":"a","targets":[{"refId":"A","expr":"up"}]},
               {"type":"row","title":"r","panels":[{"type":"stat","title":"b","targets":[{"refId":"A","expr":"x"},{"refId":"B","expr":""}]}]}]}"#,
        )
        .unwrap();
        let dash = Dashboard::load(&p).unwrap();
        assert_eq!(dash.panels, vec!["a", "b"]);
        assert_eq!(dash.queries.iter().map(|q| q.expr.as_str()).collect::<Vec<_>>(), vec!["up", "x"]);
        std::fs::write(&p, "{\n  \"title\": 1,\n  oops").unwrap();
        let e = Dashboard::load(&p).unwrap_err().to_string();
        assert!(e.contains("d.json:3"), "{e}");
    }
}
