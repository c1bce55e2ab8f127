//! Benchmark suites for Lethe: the data and the rules of one benchmark.
//!
//! A suite on disk is a folder with a manifest, `suite.json` ([`SuiteManifest`]), and one JSON
//! Lines file per split. Every split has a [`SplitRole`] that the host enforces: methods may read
//! only forget, retain and idk; everything else is for evaluation (or, for `pretrain`, for
//! training the base model). Suites can also be generated in memory ([`generate`]).

pub mod format;
pub mod generate;
pub mod import;

pub use format::{
    Problem, QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteError, SuiteManifest,
    TextRecord, valid_name,
};
