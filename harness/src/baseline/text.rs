//! Plain-text views of baselines, comparisons and trends for `harness baseline`.

use std::fmt::Write as _;

use super::{compare::Comparison, decision::Verdict, named::Baseline, trend::Trend};
use crate::criteria::fmt_num;

/// A baseline: where it comes from and each check's figures.
pub fn baseline(b: &Baseline) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "baseline `{}`: profile {}, target {}, saved {}",
        b.name,
        b.profile,
        b.target,
        b.saved.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "environment: {} ({})", b.environment.comparable_key(), b.environment.host);
    let _ = writeln!(out, "runs: {}", b.runs.join(", "));
    let _ = writeln!(out, "{:<34} {:>6} {:>12}  figures", "check", "unit", "mean");
    for (check, e) in &b.checks {
        let vals: Vec<f64> = e.figures.iter().map(|f| f.value).collect();
        let geo = if vals.iter().all(|v| *v > 0.0) {
            (vals.iter().map(|v| v.ln()).sum::<f64>() / vals.len() as f64).exp()
        } else {
            vals.iter().sum::<f64>() / vals.len() as f64
        };
        let figs: Vec<String> = vals.iter().map(|v| fmt_num(*v)).collect();
        let _ = writeln!(out, "{check:<34} {:>6} {:>12}  {}", e.unit, fmt_num(geo), figs.join(" "));
    }
    out
}

/// A comparison, one row per check, regressions first.
pub fn comparison(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} against baseline `{}`{}",
        c.run,
        c.baseline,
        if c.cross_environment { " (ANOTHER ENVIRONMENT)" } else { "" }
    );
    let _ = writeln!(out, "{:<34} {:>12} {:>12} {:>8}  decision", "check", "baseline", "this run", "change");
    let mut rows: Vec<_> = c.rows.iter().collect();
    rows.sort_by_key(|r| match &r.outcome {
        Ok(o) if o.verdict == Verdict::Regression => 0,
        Ok(_) => 1,
        Err(_) => 2,
    });
    for r in rows {
        let base = r.baseline.map_or("-".into(), |b| format!("{}{}", fmt_num(b), r.unit));
        let (change, decision) = match &r.outcome {
            Ok(o) => (format!("{:+.1}%", 100.0 * o.change), o.explanation.clone()),
            Err(why) => ("-".into(), format!("not compared: {why}")),
        };
        let _ = writeln!(
            out,
            "{:<34} {base:>12} {:>12} {change:>8}  {decision}",
            r.check,
            format!("{}{}", fmt_num(r.current), r.unit)
        );
    }
    for p in &c.problems {
        let _ = writeln!(out, "strict: {p}");
    }
    let _ = writeln!(out, "{} regressions in {} compared checks", c.regressions().len(), c.decided());
    out
}

/// Trends, one block per check; `*` marks the first run after a change point.
pub fn trends(ts: &[Trend]) -> String {
    let mut out = String::new();
    for t in ts {
        let _ = writeln!(
            out,
            "{} ({} runs, {})",
            t.check,
            t.points.len(),
            if t.unit.is_empty() { "count" } else { &t.unit }
        );
        for p in &t.points {
            let _ =
                writeln!(out, "  {} {:<28} {:>12}", if p.change_point { "*" } else { " " }, p.run, fmt_num(p.value));
        }
        for c in &t.change_points {
            let _ = writeln!(out, "  change point at {}: {:+.1}% (score {:.1})", c.run, 100.0 * c.change, c.score);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{history::tests::record, trend::trend};

    #[test]
    fn trends_mark_change_points() {
        let recs: Vec<_> = (0..12)
            .map(|i| record(&format!("r{i}"), "AC2.warm", if i < 6 { 50.0 } else { 70.0 } + (i % 2) as f64 * 0.3, i))
            .collect();
        let refs: Vec<&_> = recs.iter().collect();
        let text = trends(&[trend("AC2.warm", &refs, 20, 5, 4.0)]);
        assert!(text.contains("* r6 "), "{text}");
        assert!(text.contains("change point at r6: +"), "{text}");
    }
}
