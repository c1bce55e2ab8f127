//! Tests across the model's parts: gradients reach every parameter, generation agrees with
//! teacher forcing, training learns, and logits match PyTorch on the shared fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{D, Device, Tensor};

use crate::llama::{Llama, Logits, causal_mask, sequential_positions};
use crate::train::{FitSettings, OptimSettings, fit};
use crate::{Config, LanguageModel, Params, Sequence, Tokenizer};

fn corpus() -> Vec<String> {
    let names = ["Ana", "Bo", "Cy", "Di", "Ed", "Flo"];
    let cities = ["Lisbon", "Oslo", "Quito", "Hanoi", "Lima", "Riga"];
    names
        .iter()
        .zip(cities)
        .map(|(n, c)| format!("Question: Where was {n} born?\nAnswer: {n} was born in {c}."))
        .collect()
}

fn tiny_model(seed: u64) -> LanguageModel {
    let texts = corpus();
    let tok = Tokenizer::train(texts.iter().map(String::as_str), 200).unwrap();
    let cfg = Config::tiny(tok.vocab_size());
    let params = Params::init(&cfg, seed, &Device::Cpu).unwrap();
    LanguageModel::new(cfg, tok, params).unwrap()
}

fn qa(model: &LanguageModel, i: usize) -> Sequence {
    let names = ["Ana", "Bo", "Cy", "Di", "Ed", "Flo"];
    let cities = ["Lisbon", "Oslo", "Quito", "Hanoi", "Lima", "Riga"];
    Sequence::qa(
        model.tokenizer(),
        &format!("Where was {} born?", names[i]),
        &format!("{} was born in {}.", names[i], cities[i]),
    )
    .unwrap()
}

#[test]
fn every_parameter_gets_a_gradient_that_matches_finite_differences() {
    let model = tiny_model(1);
    let seqs: Vec<Sequence> = (0..3).map(|i| qa(&model, i)).collect();
    let refs: Vec<&Sequence> = seqs.iter().collect();
    let batch = model.collate(&refs).unwrap();
    let loss = model.lm_loss(&batch).unwrap();
    let grads = loss.backward().unwrap();
    let mut checked = 0;
    for (name, var) in model.params().vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} got no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "{name} has a zero gradient");
        checked += 1;
    }
    assert_eq!(checked, model.params().vars().count());

    // Central finite difference on one element of a deep weight.
    let name = "model.layers.0.self_attn.q_proj.weight";
    let var = model
        .params()
        .vars()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
        .clone();
    let analytic = grads
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[5];
    let original = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let eps = 1e-2f32;
    let eval = |delta: f32| {
        let mut w = original.clone();
        w[5] += delta;
        var.set(&Tensor::from_vec(w, var.as_tensor().shape(), &Device::Cpu).unwrap())
            .unwrap();
        f64::from(model.lm_loss(&batch).unwrap().to_scalar::<f32>().unwrap())
    };
    let numeric = (eval(eps) - eval(-eps)) / (2.0 * f64::from(eps));
    eval(0.0);
    let err = (numeric - f64::from(analytic)).abs();
    assert!(
        err < 1e-3 + 0.05 * numeric.abs(),
        "analytic {analytic} vs numeric {numeric}"
    );
}

