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

/// A result file as the reference `bench.py --out FILE` writes it (the fields it reads, and
/// some it does not).
fn bench_py(mode: &str, median_ms: f64) -> String {
    format!(
        r#"{{"mode": "{mode}", "compile": false, "static_cache": false, "threads": 2,
 "iters": 10, "warmup": 3, "tokens_per_iter": 1024, "median_ms": {median_ms},
 "min_ms": {median_ms}, "max_ms": {median_ms}, "all_ms": [], "first_call_ms": 1.0,
 "tokens_per_s_median": 1.0, "contention": {{"foreign_cpu_share": 0.0}}}}"#
    )
}

#[test]
fn bench_model_compares_with_pytorch_files_of_this_machine_and_names_the_kernels() {
    let dir = tempfile::tempdir().unwrap();
    // Two files of one workload: the ratio is to the median of their medians (400 ms).
    let (a, b) = (dir.path().join("gen-1.json"), dir.path().join("gen-2.json"));
    std::fs::write(&a, bench_py("gen", 300.0)).unwrap();
    std::fs::write(&b, bench_py("gen", 500.0)).unwrap();
    let o = lethe()
        .args(["bench", "model", "--repeats", "1", "--warmup", "0"])
        .args(["--workload", "generate", "--against"])
        .arg(&a)
        .arg("--against")
        .arg(&b)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("kernels: matrix products "), "{out}");
    assert!(out.contains("GFLOP/s measured"), "{out}");
    assert!(out.contains("from --against"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("greedy generation"))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // greedy generation | median | min | tokens/s | GFLOP/s | % peak | PyTorch ms | speed-up
    let median: f64 = cols[2].parse().unwrap();
    assert_eq!(cols[7], "400.0", "{row}");
    let speed_up: f64 = cols[8].trim_end_matches('x').parse().unwrap();
    assert!(
        (speed_up - 400.0 / median).abs() < 0.01 + 0.01 * speed_up,
        "{row}"
    );

    // Files that are not what bench.py writes are refused by name before any timing.
    for (name, body, says) in [
        (
            "no-mode.json",
            r#"{"median_ms": 3.0}"#.to_owned(),
            "no \"mode\"",
        ),
        (
            "mode.json",
            bench_py("decode", 3.0),
            "\"decode\" is none of",
        ),
        ("zero.json", bench_py("fwd", 0.0), "not a positive time"),
        ("text.json", "median 3 ms".to_owned(), "not JSON"),
        (
            "compiled.json",
            bench_py("train", 3.0).replace("\"compile\": false", "\"compile\": true"),
            "torch.compile",
        ),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, body).unwrap();
        let o = lethe()
            .args(["bench", "model", "--repeats", "1", "--against"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
        assert!(o.stdout.is_empty(), "{name}: printed before refusing");
    }
}
