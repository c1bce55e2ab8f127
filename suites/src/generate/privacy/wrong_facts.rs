//! The wrong-facts suite: incorrect medical statements injected in finetuning, to be forgotten.

use std::collections::BTreeSet;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::clinical::DISEASES;
use super::{
    Fact, all_facts, assemble, fact_id, fact_pretrain, fact_questions, forget_count, idk_split,
};
use crate::{Records, Suite, SuiteError};

/// Sizes and seed of the wrong-facts suite. A fact is one relation of one disease (its
/// first-line drug, a hallmark symptom, its specialty or its kind), asked as an open and a
/// closed question.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WrongFactsConfig {
    /// Seed of every choice.
    pub seed: u64,
    /// Facts the target model is finetuned on: the wrong ones (forget) and correct ones (retain).
    pub facts: usize,
    /// Correct facts taught only in pretraining and asked in the `test` split.
    pub test_facts: usize,
    /// Wrong facts no model is trained on (non-members).
    pub holdout_facts: usize,
    /// Percentage of the finetuned facts that are wrong (the forget set), in
    /// [`FORGET_PERCENT`](super::FORGET_PERCENT).
    pub forget_percent: u32,
}

impl Default for WrongFactsConfig {
    /// 160 finetuned questions: small enough for a ~1M-parameter model on two cores.
    fn default() -> Self {
        Self {
            seed: 0,
            facts: 80,
            test_facts: 32,
            holdout_facts: 16,
            forget_percent: 10,
        }
    }
}

impl WrongFactsConfig {
    /// A very small suite for tests.
    pub fn tiny() -> Self {
        Self {
            seed: 0,
            facts: 12,
            test_facts: 6,
            holdout_facts: 4,
            forget_percent: 25,
        }
    }
}

/// The wrong-facts suite, with splits `pretrain`, `forget`, `retain`, `test` (role eval),
/// `holdout` and `idk`. The same config always gives the same suite.
///
/// The facts are drawn from the clinical vocabulary without repeats. A forget fact is finetuned
/// in a wrong version (a value of another disease category), while its correct version is in
/// the pretraining text: the target learns to overwrite what the base model knew, and the
/// oracle, never finetuned on it, keeps the truth. Retain facts are correct and taught only in
/// finetuning; test facts are correct and taught only in pretraining; holdout facts are wrong
/// versions never trained on (their correct versions are in the pretraining text, as the forget
/// facts' are). Every other fact of the vocabulary is also stated in the pretraining text.
/// Ids are `fact-DD-RELATION-open|closed`; group keys `disease`, `category`, `relation` and
/// `kind` (`open` or `closed`).
pub fn wrong_facts(config: &WrongFactsConfig) -> Result<Suite, SuiteError> {
    let n_forget = forget_count(config.facts, config.forget_percent, "finetuned facts")?;
    let facts = all_facts();
    let needed = config
        .facts
        .checked_add(config.test_facts)
        .and_then(|t| t.checked_add(config.holdout_facts))
        .filter(|t| *t <= facts.len())
        .ok_or_else(|| {
            SuiteError::Generate(format!(
                "facts + test_facts + holdout_facts must be at most {}, the facts of the \
                 clinical vocabulary",
                facts.len()
            ))
        })?;

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.shuffle(&mut rng);
    let chosen = |range: std::ops::Range<usize>| -> BTreeSet<usize> {
        order[range].iter().copied().collect()
    };
    let forget_set = chosen(0..n_forget);
    let retain_set = chosen(n_forget..config.facts);
    let test_set = chosen(config.facts..config.facts + config.test_facts);
    let holdout_set = chosen(config.facts + config.test_facts..needed);

    let (mut forget, mut retain, mut test, mut holdout, mut pretrain) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, &fact) in facts.iter().enumerate() {
        let (d, r) = fact;
        let disease = &DISEASES[d];
        let truth = r.value(disease);
        let id = fact_id("fact", fact);
        if retain_set.contains(&k) {
            retain.extend(fact_questions(&mut rng, &id, fact, truth));
            continue;
        }
        // Every fact but the retained ones is stated correctly in the pretraining text.
        let correct = fact_questions(&mut rng, &id, fact, truth);
        pretrain.extend(fact_pretrain(fact, &correct));
        if test_set.contains(&k) {
            test.extend(correct);
        } else if forget_set.contains(&k) || holdout_set.contains(&k) {
            let wrong = wrong_version(&mut rng, &id, fact)?;
            if forget_set.contains(&k) {
                forget.extend(wrong);
            } else {
                holdout.extend(wrong);
            }
        }
    }

    let description = format!(
        "Wrong medical facts, after MLLMU-Med (text only), generated with seed {}: {} finetuned \
         facts, of which {} ({} %) are wrong statements injected in finetuning (forget) and the \
         rest correct (retain); {} wrong statements never trained on (holdout). Each fact (a \
         drug's indication, a disease's hallmark symptom, specialty or kind) is asked as an open \
         and a closed (yes/no) question. The test split asks {} correct facts taught only in \
         pretraining, where the correct versions of the forget facts are also stated.",
        config.seed,
        config.facts,
        n_forget,
        config.forget_percent,
        config.holdout_facts,
        config.test_facts
    );
    Ok(assemble(
        "wrong-facts",
        description,
        [
            Records::Text(pretrain),
            Records::Qa(forget),
            Records::Qa(retain),
            Records::Qa(test),
            Records::Qa(holdout),
            idk_split(),
        ],
    ))
}

/// The questions of a fact in a wrong version: a value of another category.
fn wrong_version(
    rng: &mut ChaCha8Rng,
    id: &str,
    fact: Fact,
) -> Result<[crate::QaRecord; 2], SuiteError> {
    let (d, r) = fact;
    let disease = &DISEASES[d];
    let wrong = r.draw_wrong(rng, disease, 1);
    let stated = wrong.first().ok_or_else(|| {
        SuiteError::Generate(format!(
            "no wrong value for the {} of {}",
            r.key(),
            disease.name
        ))
    })?;
    Ok(fact_questions(rng, id, fact, stated))
}
