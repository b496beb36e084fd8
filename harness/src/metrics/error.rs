//! [`Error`]: what went wrong talking to a metrics server or reading metrics, always naming the URL and
//! the query (or the line of the text) so that the report says what was missing.

use std::time::Duration;

/// Errors of the `metrics` module.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The URL could not be used (bad syntax, unsupported scheme).
    #[error("{url}: invalid URL: {detail}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("{url}{}: cannot reach the server: {detail}", for_query(query))]
    Unreachable {
        /// The URL.
        url: String,
        /// The query sent, if any.
        query: String,
        /// What happened (connection refused, TLS error ...).
        detail: String,
    },
    /// The server did not answer in time.
    #[error("{url}{}: no answer within {after:?}", for_query(query))]
    Timeout {
        /// The URL.
        url: String,
        /// The query sent, if any.
        query: String,
        /// The time limit.
        after: Duration,
    },
    /// The server answered with an HTTP error status.
    #[error("{url}{}: HTTP {status}: {body}", for_query(query))]
    Status {
        /// The URL.
        url: String,
        /// The query sent, if any.
        query: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The Prometheus API answered `"status": "error"`.
    #[error("{url}{}: {error_type}: {error}", for_query(query))]
    Api {
        /// The URL.
        url: String,
        /// The query sent.
        query: String,
        /// Prometheus' error type (`bad_data`, `execution` ...).
        error_type: String,
        /// Prometheus' message.
        error: String,
    },
    /// The answer could not be decoded.
    #[error("{url}{}: unexpected answer: {detail}", for_query(query))]
    Decode {
        /// The URL.
        url: String,
        /// The query sent, if any.
        query: String,
        /// What was unexpected.
        detail: String,
    },
    /// The query returned no data where data was needed.
    #[error("{url}: query `{query}` returned no data{}", if .hint.is_empty() { String::new() } else { format!(" ({hint})") })]
    Empty {
        /// The URL.
        url: String,
        /// The query sent.
        query: String,
        /// What the data should have come from.
        hint: String,
    },
    /// A line of Prometheus text exposition could not be parsed.
    #[error("{source_name}:{line}: {detail}")]
    Exposition {
        /// Where the text came from (URL or file).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// A histogram's buckets are inconsistent.
    #[error("histogram {name}: {detail}")]
    Histogram {
        /// Metric family name and labels.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

fn for_query(query: &str) -> String {
    if query.is_empty() {
        String::new()
    } else {
        format!(" (query `{query}`)")
    }
}
