//! Prometheus text exposition (format 0.0.4): [`parse`] into [`Family`]s of [`Sample`]s, histograms
//! assembled into [`Histogram`]s with their buckets, and [`encode`] back to text (for pushing to a
//! Pushgateway and for exporters the tests serve).
//!
//! The parser is strict where a wrong answer would otherwise pass silently (a second TYPE line, a TYPE
//! line after the family's samples, a bad value) and says where: source, line and what is wrong.

use std::collections::BTreeMap;

use super::Error;

/// Labels of a sample, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// The declared type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// Summary (quantiles, `_sum`, `_count`).
    Summary,
    /// No TYPE line, or `untyped`.
    Untyped,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" | "unknown" => Kind::Untyped,
            _ => return None,
        })
    }

    /// The name used in TYPE lines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name (for histograms `x_bucket`, `x_sum`, `x_count`).
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Value.
    pub value: f64,
    /// Timestamp in milliseconds, if given.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// A sample without timestamp.
    pub fn new(name: impl Into<String>, labels: Labels, value: f64) -> Sample {
        Sample { name: name.into(), labels, value, timestamp_ms: None }
    }

    /// Name and labels identifying the series, with a bucket bound `le` written one way (`1e+07` and
    /// `10000000` are one bound, as are `Inf` and `+Inf`): two texts of the same series compare equal.
    pub fn series(&self) -> (String, Labels) {
        let mut labels = self.labels.clone();
        if let Some(le) = labels.get_mut("le") {
            if let Some(v) = parse_value(le) {
                *le = fmt_value(v);
            }
        }
        (self.name.clone(), labels)
    }
}

/// A metric family: its name, type, help and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Family name (without `_bucket` etc.).
    pub name: String,
    /// Declared type.
    pub kind: Kind,
    /// HELP text, unescaped.
    pub help: Option<String>,
    /// Samples in the order they appeared.
    pub samples: Vec<Sample>,
}

/// One histogram series assembled from its `_bucket`, `_sum` and `_count` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Labels other than `le`.
    pub labels: Labels,
    /// `(upper bound, cumulative count)` sorted by bound; the last bound is `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    /// `_sum`.
    pub sum: f64,
    /// `_count`.
    pub count: f64,
}

/// Buckets, `_sum` and `_count` of one histogram series while it is assembled.
type HistogramParts = (Vec<(f64, f64)>, Option<f64>, Option<f64>);

impl Family {
    /// An empty family.
    pub fn new(name: impl Into<String>, kind: Kind, help: Option<String>) -> Family {
        Family { name: name.into(), kind, help, samples: Vec::new() }
    }

    /// The histogram series of a histogram family, validated: buckets cumulative, a `+Inf` bucket equal to
    /// `_count`, a `_sum` present.
    pub fn histograms(&self) -> Result<Vec<Histogram>, Error> {
        if self.kind != Kind::Histogram {
            return Err(Error::Histogram {
                name: self.name.clone(),
                detail: format!("is a {}, not a histogram", self.kind.name()),
            });
        }
        let mut by: BTreeMap<Labels, HistogramParts> = BTreeMap::new();
        for s in &self.samples {
            let mut labels = s.labels.clone();
            let le = labels.remove("le");
            let e = by.entry(labels).or_default();
            match s.name.strip_prefix(&self.name) {
                Some("_bucket") => {
                    let le = le.ok_or_else(|| self.hist_err(&s.labels, "a _bucket sample without `le`".into()))?;
                    let bound = parse_value(&le)
                        .ok_or_else(|| self.hist_err(&s.labels, format!("le=\"{le}\" is not a number")))?;
                    e.0.push((bound, s.value));
                }
                Some("_sum") => e.1 = Some(s.value),
                Some("_count") => e.2 = Some(s.value),
                _ => return Err(self.hist_err(&s.labels, format!("unexpected sample {}", s.name))),
            }
        }
        let mut out = Vec::new();
        for (labels, (mut buckets, sum, count)) in by {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let err = |d: &str| self.hist_err(&labels, d.into());
            if buckets.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(err("two buckets with the same `le`"));
            }
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(err("bucket counts are not cumulative (a larger `le` has a smaller count)"));
            }
            let Some(&(last, inf_count)) = buckets.last().filter(|b| b.0 == f64::INFINITY) else {
                return Err(err("no le=\"+Inf\" bucket"));
            };
            debug_assert!(last.is_infinite());
            let count = count.ok_or_else(|| err("no _count sample"))?;
            let sum = sum.ok_or_else(|| err("no _sum sample"))?;
            if count != inf_count {
                return Err(err(&format!("_count {count} differs from the +Inf bucket {inf_count}")));
            }
            out.push(Histogram { labels, buckets, sum, count });
        }
        Ok(out)
    }

    fn hist_err(&self, labels: &Labels, detail: String) -> Error {
        Error::Histogram { name: format!("{}{}", self.name, fmt_labels(labels)), detail }
    }
}

