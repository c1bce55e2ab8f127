//! Hostile test plugin: a method that asks for the evaluation-only "holdout" split, ignores
//! the refusal, and then unlearns as gradient ascent does. Its run succeeds; only the host's
//! record of denied requests shows the attempt (the conformance check must fail it).

use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The method that snoops quietly.
pub struct Swallow;

impl Method for Swallow {
    type Config = Config;
    const NAME: &'static str = "hostile-swallow";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Asks for the holdout split, ignores the refusal, ascends.";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn unlearn(_config: Config, session: &mut Session) -> Result<()> {
        // Denied; a method that carried on with it would see evaluation data.
        let _ = session.next_batch("holdout");
        while session.steps_left() > 0 {
            let forget = session.next_batch("forget")?;
            let loss = forget.mean_nll(Model::Current)?.mean()?.neg();
            session.step(&loss)?;
        }
        Ok(())
    }
}

export_method!(Swallow);
