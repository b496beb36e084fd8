//! `report.html` of a realistic run directory: every check of the profile appears with its charts or "no
//! chart data", checked in the page text and in the DOM headless Chromium renders from it.
//!
//! The run directory is generated here: for every check of `fixtures/criteria/sre-002.yaml` (or, when the
//! workspace has none yet, `tests/data/sre-002-sample.yaml`) one measurement set per procedure with the
//! catalog's metrics, the chart data files the procedures write (samples, timelines, sweep, builds), the
//! evidence decided from them by `evidence::decide`, and a trend history for some checks. One warm start
//! check fails on purpose and the monitoring procedure is unreachable, so every status shows.
//!
//! `HARNESS_SCREENSHOT_OUT=docs/report-screenshot.png` keeps the Chromium screenshot.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::{
    criteria::{
        catalog::{self, Shape},
        Check, Decision, Dimension, Op, Profile, TargetKind,
    },
    evidence::{self, Evidence, Status},
    fingerprint::Fingerprint,
    measure::{self, MeasurementSet, Metric},
    platform::Target,
    report,
    report::{
        charts::{
            self, BuildTimes, CacheHits, CheckTrend, LatencySamples, Mark, Sweep, SweepPoint, Timeline, TrendPoint,
        },
        Report, NO_CHART_DATA,
    },
    run,
    run_dir::{RunDir, RunInfo},
};

/// Deterministic pseudo-random numbers (xorshift64*), so the fixture is the same on every run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness is inside the workspace").to_path_buf()
}

fn profile() -> Profile {
    let real = workspace_root().join("fixtures/criteria/sre-002.yaml");
    let path =
        if real.exists() { real } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sre-002-sample.yaml") };
    Profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The fixture: a run directory and, per check id, whether chart data was written for it.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: RunDir,
    profile: Profile,
    charted: BTreeMap<String, bool>,
}

const PROCEDURES_WITH_TIMELINE: &[&str] = &["scale_up", "scale_down", "concurrency", "high_load"];
const PROCEDURES_WITH_TRENDS: &[&str] =
    &["build", "cold_start", "warm_start", "image", "scale_up", "high_load", "resources"];

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let profile = profile();
    let started = "2026-03-02T02:00:00Z".parse().unwrap();
    dir.init(RunInfo {
        id: "20260302T020000Z-4242".into(),
        profile: profile.name.clone(),
        profile_path: profile.path.clone(),
        target: "local".into(),
        started,
        environment: Fingerprint {
            host: "ci-runner-7".into(),
            cores: 2,
            memory_mib: 24032,
            cpu: "AMD EPYC 7B13".into(),
            kernel: "6.1.0-31-cloud-amd64".into(),
            harness: "0.1.0".into(),
            build: harness::fingerprint::Build {
                version: "0.1.0".into(),
                commit: "0123456789ab".into(),
                profile: "release".into(),
                opt_level: "3".into(),
            },
        },
        invocation: String::new(),
    })
    .unwrap();
    let target = Target::from_kind(TargetKind::Local);
    let mut rng = Rng(0x5eed_2026);
    let mut sets: BTreeMap<String, Result<MeasurementSet, measure::Error>> = BTreeMap::new();
    let mut charted = BTreeMap::new();
    let mut trends = charts::Trends::new();
    for check in &profile.checks {
        if let Err(why) = run::applicability(check, &target) {
            dir.write_evidence(&Evidence::skipped(check, "local", why)).unwrap();
            charted.insert(check.id.clone(), false);
            continue;
        }
        let procedure = check.procedure().expect("measured").to_string();
        let set = sets.entry(procedure.clone()).or_insert_with(|| {
            let taken = measurement(&procedure, &profile, &dir, &mut rng);
            // Stored as a run stores it: the report reads wall times and notes from `measurements/`.
            dir.measurement(&procedure, &Default::default(), |_| taken.clone()).unwrap()
        });
        let e = match set {
            Ok(set) => evidence::decide(check, "local", set),
            Err(err) => Evidence::error(check, "local", err.to_string()),
        };
        let distribution = catalog::lookup(&format!("{procedure}.{}", metric_of(check)))
            .is_some_and(|d| d.shape == Shape::Distribution);
        let mut has_chart = set.is_ok()
            && (distribution
                || PROCEDURES_WITH_TIMELINE.contains(&procedure.as_str())
                || ["memory_sweep", "build"].contains(&procedure.as_str()));
        let trended = PROCEDURES_WITH_TRENDS.contains(&procedure.as_str());
        if let Some(m) = e.measured.as_ref().filter(|m| trended && !["", "bool"].contains(&m.unit.as_str())) {
            trends.insert(check.id.clone(), history(&mut rng, m.value, &m.unit, started));
            has_chart = true;
        }
        dir.write_evidence(&e).unwrap();
        charted.insert(check.id.clone(), has_chart);
    }
    std::fs::write(dir.path().join(charts::TRENDS_FILE), serde_json::to_string_pretty(&trends).unwrap()).unwrap();
    Fixture { _tmp: tmp, dir, profile, charted }
}

