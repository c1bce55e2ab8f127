//! The plan of a metric meta-evaluation (`lethe meta-eval`): the faithfulness pools (models
//! that know the forget set and models that do not, each one job), the robustness pool
//! (methods × learning rates × step budgets, each measured clean and under every attack) and
//! the baselines job (the target whose utility filters the pool, the oracle relearned and
//! quantized exactly as each unlearned model). Models are content-addressed, so
//! meta-evaluating one more metric on the same pools only observes and scores.

use std::collections::BTreeMap;

use lethe_pipeline::{AttackSpec, LearnSpec, ObserveSettings, PoolData, PoolMember, UnlearnSpec};
use lethe_reports::meta::{MetaOutput, MetaSpec, UtilityRule};
use lethe_suites::{SplitRole, Suite};

use crate::ExperimentError;
use crate::plan::{Job, ModelSource, Plan, PluginRef, Rows, SuiteSource};

/// The learning-rate factors of the faithfulness pools' variations, cycled.
pub const POOL_LR_FACTORS: [f64; 3] = [1.0, 0.5, 2.0];
/// The epoch factors, each held for as many members as there are learning-rate factors.
pub const POOL_EPOCH_FACTORS: [f64; 2] = [1.0, 0.5];

/// Everything a meta-evaluation's plan is made from.
#[derive(Debug, Clone)]
pub struct MetaRequest {
    /// The plan's title.
    pub title: String,
    /// The suite.
    pub suite: SuiteSource,
    /// The name its results give it, when not its own (a protocol's "tofu-forget10").
    pub suite_name: Option<String>,
    /// A checkpoint to start from.
    pub model: Option<ModelSource>,
    /// The learn stage (the target's and the oracle's; pool models vary its finetuning).
    pub learn: LearnSpec,
    /// The unlearn stage of the robustness pool (its learning rate and epochs are scaled).
    pub unlearn: UnlearnSpec,
    /// The observe stage.
    pub observe: ObserveSettings,
    /// Methods of the robustness pool.
    pub methods: Vec<PluginRef>,
    /// Learning-rate factors of the robustness pool (× each method's rate).
    pub lr_factors: Vec<f64>,
    /// Step budgets of the robustness pool, as unlearning epochs.
    pub epochs: Vec<usize>,
    /// The metrics meta-evaluated.
    pub metrics: Vec<PluginRef>,
    /// Their outputs and readings.
    pub outputs: Vec<MetaOutput>,
    /// The utility metric (scored on every job; added when not meta-evaluated).
    pub utility_metric: PluginRef,
    /// The utility filter.
    pub utility: UtilityRule,
    /// The attacks of the robustness pool: relearning, the quantizations, query attacks.
    pub attacks: AttackSpec,
    /// Models in each faithfulness pool.
    pub pool_size: usize,
    /// The seed of the reference models, the pools' variations and the bootstrap.
    pub seed: u64,
    /// Bootstrap replicates.
    pub bootstrap: usize,
}

/// A planned meta-evaluation, with what it left out and why.
pub struct MetaPlan {
    /// The plan.
    pub plan: Plan,
    /// Pool kinds the suite cannot train, as messages.
    pub left_out: Vec<String>,
}

fn lr_text(lr: f64) -> String {
    format!("{lr:e}")
}

