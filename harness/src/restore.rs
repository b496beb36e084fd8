//! `harness restore --run DIR`: puts back what a run that died before its guards ran (SIGKILL, a lost
//! machine, a second signal) left changed: every change of its audit log not restored since, through the
//! same restore the change guard uses (each restore is written to the same audit log, so a second call finds
//! nothing left: idempotent); then removes local environments (containers, processes) and server processes
//! (Prometheus, Alertmanager, Pushgateway) whose owning harness process is gone, and destroys the Terraform
//! stack a `--provision` run recorded and did not destroy (also one kept with `--keep`).

use std::{path::Path, sync::Arc};

use crate::{
    local,
    platform::aws::{self, AuditEntry, AuditLog, AwsOptions, AwsTarget, AUDIT_FILE},
    services,
    terraform::{provision, AwsSettings, SecretRef},
};

/// What a restore did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    /// `resource setting at endpoint` of each change put back.
    pub restored: Vec<String>,
    /// Changes that could not be put back, with why.
    pub failed: Vec<String>,
    /// Local environments removed (containers, processes).
    pub local: local::Swept,
    /// Server processes stopped.
    pub servers: usize,
    /// What became of the Terraform stack the run provisioned (`--provision`), one line.
    pub stack: Option<String>,
}

impl Restored {
    /// Lines for the user.
    pub fn text(&self, run: &Path) -> String {
        let mut t = String::new();
        for r in &self.restored {
            t += &format!("restored {r}\n");
        }
        for f in &self.failed {
            t += &format!("NOT restored {f}\n");
        }
        if let Some(s) = &self.stack {
            t += &format!("{s}\n");
        }
        if self.restored.is_empty() && self.failed.is_empty() {
            t += &format!("{}: every change of the run's audit log is restored; nothing to put back\n", run.display());
        }
        t += &format!(
            "removed {} container(s) and {} process(es) of dead runs of the local platform; stopped {} server \
             process(es) of dead runs\n",
            self.local.containers, self.local.processes, self.servers
        );
        t
    }
}

/// Errors of a restore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a run directory.
    #[error("{0}: not a run directory (no run.json)")]
    NotARun(String),
    /// The audit log could not be read.
    #[error(transparent)]
    Audit(#[from] aws::Error),
}

/// Region of an audit entry's endpoint: `AWS <region>` names it; an endpoint URL (an emulator) uses the
/// region of the environment (`AWS_REGION`, the profile), else `us-east-1`.
fn region_of(endpoint: &str) -> (Option<String>, Option<String>) {
    match endpoint.strip_prefix("AWS ") {
        Some(region) => (Some(region.to_string()), None),
        None => (None, Some(endpoint.to_string())),
    }
}

