//! Kaniko builds of the knative-lambda-operator. A build's log is read by [`parse_kaniko`] (layer-cache
//! lookups and their outcome, pushes, registry rate limits); [`build_of_job`] reads a build Job's outcome
//! and duration. The `build` procedure makes the operator rebuild a `LambdaFunction` `runs` times (a
//! source-only change for inline sources: a comment appended to the code; else `spec.build.forceRebuild`),
//! follows each Kaniko Job by watch, samples its pod's memory from metrics-server, reads its log, and puts
//! the function's spec back afterwards.

use std::time::Duration;

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    api::{Api, DynamicObject, ListParams, LogParams, Patch, PatchParams, WatchParams},
    ResourceExt,
};
use serde_json::{json, Value};

use super::{
    error::{Error, Result},
    function::Function,
    procedures::{median, Ctx},
    resources::utilization_samples,
    watch::{oom_killed, Change, Watcher},
};
use crate::{
    criteria::catalog,
    image_build::{parse_kaniko, KanikoBuild},
    measure::types::{MeasurementSet, Metric},
};

/// One followed build.
#[derive(Debug, Clone, PartialEq)]
pub struct KanikoJob {
    /// Job name.
    pub job: String,
    /// Whether the Job completed (false: failed).
    pub succeeded: bool,
    /// Job start to completion (or failure), seconds (API server timestamps: 1 s resolution).
    pub duration_s: Option<f64>,
    /// Whether the Kaniko container runs with `--cache=true` (`None`: no `--cache` argument).
    pub cache_enabled: Option<bool>,
    /// What its Kaniko log says (cache lookups, pushes, rate limits).
    pub log: KanikoBuild,
    /// Highest memory of the kaniko container seen by metrics-server, bytes.
    pub peak_memory: Option<f64>,
    /// Whether the kaniko container was OOM-killed.
    pub oom_killed: bool,
}

/// A finished Job's outcome (`None` while it runs), its duration in seconds, and its kaniko `--cache` flag.
pub fn build_of_job(job: &Job) -> (Option<bool>, Option<f64>, Option<bool>) {
    let status = job.status.clone().unwrap_or_default();
    let conds = status.conditions.unwrap_or_default();
    let done = conds.iter().find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
    let outcome = done.map(|c| c.type_ == "Complete");
    let end =
        status.completion_time.map(|t| t.0).or_else(|| done.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0)));
    let duration = match (status.start_time, end) {
        (Some(s), Some(e)) => Some(e.duration_since(s.0).as_secs_f64()),
        _ => None,
    };
    let args = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == "kaniko"))
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    let cache = args
        .iter()
        .find_map(|a| a.strip_prefix("--cache=").map(|v| v == "true"))
        .or_else(|| args.iter().any(|a| a == "--cache").then_some(true));
    (outcome, duration, cache)
}

/// Follows build Job `name` until it finishes (at most `after`), sampling its pod's memory every `every`.
pub async fn follow_job(x: &Ctx<'_>, name: &str, after: Duration, every: Duration) -> Result<KanikoJob> {
    let c = x.c;
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), &c.namespace);
    let (mut w, items) = Watcher::start(
        jobs,
        WatchParams::default().fields(&format!("metadata.name={name}")),
        format!("Kaniko build job {name} to finish"),
    )
    .await?;
    let pm: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.pod_metrics);
    let selector = format!("job-name={name}");
    let mut peak: Option<f64> = None;
    let mut job = items.into_iter().next();
    let deadline = tokio::time::Instant::now() + after;
    let mut tick = tokio::time::interval(every);
    while job.as_ref().is_none_or(|j| build_of_job(j).0.is_none()) {
        tokio::select! {
            ch = w.next() => if let Change::Applied(j) = ch? { job = Some(j) },
            _ = tick.tick() => {
                if let Ok(list) = pm.list(&ListParams::default().labels(&selector)).await {
                    for s in utilization_samples(&list.items, "kaniko") {
                        peak = Some(peak.map_or(s.memory_bytes, |p: f64| p.max(s.memory_bytes)));
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Error::Timeout { what: format!("Kaniko build job {name} to finish"), after, detail: String::new() });
            }
        }
    }
    let job = job.expect("loop ends with a finished job");
    let (outcome, duration_s, cache_enabled) = build_of_job(&job);
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &c.namespace);
    let pod = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::api(format!("list pods of job {name}")))?
        .items
        .into_iter()
        .max_by_key(|p| p.creation_timestamp());
    let (log, oom) = match &pod {
        Some(p) => {
            let log = pods
                .logs(&p.name_any(), &LogParams { container: Some("kaniko".into()), ..LogParams::default() })
                .await
                .map_err(Error::api(format!("logs of pod {} container kaniko", p.name_any())))?;
            (parse_kaniko(&log), !oom_killed(p).is_empty())
        }
        None => {
            return Err(Error::Shape(format!(
                "build job {name} finished but its pod is gone (ttlSecondsAfterFinished too short?)"
            )))
        }
    };
    Ok(KanikoJob {
        job: name.into(),
        succeeded: outcome == Some(true),
        duration_s,
        cache_enabled,
        log,
        peak_memory: peak,
        oom_killed: oom,
    })
}

