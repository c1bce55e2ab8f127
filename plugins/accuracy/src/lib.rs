//! Accuracy on closed questions (yes/no, multiple choice): the model's choice is the option
//! whose tokens have the highest mean log-probability under teacher forcing (length-normalised,
//! so a long option is not penalised for its length); an example scores 1 when that is the
//! correct option. Open questions (no options) are skipped; a split without closed questions
//! gets no value.

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;

/// Accuracy has no knobs.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The accuracy metric.
pub struct Accuracy;

/// The index of the option with the highest mean token log-probability (the first on a tie),
/// or `None` when there are no options or an option has no tokens.
pub fn chosen_option(option_logprobs: &[Vec<f32>]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, lp) in option_logprobs.iter().enumerate() {
        if lp.is_empty() {
            return None;
        }
        let avg = lp.iter().map(|&l| f64::from(l)).sum::<f64>() / lp.len() as f64;
        // Strictly greater keeps the first of equal options, so the choice does not depend on
        // anything but the values.
        if best.is_none_or(|(_, b)| avg > b) {
            best = Some((i, avg));
        }
    }
    best.map(|(i, _)| i)
}

/// 1 or 0 for a closed question, `None` for an open one; an error when the observations do not
/// fit the question.
pub fn example_accuracy(example: &Example) -> Result<Option<f64>> {
    if example.options.is_empty() {
        return Ok(None);
    }
    let correct = example.correct_option.ok_or_else(|| {
        PluginError::InvalidInput(format!(
            "example '{}' has options but no correct option",
            example.id
        ))
    })?;
    let lps = example
        .option_logprobs
        .as_deref()
        .ok_or_else(|| missing("option log-probs", example))?;
    if lps.len() != example.options.len() {
        return Err(PluginError::InvalidInput(format!(
            "example '{}' has {} options but log-probs for {}",
            example.id,
            example.options.len(),
            lps.len()
        )));
    }
    let chosen = chosen_option(lps).ok_or_else(|| {
        PluginError::InvalidInput(format!(
            "example '{}' has an option without tokens",
            example.id
        ))
    })?;
    Ok(Some(if chosen == correct as usize { 1.0 } else { 0.0 }))
}

impl Metric for Accuracy {
    type Config = Config;
    const NAME: &'static str = "accuracy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Closed-question accuracy: the option with the highest mean token log-prob is the answer.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::OptionLogprobs];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "accuracy".to_owned(),
            reading: Reading::HigherKnows,
            summary: "share of closed questions whose most likely option (mean token log-prob) \
                      is the correct one"
                .to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut column = Vec::new();
            for example in &split.examples {
                if let Some(v) = example_accuracy(example)? {
                    values.push(example_value("accuracy", &split.split, &example.id, v));
                    column.push(v);
                }
            }
            if let Some(m) = mean(&column) {
                values.push(split_value("accuracy", &split.split, m));
            }
        }
        Ok(values)
    }
}

export_metric!(Accuracy);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn closed(id: &str, options: &[&str], correct: Option<u32>, lps: Vec<Vec<f32>>) -> Example {
        Example {
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            correct_option: correct,
            option_logprobs: Some(lps),
            ..lethe_plugin_sdk::metric::example(id, "Is it?", "Yes")
        }
    }

    #[test]
    fn the_choice_is_by_mean_not_total_log_prob() {
        // Option 1 has the lower total (-3.0 < -2.0) but the higher mean (-0.75 > -1.0).
        let lps = vec![vec![-1.0, -1.0], vec![-0.5, -0.5, -1.0, -1.0]];
        assert_eq!(chosen_option(&lps), Some(1));
        // A tie keeps the first.
        assert_eq!(chosen_option(&[vec![-1.0], vec![-0.5, -1.5]]), Some(0));
        assert_eq!(chosen_option(&[]), None);
        assert_eq!(chosen_option(&[vec![-1.0], vec![]]), None);
    }

    #[test]
    fn examples_score_one_or_zero_and_open_questions_are_skipped() {
        let right = closed("a", &["yes", "no"], Some(0), vec![vec![-0.1], vec![-2.0]]);
        let wrong = closed("b", &["yes", "no"], Some(1), vec![vec![-0.1], vec![-2.0]]);
        let open = closed("c", &[], None, vec![]);
        assert_eq!(example_accuracy(&right).unwrap(), Some(1.0));
        assert_eq!(example_accuracy(&wrong).unwrap(), Some(0.0));
        assert_eq!(example_accuracy(&open).unwrap(), None);

        let split = ObservedSplit {
            model: ModelRole::Subject,
            split: "test".into(),
            examples: vec![right, wrong, open],
        };
        let values = Accuracy::score(Config {}, &[split]).unwrap();
        assert_eq!(values.len(), 3);
        let total = values.iter().find(|v| v.example.is_none()).unwrap();
        assert_eq!((total.split.as_str(), total.value), ("test", 0.5));
    }

    #[test]
    fn malformed_closed_questions_are_named() {
        let no_key = closed("k", &["yes", "no"], None, vec![vec![-0.1], vec![-2.0]]);
        let e = example_accuracy(&no_key).unwrap_err().to_string();
        assert!(e.contains("'k'") && e.contains("no correct option"), "{e}");
        let short = closed("s", &["yes", "no"], Some(0), vec![vec![-0.1]]);
        let e = example_accuracy(&short).unwrap_err().to_string();
        assert!(e.contains("2 options but log-probs for 1"), "{e}");
        let mut none = closed("n", &["yes", "no"], Some(0), vec![]);
        none.option_logprobs = None;
        let e = example_accuracy(&none).unwrap_err().to_string();
        assert!(e.contains("'n'") && e.contains("option log-probs"), "{e}");
    }
}
