//! Metrics from real servers: the Prometheus HTTP API ([`PromClient`]), the Alertmanager API
//! ([`AmClient`]), Prometheus text exposition ([`exposition`]) and bucketed quantiles ([`quantile`]), over a
//! small authenticated HTTP client ([`http`]); Grafana [`dashboard`] queries.

mod alertmanager;
pub mod dashboard;
mod error;
pub mod exposition;
pub mod http;
mod prometheus;
pub mod quantile;

pub use alertmanager::{AmAlert, AmClient, AmStatus};
pub use error::Error;
pub use http::{Auth, Endpoint, HttpClient};
pub use prometheus::{promql_string, Alert, PromClient, Rule, RuleGroup, Sample, ScrapeTarget, Series};
