//! [`LatencyHistogram`]: latencies in an HDR histogram (nanoseconds, 3 significant digits, up to one hour;
//! about 250 KB whatever the run's length) with the exact minimum and maximum kept beside it. Histograms add
//! exactly, and serialize in the standard compressed HdrHistogram V2 encoding (base64 in JSON), so results of
//! several generator processes can be merged later without loss.

use std::{io::Cursor, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine};
use hdrhistogram::{
    serialization::{Deserializer, Serializer, V2DeflateSerializer},
    Histogram,
};
use serde::{Deserialize, Serialize};

use super::Error;
use crate::stats::{percentile_hdr, Estimate};

/// Largest latency tracked to full precision: longer ones are recorded as one hour (their exact value still
/// shows as the maximum).
pub const HIGHEST_TRACKABLE: Duration = Duration::from_secs(3600);
const SIGFIG: u8 = 3;

/// See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    min_ns: u64,
    max_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_TRACKABLE.as_nanos() as u64, SIGFIG).expect("constant bounds are valid")
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self { hist: empty(), min_ns: u64::MAX, max_ns: 0 }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.hist.saturating_record(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds every value of `other` (exact: same buckets, counts summed; exact min and max combined).
    pub fn merge(&mut self, other: &Self) -> Result<(), Error> {
        self.hist.add(&other.hist).map_err(|e| Error::Merge(format!("histogram ranges differ: {e:?}")))?;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        Ok(())
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Exact smallest latency.
    pub fn min(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_nanos(self.min_ns))
    }

    /// Exact largest latency.
    pub fn max(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_nanos(self.max_ns))
    }

    /// Mean latency in seconds (from the buckets: within the histogram's precision).
    pub fn mean_s(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.hist.mean() / 1e9)
    }

    /// Nearest-rank percentile `q` in seconds with its distribution-free interval at `level`
    /// ([`percentile_hdr`]), kept within the exact minimum and maximum.
    pub fn percentile(&self, q: f64, level: f64) -> Option<Estimate> {
        let e = percentile_hdr(&self.hist, q, level)?;
        let (lo, hi) = (self.min_ns as f64, self.max_ns as f64);
        let s = |ns: f64| ns.clamp(lo, hi) / 1e9;
        Some(Estimate { value: s(e.value), n: e.n, ci_low: e.ci_low.map(s), ci_high: e.ci_high.map(s) })
    }

    /// The underlying histogram (nanoseconds).
    pub fn hdr(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The histogram in the compressed HdrHistogram V2 encoding, base64.
    pub fn encode(&self) -> Result<String, Error> {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut buf)
            .map_err(|e| Error::Decode(format!("encoding: {e:?}")))?;
        Ok(STANDARD.encode(buf))
    }

    fn decode(encoded: &str, min_ns: Option<u64>, max_ns: Option<u64>) -> Result<Self, Error> {
        let bytes = STANDARD.decode(encoded).map_err(|e| Error::Decode(format!("base64: {e}")))?;
        let read: Histogram<u64> =
            Deserializer::new().deserialize(&mut Cursor::new(bytes)).map_err(|e| Error::Decode(format!("{e:?}")))?;
        let mut hist = empty();
        hist.add(&read).map_err(|e| Error::Decode(format!("values outside the trackable range: {e:?}")))?;
        let (min_ns, max_ns) = match (hist.is_empty(), min_ns, max_ns) {
            (true, _, _) => (u64::MAX, 0),
            (false, Some(lo), Some(hi)) => (lo, hi),
            (false, _, _) => (hist.min(), hist.max()),
        };
        Ok(Self { hist, min_ns, max_ns })
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p50_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p95_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p99_s: Option<f64>,
    hdr: String,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = |q| self.percentile(q, 0.95).map(|e| e.value);
        Wire {
            count: self.count(),
            min_ns: self.min().map(|_| self.min_ns),
            max_ns: self.max().map(|_| self.max_ns),
            mean_s: self.mean_s(),
            p50_s: p(50.0),
            p95_s: p(95.0),
            p99_s: p(99.0),
            hdr: self.encode().map_err(serde::ser::Error::custom)?,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let h = Self::decode(&w.hdr, w.min_ns, w.max_ns).map_err(serde::de::Error::custom)?;
        if h.count() != w.count {
            return Err(serde::de::Error::custom(format!(
                "latency histogram holds {} values but says count {}",
                h.count(),
                w.count
            )));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn from(values: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        values.iter().for_each(|&v| h.record(Duration::from_nanos(v)));
        h
    }

    #[test]
    fn exact_extremes_and_clamped_percentiles() {
        let h = from(&[1_234_567, 2_000_001, 9_999_999]);
        assert_eq!(h.min(), Some(Duration::from_nanos(1_234_567)));
        assert_eq!(h.max(), Some(Duration::from_nanos(9_999_999)));
        assert_eq!(h.percentile(100.0, 0.95).unwrap().value, 0.009_999_999);
        assert!(h.percentile(1.0, 0.95).unwrap().value >= 0.001_234_567);
        assert_eq!(LatencyHistogram::new().percentile(50.0, 0.95), None);
        assert_eq!(LatencyHistogram::new().min(), None);
    }

    #[test]
    fn beyond_the_trackable_range_is_saturated_but_max_stays_exact() {
        let h = from(&[7_200_000_000_000]);
        assert_eq!(h.count(), 1);
        assert_eq!(h.max(), Some(Duration::from_secs(7200)));
    }

    #[test]
    fn json_round_trip_and_count_mismatch() {
        let h = from(&[5, 50_000, 5_000_000_000]);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["count"], 3);
        let back: LatencyHistogram = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, h);
        let mut wrong = json;
        wrong["count"] = 4.into();
        let e = serde_json::from_value::<LatencyHistogram>(wrong).unwrap_err().to_string();
        assert!(e.contains("count 4"), "{e}");
        let empty: LatencyHistogram =
            serde_json::from_value(serde_json::to_value(LatencyHistogram::new()).unwrap()).unwrap();
        assert!(empty.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn merging_equals_recording_everything_in_one(
            a in proptest::collection::vec(0u64..100_000_000_000, 0..300),
            b in proptest::collection::vec(0u64..100_000_000_000, 0..300),
        ) {
            let mut merged = from(&a);
            let other: LatencyHistogram = serde_json::from_str(&serde_json::to_string(&from(&b)).unwrap()).unwrap();
            merged.merge(&other).unwrap();
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            let whole = from(&all);
            prop_assert_eq!(merged.count(), whole.count());
            prop_assert_eq!(merged.min(), whole.min());
            prop_assert_eq!(merged.max(), whole.max());
            prop_assert_eq!(merged.hdr(), whole.hdr());
            for q in [50.0, 95.0, 99.0, 99.9] {
                prop_assert_eq!(merged.percentile(q, 0.95), whole.percentile(q, 0.95));
            }
        }
    }
}
