//! The Lambda control plane as the suite reads it: [`FunctionState`] (state, last update status, memory,
//! environment), waiting for a function to settle after a change (`LastUpdateStatus: Successful`, bounded,
//! a Failed state reported with its reason code), reserved and [`ProvisionedConcurrency`].

use std::{collections::BTreeMap, time::Instant};

use aws_sdk_lambda::types::{LastUpdateStatus, ProvisionedConcurrencyStatusEnum, State};

use super::{error::classify, AwsTarget, Error};

/// What the suite reads of a function's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionState {
    /// Function name.
    pub name: String,
    /// `Pending`, `Active`, `Inactive`, `Failed`.
    pub state: String,
    /// `StateReasonCode`.
    pub state_reason_code: Option<String>,
    /// `StateReason`.
    pub state_reason: Option<String>,
    /// `InProgress`, `Successful`, `Failed` (absent right after creation).
    pub last_update_status: Option<String>,
    /// `LastUpdateStatusReasonCode`.
    pub last_update_reason_code: Option<String>,
    /// `LastUpdateStatusReason`.
    pub last_update_reason: Option<String>,
    /// Memory size in MB.
    pub memory_mb: Option<i32>,
    /// Size of the deployment package in bytes (`CodeSize`; 0 for container images on AWS).
    pub code_size: i64,
    /// Timeout in seconds.
    pub timeout_s: Option<i32>,
    /// `Zip` or `Image`.
    pub package_type: Option<String>,
    /// Environment variables (`None`: no environment block).
    pub environment: Option<BTreeMap<String, String>>,
}

impl FunctionState {
    /// Settled: active (or inactive, which an invoke wakes) and not updating.
    pub fn settled(&self) -> bool {
        matches!(self.state.as_str(), "Active" | "Inactive")
            && self.last_update_status.as_deref().is_none_or(|s| s == "Successful")
    }

    /// The error for a function in state Failed or whose last update failed.
    pub fn failure(&self) -> Option<Error> {
        if self.state == "Failed" {
            return Some(Error::FunctionFailed {
                function: self.name.clone(),
                reason_code: self.state_reason_code.clone().unwrap_or_else(|| "no StateReasonCode".into()),
                reason: self.state_reason.clone().unwrap_or_default(),
            });
        }
        if self.last_update_status.as_deref() == Some("Failed") {
            return Some(Error::UpdateFailed {
                function: self.name.clone(),
                reason_code: self
                    .last_update_reason_code
                    .clone()
                    .unwrap_or_else(|| "no LastUpdateStatusReasonCode".into()),
                reason: self.last_update_reason.clone().unwrap_or_default(),
            });
        }
        None
    }

    fn describe(&self) -> String {
        format!("State {}, LastUpdateStatus {}", self.state, self.last_update_status.as_deref().unwrap_or("(none)"))
    }
}

/// Provisioned concurrency of an alias or version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConcurrency {
    /// Requested environments.
    pub requested: i32,
    /// Allocated so far.
    pub allocated: i32,
    /// Available to serve.
    pub available: i32,
    /// `IN_PROGRESS`, `READY`, `FAILED`.
    pub status: String,
    /// Why, when FAILED.
    pub reason: Option<String>,
}

