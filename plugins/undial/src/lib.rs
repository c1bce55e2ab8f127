//! UNDIAL (Dong et al., 2024, "Self-Distillation with Adjusted Logits"): distil the model
//! towards the reference's own distribution with the true token's logit lowered by β, at every
//! answer position, `q_t = softmax(z_ref,t − β·onehot(y_t))`, `L = mean_t CE(pθ,t, q_t)`.
//! No retain term (β = 10).
//!
//! The peer also distils prompt and padding positions and indexes the one-hot with the label
//! −100 there; here only answer positions count.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// UNDIAL's knob.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How far the true token's logit is lowered in the target.
    #[schemars(range(min = 0.0))]
    pub beta: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { beta: 10.0 }
    }
}

/// The UNDIAL method.
pub struct Undial;

/// The loss of one forget batch.
pub fn loss(config: &Config, forget: &Batch) -> Result<Tensor> {
    let adjusted = forget
        .logits(Model::Reference)?
        .sub(&forget.labels_one_hot().scale(config.beta))?;
    let target = adjusted.log_softmax()?.exp().detach();
    losses::cross_entropy_to(forget, &target, &forget.answer_mask())
}

impl Method for Undial {
    type Config = Config;
    const NAME: &'static str = "undial";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Self-distillation towards the reference with the true token's logit lowered.";
    const SPLITS: &'static [&'static str] = &["forget"];
    const NEEDS_REFERENCE: bool = true;

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        loss(config, batches.forget()?)
    }
}

export_method!(Undial);
