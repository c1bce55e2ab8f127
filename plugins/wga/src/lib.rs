//! Weighted gradient ascent (WGA, Wang et al., 2025, "Rethinking LLM Unlearning Objectives"):
//! gradient ascent in which each answer token is weighted by its own probability, so tokens the
//! model already gives up on stop pulling, `L_forget = −mean_t (w_t·l_t)`, `w_t = p_t^β`
//! (detached), plus NLL on retain: `L = γ·L_forget + α·mean avg(y|x)` (β = 1).

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// WGA's knobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Exponent β of the token weights.
    #[schemars(range(min = 0.0))]
    pub beta: f64,
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
            beta: 1.0,
            gamma: 1.0,
            alpha: 1.0,
        }
    }
}

/// The WGA method.
pub struct Wga;

/// The forget term.
pub fn forget_loss(config: &Config, forget: &Batch) -> Result<Tensor> {
    let weights = losses::token_probabilities(forget)?.powf(config.beta);
    losses::weighted_ascent(forget, &weights)
}

impl Method for Wga {
    type Config = Config;
    const NAME: &'static str = "wga";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Gradient ascent weighted per token by p^beta, NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        let f = forget_loss(config, batches.forget()?)?.scale(config.gamma);
        f.add(&losses::answer_nll(batches.retain()?)?.scale(config.alpha))
    }
}

export_method!(Wga);
