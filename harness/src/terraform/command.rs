//! [`Terraform`]: the one way the harness runs the `terraform` program (`$TERRAFORM`, else `terraform` on
//! PATH): in a process group of its own (a Ctrl-C on the terminal reaches the harness, which decides what
//! Terraform gets), output captured, under a deadline after which the group is killed, and, when asked, a
//! signal to the harness forwarded to Terraform as SIGINT (its documented graceful stop).

use std::{
    io::Read,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// How a command ended when it ran to its end.
#[derive(Debug)]
pub struct Ran {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its error output.
    pub stderr: String,
}

/// Why a command did not run to its end.
#[derive(Debug)]
pub enum Failure {
    /// The program was not found.
    Missing,
    /// Spawning or waiting failed.
    Io(std::io::Error),
    /// The deadline passed; the process group was killed.
    Timeout,
}

/// What to do with a signal the harness receives while Terraform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Forward SIGINT once: Terraform stops starting new operations, finishes those under way and writes its
    /// state (an apply the run will destroy right after).
    Stop,
    /// Let it finish (a destroy: stopping it would leave the stack up).
    Finish,
}

/// A `terraform` program with the environment every command of the harness gives it.
#[derive(Debug, Clone)]
pub struct Terraform {
    /// The program.
    pub program: String,
    pub(crate) env: Vec<(String, String)>,
}

impl Default for Terraform {
    fn default() -> Self {
        Terraform::from_env()
    }
}

impl Terraform {
    /// `$TERRAFORM`, else `terraform`.
    pub fn from_env() -> Terraform {
        let program = std::env::var("TERRAFORM").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "terraform".into());
        Terraform { program, env: vec![("TF_IN_AUTOMATION".into(), "1".into())] }
    }

    /// The same program with `key=value` in its environment.
    pub fn with_env(mut self, key: &str, value: impl Into<String>) -> Terraform {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `terraform -chdir=<dir> <args>`.
    pub fn run(&self, dir: &Path, args: &[String], timeout: Duration, on_signal: OnSignal) -> Result<Ran, Failure> {
        let mut cmd = Command::new(&self.program);
        cmd.arg(format!("-chdir={}", dir.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Failure::Missing,
            _ => Failure::Io(e),
        })?;
        let reader = |s: Option<Box<dyn Read + Send>>| {
            s.map(|mut s| {
                std::thread::spawn(move || {
                    let mut b = String::new();
                    let _ = s.read_to_string(&mut b);
                    b
                })
            })
        };
        let out = reader(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
        let err = reader(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
        let group = rustix::process::Pid::from_raw(child.id() as i32);
        let start = Instant::now();
        let mut forwarded = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() > timeout => {
                    if let Some(g) = group {
                        let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failure::Timeout);
                }
                Ok(None) => {
                    if on_signal == OnSignal::Stop && !forwarded && crate::interrupt::interrupted() {
                        forwarded = true;
                        if let Some(g) = group {
                            let _ = rustix::process::kill_process(g, rustix::process::Signal::INT);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Failure::Io(e)),
            }
        };
        if forwarded {
            // Terraform stopped; what its provisioners started and left behind (a `local-exec` command's
            // children) is still in its process group.
            if let Some(g) = group {
                let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
            }
        }
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(Ran { status, stdout, stderr })
    }

    /// The program as a path (for messages).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.program)
    }
}

/// The last `max` characters of Terraform's error output, trimmed (its message is at the end).
pub fn tail(text: &str, max: usize) -> String {
    let t = text.trim();
    let n = t.chars().count();
    if n <= max {
        return t.to_string();
    }
    let cut: String = t.chars().skip(n - max).collect();
    format!("...{cut}")
}
