//! [`Progress`] and [`Phase`]: what a long phase (image builds, a cold start series, a load run, a wait for
//! scale-down) has done and what it is waiting for, so that a person can tell a slow run from a hung one.
//!
//! On a terminal (stderr is a TTY and `CI` is unset) the active phases share one live line, redrawn as they
//! move and every second while they wait. Elsewhere (CI logs, files) output is quiet and line-oriented: a
//! line when a phase starts, at most one every `HARNESS_PROGRESS_EVERY` seconds (default 30) while it runs,
//! also when nothing moves (a heartbeat naming what it waits for), and one when it ends. `HARNESS_PROGRESS`
//! = `live`, `lines` or `off` overrides the choice.
//!
//! ```no_run
//! let p = harness::progress::phase("cold starts", Some(60));
//! p.waiting_for("environment retirement");
//! p.inc();
//! p.finish();
//! ```

use std::{
    io::{IsTerminal, Write},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One live line redrawn in place (a terminal).
    Live,
    /// Plain lines: at a phase's start, at most one per `every` while it runs, at its end.
    Lines {
        /// Least time between two lines of one phase.
        every: Duration,
    },
    /// Nothing but [`Progress::println`] lines.
    Off,
}

impl Mode {
    /// The mode for stderr in this environment (see the module documentation).
    pub fn from_env() -> Mode {
        let every = std::env::var("HARNESS_PROGRESS_EVERY")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(Duration::from_secs(30), Duration::from_secs);
        match std::env::var("HARNESS_PROGRESS").as_deref() {
            Ok("live") => Mode::Live,
            Ok("lines") => Mode::Lines { every },
            Ok("off") => Mode::Off,
            _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) || !std::io::stderr().is_terminal() => {
                Mode::Lines { every }
            }
            _ => Mode::Live,
        }
    }
}

/// Time since some fixed start; a trait so tests can drive it.
pub trait Clock: Send + Sync {
    /// Time elapsed since the clock's start.
    fn now(&self) -> Duration;
}

struct SystemClock(Instant);

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that moves only when told to (for tests of progress output).
#[derive(Debug, Default)]
pub struct ManualClock(Mutex<Duration>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock::default())
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Least time between two redraws of the live line caused by updates.
const LIVE_REDRAW: Duration = Duration::from_millis(100);

struct PhaseState {
    id: u64,
    name: String,
    total: Option<u64>,
    done: u64,
    started: Duration,
    waiting: Option<(String, Duration)>,
    last_line: Duration,
}

struct State {
    out: Box<dyn Write + Send>,
    phases: Vec<PhaseState>,
    next_id: u64,
    live_shown: bool,
    last_draw: Option<Duration>,
}

struct Shared {
    mode: Mode,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// Where phases report to: a writer, a mode and a clock. Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
}

/// A long phase in progress; ends with [`Phase::finish`], or as "stopped" when dropped unfinished (an
/// error or a panic left it).
pub struct Phase {
    progress: Progress,
    id: u64,
    finished: bool,
}

/// The process-wide progress on stderr (mode from the environment), with a ticker that redraws the live
/// line and writes heartbeat lines while phases wait.
pub fn global() -> &'static Progress {
    static GLOBAL: OnceLock<Progress> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let p = Progress::new(Mode::from_env(), Box::new(std::io::stderr()), Arc::new(SystemClock(Instant::now())));
        if p.shared.mode != Mode::Off {
            let ticker = p.clone();
            let spawned = std::thread::Builder::new().name("progress".into()).spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                ticker.tick();
            });
            if let Err(e) = spawned {
                tracing::warn!("progress: no ticker thread ({e}); progress lines appear only on updates");
            }
        }
        p
    })
}

/// Starts a phase on the process-wide progress.
pub fn phase(name: &str, total: Option<u64>) -> Phase {
    global().phase(name, total)
}

/// Prints a line on the process-wide progress without garbling a live line.
pub fn println(line: &str) {
    global().println(line);
}

/// `42s`, `2m05s`, `1h02m`.
pub fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl PhaseState {
    fn count(&self) -> String {
        match self.total {
            Some(t) => format!("{}/{t}", self.done),
            None => format!("{} done", self.done),
        }
    }

    fn waiting(&self, now: Duration) -> String {
        self.waiting
            .as_ref()
            .map(|(what, since)| format!(", waiting for {what} ({})", fmt_elapsed(now.saturating_sub(*since))))
            .unwrap_or_default()
    }

    fn status_line(&self, now: Duration) -> String {
        format!(
            "{}: {} after {}{}",
            self.name,
            self.count(),
            fmt_elapsed(now.saturating_sub(self.started)),
            self.waiting(now)
        )
    }

    fn live_part(&self, now: Duration) -> String {
        let bar = match self.total {
            Some(t) if t > 0 => {
                let filled = ((self.done.min(t) * 20) / t) as usize;
                format!(" [{}{}]", "#".repeat(filled), "-".repeat(20 - filled))
            }
            _ => String::new(),
        };
        format!(
            "{} {}{bar} {}{}",
            self.name,
            self.count(),
            fmt_elapsed(now.saturating_sub(self.started)),
            self.waiting(now)
        )
    }
}