#[test]
fn training_memorises_and_greedy_generation_agrees_with_teacher_forcing() {
    let model = tiny_model(2);
    let data: Vec<Sequence> = (0..6).map(|i| qa(&model, i)).collect();
    let settings = FitSettings {
        epochs: 60,
        batch_size: 6,
        optim: OptimSettings {
            learning_rate: 1e-2,
            ..OptimSettings::default()
        },
        warmup: 0.05,
        seed: 3,
    };
    let losses = fit(&model, &data, &settings, &mut |_, _, _| {}).unwrap();
    let first = losses[0];
    let last = *losses.last().unwrap();
    assert!(last < first * 0.2, "loss {first} -> {last}");

    // Left-padded batched greedy answers equal one-by-one answers.
    let tok = model.tokenizer();
    let prompts: Vec<Vec<u32>> = ["Where was Ana born?", "Where was Flo born?", "Who?"]
        .iter()
        .map(|q| tok.encode_prompt(q).unwrap())
        .collect();
    let batched = model.generate_greedy(&prompts, 40).unwrap();
    for (p, b) in prompts.iter().zip(&batched) {
        let single = model.generate_greedy(std::slice::from_ref(p), 40).unwrap();
        assert_eq!(&single[0], b);
    }
    let answer = tok.decode(&batched[0]).unwrap();
    assert_eq!(answer.trim(), "Ana was born in Lisbon.");

    // The KV-cached greedy tokens are the argmax of a full recompute.
    let mut ids = prompts[1].clone();
    ids.extend(&batched[1]);
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let t = ids.len();
    let out = model
        .llama()
        .forward(
            &input,
            &sequential_positions(1, t, &Device::Cpu).unwrap(),
            &causal_mask(t, &Device::Cpu).unwrap(),
            None,
            Logits::All,
            false,
        )
        .unwrap();
    let argmax = out
        .logits
        .argmax(D::Minus1)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    let p = prompts[1].len();
    assert_eq!(&argmax[0][p - 1..t - 1], batched[1].as_slice());

    // Teacher-forced statistics agree with the greedy answer.
    let stats = model.answer_stats(&[&data[0]]).unwrap();
    assert!(stats[0].argmax_match.iter().all(|&m| m));
    assert!(stats[0].logprobs.iter().all(|&l| l <= 0.0));
}

#[test]
fn checkpoints_round_trip_in_hugging_face_layout() {
    let model = tiny_model(4);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let back = LanguageModel::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(back.config(), model.config());
    let seq = qa(&model, 0);
    let a = model.answer_stats(&[&seq]).unwrap();
    let b = back.answer_stats(&[&seq]).unwrap();
    assert_eq!(a, b);
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/reference")
        .join(name)
}

fn load_fixture(name: &str) -> (Llama, serde_json::Value) {
    let dir = fixture(name);
    let cfg =
        Config::from_hf_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let params = Params::load(&dir, &Device::Cpu).unwrap();
    let tensors: BTreeMap<String, Tensor> = params.tensors();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    (Llama::new(&cfg, &tensors).unwrap(), reference)
}

fn max_abs_diff(a: &[Vec<Vec<f32>>], b: &serde_json::Value) -> f32 {
    let mut worst = 0f32;
    for (i, row) in a.iter().enumerate() {
        for (j, pos) in row.iter().enumerate() {
            for (k, v) in pos.iter().enumerate() {
                let r = b[i][j][k].as_f64().unwrap() as f32;
                worst = worst.max((v - r).abs());
            }
        }
    }
    worst
}

#[test]
fn logits_match_pytorch_on_the_fixtures() {
    for name in ["tiny-llama", "llama-gqa-pnorm", "qwen2-tied-bias"] {
        let (llama, reference) = load_fixture(name);
        let ids: Vec<Vec<u32>> = serde_json::from_value(reference["input_ids"].clone()).unwrap();
        let (b, t) = (ids.len(), ids[0].len());
        let flat: Vec<u32> = ids.concat();
        let input = Tensor::from_vec(flat, (b, t), &Device::Cpu).unwrap();
        let out = llama
            .forward(
                &input,
                &sequential_positions(b, t, &Device::Cpu).unwrap(),
                &causal_mask(t, &Device::Cpu).unwrap(),
                None,
                Logits::All,
                false,
            )
            .unwrap();
        let logits = out.logits.to_vec3::<f32>().unwrap();
        let diff = max_abs_diff(&logits, &reference["logits"]);
        println!("{name}: max abs logit difference {diff:e}");
        assert!(diff < 1e-5, "{name}: max abs logit difference {diff}");
    }
}

