//! `lethe run --protocol mllmu-med|amnesia`: a seed benchmark's whole experiment, one command.
//!
//! A protocol is a list of jobs — one pipeline run each, on a generated suite, or a chain of
//! sequential unlearning rounds — with the benchmark's methods and metrics, followed by its
//! tables. Everything lands in one folder: `results.parquet` (every value of every job; the
//! `run` column tells the jobs apart), `tables.md` (the tables, with what produced them), one
//! CSV per table, `run.json` (each job's label and full provenance) and `failures.json`.
//!
//! Jobs share models where they can: the learn stage keys each model by what determines it, so
//! suites that differ only in their forget split reuse one base and one target model.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use lethe_manifest::RunFailure;
use lethe_pipeline::{Choice, RunInfo, RunOutput, RunSpec, Starts};
use lethe_reports::{ColumnSpec, DataFrame, Table};
use lethe_suites::generate::{
    ForgetSpec, MedicalConfig, PrivacyConfig, WrongFactsConfig, medical, privacy, wrong_facts,
};
use lethe_suites::{QaRecord, Records, SplitRole, Suite};
use serde::Serialize;

use crate::Failure;
use crate::args::{Preset, ProtocolArg, RunArgs};
use crate::run::{AttackNames, Setup, attack_spec, check_judge, select, setup, write_outputs};

/// One pipeline run of a protocol, or a chain of sequential rounds.
struct Job {
    /// The family of jobs a table stacks: "privacy", "privacy-ratio", "patient", …
    family: &'static str,
    /// What tells the job apart within its family: "10 %", "cancer", …
    label: String,
    /// The suite.
    suite: Suite,
    /// Split the forget set into this many sequential rounds (1: a plain run).
    rounds: usize,
}

/// A finished run of a job (a round of a sequential job is a run of its own).
#[derive(Serialize)]
struct Done {
    family: &'static str,
    label: String,
    #[serde(flatten)]
    info: RunInfo,
}

