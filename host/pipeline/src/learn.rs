//! The learn stage: tokenizer, base model, finetuned target and retain-only oracle, each
//! content-addressed by everything that determines it and reused between runs.

use std::path::{Path, PathBuf};

use candle_core::Device;
use lethe_model::train::{FitSettings, OptimSettings, fit};
use lethe_model::{Config, LanguageModel, Params, Sequence, Tokenizer};
use lethe_suites::{SplitRole, Suite};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::{PipelineError, Reporter};

/// The model shapes Lethe trains from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelPreset {
    /// The embedded default (~1 M parameters; minutes on two cores).
    Small,
    /// For tests: seconds.
    Tiny,
}

impl ModelPreset {
    /// The shape for a vocabulary size.
    pub fn config(self, vocab_size: usize) -> Config {
        match self {
            Self::Small => Config::small(vocab_size),
            Self::Tiny => Config::tiny(vocab_size),
        }
    }
}

/// One training phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Passes over the data.
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
}

/// Everything the learn stage depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnSpec {
    /// Model shape.
    pub preset: ModelPreset,
    /// Largest vocabulary the BPE may learn.
    pub vocab_size: usize,
    /// Pretraining of the base model on the suite's pretrain split.
    pub pretrain: Phase,
    /// Finetuning on forget ∪ retain (target) or retain only (oracle).
    pub finetune: Phase,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

/// The three models every run starts from.
pub struct Learned {
    /// The model before finetuning.
    pub base: LanguageModel,
    /// Finetuned on forget ∪ retain: the model to unlearn.
    pub target: LanguageModel,
    /// Finetuned on retain only: what perfect unlearning would give.
    pub oracle: LanguageModel,
    /// Cache keys of base, target and oracle.
    pub keys: [String; 3],
}

/// A content-addressed store of trained models.
pub struct ModelCache {
    dir: Option<PathBuf>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

impl ModelCache {
    /// A cache in `dir`, or none (always train).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("models").join(key))
    }

    fn load(&self, key: &str) -> Option<LanguageModel> {
        let path = self.path(key)?;
        if !path.join("model.safetensors").exists() {
            return None;
        }
        match LanguageModel::load(&path, &Device::Cpu) {
            Ok(m) => Some(m),
            Err(e) => {
                warn!(
                    "cached model {} is unreadable ({e}); training it again",
                    path.display()
                );
                None
            }
        }
    }

    fn store(&self, key: &str, model: &LanguageModel) -> Result<(), PipelineError> {
        let Some(path) = self.path(key) else {
            return Ok(());
        };
        // Write next to the final place and rename, so a crash never leaves a half entry.
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp)?;
        }
        model.save(&tmp)?;
        // Entries are immutable: the same key always holds the same model, so if another
        // process stored it meanwhile, keep theirs.
        if path.exists() || fs_err::rename(&tmp, &path).is_err() {
            fs_err::remove_dir_all(&tmp)?;
        }
        Ok(())
    }

    fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

fn qa_sequences(
    suite: &Suite,
    tok: &Tokenizer,
    roles: &[SplitRole],
    max_len: usize,
) -> Result<Vec<Sequence>, PipelineError> {
    let mut out = Vec::new();
    for split in suite.splits.iter().filter(|s| roles.contains(&s.role)) {
        for q in split.questions() {
            out.push(Sequence::qa(tok, &q.question, &q.answer)?.truncated(max_len));
        }
    }
    Ok(out)
}

fn all_text(suite: &Suite) -> Vec<String> {
    let mut texts = Vec::new();
    for split in &suite.splits {
        for q in split.questions() {
            texts.push(lethe_model::prompt(&q.question));
            texts.push(q.answer.clone());
            texts.extend(q.paraphrased_answers.iter().cloned());
            texts.extend(q.perturbed_answers.iter().cloned());
            texts.extend(q.paraphrased_questions.iter().cloned());
        }
        for t in split.texts() {
            texts.push(t.text.clone());
        }
    }
    texts
}

