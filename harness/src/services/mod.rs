//! Real servers the suite needs, run as child processes on free loopback ports with temp directories and
//! generated configurations: [`Prometheus`], [`Alertmanager`], [`Pushgateway`], and the suite's own
//! Alertmanager [`WebhookReceiver`]; together a [`Stack`], or the user's servers, as [`Monitoring`].
//! Whatever is started is stopped on drop; leftovers of killed runs are swept at the next start.

mod alertmanager;
pub mod auth;
mod error;
pub mod launch;
pub mod process;
mod prometheus;
mod pushgateway;
mod stack;
pub mod wait;
mod webhook;

pub use alertmanager::{Alertmanager, AlertmanagerOptions};
pub use auth::WebAuth;
pub use error::Error;
pub use prometheus::{Prometheus, PrometheusOptions, ScrapeJob};
pub use pushgateway::{PushClient, Pushgateway};
pub use stack::{
    endpoint_from_env, fixtures_dir, shipped_rule_files, Monitoring, Stack, StackOptions, PUSHGATEWAY_JOB,
};
pub use webhook::{Notification, NotifiedAlert, WebhookReceiver};
