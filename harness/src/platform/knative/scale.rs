//! A revision's scale over time: [`ScaleTracker`] watches the revision's Deployment (desired =
//! `spec.replicas`, which the Knative autoscaler sets; ready = `status.readyReplicas`) and logs every change
//! on the client's clock; [`Sampler`] adds a once-a-second series with the requests in flight. Two pure
//! analyses read the log: [`scale_up_latency`] (how long a spike waited for the pods the autoscaler asked
//! for) and [`premature_scale_downs`] (pods removed before the stable window after the last traffic ended).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, WatchParams};
use serde::Serialize;
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use super::{
    connect::Cluster,
    error::{Error, Result},
    function::Revision,
    traffic::InFlight,
    watch::{Change, Watcher},
};

/// The scale of a revision at a moment, `t` seconds after tracking began.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScalePoint {
    /// Seconds since the tracker started.
    pub t: f64,
    /// Pods the autoscaler asked for.
    pub desired: u32,
    /// Pods ready.
    pub ready: u32,
}

fn point(t: f64, d: &Deployment) -> ScalePoint {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
    let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32;
    ScalePoint { t, desired, ready }
}

/// Watches a revision's Deployment and logs its scale.
pub struct ScaleTracker {
    start: Instant,
    log: Arc<Mutex<Vec<ScalePoint>>>,
    latest: watch::Receiver<ScalePoint>,
    task: JoinHandle<Result<()>>,
    revision: String,
}

impl Drop for ScaleTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScaleTracker {
    /// Starts tracking revision `rev`.
    pub async fn start(c: &Cluster, rev: &Revision) -> Result<ScaleTracker> {
        let api: Api<Deployment> = Api::namespaced(c.client.clone(), &c.namespace);
        let (mut w, items) = Watcher::start(
            api,
            WatchParams::default().labels(&rev.selector()),
            format!("deployment of revision {}", rev.name),
        )
        .await?;
        let start = Instant::now();
        let first = items.first().map(|d| point(0.0, d)).unwrap_or(ScalePoint { t: 0.0, desired: 0, ready: 0 });
        let log = Arc::new(Mutex::new(vec![first]));
        let (tx, latest) = watch::channel(first);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let p = match w.next().await? {
                    Change::Applied(d) => point(start.elapsed().as_secs_f64(), &d),
                    Change::Deleted(_) => ScalePoint { t: start.elapsed().as_secs_f64(), desired: 0, ready: 0 },
                };
                let mut log = task_log.lock().expect("scale log lock");
                if log.last().is_none_or(|l| (l.desired, l.ready) != (p.desired, p.ready)) {
                    log.push(p);
                    let _ = tx.send(p);
                }
            }
        });
        Ok(ScaleTracker { start, log, latest, task, revision: rev.name.clone() })
    }

    /// Seconds since tracking began.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The latest scale.
    pub fn latest(&self) -> ScalePoint {
        *self.latest.borrow()
    }

    /// Every change so far.
    pub fn log(&self) -> Vec<ScalePoint> {
        self.log.lock().expect("scale log lock").clone()
    }

    /// Waits, for at most `after`, until the scale satisfies `pred`; `what` describes the state awaited.
    pub async fn wait(&mut self, after: Duration, what: &str, pred: impl Fn(&ScalePoint) -> bool) -> Result<()> {
        if self.task.is_finished() {
            return Err(Error::Shape(format!("the watch of revision {}'s deployment ended", self.revision)));
        }
        let timeout = |latest: ScalePoint| Error::Timeout {
            what: format!("revision {} to reach {what}", self.revision),
            after,
            detail: format!(": last seen {} desired, {} ready", latest.desired, latest.ready),
        };
        let outcome = tokio::time::timeout(after, self.latest.wait_for(|p| pred(p))).await.map(|r| r.is_ok());
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Shape(format!("the watch of revision {}'s deployment ended", self.revision))),
            Err(_) => Err(timeout(self.latest())),
        }
    }

    /// A once-a-second sampler of this tracker and `in_flight`.
    pub fn sampler(&self, in_flight: &InFlight) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (latest, start, in_flight) = (self.latest.clone(), self.start, in_flight.clone());
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let p = *latest.borrow();
                        out.push(Sample { t: start.elapsed().as_secs_f64(), desired: p.desired, ready: p.ready, in_flight: in_flight.get() });
                    }
                    _ = &mut stopped => return out,
                }
            }
        });
        Sampler { stop, task }
    }
}

/// One second of a scaling run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since tracking began.
    pub t: f64,
    /// Pods the autoscaler asked for.
    pub desired: u32,
    /// Pods ready.
    pub ready: u32,
    /// Requests in flight.
    pub in_flight: u64,
}

