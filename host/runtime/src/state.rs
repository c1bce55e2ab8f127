//! What a method's `unlearn` call works on, apart from the interface that serves it: the model
//! and its frozen reference, the splits the method may read (seeded feeds), the step budget,
//! the optimiser and the tensors and batches behind the plugin's handles. Nothing here knows
//! the sandbox; `training` implements the WIT interface on top of it.

use std::collections::BTreeMap;

use candle_core::Tensor;
use lethe_model::llama::Output;
use lethe_model::train::{OptimSettings, Trainer};
use lethe_model::{FrozenModel, LanguageModel, Sequence, TokenBatch};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A host tensor behind a plugin's handle.
pub struct TensorEntry(pub(crate) Tensor, pub(crate) usize);

/// A host batch behind a plugin's handle.
pub struct BatchEntry {
    pub(crate) split: String,
    pub(crate) batch: TokenBatch,
    pub(crate) questions: Vec<Option<String>>,
    pub(crate) current: Option<(u32, Output)>,
    pub(crate) reference: Option<Output>,
    /// Masked label log-probs from the fused path (no logits in the graph), for methods that
    /// ask for nothing else: the current model's with the step they belong to, the reference's.
    pub(crate) current_lp: Option<(u32, Tensor)>,
    pub(crate) reference_lp: Option<Tensor>,
    /// Bytes counted against the plugin's limit for this batch.
    pub(crate) bytes: usize,
}

impl BatchEntry {
    /// A batch with nothing computed on it yet.
    pub(crate) fn new(split: String, batch: TokenBatch, questions: Vec<Option<String>>) -> Self {
        Self {
            split,
            batch,
            questions,
            current: None,
            reference: None,
            current_lp: None,
            reference_lp: None,
            bytes: 0,
        }
    }
}

/// One example a method may draw: its tokens and, for questions, the question text (needed to
/// re-ask it with an "I don't know" answer).
#[derive(Debug, Clone)]
pub struct FeedExample {
    /// The question, or `None` for plain text.
    pub question: Option<String>,
    /// The tokenised example.
    pub sequence: Sequence,
}

/// A split a method may read, served in a seeded order that reshuffles every pass.
#[derive(Debug, Clone)]
pub struct SplitFeed {
    pub(crate) examples: Vec<FeedExample>,
    order: Vec<usize>,
    cursor: usize,
}

impl SplitFeed {
    /// A feed over examples.
    pub fn new(examples: Vec<FeedExample>) -> Self {
        Self {
            order: (0..examples.len()).collect(),
            examples,
            cursor: usize::MAX,
        }
    }

    /// The next `n` examples, reshuffling (with `rng`) at the start of every pass.
    pub fn draw(&mut self, n: usize, rng: &mut ChaCha8Rng) -> Vec<FeedExample> {
        let mut out = Vec::with_capacity(n);
        if self.examples.is_empty() {
            return out;
        }
        while out.len() < n {
            if self.cursor >= self.order.len() {
                self.order.shuffle(rng);
                self.cursor = 0;
            }
            out.push(self.examples[self.order[self.cursor]].clone());
            self.cursor += 1;
        }
        out
    }
}

/// Everything a method's `unlearn` call works on. The pipeline builds it, the plugin drives
/// it, and the pipeline takes the trained model back out.
pub struct TrainingState {
    /// The model being unlearned.
    pub model: LanguageModel,
    /// The frozen reference (the model before unlearning), when the method asked for it.
    pub reference: Option<FrozenModel>,
    /// The splits the method may read.
    pub feeds: BTreeMap<String, SplitFeed>,
    /// Splits that exist but are refused, with the reason.
    pub refused: BTreeMap<String, String>,
    /// The refusals for `with-idk-answers`.
    pub idk_answers: Vec<String>,
    /// The budget.
    pub max_steps: u32,
    /// The batch size the run asks for.
    pub batch_size: u32,
    /// Largest batch a method may ask for.
    pub max_batch: u32,
    /// Optimiser settings.
    pub optim: OptimSettings,
    /// Loss of every step taken.
    pub losses: Vec<f64>,
    /// Calls the plugin made into the host.
    pub host_calls: u64,
    /// Requests of the plugin the host denied, in order (the plugin may have carried on).
    pub denials: Vec<String>,
    pub(crate) trainer: Trainer,
    pub(crate) rng: ChaCha8Rng,
}

impl TrainingState {
    /// Prepare a run over `model`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: LanguageModel,
        reference: Option<FrozenModel>,
        feeds: BTreeMap<String, SplitFeed>,
        refused: BTreeMap<String, String>,
        idk_answers: Vec<String>,
        max_steps: u32,
        batch_size: u32,
        optim: OptimSettings,
        seed: u64,
    ) -> Result<Self, lethe_model::ModelError> {
        let trainer = Trainer::for_model(&model, &optim)?;
        Ok(Self {
            model,
            reference,
            feeds,
            refused,
            idk_answers,
            max_steps,
            batch_size,
            max_batch: 512,
            optim,
            losses: Vec::new(),
            host_calls: 0,
            denials: Vec::new(),
            trainer,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    pub(crate) fn steps(&self) -> u32 {
        self.losses.len() as u32
    }
}
