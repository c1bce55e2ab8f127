//! Exact memorization (Tirumala et al. 2022, as OpenUnlearning reports it): under teacher
//! forcing, the share of the reference answer's tokens that are the model's most likely next
//! token, `mean_t 1[argmax_v p(v | x, y_<t) = y_t]`, per example and averaged per split.
//!
//! The end-of-sequence token the host appends to every answer is not counted (SPEC: whether the
//! model would stop there is not part of what it memorised); see
//! [`lethe_scoring::memorization`], which extraction strength shares.

use lethe_plugin_sdk::metric::{missing, per_example_and_mean};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::memorization::{exact_memorization, without_eos};

/// Exact memorization has no knobs.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The exact-memorization metric.
pub struct ExactMemorization;

/// The output's name.
pub const EXACT_MEMORIZATION: &str = "exact_memorization";

impl Metric for ExactMemorization {
    type Config = Config;
    const NAME: &'static str = "exact-memorization";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Share of answer tokens (EOS excluded) the model predicts as its argmax under teacher forcing.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::AnswerArgmaxMatch];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: EXACT_MEMORIZATION.to_owned(),
            reading: Reading::HigherKnows,
            summary: "mean over answer tokens (EOS excluded) of 1[argmax = y_t] under teacher \
                      forcing"
                .to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        per_example_and_mean(EXACT_MEMORIZATION, observed, |example| {
            let matches = example
                .answer_argmax_match
                .as_deref()
                .ok_or_else(|| missing("argmax matches", example))?;
            exact_memorization(without_eos(matches)).ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "example '{}' has no answer tokens besides EOS",
                    example.id
                ))
            })
        })
    }
}

export_metric!(ExactMemorization);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An example whose argmax matches are `bits` followed by the EOS entry `eos`.
    fn ex(id: &str, bits: &str, eos: bool) -> Example {
        let mut m: Vec<bool> = bits.chars().map(|c| c == '1').collect();
        m.push(eos);
        Example {
            answer_argmax_match: Some(m),
            ..lethe_plugin_sdk::metric::example(id, "Q?", "A")
        }
    }

    fn split(model: ModelRole, name: &str, examples: Vec<Example>) -> ObservedSplit {
        ObservedSplit {
            model,
            split: name.into(),
            examples,
        }
    }

    fn get(values: &[Value], split: &str, example: Option<&str>) -> Option<f64> {
        values
            .iter()
            .find(|v| v.split == split && v.example.as_deref() == example)
            .map(|v| v.value)
    }

    #[test]
    fn counts_answer_tokens_without_eos_per_example_and_split() {
        // The EOS entry is the opposite of most tokens, so counting it would move every value.
        let forget = vec![ex("f1", "1101", false), ex("f2", "111", false)];
        let retain = vec![ex("r1", "0001", true), ex("r2", "00", true)];
        // The oracle sees everything: if its splits were scored, values would be 1 or doubled.
        let oracle = vec![ex("f1", "1111", true), ex("f2", "111", true)];
        let observed = [
            split(ModelRole::Subject, "forget", forget.clone()),
            split(ModelRole::Subject, "retain", retain.clone()),
            split(ModelRole::Oracle, "forget", oracle),
        ];
        let v = ExactMemorization::score(Config {}, &observed).unwrap();

        // Independently: count '1's in the token string (EOS is not in it).
        let share = |s: &str| s.matches('1').count() as f64 / s.len() as f64;
        assert_eq!(get(&v, "forget", Some("f1")), Some(share("1101"))); // 0.75
        assert_eq!(get(&v, "forget", Some("f2")), Some(1.0));
        assert_eq!(get(&v, "retain", Some("r1")), Some(0.25));
        assert_eq!(get(&v, "retain", Some("r2")), Some(0.0));
        assert_eq!(get(&v, "forget", None), Some((0.75 + 1.0) / 2.0));
        assert_eq!(get(&v, "retain", None), Some(0.125));
        // Four examples and two splits, nothing from the oracle.
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn an_answer_of_only_eos_or_missing_observations_are_errors_naming_the_example() {
        let observed = [split(
            ModelRole::Subject,
            "forget",
            vec![ex("e7", "", true)],
        )];
        let e = ExactMemorization::score(Config {}, &observed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'e7'"), "{e}");
        let bare = lethe_plugin_sdk::metric::example("e8", "Q?", "A");
        let observed = [split(ModelRole::Subject, "forget", vec![bare])];
        let e = ExactMemorization::score(Config {}, &observed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'e8'"), "{e}");
    }
}
