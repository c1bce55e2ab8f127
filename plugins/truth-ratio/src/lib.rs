//! TOFU's truth ratio: does the model prefer the correct answer to wrong ones in the same style?
//!
//! Per question, from teacher-forced log-probabilities, `p_c = exp(−avg(paraphrased answer))`
//! (with several paraphrases, `exp(−mean_i avg(paraphrased_i))`), `p_w = exp(−mean_j
//! avg(perturbed_j))` and `tr = p_w / p_c` (see [`lethe_scoring::truth_ratio`]). Outputs:
//!
//! - `truth_ratio`: `min(tr, 1/tr)` on the forget splits (1 = the model cannot tell the correct
//!   answer from the wrong ones, i.e. forgot) and `max(0, 1 − tr)` on every other split
//!   (1 = it clearly prefers the correct answer); higher is the desired outcome on both;
//! - `truth_ratio_meta`: `p_c / (p_c + p_w)`, the form the meta-evaluation of metrics uses;
//! - `truth_ratio_raw`: `tr` itself (what forget quality compares between models).
//!
//! Each per example and as the split's mean. Questions without paraphrased or without perturbed
//! answers are skipped; a split with none of them gets no value.

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::truth_ratio::{TruthRatio, truth_ratio};

/// Which splits are read in the forget form.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Splits whose knowledge should be gone: `truth_ratio` is `min(tr, 1/tr)` there and
    /// `max(0, 1 − tr)` on every other split.
    pub forget_splits: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            forget_splits: vec!["forget".into()],
        }
    }
}

/// The truth-ratio metric.
pub struct TruthRatioMetric;

/// The headline output, in the form the split calls for.
pub const TRUTH_RATIO: &str = "truth_ratio";
/// `p_c / (p_c + p_w)`.
pub const META: &str = "truth_ratio_meta";
/// The raw `tr = p_w / p_c`.
pub const RAW: &str = "truth_ratio_raw";

/// The truth ratio of an example from its paraphrased and perturbed answers, `None` when it has
/// none of either; an error naming the example when the host left them out or one is malformed.
pub fn example_truth_ratio(example: &Example) -> Result<Option<TruthRatio>> {
    let paraphrased = example
        .paraphrased_logprobs
        .as_deref()
        .ok_or_else(|| missing("paraphrased answer log-probs", example))?;
    let perturbed = example
        .perturbed_logprobs
        .as_deref()
        .ok_or_else(|| missing("perturbed answer log-probs", example))?;
    truth_ratio(paraphrased, perturbed)
        .map_err(|e| PluginError::InvalidInput(format!("example '{}': {e}", example.id)))
}

impl Metric for TruthRatioMetric {
    type Config = Config;
    const NAME: &'static str = "truth-ratio";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "TOFU's truth ratio: perturbed vs paraphrased answer probability, in forget and retain form.";
    const OBSERVATIONS: &'static [Observation] = &[
        Observation::ParaphrasedAnswerLogprobs,
        Observation::PerturbedAnswerLogprobs,
    ];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: TRUTH_RATIO.to_owned(),
                reading: Reading::HigherBetter,
                summary: "min(tr, 1/tr) on forget splits, max(0, 1 - tr) elsewhere, \
                          tr = p(perturbed) / p(paraphrased)"
                    .to_owned(),
            },
            MetricOutput {
                name: META.to_owned(),
                reading: Reading::HigherKnows,
                summary: "p(paraphrased) / (p(paraphrased) + p(perturbed))".to_owned(),
            },
            MetricOutput {
                name: RAW.to_owned(),
                reading: Reading::LowerKnows,
                summary: "tr = p(perturbed) / p(paraphrased), p = exp(-avg)".to_owned(),
            },
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let forget = config.forget_splits.contains(&split.split);
            let mut columns: [Vec<f64>; 3] = Default::default();
            for example in &split.examples {
                let Some(t) = example_truth_ratio(example)? else {
                    continue;
                };
                let headline = if forget {
                    t.forget_form()
                } else {
                    t.retain_form()
                };
                for (i, (name, v)) in [
                    (TRUTH_RATIO, headline),
                    (META, t.meta_form()),
                    (RAW, t.ratio),
                ]
                .into_iter()
                .enumerate()
                {
                    values.push(example_value(name, &split.split, &example.id, v));
                    columns[i].push(v);
                }
            }
            for (name, column) in [TRUTH_RATIO, META, RAW].into_iter().zip(&columns) {
                if let Some(m) = mean(column) {
                    values.push(split_value(name, &split.split, m));
                }
            }
        }
        Ok(values)
    }
}

