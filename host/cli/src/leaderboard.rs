//! `lethe leaderboard add` (check a submission, run the board's plan for it, verify one job
//! by running it again, accept it) and `lethe leaderboard build` (the board's pages from every
//! accepted entry's shards).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::Parser;
use lethe_experiment::board::{
    self, BoardSpec, ColumnRef, ENTRIES_DIR, ENTRY_FILE, ENTRY_WASM, EntryRecord, PluginSource,
    SUBMISSION_FILE, Submission,
};
use lethe_experiment::conformance::{self, PARTNER_METHOD, PARTNER_METRIC, Partners};
use lethe_experiment::exec::load_suite;
use lethe_experiment::report::{self, ALPHA};
use lethe_experiment::{JobEnv, Rows, ShardState, Shards};
use lethe_manifest::{AttackLabel, PluginKind};
use lethe_reports::html::{BoardPage, EntryInfo, ProtocolPage};
use lethe_reports::{ColumnSpec, Leaderboard};
use lethe_runtime::Plugin;

use crate::Failure;
use crate::args::{BoardAddArgs, BoardBuildArgs, RunCmd};
use crate::plans::failure;
use crate::progress::{duration, reporter};

/// `lethe run`'s options, parsed from a board protocol's `run` list.
#[derive(Parser)]
#[command(name = "lethe run", no_binary_name = true, args_override_self = true)]
struct RunOnly {
    #[command(flatten)]
    cmd: RunCmd,
}

fn refuse(message: impl std::fmt::Display) -> Failure {
    Failure::input(anyhow!("refused: {message}"))
}

