//! The acceptance suite: one named test per check of the chosen profile (`HARNESS_PROFILE`, default
//! sre-002) against the chosen target (`HARNESS_TARGET`, default local).
//!
//! Test names are the check ids as the profile writes them (no `[AC2] ` kind prefix: ticket trackers match
//! them). Checks that are manual or do not apply to the target are listed as ignored; their reason is in the
//! run's evidence and report, and `harness report --run DIR --annotate-junit FILE` writes it into the JUnit
//! file nextest wrote (nextest knows only "test is ignored"). Every test process of one run shares the run directory (`HARNESS_RUN_ID`, else
//! nextest's run id), so measurements are taken once and never overlap; each process rewrites the report
//! files from all evidence so far. A run directory another run or another build wrote is refused unless
//! `HARNESS_RESUME=1`.

use std::{path::PathBuf, process::ExitCode};

use harness::{
    criteria::{Profile, TargetKind},
    evidence::Status,
    platform::Target,
    report::table,
    run::{self, Runner},
    terraform::provision,
};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let name = std::env::var("HARNESS_PROFILE").unwrap_or_else(|_| "sre-002".into());
    let profile = match Profile::load(&run::resolve_profile(&name, &root)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("acceptance: {e}");
            return ExitCode::from(2);
        }
    };
    let kind: TargetKind = match std::env::var("HARNESS_TARGET").unwrap_or_else(|_| "local".into()).parse() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("acceptance: HARNESS_TARGET: {e}");
            return ExitCode::from(2);
        }
    };
    let provision = match provision_spec(kind) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("acceptance: {e}");
            return ExitCode::from(2);
        }
    };
    let target = Target::from_kind(kind);
    if args.list {
        let trials = trials(&profile, &target, None);
        return libtest_mimic::run(&args, trials).exit_code();
    }
    // SIGINT/SIGTERM (Ctrl-C, nextest's timeout or cancel) stop the measurement under way, restore and remove
    // what it holds, and the remaining checks end as errors "interrupted"; the process exits 130/143.
    if let Err(e) = harness::interrupt::install() {
        eprintln!("acceptance: {e}");
        return ExitCode::from(2);
    }
    let out = std::env::var_os("HARNESS_OUT").map(PathBuf::from);
    // The processes of one nextest run make one run; any other process is an invocation of its own.
    let resume = std::env::var("HARNESS_RESUME").is_ok_and(|v| ["1", "true", "yes"].contains(&v.trim()));
    let configure = |d: harness::run_dir::RunDir| {
        let d = match std::env::var("NEXTEST_RUN_ID") {
            Ok(n) if !n.is_empty() => d.shared_by(&format!("nextest-{n}")),
            _ => d,
        };
        d.resume(resume)
    };
    let mut session = match run::Session::open(profile.clone(), target, out, None, &root, configure) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("acceptance: {e}");
            return ExitCode::from(2);
        }
    };
    harness::interrupt::set_run_dir(session.out.clone());
    // HARNESS_PROVISION=1: the module is applied before the first check and destroyed after the last (also
    // after a failed check or a signal; a killed run is destroyed by `harness restore --run DIR`).
    let stack = match &provision {
        None => None,
        Some(spec) => match provision::provision_session(&mut session, spec) {
            Ok(stack) => Some(stack),
            Err(e) => {
                eprintln!("acceptance: {e}");
                return ExitCode::from(harness::interrupt::exit_code().unwrap_or(2));
            }
        },
    };
    // Trials need `'static` closures; the session lives until the process ends.
    let session: &'static run::Session = Box::leak(Box::new(session));
    let runner = &session.runner;
    let conclusion = libtest_mimic::run(&args, trials(&profile, &runner.target, Some(runner)));
    let destroy_failed = match stack.map(provision::Stack::destroy) {
        None => false,
        Some(result) => {
            print!("{}", provision::phases(&session.out).map(|p| p.text()).unwrap_or_default());
            result
                .inspect_err(|e| {
                    eprintln!(
                        "acceptance: NOT destroyed: {e}; retry with: harness restore --run {}",
                        session.out.display()
                    )
                })
                .is_err()
        }
    };
    // Every process of a run writes the reports from all evidence so far and appends the run to the history
    // (records of one run replace its earlier ones), exactly as `harness run` does at its end.
    let seen: Vec<String> = runner.dir.evidence().map(|v| v.into_iter().map(|e| e.id).collect()).unwrap_or_default();
    // The report files hold every check of the profile (one not measured yet says so); the table printed here
    // the checks this process or an earlier one of the run decided.
    match session.finish(|_| true) {
        Ok(mut done) => {
            if std::env::var_os("NEXTEST_RUN_ID").is_none() {
                done.report.checks.retain(|e| seen.iter().any(|s| s == &e.id));
                print!("\n{}", table(&done.report));
            }
            println!("report: {}", session.out.join("report.html").display());
            match &done.appended {
                Ok(n) => println!("appended {n} checks to the history {}", session.history.display()),
                Err(e) => eprintln!("acceptance: history {}: nothing appended: {e}", session.history.display()),
            }
        }
        Err(e) => eprintln!("acceptance: writing reports into {}: {e}", session.out.display()),
    }
    if let Some(code) = harness::interrupt::exit_code() {
        eprint!("acceptance: interrupted; after the clean-up:\n{}", harness::interrupt::outstanding_text());
        return ExitCode::from(code);
    }
    if destroy_failed {
        return ExitCode::from(2);
    }
    conclusion.exit_code()
}