fn ids2(v: &serde_json::Value) -> Vec<Vec<u32>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn forward_all(llama: &Llama, ids: &[Vec<u32>]) -> Tensor {
    let (b, t) = (ids.len(), ids[0].len());
    let input = Tensor::from_vec(ids.concat(), (b, t), &Device::Cpu).unwrap();
    llama
        .forward(
            &input,
            &sequential_positions(b, t, &Device::Cpu).unwrap(),
            &causal_mask(t, &Device::Cpu).unwrap(),
            None,
            Logits::All,
            false,
        )
        .unwrap()
        .logits
}

#[test]
fn next_token_logprobs_and_loss_match_pytorch() {
    for (name, loss_key) in [
        ("tiny-llama", "loss_hf_labels_eq_input_ids"),
        ("llama-gqa-pnorm", "loss_labels_eq_input_ids"),
        ("qwen2-tied-bias", "loss_labels_eq_input_ids"),
    ] {
        let (llama, reference) = load_fixture(name);
        let ids = ids2(&reference["input_ids"]);
        let t = ids[0].len();
        let logits = forward_all(&llama, &ids).narrow(1, 0, t - 1).unwrap();
        let labels: Vec<Vec<u32>> = ids.iter().map(|r| r[1..].to_vec()).collect();
        let labels = Tensor::from_vec(labels.concat(), (ids.len(), t - 1), &Device::Cpu).unwrap();
        let lp = crate::llama::label_logprobs(&logits, &labels)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let want = ids2_f32(&reference["next_token_logprobs"]);
        let mut worst = 0f32;
        for (a, b) in lp.iter().flatten().zip(want.iter().flatten()) {
            worst = worst.max((a - b).abs());
        }
        println!("{name}: next-token log-prob max abs diff {worst:e}");
        assert!(
            worst < 1e-5,
            "{name}: next-token log-prob max abs diff {worst}"
        );
        // The path the training loss takes (projection and log-softmax in one op, over the
        // first t − 1 tokens) gives the same numbers.
        let b = ids.len();
        let input: Vec<u32> = ids.iter().flat_map(|r| r[..t - 1].to_vec()).collect();
        let input = Tensor::from_vec(input, (b, t - 1), &Device::Cpu).unwrap();
        let fused = llama
            .label_logprobs(
                &input,
                &sequential_positions(b, t - 1, &Device::Cpu).unwrap(),
                &causal_mask(t - 1, &Device::Cpu).unwrap(),
                &labels,
            )
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (got, exp) in fused.iter().flatten().zip(want.iter().flatten()) {
            assert!(
                (got - exp).abs() < 1e-5,
                "{name}: fused log-prob {got} vs {exp}"
            );
        }
        let n = lp.iter().flatten().count() as f64;
        let loss = -lp.iter().flatten().map(|&x| f64::from(x)).sum::<f64>() / n;
        let want_loss = reference[loss_key].as_f64().unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-5,
            "{name}: loss {loss} vs {want_loss}"
        );
    }
}

fn ids2_f32(v: &serde_json::Value) -> Vec<Vec<f32>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn greedy_generation_matches_pytorch_token_for_token() {
    let no_eos = u32::MAX;
    let (llama, reference) = load_fixture("tiny-llama");
    let prompts = ids2(&reference["input_ids"]);
    let got = crate::generate::greedy(&llama, &Device::Cpu, &prompts, no_eos, 0, 8).unwrap();
    assert_eq!(
        got,
        ids2(&reference["greedy_generate_8_new_tokens"]),
        "tiny-llama"
    );
    for name in ["llama-gqa-pnorm", "qwen2-tied-bias"] {
        let (llama, reference) = load_fixture(name);
        let prompts: Vec<Vec<u32>> = ids2(&reference["input_ids"])
            .iter()
            .map(|r| r[..8].to_vec())
            .collect();
        let got = crate::generate::greedy(&llama, &Device::Cpu, &prompts, no_eos, 0, 8).unwrap();
        assert_eq!(got, ids2(&reference["greedy_8_new_from_first_8"]), "{name}");
        // Left padding: the batch generator pads the shorter prompt itself.
        let lp = &reference["left_padded"];
        let masks = ids2(&lp["attention_mask"]);
        let prompts: Vec<Vec<u32>> = ids2(&lp["input_ids"])
            .iter()
            .zip(&masks)
            .map(|(r, m)| {
                r.iter()
                    .zip(m)
                    .filter(|(_, m)| **m == 1)
                    .map(|(t, _)| *t)
                    .collect()
            })
            .collect();
        let got = crate::generate::greedy(&llama, &Device::Cpu, &prompts, no_eos, 0, 8).unwrap();
        assert_eq!(got, ids2(&lp["greedy_8_new"]), "{name} left-padded");
    }
}

