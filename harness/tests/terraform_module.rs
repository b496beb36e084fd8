//! The Terraform module against the harness's output contract, and the offline example applied for real.
//!
//! The contract checks need no Terraform (a scanner reads the `output` blocks). The `fmt` check and the
//! apply of `terraform/examples/local` need the `terraform` binary (or `$TERRAFORM`); where it is missing
//! they are reported as ignored, and this binary says which binary it looked for. Run with a custom harness
//! (libtest-mimic) so that the skip is a real "ignored" in nextest and JUnit, not a silent pass.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{bail, ensure, Context, Result};
use harness::terraform::{self, hcl, AwsSettings, Outputs, SecretRef, ALARM_ROLES, OUTPUTS};
use libtest_mimic::Arguments;

mod terraform_support;

use terraform_support::{root, terraform_available, terraform_program, trial};

/// Checks the `output` blocks of the module in `dir` against the contract.
fn check_contract(dir: &Path) -> Result<()> {
    let decls = hcl::declared_outputs(dir).with_context(|| format!("scanning {}", dir.display()))?;
    let mut seen = BTreeSet::new();
    for d in &decls {
        ensure!(seen.insert(d.name.clone()), "{}:{}: output `{}` declared twice", d.file.display(), d.line, d.name);
        ensure!(d.has_value, "{}:{}: output `{}` has no value", d.file.display(), d.line, d.name);
    }
    let mut problems = Vec::new();
    for spec in OUTPUTS {
        match decls.iter().find(|d| d.name == spec.name) {
            None => {
                problems.push(format!("output `{}` ({}, {}) is not declared", spec.name, spec.ty.hcl(), spec.about))
            }
            Some(d) if spec.sensitive && !d.sensitive => problems.push(format!(
                "{}:{}: output `{}` must be `sensitive = true`",
                d.file.display(),
                d.line,
                d.name
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        bail!("{} breaks the harness's output contract:\n  {}", dir.display(), problems.join("\n  "));
    }
    Ok(())
}

fn tf(dir: &Path, data: &Path, args: &[&str]) -> Result<Output> {
    let out = Command::new(terraform_program())
        .arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("TF_DATA_DIR", data)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .with_context(|| format!("running {} {}", terraform_program(), args.join(" ")))?;
    ensure!(
        out.status.success(),
        "terraform {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

fn fmt_check() -> Result<()> {
    let dir = root().join("terraform");
    let out = Command::new(terraform_program())
        .args(["fmt", "-check", "-recursive", "-diff", "-no-color"])
        .arg(&dir)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()?;
    ensure!(
        out.status.success(),
        "terraform fmt -check found unformatted files:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// Applies a temporary copy of `terraform/examples/local` and reads its outputs through the harness, by
/// running Terraform (`--tf-dir`) and from a saved file (`--tf-outputs`); destroys it again.
fn local_example_applies_and_loads() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let work = tmp.path().join("module");
    let data = tmp.path().join("tf-data");
    std::fs::create_dir_all(&work)?;
    for e in std::fs::read_dir(root().join("terraform/examples/local"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "tf") {
            std::fs::copy(&p, work.join(p.file_name().unwrap()))?;
        }
    }
    let vars = [
        "-var=invoke_endpoint=http://127.0.0.1:9001",
        "-var=api_url=https://127.0.0.1:8443/perf",
        "-var=api_key=local-key-for-test",
        "-var=aws_endpoint=http://127.0.0.1:5000",
    ];
    tf(&work, &data, &["init", "-input=false", "-no-color"])?;
    let mut apply = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
    apply.extend(vars);
    tf(&work, &data, &apply)?;

    let from_dir = AwsSettings::from_outputs(&Outputs::from_dir(&work)?)?;
    assert_eq!(from_dir.function_name, "fixture-rust");
    assert_eq!(from_dir.lambda_endpoint_url.as_deref(), Some("http://127.0.0.1:9001"));
    assert_eq!(from_dir.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(from_dir.api_url, "https://127.0.0.1:8443/perf");
    assert_eq!(from_dir.api_key, SecretRef::Value(terraform::Secret::new("local-key-for-test")));
    assert_eq!(from_dir.qualifier(), None);
    assert_eq!(from_dir.alarm_names.keys().map(String::as_str).collect::<Vec<_>>().len(), ALARM_ROLES.len());

    let saved = tmp.path().join("outputs.json");
    std::fs::write(&saved, tf(&work, &data, &["output", "-json", "-no-color"])?.stdout)?;
    let from_file = terraform::load_settings(None, Some(&saved))?;
    assert_eq!(
        AwsSettings { source_name: String::new(), ..from_file },
        AwsSettings { source_name: String::new(), ..from_dir }
    );

    let mut destroy = vec!["destroy", "-auto-approve", "-input=false", "-no-color"];
    destroy.extend(vars);
    tf(&work, &data, &destroy)?;
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(work.join("terraform.tfstate"))?)?;
    ensure!(
        state["resources"].as_array().is_some_and(Vec::is_empty),
        "resources left in state after destroy: {}",
        state["resources"]
    );
    Ok(())
}

/// `harness run` with bad outputs stops before any check, exit code 2, naming the output and the module.
fn cli_reports_bad_outputs() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("outputs.json");
    std::fs::write(&file, r#"{"region": {"sensitive": false, "type": "number", "value": 1}}"#)?;
    let run = |args: &[&str]| -> Result<Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["run", "--profile"])
            .arg(root().join("fixtures/criteria/sre-002.yaml"))
            .arg("--out")
            .arg(tmp.path().join("run"))
            .args(args)
            .env_remove("AWS_ENDPOINT_URL")
            .output()?)
    };
    let out = run(&["--target", "aws", "--tf-outputs", file.to_str().unwrap()])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(2), "exit {:?}, stderr: {err}", out.status.code());
    for part in ["`region`", "number", "expected string", "terraform/outputs.tf"] {
        ensure!(err.contains(part), "`{part}` not in: {err}");
    }
    let out = run(&["--target", "localstack"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(2) && err.contains("--tf-dir DIR") && err.contains("--tf-outputs FILE"), "{err}");
    Ok(())
}

/// Runs the LocalStack init hook with a stand-in `awslocal` that logs its calls and answers `--output text`
/// queries with an id, and reads the outputs it writes through the harness.
fn localstack_hook_writes_the_output_contract() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir()?;
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin)?;
    let log = tmp.path().join("calls.log");
    let stub = format!(
        "#!/bin/sh\necho \"$*\" >> {}\ncase \"$*\" in *'--output text'*) echo id-$(wc -l < {} | tr -d ' ');; esac\n",
        log.display(),
        log.display()
    );
    std::fs::write(bin.join("awslocal"), stub)?;
    std::fs::set_permissions(bin.join("awslocal"), std::fs::Permissions::from_mode(0o755))?;
    let zip = tmp.path().join("function.zip");
    std::fs::write(&zip, b"zip")?;
    let out_file = tmp.path().join("out/outputs.json");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let run = Command::new("bash")
        .arg(root().join("localstack/init/ready.d/10-deploy-fixture.sh"))
        .env("PATH", path)
        .env("PERF_ZIP", &zip)
        .env("PERF_OUT", &out_file)
        .env("PERF_MEMORY_SIZE", "128")
        .output()?;
    ensure!(run.status.success(), "hook failed: {}", String::from_utf8_lossy(&run.stderr));
    let s = terraform::load_settings(None, Some(&out_file))?;
    ensure!(
        s.function_alias.as_deref() == Some("live") && s.endpoint_url.as_deref() == Some("http://localhost:4566"),
        "{s:?}"
    );
    ensure!(matches!(&s.api_key, SecretRef::ApiGatewayKey(id) if id.starts_with("id-")), "{:?}", s.api_key);
    ensure!(s.api_url.ends_with("/perf") && s.api_url.contains(&s.api_id), "{}", s.api_url);
    let calls = std::fs::read_to_string(&log)?;
    let count = |needle: &str| calls.lines().filter(|l| l.contains(needle)).count();
    ensure!(count("cloudwatch put-metric-alarm") == ALARM_ROLES.len(), "{calls}");
    ensure!(count("logs put-metric-filter") == 3 && count("cloudwatch put-dashboard") == 1, "{calls}");
    ensure!(calls.contains("--threshold 108 "), "memory alarm at 85% of 128 MB: {calls}");
    ensure!(
        calls.contains("path=/*/*/throttling/rateLimit,value=2000")
            && calls.contains("path=/*/*/throttling/burstLimit,value=5000"),
        "{calls}"
    );
    ensure!(count("apigateway put-method") == 2 && calls.contains("--api-key-required"), "{calls}");
    for (role, name) in &s.alarm_names {
        ensure!(calls.contains(&format!("--alarm-name {name} ")), "alarm {role} ({name}) not created: {calls}");
    }
    Ok(())
}

/// Copies `terraform/examples/local` into `tmp/module` and applies it with `vars`; returns the module dir
/// and the Terraform data dir.
fn apply_local_example(tmp: &Path, vars: &[String]) -> Result<(PathBuf, PathBuf)> {
    let work = tmp.join("module");
    let data = tmp.join("tf-data");
    std::fs::create_dir_all(&work)?;
    for e in std::fs::read_dir(root().join("terraform/examples/local"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "tf") {
            std::fs::copy(&p, work.join(p.file_name().unwrap()))?;
        }
    }
    tf(&work, &data, &["init", "-input=false", "-no-color"])?;
    let mut apply = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
    apply.extend(vars.iter().map(String::as_str));
    tf(&work, &data, &apply)?;
    Ok((work, data))
}

/// The example applied against a running local platform, then `harness run --target localstack --tf-dir`
/// on it: the harness runs `terraform output -json` there and measures cold and warm starts and the
/// reserved-concurrency check through the outputs (Lambda calls to the platform's Invoke API, the API key
/// from the `value:` reference); every change it made is restored.
fn local_example_runs_checks_through_tf_dir() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut cfg = harness::local::PlatformConfig::from_file(&root().join("fixtures/targets/local.yaml"))?;
    cfg.mode = harness::local::ModeChoice::Process;
    let platform = rt.block_on(harness::local::Platform::start(cfg))?;
    let tmp = tempfile::tempdir()?;
    let vars = vec![
        format!("-var=invoke_endpoint={}", platform.invoke_url()),
        format!("-var=api_url={}/fixture-rust", platform.front_door_http()),
        format!("-var=api_key={}", platform.api_key()),
    ];
    let r = (|| {
        let (work, data) = apply_local_example(tmp.path(), &vars)?;
        let run = tmp.path().join("run");
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["run", "--target", "localstack", "--profile"])
            .arg(root().join("harness/tests/data/localstack-e2e.yaml"))
            .args(["--only", "E2E.cold_start_client,E2E.warm_start_client,E2E.concurrency_limit", "--tf-dir"])
            .arg(&work)
            .arg("--out")
            .arg(&run)
            .env("TF_DATA_DIR", &data)
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("TERRAFORM", terraform_program())
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_PROFILE")
            .env_remove("HARNESS_PROFILE")
            .env_remove("HARNESS_TARGET")
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.code() == Some(0),
            "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json"))?)?;
        let checks = report["checks"].as_array().context("report.json has no checks")?;
        ensure!(checks.len() == 3, "{report:#}");
        for c in checks {
            ensure!(c["status"] == "passed" && c["measured"]["n"].as_u64().unwrap_or(0) >= 1, "{c:#}");
        }
        let audit = std::fs::read_to_string(run.join("audit.jsonl"))?;
        ensure!(audit.lines().last().is_some_and(|l| l.contains("\"restore\"") && l.contains("\"done\"")), "{audit}");
        Ok(())
    })();
    rt.block_on(platform.shutdown());
    r
}

fn main() {
    let args = Arguments::from_args();
    let have_tf = terraform_available();
    if !have_tf && !args.list {
        eprintln!("terraform_module: `{}` not found: the fmt and apply tests are ignored (install Terraform or set TERRAFORM)", terraform_program());
    }
    let trials = vec![
        trial("contract::module_declares_every_output_the_harness_reads", || check_contract(&root().join("terraform"))),
        trial("contract::local_example_declares_every_output_the_harness_reads", || {
            check_contract(&root().join("terraform/examples/local"))
        }),
        trial("contract::cli_reports_bad_outputs_before_running", cli_reports_bad_outputs),
        trial("contract::localstack_init_hook_writes_the_outputs", localstack_hook_writes_the_output_contract),
        trial("terraform::fmt_check", fmt_check).with_ignored_flag(!have_tf),
        trial("terraform::local_example_applies_offline_and_loads", local_example_applies_and_loads)
            .with_ignored_flag(!have_tf),
        trial("terraform::local_example_runs_checks_through_tf_dir", local_example_runs_checks_through_tf_dir)
            .with_ignored_flag(!have_tf),
    ];
    libtest_mimic::run(&args, trials).exit();
}
