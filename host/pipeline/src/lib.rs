//! The Lethe pipeline: learn → unlearn → observe → score, on one suite.
//!
//! Data flows one way. [`learn`] trains (or reuses) the base, finetuned target and retain-only
//! oracle models; each method plugin unlearns a copy of the target through the runtime's
//! training interface; [`observe`] records what the metrics declared they need for every
//! model row; each metric plugin scores every row. A failing plugin becomes a
//! [`RunFailure`] and the run goes on.

pub mod attack;
pub mod learn;
pub mod observe;
pub mod pool;
pub mod prompt;
mod reporter;

use std::collections::{BTreeMap, BTreeSet};

use attack::{LeakJudge, LeakValue, PluginJudge, TermJudge};
use lethe_manifest::{
    AttackLabel, ModelRole, ObservationKind, ObservedSplit, PluginKind, ResultRow, RunFailure,
};
use lethe_model::LanguageModel;
use lethe_model::train::OptimSettings;
use lethe_runtime::{FeedExample, Plugin, PluginHost, SplitFeed, TrainingState};
use lethe_suites::{SplitRole, Suite};
use prompt::Query;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, info_span};

pub use attack::{Attack, AttackSpec, QuantScope, RelearnSettings, RelearnSource};
pub use learn::{
    Checkpoint, LearnSpec, Learned, ModelCache, ModelPreset, Phase, Shape, init_checkpoint, learn,
};
pub use observe::ObserveSettings;
pub use pool::{PoolData, PoolMember, learn_member};
pub use reporter::{Reporter, Silent, StageTime, StageTimer, stage_kind};

/// Why a run could not go on. Plugin failures are not here: they are recorded and skipped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] lethe_model::ModelError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The suite cannot be run.
    #[error("suite: {0}")]
    Suite(String),
    /// The learn settings cannot be used.
    #[error("learn settings: {0}")]
    Learn(String),
    /// An attack cannot run with its settings on this suite.
    #[error("attack: {0}")]
    Attack(String),
    /// A checkpoint folder cannot be used as the base model.
    #[error("--model: {0}")]
    Checkpoint(String),
    /// A bug or an impossible state.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How methods unlearn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlearnSpec {
    /// Passes over the forget split; the step budget is `ceil(|forget| / batch) · epochs`.
    pub epochs: usize,
    /// Examples per batch.
    pub batch_size: u32,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Learning rates of particular methods, by plugin name, instead of `learning_rate`: the
    /// optimiser belongs to the host, yet the rate that works is a method's hyper-parameter
    /// (RMU moves three matrices and needs a larger one than GradDiff, which moves them all).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub method_learning_rates: BTreeMap<String, f64>,
    /// Unlearn with low-rank adapters on the frozen start model instead of training every
    /// weight: a method's reference is the frozen weights themselves (no copy), and the
    /// unlearned model is evaluated merged. None: every weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<lethe_model::LoraSettings>,
}

impl UnlearnSpec {
    /// The learning rate of the method plugin `name`.
    pub fn learning_rate_of(&self, name: &str) -> f64 {
        self.method_learning_rates
            .get(name)
            .copied()
            .unwrap_or(self.learning_rate)
    }
}

/// A plugin and its configuration.
pub struct Choice<'a> {
    /// The loaded plugin.
    pub plugin: &'a Plugin,
    /// Its configuration (validated before it runs).
    pub config: serde_json::Value,
    /// The row's name in results, for a method (default: the plugin's name).
    pub label: Option<String>,
}

/// Everything a run depends on.
pub struct RunSpec<'a> {
    /// The suite.
    pub suite: &'a Suite,
    /// The learn stage.
    pub learn: LearnSpec,
    /// The unlearn stage.
    pub unlearn: UnlearnSpec,
    /// The observe stage.
    pub observe: ObserveSettings,
    /// Methods, in leaderboard order.
    pub methods: Vec<Choice<'a>>,
    /// Metrics.
    pub metrics: Vec<Choice<'a>>,
    /// Attacks every model row is re-measured under.
    pub attacks: AttackSpec,
    /// Model attacks written as method plugins (relearning is training): each trains a copy
    /// of every model row with the method SDK; results carry `method:<name>` as their attack.
    pub attack_methods: Vec<Choice<'a>>,
    /// Query attacks written as `query-attack` plugins: every model row is re-observed on the
    /// plugin's prompts; results carry `query:<name>` as their attack.
    pub attack_queries: Vec<Choice<'a>>,
    /// A `judge` plugin deciding which samples of the sampling attack leak (default: every key
    /// term present).
    pub judge: Option<Choice<'a>>,
    /// The run's seed.
    pub seed: u64,
    /// Observe and score the base, target and oracle rows (a plan's job of one method leaves
    /// them to its seed's baselines job, and observes only the references its metrics need).
    pub baselines: bool,
}

/// A plugin as a run used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginUse {
    /// Method or metric.
    pub kind: PluginKind,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Interface version.
    pub api_version: String,
    /// sha256 of the component.
    pub sha256: String,
    /// Configuration.
    pub config: serde_json::Value,
}

