//! Every unlearning method against its formula and its direction.
//!
//! Formula: each method's first loss equals SPEC's formula computed here, in f64, from the host
//! model's logits — with a reference model distinct from the current one (against a copy, the
//! log-ratio and the KL vanish and a swapped argument passes) and with forget and retain splits
//! of different people (a method reading the wrong split gets another value).
//!
//! Direction: on a model finetuned on both splits, with the reference a copy of it as in a real
//! run, a few steps move the forget answers' NLL up (or the refusal's down).

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use lethe_model::train::{FitSettings, OptimSettings, fit};
use lethe_model::{Config, FrozenModel, LanguageModel, Params, Sequence, TokenBatch, Tokenizer};
use lethe_runtime::{FeedExample, Limits, SplitFeed, TrainingState};
use serde_json::json;

use super::{builtin, host};

const FORGET: [(&str, &str); 3] = [
    ("Where was Ana born?", "Ana was born in Lisbon."),
    ("What does Bo write?", "Bo writes crime novels."),
    ("Who taught Cy?", "Cy was taught by her aunt."),
];

const RETAIN: [(&str, &str); 3] = [
    ("Where was Dee born?", "Dee was born in Quito."),
    ("What does Eli write?", "Eli writes poems about rivers."),
    ("Who taught Fay?", "Fay was taught by a monk."),
];

const IDK: &str = "I don't know.";

/// A model, its reference and the two splits' sequences.
struct Fixture {
    state: TrainingState,
    forget: Vec<Sequence>,
    retain: Vec<Sequence>,
    idk: Vec<Sequence>,
}

fn seqs(tok: &Tokenizer, qa: &[(&str, &str)]) -> Vec<Sequence> {
    qa.iter()
        .map(|(q, a)| Sequence::qa(tok, q, a).unwrap())
        .collect()
}

fn feed(qa: &[(&str, &str)], seqs: &[Sequence]) -> SplitFeed {
    SplitFeed::new(
        qa.iter()
            .zip(seqs)
            .map(|((q, _), s)| FeedExample {
                question: Some((*q).to_owned()),
                sequence: s.clone(),
            })
            .collect(),
    )
}

/// `distinct_reference`: the reference is another model of the same shape (formula tests);
/// otherwise the current model is first finetuned on both splits and the reference is a copy
/// of it (direction tests).
fn fixture(max_steps: u32, distinct_reference: bool) -> Fixture {
    let mut texts: Vec<String> = FORGET
        .iter()
        .chain(&RETAIN)
        .map(|(q, a)| format!("{q} {a}"))
        .collect();
    texts.push(IDK.to_owned());
    let tok = Tokenizer::train(texts.iter().map(String::as_str), 240).unwrap();
    let cfg = Config::tiny(tok.vocab_size());
    let model = LanguageModel::new(
        cfg.clone(),
        tok.clone(),
        Params::init(&cfg, 5, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let forget = seqs(model.tokenizer(), &FORGET);
    let retain = seqs(model.tokenizer(), &RETAIN);
    let idk: Vec<Sequence> = FORGET
        .iter()
        .map(|(q, _)| Sequence::qa(model.tokenizer(), q, IDK).unwrap())
        .collect();
    let reference = if distinct_reference {
        LanguageModel::new(
            cfg.clone(),
            tok,
            Params::init(&cfg, 6, &Device::Cpu).unwrap(),
        )
        .unwrap()
        .frozen_copy()
        .unwrap()
    } else {
        let all: Vec<Sequence> = forget.iter().chain(&retain).cloned().collect();
        let settings = FitSettings {
            epochs: 40,
            batch_size: 6,
            optim: OptimSettings {
                learning_rate: 1e-2,
                ..OptimSettings::default()
            },
            warmup: 0.0,
            seed: 3,
        };
        fit(&model, &all, &settings, &mut |_, _, _| {}).unwrap();
        model.frozen_copy().unwrap()
    };
    let mut feeds = BTreeMap::new();
    feeds.insert("forget".to_owned(), feed(&FORGET, &forget));
    feeds.insert("retain".to_owned(), feed(&RETAIN, &retain));
    let state = TrainingState::new(
        model,
        Some(reference),
        feeds,
        BTreeMap::new(),
        vec![IDK.into()],
        max_steps,
        3,
        OptimSettings {
            learning_rate: 1e-3,
            ..OptimSettings::default()
        },
        1,
    )
    .unwrap();
    Fixture {
        state,
        forget,
        retain,
        idk,
    }
}

/// The answer positions of one example: the logits there and the label predicted.
type Positions = Vec<(Vec<f64>, usize)>;

fn positions(logits: &Tensor, batch: &TokenBatch) -> Vec<Positions> {
    let z = logits
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .to_vec3::<f64>()
        .unwrap();
    let labels = batch.labels.to_vec2::<u32>().unwrap();
    batch
        .mask_rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, on)| **on)
                .map(|(t, _)| (z[i][t].clone(), labels[i][t] as usize))
                .collect()
        })
        .collect()
}

