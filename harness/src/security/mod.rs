//! Security checks on performance data and on the controls around it: a secret [`Scanner`] for metrics,
//! configuration, logs and reports, a [`Redactor`] for what the harness writes, and checks that endpoints
//! require credentials, that stage throttling holds under a burst, what TLS costs, that configuration
//! changes are audited, and that all of this still holds after a tuned configuration is applied.

pub mod audit;
pub mod auth;
pub mod aws;
mod detect;
mod error;
pub mod http;
pub mod local;
pub mod procedure;
pub mod ratelimit;
mod redact;
mod scan;
pub mod subject;
pub mod tls;

pub use detect::{shannon_entropy, Kind};
pub use error::Error;
pub use procedure::{measure, run};
pub use redact::{redact, Redactor, MIN_REDACT_LEN, REDACTED};
pub use scan::{fingerprint, Finding, Location, Scanner, MIN_KNOWN_LEN};
pub use subject::{FrontDoor, MetricsFormat, MetricsSource, SecuritySubject, Surface};
