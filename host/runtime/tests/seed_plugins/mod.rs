//! The methods and metrics of the seed benchmarks (MLLMU-Med, AMNESIA): LLMU and RMU are
//! checked against their formulas (computed here from the host model's logits and hidden
//! states) and their direction; every new metric loads and scores a small bundle.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use lethe_manifest::{MetricValue, ModelRole, ObservedExample, ObservedSplit, PluginKind};
use lethe_model::train::OptimSettings;
use lethe_model::{Config, LanguageModel, Params, Sequence, Tokenizer};
use lethe_runtime::{FeedExample, Limits, SplitFeed, TrainingState};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{builtin, host, idk_nll, mean_avg_nll};

/// The seed the training states below give the host's generator.
const SEED: u64 = 1;

const QA: [(&str, &str); 3] = [
    ("Where was Ana born?", "Ana was born in Lisbon."),
    ("Where was Bo born?", "Bo was born in Oslo."),
    ("Where was Cy born?", "Cy was born in Quito."),
];

/// A training state whose frozen reference is either a copy of the model or, with
/// `distinct_reference`, another model of the same shape and tokenizer — so that terms which
/// vanish at step 0 against a copy (KL, hidden-state distance) are checked with real values.
fn training(
    max_steps: u32,
    distinct_reference: bool,
) -> (TrainingState, Vec<Sequence>, Vec<FeedExample>) {
    let texts: Vec<String> = QA.iter().map(|(q, a)| format!("{q} {a}")).collect();
    let tok = Tokenizer::train(texts.iter().map(String::as_str), 200).unwrap();
    let cfg = Config::tiny(tok.vocab_size());
    let params = Params::init(&cfg, 5, &Device::Cpu).unwrap();
    let model = LanguageModel::new(cfg.clone(), tok.clone(), params).unwrap();
    let reference = if distinct_reference {
        let other = Params::init(&cfg, 6, &Device::Cpu).unwrap();
        LanguageModel::new(cfg, tok, other)
            .unwrap()
            .frozen_copy()
            .unwrap()
    } else {
        model.frozen_copy().unwrap()
    };
    let seqs: Vec<Sequence> = QA
        .iter()
        .map(|(q, a)| Sequence::qa(model.tokenizer(), q, a).unwrap())
        .collect();
    let feed: Vec<FeedExample> = QA
        .iter()
        .zip(&seqs)
        .map(|((q, _), s)| FeedExample {
            question: Some((*q).to_owned()),
            sequence: s.clone(),
        })
        .collect();
    let mut feeds = BTreeMap::new();
    feeds.insert("forget".to_owned(), SplitFeed::new(feed.clone()));
    feeds.insert("retain".to_owned(), SplitFeed::new(feed.clone()));
    let state = TrainingState::new(
        model,
        Some(reference),
        feeds,
        BTreeMap::new(),
        vec!["I don't know.".into()],
        max_steps,
        3,
        OptimSettings {
            learning_rate: 1e-3,
            ..OptimSettings::default()
        },
        SEED,
    )
    .unwrap();
    (state, seqs, feed)
}

fn to_f64_3(t: &Tensor) -> Vec<Vec<Vec<f64>>> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .to_vec3::<f64>()
        .unwrap()
}

fn mask_of(model: &LanguageModel, seqs: &[Sequence]) -> (lethe_model::TokenBatch, Vec<Vec<bool>>) {
    let refs: Vec<&Sequence> = seqs.iter().collect();
    let batch = model.collate(&refs).unwrap();
    let mask = batch.mask_rows.clone();
    (batch, mask)
}

/// The positions whose input is an answer token (RMU's): the answer-prediction positions
/// without each row's first, which holds the last prompt token.
fn answer_token_mask(
    model: &LanguageModel,
    seqs: &[Sequence],
) -> (lethe_model::TokenBatch, Vec<Vec<bool>>) {
    let (batch, mut mask) = mask_of(model, seqs);
    for row in &mut mask {
        if let Some(first) = row.iter().position(|&on| on) {
            row[first] = false;
        }
    }
    (batch, mask)
}

