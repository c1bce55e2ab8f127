//! Benchmark plugin: calls `tensor.shape()` N times, the cheapest round trip through the
//! host, so that `lethe bench boundary` can time one guest→host call.

use lethe_plugin_sdk::prelude::*;

/// How many calls to make.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Number of host calls.
    pub calls: u32,
}

/// The benchmark method (it takes no step).
pub struct Calls;

impl Method for Calls {
    type Config = Config;
    const NAME: &'static str = "bench-calls";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Benchmark: N calls of tensor.shape().";
    const SPLITS: &'static [&'static str] = &["forget"];

    fn unlearn(config: Config, _session: &mut Session) -> Result<()> {
        let t = Tensor::scalar(1.0);
        let mut rank = 0usize;
        for _ in 0..config.calls {
            rank += t.shape().len();
        }
        std::hint::black_box(rank);
        Ok(())
    }
}

export_method!(Calls);