/// What produced a run's results: enough to reproduce them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id: a digest of everything below.
    pub run: String,
    /// "name@version" of the suite.
    pub suite: String,
    /// Digest of the suite's content.
    pub suite_digest: String,
    /// Examples per split.
    pub split_sizes: BTreeMap<String, usize>,
    /// The model's `config.json`.
    pub model_config: serde_json::Value,
    /// Trainable parameters.
    pub parameters: usize,
    /// The learn stage.
    pub learn: LearnSpec,
    /// The unlearn stage.
    pub unlearn: UnlearnSpec,
    /// Step budget each method had.
    pub unlearn_steps: u32,
    /// The attacks and their settings.
    pub attacks: AttackSpec,
    /// The seed.
    pub seed: u64,
    /// Plugins used.
    pub plugins: Vec<PluginUse>,
    /// Cache keys of the base, target and oracle models.
    pub model_keys: [String; 3],
    /// The evaluation subsets (split → first N questions), when any was set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eval_first: BTreeMap<String, usize>,
    /// The epochs each learning phase ran, when a token budget cut one short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<learn::Schedule>,
    /// Cache keys of the models scored as they are (a meta-evaluation's pool models), by
    /// row label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub member_keys: BTreeMap<String, String>,
}

/// What a run produced.
pub struct RunOutput {
    /// Provenance.
    pub info: RunInfo,
    /// Results in long format.
    pub rows: Vec<ResultRow>,
    /// Plugins that failed, and why.
    pub failures: Vec<RunFailure>,
    /// The loss of every unlearning step, per method row.
    pub losses: BTreeMap<String, Vec<f64>>,
    /// Requests the host denied each method row (only rows with any).
    pub denials: BTreeMap<String, Vec<String>>,
    /// The unlearned models by method label, when [`Starts::keep`] asked for them.
    pub models: BTreeMap<String, LanguageModel>,
}

/// A seeded generator for one named purpose, independent of every other use of the seed.
pub(crate) fn rng_for(seed: u64, purpose: &str) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let digest = Sha256::digest(format!("{seed}:{purpose}").as_bytes());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&digest);
    rand_chacha::ChaCha8Rng::from_seed(bytes)
}

fn digest_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn plugin_use(kind: PluginKind, c: &Choice<'_>) -> PluginUse {
    PluginUse {
        kind,
        name: c.plugin.manifest.name.clone(),
        version: c.plugin.manifest.version.clone(),
        api_version: c.plugin.manifest.api_version.clone(),
        sha256: c.plugin.sha256.clone(),
        config: c.config.clone(),
    }
}

/// What a method may read: feeds of its splits, the reasons other splits are refused, and the
/// suite's "I don't know" answers.
struct MethodData {
    feeds: BTreeMap<String, SplitFeed>,
    refused: BTreeMap<String, String>,
    idk: Vec<String>,
}

/// Split feeds a method may read: the method-visible splits it declared.
fn feeds_for(
    suite: &Suite,
    model: &LanguageModel,
    declared: &[String],
) -> Result<MethodData, PipelineError> {
    let tok = model.tokenizer();
    let max_len = model.config().max_position_embeddings;
    let mut feeds = BTreeMap::new();
    let mut refused = BTreeMap::new();
    let mut idk = Vec::new();
    for split in &suite.splits {
        if split.role == SplitRole::Idk {
            idk.extend(split.texts().iter().map(|t| t.text.clone()));
        }
        if !split.role.visible_to_methods() {
            refused.insert(
                split.name.clone(),
                format!(
                    "split '{}' is evaluation-only (role {:?}); a method may read forget, retain and idk",
                    split.name, split.role
                ),
            );
            continue;
        }
        if !declared.contains(&split.name) {
            refused.insert(
                split.name.clone(),
                format!(
                    "split '{}' is not among the splits the method's manifest declares",
                    split.name
                ),
            );
            continue;
        }
        let mut examples = Vec::new();
        for q in split.questions() {
            examples.push(FeedExample {
                question: Some(q.question.clone()),
                sequence: lethe_model::Sequence::qa_within(tok, &q.question, &q.answer, max_len)?,
            });
        }
        for t in split.texts() {
            examples.push(FeedExample {
                question: None,
                sequence: lethe_model::Sequence::text(tok, &t.text)?.truncated(max_len),
            });
        }
        feeds.insert(split.name.clone(), SplitFeed::new(examples));
    }
    Ok(MethodData {
        feeds,
        refused,
        idk,
    })
}

/// One row of the leaderboard: a model and how it came to be, observed clean (attack
/// "none", always first) and under each attack.
struct Row {
    label: String,
    sha256: String,
    observed: Vec<(String, Vec<ObservedSplit>)>,
    leaks: Vec<LeakValue>,
    /// How far relearning moved the weights, ‖θ' − θ‖/‖θ‖, when it ran.
    relearn_change: Option<f64>,
    /// Attack plugins that failed on this row.
    failures: Vec<RunFailure>,
}

