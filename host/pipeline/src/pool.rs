//! The models of a meta-evaluation's faithfulness pools: finetuned from the job's base model
//! as the target is, but on data that does or does not hold the forget set's knowledge, at
//! a learning rate, an epoch count and a shuffling seed of their own. Each is
//! content-addressed like the target, by its base, its data and its schedule.

use lethe_model::{LanguageModel, Sequence};
use lethe_suites::{QaRecord, SplitRole, Suite};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::learn::{
    LearnSpec, Learned, ModelCache, Phase, key, qa_sequences, records_digest, replay_texts,
    texts_digest, train_phase,
};
use crate::{PipelineError, Reporter};

/// What a pool model is finetuned on besides the retain split.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PoolData {
    /// The forget split as it is (the target's data): knows the forget set.
    Forget,
    /// The forget questions with their first paraphrased answer: knows the same facts in
    /// other words.
    Paraphrased,
    /// Nothing in place of the forget split (the oracle's data): does not know it.
    RetainOnly,
    /// The forget questions with their first perturbed (wrong) answer: has seen the questions,
    /// not the facts.
    Perturbed,
    /// The holdout split's questions in place of the forget split: as much new knowledge,
    /// none of it the forget set's.
    Unrelated,
}

impl PoolData {
    /// Every kind, the pool P's first.
    pub const ALL: [PoolData; 5] = [
        PoolData::Forget,
        PoolData::Paraphrased,
        PoolData::RetainOnly,
        PoolData::Perturbed,
        PoolData::Unrelated,
    ];

    /// Whether a model finetuned on it knows the forget set (pool P) or not (pool N).
    pub fn knows(self) -> bool {
        matches!(self, PoolData::Forget | PoolData::Paraphrased)
    }

    /// The name used in row labels.
    pub fn name(self) -> &'static str {
        match self {
            PoolData::Forget => "forget",
            PoolData::Paraphrased => "paraphrased",
            PoolData::RetainOnly => "retain-only",
            PoolData::Perturbed => "perturbed",
            PoolData::Unrelated => "unrelated",
        }
    }
}

/// One model of a faithfulness pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolMember {
    /// What it learns in place of the forget split.
    pub data: PoolData,
    /// Finetuning learning rate.
    pub learning_rate: f64,
    /// Finetuning passes (a token budget of the learn spec still applies).
    pub epochs: usize,
    /// Seed of the finetuning's shuffling.
    pub seed: u64,
}

/// The finetuning questions of `data`, in id order (as the target's are).
pub fn pool_records(suite: &Suite, data: PoolData) -> Result<Vec<QaRecord>, PipelineError> {
    let of_role = |role: SplitRole| -> Vec<QaRecord> {
        suite
            .splits_with(role)
            .flat_map(|s| s.questions())
            .cloned()
            .collect()
    };
    let mut records = of_role(SplitRole::Retain);
    let forget = of_role(SplitRole::Forget);
    let missing = |what: &str, id: &str| {
        PipelineError::Suite(format!(
            "suite '{}': forget example '{id}' has no {what} answer, which the '{}' pool \
             model learns",
            suite.manifest.name,
            data.name()
        ))
    };
    match data {
        PoolData::Forget => records.extend(forget),
        PoolData::RetainOnly => {}
        PoolData::Paraphrased | PoolData::Perturbed => {
            for mut r in forget {
                let (list, what) = if data == PoolData::Paraphrased {
                    (&r.paraphrased_answers, "paraphrased")
                } else {
                    (&r.perturbed_answers, "perturbed")
                };
                let Some(a) = list.first().cloned() else {
                    return Err(missing(what, &r.id));
                };
                r.answer = a;
                records.push(r);
            }
        }
        PoolData::Unrelated => {
            let holdout = of_role(SplitRole::Holdout);
            if holdout.is_empty() {
                return Err(PipelineError::Suite(format!(
                    "suite '{}' has no holdout questions, which the 'unrelated' pool model \
                     learns in place of the forget set",
                    suite.manifest.name
                )));
            }
            records.extend(holdout);
        }
    }
    records.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(records)
}

