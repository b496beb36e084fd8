//! The runtime procedures on the local target, through `Runner` as a run uses them: a cold start that was
//! not really cold is rejected, too few samples fail, a slowed init fails AC2 while the fast fixture passes,
//! exceeded concurrency is caught, and the runtime checks of sre-002 are all decided from measurements.
//! No timing is asserted except against margins of 10x or more.

use std::{collections::BTreeSet, path::Path, time::Duration};

use harness::{
    criteria::Profile,
    evidence::Status,
    local::fixtures::workspace_root,
    measure::{concurrency_excess, growth_pct, premature, prom_sum, recommend, verify_cold, Departure},
    platform::{
        functions::{Invocation, Outcome, SelfReport},
        report_line, LocalConfig, Target,
    },
    report::charts::SweepPoint,
    run::Runner,
    run_dir::RunDir,
};

const FUNCTIONS: &str = r#"
mode: process
functions:
  - name: fast
    fixture: rust
    memory_mb: 128
  - name: slow-init
    fixture: rust
    memory_mb: 128
    environment:
      INIT_DELAY_MS: "1500"
      INIT_MODE: sleep
"#;

fn profile(dir: &Path, defaults: &str, checks: &str) -> Profile {
    let text = format!("profile: t\ntitle: t\nsource: test\ndefaults:\n{defaults}\nchecks:\n{checks}\n");
    let path = dir.join("profile.yaml");
    std::fs::write(&path, text).unwrap();
    Profile::load(&path).unwrap()
}

fn runner(tmp: &Path, p: Profile, functions: Option<&str>) -> Runner {
    let cfg = match functions {
        Some(f) => {
            let path = tmp.join("functions.yaml");
            std::fs::write(&path, f).unwrap();
            LocalConfig { functions: Some(path) }
        }
        None => LocalConfig::default(),
    };
    let dir = RunDir::open(&tmp.join("run")).unwrap();
    Runner::new(p, Target::Local(cfg), dir, "procedures-test").unwrap()
}

fn invoked(cold: Option<bool>, invocations: u64, env: &str, init: Option<f64>) -> Invocation {
    let line = format!(
        "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 5 MB\t{}",
        init.map(|i| format!("Init Duration: {i} ms\t")).unwrap_or_default()
    );
    Invocation {
        outcome: Outcome::Ok,
        latency: Duration::from_millis(20),
        report: report_line::last_report(&line, "test"),
        own: cold.map(|cold| SelfReport { env_id: env.into(), cold, invocations, init_code_ms: Some(0.1) }),
    }
}

#[test]
fn a_sample_that_was_not_really_cold_is_rejected() {
    let none = BTreeSet::new();
    assert!(verify_cold(&invoked(Some(true), 1, "a", Some(100.0)), &none).is_ok());
    let why = verify_cold(&invoked(Some(false), 2, "a", None), &none).unwrap_err().to_string();
    assert!(why.contains("not a new environment"), "{why}");
    let seen: BTreeSet<String> = ["a".to_string()].into();
    assert!(verify_cold(&invoked(Some(true), 1, "a", Some(100.0)), &seen).unwrap_err().to_string().contains("not new"));
    assert!(verify_cold(&invoked(Some(true), 1, "b", None), &none).unwrap_err().to_string().contains("Init Duration"));
    assert!(verify_cold(&invoked(Some(true), 3, "b", Some(1.0)), &none)
        .unwrap_err()
        .to_string()
        .contains("invocations"));
}

/// The test hook `force_new_env: false` leaves environments alive, as a platform whose configuration update
/// did not retire them would: every sample after the first hits a warm environment and is rejected, and the
/// check fails for too few samples instead of passing on warm figures.
#[test]
fn warm_samples_posing_as_cold_are_rejected_and_too_few_samples_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let p = profile(
        tmp.path(),
        "  cold_start: { function: fast, samples: 6, force_new_env: false }",
        "  - { id: C.p95, ac: C, title: t, measure: cold_start.client_latency, expect: \"p95 < 1s\", min_samples: 5 }",
    );
    let r = runner(tmp.path(), p.clone(), Some(FUNCTIONS));
    let e = r.run_check(&p.checks[0]).unwrap();
    assert_eq!(e.status, Status::Failed, "{}", e.reason);
    assert!(e.reason.contains("too few samples"), "{}", e.reason);
    assert!(
        e.notes.iter().any(|n| n.contains("1 counted") && n.contains("11 rejected (11 not cold)")),
        "{:#?}",
        e.notes
    );
    assert!(
        e.notes.iter().any(|n| n.contains("not a new environment") || n.contains("served an earlier invocation")),
        "{:#?}",
        e.notes
    );
}

