//! The `security` procedure: runs the checks against a [`SecuritySubject`] and returns the catalog's
//! `security.*` metrics.
//!
//! Order: authentication, secret scan (metrics, configuration, log tail, and the run directory's files for
//! credentials and patterned secrets only: serialized histograms there are random by nature), rate
//! limiting, TLS overhead; then the tuned configuration is applied, authentication, secret scan and rate
//! limiting run again on it, and the audit log is checked for every change the tuning made. A sub-check that
//! cannot be measured turns its metric into `Missing` with the reason (the check then fails saying what was
//! missing); the others are still measured. Everything written (notes, raw files) goes through a
//! [`Redactor`] holding every credential of the surface.

use std::{path::Path, time::Duration};

use serde::Serialize;

use super::{
    audit::{self, AuditReport},
    auth::{self, AuthReport},
    http::{HttpClient, Req},
    ratelimit::{self, RateLimitReport},
    subject::{MetricsFormat, SecuritySubject, Surface},
    tls::{self, TlsReport},
    Error, Finding, Redactor, Scanner,
};
use crate::{
    criteria::Params,
    measure::types::{self as measure, MeasurementSet, Metric},
    platform::Target,
    run_dir::RunDir,
};

const PROCEDURE: &str = "security";

/// The procedure's settings, from the profile's parameters.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Rate-limit plan (`burst_seconds`, `within_seconds`, `connections`, `max_refill_wait_seconds`).
    pub rate: ratelimit::Plan,
    /// TLS plan (`tls_pairs`, `tls_warmup`, `tls_max_seconds`).
    pub tls: tls::Plan,
    /// Audit time window (`audit_window_seconds` after the change).
    pub window: audit::Window,
    /// Whether to scan the run directory's files (`scan_run_dir`, default true).
    pub scan_run_dir: bool,
}

impl Settings {
    /// Reads the parameters; unknown ones are ignored, ill-typed ones are errors naming the parameter.
    pub fn from_params(params: &Params) -> Result<Settings, measure::Error> {
        let num = |name: &str, default: f64| -> Result<f64, measure::Error> {
            match params.get(name) {
                None => Ok(default),
                Some(v) => v.as_f64().filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| measure::Error::Param {
                    procedure: PROCEDURE.into(),
                    param: name.into(),
                    problem: format!("expected a positive number, got {v}"),
                }),
            }
        };
        let secs = |name: &str, default: f64| num(name, default).map(Duration::from_secs_f64);
        let d = ratelimit::Plan::default();
        let rate = ratelimit::Plan {
            burst_duration: secs("burst_seconds", d.burst_duration.as_secs_f64())?,
            within_duration: secs("within_seconds", d.within_duration.as_secs_f64())?,
            connections: num("connections", d.connections as f64)? as usize,
            max_refill_wait: secs("max_refill_wait_seconds", d.max_refill_wait.as_secs_f64())?,
            max_send_rate: num("max_send_rate", d.max_send_rate)?,
        };
        let t = tls::Plan::default();
        let tls = tls::Plan {
            pairs: num("tls_pairs", t.pairs as f64)? as usize,
            warmup: num("tls_warmup", t.warmup as f64)? as usize,
            pace: None,
            max_duration: secs("tls_max_seconds", t.max_duration.as_secs_f64())?,
        };
        let w = audit::Window::default();
        let window = audit::Window { before: w.before, after: secs("audit_window_seconds", w.after.as_secs_f64())? };
        let scan_run_dir = match params.get("scan_run_dir") {
            None => true,
            Some(v) => v.as_bool().ok_or_else(|| measure::Error::Param {
                procedure: PROCEDURE.into(),
                param: "scan_run_dir".into(),
                problem: format!("expected true or false, got {v}"),
            })?,
        };
        Ok(Settings { rate, tls, window, scan_run_dir })
    }
}

/// Secrets found and what was scanned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// Findings (fingerprints only).
    pub findings: Vec<Finding>,
    /// Inputs scanned.
    pub sources: Vec<String>,
}

