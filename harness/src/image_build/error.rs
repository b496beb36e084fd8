//! [`Error`]: why a build, a base image, a fixture or the build metrics could not be had, with what to do.

use std::path::PathBuf;

use crate::measure::types as measure;

/// What went wrong in the `build` module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Docker CLI, or the engine does not answer.
    #[error("Docker engine at {host}: {detail}")]
    Engine {
        /// `DOCKER_HOST` as used (`default` for the CLI's default).
        host: String,
        /// What failed and how to fix it.
        detail: String,
    },
    /// A Docker CLI was found but none can build with BuildKit.
    #[error(
        "no Docker CLI that builds with BuildKit: {tried}; install the Debian docker.io package (its CLI has \
         BuildKit built in) or the buildx plugin, or point PERF_ACCEPTANCE_DOCKER at such a CLI"
    )]
    NoBuildKit {
        /// Each CLI tried and why it was rejected.
        tried: String,
    },
    /// A Docker command other than a build failed.
    #[error("`docker {args}` failed: {detail}")]
    Command {
        /// The arguments.
        args: String,
        /// Its error output.
        detail: String,
    },
    /// A Dockerfile did not build.
    #[error("building {dockerfile} failed{}: {detail}", step.as_ref().map(|s| format!(" at step `{s}`")).unwrap_or_default())]
    BuildFailed {
        /// The Dockerfile.
        dockerfile: PathBuf,
        /// The step that failed, as BuildKit names it.
        step: Option<String>,
        /// BuildKit's error and the last lines of output.
        detail: String,
    },
    /// A build or command did not finish in time.
    #[error("{what} did not finish within {seconds} s")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        seconds: u64,
    },
    /// The local base images could not be made.
    #[error("making the local base images with {script} failed: {detail}")]
    BaseImage {
        /// The script run.
        script: PathBuf,
        /// Its last lines of output.
        detail: String,
    },
    /// A build fixture directory lacks something or cannot be copied.
    #[error("build fixture {dir}: {detail}")]
    Fixture {
        /// The fixture directory.
        dir: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// The Pushgateway could not be started or reached, or refused a push.
    #[error("Pushgateway {endpoint}: {detail}")]
    Pushgateway {
        /// URL or binary.
        endpoint: String,
        /// What happened and what to do.
        detail: String,
    },
    /// The fixture's tests could not be run inside the image (as opposed to failing).
    #[error("running the fixture's tests in {image}: {detail}")]
    Tests {
        /// The image.
        image: String,
        /// What happened.
        detail: String,
    },
    /// A procedure parameter is wrong.
    #[error("parameter `{param}`: {problem}")]
    Param {
        /// The parameter.
        param: String,
        /// What is wrong.
        problem: String,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

impl From<Error> for measure::Error {
    fn from(e: Error) -> measure::Error {
        match e {
            Error::Engine { host, detail } => {
                measure::Error::Unavailable { what: format!("Docker engine at {host}"), detail }
            }
            Error::NoBuildKit { .. } => {
                measure::Error::Unavailable { what: "Docker CLI with BuildKit".into(), detail: e.to_string() }
            }
            Error::Pushgateway { endpoint, detail } => {
                measure::Error::Unavailable { what: format!("Pushgateway {endpoint}"), detail }
            }
            Error::BaseImage { script, detail } => measure::Error::Unavailable {
                what: format!("local base images (made by {})", script.display()),
                detail,
            },
            Error::Param { param, problem } => measure::Error::Param { procedure: "build".into(), param, problem },
            other => measure::Error::Failed(other.to_string()),
        }
    }
}
