//! IdkDPO (Maini et al., 2024 — TOFU's preference baseline): DPO with an "I don't know" refusal
//! as the preferred answer and the true answer as the dispreferred one,
//! `L_forget = −(2/β)·mean logσ(β[(log πθ(w) − log π_ref(w)) − (log πθ(l) − log π_ref(l))])`,
//! w = a refusal from the suite's pool, l = the true answer, plus NLL on retain:
//! `L = γ·L_forget + α·mean avg(y|x) on retain` (β = 0.1).

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// IdkDPO's knobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inverse temperature β (> 0).
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

/// The IdkDPO method.
pub struct IdkDpo;

/// The loss of one step.
pub fn loss(config: &Config, forget: &Batch, retain: &Batch) -> Result<Tensor> {
    let refusal = forget.with_idk_answers()?;
    let f = losses::dpo(config.beta, &refusal, forget)?.scale(config.gamma);
    f.add(&losses::answer_nll(retain)?.scale(config.alpha))
}

impl Method for IdkDpo {
    type Config = Config;
    const NAME: &'static str = "idkdpo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "DPO preferring an 'I don't know' refusal over the true answer, NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain", "idk"];
    const NEEDS_REFERENCE: bool = true;

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        while session.steps_left() > 0 {
            let forget = session.next_batch("forget")?;
            let retain = session.next_batch("retain")?;
            session.step(&loss(&config, &forget, &retain)?)?;
        }
        Ok(())
    }
}

export_method!(IdkDpo);
