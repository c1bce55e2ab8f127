//! Reports over many shards: gather the complete shards of one or more output folders, check
//! that the jobs agree on what they share, merge them with polars and lay out the
//! leaderboards (one per suite; clean, then under each attack) with 95 % intervals over seeds
//! and the pairs of rows whose difference is not significant.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lethe_manifest::{AttackLabel, RunFailure};
use lethe_pipeline::attack::RELEARN_MIN_CHANGE;
use lethe_pipeline::{
    Attack, LEAK_METRIC, WEIGHT_CHANGE_METRIC, WEIGHT_CHANGE_OUTPUT, WEIGHTS_SPLIT,
};
use lethe_reports::{ColumnSpec, DataFrame};
use serde::Serialize;

use crate::ExperimentError;
use crate::exec::{JobRecord, ShardState, Shards};
use crate::plan::Plan;

/// Significance level of the "not significantly different" lists.
pub const ALPHA: f64 = 0.05;

/// The complete shards of some output folders, in plan order.
#[derive(Debug, Default)]
pub struct Collected {
    /// Each job's record.
    pub records: Vec<JobRecord>,
    /// Each job's shard, beside its record.
    pub shards: Vec<PathBuf>,
    /// Jobs left out (missing or damaged shards), as messages.
    pub missing: Vec<String>,
    /// The plans' titles, each once.
    pub titles: Vec<String>,
    /// The tables the plans' protocols report, each once.
    pub tables: Vec<lethe_reports::TableSpec>,
    /// The meta-evaluations the plans carry, each once.
    pub meta: Vec<lethe_reports::meta::MetaSpec>,
}

/// Gather the shards of the plans in `dirs`. Missing or damaged shards are an error unless
/// `partial`; the same job in two folders is taken once.
pub fn collect(dirs: &[PathBuf], partial: bool) -> Result<Collected, ExperimentError> {
    let mut out = Collected::default();
    // Every job of every plan, once, in order of first appearance, with the folders that may
    // hold its shard (a plan split over folders has each job complete in one of them).
    let mut jobs: Vec<(crate::plan::Job, Vec<Shards>)> = Vec::new();
    for dir in dirs {
        let shards = Shards::new(dir);
        if !shards.plan_path().exists() {
            return Err(ExperimentError::Merge(format!(
                "{} has no plan.jsonl: not an output folder of `lethe exec` or `lethe run`",
                dir.display()
            )));
        }
        let plan = Plan::read(&shards.plan_path())?;
        if !out.titles.contains(&plan.title) {
            out.titles.push(plan.title.clone());
        }
        if let Some(m) = plan.meta
            && !out.meta.contains(&m)
        {
            out.meta.push(m);
        }
        for t in plan.tables {
            match out.tables.iter().find(|o| o.file == t.file) {
                Some(o) if *o != t => {
                    return Err(ExperimentError::Merge(format!(
                        "{}: its plan's table '{}' differs from another folder's table of that \
                         name; report them apart",
                        dir.display(),
                        t.file
                    )));
                }
                Some(_) => {}
                None => out.tables.push(t),
            }
        }
        for job in plan.jobs {
            match jobs.iter_mut().find(|(j, _)| j.id == job.id) {
                Some((_, places)) => places.push(shards.clone()),
                None => jobs.push((job, vec![shards.clone()])),
            }
        }
    }
    for (i, (job, places)) in jobs.iter().enumerate() {
        let mut problems = Vec::new();
        let mut found = false;
        for shards in places {
            match shards.state(job) {
                ShardState::Complete(rec) => {
                    out.records.push(*rec);
                    out.shards.push(shards.shard_path(&job.id));
                    found = true;
                    break;
                }
                ShardState::Missing => {}
                ShardState::Damaged(why) => problems.push(why),
            }
        }
        if !found {
            let why = if problems.is_empty() {
                "has not run".to_owned()
            } else {
                problems.join("; ")
            };
            out.missing
                .push(format!("job {i} ({}): {why}", job.describe()));
        }
    }
    if !out.missing.is_empty() && !partial {
        let shown: Vec<&str> = out.missing.iter().take(8).map(String::as_str).collect();
        let more = out.missing.len().saturating_sub(shown.len());
        return Err(ExperimentError::Merge(format!(
            "{} job(s) have no complete shard (run `lethe exec` again, or report with \
             --partial):\n  {}{}",
            out.missing.len(),
            shown.join("\n  "),
            if more > 0 {
                format!("\n  … and {more} more")
            } else {
                String::new()
            }
        )));
    }
    if out.records.is_empty() {
        return Err(ExperimentError::Merge("no complete shard to report".into()));
    }
    check_agreement(&out.records)?;
    Ok(out)
}