fn metric_of(check: &Check) -> &str {
    match &check.decision {
        Decision::Measured { measure, .. } => measure.split_once('.').map_or("", |(_, m)| m),
        Decision::Manual { .. } => "",
    }
}

/// One procedure's measurement: every catalog metric of it, with values that meet the first check reading
/// it (warm start latency misses on purpose), and the chart data the procedure writes.
fn measurement(
    procedure: &str,
    profile: &Profile,
    dir: &RunDir,
    rng: &mut Rng,
) -> Result<MeasurementSet, measure::Error> {
    if procedure == "monitoring" {
        return Err(measure::Error::Unavailable {
            what: "Prometheus at http://127.0.0.1:9090".into(),
            detail: "connection refused; the suite starts it from the Debian package `prometheus` (scripts/setup.sh)"
                .into(),
        });
    }
    let mut set = MeasurementSet::new(procedure, "local", &Default::default());
    let mut raw = Vec::new();
    for def in catalog::CATALOG.iter().filter(|d| d.procedure == procedure) {
        let expect = profile.checks.iter().find_map(|c| match &c.decision {
            Decision::Measured { measure, expect, min_samples, .. }
                if *measure == format!("{procedure}.{}", def.metric) =>
            {
                Some((expect.clone(), *min_samples))
            }
            _ => None,
        });
        let metric = match def.shape {
            Shape::Distribution => {
                let n = expect.as_ref().map_or(40, |(_, min)| (*min as usize).max(40));
                let values: Vec<f64> = (0..n)
                    .map(|_| sample(rng, def.dimension, expect.as_ref().map(|e| &e.0), procedure == "warm_start"))
                    .collect();
                let unit = canonical_symbol(def.dimension);
                let file = charts::samples_file(def.metric);
                raw.push(
                    charts::write_chart(
                        dir,
                        procedure,
                        &file,
                        &LatencySamples { unit: unit.into(), values: values.clone() },
                    )
                    .unwrap(),
                );
                Metric::samples(values, unit)
            }
            Shape::Scalar => {
                Metric::value(scalar(def.dimension, expect.as_ref().map(|e| &e.0)), canonical_symbol(def.dimension), 1)
            }
        };
        set = set.with(def.metric, metric);
    }
    if PROCEDURES_WITH_TIMELINE.contains(&procedure) {
        raw.push(charts::write_chart(dir, procedure, charts::TIMELINE_FILE, &timeline(rng, procedure)).unwrap());
    }
    if procedure == "memory_sweep" {
        raw.push(charts::write_chart(dir, procedure, charts::SWEEP_FILE, &sweep()).unwrap());
    }
    if procedure == "build" {
        raw.push(charts::write_chart(dir, procedure, charts::BUILD_TIMES_FILE, &builds(rng)).unwrap());
    }
    let csv = dir.raw_dir(procedure).unwrap().join("samples.csv");
    std::fs::write(&csv, "kind,value\n").unwrap();
    raw.push(Path::new("raw").join(procedure).join("samples.csv"));
    set.raw = raw;
    set.notes = vec![
        format!("{procedure}: fixture data generated by tests/report_html.rs"),
        format!("{procedure}: a second note every check of the procedure carries"),
    ];
    let mut set = set.finish();
    // A wall time that differs per procedure, as a run's would.
    set.started = "2026-03-02T02:00:00Z".parse().unwrap();
    set.finished = set.started + chrono::Duration::seconds(10 + procedure.len() as i64 * 7);
    Ok(set)
}

