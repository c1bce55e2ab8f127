//! Hostile plugins in a real run: each is contained with a clear error naming it, and the host
//! and the other plugins go on.

use lethe_builtin_plugins::artifacts;
use polars::prelude::{IntoLazy, col, lit};

use crate::{run_tiny, text};

#[test]
fn hostile_plugins_are_contained_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = vec![
        "--fuel",
        "300000000",
        "--plugin-memory-mib",
        "64",
        "--plugin-timeout",
        "5",
        "--plugin-tensor-mib",
        "128",
    ];
    for p in [
        artifacts::HOSTILE_LOOP,
        artifacts::HOSTILE_MEMORY,
        artifacts::HOSTILE_TRAP,
        artifacts::HOSTILE_RECURSION,
        artifacts::HOSTILE_SANDBOX,
        artifacts::HOSTILE_SPLIT,
        artifacts::HOSTILE_STALL,
        artifacts::HOSTILE_HOARD,
        artifacts::HOSTILE_VALUES,
    ] {
        args.push("--plugin");
        args.push(p);
    }
    let o = run_tiny(&out, &args);
    // The run finishes, reports the failures, and exits 1.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let failures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("failures.json")).unwrap()).unwrap();
    let errors: Vec<String> = failures
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["plugin"].as_str().unwrap(),
                f["error"].as_str().unwrap()
            )
        })
        .collect();
    let expect = |plugin: &str, needle: &str| {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(plugin) && e.contains(needle)),
            "no failure of {plugin} mentioning '{needle}' in {errors:#?}"
        );
    };
    expect("hostile-loop@0.1.0", "fuel exhausted");
    expect("hostile-memory@0.1.0", "memory limit of 64 MiB exceeded");
    expect("hostile-trap@0.1.0", "panicking on purpose");
    expect("hostile-recursion@0.1.0", "trapped during score");
    expect("hostile-split@0.1.0", "evaluation-only");
    // A method that loops on host calls without stepping, one that keeps every tensor, a
    // metric returning NaN and infinities: each stopped at its bound, by name.
    expect("hostile-stall@0.1.0", "timed out: no progress for 5s");
    expect("hostile-hoard@0.1.0", "more than 128 MiB of tensors");
    expect("hostile-values@0.1.0", "non-finite value");

    // The sandbox probe ran, and saw nothing of the machine.
    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    let probe = df
        .clone()
        .lazy()
        .filter(col("metric").eq(lit("hostile-sandbox")))
        .collect()
        .unwrap();
    assert!(probe.height() > 0, "the sandbox probe produced nothing");
    let values = probe.column("value").unwrap().f64().unwrap();
    assert!(
        values.into_iter().all(|v| v == Some(0.0)),
        "the probe saw something: {probe}"
    );

    // Nothing that is not a number reached the results or the leaderboard.
    let all = df.column("value").unwrap().f64().unwrap();
    assert!(all.into_iter().all(|v| v.is_some_and(f64::is_finite)));
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    let tokens = board.split(|c: char| c.is_whitespace() || c == '|');
    assert!(
        tokens
            .into_iter()
            .all(|t| !matches!(t, "NaN" | "inf" | "-inf")),
        "{board}"
    );

    // The good plugins still produced their rows for every method that ran.
    let stdout = String::from_utf8_lossy(&o.stdout);
    for row in ["| target |", "| ga |", "| graddiff |"] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
}

#[test]
fn wrong_version_and_malformed_components_are_refused_with_the_supported_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(&out, &["--plugin", artifacts::HOSTILE_VERSION]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lethe:plugin@9.0.0") && err.contains("0.1.0"),
        "{err}"
    );

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let o = run_tiny(&out, &["--plugin", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("junk.wasm"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());
}
