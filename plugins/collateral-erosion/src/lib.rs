//! Collateral erosion (AMNESIA's headline finding): does forgetting some patients erode what
//! the model knows about *other* patients with the same disease more than about patients with
//! other diseases?
//!
//! Retained examples carry a group key (by default `relation`) whose value says whether the
//! patient shares a disease with a forgotten one (`same-disease`) or not (`other-disease`).
//! Utility is ROUGE-L recall of the greedy answer (as the `rouge` plugin computes it), for the
//! subject (unlearned) model and for the target (the finetuned model before unlearning). Per
//! split and group:
//!
//! - `utility_same`, `utility_other`: the subject's mean utility;
//! - `target_utility_same`, `target_utility_other`: the target's, on the same examples;
//! - `erosion_same`, `erosion_other`: target − subject, the utility lost by unlearning;
//! - `collateral_erosion = erosion_same − erosion_other`: positive when same-disease knowledge
//!   was eroded more than other-disease knowledge.
//!
//! Per example: `utility` and `erosion` (target − subject) of every tagged example.

use std::collections::BTreeMap;

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::rouge;

/// Which group key and values mark same-disease and other-disease examples.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The group key that relates a retained example to the forgotten ones.
    pub group_key: String,
    /// Its value on examples of patients with a forgotten patient's disease.
    pub same_value: String,
    /// Its value on examples of patients with other diseases.
    pub other_value: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group_key: "relation".into(),
            same_value: "same-disease".into(),
            other_value: "other-disease".into(),
        }
    }
}

/// ROUGE-L recall of one answer against its reference: the utility of one example.
pub fn utility(prediction: &str, reference: &str) -> f64 {
    rouge::rouge_l(&rouge::tokenize(prediction), &rouge::tokenize(reference)).recall
}

/// Subject and target utility of one example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// The unlearned model's utility.
    pub subject: f64,
    /// The finetuned model's utility before unlearning.
    pub target: f64,
}

/// The split-level figures of one split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Erosion {
    /// Subject utility on same-disease examples.
    pub utility_same: f64,
    /// Subject utility on other-disease examples.
    pub utility_other: f64,
    /// Target utility on same-disease examples.
    pub target_utility_same: f64,
    /// Target utility on other-disease examples.
    pub target_utility_other: f64,
}

impl Erosion {
    /// Utility lost on same-disease examples.
    pub fn erosion_same(&self) -> f64 {
        self.target_utility_same - self.utility_same
    }

    /// Utility lost on other-disease examples.
    pub fn erosion_other(&self) -> f64 {
        self.target_utility_other - self.utility_other
    }

    /// How much more same-disease than other-disease utility was lost.
    pub fn collateral_erosion(&self) -> f64 {
        self.erosion_same() - self.erosion_other()
    }
}

/// The split-level figures from the pairs of each group; `None` unless both groups have
/// examples (a gap needs two sides).
pub fn erosion(same: &[Pair], other: &[Pair]) -> Option<Erosion> {
    let m = |pairs: &[Pair], f: fn(&Pair) -> f64| mean(&pairs.iter().map(f).collect::<Vec<_>>());
    Some(Erosion {
        utility_same: m(same, |p| p.subject)?,
        utility_other: m(other, |p| p.subject)?,
        target_utility_same: m(same, |p| p.target)?,
        target_utility_other: m(other, |p| p.target)?,
    })
}

/// The collateral-erosion metric.
pub struct CollateralErosion;

