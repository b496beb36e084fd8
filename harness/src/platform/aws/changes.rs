//! [`Changes`]: the only way the suite changes a deployment. It records each setting's original value the
//! first time the setting is changed, writes every change and restore to the audit log, and puts everything
//! back on [`Changes::restore`], or, when a measurement fails or panics first, when it is dropped (on a
//! thread of its own with fresh connections, so a dying runtime cannot stall it).
//!
//! Changes: a cold start forced by an environment variable bump (`HARNESS_COLD_START`), which makes Lambda
//! retire the function's environments; memory size; reserved concurrency; provisioned concurrency of an alias.

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_lambda::types::Environment;
use chrono::Utc;
use serde_json::{json, Value};

use super::{
    audit::{AuditEntry, Phase, State},
    error::classify,
    AwsTarget, Error,
};

/// Environment variable the suite sets to a new value to force new execution environments.
pub const COLD_START_VAR: &str = "HARNESS_COLD_START";

/// Original values of what was changed; `Some` means "changed, restore to the inner value".
#[derive(Debug, Default, Clone)]
struct Originals {
    environment: Option<Option<BTreeMap<String, String>>>,
    reserved: Option<Option<i32>>,
    memory: Option<Option<i32>>,
    provisioned: BTreeMap<String, Option<i32>>,
}

impl Originals {
    fn is_empty(&self) -> bool {
        self.environment.is_none() && self.reserved.is_none() && self.memory.is_none() && self.provisioned.is_empty()
    }
}

/// Changes made to one deployment, restored at the end. Create with [`AwsTarget::changes`].
#[derive(Debug)]
pub struct Changes {
    target: AwsTarget,
    originals: Originals,
}

impl AwsTarget {
    /// A guard for changes to this deployment; it refuses to change anything without an audit log.
    pub fn changes(&self) -> Result<Changes, Error> {
        if self.opts.audit.is_none() {
            return Err(Error::Response {
                what: "changing the deployment".into(),
                detail: "no audit log is open (AwsOptions::audit): the suite changes nothing it does not record".into(),
            });
        }
        Ok(Changes { target: self.clone(), originals: Originals::default() })
    }
}

impl Changes {
    /// True when something was changed and not restored yet.
    pub fn pending(&self) -> bool {
        !self.originals.is_empty()
    }

    /// Forces the next invocation of `$LATEST` onto a new execution environment: sets `HARNESS_COLD_START`
    /// to a new value (other variables kept) and waits for `LastUpdateStatus: Successful`. Returns the value.
    pub async fn force_cold_start(&mut self) -> Result<String, Error> {
        let t = &self.target;
        let current = t.check_function().await?;
        if self.originals.environment.is_none() {
            self.originals.environment = Some(current.environment.clone());
        }
        let nonce = t.next_nonce();
        let mut vars = current.environment.clone().unwrap_or_default();
        let before = vars.insert(COLD_START_VAR.into(), nonce.clone());
        let setting = format!("environment.{COLD_START_VAR}");
        let r =
            audited(t, Phase::Change, &setting, json!(before), json!(nonce), update_environment(t, Some(vars))).await;
        r.map(|()| nonce)
    }

    /// Sets reserved concurrency (`None` removes it).
    pub async fn set_reserved_concurrency(&mut self, value: Option<i32>) -> Result<(), Error> {
        let t = &self.target;
        let current = t.reserved_concurrency().await?;
        if self.originals.reserved.is_none() {
            self.originals.reserved = Some(current);
        }
        audited(t, Phase::Change, "reserved_concurrency", json!(current), json!(value), put_reserved(t, value)).await
    }

    /// Sets the function's memory size (MB) and waits for `LastUpdateStatus: Successful`; new environments
    /// start with it, as after any configuration update.
    pub async fn set_memory(&mut self, mb: i32) -> Result<(), Error> {
        let t = &self.target;
        let current = t.check_function().await?.memory_mb;
        if self.originals.memory.is_none() {
            self.originals.memory = Some(current);
        }
        audited(t, Phase::Change, "memory_size", json!(current), json!(mb), update_memory(t, mb)).await
    }

    /// Sets provisioned concurrency of `qualifier` (an alias or version; `None` removes it) and waits until
    /// it is READY.
    pub async fn set_provisioned_concurrency(&mut self, qualifier: &str, value: Option<i32>) -> Result<(), Error> {
        let t = &self.target;
        let current = t.provisioned_concurrency(qualifier).await?.map(|p| p.requested);
        self.originals.provisioned.entry(qualifier.to_string()).or_insert(current);
        let setting = format!("provisioned_concurrency.{qualifier}");
        audited(t, Phase::Change, &setting, json!(current), json!(value), put_provisioned(t, qualifier, value)).await
    }

