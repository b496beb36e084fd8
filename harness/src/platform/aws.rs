//! The aws target (and, with an endpoint override, the localstack target): [`AwsTarget`] drives a deployed
//! Lambda function, its API Gateway stage, CloudWatch metrics, alarms, dashboard and logs through the AWS SDK,
//! with resource names from Terraform outputs ([`crate::terraform`]). Reads are free; every change goes
//! through a [`Changes`] guard that records it in the run's audit log ([`AuditLog`]) and restores it.

mod apigateway;
mod audit;
mod changes;
mod client;
mod cloudwatch;
mod error;
mod function;
mod functions;
mod invoke;
mod logs;

pub use apigateway::{StageThrottling, Throttle};
pub use audit::{AuditEntry, AuditLog, Phase, State, AUDIT_FILE};
pub use changes::{restore_from_audit, Changes, COLD_START_VAR};
pub use client::{behavior_version, AwsOptions, AwsTarget, RetryPolicy};
pub use cloudwatch::{
    check_alarms, parse_dashboard, AlarmExpectation, AlarmInfo, AlarmProblem, Dashboard, MetricQuery, MetricSeries,
    Watch, Widget,
};
pub use error::Error;
pub use function::{FunctionState, ProvisionedConcurrency};
pub use functions::{target_error, AwsFunctions};
pub use invoke::Invocation;
pub use logs::{LogReports, REPORT_FILTER};
