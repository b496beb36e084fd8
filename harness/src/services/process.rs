//! [`ServerProcess`]: a server program run as a child in its own process group, with a temp directory for
//! its configuration, data and log. Dropping it stops the group (also while a panic unwinds); a process
//! killed before it could clean up is swept at the next start from the pid files in [`registry_dir`].

use std::{
    ffi::OsString,
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rustix::process::{kill_process_group, test_kill_process, Pid, Signal};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use super::Error;

/// A server program and the Debian package that ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binary {
    /// Program name on PATH.
    pub program: &'static str,
    /// Debian package.
    pub package: &'static str,
}

/// Prometheus.
pub const PROMETHEUS: Binary = Binary { program: "prometheus", package: "prometheus" };
/// promtool (rule checks and rule unit tests).
pub const PROMTOOL: Binary = Binary { program: "promtool", package: "prometheus" };
/// Alertmanager.
pub const ALERTMANAGER: Binary = Binary { program: "prometheus-alertmanager", package: "prometheus-alertmanager" };
/// amtool (Alertmanager configuration checks).
pub const AMTOOL: Binary = Binary { program: "amtool", package: "prometheus-alertmanager" };
/// Pushgateway.
pub const PUSHGATEWAY: Binary = Binary { program: "prometheus-pushgateway", package: "prometheus-pushgateway" };

impl Binary {
    /// The environment variable that overrides the program's path (`HARNESS_PROMETHEUS_ALERTMANAGER_BIN`).
    pub fn env_var(&self) -> String {
        format!("HARNESS_{}_BIN", self.program.to_uppercase().replace('-', "_"))
    }

    /// The program's path: the override variable, else the first match on PATH.
    pub fn locate(&self) -> Result<PathBuf, Error> {
        let missing =
            || Error::MissingBinary { program: self.program.into(), package: self.package.into(), env: self.env_var() };
        if let Some(p) = std::env::var_os(self.env_var()) {
            let p = PathBuf::from(p);
            return if p.is_file() { Ok(p) } else { Err(missing()) };
        }
        let path = std::env::var_os("PATH").ok_or_else(missing)?;
        std::env::split_paths(&path).map(|d| d.join(self.program)).find(|p| p.is_file()).ok_or_else(missing)
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a server that then loses it is restarted on another).
pub fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?;
    Ok(l.local_addr().map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?.port())
}

/// Directory of the pid files of running servers (`HARNESS_SERVICES_DIR`, else `$TMPDIR/perf-acceptance-services`).
pub fn registry_dir() -> PathBuf {
    std::env::var_os("HARNESS_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("perf-acceptance-services"))
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    pid: i32,
    start: u64,
    program: String,
    owner: i32,
    owner_start: u64,
    dir: PathBuf,
}

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22): with the pid, it
/// identifies a process even after its pid is reused.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

fn alive(pid: i32, start: u64) -> bool {
    Pid::from_raw(pid).is_some_and(|p| test_kill_process(p).is_ok()) && start_ticks(pid) == Some(start)
}

/// Stops servers whose owning process is gone (killed before its guards ran) and removes their temp
/// directories; returns how many were stopped.
pub fn sweep() -> usize {
    let dir = registry_dir();
    let Ok(entries) = fs::read_dir(&dir) else { return 0 };
    let mut stopped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Some(rec) = fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Record>(&t).ok()) else {
            // A record being written right now, or garbage: leave fresh files alone, drop old ones.
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > Duration::from_secs(600)));
            if old {
                let _ = fs::remove_file(&path);
            }
            continue;
        };
        if alive(rec.owner, rec.owner_start) {
            continue;
        }
        if alive(rec.pid, rec.start) {
            if let Some(p) = Pid::from_raw(rec.pid) {
                let _ = kill_process_group(p, Signal::KILL);
                stopped += 1;
                tracing::warn!(pid = rec.pid, program = %rec.program, "stopped a server left behind by process {}", rec.owner);
            }
        }
        if rec.dir.starts_with(std::env::temp_dir())
            && rec.dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("perf-acceptance-"))
        {
            let _ = fs::remove_dir_all(&rec.dir);
        }
        let _ = fs::remove_file(&path);
    }
    stopped
}

/// A new temp directory for a server, named so that a sweep recognizes it.
pub fn server_dir(name: &str) -> Result<TempDir, Error> {
    tempfile::Builder::new()
        .prefix(&format!("perf-acceptance-{name}-"))
        .tempdir()
        .map_err(|e| Error::io(&std::env::temp_dir(), e))
}

/// A running server program; stopped (with its whole process group) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Child,
    log: PathBuf,
    record: PathBuf,
    dir: TempDir,
    _pending: crate::interrupt::Pending,
}

impl ServerProcess {
    /// Starts `binary` with `args` in its own process group, logging to `<dir>/<name>.log`.
    pub fn spawn(name: &str, binary: &Binary, args: &[OsString], dir: TempDir) -> Result<ServerProcess, Error> {
        Self::spawn_program(name, &binary.locate()?, args, dir, None)
    }