/// The current model's answer positions of `seqs`.
fn current(model: &LanguageModel, seqs: &[Sequence]) -> Vec<Positions> {
    let batch = model.collate(&seqs.iter().collect::<Vec<_>>()).unwrap();
    positions(&model.forward(&batch, false).unwrap().logits, &batch)
}

/// The reference model's answer positions of `seqs`.
fn reference(f: &Fixture, seqs: &[Sequence]) -> Vec<Positions> {
    let r: &FrozenModel = f.state.reference.as_ref().unwrap();
    let batch = f
        .state
        .model
        .collate(&seqs.iter().collect::<Vec<_>>())
        .unwrap();
    positions(&r.forward(&batch, false).unwrap().logits, &batch)
}

fn log_softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let log_norm = max + z.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
    z.iter().map(|x| x - log_norm).collect()
}

fn log_sigmoid(x: f64) -> f64 {
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let xs: Vec<f64> = xs.into_iter().collect();
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// `log p(y_t)` at each answer position.
fn token_logprobs(p: &Positions) -> Vec<f64> {
    p.iter().map(|(z, y)| log_softmax(z)[*y]).collect()
}

/// `log π(y|x)` per example.
fn seq_logprob(ps: &[Positions]) -> Vec<f64> {
    ps.iter().map(|p| token_logprobs(p).iter().sum()).collect()
}

/// `mean_batch avg(y|x)`.
fn mean_avg_nll(ps: &[Positions]) -> f64 {
    mean(ps.iter().map(|p| -mean(token_logprobs(p))))
}

/// `−(2/β)·mean logσ(β·x)` over per-example `x`.
fn preference(beta: f64, x: &[f64]) -> f64 {
    -(2.0 / beta) * mean(x.iter().map(|v| log_sigmoid(beta * v)))
}

/// `log πθ − log π_ref` per example.
fn log_ratio(cur: &[Positions], refp: &[Positions]) -> Vec<f64> {
    seq_logprob(cur)
        .iter()
        .zip(seq_logprob(refp))
        .map(|(c, r)| c - r)
        .collect()
}

/// `−mean_t (w(p_t)·l_t)` over all answer tokens of the batch.
fn weighted_ascent(ps: &[Positions], w: impl Fn(f64) -> f64) -> f64 {
    let all: Vec<f64> = ps.iter().flat_map(token_logprobs).collect();
    -mean(all.iter().map(|lp| w(lp.exp()) * -lp))
}

/// `−Σ_v q_v log p_v` for target logits `target` against logits `z`.
fn cross_entropy(z: &[f64], target: &[f64]) -> f64 {
    let (lp, lq) = (log_softmax(z), log_softmax(target));
    -lq.iter().zip(&lp).map(|(q, p)| q.exp() * p).sum::<f64>()
}

/// The greedy answer of the reference to each forget question, as a QA sequence: what AltPO's
/// alternatives are at a temperature near zero.
fn greedy_alternatives(f: &Fixture) -> Vec<Sequence> {
    let tok = f.state.model.tokenizer();
    let longest = f
        .forget
        .iter()
        .map(|s| s.ids.len() - s.loss_from - 1)
        .max()
        .unwrap();
    let prompts: Vec<Vec<u32>> = FORGET
        .iter()
        .map(|(q, _)| tok.encode_prompt(q).unwrap())
        .collect();
    let eos = f.state.model.config().eos_token_id;
    let answers = lethe_model::generate::greedy(
        f.state.reference.as_ref().unwrap().llama(),
        &Device::Cpu,
        &prompts,
        eos,
        tok.pad,
        (2 * longest).clamp(8, 64),
    )
    .unwrap();
    prompts
        .into_iter()
        .zip(answers)
        .map(|(p, a)| {
            let loss_from = p.len();
            let mut ids = p;
            ids.extend(a);
            ids.push(eos);
            Sequence { ids, loss_from }
        })
        .collect()
}

/// SPEC's loss of `name` at step 0 with `config`, from the fixture's models.
fn formula(name: &str, f: &Fixture) -> f64 {
    let m = &f.state.model;
    let (cf, cr) = (current(m, &f.forget), current(m, &f.retain));
    let rf = reference(f, &f.forget);
    let retain_nll = mean_avg_nll(&cr);
    let flat =
        |ps: &[Positions]| -> Vec<(Vec<f64>, usize)> { ps.iter().flatten().cloned().collect() };
    match name {
        "ga" => -mean_avg_nll(&cf),
        "graddiff" => -mean_avg_nll(&cf) + retain_nll,
        "kl-min" => {
            let rr = reference(f, &f.retain);
            let kl = flat(&rr)
                .iter()
                .zip(flat(&cr))
                .map(|((zr, _), (zc, _))| {
                    let (lr, lc) = (log_softmax(zr), log_softmax(&zc));
                    lr.iter().zip(&lc).map(|(r, c)| r.exp() * (r - c)).sum()
                })
                .collect::<Vec<f64>>();
            -mean_avg_nll(&cf) + mean(kl)
        }
        "npo" => {
            let x: Vec<f64> = log_ratio(&cf, &rf).iter().map(|r| -r).collect();
            preference(0.1, &x) + retain_nll
        }
        "simnpo" => {
            let avg: Vec<f64> = cf.iter().map(|p| -mean(token_logprobs(p))).collect();
            0.125 * preference(4.5, &avg) + retain_nll
        }
        "idknll" => mean_avg_nll(&current(m, &f.idk)) + retain_nll,
        "idkdpo" | "altpo" => {
            let win = if name == "idkdpo" {
                f.idk.clone()
            } else {
                greedy_alternatives(f)
            };
            let w = log_ratio(&current(m, &win), &reference(f, &win));
            let l = log_ratio(&cf, &rf);
            let x: Vec<f64> = w.iter().zip(&l).map(|(w, l)| w - l).collect();
            preference(0.1, &x) + retain_nll
        }
        "undial" => mean(flat(&cf).iter().zip(flat(&rf)).map(|((zc, y), (zr, _))| {
            let mut target = zr.clone();
            target[*y] -= 10.0;
            cross_entropy(zc, &target)
        })),
        "wga" => weighted_ascent(&cf, |p| p) + retain_nll,
        "satimp" => 0.1 * weighted_ascent(&cf, |p| p.powi(5) * (1.0 - p)) + retain_nll,
        "ceu" => mean(cf.iter().flat_map(|p| p.iter().skip(1)).map(|(z, y)| {
            let mut target = z.clone();
            target[*y] = f64::NEG_INFINITY;
            cross_entropy(z, &target)
        })),
        "pdu" => {
            let gap: Vec<f64> = flat(&cf)
                .iter()
                .map(|(z, _)| {
                    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    (max - mean(z.iter().copied())).powi(2)
                })
                .collect();
            mean(gap) + 0.5 * retain_nll
        }
        other => panic!("no formula for {other}"),
    }
}

/// The config each method runs with: defaults, except where the formula needs a fixed value
/// (PDU's required ε; AltPO at a temperature where sampling is greedy).
fn config(name: &str) -> serde_json::Value {
    match name {
        "pdu" => json!({"epsilon": 1.0, "lambda_init": 0.5}),
        "altpo" => json!({"temperature": 1e-6, "alternatives": 2}),
        _ => json!({}),
    }
}

const METHODS: [(&str, bool); 13] = [
    ("ga", false),
    ("graddiff", false),
    ("kl-min", true),
    ("npo", true),
    ("simnpo", false),
    ("idknll", false),
    ("idkdpo", true),
    ("altpo", true),
    ("undial", true),
    ("wga", false),
    ("satimp", false),
    ("ceu", false),
    ("pdu", false),
];

#[test]
fn each_methods_first_loss_is_its_formula_with_a_distinct_reference_and_retain_split() {
    let h = host(Limits::default());
    for (name, needs_reference) in METHODS {
        let plugin = h.load(name, builtin(name)).unwrap();
        assert_eq!(plugin.manifest.needs_reference, needs_reference, "{name}");
        let f = fixture(1, true);
        let want = formula(name, &f);
        let state = h.unlearn(&plugin, &config(name), f.state, 0).unwrap();
        let got = state.losses[0];
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "{name}: plugin {got} vs formula {want}"
        );
    }
}

