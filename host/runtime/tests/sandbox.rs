//! The sandbox holds: hostile plugins are contained with a clear error, built-in plugins load
//! and compute what the host computes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use candle_core::Device;
use lethe_builtin_plugins::{BUILTIN, artifacts};
use lethe_manifest::{ModelRole, ObservedExample, ObservedSplit, PluginKind};
use lethe_model::train::OptimSettings;
use lethe_model::{Config, LanguageModel, Params, Sequence, Tokenizer};
use lethe_runtime::{
    FeedExample, Limits, PluginFailure, PluginHost, RuntimeError, SplitFeed, TrainingState,
};
use serde_json::json;

/// LLMU, RMU and the metrics of the seed benchmarks (MLLMU-Med, AMNESIA).
mod seed_plugins;

/// Query-attack and judge plugins (interface 0.1.1), and a component built against 0.1.0.
mod attack_plugins;

/// Every unlearning method against its formula and its direction.
mod methods;

fn host(limits: Limits) -> PluginHost {
    PluginHost::new(limits).unwrap()
}

fn builtin(name: &str) -> &'static [u8] {
    BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1
}

fn one_split() -> Vec<ObservedSplit> {
    vec![ObservedSplit {
        model: ModelRole::Subject,
        split: "forget".into(),
        examples: vec![ObservedExample {
            id: "a".into(),
            question: "Where was Ana born?".into(),
            answer: "Ana was born in Lisbon.".into(),
            generated: Some("Ana was born in Oslo.".into()),
            answer_logprobs: Some(vec![-0.5, -1.5]),
            ..Default::default()
        }],
    }]
}

#[test]
fn builtin_plugins_describe_themselves() {
    let h = host(Limits::default());
    for (name, bytes) in BUILTIN {
        let p = h.load(name, bytes).unwrap();
        assert_eq!(p.manifest.name, *name);
        assert_eq!(p.manifest.api_version, "0.1.2");
        assert_eq!(p.sha256.len(), 64);
    }
}

#[test]
fn metrics_score_through_the_boundary() {
    let h = host(Limits::default());
    let rouge = h.load("rouge", builtin("rouge")).unwrap();
    assert_eq!(rouge.manifest.kind, PluginKind::Metric);
    let values = h.score(&rouge, &json!({}), &one_split(), 0).unwrap();
    let recall = values
        .iter()
        .find(|v| v.name == "rougeL_recall" && v.example.is_none())
        .unwrap();
    // 4 of 5 reference tokens ("ana was born in lisbon") are in the prediction.
    assert!((recall.value - 0.8).abs() < 1e-12, "{}", recall.value);

    let prob = h.load("probability", builtin("probability")).unwrap();
    let values = h.score(&prob, &json!({}), &one_split(), 0).unwrap();
    let p = values.iter().find(|v| v.example.is_none()).unwrap().value;
    assert!((p - (-1.0f64).exp()).abs() < 1e-6);
}