/// Parses text exposition; `source_name` (a URL or file) names the text in errors.
pub fn parse(text: &str, source_name: &str) -> Result<Vec<Family>, Error> {
    let mut families: Vec<Family> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut typed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |detail: String| Error::Exposition { source_name: source_name.into(), line: i + 1, detail };
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('#') {
            let rest = rest.trim_start();
            let (keyword, rest) = split_token(rest);
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let (name, rest) = split_token(rest.trim_start());
            if !is_metric_name(name) {
                return Err(err(format!("# {keyword}: `{name}` is not a metric name")));
            }
            let at = *index.entry(name.to_string()).or_insert_with(|| {
                families.push(Family { name: name.into(), kind: Kind::Untyped, help: None, samples: Vec::new() });
                families.len() - 1
            });
            let fam = &mut families[at];
            if keyword == "HELP" {
                if fam.help.is_some() {
                    return Err(err(format!("second HELP line for {name}")));
                }
                fam.help = Some(unescape(rest, false).map_err(err)?);
            } else {
                let t = rest.trim();
                let kind = Kind::parse(t).ok_or_else(|| err(format!("unknown type `{t}` for {name}")))?;
                if typed.insert(name.to_string(), i + 1).is_some() {
                    return Err(err(format!("second TYPE line for {name}")));
                }
                if !fam.samples.is_empty() {
                    return Err(err(format!("TYPE line for {name} after its samples")));
                }
                fam.kind = kind;
            }
            continue;
        }
        let sample = parse_sample(trimmed).map_err(err)?;
        let family = family_of(&sample.name, &families, &index);
        let at = match family {
            Some(at) => at,
            None => {
                families.push(Family {
                    name: sample.name.clone(),
                    kind: Kind::Untyped,
                    help: None,
                    samples: Vec::new(),
                });
                index.insert(sample.name.clone(), families.len() - 1);
                families.len() - 1
            }
        };
        families[at].samples.push(sample);
    }
    Ok(families)
}

fn family_of(sample: &str, families: &[Family], index: &BTreeMap<String, usize>) -> Option<usize> {
    if let Some(&at) = index.get(sample) {
        return Some(at);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if let Some(&at) = index.get(base) {
                let k = families[at].kind;
                if k == Kind::Histogram || (k == Kind::Summary && suffix != "_bucket") {
                    return Some(at);
                }
            }
        }
    }
    None
}

fn split_token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The metric name and labels of a sample line, and the text after them (value, timestamp, exemplar) as
/// written; the error says what is wrong.
pub fn split_sample(line: &str) -> Result<(&str, Labels, &str), String> {
    let name_end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("expected a metric name at the start of `{}`", crate::metrics::http::snippet(line)));
    }
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = parse_labels(r, &mut labels)?;
    }
    Ok((name, labels, rest))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let (name, labels, rest) = split_sample(line)?;
    // An exemplar (`value [timestamp] # {trace_id="..."} 0.5`, OpenMetrics) says nothing about the series.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let mut parts = rest.split([' ', '\t']).filter(|p| !p.is_empty());
    let value = parts.next().ok_or_else(|| format!("{name}: no value"))?;
    let value = parse_value(value).ok_or_else(|| format!("{name}: `{value}` is not a number"))?;
    let timestamp_ms = match parts.next() {
        Some(t) => Some(t.parse::<i64>().map_err(|_| format!("{name}: timestamp `{t}` is not an integer"))?),
        None => None,
    };
    if let Some(extra) = parts.next() {
        return Err(format!("{name}: unexpected `{extra}` after the timestamp"));
    }
    Ok(Sample { name: name.into(), labels, value, timestamp_ms })
}

