//! Kubernetes quantities (`500m`, `1Gi`, `123456789n`) and Go durations (`60s`, `1m30s`), the two notations
//! resource requests, PodMetrics and Knative's autoscaling annotations use.

use std::time::Duration;

/// A quantity in base units (cores for CPU, bytes for memory), or `None` when it does not parse.
pub fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(num) = s.strip_suffix(suffix) {
            if num.ends_with(['e', 'E']) {
                continue;
            }
            return num.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * factor);
        }
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A Go duration (`60s`, `1m30s`, `500ms`, `1h`), or `None` when it does not parse.
pub fn go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_base_units() {
        let cases = [
            ("500m", 0.5),
            ("2", 2.0),
            ("1.5", 1.5),
            ("250000000n", 0.25),
            ("100u", 0.0001),
            ("64Mi", 67_108_864.0),
            ("1Gi", 1_073_741_824.0),
            ("1.5Gi", 1_610_612_736.0),
            ("128974848", 128_974_848.0),
            ("129e6", 129e6),
            ("1k", 1000.0),
            ("2M", 2e6),
            ("12345Ki", 12_641_280.0),
        ];
        for (s, want) in cases {
            let got = quantity(s).unwrap_or_else(|| panic!("{s} did not parse"));
            assert!((got - want).abs() <= want * 1e-12, "{s}: {got} != {want}");
        }
        for bad in ["", "abc", "1Xi", "Mi", "nan"] {
            assert_eq!(quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "60", "s", "1x", "1m30"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }
}
