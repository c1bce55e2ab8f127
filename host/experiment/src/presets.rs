//! Presets: the settings a `--preset` stands for, as data.

use std::collections::BTreeMap;

use lethe_pipeline::{LearnSpec, ModelPreset, ObserveSettings, Phase, UnlearnSpec};
use lethe_suites::generate::AuthorsConfig;
use serde::{Deserialize, Serialize};

/// Most tokens the default preset finetunes on (see `Phase::token_budget`): its 24 epochs over
/// the generated authors suite (about 0.2 M tokens) fit; on TOFU's 4,000 questions (about
/// 0.3 M tokens an epoch) it allows five.
pub const DEFAULT_FINETUNE_TOKENS: u64 = 1_500_000;
/// The tiny preset's budget, in the same proportion to its suite.
pub const TINY_FINETUNE_TOKENS: u64 = 300_000;

/// A named size of the whole experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The embedded default: a ~1 M-parameter model on the generated authors suite.
    Default,
    /// Seconds, for smoke tests.
    Tiny,
}

/// The settings a preset stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetSettings {
    /// Size of the generated authors suite.
    pub suite: AuthorsConfig,
    /// The learn stage.
    pub learn: LearnSpec,
    /// The unlearn stage.
    pub unlearn: UnlearnSpec,
    /// The observe stage.
    pub observe: ObserveSettings,
}

impl Preset {
    /// The settings, with `seed` as the learn stage's seed and `suite_seed` as the generated
    /// suite's (a seed sweep keeps the suite and varies the models).
    pub fn settings(self, seed: u64, suite_seed: u64) -> PresetSettings {
        match self {
            Preset::Default => PresetSettings {
                suite: AuthorsConfig {
                    seed: suite_seed,
                    ..AuthorsConfig::default()
                },
                learn: LearnSpec {
                    preset: ModelPreset::Small,
                    vocab_size: 1024,
                    pretrain: Phase {
                        epochs: 8,
                        batch_size: 32,
                        learning_rate: 3e-3,
                        token_budget: None,
                    },
                    finetune: Phase {
                        epochs: 24,
                        batch_size: 16,
                        learning_rate: 2e-3,
                        token_budget: Some(DEFAULT_FINETUNE_TOKENS),
                    },
                    seed,
                    replay: 0.0,
                    checkpoint: None,
                    lora: None,
                },
                unlearn: UnlearnSpec {
                    epochs: 5,
                    batch_size: 8,
                    learning_rate: 3e-4,
                    method_learning_rates: BTreeMap::new(),
                    lora: None,
                },
                observe: ObserveSettings {
                    batch_size: 64,
                    max_new_tokens: 40,
                    eval_first: BTreeMap::new(),
                },
            },
            Preset::Tiny => PresetSettings {
                suite: AuthorsConfig {
                    seed: suite_seed,
                    ..AuthorsConfig::tiny()
                },
                learn: LearnSpec {
                    preset: ModelPreset::Tiny,
                    vocab_size: 400,
                    pretrain: Phase {
                        epochs: 2,
                        batch_size: 16,
                        learning_rate: 3e-3,
                        token_budget: None,
                    },
                    finetune: Phase {
                        epochs: 10,
                        batch_size: 16,
                        learning_rate: 3e-3,
                        token_budget: Some(TINY_FINETUNE_TOKENS),
                    },
                    seed,
                    replay: 0.0,
                    checkpoint: None,
                    lora: None,
                },
                unlearn: UnlearnSpec {
                    epochs: 2,
                    batch_size: 4,
                    learning_rate: 1e-4,
                    method_learning_rates: BTreeMap::new(),
                    lora: None,
                },
                observe: ObserveSettings {
                    batch_size: 32,
                    max_new_tokens: 24,
                    eval_first: BTreeMap::new(),
                },
            },
        }
    }
}
