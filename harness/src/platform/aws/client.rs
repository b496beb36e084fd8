//! [`AwsTarget`]: the AWS SDK clients of one deployment (Lambda, CloudWatch, CloudWatch Logs, API Gateway),
//! built from Terraform outputs ([`AwsSettings`]) with the default credential chain, and [`AwsOptions`]:
//! endpoint overrides, retries, timeouts and the audit log.
//!
//! Two Lambda clients: the control plane one retries throttled calls with bounded exponential backoff (the
//! SDK's standard retry strategy, [`RetryPolicy`]); the Invoke one never retries, because a 429 from Invoke
//! is what a concurrency check measures and a retried invocation would hide it and distort its latency.
//!
//! An endpoint override (`--endpoint`, `AWS_ENDPOINT_URL`, or the outputs' `endpoint_url`) makes this the
//! localstack target, or points it at an emulator; `lambda_endpoint_url` points only Lambda elsewhere (the
//! local platform's Invoke API), and wins over the general override because it is more specific.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::config::{Credentials, SharedHttpClient};

use super::{audit::AuditLog, Error};
use crate::{
    platform::AwsConfig,
    run_dir::RunDir,
    terraform::{self, AwsSettings},
};

/// The AWS SDK behavior version the harness is written against, pinned so that a dependency bump cannot change
/// how it talks to AWS (defaults of retries, timeouts, stalled streams); moved forward on purpose, with a test.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Retries of control-plane calls: the SDK's standard strategy (exponential backoff with full jitter, capped,
/// with its retry quota), for throttling, transient and timeout errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry (doubled each retry, jittered).
    pub initial_backoff: Duration,
    /// Cap of one backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 250 ms first backoff, 5 s cap: at most ~10 s of backoff in all, enough for Lambda's
    /// control-plane rate limits (15 req/s for GetFunction*), short enough to fail a run quickly.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }
}

/// How the aws target talks to its endpoints.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// Endpoint override for every service (`--endpoint`, `AWS_ENDPOINT_URL`); the outputs' `endpoint_url`
    /// applies when this is `None`.
    pub endpoint: Option<String>,
    /// Static credentials instead of the default chain (emulators, tests).
    pub credentials: Option<Credentials>,
    /// Target name for the audit log (`aws`, `localstack`).
    pub target_name: String,
    /// Control-plane retries.
    pub retry: RetryPolicy,
    /// Deadline of one Invoke.
    pub invoke_timeout: Duration,
    /// Deadline of a control-plane call, retries included.
    pub call_timeout: Duration,
    /// Deadline for a function or alias to settle after a change (LastUpdateStatus, provisioned concurrency).
    pub settle_timeout: Duration,
    /// How often to poll while waiting to settle.
    pub poll_interval: Duration,
    /// Audit log of changes; `None` refuses changes (read-only use).
    pub audit: Option<Arc<AuditLog>>,
    /// HTTP client to use instead of the default HTTPS one (recorded responses in tests).
    pub http_client: Option<SharedHttpClient>,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            endpoint: None,
            credentials: None,
            target_name: "aws".into(),
            retry: RetryPolicy::default(),
            invoke_timeout: Duration::from_secs(120),
            call_timeout: Duration::from_secs(90),
            settle_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            audit: None,
            http_client: None,
        }
    }
}

/// The AWS SDK clients of one deployment.
#[derive(Debug, Clone)]
pub struct AwsTarget {
    pub(crate) settings: AwsSettings,
    pub(crate) opts: AwsOptions,
    pub(crate) sdk: SdkConfig,
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) invoker: aws_sdk_lambda::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) apigateway: aws_sdk_apigateway::Client,
    pub(crate) endpoint: Option<String>,
    pub(crate) lambda_endpoint: Option<String>,
    aws_name: String,
    nonce: Arc<AtomicU64>,
}

impl AwsTarget {
    /// The target a run uses: settings from the Terraform outputs of `cfg`, endpoint from `cfg` (or
    /// `AWS_ENDPOINT_URL`), the audit log in the run directory. The localstack target falls back to
    /// LocalStack's conventional `test`/`test` credentials when no `AWS_ACCESS_KEY_ID` or `AWS_PROFILE` is set.
    pub async fn from_config(cfg: &AwsConfig, run_dir: &RunDir) -> Result<AwsTarget, Error> {
        let settings = terraform::load_settings(cfg.tf_dir.as_deref(), cfg.tf_outputs.as_deref())?;
        let audit = AuditLog::open(&run_dir.path().join(super::audit::AUDIT_FILE))?;
        let no_env_creds = std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none();
        let opts = AwsOptions {
            endpoint: cfg.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
            credentials: (cfg.localstack && no_env_creds)
                .then(|| Credentials::new("test", "test", None, None, "localstack-default")),
            target_name: if cfg.localstack { "localstack" } else { "aws" }.into(),
            audit: Some(Arc::new(audit)),
            ..AwsOptions::default()
        };
        AwsTarget::connect(settings, opts).await
    }

