//! Progress reporting. Libraries call a [`Reporter`]; only the CLI draws progress bars.

use std::time::Duration;

/// Receives progress from the pipeline.
pub trait Reporter {
    /// A stage begins, with `total` units of work (0 when unknown).
    fn stage(&self, name: &str, total: u64);
    /// `n` more units of the current stage are done; `note` is a short status (a loss …).
    fn advance(&self, n: u64, note: &str);
    /// The current stage is done.
    fn finish(&self);
    /// Something went wrong but the run goes on (a plugin failed, for instance).
    fn warn(&self, message: &str);
    /// Job `n` (0-based) of `total` of a plan begins.
    fn job(&self, _n: usize, _total: usize, _name: &str) {}
    /// Job `n` of `total` ended after `elapsed`; `outcome` says how.
    fn job_done(&self, _n: usize, _total: usize, _name: &str, _elapsed: Duration, _outcome: &str) {}
}

/// A reporter that reports nothing.
pub struct Silent;

impl Reporter for Silent {
    fn stage(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64, _note: &str) {}
    fn finish(&self) {}
    fn warn(&self, _message: &str) {}
}

/// A reporter that times each stage while passing everything on to another: where a run's
/// time goes (learn, unlearn per method, observe per row and attack, score), for a timings
/// file beside the results. A stage ends at [`Reporter::finish`] or when the next begins.
pub struct StageTimer<'a> {
    inner: &'a dyn Reporter,
    current: std::cell::RefCell<Option<(String, std::time::Instant)>>,
    done: std::cell::RefCell<Vec<StageTime>>,
}

/// One timed stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageTime {
    /// The stage as the pipeline names it ("finetune target", "unlearn npo", "observe oracle
    /// [relearn]", "score" …).
    pub stage: String,
    /// What kind of work it is: learn, unlearn, observe, attack or score.
    pub kind: String,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// The kind of work a stage name stands for.
pub fn stage_kind(stage: &str) -> &'static str {
    let first = stage.split(' ').next().unwrap_or_default();
    match first {
        "pretrain" | "finetune" | "tokenizer" | "load" => "learn",
        "unlearn" => "unlearn",
        "observe" if stage.contains(" [") => "attack",
        "observe" => "observe",
        "score" => "score",
        _ => "attack",
    }
}

impl<'a> StageTimer<'a> {
    /// Time the stages reported to `inner`.
    pub fn new(inner: &'a dyn Reporter) -> Self {
        Self {
            inner,
            current: std::cell::RefCell::new(None),
            done: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn close(&self) {
        if let Some((stage, t0)) = self.current.borrow_mut().take() {
            self.done.borrow_mut().push(StageTime {
                kind: stage_kind(&stage).to_owned(),
                stage,
                seconds: t0.elapsed().as_secs_f64(),
            });
        }
    }

    /// The stages timed so far, in order (a stage still open is closed now).
    pub fn take(&self) -> Vec<StageTime> {
        self.close();
        std::mem::take(&mut *self.done.borrow_mut())
    }
}

impl Reporter for StageTimer<'_> {
    fn stage(&self, name: &str, total: u64) {
        self.close();
        *self.current.borrow_mut() = Some((name.to_owned(), std::time::Instant::now()));
        self.inner.stage(name, total);
    }
    fn advance(&self, n: u64, note: &str) {
        self.inner.advance(n, note);
    }
    fn finish(&self) {
        self.close();
        self.inner.finish();
    }
    fn warn(&self, message: &str) {
        self.inner.warn(message);
    }
    fn job(&self, n: usize, total: usize, name: &str) {
        self.inner.job(n, total, name);
    }
    fn job_done(&self, n: usize, total: usize, name: &str, elapsed: Duration, outcome: &str) {
        self.inner.job_done(n, total, name, elapsed, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_end_at_finish_or_at_the_next_stage_and_are_sorted_by_kind() {
        let t = StageTimer::new(&Silent);
        t.stage("finetune target", 10);
        t.stage("unlearn npo", 0);
        t.finish();
        t.advance(1, "");
        t.stage("observe npo [relearn]", 0);
        let got: Vec<(String, String)> = t.take().into_iter().map(|s| (s.stage, s.kind)).collect();
        let want = [
            ("finetune target", "learn"),
            ("unlearn npo", "unlearn"),
            ("observe npo [relearn]", "attack"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
        );
        assert!(t.take().is_empty());
        for (stage, kind) in [
            ("observe oracle", "observe"),
            ("relearn ga", "attack"),
            ("sample ga", "attack"),
            ("method:x on ga", "attack"),
            ("score", "score"),
            ("pretrain base", "learn"),
        ] {
            assert_eq!(stage_kind(stage), kind, "{stage}");
        }
    }
}