#[test]
fn quantization_changes_logits_by_a_measured_amount_and_4_bit_more_than_8_bit() {
    use crate::quant::{Quantization, quantized};
    let dir = fixture("tiny-llama");
    let cfg =
        Config::from_hf_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let params = Params::load(&dir, &Device::Cpu).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let ids = ids2(&reference["input_ids"]);
    let base = forward_all(&Llama::new(&cfg, &params.tensors()).unwrap(), &ids);
    let mut errors = Vec::new();
    for q in [
        Quantization::Int8PerChannel,
        Quantization::Int4Group { group: 64 },
        Quantization::Nf4Group { group: 64 },
        Quantization::Int4AsymGroup {
            group: crate::quant::INT4_ASYM_GROUP,
        },
    ] {
        let qp = quantized(&params, q, crate::quant::QuantScope::DecoderLinear).unwrap();
        let logits = forward_all(&Llama::new(&cfg, &qp.tensors()).unwrap(), &ids);
        let err = (logits - &base)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        println!("{q:?}: max abs logit error {err:.5}");
        assert!(err > 0.0, "{q:?} changed nothing");
        errors.push(err);
    }
    assert!(
        errors[1..].iter().all(|e| errors[0] < *e),
        "8-bit should be closer: {errors:?}"
    );
}

#[test]
fn seeded_sampling_is_reproducible_and_top_k_1_is_greedy() {
    use crate::generate::{Decoding, Sampling, generate};
    let (llama, reference) = load_fixture("llama-gqa-pnorm");
    let prompts: Vec<Vec<u32>> = ids2(&reference["input_ids"])
        .iter()
        .map(|r| r[..8].to_vec())
        .collect();
    let run = |d| generate(&llama, &Device::Cpu, &prompts, u32::MAX, 0, 8, d).unwrap();
    let sample = |seed, top_k| {
        Decoding::Sample(Sampling {
            temperature: 1.0,
            top_k,
            top_p: 1.0,
            seed,
        })
    };
    assert_eq!(
        run(sample(0, 1)),
        ids2(&reference["greedy_8_new_from_first_8"])
    );
    assert_eq!(run(sample(5, 0)), run(sample(5, 0)));
    assert_ne!(run(sample(5, 0)), run(sample(6, 0)));
}

