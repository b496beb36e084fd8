//! [`Outcome`]: everything one `build` measurement saw, and [`Outcome::metrics`], which turns it into the
//! catalog's `build.*` metrics with notes saying how each figure was made and from how many builds. A
//! figure that cannot be made from what was seen (no dependency step found, no test ran, a concurrent
//! build failed) is a `Missing` metric with the reason, never a default.

use std::collections::BTreeMap;

use super::{
    base::BaseImages,
    build_metrics::Family,
    docker::Layer,
    figures::{self, percentile, rate, reduction},
    fixture::{TestSummary, Variant},
    session::{Kind, Measured},
};
use crate::{
    criteria::fmt_num,
    measure::types::{MeasurementSet, Metric},
};

/// The fixture's tests inside the optimized image.
#[derive(Debug, Clone, Default)]
pub enum Tests {
    /// The fixture has no `tests/`.
    #[default]
    NoTests,
    /// They ran and printed a summary.
    Ran {
        /// The summary.
        summary: TestSummary,
        /// Exit code of the test command.
        exit_code: Option<i32>,
        /// The command.
        command: String,
    },
    /// They ran but printed no summary (crashed, wrong command).
    Unreadable {
        /// Exit code.
        exit_code: Option<i32>,
        /// Last lines of output.
        tail: String,
    },
}

/// The concurrent batch.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Builds the profile asked for.
    pub asked: Option<usize>,
    /// Builds this machine allows at once.
    pub allowed: usize,
    /// Cores of the machine.
    pub cores: usize,
    /// Available memory, bytes.
    pub available: u64,
    /// Builds triggered.
    pub ran: usize,
    /// Wall times of the builds that succeeded.
    pub durations: Vec<f64>,
    /// Their spans, seconds since the session started.
    pub spans: Vec<(f64, f64)>,
    /// Seconds from the trigger to the last build's end.
    pub last_end: f64,
    /// Errors of the builds that failed.
    pub failures: Vec<String>,
    /// Failures that look like memory kills.
    pub oom: u32,
    /// Failures that look like rate limiting.
    pub rate_limited: u32,
}

/// What was pushed to the Pushgateway and read back.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Gateway URL.
    pub url: String,
    /// Whether the run started it.
    pub private: bool,
    /// Samples pushed.
    pub samples: usize,
    /// Per family, the samples missing or different when read back.
    pub differences: BTreeMap<Family, Vec<String>>,
}

/// Everything one measurement saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Engine and CLI.
    pub engine: String,
    /// Fixture directory.
    pub fixture: String,
    /// The file edited for source-only changes and the manifest edited for the dependency change.
    pub changed_files: (String, String),
    /// Base images (made or found).
    pub base: Option<BaseImages>,
    /// Leftovers of killed runs removed at the start.
    pub swept: usize,
    /// Repeats asked for.
    pub repeats: usize,
    /// Every build.
    pub builds: Vec<Measured>,
    /// Layers of the last clean image of each Dockerfile.
    pub layers: BTreeMap<Variant, Vec<Layer>>,
    /// The tests in the image.
    pub tests: Tests,
    /// The concurrent batch.
    pub batch: Batch,
    /// The metrics pushed and read back.
    pub recorded: Option<Recorded>,
    /// Raw files written.
    pub raw_files: Vec<std::path::PathBuf>,
}

fn secs(v: f64) -> String {
    format!("{}s", fmt_num(v))
}

fn mb(bytes: f64) -> String {
    format!("{}MB", fmt_num(bytes / 1e6))
}

fn missing(reason: impl Into<String>) -> Metric {
    Metric::Missing { reason: reason.into() }
}

fn median(v: &[f64]) -> Option<f64> {
    percentile(v, 50.0).map(|e| e.value)
}

fn p95_text(v: &[f64]) -> String {
    match percentile(v, 95.0) {
        None => "none".into(),
        Some(e) => {
            let ci = match (e.ci_low, e.ci_high) {
                (Some(l), Some(h)) => format!(", 95% CI {}..{}", secs(l), secs(h)),
                _ => format!(", CI unbounded at n={}", e.n),
            };
            format!("P95 {}{ci}, median {}", secs(e.value), median(v).map_or("-".into(), secs))
        }
    }
}

