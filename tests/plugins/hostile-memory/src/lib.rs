//! Hostile test plugin: a memory bomb. The host must contain it and carry on.

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
    const NAME: &'static str = "hostile-memory";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "a memory bomb";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "value".to_owned(),
            reading: Reading::HigherBetter,
            summary: "never produced".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        // Grow a vector until the memory limit stops it.
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 16 << 20]);
            if hoard.len() == usize::MAX {
                break;
            }
            std::hint::black_box(&hoard);
        }
        Ok(vec![split_value("value", "forget", observed.len() as f64)])
    }
}

export_metric!(Hostile);
