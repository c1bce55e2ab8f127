//! Membership inference: how well simple attacks tell the members of the training data (the
//! forget split, which the model was finetuned on) from non-members (a holdout split it never
//! saw), each reported as the ROC AUC of its per-example score.
//!
//! Attacks, all from teacher-forced per-token log-probabilities of the reference answer (T
//! tokens, EOS included, as SPEC's `avg` counts them), with the scores in
//! [`lethe_scoring::mia`]:
//!
//! - LOSS: `avg(y|x)`;
//! - ZLib: `avg(y|x) / len(zlib.compress(answer))`, zlib at level 6 as Python's module makes it;
//! - Min-K%: `−mean` of the lowest `⌈k·T⌉` token log-probs;
//! - Min-K%++: the same on `(log p(y_t) − μ_t) / σ_t`, the token's log-prob standardised by the
//!   mean and standard deviation of `log p` under the model's own distribution at t;
//! - Reference: `avg_subject(y|x) − avg_oracle(y|x)`, the loss relative to the retain-only
//!   model's, which factors out how hard the text is for any model.
//!
//! Every score is lower for a likelier member, so each AUC is `P(score(non-member) >
//! score(member))` (ties one half), oriented so that 1 means the members are perfectly
//! separated. The finetuned model sits near 1; a model that forgot the split as if it had never
//! seen it sits near 0.5, like the oracle. The AUCs are filed under the members split; the
//! per-example scores under each example's own split.
//!
//! A Min-K%++ score is undefined where σ_t = 0 (all the model's mass on one token); then that
//! example has no Min-K%++ score and `auc_minkpp` is not reported, rather than computed on a
//! different set of examples than the other attacks.
//!
//! GradNorm (SPEC: the L2 norm of `∇θ avg(y|x)` per example) is not here: a metric receives
//! observations, and the plugin interface has no per-example gradient observation.

use lethe_plugin_sdk::metric::{example_value, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::auc::roc_auc;
use lethe_scoring::mia::{self, MinKppError};

/// Which splits are compared, and Min-K%'s share of tokens.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The split of members (examples the model was trained on).
    pub members: String,
    /// The split of non-members (examples from the same distribution it never saw).
    pub nonmembers: String,
    /// Min-K% and Min-K%++ average the lowest `⌈k·T⌉` of the T token values; in (0, 1].
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

/// The membership-inference metric.
pub struct Mia;

/// The attacks: the name of the per-example score and of the AUC, and a description.
pub const ATTACKS: [(&str, &str, &str); 5] = [
    ("mia_loss", "auc_loss", "avg(y|x), the mean token NLL"),
    (
        "mia_zlib",
        "auc_zlib",
        "avg(y|x) / len(zlib.compress(answer)) (level 6)",
    ),
    (
        "mia_mink",
        "auc_mink",
        "Min-K%: −mean of the lowest ⌈k·T⌉ token log-probs",
    ),
    (
        "mia_minkpp",
        "auc_minkpp",
        "Min-K%++: Min-K% of (log p(y_t) − μ_t)/σ_t, μ and σ of log p under p",
    ),
    (
        "mia_reference",
        "auc_reference",
        "avg(y|x) of the scored model minus that of the oracle",
    ),
];

/// One example's five scores (Min-K%++ absent where undefined), in the order of [`ATTACKS`].
type Scores = [Option<f64>; 5];

/// The split `name` of `model`, or an error listing the splits that model has.
fn find<'a>(
    observed: &'a [ObservedSplit],
    model: ModelRole,
    name: &str,
) -> Result<&'a ObservedSplit> {
    observed
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
        })
}

fn logprobs(example: &Example) -> Result<&[f32]> {
    example
        .answer_logprobs
        .as_deref()
        .ok_or_else(|| missing("answer log-probs", example))
}

fn no_tokens(model: ModelRole, example: &Example) -> PluginError {
    PluginError::InvalidInput(format!(
        "{model:?} example '{}' has no answer tokens",
        example.id
    ))
}

