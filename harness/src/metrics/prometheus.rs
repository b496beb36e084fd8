//! [`PromClient`]: the Prometheus HTTP API (instant and range queries, rules, alerts, series, metric names,
//! targets). Every error names the server URL and the query; [`PromClient::query_nonempty`] turns an empty
//! result into an error for callers that need data.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use super::{
    http::{form_encode, snippet, Endpoint, HttpClient},
    Error,
};

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Labels, `__name__` included when the result has one.
    pub metric: BTreeMap<String, String>,
    /// Evaluation time (Unix seconds).
    pub time: f64,
    /// Value.
    pub value: f64,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Labels.
    pub metric: BTreeMap<String, String>,
    /// `(time, value)` points.
    pub points: Vec<(f64, f64)>,
}

/// A rule group as `/api/v1/rules` reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// Rule file.
    pub file: String,
    /// Rules.
    pub rules: Vec<Rule>,
    /// When the group was last evaluated (RFC 3339).
    #[serde(default, rename = "lastEvaluation")]
    pub last_evaluation: Option<String>,
}

impl RuleGroup {
    /// Last evaluation as Unix seconds (`None` before the first).
    pub fn last_evaluation_unix(&self) -> Option<f64> {
        let t = chrono::DateTime::parse_from_rfc3339(self.last_evaluation.as_deref()?).ok()?;
        (t.timestamp() > 0).then(|| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9)
    }
}

/// A recording or alerting rule with its health.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    /// Rule (alert or record) name.
    pub name: String,
    /// `alerting` or `recording`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Expression.
    pub query: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    /// Last evaluation error.
    #[serde(default, rename = "lastError")]
    pub last_error: Option<String>,
    /// Alert state: `inactive`, `pending`, `firing`.
    #[serde(default)]
    pub state: Option<String>,
    /// `for` duration of an alert, in seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations of an alerting rule.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An active alert as `/api/v1/alerts` reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alert {
    /// Labels (`alertname` included).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    /// When it became active (RFC 3339).
    #[serde(default, rename = "activeAt")]
    pub active_at: Option<String>,
    /// Value of the expression.
    #[serde(default)]
    pub value: Option<String>,
}

/// A scrape target as `/api/v1/targets` reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScrapeTarget {
    /// Scrape URL.
    #[serde(rename = "scrapeUrl")]
    pub scrape_url: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// Last scrape error.
    #[serde(default, rename = "lastError")]
    pub last_error: String,
    /// Labels (`job`, `instance` ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A Prometheus server's HTTP API.
#[derive(Debug, Clone)]
pub struct PromClient {
    endpoint: Endpoint,
    http: HttpClient,
}

impl PromClient {
    /// A client for the server at `endpoint`.
    pub fn new(endpoint: Endpoint) -> PromClient {
        PromClient { endpoint, http: HttpClient::new(Duration::from_secs(15)) }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Calls `path` with parameters and returns the `data` of a successful answer: queries are POSTed as a
    /// form (PromQL can be long), the read-only listings only answer GET.
    async fn api(&self, path: &str, params: &[(&str, &str)], query: &str) -> Result<Value, Error> {
        let url = self.endpoint.join(path);
        let post = matches!(path, "/api/v1/query" | "/api/v1/query_range" | "/api/v1/series");
        let r = if post {
            let form = Bytes::from(form_encode(params));
            self.http
                .send(Method::POST, &url, &self.endpoint.auth, Some("application/x-www-form-urlencoded"), form, query)
                .await?
        } else {
            let full = if params.is_empty() { url.clone() } else { format!("{url}?{}", form_encode(params)) };
            self.http.send(Method::GET, &full, &self.endpoint.auth, None, Bytes::new(), query).await?
        };
        let body: Value = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(_) if !(200..300).contains(&r.status) => {
                return Err(Error::Status { url, query: query.into(), status: r.status, body: snippet(&r.text()) })
            }
            Err(e) => return Err(Error::Decode { url, query: query.into(), detail: format!("not JSON: {e}") }),
        };
        if body["status"] == "success" {
            return Ok(body["data"].clone());
        }
        if body["status"] == "error" {
            return Err(Error::Api {
                url,
                query: query.into(),
                error_type: body["errorType"].as_str().unwrap_or("error").into(),
                error: body["error"].as_str().unwrap_or_default().into(),
            });
        }
        Err(Error::Status { url, query: query.into(), status: r.status, body: snippet(&r.text()) })
    }

    fn decode_err(&self, path: &str, query: &str, detail: impl Into<String>) -> Error {
        Error::Decode { url: self.endpoint.join(path), query: query.into(), detail: detail.into() }
    }

