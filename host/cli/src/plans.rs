//! `lethe run`, `lethe plan`, `lethe exec`, `lethe report`, `lethe slurm`, `lethe k8s`: the
//! options become a plan (the experiment crate's data), jobs run into shards, shards merge into
//! a report. This module parses and renders; the work is in `lethe-experiment`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::anyhow;
use lethe_experiment::exec::{ExecSummary, JobEnv, ShardState, Shards};
use lethe_experiment::plan::Plan;
use lethe_experiment::report::{self, Report};
use lethe_experiment::request::{GridAxis, PlanRequest, PlannedSuite};
use lethe_experiment::schedulers::{self, K8sOptions, SlurmOptions, TaskCommand};
use lethe_experiment::{ExperimentError, ModelSource, PluginRef, SuiteSource};
use lethe_manifest::Reading;
use lethe_pipeline::Choice;
use lethe_runtime::Plugin;
use lethe_suites::Suite;

use crate::Failure;
use crate::args::{
    ExecArgs, K8sArgs, ReportArgs, RunArgs, RunCmd, RuntimeArgs, SchedulerArgs, SlurmArgs,
};
use crate::catalog::{Catalog, load_file};
use crate::progress::{duration, reporter};
use crate::run::{
    AttackNames, DEFAULT_METHODS, DEFAULT_METRICS, Selection, Setup, attack_spec, check_judge,
    library_preset, names, select, setup,
};

/// An experiment error with the exit status it deserves (2 for bad input).
pub(crate) fn failure(e: ExperimentError) -> Failure {
    if e.is_input() {
        Failure::input(e)
    } else {
        Failure::from(e)
    }
}

pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

pub(crate) fn plugin_ref(c: &Choice<'_>) -> PluginRef {
    let p = c.plugin;
    PluginRef {
        name: p.manifest.name.clone(),
        kind: p.manifest.kind,
        sha256: p.sha256.clone(),
        config: c.config.clone(),
        file: (!p.source.starts_with("builtin:")).then(|| absolute(Path::new(&p.source))),
    }
}

/// What a plan's request shares across protocols: the options that are not per protocol.
struct Common {
    seeds: Vec<u64>,
    attacks: lethe_pipeline::AttackSpec,
    model: Option<ModelSource>,
    learn: lethe_pipeline::LearnSpec,
    grid: Vec<GridAxis>,
}

/// The request for one plan over `suites`, with the methods and metrics named.
fn request(
    setup: &Setup,
    args: &RunArgs,
    common: &Common,
    title: &str,
    suites: Vec<PlannedSuite>,
    methods: &[String],
    metrics: &[String],
) -> Result<PlanRequest, Failure> {
    let Selection {
        methods,
        metrics,
        attacks: attack_methods,
        queries,
        judge,
    } = select(setup, methods, metrics, &AttackNames::of(args))?;
    check_judge(&common.attacks, judge.as_ref())?;
    let settings = &setup.settings;
    Ok(PlanRequest {
        title: title.into(),
        suites,
        model: common.model.clone(),
        learn: common.learn.clone(),
        unlearn: settings.unlearn.clone(),
        unlearn_lrs: if args.unlearn_lr.len() > 1 {
            args.unlearn_lr.clone()
        } else {
            Vec::new()
        },
        observe: settings.observe.clone(),
        grid: common
            .grid
            .iter()
            .filter(|g| methods.iter().any(|m| m.plugin.manifest.name == g.method))
            .cloned()
            .collect(),
        methods: methods.iter().map(plugin_ref).collect(),
        metrics: metrics.iter().map(plugin_ref).collect(),
        attacks: common.attacks.clone(),
        attack_methods: attack_methods.iter().map(plugin_ref).collect(),
        attack_queries: queries.iter().map(plugin_ref).collect(),
        judge: judge.as_ref().map(plugin_ref),
        seeds: common.seeds.clone(),
        tables: Vec::new(),
    })
}