const SPLIT_OUTPUTS: [(&str, Reading, &str); 7] = [
    (
        "collateral_erosion",
        Reading::LowerBetter,
        "erosion_same − erosion_other: how much more same-disease than other-disease utility \
         (ROUGE-L recall) unlearning cost",
    ),
    (
        "erosion_same",
        Reading::LowerBetter,
        "target − subject utility on retained same-disease examples",
    ),
    (
        "erosion_other",
        Reading::LowerBetter,
        "target − subject utility on retained other-disease examples",
    ),
    (
        "utility_same",
        Reading::HigherKnows,
        "the subject's ROUGE-L recall on retained same-disease examples",
    ),
    (
        "utility_other",
        Reading::HigherKnows,
        "the subject's ROUGE-L recall on retained other-disease examples",
    ),
    (
        "target_utility_same",
        Reading::HigherKnows,
        "the target's (before unlearning) ROUGE-L recall on the same-disease examples",
    ),
    (
        "target_utility_other",
        Reading::HigherKnows,
        "the target's (before unlearning) ROUGE-L recall on the other-disease examples",
    ),
];

fn group_of<'a>(example: &'a Example, key: &str) -> Option<&'a str> {
    example
        .groups
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn generated(example: &Example) -> Result<&str> {
    example
        .generated
        .as_deref()
        .ok_or_else(|| missing("generated answer", example))
}

impl Metric for CollateralErosion {
    type Config = Config;
    const NAME: &'static str = "collateral-erosion";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Utility (ROUGE-L recall) lost on retained same-disease vs \
         other-disease examples, against the model before unlearning.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::GeneratedAnswer];
    const MODELS: &'static [ModelRole] = &[ModelRole::Target];

    fn outputs() -> Vec<MetricOutput> {
        let mut out: Vec<MetricOutput> = SPLIT_OUTPUTS
            .iter()
            .map(|(name, reading, summary)| MetricOutput {
                name: (*name).to_owned(),
                reading: *reading,
                summary: (*summary).to_owned(),
            })
            .collect();
        out.push(MetricOutput {
            name: "utility".to_owned(),
            reading: Reading::HigherKnows,
            summary: "per example: the subject's ROUGE-L recall on a tagged example".to_owned(),
        });
        out.push(MetricOutput {
            name: "erosion".to_owned(),
            reading: Reading::LowerBetter,
            summary: "per example: target − subject ROUGE-L recall on a tagged example".to_owned(),
        });
        out
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let tagged: Vec<(&Example, bool)> = split
                .examples
                .iter()
                .filter_map(|e| match group_of(e, &config.group_key) {
                    Some(v) if v == config.same_value => Some((e, true)),
                    Some(v) if v == config.other_value => Some((e, false)),
                    _ => None,
                })
                .collect();
            if tagged.is_empty() {
                continue;
            }
            let target: BTreeMap<&str, &Example> = observed
                .iter()
                .find(|s| s.model == ModelRole::Target && s.split == split.split)
                .ok_or_else(|| {
                    PluginError::InvalidInput(format!(
                        "no observations of the target model on split '{}'",
                        split.split
                    ))
                })?
                .examples
                .iter()
                .map(|e| (e.id.as_str(), e))
                .collect();
            let (mut same, mut other) = (Vec::new(), Vec::new());
            for (example, is_same) in tagged {
                let before = target.get(example.id.as_str()).ok_or_else(|| {
                    PluginError::InvalidInput(format!(
                        "example '{}' of split '{}' has no observation of the target model",
                        example.id, split.split
                    ))
                })?;
                let pair = Pair {
                    subject: utility(generated(example)?, &example.answer),
                    target: utility(generated(before)?, &before.answer),
                };
                values.push(example_value(
                    "utility",
                    &split.split,
                    &example.id,
                    pair.subject,
                ));
                values.push(example_value(
                    "erosion",
                    &split.split,
                    &example.id,
                    pair.target - pair.subject,
                ));
                if is_same { &mut same } else { &mut other }.push(pair);
            }
            if let Some(e) = erosion(&same, &other) {
                let figures = [
                    e.collateral_erosion(),
                    e.erosion_same(),
                    e.erosion_other(),
                    e.utility_same,
                    e.utility_other,
                    e.target_utility_same,
                    e.target_utility_other,
                ];
                for ((name, _, _), v) in SPLIT_OUTPUTS.iter().zip(figures) {
                    values.push(split_value(name, &split.split, v));
                }
            }
        }
        Ok(values)
    }
}

