//! [`Profile`]: a ticket's acceptance criteria as data, loaded from YAML with every error located at
//! file:line:column.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{
    catalog::{self, Shape},
    threshold::{Dimension, Expectation, Statistic},
};

/// Where a function is deployed; a profile may restrict a check to some targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The embedded Lambda-compatible platform on the local Docker engine.
    Local,
    /// AWS Lambda + API Gateway, names from Terraform outputs.
    Aws,
    /// LocalStack (the aws target with an endpoint override).
    Localstack,
    /// Knative Services / LambdaFunction resources on Kubernetes.
    Knative,
}

impl TargetKind {
    /// All target kinds.
    pub const ALL: [TargetKind; 4] = [TargetKind::Local, TargetKind::Aws, TargetKind::Localstack, TargetKind::Knative];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Local => "local",
            TargetKind::Aws => "aws",
            TargetKind::Localstack => "localstack",
            TargetKind::Knative => "knative",
        }
    }
}

impl std::str::FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetKind::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown target `{s}` (expected local, aws, localstack or knative)"))
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters handed to a procedure (function name, sample count, load shape ...).
pub type Params = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    profile: String,
    title: String,
    source: String,
    #[serde(default)]
    defaults: BTreeMap<String, Params>,
    checks: Vec<RawCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    id: Spanned<String>,
    ac: String,
    title: String,
    #[serde(default)]
    section: Option<String>,
    #[serde(default)]
    measure: Option<Spanned<String>>,
    #[serde(default)]
    expect: Option<Spanned<String>>,
    #[serde(default)]
    min_samples: Option<u32>,
    #[serde(default)]
    params: Params,
    #[serde(default)]
    targets: Option<Vec<TargetKind>>,
    #[serde(default)]
    manual: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// What a check needs to be decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Decision {
    /// Decided by a person; always reported as skipped with this reason.
    Manual {
        /// What the person has to do.
        reason: String,
    },
    /// Decided from a measurement.
    Measured {
        /// `procedure.metric` from the catalog.
        measure: String,
        /// Statistic, operator and threshold.
        expect: Expectation,
        /// Fewer samples than this is a failure.
        min_samples: u32,
        /// Parameters for the procedure: the profile's defaults for it, overridden by the check's own.
        params: Params,
    },
}

/// One acceptance check of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable id (`AC2.cold_start_p95`), also the test name.
    pub id: String,
    /// Criterion group (`AC2`, `SM`, `S3`, `SEC`).
    pub ac: String,
    /// The ticket's own words.
    pub title: String,
    /// Where in the ticket the bullet stands.
    pub section: Option<String>,
    /// How it is decided.
    pub decision: Decision,
    /// Targets the check is restricted to (`None`: every target that can measure it).
    pub targets: Option<Vec<TargetKind>>,
    /// Why the threshold is what it is, when the ticket gives no number.
    pub note: Option<String>,
    /// Line of the check in its profile.
    pub line: u64,
}

impl Check {
    /// The procedure this check reads, if measured.
    pub fn procedure(&self) -> Option<&str> {
        match &self.decision {
            Decision::Measured { measure, .. } => measure.split_once('.').map(|(p, _)| p),
            Decision::Manual { .. } => None,
        }
    }
}

/// A ticket's criteria.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Short name (`sre-002`).
    pub name: String,
    /// Ticket title.
    pub title: String,
    /// Which source document it comes from.
    pub source: String,
    /// The checks, in ticket order.
    pub checks: Vec<Check>,
    /// File it was loaded from.
    pub path: PathBuf,
}

/// A profile that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: cannot read criteria profile: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema, or a value is invalid.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What was wrong and what was expected.
        message: String,
    },
}