/// Jobs that are merged must agree on what they share: one numeric version, one Lethe
/// version, and one content per suite name.
pub fn check_agreement(records: &[JobRecord]) -> Result<(), ExperimentError> {
    let first = &records[0];
    let mut suites: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for r in records {
        // The numeric version is what makes numbers comparable (it is in every job id); a
        // Lethe release that computes the same bits may merge with another.
        if r.job.numeric_version != first.job.numeric_version {
            return Err(ExperimentError::Merge(format!(
                "jobs {} and {} were computed with different numerics (versions {} and {}, \
                 Lethe {} and {}): their numbers are not comparable",
                first.job.id,
                r.job.id,
                first.job.numeric_version,
                r.job.numeric_version,
                first.lethe,
                r.lethe
            )));
        }
        let (digest, id) = *suites
            .entry(r.run.suite.as_str())
            .or_insert((r.run.suite_digest.as_str(), r.job.id.as_str()));
        if digest != r.run.suite_digest {
            return Err(ExperimentError::Merge(format!(
                "jobs {id} and {} both ran suite {} but on different content (digests {} and \
                 {}); rename one of the suites or report them apart",
                r.job.id,
                r.run.suite,
                digest.get(..12).unwrap_or(digest),
                r.run.suite_digest.get(..12).unwrap_or(&r.run.suite_digest)
            )));
        }
    }
    // Two jobs may not make the same row (label) for the same seed of one suite: their values
    // would be merged as one cell (within a plan `Plan::check` refuses it; across folders,
    // two plans with different settings would).
    let mut rows: BTreeMap<(&str, &str, u64), &str> = BTreeMap::new();
    for r in records {
        for label in r.job.labels() {
            if let Some(other) = rows.insert((&r.run.suite_digest, label, r.job.seed), &r.job.id) {
                return Err(ExperimentError::Merge(format!(
                    "jobs {other} and {} both produce row '{label}' for seed {} of suite {}, \
                     with different settings; report their folders apart",
                    r.job.id, r.job.seed, r.run.suite
                )));
            }
        }
    }
    Ok(())
}

/// How a metric output reads: `Some(true)` when a higher value means the model knows more.
pub type Reading<'a> = &'a dyn Fn(&str, &str) -> Option<bool>;

/// Everything a report writes.
pub struct Report {
    /// The leaderboards, as Markdown.
    pub markdown: String,
    /// What to show first: a protocol's tables, or the leaderboards when the plans have none.
    pub summary: String,
    /// Files of the report folder: name and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// Every plugin failure of the merged jobs.
    pub failures: Vec<RunFailure>,
}

#[derive(Serialize)]
struct Provenance<'a> {
    /// Jobs merged, in order: id and everything that produced its results.
    jobs: Vec<&'a JobRecord>,
}

fn seeds_text(seeds: &BTreeSet<u64>) -> String {
    let v: Vec<String> = seeds.iter().map(u64::to_string).collect();
    v.join(", ")
}

