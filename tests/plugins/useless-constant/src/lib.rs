//! Test metric with no signal: 0.5 on every split, whatever the model. A meta-evaluation
//! must find it unfaithful (its pools tie) and rank it last.

use lethe_plugin_sdk::metric::split_value;
use lethe_plugin_sdk::prelude::*;

/// No settings.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The metric.
pub struct Constant;

impl Metric for Constant {
    type Config = Config;
    const NAME: &'static str = "useless-constant";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "The same value for every model (a metric with no signal).";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "constant".to_owned(),
            reading: Reading::HigherKnows,
            summary: "always 0.5".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        Ok(observed
            .iter()
            .map(|s| split_value("constant", &s.split, 0.5))
            .collect())
    }
}

export_metric!(Constant);