/// The three controls, measured once.
#[derive(Debug, Serialize)]
pub struct Controls {
    /// Authentication on every protected endpoint.
    pub auth: Result<AuthReport, String>,
    /// Secrets in metrics, configuration and logs.
    pub scan: Result<ScanReport, String>,
    /// Throttling under burst.
    pub rate: Result<RateLimitReport, String>,
}

impl Controls {
    /// Controls failing (violations found), or `Err` naming those that could not be measured.
    pub fn failing(&self) -> Result<usize, String> {
        let auth = self.auth.as_ref().map(|a| a.violations() > 0);
        let scan = self.scan.as_ref().map(|s| !s.findings.is_empty());
        let rate = self.rate.as_ref().map(|r| !r.violations.is_empty());
        let errors: Vec<String> = [("authentication", &auth), ("secret scan", &scan), ("rate limiting", &rate)]
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok([auth, scan, rate].iter().filter(|r| matches!(r, Ok(true))).count())
    }

    /// Individual findings: endpoints without auth, secrets, rate-limit violations.
    pub fn findings(&self) -> Result<usize, String> {
        self.failing()?;
        let a = self.auth.as_ref().map(|a| a.violations()).unwrap_or(0);
        let s = self.scan.as_ref().map(|s| s.findings.len()).unwrap_or(0);
        let r = self.rate.as_ref().map(|r| r.violations.len()).unwrap_or(0);
        Ok(a + s + r)
    }
}

async fn scan_surface<S: SecuritySubject>(
    subject: &S,
    surface: &Surface,
    client: &HttpClient,
    scanner: &Scanner,
) -> Result<ScanReport, Error> {
    let mut report = ScanReport::default();
    for m in &surface.metrics {
        let ep = &m.endpoint;
        let mut req = Req::get(&ep.url);
        for (k, v) in ep.credential.headers() {
            req = req.header(&k, &v);
        }
        let resp = client.send(&req).await?;
        if !(200..300).contains(&resp.status) {
            return Err(Error::Unreachable {
                url: ep.url.clone(),
                detail: format!("answered {} with its credential: nothing to scan", resp.status),
            });
        }
        let body = String::from_utf8_lossy(&resp.body);
        report.findings.extend(match m.format {
            MetricsFormat::Exposition => scanner.exposition(&ep.url, &body),
            MetricsFormat::Series => scanner.series(&ep.url, &body)?,
        });
        report.sources.push(ep.url.clone());
    }
    report.findings.extend(scanner.config("function configuration", &subject.function_config().await?)?);
    report.sources.push("function configuration".into());
    if let Some(tail) = subject.log_tail().await? {
        report.findings.extend(scanner.log_tail("invocation log tail", &tail)?);
        report.sources.push("invocation log tail".into());
    }
    for (source, text) in subject.extra_texts().await? {
        report.findings.extend(scanner.text(&source, &text));
        report.sources.push(source);
    }
    Ok(report)
}