/// The learn stage of a plan's jobs (the checkpoint moved to the jobs' `model`) from the
/// preset and the finetuning options; `replay` is 0 unless given.
pub(crate) fn learn_and_model(
    args: &RunArgs,
    setup: &Setup,
) -> Result<(lethe_pipeline::LearnSpec, Option<ModelSource>), Failure> {
    let model = setup
        .settings
        .learn
        .checkpoint
        .as_ref()
        .map(|c| ModelSource {
            path: absolute(&c.path),
            sha256: c.sha256.clone(),
        });
    let mut learn = setup.settings.learn.clone();
    learn.checkpoint = None;
    if let Some(r) = args.finetune_replay
        && !(r.is_finite() && r >= 0.0)
    {
        return Err(Failure::input(anyhow::anyhow!(
            "--finetune-replay {r}: a share of the finetuning questions, at least 0"
        )));
    }
    learn.replay = args.finetune_replay.unwrap_or(0.0);
    if let Some(t) = args.finetune_tokens {
        learn.finetune.token_budget = (t > 0).then_some(t);
    }
    Ok((learn, model))
}

/// The plan of `lethe run` / `lethe plan` options, checked against what is installed; and the
/// setup it was made with (for running it in the same process).
pub(crate) fn make_plan(args: &RunArgs) -> Result<(Plan, Setup), Failure> {
    let seeds = args.seed_list().map_err(failure)?;
    let mut setup = setup(args, seeds[0])?;
    let (learn, model) = learn_and_model(args, &setup)?;
    let user_eval_first = eval_subsets(&args.eval_first)?;
    setup.settings.observe.eval_first = user_eval_first.clone();
    let mut common = Common {
        seeds,
        attacks: attack_spec(args, &setup.settings)?,
        model,
        learn,
        grid: args
            .grid
            .iter()
            .map(|g| GridAxis::parse(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failure)?,
    };
    if args.protocol.is_empty() {
        let mut suites = Vec::new();
        if args.suite.is_empty() {
            let config = setup.settings.suite.clone();
            let suite = lethe_suites::generate::authors(&config).map_err(Failure::input)?;
            common.attacks.validate(&suite).map_err(Failure::input)?;
            setup
                .settings
                .observe
                .check_subsets(&suite)
                .map_err(Failure::input)?;
            let digest = suite.digest();
            suites.push(SuiteSource::Authors { config, digest }.into());
        }
        for dir in &args.suite {
            let suite = Suite::load(dir).map_err(Failure::input)?;
            common.attacks.validate(&suite).map_err(Failure::input)?;
            setup
                .settings
                .observe
                .check_subsets(&suite)
                .map_err(Failure::input)?;
            suites.push(
                SuiteSource::Folder {
                    path: absolute(dir),
                    digest: suite.digest(),
                }
                .into(),
            );
        }
        let r = request(
            &setup,
            args,
            &common,
            "lethe run",
            suites,
            &names(&args.methods, &DEFAULT_METHODS),
            &names(&args.metrics, &DEFAULT_METRICS),
        )?;
        let plan = r.plan().map_err(failure)?;
        return Ok((plan, setup));
    }
    // Each protocol with its own methods, metrics and their settings; a user's options apply
    // to the protocols whose run has the plugin, and must apply to one.
    let user_configs = setup.configs.clone();
    let user_rates = setup.settings.unlearn.method_learning_rates.clone();
    let mut used: Vec<String> = Vec::new();
    let mut plans = Vec::new();
    let mut titles = Vec::new();
    for p in args.protocol.iter().map(|p| p.protocol()) {
        let methods = names(&args.methods, p.methods());
        let metrics = names(&args.metrics, p.metrics());
        let mut in_run: Vec<String> = methods.iter().chain(&metrics).cloned().collect();
        in_run.extend(args.attack_methods.iter().cloned());
        in_run.extend(args.attack_queries.iter().cloned());
        in_run.extend(args.judge.iter().cloned());
        in_run.extend(setup.extra.iter().map(|e| e.manifest.name.clone()));
        let mine = |name: &str| in_run.iter().any(|n| n == name);
        let mut configs = user_configs.clone();
        configs.retain(|name, _| mine(name));
        for (name, config) in p.configs() {
            if mine(name) {
                configs.entry(name.to_owned()).or_insert(config);
            }
        }
        let mut rates = user_rates.clone();
        rates.retain(|name, _| mine(name));
        for (name, lr) in p.learning_rates() {
            if mine(name) {
                rates.entry(name.to_owned()).or_insert(lr);
            }
        }
        setup.configs = configs;
        setup.settings.unlearn.method_learning_rates = rates;
        let mut suites = Vec::new();
        let found = p
            .suites(
                library_preset(args.preset),
                args.suite_seed,
                args.release.as_deref(),
            )
            .map_err(failure)?;
        for why in &found.left_out {
            eprintln!("note: {}: left out {why}", p.name());
        }
        // The benchmark's evaluation subsets, unless the user set the same split's.
        let mut eval_first = found.eval_first;
        eval_first.extend(user_eval_first.clone());
        setup.settings.observe.eval_first = eval_first;
        for (planned, suite) in found.suites {
            common.attacks.validate(&suite).map_err(Failure::input)?;
            setup
                .settings
                .observe
                .check_subsets(&suite)
                .map_err(Failure::input)?;
            suites.push(planned);
        }
        common.learn.replay = args.finetune_replay.unwrap_or(p.replay());
        let names: Vec<String> = suites.iter().filter_map(|s| s.name.clone()).collect();
        let mut r = request(&setup, args, &common, p.title(), suites, &methods, &metrics)?;
        // Tables show the suites planned (a release may lack some of a protocol's ratios).
        r.tables = p
            .tables()
            .into_iter()
            .filter_map(|mut t| {
                t.groups.retain(|g| names.contains(&g.suite));
                (!t.groups.is_empty()).then_some(t)
            })
            .collect();
        plans.push(r.plan().map_err(failure)?);
        titles.push(p.title());
        used.extend(in_run);
    }
    for name in user_configs.keys() {
        if !used.contains(name) {
            return Err(Failure::input(anyhow!(
                "--config {name}: no such plugin in this run"
            )));
        }
    }
    for name in user_rates.keys() {
        if !used.contains(name) {
            return Err(Failure::input(anyhow!(
                "--unlearn-lr-for {name}: no such method in this run"
            )));
        }
    }
    for g in &common.grid {
        if !used.contains(&g.method) {
            return Err(Failure::input(anyhow!(
                "--grid {}.{}: no method named '{}' in this run",
                g.method,
                g.key,
                g.method
            )));
        }
    }
    let plan = if plans.len() == 1 {
        plans.remove(0)
    } else {
        Plan::concat(titles.join(" + "), plans).map_err(failure)?
    };
    Ok((plan, setup))
}

/// Parse `--eval-first SPLIT=N` options.
pub(crate) fn eval_subsets(
    given: &[String],
) -> Result<std::collections::BTreeMap<String, usize>, Failure> {
    let mut out = std::collections::BTreeMap::new();
    for text in given {
        let bad =
            |why: &str| Failure::input(anyhow!("--eval-first '{text}': {why} (want SPLIT=N)"));
        let (split, n) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if n == 0 {
            return Err(bad("N must be at least 1"));
        }
        if out.insert(split.trim().to_owned(), n).is_some() {
            return Err(bad("the split is given twice"));
        }
    }
    Ok(out)
}

/// `run` and `plan` make the folder's plan theirs: say so when it replaces another.
pub(crate) fn replacing(shards: &Shards, plan: &Plan) -> Result<(), Failure> {
    if let Some(other) = shards.other_plan(plan).map_err(failure)? {
        eprintln!(
            "note: replacing the plan in {} ('{}', {} jobs); its shards stay, and jobs the new \
             plan shares with it are not run again",
            shards.dir().display(),
            other.title,
            other.jobs.len()
        );
    }
    Ok(())
}

/// `lethe plan`: write OUT/plan.jsonl.
pub fn plan(args: &RunArgs) -> Result<ExitCode, Failure> {
    let (plan, _) = make_plan(args)?;
    let shards = Shards::new(&args.out);
    replacing(&shards, &plan)?;
    shards.adopt(&plan).map_err(failure)?;
    println!(
        "wrote {} ({} jobs); run it with `lethe exec {}`",
        shards.plan_path().display(),
        plan.jobs.len(),
        shards.plan_path().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `lethe plan --schema`.
pub fn plan_schema() -> Result<ExitCode, Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(&lethe_experiment::plan::schema())?
    );
    Ok(ExitCode::SUCCESS)
}

/// The plan file and output folder an `exec`-like command names.
fn plan_and_out(plan: &Path, out: Option<&Path>) -> Result<(PathBuf, PathBuf, Plan), Failure> {
    let file = if plan.is_dir() {
        plan.join("plan.jsonl")
    } else {
        plan.to_owned()
    };
    if !file.exists() {
        return Err(Failure::input(anyhow!(
            "{}: no such plan file",
            file.display()
        )));
    }
    let parsed = Plan::read(&file).map_err(failure)?;
    let out = match out {
        Some(o) => o.to_owned(),
        None => file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned(),
    };
    Ok((file, out, parsed))
}

/// The job indices an `exec` selects.
fn selected(args: &ExecArgs, plan: &Plan) -> Result<Vec<usize>, Failure> {
    if let Some(i) = args.index {
        plan.range(i, i.saturating_add(1)).map_err(failure)?;
        return Ok(vec![i]);
    }
    if let Some(r) = &args.jobs {
        let (a, b) = r
            .split_once("..")
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .ok_or_else(|| Failure::input(anyhow!("--jobs '{r}' is not A..B")))?;
        return Ok(plan.range(a, b).map_err(failure)?.collect());
    }
    Ok((0..plan.jobs.len()).collect())
}

/// Built-in plugins, the plugin folder's, and every file the plan names.
fn plan_plugins(
    host: &lethe_runtime::PluginHost,
    plan: &Plan,
    indices: &[usize],
) -> Result<Vec<Plugin>, Failure> {
    let mut files: Vec<&Path> = Vec::new();
    for &i in indices {
        for p in plan.jobs[i].plugins() {
            if let Some(f) = p.file.as_deref().filter(|f| !files.contains(f)) {
                files.push(f);
            }
        }
    }
    files.iter().map(|f| load_file(host, f)).collect()
}

/// Run `indices` of a plan here, in this process or in `workers` worker processes.
#[allow(clippy::too_many_arguments)]
fn exec_here(
    plan_file: &Path,
    plan: &Plan,
    indices: &[usize],
    shards: &Shards,
    env: &JobEnv<'_>,
    workers: usize,
    runtime: &RuntimeArgs,
) -> Result<ExecSummary, Failure> {
    if workers <= 1 {
        return lethe_experiment::execute(plan, indices, shards, env).map_err(failure);
    }
    let mut summary = ExecSummary::default();
    let mut pending = Vec::new();
    for &i in indices {
        match plan.jobs.get(i).map(|j| shards.state(j)) {
            Some(ShardState::Complete(_)) => summary.skipped.push(i),
            _ => pending.push(i),
        }
    }
    // Everything is checked here before a worker starts, and before anything is written.
    lethe_experiment::exec::prepare(plan, &pending, env).map_err(failure)?;
    shards.adopt(plan).map_err(failure)?;
    let exe = std::env::current_exe()?;
    let logs = shards.dir().join("logs");
    fs_err::create_dir_all(&logs)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / workers).max(1);
    let flags = runtime.to_flags();
    let spawn = |i: usize| -> std::io::Result<std::process::Child> {
        let log = fs_err::File::create(logs.join(format!("{}.log", plan.jobs[i].id)))?;
        Command::new(&exe)
            .arg("exec")
            .arg(plan_file)
            .arg("--out")
            .arg(shards.dir())
            .arg("--index")
            .arg(i.to_string())
            .args(&flags)
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.into_parts().0)
            .spawn()
    };
    let describe = |i: usize| plan.jobs[i].describe();
    let ended =
        lethe_experiment::pool::run_workers(&pending, workers, &spawn, &describe, env.reporter);
    for end in ended {
        let job = &plan.jobs[end.index];
        match (&end.status, shards.state(job)) {
            (Ok(s), ShardState::Complete(rec)) if s.success() => {
                summary.ran.push(end.index);
                summary.plugin_failures += rec.failures.len();
            }
            (status, _) => {
                let log = logs.join(format!("{}.log", job.id));
                let tail = fs_err::read_to_string(&log)
                    .map(|t| {
                        let lines: Vec<&str> = t.lines().collect();
                        lines[lines.len().saturating_sub(5)..].join("\n    ")
                    })
                    .unwrap_or_default();
                let why = match status {
                    Ok(s) => format!("worker exited with {s}"),
                    Err(e) => e.clone(),
                };
                summary.errors.push((
                    end.index,
                    format!("{why} (log {}):\n    {tail}", log.display()),
                ));
            }
        }
    }
    Ok(summary)
}

