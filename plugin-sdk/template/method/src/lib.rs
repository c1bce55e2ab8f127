//! A template for an unlearning method: `lethe plugin new NAME --kind method` writes a copy
//! of it, renamed, as a crate of its own. Write your loss in `unlearn`.
//!
//! As shipped it is KL-Min: gradient ascent on the forget split, held in place on the retain
//! split by the KL divergence to the frozen model from before unlearning,
//! `L = γ·(−mean avg(y|x) on forget) + α·mean_t KL(p_ref ‖ p_θ) on retain`.
//!
//! Build: `cargo build --release --target wasm32-wasip2`; check: `lethe plugin test
//! target/wasm32-wasip2/release/<name>.wasm`; run: `lethe run --plugin <that file>`.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

/// The configuration. Every field has a default; unknown fields are rejected. The host
/// validates user configuration against the JSON Schema derived from this type.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Weight of the forget term.
    #[schemars(range(min = 0.0))]
    pub gamma: f64,
    /// Weight of the retain (KL) term.
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

/// The method.
pub struct MyMethod;

impl Method for MyMethod {
    type Config = Config;
    const NAME: &'static str = "my-method";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Template: gradient ascent on forget, KL to the reference on retain.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];
    // Ask for the frozen reference model only when the loss uses it: it costs memory.
    const NEEDS_REFERENCE: bool = true;

    // The SDK runs the schedule: each step, one batch of every split in `SPLITS`, then a
    // step on this loss, until the host's budget is spent. Write `unlearn` instead when your
    // steps differ (see `lethe_plugin_sdk::schedule`).
    fn loss(config: &Config, batches: &Batches) -> Result<Tensor> {
        let (forget, retain) = (batches.forget()?, batches.retain()?);
        // The shared terms of the SDK (`losses`): −mean avg(y|x) on forget, and the KL to the
        // frozen reference over the retain answer tokens.
        let ascent = losses::gradient_ascent(forget)?;
        let kl = losses::kl_to_reference(retain)?;
        ascent.scale(config.gamma).add(&kl.scale(config.alpha))
    }
}

export_method!(MyMethod);
