//! What the tests that run `terraform` share: the workspace root and the binary (`$TERRAFORM` or `terraform`),
//! and whether it answers, so a test without it is reported as ignored with the binary it looked for.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The Terraform binary the tests run: `$TERRAFORM`, else `terraform` on the PATH.
pub fn terraform_program() -> String {
    std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into())
}

/// Whether [`terraform_program`] answers `version`.
pub fn terraform_available() -> bool {
    Command::new(terraform_program()).arg("version").output().is_ok_and(|o| o.status.success())
}

/// A test of the custom (libtest-mimic) harness whose error, with its causes, is the failure message.
pub fn trial(name: &str, f: fn() -> anyhow::Result<()>) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || f().map_err(|e| libtest_mimic::Failed::from(format!("{e:#}"))))
}