fn job_of(lambda: &DynamicObject) -> Option<String> {
    lambda.data.pointer("/status/buildStatus/jobName").and_then(Value::as_str).map(str::to_string)
}

/// The patch that makes the operator rebuild (run `n`), and the one that puts the spec back.
fn rebuild_patches(lambda: &DynamicObject, n: u64) -> (Value, Value) {
    let spec = lambda.data.get("spec").cloned().unwrap_or(Value::Null);
    if let (Some("inline"), Some(code)) = (
        spec.pointer("/source/type").and_then(Value::as_str),
        spec.pointer("/source/inline/code").and_then(Value::as_str),
    ) {
        let comment = match spec.pointer("/runtime/language").and_then(Value::as_str) {
            Some("python") => "#",
            _ => "//",
        };
        let changed = format!("{code}\n{comment} perf-acceptance rebuild {n}\n");
        return (
            json!({"spec": {"source": {"inline": {"code": changed}}}}),
            json!({"spec": {"source": {"inline": {"code": code}}}}),
        );
    }
    let before = spec.pointer("/build/forceRebuild").cloned().unwrap_or(Value::Null);
    (
        json!({"metadata": {"annotations": {"perf-acceptance/rebuild": n.to_string()}}, "spec": {"build": {"forceRebuild": true}}}),
        json!({"metadata": {"annotations": {"perf-acceptance/rebuild": null}}, "spec": {"build": {"forceRebuild": before}}}),
    )
}

