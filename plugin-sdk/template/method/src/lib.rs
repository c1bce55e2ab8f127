//! A template for an unlearning method: `lethe plugin new NAME --kind method` writes a copy
//! of it, renamed, as a crate of its own. Write your loss in `unlearn`.
//!
//! As shipped it is KL-Min: gradient ascent on the forget split, held in place on the retain
//! split by the KL divergence to the frozen model from before unlearning,
//! `L = γ·(−mean avg(y|x) on forget) + α·mean_t KL(p_ref ‖ p_θ) on retain`.
//!
//! Build: `cargo build --release --target wasm32-wasip2`; check: `lethe plugin test
//! target/wasm32-wasip2/release/<name>.wasm`; run: `lethe run --plugin <that file>`.

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

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        // The schedule is yours: here, one forget and one retain batch per step until the
        // host's step budget is spent.
        while session.steps_left() > 0 {
            let forget = session.next_batch("forget")?;
            let retain = session.next_batch("retain")?;
            let ascent = forget.mean_nll(Model::Current)?.mean()?.neg();
            // Mean KL over the retain answer tokens.
            let kl = retain
                .kl_to_reference()?
                .sum()?
                .div(&retain.answer_mask().sum()?)?;
            let loss = ascent.scale(config.gamma).add(&kl.scale(config.alpha))?;
            let outcome = session.step(&loss)?;
            if outcome.step % 10 == 0 {
                log(
                    Level::Info,
                    &format!("step {} loss {:.4}", outcome.step, outcome.loss),
                );
            }
        }
        Ok(())
    }
}

export_method!(MyMethod);
