//! SatImp (Yang et al., 2025, "Exploring Criteria of Loss Reweighting to Enhance LLM
//! Unlearning"): gradient ascent weighted per token by saturation and importance,
//! `L_forget = −mean_t (w_t·l_t)`, `w_t = p_t^β1·(1 − p_t)^β2` (detached), plus NLL on retain:
//! `L = γ·L_forget + α·mean avg(y|x)` (β1 = 5, β2 = 1, γ = 0.1, α = 1).

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// SatImp's knobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Exponent β1 of p (importance).
    #[schemars(range(min = 0.0))]
    pub beta1: f64,
    /// Exponent β2 of 1 − p (saturation).
    #[schemars(range(min = 0.0))]
    pub beta2: f64,
    /// Weight γ of the forget term.
    #[schemars(range(min = 0.0))]
    pub gamma: f64,
    /// Weight α of the retain term.
    #[schemars(range(min = 0.0))]
    pub alpha: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            beta1: 5.0,
            beta2: 1.0,
            gamma: 0.1,
            alpha: 1.0,
        }
    }
}

/// The SatImp method.
pub struct SatImp;

/// The forget term.
pub fn forget_loss(config: &Config, forget: &Batch) -> Result<Tensor> {
    let p = losses::token_probabilities(forget)?;
    let weights = p
        .powf(config.beta1)
        .mul(&p.affine(-1.0, 1.0).powf(config.beta2))?;
    losses::weighted_ascent(forget, &weights)
}

impl Method for SatImp {
    type Config = Config;
    const NAME: &'static str = "satimp";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Gradient ascent weighted per token by p^b1 (1-p)^b2, NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        let f = forget_loss(config, batches.forget()?)?.scale(config.gamma);
        f.add(&losses::answer_nll(batches.retain()?)?.scale(config.alpha))
    }
}

export_method!(SatImp);
