//! perf-acceptance: validates serverless performance acceptance criteria against deployed targets.
//!
//! A [`criteria::Profile`] lists checks; [`run`] takes the measurements they need from a target once per run
//! and decides each check from evidence; [`report`] writes what was decided.

pub mod baseline;
pub mod criteria;
pub mod evidence;
pub mod fingerprint;
pub mod image_build;
pub mod interrupt;
pub mod kind;
pub mod load;
pub mod local;
pub mod measure;
pub mod metrics;
pub mod platform;
pub mod progress;
pub mod report;
pub mod restore;
pub mod run;
pub mod run_dir;
pub mod security;
pub mod services;
pub mod stats;
pub mod terraform;
pub mod web;
