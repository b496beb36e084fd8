//! [`Expectation`]: a statistic, a comparison and a threshold with its unit, parsed from the way SREs write
//! them (`p95 < 1s`, `>= 20%`, `< 500MB`, `== true`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The physical dimension of a value; thresholds and measurements compare only within one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Seconds.
    Time,
    /// Bytes.
    Bytes,
    /// Percent (0-100).
    Percent,
    /// Events per second.
    Rate,
    /// A plain number (counts, ratios).
    Count,
    /// True (1) or false (0).
    Bool,
}

/// A unit as written, with its factor to the canonical unit of its dimension. Serialized as its symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// Symbol as SREs write it (`ms`, `MB`, `%`).
    pub symbol: &'static str,
    /// Dimension of the unit.
    pub dimension: Dimension,
    /// Multiply a value in this unit by `factor` to get the canonical unit (s, B, %, /s, 1).
    pub factor: f64,
}

const UNITS: &[Unit] = &[
    Unit { symbol: "ns", dimension: Dimension::Time, factor: 1e-9 },
    Unit { symbol: "us", dimension: Dimension::Time, factor: 1e-6 },
    Unit { symbol: "µs", dimension: Dimension::Time, factor: 1e-6 },
    Unit { symbol: "ms", dimension: Dimension::Time, factor: 1e-3 },
    Unit { symbol: "s", dimension: Dimension::Time, factor: 1.0 },
    Unit { symbol: "min", dimension: Dimension::Time, factor: 60.0 },
    Unit { symbol: "m", dimension: Dimension::Time, factor: 60.0 },
    Unit { symbol: "h", dimension: Dimension::Time, factor: 3600.0 },
    Unit { symbol: "B", dimension: Dimension::Bytes, factor: 1.0 },
    Unit { symbol: "KB", dimension: Dimension::Bytes, factor: 1e3 },
    Unit { symbol: "MB", dimension: Dimension::Bytes, factor: 1e6 },
    Unit { symbol: "GB", dimension: Dimension::Bytes, factor: 1e9 },
    Unit { symbol: "KiB", dimension: Dimension::Bytes, factor: 1024.0 },
    Unit { symbol: "MiB", dimension: Dimension::Bytes, factor: 1048576.0 },
    Unit { symbol: "GiB", dimension: Dimension::Bytes, factor: 1073741824.0 },
    Unit { symbol: "Ki", dimension: Dimension::Bytes, factor: 1024.0 },
    Unit { symbol: "Mi", dimension: Dimension::Bytes, factor: 1048576.0 },
    Unit { symbol: "Gi", dimension: Dimension::Bytes, factor: 1073741824.0 },
    Unit { symbol: "%", dimension: Dimension::Percent, factor: 1.0 },
    Unit { symbol: "req/s", dimension: Dimension::Rate, factor: 1.0 },
    Unit { symbol: "rps", dimension: Dimension::Rate, factor: 1.0 },
    Unit { symbol: "/s", dimension: Dimension::Rate, factor: 1.0 },
    Unit { symbol: "x", dimension: Dimension::Count, factor: 1.0 },
    Unit { symbol: "", dimension: Dimension::Count, factor: 1.0 },
    Unit { symbol: "bool", dimension: Dimension::Bool, factor: 1.0 },
];

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.symbol)
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Unit::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown unit `{s}` (expected one of: {})", Unit::known_symbols()))
        })
    }
}

impl Unit {
    /// Looks a unit up by its symbol.
    pub fn parse(symbol: &str) -> Option<Unit> {
        UNITS.iter().copied().find(|u| u.symbol == symbol)
    }

    /// The canonical unit of a dimension.
    pub fn canonical(dimension: Dimension) -> Unit {
        let symbol = match dimension {
            Dimension::Time => "s",
            Dimension::Bytes => "B",
            Dimension::Percent => "%",
            Dimension::Rate => "req/s",
            Dimension::Count => "",
            Dimension::Bool => "bool",
        };
        Unit::parse(symbol).expect("canonical units are in the table")
    }

    /// Converts `value` (in this unit) to the canonical unit of the dimension.
    pub fn to_canonical(&self, value: f64) -> f64 {
        value * self.factor
    }