impl Row {
    fn clean(&self) -> &[ObservedSplit] {
        self.observed.first().map_or(&[], |(_, o)| o.as_slice())
    }
}

/// The clean observations cut to the examples an attacked observation kept, when the attack
/// left some out (a paraphrase attack skips questions without a paraphrase): the attack is
/// compared with the clean model on the same questions, not on all of them.
fn clean_on_subset(
    clean: &[ObservedSplit],
    attacked: &[ObservedSplit],
) -> Option<Vec<ObservedSplit>> {
    let kept = |split: &str| -> std::collections::BTreeSet<&str> {
        attacked
            .iter()
            .filter(|s| s.split == split)
            .flat_map(|s| s.examples.iter().map(|e| e.id.as_str()))
            .collect()
    };
    let mut smaller = false;
    let subset: Vec<ObservedSplit> = clean
        .iter()
        .map(|s| {
            let ids = kept(&s.split);
            let examples: Vec<_> = s
                .examples
                .iter()
                .filter(|e| ids.contains(e.id.as_str()))
                .cloned()
                .collect();
            smaller |= examples.len() < s.examples.len();
            ObservedSplit {
                model: s.model,
                split: s.split.clone(),
                examples,
            }
        })
        .filter(|s| !s.examples.is_empty())
        .collect();
    smaller.then_some(subset)
}

/// The name of a row's judged leak@k values in results.
pub const LEAK_METRIC: &str = "leak-at-k";

/// The name of a row's relearning weight change in results (attack "relearn", output
/// [`WEIGHT_CHANGE_OUTPUT`], split [`WEIGHTS_SPLIT`]): how far the attack moved the weights.
pub const WEIGHT_CHANGE_METRIC: &str = "weight-change";
/// The output of [`WEIGHT_CHANGE_METRIC`]: `‖θ' − θ‖₂ / ‖θ‖₂` over every parameter.
pub const WEIGHT_CHANGE_OUTPUT: &str = "relative_l2";
/// The pseudo-split [`WEIGHT_CHANGE_METRIC`] is filed under: it belongs to no split.
pub const WEIGHTS_SPLIT: &str = "weights";

fn relabel(observed: &[ObservedSplit], role: ModelRole) -> Vec<ObservedSplit> {
    observed
        .iter()
        .map(|s| ObservedSplit {
            model: role,
            ..s.clone()
        })
        .collect()
}

/// Train a copy of `start` with a method plugin within the step budget: unlearning, or a
/// model attack written against the method SDK. The plugin's failure is the inner error.
/// With `consume`, the start itself is trained (or, under LoRA, merged into): only for a start
/// nothing reads afterwards.
#[allow(clippy::too_many_arguments)]
fn train_copy(
    choice: &Choice<'_>,
    start: &LanguageModel,
    suite: &Suite,
    spec: &RunSpec<'_>,
    steps: u32,
    host: &PluginHost,
    seeds: (u64, u64),
    consume: bool,
) -> Result<Result<TrainingState, lethe_runtime::RuntimeError>, PipelineError> {
    let plugin = choice.plugin;
    let needs_reference = plugin.manifest.needs_reference;
    let (model, reference) = match &spec.unlearn.lora {
        // Nothing reads the start afterwards: train it, not a copy.
        None if consume => (
            start.shared_view()?,
            match needs_reference {
                true => Some(start.frozen_copy()?),
                false => None,
            },
        ),
        // The start's weights, shared and frozen, under adapters; the reference is the same
        // weights without them.
        Some(lora) => {
            let model = start.with_lora(lora, seeds.0)?;
            let reference = match needs_reference {
                true => model.frozen_base()?,
                false => None,
            };
            (model, reference)
        }
        None => (
            start.deep_copy()?,
            match needs_reference {
                true => Some(start.frozen_copy()?),
                false => None,
            },
        ),
    };
    let MethodData {
        feeds,
        refused,
        idk,
    } = feeds_for(suite, &model, &plugin.manifest.splits)?;
    let state = TrainingState::new(
        model,
        reference,
        feeds,
        refused,
        idk,
        steps,
        spec.unlearn.batch_size,
        OptimSettings {
            learning_rate: spec.unlearn.learning_rate_of(&plugin.manifest.name)
                * spec
                    .unlearn
                    .lora
                    .as_ref()
                    .map_or(1.0, |l| l.learning_rate_scale),
            ..OptimSettings::default()
        },
        seeds.0,
    )?;
    // Evaluated, hashed and attacked as the merged weights: merged into the start's own
    // storage when nothing reads the start afterwards, else into a copy.
    match host.unlearn(plugin, &choice.config, state, seeds.1) {
        Ok(mut state) if state.model.adapters().is_some() => {
            state.reference = None;
            let model = state.model;
            state.model = match consume {
                true => model.merge_in_place()?,
                false => model.merged()?,
            };
            Ok(Ok(state))
        }
        outcome => Ok(outcome),
    }
}

