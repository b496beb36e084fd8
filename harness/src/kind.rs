//! [`KindStack`]: the knative target's cluster brought up for one run and deleted at its end, through the
//! pinned scripts the project already has (`scripts/kind/`): `create-cluster.sh` (`kind create cluster
//! --config kind-config.yaml` with the pinned node image), `install.sh` (Knative Serving + Kourier,
//! metrics-server, Prometheus), `build-fixture.sh` (the fixture image, loaded into the node),
//! `deploy-fixture.sh` (the Knative Service, waited for until it answers), and `delete-cluster.sh`.
//!
//! The cluster is named after the run (`KIND_CLUSTER=perf-<run>`), so a cluster of the user's is never the
//! one deleted, and its kubeconfig is written into the run directory. A failed step deletes what the earlier
//! ones created; dropping the stack without [`KindStack::delete`] or [`KindStack::keep`] deletes it too. The
//! commands go through [`Shell`], so the sequence is tested without a cluster.

use std::path::{Path, PathBuf};

/// One command of the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The script (under `scripts/kind/` of the workspace).
    pub script: PathBuf,
    /// Environment it gets: the cluster's name and kubeconfig.
    pub env: Vec<(String, String)>,
}

/// Runs a step; `Err` carries what failed (the script's error output).
pub trait Shell {
    /// Runs `step` to its end.
    fn run(&mut self, step: &Step) -> Result<(), String>;
}

/// The real shell: `bash <script>` from the workspace root, its output passed through.
#[derive(Debug)]
pub struct Bash {
    /// The workspace root.
    pub root: PathBuf,
}

impl Shell for Bash {
    fn run(&mut self, step: &Step) -> Result<(), String> {
        let status = std::process::Command::new("bash")
            .arg(&step.script)
            .envs(step.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root)
            .status()
            .map_err(|e| format!("{}: {e}", step.script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} exited with {status}", step.script.display()))
        }
    }
}

/// The cluster name of a run: `perf-` and the run id's last 20 letters or digits, lower case (kind names
/// are DNS labels).
pub fn cluster_name(run_id: &str) -> String {
    let clean: Vec<char> = run_id.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    let tail: String = clean[clean.len().saturating_sub(20)..].iter().collect();
    format!("perf-{tail}")
}

/// The scripts that bring the cluster up, in order.
pub const UP: [&str; 4] = ["create-cluster.sh", "install.sh", "build-fixture.sh", "deploy-fixture.sh"];
/// The script that deletes it.
pub const DOWN: &str = "delete-cluster.sh";

/// A kind cluster up for this run.
pub struct KindStack<S: Shell> {
    shell: S,
    env: Vec<(String, String)>,
    scripts: PathBuf,
    settled: bool,
}

impl<S: Shell> KindStack<S> {
    /// Brings the cluster of run `run_id` up (kubeconfig `<run>/kind/kubeconfig`); a failed step deletes the
    /// cluster and says which step failed.
    pub fn up(mut shell: S, root: &Path, run: &Path, run_id: &str) -> Result<KindStack<S>, String> {
        let env = vec![
            ("KIND_CLUSTER".to_string(), cluster_name(run_id)),
            ("KUBECONFIG".to_string(), run.join("kind/kubeconfig").display().to_string()),
        ];
        let scripts = root.join("scripts/kind");
        for script in UP {
            let step = Step { script: scripts.join(script), env: env.clone() };
            if let Err(e) = shell.run(&step) {
                let down = Step { script: scripts.join(DOWN), env: env.clone() };
                let cleanup = match shell.run(&down) {
                    Ok(()) => "the cluster was deleted".to_string(),
                    Err(d) => format!("the cluster could NOT be deleted: {d}"),
                };
                return Err(format!("{script} failed: {e}; {cleanup}"));
            }
        }
        Ok(KindStack { shell, env, scripts, settled: false })
    }

    /// The kubeconfig of the cluster.
    pub fn kubeconfig(&self) -> PathBuf {
        PathBuf::from(&self.env[1].1)
    }

    /// Deletes the cluster.
    pub fn delete(mut self) -> Result<(), String> {
        self.settled = true;
        self.down()
    }