/// `lethe leaderboard add SUBMISSION --board DIR`.
pub fn add(args: &BoardAddArgs, verbose: u8) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let spec = BoardSpec::read(&args.board).map_err(failure)?;
    let (sub, source) = Submission::read(&args.submission, &spec).map_err(failure)?;
    let entry = board::entry_dir(&args.board, &sub.name);
    if entry.join(ENTRY_FILE).exists() && !args.replace {
        return Err(refuse(format!(
            "'{}' is already on the board ({}); --replace runs it again",
            sub.name,
            entry.display()
        )));
    }
    let mut wanted = vec![PARTNER_METHOD.to_owned(), PARTNER_METRIC.to_owned()];
    if let PluginSource::Builtin(name) = &source {
        wanted.push(name.clone());
    }
    let (host, catalog, cache) = crate::run::runtime(&args.runtime, Some(&wanted))?;

    // The component: its digest first, then what it is.
    let (bytes, plugin): (Vec<u8>, Plugin) = match &source {
        PluginSource::Wasm { path, sha256 } => {
            let bytes = fs_err::read(path).map_err(Failure::input)?;
            let actual = lethe_runtime::sha256_hex(&bytes);
            if &actual != sha256 {
                return Err(refuse(format!(
                    "{}: sha256 is {actual}, the submission declares {sha256}",
                    path.display()
                )));
            }
            let plugin = host
                .load(&path.display().to_string(), &bytes)
                .map_err(refuse)?;
            (bytes, plugin)
        }
        PluginSource::Builtin(name) => {
            let bytes = lethe_builtin_plugins::BUILTIN
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, b)| b.to_vec())
                .ok_or_else(|| refuse(format!("there is no built-in plugin '{name}'")))?;
            let plugin = host
                .load(&format!("builtin:{name}"), &bytes)
                .map_err(refuse)?;
            (bytes, plugin)
        }
    };
    if plugin.manifest.kind != PluginKind::Method {
        return Err(refuse(format!(
            "{} is a {}; a board ranks methods",
            plugin.label(),
            plugin.manifest.kind
        )));
    }
    if plugin.manifest.name != sub.name {
        return Err(refuse(format!(
            "the submission is named '{}' but its method is '{}' (the name is the method's row)",
            sub.name, plugin.manifest.name
        )));
    }
    let config = serde_json::Value::Object(sub.config.clone());
    host.validate_config(&plugin, &config).map_err(refuse)?;

    // The conformance check, as `lethe plugin test` runs it.
    let partners = Partners {
        method: catalog.find(PARTNER_METHOD, PluginKind::Method)?,
        metric: catalog.find(PARTNER_METRIC, PluginKind::Metric)?,
    };
    let progress = reporter(verbose);
    let checked = conformance::check(&plugin, &config, &partners, &host, &cache, &*progress, 0)
        .map_err(failure)?;
    let failed: Vec<String> = checked
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if !failed.is_empty() {
        return Err(Failure {
            code: 1,
            error: anyhow!(
                "refused: {} failed the conformance check ({})",
                plugin.label(),
                failed.join("; ")
            ),
        });
    }
    eprintln!("{}: conformance passed", plugin.label());

    // Everything is built in a staging folder beside the entries and renamed into place only
    // once accepted: a refused or interrupted submission leaves the board as it was.
    let entries = args.board.join(ENTRIES_DIR);
    fs_err::create_dir_all(&entries)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".add-{}-", sub.name))
        .tempdir_in(&entries)
        .with_context(|| format!("cannot write in {}", entries.display()))
        .map_err(Failure::input)?;
    fs_err::write(staging.path().join(ENTRY_WASM), &bytes)?;
    // The plans name the component by a path that stays: content-addressed, outside the
    // staging folder (which is renamed), so `lethe exec` of an entry's plan finds it later.
    let components = entries.join(".components");
    fs_err::create_dir_all(&components)?;
    let component = components.join(format!("{}.wasm", plugin.sha256));
    if !component.exists() {
        lethe_experiment::atomic_write(&component, &bytes).map_err(failure)?;
    }
    let component = component.canonicalize()?;
    let mut verified = BTreeMap::new();
    let mut configs = BTreeMap::new();
    let mut selections = BTreeMap::new();
    let ctx = PlanContext {
        args,
        name: &sub.name,
        component: matches!(source, PluginSource::Wasm { .. }).then_some(component.as_path()),
        verbose,
        started,
    };
    for protocol in &sub.protocols {
        let p = &spec.protocols[protocol];
        let out = staging.path().join(protocol);
        let mut chosen = config.clone();
        if let (false, Some(rule)) = (sub.grid.is_empty(), &p.select) {
            let record = search_grid(&ctx, protocol, p, rule, &config, &sub.grid, staging.path())?;
            if let Some(c) = record.candidates.iter().find(|c| c.label == record.chosen) {
                chosen = c.config.clone();
            }
            eprintln!(
                "{}: the grid chose {} on the validation seeds",
                sub.name, record.chosen
            );
            selections.insert(protocol.clone(), record);
        }
        configs.insert(protocol.clone(), chosen.clone());
        let (plan, setup, run) = ctx.run(protocol, &p.run, &chosen, None, &[], &out)?;
        if let Some(rule) = &p.select {
            let scored = run.cmd.args.seed_list().map_err(failure)?;
            if let Some(s) = rule.seeds.iter().find(|s| scored.contains(s)) {
                return Err(Failure::input(anyhow!(
                    "{}: protocol '{protocol}': validation seed {s} is also a scored seed",
                    args.board.join(board::BOARD_FILE).display()
                )));
            }
        }
        let failures: Vec<lethe_manifest::RunFailure> =
            serde_json::from_slice(&fs_err::read(out.join("failures.json"))?)?;
        if let Some(f) = failures.iter().find(|f| f.plugin == plugin.label()) {
            return Err(Failure {
                code: 1,
                error: anyhow!(
                    "refused: {} failed in protocol '{protocol}' on row {}: {}",
                    f.plugin,
                    f.method,
                    f.error
                ),
            });
        }

        // One of its jobs again, elsewhere: the shard must come out byte for byte the same.
        let (index, job) = plan
            .jobs
            .iter()
            .enumerate()
            .find(|(_, j)| matches!(&j.rows, Rows::Method { label, .. } if *label == sub.name))
            .ok_or_else(|| anyhow!("the plan of '{protocol}' has no job of {}", sub.name))?;
        let again = tempfile::tempdir()?;
        let shards = Shards::new(again.path());
        shards.adopt(&plan).map_err(failure)?;
        let plugins: Vec<&Plugin> = setup.catalog.plugins.iter().chain(&setup.extra).collect();
        let env = JobEnv {
            host: &setup.host,
            plugins: &plugins,
            cache: &setup.cache,
            reporter: &*progress,
        };
        lethe_experiment::execute(&plan, &[index], &shards, &env).map_err(failure)?;
        let sha = |dir: &Path| match Shards::new(dir).state(job) {
            ShardState::Complete(r) => Some(r.shard_sha256),
            _ => None,
        };
        match (sha(&out), sha(again.path())) {
            (Some(a), Some(b)) if a == b => {
                eprintln!(
                    "{}: job {} ran twice, the same shard (sha256 {})",
                    sub.name,
                    &job.id[..12.min(job.id.len())],
                    &a[..12]
                );
                verified.insert(protocol.clone(), (job.id.clone(), a));
            }
            (a, b) => {
                return Err(Failure {
                    code: 1,
                    error: anyhow!(
                        "refused: job {} of '{protocol}' gave another shard when run again \
                         ({} then {}): its results cannot be reproduced",
                        job.id,
                        a.unwrap_or_else(|| "none".into()),
                        b.unwrap_or_else(|| "none".into())
                    ),
                });
            }
        }
    }

    // The entry folder is itself a submission (its component beside it), so it can be added
    // again as it is when the board moves on.
    let mut kept = sub.clone();
    kept.plugin = board::SubmittedPlugin {
        wasm: Some(PathBuf::from(ENTRY_WASM)),
        sha256: Some(plugin.sha256.clone()),
        builtin: None,
    };
    let text = kept.to_toml().map_err(failure)?;
    fs_err::write(staging.path().join(SUBMISSION_FILE), text)?;
    let record = EntryRecord {
        submission: sub.clone(),
        plugin: plugin.label(),
        sha256: plugin.sha256.clone(),
        api_version: plugin.manifest.api_version.clone(),
        lethe: env!("CARGO_PKG_VERSION").to_owned(),
        conformance: checked
            .checks
            .iter()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect(),
        verified,
        configs,
        selections,
    };
    fs_err::write(
        staging.path().join(ENTRY_FILE),
        serde_json::to_vec_pretty(&record)?,
    )?;
    // A replaced entry goes aside first and is removed only once the new one is in place.
    let old = tempfile::Builder::new()
        .prefix(&format!(".old-{}-", sub.name))
        .tempdir_in(&entries)?;
    if entry.exists() {
        fs_err::rename(&entry, old.path().join("entry"))?;
    }
    let staged = staging.keep();
    fs_err::rename(&staged, &entry)?;
    drop(old);
    println!(
        "accepted: {} ({}) on {} in {}; `lethe leaderboard build {}` updates the pages",
        sub.name,
        plugin.label(),
        sub.protocols.join(", "),
        duration(started.elapsed()),
        args.board.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What every plan run for one submission shares.
struct PlanContext<'a> {
    args: &'a BoardAddArgs,
    name: &'a str,
    component: Option<&'a Path>,
    verbose: u8,
    started: Instant,
}

