//! Making a plan from what a user asked for: suites × seeds × methods × learning rates ×
//! a grid over method configurations.

use std::collections::BTreeMap;

use lethe_manifest::PluginKind;
use lethe_pipeline::{AttackSpec, LearnSpec, ObserveSettings, UnlearnSpec};

use crate::plan::{Job, ModelSource, Plan, PluginRef, Round, Rows, SuiteSource};
use crate::{ExperimentError, Preset};

/// One axis of a grid over a method's configuration: `graddiff.alpha=0.5,1,2`.
#[derive(Debug, Clone, PartialEq)]
pub struct GridAxis {
    /// The method plugin's name.
    pub method: String,
    /// The configuration key (top level).
    pub key: String,
    /// Its values, in order.
    pub values: Vec<serde_json::Value>,
}

impl GridAxis {
    /// Parse `METHOD.KEY=V1,V2,…`; each value is JSON when it parses as JSON, else a string.
    pub fn parse(text: &str) -> Result<Self, ExperimentError> {
        let bad = |why: &str| {
            ExperimentError::Selection(format!("--grid '{text}': {why} (want METHOD.KEY=V1,V2,…)"))
        };
        let (lhs, rhs) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (method, key) = lhs
            .split_once('.')
            .ok_or_else(|| bad("no '.' before the key"))?;
        if method.trim().is_empty() || key.trim().is_empty() {
            return Err(bad("empty method or key"));
        }
        let values: Vec<serde_json::Value> = rhs
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()))
            })
            .collect();
        if values.is_empty() {
            return Err(bad("no values"));
        }
        Ok(Self {
            method: method.trim().to_owned(),
            key: key.trim().to_owned(),
            values,
        })
    }
}

/// Parse a seed list: `0..3` (end exclusive), `0..=2`, or `0,1,2`.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, ExperimentError> {
    let bad = |why: String| ExperimentError::Selection(format!("--seeds '{text}': {why}"));
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| bad(format!("'{}' is not a seed (a whole number ≥ 0)", s.trim())))
    };
    const MAX: u64 = 10_000;
    // The range's size is checked before it is collected (0..u64::MAX would not fit).
    let range = |a: u64, b: u64| {
        if b.saturating_sub(a) > MAX {
            Err(bad(format!("more than {MAX} seeds")))
        } else {
            Ok(a..b)
        }
    };
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..=") {
        range(num(a)?, num(b)?.saturating_add(1))?.collect()
    } else if let Some((a, b)) = text.split_once("..") {
        range(num(a)?, num(b)?)?.collect()
    } else {
        text.split(',').map(num).collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err(bad("no seeds".into()));
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        return Err(bad("a seed is given twice".into()));
    }
    if seeds.len() as u64 > MAX {
        return Err(bad(format!("more than {MAX} seeds")));
    }
    Ok(seeds)
}

/// A suite of a plan, with what its jobs make of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSuite {
    /// Where it comes from.
    pub source: SuiteSource,
    /// The name results give it, when not its own ([`Job::suite_name`]).
    pub name: Option<String>,
    /// The round of sequential unlearning its jobs measure.
    pub round: Option<Round>,
}

impl From<SuiteSource> for PlannedSuite {
    fn from(source: SuiteSource) -> Self {
        Self {
            source,
            name: None,
            round: None,
        }
    }
}

/// Everything a plan is made from. The CLI fills it from flags; protocols from their data.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The plan's title.
    pub title: String,
    /// The suites (an axis).
    pub suites: Vec<PlannedSuite>,
    /// A checkpoint to start from.
    pub model: Option<ModelSource>,
    /// The learn stage; its seed is replaced by each job's.
    pub learn: LearnSpec,
    /// The unlearn stage.
    pub unlearn: UnlearnSpec,
    /// Learning rates to sweep (an axis; empty: the unlearn stage's).
    pub unlearn_lrs: Vec<f64>,
    /// The observe stage.
    pub observe: ObserveSettings,
    /// Methods, each with its configuration.
    pub methods: Vec<PluginRef>,
    /// Axes over the methods' configurations.
    pub grid: Vec<GridAxis>,
    /// Metrics.
    pub metrics: Vec<PluginRef>,
    /// Attacks.
    pub attacks: AttackSpec,
    /// Model attacks written as method plugins.
    pub attack_methods: Vec<PluginRef>,
    /// Query-attack plugins.
    pub attack_queries: Vec<PluginRef>,
    /// The sampling attack's judge.
    pub judge: Option<PluginRef>,
    /// Seeds (an axis).
    pub seeds: Vec<u64>,
    /// The tables a protocol reports.
    pub tables: Vec<lethe_reports::TableSpec>,
}

