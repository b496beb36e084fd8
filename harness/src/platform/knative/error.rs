//! [`Error`]: what can go wrong talking to a Kubernetes cluster running Knative, each variant naming the
//! context, object, endpoint or wait that failed, and how it maps onto a [`crate::measure::Error`].

use std::time::Duration;

use crate::measure::types as measure;

/// Errors of the knative target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kubeconfig could be read.
    #[error("no kubeconfig: {detail}")]
    NoKubeconfig {
        /// What was tried and what to do.
        detail: String,
    },
    /// The kubeconfig is unusable (missing context, cluster or server).
    #[error("kubeconfig {path}: {detail}")]
    Kubeconfig {
        /// File(s) it was read from.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The API server did not answer.
    #[error("cluster unreachable: kubeconfig context `{context}` (server {server}): {detail}")]
    Unreachable {
        /// Kubeconfig context used.
        context: String,
        /// API server URL of that context.
        server: String,
        /// What happened.
        detail: String,
    },
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Api {
        /// The call (verb and object).
        what: String,
        /// The client error.
        source: kube::Error,
    },
    /// The function is neither a Knative Service nor a LambdaFunction in the namespace.
    #[error("function `{name}` in namespace {namespace}: {detail}")]
    NoFunction {
        /// Function name.
        name: String,
        /// Namespace searched.
        namespace: String,
        /// What was looked for.
        detail: String,
    },
    /// A wait ran past its deadline.
    #[error("timed out after {}s waiting for {what}{detail}", after.as_secs_f64())]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        after: Duration,
        /// State at the deadline (pod conditions, events), starting with `: ` when present.
        detail: String,
    },
    /// A parameter or setting is invalid.
    #[error("parameter `{param}`: {problem}")]
    Param {
        /// Parameter name.
        param: String,
        /// What is wrong.
        problem: String,
    },
    /// An HTTP request through the function's route failed.
    #[error("request to {url}: {detail}")]
    Route {
        /// URL (and Host header) used.
        url: String,
        /// What happened.
        detail: String,
    },
    /// An object lacks something the procedure needs (a status field, a ready revision).
    #[error("{0}")]
    Shape(String),
    /// The measurement itself failed (a cold request answered with an error, a build failed).
    #[error("{0}")]
    Measurement(String),
    /// A raw data file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Result with the knative [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An API error with the call described.
    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Api { what, source }
    }

    /// The measurement error this becomes in `procedure`.
    pub fn into_measure(self, procedure: &str) -> measure::Error {
        match self {
            Error::Param { param, problem } => measure::Error::Param { procedure: procedure.into(), param, problem },
            e @ (Error::NoKubeconfig { .. } | Error::Kubeconfig { .. }) => {
                measure::Error::Unavailable { what: "kubeconfig".into(), detail: e.to_string() }
            }
            e @ Error::Unreachable { .. } => {
                measure::Error::Unavailable { what: "Kubernetes API server".into(), detail: e.to_string() }
            }
            e @ (Error::Api { .. } | Error::NoFunction { .. } | Error::Route { .. } | Error::Shape(_)) => {
                measure::Error::Unavailable { what: format!("knative {procedure}"), detail: e.to_string() }
            }
            e @ (Error::Timeout { .. } | Error::Io { .. } | Error::Measurement(_)) => {
                measure::Error::Failed(format!("knative {procedure}: {e}"))
            }
        }
    }
}