impl PlanContext<'_> {
    /// Plan `run` (a protocol's options) for the submission with `config`, on `seeds` instead
    /// of the protocol's when given, with `grid` axes, into `out`, and run it here.
    fn run(
        &self,
        protocol: &str,
        run: &[String],
        config: &serde_json::Value,
        seeds: Option<&[u64]>,
        grid: &[String],
        out: &Path,
    ) -> Result<(lethe_experiment::Plan, crate::run::Setup, RunOnly), Failure> {
        let mut flags = run.to_vec();
        if let Some(seeds) = seeds {
            let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
            flags.extend(["--seeds".to_owned(), list.join(",")]);
        }
        flags.extend([
            "--methods".to_owned(),
            self.name.to_owned(),
            "--config".to_owned(),
            format!("{}={config}", self.name),
            "--out".to_owned(),
            out.display().to_string(),
        ]);
        for axis in grid {
            flags.extend(["--grid".to_owned(), axis.clone()]);
        }
        if let Some(c) = self.component {
            flags.extend(["--plugin".to_owned(), c.display().to_string()]);
        }
        flags.extend(self.args.runtime.to_flags());
        let parsed = RunOnly::try_parse_from(&flags).map_err(|e| {
            Failure::input(anyhow!(
                "{}: protocol '{protocol}': {}",
                self.args.board.join(board::BOARD_FILE).display(),
                e.to_string().trim()
            ))
        })?;
        eprintln!("{}: running protocol '{protocol}'", self.name);
        let (plan, setup) = crate::plans::make_plan(&parsed.cmd.args)?;
        crate::plans::run_plan(
            &plan,
            &setup,
            out,
            &parsed.cmd.args.runtime,
            self.args.workers,
            self.verbose,
            self.started,
        )
        .map_err(|e| Failure {
            code: 1,
            error: e.error.context(format!(
                "refused: the board's plan '{protocol}' did not finish for {}",
                self.name
            )),
        })?;
        Ok((plan, setup, parsed))
    }
}

