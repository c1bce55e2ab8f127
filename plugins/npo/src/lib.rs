//! Negative Preference Optimization (NPO, Zhang et al., 2024): the forget answers are treated
//! as dispreferred responses with no preferred one,
//! `L_forget = −(2/β)·mean logσ(−β[log πθ(y|x) − log π_ref(y|x)])`, plus NLL on retain:
//! `L = γ·L_forget + α·mean avg(y|x) on retain`.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// NPO's knobs (defaults as the paper and OpenUnlearning).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inverse temperature β, > 0 (the host refuses 0 by the schema).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
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
            beta: 0.1,
            gamma: 1.0,
            alpha: 1.0,
        }
    }
}

/// The NPO method.
pub struct Npo;

/// NPO's forget term on one batch.
pub fn forget_loss(beta: f64, forget: &Batch) -> Result<Tensor> {
    losses::npo(beta, forget)
}

impl Method for Npo {
    type Config = Config;
    const NAME: &'static str = "npo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Negative preference optimisation on forget plus NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];
    const NEEDS_REFERENCE: bool = true;

    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        let f = forget_loss(config.beta, batches.forget()?)?.scale(config.gamma);
        f.add(&losses::answer_nll(batches.retain()?)?.scale(config.alpha))
    }
}

export_method!(Npo);