impl AwsTarget {
    /// The function's configuration (`$LATEST`, or the alias when `qualifier` is set).
    pub async fn function_state(&self, qualifier: Option<&str>) -> Result<FunctionState, Error> {
        let name = &self.settings.function_name;
        let c = self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(&self.ctx("Lambda", "GetFunctionConfiguration", &format!("function {name}")), e))?;
        Ok(FunctionState {
            name: c.function_name().unwrap_or(name).to_string(),
            state: c.state().map(State::as_str).unwrap_or("Active").to_string(),
            state_reason_code: c.state_reason_code().map(|s| s.as_str().to_string()),
            state_reason: c.state_reason().map(str::to_string),
            last_update_status: c.last_update_status().map(LastUpdateStatus::as_str).map(str::to_string),
            last_update_reason_code: c.last_update_status_reason_code().map(|s| s.as_str().to_string()),
            last_update_reason: c.last_update_status_reason().map(str::to_string),
            memory_mb: c.memory_size(),
            code_size: c.code_size(),
            timeout_s: c.timeout(),
            package_type: c.package_type().map(|p| p.as_str().to_string()),
            environment: c
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        })
    }

    /// The function's state, or an error when it is Failed (with its `StateReasonCode`) or its last update
    /// failed: what every measurement checks before it starts.
    pub async fn check_function(&self) -> Result<FunctionState, Error> {
        let s = self.function_state(None).await?;
        match s.failure() {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    /// Waits until the function has settled after a change: `LastUpdateStatus: Successful` and state
    /// Active, polling every `poll_interval` up to `settle_timeout`.
    pub async fn wait_settled(&self) -> Result<FunctionState, Error> {
        let start = Instant::now();
        loop {
            let s = self.function_state(None).await?;
            if let Some(e) = s.failure() {
                return Err(e);
            }
            if s.settled() {
                return Ok(s);
            }
            if start.elapsed() >= self.opts.settle_timeout {
                return Err(Error::WaitTimeout {
                    what: format!("function {}", self.settings.function_name),
                    wanted: "LastUpdateStatus Successful and State Active".into(),
                    last: s.describe(),
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }

    /// Reserved concurrency (`None`: not set, the function uses the account's unreserved pool).
    pub async fn reserved_concurrency(&self) -> Result<Option<i32>, Error> {
        let name = &self.settings.function_name;
        let r = self
            .lambda
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map_err(|e| classify(&self.ctx("Lambda", "GetFunctionConcurrency", &format!("function {name}")), e))?;
        Ok(r.reserved_concurrent_executions())
    }

    /// Provisioned concurrency of `qualifier` (`None`: none configured).
    pub async fn provisioned_concurrency(&self, qualifier: &str) -> Result<Option<ProvisionedConcurrency>, Error> {
        let name = &self.settings.function_name;
        let r = self.lambda.get_provisioned_concurrency_config().function_name(name).qualifier(qualifier).send().await;
        let r = match r {
            Ok(r) => r,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_provisioned_concurrency_config_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(classify(
                    &self.ctx("Lambda", "GetProvisionedConcurrencyConfig", &format!("function {name}:{qualifier}")),
                    e,
                ))
            }
        };
        Ok(Some(ProvisionedConcurrency {
            requested: r.requested_provisioned_concurrent_executions().unwrap_or(0),
            allocated: r.allocated_provisioned_concurrent_executions().unwrap_or(0),
            available: r.available_provisioned_concurrent_executions().unwrap_or(0),
            status: r.status().map(ProvisionedConcurrencyStatusEnum::as_str).unwrap_or("UNKNOWN").to_string(),
            reason: r.status_reason().map(str::to_string),
        }))
    }

    /// Waits until provisioned concurrency of `qualifier` is READY (or gone, when `expect_none`).
    pub async fn wait_provisioned(
        &self,
        qualifier: &str,
        expect_none: bool,
    ) -> Result<Option<ProvisionedConcurrency>, Error> {
        let start = Instant::now();
        loop {
            let p = self.provisioned_concurrency(qualifier).await?;
            let last = match &p {
                None if expect_none => return Ok(None),
                Some(pc) if pc.status == "FAILED" => {
                    return Err(Error::ProvisionedFailed {
                        function: self.settings.function_name.clone(),
                        qualifier: qualifier.into(),
                        reason: pc.reason.clone().unwrap_or_else(|| "no StatusReason".into()),
                    })
                }
                Some(pc) if pc.status == "READY" && !expect_none => return Ok(p),
                None => "no provisioned concurrency".to_string(),
                Some(pc) => format!("{} ({} of {} allocated)", pc.status, pc.allocated, pc.requested),
            };
            if start.elapsed() >= self.opts.settle_timeout {
                return Err(Error::WaitTimeout {
                    what: format!("provisioned concurrency of {}:{qualifier}", self.settings.function_name),
                    wanted: if expect_none { "removal".into() } else { "READY".into() },
                    last,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }
}
