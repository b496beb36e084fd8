//! Regression detection: the run [`History`] (JSON lines with the environment fingerprint), named
//! [`Baseline`]s, the regression [`decide`]sion (threshold, significance and the environment's noise band),
//! [`compare`] of a run with a baseline, [`Trend`]s with change points, and [`simulate`]d runs to judge the
//! decision's detection and false-alarm rates; [`scenario`] records the in-run scenario sessions of the
//! regression procedure.

mod compare;
mod decision;
mod error;
mod history;
pub mod named;
mod noise;
pub mod scenario;
pub mod simulate;
pub mod text;
mod trend;

pub use compare::{compare, Comparison, Mode, Options, Row};
pub use decision::{
    decide, normal_cdf, normal_quantile, student_t_quantile, Estimate, Noise, Outcome, Rule, Undecided, Verdict,
    SIGNIFICANCE, Z95,
};
pub use error::Error;
pub use history::{run_ids, Direction, History, Record, FILE as HISTORY_FILE};
pub use named::Baseline;
pub use noise::{measure_noise, MIN_RUNS};
pub use trend::{change_points, trend, ChangePoint, Point, Trend, MIN_SIDE, WINDOW, Z};
