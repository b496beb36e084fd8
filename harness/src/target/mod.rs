//! [`Target`]: where the functions under test run, and how the harness reaches them.

use crate::criteria::TargetKind;

pub mod aws;
pub mod report_line;

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

/// Settings of the knative target.
#[derive(Debug, Clone, Default)]
pub struct KnativeConfig {
    /// Kubeconfig path.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context.
    pub context: Option<String>,
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
            TargetKind::Knative => Target::Knative(KnativeConfig::default()),
        }
    }
}