impl Outcome {
    /// The chart data of the AC1 build checks (`build_times.json`): the clean build times of each Dockerfile,
    /// the rebuilds after a source change, and the cache hits of every rebuild with the cache on.
    pub fn build_times(&self) -> crate::report::charts::BuildTimes {
        use crate::report::charts::{BuildTimes, CacheHits};
        BuildTimes {
            unit: "s".into(),
            baseline: self.seconds(Variant::Baseline, Kind::Clean),
            optimized: self.seconds(Variant::Optimized, Kind::Clean),
            incremental: self.seconds(Variant::Optimized, Kind::SourceChange),
            cache: self
                .builds
                .iter()
                .filter(|b| matches!(b.kind, Kind::Unchanged | Kind::SourceChange | Kind::DependencyChange))
                .map(|b| CacheHits { build: b.label.clone(), hits: b.cache_hits, lookups: b.cache_requests })
                .collect(),
        }
    }

    fn of(&self, v: Variant, k: Kind) -> Vec<&Measured> {
        self.builds.iter().filter(|b| b.variant == v && b.kind == k).collect()
    }

    fn seconds(&self, v: Variant, k: Kind) -> Vec<f64> {
        self.of(v, k).iter().map(|b| b.seconds).collect()
    }

    /// The catalog's `build.*` metrics, with notes, added to `set`.
    pub fn metrics(&self, mut set: MeasurementSet) -> MeasurementSet {
        use Kind::*;
        use Variant::*;
        let mut notes = vec![format!("{}; fixture {}", self.engine, self.fixture)];
        if let Some(b) = &self.base {
            let sizes: Vec<String> = b.sizes.iter().map(|(i, s)| format!("{i} {}", mb(*s as f64))).collect();
            notes.push(if b.made {
                format!(
                    "base images made locally in {} (debootstrap + docker import + python images): {}",
                    secs(b.seconds),
                    sizes.join(", ")
                )
            } else {
                format!("base images found locally: {}", sizes.join(", "))
            });
        }
        let (base_clean, opt_clean) = (self.seconds(Baseline, Clean), self.seconds(Optimized, Clean));
        let n_clean = (base_clean.len() + opt_clean.len()) as u64;
        notes.push(format!(
            "clean builds (--no-cache, alternating order): baseline n={} {}; optimized n={} {}",
            base_clean.len(),
            p95_text(&base_clean),
            opt_clean.len(),
            p95_text(&opt_clean)
        ));
        let p95 = |v: &[f64]| percentile(v, 95.0).map(|e| e.value);
        set = set.with("clean_duration", Metric::samples(opt_clean.clone(), "s"));
        set = set.with("baseline_clean_duration", Metric::samples(base_clean.clone(), "s"));
        set = set.with(
            "time_reduction",
            match p95(&base_clean).zip(p95(&opt_clean)).and_then(|(b, o)| reduction(b, o)) {
                Some(r) => Metric::value(r, "%", n_clean),
                None => missing("no clean build of one of the Dockerfiles"),
            },
        );

        let source = self.seconds(Optimized, SourceChange);
        notes.push(format!(
            "optimized after a source-only change ({} edited, cache on): n={} {}",
            self.changed_files.0,
            source.len(),
            p95_text(&source)
        ));
        set = set.with("duration", Metric::samples(source.clone(), "s"));
        set = set.with(
            "incremental_reduction",
            match median(&opt_clean).zip(median(&source)).and_then(|(c, s)| reduction(c, s)) {
                Some(r) => Metric::value(r, "%", (opt_clean.len() + source.len()) as u64),
                None => missing("no clean or no source-change build of the optimized Dockerfile"),
            },
        );
        let sum = |bs: &[&Measured], f: fn(&Measured) -> (u32, u32)| {
            bs.iter().map(|b| f(b)).fold((0, 0), |a, x| (a.0 + x.0, a.1 + x.1))
        };
        let src_builds = self.of(Optimized, SourceChange);
        let (dh, dt) = sum(&src_builds, |b| (b.dependency_hits, b.dependency_steps));
        set = set.with(
            "dependency_cache_hit_rate",
            rate(dh, dt).map_or_else(
                || missing("no dependency step (package install or manifest COPY) found in the optimized build"),
                |r| Metric::value(r, "%", u64::from(dt)),
            ),
        );
        notes.push(format!(
            "dependency steps served from cache after source-only changes: {dh}/{dt} over {} builds",
            src_builds.len()
        ));
        if let Some(b) = self.of(Baseline, SourceChange).first() {
            notes.push(format!(
                "baseline after the same kind of change: {} ({} of {} dependency steps cached: its COPY . . comes before the install)",
                secs(b.seconds),
                b.dependency_hits,
                b.dependency_steps
            ));
        }
        let (lh, lt) = sum(&src_builds, |b| (b.cache_hits, b.cache_requests));
        set = set.with(
            "layer_cache_hit_rate",
            rate(lh, lt).map_or_else(
                || missing("no cacheable step in the source-change builds"),
                |r| Metric::value(r, "%", u64::from(lt)),
            ),
        );
        let unchanged = self.of(Optimized, Unchanged);
        let (uh, ut) = sum(&unchanged, |b| (b.cache_hits, b.cache_requests));
        set = set.with(
            "cache_hit_rate",
            rate(uh, ut).map_or_else(
                || missing("no unchanged rebuild with cacheable steps"),
                |r| Metric::value(r, "%", u64::from(ut)),
            ),
        );
        notes.push(format!(
            "unchanged rebuild: {uh}/{ut} steps from cache; source-change builds: {lh}/{lt} steps from cache"
        ));
        for b in self.of(Optimized, DependencyChange) {
            notes.push(format!(
                "optimized after a dependency change ({} edited, cache on): {}, {} of {} dependency steps cached",
                self.changed_files.1,
                secs(b.seconds),
                b.dependency_hits,
                b.dependency_steps
            ));
        }
        set = set.with("dependency_change_duration", Metric::samples(self.seconds(Optimized, DependencyChange), "s"));

        set = self.sizes(set, &mut notes);
        set = self.quality(set, &mut notes);
        set = self.concurrency(set, &mut notes);
        set = self.recorded(set, &mut notes);
        set = set.with(
            "peak_memory",
            missing(
                "not measured on the local engine: RUN steps of every build on the engine share its cgroups, so one \
                 build's memory cannot be told apart (measured per Kaniko pod on the knative target)",
            ),
        );
        set.notes.extend(notes);
        set
    }

