//! [`Scripted`]: a [`FunctionPlatform`] that answers from a script of invocations, and [`Recording`], which
//! wraps a real platform and keeps every invocation it answered. Together they show that the procedures
//! decide from the records alone: the same records give the same decision on every platform, and a fault
//! that no real platform can be made to produce on demand can be scripted.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use serde_json::Value;

use super::functions::{Capability, FunctionPlatform, Invocation};
use crate::measure::types as measure;

/// A platform that answers each invoke with the next scripted invocation.
pub struct Scripted {
    function: String,
    script: Mutex<VecDeque<Invocation>>,
    memory: AtomicU64,
    cold_forced: AtomicU64,
}

impl Scripted {
    /// Answers `script` in order for `function`, configured with `memory_mb`.
    pub fn new(function: &str, memory_mb: u64, script: impl IntoIterator<Item = Invocation>) -> Scripted {
        Scripted {
            function: function.into(),
            script: Mutex::new(script.into_iter().collect()),
            memory: AtomicU64::new(memory_mb),
            cold_forced: AtomicU64::new(0),
        }
    }

    /// How many forced cold starts the procedure asked for.
    pub fn cold_forced(&self) -> u64 {
        self.cold_forced.load(Ordering::Relaxed)
    }

    /// Scripted invocations not answered yet.
    pub fn left(&self) -> usize {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl FunctionPlatform for Scripted {
    fn target(&self) -> &'static str {
        "local"
    }

    fn function(&self) -> &str {
        &self.function
    }

    fn describe(&self) -> Vec<String> {
        vec![format!("scripted platform: {} invocations scripted", self.left())]
    }

    async fn invoke(&self, _payload: &Value) -> Result<Invocation, measure::Error> {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).pop_front().ok_or_else(|| measure::Error::Unavailable {
            what: "the scripted platform".into(),
            detail: "the script has ended".into(),
        })
    }

    async fn force_cold(&self) -> Result<(), measure::Error> {
        self.cold_forced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn configured_memory(&self) -> Result<u64, measure::Error> {
        Ok(self.memory.load(Ordering::Relaxed))
    }

    async fn set_memory(&self, mb: u64) -> Result<(), measure::Error> {
        self.memory.store(mb, Ordering::Relaxed);
        Ok(())
    }

    fn cpu_follows_memory(&self) -> Capability {
        Ok(())
    }

    async fn restore(&self) -> Result<(), measure::Error> {
        Ok(())
    }
}

/// A real platform whose invocations are kept, in order.
pub struct Recording<'a, F> {
    inner: &'a F,
    kept: Mutex<Vec<Invocation>>,
}

impl<'a, F: FunctionPlatform> Recording<'a, F> {
    /// Records what `inner` answers.
    pub fn new(inner: &'a F) -> Recording<'a, F> {
        Recording { inner, kept: Mutex::new(Vec::new()) }
    }

    /// The invocations answered so far.
    pub fn records(&self) -> Vec<Invocation> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl<F: FunctionPlatform> FunctionPlatform for Recording<'_, F> {
    fn target(&self) -> &'static str {
        self.inner.target()
    }

    fn function(&self) -> &str {
        self.inner.function()
    }

    fn describe(&self) -> Vec<String> {
        self.inner.describe()
    }

    async fn invoke(&self, payload: &Value) -> Result<Invocation, measure::Error> {
        let inv = self.inner.invoke(payload).await?;
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).push(inv.clone());
        Ok(inv)
    }

    async fn force_cold(&self) -> Result<(), measure::Error> {
        self.inner.force_cold().await
    }

    async fn configured_memory(&self) -> Result<u64, measure::Error> {
        self.inner.configured_memory().await
    }

    async fn set_memory(&self, mb: u64) -> Result<(), measure::Error> {
        self.inner.set_memory(mb).await
    }

    fn cpu_follows_memory(&self) -> Capability {
        self.inner.cpu_follows_memory()
    }

    async fn restore(&self) -> Result<(), measure::Error> {
        self.inner.restore().await
    }
}
