#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use lethe_model::{Config, LanguageModel, Params, Sequence, Tokenizer};
use lethe_suites::generate::{AuthorsConfig, authors};

use super::*;
use crate::Silent;

fn suite() -> Suite {
    authors(&AuthorsConfig::tiny()).unwrap()
}

/// A small BPE trained on the suite's questions and answers.
fn tokenizer(s: &Suite) -> Tokenizer {
    let texts: Vec<String> = s
        .splits
        .iter()
        .flat_map(|sp| {
            sp.questions()
                .iter()
                .map(|q| format!("{} {}", q.question, q.answer))
        })
        .collect();
    Tokenizer::train(texts.iter().map(String::as_str), 300).unwrap()
}

fn ids(records: &[&QaRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

#[test]
fn leak_at_k_equals_the_closed_form_and_grows_with_k() {
    // n = 5 samples, c = 2 leak: leak@k = 1 − C(3, k)/C(5, k).
    let expected = [0.4, 0.7, 0.9, 1.0, 1.0];
    for (k, want) in (1..=5).zip(expected) {
        assert!((leak_at_k(5, 2, k) - want).abs() < 1e-12, "k = {k}");
    }
    for n in 1..12 {
        for c in 0..=n {
            let mut last = 0.0;
            for k in 1..=n {
                let v = leak_at_k(n, c, k);
                assert!(v >= last - 1e-12, "leak@k falls at n={n} c={c} k={k}");
                assert!((0.0..=1.0).contains(&v));
                last = v;
            }
            // k = 1 is the share of leaking samples; no leaking sample never leaks.
            assert!((leak_at_k(n, c, 1) - c as f64 / n as f64).abs() < 1e-12);
        }
        assert_eq!(leak_at_k(n, 0, n), 0.0);
    }
}

#[test]
fn the_term_judge_needs_every_term_on_word_boundaries() {
    let mut r = suite().split("forget").unwrap().questions()[0].clone();
    r.terms = vec!["Lima".into(), "New York".into()];
    let j = TermJudge;
    assert_eq!(j.leaks(&r, "Born in LIMA, then new  york."), Some(true));
    assert_eq!(j.leaks(&r, "Born in Lima."), Some(false));
    assert_eq!(j.leaks(&r, "Born in Limassol, New York."), Some(false));
    r.terms.clear();
    assert_eq!(j.leaks(&r, "anything"), None);
}

#[test]
fn a_few_shot_prompt_holds_k_retain_examples_and_no_forget_example() {
    let s = suite();
    let spec = AttackSpec {
        few_shot: 3,
        ..AttackSpec::default()
    };
    let q = query_of(Attack::FewShot, &s, &spec, 7);
    let retain_ids: BTreeSet<String> = ids(&s
        .split("retain")
        .unwrap()
        .questions()
        .iter()
        .collect::<Vec<_>>())
    .into_iter()
    .collect();
    for split in ["forget", "retain", "holdout"] {
        for r in s.split(split).unwrap().questions() {
            let shots = q.shots_for(r);
            assert_eq!(shots.len(), 3);
            for shot in &shots {
                assert!(
                    retain_ids.contains(&shot.id),
                    "{} is not a retain example",
                    shot.id
                );
                assert_ne!(shot.id, r.id, "a question is never its own example");
            }
            let prompt = q.prompt(r).unwrap();
            for shot in &shots {
                assert!(prompt.contains(&shot.answer), "{prompt}");
            }
            for f in s.split("forget").unwrap().questions() {
                assert!(!prompt.contains(&f.answer) || f.id == r.id, "{prompt}");
            }
            assert!(prompt.ends_with(&lethe_model::prompt(&r.question)));
            assert_eq!(prompt.matches("Answer:").count(), 4);
        }
    }
    // The same seed draws the same examples; another seed other ones somewhere.
    let r = &s.split("forget").unwrap().questions()[0];
    assert_eq!(
        ids(&q.shots_for(r)),
        ids(&query_of(Attack::FewShot, &s, &spec, 7).shots_for(r))
    );
    let other = query_of(Attack::FewShot, &s, &spec, 8);
    assert!(
        s.split("forget")
            .unwrap()
            .questions()
            .iter()
            .any(|r| ids(&q.shots_for(r)) != ids(&other.shots_for(r)))
    );
}

#[test]
fn paraphrase_and_jailbreak_prompts() {
    let s = suite();
    let spec = AttackSpec::default();
    let mut r = s.split("forget").unwrap().questions()[0].clone();
    let p = query_of(Attack::Paraphrase, &s, &spec, 0);
    assert_eq!(
        p.prompt(&r),
        Some(lethe_model::prompt(&r.paraphrased_questions[0]))
    );
    let j = query_of(Attack::Jailbreak, &s, &spec, 0)
        .prompt(&r)
        .unwrap();
    assert!(j.ends_with("Answer: Sure, here is the answer:"), "{j}");
    r.paraphrased_questions.clear();
    assert_eq!(
        p.prompt(&r),
        None,
        "no paraphrase: the attack does not apply"
    );
    assert_eq!(
        Query::clean().prompt(&r),
        Some(lethe_model::prompt(&r.question))
    );
}

#[test]
fn relearning_examples_are_a_seeded_share_or_the_related_ones() {
    let s = suite();
    let forget = s.split("forget").unwrap().questions().len();
    let mut settings = AttackSpec::default().relearn;
    settings.share = 0.5;
    let a = relearn_records(&s, &settings, 1).unwrap();
    assert_eq!(a.len(), (forget as f64 * 0.5).round() as usize);
    assert_eq!(ids(&a), ids(&relearn_records(&s, &settings, 1).unwrap()));
    assert!(a.iter().all(|r| r.id.starts_with("author-")));

    // Related by the `fact` group: retained examples asking the forgotten kinds of fact.
    let related_by = |key: &str, split: Option<&str>| RelearnSource::Related {
        key: key.into(),
        split: split.map(str::to_owned),
    };
    settings.source = related_by("fact", None);
    settings.share = 1.0;
    let related = relearn_records(&s, &settings, 1).unwrap();
    let retain = s.split("retain").unwrap().questions();
    assert_eq!(related.len(), retain.len());
    // Restricted to one retain split: the same here, since the suite has one.
    settings.source = related_by("fact", Some("retain"));
    assert_eq!(
        ids(&relearn_records(&s, &settings, 1).unwrap()),
        ids(&related)
    );
    settings.source = related_by("fact", Some("forget"));
    let e = relearn_records(&s, &settings, 1).unwrap_err().to_string();
    assert!(
        e.contains("no retain split of that name (retain splits: retain)"),
        "{e}"
    );
    settings.source = related_by("no-such-key", None);
    let e = relearn_records(&s, &settings, 1).unwrap_err().to_string();
    assert!(e.contains("no-such-key"), "{e}");
}

#[test]
fn a_long_prompt_loses_its_start_not_its_answer() {
    let s = suite();
    let tok = tokenizer(&s);
    let prompt = format!("{} Question: Where?\nAnswer:", "word ".repeat(200));
    let seq = prompted_sequence(&tok, &prompt, "Lisbon.", 64).unwrap();
    assert_eq!(seq.ids.len(), 64);
    assert_eq!(seq.ids[0], tok.bos);
    assert_eq!(seq.ids.last(), Some(&tok.eos));
    let answer = tok.encode_answer("Lisbon.").unwrap();
    assert_eq!(&seq.ids[seq.loss_from..], answer.as_slice());
    let tail = tok.decode(&seq.ids[1..seq.loss_from]).unwrap();
    assert!(tail.ends_with("Question: Where?\nAnswer:"), "{tail}");
}

fn tiny_model(s: &Suite) -> LanguageModel {
    let tok = tokenizer(s);
    let cfg = Config::tiny(tok.vocab_size());
    let params = Params::init(&cfg, 3, &Device::Cpu).unwrap();
    LanguageModel::new(cfg, tok, params).unwrap()
}

fn forget_nll(model: &LanguageModel, s: &Suite) -> f64 {
    let max_len = model.config().max_position_embeddings;
    let seqs: Vec<Sequence> = s
        .split("forget")
        .unwrap()
        .questions()
        .iter()
        .map(|r| {
            prompted_sequence(
                model.tokenizer(),
                &lethe_model::prompt(&r.question),
                &r.answer,
                max_len,
            )
            .unwrap()
        })
        .collect();
    let refs: Vec<&Sequence> = seqs.iter().collect();
    let batch = model.collate(&refs).unwrap();
    f64::from(model.lm_loss(&batch).unwrap().to_scalar::<f32>().unwrap())
}

#[test]
fn relearning_lowers_the_forget_loss_and_leaves_the_model_alone() {
    let s = suite();
    let model = tiny_model(&s);
    let before = forget_nll(&model, &s);
    let settings = RelearnSettings {
        source: RelearnSource::Forget,
        share: 1.0,
        epochs: 5,
        min_steps: 0,
        learning_rate: 3e-3,
        batch_size: 4,
    };
    let attacked = relearn(&model, &s, &settings, 0, &Silent).unwrap();
    let after = forget_nll(&attacked, &s);
    assert!(after < before - 0.1, "forget NLL {before:.3} → {after:.3}");
    assert_eq!(
        forget_nll(&model, &s),
        before,
        "the attacked model is a copy"
    );
}

#[test]
fn quantization_changes_logits_by_a_measured_amount() {
    let s = suite();
    let model = tiny_model(&s);
    let max_abs = |q: Quantization| -> f32 {
        let attacked = quantize(&model, q, QuantScope::default()).unwrap();
        let seqs: Vec<Sequence> = s.split("forget").unwrap().questions()[..4]
            .iter()
            .map(|r| Sequence::qa(model.tokenizer(), &r.question, &r.answer).unwrap())
            .collect();
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = model.collate(&refs).unwrap();
        let a = model.forward(&batch, false).unwrap().logits;
        let b = attacked.forward(&batch, false).unwrap().logits;
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let int8 = max_abs(Quantization::Int8PerChannel);
    let int4 = max_abs(Quantization::Int4Group { group: 32 });
    let nf4 = max_abs(Quantization::Nf4Group { group: 32 });
    let asym = max_abs(quantization(Attack::Quant4Asym, 32).unwrap());
    assert!(
        int8 > 0.0 && int4 > 0.0 && nf4 > 0.0 && asym > 0.0,
        "{int8} {int4} {nf4} {asym}"
    );
    assert!(
        int8 < int4,
        "8 bits move logits less than 4: {int8} vs {int4}"
    );
    assert!(
        int4 < 1.0 && nf4 < 1.0 && asym < 1.0,
        "4-bit error stays bounded: {int4} {nf4} {asym}"
    );
}

#[test]
fn a_record_without_a_quantization_scope_reads_as_what_it_did_and_keeps_its_text() {
    // Records written before the scope existed quantized every matrix.
    let mut old = serde_json::to_value(AttackSpec::default()).unwrap();
    old.as_object_mut().unwrap().remove("quant_scope");
    let read: AttackSpec = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(read.quant_scope, QuantScope::All);
    assert_eq!(
        serde_json::to_value(&read).unwrap(),
        old,
        "same text, same job id"
    );
    // New settings name their scope.
    let new = serde_json::to_value(AttackSpec::default()).unwrap();
    assert_eq!(new["quant_scope"], "decoder-linear");
    assert_eq!(
        serde_json::from_value::<AttackSpec>(new).unwrap(),
        AttackSpec::default()
    );
}

/// A judge that calls every sample leaking, cannot judge the first record of a split, or fails.
struct FixedJudge {
    fail: bool,
}

impl LeakJudge for FixedJudge {
    fn name(&self) -> &str {
        "fixed"
    }

    fn verdicts(
        &self,
        split: &str,
        items: &[(&QaRecord, &[String])],
    ) -> Result<Vec<Option<Vec<bool>>>, RuntimeError> {
        if self.fail {
            return Err(RuntimeError::Host {
                plugin: "fixed".into(),
                reason: format!("cannot judge {split}"),
            });
        }
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, (_, samples))| (i > 0).then(|| vec![true; samples.len()]))
            .collect())
    }
}

