//! The observe stage: run a model over the evaluated splits and record exactly what the
//! metrics asked for (greedy answers, teacher-forced statistics of answers and their variants).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use lethe_manifest::{ModelRole, ObservationKind, ObservedExample, ObservedSplit};
use lethe_model::{AnswerStats, LanguageModel, Sequence};
use lethe_suites::{QaRecord, RecordKind, Records, Split, Suite};

use crate::prompt::{Query, prompt_ids, prompted_sequence};
use crate::{PipelineError, Reporter};

/// How to observe.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObserveSettings {
    /// Examples per forward pass.
    pub batch_size: usize,
    /// Longest greedy answer, in tokens.
    pub max_new_tokens: usize,
    /// Evaluate only the first N questions of these splits (the rest are still trained on):
    /// TOFU evaluates its 3,600 retain questions on the 400 of `retain_perturbed`, the only
    /// ones with the paraphrased and perturbed answers its truth ratio needs. Empty: every
    /// question of every evaluated split.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eval_first: BTreeMap<String, usize>,
}

impl ObserveSettings {
    /// The suite as the observe stage and the attacks see it: each split named in
    /// [`Self::eval_first`] cut to its first N questions; the suite itself when none is.
    pub fn evaluation_view<'s>(&self, suite: &'s Suite) -> Cow<'s, Suite> {
        if self.eval_first.is_empty() {
            return Cow::Borrowed(suite);
        }
        let mut view = suite.clone();
        for split in &mut view.splits {
            if let (Some(&n), Records::Qa(records)) =
                (self.eval_first.get(&split.name), &mut split.records)
            {
                records.truncate(n);
            }
        }
        Cow::Owned(view)
    }

    /// Refuse a subset that names no evaluated question split of `suite`, or is empty.
    pub fn check_subsets(&self, suite: &Suite) -> Result<(), PipelineError> {
        for (name, &n) in &self.eval_first {
            let known = suite
                .split(name)
                .is_some_and(|s| s.role.evaluated() && matches!(s.records, Records::Qa(_)));
            if !known {
                return Err(PipelineError::Suite(format!(
                    "evaluation subset {name}={n}: suite '{}' has no evaluated question split \
                     '{name}'",
                    suite.manifest.name
                )));
            }
            if n == 0 {
                return Err(PipelineError::Suite(format!(
                    "evaluation subset {name}=0 would evaluate nothing"
                )));
            }
        }
        Ok(())
    }
}