#[test]
fn stop_strings_end_each_row_where_its_text_first_contains_one() {
    use crate::generate::{Decoding, GenerateOptions, Generated, StopReason, generate_with};
    let (llama, reference) = load_fixture("llama-gqa-pnorm");
    let prompts: Vec<Vec<u32>> = ids2(&reference["input_ids"])
        .iter()
        .map(|r| r[..8].to_vec())
        .collect();
    let full = ids2(&reference["greedy_8_new_from_first_8"]);
    // A decoder that spells each token as "<id>", so stop strings can span tokens.
    let decode = |ids: &[u32]| -> Result<String, crate::ModelError> {
        Ok(ids.iter().map(|t| format!("<{t}>")).collect())
    };
    let opts = |stop: Vec<String>| GenerateOptions {
        eos: None,
        pad: 0,
        max_new: 8,
        decoding: Decoding::Greedy,
        stop,
        decode: Some(&decode),
    };
    // Row 0 stops at its 4th token, spelled across its 3rd and 4th; rows whose text never
    // contains it run to the length limit, unaffected by row 0 stopping.
    let span = format!("{}>", decode(&full[0][2..4]).unwrap().trim_end_matches('>'));
    let got = generate_with(
        &llama,
        &Device::Cpu,
        &prompts,
        &opts(vec!["never".into(), span]),
    )
    .unwrap();
    assert_eq!(
        got[0],
        Generated {
            tokens: full[0][..4].to_vec(),
            reason: StopReason::StopString(1),
        }
    );
    for (row, g) in got.iter().enumerate().skip(1) {
        let text = decode(&full[row]).unwrap();
        if !text.contains(&format!("<{}><{}>", full[0][2], full[0][3])) {
            assert_eq!(g.tokens, full[row], "row {row}");
            assert_eq!(g.reason, StopReason::Length);
        }
    }
    // A row stops as soon as any stop string appears: here the second of the list, after one
    // token, long before the first (the text of seven tokens) could.
    let late = decode(&full[0][..7]).unwrap();
    let early = format!("<{}>", full[0][0]);
    let got = generate_with(
        &llama,
        &Device::Cpu,
        &prompts[..1],
        &opts(vec![late, early]),
    )
    .unwrap();
    assert_eq!(got[0].tokens, full[0][..1].to_vec());
    assert_eq!(got[0].reason, StopReason::StopString(1));
    // Stop strings without a decoder are refused.
    let err = generate_with(
        &llama,
        &Device::Cpu,
        &prompts,
        &GenerateOptions {
            decode: None,
            ..opts(vec!["x".into()])
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("decode"), "{err}");
}

#[test]
fn language_model_generation_stops_at_a_stop_string_of_its_own_text() {
    use crate::generate::{Decoding, StopReason};
    let model = tiny_model(5);
    let prompts = vec![
        model
            .tokenizer()
            .encode_prompt("Where was Ana born?")
            .unwrap(),
    ];
    let free = model.generate(&prompts, 12, &[], Decoding::Greedy).unwrap();
    assert!(free[0].tokens.len() >= 3, "{:?}", free[0]);
    // Stop at the text of the first three generated tokens.
    let text = model.tokenizer().decode(&free[0].tokens[..3]).unwrap();
    let stopped = model
        .generate(&prompts, 12, std::slice::from_ref(&text), Decoding::Greedy)
        .unwrap();
    assert!(stopped[0].tokens.len() <= 3, "{stopped:?} for {text:?}");
    assert_eq!(
        stopped[0].tokens[..],
        free[0].tokens[..stopped[0].tokens.len()]
    );
    assert_eq!(stopped[0].reason, StopReason::StopString(0));
}

#[test]
fn a_batch_of_long_questions_with_refusals_stays_within_the_context() {
    // As `with-idk-answers` builds it: long questions, each with a refusal as its answer.
    let model = tiny_model(4);
    let tok = model.tokenizer();
    let context = model.config().max_position_embeddings;
    let refusals = ["I don't know.", "I have no idea who that is."];
    let seqs: Vec<Sequence> = (0..4)
        .map(|i| {
            let question = format!(
                "Where was Ana born? {}",
                "Bo was born in Oslo. ".repeat(20 * (i + 1))
            );
            Sequence::qa_within(tok, &question, refusals[i % 2], context).unwrap()
        })
        .collect();
    let refs: Vec<&Sequence> = seqs.iter().collect();
    let batch = model.collate(&refs).unwrap();
    assert!(
        batch.input.dims2().unwrap().1 < context,
        "{:?}",
        batch.input.dims()
    );
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(s.ids.len(), context, "row {i} was long enough to be cut");
        let answer = tok.encode_answer(refusals[i % 2]).unwrap();
        assert_eq!(
            &s.ids[s.loss_from..],
            answer.as_slice(),
            "row {i} keeps its refusal"
        );
        let on = batch.mask_rows[i].iter().filter(|b| **b).count();
        assert_eq!(
            on,
            answer.len(),
            "row {i}: the mask covers the refusal and <eos>"
        );
    }
    // The whole batch trains to a finite loss.
    let loss = model.lm_loss(&batch).unwrap().to_scalar::<f32>().unwrap();
    assert!(loss.is_finite(), "{loss}");
}

