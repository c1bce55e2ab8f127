//! `lethe run`: results, leaderboard, determinism, bad input.

use polars::prelude::*;

use crate::{generate, lethe, run_tiny, split_value, text};

fn aggregate(df: &DataFrame, method: &str, output: &str, split: &str) -> f64 {
    split_value(df, method, "none", output, split)
        .unwrap_or_else(|| panic!("no {method} {output} {split}"))
}

#[test]
fn a_tiny_run_writes_results_and_a_leaderboard() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "results.parquet",
        "leaderboard.md",
        "leaderboard.csv",
        "run.json",
        "failures.json",
        "losses.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    for row in [
        "| base |",
        "| target |",
        "| oracle |",
        "| ga |",
        "| graddiff |",
    ] {
        assert!(stdout.contains(row), "{row} not in leaderboard:\n{stdout}");
    }
    assert!(stdout.contains("forget rougeL_recall"), "{stdout}");

    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in [
        "run",
        "suite",
        "method",
        "method_sha256",
        "attack",
        "metric",
        "metric_sha256",
        "output",
        "split",
        "example",
        "value",
        "seed",
    ] {
        assert!(
            names.contains(&c.to_owned()),
            "column {c} missing: {names:?}"
        );
    }
    // Every method row carries its plugin's sha256; baselines carry none.
    let run = crate::job_of(&out, "ga")["run"].clone();
    let ga_sha = run["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ga")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let ga_rows = df
        .clone()
        .lazy()
        .filter(col("method").eq(lit("ga")))
        .select([col("method_sha256").unique()])
        .collect()
        .unwrap();
    assert_eq!(
        ga_rows
            .column("method_sha256")
            .unwrap()
            .str()
            .unwrap()
            .get(0),
        Some(ga_sha.as_str())
    );

    // The finetuned target knows its training data better than the untrained base, and the
    // oracle (never trained on forget) knows forget worse than the target.
    let target_forget = aggregate(&df, "target", "probability", "forget");
    let base_forget = aggregate(&df, "base", "probability", "forget");
    let oracle_forget = aggregate(&df, "oracle", "probability", "forget");
    assert!(
        target_forget > base_forget,
        "target {target_forget} vs base {base_forget}"
    );
    assert!(
        target_forget > oracle_forget,
        "target {target_forget} vs oracle {oracle_forget}"
    );
    // Gradient ascent lowers the probability of the forget answers.
    let ga_forget = aggregate(&df, "ga", "probability", "forget");
    assert!(
        ga_forget < target_forget,
        "ga {ga_forget} vs target {target_forget}"
    );

    let losses: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("losses.json")).unwrap()).unwrap();
    assert_eq!(
        losses["ga"]["seed 0"].as_array().unwrap().len() as u64,
        run["unlearn_steps"].as_u64().unwrap()
    );
}