/// What the stages of one run share: the spec, the sandbox, progress, what the metrics
/// observe, the step budget, the attacks' seeds, prompts and judge.
struct Stages<'s, 'a> {
    spec: &'s RunSpec<'a>,
    /// The suite as observed: `spec.suite` with the evaluation subsets applied
    /// ([`ObserveSettings::evaluation_view`]). Training (unlearning, relearning) reads the
    /// whole suite.
    eval: &'s Suite,
    /// The kind of records of each evaluated split, for what reaches which metric
    /// ([`observe::reaches`]).
    kinds: BTreeMap<String, lethe_suites::RecordKind>,
    /// Where the learned models' clean observations are kept between jobs.
    cache: &'s ModelCache,
    /// What besides the model keys its observations: the observed suite's digest, the
    /// observations asked for and the observe settings.
    observed_parts: [String; 3],
    host: &'s PluginHost,
    reporter: &'s dyn Reporter,
    needs: BTreeSet<ObservationKind>,
    /// Generations per observed model (for progress).
    per_model: u64,
    steps: u32,
    run_id: String,
    attack_seed: u64,
    /// Query-attack plugins' prompts, by attack label.
    queries: Vec<(String, Query<'s>)>,
    judge: &'s dyn LeakJudge,
}

impl Stages<'_, '_> {
    /// Observe a learned model (base, target or oracle, by its cache key) clean, or read what
    /// an earlier job observed of it: every method's job scores against the oracle, and the
    /// oracle is the same model, observed the same way, in each.
    ///
    /// `model` gives the model only when it must be observed: a cached model whose
    /// observations are cached is never read.
    fn observe_learned<'m>(
        &self,
        name: &str,
        model: &dyn Fn() -> Result<&'m LanguageModel, PipelineError>,
        model_key: &str,
    ) -> Result<Vec<ObservedSplit>, PipelineError> {
        let [eval, needs, settings] = &self.observed_parts;
        let key = learn::observed_key(model_key, eval, needs, settings);
        if let Some(o) = self.cache.load_observed(&key) {
            info!(model = name, "reusing cached observations");
            return Ok(o);
        }
        let o = self.observe_one(name, model()?, &Query::clean())?;
        if let Err(e) = self.cache.store_observed(&key, &o) {
            self.reporter
                .warn(&format!("observations of {name} not cached: {e}"));
        }
        Ok(o)
    }

    /// Observe one model on the suite's evaluated splits under one way of asking.
    fn observe_one(
        &self,
        name: &str,
        model: &LanguageModel,
        query: &Query<'_>,
    ) -> Result<Vec<ObservedSplit>, PipelineError> {
        self.reporter
            .stage(&format!("observe {name}"), self.per_model);
        let o = observe::observe(
            model,
            ModelRole::Subject,
            self.eval,
            &self.needs,
            &self.spec.observe,
            query,
            self.reporter,
        )?;
        self.reporter.finish();
        Ok(o)
    }

    /// Unlearn: method `i` trains a copy of `start` within the step budget. The plugin's
    /// failure is the inner error.
    fn unlearn(
        &self,
        i: usize,
        choice: &Choice<'_>,
        start: &LanguageModel,
        label: &str,
        consume: bool,
    ) -> Result<Result<TrainingState, lethe_runtime::RuntimeError>, PipelineError> {
        self.reporter.stage(&format!("unlearn {label}"), 0);
        let seeds = (
            self.spec.seed.wrapping_add(100 + i as u64),
            self.spec.seed.wrapping_add(i as u64),
        );
        let trained = train_copy(
            choice,
            start,
            self.spec.suite,
            self.spec,
            self.steps,
            self.host,
            seeds,
            consume,
        )?;
        self.reporter.finish();
        Ok(trained)
    }

