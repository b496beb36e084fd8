//! `harness run --provision`: the offline example `terraform/examples/local` applied in a state of the run's
//! own, the checks run against it, and destroyed at the end: after a normal run, after a failed check, on
//! SIGTERM, and through `harness restore --run DIR` after SIGKILL; `--keep` leaves it up and prints the
//! command that removes it; bad input (a missing module directory, a failing apply) is an error naming the
//! directory and Terraform's message, with nothing left applied.
//!
//! The example points the localstack target at an embedded local platform this test starts (its Invoke
//! API, front door and API key as Terraform variables). Needs the `terraform` binary (or `$TERRAFORM`);
//! without it every test is reported as ignored and this binary says which binary it looked for.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use libtest_mimic::Arguments;
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

mod terraform_support;

use terraform_support::{root, terraform_available, terraform_program, trial};

/// A local platform (process mode) for the example to point at; stopped when dropped.
struct Platform {
    rt: tokio::runtime::Runtime,
    platform: Option<harness::local::Platform>,
}

impl Platform {
    fn start() -> Result<Platform> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let mut cfg = harness::local::PlatformConfig::from_file(&root().join("fixtures/targets/local.yaml"))?;
        cfg.mode = harness::local::ModeChoice::Process;
        let platform = rt.block_on(harness::local::Platform::start(cfg))?;
        Ok(Platform { rt, platform: Some(platform) })
    }

    /// The `--var` flags that point the example at this platform.
    fn vars(&self) -> Vec<String> {
        let p = self.platform.as_ref().expect("running");
        vec![
            "--var".into(),
            format!("invoke_endpoint={}", p.invoke_url()),
            "--var".into(),
            format!("api_url={}/fixture-rust", p.front_door_http()),
            "--var".into(),
            format!("api_key={}", p.api_key()),
        ]
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(p) = self.platform.take() {
            self.rt.block_on(p.shutdown());
        }
    }
}

/// A profile of one warm-start check: `expect` decides whether it can pass, `samples` how long it runs.
fn profile(dir: &Path, expect: &str, samples: u32) -> Result<PathBuf> {
    let p = dir.join("profile.yaml");
    std::fs::write(
        &p,
        format!(
            "profile: provision-test\ntitle: \"provisioned run\"\nsource: \"harness/tests/provision.rs\"\n\
             defaults:\n  warm_start: {{ samples: {samples} }}\nchecks:\n  - {{ id: P.warm_start, ac: AC2, \
             title: \"Warm start client latency (P95)\", measure: warm_start.client_latency, expect: \"{expect}\", \
             min_samples: 3 }}\n"
        ),
    )?;
    Ok(p)
}

/// `harness run --provision --target localstack --tf-dir <module> --out <run>` plus `extra`.
fn harness_run(tmp: &Path, module: &Path, profile: &Path, extra: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(["run", "--provision", "--target", "localstack", "--profile"])
        .arg(profile)
        .arg("--tf-dir")
        .arg(module)
        .arg("--out")
        .arg(tmp.join("run"))
        .args(extra)
        .current_dir(root());
    scrub(&mut cmd, tmp);
    cmd
}

/// The environment of a harness command: no AWS or HARNESS settings of the caller, Terraform offline.
fn scrub(cmd: &mut Command, tmp: &Path) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HARNESS_") || k.starts_with("AWS_") || k.starts_with("TF_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HARNESS_HISTORY", tmp.join("history"))
        .env("HARNESS_SERVICES_DIR", tmp.join("services"))
        .env("HARNESS_PROGRESS", "off")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TERRAFORM", terraform_program());
}

fn restore(tmp: &Path) -> Result<Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(["restore", "--run"]).arg(tmp.join("run")).current_dir(root());
    scrub(&mut cmd, tmp);
    Ok(cmd.output()?)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every Terraform state file under `dir`.
fn state_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            state_files(&p, found);
        } else if p.file_name().is_some_and(|n| n == "terraform.tfstate") {
            found.push(p);
        }
    }
}

/// The working directory of the run's stack, from its record (`None` before the record is written).
fn work_dir(run: &Path) -> Option<PathBuf> {
    let record: Value = serde_json::from_str(&std::fs::read_to_string(run.join("provision/record.json")).ok()?).ok()?;
    Some(PathBuf::from(record["module"].as_str()?).parent()?.to_path_buf())
}

