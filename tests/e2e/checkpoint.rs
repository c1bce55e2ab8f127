//! `lethe run --model DIR`: a checkpoint in Hugging Face layout as the base model.

use crate::{lethe, run_tiny, shared_cache, text};

/// The model folders a tiny run leaves in a cache: each is a checkpoint in Hugging Face layout.
fn trained_checkpoint(cache: &std::path::Path) -> std::path::PathBuf {
    let out = cache.join("out");
    let o = lethe()
        .args([
            "run",
            "--preset",
            "tiny",
            "--methods",
            "ga",
            "--metrics",
            "rouge",
            "--seed",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut folders: Vec<_> = std::fs::read_dir(cache.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("tokenizer.json").exists())
        .collect();
    folders.sort();
    assert_eq!(folders.len(), 3, "base, target and oracle: {folders:?}");
    folders.swap_remove(0)
}

#[test]
fn a_checkpoint_folder_is_the_base_model_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained_checkpoint(&dir.path().join("cache"));

    let out = dir.path().join("from-checkpoint");
    let o = run_tiny(
        &out,
        &[
            "--model",
            checkpoint.to_str().unwrap(),
            "--methods",
            "ga",
            "--metrics",
            "rouge",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let job = crate::job_of(&out, "ga");
    let run = &job["run"];
    let sha = run["learn"]["checkpoint"]["sha256"].as_str().unwrap_or("");
    assert_eq!(
        job["job"]["model"]["sha256"].as_str(),
        Some(sha),
        "the plan pins the checkpoint's digest: {job}"
    );
    assert_eq!(
        sha.len(),
        64,
        "run.json records the checkpoint's digest: {run}"
    );
    assert!(
        !run.to_string().contains(checkpoint.to_str().unwrap()),
        "the folder's path is not part of what determines the run"
    );
    // The plan names the folder (a job must find it), but its id does not depend on it.
    let mut moved: lethe_experiment::Job = serde_json::from_value(job["job"].clone()).unwrap();
    let id = moved.id.clone();
    if let Some(m) = &mut moved.model {
        m.path = "/elsewhere".into();
    }
    assert_eq!(moved.digest(), id);
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    for row in ["| base |", "| target |", "| oracle |", "| ga |"] {
        assert!(board.contains(row), "{row} missing:\n{board}");
    }
}

#[test]
fn a_bad_checkpoint_folder_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The PyTorch fixture has config and weights but no tokenizer.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/reference/tiny-llama"
    );
    let missing = dir.path().join("no-such-model");
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("config.json"), "{\"vocab_size\": 10}").unwrap();
    std::fs::write(broken.join("tokenizer.json"), "{}").unwrap();
    // Llama 3.1 405B's shape: 9 TB for a run, more than any machine this runs on has.
    let huge = dir.path().join("huge");
    std::fs::create_dir_all(&huge).unwrap();
    std::fs::write(
        huge.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 16384,
            "intermediate_size": 53248, "num_hidden_layers": 126, "num_attention_heads": 128,
            "num_key_value_heads": 8, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5}"#,
    )
    .unwrap();
    std::fs::write(huge.join("tokenizer.json"), "{}").unwrap();
    for (model, expected) in [
        (fixture.to_owned(), "has no tokenizer.json".to_owned()),
        (
            missing.display().to_string(),
            format!("{} does not exist", missing.display()),
        ),
        (broken.display().to_string(), "config.json".to_owned()),
        (
            huge.display().to_string(),
            "405.85 B parameters (1511.9 GiB of f32 weights); a run holds at least 6 copies"
                .to_owned(),
        ),
    ] {
        let out = dir.path().join("out");
        let o = lethe()
            .args(["run", "--preset", "tiny", "--model", &model, "--out"])
            .arg(&out)
            .arg("--cache-dir")
            .arg(shared_cache())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
        assert!(!out.exists(), "nothing is written");
    }
}
