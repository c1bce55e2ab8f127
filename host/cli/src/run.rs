//! What `lethe run` and `lethe plan` share (presets, options, the plugins a run
//! selects), and the suite commands.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use lethe_experiment::PresetSettings;
use lethe_manifest::PluginKind;
use lethe_pipeline::{Attack, AttackSpec, Checkpoint, Choice, ModelCache};
use lethe_pipeline::{QuantScope, RelearnSettings, RelearnSource};
use lethe_runtime::{Limits, PluginHost};
use lethe_suites::Suite;
use lethe_suites::generate::{ForgetSpec, MedicalConfig, authors, medical};

use crate::Failure;
use crate::args::{
    AttackArg, GeneratorKind, LoraStage, ModelInitArgs, Preset, QuantScopeArg, RunArgs,
    RuntimeArgs, SuiteCheckArgs, SuiteGenerateArgs, SuiteImportArgs, SuitePreset,
};
use crate::catalog::{Catalog, load_file};

/// The library's preset for the CLI's choice.
pub(crate) fn library_preset(p: Preset) -> lethe_experiment::Preset {
    match p {
        Preset::Default => lethe_experiment::Preset::Default,
        Preset::Tiny => lethe_experiment::Preset::Tiny,
    }
}

/// The settings of the CLI's preset.
pub(crate) fn preset(p: Preset, seed: u64, suite_seed: u64) -> PresetSettings {
    library_preset(p).settings(seed, suite_seed)
}

pub(crate) fn default_cache_dir() -> Option<PathBuf> {
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
            AttackArg::Quant4Asym => Attack::Quant4Asym,
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
            min_steps: args.relearn_min_steps,
            learning_rate: args.relearn_lr.unwrap_or(
                lethe_pipeline::attack::RELEARN_LR_PER_FINETUNE_LR
                    * settings.learn.finetune.learning_rate,
            ),
            batch_size: settings.unlearn.batch_size as usize,
        },
        few_shot: args.few_shot,
        quant_group: args.quant_group,
        quant_scope: match args.quant_scope {
            QuantScopeArg::DecoderLinear => QuantScope::DecoderLinear,
            QuantScopeArg::All => QuantScope::All,
        },
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
pub(crate) fn setup(args: &RunArgs, seed: u64) -> Result<Setup, Failure> {
    let mut settings = preset(args.preset, seed, args.suite_seed);
    if let Some(e) = args.unlearn_epochs {
        settings.unlearn.epochs = e;
    }
    for &lr in &args.unlearn_lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Failure::input(anyhow!(
                "--unlearn-lr must be a positive number, not {lr}"
            )));
        }
    }
    if let [lr] = args.unlearn_lr[..] {
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
    let configs = parse_configs(&args.configs)?;
    if args.out.exists()
        && !args.out.join("run.json").exists()
        && !args.out.join("plan.jsonl").exists()
    {
        return Err(Failure::input(anyhow!(
            "--out {} exists and is not a lethe result folder; not overwriting it",
            args.out.display()
        )));
    }
    if let Some(rank) = args.lora_rank {
        let mut lora = lethe_model::LoraSettings::all_linear(rank);
        if let Some(alpha) = args.lora_alpha {
            lora.alpha = alpha;
        }
        if let Some(scale) = args.lora_lr_scale {
            lora.learning_rate_scale = scale;
        }
        if !args.lora_targets.is_empty() {
            lora.targets = args
                .lora_targets
                .iter()
                .map(|t| t.trim().to_owned())
                .collect();
        }
        let stages = match args.lora_for.as_slice() {
            [] => &[LoraStage::Finetune, LoraStage::Unlearn][..],
            given => given,
        };
        if stages.contains(&LoraStage::Finetune) {
            settings.learn.lora = Some(lora.clone());
        }
        if stages.contains(&LoraStage::Unlearn) {
            settings.unlearn.lora = Some(lora.clone());
        }
        // Checked against the model's shape before anything trains (a checkpoint's below,
        // from its config.json).
        if args.model.is_none() {
            let cfg = settings.learn.preset.config(settings.learn.vocab_size);
            lora.check(&cfg)
                .map_err(|e| Failure::input(anyhow!("--lora-rank/--lora-targets: {e}")))?;
        }
    }
    if let Some(dir) = &args.model {
        let c = Checkpoint::open_with(
            dir,
            settings.learn.lora.as_ref(),
            settings.unlearn.lora.as_ref(),
        )
        .map_err(Failure::input)?;
        settings.learn.checkpoint = Some(c);
    }
    // Only the built-ins the run names are compiled (a protocol names its own).
    let (default_methods, default_metrics) = defaults(args);
    let mut wanted = names(&args.methods, &default_methods);
    wanted.extend(names(&args.metrics, &default_metrics));
    wanted.extend(args.attack_methods.iter().cloned());
    wanted.extend(args.attack_queries.iter().cloned());
    wanted.extend(args.judge.iter().cloned());
    let (host, catalog, cache) = runtime(&args.runtime, Some(&wanted))?;
    let mut extra = Vec::new();
    for file in &args.plugins {
        extra.push(load_file(&host, file)?);
    }
    Ok(Setup {
        settings,
        configs,
        host,
        catalog,
        extra,
        cache,
    })
}