/// Run the grid on the rule's validation seeds and choose one configuration by the rule.
fn search_grid(
    ctx: &PlanContext<'_>,
    protocol: &str,
    p: &board::BoardProtocol,
    rule: &board::Selection,
    config: &serde_json::Value,
    grid: &BTreeMap<String, Vec<serde_json::Value>>,
    staging: &Path,
) -> Result<board::SelectionRecord, Failure> {
    let axes: Vec<String> = grid
        .iter()
        .map(|(key, values)| {
            let v: Vec<String> = values
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect();
            format!("{}.{key}={}", ctx.name, v.join(","))
        })
        .collect();
    let out = staging.join(format!("{protocol}.select"));
    let (plan, _, _) = ctx.run(protocol, &p.run, config, Some(&rule.seeds), &axes, &out)?;
    let collected = report::collect(&[out], false).map_err(failure)?;
    let df = lethe_reports::merge_shards(&collected.shards).map_err(|e| failure(e.into()))?;
    let columns = [column(&rule.by), column(&rule.utility)];
    let lb = lethe_reports::leaderboard(&df, &columns).map_err(|e| failure(e.into()))?;
    let value = |row: &str, j: usize| {
        lb.methods
            .iter()
            .position(|m| m == row)
            .and_then(|i| lb.values[i][j])
    };
    let target_utility = value("target", 1).ok_or_else(|| {
        Failure::input(anyhow!(
            "protocol '{protocol}': the validation runs hold no target {} {}:{}",
            rule.utility.split,
            rule.utility.metric,
            rule.utility.output
        ))
    })?;
    let mut candidates: Vec<board::Candidate> = Vec::new();
    for job in &plan.jobs {
        if let Rows::Method { label, plugin } = &job.rows
            && !candidates.iter().any(|c| c.label == *label)
        {
            candidates.push(board::Candidate {
                label: label.clone(),
                config: plugin.config.clone(),
                by: value(label, 0),
                utility: value(label, 1),
            });
        }
    }
    let i = rule
        .pick(&candidates, target_utility)
        .map_err(|e| Failure {
            code: 1,
            error: anyhow!("refused: {}: {e}", ctx.name),
        })?;
    Ok(board::SelectionRecord {
        rule: rule.clone(),
        target_utility,
        chosen: candidates[i].label.clone(),
        candidates,
    })
}

fn column(r: &ColumnRef) -> ColumnSpec {
    ColumnSpec {
        metric: r.metric.clone(),
        output: r.output.clone(),
        split: r.split.clone(),
    }
}

