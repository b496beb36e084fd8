//! `junit.xml`: one testcase per check, with the figures (measured, threshold, unit, n, CI) as testcase
//! properties so they travel with the JUnit file into the ticket tracker.

use quick_junit::{NonSuccessKind, Property, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use super::{measured_text, threshold_text, Report};
use crate::evidence::Status;

/// The JUnit XML.
pub fn junit_xml(r: &Report) -> String {
    let mut suite = TestSuite::new(format!("{}@{}", r.profile, r.target));
    for e in &r.checks {
        let status = match e.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(e.reason.clone());
                s
            }
            Status::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(e.reason.clone());
                s
            }
            Status::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(e.reason.clone());
                s
            }
        };
        let mut tc = TestCase::new(e.id.clone(), status);
        tc.set_classname(format!("{}.{}", r.profile, e.ac));
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
        tc.add_properties(props);
        suite.add_test_case(tc);
    }
    let mut report = JUnit::new(format!("perf-acceptance {}", r.run_id));
    report.add_test_suite(suite);
    report.to_string().expect("JUnit serializes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn junit_snapshot() {
        insta::assert_snapshot!(super::junit_xml(&super::super::tests::sample()));
    }
}