#[test]
fn config_is_checked_against_the_schema_before_running() {
    let h = host(Limits::default());
    let gd = h.load("graddiff", builtin("graddiff")).unwrap();
    h.validate_config(&gd, &json!({"alpha": 0.5})).unwrap();
    let err = h
        .validate_config(&gd, &json!({"alpha": "much"}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("graddiff@0.1.0") && err.contains("/alpha"),
        "{err}"
    );
    let err = h
        .validate_config(&gd, &json!({"gama": 1}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gama"), "{err}");
}

fn hostile(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn score_err(h: &PluginHost, path: &str) -> String {
    let p = h.load(path, &hostile(path)).unwrap();
    let e = h.score(&p, &json!({}), &one_split(), 0).unwrap_err();
    assert!(matches!(e, RuntimeError::Trap { .. }), "{e}");
    e.to_string()
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let h = host(Limits {
        fuel: 200_000_000,
        ..Limits::default()
    });
    let e = score_err(&h, artifacts::HOSTILE_LOOP);
    assert!(
        e.contains("hostile-loop@0.1.0") && e.contains("fuel exhausted"),
        "{e}"
    );
}

#[test]
fn an_infinite_loop_hits_the_time_guard_when_fuel_is_plentiful() {
    let h = host(Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let e = score_err(&h, artifacts::HOSTILE_LOOP);
    assert!(e.contains("timed out"), "{e}");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let h = host(Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    });
    let e = score_err(&h, artifacts::HOSTILE_MEMORY);
    assert!(e.contains("hostile-memory@0.1.0"), "{e}");
    assert!(e.contains("memory limit of 64 MiB exceeded"), "{e}");
}

#[test]
fn a_panic_is_a_trap_with_the_panic_message() {
    let h = host(Limits::default());
    let e = score_err(&h, artifacts::HOSTILE_TRAP);
    assert!(e.contains("hostile plugin panicking on purpose"), "{e}");
}

#[test]
fn deep_recursion_overflows_the_stack_cleanly() {
    let h = host(Limits::default());
    let e = score_err(&h, artifacts::HOSTILE_RECURSION);
    // Rust guests keep a shadow stack in linear memory: exhausting it is an out-of-bounds
    // access rather than a wasm stack overflow. Either way the trap is clean.
    assert!(
        e.contains("stack overflow") || e.contains("out of bounds memory access"),
        "{e}"
    );
}

#[test]
fn the_host_survives_and_serves_the_next_call_after_a_trap() {
    let h = host(Limits::default());
    let bad = h.load("trap", &hostile(artifacts::HOSTILE_TRAP)).unwrap();
    let good = h.load("rouge", builtin("rouge")).unwrap();
    for _ in 0..3 {
        assert!(h.score(&bad, &json!({}), &one_split(), 0).is_err());
        assert!(h.score(&good, &json!({}), &one_split(), 0).is_ok());
    }
}

#[test]
fn files_environment_and_clock_are_out_of_reach() {
    // SAFETY of the test: a variable the plugin must not see.
    let h = host(Limits::default());
    let p = h
        .load("sandbox", &hostile(artifacts::HOSTILE_SANDBOX))
        .unwrap();
    let values = h.score(&p, &json!({}), &one_split(), 0).unwrap();
    let get = |n: &str| values.iter().find(|v| v.name == n).unwrap().value;
    assert_eq!(get("files_read"), 0.0);
    assert_eq!(get("dirs_listed"), 0.0);
    assert_eq!(get("env_vars"), 0.0);
    assert_eq!(get("args"), 0.0);
    assert_eq!(get("clock_seconds"), 0.0);
}

#[test]
fn a_wrong_api_version_is_refused_before_compiling() {
    let h = host(Limits::default());
    let e = h
        .load("future.wasm", &hostile(artifacts::HOSTILE_VERSION))
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, RuntimeError::ApiVersion { .. }), "{msg}");
    assert!(
        msg.contains("future.wasm") && msg.contains("9.0.0") && msg.contains("0.1.0"),
        "{msg}"
    );
}

#[test]
fn malformed_components_are_refused() {
    let h = host(Limits::default());
    let e = h
        .load("junk.wasm", b"definitely not wasm")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("junk.wasm") && e.contains("not WebAssembly"),
        "{e}"
    );
    let core = b"\0asm\x01\0\0\0";
    let e = h.load("core.wasm", core).err().unwrap().to_string();
    assert!(e.contains("core WebAssembly module"), "{e}");
    let mut truncated = builtin("rouge").to_vec();
    truncated.truncate(truncated.len() / 2);
    let e = h.load("half.wasm", &truncated).err().unwrap().to_string();
    assert!(
        e.contains("half.wasm") && e.contains("not a valid component"),
        "{e}"
    );
}

fn tiny_training(max_steps: u32) -> (TrainingState, Vec<Sequence>) {
    tiny_training_with(max_steps, false)
}

fn tiny_training_with(max_steps: u32, reference: bool) -> (TrainingState, Vec<Sequence>) {
    let qa = [
        ("Where was Ana born?", "Ana was born in Lisbon."),
        ("Where was Bo born?", "Bo was born in Oslo."),
        ("Where was Cy born?", "Cy was born in Quito."),
    ];
    let texts: Vec<String> = qa.iter().map(|(q, a)| format!("{q} {a}")).collect();
    let tok = Tokenizer::train(texts.iter().map(String::as_str), 200).unwrap();
    let cfg = Config::tiny(tok.vocab_size());
    let params = Params::init(&cfg, 5, &Device::Cpu).unwrap();
    let model = LanguageModel::new(cfg, tok, params).unwrap();
    let seqs: Vec<Sequence> = qa
        .iter()
        .map(|(q, a)| Sequence::qa(model.tokenizer(), q, a).unwrap())
        .collect();
    let feed: Vec<FeedExample> = qa
        .iter()
        .zip(&seqs)
        .map(|((q, _), s)| FeedExample {
            question: Some((*q).to_owned()),
            sequence: s.clone(),
        })
        .collect();
    let mut feeds = BTreeMap::new();
    feeds.insert("forget".to_owned(), SplitFeed::new(feed.clone()));
    feeds.insert("retain".to_owned(), SplitFeed::new(feed));
    let mut refused = BTreeMap::new();
    refused.insert(
        "holdout".to_owned(),
        "split 'holdout' is evaluation-only".to_owned(),
    );
    let frozen = reference.then(|| model.frozen_copy().unwrap());
    let state = TrainingState::new(
        model,
        frozen,
        feeds,
        refused,
        vec!["I don't know.".into()],
        max_steps,
        3,
        OptimSettings {
            learning_rate: 1e-3,
            ..OptimSettings::default()
        },
        1,
    )
    .unwrap();
    (state, seqs)
}

fn mean_avg_nll(model: &LanguageModel, seqs: &[Sequence]) -> f64 {
    let refs: Vec<&Sequence> = seqs.iter().collect();
    let stats = model.answer_stats(&refs).unwrap();
    let avgs: Vec<f64> = stats
        .iter()
        .map(|s| -s.logprobs.iter().map(|&l| f64::from(l)).sum::<f64>() / s.logprobs.len() as f64)
        .collect();
    avgs.iter().sum::<f64>() / avgs.len() as f64
}

#[test]
fn gradient_ascent_loss_is_the_negated_host_nll_and_a_step_raises_it() {
    let h = host(Limits::default());
    let ga = h.load("ga", builtin("ga")).unwrap();
    let (state, seqs) = tiny_training(1);
    let before = mean_avg_nll(&state.model, &seqs);
    let state = h.unlearn(&ga, &json!({}), state, 0).unwrap();
    assert_eq!(state.losses.len(), 1);
    assert!(
        (state.losses[0] + before).abs() < 1e-6,
        "plugin {} vs host {}",
        state.losses[0],
        -before
    );
    let after = mean_avg_nll(&state.model, &seqs);
    assert!(after > before, "forget NLL {before} -> {after}");
}

#[test]
fn a_method_asking_for_an_evaluation_split_is_denied() {
    let h = host(Limits::default());
    let m = h.load("split", &hostile(artifacts::HOSTILE_SPLIT)).unwrap();
    let (state, _) = tiny_training(5);
    let e = h.unlearn(&m, &json!({}), state, 0).err().unwrap();
    match &e {
        RuntimeError::Plugin {
            error: PluginFailure::Denied(m),
            ..
        } => {
            assert!(m.contains("evaluation-only"), "{m}")
        }
        other => panic!("expected a denial, got {other}"),
    }
    assert!(e.to_string().contains("hostile-split@0.1.0"));
}

#[test]
fn a_method_that_never_steps_is_stopped_by_the_timeout_though_it_waits_on_the_host() {
    // Fuel is plentiful and the guest runs only between host calls: only the time without a
    // training step, host work included, stops it.
    let h = host(Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    let m = h.load("stall", &hostile(artifacts::HOSTILE_STALL)).unwrap();
    let (state, _) = tiny_training(5);
    let started = std::time::Instant::now();
    let e = h
        .unlearn(&m, &json!({}), state, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("hostile-stall@0.1.0") && e.contains("timed out") && e.contains("500ms"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_method_that_keeps_every_tensor_is_stopped_at_the_tensor_memory_limit() {
    let h = host(Limits {
        fuel: u64::MAX / 2,
        max_live_bytes: 64 << 20,
        ..Limits::default()
    });
    let m = h.load("hoard", &hostile(artifacts::HOSTILE_HOARD)).unwrap();
    let (state, _) = tiny_training(5);
    let e = h
        .unlearn(&m, &json!({}), state, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("hostile-hoard@0.1.0") && e.contains("more than 64 MiB of tensors"),
        "{e}"
    );
    // A well-behaved method runs under the same limit.
    let ga = h.load("ga", builtin("ga")).unwrap();
    let (state, _) = tiny_training(5);
    assert_eq!(
        h.unlearn(&ga, &json!({}), state, 0).unwrap().losses.len(),
        5
    );
}

#[test]
fn metric_values_that_are_not_finite_or_not_asked_for_are_the_plugins_error() {
    let h = host(Limits::default());
    let m = h
        .load("values", &hostile(artifacts::HOSTILE_VALUES))
        .unwrap();
    for (mode, needle) in [
        (
            "non-finite",
            "non-finite value (NaN) for output 'nan' on split 'forget'",
        ),
        (
            "foreign-split",
            "split 'secret-split', a split it was not given",
        ),
        (
            "foreign-example",
            "example 'no-such-id', an example it was not given",
        ),
        ("twice", "two values for output 'nan' on split 'forget'"),
    ] {
        let e = h
            .score(&m, &json!({ "mode": mode }), &one_split(), 0)
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                RuntimeError::Plugin {
                    error: PluginFailure::InvalidInput(_),
                    ..
                }
            ),
            "{mode}: {text}"
        );
        assert!(
            text.contains("hostile-values@0.1.0") && text.contains(needle),
            "{mode}: {text}"
        );
    }
}

fn idk_nll(model: &LanguageModel) -> f64 {
    let qs = [
        "Where was Ana born?",
        "Where was Bo born?",
        "Where was Cy born?",
    ];
    let seqs: Vec<Sequence> = qs
        .iter()
        .map(|q| Sequence::qa(model.tokenizer(), q, "I don't know.").unwrap())
        .collect();
    mean_avg_nll(model, &seqs)
}