/// Measures authentication, the secret scan and rate limiting on the surface as it is now.
pub async fn controls<S: SecuritySubject>(
    subject: &S,
    surface: &Surface,
    client: &HttpClient,
    settings: &Settings,
) -> Controls {
    let scanner = Scanner::new().with_credentials(surface.credentials());
    let auth = match auth::check(client, &surface.protected()).await {
        Ok(mut a) => match subject.signed_endpoints().await {
            Ok(signed) => {
                a.endpoints.extend(signed);
                Ok(a)
            }
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let scan = scan_surface(subject, surface, client, &scanner).await.map_err(|e| e.to_string());
    let rate = ratelimit::check(client, &surface.front_door.http, surface.throttle, &settings.rate)
        .await
        .map_err(|e| e.to_string());
    Controls { auth, scan, rate }
}

fn count(result: Result<(usize, usize), String>) -> Metric {
    match result {
        Ok((_, 0)) => Metric::Missing { reason: "nothing was examined".into() },
        Ok((v, n)) => Metric::value(v as f64, "", n as u64),
        Err(reason) => Metric::Missing { reason },
    }
}

fn with_ci(o: &tls::Overhead) -> Metric {
    match Metric::value(o.overhead_pct, "%", o.n as u64) {
        Metric::Value { value, unit, n, .. } => {
            Metric::Value { value, unit, n, ci_low: Some(o.ci_low), ci_high: Some(o.ci_high) }
        }
        other => other,
    }
}

/// Runs the procedure against `subject`, writing raw data under the run directory.
pub async fn measure<S: SecuritySubject>(
    subject: &S,
    params: &Params,
    dir: &RunDir,
    target: &str,
) -> Result<MeasurementSet, measure::Error> {
    let mut settings = Settings::from_params(params)?;
    let surface = subject.surface();
    let client = HttpClient::new(surface.ca_pem.as_deref())?;
    let mut redactor = Redactor::new(surface.credentials());
    let mut set = MeasurementSet::new(PROCEDURE, target, params);

    let own_files = if settings.scan_run_dir { Some(scan_dir(dir.path(), &surface)) } else { None };
    let before = controls(subject, &surface, &client, &settings).await;
    settings.tls.pace = surface.throttle.map(|t| Duration::from_secs_f64(1.0 / (0.8 * t.rate)));
    let tls = match subject.tls_unavailable() {
        Some(reason) => Err(reason),
        None => tls::measure(&client, &surface.front_door.http, &surface.front_door.https, &settings.tls)
            .await
            .map_err(|e| e.to_string()),
    };

    let changes = subject.apply_tuning().await.map_err(|e| e.to_string());
    let tuned = subject.surface();
    for c in tuned.credentials() {
        redactor.add(&c);
    }
    let after = controls(subject, &tuned, &client, &settings).await;
    let audit = match &changes {
        Ok(c) if c.is_empty() => {
            Err("the tuning made no configuration change, so the audit log could not be checked".into())
        }
        Ok(c) => audit::check(c, &tuned.audit_log, settings.window).map_err(|e| e.to_string()),
        Err(e) => Err(format!("applying the tuned configuration failed: {e}")),
    };

    let mut scan_all = before.scan.clone();
    if let (Ok(s), Some(own)) = (&mut scan_all, &own_files) {
        match own {
            Ok((findings, files)) => {
                s.findings.extend(findings.iter().cloned());
                s.sources.push(format!("the run directory ({files} files)"));
            }
            Err(e) => scan_all = Err(format!("run directory: {e}")),
        }
    }
    set = set
        .with(
            "unauthenticated_access",
            count(before.auth.as_ref().map(|a| (a.violations(), a.endpoints.len())).map_err(Clone::clone)),
        )
        .with(
            "secret_findings",
            count(scan_all.as_ref().map(|s| (s.findings.len(), s.sources.len())).map_err(Clone::clone)),
        )
        .with(
            "rate_limit_violations",
            count(before.rate.as_ref().map(|r| (r.violations.len(), r.sent.max(1))).map_err(Clone::clone)),
        )
        .with("audit_missing", count(audit.as_ref().map(|a| (a.missing.len(), a.changes)).map_err(Clone::clone)))
        .with("controls_after_tuning", count(after.failing().map(|f| (f, 3))))
        .with("findings_after_tuning", count(after.findings().map(|f| (f, 3))));
    match &tls {
        Ok(t) => {
            set = set
                .with("tls_overhead", with_ci(&t.keep_alive))
                .with("tls_overhead_new_connection", with_ci(&t.new_connection));
        }
        Err(reason) => {
            set = set
                .with("tls_overhead", Metric::Missing { reason: reason.clone() })
                .with("tls_overhead_new_connection", Metric::Missing { reason: reason.clone() });
        }
    }
    for m in set.metrics.values_mut() {
        if let Metric::Missing { reason } = m {
            *reason = redactor.redact(reason);
        }
    }
    let mut all_notes = subject.notes();
    all_notes.extend(notes(&before, &scan_all, &tls, &changes, &after, &audit));
    set.notes = all_notes.iter().map(|n| redactor.redact(n)).collect();
    set.raw = write_raw(dir, &redactor, &before, &after, &scan_all, &tls, &audit)?;
    Ok(set.finish())
}

fn scan_dir(dir: &Path, surface: &Surface) -> Result<(Vec<Finding>, usize), String> {
    Scanner::new().with_credentials(surface.credentials()).without_entropy().dir(dir).map_err(|e| e.to_string())
}

fn notes(
    before: &Controls,
    scan: &Result<ScanReport, String>,
    tls: &Result<TlsReport, String>,
    changes: &Result<Vec<audit::ConfigChange>, String>,
    after: &Controls,
    audit: &Result<AuditReport, String>,
) -> Vec<String> {
    let mut n = Vec::new();
    if let Ok(a) = &before.auth {
        for e in &a.endpoints {
            let verdict = if e.problems.is_empty() {
                "refuses without/wrong credential, serves the right one".to_string()
            } else {
                e.problems.join("; ")
            };
            n.push(format!("auth: {} {}: {verdict} ({}/{}/{})", e.name, e.url, e.none, e.wrong, e.right));
        }
    }
    if let Ok(s) = scan {
        n.push(format!("secret scan: {} findings in {}", s.findings.len(), s.sources.join(", ")));
        n.extend(s.findings.iter().map(|f| format!("secret: {f}")));
    }
    if let Ok(r) = &before.rate {
        if let Some(t) = r.throttle {
            n.push(format!(
                "rate limit {}/s burst {}: sent {} at {:.0}/s in {:.2} s, accepted {} (limit allows {:.0}; burst + rate x window = {:.0}), 429: {}; within the limit {} sent, {} got 429; probe after: {:?}",
                t.rate, t.burst, r.sent, r.send_rate, r.window_s, r.accepted, r.predicted, r.formula, r.throttled, r.within.0, r.within.1, r.probe
            ));
        }
        n.extend(r.violations.iter().map(|v| format!("rate limit: {v}")));
        n.extend(r.notes.iter().map(|v| format!("rate limit: {v}")));
    }
    if let Ok(t) = tls {
        for o in [&t.keep_alive, &t.new_connection] {
            n.push(format!(
                "TLS overhead ({}): {:+.1}% [95% CI {:+.1}%, {:+.1}%], median HTTP {:.3} ms vs HTTPS {:.3} ms ({:+.3} ms per request), n={} interleaved pairs",
                o.mode, o.overhead_pct, o.ci_low, o.ci_high, o.http_median_ms, o.https_median_ms, o.https_median_ms - o.http_median_ms, o.n
            ));
        }
    }
    if let Ok(c) = changes {
        n.push(format!("tuning applied {} configuration changes", c.len()));
    }
    if let Ok(a) = audit {
        n.push(format!(
            "audit log {}: {} entries, {} of {} changes missing",
            a.log.display(),
            a.entries,
            a.missing.len(),
            a.changes
        ));
        n.extend(
            a.missing
                .iter()
                .map(|m| format!("audit missing: {} {} {} -> {} at {}", m.function, m.field, m.from, m.to, m.time)),
        );
    }
    match after.failing() {
        Ok(f) => n.push(format!("after tuning: {f} of 3 controls failing, {} findings", after.findings().unwrap_or(0))),
        Err(e) => n.push(format!("after tuning: not measured: {e}")),
    }
    if let Ok(a) = &after.auth {
        n.extend(
            a.endpoints
                .iter()
                .filter(|e| !e.problems.is_empty())
                .map(|e| format!("after tuning: auth: {} {}: {}", e.name, e.url, e.problems.join("; "))),
        );
    }
    if let Ok(s) = &after.scan {
        n.extend(s.findings.iter().map(|f| format!("after tuning: secret: {f}")));
    }
    if let Ok(r) = &after.rate {
        n.extend(r.violations.iter().map(|v| format!("after tuning: rate limit: {v}")));
    }
    n
}

fn write_raw(
    dir: &RunDir,
    redactor: &Redactor,
    before: &Controls,
    after: &Controls,
    scan: &Result<ScanReport, String>,
    tls: &Result<TlsReport, String>,
    audit: &Result<AuditReport, String>,
) -> Result<Vec<std::path::PathBuf>, measure::Error> {
    let raw = dir.raw_dir(PROCEDURE).map_err(|e| measure::Error::Failed(e.to_string()))?;
    let mut written = Vec::new();
    let mut put = |name: &str, text: String| -> Result<(), measure::Error> {
        let path = raw.join(name);
        std::fs::write(&path, redactor.redact(&text)).map_err(|e| Error::Io { path: path.clone(), source: e })?;
        written.push(path.strip_prefix(dir.path()).unwrap_or(&path).to_path_buf());
        Ok(())
    };
    put("controls_before.json", json(before))?;
    put("controls_after.json", json(after))?;
    put("secret_findings.json", json(scan))?;
    put("audit.json", json(audit))?;
    if let Ok(t) = tls {
        let mut csv = String::from("mode,http_seconds,https_seconds\n");
        csv.extend(t.samples.iter().map(|(m, a, b)| format!("{m},{a:.9},{b:.9}\n")));
        put("tls_samples.csv", csv)?;
        put("tls_overhead.json", json(&(&t.keep_alive, &t.new_connection)))?;
    }
    Ok(written)
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("\"not serializable: {e}\""))
}

/// Runs the procedure on `target`, through the [`SecuritySubject`] the target provides.
pub async fn run(params: &Params, target: &Target, dir: &RunDir) -> Result<MeasurementSet, measure::Error> {
    // A parameter nothing reads would be ignored silently (a rate limit the profile names but nobody sets).
    const KNOWN: &[&str] = &[
        "function",
        "stage_rate_limit",
        "stage_burst_limit",
        "audit_window_seconds",
        "burst_seconds",
        "connections",
        "max_refill_wait_seconds",
        "max_send_rate",
        "scan_run_dir",
        "tls_max_seconds",
        "tls_pairs",
        "tls_warmup",
        "within_seconds",
    ];
    if let Some(k) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(measure::Error::Param {
            procedure: PROCEDURE.into(),
            param: k.clone(),
            problem: format!(
                "not a parameter of `{PROCEDURE}` (it would be ignored); its parameters: {}",
                KNOWN.join(", ")
            ),
        });
    }
    match target {
        Target::Local(cfg) => super::local::run(params, cfg, dir).await,
        Target::Aws(cfg) => super::aws::run(params, cfg, dir).await,
        _ => Err(measure::Error::NotImplemented { procedure: PROCEDURE.into(), target: target.kind().name().into() }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_default_and_name_the_bad_parameter() {
        let s = Settings::from_params(&Params::new()).unwrap();
        assert_eq!((s.tls.pairs, s.rate.burst_duration, s.scan_run_dir), (200, Duration::from_secs(2), true));
        let mut p = Params::new();
        p.insert("tls_pairs".into(), json!(50));
        p.insert("scan_run_dir".into(), json!(false));
        let s = Settings::from_params(&p).unwrap();
        assert_eq!((s.tls.pairs, s.scan_run_dir), (50, false));
        p.insert("burst_seconds".into(), json!("two"));
        let err = Settings::from_params(&p).unwrap_err();
        assert!(matches!(&err, measure::Error::Param { param, .. } if param == "burst_seconds"), "{err}");
    }

    #[test]
    fn controls_count_failures_and_refuse_to_count_what_was_not_measured() {
        let ok = Controls {
            auth: Ok(AuthReport::default()),
            scan: Ok(ScanReport::default()),
            rate: Err("endpoint x: refused".into()),
        };
        assert!(ok.failing().unwrap_err().contains("rate limiting: endpoint x"));
        let c = Controls {
            auth: Ok(AuthReport::default()),
            scan: Ok(ScanReport { findings: Scanner::new().text("t", "DB_PASSWORD=hunter22"), sources: vec!["t".into()] }),
            rate: Ok(serde_json::from_value(json!({
                "throttle": null, "send_rate": 0.0, "sent": 0, "accepted": 0, "throttled": 0, "failed": 0, "window_s": 0.0,
                "formula": 0.0, "predicted": 0.0, "second_half": [0, 0.0], "within": [0, 0], "probe": null,
                "violations": ["no throttle"], "notes": [], "log": []
            })).unwrap()),
        };
        assert_eq!((c.failing(), c.findings()), (Ok(2), Ok(2)));
        assert_eq!(count(Ok((0, 0))), Metric::Missing { reason: "nothing was examined".into() });
    }
}
