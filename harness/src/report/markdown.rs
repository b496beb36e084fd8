//! `report.md`: the criterion table grouped by AC with the ticket's wording, ready to paste into a ticket.

use super::{measured_text, threshold_text, Report};
use crate::evidence::Status;

fn icon(s: Status) -> &'static str {
    match s {
        Status::Passed => "✅ passed",
        Status::Failed => "❌ failed",
        Status::Skipped => "⏭️ skipped",
        Status::Error => "⚠️ error",
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report.
pub fn markdown(r: &Report) -> String {
    let mut out = format!("# {}: validation on target `{}`\n\n", r.title, r.target);
    out += &format!("Profile `{}`, run `{}`, started {}.\n", r.profile, r.run_id, r.started.to_rfc3339());
    let mut groups: Vec<&str> = Vec::new();
    for e in &r.checks {
        if !groups.contains(&e.ac.as_str()) {
            groups.push(&e.ac);
        }
    }
    for g in groups {
        out += &format!("\n## {g}\n\n| check | criterion | threshold | measured | n | status | reason |\n|---|---|---|---|---|---|---|\n");
        for e in r.checks.iter().filter(|e| e.ac == g) {
            out += &format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                e.id,
                cell(&e.title),
                cell(&threshold_text(e)),
                cell(&measured_text(e)),
                e.measured.as_ref().map_or("-".into(), |m| m.n.to_string()),
                icon(e.status),
                cell(&e.reason)
            );
        }
    }
    out += "\n## Ticket summary\n\n```\n";
    out += &ticket_summary(r);
    out += "```\n";
    out
}

/// The lines an SRE pastes into the ticket: counts, each failure with measured vs threshold, and the
/// environment fingerprint.
pub(crate) fn ticket_summary(r: &Report) -> String {
    let c = r.counts();
    let mut out = format!(
        "{}: {} passed, {} failed, {} skipped, {} error (target {}, run {})\n",
        r.profile, c.passed, c.failed, c.skipped, c.error, r.target, r.run_id
    );
    for e in r.checks.iter().filter(|e| matches!(e.status, Status::Failed | Status::Error)) {
        out += &format!(
            "{} {}: measured {} vs {}: {}\n",
            e.status.name().to_uppercase(),
            e.id,
            measured_text(e),
            threshold_text(e),
            e.reason
        );
    }
    let f = &r.environment;
    out += &format!(
        "environment: host {}, {} cores, {} MiB, {}, kernel {}, {}\n",
        f.host,
        f.cores,
        f.memory_mib,
        f.cpu,
        f.kernel,
        f.harness_build()
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(super::markdown(&super::super::tests::sample()));
    }
}