impl Profile {
    /// Loads and validates a profile file.
    pub fn load(path: &Path) -> Result<Profile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        Profile::parse(&text, path)
    }

    /// Parses and validates profile text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Profile, Error> {
        let raw: RawProfile = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Error::Invalid { path: path.into(), line, column, message: first_line(&e.to_string()) }
        })?;
        let invalid = |at: &serde_saphyr::Location, message: String| Error::Invalid {
            path: path.into(),
            line: at.line(),
            column: at.column(),
            message,
        };
        for name in raw.defaults.keys() {
            if !catalog::procedures().contains(&name.as_str()) {
                return Err(Error::Invalid {
                    path: path.into(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "defaults: unknown procedure `{name}` (expected one of: {})",
                        catalog::procedures().join(", ")
                    ),
                });
            }
        }
        let mut checks: Vec<Check> = Vec::with_capacity(raw.checks.len());
        for c in raw.checks {
            let id_at = c.id.referenced;
            let id = c.id.value;
            if id.is_empty() || !id.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch)) {
                return Err(invalid(&id_at, format!("check id `{id}` must be letters, digits, `.`, `_` or `-`")));
            }
            if checks.iter().any(|k| k.id == id) {
                return Err(invalid(&id_at, format!("duplicate check id `{id}`")));
            }
            let decision = match (c.manual, c.measure, c.expect) {
                (Some(reason), None, None) => Decision::Manual { reason },
                (None, Some(measure), Some(expect)) => {
                    let def = catalog::lookup(&measure.value).ok_or_else(|| {
                        invalid(
                            &measure.referenced,
                            format!(
                                "unknown measurement `{}` (expected procedure.metric, for example \
                                 cold_start.client_latency; `harness list --catalog` lists them)",
                                measure.value
                            ),
                        )
                    })?;
                    let e: Expectation =
                        expect.value.parse().map_err(|err| invalid(&expect.referenced, format!("{err}")))?;
                    if e.unit.dimension != def.dimension
                        && !(def.dimension == Dimension::Count && e.unit.symbol.is_empty())
                    {
                        return Err(invalid(
                            &expect.referenced,
                            format!(
                                "`{}` is in {:?} but `{}` is measured in {:?}",
                                expect.value, e.unit.dimension, measure.value, def.dimension
                            ),
                        ));
                    }
                    if def.shape == Shape::Scalar && e.statistic != Statistic::Value {
                        return Err(invalid(
                            &expect.referenced,
                            format!(
                                "`{}` is a single figure; write the threshold without a statistic (`{}`)",
                                measure.value,
                                e.threshold_text()
                            ),
                        ));
                    }
                    let mut params = raw.defaults.get(def.procedure).cloned().unwrap_or_default();
                    params.extend(c.params);
                    Decision::Measured {
                        measure: measure.value,
                        expect: e,
                        min_samples: c.min_samples.unwrap_or(1),
                        params,
                    }
                }
                (Some(_), _, _) => {
                    return Err(invalid(&id_at, format!("check `{id}`: a manual check has no `measure` or `expect`")))
                }
                _ => {
                    return Err(invalid(
                        &id_at,
                        format!("check `{id}`: needs both `measure` and `expect`, or `manual: <reason>`"),
                    ))
                }
            };
            checks.push(Check {
                id,
                ac: c.ac,
                title: c.title,
                section: c.section,
                decision,
                targets: c.targets,
                note: c.note,
                line: id_at.line(),
            });
        }
        Ok(Profile { name: raw.profile, title: raw.title, source: raw.source, checks, path: path.into() })
    }

    /// Finds a check by id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
profile: t
title: T
source: test
defaults:
  cold_start: { samples: 30 }
checks:
  - id: AC2.cold
    ac: AC2
    title: Cold start time < 1 second (P95)
    measure: cold_start.client_latency
    expect: p95 < 1s
    min_samples: 20
    params: { function: fixture-rust }
  - id: SEC.review
    ac: SEC
    title: Security review required
    manual: a person reviews the change
";

    fn err(text: &str) -> String {
        Profile::parse(text, Path::new("p.yaml")).unwrap_err().to_string()
    }

    #[test]
    fn loads_measured_and_manual_checks_with_merged_params() {
        let p = Profile::parse(GOOD, Path::new("p.yaml")).unwrap();
        assert_eq!(p.checks.len(), 2);
        let Decision::Measured { params, min_samples, expect, .. } = &p.checks[0].decision else { panic!() };
        assert_eq!(params["samples"], serde_json::json!(30));
        assert_eq!(params["function"], serde_json::json!("fixture-rust"));
        assert_eq!(*min_samples, 20);
        assert_eq!(expect.to_string(), "p95 < 1s");
        assert_eq!(p.checks[0].line, 7);
        assert!(matches!(p.checks[1].decision, Decision::Manual { .. }));
    }

    #[test]
    fn unknown_key_is_located() {
        let e = err(&GOOD.replace("    min_samples: 20", "    min_sample: 20"));
        assert!(e.starts_with("p.yaml:12:"), "{e}");
        assert!(e.contains("min_sample"), "{e}");
    }

    #[test]
    fn bad_unit_is_located() {
        let e = err(&GOOD.replace("p95 < 1s", "p95 < 1 fortnight"));
        assert!(e.starts_with("p.yaml:11:13: unknown unit `fortnight`"), "{e}");
    }

    #[test]
    fn wrong_dimension_is_located() {
        let e = err(&GOOD.replace("p95 < 1s", "p95 < 500MB"));
        assert!(e.starts_with("p.yaml:11:13:") && e.contains("Bytes") && e.contains("Time"), "{e}");
    }

    #[test]
    fn unknown_measurement_is_located() {
        let e = err(&GOOD.replace("cold_start.client_latency", "cold_start.latency"));
        assert!(e.starts_with("p.yaml:10:14: unknown measurement `cold_start.latency`"), "{e}");
    }

    #[test]
    fn statistic_on_a_scalar_is_rejected() {
        let e = err(&GOOD.replace("cold_start.client_latency", "image.size").replace("p95 < 1s", "p95 < 500MB"));
        assert!(e.contains("single figure") && e.contains("`< 500MB`"), "{e}");
    }

    #[test]
    fn duplicate_ids_and_half_checks_are_rejected() {
        let e = err(&GOOD.replace("SEC.review", "AC2.cold"));
        assert!(e.starts_with("p.yaml:14:") && e.contains("duplicate check id"), "{e}");
        let e = err(&GOOD.replace("    expect: p95 < 1s\n", ""));
        assert!(e.contains("needs both `measure` and `expect`"), "{e}");
    }

    #[test]
    fn malformed_yaml_is_located() {
        let e = err("profile: t\ntitle: [unclosed\n");
        assert!(e.starts_with("p.yaml:"), "{e}");
        assert!(!e.starts_with("p.yaml:0:0"), "{e}");
    }

    #[test]
    fn unknown_default_procedure_is_rejected() {
        let e = err(&GOOD.replace("  cold_start: { samples: 30 }", "  cold_starts: { samples: 30 }"));
        assert!(e.contains("unknown procedure `cold_starts`"), "{e}");
    }
}
