//! The acceptance criteria as data: [`Profile`]s of [`Check`]s, each an [`Expectation`] on a metric of the
//! measurement [`catalog`].

pub mod catalog;
mod profile;
mod threshold;

pub use profile::{Check, Decision, Error, Params, Profile, TargetKind};
pub use threshold::{fmt_num, Dimension, Expectation, Op, ParseError, Statistic, Unit};
