//! The acceptance suite: one named test per check of the chosen profile (`HARNESS_PROFILE`, default
//! sre-002) against the chosen target (`HARNESS_TARGET`, default local).
//!
//! Test names are the check ids as the profile writes them (no `[AC2] ` kind prefix: ticket trackers match
//! them). Checks that are manual or do not apply to the target are listed as ignored; their reason is in the
//! run's evidence and report, and `harness report --run DIR --annotate-junit FILE` writes it into the JUnit
//! file nextest wrote (nextest knows only "test is ignored"). Every test process of one run shares the run directory (`HARNESS_RUN_ID`, else
//! nextest's run id), so measurements are taken once and never overlap; each process rewrites the report
//! files from all evidence so far.

use std::{path::PathBuf, process::ExitCode};

use harness::{
    criteria::{Profile, TargetKind},
    evidence::Status,
    platform::Target,
    report::{table, Report},
    run::{self, Runner},
    run_dir::RunDir,
};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The regression checks read and extend a history store; the same default as `harness run`.
    if std::env::var_os("HARNESS_HISTORY").is_none_or(|v| v.is_empty()) {
        std::env::set_var("HARNESS_HISTORY", root.join("target/harness/history"));
    }
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
    let target = Target::from_kind(kind);
    if args.list {
        let trials = trials(&profile, &target, None);
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let id = run::run_id_from_env();
    let out =
        std::env::var_os("HARNESS_OUT").map(PathBuf::from).unwrap_or_else(|| root.join("target/harness").join(&id));
    let runner = match RunDir::open(&out).and_then(|d| Runner::new(profile.clone(), target, d, &id)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acceptance: {e}");
            return ExitCode::from(2);
        }
    };
    // Trials need `'static` closures; the runner lives until the process ends.
    let runner: &'static Runner = Box::leak(Box::new(runner));
    let conclusion = libtest_mimic::run(&args, trials(&profile, &runner.target, Some(runner)));
    match Report::from_run(&runner.dir, &profile) {
        Ok(mut report) => {
            if std::env::var_os("NEXTEST_RUN_ID").is_none() {
                let seen: Vec<String> =
                    runner.dir.evidence().map(|v| v.into_iter().map(|e| e.id).collect()).unwrap_or_default();
                report.checks.retain(|e| seen.contains(&e.id));
                print!("\n{}", table(&report));
            }
            match Report::from_run(&runner.dir, &profile).map(|r| r.write(&out)) {
                Ok(Ok(_)) => println!("report: {}", out.join("report.html").display()),
                Ok(Err(e)) => eprintln!("acceptance: writing reports into {}: {e}", out.display()),
                Err(e) => eprintln!("acceptance: {e}"),
            }
        }
        Err(e) => eprintln!("acceptance: {e}"),
    }
    conclusion.exit_code()
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
