//! `lethe meta-eval` end to end on the tiny preset: the pools train, the table ranks the
//! metrics, metrics with no signal come out unfaithful and last, one more metric reuses the
//! pools' models, and pools too small are refused.

use lethe_builtin_plugins::artifacts;

use crate::{lethe, text};

fn meta_eval(
    out: &std::path::Path,
    cache: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    lethe()
        .args(["meta-eval", "--preset", "tiny", "--out"])
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .args([
            "--methods",
            "ga,graddiff",
            "--step-budgets",
            "2",
            "--pool-size",
            "4",
            "--bootstrap",
            "200",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn models_in(cache: &std::path::Path) -> usize {
    std::fs::read_dir(cache.join("models"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn meta_eval_ranks_metrics_and_puts_the_ones_without_signal_last() {
    let dir = tempfile::tempdir().unwrap();
    // A cache of its own: the second run must train nothing new.
    let cache = dir.path().join("cache");
    let out = dir.path().join("meta");
    let o = meta_eval(
        &out,
        &cache,
        &[
            "--metrics",
            "probability,extraction-strength",
            "--plugin",
            artifacts::USELESS_CONSTANT,
            "--plugin",
            artifacts::USELESS_QUESTION_LENGTH,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("meta-eval.md")).unwrap();
    assert!(
        md.contains("Pool P (knows the forget set): 4 models"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("meta-eval.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    let n = names.len();
    assert!(n >= 4, "{csv}");
    let mut last: Vec<&str> = names[n - 2..].to_vec();
    last.sort_unstable();
    assert_eq!(
        last,
        [
            "useless-constant:constant",
            "useless-question-length:question_length"
        ],
        "{md}"
    );
    for r in &rows[n - 2..] {
        assert_eq!(r[2], "0.500000", "no signal is chance faithfulness: {md}");
    }
    let faithfulness = |name: &str| -> f64 {
        rows.iter().find(|r| r[1] == name).unwrap()[2]
            .parse()
            .unwrap()
    };
    assert!(faithfulness("probability:probability") > 0.75, "{md}");
    for f in [
        "meta-values.parquet",
        "meta-faithfulness.svg",
        "meta-relearn.svg",
        "meta-nf4.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let svg = std::fs::read_to_string(out.join("meta-faithfulness.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("probability:probability"));

    // `lethe report` lays the same table out again from the shards.
    let board = dir.path().join("board");
    let r = lethe()
        .arg("report")
        .arg(&out)
        .arg("--out")
        .arg(&board)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(board.join("meta-eval.csv")).unwrap(),
        csv
    );

    // One more metric on the same pools: every model comes from the cache.
    let trained = models_in(&cache);
    let again = dir.path().join("again");
    let o = meta_eval(
        &again,
        &cache,
        &[
            "--metrics",
            "probability,extraction-strength,exact-memorization",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(models_in(&cache), trained, "a new metric trained a model");
    let md = std::fs::read_to_string(again.join("meta-eval.md")).unwrap();
    assert!(md.contains("exact-memorization:exact_memorization"), "{md}");
}

#[test]
fn meta_eval_refuses_pools_too_small_naming_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("meta");
    let o = lethe()
        .args(["meta-eval", "--preset", "tiny", "--pool-size", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--pool-size 1"), "{}", text(&o));
    assert!(!out.join("plan.jsonl").exists(), "nothing is written");
    let o = lethe()
        .args([
            "meta-eval",
            "--preset",
            "tiny",
            "--methods",
            "ga",
            "--step-budgets",
            "2",
        ])
        .args(["--lr-factors", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("1 unlearned model(s)"), "{}", text(&o));
}
