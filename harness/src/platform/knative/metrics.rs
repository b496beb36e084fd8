//! Knative's metric names, current and old. Knative Serving moved from OpenCensus to OpenTelemetry: its
//! autoscaler and queue-proxy now export `kn.revision.*` / `kn.serving.*` instruments (in Prometheus as
//! `kn_revision_pods_desired`, `kn_serving_invocation_duration_seconds_bucket` ..., or with dots kept when
//! the scrape negotiates UTF-8 names), while older releases export `autoscaler_desired_pods`,
//! `revision_app_request_latencies_bucket` and friends. [`FAMILIES`] lists the candidates of each family,
//! current first; [`resolve`] picks, per family, the name the cluster's Prometheus actually has, so queries
//! work on whichever release is installed and a family with no series at all is reported as missing.

use std::{collections::BTreeSet, time::Duration};

use serde_json::Value;

use super::{
    error::{Error, Result},
    route::{HttpRoute, Route},
};

/// A metric family and its candidate series names, most current first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Short key (`desired_pods`).
    pub key: &'static str,
    /// What it measures.
    pub about: &'static str,
    /// Candidate names.
    pub names: &'static [&'static str],
}

/// The Knative families the harness reads.
pub const FAMILIES: &[Family] = &[
    Family {
        key: "desired_pods",
        about: "pods the autoscaler wants per revision",
        names: &["kn_revision_pods_desired", "kn.revision.pods.desired", "autoscaler_desired_pods"],
    },
    Family {
        key: "requested_pods",
        about: "pods the autoscaler requested from Kubernetes",
        names: &["kn_revision_pods_requested", "kn.revision.pods.requested", "autoscaler_requested_pods"],
    },
    Family {
        key: "actual_pods",
        about: "pods allocated to the revision",
        names: &["kn_revision_pods_count", "kn.revision.pods.count", "autoscaler_actual_pods"],
    },
    Family {
        key: "panic_mode",
        about: "whether the autoscaler is in panic mode",
        names: &["kn_revision_panic_mode", "kn.revision.panic.mode", "autoscaler_panic_mode"],
    },
    Family {
        key: "stable_concurrency",
        about: "average concurrency per pod over the stable window",
        names: &[
            "kn_revision_concurrency_stable",
            "kn.revision.concurrency.stable",
            "autoscaler_stable_request_concurrency",
        ],
    },
    Family {
        key: "request_latency",
        about: "request latency histogram of the user container, seen by the queue-proxy",
        names: &[
            "kn_serving_invocation_duration_seconds_bucket",
            "kn.serving.invocation.duration_bucket",
            "revision_app_request_latencies_bucket",
            "revision_request_latencies_bucket",
        ],
    },
    Family {
        key: "queue_depth",
        about: "requests waiting in the queue-proxy",
        names: &["kn_serving_queue_depth", "kn.serving.queue.depth", "queue_depth"],
    },
];

/// The family with key `key`.
pub fn family(key: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.key == key)
}

/// Per family, the first candidate `exposed` has (`None`: the cluster has no series of that family).
pub fn resolve(exposed: &BTreeSet<String>) -> Vec<(&'static Family, Option<&'static str>)> {
    FAMILIES.iter().map(|f| (f, f.names.iter().copied().find(|n| exposed.contains(*n)))).collect()
}

/// The metric names a Prometheus at `base` has series for (`/api/v1/label/__name__/values`).
pub async fn exposed_names(base: &str) -> Result<BTreeSet<String>> {
    let route = HttpRoute::new(base, None, Duration::from_secs(30))?;
    let url = format!("{base}/api/v1/label/__name__/values");
    let reply = route.get("/api/v1/label/__name__/values").await?;
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| Error::Route { url: url.clone(), detail: format!("HTTP {}: not JSON: {e}", reply.status) })?;
    match (body.get("status").and_then(Value::as_str), body.get("data").and_then(Value::as_array)) {
        (Some("success"), Some(names)) => Ok(names.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => Err(Error::Route { url, detail: format!("HTTP {}: {body}", reply.status) }),
    }
}

/// A note for the report: which name each family has in the Prometheus at `base`, and which have none.
pub async fn names_note(base: &str) -> String {
    match exposed_names(base).await {
        Ok(names) => {
            let r = resolve(&names);
            let found: Vec<String> = r.iter().filter_map(|(f, n)| n.map(|n| format!("{} as {n}", f.key))).collect();
            let missing: Vec<&str> = r.iter().filter(|(_, n)| n.is_none()).map(|(f, _)| f.key).collect();
            format!(
                "Knative metrics in Prometheus at {base}: {}; no series for: {}",
                if found.is_empty() { "none".to_string() } else { found.join(", ") },
                if missing.is_empty() { "-".to_string() } else { missing.join(", ") }
            )
        }
        Err(e) => format!("Knative metric names could not be read from Prometheus at {base}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{body::Incoming, service::service_fn, Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn names_are_read_from_the_label_values_api() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = if req.uri().path() == "/api/v1/label/__name__/values" {
                        r#"{"status":"success","data":["autoscaler_actual_pods","kn_revision_pods_desired","up"]}"#
                    } else {
                        r#"{"status":"error","errorType":"bad_data","error":"unknown path"}"#
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            }
        });
        let names = exposed_names(&base).await.unwrap();
        assert_eq!(names.len(), 3);
        let note = names_note(&base).await;
        assert!(
            note.contains("desired_pods as kn_revision_pods_desired")
                && note.contains("actual_pods as autoscaler_actual_pods"),
            "{note}"
        );
        assert!(note.contains("no series for: requested_pods, panic_mode"), "{note}");
        server.abort();
        let _ = server.await;
        let refused = names_note(&base).await;
        assert!(refused.contains("could not be read"), "{refused}");
    }

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn current_names_win_and_old_ones_are_found() {
        let old = names(&["autoscaler_desired_pods", "revision_app_request_latencies_bucket", "up"]);
        let r = resolve(&old);
        let pick = |k: &str| r.iter().find(|(f, _)| f.key == k).and_then(|(_, n)| *n);
        assert_eq!(pick("desired_pods"), Some("autoscaler_desired_pods"));
        assert_eq!(pick("request_latency"), Some("revision_app_request_latencies_bucket"));
        assert_eq!(pick("panic_mode"), None);
        let both = names(&["autoscaler_desired_pods", "kn_revision_pods_desired", "kn.serving.queue.depth"]);
        let r = resolve(&both);
        let pick = |k: &str| r.iter().find(|(f, _)| f.key == k).and_then(|(_, n)| *n);
        assert_eq!(pick("desired_pods"), Some("kn_revision_pods_desired"));
        assert_eq!(pick("queue_depth"), Some("kn.serving.queue.depth"));
        assert_eq!(family("actual_pods").unwrap().names[2], "autoscaler_actual_pods");
    }
}
