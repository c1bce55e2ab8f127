//! CI's short fuzzing budget: `tests/fuzz/run --light` for a few seconds per parser, under
//! AFL++'s coverage guidance. A crash fails the test with the input that caused it.

use std::error::Error;
use std::path::Path;
use std::process::Command;

/// Seconds per target: enough for AFL++ to calibrate the seeds and run its first mutation
/// rounds (tens of thousands of inputs per target); the long run is the script's default.
const SECONDS: &str = "10";

/// Whether `cargo afl` is installed (`.ci/run` installs it; CI must have it).
fn cargo_afl() -> bool {
    let ok = Command::new("cargo")
        .args(["afl", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-afl is missing (.ci/run installs it)"
        );
        eprintln!(
            "skipping: cargo-afl is not installed here; `cargo install --locked cargo-afl \
             --version 0.18.2` (or `bash tests/fuzz/run`) installs it"
        );
    }
    ok
}

#[test]
fn a_short_fuzzing_budget_finds_no_crash_in_any_light_target() -> Result<(), Box<dyn Error>> {
    if !cargo_afl() {
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("run");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--light", "--seconds", SECONDS])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/fuzz/run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Every light target ran and executed inputs: a target that never started is no budget.
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| target"))
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        names,
        ["suite", "qa-json", "tofu", "muse", "config", "checkpoint"],
        "{stdout}"
    );
    for row in &rows {
        let execs: u64 = row[2].parse()?;
        assert!(
            execs > 1000,
            "{}: only {execs} executions\n{stdout}",
            row[0]
        );
        assert_eq!(row[5], "0", "{}: crashes\n{stdout}", row[0]);
    }
    eprintln!("{stdout}");
    Ok(())
}