#[test]
fn a_slowed_init_fails_ac2_while_the_fast_fixture_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |id: &str, m: &str| {
        format!("  - {{ id: {id}, ac: AC2, title: t, measure: {m}, expect: \"p95 < 1s\", min_samples: 3 }}\n")
    };
    let p = profile(
        tmp.path(),
        "  cold_start: { function: fast, samples: 3 }",
        &(check("FAST.p95", "cold_start.client_latency")
            + "  - { id: SLOW.p95, ac: AC2, title: t, measure: cold_start.client_latency, expect: \"p95 < 1s\", min_samples: 3, params: { function: slow-init } }\n"
            + &check("FAST.init", "cold_start.init_duration")),
    );
    let r = runner(tmp.path(), p.clone(), Some(FUNCTIONS));
    let ev: Vec<_> = p.checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    assert_eq!(ev[0].status, Status::Passed, "{}", ev[0].reason);
    assert_eq!(ev[2].status, Status::Passed, "{}", ev[2].reason);
    assert_eq!(ev[1].status, Status::Failed, "{}", ev[1].reason);
    let slow = ev[1].measured.as_ref().unwrap();
    assert_eq!(slow.n, 3);
    assert!(slow.value >= 1.5, "INIT_DELAY_MS=1500 sleeps at least 1.5 s: {}", slow.value);
}

#[test]
fn exceeded_concurrency_is_caught_on_a_synthetic_timeline() {
    let ok = [(0.0, 0), (0.1, 3), (0.2, 5), (0.3, 5), (0.4, 2)];
    assert_eq!(concurrency_excess(&ok, 5), (5, 0));
    let over = [(0.0, 1), (0.1, 6), (0.2, 7), (0.3, 5)];
    assert_eq!(concurrency_excess(&over, 5), (7, 2));
    assert_eq!(concurrency_excess(&[], 5), (0, 0));
}

#[test]
fn early_retirements_count_as_premature() {
    let d = |last: f64, gone: f64| Departure { last_active_s: last, gone_s: gone };
    let deps = [d(0.0, 3.2), d(1.0, 2.0), d(5.0, 8.1)];
    assert_eq!(premature(&deps, 3.0, 0.25), 1);
    assert_eq!(premature(&[], 3.0, 0.25), 0);
}

#[test]
fn sweep_recommendations_and_helpers() {
    let pt = |m: f64, d: f64| SweepPoint { memory_mb: m, duration_ms: d, cost_gbs: m / 1024.0 * d / 1000.0 };
    // Duration halves up to 1024 MB, then stays: cost is flat, then grows.
    let pts = [pt(128.0, 800.0), pt(256.0, 400.0), pt(512.0, 200.0), pt(1024.0, 100.0), pt(2048.0, 100.0)];
    let (cheap, fast, bal) = recommend(&pts).unwrap();
    assert_eq!(pts[fast].memory_mb, 1024.0);
    assert!(pts[cheap].memory_mb <= 1024.0);
    assert_eq!(pts[bal].memory_mb, 1024.0);
    assert!(recommend(&[]).is_none());
    assert_eq!(growth_pct(&[10.0, 10.0, 10.0, 12.0, 12.0, 12.0]), Some(20.0));
    assert_eq!(growth_pct(&[1.0, 2.0]), None);
    let text = "function_invocations_total{function=\"f\",status=\"success\"} 7\nfunction_invocations_total{function=\"g\",status=\"success\"} 3\nfunction_invocations_total{function=\"f\",status=\"error\"} 1\n";
    assert_eq!(prom_sum(text, "function_invocations_total", &[("function", "f"), ("status", "success")]), 7.0);
    assert_eq!(prom_sum(text, "function_invocations_total", &[("status", "success")]), 10.0);
}

