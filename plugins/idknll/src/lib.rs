//! IdkNLL ("IDK"): teach the model to refuse. The forget questions are answered with refusals
//! from the suite's "I don't know" pool and learned with NLL, with NLL on retain:
//! `L = γ·mean avg(y_idk|x) on forget questions + α·mean avg(y|x) on retain`.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// γ weighs the forget term, α the retain term.
pub type Config = lethe_plugin_sdk::Weights;

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
            let idk = losses::answer_nll(&forget)?.scale(config.gamma);
            let r = losses::answer_nll(&retain)?.scale(config.alpha);
            session.step(&idk.add(&r)?)?;
        }
        Ok(())
    }
}

export_method!(IdkNll);