    /// Instant query at `time` (Unix seconds; now when `None`). A scalar result is returned as one sample
    /// without labels.
    pub async fn query(&self, query: &str, time: Option<f64>) -> Result<Vec<Sample>, Error> {
        let t = time.map(|t| format!("{t:.3}"));
        let mut params = vec![("query", query)];
        if let Some(t) = &t {
            params.push(("time", t));
        }
        let data = self.api("/api/v1/query", &params, query).await?;
        let path = "/api/v1/query";
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or_else(|| self.decode_err(path, query, "vector without a result array"))?
                .iter()
                .map(|s| {
                    let (time, value) =
                        point(&s["value"]).ok_or_else(|| self.decode_err(path, query, format!("bad sample {s}")))?;
                    Ok(Sample { metric: labels(&s["metric"]), time, value })
                })
                .collect(),
            Some("scalar") => {
                let (time, value) = point(&data["result"]).ok_or_else(|| self.decode_err(path, query, "bad scalar"))?;
                Ok(vec![Sample { metric: BTreeMap::new(), time, value }])
            }
            other => Err(self.decode_err(path, query, format!("result type {other:?}: expected a vector or scalar"))),
        }
    }

    /// Instant query that must return at least one series; `hint` says where the data should come from.
    pub async fn query_nonempty(&self, query: &str, time: Option<f64>, hint: &str) -> Result<Vec<Sample>, Error> {
        let r = self.query(query, time).await?;
        if r.is_empty() {
            return Err(Error::Empty {
                url: self.endpoint.join("/api/v1/query"),
                query: query.into(),
                hint: hint.into(),
            });
        }
        Ok(r)
    }

    /// Instant query that must return exactly one finite value.
    pub async fn query_value(&self, query: &str, time: Option<f64>, hint: &str) -> Result<f64, Error> {
        let r = self.query_nonempty(query, time, hint).await?;
        if r.len() > 1 {
            return Err(self.decode_err("/api/v1/query", query, format!("{} series where one was expected", r.len())));
        }
        let v = r[0].value;
        if !v.is_finite() {
            return Err(Error::Empty {
                url: self.endpoint.join("/api/v1/query"),
                query: query.into(),
                hint: format!("the value is {v}; {hint}"),
            });
        }
        Ok(v)
    }

    /// Range query from `start` to `end` (Unix seconds) every `step` seconds.
    pub async fn query_range(&self, query: &str, start: f64, end: f64, step: f64) -> Result<Vec<Series>, Error> {
        let (s, e, st) = (format!("{start:.3}"), format!("{end:.3}"), format!("{step}"));
        let path = "/api/v1/query_range";
        let data = self.api(path, &[("query", query), ("start", &s), ("end", &e), ("step", &st)], query).await?;
        data["result"]
            .as_array()
            .ok_or_else(|| self.decode_err(path, query, "no result array"))?
            .iter()
            .map(|s| {
                let points = s["values"]
                    .as_array()
                    .ok_or_else(|| self.decode_err(path, query, "series without values"))?
                    .iter()
                    .map(|p| point(p).ok_or_else(|| self.decode_err(path, query, format!("bad point {p}"))))
                    .collect::<Result<_, _>>()?;
                Ok(Series { metric: labels(&s["metric"]), points })
            })
            .collect()
    }

    /// Loaded rule groups.
    pub async fn rules(&self) -> Result<Vec<RuleGroup>, Error> {
        let data = self.api("/api/v1/rules", &[], "").await?;
        serde_json::from_value(data["groups"].clone()).map_err(|e| self.decode_err("/api/v1/rules", "", e.to_string()))
    }

    /// Active (pending or firing) alerts.
    pub async fn alerts(&self) -> Result<Vec<Alert>, Error> {
        let data = self.api("/api/v1/alerts", &[], "").await?;
        serde_json::from_value(data["alerts"].clone()).map_err(|e| self.decode_err("/api/v1/alerts", "", e.to_string()))
    }

    /// Label sets of the series matching any of `matchers` between `start` and `end`.
    pub async fn series(
        &self,
        matchers: &[&str],
        start: f64,
        end: f64,
    ) -> Result<Vec<BTreeMap<String, String>>, Error> {
        let (s, e) = (format!("{start:.3}"), format!("{end:.3}"));
        let mut params: Vec<(&str, &str)> = matchers.iter().map(|m| ("match[]", *m)).collect();
        params.extend([("start", s.as_str()), ("end", e.as_str())]);
        let q = matchers.join(", ");
        let data = self.api("/api/v1/series", &params, &q).await?;
        let arr = data.as_array().ok_or_else(|| self.decode_err("/api/v1/series", &q, "not an array"))?;
        Ok(arr.iter().map(labels).collect())
    }

    /// Every metric name the server holds (recording rules' outputs included once evaluated).
    pub async fn metric_names(&self) -> Result<Vec<String>, Error> {
        let path = "/api/v1/label/__name__/values";
        let data = self.api(path, &[], "").await?;
        serde_json::from_value(data).map_err(|e| self.decode_err(path, "", e.to_string()))
    }

    /// Active scrape targets.
    pub async fn targets(&self) -> Result<Vec<ScrapeTarget>, Error> {
        let data = self.api("/api/v1/targets", &[("state", "active")], "").await?;
        serde_json::from_value(data["activeTargets"].clone())
            .map_err(|e| self.decode_err("/api/v1/targets", "", e.to_string()))
    }

    /// `GET /-/ready` answered 200.
    pub async fn ready(&self) -> Result<(), Error> {
        self.http
            .send_ok(Method::GET, &self.endpoint.join("/-/ready"), &self.endpoint.auth, None, Bytes::new(), "")
            .await
            .map(drop)
    }
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

fn point(v: &Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    let t = a.first()?.as_f64()?;
    let val = super::exposition::parse_value(a.get(1)?.as_str()?)?;
    Some((t, val))
}

/// Escapes a label value for use inside a PromQL string literal.
pub fn promql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
