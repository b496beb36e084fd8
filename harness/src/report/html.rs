//! `report.html`: one self-contained page (inline CSS, inline SVG, no scripts, nothing fetched) with the
//! criterion table grouped by AC in the ticket's words, and per check the charts that explain its figure,
//! drawn from the chart data of the run directory ([`super::charts`]), or "no chart data" when it has none.

use std::{fmt::Write as _, path::Path};

use super::{
    charts::{self, Chart, Trends},
    markdown::ticket_summary,
    measured_text,
    plot::{self, Marks},
    threshold_text, Report,
};
use crate::evidence::{Evidence, Status};

/// Text shown for a check without any chart data.
pub const NO_CHART_DATA: &str = "no chart data";

const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1c2833;font-size:14px}
main{max-width:1400px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:24px;margin:0 0 6px}
h2{font-size:19px;margin:30px 0 10px;padding-bottom:4px;border-bottom:2px solid #d5dbdb}
.meta{color:#566573;margin:2px 0}
.pills{margin:12px 0 4px;display:flex;gap:8px;flex-wrap:wrap}
.pill{padding:4px 12px;border-radius:14px;font-weight:bold;font-size:14px}
.passed{background:#e9f7ef;color:#1e8449}.failed{background:#fdedec;color:#b03a2e}
.error{background:#fef5e7;color:#9c640c}.skipped{background:#eef0f1;color:#5d6d7e}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e8e8;vertical-align:top}
th{background:#eaeded;font-size:13px}
tr.row-passed td:first-child{border-left:5px solid #27ae60}tr.row-failed td:first-child{border-left:5px solid #c0392b}
tr.row-error td:first-child{border-left:5px solid #d68910}tr.row-skipped td:first-child{border-left:5px solid #aab7b8}
td.num{white-space:nowrap}
code{font-size:12.5px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:bold;text-transform:uppercase}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:16px;margin-top:14px}
figure.check{margin:0;background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 3px rgba(0,0,0,.1);border-top:5px solid #aab7b8}
figure.status-passed{border-top-color:#27ae60}figure.status-failed{border-top-color:#c0392b}figure.status-error{border-top-color:#d68910}
figcaption{margin-bottom:6px}
figcaption .title{font-weight:bold}
.reason{color:#424949;margin-top:3px}
.chart svg{max-width:100%;height:auto;display:block;margin:6px auto}
.no-chart{color:#7b7d7d;font-style:italic;border:1px dashed #ccd1d1;padding:14px;text-align:center;border-radius:4px}
.chart-error{color:#9c640c;background:#fef9e7;padding:6px 8px;border-radius:4px}
.skip-reason{background:#eef0f1;padding:6px 8px;border-radius:4px}
ul.notes{margin:4px 0;padding-left:18px;color:#566573;font-size:13px}
.raw{font-size:12px;color:#7b7d7d}
pre{background:#fff;padding:12px;border-radius:6px;white-space:pre-wrap;box-shadow:0 1px 2px rgba(0,0,0,.08)}
"#;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for a report whose chart data lies in `run_dir`, with the trends of `run_dir/trends.json`.
pub fn html(r: &Report, run_dir: &Path) -> String {
    match charts::load_trends(run_dir) {
        Ok(t) => page(r, run_dir, &t, None),
        Err(e) => page(r, run_dir, &Trends::new(), Some(e.to_string())),
    }
}

/// The page with trends given by the caller (the history store) instead of `trends.json`.
pub fn html_with_trends(r: &Report, run_dir: &Path, trends: &Trends) -> String {
    page(r, run_dir, trends, None)
}

fn page(r: &Report, run_dir: &Path, trends: &Trends, trends_problem: Option<String>) -> String {
    let c = r.counts();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n\
         <title>{}: {}</title>\n<style>{CSS}</style></head>\n<body><main>\n<h1>{}</h1>\n",
        escape(&r.title),
        escape(&r.target),
        escape(&r.title)
    );
    let f = &r.environment;
    let _ = writeln!(
        out,
        "<p class=\"meta\">Profile <code>{}</code> on target <b>{}</b>, run <code>{}</code>, started {}.</p>\n\
         <p class=\"meta\">Environment: host {}, {} cores, {} MiB, {}, kernel {}, {}.</p>",
        escape(&r.profile),
        escape(&r.target),
        escape(&r.run_id),
        escape(&r.started.to_rfc3339()),
        escape(&f.host),
        f.cores,
        f.memory_mib,
        escape(&f.cpu),
        escape(&f.kernel),
        escape(&f.harness_build())
    );
    let _ = writeln!(
        out,
        "<div class=\"pills\"><span class=\"pill passed\">{} passed</span><span class=\"pill failed\">{} failed</span>\
         <span class=\"pill error\">{} error</span><span class=\"pill skipped\">{} skipped</span></div>",
        c.passed, c.failed, c.error, c.skipped
    );
    if let Some(p) = trends_problem {
        let _ = writeln!(out, "<p class=\"chart-error\">trends not shown: {}</p>", escape(&p));
    }
    for group in groups(r) {
        let checks: Vec<&Evidence> = r.checks.iter().filter(|e| e.ac == group).collect();
        let _ = writeln!(out, "<section class=\"ac\" id=\"ac-{0}\">\n<h2>{0}</h2>", escape(group));
        table(&mut out, &checks);
        out.push_str("<div class=\"cards\">\n");
        for e in checks {
            card(&mut out, r, e, run_dir, trends);
        }
        out.push_str("</div>\n</section>\n");
    }
    let _ = writeln!(out, "<h2>Ticket summary</h2>\n<pre>{}</pre>", escape(&ticket_summary(r)));
    out.push_str("</main></body></html>\n");
    out
}

fn groups(r: &Report) -> Vec<&str> {
    let mut g: Vec<&str> = Vec::new();
    for e in &r.checks {
        if !g.contains(&e.ac.as_str()) {
            g.push(&e.ac);
        }
    }
    g
}

fn badge(s: Status) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", s.name())
}

fn table(out: &mut String, checks: &[&Evidence]) {
    out.push_str(
        "<table class=\"criteria\"><thead><tr><th>check</th><th>criterion</th><th>threshold</th>\
         <th>measured (95% CI)</th><th>n</th><th>status</th><th>reason</th></tr></thead><tbody>\n",
    );
    for e in checks {
        let _ = writeln!(
            out,
            "<tr class=\"row-{}\"><td><a href=\"#check-{}\"><code>{}</code></a></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.status.name(),
            escape(&e.id),
            escape(&e.id),
            escape(&e.title),
            escape(&threshold_text(e)),
            escape(&measured_text(e)),
            e.measured.as_ref().map_or("-".into(), |m| m.n.to_string()),
            badge(e.status),
            escape(&e.reason)
        );
    }
    out.push_str("</tbody></table>\n");
}

/// The drawn charts (SVG) and the problems with chart data of one check.
struct Drawn {
    svgs: Vec<String>,
    problems: Vec<String>,
}

fn draw(r: &Report, e: &Evidence, run_dir: &Path, trends: &Trends) -> Drawn {
    let marks = Marks::of(e);
    let mut d = Drawn { svgs: Vec::new(), problems: Vec::new() };
    let measure = r.measures.get(&e.id).map(String::as_str);
    for found in charts::for_check(run_dir, e, measure) {
        let drawn = match found.chart {
            Ok(Chart::Distribution(s)) => plot::cdf(metric_label(measure), &s, &marks),
            Ok(Chart::Timeline(t)) => plot::timeline(procedure_label(measure, &found.path), &t),
            Ok(Chart::Sweep(s)) => plot::sweep("memory sweep", &s),
            Ok(Chart::Builds(b)) => plot::builds("builds", &b),
            Err(err) => {
                d.problems.push(err.to_string());
                continue;
            }
        };
        match drawn {
            Ok(svg) => d.svgs.push(svg),
            Err(err) => d.problems.push(format!("{}: {err}", found.path.display())),
        }
    }
    if let Some(t) = trends.get(&e.id).filter(|t| !t.points.is_empty()) {
        match plot::trend("trend", t, &marks) {
            Ok(svg) => d.svgs.push(svg),
            Err(err) => d.problems.push(format!("trend: {err}")),
        }
    }
    d
}

fn metric_label(measure: Option<&str>) -> &str {
    measure.unwrap_or("distribution")
}

fn procedure_label<'a>(measure: Option<&'a str>, path: &'a Path) -> &'a str {
    measure
        .and_then(|m| m.split_once('.'))
        .map(|(p, _)| p)
        .or_else(|| path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()))
        .unwrap_or("timeline")
}

fn card(out: &mut String, r: &Report, e: &Evidence, run_dir: &Path, trends: &Trends) {
    let d = draw(r, e, run_dir, trends);
    let _ = writeln!(
        out,
        "<figure class=\"check status-{0}\" id=\"check-{1}\" data-check=\"{1}\" data-status=\"{0}\" data-charts=\"{2}\">\n\
         <figcaption>{3} <code>{1}</code> <span class=\"title\">{4}</span>",
        e.status.name(),
        escape(&e.id),
        d.svgs.len(),
        badge(e.status),
        escape(&e.title)
    );
    if e.status == Status::Skipped {
        let _ = writeln!(out, "<div class=\"reason skip-reason\">skipped: {}</div>", escape(&e.reason));
    } else {
        let _ = writeln!(
            out,
            "<div class=\"reason\">{} vs {}: {}</div>",
            escape(&measured_text(e)),
            escape(&threshold_text(e)),
            escape(&e.reason)
        );
    }
    out.push_str("</figcaption>\n");
    for svg in &d.svgs {
        let _ = writeln!(out, "<div class=\"chart\">{svg}</div>");
    }
    for p in &d.problems {
        let _ = writeln!(out, "<p class=\"chart-error\">{}</p>", escape(p));
    }
    if d.svgs.is_empty() {
        let _ = writeln!(out, "<p class=\"no-chart\">{NO_CHART_DATA}</p>");
    }
    if !e.notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in &e.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>\n");
    }
    if !e.raw.is_empty() {
        out.push_str("<p class=\"raw\">raw data:");
        for p in &e.raw {
            let p = escape(&p.display().to_string());
            let _ = write!(out, " <a href=\"{p}\">{p}</a>");
        }
        out.push_str("</p>\n");
    }
    out.push_str("</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        report::charts::{samples_file, write_chart, LatencySamples},
        run_dir::RunDir,
    };

    #[test]
    fn every_check_has_a_card_with_charts_or_no_chart_data() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(tmp.path()).unwrap();
        let mut r = crate::report::tests::sample();
        let s = LatencySamples { unit: "s".into(), values: (0..60).map(|i| 0.3 + f64::from(i) * 0.003).collect() };
        let raw = write_chart(&dir, "cold_start", &samples_file("client_latency"), &s).unwrap();
        r.checks[0].raw = vec![raw];
        r.measures.insert(r.checks[0].id.clone(), "cold_start.client_latency".into());
        let page = html(&r, tmp.path());
        assert!(page.starts_with("<!DOCTYPE html>"));
        for fetching in ["<script", "<link", " src=", "url("] {
            assert!(!page.contains(fetching), "{fetching}");
        }
        assert!(!page.contains("href=\"http"), "links stay inside the run directory");
        for e in &r.checks {
            let start = page
                .find(&format!("<figure class=\"check status-{}\" id=\"check-{}\"", e.status.name(), e.id))
                .unwrap_or_else(|| panic!("{}", e.id));
            let card = &page[start..start + page[start..].find("</figure>").unwrap()];
            let has_svg = card.contains("<svg");
            assert_eq!(has_svg, e.id == "AC2.cold_start_p95", "{}", e.id);
            assert_eq!(card.contains(NO_CHART_DATA), !has_svg, "{}", e.id);
        }
        assert!(page.contains("skipped: manual: a person reviews the change"));
        assert!(page.contains("FAILED AC2.image_size: measured 612MB vs &lt; 500MB"), "ticket summary");
    }

    #[test]
    fn titles_and_reasons_are_escaped() {
        let tmp = tempfile::tempdir().unwrap();
        let mut r = crate::report::tests::sample();
        r.checks[1].title = "<script>alert(1)</script> & co".into();
        let page = html(&r, tmp.path());
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
    }

    #[test]
    fn unusable_trends_file_is_said_not_hidden() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(charts::TRENDS_FILE), "[1,2").unwrap();
        let page = html(&crate::report::tests::sample(), tmp.path());
        assert!(page.contains("trends not shown:") && page.contains("trends.json"), "trends problem");
    }
}
