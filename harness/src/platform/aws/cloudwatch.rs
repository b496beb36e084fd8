//! CloudWatch as the monitoring checks read it: [`MetricQuery`]/[`MetricSeries`] (GetMetricData: does a
//! metric have data), [`AlarmInfo`] (DescribeAlarms for the alarms the outputs name) held to
//! [`AlarmExpectation`]s (the right metric, comparison and threshold: seeds 002 and 004), and [`Dashboard`]
//! (GetDashboard, its widgets' metrics with the `"."` shorthand of dashboard JSON resolved).

use std::{collections::BTreeMap, time::SystemTime};

use aws_sdk_cloudwatch::{
    primitives::DateTime as AwsDateTime,
    types::{Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{error::classify, AwsTarget, Error};

/// One metric to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// Namespace (`AWS/Lambda`).
    pub namespace: String,
    /// Metric name (`Invocations`).
    pub name: String,
    /// Dimensions, in order.
    pub dimensions: Vec<(String, String)>,
    /// Statistic (`Sum`, `Average`, `Maximum`, `p95`).
    pub stat: String,
    /// Period in seconds.
    pub period_s: i32,
}

/// The data points of one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// The query.
    pub query: MetricQuery,
    /// Label CloudWatch gave it.
    pub label: Option<String>,
    /// (time, value) points.
    pub points: Vec<(DateTime<Utc>, f64)>,
    /// `Complete`, `PartialData`, ...
    pub status: String,
}

impl MetricSeries {
    /// True when the metric has at least one data point in the window.
    pub fn has_data(&self) -> bool {
        !self.points.is_empty()
    }
}

