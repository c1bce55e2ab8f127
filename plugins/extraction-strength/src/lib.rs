//! Extraction strength (Carlini et al. 2021's extractability, as OpenUnlearning reports it):
//! under teacher forcing, the smallest k such that the model's argmax equals the reference
//! token at every position from k on; `ES = 1 − k/T`, the share of the answer the model would
//! reproduce greedily once given the part before k. Per example and averaged per split.
//!
//! T counts the answer's own tokens, not the end-of-sequence token the host appends — the same
//! token set as exact memorization (see [`lethe_scoring::memorization`]), so the two metrics are
//! comparable and a model's reluctance to stop does not zero a fully reproduced answer. When not
//! even the last token matches, k = T and ES = 0 (OpenUnlearning returns 1/T there, an artefact
//! of its search loop, which this does not copy).

use lethe_plugin_sdk::metric::{missing, per_example_and_mean};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::memorization::{extraction_strength, without_eos};

/// Extraction strength has no knobs.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The extraction-strength metric.
pub struct ExtractionStrength;

/// The output's name.
pub const EXTRACTION_STRENGTH: &str = "extraction_strength";

impl Metric for ExtractionStrength {
    type Config = Config;
    const NAME: &'static str = "extraction-strength";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "1 − k/T for the shortest prefix k after which every answer \
                                   token (EOS excluded) is the model's argmax.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::AnswerArgmaxMatch];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: EXTRACTION_STRENGTH.to_owned(),
            reading: Reading::HigherKnows,
            summary: "1 − k/T, k the smallest position from which all answer tokens (EOS \
                      excluded, T of them) match the teacher-forced argmax; 0 when the last \
                      does not"
                .to_owned(),
        }]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        per_example_and_mean(EXTRACTION_STRENGTH, observed, |example| {
            let matches = example
                .answer_argmax_match
                .as_deref()
                .ok_or_else(|| missing("argmax matches", example))?;
            extraction_strength(without_eos(matches)).ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "example '{}' has no answer tokens besides EOS",
                    example.id
                ))
            })
        })
    }
}

export_metric!(ExtractionStrength);

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

    /// The definition searched directly: the first k whose suffix is all '1'.
    fn by_search(bits: &str) -> f64 {
        let t = bits.len();
        let k = (0..=t)
            .find(|&k| bits[k..].chars().all(|c| c == '1'))
            .unwrap();
        1.0 - k as f64 / t as f64
    }

    #[test]
    fn the_matching_suffix_without_eos_per_example_and_split() {
        // EOS entries contradict the last token, so counting EOS would change every value
        // (f1 would drop to 0, r1 would rise to 1/5).
        let cases = [
            ("forget", "f1", "0111", false),
            ("forget", "f2", "1011", false),
            ("forget", "f3", "1111", false),
            ("retain", "r1", "1110", true),
            ("retain", "r2", "01", true),
        ];
        let mut observed = vec![
            split(ModelRole::Subject, "forget", Vec::new()),
            split(ModelRole::Subject, "retain", Vec::new()),
            // The oracle's split would give 1 everywhere if it were scored.
            split(
                ModelRole::Oracle,
                "forget",
                vec![ex("f1", "1111", true), ex("f2", "1111", true)],
            ),
        ];
        for (s, id, bits, eos) in cases {
            let i = usize::from(s == "retain");
            observed[i].examples.push(ex(id, bits, eos));
        }
        let v = ExtractionStrength::score(Config {}, &observed).unwrap();
        for (s, id, bits, _) in cases {
            assert_eq!(get(&v, s, Some(id)), Some(by_search(bits)), "{id}");
        }
        // 0.75, 0.5, 1; 0 (the last token misses: not the peer's 1/4), 0.5.
        assert_eq!(get(&v, "forget", Some("f1")), Some(0.75));
        assert_eq!(get(&v, "retain", Some("r1")), Some(0.0));
        assert_eq!(get(&v, "forget", None), Some((0.75 + 0.5 + 1.0) / 3.0));
        assert_eq!(get(&v, "retain", None), Some(0.25));
        assert_eq!(v.len(), 7);
    }

    #[test]
    fn an_answer_of_only_eos_is_an_error_naming_the_example() {
        let observed = [split(
            ModelRole::Subject,
            "forget",
            vec![ex("e7", "", true)],
        )];
        let e = ExtractionStrength::score(Config {}, &observed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'e7'"), "{e}");
    }
}
