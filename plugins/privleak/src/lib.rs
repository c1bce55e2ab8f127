//! MUSE's privacy leakage: how much more (or less) the scored model gives away which examples
//! it was trained on than the retain-only oracle, which never saw them.
//!
//! The Min-K% attack (k = 0.4 by default; [`lethe_scoring::mia`]) scores every member (forget)
//! and non-member (holdout) example, once with the scored model's and once with the oracle's
//! token log-probabilities; each model's ROC AUC is oriented as the mia metric's (1 = members
//! perfectly separated, [`lethe_scoring::auc`]). Then, exactly as SPEC writes it,
//!
//! ```text
//! PrivLeak = ((1 − AUC_subject) − (1 − AUC_oracle)) / (1 − AUC_oracle) · 100
//! ```
//!
//! `1 − AUC` is MUSE's own orientation of the AUC. 0 means the model leaks membership exactly
//! as much as a model that never saw the members; negative values mean it leaks more (the
//! members still stand out: under-unlearning; −100 when they are perfectly separated), positive
//! values that the members stand out less than for the oracle, in the other direction
//! (over-unlearning, itself detectable). `privleak_abs` ranks models by the distance from 0.
//! With an oracle AUC of 1 the ratio is undefined and only the two AUCs are reported.

use lethe_plugin_sdk::metric::{missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::auc::roc_auc;
use lethe_scoring::mia::min_k_logprobs;

/// Which splits are compared, and Min-K%'s share of tokens.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The split of members (examples the model was trained on).
    pub members: String,
    /// The split of non-members (examples from the same distribution it never saw).
    pub nonmembers: String,
    /// Min-K% averages the lowest `⌈k·T⌉` of the T token log-probs; in (0, 1].
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub k: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            members: "forget".into(),
            nonmembers: "holdout".into(),
            k: 0.4,
        }
    }
}

/// The privacy-leakage metric.
pub struct PrivLeak;

/// PrivLeak, signed.
pub const PRIVLEAK: &str = "privleak";
/// |PrivLeak|.
pub const PRIVLEAK_ABS: &str = "privleak_abs";
/// The scored model's Min-K% AUC.
pub const AUC_SUBJECT: &str = "auc_mink_subject";
/// The oracle's Min-K% AUC.
pub const AUC_ORACLE: &str = "auc_mink_oracle";

/// Min-K% scores of one model's examples on split `name`, or an error naming what is missing.
fn min_k_scores(
    observed: &[ObservedSplit],
    model: ModelRole,
    name: &str,
    k: f64,
) -> Result<Vec<f64>> {
    let split = observed
        .iter()
        .find(|s| s.model == model && s.split == name)
        .ok_or_else(|| {
            let have: Vec<&str> = observed
                .iter()
                .filter(|s| s.model == model)
                .map(|s| s.split.as_str())
                .collect();
            PluginError::InvalidInput(format!(
                "no {model:?} observations of split '{name}' (there are: {})",
                have.join(", ")
            ))
        })?;
    let mut scores = Vec::with_capacity(split.examples.len());
    for example in &split.examples {
        let lp = example
            .answer_logprobs
            .as_deref()
            .ok_or_else(|| missing("answer log-probs", example))?;
        let s = min_k_logprobs(lp, k).ok_or_else(|| {
            PluginError::InvalidInput(format!(
                "{model:?} example '{}' has no answer tokens or a non-finite log-prob",
                example.id
            ))
        })?;
        scores.push(s);
    }
    Ok(scores)
}

/// One model's Min-K% AUC: lower scores are members', so non-members are the higher group.
fn model_auc(observed: &[ObservedSplit], model: ModelRole, config: &Config) -> Result<Option<f64>> {
    let members = min_k_scores(observed, model, &config.members, config.k)?;
    let nonmembers = min_k_scores(observed, model, &config.nonmembers, config.k)?;
    Ok(roc_auc(&nonmembers, &members))
}

/// `((1 − auc_subject) − (1 − auc_oracle)) / (1 − auc_oracle) · 100`; `None` when the oracle's
/// AUC is 1.
pub fn privleak(auc_subject: f64, auc_oracle: f64) -> Option<f64> {
    let reference = 1.0 - auc_oracle;
    (reference != 0.0).then(|| ((1.0 - auc_subject) - reference) / reference * 100.0)
}