/// The runtime procedures of sre-002 on the default local target (container mode when the engine answers):
/// every AC2, AC3, AC4 and S6 check they answer is decided from a measured value, none errors, and the warm
/// start of the fast fixture passes (its P95 is tens of times under 100 ms).
#[test]
fn sre_002_runtime_checks_are_decided_on_the_local_target() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Profile::load(&workspace_root().join("fixtures/criteria/sre-002.yaml")).unwrap();
    let runtime = [
        "cold_start",
        "image",
        "warm_start",
        "scale_up",
        "scale_down",
        "concurrency",
        "resources",
        "memory_sweep",
        "high_load",
    ];
    let checks: Vec<_> = p
        .checks
        .iter()
        .filter(|c| ["AC2", "AC3", "AC4", "S6"].contains(&c.ac.as_str()))
        .filter(|c| c.procedure().is_some_and(|pr| runtime.contains(&pr)))
        .cloned()
        .collect();
    assert!(checks.len() >= 18, "{} runtime checks", checks.len());
    let r = runner(tmp.path(), p.clone(), None);
    let ev: Vec<_> = checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    let table: Vec<String> = ev.iter().map(|e| format!("{} {:?}: {}", e.id, e.status, e.reason)).collect();
    for e in &ev {
        // A figure, or a failure whose reason is the measured ledger (a machine too loaded for 1200 req/s
        // throttles requests, and a P95 that lands among them is no latency: that is a decision too).
        let ledger = e.status == Status::Failed && e.reason.contains(" attempts: ") && e.reason.contains(" failed (");
        assert!(
            matches!(e.status, Status::Passed | Status::Failed) && (e.measured.is_some() || ledger),
            "{} not decided from a measurement\n{}",
            e.id,
            table.join("\n")
        );
    }
    let warm = ev.iter().find(|e| e.id == "AC2.warm_start_p95").unwrap();
    assert_eq!(warm.status, Status::Passed, "{}", table.join("\n"));
}

/// Injected ground truth: a function that fails half of its invocations (`FAIL_RATE=0.5`). The failed cold
/// starts are failures in the ledger, not rejected samples: the check fails on the failure budget (none by
/// default) instead of passing on the survivors, and the reason says how many attempts failed and why.
/// (20 samples: the chance that no attempt fails is 2^-20.)
#[test]
fn failed_cold_starts_fail_the_check_instead_of_vanishing() {
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: process\nfunctions:\n  - name: flaky\n    fixture: rust\n    memory_mb: 128\n    environment:\n      FAIL_RATE: \"0.5\"\n";
    let p = profile(
        tmp.path(),
        "  cold_start: { function: flaky, samples: 20 }",
        "  - { id: C.p95, ac: C, title: t, measure: cold_start.client_latency, expect: \"p95 < 30s\", min_samples: 5 }",
    );
    let r = runner(tmp.path(), p.clone(), Some(functions));
    let e = r.run_check(&p.checks[0]).unwrap();
    assert_eq!(e.status, Status::Failed, "{}", e.reason);
    assert!(e.reason.contains("attempts failed (") && e.reason.contains("function error"), "{}", e.reason);
    assert!(e.reason.contains("beyond the failure budget of 0"), "{}", e.reason);
    assert!(e.notes.iter().any(|n| n.contains("cold_start attempts:") && n.contains("counted")), "{:#?}", e.notes);
}

/// One rule for every platform: the cold starts the local platform answered, replayed by a scripted
/// platform, give the same decision, the same figure and the same ledger.
#[test]
fn the_same_records_give_the_same_decision_on_the_local_platform_and_a_double() {
    use harness::{
        evidence::decide,
        measure::start::cold_start,
        platform::{
            local::{function_spec, LocalFunctions, Session},
            scripted::{Recording, Scripted},
        },
    };
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: process\nfunctions:\n  - name: flaky\n    fixture: rust\n    memory_mb: 128\n    environment:\n      FAIL_RATE: \"0.3\"\n";
    let path = tmp.path().join("functions.yaml");
    std::fs::write(&path, functions).unwrap();
    let cfg = LocalConfig { functions: Some(path) };
    let p = profile(
        tmp.path(),
        "  cold_start: { function: flaky, samples: 8, max_failures: 20 }",
        "  - { id: C.p95, ac: C, title: t, measure: cold_start.client_latency, expect: \"p95 < 30s\", min_samples: 3 }",
    );
    let check = &p.checks[0];
    let harness::criteria::Decision::Measured { params, .. } = &check.decision else { panic!("measured") };
    let params = params.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (local_set, records) = rt.block_on(async {
        let session = Session::start(&cfg, |_| {}).await.unwrap();
        let local = LocalFunctions::new(&session, "flaky", function_spec(&cfg, "flaky").unwrap());
        let rec = Recording::new(&local);
        let set = cold_start(&rec, &params, &RunDir::open(&tmp.path().join("a")).unwrap()).await.unwrap();
        let records = rec.records();
        session.shutdown().await;
        (set, records)
    });
    let n = records.len();
    let double = Scripted::new("flaky", 128, records);
    let double_set = rt.block_on(cold_start(&double, &params, &RunDir::open(&tmp.path().join("b")).unwrap())).unwrap();
    assert_eq!(double.left(), 0, "the procedure asked the double for the same {n} invocations");
    assert_eq!(double.cold_forced() as usize, n, "one forced cold start per attempt on both");
    let (a, b) = (decide(check, "local", &local_set), decide(check, "local", &double_set));
    assert_eq!(a.status, b.status, "{} / {}", a.reason, b.reason);
    assert_eq!(a.measured, b.measured);
    assert_eq!(local_set.ledgers, double_set.ledgers);
    assert_eq!(local_set.metrics, double_set.metrics);
}

