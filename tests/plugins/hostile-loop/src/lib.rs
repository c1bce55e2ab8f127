//! Hostile test plugin: an infinite loop. The host must contain it and carry on.

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
    const NAME: &'static str = "hostile-loop";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "an infinite loop";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "value".to_owned(),
            reading: Reading::HigherBetter,
            summary: "never produced".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        // Spin without ever calling the host; fuel or the epoch guard must stop it.
        let mut x = observed.len() as u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            if x == 42 {
                break;
            }
        }
        Ok(vec![split_value("value", "forget", x as f64)])
    }
}

export_metric!(Hostile);
