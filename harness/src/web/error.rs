//! [`Error`]: why the portal stack could not be started or measured; each message names the server, URL,
//! statement or file, and what to do.

use crate::measure;

/// Errors of the `web` module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server of the stack could not be started or reached.
    #[error(transparent)]
    Service(#[from] crate::services::Error),
    /// A Redis command failed.
    #[error("redis at {addr}: {detail}")]
    Redis {
        /// `host:port`.
        addr: String,
        /// What happened.
        detail: String,
    },
    /// A PostgreSQL statement or connection failed.
    #[error("postgresql at {addr}: {what}: {detail}")]
    Postgres {
        /// `host:port`.
        addr: String,
        /// The statement or step.
        what: String,
        /// What happened.
        detail: String,
    },
    /// A command-line tool of the stack failed (initdb, nginx -t).
    #[error("{program}: {detail}")]
    Tool {
        /// The program.
        program: String,
        /// Its exit status and output.
        detail: String,
    },
    /// A request to the stack failed.
    #[error("{url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// A parameter of the procedure is unusable.
    #[error("procedure `portal`: parameter `{param}`: {problem}")]
    Param {
        /// The parameter.
        param: String,
        /// What is wrong.
        problem: String,
    },
    /// The browser could not be driven.
    #[error("chromium: {0}")]
    Browser(String),
}

impl From<Error> for measure::Error {
    fn from(e: Error) -> measure::Error {
        match e {
            Error::Param { param, problem } => measure::Error::Param { procedure: "portal".into(), param, problem },
            Error::Service(s) => measure::Error::Unavailable { what: "the portal stack".into(), detail: s.to_string() },
            other => measure::Error::Unavailable { what: "the portal stack".into(), detail: other.to_string() },
        }
    }
}

pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Service(crate::services::Error::Io { path: path.to_path_buf(), detail: e.to_string() })
}
