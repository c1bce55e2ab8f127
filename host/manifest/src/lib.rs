//! Plain data shared across Lethe's host crates: what a plugin says about itself, what a metric
//! is given and returns, and the rows a run produces. Nothing heavy lives here, so every crate
//! (the wasm runtime, the pipeline, the reports) can speak the same types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The versions of the `lethe:plugin` interface this host can run.
pub const SUPPORTED_API: &[&str] = &["0.1.0", "0.1.1", "0.1.2"];

/// What a plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// An unlearning method.
    Method,
    /// A metric.
    Metric,
    /// A query attack: puts questions differently (interface 0.1.1 on).
    QueryAttack,
    /// A judge of sampled answers for leak@k (interface 0.1.1 on).
    Judge,
}

impl PluginKind {
    /// The name of the `lethe:plugin` interface a plugin of this kind exports.
    pub fn interface(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Metric => "metric",
            Self::QueryAttack => "query-attack",
            Self::Judge => "judge",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.interface())
    }
}

/// A model whose observations a metric may receive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ModelRole {
    /// The model being scored.
    Subject,
    /// The finetuned model before unlearning.
    Target,
    /// The retain-only model.
    Oracle,
    /// The model before finetuning.
    Base,
}

impl ModelRole {
    /// The lowercase name used in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Target => "target",
            Self::Oracle => "oracle",
            Self::Base => "base",
        }
    }
}

/// What the host can observe for every example.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationKind {
    /// The greedy answer.
    GeneratedAnswer,
    /// Teacher-forced log-probability of each answer token.
    AnswerLogprobs,
    /// Whether the argmax equals each answer token.
    AnswerArgmaxMatch,
    /// Mean and std of log p over the vocabulary at each answer token.
    AnswerLogprobMoments,
    /// Log-probabilities of the paraphrased answers.
    ParaphrasedAnswerLogprobs,
    /// Log-probabilities of the perturbed answers.
    PerturbedAnswerLogprobs,
    /// Log-probabilities of each option of a closed question.
    OptionLogprobs,
}

/// How a metric's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Reading {
    /// Higher means the model knows the split better.
    HigherKnows,
    /// Lower means the model knows the split better.
    LowerKnows,
    /// A verdict where higher is better.
    HigherBetter,
    /// A verdict where lower is better.
    LowerBetter,
}

/// One named value a metric produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MetricOutput {
    /// Its name, e.g. "rougeL_recall".
    pub name: String,
    /// How to read it.
    pub reading: Reading,
    /// One sentence.
    pub summary: String,
}

/// What a plugin says about itself, checked by the host before anything runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginManifest {
    /// Short identifier.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Method, metric, query attack or judge.
    pub kind: PluginKind,
    /// The interface version it was built against.
    pub api_version: String,
    /// One sentence for listings.
    pub summary: String,
    /// JSON Schema of the configuration.
    pub config_schema: serde_json::Value,
    /// Methods: the splits read.
    pub splits: Vec<String>,
    /// Methods: whether the frozen reference model is needed.
    pub needs_reference: bool,
    /// Metrics: observations needed.
    pub observations: Vec<ObservationKind>,
    /// Metrics: reference models needed besides the subject.
    pub models: Vec<ModelRole>,
    /// Metrics: values produced.
    pub outputs: Vec<MetricOutput>,
    /// Query attacks: solved retain examples wanted beside each question.
    #[serde(default)]
    pub shots: u32,
}

impl PluginManifest {
    /// `name@version`, the way messages name a plugin.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// One example with the observations a metric asked for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObservedExample {
    /// The example's id.
    pub id: String,
    /// Group keys.
    pub groups: BTreeMap<String, String>,
    /// The question.
    pub question: String,
    /// The reference answer.
    pub answer: String,
    /// Leakage terms.
    pub terms: Vec<String>,
    /// Options of a closed question.
    pub options: Vec<String>,
    /// Index of the correct option.
    pub correct_option: Option<u32>,
    /// The greedy answer.
    pub generated: Option<String>,
    /// Per-token log-probs of the answer.
    pub answer_logprobs: Option<Vec<f32>>,
    /// Per-token argmax matches.
    pub answer_argmax_match: Option<Vec<bool>>,
    /// Per-token mean of log p.
    pub answer_logprob_mean: Option<Vec<f32>>,
    /// Per-token std of log p.
    pub answer_logprob_std: Option<Vec<f32>>,
    /// Per-token log-probs of each paraphrased answer.
    pub paraphrased_logprobs: Option<Vec<Vec<f32>>>,
    /// Per-token log-probs of each perturbed answer.
    pub perturbed_logprobs: Option<Vec<Vec<f32>>>,
    /// Per-token log-probs of each option.
    pub option_logprobs: Option<Vec<Vec<f32>>>,
}