/// The resources left in the states of the run's stack (none when every state is empty or gone).
fn resources_left(run: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    state_files(run, &mut files);
    if let Some(work) = work_dir(run) {
        state_files(&work, &mut files);
    }
    let mut left = Vec::new();
    for f in files {
        let state: Value = serde_json::from_slice(&std::fs::read(&f)?).with_context(|| f.display().to_string())?;
        for r in state["resources"].as_array().into_iter().flatten() {
            left.push(format!(
                "{}: {}.{}",
                f.display(),
                r["type"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?")
            ));
        }
    }
    Ok(left)
}

/// Files of the run directory that hold `secret` (the run directory is what CI keeps as an artifact).
fn files_holding(dir: &Path, secret: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_holding(&p, secret, found);
        } else if std::fs::read(&p).is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret.as_bytes())) {
            found.push(p);
        }
    }
}

/// The source module is never written to: the run works on a copy of its own.
fn source_untouched() -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("terraform/examples/local"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    ensure!(names == ["main.tf", "outputs.tf", "variables.tf"], "terraform/examples/local was written to: {names:?}");
    Ok(())
}

fn example() -> PathBuf {
    root().join("terraform/examples/local")
}

fn report_checks(run: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(run.join("report.json")).context("report.json")?;
    Ok(serde_json::from_str::<Value>(&text)?["checks"].as_array().context("checks")?.clone())
}

/// The provisioning lines of the output name the three phases with their wall times.
fn phases_reported(stdout: &str) -> Result<()> {
    for phase in ["init+apply", "first healthy invoke", "destroy"] {
        ensure!(
            stdout.lines().any(|l| l.starts_with("provisioning:") && l.contains(phase) && l.contains(" s")),
            "no provisioning line for `{phase}` with a wall time in:\n{stdout}"
        );
    }
    Ok(())
}

fn normal_run_applies_checks_and_destroys() -> Result<()> {
    let platform = Platform::start()?;
    let tmp = tempfile::tempdir()?;
    let profile = profile(tmp.path(), "p95 < 30s", 5)?;
    let o = harness_run(tmp.path(), &example(), &profile, &platform.vars()).output()?;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    let checks = report_checks(&tmp.path().join("run"))?;
    ensure!(checks.len() == 1 && checks[0]["status"] == "passed", "{checks:#?}");
    phases_reported(&stdout)?;
    ensure!(stdout.contains("destroyed 1 resource"), "{}", text(&o));
    let left = resources_left(&tmp.path().join("run"))?;
    ensure!(left.is_empty(), "left after the run: {left:?}");
    let key = platform.platform.as_ref().unwrap().api_key().to_string();
    let mut holding = Vec::new();
    files_holding(&tmp.path().join("run"), &key, &mut holding);
    ensure!(holding.is_empty(), "the API key variable is in files of the run directory: {holding:?}");
    let work = work_dir(&tmp.path().join("run")).context("no record")?;
    ensure!(!work.exists(), "the stack's working directory {} is left after the destroy", work.display());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("run/report.json"))?)?;
    ensure!(
        report["provisioning"]["destroy"]["seconds"].as_f64().is_some(),
        "report.json: {:#}",
        report["provisioning"]
    );
    source_untouched()
}

/// Two provisioned runs of the same module at once: each applies and destroys its own stack.
fn parallel_runs_do_not_collide() -> Result<()> {
    let platform = Platform::start()?;
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let spawn = |tmp: &Path| -> Result<Child> {
        let profile = profile(tmp, "p95 < 30s", 20)?;
        Ok(harness_run(tmp, &example(), &profile, &platform.vars())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?)
    };
    let (ca, cb) = (spawn(a.path())?, spawn(b.path())?);
    for (tmp, child) in [(a.path(), ca), (b.path(), cb)] {
        let o = child.wait_with_output()?;
        ensure!(o.status.code() == Some(0), "{}", text(&o));
        ensure!(String::from_utf8_lossy(&o.stdout).contains("destroyed 1 resource"), "{}", text(&o));
        ensure!(resources_left(&tmp.join("run"))?.is_empty(), "{}", text(&o));
    }
    source_untouched()
}

fn a_failed_check_still_destroys() -> Result<()> {
    let platform = Platform::start()?;
    let tmp = tempfile::tempdir()?;
    let profile = profile(tmp.path(), "p95 < 1ns", 5)?;
    let o = harness_run(tmp.path(), &example(), &profile, &platform.vars()).output()?;
    ensure!(o.status.code() == Some(1), "{}", text(&o));
    let checks = report_checks(&tmp.path().join("run"))?;
    ensure!(checks[0]["status"] == "failed", "{checks:#?}");
    ensure!(String::from_utf8_lossy(&o.stdout).contains("destroyed 1 resource"), "{}", text(&o));
    let left = resources_left(&tmp.path().join("run"))?;
    ensure!(left.is_empty(), "left after a failed check: {left:?}");
    source_untouched()
}

