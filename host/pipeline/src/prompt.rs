//! How a question is put to a model: the prompt builder every stage shares. Observation puts
//! the clean prompt or an attack's; the attacks configure it (a paraphrase, a few-shot prefix,
//! an answer prefix, a plugin's prompts); teacher forcing and generation turn it into tokens.

use std::collections::BTreeMap;

use lethe_model::{Sequence, Tokenizer};
use lethe_suites::{QaRecord, SplitRole, Suite};
use rand::seq::IndexedRandom;

use crate::{PipelineError, rng_for};

/// What a [`Query`] does to each question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// The question as it is.
    Clean,
    /// Its first paraphrase.
    Paraphrase,
    /// The question, and the answer begun with this text.
    Prefixed(&'static str),
    /// Solved examples before it.
    FewShot,
}

/// How questions are put to the model: the clean prompt, or a query attack's.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    form: Form,
    shots: Vec<&'a QaRecord>,
    k: usize,
    seed: u64,
    /// A query-attack plugin's prompts by example id (`None`: left out).
    given: Option<BTreeMap<String, Option<String>>>,
}

impl<'a> Query<'a> {
    /// The clean prompt.
    pub fn clean() -> Self {
        Self {
            form: Form::Clean,
            shots: Vec::new(),
            k: 0,
            seed: 0,
            given: None,
        }
    }

    /// Whether this is the clean prompt (no attack rewrites the question).
    pub fn is_clean(&self) -> bool {
        self.form == Form::Clean && self.given.is_none()
    }

    /// The first paraphrase of each question (questions without one are left out).
    pub fn paraphrased() -> Self {
        Self {
            form: Form::Paraphrase,
            ..Self::clean()
        }
    }

    /// The clean prompt with the answer begun by `prefix`.
    pub fn jailbreak(prefix: &'static str) -> Self {
        Self {
            form: Form::Prefixed(prefix),
            ..Self::clean()
        }
    }

    /// `k` solved retain examples of `suite` before each question, drawn by `seed` and the
    /// question's id.
    pub fn few_shot(suite: &'a Suite, k: usize, seed: u64) -> Self {
        Self {
            form: Form::FewShot,
            shots: suite
                .splits_with(SplitRole::Retain)
                .flat_map(|s| s.questions())
                .collect(),
            k,
            seed,
            given: None,
        }
    }

    /// Prompts given by example id (a query-attack plugin's; `None`: the question is left out).
    pub fn given(prompts: BTreeMap<String, Option<String>>) -> Self {
        Self {
            given: Some(prompts),
            ..Self::clean()
        }
    }

    /// The solved examples prefixed to `record`'s question: k retain examples other than
    /// the record itself, drawn from a generator seeded by the run's seed and the record's id.
    pub fn shots_for(&self, record: &QaRecord) -> Vec<&'a QaRecord> {
        // k + 1 drawn, in random order, from every solved example and the record itself
        // dropped: a uniform k-subset of the others without copying the pool per question (the
        // pool is the whole retain set; that copy made a split's prompts quadratic in its size).
        let mut rng = rng_for(self.seed, &format!("few-shot:{}", record.id));
        self.shots
            .choose_multiple(&mut rng, self.k + 1)
            .copied()
            .filter(|s| s.id != record.id)
            .take(self.k)
            .collect()
    }

    /// The full prompt for `record` (without `<bos>`), or `None` when the attack does not apply
    /// to it (a paraphrase attack on a question without a paraphrase).
    pub fn prompt(&self, record: &QaRecord) -> Option<String> {
        if let Some(given) = &self.given {
            return given.get(&record.id).cloned().flatten();
        }
        match self.form {
            Form::Paraphrase => record
                .paraphrased_questions
                .first()
                .map(|q| lethe_model::prompt(q)),
            Form::Prefixed(prefix) => Some(format!(
                "{} {prefix}",
                lethe_model::prompt(&record.question)
            )),
            Form::FewShot => {
                let mut text = String::new();
                for s in self.shots_for(record) {
                    text.push_str(&lethe_model::prompt(&s.question));
                    text.push(' ');
                    text.push_str(&s.answer);
                    text.push_str("\n\n");
                }
                text.push_str(&lethe_model::prompt(&record.question));
                Some(text)
            }
            Form::Clean => Some(lethe_model::prompt(&record.question)),
        }
    }
}

/// `<bos>` + a prompt, cut from the front to leave room for `room` more tokens within
/// `max_len` (the end of a prompt holds the question and "Answer:").
pub fn prompt_ids(
    tok: &Tokenizer,
    prompt: &str,
    room: usize,
    max_len: usize,
) -> Result<Vec<u32>, PipelineError> {
    let mut ids = tok.encode(prompt)?;
    let keep = max_len.saturating_sub(room).saturating_sub(1).max(1);
    if ids.len() > keep {
        ids.drain(..ids.len() - keep);
    }
    ids.insert(0, tok.bos);
    Ok(ids)
}

/// A prompt and its answer for teacher forcing; a long prompt loses its start, never the
/// answer (which is cut only if it alone exceeds `max_len`).
pub fn prompted_sequence(
    tok: &Tokenizer,
    prompt: &str,
    answer: &str,
    max_len: usize,
) -> Result<Sequence, PipelineError> {
    let answer_ids = tok.encode_answer(answer)?;
    let mut ids = prompt_ids(tok, prompt, answer_ids.len(), max_len)?;
    let loss_from = ids.len();
    ids.extend(answer_ids);
    Ok(Sequence { ids, loss_from }.truncated(max_len))
}
