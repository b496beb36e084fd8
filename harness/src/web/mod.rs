//! The SecureBase portal on the local target: [`PortalStack`] (Redis, PostgreSQL, the portal's origin and
//! API, nginx as the CDN), the fault [`Knobs`] that break it on purpose, and the `portal` procedure that
//! measures on it the guide's page load and TTFB (headless Chromium), cache hit rates and database
//! query time.

pub mod browser;
mod error;
mod lighthouse;
pub mod nginx;
pub mod origin;
pub mod postgres;
mod procedure;
pub mod redis;
mod stack;

pub use error::Error;
pub use procedure::{run, PortalParams};
pub use stack::{Knobs, PortalStack};
