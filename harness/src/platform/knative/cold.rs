//! Scale from zero: [`wait_no_pods`] waits until a revision has no pod left, [`cold_sample`] then sends one
//! request through the route and times, on the client's clock, the first answer, the revision's Deployment
//! leaving zero replicas and the first pod turning Ready (all from watch events: the API server's own
//! timestamps have one-second resolution, so the client time decides). [`PodReadiness`] remembers when each
//! pod of a revision turned Ready, so a request can be told cold (its pod was not ready when it was sent).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    api::{Api, DynamicObject, WatchParams},
    ResourceExt,
};
use tokio::time::Instant;

use super::{
    connect::Cluster,
    error::{Error, Result},
    function::{Function, Revision},
    route::{Reply, Route, Served},
    watch::{describe_pod, pod_alive, pod_ready, Change, Watcher},
};

/// How long the watches may lag behind the answer before a sample is given up.
const WATCH_GRACE: Duration = Duration::from_secs(10);

/// One scale-from-zero measured on the client's clock, from the moment the request was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdSample {
    /// Until the answer arrived, in seconds.
    pub client_s: f64,
    /// Until the Deployment asked for replicas (left 0), in seconds, if the watch saw it.
    pub scaled_s: Option<f64>,
    /// Until the first pod of the revision was Ready, in seconds.
    pub ready_s: f64,
    /// That pod.
    pub pod: String,
    /// The answer's status.
    pub status: u16,
    /// What the function said about the serving environment, if it says.
    pub served: Option<Served>,
}

fn pods_api(c: &Cluster) -> Api<Pod> {
    Api::namespaced(c.client.clone(), &c.namespace)
}

/// Waits, for at most `after`, until revision `rev` has no pod that still serves (pods being deleted or
/// finished do not count).
pub async fn wait_no_pods(c: &Cluster, rev: &Revision, after: Duration) -> Result<()> {
    let what = format!("revision {} to scale to zero pods", rev.name);
    let (mut w, items) = Watcher::start(pods_api(c), WatchParams::default().labels(&rev.selector()), what).await?;
    let mut alive: BTreeMap<String, bool> = items.iter().map(|p| (p.name_any(), pod_alive(p))).collect();
    w.until(
        &mut alive,
        after,
        |alive, change| match change {
            Change::Applied(p) => {
                alive.insert(p.name_any(), pod_alive(&p));
            }
            Change::Deleted(p) => {
                alive.remove(&p.name_any());
            }
        },
        |alive| alive.values().all(|a| !a),
    )
    .await
    .map_err(|e| match e {
        Error::Timeout { what, after, .. } => {
            let left: Vec<&String> = alive.iter().filter(|(_, a)| **a).map(|(n, _)| n).collect();
            let detail = format!(": still running: {left:?}; is min-scale above 0, or is traffic still reaching it?");
            Error::Timeout { what, after, detail }
        }
        e => e,
    })
}

#[derive(Default)]
struct ColdState {
    reply: Option<(f64, Reply)>,
    scaled: Option<f64>,
    ready: Option<(f64, String)>,
    pods: BTreeMap<String, Pod>,
}