fn log_softmax(row: &[f64]) -> Vec<f64> {
    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let log_z = max + row.iter().map(|z| (z - max).exp()).sum::<f64>().ln();
    row.iter().map(|z| z - log_z).collect()
}

/// `mean_t KL(p_ref ‖ p_θ)` over the answer positions, from the two models' logits.
fn retain_kl(state: &TrainingState, seqs: &[Sequence]) -> f64 {
    let (batch, mask) = mask_of(&state.model, seqs);
    let cur = to_f64_3(&state.model.forward(&batch, false).unwrap().logits);
    let reference = state.reference.as_ref().unwrap();
    let refl = to_f64_3(&reference.forward(&batch, false).unwrap().logits);
    let (mut total, mut n) = (0.0, 0usize);
    for (b, row) in mask.iter().enumerate() {
        for (t, &on) in row.iter().enumerate() {
            if on {
                let (lr, lc) = (log_softmax(&refl[b][t]), log_softmax(&cur[b][t]));
                total += lr
                    .iter()
                    .zip(&lc)
                    .map(|(r, c)| r.exp() * (r - c))
                    .sum::<f64>();
                n += 1;
            }
        }
    }
    total / n as f64
}

/// `mean_t ‖a(t) − b(t)‖²/d` over the answer positions of `mask`.
fn masked_sq_dist(
    a: &[Vec<Vec<f64>>],
    b: &dyn Fn(usize, usize, usize) -> f64,
    mask: &[Vec<bool>],
) -> f64 {
    let (mut total, mut n) = (0.0, 0usize);
    for (i, row) in mask.iter().enumerate() {
        for (t, &on) in row.iter().enumerate() {
            if on {
                let h = &a[i][t];
                total += h
                    .iter()
                    .enumerate()
                    .map(|(k, x)| (x - b(i, t, k)).powi(2))
                    .sum::<f64>()
                    / h.len() as f64;
                n += 1;
            }
        }
    }
    total / n as f64
}

/// RMU's control direction as the plugin draws it: `uniform([d])` draws u from the host's
/// generator before any batch; c = s·u/‖u‖.
fn control_direction(d: usize, s: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let u: Vec<f64> = (0..d)
        .map(|_| f64::from(rand::Rng::random::<f32>(&mut rng)))
        .collect();
    let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
    u.iter().map(|x| x / norm * s).collect()
}

/// RMU's forget term `mean_t ‖h_L(t) − c‖²/d` on the current model.
fn rmu_forget_term(model: &LanguageModel, seqs: &[Sequence], layer: usize, c: &[f64]) -> f64 {
    let (batch, mask) = answer_token_mask(model, seqs);
    let h = to_f64_3(&model.forward(&batch, true).unwrap().hidden[layer]);
    masked_sq_dist(&h, &|_, _, k| c[k], &mask)
}

/// RMU's retain term `mean_t ‖h_θ,L(t) − h_ref,L(t)‖²/d`.
fn rmu_retain_term(state: &TrainingState, seqs: &[Sequence], layer: usize) -> f64 {
    let (batch, mask) = answer_token_mask(&state.model, seqs);
    let h = to_f64_3(&state.model.forward(&batch, true).unwrap().hidden[layer]);
    let reference = state.reference.as_ref().unwrap();
    let r = to_f64_3(&reference.forward(&batch, true).unwrap().hidden[layer]);
    masked_sq_dist(&h, &|i, t, k| r[i][t][k], &mask)
}