#[test]
fn the_same_command_twice_gives_byte_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // No cache: both runs train everything from scratch. The attacks with random choices
    // (sampled answers, relearning's examples and shuffling) must repeat too.
    let same = [
        "--no-cache",
        "--seed",
        "7",
        "--attack",
        "sample,relearn,few-shot",
    ];
    let oa = run_tiny(&a, &same);
    assert!(oa.status.success(), "{}", text(&oa));
    let ob = run_tiny(&b, &same);
    assert!(ob.status.success(), "{}", text(&ob));
    for f in [
        "results.parquet",
        "leaderboard.md",
        "leaderboard.csv",
        "run.json",
        "losses.json",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two identical runs");
    }
    // And a different seed gives different results.
    let c = dir.path().join("c");
    let oc = run_tiny(&c, &["--no-cache", "--seed", "8"]);
    assert!(oc.status.success(), "{}", text(&oc));
    assert_ne!(
        std::fs::read(a.join("results.parquet")).unwrap(),
        std::fs::read(c.join("results.parquet")).unwrap()
    );
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: [(&[&str], &str); 8] = [
        (
            &["--config", r#"graddiff={"alpha":"much"}"#],
            "graddiff@0.1.0: invalid config: at /alpha",
        ),
        // NPO's β > 0 is in its schema (an exclusive minimum), not checked by hand.
        (
            &["--methods", "npo", "--config", r#"npo={"beta":0}"#],
            "npo@0.1.0: invalid config: at /beta",
        ),
        (
            &["--config", "graddiff={oops"],
            "--config graddiff: not JSON",
        ),
        (
            &["--config", r#"nosuch={}"#],
            "--config nosuch: no such plugin in this run",
        ),
        (&["--methods", "ga,nosuch"], "no method named 'nosuch'"),
        (
            &["--unlearn-lr-for", "ga=-1"],
            "--unlearn-lr-for 'ga=-1' is not NAME=LR with a positive LR",
        ),
        (
            &["--unlearn-lr-for", "npo=1e-3"],
            "--unlearn-lr-for npo: no such method in this run",
        ),
        (
            &["--suite", "/nonexistent/suite"],
            "suite.json: cannot read",
        ),
    ];
    for (args, needle) in cases {
        let o = run_tiny(&out, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: expected '{needle}' in:\n{err}"
        );
        assert!(!out.exists(), "{args:?} left an output folder behind");
    }
}

#[test]
fn an_existing_folder_that_is_not_a_result_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("precious");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    let o = run_tiny(&out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn suite_generate_then_check_then_run_from_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    let o = generate("authors", &suite, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = lethe()
        .args(["suite", "check"])
        .arg(&suite)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("holdout"));

    // A broken line is reported with file, line and field.
    let retain = suite.join("retain.jsonl");
    let fixed = std::fs::read_to_string(&retain).unwrap();
    std::fs::write(&retain, fixed.replacen("\"answer\"", "\"answr\"", 1)).unwrap();
    let o = lethe()
        .args(["suite", "check"])
        .arg(&suite)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("retain.jsonl:1: field 'answr'"), "{err}");
    std::fs::write(&retain, fixed).unwrap();

    let out = dir.path().join("out");
    let o = run_tiny(
        &out,
        &["--suite", suite.to_str().unwrap(), "--methods", "ga"],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn tofu_imports_from_a_local_copy_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tofu");
    let release = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/tofu");
    let o = lethe()
        .args([
            "suite",
            "import",
            "tofu",
            "--from",
            release,
            "--forget-percent",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("forget 40, retain 400, holdout 40"),
        "{stdout}"
    );
    let o = lethe().args(["suite", "check"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // forget05 is not in the shared subset: a clear error naming the file.
    let o = lethe()
        .args([
            "suite",
            "import",
            "tofu",
            "--from",
            release,
            "--forget-percent",
            "5",
            "--out",
        ])
        .arg(dir.path().join("t5"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("forget05.json: missing"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("t5").exists());
}

#[test]
fn every_builtin_method_runs_in_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(&out, &["--methods", "ga,graddiff,npo,simnpo,kl-min,idknll"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for row in ["| npo |", "| simnpo |", "| kl-min |", "| idknll |"] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
}

#[test]
fn one_method_can_have_its_own_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let own = dir.path().join("own");
    let o = run_tiny(&shared, &["--methods", "ga,graddiff"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_tiny(
        &own,
        &["--methods", "ga,graddiff", "--unlearn-lr-for", "ga=1e-2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    // A job's unlearning settings are its own method's: GA's job runs at 1e-2, GradDiff's is
    // the same job as in the shared run.
    let ga = crate::job_of(&own, "ga");
    assert_eq!(ga["job"]["unlearn"]["learning_rate"], 0.01, "{ga}");
    assert_eq!(
        crate::job_of(&own, "graddiff")["job"]["id"],
        crate::job_of(&shared, "graddiff")["job"]["id"]
    );
    let read =
        |d: &std::path::Path| lethe_reports::read_parquet(&d.join("results.parquet")).unwrap();
    let (a, b) = (read(&shared), read(&own));
    // GA moved further at the larger rate; GradDiff, at the shared rate, did exactly the same.
    let ga = |df: &DataFrame| aggregate(df, "ga", "probability", "forget");
    let gd = |df: &DataFrame| aggregate(df, "graddiff", "probability", "forget");
    assert!(ga(&b) < ga(&a), "ga {} → {}", ga(&a), ga(&b));
    assert_eq!(gd(&a), gd(&b));
}