/// The five scores of every example of one split.
fn scores(subject: &ObservedSplit, oracle: &ObservedSplit, k: f64) -> Result<Vec<Scores>> {
    let mut out = Vec::with_capacity(subject.examples.len());
    for example in &subject.examples {
        let lp = logprobs(example)?;
        let loss = mia::loss(lp).ok_or_else(|| no_tokens(ModelRole::Subject, example))?;
        let zlib = mia::zlib_score(lp, &example.answer);
        let mink = mia::min_k_logprobs(lp, k);
        let mean = example
            .answer_logprob_mean
            .as_deref()
            .ok_or_else(|| missing("log-prob moments", example))?;
        let std = example
            .answer_logprob_std
            .as_deref()
            .ok_or_else(|| missing("log-prob moments", example))?;
        let minkpp = match mia::min_k_plus_plus(lp, mean, std, k) {
            Ok(v) => Some(v),
            Err(MinKppError::Undefined { .. }) => None,
            Err(e) => {
                return Err(PluginError::InvalidInput(format!(
                    "example '{}': {e}",
                    example.id
                )));
            }
        };
        let twin = oracle
            .examples
            .iter()
            .find(|o| o.id == example.id)
            .ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "example '{}' of split '{}' has no Oracle observations",
                    example.id, subject.split
                ))
            })?;
        let oracle_loss =
            mia::loss(logprobs(twin)?).ok_or_else(|| no_tokens(ModelRole::Oracle, twin))?;
        out.push([Some(loss), zlib, mink, minkpp, Some(loss - oracle_loss)]);
    }
    Ok(out)
}

impl Metric for Mia {
    type Config = Config;
    const NAME: &'static str = "mia";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Membership inference on members vs non-members: ROC AUC of \
                                   the LOSS, ZLib, Min-K%, Min-K%++ and reference attacks.";
    const OBSERVATIONS: &'static [Observation] = &[
        Observation::AnswerLogprobs,
        Observation::AnswerLogprobMoments,
    ];
    const MODELS: &'static [ModelRole] = &[ModelRole::Oracle];

    fn outputs() -> Vec<MetricOutput> {
        let mut outputs = Vec::new();
        for (score, auc, what) in ATTACKS {
            outputs.push(MetricOutput {
                name: auc.to_owned(),
                reading: Reading::HigherKnows,
                summary: format!(
                    "ROC AUC of {what} separating members from non-members (1 = members \
                     perfectly separated, 0.5 = chance, as for a model that never saw them)"
                ),
            });
            outputs.push(MetricOutput {
                name: score.to_owned(),
                reading: Reading::LowerKnows,
                summary: format!("per example: {what} (lower = more likely a member)"),
            });
        }
        outputs
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
        let mut values = Vec::new();
        let mut columns = Vec::with_capacity(2);
        for name in [&config.members, &config.nonmembers] {
            let subject = find(observed, ModelRole::Subject, name)?;
            let oracle = find(observed, ModelRole::Oracle, name)?;
            let split_scores = scores(subject, oracle, config.k)?;
            for (example, s) in subject.examples.iter().zip(&split_scores) {
                for ((score, _, _), v) in ATTACKS.iter().zip(s) {
                    if let Some(v) = v {
                        values.push(example_value(score, name, &example.id, *v));
                    }
                }
            }
            columns.push(split_scores);
        }
        let (members, nonmembers) = (&columns[0], &columns[1]);
        for (i, (_, auc, _)) in ATTACKS.iter().enumerate() {
            // An attack without a score for some example is not reported (see the crate doc).
            let column = |rows: &[Scores]| rows.iter().map(|r| r[i]).collect::<Option<Vec<f64>>>();
            let (Some(m), Some(n)) = (column(members), column(nonmembers)) else {
                continue;
            };
            // Lower scores are members', so the non-members are the "positive", higher group.
            if let Some(a) = roc_auc(&n, &m) {
                values.push(split_value(auc, &config.members, a));
            }
        }
        Ok(values)
    }
}

