//! temp
mod cold;
mod connect;
mod error;
mod function;
mod params;
mod route;
mod scale;
mod traffic;
pub mod units;
mod watch;
