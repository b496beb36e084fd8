//! Scenario 5 inside one run: the regression procedure measures the reference variant of a function in
//! several sessions (step 1, establish a baseline) and the current variant in several more (step 3,
//! improved or maintained), and records each session in the [`History`] as a [`Record`] of check
//! [`CHECK`] tagged as an in-run scenario session, with its own id (`<run>~s5-reference-3`). A first run on
//! a fresh machine thus finds comparable figures in the store; a later run finds them as earlier history.
//!
//! [`establish`] loads the named baseline of this environment or, when none exists and the mode allows it,
//! saves one from this run's reference sessions. [`Summary`] tells which entries of the store are this
//! run's scenario sessions and which are earlier runs (and which of those were scenario sessions of their
//! own runs), so a report never passes in-run sessions off as nightly history.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{
    decision::{Estimate, Noise},
    history::{run_ids, Direction, History, Record},
    named::{self, Baseline},
    Error,
};
use crate::run_dir::RunInfo;

/// Check id of the sessions' figure: the warm P95 of the function the procedure drives.
pub const CHECK: &str = "regression.warm_p95";

/// A step of the in-run scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Step 1: the reference variant, whose sessions establish the baseline.
    Reference,
    /// Step 3: the current variant, judged improved, maintained or regressed.
    Current,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Reference => "reference",
            Step::Current => "current",
        }
    }

    fn number(self) -> u8 {
        match self {
            Step::Reference => 1,
            Step::Current => 3,
        }
    }
}

/// The history id of session `index` (from 1) of `step` in run `run`.
pub fn session_id(run: &str, step: Step, index: usize) -> String {
    format!("{run}~s5-{}-{index}", step.name())
}

/// Whether history id `id` is a scenario session of run `run`.
pub fn is_session_of(id: &str, run: &str) -> bool {
    id.strip_prefix(run).is_some_and(|rest| rest.starts_with("~s5-"))
}

/// The record of one session: its warm P95 (seconds) measured at `time`.
pub fn session_record(
    info: &RunInfo,
    target: &str,
    step: Step,
    index: usize,
    of: usize,
    p95: &Estimate,
    time: DateTime<Utc>,
) -> Record {
    Record {
        run: session_id(&info.id, step, index),
        time,
        profile: info.profile.clone(),
        target: target.into(),
        check: CHECK.into(),
        status: crate::evidence::Status::Passed,
        statistic: Some("p95".into()),
        value: Some(p95.value),
        unit: Some("s".into()),
        n: Some(p95.n),
        ci_low: p95.ci_low,
        ci_high: p95.ci_high,
        direction: Direction::LowerIsBetter,
        environment: info.environment.clone(),
        scenario: Some(format!(
            "in-run scenario 5 of run {}, step {} ({} variant), session {index} of {of}",
            info.id,
            step.number(),
            step.name()
        )),
    }
}

/// The noise to decide the [`session_mean`] of `sessions` sessions against the mean of `baseline` session
/// figures, from the session-to-session `noise`.
///
/// The decision adds jitter `σ·√(1 + 1/K)` (one figure against the mean of K); a figure pooled over C
/// sessions carries `σ²/C` of it, the mean of K session figures `σ²/K`, so σ is scaled to keep the
/// total at `σ²(1/C + 1/K)`.
pub fn pooled_noise(noise: &Noise, baseline: usize, sessions: usize) -> Noise {
    let (k, c) = (baseline.max(1) as f64, sessions.max(1) as f64);
    Noise { sigma: noise.sigma * ((1.0 / c + 1.0 / k) / (1.0 + 1.0 / k)).sqrt(), ..*noise }
}

/// The figure of several sessions: the geometric mean of their P95s, with the 95% interval of that mean
/// from theirs. Not the P95 of their samples pooled: with sessions at different levels, that percentile
/// sits near the slowest sessions' and would be biased against a baseline of single-session figures.
pub fn session_mean(sessions: &[Estimate]) -> Option<Estimate> {
    let pos: Vec<&Estimate> = sessions.iter().filter(|e| e.value > 0.0 && e.value.is_finite()).collect();
    if pos.is_empty() || pos.len() != sessions.len() {
        return None;
    }
    let k = pos.len() as f64;
    let mean = pos.iter().map(|e| e.value.ln()).sum::<f64>() / k;
    let ses: Option<Vec<f64>> = pos.iter().map(|e| e.log_se()).collect();
    let (lo, hi) = match ses {
        Some(ses) => {
            let se = ses.iter().map(|s| s * s).sum::<f64>().sqrt() / k;
            (Some((mean - super::decision::Z95 * se).exp()), Some((mean + super::decision::Z95 * se).exp()))
        }
        None => (None, None),
    };
    Some(Estimate { value: mean.exp(), ci_low: lo, ci_high: hi, n: pos.iter().map(|e| e.n).sum() })
}