/// What a protocol runs: methods, metrics with their configurations, and jobs.
struct Plan {
    title: &'static str,
    methods: Vec<String>,
    metrics: Vec<String>,
    configs: Vec<(&'static str, serde_json::Value)>,
    /// Learning rates of particular methods (a user's --unlearn-lr-for wins).
    learning_rates: Vec<(&'static str, f64)>,
    jobs: Vec<Job>,
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn generated(r: Result<Suite, lethe_suites::SuiteError>) -> Result<Suite, Failure> {
    r.map_err(Failure::input)
}

/// MLLMU-Med, text only: the privacy and wrong-facts suites at a 10 % forget ratio; on the
/// privacy suite, the forget-ratio sweep (5–30 %) and three sequential rounds of 5 %.
fn mllmu_med(preset: Preset, seed: u64) -> Result<Plan, Failure> {
    let privacy_at = |percent: u32| {
        let base = match preset {
            Preset::Default => PrivacyConfig::default(),
            Preset::Tiny => PrivacyConfig::tiny(),
        };
        generated(privacy(&PrivacyConfig {
            seed,
            forget_percent: percent,
            ..base
        }))
    };
    let wrong = match preset {
        Preset::Default => WrongFactsConfig::default(),
        Preset::Tiny => WrongFactsConfig::tiny(),
    };
    // The 10 % privacy job is both the main table and a point of the forget-ratio sweep; jobs
    // run in sweep order so the sweep's table reads top to bottom.
    let mut jobs = Vec::new();
    for percent in [5, 10, 15, 20, 25, 30] {
        jobs.push(Job {
            family: if percent == 10 {
                "privacy"
            } else {
                "privacy-ratio"
            },
            label: format!("{percent} %"),
            suite: privacy_at(percent)?,
            rounds: 1,
        });
    }
    jobs.push(Job {
        family: "wrong-facts",
        label: "10 %".into(),
        suite: generated(wrong_facts(&WrongFactsConfig {
            seed,
            forget_percent: 10,
            ..wrong
        }))?,
        rounds: 1,
    });
    jobs.push(Job {
        family: "privacy-rounds",
        label: "3 × 5 %".into(),
        suite: privacy_at(15)?,
        rounds: 3,
    });
    Ok(Plan {
        title: "MLLMU-Med (text only)",
        methods: strings(&["ga", "graddiff", "kl-min", "idknll", "llmu"]),
        metrics: strings(&["accuracy", "rouge", "bleu", "ues"]),
        configs: Vec::new(),
        learning_rates: Vec::new(),
        jobs,
    })
}

/// AMNESIA: patient-level forgetting of 5–25 % of the patients, and disease-level forgetting of
/// three categories.
fn amnesia(preset: Preset, seed: u64) -> Result<Plan, Failure> {
    let at = |forget: ForgetSpec| {
        let base = match preset {
            Preset::Default => MedicalConfig::default(),
            Preset::Tiny => MedicalConfig::tiny(),
        };
        generated(medical(&MedicalConfig {
            seed,
            forget,
            ..base
        }))
    };
    let mut jobs = Vec::new();
    for percent in [5u32, 10, 15, 20, 25] {
        jobs.push(Job {
            family: "patient",
            label: format!("patients {percent} %"),
            suite: at(ForgetSpec::Patients {
                share: f64::from(percent) / 100.0,
            })?,
            rounds: 1,
        });
    }
    for category in ["cancer", "infectious-immune", "cardiovascular"] {
        jobs.push(Job {
            family: "disease",
            label: format!("disease: {category}"),
            suite: at(ForgetSpec::Categories(vec![category.to_owned()]))?,
            rounds: 1,
        });
    }
    Ok(Plan {
        title: "AMNESIA",
        methods: strings(&["rmu", "graddiff", "kl-min", "simnpo"]),
        metrics: strings(&["rouge", "forget-efficacy", "leakage", "collateral-erosion"]),
        configs: vec![
            (
                "forget-efficacy",
                serde_json::json!({
                    "forget_splits": ["forget", "forget-reasoning", "forget-rephrased"],
                    "utility_splits": ["retain", "retain-reasoning", "knowledge"],
                }),
            ),
            // RMU trains only three MLP down-projections: at the shared 3e-4 it left the
            // default model's answers unchanged (forget efficacy 0 at every setting); at 1e-3
            // with α = 1 it collapsed retain (ROUGE-L 0.33 at 25 % of the patients); at 1e-3
            // with α = 10 it forgot about as far as the oracle (forget 0.53 vs 0.43) and kept
            // retain (1.00) and the shared knowledge (0.98). The WMDP paper's α is large too.
            ("rmu", serde_json::json!({"alpha": 10.0})),
        ],
        learning_rates: vec![("rmu", 1e-3)],
        jobs,
    })
}

/// The job's suite with the forget split cut into `n` rounds, patient by patient (or author by
/// author: the first group key of the records), in suite order.
fn rounds_of(suite: &Suite, n: usize) -> Result<Vec<Suite>, Failure> {
    let Some(at) = suite
        .splits
        .iter()
        .position(|s| s.role == SplitRole::Forget)
    else {
        return Err(Failure::input(anyhow!("the suite has no forget split")));
    };
    let forget = suite.splits[at].questions();
    let owner = |r: &QaRecord| {
        ["patient", "author"]
            .iter()
            .find_map(|k| r.groups.get(*k).cloned())
            .unwrap_or_else(|| r.id.clone())
    };
    let mut owners: Vec<String> = Vec::new();
    for r in forget {
        let o = owner(r);
        if !owners.contains(&o) {
            owners.push(o);
        }
    }
    // Too few forgotten people for the rounds (a tiny suite): split by question instead.
    let by_question = owners.len() < n;
    if by_question {
        owners = forget.iter().map(|r| r.id.clone()).collect();
    }
    let owner = |r: &QaRecord| if by_question { r.id.clone() } else { owner(r) };
    if owners.len() < n {
        return Err(Failure::input(anyhow!(
            "{} forget examples cannot be split into {n} rounds",
            owners.len()
        )));
    }
    let per = owners.len().div_ceil(n);
    (0..n)
        .map(|r| {
            let mine = &owners[(r * per).min(owners.len())..((r + 1) * per).min(owners.len())];
            let mut s = suite.clone();
            s.splits[at].records = Records::Qa(
                forget
                    .iter()
                    .filter(|q| mine.contains(&owner(q)))
                    .cloned()
                    .collect(),
            );
            s.manifest.description = format!(
                "{} Round {} of {n} of sequential unlearning.",
                s.manifest.description,
                r + 1
            );
            if s.splits[at].is_empty() {
                return Err(Failure::input(anyhow!(
                    "round {} has no forget examples",
                    r + 1
                )));
            }
            Ok(s)
        })
        .collect()
}

fn copies<'a>(choices: &[Choice<'a>]) -> Vec<Choice<'a>> {
    choices
        .iter()
        .map(|c| Choice {
            plugin: c.plugin,
            config: c.config.clone(),
            label: c.label.clone(),
        })
        .collect()
}