/// Waits until the run's record says the stack is applied (or the harness exits).
fn wait_applied(child: &mut Child, run: &Path) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        if let Some(s) = child.try_wait()? {
            bail!("the harness exited ({s}) before the stack was applied");
        }
        let record = std::fs::read_to_string(run.join("provision/record.json")).unwrap_or_default();
        if serde_json::from_str::<Value>(&record).is_ok_and(|r| r["state"] == "applied") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the stack was not applied within 120 s")
}

fn wait_exit(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() > end {
            let _ = child.kill();
            bail!("the harness did not exit within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm_destroys() -> Result<()> {
    let platform = Platform::start()?;
    let tmp = tempfile::tempdir()?;
    let run = tmp.path().join("run");
    // Far more samples than the test waits for: the signal arrives while the check measures.
    let profile = profile(tmp.path(), "p95 < 30s", 1_000_000)?;
    let mut child = harness_run(tmp.path(), &example(), &profile, &platform.vars())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    wait_applied(&mut child, &run)?;
    ensure!(!resources_left(&run)?.is_empty(), "the record says applied, the state holds nothing");
    std::thread::sleep(Duration::from_millis(500));
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::TERM)?;
    let status = wait_exit(&mut child, Duration::from_secs(120))?;
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    ensure!(status.code() == Some(143), "exit {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    ensure!(stdout.contains("destroyed 1 resource"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let left = resources_left(&run)?;
    ensure!(left.is_empty(), "left after SIGTERM: {left:?}");
    source_untouched()
}

/// Processes whose command line is `sleep <secs>` (what a test's provisioner started).
fn sleeping(secs: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline == format!("sleep\0{secs}\0").as_bytes() {
            found.push(pid);
        }
    }
    found
}

/// SIGTERM while `terraform apply` runs (a provisioner sleeps): Terraform is stopped (SIGINT, its graceful
/// stop), what it created is destroyed, nothing it started is left running, exit 143.
fn sigterm_during_apply_destroys() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let module = tmp.path().join("slow-module");
    std::fs::create_dir_all(&module)?;
    for f in ["main.tf", "outputs.tf", "variables.tf"] {
        std::fs::copy(example().join(f), module.join(f))?;
    }
    let secs = "47.25";
    let mut main = std::fs::read_to_string(module.join("main.tf"))?;
    main += &format!(
        "\nresource \"terraform_data\" \"slow\" {{\n  depends_on = [terraform_data.deployment]\n  provisioner \
         \"local-exec\" {{\n    command = \"sleep {secs}\"\n  }}\n}}\n"
    );
    std::fs::write(module.join("main.tf"), main)?;
    let profile = profile(tmp.path(), "p95 < 30s", 5)?;
    let vars: Vec<String> = ["invoke_endpoint=http://127.0.0.1:9", "api_url=http://127.0.0.1:9/f", "api_key=k"]
        .iter()
        .flat_map(|v| ["--var".to_string(), v.to_string()])
        .collect();
    let run = tmp.path().join("run");
    let mut child =
        harness_run(tmp.path(), &module, &profile, &vars).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let err = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let end = Instant::now() + Duration::from_secs(60);
    while sleeping(secs).is_empty() {
        ensure!(Instant::now() < end && child.try_wait()?.is_none(), "the provisioner never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::TERM)?;
    let status = wait_exit(&mut child, Duration::from_secs(60))?;
    let stderr = err.join().unwrap();
    ensure!(status.code() == Some(143), "exit {status}\nstderr:\n{stderr}");
    ensure!(stderr.contains("what the apply created was destroyed"), "stderr:\n{stderr}");
    let left = resources_left(&run)?;
    ensure!(left.is_empty(), "left after SIGTERM during apply: {left:?}");
    ensure!(sleeping(secs).is_empty(), "the provisioner's command is still running");
    Ok(())
}

fn sigkill_then_restore_destroys() -> Result<()> {
    let platform = Platform::start()?;
    let tmp = tempfile::tempdir()?;
    let run = tmp.path().join("run");
    let profile = profile(tmp.path(), "p95 < 30s", 1_000_000)?;
    let mut child = harness_run(tmp.path(), &example(), &profile, &platform.vars())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_applied(&mut child, &run)?;
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::KILL)?;
    wait_exit(&mut child, Duration::from_secs(30))?;
    ensure!(!resources_left(&run)?.is_empty(), "a killed run left nothing applied: nothing to prove");
    let o = restore(tmp.path())?;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    ensure!(stdout.contains("destroyed 1 resource") && stdout.contains("provision/module"), "{}", text(&o));
    let left = resources_left(&run)?;
    ensure!(left.is_empty(), "left after restore: {left:?}");
    let work = work_dir(&run).context("no record")?;
    ensure!(!work.exists(), "the stack's working directory {} is left after restore", work.display());
    let again = restore(tmp.path())?;
    ensure!(again.status.code() == Some(0), "{}", text(&again));
    ensure!(String::from_utf8_lossy(&again.stdout).contains("nothing to destroy"), "{}", text(&again));
    source_untouched()
}

fn keep_leaves_the_stack_and_says_how_to_remove_it() -> Result<()> {
    let platform = Platform::start()?;
    let tmp = tempfile::tempdir()?;
    let run = tmp.path().join("run");
    let profile = profile(tmp.path(), "p95 < 30s", 5)?;
    let mut extra = platform.vars();
    extra.push("--keep".into());
    let o = harness_run(tmp.path(), &example(), &profile, &extra).output()?;
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    ensure!(!resources_left(&run)?.is_empty(), "--keep destroyed the stack: {}", text(&o));
    let command = format!("harness restore --run {}", run.display());
    ensure!(String::from_utf8_lossy(&o.stdout).contains(&command), "`{command}` not printed: {}", text(&o));
    let r = restore(tmp.path())?;
    ensure!(
        r.status.code() == Some(0) && String::from_utf8_lossy(&r.stdout).contains("destroyed 1 resource"),
        "{}",
        text(&r)
    );
    ensure!(resources_left(&run)?.is_empty(), "left after restore");
    Ok(())
}

fn a_missing_module_directory_is_named() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let profile = profile(tmp.path(), "p95 < 30s", 5)?;
    let missing = tmp.path().join("no-such-module");
    let o = harness_run(tmp.path(), &missing, &profile, &[]).output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(o.status.code() == Some(2), "{}", text(&o));
    ensure!(err.contains(&missing.display().to_string()), "the directory is not named: {}", text(&o));
    ensure!(!tmp.path().join("run").exists(), "a run directory was left for bad input");
    Ok(())
}