/// Which entries of the history are what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenario sessions of this run.
    pub this_run: Vec<String>,
    /// Runs of the suite before this one.
    pub earlier_runs: Vec<String>,
    /// Scenario sessions of earlier runs.
    pub earlier_sessions: Vec<String>,
}

impl Summary {
    /// Sorts the ids of `records` (read back from the store) for run `run`.
    pub fn of(records: &[Record], run: &str) -> Summary {
        let mut s = Summary::default();
        for id in run_ids(records) {
            let tagged = records.iter().any(|r| r.run == id && r.scenario.is_some());
            if is_session_of(&id, run) {
                s.this_run.push(id);
            } else if tagged {
                s.earlier_sessions.push(id);
            } else if id != run {
                s.earlier_runs.push(id);
            }
        }
        s
    }

    /// Entries in all.
    pub fn total(&self) -> usize {
        self.this_run.len() + self.earlier_runs.len() + self.earlier_sessions.len()
    }

    /// One line for the report.
    pub fn note(&self, store: &Path) -> String {
        format!(
            "history store {}: {} entries read back = {} in-run scenario sessions of THIS run (steps 1 and 3, \
             tagged `scenario`, not nightly history) + {} earlier runs of the suite{} + {} scenario sessions of \
             earlier runs",
            store.display(),
            self.total(),
            self.this_run.len(),
            self.earlier_runs.len(),
            match (self.earlier_runs.first(), self.earlier_runs.last()) {
                (Some(a), Some(b)) if a != b => format!(" ({a} .. {b})"),
                (Some(a), _) => format!(" ({a})"),
                _ => String::new(),
            },
            self.earlier_sessions.len(),
        )
    }
}

/// How a baseline was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Established {
    /// Loaded from the store.
    Loaded(Baseline),
    /// Saved now from this run's reference sessions (none existed for this environment).
    Saved(Baseline, std::path::PathBuf),
}

impl Established {
    /// The baseline.
    pub fn baseline(&self) -> &Baseline {
        match self {
            Established::Loaded(b) | Established::Saved(b, _) => b,
        }
    }
}

/// The name under which this environment's baseline `name` is kept when `name` itself belongs to another
/// environment: `name` with a short digest of the environment's comparable key.
pub fn environment_name(name: &str, env_key: &str) -> String {
    let digest =
        env_key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{name}-env{:08x}", digest >> 32)
}

