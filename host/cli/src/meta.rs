//! `lethe meta-eval`: the options become a meta-evaluation's plan (the experiment crate's
//! `MetaRequest`), which runs and reports as every plan does.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use lethe_experiment::SuiteSource;
use lethe_experiment::meta::MetaRequest;
use lethe_manifest::Reading;
use lethe_reports::meta::{MetaOutput, UtilityRule};
use lethe_suites::{SplitRole, Suite};

use crate::Failure;
use crate::args::{AttackArg, MetaEvalCmd, ProtocolArg};
use crate::plans::{
    absolute, eval_subsets, failure, learn_and_model, plugin_ref, replacing, run_plan,
};
use crate::run::{AttackNames, library_preset, select, setup};

/// The robustness pool's methods unless --methods names others.
pub(crate) const META_METHODS: [&str; 4] = ["ga", "graddiff", "npo", "simnpo"];
/// Every built-in metric that reads the forget set.
pub(crate) const META_METRICS: [&str; 10] = [
    "rouge",
    "probability",
    "truth-ratio",
    "forget-quality",
    "exact-memorization",
    "extraction-strength",
    "mia",
    "privleak",
    "leakage",
    "bleu",
];
/// The utility filter's metric and output (on the suite's retain split).
const UTILITY: (&str, &str) = ("rouge", "rougeL_recall");