fn canonical_symbol(d: Dimension) -> &'static str {
    match d {
        Dimension::Time => "s",
        Dimension::Bytes => "B",
        Dimension::Percent => "%",
        Dimension::Rate => "req/s",
        Dimension::Count => "",
        Dimension::Bool => "bool",
    }
}

fn sample(rng: &mut Rng, d: Dimension, expect: Option<&harness::criteria::Expectation>, miss: bool) -> f64 {
    let Some(e) = expect else {
        return if d == Dimension::Percent {
            (60.0 + 10.0 * rng.normal()).clamp(0.0, 100.0)
        } else {
            rng.lognormal(0.2, 0.3)
        };
    };
    let t = e.canonical_value();
    match e.op {
        Op::Lt | Op::Le => rng.lognormal(t * if miss { 0.72 } else { 0.42 }, 0.27),
        Op::Gt | Op::Ge | Op::Eq if d == Dimension::Percent => (t * 1.09 + 5.0 * rng.normal()).clamp(0.0, 100.0),
        Op::Gt | Op::Ge | Op::Eq => rng.lognormal(t * 1.4, 0.2),
    }
}

fn scalar(d: Dimension, expect: Option<&harness::criteria::Expectation>) -> f64 {
    let Some(e) = expect else {
        return match d {
            Dimension::Time => 1.0,
            Dimension::Bytes => 2.1e6,
            Dimension::Percent => 50.0,
            Dimension::Rate => 100.0,
            Dimension::Count => 0.0,
            Dimension::Bool => 1.0,
        };
    };
    let t = e.canonical_value();
    match e.op {
        Op::Eq => t,
        Op::Lt | Op::Le if t == 0.0 => 0.0,
        Op::Lt => t * 0.58,
        Op::Le => t * 0.8,
        Op::Gt | Op::Ge if d == Dimension::Percent && t >= 80.0 => (t + 100.0) / 2.0,
        Op::Gt | Op::Ge if t == 0.0 => 12.5,
        Op::Gt | Op::Ge => t * 1.27,
    }
}

fn timeline(rng: &mut Rng, procedure: &str) -> Timeline {
    let (peak, limit, rps) = match procedure {
        "high_load" => (38.0, Some(50.0), 1000.0),
        "concurrency" => (5.0, Some(5.0), 40.0),
        _ => (20.0, None, 200.0),
    };
    let mut t = Timeline { t_s: vec![], envs: vec![], load_rps: vec![], limit, marks: vec![] };
    let mut envs: f64 = 0.0;
    for i in 0..=120 {
        let s = f64::from(i) * 0.5;
        let load = if (5.0..40.0).contains(&s) { rps * (1.0 + 0.03 * rng.normal()) } else { 0.0 };
        let want: f64 = if load > 0.0 {
            peak
        } else if s < 55.0 && envs > 0.0 {
            envs
        } else {
            0.0
        };
        envs = if want > envs { (envs + 4.0 + rng.unit() * 3.0).min(want) } else { want };
        t.t_s.push(s);
        t.envs.push(envs.round());
        t.load_rps.push(load.max(0.0));
    }
    t.marks = vec![Mark { t_s: 5.0, label: "spike".into() }, Mark { t_s: 40.0, label: "load stops".into() }];
    t
}

fn sweep() -> Sweep {
    let points = [(128.0, 412.0), (256.0, 201.0), (512.0, 104.0), (1024.0, 61.0), (2048.0, 58.0)]
        .into_iter()
        .map(|(m, d): (f64, f64)| SweepPoint {
            memory_mb: m,
            duration_ms: d,
            cost_gbs: m / 1024.0 * (d / 1000.0).max(0.001),
        })
        .collect();
    Sweep { points, recommended_mb: Some(1024.0), configured_mb: Some(1024.0) }
}