    /// Starts `program` like [`ServerProcess::spawn`], as the user and group `as_user` (uid, gid) when given:
    /// servers that refuse to run as root (PostgreSQL) run as their own system user.
    pub fn spawn_program(
        name: &str,
        program: &Path,
        args: &[OsString],
        dir: TempDir,
        as_user: Option<(u32, u32)>,
    ) -> Result<ServerProcess, Error> {
        sweep();
        let log = dir.path().join(format!("{name}.log"));
        let out = fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let mut command = Command::new(program);
        if let Some((uid, gid)) = as_user {
            command.uid(uid).gid(gid);
        }
        let child = command
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Spawn { program: program.display().to_string(), detail: e.to_string() })?;
        let registry = registry_dir();
        let record = registry.join(format!("{}.json", child.id()));
        let me = std::process::id() as i32;
        let rec = Record {
            pid: child.id() as i32,
            start: start_ticks(child.id() as i32).unwrap_or_default(),
            program: program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into()),
            owner: me,
            owner_start: start_ticks(me).unwrap_or_default(),
            dir: dir.path().to_path_buf(),
        };
        let pending = crate::interrupt::Pending::register(format!("{name} (process group {})", child.id()));
        let proc = ServerProcess { name: name.into(), child, log, record: record.clone(), dir, _pending: pending };
        fs::create_dir_all(&registry).map_err(|e| Error::io(&registry, e))?;
        // Written aside and renamed into place: a sweep in another process never reads half a record.
        let tmp = registry.join(format!(".{}.json.tmp", proc.child.id()));
        fs::write(&tmp, serde_json::to_vec(&rec).expect("record serializes")).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &record).map_err(|e| Error::io(&record, e))?;
        Ok(proc)
    }

    /// Server name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's temp directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the process has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// The log's error lines, else its last 15 lines.
    pub fn log_excerpt(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let errors: Vec<&str> =
            text.lines().filter(|l| l.contains("level=error") || l.contains("level=ERROR")).collect();
        let lines: Vec<&str> = if errors.is_empty() {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(15)..].to_vec()
        } else {
            errors
        };
        if lines.is_empty() {
            format!("(empty log {})", self.log.display())
        } else {
            lines.join("\n")
        }
    }

    /// An [`Error::Exited`] if the process has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        match self.exit_status() {
            Some(status) => Err(Error::Exited { name: self.name.clone(), status, log: self.log_excerpt() }),
            None => Ok(()),
        }
    }

    fn stop_group(&mut self) {
        let Some(pgid) = Pid::from_raw(self.child.id() as i32) else { return };
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill_process_group(pgid, Signal::TERM);
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Children the server may have started share its group; make sure none outlives it.
        let _ = kill_process_group(pgid, Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop_group();
        let _ = fs::remove_file(&self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_its_debian_package() {
        let b = Binary { program: "perf-acceptance-no-such-server", package: "some-package" };
        let e = b.locate().unwrap_err().to_string();
        assert!(e.contains("perf-acceptance-no-such-server") && e.contains("apt-get install some-package"), "{e}");
        assert!(e.contains("HARNESS_PERF_ACCEPTANCE_NO_SUCH_SERVER_BIN"), "{e}");
    }

    #[test]
    fn drop_stops_the_whole_process_group() {
        let sh = Binary { program: "sh", package: "dash" };
        let dir = server_dir("test").unwrap();
        let dir_path = dir.path().to_path_buf();
        // The shell starts a grandchild in the same group and waits. The pid is written aside and renamed into
        // place: the redirection creates the file before `echo` writes it, and a reader that saw the file
        // appear could read it empty.
        let args: Vec<OsString> =
            ["-c", "sleep 300 & echo $! > grandchild.pid.tmp && mv grandchild.pid.tmp grandchild.pid; wait"]
                .iter()
                .map(OsString::from)
                .collect();
        let p = ServerProcess::spawn("sh", &sh, &args, dir).unwrap();
        let pid = p.pid() as i32;
        let gc_file = dir_path.join("grandchild.pid");
        let until = Instant::now() + Duration::from_secs(10);
        while !gc_file.exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let gc: i32 = fs::read_to_string(&gc_file).unwrap().trim().parse().unwrap();
        let record = registry_dir().join(format!("{pid}.json"));
        assert!(record.exists());
        drop(p);
        let gone = |pid: i32| fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "));
        let until = Instant::now() + Duration::from_secs(10);
        while !(gone(pid) && gone(gc)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(pid) && gone(gc), "server {pid} or its child {gc} survived the drop");
        assert!(!record.exists() && !dir_path.exists());
    }

    #[test]
    fn sweep_stops_servers_whose_owner_died() {
        // A server recorded as owned by a process that no longer exists.
        let dir = server_dir("orphan").unwrap().keep();
        let mut child = Command::new("sleep").arg("300").process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let reg = registry_dir();
        fs::create_dir_all(&reg).unwrap();
        let rec = Record {
            pid,
            start: start_ticks(pid).unwrap(),
            program: "sleep".into(),
            owner: i32::MAX - 7,
            owner_start: 1,
            dir: dir.clone(),
        };
        let file = reg.join(format!("{pid}.json"));
        fs::write(&file, serde_json::to_vec(&rec).unwrap()).unwrap();
        sweep();
        let status = child.wait().unwrap();
        assert!(!status.success(), "the orphan was not killed");
        assert!(!file.exists() && !dir.exists());
    }
}
