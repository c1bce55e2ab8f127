//! End-to-end tests: the real `lethe` binary in temporary folders.
//!
//! Every run uses the `tiny` preset (a small model and suite that train in seconds) and a
//! cache shared by the tests of this binary, so models are trained once per test run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod attacks;
mod bench_model;
mod checkpoint;
mod cli;
mod disks;
mod hostile;
mod leaderboard;
mod lora;
mod meta;
mod parsers;
mod plans;
mod plugin_kit;
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

/// Run `lethe suite generate KIND --preset tiny` with extra arguments, writing to `out`.
pub fn generate(kind: &str, out: &Path, extra: &[&str]) -> Output {
    lethe()
        .args(["suite", "generate", kind, "--preset", "tiny", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Run `lethe run --preset tiny` with extra arguments, writing to `out`: one seed (0) unless
/// the arguments name seeds, so a test's results hold one value per row.
pub fn run_tiny(out: &Path, extra: &[&str]) -> Output {
    let mut cmd = lethe();
    cmd.args(["run", "--preset", "tiny", "--out"])
        .arg(out)
        .arg("--cache-dir")
        .arg(shared_cache());
    if !extra.iter().any(|a| *a == "--seed" || *a == "--seeds") {
        cmd.args(["--seed", "0"]);
    }
    cmd.args(extra).output().unwrap()
}

/// The records of the jobs a run or a report merged (`run.json`).
pub fn job_records(dir: &Path) -> Vec<serde_json::Value> {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    run["jobs"].as_array().unwrap().clone()
}

/// The record of the job that produced row `label` (a method's, or "baselines").
pub fn job_of(dir: &Path, label: &str) -> serde_json::Value {
    job_records(dir)
        .into_iter()
        .find(|r| match label {
            "baselines" => r["job"]["rows"]["kind"] == "baselines",
            l => r["job"]["rows"]["label"] == l,
        })
        .unwrap_or_else(|| panic!("no job for {label} in {}", dir.display()))
}

/// The split-level value of one output for one model row under one attack ("none": clean),
/// if the results hold one (they never hold two).
pub fn split_value(
    df: &polars::prelude::DataFrame,
    method: &str,
    attack: &str,
    output: &str,
    split: &str,
) -> Option<f64> {
    use polars::prelude::*;
    let hit = df
        .clone()
        .lazy()
        .filter(
            col("method")
                .eq(lit(method))
                .and(col("attack").eq(lit(attack)))
                .and(col("output").eq(lit(output)))
                .and(col("split").eq(lit(split)))
                .and(col("example").is_null()),
        )
        .collect()
        .unwrap();
    assert!(
        hit.height() <= 1,
        "{method} {attack} {output} {split}: {hit}"
    );
    (hit.height() == 1).then(|| hit.column("value").unwrap().f64().unwrap().get(0).unwrap())
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
