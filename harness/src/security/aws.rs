//! [`AwsSubject`]: a deployment from the Terraform outputs (the aws and localstack targets) as a
//! [`SecuritySubject`]. Its front door is the API URL of the outputs behind the API key; the stage throttle
//! is the lower of the stage's default method throttling and the usage plan's (GetStage, GetUsagePlan); the
//! metrics side is CloudWatch, whose API is IAM-signed, so it is asked by the subject itself: unsigned,
//! signed with made-up credentials, and signed with the harness's own (ListMetrics). The function's
//! configuration comes from GetFunctionConfiguration, its logs from an invocation's log tail and the log
//! group's recent events. The tuned configuration doubles the function's memory through the [`Changes`]
//! guard, which writes the target's audit log and puts the memory back when the procedure ends.
//!
//! TLS overhead needs the same route over both schemes: an API URL served over one scheme only (API
//! Gateway is HTTPS-only) has none, and the metric is reported missing with that reason.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use chrono::Utc;
use serde_json::json;

use super::{
    audit::{AuditEntry as SecAuditEntry, ConfigChange},
    auth::{Credential, EndpointResult, Protected},
    http::{HttpClient, Req},
    ratelimit::Throttle,
    Error, FrontDoor, SecuritySubject, Surface,
};
use crate::{
    criteria::Params,
    measure::types as measure,
    platform::aws::target_error,
    platform::{
        aws::{AuditLog, AwsTarget, Changes, Phase, StageThrottling, State},
        AwsConfig,
    },
    run_dir::RunDir,
};

const PROCEDURE: &str = "security";

/// Variable naming a PEM file of CAs to trust for an `https` API URL (the same one the aws load procedures read).
pub const API_CA_VAR: &str = "HARNESS_API_CA";

/// Error codes with which AWS-style APIs refuse a request for its (missing or bad) signature; some come
/// with status 400 rather than 403.
pub const AUTH_ERROR_CODES: &[&str] = &[
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClient",
    "InvalidSignatureException",
    "AccessDenied",
    "AuthFailure",
];

/// What a signed API answered to one request: status and the error code, when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Error code (`InvalidClientTokenId`), from the body or the SDK's error metadata.
    pub code: Option<String>,
    /// A 2xx whose body is not the API's answer (an emulator that routed the request to another service).
    pub elsewhere: bool,
}

impl Answer {
    /// Whether the request was refused for its credentials.
    pub fn refused(&self) -> bool {
        let auth_code = self.code.as_deref().is_some_and(|c| AUTH_ERROR_CODES.iter().any(|a| c.contains(a)));
        self.status == 401 || self.status == 403 || (self.status == 400 && auth_code)
    }

