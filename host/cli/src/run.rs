//! `lethe run` and the suite commands.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use lethe_manifest::PluginKind;
use lethe_manifest::Reading;
use lethe_pipeline::{
    Attack, AttackSpec, Checkpoint, Choice, LearnSpec, ModelCache, ModelPreset, ObserveSettings,
    Phase, RunSpec, UnlearnSpec,
};
use lethe_pipeline::{RelearnSettings, RelearnSource};
use lethe_reports::ColumnSpec;
use lethe_runtime::{Limits, PluginHost};
use lethe_suites::generate::{AuthorsConfig, ForgetSpec, MedicalConfig, authors, medical};
use lethe_suites::{SplitRole, Suite};

use crate::Failure;
use crate::args::{
    AttackArg, GeneratorKind, Preset, RunArgs, SuiteCheckArgs, SuiteGenerateArgs, SuiteImportArgs,
    SuitePreset,
};
use crate::catalog::{Catalog, load_file};
use crate::progress::Bars;

/// The settings a preset stands for.
pub(crate) struct PresetSettings {
    /// Size of the generated authors suite.
    pub suite: AuthorsConfig,
    /// The learn stage.
    pub learn: LearnSpec,
    /// The unlearn stage.
    pub unlearn: UnlearnSpec,
    /// The observe stage.
    pub observe: ObserveSettings,
}

pub(crate) fn preset(p: Preset, seed: u64) -> PresetSettings {
    match p {
        Preset::Default => PresetSettings {
            suite: AuthorsConfig {
                seed,
                ..AuthorsConfig::default()
            },
            learn: LearnSpec {
                preset: ModelPreset::Small,
                vocab_size: 1024,
                pretrain: Phase {
                    epochs: 8,
                    batch_size: 32,
                    learning_rate: 3e-3,
                },
                finetune: Phase {
                    epochs: 24,
                    batch_size: 16,
                    learning_rate: 2e-3,
                },
                seed,
                checkpoint: None,
            },
            unlearn: UnlearnSpec {
                epochs: 5,
                batch_size: 8,
                learning_rate: 3e-4,
                method_learning_rates: BTreeMap::new(),
            },
            observe: ObserveSettings {
                batch_size: 64,
                max_new_tokens: 40,
            },
        },
        Preset::Tiny => PresetSettings {
            suite: AuthorsConfig {
                seed,
                ..AuthorsConfig::tiny()
            },
            learn: LearnSpec {
                preset: ModelPreset::Tiny,
                vocab_size: 400,
                pretrain: Phase {
                    epochs: 2,
                    batch_size: 16,
                    learning_rate: 3e-3,
                },
                finetune: Phase {
                    epochs: 10,
                    batch_size: 16,
                    learning_rate: 3e-3,
                },
                seed,
                checkpoint: None,
            },
            unlearn: UnlearnSpec {
                epochs: 2,
                batch_size: 4,
                learning_rate: 1e-4,
                method_learning_rates: BTreeMap::new(),
            },
            observe: ObserveSettings {
                batch_size: 32,
                max_new_tokens: 24,
            },
        },
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("lethe"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("lethe"))
}

fn parse_configs(raw: &[String]) -> Result<BTreeMap<String, serde_json::Value>, Failure> {
    let mut out = BTreeMap::new();
    for item in raw {
        let (name, json) = item
            .split_once('=')
            .ok_or_else(|| Failure::input(anyhow!("--config '{item}' is not NAME=JSON")))?;
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Failure::input(anyhow!("--config {name}: not JSON: {e}")))?;
        if out.insert(name.to_owned(), value).is_some() {
            return Err(Failure::input(anyhow!("--config {name} given twice")));
        }
    }
    Ok(out)
}