fn stats_of(
    model: &LanguageModel,
    pairs: &[(&str, &str)],
    batch_size: usize,
) -> Result<Vec<AnswerStats>, PipelineError> {
    let max_len = model.config().max_position_embeddings;
    let tok = model.tokenizer();
    let mut seqs = Vec::with_capacity(pairs.len());
    for (prompt, answer) in pairs {
        seqs.push(prompted_sequence(tok, prompt, answer, max_len)?);
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
    records: &[(&QaRecord, String)],
    variants: impl Fn(&QaRecord) -> &[String],
    batch_size: usize,
) -> Result<Vec<Vec<Vec<f32>>>, PipelineError> {
    let mut pairs = Vec::new();
    let mut owner = Vec::new();
    for (i, (r, prompt)) in records.iter().enumerate() {
        for v in variants(r) {
            pairs.push((prompt.as_str(), v.as_str()));
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
///
/// Questions are put to the model as `query` says: the clean prompt, or a query attack's.
/// Examples a query attack does not apply to (no paraphrase to ask) are left out.
pub fn observe(
    model: &LanguageModel,
    role: ModelRole,
    suite: &Suite,
    needs: &BTreeSet<ObservationKind>,
    settings: &ObserveSettings,
    query: &Query<'_>,
    reporter: &dyn Reporter,
) -> Result<Vec<ObservedSplit>, PipelineError> {
    use ObservationKind as K;
    let tok = model.tokenizer();
    let mut out = Vec::new();
    for split in suite.splits.iter().filter(|s| s.role.evaluated()) {
        let kind = split.records.kind();
        // Documents and continuations are put to the model as they are, with no template:
        // a query attack (which rewrites questions) does not apply to them.
        if kind != RecordKind::Questions && !query.is_clean() {
            continue;
        }
        let as_records = as_questions(split);
        let records: Vec<(&QaRecord, String)> = match kind {
            RecordKind::Questions => split
                .questions()
                .iter()
                .filter_map(|r| query.prompt(r).map(|p| (r, p)))
                .collect(),
            RecordKind::Texts => as_records.iter().map(|r| (r, String::new())).collect(),
            RecordKind::Continuations => {
                as_records.iter().map(|r| (r, r.question.clone())).collect()
            }
        };
        // A document has no question to answer, and only a question has variants.
        let generate = needs.contains(&K::GeneratedAnswer) && kind != RecordKind::Texts;
        let variants = kind == RecordKind::Questions;
        let mut examples: Vec<ObservedExample> = records
            .iter()
            .map(|(r, _)| ObservedExample {
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
        if generate {
            let max_len = model.config().max_position_embeddings;
            for (chunk_i, chunk) in records.chunks(settings.batch_size.max(1)).enumerate() {
                let mut prompts = Vec::with_capacity(chunk.len());
                for (_, prompt) in chunk {
                    prompts.push(prompt_ids(tok, prompt, settings.max_new_tokens, max_len)?);
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
                .map(|(r, prompt)| (prompt.as_str(), r.answer.as_str()))
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
        if variants && needs.contains(&K::ParaphrasedAnswerLogprobs) {
            let v = variant_logprobs(
                model,
                &records,
                |r| &r.paraphrased_answers,
                settings.batch_size,
            )?;
            for (e, lp) in examples.iter_mut().zip(v) {
                e.paraphrased_logprobs = Some(lp);
            }
        }
        if variants && needs.contains(&K::PerturbedAnswerLogprobs) {
            let v = variant_logprobs(
                model,
                &records,
                |r| &r.perturbed_answers,
                settings.batch_size,
            )?;
            for (e, lp) in examples.iter_mut().zip(v) {
                e.perturbed_logprobs = Some(lp);
            }
        }
        if variants && needs.contains(&K::OptionLogprobs) {
            let v = variant_logprobs(model, &records, |r| &r.options, settings.batch_size)?;
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
        .map(|s| match s.records.kind() {
            RecordKind::Questions | RecordKind::Continuations => s.len() as u64,
            RecordKind::Texts => 0,
        })
        .sum()
}

/// The records of a document or continuation split in question form, for observation: a
/// document is an answer to an empty prompt (its every token scored), a continuation the
/// answer to its prompt. Empty for a question split (its records are used as they are).
fn as_questions(split: &Split) -> Vec<QaRecord> {
    let record = |id: &str, question: &str, answer: &str| QaRecord {
        id: id.to_owned(),
        question: question.to_owned(),
        answer: answer.to_owned(),
        groups: BTreeMap::new(),
        paraphrased_answers: Vec::new(),
        perturbed_answers: Vec::new(),
        paraphrased_questions: Vec::new(),
        terms: Vec::new(),
        options: Vec::new(),
        correct_option: None,
    };
    match &split.records {
        Records::Qa(_) => Vec::new(),
        Records::Text(t) => t.iter().map(|t| record(&t.id, "", &t.text)).collect(),
        Records::Continuation(c) => c
            .iter()
            .map(|c| record(&c.id, &c.prompt, &c.continuation))
            .collect(),
    }
}

/// Whether a metric that asks for `observations` is shown a split of `kind`: a document or
/// continuation split has no paraphrased, perturbed or option answers, and a document no
/// generated answer, so a metric that needs them would only fail on it.
pub fn reaches(observations: &[ObservationKind], kind: RecordKind) -> bool {
    use ObservationKind as K;
    let question_only = [
        K::ParaphrasedAnswerLogprobs,
        K::PerturbedAnswerLogprobs,
        K::OptionLogprobs,
    ];
    match kind {
        RecordKind::Questions => true,
        RecordKind::Continuations => !observations.iter().any(|o| question_only.contains(o)),
        RecordKind::Texts => !observations
            .iter()
            .any(|o| question_only.contains(o) || *o == K::GeneratedAnswer),
    }
}
