//! The criterion table printed at the end of a run: check, threshold, measured, n, status.

use super::{measured_text, threshold_text, Report};

/// The table as text, one row per check, with a summary line.
pub fn table(r: &Report) -> String {
    let rows: Vec<[String; 5]> = r
        .checks
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                threshold_text(e),
                measured_text(e),
                e.measured.as_ref().map_or("-".into(), |m| m.n.to_string()),
                e.status.name().to_uppercase(),
            ]
        })
        .collect();
    let head = ["check", "threshold", "measured", "n", "status"];
    let mut w = head.map(str::len);
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < 4 {
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = format!("{} on target {} (run {})\n", r.title, r.target, r.run_id);
    out += &line(head);
    out += &line([&"-".repeat(w[0]), &"-".repeat(w[1]), &"-".repeat(w[2]), &"-".repeat(w[3]), &"-".repeat(w[4])]);
    for row in &rows {
        out += &line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    let c = r.counts();
    out += &format!("{} passed, {} failed, {} skipped, {} error\n", c.passed, c.failed, c.skipped, c.error);
    for e in
        r.checks.iter().filter(|e| matches!(e.status, crate::evidence::Status::Failed | crate::evidence::Status::Error))
    {
        out += &format!("  {} {}: {}\n", e.status.name().to_uppercase(), e.id, e.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_snapshot() {
        insta::assert_snapshot!(super::table(&super::super::tests::sample()));
    }
}
