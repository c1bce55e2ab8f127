//! Hostile test plugin: a method that never calls `step` and loops on a host primitive (the
//! logits of one forget batch). Guest time and fuel barely move; the host must stop it by the
//! time it spends without progress, host work included.

use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The stalling method.
pub struct Stall;

impl Method for Stall {
    type Config = Config;
    const NAME: &'static str = "hostile-stall";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Asks for logits forever and never steps.";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn unlearn(_config: Config, session: &mut Session) -> Result<()> {
        loop {
            // A fresh batch each time: a forward pass of host work per iteration.
            let batch = session.next_batch("forget")?;
            let logits = batch.logits(Model::Current)?;
            std::hint::black_box(logits.shape());
        }
    }
}

export_method!(Stall);