    fn shown(&self) -> String {
        match &self.code {
            Some(c) => format!("{} {c}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// The first of [`AUTH_ERROR_CODES`] a response body names (XML `<Code>` or JSON `__type`).
pub fn auth_code_in(body: &str) -> Option<String> {
    AUTH_ERROR_CODES.iter().find(|c| body.contains(*c)).map(|c| c.to_string())
}

/// Judges a signed API from its three answers: unsigned and wrongly signed requests must be refused for
/// their credentials, the rightly signed one served.
pub fn judge_signed(name: &str, url: &str, none: &Answer, wrong: &Answer, right: &Answer) -> EndpointResult {
    let mut problems = Vec::new();
    if none.elsewhere {
        problems.push(format!(
            "answered {} to an unsigned request, but not with the API's answer (routed to another service): that it refuses unsigned requests is not shown",
            none.shown()
        ));
    } else if !none.refused() {
        problems.push(format!(
            "answered {} to an unsigned request (expected 401/403 or an authentication error code)",
            none.shown()
        ));
    }
    if !wrong.refused() {
        problems.push(format!(
            "answered {} to a request signed with made-up credentials (expected a refusal)",
            wrong.shown()
        ));
    }
    if !(200..300).contains(&right.status) {
        problems.push(format!(
            "answered {} to the harness's own signed request (expected 2xx): cannot show it serves",
            right.shown()
        ));
    }
    EndpointResult {
        name: name.into(),
        url: url.into(),
        none: none.status,
        wrong: wrong.status,
        right: right.status,
        problems,
    }
}

/// The aws target's audit entries as the audit check reads them: each change and restore that was done,
/// with the function name out of the resource (`function:perf-fixture` -> `perf-fixture`).
pub fn audit_view(entries: &[crate::platform::aws::AuditEntry]) -> Vec<SecAuditEntry> {
    entries
        .iter()
        .filter(|e| e.state == State::Done)
        .map(|e| SecAuditEntry {
            time: e.ts,
            key: Some(format!("{} {}", e.target, if e.phase == Phase::Change { "change" } else { "restore" })),
            function: e.resource.strip_prefix("function:").unwrap_or(&e.resource).to_string(),
            field: e.setting.clone(),
            from: e.before.clone(),
            to: e.after.clone(),
        })
        .collect()
}

/// The stage throttle the security checks expect at the API URL, from what API Gateway says.
pub fn expected_throttle(s: &StageThrottling) -> Option<Throttle> {
    let t = s.effective().filter(|t| t.is_set())?;
    Some(Throttle { rate: t.rate_limit?, burst: u32::try_from(t.burst_limit?).ok()? })
}

/// Why TLS overhead cannot be measured at `api_url`: always, since the outputs give one URL, one scheme.
pub fn tls_reason(api_url: &str) -> String {
    let (has, lacks) = if api_url.starts_with("https://") { ("HTTPS", "plain-HTTP") } else { ("plain HTTP", "HTTPS") };
    format!("the API URL {api_url} is served over {has} only (the outputs name one URL): no {lacks} route to the same function to compare")
}

/// The system's CA certificates as PEM, only those rustls accepts (for an HTTPS API URL).
fn system_roots_pem() -> Result<Vec<u8>, measure::Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut pem = String::new();
    for cert in found.certs {
        let mut scratch = rustls::RootCertStore::empty();
        if scratch.add(cert.clone()).is_ok() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
    }
    if pem.is_empty() {
        let why = found.errors.first().map(|e| e.to_string()).unwrap_or_else(|| "none found".into());
        return Err(measure::Error::Unavailable {
            what: "the system's CA certificates (to reach an HTTPS API URL)".into(),
            detail: why,
        });
    }
    Ok(pem.into_bytes())
}

/// The CAs trusted for an HTTPS API URL: the PEM file `HARNESS_API_CA` names (a private CA, as the local
/// front door's), else the system's.
fn api_ca_pem() -> Result<Vec<u8>, measure::Error> {
    match std::env::var_os(API_CA_VAR).filter(|v| !v.is_empty()) {
        Some(path) => std::fs::read(&path).map_err(|e| measure::Error::Unavailable {
            what: format!("the CA file {} ({API_CA_VAR})", PathBuf::from(&path).display()),
            detail: e.to_string(),
        }),
        None => system_roots_pem(),
    }
}

/// A deployment as the `security` procedure sees it.
#[derive(Debug)]
pub struct AwsSubject {
    t: AwsTarget,
    kind: &'static str,
    key: String,
    throttling: StageThrottling,
    throttle: Option<Throttle>,
    ca_pem: Option<Vec<u8>>,
    audit_view: PathBuf,
    changes: Mutex<Option<Changes>>,
}

impl AwsSubject {
    /// Connects the deployment of `cfg`, refuses a function that cannot run, and reads the API key and the
    /// stage's throttling.
    pub async fn connect(cfg: &AwsConfig, dir: &RunDir) -> Result<AwsSubject, measure::Error> {
        let kind = if cfg.localstack { "localstack" } else { "aws" };
        let t = AwsTarget::from_config(cfg, dir).await.map_err(|e| target_error(PROCEDURE, e))?;
        t.check_function().await.map_err(|e| target_error(PROCEDURE, e))?;
        let key = t.api_key().await.map_err(|e| target_error(PROCEDURE, e))?.expose().to_string();
        let throttling = t.stage_throttling().await.map_err(|e| target_error(PROCEDURE, e))?;
        let raw = dir.raw_dir(PROCEDURE).map_err(|e| measure::Error::Failed(e.to_string()))?;
        AwsSubject::new(t, kind, key, throttling, &raw)
    }

    /// A subject from what [`AwsSubject::connect`] reads (no request is made): the API key's value, the
    /// stage's throttling, and the directory for the audit view.
    pub fn new(
        t: AwsTarget,
        kind: &'static str,
        key: String,
        throttling: StageThrottling,
        raw_dir: &Path,
    ) -> Result<AwsSubject, measure::Error> {
        let throttle = expected_throttle(&throttling);
        let ca_pem = if t.settings().api_url.starts_with("https://") { Some(api_ca_pem()?) } else { None };
        Ok(AwsSubject {
            t,
            kind,
            key,
            throttling,
            throttle,
            ca_pem,
            audit_view: raw_dir.join("aws_audit_view.jsonl"),
            changes: Mutex::new(None),
        })
    }

    /// Restores what the tuning changed (also when nothing was measured after it).
    pub async fn restore(&self) -> Result<(), measure::Error> {
        let pending = self.changes.lock().unwrap_or_else(|p| p.into_inner()).take();
        match pending {
            Some(c) => c.restore().await.map_err(|e| target_error(PROCEDURE, e)),
            None => Ok(()),
        }
    }

    fn function(&self) -> &str {
        &self.t.settings().function_name
    }

    /// Where CloudWatch answers: the endpoint override, or the region's public endpoint.
    fn cloudwatch_url(&self) -> String {
        match self.t.endpoint.as_deref() {
            Some(e) => format!("{}/", e.trim_end_matches('/')),
            None => format!("https://{}/", self.cloudwatch_host()),
        }
    }

    fn cloudwatch_host(&self) -> String {
        format!("monitoring.{}.amazonaws.com", self.t.settings().region)
    }

    async fn list_metrics(&self, client: &aws_sdk_cloudwatch::Client, what: &str) -> Result<Answer, Error> {
        use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
        match client.list_metrics().send().await {
            Ok(_) => Ok(Answer { status: 200, code: None, elsewhere: false }),
            Err(e) => match e.raw_response() {
                Some(raw) => {
                    Ok(Answer { status: raw.status().as_u16(), code: e.code().map(str::to_string), elsewhere: false })
                }
                None => Err(Error::Unreachable {
                    url: self.cloudwatch_url(),
                    detail: format!(
                        "ListMetrics {what}: no answer: {}",
                        aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
                    ),
                }),
            },
        }
    }

    fn write_audit_view(&self, log: &Path) -> Result<(), Error> {
        let entries = AuditLog::read(log).map_err(|e| Error::Subject(format!("the aws audit log: {e}")))?;
        let mut text = String::new();
        for e in audit_view(&entries) {
            text.push_str(&serde_json::to_string(&e).map_err(|e| Error::Subject(e.to_string()))?);
            text.push('\n');
        }
        std::fs::write(&self.audit_view, text).map_err(|source| Error::Io { path: self.audit_view.clone(), source })
    }
}

impl SecuritySubject for AwsSubject {
    fn surface(&self) -> Surface {
        let api = Protected {
            name: "API URL".into(),
            url: self.t.settings().api_url.clone(),
            credential: Credential::Header { name: "x-api-key".into(), value: self.key.clone() },
            body: Some("{}".into()),
        };
        Surface {
            metrics: Vec::new(),
            front_door: FrontDoor { http: api.clone(), https: api },
            ca_pem: self.ca_pem.clone(),
            throttle: self.throttle,
            audit_log: self.audit_view.clone(),
            other_credentials: Vec::new(),
        }
    }

    async fn function_config(&self) -> Result<String, Error> {
        let f = self.t.check_function().await.map_err(|e| Error::Subject(e.to_string()))?;
        Ok(json!({
            "FunctionName": f.name,
            "MemorySize": f.memory_mb,
            "Timeout": f.timeout_s,
            "PackageType": f.package_type,
            "Environment": { "Variables": f.environment.unwrap_or_default() },
        })
        .to_string())
    }

    async fn apply_tuning(&self) -> Result<Vec<ConfigChange>, Error> {
        let subject =
            |e: crate::platform::aws::Error| Error::Subject(format!("configuration of {}: {e}", self.function()));
        let from = self.t.check_function().await.map_err(subject)?.memory_mb.unwrap_or(128);
        let to = (from * 2).min(10240);
        let mut changes = self.t.changes().map_err(subject)?;
        let time = Utc::now();
        let r = changes.set_memory(to).await;
        // Kept for the restore at the end even when the change failed half-way.
        *self.changes.lock().unwrap_or_else(|p| p.into_inner()) = Some(changes);
        r.map_err(subject)?;
        let log = self.t.audit_path().ok_or_else(|| Error::Subject("the aws target has no audit log open".into()))?;
        self.write_audit_view(log)?;
        Ok(vec![ConfigChange {
            time,
            function: self.function().to_string(),
            field: "memory_size".into(),
            from: json!(from),
            to: json!(to),
        }])
    }

    async fn log_tail(&self) -> Result<Option<String>, Error> {
        let inv = self
            .t
            .invoke(b"{}", None)
            .await
            .map_err(|e| Error::Subject(format!("Invoke of {} for its log tail: {e}", self.function())))?;
        Ok(Some(base64::engine::general_purpose::STANDARD.encode(inv.log_tail)))
    }

    async fn signed_endpoints(&self) -> Result<Vec<EndpointResult>, Error> {
        let url = self.cloudwatch_url();
        // Emulators route a request without a signature by its Host, as AWS does.
        let unsigned = Req::post(&url, "Action=ListMetrics&Version=2010-08-01")
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .header("host", &self.cloudwatch_host());
        let ca = if url.starts_with("https://") {
            Some(system_roots_pem().map_err(|e| Error::Tls(e.to_string()))?)
        } else {
            None
        };
        let resp = HttpClient::new(ca.as_deref())?.send(&unsigned).await?;
        let body = String::from_utf8_lossy(&resp.body);
        let none = Answer {
            status: resp.status,
            code: auth_code_in(&body),
            elsewhere: (200..300).contains(&resp.status) && !body.contains("ListMetrics"),
        };
        let made_up = aws_sdk_cloudwatch::config::Credentials::new(
            "AKIAHARNESSWRONG0000",
            "harness/made-up/secret/not/a/real/key/0000",
            None,
            None,
            "harness-wrong-credentials",
        );
        let wrong_client = aws_sdk_cloudwatch::Client::from_conf(
            self.t.cloudwatch.config().to_builder().credentials_provider(made_up).build(),
        );
        let wrong = self.list_metrics(&wrong_client, "with made-up credentials").await?;
        let right = self.list_metrics(&self.t.cloudwatch, "with the harness's credentials").await?;
        Ok(vec![judge_signed("CloudWatch API (IAM-signed)", &url, &none, &wrong, &right)])
    }

    async fn extra_texts(&self) -> Result<Vec<(String, String)>, Error> {
        let group = &self.t.settings().log_group;
        let start = SystemTime::now() - Duration::from_secs(15 * 60);
        let ms = start.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let r = self.t.logs.filter_log_events().log_group_name(group).start_time(ms).limit(1000).send().await.map_err(
            |e| {
                Error::Subject(format!(
                    "FilterLogEvents on log group {group} at {}: {}",
                    self.t.endpoint_of("CloudWatch Logs"),
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e)
                ))
            },
        )?;
        let text: Vec<&str> = r.events().iter().filter_map(|e| e.message()).collect();
        Ok(vec![(format!("log group {group} (last 15 min, {} events)", text.len()), text.join("\n"))])
    }

    fn tls_unavailable(&self) -> Option<String> {
        Some(tls_reason(&self.t.settings().api_url))
    }

    fn notes(&self) -> Vec<String> {
        let s = &self.throttling;
        let mut n = vec![format!(
            "{} target: function `{}`, API URL {} (stage {}); stage throttle from API Gateway: stage default {:?}, usage plan {:?} (covers the stage: {}); expected at the API URL: {}",
            self.kind,
            self.function(),
            self.t.settings().api_url,
            s.stage,
            s.stage_default().map(|t| (t.rate_limit, t.burst_limit)),
            s.usage_plan.map(|t| (t.rate_limit, t.burst_limit)),
            s.usage_plan_covers_stage,
            self.throttle.map(|t| format!("{}/s burst {}", t.rate, t.burst)).unwrap_or_else(|| "none".into()),
        )];
        if self.kind == "localstack" {
            n.push("CloudWatch on an emulator: moto and LocalStack accept unsigned and wrongly signed requests unless their IAM enforcement is on (moto: INITIAL_NO_AUTH_ACTION_COUNT=0; LocalStack: ENFORCE_IAM=1); what it answered is reported as is".into());
        }
        n.push(format!(
            "audit: the tuning's changes are looked up in the aws target's audit log {} (done entries, as {})",
            self.t.audit_path().map(|p| p.display().to_string()).unwrap_or_default(),
            self.audit_view.display()
        ));
        n
    }
}

/// Runs the procedure on the deployment of `cfg`; the tuning is restored whatever the measurement gave.
pub async fn run(params: &Params, cfg: &AwsConfig, dir: &RunDir) -> Result<measure::MeasurementSet, measure::Error> {
    let subject = AwsSubject::connect(cfg, dir).await?;
    let kind = subject.kind;
    let r = super::measure(&subject, params, dir, kind).await;
    let restored = subject.restore().await;
    match (r, restored) {
        (Ok(set), Ok(())) => Ok(set),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::aws::{AuditEntry, Throttle as GwThrottle};

    #[test]
    fn signed_apis_must_refuse_unsigned_and_wrong_requests_and_serve_the_right_one() {
        let a = |status: u16, code: Option<&str>| Answer { status, code: code.map(str::to_string), elsewhere: false };
        let ok = judge_signed(
            "cw",
            "http://127.0.0.1:1/",
            &a(400, Some("MissingAuthenticationToken")),
            &a(403, Some("InvalidClientTokenId")),
            &a(200, None),
        );
        assert!(ok.problems.is_empty(), "{ok:?}");
        let open = judge_signed("cw", "u", &a(200, None), &a(200, None), &a(200, None));
        assert_eq!(open.problems.len(), 2, "{open:?}");
        assert!(open.problems[0].contains("unsigned") && open.problems[1].contains("made-up"));
        // A 400 without an authentication code is a bad request, not a refusal for credentials.
        let bad = judge_signed("cw", "u", &a(400, Some("ValidationError")), &a(403, None), &a(500, None));
        assert_eq!(bad.problems.len(), 2, "{bad:?}");
        assert!(bad.problems[1].contains("500"));
        // A 2xx from another service proves nothing about this one: a problem, never a pass.
        let routed = Answer { status: 200, code: None, elsewhere: true };
        let r = judge_signed("cw", "u", &routed, &a(403, None), &a(200, None));
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert!(r.problems[0].contains("not shown"), "{r:?}");
        assert_eq!(
            auth_code_in("<ErrorResponse><Error><Code>IncompleteSignature</Code></Error></ErrorResponse>").as_deref(),
            Some("IncompleteSignature")
        );
        assert_eq!(auth_code_in("{\"__type\":\"Throttling\"}"), None);
    }

    #[test]
    fn the_audit_view_keeps_done_entries_with_the_function_name() {
        let e = |phase, state, after: i32| AuditEntry {
            ts: Utc::now(),
            target: "localstack".into(),
            endpoint: "http://127.0.0.1:1".into(),
            phase,
            state,
            resource: "function:perf-fixture".into(),
            setting: "memory_size".into(),
            before: json!(128),
            after: json!(after),
            error: None,
        };
        let view = audit_view(&[
            e(Phase::Change, State::Started, 256),
            e(Phase::Change, State::Done, 256),
            e(Phase::Restore, State::Failed, 128),
        ]);
        assert_eq!(view.len(), 1);
        assert_eq!((view[0].function.as_str(), view[0].field.as_str()), ("perf-fixture", "memory_size"));
        assert_eq!((&view[0].from, &view[0].to), (&json!(128), &json!(256)));
        let change = ConfigChange {
            time: view[0].time,
            function: "perf-fixture".into(),
            field: "memory_size".into(),
            from: json!(128),
            to: json!(256),
        };
        assert!(super::super::audit::missing(&[change], &view, super::super::audit::Window::default()).is_empty());
    }

    #[test]
    fn the_expected_throttle_is_the_effective_one_and_none_when_unset() {
        let t = |r: f64, b: i32| GwThrottle { rate_limit: Some(r), burst_limit: Some(b) };
        let mut s = StageThrottling {
            stage: "perf".into(),
            methods: [("*/*".to_string(), t(100.0, 200))].into(),
            usage_plan: Some(t(50.0, 100)),
            usage_plan_covers_stage: true,
        };
        assert_eq!(expected_throttle(&s), Some(Throttle { rate: 50.0, burst: 100 }));
        s.methods.clear();
        s.usage_plan = None;
        assert_eq!(expected_throttle(&s), None);
        s.usage_plan = Some(t(0.0, 10));
        s.usage_plan_covers_stage = true;
        assert_eq!(expected_throttle(&s), None, "a zero rate is no throttle");
    }

    #[test]
    fn tls_overhead_names_the_missing_scheme() {
        let r = tls_reason("https://abc.execute-api.eu-west-1.amazonaws.com/perf");
        assert!(r.contains("HTTPS only") && r.contains("no plain-HTTP route"), "{r}");
        assert!(tls_reason("http://127.0.0.1:9/f").contains("no HTTPS route"));
    }
}
