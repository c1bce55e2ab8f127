//! TOFU's model utility: the harmonic mean of three numbers on each of three sets — probability,
//! ROUGE-L recall of the greedy answer and truth ratio, on the retain split and TOFU's two
//! real-world sets (`real-authors`, `world-facts`) — nine numbers in all.
//!
//! Per split, each number is the mean over its examples:
//!
//! - probability `exp(−avg(y|x))` of the reference answer; on the splits listed in
//!   `normalised_probability_splits` (by default the two real-world sets, as TOFU and
//!   OpenUnlearning do) instead `p(answer) / (p(answer) + Σ_j p(perturbed_j))` with
//!   `p = exp(−avg)`, over examples that have perturbed answers;
//! - ROUGE-L recall of the greedy answer against the reference (`lethe_scoring::rouge`);
//! - truth ratio in its retain form `max(0, 1 − tr)` (`lethe_scoring::truth_ratio`), the
//!   correct side being the paraphrased answers, or — when `answer_when_no_paraphrase` is on
//!   (default) and an example has none, as on TOFU's real-world sets — the reference answer,
//!   which is what TOFU compares there.
//!
//! The harmonic mean is taken over the numbers that exist (a split the suite lacks, or a part
//! no example supports, drops out); `model_utility_parts` says how many entered and the
//! per-split parts are reported beside it. As a harmonic mean, it is 0 when any part is 0.

use lethe_plugin_sdk::metric::{mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::rouge;
use lethe_scoring::truth_ratio::{avg_nll, truth_ratio};

/// Which splits enter, and the two choices where TOFU's definition differs by set.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The splits whose parts enter the harmonic mean; those the suite lacks are left out.
    pub splits: Vec<String>,
    /// Splits on which probability is normalised over the reference and perturbed answers,
    /// `p(answer) / (p(answer) + Σ p(perturbed))`, rather than `exp(−avg(answer))`. The default
    /// is TOFU's real-world sets, as the reference platform computes it; `[]` uses the plain
    /// probability everywhere.
    pub normalised_probability_splits: Vec<String>,
    /// Use the reference answer as the truth ratio's correct side for examples without a
    /// paraphrased answer (TOFU's real-world sets have none); off, those examples are skipped.
    pub answer_when_no_paraphrase: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            splits: vec!["retain".into(), "real-authors".into(), "world-facts".into()],
            normalised_probability_splits: vec!["real-authors".into(), "world-facts".into()],
            answer_when_no_paraphrase: true,
        }
    }
}

/// The model-utility metric.
pub struct ModelUtility;

/// The harmonic mean.
pub const MODEL_UTILITY: &str = "model_utility";
/// How many numbers entered it.
pub const PARTS: &str = "model_utility_parts";
/// Per split: the probability part.
pub const PROBABILITY: &str = "utility_probability";
/// Per split: the ROUGE-L recall part.
pub const ROUGE_L: &str = "utility_rougeL_recall";
/// Per split: the truth-ratio part.
pub const TRUTH_RATIO: &str = "utility_truth_ratio";

/// An input error naming the example.
fn invalid(example: &Example, what: impl std::fmt::Display) -> PluginError {
    PluginError::InvalidInput(format!("example '{}': {what}", example.id))
}

/// `exp(−avg)` of one answer's tokens, checked.
fn probability(example: &Example, logprobs: &[f32]) -> Result<f64> {
    let avg = avg_nll(logprobs).ok_or_else(|| invalid(example, "an answer has no tokens"))?;
    if !avg.is_finite() {
        return Err(invalid(example, "a log-probability is not finite"));
    }
    Ok((-avg).exp())
}

