//! `harness run` and the acceptance test binary share one run session: the same run directory layout, the
//! same report files and the same history append at the end (records of one run replace its earlier ones, so
//! every test process of a nextest run may append).

use harness::{
    baseline::History,
    criteria::Profile,
    platform::{LocalConfig, Target},
    run::Session,
};

#[test]
fn a_session_writes_the_reports_and_appends_the_run_to_the_history_once() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.yaml");
    std::fs::write(
        &path,
        "profile: t\ntitle: t\nsource: s\nchecks:\n  - { id: M.one, ac: M, title: t, manual: a person decides }\n  - { id: M.two, ac: M, title: t, manual: a person decides }\n",
    )
    .unwrap();
    let profile = Profile::load(&path).unwrap();
    let history = tmp.path().join("history");
    let out = tmp.path().join("run");
    let s = Session::open(
        profile,
        Target::Local(LocalConfig::default()),
        Some(out.clone()),
        Some(history.clone()),
        tmp.path(),
        |d| d,
    )
    .unwrap();
    assert_eq!(std::env::var_os("HARNESS_HISTORY").unwrap(), history.as_os_str(), "the regression procedure reads it");
    let selected = s.select(Some("one")).unwrap();
    assert_eq!(selected.len(), 1);
    assert!(s.select(Some("nothing-like-this")).is_err());
    for c in s.select(None).unwrap() {
        s.runner.run_check(c).unwrap();
    }
    let done = s.finish(|id| id == "M.one").unwrap();
    assert_eq!(done.report.checks.len(), 1, "the report keeps the selected checks");
    assert!(done.written.iter().any(|p| p.ends_with("report.json")) && out.join("report.json").exists());
    assert_eq!(done.appended, Ok(2), "every evidence of the run is appended");
    // A second process of the same run appends again: the history still holds the run's checks once.
    s.finish(|_| true).unwrap();
    let records = History::open(&history).unwrap().records().unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.run == s.id));
}