/// `HARNESS_PROVISION=1`: the module `HARNESS_TF_DIR` with the variables of the environment (`TF_VAR_*`).
fn provision_spec(kind: TargetKind) -> Result<Option<provision::Spec>, String> {
    let on = std::env::var("HARNESS_PROVISION").is_ok_and(|v| ["1", "true", "yes"].contains(&v.trim()));
    if !on {
        return Ok(None);
    }
    if std::env::var_os("NEXTEST_RUN_ID").is_some() {
        return Err("HARNESS_PROVISION: under nextest every check runs in a process of its own and none knows it is \
                    the last, so none could destroy the stack: use `cargo test --test acceptance` or \
                    `harness run --provision`"
            .into());
    }
    if !matches!(kind, TargetKind::Aws | TargetKind::Localstack) {
        return Err(format!(
            "HARNESS_PROVISION applies a Terraform module for the aws and localstack targets, not {kind}"
        ));
    }
    let module = std::env::var_os("HARNESS_TF_DIR")
        .filter(|d| !d.is_empty())
        .ok_or("HARNESS_PROVISION needs HARNESS_TF_DIR, the Terraform module to apply (variables: TF_VAR_<name>)")?;
    let spec = provision::Spec { module: PathBuf::from(module), ..provision::Spec::default() };
    spec.check().map_err(|e| e.to_string())?;
    Ok(Some(spec))
}

fn trials(profile: &Profile, target: &Target, runner: Option<&'static Runner>) -> Vec<Trial> {
    profile
        .checks
        .iter()
        .map(|check| {
            let skip = run::applicability(check, target).err();
            let id = check.id.clone();
            let trial = Trial::ignorable_test(check.id.clone(), move || {
                let Some(runner) = runner else { return Ok(Completion::Completed) };
                let check = runner.profile.check(&id).expect("check of this profile");
                let e = runner.run_check(check).map_err(|e| Failed::from(e.to_string()))?;
                match e.status {
                    Status::Passed => {
                        println!("{}: {}", e.id, e.reason);
                        Ok(Completion::Completed)
                    }
                    Status::Skipped => Ok(Completion::ignored_with(e.reason)),
                    Status::Failed | Status::Error => Err(Failed::from(format!("{}: {}", e.status.name(), e.reason))),
                }
            });
            match skip {
                Some(why) => {
                    if let Some(r) = runner {
                        let _ = r.dir.write_evidence(&harness::evidence::Evidence::skipped(
                            check,
                            target.kind().name(),
                            &why,
                        ));
                    }
                    trial.with_ignored_flag(true)
                }
                None => trial,
            }
        })
        .collect()
}