    /// Converts a canonical value into this unit.
    pub fn from_canonical(&self, value: f64) -> f64 {
        value / self.factor
    }

    fn known_symbols() -> String {
        UNITS.iter().filter(|u| !u.symbol.is_empty()).map(|u| u.symbol).collect::<Vec<_>>().join(", ")
    }
}

/// How a set of measured values is reduced to one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "q")]
pub enum Statistic {
    /// A percentile, `q` in (0, 100).
    Percentile(f64),
    /// Arithmetic mean.
    Mean,
    /// Smallest sample.
    Min,
    /// Largest sample.
    Max,
    /// The single value a measurement produced (ratios, sizes, counts, flags).
    Value,
}

impl Statistic {
    /// Parses `p95`, `p99.9`, `mean`, `avg`, `min`, `max`, `value`.
    pub fn parse(s: &str) -> Option<Statistic> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "mean" | "avg" | "average" => Some(Statistic::Mean),
            "min" => Some(Statistic::Min),
            "max" => Some(Statistic::Max),
            "value" => Some(Statistic::Value),
            _ => {
                let q: f64 = s.strip_prefix('p')?.parse().ok()?;
                (q > 0.0 && q < 100.0).then_some(Statistic::Percentile(q))
            }
        }
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Percentile(q) => write!(f, "p{q}"),
            Statistic::Mean => f.write_str("mean"),
            Statistic::Min => f.write_str("min"),
            Statistic::Max => f.write_str("max"),
            Statistic::Value => f.write_str("value"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    /// Whether `measured OP threshold` holds.
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            Op::Eq => (measured - threshold).abs() <= f64::EPSILON * threshold.abs().max(1.0),
        }
    }

    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

/// What a check expects: `[statistic] op value[unit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The statistic; `value` when the text names none.
    pub statistic: Statistic,
    /// The comparison.
    pub op: Op,
    /// Threshold in the unit as written.
    pub value: f64,
    /// Unit as written.
    pub unit: Unit,
}

impl Expectation {
    /// Threshold converted to the canonical unit of its dimension.
    pub fn canonical_value(&self) -> f64 {
        self.unit.to_canonical(self.value)
    }

    /// The threshold as written, without the statistic (`< 1s`).
    pub fn threshold_text(&self) -> String {
        if self.unit.dimension == Dimension::Bool {
            return format!("{} {}", self.op.symbol(), self.value != 0.0);
        }
        let space = if self.unit.symbol.contains('/') { " " } else { "" };
        format!("{} {}{space}{}", self.op.symbol(), fmt_num(self.value), self.unit.symbol)
    }
}

/// Formats a number without a trailing `.0` and with at most 4 significant decimals.
pub fn fmt_num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.statistic {
            Statistic::Value => f.write_str(&self.threshold_text()),
            s => write!(f, "{s} {}", self.threshold_text()),
        }
    }
}

/// Why an expectation text did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// No comparison operator found.
    #[error("expected a comparison like `p95 < 1s`, `>= 20%`, `< 500MB` or `== true`, found `{0}`")]
    NoOperator(String),
    /// Unknown statistic before the operator.
    #[error("unknown statistic `{0}` (expected p50, p95, p99, p99.9, mean, min, max or value)")]
    Statistic(String),
    /// The number did not parse.
    #[error("expected a number after `{op}`, found `{found}`")]
    Number {
        /// The operator.
        op: &'static str,
        /// What was found.
        found: String,
    },
    /// Unknown unit.
    #[error("unknown unit `{unit}` in `{text}` (expected one of: {known})")]
    Unit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        text: String,
        /// The units that are known.
        known: String,
    },
}

