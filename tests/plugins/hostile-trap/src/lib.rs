//! Hostile test plugin: a panic (trap). The host must contain it and carry on.

use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The hostile metric.
pub struct Hostile;

impl Metric for Hostile {
    type Config = Config;
    const NAME: &'static str = "hostile-trap";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "a panic (trap)";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "value".to_owned(),
            reading: Reading::HigherBetter,
            summary: "never produced".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        if observed.len() < usize::MAX {
            panic!("hostile plugin panicking on purpose");
        }
        Ok(Vec::new())
    }
}

export_metric!(Hostile);
