//! Forget efficacy and utility as AMNESIA reports them (after R-TOFU), **restricted to the part
//! that needs no external model**.
//!
//! AMNESIA defines forget efficacy on the forget answers as the harmonic mean of
//! `1 − ROUGE-L recall`, `1 − cosine similarity` (sentence embeddings) and `1 − entailment`
//! (an NLI model), and utility on retained answers as the harmonic mean of the same three
//! without "1 −". Lethe runs no embedding or NLI model, so the cosine and entailment parts are
//! **missing**: the values here are the harmonic mean of the ROUGE-L part alone, i.e.
//! `1 − ROUGE-L recall` and `ROUGE-L recall`. Their names say so (`…_rougeL`), and they are
//! not comparable with AMNESIA's full figures. ROUGE-L is computed exactly as the `rouge`
//! plugin computes it (`lethe_scoring::rouge`, a port of `rouge_score` 0.1.2 with Porter
//! stemming).

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::rouge;

/// Which splits get which value.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Splits whose answers should be forgotten: forget efficacy is reported on them (e.g. the
    /// forget split and its unseen rephrasings).
    pub forget_splits: Vec<String>,
    /// Splits whose answers should be kept: utility is reported on them.
    pub utility_splits: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            forget_splits: vec!["forget".into()],
            utility_splits: vec!["retain".into()],
        }
    }
}

/// The harmonic mean of the parts that are available; 0 when any part is 0 (its limit), `None`
/// when there are none. Parts are expected in [0, 1].
pub fn harmonic_mean(parts: &[f64]) -> Option<f64> {
    if parts.is_empty() {
        return None;
    }
    if parts.iter().any(|&p| p <= 0.0) {
        return Some(0.0);
    }
    Some(parts.len() as f64 / parts.iter().map(|p| 1.0 / p).sum::<f64>())
}

/// ROUGE-L recall of one answer against its reference.
pub fn rouge_l_recall(prediction: &str, reference: &str) -> f64 {
    rouge::rouge_l(&rouge::tokenize(prediction), &rouge::tokenize(reference)).recall
}

/// Forget efficacy from the parts available today: HM(1 − ROUGE-L recall).
pub fn forget_efficacy(rouge_l_recall: f64) -> f64 {
    harmonic_mean(&[1.0 - rouge_l_recall]).unwrap_or(0.0)
}

/// Utility from the parts available today: HM(ROUGE-L recall).
pub fn utility(rouge_l_recall: f64) -> f64 {
    harmonic_mean(&[rouge_l_recall]).unwrap_or(0.0)
}

const EFFICACY: &str = "forget_efficacy_rougeL";
const UTILITY: &str = "utility_rougeL";

/// The forget-efficacy and utility metric.
pub struct ForgetEfficacy;

impl Metric for ForgetEfficacy {
    type Config = Config;
    const NAME: &'static str = "forget-efficacy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "AMNESIA's forget efficacy and utility, ROUGE-L part only: the \
         cosine and entailment parts need an embedding and an NLI model and are missing.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::GeneratedAnswer];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: EFFICACY.to_owned(),
                reading: Reading::HigherBetter,
                summary: "1 − ROUGE-L recall on forget splits: AMNESIA's forget efficacy \
                          without its cosine and entailment parts (missing: no embedding or \
                          NLI model)"
                    .to_owned(),
            },
            MetricOutput {
                name: UTILITY.to_owned(),
                reading: Reading::HigherKnows,
                summary: "ROUGE-L recall on utility splits: AMNESIA's utility without its \
                          cosine and entailment parts (missing: no embedding or NLI model)"
                    .to_owned(),
            },
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        let wanted = config
            .forget_splits
            .iter()
            .map(|s| (s, EFFICACY, forget_efficacy as fn(f64) -> f64))
            .chain(
                config
                    .utility_splits
                    .iter()
                    .map(|s| (s, UTILITY, utility as fn(f64) -> f64)),
            );
        for (name, output, value_of) in wanted {
            let split = observed
                .iter()
                .find(|s| s.model == ModelRole::Subject && &s.split == name)
                .ok_or_else(|| {
                    let have: Vec<&str> = observed
                        .iter()
                        .filter(|s| s.model == ModelRole::Subject)
                        .map(|s| s.split.as_str())
                        .collect();
                    PluginError::InvalidInput(format!(
                        "there is no split '{name}' (this suite has: {}); set forget_splits and \
                         utility_splits to its split names",
                        have.join(", ")
                    ))
                })?;
            let mut recalls = Vec::with_capacity(split.examples.len());
            for example in &split.examples {
                let generated = example
                    .generated
                    .as_deref()
                    .ok_or_else(|| missing("generated answer", example))?;
                let r = rouge_l_recall(generated, &example.answer);
                values.push(example_value(output, name, &example.id, value_of(r)));
                recalls.push(r);
            }
            // Per split: the parts' split means combined, as R-TOFU combines aggregates.
            if let Some(r) = mean(&recalls) {
                values.push(split_value(output, name, value_of(r)));
            }
        }
        Ok(values)
    }
}