/// `lethe meta-eval`.
pub fn run(cmd: Box<MetaEvalCmd>, verbose: u8) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let mut cmd = *cmd;
    let args = &mut cmd.args;
    let seeds = args.seed_list().map_err(failure)?;
    let seed = seeds[0];
    if seeds.len() > 1 && args.seed.is_none() && args.seeds != "0..3" {
        eprintln!(
            "note: a meta-evaluation has one seed of reference models ({seed}); its intervals \
             are over the pools' models, which vary their own seeds"
        );
    }
    if !(args.protocol.is_empty() || args.protocol == [ProtocolArg::Tofu]) {
        return Err(Failure::input(anyhow!(
            "--protocol: a meta-evaluation runs on one suite; only --protocol tofu (its \
             largest forget set) is one"
        )));
    }
    if args.suite.len() > 1 {
        return Err(Failure::input(anyhow!(
            "--suite: a meta-evaluation runs on one suite, not {}",
            args.suite.len()
        )));
    }
    if !(cmd.utility_share.is_finite() && (0.0..=1.0).contains(&cmd.utility_share)) {
        return Err(Failure::input(anyhow!(
            "--utility-share {}: a share between 0 and 1",
            cmd.utility_share
        )));
    }
    if cmd.bootstrap == 0 {
        return Err(Failure::input(anyhow!("--bootstrap: at least 1 replicate")));
    }
    let user_metrics: Vec<String> = args
        .metrics
        .clone()
        .unwrap_or_else(|| META_METRICS.iter().map(|s| (*s).to_owned()).collect());
    let mut metrics = user_metrics.clone();
    if !metrics.iter().any(|m| m == UTILITY.0) {
        metrics.push(UTILITY.0.to_owned());
    }
    args.metrics = Some(metrics.clone());
    let methods = args
        .methods
        .clone()
        .unwrap_or_else(|| META_METHODS.iter().map(|s| (*s).to_owned()).collect());
    args.methods = Some(methods.clone());
    if args.attacks.is_empty() {
        args.attacks = vec![
            AttackArg::Relearn,
            AttackArg::Quant4,
            AttackArg::Nf4,
            AttackArg::Quant8,
            AttackArg::Paraphrase,
            AttackArg::FewShot,
        ];
    }
    let args = &cmd.args;
    let mut setup = setup(args, seed)?;
    let attacks = crate::run::attack_spec(args, &setup.settings)?;

    // The suite: a folder, TOFU's largest forget set, or the generated authors suite.
    let mut eval_first = eval_subsets(&args.eval_first)?;
    let (source, suite_name, suite) = if args.protocol.is_empty() {
        match args.suite.first() {
            Some(dir) => {
                let suite = Suite::load(dir).map_err(Failure::input)?;
                let source = SuiteSource::Folder {
                    path: absolute(dir),
                    digest: suite.digest(),
                };
                (source, None, suite)
            }
            None => {
                let config = setup.settings.suite.clone();
                let suite = lethe_suites::generate::authors(&config).map_err(Failure::input)?;
                let digest = suite.digest();
                (SuiteSource::Authors { config, digest }, None, suite)
            }
        }
    } else {
        let p = lethe_experiment::Protocol::Tofu;
        let mut found = p
            .suites(
                library_preset(args.preset),
                args.suite_seed,
                args.release.as_deref(),
            )
            .map_err(failure)?;
        for why in &found.left_out {
            eprintln!("note: tofu: left out {why}");
        }
        let mut protocol_first = found.eval_first.clone();
        protocol_first.extend(eval_first);
        eval_first = protocol_first;
        let (planned, suite) = found
            .suites
            .pop()
            .ok_or_else(|| Failure::input(anyhow!("--protocol tofu: no forget set found")))?;
        (planned.source, planned.name, suite)
    };
    setup.settings.observe.eval_first = eval_first;
    setup
        .settings
        .observe
        .check_subsets(&suite)
        .map_err(Failure::input)?;
    attacks.validate(&suite).map_err(Failure::input)?;

    let selection = select(&setup, &methods, &metrics, &AttackNames::default())?;
    let utility_metric = selection
        .metrics
        .iter()
        .find(|c| c.plugin.manifest.name == UTILITY.0)
        .ok_or_else(|| Failure::from(anyhow!("the utility metric {} is not loaded", UTILITY.0)))?;
    // Every output of the metrics meta-evaluated (those named, and any --plugin metric).
    let mut outputs = Vec::new();
    for c in &selection.metrics {
        let m = &c.plugin.manifest;
        let named = user_metrics.contains(&m.name);
        let extra = setup.extra.iter().any(|p| p.manifest.name == m.name);
        if !(named || extra) {
            continue;
        }
        for o in &m.outputs {
            outputs.push(MetaOutput {
                metric: m.name.clone(),
                output: o.name.clone(),
                higher_knows: matches!(o.reading, Reading::HigherKnows | Reading::LowerBetter),
            });
        }
    }
    let retain = suite
        .splits_with(SplitRole::Retain)
        .find(|s| !s.is_empty())
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            Failure::input(anyhow!(
                "the suite has no retain split to measure utility on"
            ))
        })?;
    let (learn, model) = learn_and_model(args, &setup)?;
    let epochs = if cmd.step_budgets.is_empty() {
        let e = setup.settings.unlearn.epochs;
        vec![e, 2 * e]
    } else {
        cmd.step_budgets.clone()
    };
    let request = MetaRequest {
        title: "lethe meta-eval".into(),
        suite: source,
        suite_name,
        model,
        learn,
        unlearn: setup.settings.unlearn.clone(),
        observe: setup.settings.observe.clone(),
        methods: selection.methods.iter().map(plugin_ref).collect(),
        lr_factors: cmd.lr_factors.clone(),
        epochs,
        metrics: selection.metrics.iter().map(plugin_ref).collect(),
        outputs,
        utility_metric: plugin_ref(utility_metric),
        utility: UtilityRule {
            metric: UTILITY.0.into(),
            output: UTILITY.1.into(),
            split: retain,
            share: cmd.utility_share,
        },
        attacks,
        pool_size: cmd.pool_size,
        seed,
        bootstrap: cmd.bootstrap,
    };
    let planned = request.plan(&suite).map_err(failure)?;
    for why in &planned.left_out {
        eprintln!("note: meta-eval: left out {why}");
    }
    let plan = planned.plan;
    if cmd.plan_only {
        let shards = lethe_experiment::Shards::new(&args.out);
        replacing(&shards, &plan)?;
        shards.adopt(&plan).map_err(failure)?;
        println!(
            "wrote {} ({} jobs); run it with `lethe exec {}`, then `lethe report`",
            shards.plan_path().display(),
            plan.jobs.len(),
            shards.plan_path().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    drop(selection);
    run_plan(
        &plan,
        &setup,
        &args.out,
        &args.runtime,
        cmd.workers,
        verbose,
        started,
    )
}