/// `lethe run --protocol …`.
pub fn run(protocol: ProtocolArg, args: &RunArgs, verbose: u8) -> Result<ExitCode, Failure> {
    if !args.suite.is_empty() {
        return Err(Failure::input(anyhow!(
            "--protocol generates its own suites; --suite cannot be given with it"
        )));
    }
    // A protocol runs one seed (its jobs are not yet a plan of the experiment crate).
    let seed = args.seed.unwrap_or(0);
    let plan = match protocol {
        ProtocolArg::MllmuMed => mllmu_med(args.preset, seed)?,
        ProtocolArg::Amnesia => amnesia(args.preset, seed)?,
    };
    let mut setup: Setup = setup(args, seed)?;
    let methods = args.methods.clone().unwrap_or(plan.methods.clone());
    let metrics = args.metrics.clone().unwrap_or(plan.metrics.clone());
    // The protocol's settings of its plugins, for those in the run (a user's own win).
    let in_run = |name: &str| methods.iter().chain(&metrics).any(|n| n == name);
    for (name, config) in plan.configs.iter().filter(|(n, _)| in_run(n)) {
        setup
            .configs
            .entry((*name).to_owned())
            .or_insert_with(|| config.clone());
    }
    for (name, lr) in plan.learning_rates.iter().filter(|(n, _)| in_run(n)) {
        setup
            .settings
            .unlearn
            .method_learning_rates
            .entry((*name).to_owned())
            .or_insert(*lr);
    }
    let selection = select(&setup, &methods, &metrics, &AttackNames::of(args))?;
    let mut attack_specs = Vec::new();
    for job in &plan.jobs {
        let a = attack_spec(args, &setup.settings)?;
        a.validate(&job.suite).map_err(Failure::input)?;
        check_judge(&a, selection.judge.as_ref())?;
        attack_specs.push(a);
    }

    let started = Instant::now();
    let bars = crate::progress::reporter(verbose);
    let bars = &*bars;
    let mut done: Vec<(Done, RunOutput)> = Vec::new();
    for (job, attacks) in plan.jobs.iter().zip(attack_specs) {
        eprintln!("{} · {} · {}", plan.title, job.family, job.label);
        let spec_for = |suite| RunSpec {
            suite,
            learn: setup.settings.learn.clone(),
            unlearn: setup.settings.unlearn.clone(),
            observe: setup.settings.observe.clone(),
            methods: copies(&selection.methods),
            metrics: copies(&selection.metrics),
            attacks: attacks.clone(),
            attack_methods: copies(&selection.attacks),
            attack_queries: copies(&selection.queries),
            judge: selection.judge.as_ref().map(|c| Choice {
                plugin: c.plugin,
                config: c.config.clone(),
                label: None,
            }),
            seed,
            baselines: true,
        };
        if job.rounds <= 1 {
            let out = lethe_pipeline::run(&spec_for(&job.suite), &setup.host, &setup.cache, bars)?;
            let info = out.info.clone();
            done.push((
                Done {
                    family: job.family,
                    label: job.label.clone(),
                    info,
                },
                out,
            ));
            continue;
        }
        // Sequential rounds: the models are learned once on the whole suite; each round
        // unlearns its share starting from the model the same method left after the last.
        let learned = lethe_pipeline::learn(&job.suite, &setup.settings.learn, &setup.cache, bars)?;
        let mut starts = Starts {
            models: BTreeMap::new(),
            keep: true,
        };
        for (r, suite) in rounds_of(&job.suite, job.rounds)?.iter().enumerate() {
            let mut out = lethe_pipeline::run_learned(
                &spec_for(suite),
                &learned,
                &starts,
                &setup.host,
                bars,
            )?;
            starts.models = std::mem::take(&mut out.models);
            let info = out.info.clone();
            done.push((
                Done {
                    family: job.family,
                    label: format!("round {}", r + 1),
                    info,
                },
                out,
            ));
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let rows: Vec<_> = done.iter().flat_map(|(_, o)| o.rows.clone()).collect();
    let failures: Vec<RunFailure> = done.iter().flat_map(|(_, o)| o.failures.clone()).collect();
    let mut df = lethe_reports::results_frame(&rows)?;
    let tables = match protocol {
        ProtocolArg::MllmuMed => mllmu_tables(&df, &done)?,
        ProtocolArg::Amnesia => amnesia_tables(&df, &done)?,
    };
    let mut markdown = provenance(plan.title, args, &done);
    for t in &tables {
        markdown.push('\n');
        markdown.push_str(&t.to_markdown(2));
    }

    let scratch = tempfile::tempdir()?;
    let parquet = scratch.path().join("results.parquet");
    lethe_reports::write_parquet(&mut df, &parquet)?;
    let mut files = vec![
        ("results.parquet".to_owned(), fs_err::read(&parquet)?),
        ("tables.md".to_owned(), markdown.clone().into_bytes()),
        (
            "run.json".to_owned(),
            serde_json::to_vec_pretty(&done.iter().map(|(d, _)| d).collect::<Vec<_>>())?,
        ),
        (
            "failures.json".to_owned(),
            serde_json::to_vec_pretty(&failures)?,
        ),
    ];
    for (i, t) in tables.iter().enumerate() {
        let path = scratch.path().join(format!("table-{i}.csv"));
        t.write_csv(&path)?;
        files.push((format!("table-{}.csv", t.file), fs_err::read(&path)?));
    }
    let named: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    write_outputs(&args.out, &named)?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{markdown}")?;
    writeln!(stdout, "results: {}", args.out.display())?;
    eprintln!("{}: {} runs in {:.0} s", plan.title, done.len(), seconds);
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            eprintln!("failed: {} ({}): {}", f.plugin, f.method, f.error);
        }
        Ok(ExitCode::from(1))
    }
}

