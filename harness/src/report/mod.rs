//! [`Report`]: the evidence of one run, in profile order, written as `report.json`, `report.md`,
//! `report.html` (with charts, see [`charts`]) and `junit.xml`, and printed as a table.

pub mod charts;
mod html;
mod junit;
mod markdown;
mod plot;
mod table;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::{
    html::{html, html_with_trends, NO_CHART_DATA},
    junit::{annotate_junit, junit_xml},
    markdown::markdown,
    table::table,
};
use crate::{
    criteria::{Decision, Profile},
    evidence::{Evidence, Status},
    fingerprint::Fingerprint,
    run_dir::{self, RunDir},
};

/// Everything `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Profile name.
    pub profile: String,
    /// Profile title (the ticket).
    pub title: String,
    /// Target name.
    pub target: String,
    /// Run id.
    pub run_id: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// Where it ran.
    pub environment: Fingerprint,
    /// One record per check of the profile, in profile order.
    pub checks: Vec<Evidence>,
    /// The `procedure.metric` each measured check reads, by check id: tells the HTML report which chart
    /// data belongs to which check.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measures: BTreeMap<String, String>,
    /// Wall times of the provisioning phases, when the run applied its own stack (`--provision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<crate::terraform::provision::Phases>,
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed checks.
    pub passed: usize,
    /// Failed checks.
    pub failed: usize,
    /// Skipped checks.
    pub skipped: usize,
    /// Checks that could not be measured.
    pub error: usize,
}

impl Report {
    /// Assembles the report of a run directory; a check of the profile without evidence is reported as an
    /// error ("not run"), never left out.
    pub fn from_run(dir: &RunDir, profile: &Profile) -> Result<Report, run_dir::Error> {
        let info = dir.info()?;
        let mut found = dir.evidence()?;
        let checks = profile
            .checks
            .iter()
            .map(|c| match found.iter().position(|e| e.id == c.id) {
                Some(i) => found.swap_remove(i),
                None => Evidence::error(c, &info.target, "not run: no evidence for this check in the run directory"),
            })
            .collect();
        Ok(Report {
            profile: info.profile,
            title: profile.title.clone(),
            target: info.target,
            run_id: info.id,
            started: info.started,
            environment: info.environment,
            checks,
            measures: profile
                .checks
                .iter()
                .filter_map(|c| match &c.decision {
                    Decision::Measured { measure, .. } => Some((c.id.clone(), measure.clone())),
                    Decision::Manual { .. } => None,
                })
                .collect(),
            provisioning: crate::terraform::provision::phases(dir.path()),
        })
    }

    /// Counts by status.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for e in &self.checks {
            match e.status {
                Status::Passed => c.passed += 1,
                Status::Failed => c.failed += 1,
                Status::Skipped => c.skipped += 1,
                Status::Error => c.error += 1,
            }
        }
        c
    }

    /// The checks left undecided: an error (a check without evidence is one), or a check that measures a
    /// figure and has none (a failure for too little evidence). Skipped checks are decided (with a reason).
    pub fn undecided(&self) -> Vec<&Evidence> {
        self.checks
            .iter()
            .filter(|e| match e.status {
                Status::Error => true,
                Status::Skipped => false,
                Status::Passed | Status::Failed => self.measures.contains_key(&e.id) && e.measured.is_none(),
            })
            .collect()
    }

    /// Writes `report.json`, `report.md`, `report.html` and `junit.xml` into `out`; returns their paths.
    /// `out` is the run directory: the HTML report draws its charts from the raw data there.
    pub fn write(&self, out: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(out)?;
        let files = [
            ("report.json", serde_json::to_string_pretty(self).expect("report serializes") + "\n"),
            ("report.md", markdown(self)),
            ("report.html", html(self, out)),
            ("junit.xml", junit_xml(self)),
        ];
        let mut paths = Vec::new();
        for (name, text) in files {
            let p = out.join(name);
            std::fs::write(&p, text)?;
            paths.push(p);
        }
        Ok(paths)
    }
}

/// A figure with its unit, for tables (`0.82s`, `412MB`, `true`).
pub(crate) fn figure(v: f64, unit: &str) -> String {
    if unit == "bool" {
        return (v != 0.0).to_string();
    }
    let n = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        crate::criteria::fmt_num((v * 1000.0).round() / 1000.0)
    };
    let space = if unit.contains('/') { " " } else { "" };
    format!("{n}{space}{unit}")
}

fn figure_exact(v: f64, unit: &str) -> String {
    let space = if unit.contains('/') { " " } else { "" };
    format!("{}{space}{unit}", crate::criteria::fmt_num(v))
}

/// `measured` column text: `p95 0.82s [0.7..0.9]`.
pub fn measured_text(e: &Evidence) -> String {
    let Some(m) = &e.measured else { return "-".into() };
    let stat = e.statistic.as_deref().map(|s| format!("{s} ")).unwrap_or_default();
    let ci = match (m.ci_low, m.ci_high) {
        (Some(l), Some(h)) => format!(" [{}..{}]", figure(l, &m.unit), figure(h, &m.unit)),
        (Some(l), None) => format!(" [{}..]", figure(l, &m.unit)),
        (None, Some(h)) => format!(" [..{}]", figure(h, &m.unit)),
        (None, None) => String::new(),
    };
    format!("{stat}{}{ci}", figure(m.value, &m.unit))
}

