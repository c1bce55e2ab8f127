//! Probability of the reference answer: `exp(-avg(y|x))`, the geometric mean of the answer's
//! per-token probabilities under teacher forcing, per example and averaged per split (TOFU's
//! "Prob." column).

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;

/// Probability has no knobs.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The probability metric.
pub struct Probability;

/// `exp(-avg(y|x))` from per-token log-probabilities; `None` for an empty answer.
pub fn answer_probability(token_logprobs: &[f32]) -> Option<f64> {
    if token_logprobs.is_empty() {
        return None;
    }
    let total: f64 = token_logprobs.iter().map(|&l| f64::from(l)).sum();
    Some((total / token_logprobs.len() as f64).exp())
}

impl Metric for Probability {
    type Config = Config;
    const NAME: &'static str = "probability";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "exp(-mean answer-token NLL), the answer's length-normalised probability.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::AnswerLogprobs];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "probability".to_owned(),
            reading: Reading::HigherKnows,
            summary: "exp(-avg(y|x)) of the reference answer".to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut column = Vec::with_capacity(split.examples.len());
            for example in &split.examples {
                let logprobs = example
                    .answer_logprobs
                    .as_deref()
                    .ok_or_else(|| missing("answer log-probs", example))?;
                let p = answer_probability(logprobs).ok_or_else(|| {
                    PluginError::InvalidInput(format!(
                        "example '{}' has an empty answer",
                        example.id
                    ))
                })?;
                values.push(example_value("probability", &split.split, &example.id, p));
                column.push(p);
            }
            if let Some(m) = mean(&column) {
                values.push(split_value("probability", &split.split, m));
            }
        }
        Ok(values)
    }
}

export_metric!(Probability);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_is_geometric_mean_of_token_probabilities() {
        let lp = [(0.5f32).ln(), (0.125f32).ln()];
        let p = answer_probability(&lp).unwrap_or(f64::NAN);
        assert!((p - 0.25).abs() < 1e-6, "{p}");
        assert_eq!(answer_probability(&[]), None);
    }
}