impl Metric for PrivLeak {
    type Config = Config;
    const NAME: &'static str = "privleak";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "MUSE's PrivLeak: the Min-K% membership AUC on members vs \
                                   non-members relative to the retain-only oracle's.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::AnswerLogprobs];
    const MODELS: &'static [ModelRole] = &[ModelRole::Oracle];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: PRIVLEAK.to_owned(),
                // Signed, best at 0; of the two directions the one that leaks (negative) is
                // the worse, hence "higher better" up to 0. Rank by privleak_abs.
                reading: Reading::HigherBetter,
                summary: "((1−AUC_subject) − (1−AUC_oracle)) / (1−AUC_oracle) · 100 on Min-K%: \
                          0 = leaks membership like the oracle; negative = members still stand \
                          out (under-unlearning, −100 = perfectly separated); positive = they \
                          stand out less than for the oracle (over-unlearning)"
                    .to_owned(),
            },
            MetricOutput {
                name: PRIVLEAK_ABS.to_owned(),
                reading: Reading::LowerBetter,
                summary: "|privleak|: distance from the oracle's membership leakage".to_owned(),
            },
            MetricOutput {
                name: AUC_SUBJECT.to_owned(),
                reading: Reading::HigherKnows,
                summary: "Min-K% ROC AUC of the scored model, members vs non-members (1 = \
                          members perfectly separated)"
                    .to_owned(),
            },
            MetricOutput {
                name: AUC_ORACLE.to_owned(),
                reading: Reading::HigherKnows,
                summary: "Min-K% ROC AUC of the retain-only oracle on the same splits".to_owned(),
            },
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        if !(config.k > 0.0 && config.k <= 1.0) {
            return Err(PluginError::InvalidConfig(format!(
                "k must be in (0, 1], not {}",
                config.k
            )));
        }
        if config.members == config.nonmembers {
            return Err(PluginError::InvalidConfig(format!(
                "members and nonmembers are the same split '{}'",
                config.members
            )));
        }
        let subject = model_auc(observed, ModelRole::Subject, &config)?;
        let oracle = model_auc(observed, ModelRole::Oracle, &config)?;
        let mut values = Vec::new();
        let at = config.members.as_str();
        // The headline first: boards show each metric's first output.
        if let (Some(s), Some(o)) = (subject, oracle)
            && let Some(p) = privleak(s, o)
        {
            values.push(split_value(PRIVLEAK, at, p));
            values.push(split_value(PRIVLEAK_ABS, at, p.abs()));
        }
        if let Some(s) = subject {
            values.push(split_value(AUC_SUBJECT, at, s));
        }
        if let Some(o) = oracle {
            values.push(split_value(AUC_ORACLE, at, o));
        }
        Ok(values)
    }
}