/// Parses `a="x",b="y"}` (after the `{`) into `labels`; returns the text after the `}`.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Labels) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Ok(r);
        }
        let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).ok_or("unterminated label set")?;
        let name = &s[..end];
        if !is_label_name(name) {
            return Err(format!("`{}` is not a label name", s.chars().take(20).collect::<String>()));
        }
        s = s[end..].trim_start();
        s = s.strip_prefix('=').ok_or_else(|| format!("label {name}: expected `=`"))?.trim_start();
        s = s.strip_prefix('"').ok_or_else(|| format!("label {name}: expected a quoted value"))?;
        let close = find_closing_quote(s).ok_or_else(|| format!("label {name}: unterminated value"))?;
        let value = unescape(&s[..close], true)?;
        if labels.insert(name.into(), value).is_some() {
            return Err(format!("label {name} given twice"));
        }
        s = s[close + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err(format!("after label {name}: expected `,` or `}}`"));
        }
    }
}

fn find_closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(o) => {
                // The format only defines these escapes; anything else is kept as written (as Prometheus does).
                out.push('\\');
                out.push(o);
            }
            None => return Err("a trailing backslash".into()),
        }
    }
    Ok(out)
}

/// Parses a sample value as Prometheus writes it (`1.5`, `1e3`, `NaN`, `+Inf`, `-Inf`).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) => s.parse().ok(),
        _ => None,
    }
}

/// Formats a value as Prometheus does.
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn fmt_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v, true))).collect();
    format!("{{{}}}", inner.join(","))
}

/// Writes families as text exposition.
pub fn encode(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        if let Some(h) = &f.help {
            out.push_str(&format!("# HELP {} {}\n", f.name, escape(h, false)));
        }
        if f.kind != Kind::Untyped || f.help.is_some() {
            out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind.name()));
        }
        for s in &f.samples {
            out.push_str(&s.name);
            out.push_str(&fmt_labels(&s.labels));
            out.push(' ');
            out.push_str(&fmt_value(s.value));
            if let Some(t) = s.timestamp_ms {
                out.push_str(&format!(" {t}"));
            }
            out.push('\n');
        }
    }
    out
}

