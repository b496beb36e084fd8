//! [`Error`]: history and baseline failures, each naming the file (and line) or the baseline involved.

use std::path::PathBuf;

/// Errors of the `baseline` module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {detail}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
    /// A line of a history or baseline file is not what the harness wrote.
    #[error("{path}:{line}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 for a whole-file problem).
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The named baseline does not exist.
    #[error("no baseline named `{name}` ({path} does not exist); save one with `harness baseline save --name {name}`")]
    NoBaseline {
        /// Baseline name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A baseline name that cannot be a file name.
    #[error("baseline name `{0}`: use letters, digits, `.`, `_` and `-` only")]
    BadName(String),
    /// The baseline was measured in another environment or by another build profile of the harness.
    #[error(
        "baseline `{name}` was measured in another environment or by another harness build ({baseline}) than this \
         run ({current}); figures from different environments or build profiles are not compared (save a baseline \
         here with this build, or allow the comparison explicitly)"
    )]
    NotComparable {
        /// Baseline name.
        name: String,
        /// The baseline's comparable fingerprint.
        baseline: String,
        /// This run's comparable fingerprint.
        current: String,
    },
    /// There is nothing to work with (no runs, no evidence).
    #[error("{0}")]
    Empty(String),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
        Error::Io { path: path.to_path_buf(), detail: e.to_string() }
    }
}