/// What produced the tables: model, suites and their sizes, seeds, plugins and their hashes.
fn provenance(title: &str, args: &RunArgs, done: &[(Done, RunOutput)]) -> String {
    let mut md = format!("# {title}\n\n");
    if let Some((first, _)) = done.first() {
        let i = &first.info;
        let cfg = &i.model_config;
        md.push_str(&format!(
            "Model: {} parameters ({} layers, hidden {}, {} heads, vocabulary {}){}; seed {}; \
             preset {:?}; unlearning: {} epochs over the forget split, lr {}{}, batch {}.\n\n",
            i.parameters,
            cfg["num_hidden_layers"],
            cfg["hidden_size"],
            cfg["num_attention_heads"],
            cfg["vocab_size"],
            i.learn
                .checkpoint
                .as_ref()
                .map(|c| format!(", from checkpoint sha256 {}", &c.sha256[..16]))
                .unwrap_or_default(),
            i.seed,
            args.preset,
            i.unlearn.epochs,
            i.unlearn.learning_rate,
            i.unlearn
                .method_learning_rates
                .iter()
                .map(|(name, lr)| format!(" ({name}: {lr})"))
                .collect::<String>(),
            i.unlearn.batch_size,
        ));
        md.push_str("Plugins:");
        for p in &i.plugins {
            md.push_str(&format!(" {}@{} ({}),", p.name, p.version, &p.sha256[..12]));
            if !p.config.as_object().is_none_or(|o| o.is_empty()) {
                md.push_str(&format!(" config {},", p.config));
            }
        }
        md.pop();
        md.push_str(
            ".\n\nRuns:\n\n| family | job | run | suite | split sizes |\n|---|---|---|---|---|\n",
        );
    }
    for (d, _) in done {
        let sizes: Vec<String> = d
            .info
            .split_sizes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            d.family,
            d.label,
            d.info.run,
            d.info.suite,
            sizes.join(", ")
        ));
    }
    md
}

