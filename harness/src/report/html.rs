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
use crate::{
    evidence::{Evidence, Status},
    measure::MeasurementSet,
};

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
.summary{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;margin-top:12px}
.summary h3{font-size:16px;margin:0 0 6px}
td.n0{color:#aab7b8}td.bad{color:#b03a2e;font-weight:bold}
ul.failures{margin:0;padding:0;list-style:none}
ul.failures li{background:#fff;border-left:5px solid #c0392b;padding:6px 10px;margin-bottom:6px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
ul.failures li.error{border-left-color:#d68910}
.vs{font-weight:bold;white-space:nowrap}
.bar{display:inline-block;height:10px;background:#5d6d7e;border-radius:2px;vertical-align:middle}
.measurement{background:#fff;border-radius:6px;padding:8px 12px;margin-bottom:10px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
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
    let sets = measurements(run_dir);
    summary(&mut out, r, &sets);
    for group in groups(r) {
        let checks: Vec<&Evidence> = r.checks.iter().filter(|e| e.ac == group).collect();
        let _ = writeln!(out, "<section class=\"ac\" id=\"ac-{0}\">\n<h2>{0}</h2>", escape(group));
        table(&mut out, &checks);
        out.push_str("<div class=\"cards\">\n");
        for e in checks {
            card(&mut out, r, e, run_dir, trends, &sets);
        }
        out.push_str("</div>\n</section>\n");
    }
    measurement_notes(&mut out, r, &sets);
    let _ = writeln!(out, "<h2>Ticket summary</h2>\n<pre>{}</pre>", escape(&ticket_summary(r)));
    out.push_str("</main></body></html>\n");
    out
}

/// A measurement of the run as stored in `measurements/`: its file stem (the anchor) and the set.
struct Stored {
    key: String,
    set: MeasurementSet,
}

/// The measurements of the run directory, in the order they started. Failed measurements (`*.error.json`) hold
/// no times; their checks say why in their reason.
fn measurements(run_dir: &Path) -> Vec<Stored> {
    let Ok(dir) = crate::run_dir::RunDir::open(run_dir) else { return Vec::new() };
    let mut out: Vec<Stored> = dir.measurements().into_iter().map(|(key, set)| Stored { key, set }).collect();
    out.sort_by(|a, b| a.set.started.cmp(&b.set.started).then_with(|| a.key.cmp(&b.key)));
    out
}

/// The procedure a check reads (`cold_start` of `cold_start.client_latency`).
fn procedure_of<'a>(r: &'a Report, id: &str) -> Option<&'a str> {
    r.measures.get(id).and_then(|m| m.split_once('.')).map(|(p, _)| p)
}

/// The measurement whose notes a check's evidence carries: same procedure, and every one of its notes among the
/// check's notes.
fn measurement_of<'a>(r: &Report, e: &Evidence, sets: &'a [Stored]) -> Option<&'a Stored> {
    let procedure = procedure_of(r, &e.id)?;
    sets.iter()
        .filter(|s| s.set.procedure == procedure && !s.set.notes.is_empty())
        .find(|s| s.set.notes.iter().all(|n| e.notes.contains(n)))
}

fn seconds(s: &MeasurementSet) -> f64 {
    (s.finished - s.started).num_milliseconds().max(0) as f64 / 1000.0
}