/// A short number for a label: 3e-4, 0.5, 2.
fn short(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lr_text(lr: f64) -> String {
    format!("{lr:e}")
}

/// The configurations of one method over the grid's axes for it, with the label part of each.
fn grid_configs(
    method: &PluginRef,
    axes: &[&GridAxis],
) -> Result<Vec<(serde_json::Value, Vec<String>)>, ExperimentError> {
    let mut out = vec![(method.config.clone(), Vec::new())];
    for axis in axes {
        let mut next = Vec::new();
        for (config, label) in &out {
            for value in &axis.values {
                let mut c = config.clone();
                let obj = c.as_object_mut().ok_or_else(|| {
                    ExperimentError::Selection(format!(
                        "--grid {}.{}: the method's configuration is not a JSON object",
                        axis.method, axis.key
                    ))
                })?;
                obj.insert(axis.key.clone(), value.clone());
                let mut l = label.clone();
                l.push(format!("{}={}", axis.key, short(value)));
                next.push((c, l));
            }
        }
        out = next;
    }
    Ok(out)
}

impl PlanRequest {
    /// The smallest complete request: `preset`'s settings on its generated authors suite, with
    /// `methods`, `metrics` and `seeds` and nothing else (no attacks, grid, judge or tables),
    /// for tests and fuzzing seeds that need a real plan.
    pub fn of_preset(
        preset: Preset,
        title: &str,
        methods: Vec<PluginRef>,
        metrics: Vec<PluginRef>,
        seeds: Vec<u64>,
    ) -> Result<Self, ExperimentError> {
        let settings = preset.settings(0, 0);
        let suite = lethe_suites::generate::authors(&settings.suite)
            .map_err(|e| ExperimentError::Selection(format!("the preset's suite: {e}")))?;
        Ok(Self {
            title: title.into(),
            suites: vec![PlannedSuite::from(SuiteSource::Authors {
                config: settings.suite.clone(),
                digest: suite.digest(),
            })],
            model: None,
            learn: settings.learn,
            unlearn: settings.unlearn,
            unlearn_lrs: Vec::new(),
            observe: settings.observe,
            methods,
            grid: Vec::new(),
            metrics,
            attacks: AttackSpec::default(),
            attack_methods: Vec::new(),
            attack_queries: Vec::new(),
            judge: None,
            seeds,
            tables: Vec::new(),
        })
    }

    /// The unlearning settings of a baselines job: those of its model attacks (method plugins
    /// that train every row), or none when it has none — nothing in it unlearns, and its id
    /// must not change with the methods' settings (or every method's tweak would re-run the
    /// baselines and keep two sweeps' baselines from merging).
    fn baselines_unlearn(&self) -> UnlearnSpec {
        if self.attack_methods.is_empty() {
            return UnlearnSpec {
                epochs: 0,
                batch_size: self.unlearn.batch_size,
                learning_rate: 0.0,
                method_learning_rates: BTreeMap::new(),
                lora: None,
            };
        }
        let mut u = self.unlearn.clone();
        u.method_learning_rates
            .retain(|name, _| self.attack_methods.iter().any(|a| &a.name == name));
        u
    }

    /// The plan: for each suite, for each seed, the baselines job and then one job per method,
    /// learning rate and grid point. Labels name the axes that vary: `graddiff[lr=1e-4,alpha=2]`.
    pub fn plan(&self) -> Result<Plan, ExperimentError> {
        if self.seeds.is_empty() {
            return Err(ExperimentError::Selection("no seeds".into()));
        }
        if self.metrics.is_empty() {
            return Err(ExperimentError::Selection("no metrics to compute".into()));
        }
        for axis in &self.grid {
            if !self.methods.iter().any(|m| m.name == axis.method) {
                return Err(ExperimentError::Selection(format!(
                    "--grid {}.{}: no method named '{}' in this run",
                    axis.method, axis.key, axis.method
                )));
            }
        }
        for lr in &self.unlearn_lrs {
            if !(lr.is_finite() && *lr > 0.0) {
                return Err(ExperimentError::Selection(format!(
                    "--unlearn-lr {lr}: a learning rate must be a positive number"
                )));
            }
        }
        let lrs: Vec<Option<f64>> = if self.unlearn_lrs.is_empty() {
            vec![None]
        } else {
            self.unlearn_lrs.iter().copied().map(Some).collect()
        };
        let mut jobs = Vec::new();
        for suite in &self.suites {
            for &seed in &self.seeds {
                let job = |rows: Rows, unlearn: UnlearnSpec| {
                    Job {
                        id: String::new(),
                        rows,
                        suite: suite.source.clone(),
                        suite_name: suite.name.clone(),
                        round: suite.round,
                        model: self.model.clone(),
                        learn: LearnSpec {
                            seed,
                            ..self.learn.clone()
                        },
                        unlearn,
                        observe: self.observe.clone(),
                        metrics: self.metrics.clone(),
                        attacks: self.attacks.clone(),
                        attack_methods: self.attack_methods.clone(),
                        attack_queries: self.attack_queries.clone(),
                        judge: self.judge.clone(),
                        seed,
                        numeric_version: lethe_model::NUMERIC_VERSION,
                    }
                    .sealed()
                };
                jobs.push(job(Rows::Baselines, self.baselines_unlearn()));
                let mut used: BTreeMap<String, usize> = BTreeMap::new();
                for method in &self.methods {
                    if method.kind != PluginKind::Method {
                        return Err(ExperimentError::Selection(format!(
                            "{} is a {}, not a method",
                            method.name, method.kind
                        )));
                    }
                    let axes: Vec<&GridAxis> = self
                        .grid
                        .iter()
                        .filter(|a| a.method == method.name)
                        .collect();
                    for lr in &lrs {
                        for (config, mut parts) in grid_configs(method, &axes)? {
                            let mut unlearn = self.unlearn.clone();
                            if let Some(lr) = lr {
                                unlearn.learning_rate = *lr;
                                unlearn.method_learning_rates.remove(&method.name);
                                if lrs.len() > 1 {
                                    parts.insert(0, format!("lr={}", lr_text(*lr)));
                                }
                            }
                            // A job's unlearning settings are its own method's: the other
                            // methods' rates would only make equal jobs look different.
                            let own = unlearn.method_learning_rates.remove(&method.name);
                            unlearn.method_learning_rates.clear();
                            if let Some(own) = own {
                                unlearn.learning_rate = own;
                            }
                            let mut label = if parts.is_empty() {
                                method.name.clone()
                            } else {
                                format!("{}[{}]", method.name, parts.join(","))
                            };
                            let n = used.entry(label.clone()).or_insert(0);
                            *n += 1;
                            if *n > 1 {
                                label = format!("{label}#{n}");
                            }
                            let plugin = PluginRef {
                                config,
                                ..method.clone()
                            };
                            jobs.push(job(Rows::Method { label, plugin }, unlearn));
                        }
                    }
                }
            }
        }
        let plan = Plan {
            title: self.title.clone(),
            jobs,
            tables: self.tables.clone(),
            meta: None,
        };
        plan.check()
            .map_err(|(i, why)| ExperimentError::Selection(format!("job {i}: {why}")))?;
        Ok(plan)
    }
}

impl Plan {
    /// Several plans as one (a grid over protocols): their jobs in order, their tables.
    pub fn concat(title: String, plans: Vec<Plan>) -> Result<Plan, ExperimentError> {
        let mut out = Plan {
            title,
            jobs: Vec::new(),
            tables: Vec::new(),
            meta: None,
        };
        for p in plans {
            out.jobs.extend(p.jobs);
            for t in p.tables {
                if !out.tables.contains(&t) {
                    out.tables.push(t);
                }
            }
        }
        out.check()
            .map_err(|(i, why)| ExperimentError::Selection(format!("job {i}: {why}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn seeds_parse_as_ranges_and_lists() {
        assert_eq!(parse_seeds("0..3").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_seeds("2..=4").unwrap(), vec![2, 3, 4]);
        assert_eq!(parse_seeds("5,1,9").unwrap(), vec![5, 1, 9]);
        assert!(parse_seeds("3..3").is_err());
        assert!(parse_seeds("1,1").is_err());
        assert!(parse_seeds("a").is_err());
        assert!(parse_seeds("0..18446744073709551615").is_err());
        assert!(parse_seeds("0..=18446744073709551615").is_err());
    }

    #[test]
    fn grid_axes_parse_json_values() {
        let g = GridAxis::parse("graddiff.alpha=0.5,1, 2").unwrap();
        assert_eq!(g.method, "graddiff");
        assert_eq!(g.key, "alpha");
        assert_eq!(
            g.values,
            vec![
                serde_json::json!(0.5),
                serde_json::json!(1),
                serde_json::json!(2)
            ]
        );
        assert!(GridAxis::parse("graddiff=1").is_err());
        assert!(GridAxis::parse("graddiff.alpha=").is_err());
    }
}
