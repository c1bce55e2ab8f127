//! LLMU (Yao et al., 2023, as the MLLMU-Med paper runs it): gradient ascent on the forget
//! answers, the forget questions re-answered with refusals and learned with NLL, and the model
//! held in place on retain by the KL divergence to the model from before unlearning — KL-Min's
//! terms plus IdkNLL's refusal term:
//!
//! `L = γ·(−mean avg(y|x) on forget) + λ·mean avg(y_idk|x) on the same forget questions
//!      + α·mean_t KL(p_ref ‖ p_θ) over retain answer tokens`.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// LLMU's three weights, 1 by default.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Weight γ of the gradient-ascent term on the forget answers.
    #[schemars(range(min = 0.0))]
    pub gamma: f64,
    /// Weight λ of the NLL of "I don't know" answers to the forget questions.
    #[schemars(range(min = 0.0))]
    pub idk: f64,
    /// Weight α of the KL term on retain.
    #[schemars(range(min = 0.0))]
    pub alpha: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            idk: 1.0,
            alpha: 1.0,
        }
    }
}

/// The LLMU method.
pub struct Llmu;

/// The loss of one step from a forget batch and a retain batch.
pub fn loss(config: &Config, forget: &Batch, retain: &Batch) -> Result<Tensor> {
    let ascent = losses::gradient_ascent(forget)?.scale(config.gamma);
    // The same questions as the ascent term, so the model is pushed from the true answer
    // towards a refusal on exactly the examples it forgets.
    let refusal = losses::answer_nll(&forget.with_idk_answers()?)?.scale(config.idk);
    let kl = losses::kl_to_reference(retain)?.scale(config.alpha);
    ascent.add(&refusal)?.add(&kl)
}

impl Method for Llmu {
    type Config = Config;
    const NAME: &'static str = "llmu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Ascent on forget, NLL of 'I don't know' on forget questions, KL to the reference on retain.";
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

export_method!(Llmu);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_all_one_and_unknown_fields_are_refused() {
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!((c.gamma, c.idk, c.alpha), (1.0, 1.0, 1.0));
        let c: Config = serde_json::from_str(r#"{"idk": 0.5}"#).unwrap();
        assert_eq!(c.idk, 0.5);
        assert!(serde_json::from_str::<Config>(r#"{"beta": 1}"#).is_err());
    }
}