/// One suite's boards: clean, under each attack, the robustness summary.
fn suite_sections(
    df: &DataFrame,
    metrics: &[String],
    records: &[&JobRecord],
    reading: Reading<'_>,
) -> Result<(String, lethe_reports::Leaderboard), ExperimentError> {
    let columns = lethe_reports::metric_columns(df, metrics)?;
    let board = lethe_reports::leaderboard(df, &columns)?;
    let mut md = board.to_markdown(3);
    let ties = lethe_reports::ties(df, &columns, AttackLabel::CLEAN, ALPHA)?;
    if let Some(note) = board.interval_note() {
        md.push_str(&format!("\n{note}\n"));
    }
    if !ties.is_empty() {
        md.push_str(&format!(
            "\nNot significantly different (Wilcoxon signed-rank test, two-sided, over the \
             values paired by (seed, example); p ≥ {ALPHA}):\n\n{}",
            lethe_reports::ties_markdown(&ties, &columns)
        ));
    }
    // The attacks, in the order results list them.
    let attacks: Vec<String> = {
        let mut v = lethe_reports::attacks(df)?;
        // The clean baselines of attacks that left questions out go with their attack.
        v.retain(|x| !matches!(AttackLabel::parse(x), AttackLabel::CleanOn(_)));
        // Attacks written as plugins first (as they appear), then the built-ins in their
        // fixed order.
        v.sort_by_key(|x| match AttackLabel::parse(x) {
            l if l.is_plugin() => 0,
            _ => {
                1 + Attack::ALL
                    .iter()
                    .position(|a| a.name() == x)
                    .unwrap_or(Attack::ALL.len())
            }
        });
        v
    };
    let mut board_attacks = Vec::new();
    for attack in &attacks {
        if attack == Attack::Sample.name() {
            let Some(spec) = records.first().map(|r| &r.job.attacks) else {
                continue;
            };
            let n = spec.samples;
            let splits: Vec<String> =
                columns
                    .iter()
                    .map(|c| c.split.clone())
                    .fold(Vec::new(), |mut v, s| {
                        if !v.contains(&s) {
                            v.push(s);
                        }
                        v
                    });
            let mut ks = vec![1, n];
            ks.dedup();
            let leak_columns: Vec<ColumnSpec> = splits
                .iter()
                .flat_map(|s| {
                    ks.iter().map(move |k| ColumnSpec {
                        metric: LEAK_METRIC.to_owned(),
                        output: format!("leak@{k}"),
                        split: s.clone(),
                    })
                })
                .collect();
            let b = lethe_reports::leaderboard_under(df, &leak_columns, attack)?;
            md.push_str(&format!(
                "\n## Under attack: sample ({n} answers per question at temperature {})\n\n{}",
                spec.temperature,
                b.to_markdown(3)
            ));
            continue;
        }
        let b = lethe_reports::leaderboard_under(df, &columns, attack)?;
        md.push_str(&format!(
            "\n## Under attack: {attack}\n\n{}",
            b.to_markdown(3)
        ));
        let base = AttackLabel::CleanOn(Box::new(AttackLabel::parse(attack))).to_string();
        let same = lethe_reports::leaderboard_under(df, &columns, &base)?;
        if !same.methods.is_empty() {
            md.push_str(&format!(
                "\nThe attack leaves out questions it cannot put differently; unattacked, on \
                 the same questions (the baseline it is compared with):\n\n{}",
                same.to_markdown(3)
            ));
        }
        board_attacks.push(attack.clone());
    }
    // The share of forgetting kept, on the first metric's forget column.
    let forget = records.first().and_then(|r| {
        r.run
            .split_sizes
            .keys()
            .find(|s| {
                columns
                    .iter()
                    .any(|c| &c.split == *s && c.split.starts_with("forget"))
            })
            .cloned()
    });
    let primary = columns.iter().find(|c| Some(&c.split) == forget.as_ref());
    let higher = primary.and_then(|c| reading(&c.metric, &c.output));
    if let (Some(column), Some(higher), true) = (
        primary,
        higher,
        board_attacks.iter().any(|a| a == Attack::Relearn.name()),
    ) {
        let weights = ColumnSpec {
            metric: WEIGHT_CHANGE_METRIC.to_owned(),
            output: WEIGHT_CHANGE_OUTPUT.to_owned(),
            split: WEIGHTS_SPLIT.to_owned(),
        };
        let g = lethe_reports::relearn_gain(
            df,
            column,
            higher,
            Attack::Relearn.name(),
            "oracle",
            &weights,
            RELEARN_MIN_CHANGE,
        )?;
        md.push_str(&format!(
            "\n## Relearning against the oracle\n\nGain under relearning on {}, beside the \
             retain-only oracle's under the same attack: a model that recovers more than the \
             oracle (which never saw the forget set) was not unlearned. A weight change below \
             {RELEARN_MIN_CHANGE:.0e} of the weights' norm flags an attack too weak to show \
             anything.\n\n{}",
            column.header(true),
            g.to_markdown(2)
        ));
    }
    if let (Some(column), Some(higher), false) = (primary, higher, board_attacks.is_empty()) {
        let r = lethe_reports::forgetting_kept(
            df,
            column,
            higher,
            &board_attacks,
            "target",
            &["base"],
            1e-6,
        )?;
        md.push_str(&format!(
            "\n## Forgetting kept under attack\n\n(target under attack − row under attack) / \
             (target − row), clean, on {}: 1 = the row stays as far from the target as it was, \
             0 = the attack brings it level with the target attacked alike. (A summary of \
             Lethe's own; the robustness of a metric — relearning R against the oracle, \
             quantization Q, their harmonic mean — is the meta-evaluation's.)\n\n{}",
            column.header(true),
            r.to_markdown(2)
        ));
    }
    Ok((md, board))
}

