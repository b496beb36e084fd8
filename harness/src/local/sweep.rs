//! Run marks and the sweep: everything the platform starts carries the run id and its owner (pid and
//! process start time); at start, whatever a dead owner left behind (containers by label, processes by
//! their environment) is removed, so a killed run leaves nothing for long.

use super::docker::Docker;

/// Container label holding the run id.
pub const RUN_LABEL: &str = "perf-acceptance.run";
/// Container label holding the owner (`pid:starttime`).
pub const OWNER_LABEL: &str = "perf-acceptance.owner";

/// This process as an owner: `pid:starttime` (start time in clock ticks since boot, so a reused pid does
/// not pass for a live owner).
pub(crate) fn this_owner() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", start_time(pid).unwrap_or(0))
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields count from the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the owner named by `pid:starttime` still runs.
pub(crate) fn owner_alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(start)
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Containers removed.
    pub containers: usize,
    /// Processes killed.
    pub processes: usize,
}

/// Processes carrying `PERF_ACCEPTANCE_RUN` in their environment: (pid, run id, owner).
pub(crate) fn marked_processes() -> Vec<(u32, String, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let mut run = None;
        let mut owner = None;
        for kv in environ.split(|b| *b == 0) {
            if let Some(v) = kv.strip_prefix(b"PERF_ACCEPTANCE_RUN=") {
                run = Some(String::from_utf8_lossy(v).into_owned());
            } else if let Some(v) = kv.strip_prefix(b"PERF_ACCEPTANCE_OWNER=") {
                owner = Some(String::from_utf8_lossy(v).into_owned());
            }
        }
        Some((pid, run?, owner?))
    })
    .collect()
}

/// Containers of a run (by label) still on the engine.
pub(crate) fn run_containers(docker: &Docker, run_id: &str) -> Vec<String> {
    docker.list(&format!("{RUN_LABEL}={run_id}")).map(|v| v.into_iter().map(|(id, _)| id).collect()).unwrap_or_default()
}

/// What of run `run_id` still exists: containers on the default engine (by label) and live processes (by
/// environment). Tests use it to prove a run left nothing behind.
pub fn leftovers(run_id: &str) -> Swept {
    let docker = Docker::new(None);
    let containers = if docker.ping().is_ok() { run_containers(&docker, run_id).len() } else { 0 };
    let processes = marked_processes().into_iter().filter(|(_, run, _)| run == run_id).count();
    Swept { containers, processes }
}

/// What harness process `pid` owns now: containers on the default engine (by owner label) and live processes
/// (by environment). Tests use it to prove an interrupted harness left nothing behind.
pub fn owned_by(pid: u32) -> Swept {
    let docker = Docker::new(None);
    let mine = |owner: &str| owner.split_once(':').is_some_and(|(p, _)| p == pid.to_string());
    let containers = if docker.ping().is_ok() {
        docker
            .list(RUN_LABEL)
            .unwrap_or_default()
            .iter()
            .filter(|(_, labels)| labels.get(OWNER_LABEL).is_some_and(|o| mine(o)))
            .count()
    } else {
        0
    };
    let processes = marked_processes().into_iter().filter(|(_, _, owner)| mine(owner)).count();
    Swept { containers, processes }
}

/// Removes what runs whose harness process is gone left on the default engine and as processes (blocking):
/// `harness restore` after a run was killed.
pub fn sweep_dead_runs() -> Swept {
    let docker = Docker::new(None);
    let engine = docker.ping().is_ok().then_some(docker);
    sweep_dead_owners(engine.as_ref())
}

/// Removes containers and kills processes whose owner is dead (blocking).
pub(crate) fn sweep_dead_owners(docker: Option<&Docker>) -> Swept {
    let mut swept = Swept::default();
    if let Some(d) = docker {
        for (id, labels) in d.list(RUN_LABEL).unwrap_or_default() {
            let owner = labels.get(OWNER_LABEL).map(String::as_str).unwrap_or("");
            if !owner_alive(owner) && d.remove(&id).is_ok() {
                swept.containers += 1;
            }
        }
    }
    for (pid, _, owner) in marked_processes() {
        if !owner_alive(&owner) && kill(pid) {
            swept.processes += 1;
        }
    }
    swept
}

/// Kills every process and container of `run_id` (blocking): the last line of defence on shutdown.
pub(crate) fn remove_run(docker: Option<&Docker>, run_id: &str) -> Swept {
    let mut swept = Swept::default();
    if let Some(d) = docker {
        if let Err(e) = d.list(&format!("{RUN_LABEL}={run_id}")) {
            // Say what is left and how it goes: nothing else would tell the user.
            eprintln!(
                "harness: local platform {run_id}: its containers could not be listed or removed ({e}); they stay \
                 (label {RUN_LABEL}={run_id}) until `harness restore --run DIR` or the next run removes them"
            );
        }
        let ids = run_containers(d, run_id);
        for (i, id) in ids.iter().enumerate() {
            match d.remove(id) {
                Ok(()) => swept.containers += 1,
                Err(e) => {
                    // An engine that did not remove one (each call waits up to its timeout) is not asked for
                    // the rest one by one: shutdown stays bounded, and the user is told what is left.
                    eprintln!(
                        "harness: local platform {run_id}: the Docker engine did not remove container {id} ({e}); {} \
                         container(s) of this run stay (label {RUN_LABEL}={run_id}) until `harness restore --run DIR` \
                         or the next run removes them",
                        ids.len() - i
                    );
                    break;
                }
            }
        }
    }
    for (pid, run, _) in marked_processes() {
        if run == run_id && kill(pid) {
            swept.processes += 1;
        }
    }
    swept
}

/// Kills `pid` and waits (up to 5 s) until it is gone or a zombie, so whoever counts processes right after a
/// sweep does not count one still dying.
fn kill(pid: u32) -> bool {
    let sent = rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|p| rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok());
    if sent {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !dead(pid) && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    sent
}

/// Gone, or exited and waiting to be reaped.
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rfind(')').is_some_and(|at| stat[at + 1..].trim_start().starts_with(['Z', 'X'])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_a_live_owner_and_a_made_up_one_is_not() {
        assert!(owner_alive(&this_owner()));
        let pid = std::process::id();
        assert!(!owner_alive(&format!("{pid}:1")));
        assert!(!owner_alive("garbage"));
    }
}
