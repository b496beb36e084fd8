//! [`BuildMetrics`]: the builds of one run as Prometheus metrics, in the shape the seeds' PromQL reads
//! (`build_duration_seconds` histogram, `build_cache_hits_total` / `build_cache_requests_total` with
//! `kaniko_`-named twins, `image_size_bytes` histogram, `image_layer_size_bytes` per layer), as metric
//! families for a Pushgateway, and [`BuildMetrics::compare`], which reads them back from a scrape and
//! says which families are missing or differ. The text format is [`crate::metrics::exposition`]'s.

use std::collections::BTreeMap;

use crate::metrics::{
    self,
    exposition::{self, Kind, Labels, Sample},
};

/// Upper bounds of the build duration buckets, in seconds.
pub const DURATION_BUCKETS: &[f64] =
    &[1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0];
/// Upper bounds of the image size buckets, in bytes.
pub const SIZE_BUCKETS: &[f64] = &[10e6, 50e6, 100e6, 150e6, 200e6, 300e6, 400e6, 500e6, 800e6, 1e9, 2e9];

/// One build, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildRecord {
    /// `baseline` or `optimized`.
    pub dockerfile: String,
    /// `clean`, `unchanged`, `source_change`, `dependency_change`, `concurrent`.
    pub kind: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Steps served from the build cache.
    pub cache_hits: u32,
    /// Steps looked up in the build cache.
    pub cache_requests: u32,
    /// Image size in bytes.
    pub image_size: u64,
}

/// The metric families a run must find again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// `build_duration_seconds`.
    Duration,
    /// `build_cache_hits_total`, `build_cache_requests_total` (and the kaniko twins).
    CacheHits,
    /// `image_size_bytes`, `image_layer_size_bytes`.
    LayerSizes,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 3] = [Family::Duration, Family::CacheHits, Family::LayerSizes];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Duration => "build duration (build_duration_seconds)",
            Family::CacheHits => "cache hits (build_cache_hits_total / build_cache_requests_total)",
            Family::LayerSizes => "layer sizes (image_size_bytes, image_layer_size_bytes)",
        }
    }

    fn of(metric: &str) -> Family {
        if metric.starts_with("build_duration_seconds") {
            Family::Duration
        } else if metric.contains("_cache_") {
            Family::CacheHits
        } else {
            Family::LayerSizes
        }
    }
}

/// A sample: metric name and labels (bucket bounds written as [`Sample::series`] writes them).
pub type Key = (String, Labels);

/// The metrics of one run, ready to push and to compare.
#[derive(Debug, Clone, Default)]
pub struct BuildMetrics {
    samples: BTreeMap<Key, f64>,
    types: BTreeMap<String, Kind>,
}