impl MetaRequest {
    /// The plan. `suite` is the suite `self.suite` names.
    pub fn plan(&self, suite: &Suite) -> Result<MetaPlan, ExperimentError> {
        let bad = |why: String| ExperimentError::Selection(why);
        if self.pool_size < 2 {
            return Err(bad(format!(
                "--pool-size {}: each faithfulness pool needs at least 2 models",
                self.pool_size
            )));
        }
        let robust = self.methods.len() * self.lr_factors.len() * self.epochs.len();
        if robust < 2 {
            return Err(bad(format!(
                "the robustness pool would hold {robust} unlearned model(s) ({} methods × {} \
                 learning rates × {} step budgets); at least 2 are needed",
                self.methods.len(),
                self.lr_factors.len(),
                self.epochs.len()
            )));
        }
        if self.metrics.is_empty() {
            return Err(bad("no metrics to meta-evaluate".into()));
        }
        for &f in &self.lr_factors {
            if !(f.is_finite() && f > 0.0) {
                return Err(bad(format!("learning-rate factor {f}: must be positive")));
            }
        }
        if self.epochs.contains(&0) {
            return Err(bad("a step budget of 0 epochs unlearns nothing".into()));
        }
        // Which kinds of pool model the suite can train.
        let forget: Vec<_> = suite
            .splits_with(SplitRole::Forget)
            .flat_map(|s| s.questions())
            .collect();
        if forget.is_empty() {
            return Err(bad(format!(
                "suite '{}' has no forget questions to meta-evaluate on",
                suite.manifest.name
            )));
        }
        let forget_split = suite
            .splits_with(SplitRole::Forget)
            .find(|s| !s.is_empty())
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "forget".into());
        let mut left_out = Vec::new();
        let has = |kind: PoolData| -> bool {
            match kind {
                PoolData::Paraphrased => forget.iter().all(|q| !q.paraphrased_answers.is_empty()),
                PoolData::Perturbed => forget.iter().all(|q| !q.perturbed_answers.is_empty()),
                PoolData::Unrelated => suite.splits_with(SplitRole::Holdout).any(|s| !s.is_empty()),
                PoolData::Forget | PoolData::RetainOnly => true,
            }
        };
        let kinds = |knows: bool| -> Vec<PoolData> {
            PoolData::ALL
                .into_iter()
                .filter(|k| k.knows() == knows)
                .filter(|&k| has(k))
                .collect()
        };
        for k in PoolData::ALL.into_iter().filter(|&k| !has(k)) {
            left_out.push(format!(
                "'{}' pool models: the suite's forget questions lack {}",
                k.name(),
                match k {
                    PoolData::Paraphrased => "paraphrased answers",
                    PoolData::Perturbed => "perturbed answers",
                    _ => "a holdout split to learn in their place",
                }
            ));
        }
        let mut metrics = self.metrics.clone();
        if !metrics.iter().any(|m| m.name == self.utility_metric.name) {
            metrics.push(self.utility_metric.clone());
        }
        let job = |rows: Rows, unlearn: UnlearnSpec, attacks: AttackSpec| {
            Job {
                id: String::new(),
                rows,
                suite: self.suite.clone(),
                suite_name: self.suite_name.clone(),
                round: None,
                model: self.model.clone(),
                learn: LearnSpec {
                    seed: self.seed,
                    ..self.learn.clone()
                },
                unlearn,
                observe: self.observe.clone(),
                metrics: metrics.clone(),
                attacks,
                attack_methods: Vec::new(),
                attack_queries: Vec::new(),
                judge: None,
                seed: self.seed,
                numeric_version: lethe_model::NUMERIC_VERSION,
            }
            .sealed()
        };
        let no_unlearning = UnlearnSpec {
            epochs: 0,
            batch_size: self.unlearn.batch_size,
            learning_rate: 0.0,
            method_learning_rates: BTreeMap::new(),
            lora: None,
        };
        let clean = AttackSpec {
            attacks: Vec::new(),
            ..self.attacks.clone()
        };
        let mut jobs = vec![job(
            Rows::Baselines,
            no_unlearning.clone(),
            self.attacks.clone(),
        )];
        let (mut knows, mut unaware) = (Vec::new(), Vec::new());
        let ft = &self.learn.finetune;
        for (pool, labels) in [(true, &mut knows), (false, &mut unaware)] {
            let kinds = kinds(pool);
            for i in 0..self.pool_size {
                let data = kinds[i % kinds.len()];
                let lr = ft.learning_rate * POOL_LR_FACTORS[i % POOL_LR_FACTORS.len()];
                let factor =
                    POOL_EPOCH_FACTORS[(i / POOL_LR_FACTORS.len()) % POOL_EPOCH_FACTORS.len()];
                let epochs = ((ft.epochs as f64 * factor).round() as usize).max(1);
                let seed = self.seed.wrapping_mul(1000).wrapping_add(i as u64);
                let label = format!(
                    "{}[lr={},epochs={epochs},seed={seed}]",
                    data.name(),
                    lr_text(lr)
                );
                let member = PoolMember {
                    data,
                    learning_rate: lr,
                    epochs,
                    seed,
                };
                labels.push(label.clone());
                jobs.push(job(
                    Rows::Pool { label, member },
                    no_unlearning.clone(),
                    clean.clone(),
                ));
            }
        }
        let mut unlearned = Vec::new();
        for method in &self.methods {
            let rate = self.unlearn.learning_rate_of(&method.name);
            for &f in &self.lr_factors {
                for &epochs in &self.epochs {
                    let lr = rate * f;
                    let label = format!("{}[lr={},epochs={epochs}]", method.name, lr_text(lr));
                    unlearned.push(label.clone());
                    let unlearn = UnlearnSpec {
                        epochs,
                        learning_rate: lr,
                        method_learning_rates: BTreeMap::new(),
                        ..self.unlearn.clone()
                    };
                    jobs.push(job(
                        Rows::Method {
                            label,
                            plugin: method.clone(),
                        },
                        unlearn,
                        self.attacks.clone(),
                    ));
                }
            }
        }
        let names = |a: &[lethe_pipeline::Attack]| -> Vec<String> {
            a.iter().map(|x| x.name().to_owned()).collect()
        };
        use lethe_pipeline::Attack;
        let quant4 = names(
            &self
                .attacks
                .attacks
                .iter()
                .copied()
                .filter(|a| matches!(a, Attack::Quant4 | Attack::Nf4))
                .collect::<Vec<_>>(),
        );
        let extra = names(
            &self
                .attacks
                .attacks
                .iter()
                .copied()
                .filter(|a| {
                    !matches!(
                        a,
                        Attack::Quant4 | Attack::Nf4 | Attack::Relearn | Attack::Sample
                    )
                })
                .collect::<Vec<_>>(),
        );
        if !self.attacks.attacks.contains(&Attack::Relearn) || quant4.is_empty() {
            return Err(bad(
                "a meta-evaluation needs the relearn attack and quant4 or nf4".into(),
            ));
        }
        let meta = MetaSpec {
            forget_split,
            knows,
            unaware,
            unlearned,
            target: "target".into(),
            oracle: "oracle".into(),
            utility: self.utility.clone(),
            outputs: self.outputs.clone(),
            relearn: Attack::Relearn.name().into(),
            quant4,
            extra,
            bootstrap: self.bootstrap,
            seed: self.seed,
        };
        let plan = Plan {
            title: self.title.clone(),
            jobs,
            tables: Vec::new(),
            meta: Some(meta),
        };
        plan.check()
            .map_err(|(i, why)| ExperimentError::Selection(format!("job {i}: {why}")))?;
        Ok(MetaPlan { plan, left_out })
    }
}
