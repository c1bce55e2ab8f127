//! Benchmark suites for Lethe: the data and the rules of one benchmark.
//!
//! A suite on disk is a folder with a manifest, `suite.json` ([`SuiteManifest`]), and one JSON
//! Lines file per split. Every split has a [`SplitRole`] that the host enforces: methods may read
//! only forget, retain and idk; everything else is for evaluation (or, for `pretrain`, for
//! training the base model). A split holds questions, texts or prompt–continuation pairs
//! ([`RecordKind`]). Suites can also be generated in memory ([`generate`]) or imported from a
//! published benchmark's own files ([`import`]).

pub mod format;
pub mod generate;
pub mod import;

pub use format::{
    ContinuationRecord, Problem, QaRecord, RecordKind, Records, Split, SplitRole, SplitSpec, Suite,
    SuiteError, SuiteManifest, TextRecord, schema, valid_name,
};