/// A running once-a-second sampler.
pub struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Stops sampling and returns the series.
    pub async fn finish(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// How one spike was served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpikeOutcome {
    /// Spike start, seconds since tracking began.
    pub start: f64,
    /// Ready pods when it started.
    pub baseline_ready: u32,
    /// Most pods the autoscaler asked for during the spike.
    pub needed: u32,
    /// Seconds from the start until that many pods were ready; `None` if they never were during the spike.
    pub latency: Option<f64>,
}

fn at(log: &[ScalePoint], t: f64) -> ScalePoint {
    log.iter().take_while(|p| p.t <= t).last().copied().unwrap_or(ScalePoint { t, desired: 0, ready: 0 })
}

/// Scale-up latency of a spike from `start` to `end`: the time until the pods the autoscaler asked for at
/// its peak during the spike were ready (0 when the pods ready at the start already sufficed).
pub fn scale_up_latency(log: &[ScalePoint], start: f64, end: f64) -> SpikeOutcome {
    let base = at(log, start);
    let during = log.iter().filter(|p| p.t > start && p.t <= end);
    let needed = during.clone().map(|p| p.desired).max().unwrap_or(0).max(base.desired);
    let latency =
        if needed <= base.ready { Some(0.0) } else { during.clone().find(|p| p.ready >= needed).map(|p| p.t - start) };
    SpikeOutcome { start, baseline_ready: base.ready, needed, latency }
}

/// A decision of the autoscaler to run fewer pods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleDown {
    /// When, seconds since tracking began.
    pub t: f64,
    /// Desired pods before.
    pub from: u32,
    /// Desired pods after.
    pub to: u32,
    /// Seconds since the last traffic ended (0 while traffic ran); `None` before any traffic.
    pub since_traffic: Option<f64>,
    /// Whether it came before the stable window had passed since the last traffic.
    pub premature: bool,
}

/// Every scale-down in `log` with whether it was premature: earlier than `window` (less `tolerance`, for
/// watch delivery) after the end of the last traffic interval, or during traffic.
pub fn premature_scale_downs(
    log: &[ScalePoint],
    traffic: &[(f64, f64)],
    window: f64,
    tolerance: f64,
) -> Vec<ScaleDown> {
    log.windows(2)
        .filter(|w| w[1].desired < w[0].desired)
        .map(|w| {
            let t = w[1].t;
            let since_traffic = if traffic.iter().any(|(s, e)| *s <= t && t <= *e) {
                Some(0.0)
            } else {
                traffic.iter().filter(|(_, e)| *e <= t).map(|(_, e)| t - e).reduce(f64::min)
            };
            let premature = since_traffic.is_some_and(|s| s < window - tolerance);
            ScaleDown { t, from: w[0].desired, to: w[1].desired, since_traffic, premature }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(points: &[(f64, u32, u32)]) -> Vec<ScalePoint> {
        points.iter().map(|&(t, desired, ready)| ScalePoint { t, desired, ready }).collect()
    }

    #[test]
    fn scale_up_waits_for_the_peak_the_autoscaler_asked_for() {
        let l = log(&[(0.0, 0, 0), (10.4, 1, 0), (11.0, 3, 0), (12.1, 3, 1), (13.9, 3, 3), (40.0, 3, 3)]);
        let s = scale_up_latency(&l, 10.0, 30.0);
        assert_eq!((s.baseline_ready, s.needed), (0, 3));
        assert!((s.latency.unwrap() - 3.9).abs() < 1e-9);
        let never = scale_up_latency(&log(&[(0.0, 0, 0), (1.0, 2, 0), (2.0, 2, 1)]), 0.5, 5.0);
        assert_eq!((never.needed, never.latency), (2, None));
        let enough = scale_up_latency(&log(&[(0.0, 2, 2), (3.0, 2, 2)]), 1.0, 5.0);
        assert_eq!(enough.latency, Some(0.0));
    }

    #[test]
    fn scale_downs_inside_the_stable_window_are_premature() {
        let traffic = [(10.0, 20.0), (40.0, 50.0)];
        let l = log(&[(0.0, 1, 1), (12.0, 4, 4), (35.0, 2, 2), (45.0, 4, 4), (80.0, 3, 3), (115.0, 0, 0)]);
        let d = premature_scale_downs(&l, &traffic, 60.0, 2.0);
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].from, d[0].to, d[0].since_traffic, d[0].premature), (4, 2, Some(15.0), true));
        assert_eq!((d[1].since_traffic, d[1].premature), (Some(30.0), true));
        assert_eq!((d[2].since_traffic, d[2].premature), (Some(65.0), false));
        let premature_pods: u32 = d.iter().filter(|s| s.premature).map(|s| s.from - s.to).sum();
        assert_eq!(premature_pods, 3);
        let before = premature_scale_downs(&log(&[(0.0, 2, 2), (1.0, 1, 1)]), &traffic, 60.0, 2.0);
        assert_eq!((before[0].since_traffic, before[0].premature), (None, false));
        let during = premature_scale_downs(&log(&[(0.0, 3, 3), (15.0, 2, 2)]), &traffic, 60.0, 2.0);
        assert!(during[0].premature);
    }
}