export_metric!(ForgetEfficacy);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn harmonic_mean_of_the_available_parts() {
        assert_eq!(harmonic_mean(&[]), None);
        assert_eq!(harmonic_mean(&[0.4]), Some(0.4));
        let hm = harmonic_mean(&[0.5, 1.0]).unwrap();
        assert!((hm - 2.0 / 3.0).abs() < 1e-12, "{hm}");
        let hm = harmonic_mean(&[0.2, 0.5, 0.8]).unwrap();
        assert!((hm - 3.0 / (5.0 + 2.0 + 1.25)).abs() < 1e-12, "{hm}");
        assert_eq!(harmonic_mean(&[0.0, 0.9]), Some(0.0));
    }

    #[test]
    fn efficacy_and_utility_mirror_rouge_l_recall() {
        // 3 of the reference's 4 words in order: recall 0.75.
        let r = rouge_l_recall("the drug is metformin daily", "the drug is insulin");
        assert!((r - 0.75).abs() < 1e-12, "{r}");
        assert!((forget_efficacy(r) - 0.25).abs() < 1e-12);
        assert!((utility(r) - 0.75).abs() < 1e-12);
        assert_eq!(forget_efficacy(1.0), 0.0);
        assert_eq!(utility(0.0), 0.0);
    }

    fn split(name: &str, rows: &[(&str, &str)]) -> ObservedSplit {
        ObservedSplit {
            model: ModelRole::Subject,
            split: name.into(),
            examples: rows
                .iter()
                .enumerate()
                .map(|(i, (answer, generated))| Example {
                    generated: Some((*generated).into()),
                    ..lethe_plugin_sdk::metric::example(&format!("{name}-{i}"), "?", answer)
                })
                .collect(),
        }
    }

    #[test]
    fn values_per_example_and_per_split_on_the_configured_splits() {
        let observed = vec![
            split("forget", &[("a b c d", "a b c d"), ("a b c d", "x y")]),
            split("retain", &[("a b c d", "a b")]),
            split("holdout", &[("a b", "a b")]),
        ];
        let values = ForgetEfficacy::score(Config::default(), &observed).unwrap();
        let get = |name: &str, split: &str, example: Option<&str>| {
            values
                .iter()
                .find(|v| v.name == name && v.split == split && v.example.as_deref() == example)
                .map(|v| v.value)
        };
        assert_eq!(get(EFFICACY, "forget", Some("forget-0")), Some(0.0));
        assert_eq!(get(EFFICACY, "forget", Some("forget-1")), Some(1.0));
        assert_eq!(get(EFFICACY, "forget", None), Some(0.5));
        assert_eq!(get(UTILITY, "retain", None), Some(0.5));
        assert_eq!(get(UTILITY, "forget", None), None);
        assert!(values.iter().all(|v| v.split != "holdout"));

        let config = Config {
            forget_splits: vec!["rephrased".into()],
            ..Config::default()
        };
        let e = ForgetEfficacy::score(config, &observed)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'rephrased'") && e.contains("forget, retain, holdout"),
            "{e}"
        );
    }
}