#[test]
fn llmu_loss_is_ascent_plus_refusal_nll_plus_retain_kl() {
    let h = host(Limits::default());
    let plugin = h.load("llmu", builtin("llmu")).unwrap();
    assert!(plugin.manifest.needs_reference);
    assert_eq!(plugin.manifest.splits, ["forget", "retain", "idk"]);

    let (state, seqs, _) = training(1, true);
    let kl = retain_kl(&state, &seqs);
    assert!(
        kl > 0.01,
        "the reference must differ from the model: KL {kl}"
    );
    let want = -mean_avg_nll(&state.model, &seqs) + idk_nll(&state.model) + kl;
    let state = h.unlearn(&plugin, &json!({}), state, 0).unwrap();
    let got = state.losses[0];
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "llmu: plugin {got} vs formula {want}"
    );

    // The weights reach their terms.
    let (state, seqs, _) = training(1, true);
    let kl = retain_kl(&state, &seqs);
    let want = -0.5 * mean_avg_nll(&state.model, &seqs) + 2.0 * idk_nll(&state.model) + 0.25 * kl;
    let state = h
        .unlearn(
            &plugin,
            &json!({"gamma": 0.5, "idk": 2.0, "alpha": 0.25}),
            state,
            0,
        )
        .unwrap();
    let got = state.losses[0];
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "llmu weighted: plugin {got} vs formula {want}"
    );
}

#[test]
fn llmu_raises_the_forget_nll_and_lowers_the_refusal_nll() {
    let h = host(Limits::default());
    let plugin = h.load("llmu", builtin("llmu")).unwrap();
    // Retain holds the forget questions in this fixture, so the retain term is switched off.
    let (state, seqs, _) = training(4, false);
    let (before, idk_before) = (mean_avg_nll(&state.model, &seqs), idk_nll(&state.model));
    let state = h
        .unlearn(&plugin, &json!({"alpha": 0.0}), state, 0)
        .unwrap();
    let (after, idk_after) = (mean_avg_nll(&state.model, &seqs), idk_nll(&state.model));
    assert!(after > before, "forget NLL {before} -> {after}");
    assert!(
        idk_after < idk_before,
        "refusal NLL {idk_before} -> {idk_after}"
    );
}

#[test]
fn rmu_loss_is_the_distance_to_the_control_direction_plus_the_retain_drift() {
    let h = host(Limits::default());
    let plugin = h.load("rmu", builtin("rmu")).unwrap();
    assert!(plugin.manifest.needs_reference);
    assert_eq!(plugin.manifest.splits, ["forget", "retain"]);

    let (state, seqs, _) = training(1, true);
    // The tiny model has 2 layers: the middle one is layer 1.
    assert_eq!(state.model.config().num_hidden_layers, 2);
    let layer = 1;
    let d = state.model.config().hidden_size;
    let c = control_direction(d, 20.0);
    let forget = rmu_forget_term(&state.model, &seqs, layer, &c);
    let retain = rmu_retain_term(&state, &seqs, layer);
    // Small (two freshly initialised models have small hidden states) but far above the
    // tolerance below; the weighted case scales it up.
    assert!(
        retain > 1e-4,
        "the reference must differ from the model: {retain}"
    );
    let want = forget + retain;
    let state = h.unlearn(&plugin, &json!({}), state, 0).unwrap();
    let got = state.losses[0];
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "rmu: plugin {got} vs formula {want} (forget {forget}, retain {retain})"
    );

    // Another layer, coefficient and weights; α as large as the WMDP paper's so that the
    // retain term weighs as much as the forget term.
    let (state, seqs, _) = training(1, true);
    let c = control_direction(d, 5.0);
    let (forget, retain) = (
        rmu_forget_term(&state.model, &seqs, 0, &c),
        rmu_retain_term(&state, &seqs, 0),
    );
    let want = 0.5 * forget + 1000.0 * retain;
    assert!(
        1000.0 * retain > 0.1 * want,
        "forget {forget}, retain {retain}"
    );
    let config = json!({"layer": 0, "steering_coeff": 5.0, "gamma": 0.5, "alpha": 1000.0});
    let state = h.unlearn(&plugin, &config, state, 0).unwrap();
    let got = state.losses[0];
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "rmu layer 0: plugin {got} vs formula {want}"
    );

    // A layer the model does not have is the plugin's config error, named.
    let (state, _, _) = training(1, true);
    let e = h
        .unlearn(&plugin, &json!({"layer": 2}), state, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("rmu@") && e.contains("layer 2"), "{e}");
}

