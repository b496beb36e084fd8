//! The shipped monitoring configuration: the rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), the Alertmanager configuration passes `amtool check-config`, and the dashboard
//! has the panels seed 001 asks for, reading only metrics that the platform, the builds or the shipped
//! recording rules produce.

use std::{path::Path, process::Command};

use harness::{
    measure::monitoring::{alert_names, Kind, BUILD, COLD_WARM, RESOURCE, SCALING},
    metrics::dashboard::{metric_names, Dashboard},
    services::{fixtures_dir, process, shipped_rule_files},
};

fn run(binary: &process::Binary, args: &[&str], dir: &Path) -> String {
    let program = binary.locate().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {}: {text}", binary.program, args.join(" "));
    text
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let dir = fixtures_dir().join("prometheus");
    let files: Vec<String> =
        shipped_rule_files(&fixtures_dir()).unwrap().iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&process::PROMTOOL, &args, &dir);
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
    let out = run(&process::PROMTOOL, &["test", "rules", "tests/alerts_test.yml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_rejects_a_broken_rule_and_names_the_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("bad.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n",
    )
    .unwrap();
    let program = process::PROMTOOL.locate().unwrap();
    let out = Command::new(program).args(["check", "rules", "bad.yml"]).current_dir(d.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yml"));
}

#[test]
fn amtool_accepts_the_alertmanager_configuration() {
    let out = run(&process::AMTOOL, &["check-config", "alertmanager.yml"], &fixtures_dir().join("prometheus"));
    assert!(out.contains("SUCCESS") && out.contains("1 receivers"), "{out}");
}

#[test]
fn every_criterion_has_an_alert() {
    let alerts = alert_names(&shipped_rule_files(&fixtures_dir()).unwrap()).unwrap();
    for a in [
        "ColdStartP95High",
        "WarmStartP95High",
        "FunctionErrorRateHigh",
        "FunctionThrottled",
        "FunctionScalingFlapping",
        "FunctionMemoryUtilizationHigh",
        "BuildDurationP95High",
        "BuildCacheHitRateLow",
        "PerformanceRegression",
    ] {
        assert!(alerts.iter().any(|x| x == a), "no alert {a} in {alerts:?}");
    }
}

#[test]
fn the_dashboard_has_the_seed_panels_and_reads_only_known_metrics() {
    let d = Dashboard::load(&fixtures_dir().join("dashboards/performance.json")).unwrap();
    for wanted in [
        "Build duration over time (p50, p95, p99)",
        "Cold start latency distribution",
        "Cache hit rate",
        "Concurrent builds",
        "Resource utilization: memory",
        "Resource utilization: CPU",
        "Image size trends",
    ] {
        assert!(d.panels.iter().any(|p| p == wanted), "seed 001 panel `{wanted}` missing from {:?}", d.panels);
    }
    let rules_text: String =
        shipped_rule_files(&fixtures_dir()).unwrap().iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    // Series names, not family names: a histogram has only its _bucket, _count and _sum series (a panel
    // reading bare `image_size_bytes` showed no data).
    let mut known: Vec<String> = BUILD
        .iter()
        .chain(COLD_WARM)
        .chain(SCALING)
        .chain(RESOURCE)
        .flat_map(|f| match f.kind {
            Kind::Histogram => {
                ["_bucket", "_count", "_sum"].iter().map(|s| format!("{}{s}", f.name)).collect::<Vec<_>>()
            }
            Kind::Sampled => vec![f.name.to_string()],
        })
        .collect();
    // Series beyond the criteria's lists that the dashboard reads (see the integration notes).
    known.extend(["function_cpu_seconds_total", "perf_baseline_p95_seconds"].map(String::from));
    for q in &d.queries {
        for name in metric_names(&q.promql("1m", "1h")) {
            let recorded = rules_text.contains(&format!("record: {name}\n"));
            assert!(known.contains(&name) || recorded, "panel `{}` reads `{name}`, which nothing produces", q.panel);
        }
    }
}