fn duration_text(secs: f64) -> String {
    if secs >= 60.0 {
        format!("{}min {:02}s", (secs / 60.0).floor(), (secs % 60.0).round() as u64 % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// The top of the page: per criterion the counts and the figures that matter most, the checks that failed or
/// could not be measured with measured vs threshold, and the wall time of each measurement.
fn summary(out: &mut String, r: &Report, sets: &[Stored]) {
    out.push_str("<section class=\"summary\" id=\"summary\">\n<div>\n<h3>By criterion</h3>\n");
    out.push_str(
        "<table class=\"by-criterion\"><thead><tr><th>criterion</th><th>passed</th><th>failed</th><th>error</th>\
         <th>skipped</th><th>key figures (measured vs threshold)</th></tr></thead><tbody>\n",
    );
    for group in groups(r) {
        let checks: Vec<&Evidence> = r.checks.iter().filter(|e| e.ac == group).collect();
        let n = |s: Status| checks.iter().filter(|e| e.status == s).count();
        let cell = |count: usize, bad: bool| {
            let class = if count == 0 {
                "n0"
            } else if bad {
                "bad"
            } else {
                ""
            };
            format!("<td class=\"num {class}\">{count}</td>")
        };
        // Failures first, then passed figures; three at most.
        let mut key: Vec<&&Evidence> = checks.iter().filter(|e| e.measured.is_some()).collect();
        key.sort_by_key(|e| match e.status {
            Status::Failed => 0,
            Status::Error => 1,
            Status::Passed => 2,
            Status::Skipped => 3,
        });
        let figures: Vec<String> = key
            .iter()
            .take(3)
            .map(|e| {
                format!(
                    "<a href=\"#check-{0}\"><code>{0}</code></a> <span class=\"vs\">{1} vs {2}</span>",
                    escape(&e.id),
                    escape(&measured_text(e)),
                    escape(&threshold_text(e))
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#ac-{0}\">{0}</a></td>{1}{2}{3}{4}<td>{5}</td></tr>",
            escape(group),
            cell(n(Status::Passed), false),
            cell(n(Status::Failed), true),
            cell(n(Status::Error), true),
            cell(n(Status::Skipped), false),
            if figures.is_empty() { "-".to_string() } else { figures.join("<br>") }
        );
    }
    out.push_str("</tbody></table>\n");
    out.push_str("</div>\n<div>\n");
    let bad: Vec<&Evidence> = r.checks.iter().filter(|e| matches!(e.status, Status::Failed | Status::Error)).collect();
    let _ = writeln!(out, "<h3>Failed or not measured ({})</h3>", bad.len());
    if bad.is_empty() {
        out.push_str("<p>none</p>\n");
    } else {
        out.push_str("<ul class=\"failures\">\n");
        for e in bad {
            let _ = writeln!(
                out,
                "<li class=\"{0}\" data-failure=\"{1}\">{2} <a href=\"#check-{1}\"><code>{1}</code></a> {3}<br>\
                 <span class=\"vs\">measured {4} vs {5}</span>: {6}</li>",
                e.status.name(),
                escape(&e.id),
                badge(e.status),
                escape(&e.title),
                escape(&measured_text(e)),
                escape(&threshold_text(e)),
                escape(&e.reason)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h3 style=\"margin-top:14px\">Wall time per measurement</h3>\n");
    if sets.is_empty() {
        out.push_str("<p>no stored measurement in this run directory</p>\n");
    } else {
        let total: f64 = sets.iter().map(|s| seconds(&s.set)).sum();
        let longest = sets.iter().map(|s| seconds(&s.set)).fold(0.0, f64::max).max(0.001);
        out.push_str(
            "<table class=\"wall-time\"><thead><tr><th>procedure</th><th>started</th><th>wall time</th>\
             <th>checks</th><th></th></tr></thead><tbody>\n",
        );
        for s in sets {
            let secs = seconds(&s.set);
            let checks = r.checks.iter().filter(|e| procedure_of(r, &e.id) == Some(s.set.procedure.as_str())).count();
            let _ = writeln!(
                out,
                "<tr data-procedure=\"{0}\"><td><a href=\"#measurement-{1}\">{0}</a></td><td>{2}</td>\
                 <td class=\"num\">{3}</td><td class=\"num\">{4}</td>\
                 <td><span class=\"bar\" style=\"width:{5:.0}px\"></span></td></tr>",
                escape(&s.set.procedure),
                escape(&s.key),
                s.set.started.format("%H:%M:%S"),
                duration_text(secs),
                checks,
                (secs / longest * 160.0).max(1.0)
            );
        }
        let _ = writeln!(
            out,
            "<tr><td><b>all measurements</b></td><td></td><td class=\"num\"><b>{}</b></td><td></td><td></td></tr>",
            duration_text(total)
        );
        out.push_str("</tbody></table>\n");
    }
    if let Some(p) = &r.provisioning {
        provisioning(out, p);
    }
    out.push_str("</div>\n</section>\n");
}

/// The wall times of the stack the run applied and destroyed itself (`--provision`).
fn provisioning(out: &mut String, p: &crate::terraform::provision::Phases) {
    out.push_str(
        "<h3 style=\"margin-top:14px\">Provisioning</h3>\n<table class=\"wall-time\"><thead><tr><th>phase</th>\
         <th>wall time</th><th>attempts</th><th>outcome</th></tr></thead><tbody>\n",
    );
    for (name, phase) in
        [("init+apply", &p.init_apply), ("first healthy invoke", &p.first_healthy_invoke), ("destroy", &p.destroy)]
    {
        let _ = match phase {
            Some(ph) => writeln!(
                out,
                "<tr data-phase=\"{name}\"><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td>{}</td></tr>",
                duration_text(ph.seconds),
                ph.attempts,
                escape(&ph.outcome)
            ),
            None => writeln!(out, "<tr data-phase=\"{name}\"><td>{name}</td><td colspan=\"3\">not reached</td></tr>"),
        };
    }
    out.push_str("</tbody></table>\n");
}

/// What each measurement noted, said once (the checks that read it link here).
fn measurement_notes(out: &mut String, r: &Report, sets: &[Stored]) {
    let noted: Vec<&Stored> = sets.iter().filter(|s| !s.set.notes.is_empty()).collect();
    if noted.is_empty() {
        return;
    }
    out.push_str("<section id=\"measurements\">\n<h2>Measurements: notes</h2>\n");
    for s in noted {
        let readers: Vec<String> = r
            .checks
            .iter()
            .filter(|e| measurement_of(r, e, std::slice::from_ref(s)).is_some())
            .map(|e| format!("<a href=\"#check-{0}\"><code>{0}</code></a>", escape(&e.id)))
            .collect();
        let _ = writeln!(
            out,
            "<div class=\"measurement\" id=\"measurement-{}\"><b>{}</b> ({}, {}); read by {}",
            escape(&s.key),
            escape(&s.set.procedure),
            s.set.started.format("%H:%M:%S"),
            duration_text(seconds(&s.set)),
            if readers.is_empty() { "-".into() } else { readers.join(", ") }
        );
        out.push_str("<ul class=\"notes\">");
        for n in &s.set.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul></div>\n");
    }
    out.push_str("</section>\n");
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

fn card(out: &mut String, r: &Report, e: &Evidence, run_dir: &Path, trends: &Trends, sets: &[Stored]) {
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
    // The measurement's notes are said once, in the measurements section; here only what is this check's own.
    let shared = measurement_of(r, e, sets);
    let own: Vec<&String> = e.notes.iter().filter(|n| shared.is_none_or(|s| !s.set.notes.contains(n))).collect();
    if let Some(s) = shared {
        let _ = writeln!(
            out,
            "<p class=\"raw\">notes of the measurement: <a href=\"#measurement-{}\">{} ({} notes)</a></p>",
            escape(&s.key),
            escape(&s.set.procedure),
            s.set.notes.len()
        );
    }
    if !own.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in own {
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