    /// Restores every changed setting to its original value (provisioned, reserved, environment: the reverse
    /// of the order a measurement changes them in). Every setting is attempted; failures are listed together.
    /// Cancellation-safe: the originals stay in the guard until every restore was attempted, so a restore
    /// stopped half-way (a signal) is finished by the guard's `Drop`.
    pub async fn restore(mut self) -> Result<(), Error> {
        let r = restore_all(&self.target, self.originals.clone()).await;
        self.originals = Originals::default();
        r
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        if self.originals.is_empty() {
            return;
        }
        let originals = std::mem::take(&mut self.originals);
        let target = self.target.detached();
        let deadline = target.opts.settle_timeout * 3 + Duration::from_secs(60);
        let what = format!("function {}", target.settings.function_name);
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("aws-restore".into()).spawn(move || {
            let res = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(restore_all(&target, originals)),
                Err(e) => Err(Error::Restore { failures: vec![format!("no runtime for the restore: {e}")] }),
            };
            let _ = tx.send(res);
        });
        let outcome = match spawned {
            Err(e) => Err(format!("could not start the restore thread: {e}")),
            Ok(_) => match rx.recv_timeout(deadline) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("the restore did not finish within {} s", deadline.as_secs())),
            },
        };
        match outcome {
            Ok(()) => {
                tracing::info!("{what}: settings the suite changed were restored when the change guard was dropped")
            }
            Err(e) => {
                tracing::error!("{what}: {e}");
                eprintln!("harness: {what}: {e}");
            }
        }
    }
}

/// Puts back the changes of `entries` (the unrestored ones of a run's audit log, see
/// [`super::AuditLog::unrestored`]) that concern this target's function, through the same restore as the
/// guard, writing each restore to this target's audit log. Returns the settings it restored.
pub async fn restore_from_audit(t: &AwsTarget, entries: &[&AuditEntry]) -> Result<Vec<String>, Error> {
    let resource = format!("function:{}", t.settings.function_name);
    let mut o = Originals::default();
    let mut settings = Vec::new();
    let as_i32 = |v: &Value| v.as_i64().and_then(|n| i32::try_from(n).ok());
    for e in entries.iter().filter(|e| e.resource == resource && e.phase == Phase::Change) {
        settings.push(e.setting.clone());
        match e.setting.as_str() {
            "reserved_concurrency" => o.reserved = Some(as_i32(&e.before)),
            "memory_size" => o.memory = Some(as_i32(&e.before)),
            s if s == format!("environment.{COLD_START_VAR}") => {
                // Only the suite's variable was changed: the rest of the environment is as the function has it.
                let mut vars = t.check_function().await?.environment.unwrap_or_default();
                match e.before.as_str() {
                    Some(v) => vars.insert(COLD_START_VAR.into(), v.to_string()),
                    None => vars.remove(COLD_START_VAR),
                };
                o.environment = Some(Some(vars));
            }
            s => match s.strip_prefix("provisioned_concurrency.") {
                Some(q) => {
                    o.provisioned.insert(q.to_string(), as_i32(&e.before));
                }
                None => {
                    return Err(Error::Restore {
                        failures: vec![format!("{resource} {s}: a setting the suite does not know how to restore")],
                    })
                }
            },
        }
    }
    restore_all(t, o).await.map(|()| settings)
}