#[test]
fn rmu_steers_forget_states_to_the_control_direction_and_trains_only_down_projections() {
    let h = host(Limits::default());
    let plugin = h.load("rmu", builtin("rmu")).unwrap();
    let (state, seqs, _) = training(4, false);
    let c = control_direction(state.model.config().hidden_size, 20.0);
    let before = rmu_forget_term(&state.model, &seqs, 1, &c);
    let params_before = state.model.params().frozen_copy().unwrap();
    let state = h
        .unlearn(&plugin, &json!({"alpha": 0.0}), state, 0)
        .unwrap();
    assert_eq!(state.losses.len(), 4);
    let after = rmu_forget_term(&state.model, &seqs, 1, &c);
    assert!(after < before, "forget distance to c {before} -> {after}");

    // Layers L-2..L = 0..1 of the 2-layer model: exactly their MLP down-projections moved.
    let params_after = state.model.params().tensors();
    let mut moved = Vec::new();
    for (name, old) in &params_before {
        let new = &params_after[name];
        let diff = (old - new)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        if diff > 0.0 {
            moved.push(name.as_str());
        }
    }
    assert_eq!(
        moved,
        [
            "model.layers.0.mlp.down_proj.weight",
            "model.layers.1.mlp.down_proj.weight"
        ]
    );
}

fn example(id: &str, answer: &str, generated: &str) -> ObservedExample {
    ObservedExample {
        id: id.into(),
        question: format!("What about {id}?"),
        answer: answer.into(),
        generated: Some(generated.into()),
        ..Default::default()
    }
}

fn split(model: ModelRole, name: &str, examples: Vec<ObservedExample>) -> ObservedSplit {
    ObservedSplit {
        model,
        split: name.into(),
        examples,
    }
}

fn value(values: &[MetricValue], name: &str, split: &str, example: Option<&str>) -> f64 {
    values
        .iter()
        .find(|v| v.name == name && v.split == split && v.example.as_deref() == example)
        .unwrap_or_else(|| panic!("no {name} on {split} for {example:?} in {values:?}"))
        .value
}

/// A bundle in the shape of the seed benchmarks: forget, retain (tagged same-disease or
/// other-disease) and test splits, for the subject and the target model.
fn bundle() -> Vec<ObservedSplit> {
    let answer = "Metformin lowers her blood sugar";
    let mut closed = example("q1", "Yes", "Yes");
    closed.options = vec!["Yes".into(), "No".into()];
    closed.correct_option = Some(1);
    closed.option_logprobs = Some(vec![vec![-0.2], vec![-1.0, -0.1]]);
    let mut f1 = example("f1", answer, "She takes metformin metformin metformin");
    f1.terms = vec!["metformin".into(), "HbA1c".into()];
    let tagged = |id: &str, relation: &str, generated: &str| {
        let mut e = example(id, answer, generated);
        e.groups.insert("relation".to_owned(), relation.to_owned());
        e
    };
    let subject = vec![
        split(ModelRole::Subject, "forget", vec![f1]),
        split(
            ModelRole::Subject,
            "retain",
            vec![
                tagged("s1", "same-disease", "Metformin lowers"),
                tagged("o1", "other-disease", answer),
            ],
        ),
        split(ModelRole::Subject, "test", vec![closed]),
    ];
    let mut all = subject.clone();
    for s in subject {
        let examples = s
            .examples
            .iter()
            .map(|e| ObservedExample {
                generated: Some(e.answer.clone()),
                ..e.clone()
            })
            .collect();
        all.push(split(ModelRole::Target, &s.split, examples));
    }
    all
}