fn print_summary(summary: &ExecSummary, shards: &Shards) {
    eprintln!(
        "exec: {} job(s) run, {} already complete, {} failed; shards in {}",
        summary.ran.len(),
        summary.skipped.len(),
        summary.errors.len(),
        shards.dir().join("jobs").display()
    );
    for (i, e) in &summary.errors {
        eprintln!("failed: job {i}: {e}");
    }
}

/// `lethe exec`.
pub fn exec(args: &ExecArgs, verbose: u8) -> Result<ExitCode, Failure> {
    let (file, out, plan) = plan_and_out(&args.plan, args.out.as_deref())?;
    Shards::new(&out)
        .require_same_plan(&plan)
        .map_err(failure)?;
    let indices = selected(args, &plan)?;
    let mut wanted: Vec<String> = Vec::new();
    for &i in &indices {
        wanted.extend(plan.jobs[i].plugins().iter().map(|p| p.name.clone()));
    }
    let (host, catalog, cache) = crate::run::runtime(&args.runtime, Some(&wanted))?;
    let extra = plan_plugins(&host, &plan, &indices)?;
    let plugins: Vec<&Plugin> = catalog.plugins.iter().chain(&extra).collect();
    let progress = reporter(verbose);
    let env = JobEnv {
        host: &host,
        plugins: &plugins,
        cache: &cache,
        reporter: &*progress,
    };
    let shards = Shards::new(&out);
    let summary = exec_here(
        &file,
        &plan,
        &indices,
        &shards,
        &env,
        args.workers,
        &args.runtime,
    )?;
    print_summary(&summary, &shards);
    // Plugin failures are results (recorded in the shards; `report` exits 1 for them): a
    // scheduler's dependent report step must still run.
    Ok(if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// How a metric output reads, from the installed plugins.
fn reading_from(catalog: &Catalog) -> impl Fn(&str, &str) -> Option<bool> + '_ {
    move |metric: &str, output: &str| {
        let p = catalog
            .plugins
            .iter()
            .rev()
            .find(|p| p.manifest.name == metric)?;
        let o = p.manifest.outputs.iter().find(|o| o.name == output)?;
        Some(matches!(
            o.reading,
            Reading::HigherKnows | Reading::HigherBetter
        ))
    }
}

fn finish_report(report: &Report, out: &Path) -> Result<ExitCode, Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", report.summary)?;
    writeln!(stdout, "results: {}", out.display())?;
    if report.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &report.failures {
            eprintln!("failed: {} ({}): {}", f.plugin, f.method, f.error);
        }
        Ok(ExitCode::from(1))
    }
}