async fn restore_all(t: &AwsTarget, o: Originals) -> Result<(), Error> {
    let mut failures = Vec::new();
    for (q, original) in &o.provisioned {
        let setting = format!("provisioned_concurrency.{q}");
        if let Err(e) =
            audited(t, Phase::Restore, &setting, Value::Null, json!(original), put_provisioned(t, q, *original)).await
        {
            failures.push(format!("{setting} -> {original:?}: {e}"));
        }
    }
    if let Some(original) = o.reserved {
        if let Err(e) =
            audited(t, Phase::Restore, "reserved_concurrency", Value::Null, json!(original), put_reserved(t, original))
                .await
        {
            failures.push(format!("reserved_concurrency -> {original:?}: {e}"));
        }
    }
    if let Some(Some(original)) = o.memory {
        if let Err(e) =
            audited(t, Phase::Restore, "memory_size", Value::Null, json!(original), update_memory(t, original)).await
        {
            failures.push(format!("memory_size -> {original}: {e}"));
        }
    }
    if let Some(original) = o.environment {
        let setting = format!("environment.{COLD_START_VAR}");
        let value = original.as_ref().and_then(|m| m.get(COLD_START_VAR)).cloned();
        if let Err(e) =
            audited(t, Phase::Restore, &setting, Value::Null, json!(value), update_environment(t, original)).await
        {
            failures.push(format!("{setting} (environment as it was): {e}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Restore { failures })
    }
}

/// Runs `op` between a `started` and a `done`/`failed` audit entry.
async fn audited(
    t: &AwsTarget,
    phase: Phase,
    setting: &str,
    before: Value,
    after: Value,
    op: impl std::future::Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    let log = t.opts.audit.as_ref().expect("Changes exist only with an audit log");
    let resource = format!("function:{}", t.settings.function_name);
    let entry = |state: State, error: Option<String>| AuditEntry {
        ts: Utc::now(),
        target: t.opts.target_name.clone(),
        endpoint: t.endpoint_of("Lambda").to_string(),
        phase,
        state,
        resource: resource.clone(),
        setting: setting.to_string(),
        before: before.clone(),
        after: after.clone(),
        error,
    };
    log.write(&entry(State::Started, None))?;
    let r = op.await;
    log.write(&entry(if r.is_ok() { State::Done } else { State::Failed }, r.as_ref().err().map(ToString::to_string)))?;
    r
}

async fn update_environment(t: &AwsTarget, vars: Option<BTreeMap<String, String>>) -> Result<(), Error> {
    let name = &t.settings.function_name;
    let env = Environment::builder().set_variables(Some(vars.unwrap_or_default().into_iter().collect())).build();
    for attempt in 0..2 {
        let r = t.lambda.update_function_configuration().function_name(name).environment(env.clone()).send().await;
        match r {
            Ok(_) => break,
            // An update still in progress (ours or someone's) makes Lambda refuse the next one: wait, then
            // try once more.
            Err(e) if attempt == 0 && e.as_service_error().is_some_and(|se| se.is_resource_conflict_exception()) => {
                t.wait_settled().await?;
            }
            Err(e) => {
                return Err(classify(&t.ctx("Lambda", "UpdateFunctionConfiguration", &format!("function {name}")), e))
            }
        }
    }
    t.wait_settled().await.map(|_| ())
}

async fn update_memory(t: &AwsTarget, mb: i32) -> Result<(), Error> {
    let name = &t.settings.function_name;
    for attempt in 0..2 {
        let r = t.lambda.update_function_configuration().function_name(name).memory_size(mb).send().await;
        match r {
            Ok(_) => break,
            Err(e) if attempt == 0 && e.as_service_error().is_some_and(|se| se.is_resource_conflict_exception()) => {
                t.wait_settled().await?;
            }
            Err(e) => {
                return Err(classify(&t.ctx("Lambda", "UpdateFunctionConfiguration", &format!("function {name}")), e))
            }
        }
    }
    t.wait_settled().await.map(|_| ())
}

async fn put_reserved(t: &AwsTarget, value: Option<i32>) -> Result<(), Error> {
    let name = &t.settings.function_name;
    let resource = format!("function {name}");
    match value {
        Some(n) => t
            .lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(n)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&t.ctx("Lambda", "PutFunctionConcurrency", &resource), e)),
        None => t
            .lambda
            .delete_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&t.ctx("Lambda", "DeleteFunctionConcurrency", &resource), e)),
    }
}

async fn put_provisioned(t: &AwsTarget, qualifier: &str, value: Option<i32>) -> Result<(), Error> {
    let name = &t.settings.function_name;
    let resource = format!("function {name}:{qualifier}");
    match value {
        Some(n) => {
            t.lambda
                .put_provisioned_concurrency_config()
                .function_name(name)
                .qualifier(qualifier)
                .provisioned_concurrent_executions(n)
                .send()
                .await
                .map_err(|e| classify(&t.ctx("Lambda", "PutProvisionedConcurrencyConfig", &resource), e))?;
            t.wait_provisioned(qualifier, false).await.map(|_| ())
        }
        None => {
            let r =
                t.lambda.delete_provisioned_concurrency_config().function_name(name).qualifier(qualifier).send().await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(()),
                Err(e) => Err(classify(&t.ctx("Lambda", "DeleteProvisionedConcurrencyConfig", &resource), e)),
            }
        }
    }
}