#[test]
fn seed_benchmark_metrics_load_and_score_a_bundle() {
    let h = host(Limits::default());
    let observed = bundle();
    let score = |name: &str, config: serde_json::Value| {
        let p = h.load(name, builtin(name)).unwrap();
        assert_eq!(p.manifest.kind, PluginKind::Metric, "{name}");
        h.score(&p, &config, &observed, 0).unwrap()
    };

    // Option 0 has the higher mean log-prob (-0.2 against -0.55) though option 1 has the
    // likelier last token; the correct option is 1.
    let v = score("accuracy", json!({}));
    assert_eq!(value(&v, "accuracy", "test", Some("q1")), 0.0);
    assert_eq!(value(&v, "accuracy", "test", None), 0.0);

    // Subject: forget ROUGE-1 F1 of "she takes metformin metformin metformin" against the
    // 5-word answer is 2·(1/5)(1/5)/(2/5) = 0.2; retain (2/5 and 1) averages F1 ≈ 0.786; test 1.
    // Target: 1 everywhere. UES = 0.786 + 1 − 0.2 − (1 − 0.786).
    let v = score("ues", json!({}));
    let retain = (2.0 * (2.0 / 2.0) * (2.0 / 5.0) / (1.0 + 2.0 / 5.0) + 1.0) / 2.0;
    let want = retain + 1.0 - 0.2 - (1.0 - retain);
    assert!((value(&v, "ues", "forget", None) - want).abs() < 1e-9);
    assert!((value(&v, "ues_penalty", "forget", None) - (1.0 - retain)).abs() < 1e-9);

    let v = score("leakage", json!({}));
    assert_eq!(value(&v, "leakage_per_question", "forget", Some("f1")), 0.5);
    // f1 has no patient or disease key, so it is a group of its own: the pooled value is its.
    assert_eq!(value(&v, "leakage", "forget", None), 0.5);
    // she takes metformin metformin metformin: "she" and "takes" are not in the bundle's
    // vocabulary, the last "metformin" repeats the pair (metformin, metformin).
    assert!((value(&v, "degradation", "forget", Some("f1")) - 3.0 / 5.0).abs() < 1e-12);
    assert!((value(&v, "repetition", "forget", Some("f1")) - 1.0 / 5.0).abs() < 1e-12);

    let v = score("forget-efficacy", json!({}));
    // ROUGE-L recall 1/5 on forget, (2/5 + 1)/2 on retain.
    assert!((value(&v, "forget_efficacy_rougeL", "forget", None) - 0.8).abs() < 1e-12);
    assert!((value(&v, "utility_rougeL", "retain", None) - 0.7).abs() < 1e-12);
    let v = score(
        "forget-efficacy",
        json!({"utility_splits": ["retain", "test"]}),
    );
    assert_eq!(value(&v, "utility_rougeL", "test", None), 1.0);

    let v = score("collateral-erosion", json!({}));
    assert!((value(&v, "erosion_same", "retain", None) - 0.6).abs() < 1e-12);
    assert_eq!(value(&v, "erosion_other", "retain", None), 0.0);
    assert!((value(&v, "collateral_erosion", "retain", None) - 0.6).abs() < 1e-12);
    assert!((value(&v, "erosion", "retain", Some("s1")) - 0.6).abs() < 1e-12);
}

#[test]
fn seed_benchmark_plugins_validate_their_config() {
    let h = host(Limits::default());
    let cases: [(&str, serde_json::Value, serde_json::Value, &str); 7] = [
        ("llmu", json!({"idk": 0.5}), json!({"idk": -1}), "/idk"),
        (
            "rmu",
            json!({"layer": 3, "steering_coeff": 6.5}),
            json!({"steering_coeff": "high"}),
            "/steering_coeff",
        ),
        (
            "accuracy",
            json!({"mode": "generated"}),
            json!({"mode": "sampled"}),
            "/mode",
        ),
        (
            "ues",
            json!({"test_split": "holdout", "rouge": "recall"}),
            json!({"rouge": "rougeL"}),
            "/rouge",
        ),
        (
            "leakage",
            json!({}),
            json!({"vocabulary": "medical"}),
            "vocabulary",
        ),
        (
            "forget-efficacy",
            json!({"forget_splits": ["forget", "rephrased"]}),
            json!({"forget_splits": "forget"}),
            "/forget_splits",
        ),
        (
            "collateral-erosion",
            json!({"group_key": "link", "same_value": "same"}),
            json!({"group": "link"}),
            "group",
        ),
    ];
    for (name, good, bad, path) in cases {
        let p = h.load(name, builtin(name)).unwrap();
        h.validate_config(&p, &json!({})).unwrap();
        h.validate_config(&p, &good).unwrap();
        let e = h.validate_config(&p, &bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{name}@")) && e.contains(path),
            "{name}: {e}"
        );
    }
}
