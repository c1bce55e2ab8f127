//! TOFU's forget quality: the two-sided two-sample Kolmogorov–Smirnov p-value between the
//! per-question raw truth ratios `tr = p(perturbed) / p(paraphrased)` of the scored model and
//! of the retain-only oracle on the forget split.
//!
//! A model that forgot the split as if it had never seen it answers like the oracle, so the two
//! distributions of truth ratios agree and the p-value is high; a model that still knows the
//! split prefers the true answers and its ratios sit lower. The truth ratio is computed by
//! [`lethe_scoring::truth_ratio`] (the same numbers the truth-ratio metric reports as
//! `truth_ratio_raw`) and the test by [`lethe_scoring::ks`], a port of scipy's `ks_2samp`
//! whose default method (exact below 10 000 values per sample) this follows. Questions without
//! paraphrased or perturbed answers are skipped on both sides.

use lethe_plugin_sdk::metric::{missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::ks::{self, ks_2samp};
use lethe_scoring::truth_ratio::truth_ratio;

/// Which split is compared, and how the p-value is computed.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The split whose truth ratios are compared.
    pub split: String,
    /// The p-value's method, as scipy's `method`: "auto" (exact up to 10 000 values per
    /// sample), "exact" or "asymptotic".
    pub mode: KsMode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            split: "forget".into(),
            mode: KsMode::Auto,
        }
    }
}

/// The KS test's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KsMode {
    /// Exact for samples of up to 10 000 values, asymptotic above (scipy's default).
    Auto,
    /// The exact distribution (scipy falls back to asymptotic where it cannot compute it).
    Exact,
    /// The asymptotic Kolmogorov distribution.
    Asymptotic,
}

impl From<KsMode> for ks::Mode {
    fn from(m: KsMode) -> Self {
        match m {
            KsMode::Auto => ks::Mode::Auto,
            KsMode::Exact => ks::Mode::Exact,
            KsMode::Asymptotic => ks::Mode::Asymp,
        }
    }
}

/// The forget-quality metric.
pub struct ForgetQuality;

/// The KS p-value.
pub const FORGET_QUALITY: &str = "forget_quality";
/// The KS statistic D.
pub const KS_STATISTIC: &str = "ks_statistic";

/// The raw truth ratios of one model's examples on `split`, skipping those without variants;
/// an error naming the split when that model was not observed on it.
pub fn truth_ratios(observed: &[ObservedSplit], model: ModelRole, split: &str) -> Result<Vec<f64>> {
    let Some(s) = observed
        .iter()
        .find(|s| s.model == model && s.split == split)
    else {
        let mut have: Vec<&str> = observed
            .iter()
            .filter(|s| s.model == model)
            .map(|s| s.split.as_str())
            .collect();
        have.dedup();
        return Err(PluginError::InvalidInput(format!(
            "no {model:?} observations of split '{split}' (there are: {})",
            have.join(", ")
        )));
    };
    let mut ratios = Vec::with_capacity(s.examples.len());
    for example in &s.examples {
        let paraphrased = example
            .paraphrased_logprobs
            .as_deref()
            .ok_or_else(|| missing("paraphrased answer log-probs", example))?;
        let perturbed = example
            .perturbed_logprobs
            .as_deref()
            .ok_or_else(|| missing("perturbed answer log-probs", example))?;
        let t = truth_ratio(paraphrased, perturbed).map_err(|e| {
            PluginError::InvalidInput(format!("{model:?} example '{}': {e}", example.id))
        })?;
        ratios.extend(t.map(|t| t.ratio));
    }
    Ok(ratios)
}

impl Metric for ForgetQuality {
    type Config = Config;
    const NAME: &'static str = "forget-quality";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "TOFU's forget quality: KS-test p-value of forget truth ratios against the oracle's.";
    const OBSERVATIONS: &'static [Observation] = &[
        Observation::ParaphrasedAnswerLogprobs,
        Observation::PerturbedAnswerLogprobs,
    ];
    const MODELS: &'static [ModelRole] = &[ModelRole::Oracle];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: FORGET_QUALITY.to_owned(),
                reading: Reading::HigherBetter,
                summary: "two-sided KS p-value between the model's and the oracle's forget \
                          truth ratios (1 = indistinguishable from never trained on it)"
                    .to_owned(),
            },
            MetricOutput {
                name: KS_STATISTIC.to_owned(),
                reading: Reading::LowerBetter,
                summary: "KS statistic: largest gap between the two truth ratios' empirical CDFs"
                    .to_owned(),
            },
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let subject = truth_ratios(observed, ModelRole::Subject, &config.split)?;
        let oracle = truth_ratios(observed, ModelRole::Oracle, &config.split)?;
        // No value when a side has no question with variants (the test is undefined), or where
        // scipy's p-value is NaN (asymptotic mode with one value per side).
        let Some(outcome) = ks_2samp(&subject, &oracle, config.mode.into()) else {
            return Ok(Vec::new());
        };
        // The headline first: boards show each metric's first output.
        let mut values = Vec::new();
        if outcome.pvalue.is_finite() {
            values.push(split_value(FORGET_QUALITY, &config.split, outcome.pvalue));
        }
        values.push(split_value(KS_STATISTIC, &config.split, outcome.statistic));
        Ok(values)
    }
}

