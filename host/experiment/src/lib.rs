//! Experiments as data. Every experiment — one `lethe run`, a seed sweep, a grid over a
//! method's hyper-parameters or learning rates, a suite sweep — is a [`Plan`]: a list of
//! [`Job`]s, each with a stable id that is a digest of everything that determines its result.
//!
//! - [`request`] makes a plan from what a user asked for (the axes); [`presets`] holds the
//!   settings a preset stands for; [`protocols`] holds the benchmarks' experiments (AMNESIA,
//!   MLLMU-Med) as suites, plugin defaults and tables.
//! - [`exec`] runs jobs: one Parquet shard and one run record per job, written atomically; a
//!   job whose complete shard is present is skipped (resume after a crash, many workers).
//! - [`pool`] runs pending jobs in worker processes on one machine; [`schedulers`] writes a
//!   Slurm array script or a Kubernetes Indexed Job for many machines.
//! - [`board`] holds a leaderboard's definition, its submissions and its entries' records;
//!   [`conformance`] is the check a plugin passes before a leaderboard takes it.
//! - [`report`] merges the shards of one or more output folders, checks that they agree on
//!   what they share, and lays out the leaderboard with intervals over seeds.

pub mod board;
pub mod conformance;
pub mod exec;
pub mod meta;
pub mod plan;
pub mod pool;
pub mod presets;
pub mod protocols;
pub mod report;
pub mod request;
pub mod schedulers;
pub mod variant;

use std::path::{Path, PathBuf};

pub use exec::{JobEnv, JobRecord, ShardState, Shards, execute};
pub use plan::{Job, ModelSource, Plan, PluginRef, Round, Rows, SuiteSource};
pub use presets::{Preset, PresetSettings};
pub use protocols::{Protocol, ProtocolSuites};
pub use request::{GridAxis, PlanRequest, PlannedSuite, parse_seeds};

/// Why an experiment could not be planned, run or reported.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A plan file is malformed or inconsistent.
    #[error("{}:{line}: {message}", path.display())]
    Plan {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A job cannot run as planned (an unknown plugin, a changed suite …).
    #[error("job on plan line {line} ({id}): {message}")]
    Job {
        /// The job's line in the plan file.
        line: usize,
        /// Its id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// What was asked for does not make a plan (or a job selection).
    #[error("{0}")]
    Selection(String),
    /// The output folder holds something that is not Lethe's.
    #[error("{} exists and is not a Lethe output folder (no plan.jsonl); not writing into it", .0.display())]
    NotOurs(PathBuf),
    /// The output folder keeps another plan (its shards would no longer be reported).
    #[error(
        "{} keeps another plan ('{title}', {jobs} jobs) than this one; give another --out, or \
         remove that plan.jsonl to replace it",
        .path.display()
    )]
    OtherPlan {
        /// The plan file.
        path: PathBuf,
        /// Its title.
        title: String,
        /// Its jobs.
        jobs: usize,
    },
    /// Shards disagree or are missing.
    #[error("{0}")]
    Merge(String),
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] lethe_pipeline::PipelineError),
    /// A report could not be made.
    #[error(transparent)]
    Report(#[from] lethe_reports::ReportError),
    /// JSON could not be written or read.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ExperimentError {
    /// Whether the error is the user's input (a plan, a flag, a folder), not a failure while
    /// running: the CLI exits 2 for these.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Plan { .. }
                | Self::Job { .. }
                | Self::Selection(_)
                | Self::NotOurs(_)
                | Self::OtherPlan { .. }
                | Self::Merge(_)
        )
    }
}

/// A temporary file in `dir` for a result that is then renamed into place, with the mode a
/// file written directly gets (tempfile's own is 0600: a published report would be readable
/// by its owner only); the umask still applies.
pub(crate) fn temp_result_file(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Write `bytes` to `path` through a temporary file beside it and a rename, so a reader (or
/// a process killed meanwhile) never sees half a file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ExperimentError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A random temporary name: writers in several pods or on several machines (same PID)
    // must not share one. Errors name the file (a full disk, a read-only folder).
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut tmp = temp_result_file(dir, &format!(".{name}."), "").map_err(named)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(named)?;
    tmp.persist(path).map_err(|e| named(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(unix)]
    #[test]
    fn an_atomic_write_leaves_the_mode_a_direct_write_would() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let direct = dir.path().join("direct.md");
        std::fs::write(&direct, b"x").unwrap();
        let staged = dir.path().join("staged.md");
        super::atomic_write(&staged, b"x").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&staged), mode(&direct));
    }
}