impl BuildMetrics {
    /// The metrics of `builds` and of the layers of each final image in `layers` (`dockerfile` ->
    /// (instruction keyword, size) bottom first).
    pub fn new(builder: &str, builds: &[BuildRecord], layers: &BTreeMap<String, Vec<(String, u64)>>) -> BuildMetrics {
        let mut m = BuildMetrics::default();
        let mut groups: BTreeMap<(String, String), Vec<&BuildRecord>> = BTreeMap::new();
        for b in builds {
            groups.entry((b.dockerfile.clone(), b.kind.clone())).or_default().push(b);
        }
        for ((dockerfile, kind), bs) in &groups {
            let labels = [("builder", builder), ("dockerfile", dockerfile.as_str()), ("kind", kind.as_str())];
            let secs: Vec<f64> = bs.iter().map(|b| b.seconds).collect();
            m.histogram("build_duration_seconds", &labels, DURATION_BUCKETS, &secs);
            let sizes: Vec<f64> = bs.iter().map(|b| b.image_size as f64).collect();
            m.histogram("image_size_bytes", &labels, SIZE_BUCKETS, &sizes);
            let hits: u32 = bs.iter().map(|b| b.cache_hits).sum();
            let reqs: u32 = bs.iter().map(|b| b.cache_requests).sum();
            for prefix in ["build", "kaniko"] {
                m.counter(&format!("{prefix}_cache_hits_total"), &labels, f64::from(hits));
                m.counter(&format!("{prefix}_cache_requests_total"), &labels, f64::from(reqs));
            }
            m.counter("build_cache_misses_total", &labels, f64::from(reqs - hits.min(reqs)));
        }
        // Every build of the run has ended when its metrics are recorded: none is in progress (the build
        // procedure pushed the count while its concurrent batch ran).
        m.types.insert("builds_in_progress".into(), Kind::Gauge);
        m.samples.insert(key("builds_in_progress", &[("builder", builder)]), 0.0);
        for (dockerfile, ls) in layers {
            for (i, (instruction, size)) in ls.iter().enumerate() {
                let idx = i.to_string();
                let labels = [
                    ("builder", builder),
                    ("dockerfile", dockerfile.as_str()),
                    ("layer", idx.as_str()),
                    ("instruction", instruction.as_str()),
                ];
                m.types.insert("image_layer_size_bytes".into(), Kind::Gauge);
                m.samples.insert(key("image_layer_size_bytes", &labels), *size as f64);
            }
        }
        m
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], bounds: &[f64], values: &[f64]) {
        self.types.insert(name.into(), Kind::Histogram);
        for le in bounds.iter().copied().chain([f64::INFINITY]) {
            let b = exposition::fmt_value(le);
            let mut l = labels.to_vec();
            l.push(("le", &b));
            self.samples.insert(key(&format!("{name}_bucket"), &l), values.iter().filter(|v| **v <= le).count() as f64);
        }
        self.samples.insert(key(&format!("{name}_sum"), labels), values.iter().sum());
        self.samples.insert(key(&format!("{name}_count"), labels), values.len() as f64);
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.types.insert(name.into(), Kind::Counter);
        self.samples.insert(key(name, labels), v);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The metric families, each sample under its family.
    pub fn families(&self) -> Vec<exposition::Family> {
        let mut out: BTreeMap<String, exposition::Family> = BTreeMap::new();
        for ((name, labels), v) in &self.samples {
            let family = family_of(name, &self.types);
            let kind = self.types.get(&family).copied().unwrap_or(Kind::Untyped);
            out.entry(family.clone())
                .or_insert_with(|| exposition::Family::new(family, kind, None))
                .samples
                .push(Sample::new(name.clone(), labels.clone(), *v));
        }
        out.into_values().collect()
    }

    /// Prometheus text format.
    pub fn encode(&self) -> String {
        exposition::encode(&self.families())
    }

    /// Compares with a scrape (named `source` in errors): every sample pushed must be there with `extra`
    /// labels (the grouping key the gateway adds) and the same value. Returns the differences per family
    /// that has any; a scrape that is not text exposition is an error.
    pub fn compare(
        &self,
        scrape: &str,
        source: &str,
        extra: &[(&str, &str)],
    ) -> Result<BTreeMap<Family, Vec<String>>, metrics::Error> {
        let got: BTreeMap<Key, f64> =
            exposition::parse(scrape, source)?.iter().flat_map(|f| &f.samples).map(|s| (s.series(), s.value)).collect();
        let mut out: BTreeMap<Family, Vec<String>> = BTreeMap::new();
        for ((name, labels), want) in &self.samples {
            let mut l = labels.clone();
            l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let problem = match got.get(&(name.clone(), l)) {
                None => Some("missing".to_string()),
                Some(v) if (v - want).abs() > 1e-9 * want.abs().max(1.0) => Some(format!("{v} instead of {want}")),
                Some(_) => None,
            };
            if let Some(p) = problem {
                let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                out.entry(Family::of(name)).or_default().push(format!("{name}{{{}}}: {p}", shown.join(",")));
            }
        }
        Ok(out)
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Sample::new(name, labels, 0.0).series()
}

fn family_of(name: &str, types: &BTreeMap<String, Kind>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base) == Some(&Kind::Histogram) {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<BuildRecord> {
        let r = |d: &str, k: &str, s: f64, h: u32, q: u32| BuildRecord {
            dockerfile: d.into(),
            kind: k.into(),
            seconds: s,
            cache_hits: h,
            cache_requests: q,
            image_size: 123_029_625,
        };
        vec![
            r("optimized", "clean", 4.2, 0, 5),
            r("optimized", "clean", 3.1, 0, 5),
            r("optimized", "source_change", 1.4, 4, 5),
            r("baseline", "clean", 12.5, 0, 3),
        ]
    }

    fn layers() -> BTreeMap<String, Vec<(String, u64)>> {
        [("optimized".to_string(), vec![("import".to_string(), 74_833_261), ("COPY".to_string(), 2_500_000)])].into()
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let m = BuildMetrics::new("buildkit", &records(), &layers());
        let text = m.encode();
        let got: BTreeMap<Key, f64> = exposition::parse(&text, "pushed")
            .unwrap()
            .iter()
            .flat_map(|f| &f.samples)
            .map(|s| (s.series(), s.value))
            .collect();
        let l = |le: &str| {
            key(
                "build_duration_seconds_bucket",
                &[("builder", "buildkit"), ("dockerfile", "optimized"), ("kind", "clean"), ("le", le)],
            )
        };
        assert_eq!(got[&l("2")], 0.0);
        assert_eq!(got[&l("5")], 2.0);
        assert_eq!(got[&l("+Inf")], 2.0);
        let sum = key(
            "build_duration_seconds_sum",
            &[("builder", "buildkit"), ("dockerfile", "optimized"), ("kind", "clean")],
        );
        assert!((got[&sum] - 7.3).abs() < 1e-12);
        assert!(text.contains("# TYPE build_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE kaniko_cache_hits_total counter\n"));
        let hits = key(
            "build_cache_hits_total",
            &[("builder", "buildkit"), ("dockerfile", "optimized"), ("kind", "source_change")],
        );
        assert_eq!(got[&hits], 4.0);
        assert_eq!(got.len(), m.len());
    }

    #[test]
    fn a_faithful_scrape_has_no_differences_and_a_lossy_one_names_the_family() {
        let m = BuildMetrics::new("buildkit", &records(), &layers());
        let extra = [("job", "perf_acceptance_build"), ("instance", "run-1")];
        let scrape: String = m
            .encode()
            .lines()
            .map(|l| {
                if l.starts_with('#') {
                    format!("{l}\n")
                } else {
                    format!("{}\n", l.replacen('{', "{instance=\"run-1\",job=\"perf_acceptance_build\",", 1))
                }
            })
            .collect();
        let compare = |text: &str| m.compare(text, "scrape", &extra).unwrap();
        assert!(compare(&scrape).is_empty(), "{:?}", compare(&scrape));
        // The Go Pushgateway writes large bucket bounds with an exponent: still the same series.
        assert!(scrape.contains("le=\"10000000\""));
        assert!(compare(&scrape.replace("le=\"10000000\"", "le=\"1e+07\"")).is_empty());
        let lossy: String =
            scrape.lines().filter(|l| !l.starts_with("image_layer_size_bytes")).map(|l| format!("{l}\n")).collect();
        let diff = compare(&lossy);
        assert_eq!(diff.keys().copied().collect::<Vec<_>>(), vec![Family::LayerSizes]);
        let sample = "build_cache_hits_total{instance=\"run-1\",job=\"perf_acceptance_build\",builder=\"buildkit\",\
                      dockerfile=\"optimized\",kind=\"source_change\"}";
        let changed = scrape.replace(&format!("{sample} 4"), &format!("{sample} 3"));
        let diff = compare(&changed);
        assert!(diff[&Family::CacheHits][0].contains("3 instead of 4"), "{diff:?}");
        assert_eq!(compare("").len(), 3);
        let e = m.compare("up{ 1\n", "http://gw/metrics", &extra).unwrap_err().to_string();
        assert!(e.starts_with("http://gw/metrics:1:"), "{e}");
    }
}