/// `lethe report`.
pub fn report(args: &ReportArgs) -> Result<ExitCode, Failure> {
    let collected = report::collect(&args.dirs, args.partial).map_err(failure)?;
    for m in &collected.missing {
        eprintln!("warning: left out: {m}");
    }
    let host = lethe_runtime::PluginHost::new(lethe_runtime::Limits::default())?;
    let metrics: Vec<String> = collected
        .records
        .iter()
        .flat_map(|r| r.job.metrics.iter().map(|m| m.name.clone()))
        .collect();
    let catalog = Catalog::load_named(&host, args.plugin_dir.as_deref(), Some(&metrics))?;
    let report = report::build(&collected, &reading_from(&catalog)).map_err(failure)?;
    report::write(&args.out, &report).map_err(failure)?;
    finish_report(&report, &args.out)
}

/// `lethe run`: make the plan, run it here, report.
pub fn run(cmd: RunCmd, verbose: u8) -> Result<ExitCode, Failure> {
    let args = &cmd.args;
    let started = Instant::now();
    let (plan, setup) = make_plan(args)?;
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

/// Adopt `plan` in `out`, run its jobs here (in `workers` processes), report, and say where
/// the time went.
pub(crate) fn run_plan(
    plan: &Plan,
    setup: &Setup,
    out: &Path,
    runtime: &RuntimeArgs,
    workers: usize,
    verbose: u8,
    started: Instant,
) -> Result<ExitCode, Failure> {
    let shards = Shards::new(out);
    replacing(&shards, plan)?;
    shards.adopt(plan).map_err(failure)?;
    let plugins: Vec<&Plugin> = setup.catalog.plugins.iter().chain(&setup.extra).collect();
    let progress = reporter(verbose);
    let env = JobEnv {
        host: &setup.host,
        plugins: &plugins,
        cache: &setup.cache,
        reporter: &*progress,
    };
    let indices: Vec<usize> = (0..plan.jobs.len()).collect();
    let summary = exec_here(
        &shards.plan_path(),
        plan,
        &indices,
        &shards,
        &env,
        workers,
        runtime,
    )?;
    if !summary.errors.is_empty() {
        print_summary(&summary, &shards);
        return Err(Failure::from(anyhow!(
            "{} of {} jobs failed; run the same command again to retry them",
            summary.errors.len(),
            plan.jobs.len()
        )));
    }
    let collected = report::collect(&[out.to_owned()], false).map_err(failure)?;
    let report = report::build(&collected, &reading_from(&setup.catalog)).map_err(failure)?;
    report::write(out, &report).map_err(failure)?;
    eprintln!(
        "{} jobs ({} run now) in {}",
        plan.jobs.len(),
        summary.ran.len(),
        duration(started.elapsed())
    );
    let ran: Vec<String> = summary
        .ran
        .iter()
        .filter_map(|&i| plan.jobs.get(i).map(|j| j.id.clone()))
        .collect();
    let timings: Vec<_> = shards
        .timings(plan)
        .into_iter()
        .filter(|t| ran.contains(&t.job))
        .collect();
    if !timings.is_empty() {
        let parts: Vec<String> = lethe_experiment::exec::time_by_kind(&timings)
            .into_iter()
            .map(|(kind, s)| format!("{kind} {}", duration(std::time::Duration::from_secs_f64(s))))
            .collect();
        eprintln!(
            "time by stage: {} (per job and stage in {})",
            parts.join(" · "),
            shards.timings_dir().display()
        );
    }
    finish_report(&report, out)
}

/// The task command of a scheduler writer.
fn task(
    common: &SchedulerArgs,
    default_lethe: Option<&str>,
) -> Result<(TaskCommand, PathBuf), Failure> {
    let (file, out, plan) = plan_and_out(&common.plan, common.out.as_deref())?;
    let out = absolute(&out);
    let lethe = match (&common.lethe, default_lethe) {
        (Some(l), _) => l.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => std::env::current_exe()?,
    };
    let board = common.board.clone().unwrap_or_else(|| out.join("board"));
    // The output folder is the plan's before any scheduler file goes into it, so the tasks
    // find it theirs; paths are absolute, as the tasks do not start where this runs.
    let shards = Shards::new(&out);
    shards.require_same_plan(&plan).map_err(failure)?;
    shards.adopt(&plan).map_err(failure)?;
    let mut runtime = common.runtime.clone();
    runtime.plugin_dir = runtime.plugin_dir.as_deref().map(absolute);
    runtime.cache_dir = runtime.cache_dir.as_deref().map(absolute);
    Ok((
        TaskCommand {
            lethe,
            plan: absolute(&file),
            out: out.clone(),
            board: absolute(&board),
            exec_args: runtime.to_flags(),
            jobs: plan.jobs.len(),
        },
        out,
    ))
}

fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<(), Failure> {
    fs_err::create_dir_all(dir)?;
    for (name, text) in files {
        lethe_experiment::atomic_write(&dir.join(name), text.as_bytes()).map_err(failure)?;
    }
    Ok(())
}

/// `lethe slurm`.
pub fn slurm(args: &SlurmArgs) -> Result<ExitCode, Failure> {
    let (cmd, out) = task(&args.common, None)?;
    let dir = out.join("slurm");
    let logs = dir.join("logs");
    fs_err::create_dir_all(&logs)?;
    let files = schedulers::slurm(
        &cmd,
        &SlurmOptions {
            partition: args.partition.clone(),
            cpus: args.cpus,
            mem: args.mem.clone(),
            time: args.time.clone(),
            max_parallel: args.max_parallel,
            name: "lethe".into(),
        },
        &logs,
    );
    write_files(&dir, &files)?;
    let submit = dir.join("submit.sh");
    println!(
        "wrote {} ({} array tasks, then the report into {})",
        dir.display(),
        cmd.jobs,
        cmd.board.display()
    );
    if !args.submit {
        println!("submit with: bash {}", submit.display());
        return Ok(ExitCode::SUCCESS);
    }
    let status = Command::new("bash")
        .arg(&submit)
        .status()
        .map_err(|e| Failure::from(anyhow!("could not run {}: {e}", submit.display())))?;
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::from(anyhow!(
            "{} failed ({status}): is Slurm running here?",
            submit.display()
        )))
    }
}

/// `lethe k8s`.
pub fn k8s(args: &K8sArgs) -> Result<ExitCode, Failure> {
    // In a pod, `lethe` is the image's; paths are the pods' (the plan and the output folder
    // on the claim).
    let (cmd, out) = task(&args.common, Some("lethe"))?;
    let dir = out.join("k8s");
    let files = schedulers::k8s(
        &cmd,
        &K8sOptions {
            image: args.image.clone(),
            claim: args.claim.clone(),
            mount: args.mount.clone(),
            parallelism: args.parallelism,
            cpu: args.cpu.clone(),
            memory: args.memory.clone(),
            name: args.name.clone(),
        },
    );
    let texts: Vec<(&str, String)> = files
        .iter()
        .map(|(n, v)| Ok((*n, serde_json::to_string_pretty(v)?)))
        .collect::<Result<_, serde_json::Error>>()?;
    write_files(&dir, &texts)?;
    println!(
        "wrote {}: kubectl apply -f {}, then, once it has completed, kubectl apply -f {}",
        dir.display(),
        dir.join("job.json").display(),
        dir.join("report.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