    /// Observe: one row, clean and under every attack.
    fn observe_row(
        &self,
        label: String,
        sha256: String,
        model: &LanguageModel,
        model_key: Option<&str>,
    ) -> Result<Row, PipelineError> {
        let spec = self.spec;
        let suite = spec.suite;
        let eval = self.eval;
        let reporter = self.reporter;
        let attack_seed = self.attack_seed;
        let clean = match model_key {
            Some(k) => self.observe_learned(&label, &|| Ok(model), k)?,
            None => self.observe_one(&label, model, &Query::clean())?,
        };
        let mut observed = vec![(AttackLabel::Clean.to_string(), clean)];
        let mut leaks = Vec::new();
        let mut relearn_change = None;
        let mut failures = Vec::new();
        for &attack in &spec.attacks.attacks {
            let name = format!("{label} [{attack}]");
            let _span = info_span!("attack", attack = %attack, row = %label).entered();
            let o = match attack {
                Attack::Relearn => {
                    reporter.stage(&format!("relearn {label}"), 0);
                    let m = attack::relearn(
                        model,
                        suite,
                        &spec.attacks.relearn,
                        attack_seed,
                        reporter,
                    )?;
                    reporter.finish();
                    let change = attack::weight_change(model, &m)?;
                    if change < attack::RELEARN_MIN_CHANGE {
                        reporter.warn(&format!(
                            "relearning moved {label}'s weights by {change:.2e} of their norm, \
                             below {:.0e}: too weak an attack to show what the model still \
                             knows (raise --relearn-lr or --relearn-min-steps)",
                            attack::RELEARN_MIN_CHANGE
                        ));
                    }
                    relearn_change = Some(change);
                    self.observe_one(&name, &m, &Query::clean())?
                }
                Attack::Quant8 | Attack::Quant4 | Attack::Quant4Asym | Attack::Nf4 => {
                    let q = attack::quantization(attack, spec.attacks.quant_group).ok_or_else(
                        || PipelineError::Internal(format!("{attack} is not a quantization")),
                    )?;
                    let quantized = attack::quantize(model, q, spec.attacks.quant_scope)?;
                    self.observe_one(&name, &quantized, &Query::clean())?
                }
                Attack::Paraphrase | Attack::FewShot | Attack::Jailbreak => {
                    let query = attack::query_of(attack, eval, &spec.attacks, attack_seed);
                    self.observe_one(&name, model, &query)?
                }
                Attack::Sample => {
                    let draws = observe::generation_count(eval) * spec.attacks.samples as u64;
                    reporter.stage(&format!("sample {label}"), draws);
                    let judged = attack::sample_leaks(
                        model,
                        eval,
                        &spec.attacks,
                        self.judge,
                        spec.observe.max_new_tokens,
                        spec.observe.batch_size,
                        attack_seed,
                        reporter,
                    )?;
                    reporter.finish();
                    match judged {
                        Ok(values) => leaks = values,
                        Err(e) => {
                            reporter.warn(&format!("{e} (judging the samples of row {label})"));
                            failures.push(RunFailure {
                                run: self.run_id.clone(),
                                kind: PluginKind::Judge,
                                plugin: spec.judge.as_ref().map_or_else(
                                    || self.judge.name().to_owned(),
                                    |c| c.plugin.label(),
                                ),
                                method: label.clone(),
                                error: format!("as the judge: {e}"),
                            });
                        }
                    }
                    continue;
                }
            };
            if let Some(subset) = clean_on_subset(&observed[0].1, &o) {
                let base =
                    AttackLabel::CleanOn(Box::new(AttackLabel::Builtin(attack.name().to_owned())));
                observed.push((base.to_string(), subset));
            }
            observed.push((attack.name().to_owned(), o));
        }
        for (name, query) in &self.queries {
            let _span = info_span!("attack", attack = %name, row = %label).entered();
            let o = self.observe_one(&format!("{label} [{name}]"), model, query)?;
            if let Some(subset) = clean_on_subset(&observed[0].1, &o) {
                let base = AttackLabel::CleanOn(Box::new(AttackLabel::parse(name)));
                observed.push((base.to_string(), subset));
            }
            observed.push((name.clone(), o));
        }
        for (j, choice) in spec.attack_methods.iter().enumerate() {
            let name = AttackLabel::Method(choice.plugin.manifest.name.clone()).to_string();
            let _span = info_span!("attack", attack = %name, row = %label).entered();
            reporter.stage(&format!("{name} on {label}"), 0);
            let seeds = (
                attack_seed.wrapping_add(1000 + j as u64),
                attack_seed.wrapping_add(j as u64),
            );
            let trained = train_copy(
                choice, model, suite, spec, self.steps, self.host, seeds, false,
            )?;
            reporter.finish();
            match trained {
                Ok(state) => {
                    let o = self.observe_one(
                        &format!("{label} [{name}]"),
                        &state.model,
                        &Query::clean(),
                    )?;
                    observed.push((name, o));
                }
                Err(e) => {
                    reporter.warn(&format!("{e} (attack on row {label})"));
                    failures.push(RunFailure {
                        run: self.run_id.clone(),
                        kind: PluginKind::Method,
                        plugin: choice.plugin.label(),
                        method: label.clone(),
                        error: format!("as an attack: {e}"),
                    });
                }
            }
        }
        Ok(Row {
            label,
            sha256,
            observed,
            leaks,
            relearn_change,
            failures,
        })
    }