impl State {
    fn write_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    fn clear_live(&mut self) {
        if self.live_shown {
            let _ = write!(self.out, "\r\x1b[2K");
            self.live_shown = false;
        }
    }

    fn draw_live(&mut self, now: Duration) {
        self.clear_live();
        if !self.phases.is_empty() {
            let text: Vec<String> = self.phases.iter().map(|p| p.live_part(now)).collect();
            let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()).unwrap_or(120).max(20) - 1;
            let line: String = text.join(" | ").chars().take(width).collect();
            let _ = write!(self.out, "{line}");
            self.live_shown = true;
        }
        self.last_draw = Some(now);
        let _ = self.out.flush();
    }
}

impl Progress {
    /// Progress written to `out` in `mode`, timed by `clock`.
    pub fn new(mode: Mode, out: Box<dyn Write + Send>, clock: Arc<dyn Clock>) -> Progress {
        let state = State { out, phases: Vec::new(), next_id: 0, live_shown: false, last_draw: None };
        Progress { shared: Arc::new(Shared { mode, clock, state: Mutex::new(state) }) }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, Duration) -> R) -> R {
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut st, now)
    }

    /// Starts a phase; `total` is the number of steps when known.
    pub fn phase(&self, name: &str, total: Option<u64>) -> Phase {
        let mode = self.shared.mode;
        let id = self.with(|st, now| {
            let id = st.next_id;
            st.next_id += 1;
            st.phases.push(PhaseState {
                id,
                name: name.to_string(),
                total,
                done: 0,
                started: now,
                waiting: None,
                last_line: now,
            });
            match mode {
                Mode::Lines { .. } => {
                    let todo = total.map(|t| format!(", {t} to do")).unwrap_or_default();
                    st.write_line(&format!("{name}: started{todo}"));
                }
                Mode::Live => st.draw_live(now),
                Mode::Off => {}
            }
            id
        });
        Phase { progress: self.clone(), id, finished: false }
    }

    /// Prints a line (a result, a notice) without garbling a live line.
    pub fn println(&self, line: &str) {
        let mode = self.shared.mode;
        self.with(|st, now| {
            st.clear_live();
            st.write_line(line);
            if mode == Mode::Live {
                st.draw_live(now);
            }
            let _ = st.out.flush();
        });
    }

    /// Writes what is due: the live line's elapsed times, or heartbeat lines of phases quiet for a whole
    /// interval. The process-wide progress calls it every second.
    pub fn tick(&self) {
        let mode = self.shared.mode;
        self.with(|st, now| match mode {
            Mode::Live if !st.phases.is_empty() => st.draw_live(now),
            Mode::Lines { every } => {
                let due: Vec<usize> =
                    (0..st.phases.len()).filter(|i| now.saturating_sub(st.phases[*i].last_line) >= every).collect();
                for i in due {
                    let line = st.phases[i].status_line(now);
                    st.phases[i].last_line = now;
                    st.write_line(&line);
                }
            }
            _ => {}
        });
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut PhaseState, Duration)) {
        let mode = self.shared.mode;
        self.with(|st, now| {
            let Some(i) = st.phases.iter().position(|p| p.id == id) else { return };
            f(&mut st.phases[i], now);
            match mode {
                Mode::Lines { every } if now.saturating_sub(st.phases[i].last_line) >= every => {
                    let line = st.phases[i].status_line(now);
                    st.phases[i].last_line = now;
                    st.write_line(&line);
                }
                Mode::Live if st.last_draw.is_none_or(|t| now.saturating_sub(t) >= LIVE_REDRAW) => st.draw_live(now),
                _ => {}
            }
        });
    }

    fn end(&self, id: u64, verb: &str, summary: Option<&str>) {
        let mode = self.shared.mode;
        self.with(|st, now| {
            let Some(i) = st.phases.iter().position(|p| p.id == id) else { return };
            let p = st.phases.remove(i);
            if mode == Mode::Off {
                return;
            }
            let extra = summary.map(|s| format!(": {s}")).unwrap_or_default();
            let line =
                format!("{}: {verb} {} in {}{extra}", p.name, p.count(), fmt_elapsed(now.saturating_sub(p.started)));
            st.clear_live();
            st.write_line(&line);
            if mode == Mode::Live {
                st.draw_live(now);
            }
            let _ = st.out.flush();
        });
    }
}

impl Phase {
    /// One more step done (ends a wait named by [`Phase::waiting_for`]).
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// `n` more steps done (ends a wait).
    pub fn inc_by(&self, n: u64) {
        self.progress.update(self.id, |p, _| {
            p.done += n;
            p.waiting = None;
        });
    }