/// Injected ground truth for the memory sweep: a handler that sleeps (its time does not depend on memory)
/// configured at 1769 MB is over-allocated and fails `<= 0%`; the same function at the smallest size passes.
#[test]
fn a_function_configured_far_above_the_recommended_size_fails_and_one_at_it_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: container\nfunctions:\n  - name: fat\n    fixture: rust\n    memory_mb: 1769\n  - name: lean\n    fixture: rust\n    memory_mb: 128\n";
    let sweep = "{ sizes: [128, 512], samples: 2, work_units: 0, work_ms: 20 }";
    let p = profile(
        tmp.path(),
        &format!("  memory_sweep: {sweep}"),
        "  - { id: FAT.over, ac: S4, title: t, measure: memory_sweep.over_allocation, expect: \"<= 0%\", params: { function: fat } }\n  - { id: LEAN.over, ac: S4, title: t, measure: memory_sweep.over_allocation, expect: \"<= 0%\", params: { function: lean } }\n  - { id: LEAN.rec, ac: S4, title: t, measure: memory_sweep.recommended, expect: \"== true\", params: { function: lean } }",
    );
    let r = runner(tmp.path(), p.clone(), Some(functions));
    let ev: Vec<_> = p.checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    assert_eq!(ev[0].status, Status::Failed, "{}", ev[0].reason);
    assert!(ev[0].measured.as_ref().unwrap().value > 100.0, "{}", ev[0].reason);
    assert_eq!(ev[1].status, Status::Passed, "{}", ev[1].reason);
    assert_eq!(ev[2].status, Status::Passed, "{}", ev[2].reason);
}

/// Init Duration is never exactly zero: a runtime has to start and call the Runtime API. Where the platform
/// cannot measure it (the runtime's first `next` came before the start the engine recorded), the REPORT has
/// no Init Duration and the cold start is rejected as unverifiable, never counted as 0 ms.
#[test]
fn no_init_duration_is_exactly_zero_in_container_mode() {
    use harness::{
        measure::{start::cold_start, Metric},
        platform::local::{function_spec, LocalFunctions, Session},
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("functions.yaml");
    std::fs::write(&path, "mode: container\nfunctions:\n  - name: bare\n    fixture: rust\n    memory_mb: 128\n")
        .unwrap();
    let cfg = LocalConfig { functions: Some(path) };
    let params: harness::criteria::Params = [("samples".to_string(), serde_json::json!(8))].into();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let set = rt.block_on(async {
        let session = Session::start(&cfg, |_| {}).await.unwrap();
        let fp = LocalFunctions::new(&session, "bare", function_spec(&cfg, "bare").unwrap());
        let set = cold_start(&fp, &params, &RunDir::open(&tmp.path().join("run")).unwrap()).await;
        session.shutdown().await;
        set.unwrap()
    });
    let Metric::Samples { values, .. } = &set.metrics["init_duration"] else { panic!("{:?}", set.metrics) };
    assert!(values.iter().all(|v| *v > 0.0), "Init Durations {values:?}");
    let l = &set.ledgers["init_duration"];
    assert_eq!(l.counted as usize, values.len());
    assert_eq!(l.attempts, l.counted + l.failures() + l.rejections(), "{}", l.summary());
}

/// Injected ground truth under load: a function that fails 30% of its invocations (`FAIL_RATE=0.3`). The
/// failed requests are the slowest in the latency figures (a failure took at least as long as an answer),
/// so the P95 of every request is a failure: both latency checks fail saying so, instead of passing on the
/// survivors' latencies. The same checks on the fast function pass: the rule does not fail everything.
/// (120 requests: the chance of 6 failures or fewer at 30% is below 1e-9.)
#[test]
fn failed_requests_under_load_count_in_the_latency_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: process\nfunctions:\n  - name: flaky\n    fixture: rust\n    memory_mb: 128\n    environment:\n      FAIL_RATE: \"0.3\"\n  - name: fast\n    fixture: rust\n    memory_mb: 128\n";
    let p = profile(
        tmp.path(),
        "  high_load: { rate: 40, duration_s: 3, baseline_rate: 20, baseline_s: 2, warmup_s: 1, work_ms: 1 }",
        "  - { id: F.p95, ac: L, title: t, measure: high_load.latency, expect: \"p95 < 30s\", params: { function: flaky } }\n  - { id: F.inc, ac: L, title: t, measure: high_load.p95_increase, expect: \"< 100000%\", params: { function: flaky } }\n  - { id: OK.p95, ac: L, title: t, measure: high_load.latency, expect: \"p95 < 30s\", params: { function: fast } }",
    );
    let r = runner(tmp.path(), p.clone(), Some(functions));
    let ev: Vec<_> = p.checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    for e in &ev[..2] {
        assert_eq!(e.status, Status::Failed, "{}: {}", e.id, e.reason);
        assert!(e.reason.contains("is a failure") && e.reason.contains("function error"), "{}: {}", e.id, e.reason);
    }
    assert!(
        ev[0].notes.iter().any(|n| n.starts_with("latency at 40 req/s:") && n.contains("function error")),
        "{:#?}",
        ev[0].notes
    );
    assert_eq!(ev[2].status, Status::Passed, "{}", ev[2].reason);
    assert!(ev[2].reason.contains("failures counted as slower than every sample"), "{}", ev[2].reason);
}

