//! `junit.xml`: one testcase per check, with the figures (measured, threshold, unit, n, CI) as testcase
//! properties so they travel with the JUnit file into the ticket tracker.

use quick_junit::{NonSuccessKind, Property, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use super::{measured_text, threshold_text, Report};
use crate::evidence::{Evidence, Status};

/// The JUnit XML.
pub fn junit_xml(r: &Report) -> String {
    let mut suite = TestSuite::new(format!("{}@{}", r.profile, r.target));
    for e in &r.checks {
        let mut tc = TestCase::new(e.id.clone(), status(e));
        tc.set_classname(format!("{}.{}", r.profile, e.ac));
        tc.add_properties(properties(e));
        suite.add_test_case(tc);
    }
    let mut report = JUnit::new(format!("perf-acceptance {}", r.run_id));
    report.add_test_suite(suite);
    report.to_string().expect("JUnit serializes")
}

/// A check's JUnit status: skipped and non-passing checks carry the check's reason as their message.
fn status(e: &Evidence) -> TestCaseStatus {
    let mut s = match e.status {
        Status::Passed => return TestCaseStatus::success(),
        Status::Failed => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
        Status::Skipped => TestCaseStatus::skipped(),
    };
    s.set_message(e.reason.clone());
    s
}

/// The figures of a check as testcase properties.
fn properties(e: &Evidence) -> Vec<Property> {
    let mut props = vec![Property::new("title", e.title.clone()), Property::new("target", e.target.clone())];
    props.push(Property::new("threshold", threshold_text(e)));
    if let Some(m) = &e.measured {
        props.push(Property::new("measured", m.value.to_string()));
        props.push(Property::new("unit", m.unit.clone()));
        props.push(Property::new("n", m.n.to_string()));
        if let Some(l) = m.ci_low {
            props.push(Property::new("ci_low", l.to_string()));
        }
        if let Some(h) = m.ci_high {
            props.push(Property::new("ci_high", h.to_string()));
        }
        props.push(Property::new("figure", measured_text(e)));
    }
    props.push(Property::new("reason", e.reason.clone()));
    props
}

/// Completes a JUnit file that a test runner wrote for the acceptance binary (`cargo nextest run --profile
/// acceptance`) with what only the run's evidence knows: a testcase named after a check gets the check's
/// figures as properties, and a skipped check is reported as skipped with the check's reason (nextest knows an
/// ignored test only as "test is ignored", and a check skipped while it ran only as a test that passed).
/// Failures keep the runner's message and output. Other testcases are left as they are; returns the new XML.
pub fn annotate_junit(xml: &str, r: &Report) -> Result<String, quick_junit::DeserializeError> {
    let mut junit = JUnit::deserialize_from_str(xml)?;
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for suite in &mut junit.test_suites {
        let cases = std::mem::take(&mut suite.test_cases);
        let mut fresh = TestSuite::new(suite.name.clone());
        for mut tc in cases {
            if let Some(e) = r.checks.iter().find(|e| e.id == tc.name.as_str()) {
                if e.status == Status::Skipped {
                    tc.status = status(e);
                }
                tc.properties.retain(|p| !properties(e).iter().any(|q| q.name == p.name));
                tc.add_properties(properties(e));
            }
            fresh.add_test_case(tc);
        }
        suite.test_cases = fresh.test_cases;
        (suite.tests, suite.failures, suite.errors, suite.skipped) =
            (fresh.tests, fresh.failures, fresh.errors, fresh.skipped);
        tests += suite.tests;
        failures += suite.failures;
        errors += suite.errors;
        skipped += suite.skipped;
    }
    (junit.tests, junit.failures, junit.errors, junit.skipped) = (tests, failures, errors, skipped);
    Ok(junit.to_string().expect("JUnit serializes"))
}

#[cfg(test)]
mod tests {
    use quick_junit::{Report as JUnit, TestCaseStatus};

    use super::super::tests::sample;
    use crate::evidence::Status;

    #[test]
    fn junit_snapshot() {
        insta::assert_snapshot!(super::junit_xml(&sample()));
    }

    /// Ticket trackers match testcases by name: each is the check id as the profile writes it, and a skipped
    /// check is a skipped testcase whose message is the check's reason.
    #[test]
    fn testcases_are_check_ids_and_skips_carry_their_reason() {
        let r = sample();
        let junit = JUnit::deserialize_from_str(&super::junit_xml(&r)).unwrap();
        let cases = &junit.test_suites[0].test_cases;
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        let ids: Vec<&str> = r.checks.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(names, ids);
        let skipped = r.checks.iter().find(|e| e.status == Status::Skipped).unwrap();
        let tc = cases.iter().find(|c| c.name.as_str() == skipped.id).unwrap();
        match &tc.status {
            TestCaseStatus::Skipped { message, .. } => {
                assert_eq!(message.as_ref().map(|m| m.as_str()), Some(skipped.reason.as_str()))
            }
            other => panic!("{} is not skipped: {other:?}", skipped.id),
        }
        assert_eq!(junit.skipped, 1);
    }

    /// What nextest writes for the acceptance binary: an ignored check as `<skipped message="Skipped: test is
    /// ignored"/>`, a check skipped while it ran as a success, an unrelated testcase. Annotated, both skipped
    /// checks carry their reason and the counts follow.
    #[test]
    fn annotating_a_runner_junit_gives_skipped_checks_their_reason() {
        let r = sample();
        let skipped = r.checks.iter().find(|e| e.status == Status::Skipped).unwrap();
        let mut passed_then_skipped = r.checks.iter().find(|e| e.status == Status::Passed).unwrap().clone();
        passed_then_skipped.status = Status::Skipped;
        passed_then_skipped.reason = "no environment started during the window".into();
        let mut r2 = r.clone();
        r2.checks.retain(|e| e.id != passed_then_skipped.id);
        r2.checks.push(passed_then_skipped.clone());
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="0" errors="0" skipped="1">
    <testsuite name="perf-acceptance::acceptance" tests="3" disabled="0" errors="0" failures="0" skipped="1">
        <testcase name="{}" classname="perf-acceptance::acceptance" time="0.000"><skipped message="Skipped: test is ignored"/></testcase>
        <testcase name="{}" classname="perf-acceptance::acceptance" time="1.500"/>
        <testcase name="not_a_check" classname="perf-acceptance::acceptance" time="0.100"/>
    </testsuite>
</testsuites>
"#,
            skipped.id, passed_then_skipped.id
        );
        let out = JUnit::deserialize_from_str(&super::annotate_junit(&xml, &r2).unwrap()).unwrap();
        let suite = &out.test_suites[0];
        for e in [skipped, &passed_then_skipped] {
            let tc = suite.test_cases.iter().find(|c| c.name.as_str() == e.id).unwrap();
            match &tc.status {
                TestCaseStatus::Skipped { message, .. } => {
                    assert_eq!(message.as_ref().map(|m| m.as_str()), Some(e.reason.as_str()))
                }
                other => panic!("{} is not skipped: {other:?}", e.id),
            }
            assert!(tc.properties.iter().any(|p| p.name.as_str() == "reason" && p.value.as_str() == e.reason));
        }
        let other = suite.test_cases.iter().find(|c| c.name.as_str() == "not_a_check").unwrap();
        assert!(matches!(other.status, TestCaseStatus::Success { .. }));
        assert_eq!((suite.tests, suite.skipped, out.tests, out.skipped), (3, 2, 3, 2));
    }
}