/// The baseline `name` of the environment of `reference` (this run's reference session records) in
/// `history`: loaded when one exists for that environment (under `name`, or under its
/// [`environment_name`] when `name` belongs to another environment); else, when `save` allows it, saved
/// from `reference`; else [`Error::NoBaseline`] (strict mode).
pub fn establish(history: &History, name: &str, reference: &[Record], save: bool) -> Result<Established, Error> {
    let first = reference.first().ok_or_else(|| Error::Empty("no reference session to save a baseline from".into()))?;
    let key = first.environment.comparable_key();
    let mut wanted = name.to_string();
    match named::load(history.dir(), name) {
        Ok(b) if b.environment.comparable_key() == key => return Ok(Established::Loaded(b)),
        Ok(_) => {
            wanted = environment_name(name, &key);
            match named::load(history.dir(), &wanted) {
                Ok(b) => return Ok(Established::Loaded(b)),
                Err(Error::NoBaseline { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoBaseline { .. }) => {}
        Err(e) => return Err(e),
    }
    if !save {
        return named::load(history.dir(), &wanted).map(Established::Loaded);
    }
    let refs: Vec<&Record> = reference.iter().collect();
    let b = named::from_records(&wanted, &refs, run_ids(reference))?;
    let file = named::write(history.dir(), &b)?;
    Ok(Established::Saved(b, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fingerprint::Fingerprint, run_dir::RunInfo};

    fn info(id: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            profile: "sre-002".into(),
            profile_path: "p.yaml".into(),
            target: "local".into(),
            started: Utc::now(),
            environment: Fingerprint::current(),
            invocation: String::new(),
        }
    }

    fn est(v: f64) -> Estimate {
        Estimate { value: v, ci_low: Some(v * 0.98), ci_high: Some(v * 1.02), n: 100 }
    }

    fn sessions(run: &RunInfo, step: Step, n: usize) -> Vec<Record> {
        (1..=n).map(|i| session_record(run, "local", step, i, n, &est(0.02 + 1e-4 * i as f64), Utc::now())).collect()
    }

    #[test]
    fn sessions_are_tagged_and_told_apart_from_earlier_runs() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        let old = info("r1");
        h.append(&sessions(&old, Step::Reference, 3)).unwrap();
        let mut plain = sessions(&old, Step::Current, 1).remove(0);
        (plain.run, plain.scenario, plain.check) = ("r0".into(), None, "AC2.warm_p95".into());
        h.append(&[plain]).unwrap();
        let now = info("r2");
        h.append(&sessions(&now, Step::Reference, 4)).unwrap();
        h.append(&sessions(&now, Step::Current, 2)).unwrap();
        let records = h.records().unwrap();
        assert!(records
            .iter()
            .filter(|r| r.run.starts_with("r2~"))
            .all(|r| r.scenario.as_deref().is_some_and(|s| s.contains("in-run scenario 5 of run r2"))));
        let s = Summary::of(&records, "r2");
        assert_eq!(
            (s.this_run.len(), s.earlier_runs.clone(), s.earlier_sessions.len(), s.total()),
            (6, vec!["r0".to_string()], 3, 10)
        );
        let note = s.note(d.path());
        assert!(note.contains("6 in-run scenario sessions of THIS run") && note.contains("1 earlier runs"), "{note}");
        assert!(is_session_of("r2~s5-current-1", "r2") && !is_session_of("r20~s5-current-1", "r2"));
    }

    #[test]
    fn a_missing_baseline_is_saved_once_then_loaded_and_strict_mode_refuses_to_save() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        let first = sessions(&info("r1"), Step::Reference, 5);
        let e = establish(&h, "main", &first, false).unwrap_err();
        assert!(matches!(e, Error::NoBaseline { .. }), "{e}");
        let Established::Saved(b, file) = establish(&h, "main", &first, true).unwrap() else { panic!("not saved") };
        assert!(file.ends_with("baselines/main.json"));
        assert_eq!((b.runs.len(), b.checks[CHECK].figures.len()), (5, 5));
        let later = sessions(&info("r2"), Step::Reference, 5);
        let again = establish(&h, "main", &later, true).unwrap();
        assert!(matches!(&again, Established::Loaded(l) if l.runs == b.runs), "{again:?}");
    }

    #[test]
    fn a_baseline_of_another_environment_is_kept_and_this_one_gets_its_own() {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path()).unwrap();
        let mut other = sessions(&info("r1"), Step::Reference, 5);
        for r in &mut other {
            r.environment.cores += 6;
        }
        establish(&h, "main", &other, true).unwrap();
        let mine = sessions(&info("r2"), Step::Reference, 5);
        let Established::Saved(b, _) = establish(&h, "main", &mine, true).unwrap() else { panic!("not saved") };
        assert!(b.name.starts_with("main-env"), "{}", b.name);
        assert_eq!(named::load(d.path(), "main").unwrap().environment.cores, mine[0].environment.cores + 6);
        assert!(matches!(establish(&h, "main", &mine, false).unwrap(), Established::Loaded(l) if l.name == b.name));
    }

    #[test]
    fn the_mean_of_sessions_narrows_their_interval() {
        let m = session_mean(&[est(0.02), est(0.02), est(0.02), est(0.02)]).unwrap();
        assert!((m.value - 0.02).abs() < 1e-12 && m.n == 400);
        assert!((m.log_se().unwrap() - est(0.02).log_se().unwrap() / 2.0).abs() < 1e-9);
        assert!(session_mean(&[est(0.02), Estimate { value: 0.0, ..est(0.02) }]).is_none());
    }

    #[test]
    fn pooling_sessions_shrinks_the_jitter_of_the_figure_only() {
        let n = Noise { sigma: 0.06, runs: 10, dof: 7.0 };
        let p = pooled_noise(&n, 10, 4);
        let total = |s: f64| s * s * (1.0 + 1.0 / 10.0);
        assert!((total(p.sigma) - 0.06f64.powi(2) * (0.25 + 0.1)).abs() < 1e-12);
        assert_eq!((p.runs, p.dof), (10, 7.0));
        assert_eq!(pooled_noise(&n, 10, 1).sigma, 0.06);
    }
}