/// Write every output into a fresh folder beside `out`, then swap it into place, so that a
/// failure never leaves a half-written result folder.
pub(crate) fn write_outputs(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<(), Failure> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let name = out
        .file_name()
        .ok_or_else(|| Failure::input(anyhow!("--out {} is not a folder name", out.display())))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp)?;
    }
    fs_err::create_dir_all(&tmp)?;
    for (file, bytes) in files {
        fs_err::write(tmp.join(file), bytes)?;
    }
    if out.exists() {
        if !out.join("run.json").exists() {
            fs_err::remove_dir_all(&tmp)?;
            return Err(Failure::input(anyhow!(
                "--out {} exists and is not a lethe result folder; not overwriting it",
                out.display()
            )));
        }
        fs_err::remove_dir_all(out)?;
    }
    fs_err::rename(&tmp, out)?;
    Ok(())
}

/// The leaderboard under each attack, leak@k of the sampling attack, and the share of
/// forgetting each row keeps under each attack, as Markdown sections (empty without attacks).
/// A judge only judges the sampling attack's answers: naming one without `--attack sample` is
/// a mistake worth stopping for.
pub(crate) fn check_judge(attacks: &AttackSpec, judge: Option<&Choice<'_>>) -> Result<(), Failure> {
    match judge {
        Some(j) if !attacks.attacks.contains(&Attack::Sample) => Err(Failure::input(anyhow!(
            "--judge {}: a judge decides which sampled answers leak; add --attack sample",
            j.plugin.manifest.name
        ))),
        _ => Ok(()),
    }
}

fn attack_sections(
    df: &lethe_reports::DataFrame,
    columns: &[ColumnSpec],
    primary: Option<&(ColumnSpec, bool)>,
    suite: &Suite,
    spec: &RunSpec<'_>,
) -> Result<String, Failure> {
    let mut md = String::new();
    let mut board_attacks = Vec::new();
    let plugin_attacks = spec
        .attack_methods
        .iter()
        .map(|a| format!("method:{}", a.plugin.manifest.name))
        .chain(
            spec.attack_queries
                .iter()
                .map(|a| format!("query:{}", a.plugin.manifest.name)),
        );
    for name in plugin_attacks {
        let b = lethe_reports::leaderboard_under(df, columns, &name)?;
        md.push_str(&format!(
            "\n## Under attack: {name}\n\n{}",
            b.to_markdown(3)
        ));
        board_attacks.push(name);
    }
    for attack in &spec.attacks.attacks {
        if *attack == Attack::Sample {
            let n = spec.attacks.samples;
            let leak_columns: Vec<ColumnSpec> = suite
                .splits
                .iter()
                .filter(|s| s.role.evaluated())
                .flat_map(|s| {
                    let mut ks = vec![1, n];
                    ks.dedup();
                    ks.into_iter().map(|k| ColumnSpec {
                        metric: lethe_pipeline::LEAK_METRIC.to_owned(),
                        output: format!("leak@{k}"),
                        split: s.name.clone(),
                    })
                })
                .collect();
            let b = lethe_reports::leaderboard_under(df, &leak_columns, attack.name())?;
            md.push_str(&format!(
                "\n## Under attack: sample ({n} answers per question at temperature {})\n\n{}",
                spec.attacks.temperature,
                b.to_markdown(3)
            ));
            continue;
        }
        let b = lethe_reports::leaderboard_under(df, columns, attack.name())?;
        md.push_str(&format!(
            "\n## Under attack: {attack}\n\n{}",
            b.to_markdown(3)
        ));
        board_attacks.push(attack.name().to_owned());
    }
    if let (Some((column, higher)), false) = (primary, board_attacks.is_empty()) {
        let r = lethe_reports::robustness(
            df,
            column,
            *higher,
            &board_attacks,
            "target",
            &["base"],
            1e-6,
        )?;
        md.push_str(&format!(
            "\n## Robustness: share of forgetting kept\n\n(target under attack − row under \
             attack) / (target − row), clean, on {}: 1 = the row stays as far from the target \
             as it was, 0 = the attack brings it level with the target attacked alike.\n\n{}",
            column.header(true),
            r.to_markdown(2)
        ));
    }
    Ok(md)
}