export_metric!(PrivLeak);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A split of one-per-example answers with these token log-probs.
    fn split(model: ModelRole, name: &str, answers: &[&[f32]]) -> ObservedSplit {
        ObservedSplit {
            model,
            split: name.into(),
            examples: answers
                .iter()
                .enumerate()
                .map(|(i, lp)| Example {
                    answer_logprobs: Some(lp.to_vec()),
                    ..lethe_plugin_sdk::metric::example(&format!("{name}-{i}"), "Q?", "A")
                })
                .collect(),
        }
    }

    fn get(values: &[Value], name: &str) -> Option<f64> {
        values
            .iter()
            .find(|v| v.name == name && v.split == "forget" && v.example.is_none())
            .map(|v| v.value)
    }

    /// Written out: −mean of the lowest ⌈0.4·T⌉ log-probs, for T = 3 (2 of them) or 5 (2).
    fn min_k(lp: &[f32]) -> f64 {
        let mut v: Vec<f64> = lp.iter().map(|&l| f64::from(l)).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert!(v.len() == 3 || v.len() == 5);
        -(v[0] + v[1]) / 2.0
    }

    /// P(non-member > member) + ½ P(tie), pair by pair.
    fn pair_auc(members: &[f64], nonmembers: &[f64]) -> f64 {
        let mut wins = 0.0;
        for n in nonmembers {
            for m in members {
                wins += if n > m {
                    1.0
                } else if n == m {
                    0.5
                } else {
                    0.0
                };
            }
        }
        wins / (members.len() * nonmembers.len()) as f64
    }

    #[test]
    fn privleak_follows_spec_from_both_models_aucs() {
        // Subject: members' Min-K% 0.15, 0.45, 1.5; non-members' 0.35, 2.0 → 4 of 6 pairs.
        let s_mem: [&[f32]; 3] = [
            &[-0.1, -0.2, -0.05],
            &[-0.4, -0.5, -0.1, -0.1, -0.1],
            &[-1.0, -2.0, -0.1],
        ];
        let s_non: [&[f32]; 2] = [&[-0.3, -0.4, -0.05], &[-2.5, -1.5, -0.1]];
        // Oracle: members 1.0, 0.3, 2.5; non-members 0.5, 1.5 → 3 of 6 pairs.
        let o_mem: [&[f32]; 3] = [
            &[-1.0, -1.0, -0.1],
            &[-0.3, -0.3, 0.0, 0.0, 0.0],
            &[-2.0, -2.0, -3.0],
        ];
        let o_non: [&[f32]; 2] = [&[-0.5, -0.5, -0.1], &[-1.5, -1.5, -0.2]];
        // A retain split that would separate perfectly if it were mistaken for either group.
        let far: [&[f32]; 1] = [&[-9.0, -9.0, -9.0]];
        let observed = [
            split(ModelRole::Subject, "forget", &s_mem),
            split(ModelRole::Subject, "holdout", &s_non),
            split(ModelRole::Subject, "retain", &far),
            split(ModelRole::Oracle, "forget", &o_mem),
            split(ModelRole::Oracle, "holdout", &o_non),
            split(ModelRole::Oracle, "retain", &far),
        ];
        let v = PrivLeak::score(Config::default(), &observed).unwrap();

        let scores = |a: &[&[f32]]| a.iter().map(|lp| min_k(lp)).collect::<Vec<f64>>();
        let auc_s = pair_auc(&scores(&s_mem), &scores(&s_non));
        let auc_o = pair_auc(&scores(&o_mem), &scores(&o_non));
        assert!((auc_s - 4.0 / 6.0).abs() < 1e-12 && (auc_o - 0.5).abs() < 1e-12);
        let want = ((1.0 - auc_s) - (1.0 - auc_o)) / (1.0 - auc_o) * 100.0;
        // (1/3 − 1/2) / (1/2) · 100 = −33.3: members stand out more than for the oracle.
        // Subject and oracle swapped would give +50; the groups swapped, +33.3.
        assert!((want + 100.0 / 3.0).abs() < 1e-9);
        assert!((get(&v, PRIVLEAK).unwrap() - want).abs() < 1e-9);
        assert!((get(&v, PRIVLEAK_ABS).unwrap() - want.abs()).abs() < 1e-9);
        assert!((get(&v, AUC_SUBJECT).unwrap() - auc_s).abs() < 1e-12);
        assert!((get(&v, AUC_ORACLE).unwrap() - auc_o).abs() < 1e-12);
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn an_oracle_auc_of_one_leaves_privleak_undefined() {
        assert_eq!(privleak(0.9, 1.0), None);
        assert_eq!(privleak(0.5, 0.5), Some(0.0));
        assert!((privleak(1.0, 0.5).unwrap() + 100.0).abs() < 1e-12);
        let mem: [&[f32]; 1] = [&[-0.1, -0.1, -0.1]];
        let non: [&[f32]; 1] = [&[-5.0, -5.0, -5.0]];
        let observed = [
            split(ModelRole::Subject, "forget", &mem),
            split(ModelRole::Subject, "holdout", &non),
            split(ModelRole::Oracle, "forget", &mem),
            split(ModelRole::Oracle, "holdout", &non),
        ];
        let v = PrivLeak::score(Config::default(), &observed).unwrap();
        assert_eq!(get(&v, AUC_ORACLE), Some(1.0));
        assert_eq!(get(&v, PRIVLEAK), None);
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn a_missing_oracle_split_is_named_and_config_is_checked() {
        let mem: [&[f32]; 1] = [&[-0.1, -0.1, -0.1]];
        let observed = [
            split(ModelRole::Subject, "forget", &mem),
            split(ModelRole::Subject, "holdout", &mem),
            split(ModelRole::Oracle, "forget", &mem),
        ];
        let e = PrivLeak::score(Config::default(), &observed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Oracle") && e.contains("'holdout'"), "{e}");
        assert!(serde_json::from_str::<Config>(r#"{"split": "forget"}"#).is_err());
        let cfg = Config {
            k: 0.0,
            ..Config::default()
        };
        assert!(PrivLeak::score(cfg, &observed).is_err());
    }
}