/// The three parts of one split, each `None` when no example supports it.
pub fn split_parts(
    config: &Config,
    split: &ObservedSplit,
) -> Result<[(&'static str, Option<f64>); 3]> {
    let normalised = config.normalised_probability_splits.contains(&split.split);
    let (mut probs, mut rouges, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for example in &split.examples {
        let answer = example
            .answer_logprobs
            .as_deref()
            .ok_or_else(|| missing("answer log-probs", example))?;
        let perturbed = example
            .perturbed_logprobs
            .as_deref()
            .ok_or_else(|| missing("perturbed answer log-probs", example))?;
        let paraphrased = example
            .paraphrased_logprobs
            .as_deref()
            .ok_or_else(|| missing("paraphrased answer log-probs", example))?;
        let generated = example
            .generated
            .as_deref()
            .ok_or_else(|| missing("generated answer", example))?;

        let p = probability(example, answer)?;
        if !normalised {
            probs.push(p);
        } else if !perturbed.is_empty() {
            let mut wrong = 0.0;
            for lp in perturbed {
                wrong += probability(example, lp)?;
            }
            probs.push(p / (p + wrong));
        }

        rouges.push(
            rouge::rouge_l(
                &rouge::tokenize(generated),
                &rouge::tokenize(&example.answer),
            )
            .recall,
        );

        let reference = [answer];
        let correct: &[Vec<f32>] = paraphrased;
        let t = if correct.is_empty() && config.answer_when_no_paraphrase {
            truth_ratio(&reference, perturbed)
        } else {
            truth_ratio(correct, perturbed)
        }
        .map_err(|e| invalid(example, e))?;
        ratios.extend(t.map(|t| t.retain_form()));
    }
    Ok([
        (PROBABILITY, mean(&probs)),
        (ROUGE_L, mean(&rouges)),
        (TRUTH_RATIO, mean(&ratios)),
    ])
}

/// The harmonic mean of non-negative numbers: 0 when any is 0, `None` for none.
pub fn harmonic_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    if values.iter().any(|&v| v <= 0.0) {
        return Some(0.0);
    }
    Some(values.len() as f64 / values.iter().map(|v| 1.0 / v).sum::<f64>())
}

impl Metric for ModelUtility {
    type Config = Config;
    const NAME: &'static str = "model-utility";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "TOFU's model utility: harmonic mean of probability, ROUGE-L \
                                   recall and truth ratio on retain and the real-world sets.";
    const OBSERVATIONS: &'static [Observation] = &[
        Observation::GeneratedAnswer,
        Observation::AnswerLogprobs,
        Observation::ParaphrasedAnswerLogprobs,
        Observation::PerturbedAnswerLogprobs,
    ];

    fn outputs() -> Vec<MetricOutput> {
        let out = |name: &str, reading, summary: &str| MetricOutput {
            name: name.to_owned(),
            reading,
            summary: summary.to_owned(),
        };
        vec![
            out(
                MODEL_UTILITY,
                Reading::HigherBetter,
                "harmonic mean of the parts below over the utility splits (filed under the \
                 first of them the suite has)",
            ),
            out(
                PARTS,
                Reading::HigherBetter,
                "how many of the nine numbers (three parts on three splits) entered the mean",
            ),
            out(
                PROBABILITY,
                Reading::HigherKnows,
                "mean exp(-avg) of the answer, normalised over perturbed answers on the \
                 configured splits",
            ),
            out(
                ROUGE_L,
                Reading::HigherKnows,
                "mean ROUGE-L recall of the greedy answer",
            ),
            out(
                TRUTH_RATIO,
                Reading::HigherKnows,
                "mean max(0, 1 - tr), tr = p(perturbed) / p(paraphrased or answer)",
            ),
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        let mut numbers = Vec::new();
        let mut home: Option<&str> = None;
        for name in &config.splits {
            let Some(split) = observed
                .iter()
                .find(|s| s.model == ModelRole::Subject && &s.split == name)
            else {
                continue;
            };
            home.get_or_insert(&split.split);
            for (part, value) in split_parts(&config, split)? {
                if let Some(v) = value {
                    values.push(split_value(part, &split.split, v));
                    numbers.push(v);
                }
            }
        }
        if let (Some(home), Some(hm)) = (home, harmonic_mean(&numbers)) {
            // The headline first: boards show each metric's first output.
            values.insert(0, split_value(PARTS, home, numbers.len() as f64));
            values.insert(0, split_value(MODEL_UTILITY, home, hm));
        }
        Ok(values)
    }
}

export_metric!(ModelUtility);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Per-token log-probs of an answer whose tokens have these probabilities.
    fn lp(ps: &[f64]) -> Vec<f32> {
        ps.iter().map(|p| p.ln() as f32).collect()
    }

    fn ex(
        id: &str,
        answer: (&str, &[f64]),
        generated: &str,
        paraphrased: &[&[f64]],
        perturbed: &[&[f64]],
    ) -> Example {
        Example {
            generated: Some(generated.into()),
            answer_logprobs: Some(lp(answer.1)),
            paraphrased_logprobs: Some(paraphrased.iter().map(|p| lp(p)).collect()),
            perturbed_logprobs: Some(perturbed.iter().map(|p| lp(p)).collect()),
            ..lethe_plugin_sdk::metric::example(id, "Q?", answer.0)
        }
    }

    fn split(model: ModelRole, name: &str, examples: Vec<Example>) -> ObservedSplit {
        ObservedSplit {
            model,
            split: name.into(),
            examples,
        }
    }

    fn get(values: &[Value], name: &str, split: &str) -> Option<f64> {
        values
            .iter()
            .find(|v| v.name == name && v.split == split && v.example.is_none())
            .map(|v| v.value)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    /// Retain and real-authors (no world-facts), plus a forget split and an oracle that must
    /// not be read.
    fn bundle() -> Vec<ObservedSplit> {
        let retain = vec![
            // p = 0.5; ROUGE-L recall 3/4; tr = 0.1 / 0.4 = 0.25 -> 0.75.
            ex(
                "r1",
                ("a red cat sat", &[0.5, 0.5]),
                "a red cat",
                &[&[0.4]],
                &[&[0.1]],
            ),
            // p = 0.2; recall 2/3; tr = 0.6 / 0.3 = 2 -> 0.
            ex(
                "r2",
                ("big red dog", &[0.2]),
                "big dog",
                &[&[0.3]],
                &[&[0.6]],
            ),
        ];
        let real = vec![
            // No paraphrase: the answer (p = 0.6) is the correct side.
            ex("a1", ("Paris", &[0.6]), "Paris", &[], &[&[0.2], &[0.1]]),
            ex("a2", ("Paris", &[0.3]), "Rome", &[], &[&[0.3]]),
        ];
        let forget = vec![ex("f1", ("x", &[0.01]), "y", &[&[0.01]], &[&[0.9]])];
        let oracle = vec![ex(
            "r1",
            ("a red cat sat", &[0.9]),
            "z",
            &[&[0.9]],
            &[&[0.9]],
        )];
        vec![
            split(ModelRole::Subject, "forget", forget),
            split(ModelRole::Subject, "retain", retain),
            split(ModelRole::Subject, "real-authors", real),
            split(ModelRole::Oracle, "retain", oracle),
        ]
    }

    #[test]
    fn harmonic_mean_of_the_parts_that_exist() {
        let v = ModelUtility::score(Config::default(), &bundle()).unwrap();
        // Retain, by hand.
        let r_prob = (0.5 + 0.2) / 2.0;
        let r_rouge = (3.0 / 4.0 + 2.0 / 3.0) / 2.0;
        let r_tr = (0.75 + 0.0) / 2.0;
        // Real authors: normalised probability 0.6 / (0.6 + 0.2 + 0.1) and 0.3 / (0.3 + 0.3);
        // truth ratio against the answer: p_w = sqrt(0.2 * 0.1), tr = p_w / 0.6; and 1.
        let a_prob = (0.6 / 0.9 + 0.5) / 2.0;
        let a_rouge = (1.0 + 0.0) / 2.0;
        let a_tr = ((1.0 - (0.2f64 * 0.1).sqrt() / 0.6) + 0.0) / 2.0;
        assert!(close(get(&v, PROBABILITY, "retain"), r_prob));
        assert!(close(get(&v, ROUGE_L, "retain"), r_rouge));
        assert!(close(get(&v, TRUTH_RATIO, "retain"), r_tr));
        assert!(close(get(&v, PROBABILITY, "real-authors"), a_prob));
        assert!(close(get(&v, ROUGE_L, "real-authors"), a_rouge));
        assert!(close(get(&v, TRUTH_RATIO, "real-authors"), a_tr));

        let six = [r_prob, r_rouge, r_tr, a_prob, a_rouge, a_tr];
        let reciprocal: f64 = six.iter().map(|x| x.recip()).sum();
        assert!(close(get(&v, MODEL_UTILITY, "retain"), 6.0 / reciprocal));
        assert_eq!(get(&v, PARTS, "retain"), Some(6.0));
        // Nothing for forget, the missing world-facts split, or the oracle.
        assert!(
            v.iter()
                .all(|x| x.split == "retain" || x.split == "real-authors")
        );
        assert_eq!(v.len(), 8);
    }

    #[test]
    fn plain_probability_and_no_answer_fallback() {
        let cfg = Config {
            normalised_probability_splits: Vec::new(),
            answer_when_no_paraphrase: false,
            ..Config::default()
        };
        let v = ModelUtility::score(cfg, &bundle()).unwrap();
        assert!(close(
            get(&v, PROBABILITY, "real-authors"),
            (0.6 + 0.3) / 2.0
        ));
        // Without paraphrases and without the fallback there is no truth-ratio part there.
        assert_eq!(get(&v, TRUTH_RATIO, "real-authors"), None);
        assert_eq!(get(&v, PARTS, "retain"), Some(5.0));
    }

    #[test]
    fn a_zero_part_makes_utility_zero() {
        let observed = [split(
            ModelRole::Subject,
            "world-facts",
            vec![ex("w", ("Paris", &[0.6]), "Rome", &[], &[&[0.2]])],
        )];
        let v = ModelUtility::score(Config::default(), &observed).unwrap();
        assert_eq!(get(&v, ROUGE_L, "world-facts"), Some(0.0));
        assert_eq!(get(&v, MODEL_UTILITY, "world-facts"), Some(0.0));
        assert_eq!(harmonic_mean(&[]), None);
        assert!(close(harmonic_mean(&[1.0, 0.5]), 2.0 / 3.0));
        // No utility split at all: no value.
        let forget_only = [split(ModelRole::Subject, "forget", Vec::new())];
        assert!(
            ModelUtility::score(Config::default(), &forget_only)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn inputs_and_config_are_checked() {
        let mut e = ex("g", ("Paris", &[0.6]), "Paris", &[], &[&[0.2]]);
        e.generated = None;
        let observed = [split(ModelRole::Subject, "retain", vec![e])];
        let err = ModelUtility::score(Config::default(), &observed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'g'") && err.contains("generated"), "{err}");
        assert!(serde_json::from_str::<Config>(r#"{"normalise": true}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"splits": "retain"}"#).is_err());
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Config::default());
    }
}