/// The attacks of a run, from its options.
pub(crate) fn attack_spec(
    args: &RunArgs,
    settings: &PresetSettings,
) -> Result<AttackSpec, Failure> {
    let source = match args.relearn_from.as_str() {
        "forget" => RelearnSource::Forget,
        other => {
            let related = other
                .strip_prefix("group:")
                .map(|rest| match rest.split_once('@') {
                    Some((key, split)) => (key, Some(split)),
                    None => (rest, None),
                });
            match related {
                Some((key, split)) if !key.is_empty() && split != Some("") => {
                    RelearnSource::Related {
                        key: key.to_owned(),
                        split: split.map(str::to_owned),
                    }
                }
                _ => {
                    return Err(Failure::input(anyhow!(
                        "--relearn-from '{other}' is neither 'forget' nor 'group:KEY' nor \
                         'group:KEY@SPLIT'"
                    )));
                }
            }
        }
    };
    let mut attacks: Vec<Attack> = args
        .attacks
        .iter()
        .map(|a| match a {
            AttackArg::Relearn => Attack::Relearn,
            AttackArg::Quant8 => Attack::Quant8,
            AttackArg::Quant4 => Attack::Quant4,
            AttackArg::Nf4 => Attack::Nf4,
            AttackArg::Paraphrase => Attack::Paraphrase,
            AttackArg::FewShot => Attack::FewShot,
            AttackArg::Jailbreak => Attack::Jailbreak,
            AttackArg::Sample => Attack::Sample,
        })
        .collect();
    attacks.sort();
    attacks.dedup();
    Ok(AttackSpec {
        attacks,
        relearn: RelearnSettings {
            source,
            share: args.relearn_share,
            epochs: args.relearn_epochs,
            learning_rate: args.relearn_lr,
            batch_size: settings.unlearn.batch_size as usize,
        },
        few_shot: args.few_shot,
        quant_group: args.quant_group,
        samples: args.samples,
        temperature: args.sample_temperature,
    })
}

/// `lethe run`.
/// What every run command shares: validated options, the plugin host, the installed plugins
/// and the model cache.
pub(crate) struct Setup {
    /// The preset's settings, with the unlearning options applied.
    pub settings: PresetSettings,
    /// Plugin configurations by name.
    pub configs: BTreeMap<String, serde_json::Value>,
    /// The sandbox.
    pub host: PluginHost,
    /// Built-in plugins and those of --plugin-dir.
    pub catalog: Catalog,
    /// Components given with --plugin.
    pub extra: Vec<lethe_runtime::Plugin>,
    /// The model cache.
    pub cache: ModelCache,
}

