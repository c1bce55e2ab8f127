//! AltPO (Mekala et al., 2024, "Alternate Preference Optimization for Unlearning Factual
//! Knowledge"): DPO whose preferred answers are alternatives the model itself gives to the
//! forget questions and whose dispreferred answer is the true one,
//! `L_forget = mean_j −(2/β)·mean logσ(β[(log πθ(w_j) − log π_ref(w_j)) − (log πθ(l) − log π_ref(l))])`
//! over `alternatives` samples w_j, plus NLL on retain: `L = γ·L_forget + α·mean avg(y|x)`.
//!
//! The alternatives are sampled from the reference (the model before unlearning, as the paper
//! generates them before training) at `temperature`; the host redraws a sample that repeats the
//! true answer, so each w_j differs from l.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// AltPO's knobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inverse temperature β (> 0).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub beta: f64,
    /// Alternative answers drawn per forget question and step.
    #[schemars(range(min = 1, max = 32))]
    pub alternatives: u32,
    /// Sampling temperature of the alternatives (> 0).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub temperature: f64,
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
            alternatives: 5,
            temperature: 1.0,
            gamma: 1.0,
            alpha: 1.0,
        }
    }
}

/// The AltPO method.
pub struct AltPo;

/// The forget term: DPO against each alternative, averaged over the alternatives.
pub fn forget_loss(config: &Config, forget: &Batch) -> Result<Tensor> {
    let mut total = Tensor::scalar(0.0);
    for _ in 0..config.alternatives {
        let alternative = forget.with_sampled_answers(Model::Reference, config.temperature)?;
        total = total.add(&losses::dpo(config.beta, &alternative, forget)?)?;
    }
    Ok(total.scale(1.0 / f64::from(config.alternatives)))
}

impl Method for AltPo {
    type Config = Config;
    const NAME: &'static str = "altpo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "DPO preferring the model's own alternative answers over the true one, NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];
    const NEEDS_REFERENCE: bool = true;

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        while session.steps_left() > 0 {
            let forget = session.next_batch("forget")?;
            let retain = session.next_batch("retain")?;
            let f = forget_loss(&config, &forget)?.scale(config.gamma);
            session.step(&f.add(&losses::answer_nll(&retain)?.scale(config.alpha))?)?;
        }
        Ok(())
    }
}

export_method!(AltPo);
