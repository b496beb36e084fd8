//! Interruption by SIGINT or SIGTERM: the first signal cancels the measurement under way (its future is
//! dropped, so every guard it holds runs: the aws change guard restores, the local platform removes its
//! environments, server processes stop), the check is decided as an error "interrupted", the partial report
//! is written and the process exits with 128 + the signal (130, 143). A second signal exits at once after
//! printing what is still outstanding: the registered [`Pending`] cleanups and the run's unrestored audit
//! entries, with the `harness restore` command that puts them back.
//!
//! Long-lived objects that must be cleaned up register a [`Pending`] for as long as they hold something;
//! code that waits registers nothing and simply races its future against [`cancelled`].

use std::{
    collections::BTreeMap,
    future::Future,
    path::PathBuf,
    sync::{
        atomic::{AtomicI32, AtomicU64, Ordering},
        LazyLock, Mutex, OnceLock,
    },
};

use tokio::sync::watch;

/// SIGINT.
pub const SIGINT: i32 = 2;
/// SIGTERM.
pub const SIGTERM: i32 = 15;

/// The first word of the reason of a check stopped by a signal.
pub const REASON: &str = "interrupted";

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static CHANNEL: LazyLock<watch::Sender<i32>> = LazyLock::new(|| watch::channel(0).0);
static PENDING: LazyLock<Mutex<BTreeMap<u64, String>>> = LazyLock::new(|| Mutex::new(BTreeMap::new()));
static NEXT: AtomicU64 = AtomicU64::new(1);
static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Name of a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// Installs the handlers of SIGINT and SIGTERM (once per process; later calls return the first outcome).
/// From then on these signals no longer kill the process: it must poll [`interrupted`] or race
/// [`cancelled`], and end with [`exit_code`].
pub fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(format!("no runtime for the signal handlers: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                        (Ok(i), Ok(t)) => (i, t),
                        (Err(e), _) | (_, Err(e)) => {
                            let _ = tx.send(Err(format!("installing the SIGINT/SIGTERM handlers: {e}")));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(()));
                    loop {
                        let sig = tokio::select! {
                            _ = int.recv() => SIGINT,
                            _ = term.recv() => SIGTERM,
                        };
                        received(sig);
                    }
                });
            });
            match spawned {
                Err(e) => Err(format!("starting the signal thread: {e}")),
                Ok(_) => rx.recv().unwrap_or_else(|_| Err("the signal thread ended before installing".into())),
            }
        })
        .clone()
}

/// What happens on a signal: the first one cancels, a later one exits at once.
fn received(sig: i32) {
    if SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        eprintln!(
            "harness: {} received: stopping the load, restoring what the run changed, removing what it started \
             (a second signal exits at once)",
            signal_name(sig)
        );
        CHANNEL.send_replace(sig);
        return;
    }
    let mut text = format!("harness: second signal ({}): exiting now without cleaning up\n", signal_name(sig));
    text += &outstanding_text();
    eprint!("{text}");
    std::process::exit(exit_status(SIGNAL.load(Ordering::SeqCst)).into());
}

/// What is outstanding now: registered cleanups and the run's unrestored audit entries, as text.
pub fn outstanding_text() -> String {
    let mut text = String::new();
    let pending: Vec<String> = PENDING.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
    for p in &pending {
        text += &format!("  not cleaned up: {p}\n");
    }
    let mut unrestored = 0;
    if let Some(dir) = RUN_DIR.get() {
        let audit = dir.join(crate::platform::aws::AUDIT_FILE);
        if let Ok(entries) = crate::platform::aws::AuditLog::read(&audit) {
            for e in crate::platform::aws::AuditLog::unrestored(&entries) {
                unrestored += 1;
                text += &format!(
                    "  not restored: {} {} at {} (was {}, set to {})\n",
                    e.resource, e.setting, e.endpoint, e.before, e.after
                );
            }
        }
        if unrestored > 0 || !pending.is_empty() {
            text += &format!(
                "  put it back with: harness restore --run {} (it also removes local environments and servers of \
                 dead runs)\n",
                dir.display()
            );
        }
    }
    if pending.is_empty() && unrestored == 0 {
        text += "  nothing was outstanding\n";
    }
    text
}

/// Records the run directory, whose audit log the second-signal message reads.
pub fn set_run_dir(dir: PathBuf) {
    let _ = RUN_DIR.set(dir);
}

/// The signal received (2 or 15), if any.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Whether a signal asked the process to stop.
pub fn interrupted() -> bool {
    signal().is_some()
}

/// Exit status for a signal: 128 + its number.
pub fn exit_status(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(1)
}

/// The exit status the process must end with when it was interrupted.
pub fn exit_code() -> Option<u8> {
    signal().map(exit_status)
}

/// The reason of a check stopped by the signal.
pub fn reason() -> String {
    match signal() {
        Some(s) => format!(
            "{REASON} ({}): the measurement was stopped before it finished; what it changed was restored and \
             what it started removed",
            signal_name(s)
        ),
        None => REASON.into(),
    }
}

/// The reason of a check that never started because the run was stopped.
pub fn reason_not_run() -> String {
    match signal() {
        Some(s) => format!("{REASON} ({}): the run was stopped before this check was measured", signal_name(s)),
        None => REASON.into(),
    }
}

/// Resolves when a signal asked the process to stop (at once if one already did).
pub async fn cancelled() {
    let mut rx = CHANNEL.subscribe();
    let _ = rx.wait_for(|s| *s != 0).await;
}

/// Runs `f` unless a signal arrives first; `None` when interrupted (then `f` was dropped, running its guards).
pub async fn or_cancelled<T>(f: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = cancelled() => None,
        v = f => Some(v),
    }
}

/// A cleanup an object still owes (a platform's environments, a server process): listed when a second signal
/// exits before it ran. Dropping it says the cleanup is done.
#[derive(Debug)]
pub struct Pending(u64);

impl Pending {
    /// Registers `what` as outstanding until the returned value is dropped.
    pub fn register(what: impl Into<String>) -> Pending {
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        PENDING.lock().unwrap_or_else(|p| p.into_inner()).insert(id, what.into());
        Pending(id)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.0);
    }
}

/// Cleanups registered and not yet done.
pub fn pending() -> Vec<String> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_cleanup_is_listed_until_dropped() {
        let p = Pending::register("test cleanup 7f3a");
        assert!(pending().iter().any(|w| w == "test cleanup 7f3a"));
        assert!(outstanding_text().contains("not cleaned up: test cleanup 7f3a"));
        drop(p);
        assert!(!pending().iter().any(|w| w == "test cleanup 7f3a"));
    }

    #[test]
    fn exit_statuses_follow_the_shell_convention() {
        assert_eq!(exit_status(SIGINT), 130);
        assert_eq!(exit_status(SIGTERM), 143);
    }
}
