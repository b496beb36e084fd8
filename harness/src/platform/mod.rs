//! [`Target`]: where the functions under test run, and how the harness reaches them.

pub mod aws;
pub mod functions;
pub mod knative;
pub mod lambda_client;
pub mod local;
pub mod report_line;
pub mod scripted;

use crate::criteria::TargetKind;

/// A target, configured and ready to be measured.
#[derive(Debug)]
pub enum Target {
    /// The embedded local platform.
    Local(LocalConfig),
    /// AWS Lambda (or LocalStack when an endpoint is set).
    Aws(AwsConfig),
    /// Knative on Kubernetes.
    Knative(KnativeConfig),
}

/// Settings of the local target.
#[derive(Debug, Clone, Default)]
pub struct LocalConfig {
    /// Functions file (`fixtures/targets/local.yaml` by default).
    pub functions: Option<std::path::PathBuf>,
}

/// Settings of the aws and localstack targets.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    /// `terraform output -json` directory.
    pub tf_dir: Option<std::path::PathBuf>,
    /// Saved `terraform output -json` file.
    pub tf_outputs: Option<std::path::PathBuf>,
    /// Endpoint override (LocalStack, an emulator).
    pub endpoint: Option<String>,
    /// True for the localstack target.
    pub localstack: bool,
}

/// Settings of the knative target (see [`knative`] for the defaults).
#[derive(Debug, Clone, Default)]
pub struct KnativeConfig {
    /// Kubeconfig path (default: `KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context (default: the kubeconfig's current-context).
    pub context: Option<String>,
    /// Namespace of the functions (default: the context's namespace, else `default`).
    pub namespace: Option<String>,
    /// Ingress address requests are sent to, with the route's host in the `Host` header (Kourier on kind:
    /// `http://127.0.0.1:31080`); default: the Knative Service's own `status.url`.
    pub ingress: Option<String>,
    /// `group/version/Kind` of the operator's function resource (default `lambda.knative.io/v1alpha1/LambdaFunction`).
    pub lambda_api: Option<String>,
    /// `group/version` of Knative Serving (default `serving.knative.dev/v1`).
    pub serving_api: Option<String>,
    /// Prometheus base URL for cAdvisor figures (CPU throttling, fallback utilization), if any.
    pub prometheus: Option<String>,
}

impl KnativeConfig {
    /// Settings from the environment: `KUBECONFIG` (read by the client), `HARNESS_KUBE_CONTEXT`,
    /// `HARNESS_KNATIVE_NAMESPACE`, `HARNESS_KNATIVE_INGRESS`, `HARNESS_LAMBDA_API`,
    /// `HARNESS_KNATIVE_SERVING_API`, `HARNESS_KNATIVE_PROMETHEUS`.
    pub fn from_env() -> KnativeConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        KnativeConfig {
            kubeconfig: None,
            context: var("HARNESS_KUBE_CONTEXT"),
            namespace: var("HARNESS_KNATIVE_NAMESPACE"),
            ingress: var("HARNESS_KNATIVE_INGRESS"),
            lambda_api: var("HARNESS_LAMBDA_API"),
            serving_api: var("HARNESS_KNATIVE_SERVING_API"),
            prometheus: var("HARNESS_KNATIVE_PROMETHEUS"),
        }
    }
}

impl Target {
    /// Which kind of target this is.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Local(_) => TargetKind::Local,
            Target::Aws(c) if c.localstack => TargetKind::Localstack,
            Target::Aws(_) => TargetKind::Aws,
            Target::Knative(_) => TargetKind::Knative,
        }
    }

    /// A target of `kind` with default settings.
    pub fn from_kind(kind: TargetKind) -> Target {
        match kind {
            TargetKind::Local => Target::Local(LocalConfig::default()),
            TargetKind::Aws => Target::Aws(AwsConfig::default()),
            TargetKind::Localstack => Target::Aws(AwsConfig { localstack: true, ..AwsConfig::default() }),
            TargetKind::Knative => Target::Knative(KnativeConfig::from_env()),
        }
    }
}
