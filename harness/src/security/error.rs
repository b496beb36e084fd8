//! [`Error`]: what can go wrong in the security checks, with the endpoint, file or input it concerns.

use std::path::PathBuf;

use crate::measure::types as measure;

/// Errors of the security checks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL could not be used (bad syntax, unsupported scheme).
    #[error("bad URL `{url}`: {detail}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An endpoint could not be reached or did not answer.
    #[error("endpoint {url}: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// The TLS set-up failed (CA certificate unreadable, no usable certificate).
    #[error("TLS set-up: {0}")]
    Tls(String),
    /// An input could not be parsed.
    #[error("{source_name}: {detail}")]
    Parse {
        /// Where the input came from (file, URL).
        source_name: String,
        /// Line (1-based), when known.
        line: Option<usize>,
        /// What is wrong.
        detail: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The subject under test failed to do something the procedure asked of it.
    #[error("subject: {0}")]
    Subject(String),
    /// The measurement could not be taken as planned (too few requests sent, limit never reached).
    #[error("{0}")]
    Measurement(String),
}

impl Error {
    /// A parse error at a line of a named input.
    pub fn parse(source_name: &str, line: Option<usize>, detail: impl Into<String>) -> Error {
        let detail = detail.into();
        let detail = match line {
            Some(l) => format!("line {l}: {detail}"),
            None => detail,
        };
        Error::Parse { source_name: source_name.to_string(), line, detail }
    }
}

impl From<Error> for measure::Error {
    fn from(e: Error) -> measure::Error {
        match e {
            Error::Unreachable { url, detail } => {
                measure::Error::Unavailable { what: format!("endpoint {url}"), detail }
            }
            Error::Io { path, source } => {
                measure::Error::Unavailable { what: format!("file {}", path.display()), detail: source.to_string() }
            }
            Error::Tls(detail) => measure::Error::Unavailable { what: "TLS set-up".into(), detail },
            Error::Subject(detail) => measure::Error::Unavailable { what: "security subject".into(), detail },
            other => measure::Error::Failed(other.to_string()),
        }
    }
}