/// Merge the collected shards and lay out the report. `reading` tells how a metric's output
/// reads (for the robustness summary).
pub fn build(collected: &Collected, reading: Reading<'_>) -> Result<Report, ExperimentError> {
    let mut df = lethe_reports::merge_shards(&collected.shards)?;
    let mut metrics: Vec<String> = Vec::new();
    for r in &collected.records {
        for m in &r.job.metrics {
            if !metrics.contains(&m.name) {
                metrics.push(m.name.clone());
            }
        }
    }
    let mut suites: Vec<&str> = Vec::new();
    for r in &collected.records {
        if !suites.contains(&r.run.suite.as_str()) {
            suites.push(&r.run.suite);
        }
    }
    let mut markdown = String::from("# Lethe leaderboard\n\n");
    let mut files = Vec::new();
    let scratch = tempfile_dir()?;
    let mut tables = protocol_tables(&df, collected, &scratch, &mut files)?;
    if let Some(m) = meta_section(&df, collected, &scratch, &mut files)? {
        tables = Some(match tables {
            Some(t) => format!("{m}\n{t}"),
            None => m,
        });
    }
    if let Some(t) = &tables {
        markdown = format!("{t}\n# All results, by suite\n\n");
    }
    let mut csv_boards = Vec::new();
    for suite in &suites {
        let records: Vec<&JobRecord> = collected
            .records
            .iter()
            .filter(|r| r.run.suite == *suite)
            .collect();
        let sub = lethe_reports::for_suite(&df, suite)?;
        let (md, board) = suite_sections(&sub, &metrics, &records, reading)?;
        let seeds: BTreeSet<u64> = records.iter().map(|r| r.job.seed).collect();
        let first = records[0];
        let steps: BTreeSet<u32> = records
            .iter()
            .filter(|r| matches!(r.job.rows, crate::plan::Rows::Method { .. }))
            .map(|r| r.run.unlearn_steps)
            .collect();
        let steps: Vec<String> = steps.iter().map(u32::to_string).collect();
        markdown.push_str(&format!(
            "suite {suite} · model {} parameters · seeds {} · {} unlearning steps · {} jobs\n\n{md}",
            first.run.parameters,
            seeds_text(&seeds),
            if steps.is_empty() {
                "0".to_owned()
            } else {
                steps.join("/")
            },
            records.len()
        ));
        csv_boards.push((suite.to_string(), board));
    }
    let parquet = scratch.join("results.parquet");
    lethe_reports::write_parquet(&mut df, &parquet)?;
    files.push(("results.parquet".to_owned(), fs_err::read(&parquet)?));
    for (i, (suite, board)) in csv_boards.iter().enumerate() {
        let name = if csv_boards.len() == 1 {
            "leaderboard.csv".to_owned()
        } else {
            format!("leaderboard-{}.csv", suite.replace(['@', '/'], "-"))
        };
        let path = scratch.join(format!("board-{i}.csv"));
        board.write_csv(&path)?;
        files.push((name, fs_err::read(&path)?));
    }
    let _ = fs_err::remove_dir_all(&scratch);
    files.push(("leaderboard.md".to_owned(), markdown.clone().into_bytes()));
    let failures: Vec<RunFailure> = collected
        .records
        .iter()
        .flat_map(|r| r.failures.iter().cloned())
        .collect();
    files.push((
        "failures.json".to_owned(),
        serde_json::to_vec_pretty(&failures)?,
    ));
    let losses: BTreeMap<String, BTreeMap<String, &Vec<f64>>> = collected
        .records
        .iter()
        .flat_map(|r| {
            r.losses
                .iter()
                .map(move |(label, l)| (label.clone(), (format!("seed {}", r.job.seed), l)))
        })
        .fold(BTreeMap::new(), |mut m, (label, (seed, l))| {
            m.entry(label).or_insert_with(BTreeMap::new).insert(seed, l);
            m
        });
    files.push((
        "losses.json".to_owned(),
        serde_json::to_vec_pretty(&losses)?,
    ));
    let provenance = Provenance {
        jobs: collected.records.iter().collect(),
    };
    files.push((
        "run.json".to_owned(),
        serde_json::to_vec_pretty(&provenance)?,
    ));
    Ok(Report {
        summary: tables.unwrap_or_else(|| markdown.clone()),
        markdown,
        files,
        failures,
    })
}