    /// Score: every metric on every row's observations (clean and attacked), with the clean
    /// references each metric declared; leak@k as it was judged.
    fn score(
        &self,
        rows: &[Row],
        references: &BTreeMap<ModelRole, Vec<ObservedSplit>>,
        suite_label: &str,
    ) -> (Vec<ResultRow>, Vec<RunFailure>) {
        let spec = self.spec;
        let run_id = &self.run_id;
        let mut out = Vec::new();
        let mut failures = Vec::new();
        let variants: usize = rows.iter().map(|r| r.observed.len()).sum();
        self.reporter
            .stage("score", (variants * spec.metrics.len()) as u64);
        for row in rows {
            if let Some(change) = row.relearn_change {
                out.push(ResultRow {
                    run: run_id.clone(),
                    suite: suite_label.to_owned(),
                    method: row.label.clone(),
                    method_sha256: row.sha256.clone(),
                    attack: Attack::Relearn.name().to_owned(),
                    metric: WEIGHT_CHANGE_METRIC.to_owned(),
                    metric_sha256: String::new(),
                    output: WEIGHT_CHANGE_OUTPUT.to_owned(),
                    split: WEIGHTS_SPLIT.to_owned(),
                    example: None,
                    value: change,
                    seed: spec.seed,
                });
            }
            for v in &row.leaks {
                out.push(ResultRow {
                    run: run_id.clone(),
                    suite: suite_label.to_owned(),
                    method: row.label.clone(),
                    method_sha256: row.sha256.clone(),
                    attack: Attack::Sample.name().to_owned(),
                    metric: LEAK_METRIC.to_owned(),
                    metric_sha256: spec
                        .judge
                        .as_ref()
                        .map_or_else(String::new, |c| c.plugin.sha256.clone()),
                    output: format!("leak@{}", v.k),
                    split: v.split.clone(),
                    example: v.example.clone(),
                    value: v.value,
                    seed: spec.seed,
                });
            }
        }
        for row in rows {
            for ((attack, row_observed), (j, choice)) in row
                .observed
                .iter()
                .flat_map(|o| spec.metrics.iter().enumerate().map(move |m| (o, m)))
            {
                let plugin = choice.plugin;
                let _span = info_span!(
                    "metric",
                    plugin = %plugin.label(),
                    row = %row.label,
                    attack = %attack,
                    run = %run_id
                )
                .entered();
                let mut observed = row_observed.clone();
                for role in &plugin.manifest.models {
                    if let Some(r) = references.get(role) {
                        observed.extend(relabel(r, *role));
                    }
                }
                observed.retain(|s| {
                    self.kinds
                        .get(&s.split)
                        .is_none_or(|k| observe::reaches(&plugin.manifest.observations, *k))
                });
                match self.host.score(
                    plugin,
                    &choice.config,
                    &observed,
                    spec.seed.wrapping_add(j as u64),
                ) {
                    Ok(values) => {
                        for v in values {
                            out.push(ResultRow {
                                run: run_id.clone(),
                                suite: suite_label.to_owned(),
                                method: row.label.clone(),
                                method_sha256: row.sha256.clone(),
                                attack: attack.clone(),
                                metric: plugin.manifest.name.clone(),
                                metric_sha256: plugin.sha256.clone(),
                                output: v.name,
                                split: v.split,
                                example: v.example,
                                value: v.value,
                                seed: spec.seed,
                            });
                        }
                    }
                    Err(e) => {
                        self.reporter
                            .warn(&format!("{e} (row {}, attack {attack})", row.label));
                        failures.push(RunFailure {
                            run: run_id.clone(),
                            kind: PluginKind::Metric,
                            plugin: plugin.label(),
                            method: row.label.clone(),
                            error: e.to_string(),
                        });
                    }
                }
                self.reporter.advance(1, "");
            }
        }
        self.reporter.finish();
        (out, failures)
    }
}

/// Run the pipeline: learn (or reuse) the base, target and oracle models, then
/// [`run_learned`].
pub fn run(
    spec: &RunSpec<'_>,
    host: &PluginHost,
    cache: &ModelCache,
    reporter: &dyn Reporter,
) -> Result<RunOutput, PipelineError> {
    check_forget(spec.suite)?;
    let mut learned = learn::learn(spec.suite, &spec.learn, cache, reporter)?;
    // Nothing reads these models after the run: its last method may unlearn the target itself.
    learned.disposable = true;
    run_learned(spec, &learned, &Starts::default(), host, cache, reporter)
}

fn check_forget(suite: &Suite) -> Result<(), PipelineError> {
    if suite.splits_with(SplitRole::Forget).all(|s| s.is_empty()) {
        return Err(PipelineError::Suite(format!(
            "suite '{}' has no forget examples",
            suite.manifest.name
        )));
    }
    Ok(())
}

/// Where each method starts: by default from the target; in sequential unlearning, from the
/// model the same method left after the previous round.
#[derive(Default)]
pub struct Starts {
    /// Start models by method label; a method without one starts from the target.
    pub models: BTreeMap<String, LanguageModel>,
    /// Keep every unlearned model in [`RunOutput::models`] (for the next round).
    pub keep: bool,
    /// Models scored as rows as they are, after the baselines (a meta-evaluation's pool
    /// models), each with its label and its cache key (their clean observations are cached
    /// under it).
    pub members: Vec<(String, LanguageModel, String)>,
}