    fn sizes(&self, set: MeasurementSet, notes: &mut Vec<String>) -> MeasurementSet {
        let sizes = |v| self.of(v, Kind::Clean).iter().map(|b| b.image_size as f64).collect::<Vec<f64>>();
        let (b, o) = (sizes(Variant::Baseline), sizes(Variant::Optimized));
        let metric = match median(&b).zip(median(&o)) {
            Some((mb_, mo)) => {
                notes.push(format!(
                    "image size (median of the clean builds): baseline {} (n={}), optimized {} (n={})",
                    mb(mb_),
                    b.len(),
                    mb(mo),
                    o.len()
                ));
                reduction(mb_, mo).map_or_else(
                    || missing("baseline image size is 0"),
                    |r| Metric::value(r, "%", (b.len() + o.len()) as u64),
                )
            }
            None => missing("no clean image of one of the Dockerfiles"),
        };
        for (v, ls) in &self.layers {
            let shown: Vec<String> = ls.iter().map(|l| mb(l.size as f64)).collect();
            notes.push(format!("{} layers, base first: {}", v.name(), shown.join(" + ")));
        }
        set.with("image_size_reduction", metric)
    }

    fn quality(&self, set: MeasurementSet, notes: &mut Vec<String>) -> MeasurementSet {
        let metric = match &self.tests {
            Tests::NoTests => missing("the fixture has no tests/ directory: nothing shows the build kept its quality"),
            Tests::Unreadable { exit_code, tail } => {
                missing(format!("the tests printed no unittest or pytest summary (exit {exit_code:?}): {tail}"))
            }
            Tests::Ran { summary, exit_code, command } => {
                notes.push(format!(
                    "fixture tests inside the optimized image (`{command}`): ran {}, failed {}, errors {}, skipped {}, exit {exit_code:?}",
                    summary.ran, summary.failures, summary.errors, summary.skipped
                ));
                if summary.ran == 0 {
                    missing("the fixture's test command ran no test")
                } else if summary.failed() == 0 && *exit_code != Some(0) {
                    missing(format!("the summary shows no failure but the test command exited {exit_code:?}"))
                } else {
                    Metric::value(f64::from(summary.failed()), "", u64::from(summary.ran))
                }
            }
        };
        set.with("quality_failures", metric)
    }