fn builds(rng: &mut Rng) -> BuildTimes {
    BuildTimes {
        unit: "s".into(),
        baseline: (0..5).map(|_| rng.lognormal(94.0, 0.05)).collect(),
        optimized: (0..5).map(|_| rng.lognormal(70.0, 0.05)).collect(),
        incremental: (0..5).map(|_| rng.lognormal(9.5, 0.08)).collect(),
        cache: vec![
            CacheHits { build: "unchanged".into(), hits: 9, lookups: 9 },
            CacheHits { build: "src change 1".into(), hits: 7, lookups: 9 },
            CacheHits { build: "src change 2".into(), hits: 7, lookups: 9 },
        ],
    }
}

/// Eleven earlier runs (the first five the baseline, a shift at the eighth) and this run's value last.
fn history(rng: &mut Rng, now: f64, unit: &str, started: chrono::DateTime<chrono::Utc>) -> CheckTrend {
    let mut points: Vec<TrendPoint> = (0..11)
        .map(|i| {
            let level = if i >= 7 { now } else { now * 1.15 };
            let value = level * (1.0 + 0.02 * rng.normal());
            TrendPoint {
                run_id: format!("nightly-{:02}", i + 1),
                started: started - chrono::Duration::days(11 - i),
                value: if unit == "%" { value.min(100.0) } else { value },
                is_baseline: i < 5,
                change_point: i == 7,
            }
        })
        .collect();
    points.push(TrendPoint {
        run_id: "20260302T020000Z-4242".into(),
        started,
        value: now,
        is_baseline: false,
        change_point: false,
    });
    CheckTrend { unit: unit.into(), points }
}

/// The `<figure>` of a check in a page (HTML as written or as Chromium serializes it).
fn card<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let at = page.find(&format!("data-check=\"{id}\""))?;
    let start = page[..at].rfind("<figure")?;
    let end = start + page[start..].find("</figure>")?;
    Some(&page[start..end])
}

fn assert_every_check_has_its_charts(page: &str, f: &Fixture) {
    assert!(f.charted.values().any(|c| *c) && f.charted.values().any(|c| !*c), "the fixture has both kinds");
    for check in &f.profile.checks {
        let card = card(page, &check.id).unwrap_or_else(|| panic!("check {} has no card", check.id));
        let svgs = card.matches("<svg").count();
        if f.charted[&check.id] {
            assert!(svgs >= 1, "{}: chart data was written but no chart drawn:\n{card}", check.id);
            assert!(!card.contains(NO_CHART_DATA), "{}", check.id);
        } else {
            assert_eq!(svgs, 0, "{}: a chart without chart data", check.id);
            assert!(card.contains(NO_CHART_DATA), "{}: says nothing about its missing chart", check.id);
        }
        let text = card.replace("&quot;", "\"").replace("&#39;", "'");
        let title = check.title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(text.contains(&title), "{}: ticket wording `{title}` missing", check.id);
    }
}

fn write_report(f: &Fixture) -> (Report, PathBuf) {
    let report = Report::from_run(&f.dir, &f.profile).unwrap();
    let written = report.write(f.dir.path()).unwrap();
    let html = written.into_iter().find(|p| p.ends_with("report.html")).expect("report.html written");
    (report, html)
}

