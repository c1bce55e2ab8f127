//! LoRA through the CLI: a checkpoint made by `lethe model init`, finetuned and unlearned as
//! low-rank adapters, evaluated merged; settings that do not fit are refused before anything
//! trains.

use crate::{lethe, run_tiny, shared_cache, split_value, text};

/// `lethe model init` of a small shape into `dir/name`.
fn init(dir: &std::path::Path, name: &str, extra: &[&str]) -> std::process::Output {
    lethe()
        .args(["model", "init", "--out"])
        .arg(dir.join(name))
        .args([
            "--hidden-size",
            "64",
            "--intermediate-size",
            "160",
            "--layers",
            "2",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--vocab-size",
            "400",
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// A tiny run of GradDiff, scored by probability, from the checkpoint `model`.
fn graddiff_on(model: &std::path::Path, out: &std::path::Path, extra: &[&str]) {
    let mut args = vec![
        "--model",
        model.to_str().unwrap(),
        "--methods",
        "graddiff",
        "--metrics",
        "probability",
    ];
    args.extend_from_slice(extra);
    let o = run_tiny(out, &args);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_checkpoint_made_by_lethe_is_finetuned_and_unlearned_with_adapters() {
    let dir = tempfile::tempdir().unwrap();
    let o = init(dir.path(), "model", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 layers, hidden 64, MLP 160"), "{stdout}");
    let model = dir.path().join("model");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(model.join(f).exists(), "{f} not written");
    }
    // Made again into the same folder: refused, the folder untouched.
    let before = std::fs::read(model.join("model.safetensors")).unwrap();
    let again = init(dir.path(), "model", &["--seed", "1"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        before
    );

    let out = dir.path().join("out");
    graddiff_on(
        &model,
        &out,
        &[
            "--lora-rank",
            "4",
            "--lora-targets",
            "q_proj,v_proj,up_proj,down_proj",
            "--lora-lr-scale",
            "20",
        ],
    );
    let job = crate::job_of(&out, "graddiff");
    let lora = &job["run"]["learn"]["lora"];
    assert_eq!(lora["rank"], 4, "{job}");
    assert_eq!(lora["alpha"], 8.0);
    assert_eq!(lora["learning_rate_scale"], 20.0);
    assert_eq!(job["job"]["unlearn"]["lora"], *lora);
    // Adapters trained: the target learnt the forget set, and GradDiff moved it away again.
    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    let p = |row: &str| split_value(&df, row, "none", "probability", "forget").unwrap();
    assert!(
        p("target") > p("base"),
        "target {} base {}",
        p("target"),
        p("base")
    );
    assert!(
        p("graddiff") < p("target"),
        "graddiff {} target {}",
        p("graddiff"),
        p("target")
    );

    // The same run with full training writes other models (their keys hold the setting).
    let full = dir.path().join("full");
    graddiff_on(&model, &full, &[]);
    let df2 = lethe_reports::read_parquet(&full.join("results.parquet")).unwrap();
    let q = |row: &str| split_value(&df2, row, "none", "probability", "forget").unwrap();
    assert_eq!(
        q("base"),
        p("base"),
        "the base is the checkpoint either way"
    );
    assert_ne!(q("target"), p("target"));
}

#[test]
fn lora_settings_that_do_not_fit_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let o = init(dir.path(), "model", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let model = dir.path().join("model");
    let model = model.to_str().unwrap();
    // The tiny preset: hidden 64, k/v projections 64 → 32; the checkpoint likewise.
    let cases: &[(&[&str], &str)] = &[
        (
            &["--lora-rank", "4", "--lora-targets", "qkv_proj"],
            "\"qkv_proj\": the model has no such projection",
        ),
        (&["--lora-rank", "0"], "rank 0"),
        (
            &["--lora-rank", "33"],
            "rank 33 is above the width of k_proj (64 in, 32 out): at most 32",
        ),
        (
            &["--lora-rank", "4", "--lora-alpha=-1"],
            "alpha -1 is not a positive number",
        ),
        (
            &[
                "--model",
                model,
                "--lora-rank",
                "33",
                "--lora-targets",
                "v_proj",
            ],
            "rank 33 is above the width of v_proj (64 in, 32 out): at most 32",
        ),
        (&["--lora-alpha", "8"], "--lora-rank"),
    ];
    for (args, expected) in cases {
        let out = dir.path().join("out");
        let o = lethe()
            .args(["run", "--preset", "tiny", "--seed", "0", "--out"])
            .arg(&out)
            .arg("--cache-dir")
            .arg(shared_cache())
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: {expected:?} not in:\n{stderr}"
        );
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
    // A shape that cannot be a model: refused, nothing left behind.
    let o = init(dir.path(), "odd", &["--heads", "5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.path().join("odd").exists());
    assert!(!dir.path().join(".odd.partial").exists());
}