    fn concurrency(&self, mut set: MeasurementSet, notes: &mut Vec<String>) -> MeasurementSet {
        let b = &self.batch;
        let n = b.ran as u64;
        let peak = figures::peak_overlap(&b.spans);
        let asked = b.asked.map_or("the machine's bound".into(), |a| a.to_string());
        notes.push(format!(
            "concurrent batch: {} source-change builds triggered at once (asked {asked}; this machine, {} cores and {} available, allows {}): {} succeeded, peak {peak} in flight, last done {} after the trigger",
            b.ran,
            b.cores,
            mb(b.available as f64),
            b.allowed,
            b.durations.len(),
            secs(b.last_end)
        ));
        set = set.with("oom_killed", Metric::value(f64::from(b.oom), "", n));
        set = set.with("rate_limited", Metric::value(f64::from(b.rate_limited), "", n));
        if b.ran == 0 {
            for m in ["concurrent_p95", "concurrent_peak", "concurrent_batch_duration", "concurrent_throughput"] {
                set = set.with(m, missing("no concurrent build was triggered"));
            }
            return set;
        }
        set = set.with("concurrent_peak", Metric::value(peak as f64, "", n));
        if !b.failures.is_empty() {
            let why = format!("{} of {} concurrent builds failed: {}", b.failures.len(), b.ran, b.failures.join(" | "));
            for m in ["concurrent_p95", "concurrent_batch_duration", "concurrent_throughput"] {
                set = set.with(m, missing(why.clone()));
            }
            return set;
        }
        let p95 = percentile(&b.durations, 95.0).map(|e| e.value).unwrap_or(f64::NAN);
        notes.push(format!(
            "concurrent builds: {} ; throughput {} builds/s",
            p95_text(&b.durations),
            fmt_num(b.ran as f64 / b.last_end)
        ));
        set = set.with("concurrent_p95", Metric::value(p95, "s", n));
        set = set.with("concurrent_batch_duration", Metric::value(b.last_end, "s", n));
        set.with(
            "concurrent_throughput",
            if b.last_end > 0.0 {
                Metric::value(b.ran as f64 / b.last_end, "/s", n)
            } else {
                missing("the batch took no time")
            },
        )
    }

