//! Gradient difference (GradDiff): gradient ascent on forget, descent on retain.
//!
//! `L = γ·(-mean avg(y|x) on forget) + α·(mean avg(y|x) on retain)`, defaults γ = α = 1.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// γ weighs the forget term, α the retain term.
pub type Config = lethe_plugin_sdk::Weights;

/// The gradient-difference method.
pub struct GradDiff;

/// The GradDiff loss of a forget batch and a retain batch.
pub fn loss(config: &Config, forget: &Batch, retain: &Batch) -> Result<Tensor> {
    config.combine(
        &losses::gradient_ascent(forget)?,
        &losses::answer_nll(retain)?,
    )
}

impl Method for GradDiff {
    type Config = Config;
    const NAME: &'static str = "graddiff";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Gradient ascent on forget plus NLL on retain (GradDiff).";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        loss(config, batches.forget()?, batches.retain()?)
    }
}

export_method!(GradDiff);
