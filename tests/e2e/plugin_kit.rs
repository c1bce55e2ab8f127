//! A third party's path: `lethe plugin new` outside the repository, a standalone build,
//! `lethe plugin check`, the conformance check `lethe plugin test`, and a run.

use std::path::Path;
use std::process::Command;

use lethe_builtin_plugins::artifacts;

use crate::{lethe, run_tiny, shared_cache, text};

/// `lethe plugin test FILE` with the shared cache.
fn plugin_test(file: &Path) -> std::process::Output {
    lethe()
        .args(["plugin", "test"])
        .arg(file)
        .arg("--cache-dir")
        .arg(shared_cache())
        .output()
        .unwrap()
}

/// The report's line of one check.
fn line_of(report: &str, check: &str) -> String {
    report
        .lines()
        .find(|l| l.contains(check))
        .unwrap_or_else(|| panic!("{check}\n{report}"))
        .to_owned()
}

#[test]
fn a_method_scaffolded_outside_the_repository_builds_passes_conformance_and_runs() {
    // A temporary folder is outside the repository: no workspace above it to inherit from.
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("my-forgetter");
    let o = lethe()
        .args([
            "plugin",
            "new",
            "my-forgetter",
            "--kind",
            "method",
            "--path",
        ])
        .arg(&krate)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("workspace"), "{manifest}");

    // Built as its author would, in a target folder kept between test runs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded-plugins");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&krate)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target);
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
        cargo.env_remove(var);
    }
    let o = cargo.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let wasm = target.join("wasm32-wasip2/release/my_forgetter.wasm");

    let o = lethe()
        .args(["plugin", "check"])
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("name:        my-forgetter"),
        "{}",
        text(&o)
    );

    let o = plugin_test(&wasm);
    assert!(o.status.success(), "{}", text(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    for check in [
        "configuration valid",
        "runs without failing",
        "asks for nothing denied",
        "steps within its budget",
        "forgets the forget split",
        "same input, same output",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains("pass") && l.contains(check)),
            "{check}\n{report}"
        );
    }

    let out = dir.path().join("run");
    let file = wasm.to_string_lossy().into_owned();
    let o = run_tiny(
        &out,
        &[
            "--plugin",
            &file,
            "--methods",
            "my-forgetter",
            "--metrics",
            "rouge",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(board.contains("my-forgetter"), "{board}");
}

#[test]
fn the_templates_of_every_kind_pass_conformance() {
    for file in [
        artifacts::TEMPLATE_METRIC,
        artifacts::TEMPLATE_QUERY_ATTACK,
        artifacts::TEMPLATE_JUDGE,
    ] {
        let o = plugin_test(Path::new(file));
        assert!(o.status.success(), "{file}\n{}", text(&o));
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("FAIL"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn a_method_that_asks_for_a_denied_split_fails_conformance_even_if_it_carries_on() {
    // It stops on the refusal: its run fails, with the reason.
    let o = plugin_test(Path::new(artifacts::HOSTILE_SPLIT));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = |check: &str| line_of(&report, check);
    let failed = line("runs without failing");
    assert!(
        failed.contains("FAIL") && failed.contains("holdout"),
        "{report}"
    );
    assert!(report.contains("failed:"), "{report}");

    // It swallows the refusal and unlearns: the run succeeds, the attempt is still caught.
    let o = plugin_test(Path::new(artifacts::HOSTILE_SWALLOW));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = |check: &str| line_of(&report, check);
    assert!(line("runs without failing").contains("pass"), "{report}");
    assert!(
        line("forgets the forget split").contains("pass"),
        "{report}"
    );
    let denied = line("asks for nothing denied");
    assert!(
        denied.contains("FAIL") && denied.contains("holdout"),
        "{report}"
    );
}

#[test]
fn a_scaffold_never_writes_into_a_folder_that_holds_something() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let o = lethe()
        .args(["plugin", "new", "m", "--kind", "metric", "--path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not empty"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
    let o = lethe()
        .args(["plugin", "new", "Bad_Name", "--kind", "judge", "--path"])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.path().join("x").exists());
}