/// Rows renamed as the papers name them.
fn rename(board: &mut lethe_reports::Leaderboard) {
    for m in &mut board.methods {
        *m = match m.as_str() {
            "target" => "finetuned".to_owned(),
            "oracle" => "retrain (oracle)".to_owned(),
            _ => m.clone(),
        };
    }
}

/// One column of a protocol table: its header and where its value comes from.
struct Col {
    header: &'static str,
    metric: &'static str,
    output: &'static str,
    split: &'static str,
    /// Multiply by this (100 for a percentage).
    scale: f64,
}

const fn col(
    header: &'static str,
    metric: &'static str,
    output: &'static str,
    split: &'static str,
    scale: f64,
) -> Col {
    Col {
        header,
        metric,
        output,
        split,
        scale,
    }
}

#[allow(clippy::too_many_arguments)]
/// A table stacking the jobs of some families: lead columns (family label), method, columns.
fn stacked(
    df: &DataFrame,
    done: &[(Done, RunOutput)],
    families: &[&str],
    file: &str,
    title: &str,
    lead: &str,
    cols: &[Col],
    decimals: usize,
) -> Result<Option<Table>, Failure> {
    let mut header = vec![lead.to_owned(), "method".to_owned()];
    header.extend(cols.iter().map(|c| c.header.to_owned()));
    let mut table = Table::new(title, header);
    table.file = file.to_owned();
    let specs: Vec<ColumnSpec> = cols
        .iter()
        .map(|c| ColumnSpec {
            metric: c.metric.to_owned(),
            output: c.output.to_owned(),
            split: c.split.to_owned(),
        })
        .collect();
    for (d, _) in done.iter().filter(|(d, _)| families.contains(&d.family)) {
        let mut board =
            lethe_reports::leaderboard(&lethe_reports::for_run(df, &d.info.run)?, &specs)?;
        for row in &mut board.values {
            for (v, c) in row.iter_mut().zip(cols) {
                *v = v.map(|x| x * c.scale);
            }
        }
        rename(&mut board);
        table.push_board(std::slice::from_ref(&d.label), &board, decimals);
    }
    Ok((!table.rows.is_empty()).then_some(table))
}

fn mllmu_tables(df: &DataFrame, done: &[(Done, RunOutput)]) -> Result<Vec<Table>, Failure> {
    let main = [
        col("forget acc %", "accuracy", "accuracy", "forget", 100.0),
        col("forget ROUGE-1", "rouge", "rouge1_f1", "forget", 100.0),
        col("forget BLEU", "bleu", "bleu", "forget", 1.0),
        col("retain acc %", "accuracy", "accuracy", "retain", 100.0),
        col("retain ROUGE-1", "rouge", "rouge1_f1", "retain", 100.0),
        col("retain BLEU", "bleu", "bleu", "retain", 1.0),
        col("test acc %", "accuracy", "accuracy", "test", 100.0),
        col("test ROUGE-1", "rouge", "rouge1_f1", "test", 100.0),
        col("test BLEU", "bleu", "bleu", "test", 1.0),
        col("UES", "ues", "ues", "forget", 1.0),
    ];
    let short = [
        col("forget ROUGE-1", "rouge", "rouge1_f1", "forget", 100.0),
        col("retain ROUGE-1", "rouge", "rouge1_f1", "retain", 100.0),
        col("test ROUGE-1", "rouge", "rouge1_f1", "test", 100.0),
        col("UES", "ues", "ues", "forget", 1.0),
    ];
    let tables = [
        stacked(
            df,
            done,
            &["privacy"],
            "privacy",
            "Privacy (private patient data): forget / retain / test, UES",
            "forget",
            &main,
            2,
        )?,
        stacked(
            df,
            done,
            &["wrong-facts"],
            "wrong-facts",
            "Wrong medical facts: forget / retain / test, UES",
            "forget",
            &main,
            2,
        )?,
        stacked(
            df,
            done,
            &["privacy", "privacy-ratio"],
            "forget-ratio",
            "Ablation: forget ratio (privacy)",
            "forget",
            &short,
            2,
        )?,
        stacked(
            df,
            done,
            &["privacy-rounds"],
            "sequential-rounds",
            "Ablation: three sequential unlearning rounds of 5 % each (privacy)",
            "round",
            &short,
            2,
        )?,
    ];
    Ok(tables.into_iter().flatten().collect())
}

