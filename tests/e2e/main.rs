//! End-to-end tests: the real `lethe` binary in temporary folders.
//!
//! Every run uses the `tiny` preset (a small model and suite that train in seconds) and a
//! cache shared by the tests of this binary, so models are trained once per test run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod attacks;
mod bench_model;
mod checkpoint;
mod cli;
mod hostile;
mod protocols;
mod run;
mod seed_plugins;
mod suites;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `lethe` binary under test.
pub fn lethe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lethe"));
    cmd.env_remove("LETHE_PLUGIN_DIR")
        .env_remove("LETHE_CACHE_DIR")
        .env_remove("LETHE_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// A cache shared by all end-to-end tests (content-addressed, so sharing is safe).
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-model-cache")
}

/// Run `lethe run --preset tiny` with extra arguments, writing to `out`.
pub fn run_tiny(out: &Path, extra: &[&str]) -> Output {
    lethe()
        .args(["run", "--preset", "tiny", "--out"])
        .arg(out)
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(extra)
        .output()
        .unwrap()
}

/// Standard error and standard output, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