impl FromStr for Expectation {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        let ops: [(&str, Op); 6] =
            [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt), ("=", Op::Eq)];
        let (pos, sym, op) = ops
            .iter()
            .filter_map(|(s, o)| t.find(s).map(|p| (p, *s, *o)))
            .min_by_key(|(p, s, _)| (*p, usize::MAX - s.len()))
            .ok_or_else(|| ParseError::NoOperator(t.to_string()))?;
        let stat_text = t[..pos].trim();
        let statistic = if stat_text.is_empty() {
            Statistic::Value
        } else {
            Statistic::parse(stat_text).ok_or_else(|| ParseError::Statistic(stat_text.to_string()))?
        };
        let rest = t[pos + sym.len()..].trim();
        match rest {
            "true" => return Ok(Expectation { statistic, op, value: 1.0, unit: Unit::canonical(Dimension::Bool) }),
            "false" => return Ok(Expectation { statistic, op, value: 0.0, unit: Unit::canonical(Dimension::Bool) }),
            _ => {}
        }
        let split = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '-' || *c == '+' || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        let (num, unit_text) = rest.split_at(split);
        let value: f64 = num
            .replace('_', "")
            .parse()
            .map_err(|_| ParseError::Number { op: op.symbol(), found: rest.to_string() })?;
        let unit_text = unit_text.trim();
        let unit = Unit::parse(unit_text).ok_or_else(|| ParseError::Unit {
            unit: unit_text.to_string(),
            text: t.to_string(),
            known: Unit::known_symbols(),
        })?;
        Ok(Expectation { statistic, op, value, unit })
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("p95 < 1s", Statistic::Percentile(95.0), Op::Lt, 1.0, "s")]
    #[case(">= 20%", Statistic::Value, Op::Ge, 20.0, "%")]
    #[case("< 500MB", Statistic::Value, Op::Lt, 500.0, "MB")]
    #[case("p99.9<=250 ms", Statistic::Percentile(99.9), Op::Le, 250.0, "ms")]
    #[case("mean > 70%", Statistic::Mean, Op::Gt, 70.0, "%")]
    #[case("< 1.5Gi", Statistic::Value, Op::Lt, 1.5, "Gi")]
    #[case(">= 1000 req/s", Statistic::Value, Op::Ge, 1000.0, "req/s")]
    #[case("== 0", Statistic::Value, Op::Eq, 0.0, "")]
    #[case("== true", Statistic::Value, Op::Eq, 1.0, "bool")]
    fn parses_sre_notation(
        #[case] text: &str,
        #[case] stat: Statistic,
        #[case] op: Op,
        #[case] value: f64,
        #[case] unit: &str,
    ) {
        let e: Expectation = text.parse().unwrap();
        assert_eq!((e.statistic, e.op, e.value, e.unit.symbol), (stat, op, value, unit));
    }

    #[rstest]
    #[case("p95 < 1 parsecs", "unknown unit `parsecs`")]
    #[case("p95 1s", "expected a comparison")]
    #[case("q95 < 1s", "unknown statistic `q95`")]
    #[case("< fast", "expected a number")]
    fn rejects_bad_text(#[case] text: &str, #[case] needle: &str) {
        let err = text.parse::<Expectation>().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }

    #[rstest]
    #[case("< 1s", 0.999, true)]
    #[case("< 1s", 1.0, false)]
    #[case("<= 1s", 1.0, true)]
    #[case("<= 1s", 1.000001, false)]
    #[case("> 70%", 70.0, false)]
    #[case("> 70%", 70.0001, true)]
    #[case(">= 20%", 20.0, true)]
    #[case(">= 20%", 19.9999, false)]
    #[case("< 500MB", 499_999_999.0, true)]
    #[case("< 500MB", 500_000_000.0, false)]
    #[case("< 100ms", 0.0999, true)]
    #[case("< 100ms", 0.1, false)]
    #[case("== 0", 0.0, true)]
    #[case("== 0", 1.0, false)]
    #[case("== true", 1.0, true)]
    #[case("== true", 0.0, false)]
    #[case("< 1.5Gi", 1.5 * 1073741824.0 - 1.0, true)]
    #[case("< 1.5Gi", 1.5 * 1073741824.0, false)]
    fn decides_at_the_boundary(#[case] text: &str, #[case] canonical: f64, #[case] holds: bool) {
        let e: Expectation = text.parse().unwrap();
        assert_eq!(e.op.holds(canonical, e.canonical_value()), holds, "{text} with {canonical}");
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(q in 1u32..99, v in 1u32..100_000, op in 0usize..5) {
            let ops = ["<", "<=", ">", ">=", "=="];
            let text = format!("p{q} {} {v}ms", ops[op]);
            let e: Expectation = text.parse().unwrap();
            let again: Expectation = e.to_string().parse().unwrap();
            proptest::prop_assert_eq!(e, again);
        }
    }
}