/// A module whose apply creates one resource and then fails (a provisioner exits 3): the error names the
/// module and Terraform's message, and what the failed apply created is destroyed.
fn a_failing_apply_is_named_and_destroyed() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let module = tmp.path().join("failing-module");
    std::fs::create_dir_all(&module)?;
    std::fs::write(
        module.join("main.tf"),
        "resource \"terraform_data\" \"ok\" {\n  input = \"ok\"\n}\n\n\
         resource \"terraform_data\" \"fails\" {\n  depends_on = [terraform_data.ok]\n  provisioner \"local-exec\" {\n    \
         command = \"echo provisioning-fails-on-purpose >&2; exit 3\"\n  }\n}\n",
    )?;
    let profile = profile(tmp.path(), "p95 < 30s", 5)?;
    let o = harness_run(tmp.path(), &module, &profile, &[]).output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(o.status.code() == Some(2), "{}", text(&o));
    ensure!(err.contains(&module.display().to_string()), "the module is not named: {}", text(&o));
    ensure!(err.contains("provisioning-fails-on-purpose"), "Terraform's message is not shown: {}", text(&o));
    let left = resources_left(&tmp.path().join("run"))?;
    ensure!(left.is_empty(), "a failed apply left: {left:?}");
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let have_tf = terraform_available();
    if !have_tf && !args.list {
        eprintln!(
            "provision: `{}` not found: every test is ignored (install Terraform or set TERRAFORM)",
            terraform_program()
        );
    }
    let trials = vec![
        trial("provision::normal_run_applies_checks_and_destroys", normal_run_applies_checks_and_destroys),
        trial("provision::parallel_runs_do_not_collide", parallel_runs_do_not_collide),
        trial("provision::a_failed_check_still_destroys", a_failed_check_still_destroys),
        trial("provision::sigterm_destroys", sigterm_destroys),
        trial("provision::sigterm_during_apply_destroys", sigterm_during_apply_destroys),
        trial("provision::sigkill_then_restore_destroys", sigkill_then_restore_destroys),
        trial(
            "provision::keep_leaves_the_stack_and_says_how_to_remove_it",
            keep_leaves_the_stack_and_says_how_to_remove_it,
        ),
        trial("provision::a_missing_module_directory_is_named", a_missing_module_directory_is_named),
        trial("provision::a_failing_apply_is_named_and_destroyed", a_failing_apply_is_named_and_destroyed),
    ];
    let trials = trials.into_iter().map(|t| t.with_ignored_flag(!have_tf)).collect();
    libtest_mimic::run(&args, trials).exit();
}