#[allow(clippy::too_many_arguments)]
fn train_phase(
    name: &str,
    model: &LanguageModel,
    data: &[Sequence],
    phase: &Phase,
    seed: u64,
    reporter: &dyn Reporter,
) -> Result<(), PipelineError> {
    let steps = data.len().div_ceil(phase.batch_size.max(1)) * phase.epochs;
    reporter.stage(name, steps as u64);
    let settings = FitSettings {
        epochs: phase.epochs,
        batch_size: phase.batch_size,
        optim: OptimSettings {
            learning_rate: phase.learning_rate,
            ..OptimSettings::default()
        },
        warmup: 0.05,
        seed,
    };
    let losses = fit(model, data, &settings, &mut |_, _, loss| {
        reporter.advance(1, &format!("loss {loss:.3}"));
    })?;
    reporter.finish();
    if let Some(last) = losses.last() {
        info!(
            stage = name,
            steps = losses.len(),
            final_loss = last,
            "trained"
        );
    }
    Ok(())
}

/// Train (or load from the cache) the base, target and oracle models of a suite.
pub fn learn(
    suite: &Suite,
    spec: &LearnSpec,
    cache: &ModelCache,
    reporter: &dyn Reporter,
) -> Result<Learned, PipelineError> {
    let spec_json =
        serde_json::to_string(spec).map_err(|e| PipelineError::Internal(e.to_string()))?;
    let digest = suite.digest();
    let seed = spec.seed.to_string();
    let base_key = key(&["base", &digest, &spec_json, &seed]);
    let target_key = key(&["target", &base_key]);
    let oracle_key = key(&["oracle", &base_key]);

    let cached = (
        cache.load(&base_key),
        cache.load(&target_key),
        cache.load(&oracle_key),
    );
    if let (Some(base), Some(target), Some(oracle)) = cached {
        info!(cache = ?cache.dir(), "reusing cached base, target and oracle models");
        return Ok(Learned {
            base,
            target,
            oracle,
            keys: [base_key, target_key, oracle_key],
        });
    }

    reporter.stage("tokenizer", 0);
    let texts = all_text(suite);
    let tok = Tokenizer::train(texts.iter().map(String::as_str), spec.vocab_size)?;
    reporter.finish();
    let cfg = spec.preset.config(tok.vocab_size());
    let max_len = cfg.max_position_embeddings;

    let base = match cache.load(&base_key) {
        Some(m) => m,
        None => {
            let params = Params::init(&cfg, spec.seed, &Device::Cpu)?;
            let model = LanguageModel::new(cfg.clone(), tok.clone(), params)?;
            let mut corpus = Vec::new();
            for split in suite.splits_with(SplitRole::Pretrain) {
                for t in split.texts() {
                    corpus.push(Sequence::text(&tok, &t.text)?.truncated(max_len));
                }
            }
            train_phase(
                "pretrain base",
                &model,
                &corpus,
                &spec.pretrain,
                spec.seed + 1,
                reporter,
            )?;
            cache.store(&base_key, &model)?;
            model
        }
    };
    let tok = base.tokenizer().clone();

    let target = match cache.load(&target_key) {
        Some(m) => m,
        None => {
            let model = base.deep_copy()?;
            let data = qa_sequences(
                suite,
                &tok,
                &[SplitRole::Forget, SplitRole::Retain],
                max_len,
            )?;
            train_phase(
                "finetune target",
                &model,
                &data,
                &spec.finetune,
                spec.seed + 2,
                reporter,
            )?;
            cache.store(&target_key, &model)?;
            model
        }
    };
    let oracle = match cache.load(&oracle_key) {
        Some(m) => m,
        None => {
            let model = base.deep_copy()?;
            let data = qa_sequences(suite, &tok, &[SplitRole::Retain], max_len)?;
            train_phase(
                "finetune oracle",
                &model,
                &data,
                &spec.finetune,
                spec.seed + 3,
                reporter,
            )?;
            cache.store(&oracle_key, &model)?;
            model
        }
    };
    Ok(Learned {
        base,
        target,
        oracle,
        keys: [base_key, target_key, oracle_key],
    })
}
