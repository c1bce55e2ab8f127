//! CE-U (Yang et al., 2025, "Cross Entropy Unlearning"): cross-entropy towards the model's own
//! (detached) distribution with the true token removed, `q_t = softmax(z_t with z_t,y_t = −∞)`,
//! `L = mean_t CE(pθ,t, q_t)` over the answer positions after each answer's first
//! `skip_first` tokens (1, as the peer). No retain term.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// CE-U's knob.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Answer tokens left out at the start of each answer.
    pub skip_first: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { skip_first: 1 }
    }
}

/// The CE-U method.
pub struct CeU;

/// The loss of one forget batch.
pub fn loss(config: &Config, forget: &Batch) -> Result<Tensor> {
    let logits = forget.logits(Model::Current)?;
    let removed = logits
        .detach()
        .add(&forget.labels_one_hot().scale(losses::MASKED_LOGIT))?;
    let target = removed.log_softmax()?.exp();
    let mask = forget.answer_mask_from(config.skip_first);
    if mask.sum()?.to_scalar()? == 0.0 {
        return Err(PluginError::InvalidInput(format!(
            "no answer in the {} batch is longer than skip_first = {} tokens",
            forget.split(),
            config.skip_first
        )));
    }
    losses::cross_entropy_to(forget, &target, &mask)
}

impl Method for CeU {
    type Config = Config;
    const NAME: &'static str = "ceu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Cross-entropy towards the model's own distribution without the true token.";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        loss(config, batches.forget()?)
    }
}

export_method!(CeU);
