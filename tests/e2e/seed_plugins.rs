//! The seed benchmarks' plugins end to end: LLMU and RMU unlearn, and the new metrics score,
//! on the authors suite and on the generated medical records.

use std::path::Path;

use polars::prelude::DataFrame;

use crate::{generate, lethe, run_tiny, split_value, text};

/// The clean split-level value of one output for one model row, if there is one.
fn aggregate(df: &DataFrame, method: &str, output: &str, split: &str) -> Option<f64> {
    split_value(df, method, "none", output, split)
}

fn results(out: &Path) -> DataFrame {
    let failures = std::fs::read_to_string(out.join("failures.json")).unwrap();
    assert_eq!(failures.trim(), "[]", "{failures}");
    lethe_reports::read_parquet(&out.join("results.parquet")).unwrap()
}

#[test]
fn llmu_and_rmu_run_and_ues_agrees_with_the_rouge_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run_tiny(
        &out,
        &[
            "--methods",
            "llmu,rmu",
            "--metrics",
            "rouge,ues,accuracy,leakage,forget-efficacy",
            "--config",
            r#"ues={"test_split":"holdout"}"#,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let df = results(&out);
    let r1 = |method: &str, split: &str| aggregate(&df, method, "rouge1_f1", split).unwrap();
    for method in ["base", "target", "oracle", "llmu", "rmu"] {
        // UES computes ROUGE-1 itself; it must be the rouge plugin's rouge1_f1.
        let (f, r, t) = (
            r1(method, "forget"),
            r1(method, "retain"),
            r1(method, "holdout"),
        );
        let (ft_f, ft_r, ft_t) = (
            r1("target", "forget"),
            r1("target", "retain"),
            r1("target", "holdout"),
        );
        let penalty = (ft_r - r).max(0.0) + (ft_t - t).max(0.0) + (f - ft_f).max(0.0);
        let ues = aggregate(&df, method, "ues", "forget").unwrap();
        assert!(
            (ues - (r + t - f - penalty)).abs() < 1e-9,
            "{method}: ues {ues} vs {}",
            r + t - f - penalty
        );
        let degradation = aggregate(&df, method, "degradation", "forget").unwrap();
        assert!(
            (0.0..=1.0).contains(&degradation),
            "{method}: {degradation}"
        );
        let efficacy = aggregate(&df, method, "forget_efficacy_rougeL", "forget").unwrap();
        let recall = aggregate(&df, method, "rougeL_recall", "forget").unwrap();
        assert!((efficacy - (1.0 - recall)).abs() < 1e-9, "{method}");
    }
    assert_eq!(aggregate(&df, "target", "ues_penalty", "forget"), Some(0.0));
    // The authors suite has no closed questions: accuracy gives no value rather than a wrong 0.
    assert_eq!(aggregate(&df, "target", "accuracy", "forget"), None);
}

#[test]
fn medical_records_get_leakage_and_collateral_erosion() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("medical");
    let o = generate("medical", &suite, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // `suite check` lines its counts up even for long split names.
    let o = lethe()
        .args(["suite", "check"])
        .arg(&suite)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    let count_ends: std::collections::BTreeSet<usize> =
        listing.lines().filter_map(|l| l.find(" records")).collect();
    assert_eq!(count_ends.len(), 1, "{listing}");
    let out = dir.path().join("out");
    let suite_arg = suite.to_string_lossy().into_owned();
    let o = run_tiny(
        &out,
        &[
            "--suite",
            &suite_arg,
            "--methods",
            "rmu",
            "--metrics",
            "leakage,collateral-erosion",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let df = results(&out);
    for method in ["target", "rmu"] {
        for output in ["leakage", "degradation"] {
            let v = aggregate(&df, method, output, "forget").unwrap();
            assert!((0.0..=1.0).contains(&v), "{method} {output}: {v}");
        }
        let same = aggregate(&df, method, "utility_same", "retain").unwrap();
        let target_same = aggregate(&df, method, "target_utility_same", "retain").unwrap();
        let erosion = aggregate(&df, method, "erosion_same", "retain").unwrap();
        assert!((erosion - (target_same - same)).abs() < 1e-12, "{method}");
        assert!(aggregate(&df, method, "collateral_erosion", "retain").is_some());
    }
    // The target against itself has eroded nothing.
    assert_eq!(
        aggregate(&df, "target", "collateral_erosion", "retain"),
        Some(0.0)
    );
}