    /// Leaves the cluster up; returns the command that deletes it.
    pub fn keep(mut self) -> String {
        self.settled = true;
        format!("KIND_CLUSTER={} KUBECONFIG={} {}", self.env[0].1, self.env[1].1, self.scripts.join(DOWN).display())
    }

    fn down(&mut self) -> Result<(), String> {
        let step = Step { script: self.scripts.join(DOWN), env: self.env.clone() };
        self.shell.run(&step)
    }
}

impl<S: Shell> Drop for KindStack<S> {
    fn drop(&mut self) {
        if !self.settled {
            if let Err(e) = self.down() {
                eprintln!("kind: the cluster {} could NOT be deleted: {e}", self.env[0].1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc};

    use super::*;

    /// Records each step; fails the script named `fail`.
    #[derive(Clone, Default)]
    struct Recording {
        steps: Rc<RefCell<Vec<Step>>>,
        fail: Option<&'static str>,
    }

    impl Shell for Recording {
        fn run(&mut self, step: &Step) -> Result<(), String> {
            self.steps.borrow_mut().push(step.clone());
            match self.fail {
                Some(f) if step.script.ends_with(f) => Err(format!("{f} failed on purpose")),
                _ => Ok(()),
            }
        }
    }

    impl Recording {
        fn scripts(&self) -> Vec<String> {
            self.steps.borrow().iter().map(|s| s.script.file_name().unwrap().to_string_lossy().into_owned()).collect()
        }
    }

    #[test]
    fn up_runs_create_install_build_deploy_and_delete_ends_it() {
        let shell = Recording::default();
        let stack =
            KindStack::up(shell.clone(), Path::new("/repo"), Path::new("/runs/r1"), "20261207T221500Z-42").unwrap();
        assert_eq!(shell.scripts(), ["create-cluster.sh", "install.sh", "build-fixture.sh", "deploy-fixture.sh"]);
        assert_eq!(stack.kubeconfig(), Path::new("/runs/r1/kind/kubeconfig"));
        stack.delete().unwrap();
        assert_eq!(shell.scripts().last().map(String::as_str), Some("delete-cluster.sh"));
        assert_eq!(shell.scripts().len(), 5, "deleted once");
        let steps = shell.steps.borrow();
        assert!(steps.iter().all(|s| s.script.starts_with("/repo/scripts/kind")));
        assert!(
            steps.iter().all(|s| s.env
                == [
                    ("KIND_CLUSTER".to_string(), "perf-20261207t221500z42".to_string()),
                    ("KUBECONFIG".to_string(), "/runs/r1/kind/kubeconfig".to_string())
                ]),
            "every step works on the run's cluster: {steps:?}"
        );
    }

    #[test]
    fn a_failed_step_deletes_the_cluster_and_runs_nothing_after_it() {
        let shell = Recording { fail: Some("install.sh"), ..Recording::default() };
        let e = KindStack::up(shell.clone(), Path::new("/repo"), Path::new("/r"), "run").err().unwrap();
        assert_eq!(shell.scripts(), ["create-cluster.sh", "install.sh", "delete-cluster.sh"]);
        assert!(e.contains("install.sh failed") && e.contains("the cluster was deleted"), "{e}");
    }

    #[test]
    fn dropping_the_stack_deletes_it_and_keep_does_not() {
        let shell = Recording::default();
        drop(KindStack::up(shell.clone(), Path::new("/repo"), Path::new("/r"), "run").unwrap());
        assert_eq!(shell.scripts().last().map(String::as_str), Some("delete-cluster.sh"));
        let shell = Recording::default();
        let cmd = KindStack::up(shell.clone(), Path::new("/repo"), Path::new("/r"), "run").unwrap().keep();
        assert!(!shell.scripts().contains(&"delete-cluster.sh".to_string()));
        assert_eq!(cmd, "KIND_CLUSTER=perf-run KUBECONFIG=/r/kind/kubeconfig /repo/scripts/kind/delete-cluster.sh");
    }

    #[test]
    fn cluster_names_are_dns_labels_of_the_run() {
        assert_eq!(cluster_name("745731a1-19d9-45ff-b843-2d804522962c"), "perf-45ffb8432d804522962c");
        assert!(cluster_name("A_b").chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}