fn amnesia_tables(df: &DataFrame, done: &[(Done, RunOutput)]) -> Result<Vec<Table>, Failure> {
    let all = ["patient", "disease"];
    let main = [
        col(
            "forget efficacy",
            "forget-efficacy",
            "forget_efficacy_rougeL",
            "forget",
            1.0,
        ),
        col(
            "utility",
            "forget-efficacy",
            "utility_rougeL",
            "retain",
            1.0,
        ),
        col(
            "utility (knowledge)",
            "forget-efficacy",
            "utility_rougeL",
            "knowledge",
            1.0,
        ),
        col("leakage (forget)", "leakage", "leakage", "forget", 1.0),
        col(
            "leakage (rephrased)",
            "leakage",
            "leakage",
            "forget-rephrased",
            1.0,
        ),
        col(
            "degradation (forget)",
            "leakage",
            "degradation",
            "forget",
            1.0,
        ),
        col(
            "degradation (retain)",
            "leakage",
            "degradation",
            "retain",
            1.0,
        ),
    ];
    let questions = [
        col("forget factual", "rouge", "rougeL_recall", "forget", 1.0),
        col(
            "forget reasoning",
            "rouge",
            "rougeL_recall",
            "forget-reasoning",
            1.0,
        ),
        col(
            "forget rephrased",
            "rouge",
            "rougeL_recall",
            "forget-rephrased",
            1.0,
        ),
        col("retain factual", "rouge", "rougeL_recall", "retain", 1.0),
        col(
            "retain reasoning",
            "rouge",
            "rougeL_recall",
            "retain-reasoning",
            1.0,
        ),
    ];
    let erosion = |split: &'static str| {
        [
            ("same-disease before", "target_utility_same"),
            ("same-disease after", "utility_same"),
            ("other-disease before", "target_utility_other"),
            ("other-disease after", "utility_other"),
            ("erosion same", "erosion_same"),
            ("erosion other", "erosion_other"),
            ("collateral erosion", "collateral_erosion"),
        ]
        .map(|(header, output)| col(header, "collateral-erosion", output, split, 1.0))
    };
    let tables = [
        stacked(
            df,
            done,
            &all,
            "forgetting",
            "Forget efficacy, utility (ROUGE-L part), terminology leakage and degradation",
            "setting",
            &main,
            3,
        )?,
        stacked(
            df,
            done,
            &all,
            "questions",
            "Factual vs reasoning questions and unseen rephrasings (ROUGE-L recall)",
            "setting",
            &questions,
            3,
        )?,
        // Disease-level forgetting leaves no retained patient with a forgotten disease.
        stacked(
            df,
            done,
            &["patient"],
            "collateral-erosion",
            "Collateral erosion: utility (ROUGE-L recall) on retained same-disease vs \
             other-disease patients, before and after unlearning",
            "setting",
            &erosion("retain"),
            3,
        )?,
        stacked(
            df,
            done,
            &["patient"],
            "collateral-erosion-knowledge",
            "Collateral erosion of shared disease knowledge: the diseases' general questions \
             (knowledge split), same vs other disease as the forgotten patients",
            "setting",
            &erosion("knowledge"),
            3,
        )?,
    ];
    Ok(tables.into_iter().flatten().collect())
}
