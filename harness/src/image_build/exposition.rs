//! [`BuildMetrics`]: the builds of one run as Prometheus metrics, in the shape the seeds' PromQL reads
//! (`build_duration_seconds` histogram, `build_cache_hits_total` / `build_cache_requests_total` with
//! `kaniko_`-named twins, `image_size_bytes` histogram, `image_layer_size_bytes` per layer), encoded in the
//! text format for a Pushgateway, and [`BuildMetrics::compare`], which reads them back from a scrape and
//! says which families are missing or differ.

use std::collections::BTreeMap;

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

/// A sample: metric name and sorted labels.
pub type Key = (String, Vec<(String, String)>);

/// The metrics of one run, ready to push and to compare.
#[derive(Debug, Clone, Default)]
pub struct BuildMetrics {
    samples: BTreeMap<Key, f64>,
    types: BTreeMap<String, &'static str>,
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
        m.types.insert("builds_in_progress".into(), "gauge");
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
                m.types.insert("image_layer_size_bytes".into(), "gauge");
                m.samples.insert(key("image_layer_size_bytes", &labels), *size as f64);
            }
        }
        m
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], bounds: &[f64], values: &[f64]) {
        self.types.insert(name.into(), "histogram");
        for b in bounds.iter().map(|b| fmt(*b)).chain(["+Inf".to_string()]) {
            let le: f64 = if b == "+Inf" { f64::INFINITY } else { b.parse().unwrap_or(f64::INFINITY) };
            let mut l = labels.to_vec();
            l.push(("le", &b));
            self.samples.insert(key(&format!("{name}_bucket"), &l), values.iter().filter(|v| **v <= le).count() as f64);
        }
        self.samples.insert(key(&format!("{name}_sum"), labels), values.iter().sum());
        self.samples.insert(key(&format!("{name}_count"), labels), values.len() as f64);
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.types.insert(name.into(), "counter");
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

    /// Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut last_family = String::new();
        for ((name, labels), v) in &self.samples {
            let family = family_of(name, &self.types);
            if family != last_family {
                out.push_str(&format!("# TYPE {family} {}\n", self.types.get(&family).copied().unwrap_or("untyped")));
                last_family = family;
            }
            let ls: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            out.push_str(&format!("{name}{{{}}} {}\n", ls.join(","), fmt(*v)));
        }
        out
    }

    /// Compares with a scrape: every sample pushed must be there with `extra` labels (the grouping
    /// key the gateway adds) and the same value. Returns the differences per family that has any.
    pub fn compare(&self, scrape: &str, extra: &[(&str, &str)]) -> BTreeMap<Family, Vec<String>> {
        let got = parse(scrape);
        let mut out: BTreeMap<Family, Vec<String>> = BTreeMap::new();
        for ((name, labels), want) in &self.samples {
            let mut l: Vec<(String, String)> = labels.clone();
            l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            l.sort();
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
        out
    }
}

/// A bucket bound written the one way this module writes it (`1e+07` and `10000000` are one bound).
fn canonical_le(v: &str) -> String {
    match v {
        "+Inf" | "Inf" | "inf" => "+Inf".into(),
        s => s.parse::<f64>().map(fmt).unwrap_or_else(|_| s.to_string()),
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut l: Vec<(String, String)> =
        labels.iter().map(|(k, v)| (k.to_string(), if *k == "le" { canonical_le(v) } else { v.to_string() })).collect();
    l.sort();
    (name.to_string(), l)
}

fn family_of(name: &str, types: &BTreeMap<String, &'static str>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base) == Some(&"histogram") {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

fn fmt(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Parses Prometheus text format into samples (comments and malformed lines are skipped).
pub fn parse(text: &str) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some((k, v)) = sample(line) {
            out.insert(k, v);
        }
    }
    out
}

fn sample(line: &str) -> Option<(Key, f64)> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => line.split_once(' ')?,
    };
    let (labels, value_part) = if let Some(body) = rest.strip_prefix('{') {
        let (labels, after) = split_labels(body)?;
        (labels, after)
    } else {
        (Vec::new(), rest)
    };
    let value = value_part.split_whitespace().next()?;
    let v = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().ok()?,
    };
    let mut labels: Vec<(String, String)> =
        labels.into_iter().map(|(k, v)| if k == "le" { (k, canonical_le(&v)) } else { (k, v) }).collect();
    labels.sort();
    Some(((name.trim().to_string(), labels), v))
}

/// `k="v",k2="v2"} rest` -> labels and `rest`.
fn split_labels(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = s.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let body = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.push((name, value));
        rest = body[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
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
        let got = parse(&text);
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
        assert!(m.compare(&scrape, &extra).is_empty(), "{:?}", m.compare(&scrape, &extra));
        let lossy: String =
            scrape.lines().filter(|l| !l.starts_with("image_layer_size_bytes")).map(|l| format!("{l}\n")).collect();
        let diff = m.compare(&lossy, &extra);
        assert_eq!(diff.keys().copied().collect::<Vec<_>>(), vec![Family::LayerSizes]);
        let sample = "build_cache_hits_total{instance=\"run-1\",job=\"perf_acceptance_build\",builder=\"buildkit\",\
                      dockerfile=\"optimized\",kind=\"source_change\"}";
        let changed = scrape.replace(&format!("{sample} 4"), &format!("{sample} 3"));
        let diff = m.compare(&changed, &extra);
        assert!(diff[&Family::CacheHits][0].contains("3 instead of 4"), "{diff:?}");
        assert_eq!(m.compare("", &extra).len(), 3);
    }

    #[test]
    fn text_format_parsing_handles_escapes_and_bare_names() {
        let got = parse("# HELP x y\nup 1\nm{a=\"q\\\"uote\",b=\"x,y\"} 2.5 1700000000\n");
        assert_eq!(got[&("up".to_string(), vec![])], 1.0);
        assert_eq!(got[&key("m", &[("a", "q\"uote"), ("b", "x,y")])], 2.5);
        let go = parse("h_bucket{le=\"1e+07\"} 3\nh_bucket{le=\"+Inf\"} 4\n");
        assert_eq!(go[&key("h_bucket", &[("le", "10000000")])], 3.0, "Go's exponent form is the same bound");
        assert_eq!(go[&key("h_bucket", &[("le", "+Inf")])], 4.0);
    }
}