#[test]
fn report_html_shows_every_check_with_its_charts_or_no_chart_data() {
    let f = fixture();
    let (report, html) = write_report(&f);
    let c = report.counts();
    assert!(c.passed > 0 && c.failed > 0 && c.error > 0 && c.skipped > 0, "every status appears: {c:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_every_check_has_its_charts(&page, &f);
    let failed: Vec<&Evidence> = report.checks.iter().filter(|e| e.status == Status::Failed).collect();
    for e in failed {
        assert!(page.contains(&format!("FAILED {}: measured", e.id)), "ticket summary lists {}", e.id);
    }
    let groups: BTreeSet<&str> = f.profile.checks.iter().map(|c| c.ac.as_str()).collect();
    for g in groups {
        assert!(page.contains(&format!("<section class=\"ac\" id=\"ac-{g}\">")), "AC group {g}");
    }
}

/// The top of the page says what a reader needs first: per criterion the counts and key figures, every check
/// that failed or could not be measured with measured vs threshold, and the wall time of each measurement.
#[test]
fn report_html_summary_comes_first() {
    let f = fixture();
    let (report, html) = write_report(&f);
    let page = std::fs::read_to_string(&html).unwrap();
    let summary_at = page.find("id=\"summary\"").expect("a summary");
    let first_group = page.find("<section class=\"ac\"").unwrap();
    assert!(summary_at < first_group, "the summary comes before the criterion sections");
    let top = &page[summary_at..first_group];
    let groups: BTreeSet<&str> = f.profile.checks.iter().map(|c| c.ac.as_str()).collect();
    for g in groups {
        assert!(top.contains(&format!("<a href=\"#ac-{g}\">{g}</a>")), "criterion {g} in the summary");
    }
    for e in report.checks.iter().filter(|e| matches!(e.status, Status::Failed | Status::Error)) {
        let at = top.find(&format!("data-failure=\"{}\"", e.id)).unwrap_or_else(|| panic!("{} not listed", e.id));
        let item = &top[at..at + top[at..].find("</li>").unwrap()];
        let vs = format!("measured {} vs {}", report::measured_text(e), report::threshold_text(e)).replace('<', "&lt;");
        assert!(item.contains(&vs), "{}: `{vs}` missing in {item}", e.id);
    }
    let procedures: BTreeSet<String> = std::fs::read_dir(f.dir.path().join("measurements"))
        .unwrap()
        .flatten()
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".error.json"))
        .map(|n| n.split('-').next().unwrap().to_string())
        .collect();
    assert!(procedures.len() > 5, "{procedures:?}");
    for p in &procedures {
        assert!(top.contains(&format!("data-procedure=\"{p}\"")), "wall time of {p}");
    }
}

/// A measurement's notes are said once, not under every check that reads the measurement.
#[test]
fn report_html_says_each_measurement_note_once() {
    let f = fixture();
    let (report, html) = write_report(&f);
    let page = std::fs::read_to_string(&html).unwrap();
    let mut shared = 0;
    for e in &report.checks {
        for n in &e.notes {
            let readers = report.checks.iter().filter(|o| o.notes.contains(n)).count();
            shared += usize::from(readers > 1);
            assert_eq!(page.matches(n.as_str()).count(), 1, "`{n}` ({readers} checks read it)");
        }
    }
    assert!(shared > 0, "the fixture has notes that several checks carry");
}

/// Runs headless Chromium with `args` under a deadline; kills it if it overstays.
fn chromium(args: &[String]) -> std::process::Output {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("chromium not found: install the Debian package `chromium` (scripts/setup.sh does)");
    let profile_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile_dir.path().display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start chromium");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        if let Ok(out) = rx.recv_timeout(Duration::from_millis(200)) {
            return out.expect("chromium output");
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("chromium {args:?} did not finish within 120 s");
        }
    }
}

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn report_html_renders_in_headless_chromium() {
    let f = fixture();
    let (_, html) = write_report(&f);
    let url = format!("file://{}", html.display());
    let out = chromium(&["--dump-dom".into(), url.clone()]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_every_check_has_its_charts(&dom, &f);
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("report.png");
    let out = chromium(&[format!("--screenshot={}", shot.display()), "--window-size=1400,3000".into(), url.clone()]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(png_size(&png), (1400, 3000));
    if let Some(keep) = std::env::var_os("HARNESS_SCREENSHOT_OUT") {
        let keep = workspace_root().join(keep);
        std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
        std::fs::copy(&shot, &keep).unwrap();
    }
    // The top of the page (what a reader sees first: the summary), kept with HARNESS_SCREENSHOT_TOP_OUT.
    let top = shots.path().join("report-top.png");
    let out = chromium(&[format!("--screenshot={}", top.display()), "--window-size=1400,1000".into(), url]);
    let png =
        std::fs::read(&top).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(png_size(&png), (1400, 1000));
    if let Some(keep) = std::env::var_os("HARNESS_SCREENSHOT_TOP_OUT") {
        let keep = workspace_root().join(keep);
        std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
        std::fs::copy(&top, &keep).unwrap();
    }
}
