//! Progress for the pipeline's [`Reporter`]: bars on a terminal; plain lines at a modest rate
//! when stderr is a file or a pipe (a Slurm task, CI, `2>log`), so a long run is never silent.

use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_pipeline::Reporter;

/// The reporter for this process: bars on a terminal without verbose logging, lines otherwise.
pub fn reporter(verbose: u8) -> Box<dyn Reporter> {
    if verbose == 0 && std::io::stderr().is_terminal() {
        Box::new(Bars::new(false))
    } else {
        Box::new(Lines::new())
    }
}

/// Human-readable seconds: "42 s", "3 min 05 s", "1 h 02 min".
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// A reporter that draws one bar per stage on stderr.
pub struct Bars {
    bar: RefCell<Option<ProgressBar>>,
    hidden: bool,
}

impl Bars {
    /// Bars, hidden when `hidden`.
    pub fn new(hidden: bool) -> Self {
        Self {
            bar: RefCell::new(None),
            hidden,
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }
}

impl Reporter for Bars {
    fn stage(&self, name: &str, total: u64) {
        self.finish();
        let bar = if total == 0 {
            let b = ProgressBar::with_draw_target(None, self.target());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<18} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            let b = ProgressBar::with_draw_target(Some(total), self.target());
            b.set_style(
                ProgressStyle::with_template(
                    "  {prefix:<18} [{bar:30}] {pos:>5}/{len:<5} {elapsed:>4} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        };
        bar.set_prefix(name.to_owned());
        *self.bar.borrow_mut() = Some(bar);
    }

    fn advance(&self, n: u64, note: &str) {
        if let Some(b) = self.bar.borrow().as_ref() {
            b.inc(n);
            if !note.is_empty() {
                b.set_message(note.to_owned());
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.borrow_mut().take() {
            b.finish();
            // Keep the finished stage on screen: the next bar starts on a new line.
            if !b.is_hidden() {
                eprintln!();
            }
        }
    }

    fn warn(&self, message: &str) {
        let line = format!("warning: {message}");
        match self.bar.borrow().as_ref() {
            Some(b) if !b.is_hidden() => b.println(line),
            _ => eprintln!("{line}"),
        }
    }

    fn job(&self, n: usize, total: usize, name: &str) {
        self.finish();
        eprintln!("job {}/{total}: {name}", n + 1);
    }

    fn job_done(&self, n: usize, total: usize, name: &str, elapsed: Duration, outcome: &str) {
        self.finish();
        eprintln!(
            "job {}/{total} {outcome}: {name} in {}",
            n + 1,
            duration(elapsed)
        );
    }
}

/// How often a line about the current stage may be printed.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// A reporter that prints plain lines: each job's start and end (with the plan's estimated
/// remaining time), and the current stage with its progress at most every ten seconds.
pub struct Lines {
    started: Instant,
    job: RefCell<String>,
    stage: RefCell<(String, u64, u64, Instant)>,
    last_line: Cell<Option<Instant>>,
    jobs_done: Cell<usize>,
    job_time: Cell<Duration>,
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

impl Lines {
    /// Lines, timed from now.
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            job: RefCell::new(String::new()),
            stage: RefCell::new((String::new(), 0, 0, now)),
            last_line: Cell::new(None),
            jobs_done: Cell::new(0),
            job_time: Cell::new(Duration::ZERO),
        }
    }

    fn due(&self) -> bool {
        self.last_line
            .get()
            .is_none_or(|t| t.elapsed() >= LINE_EVERY)
    }

    fn line(&self, text: &str) {
        self.last_line.set(Some(Instant::now()));
        let job = self.job.borrow();
        let elapsed = duration(self.started.elapsed());
        if job.is_empty() {
            eprintln!("[{elapsed}] {text}");
        } else {
            eprintln!("[{elapsed}] {job} · {text}");
        }
    }

    fn stage_line(&self) {
        let (name, done, total, t0) = &*self.stage.borrow();
        if name.is_empty() {
            return;
        }
        let mut text = name.clone();
        if *total > 0 {
            text.push_str(&format!(" {done}/{total}"));
            if *done > 0 && done < total {
                let per = t0.elapsed().as_secs_f64() / *done as f64;
                let left = Duration::from_secs_f64(per * (total - done) as f64);
                text.push_str(&format!(" (~{} left in the stage)", duration(left)));
            }
        }
        self.line(&text);
    }
}

impl Reporter for Lines {
    fn stage(&self, name: &str, total: u64) {
        *self.stage.borrow_mut() = (name.to_owned(), 0, total, Instant::now());
        if self.due() {
            self.stage_line();
        }
    }

    fn advance(&self, n: u64, _note: &str) {
        self.stage.borrow_mut().1 += n;
        if self.due() {
            self.stage_line();
        }
    }

    fn finish(&self) {}

    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn job(&self, n: usize, total: usize, name: &str) {
        *self.job.borrow_mut() = format!("job {}/{total} ({name})", n + 1);
        self.line("started");
    }

    fn job_done(&self, n: usize, total: usize, name: &str, elapsed: Duration, outcome: &str) {
        let done = self.jobs_done.get() + 1;
        self.jobs_done.set(done);
        self.job_time.set(self.job_time.get() + elapsed);
        let left = total.saturating_sub(n + 1);
        let eta = if left > 0 {
            let per = self.job_time.get().as_secs_f64() / done as f64;
            format!(
                "; {left} job(s) left, ~{}",
                duration(Duration::from_secs_f64(per * left as f64))
            )
        } else {
            String::new()
        };
        self.job.borrow_mut().clear();
        self.line(&format!(
            "job {}/{total} {outcome}: {name} in {}{eta}",
            n + 1,
            duration(elapsed)
        ));
    }
}
