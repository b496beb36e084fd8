//! [`Watcher`]: a Kubernetes watch that survives the server closing it (it resumes from the last resource
//! version, or from a fresh list after `410 Gone`), plus what the procedures read from pods: readiness,
//! OOM kills, and a description of a pod that never became ready (conditions, container states, events).
//!
//! Readiness is data from the watch, never a poll; every wait on a [`Watcher`] runs under a deadline. A
//! watcher starts with a list (so it knows the current state, also when nothing matches) and then watches
//! from the list's resource version.

use std::{
    collections::{BTreeSet, VecDeque},
    fmt::Debug,
    time::Duration,
};

use futures::{stream::BoxStream, StreamExt};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    api::{Api, ListParams, WatchEvent, WatchParams},
    Resource, ResourceExt,
};
use serde::de::DeserializeOwned;

use super::error::{Error, Result};

/// One change seen by a watch.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// Added or modified: the object as it is now.
    Applied(K),
    /// Deleted: the object as it was last.
    Deleted(K),
}

/// A resumable watch over `K` objects matching `params`.
pub struct Watcher<K> {
    api: Api<K>,
    params: WatchParams,
    version: String,
    stream: Option<BoxStream<'static, kube::Result<WatchEvent<K>>>>,
    what: String,
    quiet_reconnects: u32,
    known: BTreeSet<String>,
    queued: VecDeque<Change<K>>,
}

impl<K> Watcher<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    /// Lists the objects matching `params` and starts watching from the list's resource version, so the
    /// watcher knows the current state (returned) and every change after it. `what` names it in errors.
    pub async fn start(api: Api<K>, params: WatchParams, what: impl Into<String>) -> Result<(Self, Vec<K>)> {
        let what = what.into();
        let mut w = Watcher {
            api,
            params,
            version: String::new(),
            stream: None,
            what,
            quiet_reconnects: 0,
            known: BTreeSet::new(),
            queued: VecDeque::new(),
        };
        let items = w.list().await?;
        w.known = items.iter().map(|o| o.name_any()).collect();
        w.connect().await?;
        Ok((w, items))
    }

    async fn list(&mut self) -> Result<Vec<K>> {
        let mut lp = ListParams::default();
        if let Some(l) = &self.params.label_selector {
            lp = lp.labels(l);
        }
        if let Some(f) = &self.params.field_selector {
            lp = lp.fields(f);
        }
        let list = self.api.list(&lp).await.map_err(Error::api(format!("list {}", self.what)))?;
        self.version = list.metadata.resource_version.clone().unwrap_or_else(|| "0".into());
        Ok(list.items)
    }

    /// After `410 Gone`: lists again and queues the differences as changes.
    async fn relist(&mut self) -> Result<()> {
        let items = self.list().await?;
        let now: BTreeSet<String> = items.iter().map(|o| o.name_any()).collect();
        for gone in self.known.difference(&now) {
            let mut o: K = serde_json::from_value(serde_json::json!({ "metadata": { "name": gone } }))
                .map_err(|e| Error::Shape(format!("watch {}: {e}", self.what)))?;
            o.meta_mut().name = Some(gone.clone());
            self.queued.push_back(Change::Deleted(o));
        }
        self.known = now;
        self.queued.extend(items.into_iter().map(Change::Applied));
        Ok(())
    }

    /// What this watch is about.
    pub fn what(&self) -> &str {
        &self.what
    }

    async fn connect(&mut self) -> Result<()> {
        let stream =
            self.api.watch(&self.params, &self.version).await.map_err(Error::api(format!("watch {}", self.what)))?;
        self.stream = Some(stream.boxed());
        Ok(())
    }

    /// The next change, waiting as long as it takes (wrap it in a deadline).
    pub async fn next(&mut self) -> Result<Change<K>> {
        loop {
            if let Some(change) = self.queued.pop_front() {
                return Ok(change);
            }
            let Some(stream) = self.stream.as_mut() else {
                if self.quiet_reconnects > 0 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                self.connect().await?;
                continue;
            };
            let event = match stream.next().await {
                None => {
                    self.stream = None;
                    self.quiet_reconnects += 1;
                    continue;
                }
                Some(Err(e)) => return Err(Error::api(format!("watch {}", self.what))(e)),
                Some(Ok(ev)) => ev,
            };
            self.quiet_reconnects = 0;
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    self.remember(&o);
                    self.known.insert(o.name_any());
                    return Ok(Change::Applied(o));
                }
                WatchEvent::Deleted(o) => {
                    self.remember(&o);
                    self.known.remove(&o.name_any());
                    return Ok(Change::Deleted(o));
                }
                WatchEvent::Bookmark(b) => self.version = b.metadata.resource_version,
                WatchEvent::Error(s) if s.code == 410 => {
                    self.stream = None;
                    self.relist().await?;
                }
                WatchEvent::Error(s) => {
                    return Err(Error::Shape(format!(
                        "watch {}: API server error {} {}: {}",
                        self.what, s.code, s.reason, s.message
                    )));
                }
            }
        }
    }

    fn remember(&mut self, o: &K) {
        if let Some(v) = o.resource_version() {
            self.version = v;
        }
    }

    /// Waits until `done` holds for the state folded from changes by `apply`, for at most `after`; the
    /// timeout error names the watch.
    pub async fn until<S>(
        &mut self,
        state: &mut S,
        after: Duration,
        mut apply: impl FnMut(&mut S, Change<K>),
        mut done: impl FnMut(&S) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + after;
        while !done(state) {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(change) => apply(state, change?),
                Err(_) => return Err(Error::Timeout { what: self.what.clone(), after, detail: String::new() }),
            }
        }
        Ok(())
    }
}

