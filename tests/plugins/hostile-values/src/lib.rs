//! Hostile test plugin: a metric whose values the host must refuse as the plugin's error,
//! never store or average: NaN and infinities, values for a split or an example it was not
//! given, and two values for one cell.

use lethe_plugin_sdk::metric::{example_value, split_value};
use lethe_plugin_sdk::prelude::*;

/// Which bad values to return.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// "non-finite" (default), "foreign-split", "foreign-example" or "twice".
    #[serde(default)]
    pub mode: String,
}

/// The metric.
pub struct BadValues;

impl Metric for BadValues {
    type Config = Config;
    const NAME: &'static str = "hostile-values";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Returns values the host must refuse.";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        ["nan", "inf", "neg_inf"]
            .iter()
            .map(|n| MetricOutput {
                name: (*n).to_owned(),
                reading: Reading::HigherBetter,
                summary: "not a number".to_owned(),
            })
            .collect()
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for s in observed {
            match config.mode.as_str() {
                "foreign-split" => out.push(split_value("nan", "secret-split", 0.5)),
                "foreign-example" => out.push(example_value("nan", &s.split, "no-such-id", 0.5)),
                "twice" => {
                    out.push(split_value("nan", &s.split, 0.5));
                    out.push(split_value("nan", &s.split, 0.25));
                }
                _ => {
                    out.push(split_value("nan", &s.split, f64::NAN));
                    out.push(split_value("inf", &s.split, f64::INFINITY));
                    out.push(split_value("neg_inf", &s.split, f64::NEG_INFINITY));
                }
            }
        }
        Ok(out)
    }
}

export_metric!(BadValues);
