//! Hostile test plugin: unbounded recursion. The host must contain it and carry on.

use lethe_plugin_sdk::metric::split_value;
use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The hostile metric.
pub struct Hostile;

impl Metric for Hostile {
    type Config = Config;
    const NAME: &'static str = "hostile-recursion";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "unbounded recursion";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "value".to_owned(),
            reading: Reading::HigherBetter,
            summary: "never produced".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        Ok(vec![split_value(
            "value",
            "forget",
            f64::from(dive(observed.len() as u32 + 1)),
        )])
    }
}

export_metric!(Hostile);

/// Recurse with a large frame so the stack runs out quickly.
fn dive(n: u32) -> u32 {
    let frame = std::hint::black_box([n; 64]);
    if n == 0 {
        frame[0]
    } else {
        dive(n.wrapping_add(1)).wrapping_add(frame[3])
    }
}