/// The meta-evaluation (Markdown) and its files — `meta-eval.md`, `meta-eval.csv` (the ranked
/// table with intervals), `meta-values.parquet` (every model × output × attack value used) —
/// when a plan carries one. Metrics that failed on some model are left out with the reason.
fn meta_section(
    df: &DataFrame,
    collected: &Collected,
    scratch: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<Option<String>, ExperimentError> {
    let spec = match collected.meta.as_slice() {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(ExperimentError::Merge(
                "the folders hold different meta-evaluations; report them apart".into(),
            ));
        }
    };
    let mut failed: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for f in collected.records.iter().flat_map(|r| &r.failures) {
        if f.kind != lethe_manifest::PluginKind::Metric {
            continue;
        }
        let name = f.plugin.split('@').next().unwrap_or(&f.plugin).to_owned();
        let e = failed.entry(name).or_insert((0, f.error.clone()));
        e.0 += 1;
    }
    let failed: BTreeMap<String, String> = failed
        .into_iter()
        .map(|(m, (n, first))| {
            (
                m,
                format!("failed on {n} model measurement(s), first: {first}"),
            )
        })
        .collect();
    let table = lethe_reports::meta::meta_evaluate(df, spec, &failed)?;
    let md = format!(
        "# Metric meta-evaluation\n\n{}\n## What produced it\n\n{}\n",
        table.to_markdown(3),
        meta_provenance(collected, spec)
    );
    files.push(("meta-eval.md".to_owned(), md.clone().into_bytes()));
    let csv = scratch.join("meta-eval.csv");
    table.write_csv(&csv)?;
    files.push(("meta-eval.csv".to_owned(), fs_err::read(&csv)?));
    let parquet = scratch.join("meta-values.parquet");
    lethe_reports::write_parquet(&mut table.values_frame()?, &parquet)?;
    files.push(("meta-values.parquet".to_owned(), fs_err::read(&parquet)?));
    for (name, svg) in lethe_reports::meta::plots(&table) {
        files.push((name, svg.into_bytes()));
    }
    Ok(Some(md))
}