/// An alarm as DescribeAlarms returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmInfo {
    /// Role it plays (key of the `alarm_names` output).
    pub role: String,
    /// Alarm name.
    pub name: String,
    /// Namespace of its metric (none for a metric-math alarm).
    pub namespace: Option<String>,
    /// Metric name.
    pub metric: Option<String>,
    /// Dimensions of its metric.
    pub dimensions: Vec<(String, String)>,
    /// Statistic (`Sum`) or extended statistic (`p95`).
    pub statistic: Option<String>,
    /// Threshold.
    pub threshold: Option<f64>,
    /// Comparison operator.
    pub comparison: Option<String>,
    /// Period in seconds.
    pub period_s: Option<i32>,
    /// Evaluation periods.
    pub evaluation_periods: Option<i32>,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`.
    pub state: Option<String>,
}

/// A metric and threshold an alarm may watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Metric name.
    pub metric: String,
    /// Threshold.
    pub threshold: f64,
}

/// What the alarm of one role must be.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmExpectation {
    /// Role (key of `alarm_names`).
    pub role: String,
    /// Accepted metric/threshold pairs (any one).
    pub watches: Vec<Watch>,
    /// Comparison operator.
    pub comparison: String,
    /// Statistic, when the source fixes it.
    pub statistic: Option<String>,
    /// Period times evaluation periods in seconds, when the source fixes the window ("in 5 minutes").
    pub window_s: Option<i32>,
}

impl AlarmExpectation {
    /// The alarms seeds 002 and 004 list: more than 10 cold starts in 5 minutes, Init Duration above 2 s, memory
    /// above 85% (as a percentage, or as Max Memory Used above 85% of `memory_mb`), any throttle, average
    /// duration above 5 s, more than 5 errors in 5 minutes.
    pub fn seeds(memory_mb: i32) -> Vec<AlarmExpectation> {
        let e =
            |role: &str, watches: Vec<(&str, f64)>, statistic: Option<&str>, window_s: Option<i32>| AlarmExpectation {
                role: role.into(),
                watches: watches.into_iter().map(|(m, t)| Watch { metric: m.into(), threshold: t }).collect(),
                comparison: "GreaterThanThreshold".into(),
                statistic: statistic.map(str::to_string),
                window_s,
            };
        vec![
            e("cold_starts", vec![("ColdStarts", 10.0)], Some("Sum"), Some(300)),
            e("init_duration", vec![("InitDuration", 2000.0)], None, None),
            e(
                "memory",
                vec![("MemoryUtilization", 85.0), ("MaxMemoryUsedMB", (f64::from(memory_mb) * 0.85).floor())],
                None,
                None,
            ),
            e("throttles", vec![("Throttles", 0.0)], Some("Sum"), None),
            e("duration", vec![("Duration", 5000.0)], Some("Average"), None),
            e("errors", vec![("Errors", 5.0)], Some("Sum"), Some(300)),
        ]
    }
}

/// Why an alarm does not meet its expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmProblem {
    /// Role.
    pub role: String,
    /// Alarm name (from the outputs).
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

/// Holds `found` alarms to `expected`; `function` is the function whose `AWS/Lambda` metrics they must watch.
pub fn check_alarms(
    expected: &[AlarmExpectation],
    names: &BTreeMap<String, String>,
    found: &[AlarmInfo],
    function: &str,
) -> Vec<AlarmProblem> {
    let mut problems = Vec::new();
    for x in expected {
        let name = names.get(&x.role).cloned().unwrap_or_default();
        let mut p = |problem: String| problems.push(AlarmProblem { role: x.role.clone(), name: name.clone(), problem });
        let Some(a) = found.iter().find(|a| a.role == x.role) else {
            p(format!("alarm `{name}` does not exist"));
            continue;
        };
        let watch = a.metric.as_deref().and_then(|m| x.watches.iter().find(|w| w.metric == m));
        let Some(w) = watch else {
            let want: Vec<&str> = x.watches.iter().map(|w| w.metric.as_str()).collect();
            p(format!("watches metric {:?}, expected {}", a.metric, want.join(" or ")));
            continue;
        };
        if a.threshold.is_none_or(|t| (t - w.threshold).abs() > 1e-6 * w.threshold.abs().max(1.0)) {
            p(format!("threshold {:?}, expected {}", a.threshold, w.threshold));
        }
        if a.comparison.as_deref() != Some(&x.comparison) {
            p(format!("comparison {:?}, expected {}", a.comparison, x.comparison));
        }
        if let Some(s) = &x.statistic {
            if a.statistic.as_deref() != Some(s) {
                p(format!("statistic {:?}, expected {s}", a.statistic));
            }
        }
        if let Some(win) = x.window_s {
            let got = a.period_s.zip(a.evaluation_periods).map(|(p, e)| p * e);
            if got != Some(win) && a.period_s != Some(win) {
                p(format!("window {:?} s (period x evaluation periods), expected {win} s", got));
            }
        }
        if a.namespace.as_deref() == Some("AWS/Lambda")
            && !a.dimensions.iter().any(|(k, v)| k == "FunctionName" && v == function)
        {
            p(format!("watches AWS/Lambda {} without the dimension FunctionName = {function}", w.metric));
        }
    }
    problems
}

/// A CloudWatch dashboard's widgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Dashboard name.
    pub name: String,
    /// Its widgets.
    pub widgets: Vec<Widget>,
}

/// One widget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Widget {
    /// Title.
    pub title: Option<String>,
    /// `metric`, `log`, `text`, `alarm`, ...
    pub kind: String,
    /// Metrics it plots.
    pub metrics: Vec<MetricQuery>,
    /// Metric-math expressions it plots.
    pub expressions: Vec<String>,
}

/// Parses a dashboard body (the JSON `DashboardBody`).
pub fn parse_dashboard(name: &str, body: &str) -> Result<Dashboard, Error> {
    let bad = |detail: String| Error::Response { what: format!("dashboard {name}"), detail };
    let v: Value = serde_json::from_str(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let widgets =
        v.get("widgets").and_then(Value::as_array).ok_or_else(|| bad("body has no `widgets` array".into()))?;
    let mut out = Vec::new();
    for (i, w) in widgets.iter().enumerate() {
        let props = &w["properties"];
        let default_stat = props.get("stat").and_then(Value::as_str).unwrap_or("Average");
        let default_period = props.get("period").and_then(Value::as_i64).unwrap_or(300) as i32;
        let mut metrics = Vec::new();
        let mut expressions = Vec::new();
        let mut prev: Vec<String> = Vec::new();
        for (j, row) in props.get("metrics").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let row = row.as_array().ok_or_else(|| bad(format!("widget {i} metric {j} is not an array")))?;
            let (opts, names) = match row.last() {
                Some(Value::Object(o)) => (Some(o), &row[..row.len() - 1]),
                _ => (None, &row[..]),
            };
            if let Some(expr) = opts.and_then(|o| o.get("expression")).and_then(Value::as_str) {
                expressions.push(expr.to_string());
                continue;
            }
            let mut parts = Vec::new();
            for (k, p) in names.iter().enumerate() {
                let s = p.as_str().ok_or_else(|| bad(format!("widget {i} metric {j}: element {k} is not a string")))?;
                let s = if s == "." {
                    prev.get(k)
                        .cloned()
                        .ok_or_else(|| bad(format!("widget {i} metric {j}: `.` at {k} with nothing above")))?
                } else {
                    s.to_string()
                };
                parts.push(s);
            }
            if parts.len() < 2 || parts.len() % 2 != 0 {
                return Err(bad(format!(
                    "widget {i} metric {j}: expected [namespace, metric, (name, value)...], got {} strings",
                    parts.len()
                )));
            }
            let stat = opts.and_then(|o| o.get("stat")).and_then(Value::as_str).unwrap_or(default_stat);
            let period =
                opts.and_then(|o| o.get("period")).and_then(Value::as_i64).map_or(default_period, |p| p as i32);
            metrics.push(MetricQuery {
                namespace: parts[0].clone(),
                name: parts[1].clone(),
                dimensions: parts[2..].chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
                stat: stat.into(),
                period_s: period,
            });
            prev = parts;
        }
        out.push(Widget {
            title: props.get("title").and_then(Value::as_str).map(str::to_string),
            kind: w.get("type").and_then(Value::as_str).unwrap_or("unknown").to_string(),
            metrics,
            expressions,
        });
    }
    Ok(Dashboard { name: name.into(), widgets: out })
}

fn alarm_info(role: &str, a: &MetricAlarm) -> AlarmInfo {
    AlarmInfo {
        role: role.into(),
        name: a.alarm_name().unwrap_or_default().into(),
        namespace: a.namespace().map(str::to_string),
        metric: a.metric_name().map(str::to_string),
        dimensions: a
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string()))
            .collect(),
        statistic: a.statistic().map(|s| s.as_str().to_string()).or_else(|| a.extended_statistic().map(str::to_string)),
        threshold: a.threshold(),
        comparison: a.comparison_operator().map(|c| c.as_str().to_string()),
        period_s: a.period(),
        evaluation_periods: a.evaluation_periods(),
        state: a.state_value().map(|s| s.as_str().to_string()),
    }
}

impl AwsTarget {
    /// A query for the function's `AWS/Lambda` metric `name`.
    pub fn lambda_metric(&self, name: &str, stat: &str, period_s: i32) -> MetricQuery {
        MetricQuery {
            namespace: "AWS/Lambda".into(),
            name: name.into(),
            dimensions: vec![("FunctionName".into(), self.settings.function_name.clone())],
            stat: stat.into(),
            period_s,
        }
    }

    /// GetMetricData for `queries` between `start` and `end`, one series per query, in order.
    pub async fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<MetricSeries>, Error> {
        let mut out = Vec::new();
        for (chunk_no, chunk) in queries.chunks(500).enumerate() {
            let mut req =
                self.cloudwatch.get_metric_data().start_time(AwsDateTime::from(start)).end_time(AwsDateTime::from(end));
            for (i, q) in chunk.iter().enumerate() {
                let metric = Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.name)
                    .set_dimensions(Some(
                        q.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect(),
                    ))
                    .build();
                let stat = MetricStat::builder().metric(metric).period(q.period_s).stat(&q.stat).build();
                req = req.metric_data_queries(
                    MetricDataQuery::builder()
                        .id(format!("m{chunk_no}_{i}"))
                        .metric_stat(stat)
                        .return_data(true)
                        .build(),
                );
            }
            let mut series: Vec<MetricSeries> = chunk
                .iter()
                .map(|q| MetricSeries { query: q.clone(), label: None, points: Vec::new(), status: "Complete".into() })
                .collect();
            let mut token: Option<String> = None;
            loop {
                let r = req
                    .clone()
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| classify(&self.ctx("CloudWatch", "GetMetricData", "metrics"), e))?;
                for res in r.metric_data_results() {
                    let Some(idx) = res.id().and_then(|id| id.rsplit('_').next()).and_then(|n| n.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let Some(s) = series.get_mut(idx) else { continue };
                    s.label = res.label().map(str::to_string);
                    s.status = res.status_code().map(|c| c.as_str().to_string()).unwrap_or_else(|| "Complete".into());
                    for (t, v) in res.timestamps().iter().zip(res.values()) {
                        let ts = DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default();
                        s.points.push((ts, *v));
                    }
                }
                token = r.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            out.extend(series);
        }
        Ok(out)
    }

    /// DescribeAlarms for every alarm the outputs name; an alarm that does not exist is left out (see
    /// [`check_alarms`], which reports it).
    pub async fn alarms(&self) -> Result<Vec<AlarmInfo>, Error> {
        let names = &self.settings.alarm_names;
        let r = self
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(names.values().cloned().collect()))
            .send()
            .await
            .map_err(|e| classify(&self.ctx("CloudWatch", "DescribeAlarms", "alarms"), e))?;
        Ok(names
            .iter()
            .filter_map(|(role, name)| {
                r.metric_alarms().iter().find(|a| a.alarm_name() == Some(name)).map(|a| alarm_info(role, a))
            })
            .collect())
    }

    /// GetDashboard of the dashboard the outputs name, parsed.
    pub async fn dashboard(&self) -> Result<Dashboard, Error> {
        let name = &self.settings.dashboard_name;
        let r = self
            .cloudwatch
            .get_dashboard()
            .dashboard_name(name)
            .send()
            .await
            .map_err(|e| classify(&self.ctx("CloudWatch", "GetDashboard", &format!("dashboard {name}")), e))?;
        let body = r.dashboard_body().ok_or_else(|| Error::Response {
            what: format!("dashboard {name}"),
            detail: "GetDashboard returned no body".into(),
        })?;
        parse_dashboard(name, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_shorthand_and_options_are_resolved() {
        let body = serde_json::json!({"widgets": [
            {"type": "metric", "properties": {"title": "Overview", "stat": "Sum", "period": 60, "metrics": [
                ["AWS/Lambda", "Invocations", "FunctionName", "f"],
                [".", "Errors", ".", "."],
                [".", "Duration", ".", ".", {"stat": "p95"}],
                [{"expression": "100*(1-m2/m1)", "label": "Success rate"}]
            ]}},
            {"type": "text", "properties": {"markdown": "x"}}
        ]})
        .to_string();
        let d = parse_dashboard("d", &body).unwrap();
        assert_eq!(d.widgets.len(), 2);
        let w = &d.widgets[0];
        assert_eq!(w.metrics.len(), 3);
        assert_eq!(w.metrics[1].name, "Errors");
        assert_eq!(w.metrics[1].dimensions, vec![("FunctionName".to_string(), "f".to_string())]);
        assert_eq!((w.metrics[1].stat.as_str(), w.metrics[1].period_s), ("Sum", 60));
        assert_eq!(w.metrics[2].stat, "p95");
        assert_eq!(w.expressions, vec!["100*(1-m2/m1)".to_string()]);
        assert!(d.widgets[1].metrics.is_empty());
        let e = parse_dashboard("d", r#"{"widgets":[{"type":"metric","properties":{"metrics":[[".","X"]]}}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("nothing above"), "{e}");
        assert!(parse_dashboard("d", "{}").unwrap_err().to_string().contains("no `widgets`"));
    }

    fn alarm(role: &str, metric: &str, threshold: f64, stat: &str, period: i32, evals: i32) -> AlarmInfo {
        AlarmInfo {
            role: role.into(),
            name: format!("f-{role}"),
            namespace: Some(
                if matches!(metric, "ColdStarts" | "InitDuration" | "MaxMemoryUsedMB") {
                    "PerfAcceptance/f"
                } else {
                    "AWS/Lambda"
                }
                .into(),
            ),
            metric: Some(metric.into()),
            dimensions: vec![("FunctionName".into(), "f".into())],
            statistic: Some(stat.into()),
            threshold: Some(threshold),
            comparison: Some("GreaterThanThreshold".into()),
            period_s: Some(period),
            evaluation_periods: Some(evals),
            state: Some("OK".into()),
        }
    }

    #[test]
    fn seed_alarms_pass_and_each_deviation_is_named() {
        let names: BTreeMap<String, String> =
            crate::terraform::ALARM_ROLES.iter().map(|r| (r.to_string(), format!("f-{r}"))).collect();
        let good = vec![
            alarm("cold_starts", "ColdStarts", 10.0, "Sum", 300, 1),
            alarm("init_duration", "InitDuration", 2000.0, "Maximum", 300, 1),
            alarm("memory", "MaxMemoryUsedMB", 108.0, "Maximum", 300, 1),
            alarm("throttles", "Throttles", 0.0, "Sum", 60, 1),
            alarm("duration", "Duration", 5000.0, "Average", 300, 2),
            alarm("errors", "Errors", 5.0, "Sum", 60, 5),
        ];
        let x = AlarmExpectation::seeds(128);
        assert_eq!(check_alarms(&x, &names, &good, "f"), vec![]);
        let mut bad = good.clone();
        bad[4].threshold = Some(10_000.0);
        bad[3].dimensions.clear();
        bad.remove(0);
        let problems = check_alarms(&x, &names, &bad, "f");
        let roles: Vec<&str> = problems.iter().map(|p| p.role.as_str()).collect();
        assert_eq!(roles, ["cold_starts", "throttles", "duration"], "{problems:?}");
        assert!(problems[0].problem.contains("does not exist"));
        assert!(problems[1].problem.contains("FunctionName = f"));
        assert!(problems[2].problem.contains("expected 5000"));
    }
}
