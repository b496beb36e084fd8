//! [`Error`]: why a load run could not be set up, or reports could not be merged or read. Failures of single
//! requests are not errors: they are counted by class in the report.

use std::path::PathBuf;

/// A load run that cannot start, or a report that cannot be merged or decoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target URL cannot be used.
    #[error("load target URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value of the request template is invalid.
    #[error("load request header {name:?}: {reason}")]
    Header {
        /// Header name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The load specification is inconsistent (a rate, a duration, a bound).
    #[error("load specification: {0}")]
    Spec(String),
    /// The target's host name did not resolve.
    #[error("resolving {host}:{port}: {reason}")]
    Resolve {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// Resolver message (or "no address").
        reason: String,
    },
    /// A CA file could not be read.
    #[error("reading CA certificates from {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA PEM held no usable certificate.
    #[error("no usable CA certificate in {origin}: {reason}")]
    CaPem {
        /// Where the PEM came from (a path, or "inline PEM").
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// The TLS client configuration could not be built.
    #[error("TLS client configuration: {0}")]
    Tls(String),
    /// Histograms or reports from different sources cannot be combined.
    #[error("cannot merge load results: {0}")]
    Merge(String),
    /// A serialized histogram could not be decoded.
    #[error("decoding a serialized latency histogram: {0}")]
    Decode(String),
}
