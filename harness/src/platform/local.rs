//! [`LocalTarget`]: the local target of a run, the embedded platform ([`crate::local::Platform`]) started
//! from a [`LocalConfig`] with a [`LambdaClient`] pointed at its Invoke API.

use std::path::PathBuf;

use super::{lambda_client::LambdaClient, LocalConfig};
use crate::local::{fixtures::workspace_root, Error, Platform, PlatformConfig};

/// The functions file used when a run names none.
pub fn default_functions_file() -> PathBuf {
    workspace_root().join("fixtures/targets/local.yaml")
}

/// A started local platform and a client for it.
#[derive(Debug)]
pub struct LocalTarget {
    /// The platform (dropping it removes every environment).
    pub platform: Platform,
    /// A client for its Invoke API and control calls.
    pub client: LambdaClient,
}

impl LocalTarget {
    /// Starts the platform with the functions of `config` (or the default functions file).
    pub async fn start(config: &LocalConfig) -> Result<LocalTarget, Error> {
        let file = config.functions.clone().unwrap_or_else(default_functions_file);
        let platform = Platform::start(PlatformConfig::from_file(&file)?).await?;
        let client = LambdaClient::new(platform.invoke_url(), "harness");
        Ok(LocalTarget { platform, client })
    }
}