/// Check the options every run shares and load the plugins; nothing is written.
pub(crate) fn setup(args: &RunArgs) -> Result<Setup, Failure> {
    let mut settings = preset(args.preset, args.seed);
    if let Some(e) = args.unlearn_epochs {
        settings.unlearn.epochs = e;
    }
    if let Some(lr) = args.unlearn_lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Failure::input(anyhow!(
                "--unlearn-lr must be a positive number, not {lr}"
            )));
        }
        settings.unlearn.learning_rate = lr;
    }
    for given in &args.unlearn_lr_for {
        let parsed = given
            .split_once('=')
            .and_then(|(name, lr)| Some((name.trim(), lr.trim().parse::<f64>().ok()?)));
        match parsed {
            Some((name, lr)) if !name.is_empty() && lr.is_finite() && lr > 0.0 => {
                settings
                    .unlearn
                    .method_learning_rates
                    .insert(name.to_owned(), lr);
            }
            _ => {
                return Err(Failure::input(anyhow!(
                    "--unlearn-lr-for '{given}' is not NAME=LR with a positive LR"
                )));
            }
        }
    }
    if !(args.plugin_timeout.is_finite() && args.plugin_timeout > 0.0) {
        return Err(Failure::input(anyhow!("--plugin-timeout must be positive")));
    }
    let configs = parse_configs(&args.configs)?;
    if args.out.exists() && !args.out.join("run.json").exists() {
        return Err(Failure::input(anyhow!(
            "--out {} exists and is not a lethe result folder; not overwriting it",
            args.out.display()
        )));
    }
    if let Some(dir) = &args.model {
        settings.learn.checkpoint = Some(Checkpoint::open(dir).map_err(Failure::input)?);
    }
    let host = PluginHost::new(Limits {
        fuel: args.fuel,
        memory_bytes: args.plugin_memory_mib << 20,
        guest_timeout: Duration::from_secs_f64(args.plugin_timeout),
        ..Limits::default()
    })?;
    let catalog = Catalog::load(&host, args.plugin_dir.as_deref())?;
    let mut extra = Vec::new();
    for file in &args.plugins {
        extra.push(load_file(&host, file)?);
    }
    let cache = ModelCache::new(if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(default_cache_dir)
    });
    Ok(Setup {
        settings,
        configs,
        host,
        catalog,
        extra,
        cache,
    })
}

/// The plugins a run names, beyond its methods and metrics: attacks written as plugins.
#[derive(Default)]
pub(crate) struct AttackNames<'n> {
    /// `--attack-method`: method plugins used as model attacks.
    pub methods: &'n [String],
    /// `--attack-query`: query-attack plugins.
    pub queries: &'n [String],
    /// `--judge`: the judge plugin of the sampling attack.
    pub judge: Option<&'n str>,
}

impl<'n> AttackNames<'n> {
    /// The attack plugins `args` names.
    pub fn of(args: &'n RunArgs) -> Self {
        Self {
            methods: &args.attack_methods,
            queries: &args.attack_queries,
            judge: args.judge.as_deref(),
        }
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.methods.iter().chain(self.queries)
    }
}

