//! Gradient ascent (GA): raise the forget split's negative log-likelihood.
//!
//! `L = -mean_batch avg(y|x)` on forget batches, where `avg` is the answer's mean per-token NLL.
//! The simplest unlearning method and the usual lower bound of every table.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// GA has no knobs of its own: steps, batch size and learning rate are run settings.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The gradient-ascent method.
pub struct GradientAscent;

/// The GA loss of one forget batch: the negated mean of per-example `avg(y|x)`.
pub fn forget_loss(batch: &Batch) -> Result<Tensor> {
    losses::gradient_ascent(batch)
}

impl Method for GradientAscent {
    type Config = Config;
    const NAME: &'static str = "ga";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Gradient ascent on the forget split's answer NLL.";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn loss(_config: &Config, batches: &Batches) -> Result<Tensor> {
        forget_loss(batches.forget()?)
    }
}

export_method!(GradientAscent);
