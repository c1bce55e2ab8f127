//! A model attack as a third party would write it: plain finetuning on the forget split.
//!
//! Model attacks reuse the method SDK (relearning is training): `lethe run --attack-method
//! attack-finetune --plugin attack_finetune.wasm` runs it on a copy of every model row and
//! re-measures the copy, with `method:attack-finetune` in the `attack` column.

use lethe_plugin_sdk::prelude::*;

/// How many of the step budget's steps to take.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Share of the step budget to use, in (0, 1].
    pub share: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { share: 1.0 }
    }
}

/// The finetuning attack.
pub struct FinetuneAttack;

impl Method for FinetuneAttack {
    type Config = Config;
    const NAME: &'static str = "attack-finetune";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "A model attack: finetune on the forget split (lower its answer NLL).";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        if !(config.share > 0.0 && config.share <= 1.0) {
            return Err(PluginError::InvalidConfig(format!(
                "share {} is not in (0, 1]",
                config.share
            )));
        }
        let steps = ((f64::from(session.steps_left()) * config.share).ceil() as u32).max(1);
        for _ in 0..steps {
            let batch = session.next_batch("forget")?;
            session.step(&batch.mean_nll(Model::Current)?.mean()?)?;
        }
        Ok(())
    }
}

export_method!(FinetuneAttack);