/// Finetune (or load from the cache) one pool model from `learned`'s base; returns it with
/// its cache key.
pub fn learn_member(
    suite: &Suite,
    spec: &LearnSpec,
    learned: &Learned,
    member: &PoolMember,
    cache: &ModelCache,
    reporter: &dyn Reporter,
) -> Result<(LanguageModel, String), PipelineError> {
    if !(member.learning_rate.is_finite() && member.learning_rate > 0.0) || member.epochs == 0 {
        return Err(PipelineError::Learn(format!(
            "pool model '{}': learning rate {} and epochs {} must be positive",
            member.data.name(),
            member.learning_rate,
            member.epochs
        )));
    }
    let records = pool_records(suite, member.data)?;
    let refs: Vec<&QaRecord> = records.iter().collect();
    // Documents (a corpus suite's) follow the questions: the forget ones only where the
    // forget split is learnt as it is.
    let roles: &[SplitRole] = if member.data == PoolData::Forget {
        &[SplitRole::Forget, SplitRole::Retain]
    } else {
        &[SplitRole::Retain]
    };
    let mut docs: Vec<&str> = suite
        .splits
        .iter()
        .filter(|s| roles.contains(&s.role))
        .flat_map(|s| s.texts())
        .map(|t| t.text.as_str())
        .collect();
    docs.sort_unstable();
    let replay = replay_texts(
        suite,
        spec.replay,
        records.len() + docs.len(),
        member.seed + 4,
    );
    let phase = Phase {
        epochs: member.epochs,
        learning_rate: member.learning_rate,
        ..spec.finetune.clone()
    };
    // Pool models learn as target and oracle do: with the same adapters when there are any
    // (in the key only then, so keys without LoRA are what they were).
    let mut schedule = serde_json::to_string(&(member, &phase))
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    if let Some(l) = &spec.lora {
        let l = serde_json::to_string(l).map_err(|e| PipelineError::Internal(e.to_string()))?;
        schedule = format!("{schedule}:lora:{l}");
    }
    let member_key = key(&[
        "pool",
        &learned.keys[0],
        &records_digest(&refs),
        &texts_digest(docs.iter().copied()),
        &texts_digest(replay.iter().copied()),
        &schedule,
    ]);
    let _lock = cache.lock(&member_key)?;
    if let Some(m) = cache.load(&member_key) {
        info!(pool = member.data.name(), "reusing a cached pool model");
        return Ok((m, member_key));
    }
    let base = learned.base()?;
    let tok = base.tokenizer();
    let max_len = base.config().max_position_embeddings;
    let mut data = qa_sequences(&refs, tok, max_len)?;
    for t in docs.iter().chain(replay.iter()) {
        data.push(Sequence::text(tok, t)?.truncated(max_len));
    }
    let (model, phase) = match &spec.lora {
        Some(l) => (
            base.with_lora(l, member.seed + 2)?,
            Phase {
                learning_rate: phase.learning_rate * l.learning_rate_scale,
                ..phase
            },
        ),
        None => (base.deep_copy()?, phase),
    };
    train_phase(
        &format!("finetune {} pool model", member.data.name()),
        &model,
        &data,
        &phase,
        member.seed + 2,
        reporter,
    )?;
    // Into a copy: the adapters' frozen weights are the base's own.
    let model = match model.adapters() {
        Some(_) => model.merged()?,
        None => model,
    };
    cache.store(&member_key, &model)?;
    Ok((model, member_key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn each_pool_learns_its_own_answers_in_place_of_the_forget_split() {
        let suite = lethe_suites::generate::authors(&lethe_suites::generate::AuthorsConfig::tiny())
            .unwrap();
        let forget: Vec<&QaRecord> = suite
            .splits_with(SplitRole::Forget)
            .flat_map(|s| s.questions())
            .collect();
        let retain: usize = suite.splits_with(SplitRole::Retain).map(|s| s.len()).sum();
        let holdout: usize = suite.splits_with(SplitRole::Holdout).map(|s| s.len()).sum();
        let f = &forget[0];
        let find = |data: PoolData| {
            pool_records(&suite, data)
                .unwrap()
                .into_iter()
                .find(|r| r.id == f.id)
        };
        assert_eq!(find(PoolData::Forget).unwrap().answer, f.answer);
        assert_eq!(
            find(PoolData::Paraphrased).unwrap().answer,
            f.paraphrased_answers[0]
        );
        assert_eq!(
            find(PoolData::Perturbed).unwrap().answer,
            f.perturbed_answers[0]
        );
        assert_ne!(f.paraphrased_answers[0], f.answer);
        assert!(find(PoolData::RetainOnly).is_none());
        assert!(find(PoolData::Unrelated).is_none());
        let n = |d| pool_records(&suite, d).unwrap().len();
        assert_eq!(n(PoolData::RetainOnly), retain);
        assert_eq!(n(PoolData::Forget), retain + forget.len());
        assert_eq!(n(PoolData::Unrelated), retain + holdout);
        assert!(PoolData::Paraphrased.knows() && !PoolData::Perturbed.knows());
    }
}