/// The methods and metrics of a run, by name, plus every --plugin component, each with its
/// configuration validated. A configuration for a plugin not in the run is an error.
pub(crate) fn select<'a>(
    setup: &'a Setup,
    method_names: &[String],
    metric_names: &[String],
    attack_names: &AttackNames<'_>,
) -> Result<Selection<'a>, Failure> {
    let mut methods = Vec::new();
    let mut metrics = Vec::new();
    let configured = |plugin: &'a lethe_runtime::Plugin| -> Result<Choice<'a>, Failure> {
        let config = setup
            .configs
            .get(&plugin.manifest.name)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        // A bad configuration is the user's mistake: stop before anything trains.
        setup
            .host
            .validate_config(plugin, &config)
            .map_err(Failure::input)?;
        Ok(Choice { plugin, config })
    };
    // An attack plugin comes from --plugin when one has the name, else from those installed.
    let named = |flag: &str, name: &str, kind: PluginKind| -> Result<Choice<'a>, Failure> {
        let plugin = match setup.extra.iter().find(|p| p.manifest.name == name) {
            Some(p) if p.manifest.kind == kind => p,
            Some(p) => {
                return Err(Failure::input(anyhow!(
                    "{flag} {name}: {} is a {}, not a {kind}",
                    p.label(),
                    p.manifest.kind
                )));
            }
            None => setup.catalog.find(name, kind)?,
        };
        configured(plugin)
    };
    let mut attacks = Vec::new();
    for name in attack_names.methods.iter().filter(|n| !n.is_empty()) {
        attacks.push(named("--attack-method", name, PluginKind::Method)?);
    }
    let mut queries = Vec::new();
    for name in attack_names.queries.iter().filter(|n| !n.is_empty()) {
        queries.push(named("--attack-query", name, PluginKind::QueryAttack)?);
    }
    let mut judge = match attack_names.judge {
        Some(name) => Some(named("--judge", name, PluginKind::Judge)?),
        None => None,
    };
    for name in method_names.iter().filter(|n| !n.is_empty()) {
        methods.push(configured(setup.catalog.find(name, PluginKind::Method)?)?);
    }
    for name in metric_names.iter().filter(|n| !n.is_empty()) {
        metrics.push(configured(setup.catalog.find(name, PluginKind::Metric)?)?);
    }
    // Every other --plugin runs by what it exports.
    let judge_name = judge.as_ref().map(|c| c.plugin.manifest.name.clone());
    for p in setup.extra.iter().filter(|p| {
        !attack_names.names().any(|n| n == &p.manifest.name)
            && judge_name.as_ref() != Some(&p.manifest.name)
    }) {
        let c = configured(p)?;
        match p.manifest.kind {
            PluginKind::Method => methods.push(c),
            PluginKind::Metric => metrics.push(c),
            PluginKind::QueryAttack => queries.push(c),
            PluginKind::Judge => {
                if let Some(other) = &judge {
                    return Err(Failure::input(anyhow!(
                        "--plugin {}: a run has one judge, and {} is already it",
                        p.source,
                        other.plugin.label()
                    )));
                }
                judge = Some(c);
            }
        }
    }
    for name in setup.configs.keys() {
        let used = methods
            .iter()
            .chain(metrics.iter())
            .chain(attacks.iter())
            .chain(queries.iter())
            .chain(judge.iter())
            .any(|c| &c.plugin.manifest.name == name);
        if !used {
            return Err(Failure::input(anyhow!(
                "--config {name}: no such plugin in this run"
            )));
        }
    }
    for name in setup.settings.unlearn.method_learning_rates.keys() {
        if !methods
            .iter()
            .chain(attacks.iter())
            .any(|c| &c.plugin.manifest.name == name)
        {
            return Err(Failure::input(anyhow!(
                "--unlearn-lr-for {name}: no such method in this run"
            )));
        }
    }
    if metrics.is_empty() {
        return Err(Failure::input(anyhow!("no metrics to compute")));
    }
    Ok(Selection {
        methods,
        metrics,
        attacks,
        queries,
        judge,
    })
}

/// The plugins of a run.
pub(crate) struct Selection<'a> {
    /// Unlearning methods, in leaderboard order.
    pub methods: Vec<Choice<'a>>,
    /// Metrics.
    pub metrics: Vec<Choice<'a>>,
    /// Method plugins used as model attacks.
    pub attacks: Vec<Choice<'a>>,
    /// Query-attack plugins.
    pub queries: Vec<Choice<'a>>,
    /// The judge plugin of the sampling attack.
    pub judge: Option<Choice<'a>>,
}

/// The default methods and metrics of a plain run.
const DEFAULT_METHODS: [&str; 2] = ["ga", "graddiff"];
const DEFAULT_METRICS: [&str; 2] = ["rouge", "probability"];

fn names(given: &Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    given
        .clone()
        .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect())
}

