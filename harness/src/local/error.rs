//! [`Error`]: what can go wrong starting or running the local platform, with the file, function, endpoint
//! or engine involved and what to do about it.

use std::path::PathBuf;

/// An error of the local platform.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A functions file could not be read.
    #[error("{path}: cannot read functions file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A functions file is malformed or a value is invalid.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Container mode was asked for but no Docker engine answers.
    #[error(
        "no Docker engine reachable at {socket}: {reason}. Install one (Debian: `apt-get install docker.io`) and \
         start it (`dockerd &`, or `bash scripts/setup.sh`), or run the functions as processes (`mode: process`)"
    )]
    EngineUnavailable {
        /// The engine socket tried.
        socket: String,
        /// What the attempt returned.
        reason: String,
    },
    /// The Docker engine refused or failed a call.
    #[error("Docker engine: {call}: {message}")]
    Engine {
        /// The API call (`POST /containers/create`).
        call: String,
        /// The engine's message.
        message: String,
    },
    /// A function cannot run in the chosen mode.
    #[error("function `{function}`: {message}")]
    Function {
        /// The function.
        function: String,
        /// What is missing.
        message: String,
    },
    /// Building a fixture failed.
    #[error("building fixture {fixture}: {message}")]
    Build {
        /// Which fixture.
        fixture: String,
        /// The command and its output.
        message: String,
    },
    /// A listener could not be bound or a local file written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done (`bind 127.0.0.1:0 for the Invoke API`).
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Generating the front door's certificate or TLS configuration failed.
    #[error("TLS set-up for the front door: {0}")]
    Tls(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
