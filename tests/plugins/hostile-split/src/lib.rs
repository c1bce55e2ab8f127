//! Hostile test plugin: a method that declares only "forget" but asks the host for the
//! evaluation-only "holdout" split. The host must deny it.

use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The snooping method.
pub struct Snoop;

impl Method for Snoop {
    type Config = Config;
    const NAME: &'static str = "hostile-split";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Asks for the holdout split.";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn unlearn(_config: Config, session: &mut Session) -> Result<()> {
        let batch = session.next_batch("holdout")?;
        let loss = batch.mean_nll(Model::Current)?.mean()?;
        session.step(&loss)?;
        Ok(())
    }
}

export_method!(Snoop);
