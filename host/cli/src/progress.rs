//! Progress bars for the pipeline's [`Reporter`], drawn only on a terminal and only when
//! verbose logging is off.

use std::cell::RefCell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_pipeline::Reporter;

/// A reporter that draws one bar per stage on stderr.
pub struct Bars {
    bar: RefCell<Option<ProgressBar>>,
    hidden: bool,
}

impl Bars {
    /// Bars, hidden when `hidden` (verbose logging) or when stderr is not a terminal.
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
}
