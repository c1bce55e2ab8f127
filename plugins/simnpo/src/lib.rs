//! SimNPO (Fan et al., 2024): NPO without a reference model, length-normalised,
//! `L_forget = −(2/β)·mean logσ(β·(avg(y|x) − δ))`, plus NLL on retain:
//! `L = γ·L_forget + α·mean avg(y|x) on retain` (defaults β = 4.5, δ = 0, γ = 0.125, α = 1).

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// SimNPO's knobs.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inverse temperature β, > 0 (the host refuses 0 by the schema).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub beta: f64,
    /// Margin δ on the mean NLL.
    pub delta: f64,
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
            beta: 4.5,
            delta: 0.0,
            gamma: 0.125,
            alpha: 1.0,
        }
    }
}

/// The SimNPO method.
pub struct SimNpo;

/// SimNPO's forget term on one batch.
pub fn forget_loss(config: &Config, forget: &Batch) -> Result<Tensor> {
    losses::simnpo(config.beta, config.delta, forget)
}

impl Method for SimNpo {
    type Config = Config;
    const NAME: &'static str = "simnpo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Reference-free, length-normalised NPO plus NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        let f = forget_loss(config, batches.forget()?)?.scale(config.gamma);
        f.add(&losses::answer_nll(batches.retain()?)?.scale(config.alpha))
    }
}

export_method!(SimNpo);
