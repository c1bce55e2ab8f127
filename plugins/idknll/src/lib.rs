//! IdkNLL ("IDK"): teach the model to refuse. The forget questions are answered with refusals
//! from the suite's "I don't know" pool and learned with NLL, with NLL on retain:
//! `L = γ·mean avg(y_idk|x) on forget questions + α·mean avg(y|x) on retain`.

use lethe_plugin_sdk::prelude::*;

/// Weights of the two terms.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Weight γ of the refusal term.
    #[schemars(range(min = 0.0))]
    pub gamma: f64,
    /// Weight α of the retain term.
    #[schemars(range(min = 0.0))]
    pub alpha: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            alpha: 1.0,
        }
    }
}

/// The IdkNLL method.
pub struct IdkNll;

impl Method for IdkNll {
    type Config = Config;
    const NAME: &'static str = "idknll";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "NLL of 'I don't know' answers to forget questions, NLL on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain", "idk"];

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        while session.steps_left() > 0 {
            let forget = session.next_batch("forget")?.with_idk_answers()?;
            let retain = session.next_batch("retain")?;
            let idk = forget.mean_nll(Model::Current)?.mean()?.scale(config.gamma);
            let r = retain.mean_nll(Model::Current)?.mean()?.scale(config.alpha);
            session.step(&idk.add(&r)?)?;
        }
        Ok(())
    }
}

export_method!(IdkNll);