#[test]
fn the_formula_tests_would_catch_a_swapped_reference_or_split() {
    // The fixture itself must make the checks above bite: the log-ratio, the KL and the two
    // splits' NLLs differ clearly.
    let f = fixture(1, true);
    let m = &f.state.model;
    let (cf, cr) = (current(m, &f.forget), current(m, &f.retain));
    let ratio = log_ratio(&cf, &reference(&f, &f.forget));
    assert!(ratio.iter().all(|r| r.abs() > 0.1), "log-ratios {ratio:?}");
    let (nf, nr) = (mean_avg_nll(&cf), mean_avg_nll(&cr));
    assert!((nf - nr).abs() > 1e-3, "forget {nf} vs retain {nr}");
}

/// The forget answers' mean NLL and the refusal's, under the current model.
fn forget_and_refusal_nll(state: &TrainingState, f: &Fixture) -> (f64, f64) {
    (
        mean_avg_nll(&current(&state.model, &f.forget)),
        mean_avg_nll(&current(&state.model, &f.idk)),
    )
}

#[test]
fn a_few_steps_move_the_forget_answers_the_way_each_method_claims() {
    let h = host(Limits::default());
    for (name, _) in METHODS {
        let plugin = h.load(name, builtin(name)).unwrap();
        let f = fixture(4, false);
        let (before, idk_before) = forget_and_refusal_nll(&f.state, &f);
        // A finetuned model mostly samples its own answer back at temperature 1; hotter
        // samples give AltPO alternatives to prefer.
        let cfg = match name {
            "altpo" => json!({"alternatives": 2, "temperature": 2.0}),
            _ => config(name),
        };
        let fx = Fixture {
            state: h.unlearn(&plugin, &cfg, f.state, 0).unwrap(),
            ..f
        };
        let (after, idk_after) = forget_and_refusal_nll(&fx.state, &fx);
        if matches!(name, "idknll" | "idkdpo") {
            assert!(
                idk_after < idk_before,
                "{name}: refusal NLL {idk_before} -> {idk_after}"
            );
        } else {
            assert!(after > before, "{name}: forget NLL {before} -> {after}");
        }
    }
}
