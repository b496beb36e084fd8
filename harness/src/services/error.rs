//! [`Error`]: why a server the suite needs could not be started, reached or used; each message names the
//! server, its URL or file, and what to do.

use std::{path::PathBuf, time::Duration};

/// Errors of the `services` module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server's program is not installed.
    #[error(
        "`{program}` not found on PATH: install the Debian package `{package}` (apt-get install {package}, or run \
         scripts/setup.sh), or set {env} to the program's path"
    )]
    MissingBinary {
        /// Program name.
        program: String,
        /// Debian package that ships it.
        package: String,
        /// Environment variable that overrides the path.
        env: String,
    },
    /// The program could not be started.
    #[error("starting {program}: {detail}")]
    Spawn {
        /// Program path.
        program: String,
        /// What happened.
        detail: String,
    },
    /// The server exited during start-up.
    #[error("{name} exited during start-up ({status}); its log says:\n{log}")]
    Exited {
        /// Server name.
        name: String,
        /// Exit status.
        status: String,
        /// The error lines of its log (or its tail).
        log: String,
    },
    /// Something awaited did not happen within its deadline.
    #[error("timed out after {after:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        after: Duration,
        /// The last state observed.
        last: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {detail}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
    /// A configuration file is unusable.
    #[error("{path}: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A user-named server is configured wrongly (environment variables).
    #[error("{var}: {detail}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        detail: String,
    },
    /// A request to a server failed.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::Error),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
        Error::Io { path: path.to_path_buf(), detail: e.to_string() }
    }
}
