//! perf-acceptance: validates serverless performance acceptance criteria against deployed targets.
//!
//! A [`criteria::Profile`] lists checks; [`run`] takes the measurements they need from a target once per run
//! and decides each check from evidence; [`report`] writes what was decided.

pub mod build;
pub mod baseline;
pub mod criteria;
pub mod evidence;
pub mod fingerprint;
pub mod local;
pub mod load;
pub mod measure;
pub mod progress;
pub mod metrics;
pub mod report;
pub mod run;
pub mod services;
pub mod security;
pub mod stats;
pub mod target;
pub mod terraform;
