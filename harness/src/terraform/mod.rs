//! Terraform outputs: [`Outputs`] reads `terraform output -json` (by running Terraform in a module directory,
//! or from a saved file), [`AwsSettings`] maps them to what the aws and localstack targets need following the
//! contract in [`OUTPUTS`], and [`hcl::declared_outputs`] reads a module's `output` blocks so the module can
//! be held to that contract without Terraform. [`provision::Stack`] applies a module for one run and destroys
//! it at the run's end (`harness run --provision`); [`command::Terraform`] is how every `terraform` command runs.

pub mod command;
mod contract;
pub mod hcl;
mod outputs;
pub mod provision;
mod record;

use std::path::Path;

pub use contract::{spec, AwsSettings, OutputSpec, OutputType, Secret, SecretRef, ALARM_ROLES, MODULE, OUTPUTS};
pub use outputs::{Error, Output, Outputs, TERRAFORM_TIMEOUT};

/// Reads the aws target's settings from `--tf-dir` (runs `terraform output -json` there) or `--tf-outputs`.
pub fn load_settings(tf_dir: Option<&Path>, tf_outputs: Option<&Path>) -> Result<AwsSettings, Error> {
    let outputs = match (tf_outputs, tf_dir) {
        (Some(file), _) => Outputs::from_file(file)?,
        (None, Some(dir)) => Outputs::from_dir(dir)?,
        (None, None) => return Err(Error::NoSource),
    };
    AwsSettings::from_outputs(&outputs)
}
