//! The conformance check a plugin passes before a leaderboard takes it (`lethe plugin test`):
//! the plugin runs on the tiny preset, twice, beside built-in plugins of the other kinds, and
//! every promise a plugin of its kind makes is checked on what the runs produced.
//!
//! - every plugin: its configuration is valid under its schema; the run records no failure of
//!   it; the host denied it nothing (a request it may have swallowed still counts); the second
//!   run's results and losses are identical to the first's;
//! - a method: it takes at least one step and no more than its budget, and the forget split's
//!   answer probability falls below the target's (it forgets in the direction it claims);
//! - a metric: every output it declares has a value, and every value is finite;
//! - a query attack: its prompts are observed (at least one question is not left out);
//! - a judge: the sampling attack's leak@k values exist under it.

use std::time::{Duration, Instant};

use lethe_manifest::{AttackLabel, PluginKind, ResultRow};
use lethe_pipeline::{
    Attack, AttackSpec, Choice, LEAK_METRIC, ModelCache, Reporter, RunOutput, RunSpec,
};
use lethe_runtime::{Plugin, PluginHost};

use crate::ExperimentError;
use crate::presets::Preset;

/// The built-in method a metric, query attack or judge is run beside.
pub const PARTNER_METHOD: &str = "ga";
/// The built-in metric a method, query attack or judge is scored by.
pub const PARTNER_METRIC: &str = "probability";

/// One check and what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What is checked, as a short sentence.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found: figures when it held, the reason when it did not.
    pub detail: String,
}

/// Every check of one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Conformance {
    /// `name@version` of the plugin.
    pub plugin: String,
    /// Its kind.
    pub kind: PluginKind,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Wall time of each of the two runs.
    pub runs: Vec<Duration>,
}

impl Conformance {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    fn check(&mut self, name: &str, result: Result<String, String>) -> bool {
        let passed = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail,
        });
        passed
    }
}

/// What the check runs the plugin with.
pub struct Partners<'a> {
    /// The built-in method [`PARTNER_METHOD`].
    pub method: &'a Plugin,
    /// The built-in metric [`PARTNER_METRIC`].
    pub metric: &'a Plugin,
}

/// Run the conformance check of `plugin` with `config` on the tiny preset with `seed`.
///
/// An error is returned only when the check itself cannot run (the tiny suite or its models);
/// everything the plugin does wrong is a failed [`Check`].
pub fn check(
    plugin: &Plugin,
    config: &serde_json::Value,
    partners: &Partners<'_>,
    host: &PluginHost,
    cache: &ModelCache,
    reporter: &dyn Reporter,
    seed: u64,
) -> Result<Conformance, ExperimentError> {
    let kind = plugin.manifest.kind;
    let mut report = Conformance {
        plugin: plugin.label(),
        kind,
        checks: Vec::new(),
        runs: Vec::new(),
    };
    let schema = host
        .validate_config(plugin, config)
        .map(|()| format!("{config} is valid under the plugin's schema"))
        .map_err(|e| e.to_string());
    if !report.check("configuration valid", schema) {
        return Ok(report);
    }

    let settings = Preset::Tiny.settings(seed, seed);
    let suite = lethe_suites::generate::authors(&settings.suite)
        .map_err(|e| ExperimentError::Selection(format!("the tiny suite: {e}")))?;
    let mut attacks = AttackSpec::default();
    if kind == PluginKind::Judge {
        attacks.attacks = vec![Attack::Sample];
        attacks.samples = 4;
    }
    let (methods, metrics) = match kind {
        PluginKind::Method => (
            vec![choice(plugin, config.clone())],
            vec![choice(partners.metric, serde_json::json!({}))],
        ),
        PluginKind::Metric => (
            vec![choice(partners.method, serde_json::json!({}))],
            vec![choice(plugin, config.clone())],
        ),
        PluginKind::QueryAttack | PluginKind::Judge => (
            vec![choice(partners.method, serde_json::json!({}))],
            vec![choice(partners.metric, serde_json::json!({}))],
        ),
    };
    let spec = RunSpec {
        suite: &suite,
        learn: settings.learn.clone(),
        unlearn: settings.unlearn.clone(),
        observe: settings.observe.clone(),
        methods,
        metrics,
        attacks,
        attack_methods: Vec::new(),
        attack_queries: if kind == PluginKind::QueryAttack {
            vec![choice(plugin, config.clone())]
        } else {
            Vec::new()
        },
        judge: (kind == PluginKind::Judge).then(|| choice(plugin, config.clone())),
        seed,
        baselines: true,
    };
    let mut outputs: Vec<RunOutput> = Vec::new();
    for _ in 0..2 {
        let t0 = Instant::now();
        outputs.push(lethe_pipeline::run(&spec, host, cache, reporter)?);
        report.runs.push(t0.elapsed());
    }
    let first = &outputs[0];
    let label = plugin.label();

    let failures: Vec<String> = first
        .failures
        .iter()
        .filter(|f| f.plugin == label)
        .map(|f| format!("on row {}: {}", f.method, f.error))
        .collect();
    report.check(
        "runs without failing",
        if failures.is_empty() {
            Ok("no failure recorded".into())
        } else {
            Err(failures.join("; "))
        },
    );
    let denied: Vec<String> = first.denials.values().flatten().cloned().collect();
    report.check(
        "asks for nothing denied",
        if denied.is_empty() {
            Ok("the host denied no request".into())
        } else {
            Err(format!(
                "{} request(s) denied, first: {}",
                denied.len(),
                denied[0]
            ))
        },
    );

    match kind {
        PluginKind::Method => method_checks(&mut report, plugin, first),
        PluginKind::Metric => metric_checks(&mut report, plugin, first),
        PluginKind::QueryAttack => {
            let attack = AttackLabel::Query(plugin.manifest.name.clone()).to_string();
            let n = first.rows.iter().filter(|r| r.attack == attack).count();
            report.check(
                "its prompts are observed",
                if n > 0 {
                    Ok(format!("{n} values scored under {attack}"))
                } else {
                    Err(format!(
                        "no value under {attack}: every question was left out"
                    ))
                },
            );
        }
        PluginKind::Judge => {
            let n = first
                .rows
                .iter()
                .filter(|r| r.metric == LEAK_METRIC && r.example.is_none())
                .count();
            report.check(
                "its verdicts give leak@k",
                if n > 0 {
                    Ok(format!("{n} leak@k values"))
                } else {
                    Err("no leak@k value: no question could be judged".into())
                },
            );
        }
    }

    let second = &outputs[1];
    let same = first.rows == second.rows && first.losses == second.losses;
    report.check(
        "same input, same output",
        if same {
            Ok(format!(
                "{} values and every loss identical over two runs",
                first.rows.len()
            ))
        } else {
            let differing = first
                .rows
                .iter()
                .zip(&second.rows)
                .filter(|(a, b)| a != b)
                .count()
                + first.rows.len().abs_diff(second.rows.len());
            Err(format!(
                "the second run differs: {differing} of {} values, losses {}",
                first.rows.len(),
                if first.losses == second.losses {
                    "identical"
                } else {
                    "different"
                }
            ))
        },
    );
    Ok(report)
}