export_metric!(ForgetQuality);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An example with one paraphrase of probability `p_c` and one perturbed answer of
    /// probability `p_w` (one token each), so its raw truth ratio is `p_w / p_c`.
    fn ex(id: &str, p_c: f64, p_w: f64) -> Example {
        Example {
            paraphrased_logprobs: Some(vec![vec![p_c.ln() as f32]]),
            perturbed_logprobs: Some(vec![vec![p_w.ln() as f32]]),
            ..lethe_plugin_sdk::metric::example(id, "Q?", "A")
        }
    }

    /// A split whose raw truth ratios are `ratios` (p_c = 0.5 throughout).
    fn split(model: ModelRole, name: &str, ratios: &[f64]) -> ObservedSplit {
        ObservedSplit {
            model,
            split: name.into(),
            examples: ratios
                .iter()
                .enumerate()
                .map(|(i, r)| ex(&format!("{name}-{i}"), 0.5, 0.5 * r))
                .collect(),
        }
    }

    fn get(values: &[Value], name: &str, split: &str) -> Option<f64> {
        values
            .iter()
            .find(|v| v.name == name && v.split == split && v.example.is_none())
            .map(|v| v.value)
    }

    /// C(n, k) by the multiplicative formula.
    fn choose(n: u64, k: u64) -> f64 {
        (1..=k).map(|i| (n - k + i) as f64 / i as f64).product()
    }

    #[test]
    fn separated_raw_ratios_give_the_exact_two_sided_p_value() {
        // Subject raw ratios all above the oracle's: D = 1, and exactly 2 of the C(7, 3)
        // equally likely orderings separate the samples this completely, so p = 2 / 35.
        // The forget form min(tr, 1/tr) would mix them (0.5, 0.25, 0.2 against 0.3 ... 0.6),
        // and the retain split (identical to the oracle's forget split) would give D = 0.
        let subject_forget = [2.0, 4.0, 5.0];
        let oracle_forget = [0.3, 0.4, 0.45, 0.6];
        let observed = [
            split(ModelRole::Subject, "forget", &subject_forget),
            split(ModelRole::Subject, "retain", &oracle_forget),
            split(ModelRole::Oracle, "forget", &oracle_forget),
            split(ModelRole::Oracle, "retain", &subject_forget),
        ];
        let v = ForgetQuality::score(Config::default(), &observed).unwrap();
        let p = get(&v, FORGET_QUALITY, "forget").unwrap();
        assert!((p - 2.0 / choose(7, 3)).abs() < 1e-12, "{p}");
        assert!((get(&v, KS_STATISTIC, "forget").unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn the_statistic_is_the_largest_cdf_gap() {
        // Subject [0.1, 0.2, 0.9, 1.5], oracle [0.3, 0.4, 1.2, 2.0]. At 0.2 the subject's ECDF
        // is 2/4 and the oracle's 0; nowhere is the gap larger, so D = 1/2.
        let s = [0.1, 0.2, 0.9, 1.5];
        let o = [0.3, 0.4, 1.2, 2.0];
        let observed = [
            split(ModelRole::Subject, "forget", &s),
            split(ModelRole::Oracle, "forget", &o),
        ];
        let v = ForgetQuality::score(Config::default(), &observed).unwrap();
        let d = get(&v, KS_STATISTIC, "forget").unwrap();
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        // The exact p-value by brute force: the share of the C(8, 4) ways to split the eight
        // pooled values into two groups of four whose ECDF gap is at least D.
        let pooled: Vec<f64> = s.iter().chain(&o).copied().collect();
        let mut at_least = 0u32;
        for mask in 0u32..256 {
            if mask.count_ones() != 4 {
                continue;
            }
            let mut gap = 0i32;
            let mut best = 0i32;
            let mut order: Vec<usize> = (0..8).collect();
            order.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
            for i in order {
                gap += if mask & (1 << i) != 0 { 1 } else { -1 };
                best = best.max(gap.abs());
            }
            if f64::from(best) / 4.0 >= 0.5 - 1e-12 {
                at_least += 1;
            }
        }
        let want = f64::from(at_least) / choose(8, 4);
        let p = get(&v, FORGET_QUALITY, "forget").unwrap();
        assert!((p - want).abs() < 1e-9, "{p} vs {want}");

        // Asymptotic mode gives a different, still valid p-value.
        let cfg = Config {
            mode: KsMode::Asymptotic,
            ..Config::default()
        };
        let v = ForgetQuality::score(cfg, &observed).unwrap();
        let pa = get(&v, FORGET_QUALITY, "forget").unwrap();
        assert!(
            (0.0..=1.0).contains(&pa) && (pa - want).abs() > 1e-6,
            "{pa}"
        );
    }

    #[test]
    fn the_configured_split_is_compared_and_missing_ones_are_named() {
        let observed = [
            split(ModelRole::Subject, "forget", &[0.1, 0.2]),
            split(ModelRole::Subject, "rephrased", &[0.5, 0.6]),
            split(ModelRole::Oracle, "forget", &[0.5, 0.6]),
        ];
        let cfg = Config {
            split: "rephrased".into(),
            ..Config::default()
        };
        let e = ForgetQuality::score(cfg, &observed)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Oracle") && e.contains("'rephrased'") && e.contains("forget"),
            "{e}"
        );
        let v = ForgetQuality::score(Config::default(), &observed).unwrap();
        assert!((get(&v, KS_STATISTIC, "forget").unwrap() - 1.0).abs() < 1e-12);

        // Without any question with variants there is nothing to test.
        let mut bare = split(ModelRole::Subject, "forget", &[0.1]);
        bare.examples[0].perturbed_logprobs = Some(Vec::new());
        let observed = [bare, split(ModelRole::Oracle, "forget", &[0.5])];
        assert!(
            ForgetQuality::score(Config::default(), &observed)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn config_is_checked() {
        let c: Config = serde_json::from_str(r#"{"mode": "asymptotic"}"#).unwrap();
        assert_eq!(c.mode, KsMode::Asymptotic);
        assert!(serde_json::from_str::<Config>(r#"{"mode": "asymp"}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"splits": ["forget"]}"#).is_err());
    }
}
