//! `lethe run --attack …`: every model re-measured under attack, beside its clean scores.

use lethe_builtin_plugins::{BUILTIN, artifacts};
use polars::prelude::*;

use crate::{run_tiny, split_value, text};

/// The distinct values of a string column, sorted.
fn distinct(df: &DataFrame, column: &str) -> Vec<String> {
    df.column(column)
        .unwrap()
        .str()
        .unwrap()
        .unique()
        .unwrap()
        .sort(Default::default())
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect()
}

fn value(df: &DataFrame, method: &str, attack: &str, output: &str, split: &str) -> f64 {
    split_value(df, method, attack, output, split)
        .unwrap_or_else(|| panic!("no {method} {attack} {output} {split}"))
}

#[test]
fn every_attack_is_measured_beside_the_clean_scores() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(
        &out,
        &[
            "--attack",
            "relearn,quant8,quant4,nf4,paraphrase,few-shot,jailbreak,sample",
            "--samples",
            "4",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    for section in [
        "## Under attack: relearn",
        "## Under attack: quant8",
        "## Under attack: quant4",
        "## Under attack: nf4",
        "## Under attack: paraphrase",
        "## Under attack: few-shot",
        "## Under attack: jailbreak",
        "## Under attack: sample (4 answers per question at temperature 1)",
        "## Relearning against the oracle",
        "## Forgetting kept under attack",
    ] {
        assert!(board.contains(section), "{section} missing:\n{board}");
    }

    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    assert_eq!(
        distinct(&df, "attack"),
        [
            "few-shot",
            "jailbreak",
            "nf4",
            "none",
            "paraphrase",
            "quant4",
            "quant8",
            "relearn",
            "sample"
        ]
    );
    assert!(!board.contains("Robustness"), "{board}");
    for method in ["target", "oracle", "ga", "graddiff"] {
        // Relearning at its default settings (scaled to the preset's finetuning rate) moves
        // every model measurably and past the flag's threshold.
        let moved = value(&df, method, "relearn", "relative_l2", "weights");
        assert!(moved > 1e-3, "{method}: weights moved by {moved:e}");
        // Relearning on the forget set makes every model likelier to give the forget answers.
        let clean = value(&df, method, "none", "probability", "forget");
        let relearned = value(&df, method, "relearn", "probability", "forget");
        assert!(relearned > clean, "{method}: {clean} → {relearned}");
        // leak@k is a probability and grows with k.
        let mut last = 0.0;
        for k in 1..=4 {
            let v = value(&df, method, "sample", &format!("leak@{k}"), "forget");
            assert!(
                (0.0..=1.0).contains(&v) && v >= last - 1e-12,
                "{method} leak@{k} = {v}"
            );
            last = v;
        }
    }
}

#[test]
fn bad_attack_settings_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--attack", "relearn", "--relearn-share", "0"],
            "relearn share 0 is not in (0, 1]",
        ),
        (
            &["--attack", "relearn", "--relearn-from", "group:nosuch"],
            "group 'nosuch'",
        ),
        (
            &["--attack", "relearn", "--relearn-from", "elsewhere"],
            "--relearn-from 'elsewhere'",
        ),
        (
            &["--attack", "relearn", "--relearn-from", "group:author@"],
            "--relearn-from 'group:author@'",
        ),
        (
            &[
                "--attack",
                "relearn",
                "--relearn-from",
                "group:author@holdout",
            ],
            "no retain split of that name",
        ),
        (
            &["--attack", "few-shot", "--few-shot", "1000"],
            "few-shot with k = 1000",
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
fn a_third_party_model_attack_is_a_method_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(
        &out,
        &[
            "--plugin",
            artifacts::ATTACK_FINETUNE,
            "--attack-method",
            "attack-finetune",
            "--unlearn-lr",
            "1e-3",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(
        board.contains("## Under attack: method:attack-finetune"),
        "{board}"
    );
    // The attack plugin is not also run as an unlearning method.
    assert!(!board.contains("| attack-finetune |"), "{board}");
    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    for method in ["target", "oracle", "ga"] {
        let clean = value(&df, method, "none", "probability", "forget");
        let attacked = value(
            &df,
            method,
            "method:attack-finetune",
            "probability",
            "forget",
        );
        assert!(attacked > clean, "{method}: {clean} → {attacked}");
    }
}

#[test]
fn third_party_query_attacks_and_judges_are_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(
        &out,
        &[
            "--methods",
            "ga",
            "--attack",
            "sample",
            "--samples",
            "3",
            "--attack-query",
            "prompt-template",
            "--config",
            r#"prompt-template={"template":"{shots}\n\n{prompt}"}"#,
            "--judge",
            "overlap-judge",
            "--config",
            r#"overlap-judge={"threshold":0.34}"#,
            // A query attack given as a file joins the run by what it exports; it fails.
            "--plugin",
            artifacts::HOSTILE_ATTACK,
        ],
    );
    // The failing plugin is reported and the run still writes everything: exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let failures = std::fs::read_to_string(out.join("failures.json")).unwrap();
    assert!(
        failures.contains("hostile-attack@0.1.0")
            && failures.contains("returned")
            && failures.contains("query-attack"),
        "{failures}"
    );
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(
        board.contains("## Under attack: query:prompt-template"),
        "{board}"
    );

    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    for method in ["target", "oracle", "ga"] {
        // Three solved retain examples before each question change what the model is asked,
        // so every row's scores move.
        let clean = value(&df, method, "none", "probability", "forget");
        let attacked = value(
            &df,
            method,
            "query:prompt-template",
            "probability",
            "forget",
        );
        assert!(
            attacked.is_finite() && (attacked - clean).abs() > 1e-9,
            "{method}: {clean} → {attacked}"
        );
        let leak = value(&df, method, "sample", "leak@3", "forget");
        assert!((0.0..=1.0).contains(&leak), "{method}: leak@3 = {leak}");
    }
    // The judged values name the judge that produced them.
    let judged = df
        .clone()
        .lazy()
        .filter(col("metric").eq(lit(lethe_pipeline::LEAK_METRIC)))
        .collect()
        .unwrap();
    let judge = BUILTIN
        .iter()
        .find(|(n, _)| *n == "overlap-judge")
        .unwrap()
        .1;
    assert_eq!(
        distinct(&judged, "metric_sha256"),
        [lethe_runtime::sha256_hex(judge)]
    );

    // A judge without the sampling attack has nothing to judge.
    let o = run_tiny(
        &dir.path().join("none"),
        &["--judge", "overlap-judge", "--attack", "paraphrase"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("add --attack sample"), "{}", text(&o));
    // A plugin of the wrong kind is named as such.
    let o = run_tiny(&dir.path().join("none"), &["--attack-query", "rouge"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no query-attack named 'rouge'"),
        "{}",
        text(&o)
    );
}
