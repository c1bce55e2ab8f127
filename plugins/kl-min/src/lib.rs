//! KL minimisation (KL-Min): gradient ascent on forget, held in place on retain by the KL
//! divergence to the model from before unlearning, averaged over retain answer tokens:
//! `L = γ·(−mean avg(y|x) on forget) + α·mean_t KL(p_ref ‖ p_θ) on retain`.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// γ weighs the forget term, α the retain term.
pub type Config = lethe_plugin_sdk::Weights;

/// The KL-Min method.
pub struct KlMin;

/// Mean KL(p_ref ‖ p_θ) over a batch's answer tokens.
pub fn retain_kl(retain: &Batch) -> Result<Tensor> {
    losses::kl_to_reference(retain)
}

impl Method for KlMin {
    type Config = Config;
    const NAME: &'static str = "kl-min";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Gradient ascent on forget, KL to the reference on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];
    const NEEDS_REFERENCE: bool = true;

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        config.combine(
            &losses::gradient_ascent(batches.forget()?)?,
            &retain_kl(batches.retain()?)?,
        )
    }
}

export_method!(KlMin);