export_metric!(TruthRatioMetric);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An example whose paraphrase and perturbed answers have these per-token probabilities.
    fn ex(id: &str, paraphrased: &[&[f64]], perturbed: &[&[f64]]) -> Example {
        let lp = |answers: &[&[f64]]| {
            answers
                .iter()
                .map(|a| a.iter().map(|&p| p.ln() as f32).collect())
                .collect()
        };
        Example {
            paraphrased_logprobs: Some(lp(paraphrased)),
            perturbed_logprobs: Some(lp(perturbed)),
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

    fn get(values: &[Value], name: &str, split: &str, example: Option<&str>) -> Option<f64> {
        values
            .iter()
            .find(|v| v.name == name && v.split == split && v.example.as_deref() == example)
            .map(|v| v.value)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    /// Geometric mean of a list of probabilities: exp of the mean log, computed as the
    /// n-th root of the product (a different route from the metric's mean of logs).
    fn geo(ps: &[f64]) -> f64 {
        ps.iter().product::<f64>().powf(1.0 / ps.len() as f64)
    }

    #[test]
    fn forget_and_retain_forms_per_split_and_per_example() {
        // f1: p_c = geo(0.5, 0.5) = 0.5; p_w = geo over perturbed of their geometric means:
        // exp(mean_j avg_j) = (0.2 * 0.05)^(1/2) = 0.1 -> tr = 0.2.
        // f2: p_c = 0.1, p_w = 0.4 -> tr = 4 (wrong answers preferred).
        // r1: two paraphrases with p 0.8 and 0.2 -> p_c = geo(0.8, 0.2) = 0.4; p_w = 0.1 ->
        // tr = 0.25. r2: p_c = 0.3, p_w = 0.6 -> tr = 2.
        let forget = vec![
            ex("f1", &[&[0.5, 0.5]], &[&[0.2], &[0.05]]),
            ex("f2", &[&[0.1]], &[&[0.4, 0.4]]),
            // No perturbed answers: skipped.
            ex("f3", &[&[0.9]], &[]),
        ];
        let retain = vec![
            ex("r1", &[&[0.8], &[0.2]], &[&[0.1]]),
            ex("r2", &[&[0.3]], &[&[0.6]]),
        ];
        let none = vec![ex("n1", &[], &[&[0.3]])];
        // The oracle's observations, if a host sent them, must not be read.
        let oracle = vec![ex("f1", &[&[0.01]], &[&[0.99]])];
        let observed = [
            split(ModelRole::Subject, "forget", forget),
            split(ModelRole::Subject, "retain", retain),
            split(ModelRole::Subject, "empty", none),
            split(ModelRole::Oracle, "forget", oracle),
        ];
        let v = TruthRatioMetric::score(Config::default(), &observed).unwrap();

        let tr_f1 = geo(&[0.2, 0.05]) / geo(&[0.5, 0.5]);
        let tr_f2 = 0.4 / 0.1;
        let tr_r1 = 0.1 / geo(&[0.8, 0.2]);
        let tr_r2 = 0.6 / 0.3;
        assert!((tr_f1 - 0.2).abs() < 1e-12 && (tr_r1 - 0.25).abs() < 1e-12);

        let forget_form = |tr: f64| if tr < 1.0 { tr } else { 1.0 / tr };
        let retain_form = |tr: f64| if tr < 1.0 { 1.0 - tr } else { 0.0 };
        assert!(close(
            get(&v, TRUTH_RATIO, "forget", Some("f1")),
            forget_form(tr_f1)
        ));
        assert!(close(
            get(&v, TRUTH_RATIO, "forget", Some("f2")),
            forget_form(tr_f2)
        ));
        assert!(close(
            get(&v, TRUTH_RATIO, "forget", None),
            (0.2 + 0.25) / 2.0
        ));
        assert!(close(
            get(&v, TRUTH_RATIO, "retain", Some("r1")),
            retain_form(tr_r1)
        ));
        assert!(close(get(&v, TRUTH_RATIO, "retain", Some("r2")), 0.0));
        assert!(close(
            get(&v, TRUTH_RATIO, "retain", None),
            (0.75 + 0.0) / 2.0
        ));

        // Meta form: p_c / (p_c + p_w).
        assert!(close(
            get(&v, META, "forget", Some("f1")),
            0.5 / (0.5 + 0.1)
        ));
        assert!(close(
            get(&v, META, "retain", None),
            (0.4 / 0.5 + 0.3 / 0.9) / 2.0
        ));
        // Raw ratios.
        assert!(close(get(&v, RAW, "forget", Some("f2")), 4.0));
        assert!(close(get(&v, RAW, "retain", None), (tr_r1 + tr_r2) / 2.0));

        // Skipped examples and the empty split have no values; nothing for the oracle.
        assert!(v.iter().all(|x| x.example.as_deref() != Some("f3")));
        assert!(v.iter().all(|x| x.split != "empty"));
        // 3 outputs x (2 forget + 2 retain examples + 2 split means).
        assert_eq!(v.len(), 18);
    }

    #[test]
    fn configured_forget_splits_take_the_forget_form() {
        let observed = [split(
            ModelRole::Subject,
            "retain",
            vec![ex("r", &[&[0.5]], &[&[0.1]])],
        )];
        let cfg = Config {
            forget_splits: vec!["retain".into()],
        };
        let v = TruthRatioMetric::score(cfg, &observed).unwrap();
        // tr = 0.2: the forget form gives 0.2, the retain form would give 0.8.
        assert!(close(get(&v, TRUTH_RATIO, "retain", None), 0.2));
    }

    #[test]
    fn config_and_input_errors() {
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Config::default());
        assert!(serde_json::from_str::<Config>(r#"{"forget_split": "forget"}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"forget_splits": "forget"}"#).is_err());

        let mut e = ex("m", &[&[0.5]], &[&[0.1]]);
        e.perturbed_logprobs = None;
        let observed = [split(ModelRole::Subject, "forget", vec![e])];
        let err = TruthRatioMetric::score(Config::default(), &observed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'m'") && err.contains("perturbed"), "{err}");

        let mut e = ex("z", &[&[0.5]], &[&[0.1]]);
        e.paraphrased_logprobs = Some(vec![vec![]]);
        let observed = [split(ModelRole::Subject, "forget", vec![e])];
        let err = TruthRatioMetric::score(Config::default(), &observed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'z'") && err.contains("no tokens"), "{err}");
    }
}