/// Injected ground truth for scale-up: a function that fails 90% of its invocations. A spike whose
/// invocations failed is a failure in the scale-up ledger (by class, with the first message), and the
/// check fails on the failure budget (none by default) naming it, instead of reading the spikes that went
/// well or saying only "no samples". (6 invocations: the chance that none fails is 1e-6.)
#[test]
fn failed_scale_up_spikes_are_in_the_ledger_and_fail_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: process\nfunctions:\n  - name: flaky\n    fixture: rust\n    memory_mb: 128\n    environment:\n      FAIL_RATE: \"0.9\"\n";
    let p = profile(
        tmp.path(),
        "  scale_up: { function: flaky, concurrency: 3, spikes: 2, work_ms: 200 }",
        "  - { id: S.p95, ac: S, title: t, measure: scale_up.latency, expect: \"p95 < 60s\" }",
    );
    let r = runner(tmp.path(), p.clone(), Some(functions));
    let e = r.run_check(&p.checks[0]).unwrap();
    assert_eq!(e.status, Status::Failed, "{}", e.reason);
    assert!(e.reason.contains("invocations failed") && e.reason.contains("2 attempts"), "{}", e.reason);
    assert!(
        e.notes.iter().any(|n| n.starts_with("scale_up spikes: first invocations failed: spike")),
        "{:#?}",
        e.notes
    );
}

/// Injected ground truth: a platform that ignores reserved concurrency (`faults: { over_allocate: true }`)
/// starts an environment for each of the 9 simultaneous invocations at a reserved concurrency of 3. The
/// limit checks fail with the excess measured; the same procedure on a platform that keeps the limit passes.
#[test]
fn a_platform_that_over_allocates_fails_the_concurrency_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: process\nfunctions:\n  - name: leaky\n    fixture: rust\n    memory_mb: 128\n    faults: { over_allocate: true }\n  - name: kept\n    fixture: rust\n    memory_mb: 128\n";
    let p = profile(
        tmp.path(),
        "  concurrency: { reserved: 3, work_ms: 1500 }",
        "  - { id: L.over, ac: C, title: t, measure: concurrency.over_limit, expect: \"== 0\", params: { function: leaky } }\n  - { id: L.thr, ac: C, title: t, measure: concurrency.excess_throttled, expect: \">= 99%\", params: { function: leaky } }\n  - { id: K.over, ac: C, title: t, measure: concurrency.over_limit, expect: \"== 0\", params: { function: kept } }",
    );
    let r = runner(tmp.path(), p.clone(), Some(functions));
    let ev: Vec<_> = p.checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    assert_eq!(ev[0].status, Status::Failed, "{}", ev[0].reason);
    assert!(ev[0].measured.as_ref().unwrap().value >= 1.0, "{}", ev[0].reason);
    assert!(ev[0].notes.iter().any(|n| n.contains("distinct environments in the answers")), "{:#?}", ev[0].notes);
    assert_eq!(ev[1].status, Status::Failed, "{}", ev[1].reason);
    assert_eq!(ev[2].status, Status::Passed, "{}", ev[2].reason);
}