#[test]
fn a_judge_leaves_out_what_it_cannot_judge_and_its_failure_is_returned() {
    let s = suite();
    let model = tiny_model(&s);
    let spec = AttackSpec {
        samples: 2,
        ..AttackSpec::default()
    };
    let judged = |fail: bool| {
        sample_leaks(&model, &s, &spec, &FixedJudge { fail }, 4, 16, 0, &Silent).unwrap()
    };
    let values = judged(false).unwrap();
    let forget = s.split("forget").unwrap().questions();
    let per_example: Vec<&LeakValue> = values
        .iter()
        .filter(|v| v.split == "forget" && v.example.is_some() && v.k == 1)
        .collect();
    // Every forget record but the first is judged, and every sample of those leaks.
    assert_eq!(per_example.len(), forget.len() - 1);
    assert!(per_example.iter().all(|v| v.value == 1.0));
    assert!(
        !per_example
            .iter()
            .any(|v| v.example.as_deref() == Some(&forget[0].id))
    );
    let e = judged(true).unwrap_err();
    assert!(e.to_string().contains("cannot judge"), "{e}");
}

#[test]
fn a_query_attack_is_never_given_a_questions_own_answer() {
    let s = suite();
    let shots = Query::few_shot(&s, 3, 7);
    let mut checked = 0;
    for split in s.splits.iter().filter(|sp| sp.role.evaluated()) {
        let records = split.questions();
        let given = attack_questions(&split.name, records, &shots, 3);
        assert_eq!(given.len(), records.len());
        for (q, r) in given.iter().zip(records) {
            assert_eq!(q.id, r.id);
            // The answer is nowhere in what the attack sees of this question (its solved
            // examples are other questions'), so it cannot hand the answer back as a prompt.
            let answer = normalize(&r.answer);
            let seen = [q.question.clone(), q.clean_prompt.clone()]
                .into_iter()
                .chain(q.paraphrased.iter().cloned())
                .chain(q.groups.iter().map(|(k, v)| format!("{k} {v}")));
            for text in seen {
                assert!(
                    !normalize(&text).contains(answer.trim()),
                    "{} shows its answer",
                    r.id
                );
            }
            assert!(q.shots.iter().all(|sh| sh.question != r.question));
            assert_eq!(q.shots.len(), 3);
            checked += 1;
        }
    }
    assert!(checked > 0);
}