impl Histogram {
    /// The samples of this histogram as family `name` exposes them.
    pub fn samples(&self, name: &str) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.buckets.len() + 2);
        for &(le, c) in &self.buckets {
            let mut labels = self.labels.clone();
            labels.insert("le".into(), fmt_value(le));
            out.push(Sample { name: format!("{name}_bucket"), labels, value: c, timestamp_ms: None });
        }
        out.push(Sample {
            name: format!("{name}_sum"),
            labels: self.labels.clone(),
            value: self.sum,
            timestamp_ms: None,
        });
        out.push(Sample {
            name: format!("{name}_count"),
            labels: self.labels.clone(),
            value: self.count,
            timestamp_ms: None,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PLATFORM: &str = r#"# HELP function_cold_start_duration_seconds Init duration of cold starts.
# TYPE function_cold_start_duration_seconds histogram
function_cold_start_duration_seconds_bucket{function="hello",le="0.1"} 2
function_cold_start_duration_seconds_bucket{function="hello",le="0.5"} 7
function_cold_start_duration_seconds_bucket{function="hello",le="+Inf"} 8
function_cold_start_duration_seconds_sum{function="hello"} 2.25
function_cold_start_duration_seconds_count{function="hello"} 8
# TYPE function_invocations_total counter
function_invocations_total{function="hello",status="ok"} 120 1700000000000
function_invocations_total{function="hello",status="error"} 3
# a comment
function_environments{function="hello", state="idle",} 2
"#;

    #[test]
    fn parses_families_labels_values_and_histograms() {
        let fams = parse(PLATFORM, "test").unwrap();
        let names: Vec<_> = fams.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("function_cold_start_duration_seconds", Kind::Histogram),
                ("function_invocations_total", Kind::Counter),
                ("function_environments", Kind::Untyped)
            ]
        );
        assert_eq!(fams[0].help.as_deref(), Some("Init duration of cold starts."));
        let h = fams[0].histograms().unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].buckets, vec![(0.1, 2.0), (0.5, 7.0), (f64::INFINITY, 8.0)]);
        assert_eq!((h[0].sum, h[0].count), (2.25, 8.0));
        assert_eq!(h[0].labels.get("function").map(String::as_str), Some("hello"));
        assert_eq!(fams[1].samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(fams[1].samples[1].labels["status"], "error");
        assert_eq!(fams[2].samples[0].labels["state"], "idle");
    }

    #[test]
    fn escapes_in_label_values_and_help() {
        let t = r#"# HELP x a \\ b\n c
# TYPE x gauge
x{p="a\"b\\c\nd"} 1
"#;
        let fams = parse(t, "t").unwrap();
        assert_eq!(fams[0].samples[0].labels["p"], "a\"b\\c\nd");
        assert_eq!(fams[0].help.as_deref(), Some("a \\ b\n c"));
    }

    #[test]
    fn bare_names_commas_in_values_and_timestamps() {
        let fams = parse("up 1\nm{a=\"q\\\"uote\",b=\"x,y\"} 2.5 1700000000\n", "t").unwrap();
        assert_eq!(fams[0].samples[0], Sample::new("up", Labels::new(), 1.0));
        let m = &fams[1].samples[0];
        assert_eq!((m.labels["a"].as_str(), m.labels["b"].as_str(), m.value), ("q\"uote", "x,y", 2.5));
        assert_eq!(m.timestamp_ms, Some(1_700_000_000));
    }

    #[test]
    fn exemplars_are_ignored() {
        let t = "# TYPE h histogram\nh_bucket{le=\"0.5\"} 3 # {trace_id=\"ab#c\"} 0.25 1700000000.1\n\
                 h_bucket{le=\"+Inf\"} 4 1700000000000 # {trace_id=\"d\"} 2\nh_sum 3\nh_count 4\n# EOF\n";
        let fams = parse(t, "t").unwrap();
        let h = fams[0].histograms().unwrap();
        assert_eq!(h[0].buckets, vec![(0.5, 3.0), (f64::INFINITY, 4.0)]);
        assert_eq!(fams[0].samples[1].timestamp_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn a_bucket_bound_is_one_series_however_it_is_written() {
        // Go writes large bounds with an exponent (`1e+07`); this encoder writes `10000000`.
        let go = parse("h_bucket{le=\"1e+07\"} 3\nh_bucket{le=\"Inf\"} 4\nh_bucket{le=\"x\"} 5\n", "go").unwrap();
        let ours =
            parse("h_bucket{le=\"10000000\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_bucket{le=\"x\"} 5\n", "ours").unwrap();
        let series = |f: &[Family]| f[0].samples.iter().map(Sample::series).collect::<Vec<_>>();
        assert_eq!(series(&go), series(&ours));
        assert_eq!(series(&go)[0].1["le"], "10000000");
        assert_eq!(series(&go)[2].1["le"], "x", "a bound that is no number is kept as written");
    }

    #[test]
    fn nan_and_infinities_roundtrip_and_untyped_families_have_no_type_line() {
        let mut f = Family::new("v", Kind::Untyped, None);
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
            f.samples.push(Sample::new("v", Labels::new(), x));
        }
        let text = encode(&[f]);
        assert_eq!(text, "v NaN\nv +Inf\nv -Inf\nv -0.5\n");
        let back = parse(&text, "t").unwrap();
        assert!(back[0].samples[0].value.is_nan());
        assert_eq!(
            back[0].samples[1..].iter().map(|s| s.value).collect::<Vec<_>>(),
            [f64::INFINITY, f64::NEG_INFINITY, -0.5]
        );
    }

    #[test]
    fn errors_name_the_source_and_line() {
        for (text, line, what) in [
            ("x 1\ny{a=\"b\" 2\n", 2, "expected `,`"),
            ("# TYPE x gauge\n# TYPE x counter\n", 2, "second TYPE"),
            ("x 1\n# TYPE x gauge\n", 2, "after its samples"),
            ("x abc\n", 1, "not a number"),
            ("x 1 2 3\n", 1, "unexpected `3`"),
            ("x{1a=\"b\"} 1\n", 1, "not a label name"),
            ("# TYPE x bogus\n", 1, "unknown type"),
            ("x{a=\"b\",a=\"c\"} 1\n", 1, "twice"),
            ("{a=\"b\"} 1\n", 1, "metric name"),
        ] {
            let e = parse(text, "http://h/metrics").unwrap_err();
            let Error::Exposition { source_name, line: l, detail } = &e else { panic!("{e:?}") };
            assert_eq!((source_name.as_str(), *l), ("http://h/metrics", line), "{text:?}: {e}");
            assert!(detail.contains(what), "{text:?}: {detail}");
        }
    }

    #[test]
    fn inconsistent_histograms_are_rejected() {
        let head = "# TYPE h histogram\n";
        for (body, what) in [
            ("h_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 5\n", "cumulative"),
            ("h_bucket{le=\"1\"} 5\nh_sum 1\nh_count 5\n", "+Inf"),
            ("h_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 4\n", "differs"),
            ("h_bucket{le=\"+Inf\"} 5\nh_count 5\n", "_sum"),
            ("h_bucket{le=\"x\"} 5\n", "not a number"),
        ] {
            let fams = parse(&format!("{head}{body}"), "t").unwrap();
            let e = fams[0].histograms().unwrap_err();
            assert!(e.to_string().contains(what), "{body:?}: {e}");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}"
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![any::<f64>(), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN), -1e6f64..1e6]
    }

    fn same(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_the_identity(
            fams in proptest::collection::btree_map(name(), (
                prop_oneof![Just(Kind::Counter), Just(Kind::Gauge), Just(Kind::Untyped)],
                proptest::option::of("[ -~\n\\\\\"]{0,20}"),
                proptest::collection::vec((
                    proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "[ -~\n\\\\\"é]{0,12}", 0..4),
                    value(),
                    proptest::option::of(any::<i64>()),
                ), 1..4),
            ), 1..5)
        ) {
            let families: Vec<Family> = fams.into_iter().map(|(n, (kind, help, samples))| Family {
                name: n.clone(),
                kind: if help.is_none() { Kind::Untyped } else { kind },
                help,
                samples: samples.into_iter().map(|(labels, value, timestamp_ms)| Sample { name: n.clone(), labels, value, timestamp_ms }).collect(),
            }).collect();
            // Families whose names collide through suffixes (x and x_count) are grouped by the parser as
            // written, so compare sample by sample in order.
            let text = encode(&families);
            let back = parse(&text, "roundtrip").unwrap();
            let a: Vec<&Sample> = families.iter().flat_map(|f| &f.samples).collect();
            let b: Vec<&Sample> = back.iter().flat_map(|f| &f.samples).collect();
            prop_assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                prop_assert_eq!(&x.name, &y.name);
                prop_assert_eq!(&x.labels, &y.labels);
                prop_assert!(same(x.value, y.value), "{} vs {}", x.value, y.value);
                prop_assert_eq!(x.timestamp_ms, y.timestamp_ms);
            }
            for f in &families {
                let g = back.iter().find(|g| g.name == f.name).unwrap();
                prop_assert_eq!(&f.help, &g.help);
            }
        }

        #[test]
        fn histograms_roundtrip(
            bounds in proptest::collection::btree_set(0u32..10_000, 1..12),
            incs in proptest::collection::vec(0u32..50, 13),
        ) {
            let mut cum = 0.0;
            let mut buckets: Vec<(f64, f64)> = bounds.iter().zip(&incs).map(|(b, i)| { cum += f64::from(*i); (f64::from(*b) / 100.0, cum) }).collect();
            cum += f64::from(incs[12]);
            buckets.push((f64::INFINITY, cum));
            let h = Histogram { labels: [("function".to_string(), "f".to_string())].into(), buckets, sum: 12.5, count: cum };
            let fam = Family { name: "lat_seconds".into(), kind: Kind::Histogram, help: Some("h".into()), samples: h.samples("lat_seconds") };
            let back = parse(&encode(&[fam]), "t").unwrap();
            prop_assert_eq!(back[0].histograms().unwrap(), vec![h]);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[ -~\n{}\"=,#\\\\]{0,200}") {
            let _ = parse(&text, "fuzz");
        }
    }
}