/// A spike beyond what the local platform can hold is refused before anything starts, saying what it can
/// hold, instead of being discovered as a timeout: 500 environments of 128 MB need 62.5 GiB.
#[test]
fn a_spike_the_local_platform_cannot_hold_is_refused_up_front() {
    let gib = 1u64 << 30;
    let why = harness::measure::holds(500, 128, 24 * gib).unwrap_err().to_string();
    assert!(why.contains("need 62.5 GiB") && why.contains("holds at most 192 of that size"), "{why}");
    assert!(harness::measure::holds(20, 128, 24 * gib).is_ok());
    let tmp = tempfile::tempdir().unwrap();
    let p = profile(
        tmp.path(),
        "  scale_up: { function: fast, concurrency: 100000000, spikes: 1 }",
        "  - { id: S.p95, ac: S, title: t, measure: scale_up.latency, expect: \"p95 < 2min\" }",
    );
    let r = runner(tmp.path(), p.clone(), Some(FUNCTIONS));
    let e = r.run_check(&p.checks[0]).unwrap();
    assert_eq!(e.status, Status::Error, "{}", e.reason);
    assert!(e.reason.contains("holds at most") && e.reason.contains("concurrency"), "{}", e.reason);
}

/// Injected ground truth for the cold-start rate: with provisioned concurrency the environments are
/// initialized before the traffic, so their first invocations did not wait for init and are not cold starts
/// (the fixture reads `AWS_LAMBDA_INITIALIZATION_TYPE`, as on Lambda). Without it, the first requests of the
/// same traffic land on new environments and the rate is above zero.
#[test]
fn provisioned_environments_are_not_counted_as_cold_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let p = profile(
        tmp.path(),
        "  cold_start_rate: { function: fast, concurrency: 2, duration_s: 2, payload: { work_ms: 50, work_mode: sleep } }",
        "  - { id: P.rate, ac: P, title: t, measure: cold_start_rate.rate, expect: \"== 0%\", params: { provisioned_concurrency: 3 } }\n  - { id: O.rate, ac: P, title: t, measure: cold_start_rate.rate, expect: \"== 0%\" }",
    );
    let r = runner(tmp.path(), p.clone(), Some(FUNCTIONS));
    let ev: Vec<_> = p.checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    assert_eq!(ev[0].status, Status::Passed, "{}", ev[0].reason);
    assert_eq!(ev[1].status, Status::Failed, "{}", ev[1].reason);
    assert!(ev[1].measured.as_ref().unwrap().value > 0.0, "{}", ev[1].reason);
}

/// Injected ground truth under load: at 50 req/s of 100 ms each (about 5 in flight) a function with reserved
/// concurrency 2 on a platform that ignores it (`faults: { over_allocate: true }`) runs more than 2
/// environments, and `high_load.over_limit` fails with the excess; the same load on a platform that keeps
/// the limit stays at or below it (the excess is throttled) and passes.
#[test]
fn over_allocation_under_load_fails_the_overload_check() {
    let tmp = tempfile::tempdir().unwrap();
    let functions = "mode: process\nfunctions:\n  - name: leaky\n    fixture: rust\n    memory_mb: 128\n    reserved_concurrency: 2\n    faults: { over_allocate: true }\n  - name: kept\n    fixture: rust\n    memory_mb: 128\n    reserved_concurrency: 2\n";
    let p = profile(
        tmp.path(),
        "  high_load: { rate: 50, duration_s: 3, baseline_rate: 5, baseline_s: 2, warmup_s: 1, work_ms: 100 }",
        "  - { id: L.over, ac: L, title: t, measure: high_load.over_limit, expect: \"== 0\", params: { function: leaky } }\n  - { id: K.over, ac: L, title: t, measure: high_load.over_limit, expect: \"== 0\", params: { function: kept } }",
    );
    let r = runner(tmp.path(), p.clone(), Some(functions));
    let ev: Vec<_> = p.checks.iter().map(|c| r.run_check(c).unwrap()).collect();
    assert_eq!(ev[0].status, Status::Failed, "{}", ev[0].reason);
    assert!(ev[0].measured.as_ref().unwrap().value >= 1.0, "{}", ev[0].reason);
    assert_eq!(ev[1].status, Status::Passed, "{}", ev[1].reason);
}