/// Unlearn, observe and score on models already learned. Each method starts from its entry
/// in `starts` (its frozen copy is then the method's reference model) or from the target.
pub fn run_learned(
    spec: &RunSpec<'_>,
    learned: &Learned,
    starts: &Starts,
    host: &PluginHost,
    cache: &ModelCache,
    reporter: &dyn Reporter,
) -> Result<RunOutput, PipelineError> {
    if learned.consumed.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(PipelineError::Internal(
            "these learned models were spent by an earlier run (its last method unlearned the \
             target itself)"
                .into(),
        ));
    }
    let suite = spec.suite;
    check_forget(suite)?;
    let forget_size: usize = suite.splits_with(SplitRole::Forget).map(|s| s.len()).sum();
    let steps = (forget_size.div_ceil(spec.unlearn.batch_size.max(1) as usize)
        * spec.unlearn.epochs) as u32;

    let mut plugins: Vec<PluginUse> = spec
        .methods
        .iter()
        .map(|c| plugin_use(PluginKind::Method, c))
        .collect();
    plugins.extend(
        spec.metrics
            .iter()
            .map(|c| plugin_use(PluginKind::Metric, c)),
    );
    plugins.extend(
        spec.attack_methods
            .iter()
            .map(|c| plugin_use(PluginKind::Method, c)),
    );
    plugins.extend(
        spec.attack_queries
            .iter()
            .chain(spec.judge.as_ref())
            .map(|c| plugin_use(c.plugin.manifest.kind, c)),
    );
    let target_cfg: serde_json::Value = serde_json::from_str(&learned.target.config().to_hf_json())
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    let mut info = RunInfo {
        run: String::new(),
        suite: format!("{}@{}", suite.manifest.name, suite.manifest.version),
        suite_digest: suite.digest(),
        split_sizes: suite
            .splits
            .iter()
            .map(|s| (s.name.clone(), s.len()))
            .collect(),
        model_config: target_cfg,
        parameters: learned.target.params().count(),
        learn: spec.learn.clone(),
        unlearn: spec.unlearn.clone(),
        unlearn_steps: steps,
        attacks: spec.attacks.clone(),
        seed: spec.seed,
        plugins,
        model_keys: learned.keys.clone(),
        eval_first: spec.observe.eval_first.clone(),
        schedule: Some(learned.schedule.clone()).filter(learn::Schedule::was_cut),
        member_keys: starts
            .members
            .iter()
            .map(|(label, _, key)| (label.clone(), key.clone()))
            .collect(),
    };
    info.run = digest_hex(
        &serde_json::to_string(&info).map_err(|e| PipelineError::Internal(e.to_string()))?,
    )[..16]
        .to_owned();
    let run_id = info.run.clone();
    let _span = info_span!("run", run = %run_id).entered();

    let needs: BTreeSet<ObservationKind> = spec
        .metrics
        .iter()
        .flat_map(|c| c.plugin.manifest.observations.iter().copied())
        .collect();
    spec.observe.check_subsets(suite)?;
    let eval_view = spec.observe.evaluation_view(suite);
    let eval: &Suite = &eval_view;
    let per_model = observe::generation_count(eval)
        * u64::from(needs.contains(&ObservationKind::GeneratedAnswer));
    let mut failures = Vec::new();
    let mut losses = BTreeMap::new();
    let mut denials = BTreeMap::new();
    spec.attacks.validate(suite)?;

    // Every row is observed clean, then under each attack with the same seeds, so rows stay
    // comparable (the oracle relearns on the same examples as every method).
    let attack_seed = spec.seed.wrapping_add(500);
    // A query-attack plugin's prompts depend on the suite, not the model: asked once.
    let mut queries = Vec::new();
    for (j, choice) in spec.attack_queries.iter().enumerate() {
        let name = AttackLabel::Query(choice.plugin.manifest.name.clone()).to_string();
        let _span = info_span!("attack", attack = %name).entered();
        match attack::plugin_query(
            choice,
            eval,
            host,
            attack_seed.wrapping_add(2000 + j as u64),
        ) {
            Ok(q) => queries.push((name, q)),
            Err(e) => {
                reporter.warn(&format!("{e} (query attack; no row is observed under it)"));
                failures.push(RunFailure {
                    run: run_id.clone(),
                    kind: PluginKind::QueryAttack,
                    plugin: choice.plugin.label(),
                    method: "(every row)".into(),
                    error: format!("as a query attack: {e}"),
                });
            }
        }
    }
    let plugin_judge = spec.judge.as_ref().map(|choice| PluginJudge {
        choice,
        host,
        seed: attack_seed.wrapping_add(3000),
    });
    let judge: &dyn LeakJudge = match &plugin_judge {
        Some(j) => j,
        None => &TermJudge,
    };
    let observed_parts = [
        eval.digest(),
        serde_json::to_string(&needs).map_err(|e| PipelineError::Internal(e.to_string()))?,
        serde_json::to_string(&spec.observe).map_err(|e| PipelineError::Internal(e.to_string()))?,
    ];
    let stages = Stages {
        spec,
        eval,
        kinds: eval
            .splits
            .iter()
            .map(|s| (s.name.clone(), s.records.kind()))
            .collect(),
        cache,
        observed_parts,
        host,
        reporter,
        needs,
        per_model,
        steps,
        run_id: run_id.clone(),
        attack_seed,
        queries,
        judge,
    };

    let baselines = [ModelRole::Base, ModelRole::Target, ModelRole::Oracle];
    // Base and oracle are read from the cache only when used (a method's job usually finds
    // their observations cached and holds the target alone).
    let learned_model = |role: ModelRole| -> Result<&LanguageModel, PipelineError> {
        match role {
            ModelRole::Base => learned.base(),
            ModelRole::Oracle => learned.oracle(),
            _ => Ok(&learned.target),
        }
    };
    let mut rows = Vec::new();
    if spec.baselines {
        // A base trained on nothing (a suite without pretraining text, no checkpoint: TOFU
        // as released) is its random initialisation: no row to report, and observing it
        // would cost as much as the target's.
        let untrained_base = spec.learn.checkpoint.is_none()
            && suite
                .splits_with(SplitRole::Pretrain)
                .all(lethe_suites::Split::is_empty);
        for (i, role) in baselines.into_iter().enumerate() {
            if role == ModelRole::Base && untrained_base {
                continue;
            }
            rows.push(stages.observe_row(
                role.as_str().to_owned(),
                String::new(),
                learned_model(role)?,
                Some(&learned.keys[i]),
            )?);
        }
    }
    for (label, model, key) in &starts.members {
        rows.push(stages.observe_row(label.clone(), String::new(), model, Some(key))?);
    }
    // References are always the clean observations of the baselines: an attacked row is
    // compared with the models as they were, and with the attacked baselines in the report.
    // Without baseline rows, only the references some metric declares are observed.
    let declared: BTreeSet<ModelRole> = spec
        .metrics
        .iter()
        .flat_map(|c| c.plugin.manifest.models.iter().copied())
        .collect();
    let mut references: BTreeMap<ModelRole, Vec<ObservedSplit>> = BTreeMap::new();
    for (i, role) in baselines.into_iter().enumerate() {
        if !declared.contains(&role) {
            continue;
        }
        let clean = match rows.iter().find(|r| r.label == role.as_str()) {
            Some(row) => row.clean().to_vec(),
            None => {
                stages.observe_learned(role.as_str(), &|| learned_model(role), &learned.keys[i])?
            }
        };
        references.insert(role, clean);
    }

    let mut models = BTreeMap::new();
    let mut used_labels: BTreeSet<String> = rows.iter().map(|r| r.label.clone()).collect();
    for (i, choice) in spec.methods.iter().enumerate() {
        let plugin = choice.plugin;
        let mut label = choice
            .label
            .clone()
            .unwrap_or_else(|| plugin.manifest.name.clone());
        if used_labels.contains(&label) {
            label = format!("{label}#{}", i + 1);
        }
        used_labels.insert(label.clone());
        let _span = info_span!("method", plugin = %plugin.label(), run = %run_id).entered();
        // The last method of a run whose models are dropped afterwards unlearns the target
        // itself: its job holds one copy of the weights, not two.
        let consume = learned.disposable
            && i + 1 == spec.methods.len()
            && !spec.baselines
            && starts.members.is_empty()
            && !starts.models.contains_key(&label);
        let start = starts.models.get(&label).unwrap_or(&learned.target);
        if consume {
            learned
                .consumed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        match stages.unlearn(i, choice, start, &label, consume)? {
            Ok(state) => {
                info!(steps = state.losses.len(), "unlearned");
                losses.insert(label.clone(), state.losses.clone());
                if !state.denials.is_empty() {
                    denials.insert(label.clone(), state.denials.clone());
                }
                rows.push(stages.observe_row(
                    label.clone(),
                    plugin.sha256.clone(),
                    &state.model,
                    None,
                )?);
                if starts.keep {
                    models.insert(label, state.model);
                }
            }
            Err(e) => {
                reporter.warn(&e.to_string());
                failures.push(RunFailure {
                    run: run_id.clone(),
                    kind: PluginKind::Method,
                    plugin: plugin.label(),
                    method: label,
                    error: e.to_string(),
                });
            }
        }
    }

    for row in &mut rows {
        failures.append(&mut row.failures);
    }
    let (out, score_failures) = stages.score(&rows, &references, &info.suite);
    failures.extend(score_failures);
    Ok(RunOutput {
        info,
        rows: out,
        failures,
        losses,
        denials,
        models,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use lethe_manifest::ObservedExample;

    use super::*;

    fn split(name: &str, ids: &[&str]) -> ObservedSplit {
        ObservedSplit {
            model: ModelRole::Subject,
            split: name.into(),
            examples: ids
                .iter()
                .map(|id| ObservedExample {
                    id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_clean_baseline_of_an_attack_holds_the_questions_it_kept() {
        let clean = [split("forget", &["a", "b", "c"]), split("retain", &["r"])];
        let attacked = [split("forget", &["a", "c"]), split("retain", &["r"])];
        let subset = clean_on_subset(&clean, &attacked).unwrap();
        let ids = |s: &ObservedSplit| s.examples.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&subset[0]), ["a", "c"]);
        assert_eq!(ids(&subset[1]), ["r"]);
        // An attack that kept every question needs no baseline of its own.
        assert!(clean_on_subset(&clean, &clean).is_none());
        assert_eq!(
            AttackLabel::parse("none@paraphrase"),
            AttackLabel::CleanOn(Box::new(AttackLabel::Builtin("paraphrase".into())))
        );
        assert_eq!(
            AttackLabel::parse("none@query:role-play").to_string(),
            "none@query:role-play"
        );
    }
}