/// Restores what the run in `run` left changed (see the module documentation).
pub async fn restore_run(run: &Path) -> Result<Restored, Error> {
    if !run.join("run.json").is_file() {
        return Err(Error::NotARun(run.display().to_string()));
    }
    let mut out = Restored::default();
    let audit_path = run.join(AUDIT_FILE);
    if audit_path.exists() {
        let entries = AuditLog::read(&audit_path)?;
        let open: Vec<&AuditEntry> = AuditLog::unrestored(&entries);
        // One target per (target name, endpoint, function).
        let mut groups: Vec<(String, String, String)> = Vec::new();
        for e in &open {
            let key = (e.target.clone(), e.endpoint.clone(), e.resource.clone());
            if !groups.contains(&key) {
                groups.push(key);
            }
        }
        let log = Arc::new(AuditLog::open(&audit_path)?);
        for (target, endpoint, resource) in groups {
            let mine: Vec<&AuditEntry> = open
                .iter()
                .copied()
                .filter(|e| e.target == target && e.endpoint == endpoint && e.resource == resource)
                .collect();
            let describe =
                |e: &AuditEntry| format!("{} {} at {} (back to {})", e.resource, e.setting, endpoint, e.before);
            let Some(function) = resource.strip_prefix("function:") else {
                out.failed.extend(mine.iter().map(|e| format!("{}: not a resource the harness restores", describe(e))));
                continue;
            };
            let (region, url) = region_of(&endpoint);
            let region = match region {
                Some(r) => r,
                None => env_region().await,
            };
            let no_env_creds =
                std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none();
            let settings = AwsSettings {
                region,
                function_name: function.to_string(),
                function_arn: None,
                function_alias: None,
                api_id: String::new(),
                api_url: String::new(),
                api_stage: String::new(),
                usage_plan_id: String::new(),
                api_key: SecretRef::Env(String::new()),
                log_group: String::new(),
                alarm_names: Default::default(),
                dashboard_name: String::new(),
                endpoint_url: None,
                lambda_endpoint_url: url,
                source_name: audit_path.display().to_string(),
            };
            let opts = AwsOptions {
                credentials: (target == "localstack" && no_env_creds).then(|| {
                    aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "localstack-default")
                }),
                target_name: target.clone(),
                audit: Some(log.clone()),
                ..AwsOptions::default()
            };
            let result = match AwsTarget::connect(settings, opts).await {
                Ok(t) => aws::restore_from_audit(&t, &mine).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => out.restored.extend(mine.iter().map(|e| describe(e))),
                Err(e) => out.failed.push(format!("{resource} at {endpoint}: {e}")),
            }
        }
    }
    // The stack last: the account's settings are put back on the function before it is destroyed.
    let dir = run.to_path_buf();
    match tokio::task::spawn_blocking(move || provision::destroy_recorded(&dir)).await {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(provision::Outcome::Destroyed(line) | provision::Outcome::AlreadyDestroyed(line)))) => {
            out.stack = Some(line)
        }
        Ok(Err(e)) => out.failed.push(format!("terraform stack of {}: {e}", run.display())),
        Err(e) => out.failed.push(format!("terraform stack of {}: the destroy panicked: {e}", run.display())),
    }
    out.local = tokio::task::spawn_blocking(local::sweep_dead_runs).await.unwrap_or_default();
    out.servers = tokio::task::spawn_blocking(services::process::sweep).await.unwrap_or_default();
    Ok(out)
}

/// The region of the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`, the region of `AWS_PROFILE` in the
/// shared config file), else `us-east-1`.
async fn env_region() -> String {
    region_from(aws_config::profile::region::Builder::default()).await
}

/// The environment's region variables, else the region of the profile `profile` reads.
async fn region_from(profile: aws_config::profile::region::Builder) -> String {
    use aws_config::meta::region::RegionProviderChain;
    RegionProviderChain::first_try(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .or_else(profile.build())
        .region()
        .await
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_aws_endpoint_name() {
        assert_eq!(region_of("AWS eu-west-1"), (Some("eu-west-1".into()), None));
        assert_eq!(region_of("http://127.0.0.1:5000"), (None, Some("http://127.0.0.1:5000".into())));
    }

    #[allow(deprecated)] // the replacement types live in aws-runtime, not a dependency of the harness
    fn config_file(text: &str) -> (tempfile::TempDir, aws_config::profile::profile_file::ProfileFiles) {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config");
        std::fs::write(&p, text).unwrap();
        let files = ProfileFiles::builder().with_file(ProfileFileKind::Config, &p).build();
        (d, files)
    }

    #[tokio::test]
    async fn the_profile_region_is_honoured() {
        let (_d, files) = config_file("[profile staging]\nregion = eu-west-3\n");
        let profile = aws_config::profile::region::Builder::default().profile_files(files).profile_name("staging");
        // The environment's region variables win over the profile; without them, the profile's region is used.
        let expected = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "eu-west-3".into());
        assert_eq!(region_from(profile).await, expected);
    }

    /// An IAM Identity Center (SSO) profile is understood: without a cached token the error says to log in,
    /// not that the harness cannot use such profiles.
    #[tokio::test]
    async fn an_sso_profile_is_supported() {
        use aws_sdk_lambda::config::ProvideCredentials;
        let (_d, files) = config_file(
            "[profile staging]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = SRE\n\
             region = eu-west-3\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n\
             sso_region = eu-west-1\n",
        );
        let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_files(files)
            .profile_name("staging")
            .build();
        let e = provider.provide_credentials().await.unwrap_err();
        let text = format!("{e:?}");
        assert!(!text.contains("feature"), "{text}");
        assert!(text.to_lowercase().contains("token"), "{text}");
    }

    #[tokio::test]
    async fn a_directory_without_run_json_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = restore_run(d.path()).await.unwrap_err();
        assert!(e.to_string().contains("not a run directory"), "{e}");
    }
}
