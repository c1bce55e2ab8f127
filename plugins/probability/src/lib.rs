//! Probability of the reference answer: `exp(-avg(y|x))`, the geometric mean of the answer's
//! per-token probabilities under teacher forcing, per example and averaged per split (TOFU's
//! "Prob." column).
//!
//! On closed questions (with options and a correct option) it also reports
//! `probability_options = p_c / (p_c + Σ p_wrong)`, each option's `p = exp(−avg)` of its tokens
//! (SPEC's probability with options): the share of the options' probability mass on the correct
//! one. Open questions get no such value, and a split without closed questions none either.

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

/// The options form's output name.
pub const OPTIONS: &str = "probability_options";

/// `p_c / Σ_i p_i` over a closed question's options, `p_i = exp(−avg)` of option i's tokens;
/// `None` for an open question, an error naming the example when the observations do not fit.
pub fn options_probability(example: &Example) -> Result<Option<f64>> {
    if example.options.is_empty() {
        return Ok(None);
    }
    let bad = |what: String| PluginError::InvalidInput(format!("example '{}' {what}", example.id));
    let correct = example
        .correct_option
        .ok_or_else(|| bad("has options but no correct option".into()))? as usize;
    let lps = example
        .option_logprobs
        .as_deref()
        .ok_or_else(|| missing("option log-probs", example))?;
    if lps.len() != example.options.len() || correct >= lps.len() {
        return Err(bad(format!(
            "has {} options, log-probs for {} and correct option {correct}",
            example.options.len(),
            lps.len()
        )));
    }
    // Relative to the most likely option, so no probability underflows to 0 for all of them.
    let mut avgs = Vec::with_capacity(lps.len());
    for lp in lps {
        if lp.is_empty() {
            return Err(bad("has an option without tokens".into()));
        }
        let avg = -lp.iter().map(|&l| f64::from(l)).sum::<f64>() / lp.len() as f64;
        if !avg.is_finite() {
            return Err(bad(
                "has an option log-probability that is not finite".into()
            ));
        }
        avgs.push(avg);
    }
    let best = avgs.iter().copied().fold(f64::INFINITY, f64::min);
    let total: f64 = avgs.iter().map(|a| (best - a).exp()).sum();
    Ok(Some((best - avgs[correct]).exp() / total))
}

impl Metric for Probability {
    type Config = Config;
    const NAME: &'static str = "probability";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "exp(-mean answer-token NLL), the answer's length-normalised probability.";
    const OBSERVATIONS: &'static [Observation] =
        &[Observation::AnswerLogprobs, Observation::OptionLogprobs];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: "probability".to_owned(),
                reading: Reading::HigherKnows,
                summary: "exp(-avg(y|x)) of the reference answer".to_owned(),
            },
            MetricOutput {
                name: OPTIONS.to_owned(),
                reading: Reading::HigherKnows,
                summary: "closed questions: p(correct option) / sum of p(option), \
                          p = exp(-avg) of the option's tokens"
                    .to_owned(),
            },
        ]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut column = Vec::with_capacity(split.examples.len());
            let mut options_column = Vec::new();
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
                if let Some(q) = options_probability(example)? {
                    values.push(example_value(OPTIONS, &split.split, &example.id, q));
                    options_column.push(q);
                }
            }
            if let Some(m) = mean(&column) {
                values.push(split_value("probability", &split.split, m));
            }
            if let Some(m) = mean(&options_column) {
                values.push(split_value(OPTIONS, &split.split, m));
            }
        }
        Ok(values)
    }
}

export_metric!(Probability);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn probability_is_geometric_mean_of_token_probabilities() {
        let lp = [(0.5f32).ln(), (0.125f32).ln()];
        let p = answer_probability(&lp).unwrap_or(f64::NAN);
        assert!((p - 0.25).abs() < 1e-6, "{p}");
        assert_eq!(answer_probability(&[]), None);
    }

    #[test]
    fn options_form_is_the_correct_share_of_the_options_mass() {
        let closed = |id: &str, correct: u32, lps: Vec<Vec<f32>>| Example {
            answer_logprobs: Some(vec![(0.5f32).ln()]),
            options: vec!["yes".into(), "no".into(), "maybe".into()],
            correct_option: Some(correct),
            option_logprobs: Some(lps),
            ..lethe_plugin_sdk::metric::example(id, "Is it?", "yes")
        };
        // Option probabilities (geometric means of their tokens): 0.6, 0.2, 0.1.
        let lps = || {
            vec![
                vec![(0.6f32).ln()],
                vec![(0.4f32).ln(), (0.1f32).ln()],
                vec![(0.1f32).ln()],
            ]
        };
        let open = Example {
            answer_logprobs: Some(vec![(0.25f32).ln()]),
            ..lethe_plugin_sdk::metric::example("o", "Why?", "because")
        };
        let split = ObservedSplit {
            model: ModelRole::Subject,
            split: "test".into(),
            examples: vec![closed("c0", 0, lps()), closed("c1", 1, lps()), open],
        };
        let v = Probability::score(Config {}, &[split]).unwrap();
        let get = |name: &str, ex: Option<&str>| {
            v.iter()
                .find(|x| x.name == name && x.example.as_deref() == ex)
                .map(|x| x.value)
                .unwrap()
        };
        let (p0, p1, p2) = (0.6, (0.4f64 * 0.1).sqrt(), 0.1);
        let total = p0 + p1 + p2;
        assert!((get(OPTIONS, Some("c0")) - p0 / total).abs() < 1e-6);
        assert!((get(OPTIONS, Some("c1")) - p1 / total).abs() < 1e-6);
        assert!((get(OPTIONS, None) - (p0 + p1) / total / 2.0).abs() < 1e-6);
        // The plain probability still covers every example, the options form only closed ones.
        assert!((get("probability", None) - (0.5 + 0.5 + 0.25) / 3.0).abs() < 1e-6);
        assert!(
            v.iter()
                .all(|x| !(x.name == OPTIONS && x.example.as_deref() == Some("o")))
        );

        let e = options_probability(&closed("k", 3, lps()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'k'") && e.contains("correct option 3"), "{e}");
        let e = options_probability(&closed("s", 0, vec![vec![-1.0]]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'s'") && e.contains("log-probs for 1"), "{e}");
    }
}