/// One scale from zero of revision `rev` (which must have no pod now): sends GET `path` through `route`
/// and waits, for at most `after`, for the answer and for the watches to report the pod Ready. A pod that
/// never becomes ready ends in a timeout naming the pod with its conditions, container states and events.
pub async fn cold_sample<R: Route>(
    c: &Cluster,
    rev: &Revision,
    route: &R,
    path: &str,
    after: Duration,
) -> Result<ColdSample> {
    let sel = WatchParams::default().labels(&rev.selector());
    let (mut pod_w, _) = Watcher::start(pods_api(c), sel.clone(), format!("pods of revision {}", rev.name)).await?;
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), &c.namespace);
    let (mut dep_w, _) = Watcher::start(deployments, sel, format!("deployment of revision {}", rev.name)).await?;
    let t0 = Instant::now();
    let deadline = t0 + after;
    let request = route.get(path);
    tokio::pin!(request);
    let mut st = ColdState::default();
    loop {
        if st.reply.is_some() && st.ready.is_some() && st.scaled.is_some() {
            break;
        }
        let limit = match &st.reply {
            Some((at, _)) => deadline.min(t0 + Duration::from_secs_f64(*at) + WATCH_GRACE),
            None => deadline,
        };
        tokio::select! {
            r = &mut request, if st.reply.is_none() => st.reply = Some((t0.elapsed().as_secs_f64(), r?)),
            ch = pod_w.next(), if st.ready.is_none() => match ch? {
                Change::Applied(p) => {
                    if pod_alive(&p) && pod_ready(&p) {
                        st.ready = Some((t0.elapsed().as_secs_f64(), p.name_any()));
                    }
                    st.pods.insert(p.name_any(), p);
                }
                Change::Deleted(p) => {
                    st.pods.remove(&p.name_any());
                }
            },
            ch = dep_w.next(), if st.scaled.is_none() => {
                if let Change::Applied(d) = ch? {
                    if d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0 {
                        st.scaled = Some(t0.elapsed().as_secs_f64());
                    }
                }
            },
            _ = tokio::time::sleep_until(limit) => break,
        }
    }
    match (st.reply, st.ready) {
        (Some((client_s, reply)), Some((ready_s, pod))) => {
            Ok(ColdSample { client_s, scaled_s: st.scaled, ready_s, pod, status: reply.status, served: reply.served() })
        }
        (reply, _) => {
            let events = Api::namespaced(c.client.clone(), &c.namespace);
            let mut described = Vec::new();
            for p in st.pods.values().filter(|p| pod_alive(p)) {
                described.push(describe_pod(&events, p).await);
            }
            let detail = match (reply.is_some(), described.is_empty(), st.scaled.is_some()) {
                (true, _, _) => format!(": the answer came but no pod of revision {} was seen Ready", rev.name),
                (false, false, _) => format!(": {}", described.join(" | ")),
                (false, true, true) => {
                    format!(": the deployment of revision {} asked for a pod but none was created", rev.name)
                }
                (false, true, false) => format!(
                    ": the deployment of revision {} never left 0 replicas (is the activator routing {}?)",
                    rev.name,
                    route.describe()
                ),
            };
            Err(Error::Timeout {
                what: format!(
                    "the first answer from {} after scaling revision {} from zero",
                    route.describe(),
                    rev.name
                ),
                after,
                detail,
            })
        }
    }
}

/// Waits, for at most `after`, until Knative Service `f` reports a ready revision other than `old`, and
/// returns the function re-read with that revision.
pub async fn wait_new_revision(c: &Cluster, f: &Function, old: &str, after: Duration) -> Result<(Function, Revision)> {
    let api: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), &c.namespace, &c.apis.service);
    let name = f.service_name();
    let what = format!("Knative Service {name} to roll out a new ready revision (replacing {old})");
    let (mut w, items) =
        Watcher::start(api, WatchParams::default().fields(&format!("metadata.name={name}")), what).await?;
    let ready_new = |s: &DynamicObject| {
        let st = s.data.get("status")?;
        let ready = st.get("latestReadyRevisionName")?.as_str()?;
        let created = st.get("latestCreatedRevisionName").and_then(|v| v.as_str()).unwrap_or(ready);
        (ready != old && ready == created).then(|| ready.to_string())
    };
    let mut latest: Option<DynamicObject> = items.into_iter().next();
    w.until(
        &mut latest,
        after,
        |l, ch| {
            if let Change::Applied(s) = ch {
                *l = Some(s);
            }
        },
        |l| l.as_ref().and_then(ready_new).is_some(),
    )
    .await?;
    let service = latest.expect("until returned, so a service was seen");
    let rev_name = ready_new(&service).expect("until returned, so it is ready");
    let f = Function { service, ..f.clone() };
    let rev = Revision::get(c, &rev_name).await?;
    Ok((f, rev))
}

/// When each pod of a revision turned Ready, on the client's clock, kept current by a watch task.
#[derive(Debug, Clone, Default)]
pub struct PodReadiness(Arc<Mutex<BTreeMap<String, Instant>>>);

impl PodReadiness {
    /// Starts watching the pods of `rev`; pods already Ready count as ready since now. The task ends when
    /// the returned handle is aborted or the watch fails.
    pub async fn track(c: &Cluster, rev: &Revision) -> Result<(PodReadiness, tokio::task::JoinHandle<Result<()>>)> {
        let (mut w, items) = Watcher::start(
            pods_api(c),
            WatchParams::default().labels(&rev.selector()),
            format!("pods of revision {}", rev.name),
        )
        .await?;
        let this = PodReadiness::default();
        let now = Instant::now();
        {
            let mut m = this.0.lock().expect("readiness lock");
            for p in items.iter().filter(|p| pod_alive(p) && pod_ready(p)) {
                m.insert(p.name_any(), now);
            }
        }
        let map = this.0.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Change::Applied(p) = w.next().await? {
                    if pod_ready(&p) {
                        map.lock().expect("readiness lock").entry(p.name_any()).or_insert_with(Instant::now);
                    }
                }
            }
        });
        Ok((this, task))
    }

    /// When `pod` turned Ready, if it did.
    pub fn ready_at(&self, pod: &str) -> Option<Instant> {
        self.0.lock().expect("readiness lock").get(pod).copied()
    }
}
