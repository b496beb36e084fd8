//! The knative target: functions served by Knative Serving on Kubernetes (a Knative Service, or the
//! knative-lambda-operator's `LambdaFunction`, which builds its image with Kaniko and owns a Service),
//! reached through kube-rs with dynamic objects and measured by watching pods, deployments and jobs.
//!
//! [`connect`] builds the client from the kubeconfig; [`measure`] runs the procedures this target
//! implements ([`PROCEDURES`]); the building blocks are public so that procedures can be composed and
//! tested against a mocked API server.

mod cold;
mod connect;
mod error;
mod function;
mod kaniko;
pub mod metrics;
mod params;
mod proc_scale;
mod proc_start;
mod procedures;
mod resources;
mod route;
mod scale;
mod traffic;
pub mod units;
mod watch;

pub use cold::{cold_sample, wait_new_revision, wait_no_pods, ColdSample, PodReadiness};
pub use connect::{connect, pick_context, preflight, Apis, Cluster, Origin, DEFAULT_LAMBDA_API, DEFAULT_SERVING_API};
pub use error::{Error, Result};
pub use function::{annotation, cluster_stable_window, Function, Revision, Source};
pub use kaniko::{build_of_job, follow_job, KanikoJob};
pub use params::P;
pub use procedures::{measure, run, Ctx, PROCEDURES};
pub use resources::{join_usage, limits_report, utilization_samples, LimitsFinding, UsageSample};
pub use route::{HttpRoute, Reply, Route, Served};
pub use scale::{
    premature_scale_downs, scale_up_latency, Sample, Sampler, ScaleDown, ScalePoint, ScaleTracker, SpikeOutcome,
};
pub use traffic::{closed_loop, constant_rate, InFlight, Tally};
pub use watch::{describe_pod, oom_killed, pod_alive, pod_ready, restarts, Change, Watcher};