/// The sandbox, the installed plugins and the model cache, from the execution options.
pub(crate) fn runtime(
    rt: &RuntimeArgs,
    wanted: Option<&[String]>,
) -> Result<(PluginHost, Catalog, ModelCache), Failure> {
    if !(rt.plugin_timeout.is_finite() && rt.plugin_timeout > 0.0) {
        return Err(Failure::input(anyhow!("--plugin-timeout must be positive")));
    }
    let host = PluginHost::new(Limits {
        fuel: rt.fuel,
        memory_bytes: rt.plugin_memory_mib << 20,
        timeout: Duration::from_secs_f64(rt.plugin_timeout),
        max_live_bytes: rt.plugin_tensor_mib.saturating_mul(1 << 20),
        max_log_bytes: rt.plugin_log_kib.saturating_mul(1 << 10),
        ..Limits::default()
    })?;
    let catalog = Catalog::load_named(&host, rt.plugin_dir.as_deref(), wanted)?;
    let cache = ModelCache::new(if rt.no_cache {
        None
    } else {
        rt.cache_dir.clone().or_else(default_cache_dir)
    });
    Ok((host, catalog, cache))
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
        Ok(Choice {
            plugin,
            config,
            label: None,
        })
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
    // A method or metric named in --methods / --metrics comes from --plugin when one of that
    // kind has the name, else from those installed; it then runs once, in the order named.
    let given = |name: &str, kind: PluginKind| {
        setup
            .extra
            .iter()
            .find(|p| p.manifest.name == name && p.manifest.kind == kind)
    };
    for name in method_names.iter().filter(|n| !n.is_empty()) {
        let plugin = match given(name, PluginKind::Method) {
            Some(p) => p,
            None => setup.catalog.find(name, PluginKind::Method)?,
        };
        methods.push(configured(plugin)?);
    }
    for name in metric_names.iter().filter(|n| !n.is_empty()) {
        let plugin = match given(name, PluginKind::Metric) {
            Some(p) => p,
            None => setup.catalog.find(name, PluginKind::Metric)?,
        };
        metrics.push(configured(plugin)?);
    }
    // Every other --plugin runs by what it exports.
    let judge_name = judge.as_ref().map(|c| c.plugin.manifest.name.clone());
    let named_already = |p: &lethe_runtime::Plugin| match p.manifest.kind {
        PluginKind::Method => method_names.contains(&p.manifest.name),
        PluginKind::Metric => metric_names.contains(&p.manifest.name),
        _ => false,
    };
    for p in setup.extra.iter().filter(|p| {
        !attack_names.names().any(|n| n == &p.manifest.name)
            && judge_name.as_ref() != Some(&p.manifest.name)
            && !named_already(p)
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
pub(crate) const DEFAULT_METHODS: [&str; 2] = ["ga", "graddiff"];
pub(crate) const DEFAULT_METRICS: [&str; 2] = ["rouge", "probability"];

/// The methods and metrics a run has unless it names its own: the protocols' (all of them,
/// for several), or Lethe's defaults.
pub(crate) fn defaults(args: &RunArgs) -> (Vec<&'static str>, Vec<&'static str>) {
    if args.protocol.is_empty() {
        return (DEFAULT_METHODS.to_vec(), DEFAULT_METRICS.to_vec());
    }
    let mut methods: Vec<&'static str> = Vec::new();
    let mut metrics: Vec<&'static str> = Vec::new();
    for p in &args.protocol {
        let p = p.protocol();
        for m in p.methods() {
            if !methods.contains(m) {
                methods.push(m);
            }
        }
        for m in p.metrics() {
            if !metrics.contains(m) {
                metrics.push(m);
            }
        }
    }
    (methods, metrics)
}

pub(crate) fn names(given: &Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    given
        .clone()
        .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect())
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

/// `lethe model init`: a checkpoint of the asked shape, its tokenizer trained on a suite.
pub fn model_init(args: &ModelInitArgs) -> Result<ExitCode, Failure> {
    let suite = match &args.suite {
        Some(dir) => Suite::load(dir).map_err(Failure::input)?,
        None => authors(&preset(Preset::Default, 0, 0).suite).map_err(Failure::input)?,
    };
    let shape = lethe_pipeline::Shape {
        hidden_size: args.hidden_size,
        intermediate_size: args.intermediate_size,
        layers: args.layers,
        heads: args.heads,
        kv_heads: args.kv_heads,
        vocab_size: args.vocab_size,
        max_positions: args.max_positions,
    };
    let cfg = lethe_pipeline::init_checkpoint(&suite, &shape, args.seed, &args.out)
        .map_err(Failure::input)?;
    println!(
        "wrote {}: {} parameters ({} layers, hidden {}, MLP {}, {} heads / {} key-value, \
         vocabulary {})",
        args.out.display(),
        lethe_pipeline::learn::parameter_count(&cfg),
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.vocab_size
    );
    Ok(ExitCode::SUCCESS)
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
            let mut config = preset(size, 0, args.seed).suite;
            if let Some(share) = args.forget_share {
                config.forget_share = share;
            }
            authors(&config).map_err(Failure::input)?
        }
        GeneratorKind::News => {
            if args.patients.is_some() || !args.forget_category.is_empty() {
                return Err(Failure::input(anyhow!(
                    "--patients and --forget-category apply to the medical generator only"
                )));
            }
            let mut config = match args.preset {
                SuitePreset::Default => lethe_suites::generate::NewsConfig::default(),
                SuitePreset::Tiny => lethe_suites::generate::NewsConfig::tiny(),
                SuitePreset::Full => {
                    return Err(Failure::input(anyhow!(
                        "the news generator has no full preset (use tiny or default)"
                    )));
                }
            };
            config.seed = args.seed;
            if let Some(share) = args.forget_share {
                config.forget_share = share;
            }
            lethe_suites::generate::news(&config).map_err(Failure::input)?
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

/// `lethe suite import muse`.
pub fn suite_import_muse(args: &crate::args::MuseImportArgs) -> Result<ExitCode, Failure> {
    if args.out.exists() {
        return Err(Failure::input(anyhow!(
            "{} already exists",
            args.out.display()
        )));
    }
    let suite = lethe_suites::import::muse(&args.from).map_err(Failure::input)?;
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
    let schema = lethe_suites::schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
