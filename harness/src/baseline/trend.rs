//! [`Trend`]: the last runs of a check with change points marked.
//!
//! Change points come from a two-window test on the log of the figures: at every position, the mean of up
//! to `window` runs after it is compared with the mean of up to `window` runs before it, in units of the
//! series' own run-to-run noise (estimated robustly from successive differences, so the step being looked
//! for does not inflate it). A position is a change point when that score passes `z` and is the highest
//! within a window on either side.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::history::Record;

/// Default window (runs on each side).
pub const WINDOW: usize = 5;
/// Default score a change point must reach.
pub const Z: f64 = 4.0;
/// Runs needed on each side of a change point.
pub const MIN_SIDE: usize = 2;

/// One run of a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Run id.
    pub run: String,
    /// When it was measured.
    pub time: DateTime<Utc>,
    /// The figure.
    pub value: f64,
    /// A change point starts at this run.
    pub change_point: bool,
}

/// A shift of the level of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    /// Index of the first run after the shift.
    pub index: usize,
    /// That run's id.
    pub run: String,
    /// Relative change of the level (0.2 = 20% higher).
    pub change: f64,
    /// Its score in noise units.
    pub score: f64,
}

/// The last runs of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Check id.
    pub check: String,
    /// Unit of the figures.
    pub unit: String,
    /// Runs, oldest first.
    pub points: Vec<Point>,
    /// Change points found.
    pub change_points: Vec<ChangePoint>,
}

/// Positions of change points in `values` with their scores and relative changes.
pub fn change_points(values: &[f64], window: usize, z: f64) -> Vec<(usize, f64, f64)> {
    let m = values.len();
    if m < 2 * MIN_SIDE {
        return Vec::new();
    }
    let positive = values.iter().all(|v| *v > 0.0);
    let x: Vec<f64> = if positive { values.iter().map(|v| v.ln()).collect() } else { values.to_vec() };
    let mut diffs: Vec<f64> = x.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    diffs.sort_by(f64::total_cmp);
    let median = diffs[diffs.len() / 2];
    // median |Δ| of normal noise is 0.6745·√2·σ; a floor keeps a perfectly flat series from dividing by 0.
    let sigma =
        (median / (0.674_49 * std::f64::consts::SQRT_2)).max(1e-9 * x.iter().map(|v| v.abs()).fold(1e-12, f64::max));
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let mut cands: Vec<(usize, f64, f64)> = Vec::new();
    for i in MIN_SIDE..=m - MIN_SIDE {
        let l = &x[i.saturating_sub(window)..i];
        let r = &x[i..(i + window).min(m)];
        let d = mean(r) - mean(l);
        let score = d / (sigma * (1.0 / l.len() as f64 + 1.0 / r.len() as f64).sqrt());
        if score.abs() >= z {
            let change = if positive { d.exp() - 1.0 } else { d / mean(l).abs().max(f64::MIN_POSITIVE) };
            cands.push((i, score, change));
        }
    }
    cands.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let mut kept: Vec<(usize, f64, f64)> = Vec::new();
    for c in cands {
        if kept.iter().all(|k| k.0.abs_diff(c.0) > window) {
            kept.push(c);
        }
    }
    kept.sort_by_key(|k| k.0);
    kept
}

/// The trend of the last `last` figures of `records` (one check, oldest first).
pub fn trend(check: &str, records: &[&Record], last: usize, window: usize, z: f64) -> Trend {
    let with: Vec<&&Record> = records.iter().filter(|r| r.has_figure()).collect();
    let tail = &with[with.len().saturating_sub(last)..];
    let values: Vec<f64> = tail.iter().filter_map(|r| r.value).collect();
    let cps = change_points(&values, window, z);
    let points = tail
        .iter()
        .enumerate()
        .map(|(i, r)| Point {
            run: r.run.clone(),
            time: r.time,
            value: r.value.unwrap_or(f64::NAN),
            change_point: cps.iter().any(|c| c.0 == i),
        })
        .collect();
    Trend {
        check: check.into(),
        unit: tail.last().and_then(|r| r.unit.clone()).unwrap_or_default(),
        points,
        change_points: cps
            .into_iter()
            .map(|(index, score, change)| ChangePoint { index, run: tail[index].run.clone(), change, score })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::simulate::Rng;

    fn noisy(rng: &mut Rng, n: usize, sigma: f64, step_at: Option<usize>, step: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                100.0 * (sigma * rng.normal() + if step_at.is_some_and(|s| i >= s) { step.ln_1p() } else { 0.0 }).exp()
            })
            .collect()
    }

    #[test]
    fn finds_a_step_where_it_is() {
        let mut rng = Rng::new(1);
        let mut hits = 0;
        for _ in 0..200 {
            let v = noisy(&mut rng, 30, 0.02, Some(15), 0.15);
            let cps = change_points(&v, WINDOW, Z);
            if cps.len() == 1 && cps[0].0 == 15 && (cps[0].2 - 0.15).abs() < 0.05 {
                hits += 1;
            }
        }
        assert!(hits >= 190, "the 15% step at run 15 was found exactly in {hits} of 200 series");
    }

    #[test]
    fn marks_two_steps_and_their_directions() {
        let v: Vec<f64> = (0..30).map(|i| if i < 10 { 100.0 } else if i < 20 { 130.0 } else { 100.0 } + (i % 3) as f64 * 0.5).collect();
        let cps = change_points(&v, WINDOW, Z);
        assert_eq!(cps.iter().map(|c| c.0).collect::<Vec<_>>(), vec![10, 20]);
        assert!(cps[0].2 > 0.25 && cps[1].2 < -0.2);
    }

    #[test]
    fn pure_noise_rarely_has_change_points() {
        let mut rng = Rng::new(2);
        let series_with =
            (0..500).filter(|_| !change_points(&noisy(&mut rng, 30, 0.03, None, 0.0), WINDOW, Z).is_empty()).count();
        assert!(series_with <= 15, "{series_with} of 500 noise-only series had a change point");
    }

    #[test]
    fn short_or_flat_series_have_none() {
        assert!(change_points(&[1.0, 2.0, 3.0], WINDOW, Z).is_empty());
        assert!(change_points(&[5.0; 20], WINDOW, Z).is_empty());
    }
}