export_metric!(CollateralErosion);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pair(subject: f64, target: f64) -> Pair {
        Pair { subject, target }
    }

    #[test]
    fn the_gap_is_same_disease_erosion_minus_other_disease_erosion() {
        let same = [pair(0.5, 1.0), pair(0.25, 0.75)];
        let other = [pair(0.75, 1.0), pair(1.0, 1.0)];
        let e = erosion(&same, &other).unwrap();
        assert_eq!((e.utility_same, e.target_utility_same), (0.375, 0.875));
        assert_eq!((e.utility_other, e.target_utility_other), (0.875, 1.0));
        assert_eq!(e.erosion_same(), 0.5);
        assert_eq!(e.erosion_other(), 0.125);
        assert_eq!(e.collateral_erosion(), 0.375);
        // Unchanged models erode nothing; one empty side gives no gap.
        let e = erosion(&[pair(0.5, 0.5)], &[pair(0.2, 0.2)]).unwrap();
        assert_eq!(e.collateral_erosion(), 0.0);
        assert_eq!(erosion(&same, &[]), None);
    }

    fn example(id: &str, relation: Option<&str>, answer: &str, generated: &str) -> Example {
        Example {
            groups: relation
                .map(|r| vec![("relation".to_owned(), r.to_owned())])
                .unwrap_or_default(),
            generated: Some(generated.into()),
            ..lethe_plugin_sdk::metric::example(id, "?", answer)
        }
    }

    #[test]
    fn scores_tagged_retained_examples_against_the_target() {
        let answer = "metformin lowers blood sugar";
        let subject = ObservedSplit {
            model: ModelRole::Subject,
            split: "retain".into(),
            examples: vec![
                example("s1", Some("same-disease"), answer, "metformin lowers"),
                example("o1", Some("other-disease"), answer, answer),
                example("u1", None, answer, "nothing"),
            ],
        };
        let target = ObservedSplit {
            model: ModelRole::Target,
            split: "retain".into(),
            examples: subject
                .examples
                .iter()
                .map(|e| example(&e.id, None, answer, answer))
                .collect(),
        };
        let forget = ObservedSplit {
            model: ModelRole::Subject,
            split: "forget".into(),
            examples: vec![example("f1", None, answer, "")],
        };
        let values =
            CollateralErosion::score(Config::default(), &[subject, target, forget]).unwrap();
        let get = |name: &str, example: Option<&str>| {
            values
                .iter()
                .find(|v| v.name == name && v.example.as_deref() == example)
                .map(|v| v.value)
        };
        // "metformin lowers" recovers 2 of the reference's 4 words.
        assert_eq!(get("utility", Some("s1")), Some(0.5));
        assert_eq!(get("erosion", Some("s1")), Some(0.5));
        assert_eq!(get("erosion", Some("o1")), Some(0.0));
        assert_eq!(get("utility", Some("u1")), None);
        assert_eq!(get("collateral_erosion", None), Some(0.5));
        assert_eq!(get("target_utility_same", None), Some(1.0));
        // Untagged splits get nothing.
        assert!(values.iter().all(|v| v.split == "retain"));
    }

    #[test]
    fn a_missing_target_observation_is_named() {
        let subject = ObservedSplit {
            model: ModelRole::Subject,
            split: "retain".into(),
            examples: vec![example("s1", Some("same-disease"), "a", "a")],
        };
        let e = CollateralErosion::score(Config::default(), std::slice::from_ref(&subject))
            .unwrap_err()
            .to_string();
        assert!(e.contains("target model") && e.contains("'retain'"), "{e}");
        let target = ObservedSplit {
            model: ModelRole::Target,
            split: "retain".into(),
            examples: vec![],
        };
        let e = CollateralErosion::score(Config::default(), &[subject, target])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'s1'"), "{e}");
    }
}