fn choice(plugin: &Plugin, config: serde_json::Value) -> Choice<'_> {
    Choice {
        plugin,
        config,
        label: None,
    }
}

/// The clean aggregate of `metric`'s `output` on `split` for model row `row`.
fn aggregate(
    rows: &[ResultRow],
    row: &str,
    metric: &str,
    output: &str,
    split: &str,
) -> Option<f64> {
    rows.iter()
        .find(|r| {
            r.method == row
                && r.metric == metric
                && r.output == output
                && r.split == split
                && r.attack == AttackLabel::CLEAN
                && r.example.is_none()
        })
        .map(|r| r.value)
}

fn method_checks(report: &mut Conformance, plugin: &Plugin, out: &RunOutput) {
    let row = plugin.manifest.name.as_str();
    let budget = out.info.unlearn_steps;
    let steps = out.losses.get(row).map_or(0, Vec::len);
    report.check(
        "steps within its budget",
        if steps == 0 {
            Err(format!("took no step (budget {budget})"))
        } else if steps > budget as usize {
            Err(format!("took {steps} steps, budget {budget}"))
        } else {
            Ok(format!("{steps} of {budget} steps"))
        },
    );
    let p = |r: &str, split: &str| aggregate(&out.rows, r, PARTNER_METRIC, PARTNER_METRIC, split);
    let forgets = match (p("target", "forget"), p(row, "forget")) {
        (Some(before), Some(after)) if after < before => {
            let retain = match (p("target", "retain"), p(row, "retain")) {
                (Some(b), Some(a)) => format!("; retain {b:.4} -> {a:.4}"),
                _ => String::new(),
            };
            Ok(format!(
                "forget answer probability {before:.4} -> {after:.4}{retain}"
            ))
        }
        (Some(before), Some(after)) => Err(format!(
            "forget answer probability did not fall: {before:.4} -> {after:.4}"
        )),
        _ => Err("no forget answer probability for the target and the unlearned model".into()),
    };
    report.check("forgets the forget split", forgets);
}

fn metric_checks(report: &mut Conformance, plugin: &Plugin, out: &RunOutput) {
    let name = plugin.manifest.name.as_str();
    let rows: Vec<&ResultRow> = out.rows.iter().filter(|r| r.metric == name).collect();
    let mut missing = Vec::new();
    let mut covered = Vec::new();
    for output in &plugin.manifest.outputs {
        let mut splits: Vec<&str> = rows
            .iter()
            .filter(|r| r.output == output.name)
            .map(|r| r.split.as_str())
            .collect();
        splits.sort_unstable();
        splits.dedup();
        if splits.is_empty() {
            missing.push(output.name.clone());
        } else {
            covered.push(format!("{} on {}", output.name, splits.join(", ")));
        }
    }
    report.check(
        "a value for every declared output",
        if missing.is_empty() {
            Ok(covered.join("; "))
        } else {
            Err(format!("no value for {}", missing.join(", ")))
        },
    );
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.value.is_finite())
        .take(3)
        .map(|r| {
            format!(
                "{} on {} of row {}: {}",
                r.output, r.split, r.method, r.value
            )
        })
        .collect();
    report.check(
        "every value finite",
        if bad.is_empty() {
            Ok(format!("{} values", rows.len()))
        } else {
            Err(bad.join("; "))
        },
    );
}
