//! Test metric with no signal about the model: the mean length of a split's questions, in
//! characters. Every model is asked the same questions, so a meta-evaluation must find it
//! unfaithful and rank it last.

use lethe_plugin_sdk::metric::split_value;
use lethe_plugin_sdk::prelude::*;

/// No settings.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The metric.
pub struct QuestionLength;

impl Metric for QuestionLength {
    type Config = Config;
    const NAME: &'static str = "useless-question-length";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Mean question length (reads nothing of the model).";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "question_length".to_owned(),
            reading: Reading::HigherKnows,
            summary: "mean characters per question".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        Ok(observed
            .iter()
            .filter(|s| !s.examples.is_empty())
            .map(|s| {
                let total: usize = s.examples.iter().map(|e| e.question.chars().count()).sum();
                split_value(
                    "question_length",
                    &s.split,
                    total as f64 / s.examples.len() as f64,
                )
            })
            .collect())
    }
}

export_metric!(QuestionLength);