/// `lethe run`.
pub fn run(args: RunArgs, verbose: u8) -> Result<ExitCode, Failure> {
    if let Some(protocol) = args.protocol {
        return crate::protocol::run(protocol, &args, verbose);
    }
    let setup = setup(&args)?;
    let settings = &setup.settings;
    let suite = match &args.suite {
        Some(dir) => Suite::load(dir).map_err(Failure::input)?,
        None => authors(&settings.suite).map_err(Failure::input)?,
    };
    let attacks = attack_spec(&args, settings)?;
    attacks.validate(&suite).map_err(Failure::input)?;
    let Selection {
        methods,
        metrics,
        attacks: attack_methods,
        queries: attack_queries,
        judge,
    } = select(
        &setup,
        &names(&args.methods, &DEFAULT_METHODS),
        &names(&args.metrics, &DEFAULT_METRICS),
        &AttackNames::of(&args),
    )?;
    check_judge(&attacks, judge.as_ref())?;

    let columns: Vec<ColumnSpec> = metrics
        .iter()
        .filter_map(|c| {
            c.plugin
                .manifest
                .outputs
                .first()
                .map(|o| (c.plugin.manifest.name.clone(), o.name.clone()))
        })
        .flat_map(|(metric, output)| {
            suite
                .splits
                .iter()
                .filter(|s| s.role.evaluated())
                .map(move |s| ColumnSpec {
                    metric: metric.clone(),
                    output: output.clone(),
                    split: s.name.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect();

    // The column robustness is summarised on: the first metric's first output on the forget
    // split, read in the direction its manifest declares.
    let primary = metrics.first().and_then(|c| {
        let out = c.plugin.manifest.outputs.first()?;
        let forget = suite.splits_with(SplitRole::Forget).next()?;
        let higher = match out.reading {
            Reading::HigherKnows | Reading::HigherBetter => true,
            Reading::LowerKnows | Reading::LowerBetter => false,
        };
        Some((
            ColumnSpec {
                metric: c.plugin.manifest.name.clone(),
                output: out.name.clone(),
                split: forget.name.clone(),
            },
            higher,
        ))
    });
    let spec = RunSpec {
        suite: &suite,
        learn: settings.learn.clone(),
        unlearn: settings.unlearn.clone(),
        observe: settings.observe.clone(),
        methods,
        metrics,
        attacks,
        attack_methods,
        attack_queries,
        judge,
        seed: args.seed,
    };
    let bars = Bars::new(verbose > 0);
    let output = lethe_pipeline::run(&spec, &setup.host, &setup.cache, &bars)?;

    let mut df = lethe_reports::results_frame(&output.rows)?;
    let board = lethe_reports::leaderboard(&df, &columns)?;
    let mut markdown = board.to_markdown(3);
    markdown.push_str(&attack_sections(
        &df,
        &columns,
        primary.as_ref(),
        &suite,
        &spec,
    )?);
    let scratch = tempfile::tempdir()?;
    let parquet = scratch.path().join("results.parquet");
    lethe_reports::write_parquet(&mut df, &parquet)?;
    let csv = scratch.path().join("leaderboard.csv");
    board.write_csv(&csv)?;
    let header = format!(
        "# Lethe leaderboard\n\nsuite {} · model {} parameters · seed {} · {} unlearning steps · run {}\n\n",
        output.info.suite,
        output.info.parameters,
        output.info.seed,
        output.info.unlearn_steps,
        output.info.run
    );
    let files = vec![
        ("results.parquet", fs_err::read(&parquet)?),
        ("leaderboard.csv", fs_err::read(&csv)?),
        ("leaderboard.md", format!("{header}{markdown}").into_bytes()),
        ("run.json", serde_json::to_vec_pretty(&output.info)?),
        (
            "failures.json",
            serde_json::to_vec_pretty(&output.failures)?,
        ),
        ("losses.json", serde_json::to_vec_pretty(&output.losses)?),
    ];
    write_outputs(&args.out, &files)?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{markdown}")?;
    writeln!(stdout, "results: {}", args.out.display())?;
    if output.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &output.failures {
            eprintln!("failed: {} ({}): {}", f.plugin, f.method, f.error);
        }
        Ok(ExitCode::from(1))
    }
}

/// `lethe suite check`.
pub fn suite_check(args: &SuiteCheckArgs) -> Result<ExitCode, Failure> {
    match Suite::load(&args.dir) {
        Ok(suite) => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "ok: {} {}@{}",
                args.dir.display(),
                suite.manifest.name,
                suite.manifest.version
            )?;
            // As wide as the longest split name ("forget-reasoning"), so the counts line up.
            let width = suite
                .splits
                .iter()
                .map(|s| s.name.chars().count())
                .max()
                .unwrap_or(0)
                .max(12);
            for s in &suite.splits {
                let who = if s.role.visible_to_methods() {
                    "methods may read"
                } else {
                    "evaluation only"
                };
                writeln!(
                    out,
                    "  {:<width$} {:>6} records  role {:?} ({who})",
                    s.name,
                    s.len(),
                    s.role
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Failure::input(e)),
    }
}

/// `lethe suite generate`.
pub fn suite_generate(args: &SuiteGenerateArgs) -> Result<ExitCode, Failure> {
    if args.out.exists() {
        return Err(Failure::input(anyhow!(
            "{} already exists",
            args.out.display()
        )));
    }
    let mllmu = matches!(
        args.kind,
        GeneratorKind::Privacy | GeneratorKind::WrongFacts
    );
    if args.forget_percent.is_some() && !mllmu {
        return Err(Failure::input(anyhow!(
            "--forget-percent applies to the privacy and wrong-facts generators only"
        )));
    }
    let suite = match args.kind {
        GeneratorKind::Privacy | GeneratorKind::WrongFacts => {
            crate::suites::generate_mllmu(args).map_err(Failure::input)?
        }
        GeneratorKind::Authors => {
            if args.patients.is_some() || !args.forget_category.is_empty() {
                return Err(Failure::input(anyhow!(
                    "--patients and --forget-category apply to the medical generator only"
                )));
            }
            let size = match args.preset {
                SuitePreset::Default => Preset::Default,
                SuitePreset::Tiny => Preset::Tiny,
                SuitePreset::Full => {
                    return Err(Failure::input(anyhow!(
                        "the authors generator has no full preset (use tiny or default)"
                    )));
                }
            };
            let mut config = preset(size, args.seed).suite;
            if let Some(share) = args.forget_share {
                config.forget_share = share;
            }
            authors(&config).map_err(Failure::input)?
        }
        GeneratorKind::Medical => {
            let mut config = match args.preset {
                SuitePreset::Default => MedicalConfig::default(),
                SuitePreset::Tiny => MedicalConfig::tiny(),
                SuitePreset::Full => MedicalConfig::amnesia_full(),
            };
            config.seed = args.seed;
            if let Some(n) = args.patients {
                config.patients = n;
            }
            if !args.forget_category.is_empty() {
                config.forget = ForgetSpec::Categories(args.forget_category.clone());
            } else if let Some(share) = args.forget_share {
                config.forget = ForgetSpec::Patients { share };
            }
            medical(&config).map_err(Failure::input)?
        }
    };
    write_suite(&suite, &args.out)
}

/// `lethe suite import tofu`.
pub fn suite_import(args: &SuiteImportArgs) -> Result<ExitCode, Failure> {
    if args.out.exists() {
        return Err(Failure::input(anyhow!(
            "{} already exists",
            args.out.display()
        )));
    }
    let suite =
        lethe_suites::import::tofu(&args.from, args.forget_percent).map_err(Failure::input)?;
    write_suite(&suite, &args.out)
}

/// Write a suite folder and say what it holds.
pub(crate) fn write_suite(suite: &Suite, out: &Path) -> Result<ExitCode, Failure> {
    suite
        .write(out)
        .with_context(|| format!("writing {}", out.display()))?;
    let counts: Vec<String> = suite
        .splits
        .iter()
        .map(|s| format!("{} {}", s.name, s.len()))
        .collect();
    println!("wrote {} ({})", out.display(), counts.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// `lethe suite schema`: the JSON Schemas of `suite.json` and of the two kinds of lines.
pub fn suite_schema() -> Result<ExitCode, Failure> {
    let schema = serde_json::json!({
        "suite.json": schemars::schema_for!(lethe_suites::SuiteManifest),
        "question line": schemars::schema_for!(lethe_suites::QaRecord),
        "text line": schemars::schema_for!(lethe_suites::TextRecord),
    });
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