/// `build` on knative: `runs` operator rebuilds of a `LambdaFunction`, followed job by job.
pub async fn procedure(x: &Ctx<'_>) -> Result<MeasurementSet> {
    let (c, p) = (x.c, x.p);
    let runs = p.count("runs", 5)?;
    let start_to = p.secs("start_timeout_s", 180.0)?;
    let build_to = p.secs("build_timeout_s", 900.0)?;
    let every = p.secs("metrics_interval_s", 5.0)?;
    let f = Function::resolve(c, p.str("function")?).await?;
    let Some(mut lambda) = f.lambda.clone() else {
        return Err(Error::NoFunction {
            name: f.name.clone(),
            namespace: c.namespace.clone(),
            detail: format!(
                "is a plain Knative Service; Kaniko builds need the operator's {} ({})",
                c.apis.lambda.kind, c.apis.lambda.api_version
            ),
        });
    };
    let api: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.lambda);
    let name = lambda.name_any();
    let mut builds = Vec::new();
    let mut restore = None;
    let mut failure = None;
    for n in 1..=runs {
        let prev = job_of(&lambda);
        let (change, back) = rebuild_patches(&lambda, n);
        restore.get_or_insert(back);
        if let Err(e) = api.patch(&name, &PatchParams::default(), &Patch::Merge(&change)).await {
            failure = Some(Error::api(format!("patch {} {name} to trigger a rebuild", c.apis.lambda.kind))(e));
            break;
        }
        let what = format!("{} {name} to start a new Kaniko build job", c.apis.lambda.kind);
        let started = async {
            let (mut w, items) = Watcher::start(
                api.clone(),
                WatchParams::default().fields(&format!("metadata.name={name}")),
                what.clone(),
            )
            .await?;
            let mut latest = items.into_iter().next();
            w.until(
                &mut latest,
                start_to,
                |l, ch| {
                    if let Change::Applied(o) = ch {
                        *l = Some(o)
                    }
                },
                |l| l.as_ref().and_then(job_of).is_some_and(|j| Some(&j) != prev.as_ref()),
            )
            .await?;
            Ok::<_, Error>(latest.expect("until saw it"))
        };
        let result = match started.await {
            Ok(l) => {
                lambda = l;
                follow_job(x, &job_of(&lambda).expect("checked"), build_to, every).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(b) => builds.push(b),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let mut notes = Vec::new();
    if let Some(back) = restore {
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&back)).await {
            Ok(_) => notes.push(format!(
                "{} {name}'s spec was changed to trigger rebuilds and restored after (the operator may build once more)",
                c.apis.lambda.kind
            )),
            Err(e) => notes.push(format!("{} {name}'s spec could NOT be restored: {e}", c.apis.lambda.kind)),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    summarize(x, &builds, notes)
}

fn summarize(x: &Ctx<'_>, builds: &[KanikoJob], mut notes: Vec<String>) -> Result<MeasurementSet> {
    let failed: Vec<&str> = builds.iter().filter(|b| !b.succeeded).map(|b| b.job.as_str()).collect();
    if !failed.is_empty() {
        return Err(Error::Measurement(format!("Kaniko build job(s) failed: {}", failed.join(", "))));
    }
    let raw = x.raw_csv(
        "kaniko-builds.csv",
        "job,duration_s,cache_hits,cache_misses,peak_memory_bytes,oom_killed,rate_limited",
        builds.iter().map(|b| {
            format!(
                "{},{},{},{},{},{},{}",
                b.job,
                b.duration_s.map(|d| d.to_string()).unwrap_or_default(),
                b.log.cache_hits(),
                b.log.cache_misses(),
                b.peak_memory.map(|m| m.to_string()).unwrap_or_default(),
                b.oom_killed,
                b.log.rate_limited
            )
        }),
    )?;
    let durations: Vec<f64> = builds.iter().filter_map(|b| b.duration_s).collect();
    let (hits, lookups) = builds.iter().fold((0, 0), |(h, l), b| (h + b.log.cache_hits(), l + b.log.cache_requests));
    let cache_off = builds.iter().any(|b| b.cache_enabled == Some(false));
    let peak = builds.iter().filter_map(|b| b.peak_memory).reduce(f64::max);
    let mut set = x.set();
    set = set.with("duration", Metric::samples(durations.clone(), "s"));
    set = set.with(
        "layer_cache_hit_rate",
        if lookups > 0 {
            Metric::value(100.0 * f64::from(hits) / f64::from(lookups), "%", u64::from(lookups))
        } else if cache_off {
            Metric::Missing { reason: "Kaniko logged no cache lookups: the build jobs run with --cache=false".into() }
        } else {
            Metric::Missing { reason: "Kaniko logged no cache lookups (no \"Checking for cached layer\" lines)".into() }
        },
    );
    set = set.with(
        "peak_memory",
        match peak {
            Some(m) => Metric::value(m, "B", builds.iter().filter(|b| b.peak_memory.is_some()).count() as u64),
            None => Metric::Missing { reason: "no metrics-server reading of a kaniko container during the builds (metrics-server missing, or builds shorter than its window)".into() },
        },
    );
    let not_here = "not measured by the knative build procedure (sequential Kaniko rebuilds); Dockerfile comparisons run on the local engine, a concurrent batch of LambdaFunctions is not implemented";
    for d in catalog::CATALOG.iter().filter(|d| d.procedure == "build") {
        if !set.metrics.contains_key(d.metric) {
            set = set.with(d.metric, Metric::Missing { reason: not_here.into() });
        }
    }
    if !durations.is_empty() {
        notes.push(format!(
            "{} Kaniko builds, median {:.0}s (Job start to completion, 1 s resolution); cache {hits}/{lookups} hits",
            builds.len(),
            median(&durations)
        ));
    }
    if builds.iter().any(|b| b.oom_killed) {
        notes.push("a Kaniko container was OOM-killed".into());
    }
    set.raw.push(raw);
    set.notes = notes;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_sources_get_a_comment_in_their_language_and_come_back() {
        let l: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "lambda.knative.io/v1alpha1", "kind": "LambdaFunction", "metadata": {"name": "parser"},
            "spec": {"source": {"type": "inline", "inline": {"code": "def handler(e): return e"}}, "runtime": {"language": "python", "version": "3.11"}}
        }))
        .unwrap();
        let (change, back) = rebuild_patches(&l, 2);
        assert_eq!(
            change.pointer("/spec/source/inline/code").unwrap(),
            "def handler(e): return e\n# perf-acceptance rebuild 2\n"
        );
        assert_eq!(back.pointer("/spec/source/inline/code").unwrap(), "def handler(e): return e");
        let s3: DynamicObject =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"source": {"type": "s3"}}})).unwrap();
        let (change, back) = rebuild_patches(&s3, 1);
        assert_eq!(change.pointer("/spec/build/forceRebuild"), Some(&json!(true)));
        assert_eq!(back.pointer("/spec/build/forceRebuild"), Some(&Value::Null));
    }
}