/// The pools, their models' cache keys, the plugins' hashes and the seeds.
fn meta_provenance(collected: &Collected, spec: &lethe_reports::meta::MetaSpec) -> String {
    let mut out = String::new();
    let mut keys: Vec<String> = Vec::new();
    for r in &collected.records {
        match &r.job.rows {
            crate::plan::Rows::Pool { label, member } => keys.push(format!(
                "- `{label}` (pool {}): {} · lr {:e} · {} epochs · seed {} · model {}",
                if member.data.knows() { "P" } else { "N" },
                member.data.name(),
                member.learning_rate,
                member.epochs,
                member.seed,
                r.run
                    .member_keys
                    .get(label)
                    .map_or("?", |k| &k[..16.min(k.len())])
            )),
            crate::plan::Rows::Baselines => keys.push(format!(
                "- base, target, oracle: models {}",
                r.run
                    .model_keys
                    .iter()
                    .map(|k| &k[..16.min(k.len())])
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            crate::plan::Rows::Method { label, plugin } => keys.push(format!(
                "- `{label}` (unlearned): {} sha256 {}… · lr {:e} · {} epochs ({} steps)",
                plugin.name,
                &plugin.sha256[..12.min(plugin.sha256.len())],
                r.job.unlearn.learning_rate,
                r.job.unlearn.epochs,
                r.run.unlearn_steps
            )),
        }
    }
    let mut metrics: Vec<String> = Vec::new();
    for r in &collected.records {
        for m in &r.job.metrics {
            let t = format!("{} {}…", m.name, &m.sha256[..12.min(m.sha256.len())]);
            if !metrics.contains(&t) {
                metrics.push(t);
            }
        }
    }
    out.push_str(&format!(
        "Pool P {} models, pool N {}, unlearned {}; relearning `{}`, 4-bit {}, further {}; seed {} (bootstrap {} replicates). Metrics: {}.\n\nModels:\n{}\n",
        spec.knows.len(),
        spec.unaware.len(),
        spec.unlearned.len(),
        spec.relearn,
        spec.quant4.join(", "),
        if spec.extra.is_empty() { "none".to_owned() } else { spec.extra.join(", ") },
        spec.seed,
        spec.bootstrap,
        metrics.join(", "),
        keys.join("\n")
    ));
    out
}

/// The protocols' tables (Markdown, with what produced them), and their files: `tables.md`
/// and one `table-<file>.csv` each. `None` when the plans carry no tables.
fn protocol_tables(
    df: &DataFrame,
    collected: &Collected,
    scratch: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<Option<String>, ExperimentError> {
    if collected.tables.is_empty() {
        return Ok(None);
    }
    let mut md = format!(
        "# {}\n\n{}",
        collected.titles.join(" + "),
        provenance(&collected.records)
    );
    for spec in &collected.tables {
        let Some(table) = lethe_reports::render_table(df, spec)? else {
            continue;
        };
        md.push('\n');
        md.push_str(&table.to_markdown(2));
        let path = scratch.join(format!("table-{}.csv", spec.file));
        table.write_csv(&path)?;
        files.push((format!("table-{}.csv", spec.file), fs_err::read(&path)?));
    }
    files.push(("tables.md".to_owned(), md.clone().into_bytes()));
    Ok(Some(md))
}

/// What produced a protocol's tables: the model, seeds, unlearning settings, plugins and
/// the suites with their sizes.
fn provenance(records: &[JobRecord]) -> String {
    let mut md = String::new();
    let Some(first) = records.first() else {
        return md;
    };
    let i = &first.run;
    let cfg = &i.model_config;
    let seeds: BTreeSet<u64> = records.iter().map(|r| r.job.seed).collect();
    let method = records
        .iter()
        .find(|r| matches!(r.job.rows, crate::plan::Rows::Method { .. }))
        .unwrap_or(first);
    let u = &method.run.unlearn;
    md.push_str(&format!(
        "Model: {} parameters ({} layers, hidden {}, {} heads, vocabulary {}){}; seeds {}; \
         unlearning: {} epochs over the forget split, lr {}, batch {}.\n\n",
        i.parameters,
        cfg["num_hidden_layers"],
        cfg["hidden_size"],
        cfg["num_attention_heads"],
        cfg["vocab_size"],
        first
            .job
            .model
            .as_ref()
            .map(|m| format!(
                ", from checkpoint sha256 {}",
                m.sha256.get(..16).unwrap_or("")
            ))
            .unwrap_or_default(),
        seeds_text(&seeds),
        u.epochs,
        u.learning_rate,
        u.batch_size,
    ));
    // Each plugin once, with what it ran with (a method's own learning rate included).
    let mut plugins: Vec<String> = Vec::new();
    for r in records {
        for p in &r.run.plugins {
            let mut text = format!(
                "{}@{} ({})",
                p.name,
                p.version,
                p.sha256.get(..12).unwrap_or("")
            );
            if !p.config.as_object().is_none_or(|o| o.is_empty()) {
                text.push_str(&format!(" config {}", p.config));
            }
            if matches!(&r.job.rows, crate::plan::Rows::Method { plugin, .. } if plugin.name == p.name)
                && r.run.unlearn.learning_rate != u.learning_rate
            {
                text.push_str(&format!(" lr {}", r.run.unlearn.learning_rate));
            }
            if !plugins.contains(&text) {
                plugins.push(text);
            }
        }
    }
    md.push_str(&format!("Plugins: {}.\n\n", plugins.join(", ")));
    md.push_str("| suite | jobs | split sizes |\n|---|---:|---|\n");
    let mut suites: Vec<(&str, usize, String)> = Vec::new();
    for r in records {
        match suites.iter_mut().find(|(s, _, _)| *s == r.run.suite) {
            Some((_, n, _)) => *n += 1,
            None => {
                let sizes: Vec<String> = r
                    .run
                    .split_sizes
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                suites.push((&r.run.suite, 1, sizes.join(", ")));
            }
        }
    }
    for (s, n, sizes) in suites {
        md.push_str(&format!("| {s} | {n} | {sizes} |\n"));
    }
    md
}

/// A private scratch folder for polars' file writers.
fn tempfile_dir() -> Result<PathBuf, ExperimentError> {
    let dir = std::env::temp_dir().join(format!("lethe-report-{}", std::process::id()));
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}

/// Write a report's files into `out`: all of them under temporary names, then each renamed
/// into place (a reader never sees half a file, and a failed write leaves the previous report
/// whole). `out` may be an output folder of `exec`: the report then sits
/// beside its plan and shards. A non-empty folder that holds neither is refused.
pub fn write(out: &Path, report: &Report) -> Result<(), ExperimentError> {
    if out.exists() {
        let ours = out.join("leaderboard.md").exists() || out.join("plan.jsonl").exists();
        let empty = fs_err::read_dir(out)?.next().is_none();
        if !ours && !empty {
            return Err(ExperimentError::NotOurs(out.to_owned()));
        }
    }
    fs_err::create_dir_all(out)?;
    // Every file is written under a temporary name first and renamed into place only when all
    // are written: a full disk or a failed write leaves the previous report whole (renames
    // need no space).
    let mut staged = Vec::new();
    for (name, bytes) in &report.files {
        let mut tmp = crate::temp_result_file(out, &format!(".{name}."), "")
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", out.display())))?;
        std::io::Write::write_all(&mut tmp, bytes)
            .and_then(|()| tmp.as_file().sync_data())
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("{}: {e}", out.join(name).display()))
            })?;
        staged.push((tmp, out.join(name)));
    }
    for (tmp, path) in staged {
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    Ok(())
}