/// Whether the pod's `Ready` condition is true.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether the pod still counts as an environment: not being deleted and not finished.
pub fn pod_alive(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    p.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

/// Containers of the pod that were killed for exceeding their memory limit (current or last state).
pub fn oom_killed(p: &Pod) -> Vec<String> {
    let statuses = p.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .filter(|cs| {
            let now = cs.state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.reason.as_deref());
            let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.reason.as_deref());
            now == Some(Some("OOMKilled")) || last == Some(Some("OOMKilled"))
        })
        .map(|cs| cs.name.clone())
        .collect()
}

/// Restarts of the pod's containers.
pub fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// A one-paragraph account of why `pod` is not ready: phase, conditions, container states and its latest
/// events (read from the API; when they cannot be read, that is said instead).
pub async fn describe_pod(events: &Api<Event>, pod: &Pod) -> String {
    let name = pod.name_any();
    let status = pod.status.clone().unwrap_or_default();
    let mut parts = vec![format!("pod {name} is {}", status.phase.as_deref().unwrap_or("Pending"))];
    let conds: Vec<String> = status
        .conditions
        .unwrap_or_default()
        .iter()
        .filter(|c| c.status != "True")
        .map(|c| {
            let why = [c.reason.as_deref(), c.message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
            if why.is_empty() {
                format!("{}={}", c.type_, c.status)
            } else {
                format!("{}={} ({why})", c.type_, c.status)
            }
        })
        .collect();
    if !conds.is_empty() {
        parts.push(format!("conditions {}", conds.join(", ")));
    }
    let waiting: Vec<String> = status
        .container_statuses
        .unwrap_or_default()
        .iter()
        .filter_map(|cs| {
            let w = cs.state.as_ref()?.waiting.as_ref()?;
            Some(format!(
                "{} waiting ({}{})",
                cs.name,
                w.reason.as_deref().unwrap_or("?"),
                w.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            ))
        })
        .collect();
    if !waiting.is_empty() {
        parts.push(format!("containers {}", waiting.join(", ")));
    }
    match events.list(&ListParams::default().fields(&format!("involvedObject.name={name}"))).await {
        Ok(list) => {
            let mut evs = list.items;
            evs.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0).or(e.event_time.as_ref().map(|t| t.0)));
            let shown: Vec<String> = evs
                .iter()
                .rev()
                .take(5)
                .map(|e| {
                    format!(
                        "{} {}: {}",
                        e.type_.as_deref().unwrap_or(""),
                        e.reason.as_deref().unwrap_or(""),
                        e.message.as_deref().unwrap_or("").trim()
                    )
                })
                .collect();
            if shown.is_empty() {
                parts.push("no events".into());
            } else {
                parts.push(format!("events: {}", shown.join("; ")));
            }
        }
        Err(e) => parts.push(format!("events could not be read ({e})")),
    }
    parts.join("; ")
}