    fn recorded(&self, set: MeasurementSet, notes: &mut Vec<String>) -> MeasurementSet {
        let Some(r) = &self.recorded else {
            return set.with("metrics_missing", missing("nothing was pushed to a Pushgateway"));
        };
        let kind = if r.private {
            "a private Pushgateway (Debian prometheus-pushgateway) started for the run"
        } else {
            "the Pushgateway"
        };
        notes.push(format!(
            "{} build records ({} samples) pushed to {kind} at {} and read back from its /metrics: {}",
            self.builds.len(),
            r.samples,
            r.url,
            if r.differences.is_empty() {
                "every sample equal".to_string()
            } else {
                format!("{} families differ", r.differences.len())
            }
        ));
        for (f, d) in &r.differences {
            let shown: Vec<&String> = d.iter().take(5).collect();
            notes.push(format!("{}: {} samples missing or different, e.g. {shown:?}", f.name(), d.len()));
        }
        let missing_families = Family::ALL.iter().filter(|f| r.differences.contains_key(f)).count();
        set.with("metrics_missing", Metric::value(missing_families as f64, "", Family::ALL.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_build::progress::Step;

    fn build(v: Variant, k: Kind, seconds: f64, cache: (u32, u32), deps: (u32, u32), size: u64) -> Measured {
        Measured {
            label: format!("{}-{}", v.name(), k.name()),
            variant: v,
            kind: k,
            seconds,
            span: (0.0, seconds),
            cache_hits: cache.0,
            cache_requests: cache.1,
            dependency_hits: deps.0,
            dependency_steps: deps.1,
            image_size: size,
            tag: "t".into(),
            steps: Vec::<Step>::new(),
        }
    }

    fn outcome() -> Outcome {
        use Kind::*;
        use Variant::*;
        let mut builds = Vec::new();
        for s in [10.0, 12.0, 11.0] {
            builds.push(build(Baseline, Clean, s, (0, 3), (0, 1), 532_000_000));
        }
        for s in [4.0, 5.0, 4.5] {
            builds.push(build(Optimized, Clean, s, (0, 5), (0, 2), 124_000_000));
        }
        builds.push(build(Optimized, Unchanged, 0.5, (5, 5), (2, 2), 124_000_000));
        for s in [1.0, 1.2, 1.1] {
            builds.push(build(Optimized, SourceChange, s, (4, 5), (2, 2), 124_000_000));
        }
        Outcome {
            builds,
            tests: Tests::Ran {
                summary: TestSummary { ran: 7, ..Default::default() },
                exit_code: Some(0),
                command: "python -m unittest".into(),
            },
            batch: Batch {
                ran: 2,
                allowed: 8,
                cores: 2,
                durations: vec![2.0, 3.0],
                spans: vec![(0.0, 2.0), (0.1, 3.0)],
                last_end: 3.1,
                ..Batch::default()
            },
            recorded: Some(Recorded {
                url: "http://127.0.0.1:1".into(),
                private: true,
                samples: 10,
                differences: BTreeMap::new(),
            }),
            ..Outcome::default()
        }
    }

    fn value(set: &MeasurementSet, m: &str) -> (f64, u64) {
        match &set.metrics[m] {
            Metric::Value { value, n, .. } => (*value, *n),
            other => panic!("{m}: {other:?}"),
        }
    }

    #[test]
    fn figures_come_from_the_builds_with_their_counts() {
        let set = outcome().metrics(MeasurementSet::new("build", "local", &Default::default()));
        let (r, n) = value(&set, "time_reduction");
        assert!((r - (12.0 - 5.0) / 12.0 * 100.0).abs() < 1e-9 && n == 6, "P95 vs P95: {r}");
        let (r, _) = value(&set, "incremental_reduction");
        assert!((r - (4.5 - 1.1) / 4.5 * 100.0).abs() < 1e-9, "median vs median: {r}");
        assert_eq!(value(&set, "dependency_cache_hit_rate"), (100.0, 6));
        assert_eq!(value(&set, "layer_cache_hit_rate"), (80.0, 15));
        assert_eq!(value(&set, "cache_hit_rate"), (100.0, 5));
        assert_eq!(value(&set, "quality_failures"), (0.0, 7));
        assert_eq!(value(&set, "metrics_missing"), (0.0, 3));
        assert_eq!(value(&set, "concurrent_peak"), (2.0, 2));
        assert!((value(&set, "image_size_reduction").0 - (532.0 - 124.0) / 532.0 * 100.0).abs() < 1e-9);
        assert!(matches!(set.metrics["peak_memory"], Metric::Missing { .. }));
        for d in crate::criteria::catalog::CATALOG.iter().filter(|d| d.procedure == "build") {
            assert!(set.metrics.contains_key(d.metric), "catalog metric build.{} not produced", d.metric);
        }
        assert_eq!(
            set.metrics.len(),
            crate::criteria::catalog::CATALOG.iter().filter(|d| d.procedure == "build").count()
        );
    }

    #[test]
    fn nothing_to_measure_is_missing_not_perfect() {
        let mut o = outcome();
        for b in &mut o.builds {
            (b.dependency_hits, b.dependency_steps) = (0, 0);
        }
        o.tests = Tests::Ran { summary: TestSummary::default(), exit_code: Some(0), command: "x".into() };
        o.recorded = None;
        let set = o.metrics(MeasurementSet::new("build", "local", &Default::default()));
        for m in ["dependency_cache_hit_rate", "quality_failures", "metrics_missing"] {
            assert!(matches!(set.metrics[m], Metric::Missing { .. }), "{m}: {:?}", set.metrics[m]);
        }
    }

    #[test]
    fn failed_tests_and_lost_metrics_are_counted() {
        let mut o = outcome();
        o.tests = Tests::Ran {
            summary: TestSummary { ran: 7, failures: 1, errors: 1, skipped: 0 },
            exit_code: Some(1),
            command: "x".into(),
        };
        o.recorded
            .as_mut()
            .unwrap()
            .differences
            .insert(Family::CacheHits, vec!["build_cache_hits_total{}: missing".into()]);
        let set = o.metrics(MeasurementSet::new("build", "local", &Default::default()));
        assert_eq!(value(&set, "quality_failures"), (2.0, 7));
        assert_eq!(value(&set, "metrics_missing"), (1.0, 3));
        assert!(set.notes.iter().any(|n| n.contains("build_cache_hits_total")));
    }

    #[test]
    fn a_failed_concurrent_build_leaves_no_batch_figure() {
        let mut o = outcome();
        o.batch.failures.push("building x failed: exit code: 137".into());
        o.batch.oom = 1;
        let set = o.metrics(MeasurementSet::new("build", "local", &Default::default()));
        assert!(
            matches!(&set.metrics["concurrent_p95"], Metric::Missing { reason } if reason.contains("exit code: 137"))
        );
        assert_eq!(value(&set, "oom_killed"), (1.0, 2));
    }
}
