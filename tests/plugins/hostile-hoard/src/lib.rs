//! Hostile test plugin: a method that keeps every tensor it makes — the logits of its batches
//! and 1024 × 1024 constants — without ever stepping. The host must stop it at its limit of
//! live tensor memory, not when the machine runs out.

use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The hoarding method.
pub struct Hoard;

impl Method for Hoard {
    type Config = Config;
    const NAME: &'static str = "hostile-hoard";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Keeps every tensor it makes.";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn unlearn(_config: Config, session: &mut Session) -> Result<()> {
        let mut kept = Vec::new();
        loop {
            let batch = session.next_batch("forget")?;
            kept.push(batch.logits(Model::Current)?);
            kept.push(Tensor::full(&[1024, 1024], 1.0)?);
            std::hint::black_box(&kept);
        }
    }
}

export_method!(Hoard);
