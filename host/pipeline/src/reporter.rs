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