export_metric!(Mia);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `len(zlib.compress(answer.encode()))` as Python prints it (zlib 1.2.13).
    const ZLIB_LEN: [(&str, f64); 5] = [
        ("Paris", 13.0),
        ("a", 9.0),
        ("The author's father was a dermatologist.", 48.0),
        ("abcabcabcabcabcabcabcabcabcabc", 13.0),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            12.0,
        ),
    ];

    struct Row {
        id: &'static str,
        answer: usize,
        lp: Vec<f32>,
        mu: Vec<f32>,
        sigma: Vec<f32>,
        oracle_lp: Vec<f32>,
    }

    fn row(id: &'static str, answer: usize, lp: &[f32], oracle_loss: f32) -> Row {
        let t = lp.len();
        Row {
            id,
            answer,
            lp: lp.to_vec(),
            // Varying moments, so Min-K%++ orders the examples unlike Min-K%.
            mu: (0..t).map(|i| -0.5 - 0.25 * i as f32).collect(),
            sigma: (0..t).map(|i| 0.5 + 0.5 * i as f32).collect(),
            // An oracle answer of one token with exactly that loss.
            oracle_lp: vec![-oracle_loss],
        }
    }

    fn members() -> Vec<Row> {
        vec![
            row("m1", 0, &[-0.1, -0.2, -0.3], 0.1),
            row("m2", 1, &[-1.0, -0.5, -0.1, -0.2], 0.05),
            row("m3", 2, &[-2.0, -0.1, -0.1, -0.1, -0.2], 1.0),
        ]
    }

    fn nonmembers() -> Vec<Row> {
        vec![
            row("n1", 3, &[-0.3, -0.4, -0.2], 0.25),
            row("n2", 4, &[-1.5, -1.0, -2.0, -0.5], 1.5),
        ]
    }

    fn observed(members: &[Row], nonmembers: &[Row]) -> Vec<ObservedSplit> {
        let subject = |r: &Row| Example {
            answer_logprobs: Some(r.lp.clone()),
            answer_logprob_mean: Some(r.mu.clone()),
            answer_logprob_std: Some(r.sigma.clone()),
            ..lethe_plugin_sdk::metric::example(r.id, "Q?", ZLIB_LEN[r.answer].0)
        };
        let oracle = |r: &Row| Example {
            answer_logprobs: Some(r.oracle_lp.clone()),
            ..lethe_plugin_sdk::metric::example(r.id, "Q?", ZLIB_LEN[r.answer].0)
        };
        let split = |model, name: &str, examples| ObservedSplit {
            model,
            split: name.into(),
            examples,
        };
        // A retain split whose examples look like extreme non-members, to catch a wrong split.
        let retain: Vec<Row> = vec![row("r1", 0, &[-9.0, -8.0], 0.1)];
        vec![
            split(
                ModelRole::Subject,
                "forget",
                members.iter().map(subject).collect(),
            ),
            split(
                ModelRole::Subject,
                "retain",
                retain.iter().map(subject).collect(),
            ),
            split(
                ModelRole::Subject,
                "holdout",
                nonmembers.iter().map(subject).collect(),
            ),
            split(
                ModelRole::Oracle,
                "forget",
                members.iter().map(oracle).collect(),
            ),
            split(
                ModelRole::Oracle,
                "holdout",
                nonmembers.iter().map(oracle).collect(),
            ),
            split(
                ModelRole::Oracle,
                "retain",
                retain.iter().map(oracle).collect(),
            ),
        ]
    }

    // The scores written out from SPEC's formulas, independently of lethe_scoring.

    fn avg(lp: &[f32]) -> f64 {
        -lp.iter().map(|&l| f64::from(l)).sum::<f64>() / lp.len() as f64
    }

    /// −mean of the lowest ⌈0.4·T⌉ values; ⌈0.4·T⌉ for T = 3, 4, 5 is 2, 2, 2.
    fn min_k_04(values: &[f64]) -> f64 {
        let count = match values.len() {
            3..=5 => 2,
            t => panic!("no hand count for T = {t}"),
        };
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        -v[..count].iter().sum::<f64>() / count as f64
    }

    fn expected(r: &Row) -> [f64; 5] {
        let lp: Vec<f64> = r.lp.iter().map(|&l| f64::from(l)).collect();
        let z: Vec<f64> = (0..lp.len())
            .map(|t| (lp[t] - f64::from(r.mu[t])) / f64::from(r.sigma[t]))
            .collect();
        [
            avg(&r.lp),
            avg(&r.lp) / ZLIB_LEN[r.answer].1,
            min_k_04(&lp),
            min_k_04(&z),
            avg(&r.lp) - avg(&r.oracle_lp),
        ]
    }

    /// P(non-member score > member score) + ½ P(tie), pair by pair.
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

    fn get(values: &[Value], name: &str, split: &str, example: Option<&str>) -> Option<f64> {
        values
            .iter()
            .find(|v| v.name == name && v.split == split && v.example.as_deref() == example)
            .map(|v| v.value)
    }

    #[test]
    fn every_attack_matches_its_formula_and_the_pair_count() {
        let (m, n) = (members(), nonmembers());
        let v = Mia::score(Config::default(), &observed(&m, &n)).unwrap();
        for (split, rows) in [("forget", &m), ("holdout", &n)] {
            for r in rows.iter() {
                let want = expected(r);
                for (i, (score, _, _)) in ATTACKS.iter().enumerate() {
                    let got = get(&v, score, split, Some(r.id)).unwrap();
                    assert!(
                        (got - want[i]).abs() < 1e-9,
                        "{score} {}: {got} vs {}",
                        r.id,
                        want[i]
                    );
                }
            }
        }
        for (i, (_, auc, _)) in ATTACKS.iter().enumerate() {
            let ms: Vec<f64> = m.iter().map(|r| expected(r)[i]).collect();
            let ns: Vec<f64> = n.iter().map(|r| expected(r)[i]).collect();
            let got = get(&v, auc, "forget", None).unwrap();
            assert!((got - pair_auc(&ms, &ns)).abs() < 1e-12, "{auc}: {got}");
        }
        // By hand: losses 0.2, 0.45, 0.5 (members) vs 0.3, 1.25: 4 of 6 pairs; swapped groups
        // would give 1/3. Reference: 0.1, 0.4, −0.5 vs 0.05, −0.25: 2 of 6; with subject and
        // oracle swapped the signs flip and it would be 2/3.
        let auc = |name| get(&v, name, "forget", None).unwrap();
        assert!((auc("auc_loss") - 2.0 / 3.0).abs() < 1e-12);
        assert!((auc("auc_reference") - 1.0 / 3.0).abs() < 1e-12);
        // ZLib reorders: 0.2/13, 0.45/9, 0.5/48 vs 0.3/13, 1.25/12 → 4 of 6 again, but not the
        // same pairs (m3 now lowest): checked by the pair count above.
        // Nothing for the retain split, AUCs only under the members split, 5 scores × 5
        // examples + 5 AUCs.
        assert!(v.iter().all(|x| x.split != "retain"));
        assert!(
            v.iter()
                .filter(|x| x.example.is_none())
                .all(|x| x.split == "forget")
        );
        assert_eq!(v.len(), 30);
    }

    #[test]
    fn the_configured_splits_are_compared() {
        // The retain split as non-members: its one example has the highest loss of all.
        let cfg = Config {
            nonmembers: "retain".into(),
            ..Config::default()
        };
        let v = Mia::score(cfg, &observed(&members(), &nonmembers())).unwrap();
        assert_eq!(get(&v, "auc_loss", "forget", None), Some(1.0));
        let cfg = Config {
            nonmembers: "test".into(),
            ..Config::default()
        };
        let e = Mia::score(cfg, &observed(&members(), &nonmembers()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'test'") && e.contains("holdout"), "{e}");
    }

    #[test]
    fn an_undefined_min_k_plus_plus_drops_that_attack_only() {
        let mut m = members();
        m[1].sigma[2] = 0.0;
        let v = Mia::score(Config::default(), &observed(&m, &nonmembers())).unwrap();
        assert_eq!(get(&v, "auc_minkpp", "forget", None), None);
        assert_eq!(get(&v, "mia_minkpp", "forget", Some("m2")), None);
        assert!(get(&v, "mia_minkpp", "forget", Some("m1")).is_some());
        assert!(get(&v, "auc_mink", "forget", None).is_some());
    }

    #[test]
    fn missing_observations_name_the_example() {
        let mut obs = observed(&members(), &nonmembers());
        obs[3].examples.retain(|e| e.id != "m2");
        let e = Mia::score(Config::default(), &obs).unwrap_err().to_string();
        assert!(e.contains("'m2'") && e.contains("Oracle"), "{e}");
        let mut obs = observed(&members(), &nonmembers());
        obs[2].examples[0].answer_logprob_std = None;
        let e = Mia::score(Config::default(), &obs).unwrap_err().to_string();
        assert!(e.contains("'n1'"), "{e}");
        let mut obs = observed(&members(), &nonmembers());
        obs[2].examples[1].answer_logprob_mean = Some(vec![0.0]);
        let e = Mia::score(Config::default(), &obs).unwrap_err().to_string();
        assert!(e.contains("'n2'"), "{e}");
    }

    #[test]
    fn config_is_checked() {
        let c: Config = serde_json::from_str(r#"{"k": 0.2, "nonmembers": "test"}"#).unwrap();
        assert_eq!((c.k, c.members.as_str()), (0.2, "forget"));
        assert!(serde_json::from_str::<Config>(r#"{"K": 0.2}"#).is_err());
        let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
        let k = &schema["properties"]["k"];
        assert_eq!(
            (k["exclusiveMinimum"].as_f64(), k["maximum"].as_f64()),
            (Some(0.0), Some(1.0))
        );
        let obs = observed(&members(), &nonmembers());
        for k in [0.0, 1.5, f64::NAN] {
            let cfg = Config {
                k,
                ..Config::default()
            };
            assert!(Mia::score(cfg, &obs).is_err(), "{k}");
        }
        let same = Config {
            nonmembers: "forget".into(),
            ..Config::default()
        };
        assert!(Mia::score(same, &obs).is_err());
    }
}
