//! Load generation: [`LoadSpec`] describes a bounded run (open model on a [`Schedule`] of phases, or closed
//! model with N workers) sending one [`RequestTemplate`] over HTTP/1.1 keep-alive (TLS trusting a given
//! [`Trust`]); [`LoadSpec::run`] returns a [`LoadReport`] with raw and coordinated-omission-corrected latency
//! histograms, errors by class, the per-second timeline and the [`Delivery`] of the asked rate.

mod client;
mod engine;
mod error;
mod histogram;
mod outcome;
mod recorder;
mod report;
mod request;
mod schedule;
mod spec;
mod timeline;
mod tls;
mod worker;

pub use error::Error;
pub use histogram::{LatencyHistogram, HIGHEST_TRACKABLE};
pub use outcome::{Counts, ErrorClass, ErrorCounts};
pub use report::{Delivery, LoadReport, ModelSummary, PhaseReport, Shortfall, StopReason};
pub use request::RequestTemplate;
pub use schedule::{Arrival, ArrivalIter, Arrivals, Phase, Schedule};
pub use spec::{LoadSpec, Model, Observe, Observed, DEFAULT_LATE_TOLERANCE, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT};
pub use timeline::TimelineSecond;
pub use tls::Trust;
pub use worker::{MergedResult, WorkerDelivery, WorkerResult};