mod lora {
    use super::*;
    use crate::lora::{LoraSettings, adapter_name};
    use crate::train::Trainer;

    fn logprobs(model: &LanguageModel, seqs: &[Sequence]) -> Vec<f32> {
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = model.collate(&refs).unwrap();
        model
            .masked_logprobs(&batch)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn all_values(model: &LanguageModel) -> Vec<Vec<f32>> {
        model
            .params()
            .vars()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    }

    /// Some LoRA steps on the first four questions; returns the adapted model.
    fn trained(base: &LanguageModel, settings: &LoraSettings, steps: usize) -> LanguageModel {
        let model = base.with_lora(settings, 11).unwrap();
        let seqs: Vec<Sequence> = (0..4).map(|i| qa(&model, i)).collect();
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = model.collate(&refs).unwrap();
        let settings = OptimSettings {
            learning_rate: 1e-2,
            ..OptimSettings::default()
        };
        let mut trainer = Trainer::for_model(&model, &settings).unwrap();
        for _ in 0..steps {
            trainer.step(&model.lm_loss(&batch).unwrap()).unwrap();
        }
        model
    }

    #[test]
    fn a_fresh_adapter_computes_what_the_frozen_model_does() {
        let base = tiny_model(4);
        let seqs: Vec<Sequence> = (0..3).map(|i| qa(&base, i)).collect();
        let adapted = base.with_lora(&LoraSettings::all_linear(4), 1).unwrap();
        assert_eq!(
            adapted.trainable().len(),
            2 * 7 * base.config().num_hidden_layers
        );
        let d = max_diff(&logprobs(&base, &seqs), &logprobs(&adapted, &seqs));
        assert!(d < 1e-5, "B = 0 changed log-probs by {d}");
    }

    #[test]
    fn only_the_adapters_get_gradients_and_steps_leave_the_frozen_weights_untouched() {
        let base = tiny_model(4);
        let before = all_values(&base);
        let seqs: Vec<Sequence> = (0..4).map(|i| qa(&base, i)).collect();
        let settings = LoraSettings {
            rank: 2,
            alpha: 4.0,
            targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
            learning_rate_scale: 10.0,
        };
        let adapted = base.with_lora(&settings, 3).unwrap();
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = adapted.collate(&refs).unwrap();
        let grads = adapted.lm_loss(&batch).unwrap().backward().unwrap();
        for (name, var) in base.params().vars() {
            assert!(
                grads.get(var.as_tensor()).is_none(),
                "{name} got a gradient"
            );
        }
        // At B = 0 only B's gradient is non-zero (A's is s·Bᵀ·dy·x).
        for layer in 0..base.config().num_hidden_layers {
            for t in &settings.targets {
                let b = adapted
                    .trainable()
                    .into_iter()
                    .find(|(n, _)| *n == adapter_name(layer, t, "lora_B"))
                    .unwrap()
                    .1;
                let g = grads.get(b.as_tensor()).unwrap();
                let norm = g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(norm > 0.0, "layer {layer} {t}: B got a zero gradient");
            }
        }

        let lp_before = logprobs(&base, &seqs);
        let adapted = trained(&base, &settings, 8);
        assert_eq!(
            all_values(&base),
            before,
            "a LoRA step moved a frozen weight"
        );
        let lp_after = logprobs(&adapted, &seqs);
        let mean = |v: &[f32]| v.iter().sum::<f32>();
        assert!(
            mean(&lp_after) > mean(&lp_before) + 1.0,
            "the adapters learnt nothing: {} → {}",
            mean(&lp_before),
            mean(&lp_after)
        );
        // The reference is the frozen weights, shared, and computes what the base does.
        let reference = adapted.frozen_base().unwrap().unwrap();
        let batch = base.collate(&refs).unwrap();
        let r: Vec<f32> = reference
            .masked_logprobs(&batch)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(r, lp_before);
        assert!(base.frozen_base().unwrap().is_none());
    }

    #[test]
    fn the_merged_model_computes_what_the_adapted_model_does() {
        let base = tiny_model(4);
        let seqs: Vec<Sequence> = (0..6).map(|i| qa(&base, i)).collect();
        let adapted = trained(&base, &LoraSettings::all_linear(3), 6);
        let merged = adapted.merged().unwrap();
        assert!(merged.adapters().is_none());
        let (a, m) = (logprobs(&adapted, &seqs), logprobs(&merged, &seqs));
        assert!(
            max_diff(&a, &m) < 1e-4,
            "merged differs by {}",
            max_diff(&a, &m)
        );
        assert!(
            max_diff(&a, &logprobs(&base, &seqs)) > 1e-2,
            "nothing was learnt"
        );
        // Saved, a LoRA model is its merged weights; a frozen copy is too.
        let dir = tempfile::tempdir().unwrap();
        adapted.save(dir.path()).unwrap();
        let loaded = LanguageModel::load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(logprobs(&loaded, &seqs), m);
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = base.collate(&refs).unwrap();
        let f: Vec<f32> = adapted
            .frozen_copy()
            .unwrap()
            .masked_logprobs(&batch)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(f, m);
        // A deep copy trains apart from the original.
        let copy = adapted.deep_copy().unwrap();
        assert_eq!(logprobs(&copy, &seqs), a);

        // Merged in place: the same bits as into a copy, in the storage the start shares.
        let start = base.deep_copy().unwrap();
        let adapted = trained(&start, &LoraSettings::all_linear(3), 6);
        assert_eq!(logprobs(&adapted, &seqs), a);
        let in_place = adapted.merge_in_place().unwrap();
        assert!(in_place.adapters().is_none());
        assert_eq!(logprobs(&in_place, &seqs), m);
        assert_eq!(
            logprobs(&start, &seqs),
            m,
            "the start is the merged model now"
        );
        assert_ne!(logprobs(&base, &seqs), m);
    }

    #[test]
    fn settings_that_do_not_fit_the_model_are_refused_with_the_numbers() {
        let base = tiny_model(4);
        // tiny: hidden 64, 2 of 4 heads for keys and values → k_proj is 64 → 32.
        let refuse = |s: LoraSettings, want: &[&str]| {
            let err = base.with_lora(&s, 0).err().expect("accepted").to_string();
            for w in want {
                assert!(err.contains(w), "{w:?} not in {err}");
            }
        };
        let with = |rank, alpha, targets: &[&str]| LoraSettings {
            rank,
            alpha,
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            learning_rate_scale: 10.0,
        };
        refuse(
            with(4, 8.0, &["qkv_proj"]),
            &["\"qkv_proj\"", "no such projection"],
        );
        refuse(with(0, 8.0, &["q_proj"]), &["rank 0"]);
        refuse(
            with(33, 66.0, &["q_proj", "k_proj"]),
            &["rank 33", "k_proj", "64 in, 32 out", "at most 32"],
        );
        refuse(with(4, 0.0, &["q_proj"]), &["alpha 0"]);
        refuse(with(4, f64::NAN, &["q_proj"]), &["alpha NaN"]);
        refuse(with(4, 8.0, &["q_proj", "q_proj"]), &["listed twice"]);
        refuse(with(4, 8.0, &[]), &["no target modules"]);
        refuse(
            LoraSettings {
                learning_rate_scale: -1.0,
                ..with(4, 8.0, &["q_proj"])
            },
            &["learning-rate scale -1"],
        );
        assert!(base.with_lora(&with(32, 64.0, &["k_proj"]), 0).is_ok());
        let adapted = base.with_lora(&with(2, 4.0, &["q_proj"]), 0).unwrap();
        assert!(adapted.with_lora(&with(2, 4.0, &["q_proj"]), 0).is_err());
        let all = base.with_lora(&LoraSettings::all_linear(2), 0).unwrap();
        assert_eq!(
            LoraSettings::all_linear(2).parameter_count(base.config()),
            all.adapters().unwrap().count()
        );
    }
}
