//! The observe stage: run a model over the evaluated splits and record exactly what the
//! metrics asked for (greedy answers, teacher-forced statistics of answers and their variants).

use std::collections::BTreeSet;

use lethe_manifest::{ModelRole, ObservationKind, ObservedExample, ObservedSplit};
use lethe_model::{AnswerStats, LanguageModel, Sequence};
use lethe_suites::{QaRecord, Suite};

use crate::{PipelineError, Reporter};

/// How to observe.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveSettings {
    /// Examples per forward pass.
    pub batch_size: usize,
    /// Longest greedy answer, in tokens.
    pub max_new_tokens: usize,
}

fn stats_of(
    model: &LanguageModel,
    pairs: &[(&str, &str)],
    batch_size: usize,
) -> Result<Vec<AnswerStats>, PipelineError> {
    let max_len = model.config().max_position_embeddings;
    let tok = model.tokenizer();
    let mut seqs = Vec::with_capacity(pairs.len());
    for (q, a) in pairs {
        seqs.push(Sequence::qa(tok, q, a)?.truncated(max_len));
    }
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in seqs.chunks(batch_size.max(1)) {
        let refs: Vec<&Sequence> = chunk.iter().collect();
        out.extend(model.answer_stats(&refs)?);
    }
    Ok(out)
}

/// Per-token log-probs of several answers per question, regrouped by question.
fn variant_logprobs(
    model: &LanguageModel,
    records: &[QaRecord],
    variants: impl Fn(&QaRecord) -> &[String],
    batch_size: usize,
) -> Result<Vec<Vec<Vec<f32>>>, PipelineError> {
    let mut pairs = Vec::new();
    let mut owner = Vec::new();
    for (i, r) in records.iter().enumerate() {
        for v in variants(r) {
            pairs.push((r.question.as_str(), v.as_str()));
            owner.push(i);
        }
    }
    let stats = stats_of(model, &pairs, batch_size)?;
    let mut out = vec![Vec::new(); records.len()];
    for (i, s) in owner.into_iter().zip(stats) {
        out[i].push(s.logprobs);
    }
    Ok(out)
}

/// Observe a model on every evaluated split of a suite.
pub fn observe(
    model: &LanguageModel,
    role: ModelRole,
    suite: &Suite,
    needs: &BTreeSet<ObservationKind>,
    settings: &ObserveSettings,
    reporter: &dyn Reporter,
) -> Result<Vec<ObservedSplit>, PipelineError> {
    use ObservationKind as K;
    let tok = model.tokenizer();
    let mut out = Vec::new();
    for split in suite.splits.iter().filter(|s| s.role.evaluated()) {
        let records = split.questions();
        let mut examples: Vec<ObservedExample> = records
            .iter()
            .map(|r| ObservedExample {
                id: r.id.clone(),
                groups: r.groups.clone(),
                question: r.question.clone(),
                answer: r.answer.clone(),
                terms: r.terms.clone(),
                options: r.options.clone(),
                correct_option: r.correct_option,
                ..ObservedExample::default()
            })
            .collect();
        if needs.contains(&K::GeneratedAnswer) {
            let max_len = model.config().max_position_embeddings;
            for (chunk_i, chunk) in records.chunks(settings.batch_size.max(1)).enumerate() {
                let mut prompts = Vec::with_capacity(chunk.len());
                for r in chunk {
                    let mut p = tok.encode_prompt(&r.question)?;
                    // Keep the end of an overlong prompt: it holds the question mark and "Answer:".
                    let keep = max_len.saturating_sub(settings.max_new_tokens).max(1);
                    if p.len() > keep {
                        p.drain(..p.len() - keep);
                    }
                    prompts.push(p);
                }
                let answers = model.generate_greedy(&prompts, settings.max_new_tokens)?;
                for (j, ids) in answers.iter().enumerate() {
                    let text = tok.decode(ids)?;
                    examples[chunk_i * settings.batch_size.max(1) + j].generated =
                        Some(text.trim().to_owned());
                }
                reporter.advance(chunk.len() as u64, "");
            }
        }
        if needs.contains(&K::AnswerLogprobs)
            || needs.contains(&K::AnswerArgmaxMatch)
            || needs.contains(&K::AnswerLogprobMoments)
        {
            let pairs: Vec<(&str, &str)> = records
                .iter()
                .map(|r| (r.question.as_str(), r.answer.as_str()))
                .collect();
            let stats = stats_of(model, &pairs, settings.batch_size)?;
            for (e, s) in examples.iter_mut().zip(stats) {
                if needs.contains(&K::AnswerLogprobs) {
                    e.answer_logprobs = Some(s.logprobs);
                }
                if needs.contains(&K::AnswerArgmaxMatch) {
                    e.answer_argmax_match = Some(s.argmax_match);
                }
                if needs.contains(&K::AnswerLogprobMoments) {
                    e.answer_logprob_mean = Some(s.logprob_mean);
                    e.answer_logprob_std = Some(s.logprob_std);
                }
            }
        }
        if needs.contains(&K::ParaphrasedAnswerLogprobs) {
            let v = variant_logprobs(
                model,
                records,
                |r| &r.paraphrased_answers,
                settings.batch_size,
            )?;
            for (e, lp) in examples.iter_mut().zip(v) {
                e.paraphrased_logprobs = Some(lp);
            }
        }
        if needs.contains(&K::PerturbedAnswerLogprobs) {
            let v = variant_logprobs(
                model,
                records,
                |r| &r.perturbed_answers,
                settings.batch_size,
            )?;
            for (e, lp) in examples.iter_mut().zip(v) {
                e.perturbed_logprobs = Some(lp);
            }
        }
        if needs.contains(&K::OptionLogprobs) {
            let v = variant_logprobs(model, records, |r| &r.options, settings.batch_size)?;
            for (e, lp) in examples.iter_mut().zip(v) {
                e.option_logprobs = Some(lp);
            }
        }
        out.push(ObservedSplit {
            model: role,
            split: split.name.clone(),
            examples,
        });
    }
    Ok(out)
}

/// Number of greedy generations `observe` will make for a suite (for progress bars).
pub fn generation_count(suite: &Suite) -> u64 {
    suite
        .splits
        .iter()
        .filter(|s| s.role.evaluated())
        .map(|s| s.questions().len() as u64)
        .sum()
}