    /// Says what the phase is waiting for now (until the next step or the next wait).
    pub fn waiting_for(&self, what: &str) {
        self.progress.update(self.id, |p, now| {
            if p.waiting.as_ref().is_none_or(|(w, _)| w != what) {
                p.waiting = Some((what.to_string(), now));
            }
        });
    }

    /// Prints a line without garbling a live line.
    pub fn println(&self, line: &str) {
        self.progress.println(line);
    }

    /// Ends the phase.
    pub fn finish(mut self) {
        self.finished = true;
        self.progress.end(self.id, "finished", None);
    }

    /// Ends the phase with a one-line summary (`p95 412ms`).
    pub fn finish_with(mut self, summary: &str) {
        self.finished = true;
        self.progress.end(self.id, "finished", Some(summary));
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if !self.finished {
            self.progress.end(self.id, "stopped at", None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn progress(mode: Mode) -> (Progress, Arc<ManualClock>, Buf) {
        let clock = ManualClock::new();
        let buf = Buf::default();
        (Progress::new(mode, Box::new(buf.clone()), clock.clone()), clock, buf)
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn ci_mode_is_quiet_and_line_oriented() {
        let (p, clock, buf) = progress(Mode::Lines { every: Duration::from_secs(30) });
        let run = p.phase("checks", Some(2));
        run.println("[1/2] AC2.cold_start_p95 ...");
        let cold = p.phase("cold starts", Some(60));
        for _ in 0..10 {
            cold.waiting_for("environment retirement");
            clock.advance(2 * SEC);
            p.tick();
            cold.inc();
        }
        cold.waiting_for("environment retirement");
        clock.advance(15 * SEC);
        p.tick();
        clock.advance(60 * SEC);
        p.tick();
        cold.inc_by(50);
        cold.finish_with("p95 412ms");
        run.println("[1/2] AC2.cold_start_p95 PASSED: p95 412ms meets < 1s");
        run.inc();
        let builds = p.phase("image builds", None);
        clock.advance(5 * SEC);
        builds.inc();
        drop(builds);
        run.inc();
        run.finish();
        insta::assert_snapshot!(buf.text(), @r"
        checks: started, 2 to do
        [1/2] AC2.cold_start_p95 ...
        cold starts: started, 60 to do
        checks: 0/2 after 35s
        cold starts: 10/60 after 35s, waiting for environment retirement (15s)
        checks: 0/2 after 1m35s
        cold starts: 10/60 after 1m35s, waiting for environment retirement (1m15s)
        cold starts: finished 60/60 in 1m35s: p95 412ms
        [1/2] AC2.cold_start_p95 PASSED: p95 412ms meets < 1s
        image builds: started
        image builds: stopped at 1 done in 5s
        checks: finished 2/2 in 1m40s
        ");
    }

    #[test]
    fn live_mode_redraws_one_line_and_keeps_printed_lines_whole() {
        let (p, clock, buf) = progress(Mode::Live);
        let ph = p.phase("load run", Some(4));
        clock.advance(SEC);
        ph.inc();
        ph.waiting_for("scale-down");
        ph.println("a result line");
        clock.advance(SEC);
        p.tick();
        ph.finish();
        let out = buf.text();
        assert!(
            out.starts_with("load run 0/4 [--------------------] 0s\r\x1b[2Kload run 1/4 [#####---------------] 1s"),
            "{out:?}"
        );
        assert!(
            out.contains("\r\x1b[2Kload run 1/4 [#####---------------] 2s, waiting for scale-down (1s)"),
            "ticks redraw: {out:?}"
        );
        assert!(
            out.contains("\r\x1b[2Ka result line\nload run 1/4 [#####---------------] 1s, waiting for scale-down (0s)"),
            "{out:?}"
        );
        assert!(out.ends_with("\r\x1b[2Kload run: finished 1/4 in 2s\n"), "{out:?}");
    }

    #[test]
    fn off_mode_prints_only_lines_and_steps_from_threads_all_count() {
        let (p, _clock, buf) = progress(Mode::Off);
        let ph = Arc::new(p.phase("warm starts", Some(400)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ph = ph.clone();
                std::thread::spawn(move || (0..100).for_each(|_| ph.inc()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let done = p.with(|st, _| st.phases[0].done);
        assert_eq!(done, 400);
        p.println("only this");
        drop(ph);
        assert_eq!(buf.text(), "only this\n");
    }

    #[test]
    fn elapsed_is_short() {
        assert_eq!(fmt_elapsed(Duration::from_secs(42)), "42s");
        assert_eq!(fmt_elapsed(Duration::from_secs(125)), "2m05s");
        assert_eq!(fmt_elapsed(Duration::from_secs(3720)), "1h02m");
    }
}