/// `threshold` column text: `p95 < 1s`.
pub fn threshold_text(e: &Evidence) -> String {
    let Some(t) = &e.threshold else { return "-".into() };
    let stat = e.statistic.as_deref().map(|s| format!("{s} ")).unwrap_or_default();
    let v = if t.unit == "bool" { (t.value != 0.0).to_string() } else { figure_exact(t.value, &t.unit) };
    format!("{stat}{} {v}", t.op)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::evidence::{Measured, Threshold};

    /// A report with one check of each status, fixed in time and place, for snapshot tests.
    pub(crate) fn sample() -> Report {
        let ev = |id: &str, ac: &str, title: &str, status: Status, reason: &str| Evidence {
            id: id.into(),
            ac: ac.into(),
            title: title.into(),
            target: "local".into(),
            status,
            reason: reason.into(),
            statistic: None,
            measured: None,
            threshold: None,
            raw: vec![],
            notes: vec![],
            measured_at: None,
        };
        let mut cold = ev(
            "AC2.cold_start_p95",
            "AC2",
            "Cold start time < 1 second (P95)",
            Status::Passed,
            "p95 412ms (95% CI 380ms..455ms) meets < 1s",
        );
        cold.statistic = Some("p95".into());
        cold.measured =
            Some(Measured { value: 0.412, unit: "s".into(), n: 60, ci_low: Some(0.38), ci_high: Some(0.455) });
        cold.threshold = Some(Threshold { op: "<".into(), value: 1.0, unit: "s".into() });
        cold.raw = vec!["raw/cold_start/samples.csv".into()];
        let mut size = ev(
            "AC2.image_size",
            "AC2",
            "Container image size optimized (< 500MB)",
            Status::Failed,
            "612MB does not meet < 500MB",
        );
        size.measured = Some(Measured { value: 612.0, unit: "MB".into(), n: 1, ci_low: None, ci_high: None });
        size.threshold = Some(Threshold { op: "<".into(), value: 500.0, unit: "MB".into() });
        let mut warm = ev(
            "AC2.warm_start_p95",
            "AC2",
            "Warm start time < 100ms (P95)",
            Status::Error,
            "invoke endpoint http://127.0.0.1:9/ unreachable: connection refused",
        );
        warm.statistic = Some("p95".into());
        warm.threshold = Some(Threshold { op: "<".into(), value: 100.0, unit: "ms".into() });
        let review = ev(
            "SEC.security_review",
            "SEC",
            "Security review required before performance optimizations",
            Status::Skipped,
            "manual: a person reviews the change",
        );
        Report {
            profile: "sre-002".into(),
            title: "SRE-002: Performance Tuning".into(),
            target: "local".into(),
            run_id: "20260101T000000Z-1".into(),
            started: "2026-01-01T00:00:00Z".parse().unwrap(),
            environment: Fingerprint {
                host: "ci-1".into(),
                cores: 2,
                memory_mib: 24000,
                cpu: "Test CPU".into(),
                kernel: "6.1.0".into(),
                harness: "0.1.0".into(),
                build: crate::fingerprint::Build {
                    version: "0.1.0".into(),
                    commit: "0123456789ab".into(),
                    profile: "release".into(),
                    opt_level: "3".into(),
                },
            },
            checks: vec![cold, size, warm, review],
            measures: BTreeMap::new(),
            provisioning: None,
        }
    }

    #[test]
    fn json_has_the_documented_field_names() {
        let v: serde_json::Value = serde_json::to_value(sample()).unwrap();
        for k in ["profile", "target", "started", "environment", "checks"] {
            assert!(v.get(k).is_some(), "{k}");
        }
        let c = &v["checks"][0];
        for k in ["id", "ac", "title", "status", "reason", "measured", "threshold"] {
            assert!(c.get(k).is_some(), "{k}");
        }
        for k in ["value", "unit", "n", "ci_low", "ci_high"] {
            assert!(c["measured"].get(k).is_some(), "measured.{k}");
        }
        for k in ["op", "value", "unit"] {
            assert!(c["threshold"].get(k).is_some(), "threshold.{k}");
        }
        insta::assert_json_snapshot!(v);
    }

    #[test]
    fn a_profile_check_without_evidence_is_reported_as_not_run() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let profile = Profile::parse(
            "profile: t\ntitle: T\nsource: s\nchecks:\n  - id: A.one\n    ac: A\n    title: one\n    measure: image.size\n    expect: < 1MB\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        dir.init(crate::run_dir::RunInfo {
            id: "r".into(),
            profile: "t".into(),
            profile_path: "t.yaml".into(),
            target: "local".into(),
            started: Utc::now(),
            environment: Fingerprint::current(),
            invocation: String::new(),
        })
        .unwrap();
        let r = Report::from_run(&dir, &profile).unwrap();
        assert_eq!(r.checks.len(), 1);
        assert_eq!(r.checks[0].status, Status::Error);
        assert!(r.checks[0].reason.starts_with("not run"));
    }
}
