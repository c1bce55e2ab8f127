//! `lethe bench model`: a quick run prints every workload's figures (no assertion on time).

use crate::{lethe, text};

#[test]
fn bench_model_runs_every_workload_and_prints_its_figures() {
    let o = lethe()
        .args(["bench", "model", "--repeats", "1", "--warmup", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "train step",
        "forward log-probs",
        "greedy generation",
        "GFLOP/s",
        "PyTorch ms",
        "speed-up",
        "peak RSS MiB",
    ] {
        assert!(out.contains(needle), "'{needle}' missing:\n{out}");
    }
    // One row per workload, each with a finite positive median.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.starts_with("train step") || l.starts_with("forward") || l.starts_with("greedy")
        })
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    for row in rows {
        let median: f64 = row
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or(f64::NAN);
        assert!(median.is_finite() && median > 0.0, "{row}");
    }
}

#[test]
fn bench_model_runs_one_workload_and_refuses_zero_repeats() {
    let o = lethe()
        .args([
            "bench",
            "model",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--workload",
            "generate",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("greedy generation") && !out.contains("train step"),
        "{out}"
    );
    let o = lethe()
        .args(["bench", "model", "--repeats", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