    /// Builds the clients for `settings` with `opts` (no request is made).
    pub async fn connect(settings: AwsSettings, opts: AwsOptions) -> Result<AwsTarget, Error> {
        let mut loader = aws_config::defaults(behavior_version()).region(Region::new(settings.region.clone()));
        if let Some(c) = &opts.credentials {
            loader = loader.credentials_provider(c.clone());
        }
        if let Some(h) = &opts.http_client {
            loader = loader.http_client(h.clone());
        }
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_timeout(opts.call_timeout)
            .operation_attempt_timeout(opts.call_timeout.min(Duration::from_secs(30)))
            .build();
        let sdk = loader.retry_config(opts.retry.config()).timeout_config(timeouts).load().await;
        let endpoint = opts.endpoint.clone().or_else(|| settings.endpoint_url.clone());
        let lambda_endpoint = settings.lambda_endpoint_url.clone().or_else(|| endpoint.clone());
        Ok(AwsTarget::from_sdk(settings, opts, sdk, endpoint, lambda_endpoint))
    }

    fn from_sdk(
        settings: AwsSettings,
        opts: AwsOptions,
        sdk: SdkConfig,
        endpoint: Option<String>,
        lambda_endpoint: Option<String>,
    ) -> AwsTarget {
        let lambda = {
            let mut b = aws_sdk_lambda::config::Builder::from(&sdk);
            if let Some(e) = &lambda_endpoint {
                b = b.endpoint_url(e);
            }
            aws_sdk_lambda::Client::from_conf(b.build())
        };
        let invoker = {
            let t = TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(opts.invoke_timeout)
                .build();
            let mut b =
                aws_sdk_lambda::config::Builder::from(&sdk).retry_config(RetryConfig::disabled()).timeout_config(t);
            if let Some(e) = &lambda_endpoint {
                b = b.endpoint_url(e);
            }
            aws_sdk_lambda::Client::from_conf(b.build())
        };
        macro_rules! client {
            ($krate:ident) => {{
                let mut b = $krate::config::Builder::from(&sdk);
                if let Some(e) = &endpoint {
                    b = b.endpoint_url(e);
                }
                $krate::Client::from_conf(b.build())
            }};
        }
        AwsTarget {
            cloudwatch: client!(aws_sdk_cloudwatch),
            logs: client!(aws_sdk_cloudwatchlogs),
            apigateway: client!(aws_sdk_apigateway),
            aws_name: format!("AWS {}", settings.region),
            lambda,
            invoker,
            settings,
            opts,
            sdk,
            endpoint,
            lambda_endpoint,
            nonce: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same target with fresh HTTP connections, for use from another async runtime (the restore that
    /// runs when a change guard is dropped without an explicit restore).
    pub(crate) fn detached(&self) -> AwsTarget {
        let mut b = self.sdk.to_builder();
        if self.opts.http_client.is_none() {
            b.set_http_client(None);
        }
        AwsTarget::from_sdk(
            self.settings.clone(),
            self.opts.clone(),
            b.build(),
            self.endpoint.clone(),
            self.lambda_endpoint.clone(),
        )
    }

    /// The settings read from the Terraform outputs.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The options in force.
    pub fn options(&self) -> &AwsOptions {
        &self.opts
    }

    /// The audit log, when changes are allowed.
    pub fn audit_path(&self) -> Option<&Path> {
        self.opts.audit.as_deref().map(AuditLog::path)
    }

    /// Where calls to `service` (`Lambda`, or any other) go, for messages and the audit log.
    pub fn endpoint_of(&self, service: &str) -> &str {
        let e = if service == "Lambda" { &self.lambda_endpoint } else { &self.endpoint };
        e.as_deref().unwrap_or(&self.aws_name)
    }

    /// A value unique to this process and call, for configuration bumps that must differ every time.
    pub(crate) fn next_nonce(&self) -> String {
        let n = self.nonce.fetch_add(1, Ordering::SeqCst);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        format!("{t}-{}-{n}", std::process::id())
    }

    pub(crate) fn ctx<'a>(
        &'a self,
        service: &'static str,
        operation: &'static str,
        resource: &'a str,
    ) -> super::error::Ctx<'a> {
        super::error::Ctx {
            service,
            operation,
            resource,
            endpoint: self.endpoint_of(service),
            attempts: self.opts.retry.max_attempts,
        }
    }
}