/// Why an entry's results no longer match what the board would compute now, if they do not.
fn staleness(record: &EntryRecord, dirs: &[PathBuf]) -> Option<String> {
    let now = env!("CARGO_PKG_VERSION");
    if record.lethe != now {
        return Some(format!(
            "run by Lethe {}, the board is at {now}",
            record.lethe
        ));
    }
    for dir in dirs {
        let Ok(plan) = lethe_experiment::Plan::read(&Shards::new(dir).plan_path()) else {
            return Some(format!("{}: no readable plan", dir.display()));
        };
        let Some(job) = plan.jobs.first() else {
            continue;
        };
        let recorded = match Shards::new(dir).state(job) {
            ShardState::Complete(r) => r.run.suite_digest,
            _ => return Some(format!("{}: a shard is missing", dir.display())),
        };
        match load_suite(&job.suite) {
            Ok(suite) if suite.digest() == recorded => {}
            Ok(_) => return Some("its suite has changed since it ran".into()),
            Err(e) => return Some(format!("its suite cannot be loaded: {e}")),
        }
    }
    None
}

/// `lethe leaderboard build DIR`.
pub fn build(args: &BoardBuildArgs) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let spec = BoardSpec::read(&args.board).map_err(failure)?;
    let entries = board::entries(&args.board).map_err(failure)?;
    let mut pages = Vec::new();
    let mut md = format!("# {}\n\n", spec.title);
    let mut csv = String::from("protocol,rank,entry,seeds,metric,output,split,mean,half_width\n");
    let mut infos: BTreeMap<String, EntryInfo> = BTreeMap::new();
    for (name, protocol) in &spec.protocols {
        let members: Vec<&(PathBuf, EntryRecord)> = entries
            .iter()
            .filter(|(_, r)| r.submission.protocols.contains(name))
            .collect();
        md.push_str(&format!("## {name}\n\n"));
        if members.is_empty() {
            md.push_str("No entries yet.\n\n");
            continue;
        }
        let dirs: Vec<PathBuf> = members.iter().map(|(d, _)| d.join(name)).collect();
        let collected = report::collect(&dirs, false).map_err(failure)?;
        let df = lethe_reports::merge_shards(&collected.shards).map_err(|e| failure(e.into()))?;
        let mut metrics: Vec<String> = Vec::new();
        for r in &collected.records {
            for m in &r.job.metrics {
                if !metrics.contains(&m.name) {
                    metrics.push(m.name.clone());
                }
            }
        }
        let mut columns =
            lethe_reports::metric_columns(&df, &metrics).map_err(|e| failure(e.into()))?;
        let wanted = std::iter::once(&protocol.rank).chain(protocol.utility.as_ref());
        for r in wanted {
            if !columns.contains(&column(r)) {
                columns.push(column(r));
            }
        }
        let index = |r: &ColumnRef| columns.iter().position(|c| *c == column(r));
        let rank = index(&protocol.rank).unwrap_or(0);
        let utility = protocol.utility.as_ref().and_then(index);
        let clean = lethe_reports::leaderboard(&df, &columns).map_err(|e| failure(e.into()))?;
        let row = clean
            .methods
            .iter()
            .position(|m| members.iter().any(|(_, r)| r.submission.name == *m));
        if row.is_none_or(|i| clean.values[i][rank].is_none()) {
            return Err(Failure::input(anyhow!(
                "{}: protocol '{name}' ranks by {} {}:{}, which its entries' results do not hold",
                args.board.join(board::BOARD_FILE).display(),
                protocol.rank.split,
                protocol.rank.metric,
                protocol.rank.output
            )));
        }
        let ties = lethe_reports::ties(&df, &columns, AttackLabel::CLEAN, ALPHA)
            .map_err(|e| failure(e.into()))?;
        let mut attacks: Vec<(String, Leaderboard)> = Vec::new();
        for a in lethe_reports::attacks(&df).map_err(|e| failure(e.into()))? {
            if matches!(
                AttackLabel::parse(&a),
                AttackLabel::Clean | AttackLabel::CleanOn(_)
            ) {
                continue;
            }
            let lb = lethe_reports::leaderboard_under(&df, &columns[rank..=rank], &a)
                .map_err(|e| failure(e.into()))?;
            attacks.push((a, lb));
        }
        let first = &collected.records[0];
        let seeds: std::collections::BTreeSet<u64> =
            collected.records.iter().map(|r| r.job.seed).collect();
        let description = format!(
            "suite {} · model {} parameters · seeds {} · run with: lethe run {}",
            first.run.suite,
            first.run.parameters,
            seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            protocol.run.join(" ")
        );
        let page = ProtocolPage {
            name: name.clone(),
            description: description.clone(),
            board: clean,
            entries: members
                .iter()
                .map(|(_, r)| r.submission.name.clone())
                .collect(),
            rank,
            higher_is_better: protocol.rank.higher_is_better,
            utility,
            ties,
            attacks,
            trust: match &protocol.meta {
                Some(m) => {
                    let csv = args.board.join(m).join("meta-eval.csv");
                    lethe_reports::html::read_trust(&csv).map_err(|e| {
                        Failure::input(anyhow!(
                            "{}: protocol '{name}': meta: {e}",
                            args.board.join(board::BOARD_FILE).display()
                        ))
                    })?
                }
                None => Vec::new(),
            },
        };
        // Markdown and CSV: the ranked entries, then the references.
        let b = &page.board;
        md.push_str(&format!(
            "{description}\n\nRanked by {} ({} is better), 95 % intervals over seeds; ≈: not \
             significantly different from the entry above (Wilcoxon, p ≥ {ALPHA}).\n\n",
            b.columns[rank].header(true),
            if page.higher_is_better {
                "higher"
            } else {
                "lower"
            }
        ));
        let headers: Vec<String> = b.columns.iter().map(|c| c.header(true)).collect();
        md.push_str(&format!(
            "| # | entry | seeds | {} |\n",
            headers.join(" | ")
        ));
        md.push_str(&format!(
            "|---|---|---:|{}\n",
            "---:|".repeat(headers.len())
        ));
        let order = lethe_reports::html::ranked(&page);
        let fmt = |v: Option<f64>, h: Option<f64>| match (v, h) {
            (Some(v), Some(h)) => format!("{v:.3} ± {h:.3}"),
            (Some(v), None) => format!("{v:.3}"),
            _ => "–".into(),
        };
        let mut line = |rank_text: String, i: usize, label: String| {
            let cells: Vec<String> = (0..b.columns.len())
                .map(|j| fmt(b.values[i][j], b.intervals[i][j]))
                .collect();
            md.push_str(&format!(
                "| {rank_text} | {label} | {} | {} |\n",
                b.seeds[i],
                cells.join(" | ")
            ));
            for (j, c) in b.columns.iter().enumerate() {
                csv.push_str(&format!(
                    "{name},{rank_text},{},{},{},{},{},{},{}\n",
                    b.methods[i],
                    b.seeds[i],
                    c.metric,
                    c.output,
                    c.split,
                    b.values[i][j].map_or(String::new(), |v| v.to_string()),
                    b.intervals[i][j].map_or(String::new(), |v| v.to_string())
                ));
            }
        };
        for (k, &i) in order.iter().enumerate() {
            let tie = k.checked_sub(1).is_some_and(|j| {
                page.ties.iter().any(|t| {
                    t.column == b.columns[rank]
                        && [&t.rows.0, &t.rows.1].contains(&&b.methods[i])
                        && [&t.rows.0, &t.rows.1].contains(&&b.methods[order[j]])
                })
            });
            let label = format!("{}{}", b.methods[i], if tie { " ≈" } else { "" });
            line((k + 1).to_string(), i, label);
        }
        for i in (0..b.methods.len()).filter(|i| !page.entries.contains(&b.methods[*i])) {
            line(String::new(), i, format!("*{} (reference)*", b.methods[i]));
        }
        md.push('\n');
        if !page.trust.is_empty() {
            md.push_str("Trust in the metrics (overall score of the meta-evaluation):\n\n| metric output | overall | 95 % interval |\n|---|---:|---|\n");
            for t in &page.trust {
                let iv = t
                    .interval
                    .map_or("–".to_owned(), |(a, b)| format!("[{a:.3}, {b:.3}]"));
                md.push_str(&format!("| {} | {:.3} | {iv} |\n", t.output, t.overall));
            }
            md.push('\n');
        }
        for (dir, record) in &members {
            let mine: Vec<&lethe_experiment::JobRecord> = collected
                .records
                .iter()
                .filter(|r| matches!(&r.job.rows, Rows::Method { label, .. } if *label == record.submission.name))
                .collect();
            let info = infos
                .entry(record.submission.name.clone())
                .or_insert_with(|| EntryInfo {
                    name: record.submission.name.clone(),
                    authors: record.submission.authors.join(", "),
                    plugin: record.plugin.clone(),
                    sha256: record.sha256.clone(),
                    api_version: record.api_version.clone(),
                    lethe: record.lethe.clone(),
                    suites: Vec::new(),
                    models: Vec::new(),
                    seeds: Vec::new(),
                    config: String::new(),
                    stale: None,
                });
            let used = record.configs.get(name).map_or_else(
                || serde_json::Value::Object(record.submission.config.clone()),
                Clone::clone,
            );
            let text = if record.selections.contains_key(name) {
                format!("{name}: {used} (grid)")
            } else {
                used.to_string()
            };
            if !info.config.split(" · ").any(|c| c == text) {
                if !info.config.is_empty() {
                    info.config.push_str(" · ");
                }
                info.config.push_str(&text);
            }
            for r in mine {
                if !info.suites.contains(&r.run.suite_digest) {
                    info.suites.push(r.run.suite_digest.clone());
                }
                if !info.models.contains(&r.run.model_keys[1]) {
                    info.models.push(r.run.model_keys[1].clone());
                }
                if !info.seeds.contains(&r.job.seed) {
                    info.seeds.push(r.job.seed);
                }
            }
            if info.stale.is_none() {
                info.stale = staleness(record, &[dir.join(name)]);
            }
        }
        pages.push(page);
    }
    let entries_info: Vec<EntryInfo> = infos.into_values().collect();
    md.push_str("## Entries\n\n| entry | authors | method | SDK | component sha256 | status |\n|---|---|---|---|---|---|\n");
    for e in &entries_info {
        md.push_str(&format!(
            "| {} | {} | {} | {} | `{}` | {} |\n",
            e.name,
            e.authors,
            e.plugin,
            e.api_version,
            e.sha256,
            e.stale.as_deref().map_or("current".to_owned(), |s| format!(
                "stale ({s}): `lethe leaderboard add {} --board {} --replace`",
                board::entry_dir(&args.board, &e.name).display(),
                args.board.display()
            ))
        ));
    }
    let page = BoardPage {
        title: spec.title.clone(),
        subtitle: format!(
            "{} entries · built by Lethe {} from every accepted entry's shards",
            entries.len(),
            env!("CARGO_PKG_VERSION")
        ),
        protocols: pages,
        entries: entries_info,
    };
    let html = lethe_reports::html::board_html(&page);
    for (file, bytes) in [
        ("leaderboard.md", md.as_bytes()),
        ("leaderboard.csv", csv.as_bytes()),
        ("index.html", html.as_bytes()),
    ] {
        lethe_experiment::atomic_write(&args.board.join(file), bytes).map_err(failure)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{md}")?;
    writeln!(
        out,
        "built {} ({} entries, index.html {} KiB) in {}",
        args.board.display(),
        entries.len(),
        html.len().div_ceil(1024),
        duration(started.elapsed())
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `lethe leaderboard schema`.
pub fn schema() -> Result<ExitCode, Failure> {
    let text = serde_json::to_string_pretty(&Submission::schema())?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(ExitCode::SUCCESS)
}