/// The observations of one model on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedSplit {
    /// Which model.
    pub model: ModelRole,
    /// Which split.
    pub split: String,
    /// The examples.
    pub examples: Vec<ObservedExample>,
}

/// One value returned by a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// The output's name.
    pub name: String,
    /// The split.
    pub split: String,
    /// The example, or `None` for the split's aggregate.
    pub example: Option<String>,
    /// The value.
    pub value: f64,
}

/// One row of a run's results, in long format: one value of one metric output, for one model
/// row of the leaderboard, on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The run's id (a digest of everything that determines the results).
    pub run: String,
    /// Suite name and version, "authors@1".
    pub suite: String,
    /// The model row: "target", "oracle", "base", or a method's name.
    pub method: String,
    /// sha256 of the method plugin's component ("" for baselines).
    pub method_sha256: String,
    /// The attack under which it was measured ("none" when clean).
    pub attack: String,
    /// The metric plugin's name.
    pub metric: String,
    /// sha256 of the metric plugin's component.
    pub metric_sha256: String,
    /// The metric output's name.
    pub output: String,
    /// The split.
    pub split: String,
    /// The example, or `None` for the split's aggregate.
    pub example: Option<String>,
    /// The value.
    pub value: f64,
    /// The run's seed.
    pub seed: u64,
}

/// What a result was measured under: the `attack` column of results, typed. Built-in attacks
/// go by their name, attacks written as plugins by their kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttackLabel {
    /// No attack: `none`.
    Clean,
    /// A built-in attack: `relearn`, `quant4`, `few-shot`, `sample` …
    Builtin(String),
    /// A method plugin used as a model attack: `method:NAME`.
    Method(String),
    /// A query-attack plugin: `query:NAME`.
    Query(String),
    /// The clean model on exactly the questions a query attack put (it leaves out those it
    /// cannot rephrase): `none@ATTACK`, the baseline that attack is compared with.
    CleanOn(Box<AttackLabel>),
}

impl AttackLabel {
    /// The label of the clean measurement, as results write it.
    pub const CLEAN: &'static str = "none";

    /// Read a label as results write it.
    pub fn parse(text: &str) -> Self {
        if text == Self::CLEAN {
            Self::Clean
        } else if let Some(inner) = text.strip_prefix("none@") {
            Self::CleanOn(Box::new(Self::parse(inner)))
        } else if let Some(name) = text.strip_prefix("method:") {
            Self::Method(name.to_owned())
        } else if let Some(name) = text.strip_prefix("query:") {
            Self::Query(name.to_owned())
        } else {
            Self::Builtin(text.to_owned())
        }
    }

    /// Whether the attack is a plugin (as opposed to built in or clean).
    pub fn is_plugin(&self) -> bool {
        matches!(self, Self::Method(_) | Self::Query(_))
    }
}

impl std::fmt::Display for AttackLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Clean => f.write_str(Self::CLEAN),
            Self::Builtin(name) => f.write_str(name),
            Self::Method(name) => write!(f, "method:{name}"),
            Self::Query(name) => write!(f, "query:{name}"),
            Self::CleanOn(attack) => write!(f, "none@{attack}"),
        }
    }
}

/// A failure recorded in a run instead of results (a plugin that trapped, for instance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFailure {
    /// The run's id.
    pub run: String,
    /// What kind of plugin failed.
    pub kind: PluginKind,
    /// `name@version` of the plugin.
    pub plugin: String,
    /// The model row it concerned.
    pub method: String,
    /// The full error message.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::AttackLabel;

    #[test]
    fn attack_labels_read_back_what_they_write() {
        for label in [
            AttackLabel::Clean,
            AttackLabel::Builtin("few-shot".into()),
            AttackLabel::Method("attack-finetune".into()),
            AttackLabel::Query("prompt-template".into()),
        ] {
            assert_eq!(AttackLabel::parse(&label.to_string()), label);
        }
        assert_eq!(AttackLabel::Query("x".into()).to_string(), "query:x");
        assert!(AttackLabel::parse("method:m").is_plugin());
        assert!(!AttackLabel::parse("relearn").is_plugin());
    }
}
