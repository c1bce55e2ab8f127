//! Aggregation of Lethe results with polars: the long-format results table (Parquet), and
//! leaderboards built from it (Markdown for people, CSV for machines).
//!
//! Results are long: one row per (run, model row, attack, metric, output, split, example,
//! seed). A leaderboard keeps the split-level values (`example` null), averages them over
//! seeds (with 95 % intervals), and lays them out with one row per method.
//!
//! [`read_table`] also reads users' CSV, TSV and Parquet files into plain rows of text, for the
//! suite importer (which does not depend on polars).

pub mod html;
mod merge;
pub mod meta;
pub mod parquet_input;
pub mod stats;
mod svg;
mod tables;
mod text_table;

pub use merge::{merge_shards, metric_columns};
pub use tables::{Cell, Table, TableColumn, TableGroup, TableSpec, render_table};

pub use text_table::{TableError, TextCell, TextTable, read_table};

use std::path::Path;

use lethe_manifest::ResultRow;
use polars::prelude::*;

/// The table type results and leaderboards are built from.
pub use polars::prelude::DataFrame;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// polars failed.
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A results file could not be written.
    #[error("{}: {reason}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A Parquet file could not be read.
    #[error(transparent)]
    Parquet(#[from] parquet_input::ParquetInputError),
    /// The results cannot give what was asked (a meta-evaluation's pools too small …).
    #[error("{0}")]
    Invalid(String),
}

/// The long-format results table.
pub fn results_frame(rows: &[ResultRow]) -> Result<DataFrame, ReportError> {
    let col_str = |name: &str, f: &dyn Fn(&ResultRow) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let df = DataFrame::new(vec![
        col_str("run", &|r| r.run.clone()),
        col_str("suite", &|r| r.suite.clone()),
        col_str("method", &|r| r.method.clone()),
        col_str("method_sha256", &|r| r.method_sha256.clone()),
        col_str("attack", &|r| r.attack.clone()),
        col_str("metric", &|r| r.metric.clone()),
        col_str("metric_sha256", &|r| r.metric_sha256.clone()),
        col_str("output", &|r| r.output.clone()),
        col_str("split", &|r| r.split.clone()),
        Column::new(
            "example".into(),
            rows.iter()
                .map(|r| r.example.clone())
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "value".into(),
            rows.iter().map(|r| r.value).collect::<Vec<f64>>(),
        ),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.seed).collect::<Vec<u64>>(),
        ),
    ])?;
    Ok(df)
}

/// Write a frame as Parquet (written to a temporary name, then renamed into place).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<(), ReportError> {
    let tmp = path.with_extension("parquet.tmp");
    let written = fs_err::File::create(&tmp)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            ParquetWriter::new(file.into_parts().0)
                .with_statistics(StatisticsOptions::empty())
                .finish(df)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| fs_err::rename(&tmp, path).map_err(|e| e.to_string()));
    written.map_err(|reason| {
        // Nothing half-written stays behind (a full disk, a read-only folder).
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            path: path.to_owned(),
            reason,
        }
    })
}

/// Read a Parquet results file (or shard), checked first ([`parquet_input`]): a damaged file
/// is an error naming it, never a crash.
pub fn read_parquet(path: &Path) -> Result<DataFrame, ReportError> {
    Ok(parquet_input::read(path)?)
}

/// One column of a leaderboard: a metric output on a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The metric plugin.
    pub metric: String,
    /// Its output.
    pub output: String,
    /// The split.
    pub split: String,
}

impl ColumnSpec {
    /// The column's header: "split output", or "split metric:output" when `qualified`.
    pub fn header(&self, qualified: bool) -> String {
        if qualified {
            format!("{} {}:{}", self.split, self.metric, self.output)
        } else {
            format!("{} {}", self.split, self.output)
        }
    }
}

/// Headers for columns: short, unless two metrics share an output name.
fn headers(columns: &[ColumnSpec]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            let clash = columns
                .iter()
                .any(|o| o.output == c.output && o.split == c.split && o.metric != c.metric);
            c.header(clash)
        })
        .collect()
}

/// A leaderboard: one row per method, one column per [`ColumnSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// The columns.
    pub columns: Vec<ColumnSpec>,
    /// Method names, in the order they first appear in the results.
    pub methods: Vec<String>,
    /// `values[i][j]`: mean over seeds of column j for method i.
    pub values: Vec<Vec<Option<f64>>>,
    /// Half width of the 95 % Student-t interval of each value: over seeds when there are
    /// several, else over the split's examples (None when neither has two values).
    pub intervals: Vec<Vec<Option<f64>>>,
    /// Seeds behind each row.
    pub seeds: Vec<usize>,
}

/// Split-level values of one attack: method, metric, output, split, seed, value.
fn split_values(
    results: &DataFrame,
    attack: &str,
    examples: bool,
) -> Result<DataFrame, ReportError> {
    let example = if examples {
        col("example").is_not_null()
    } else {
        col("example").is_null()
    };
    Ok(results
        .clone()
        .lazy()
        .filter(example.and(col("attack").eq(lit(attack))))
        .select([
            col("method"),
            col("metric"),
            col("output"),
            col("split"),
            col("seed"),
            col("example"),
            col("value"),
        ])
        .collect()?)
}

/// Build a leaderboard of the clean (`attack == "none"`) results.
pub fn leaderboard(
    results: &DataFrame,
    columns: &[ColumnSpec],
) -> Result<Leaderboard, ReportError> {
    leaderboard_under(results, columns, "none")
}

/// Values of one (method, column) cell, keyed by (seed, example); the example is `None` for
/// the split-level value.
type Cells = std::collections::BTreeMap<
    (String, usize),
    std::collections::BTreeMap<(u64, Option<String>), f64>,
>;

fn cells(
    df: &DataFrame,
    columns: &[ColumnSpec],
    methods: &mut Vec<String>,
) -> Result<Cells, ReportError> {
    let method = df.column("method")?.str()?;
    let metric = df.column("metric")?.str()?;
    let output = df.column("output")?.str()?;
    let split = df.column("split")?.str()?;
    let seed = df.column("seed")?.u64()?;
    let example = df.column("example")?.str()?;
    let value = df.column("value")?.f64()?;
    let mut out: Cells = Default::default();
    for i in 0..df.height() {
        let (Some(m), Some(me), Some(o), Some(s), Some(sd), Some(v)) = (
            method.get(i),
            metric.get(i),
            output.get(i),
            split.get(i),
            seed.get(i),
            value.get(i),
        ) else {
            continue;
        };
        if !methods.iter().any(|x| x == m) {
            methods.push(m.to_owned());
        }
        let Some(c) = columns
            .iter()
            .position(|c| c.metric == me && c.output == o && c.split == s)
        else {
            continue;
        };
        let key = (sd, example.get(i).map(str::to_owned));
        out.entry((m.to_owned(), c)).or_default().insert(key, v);
    }
    Ok(out)
}

/// The rows (in order of appearance) and their split-level and per-example values under one
/// attack.
fn both_levels(
    results: &DataFrame,
    columns: &[ColumnSpec],
    attack: &str,
) -> Result<(Vec<String>, Cells, Cells), ReportError> {
    let mut methods = Vec::new();
    let split_level = cells(
        &split_values(results, attack, false)?,
        columns,
        &mut methods,
    )?;
    let mut ignored = Vec::new();
    let example_level = cells(&split_values(results, attack, true)?, columns, &mut ignored)?;
    Ok((methods, split_level, example_level))
}

/// The leaderboard of the results measured under one attack (`"none"`: the clean one). Rows
/// are the methods with any value under that attack, in order of appearance. A cell is the
/// mean over seeds of the split-level value, with the 95 % t-interval over seeds, or over the
/// split's examples when only one seed is there.
pub fn leaderboard_under(
    results: &DataFrame,
    columns: &[ColumnSpec],
    attack: &str,
) -> Result<Leaderboard, ReportError> {
    let (methods, split_level, example_level) = both_levels(results, columns, attack)?;
    let mut values = vec![vec![None; columns.len()]; methods.len()];
    let mut intervals = vec![vec![None; columns.len()]; methods.len()];
    let mut seeds = vec![0; methods.len()];
    for ((m, c), by_seed) in &split_level {
        let Some(row) = methods.iter().position(|x| x == m) else {
            continue;
        };
        let vals: Vec<f64> = by_seed.values().copied().collect();
        let Some(mi) = stats::mean_interval(&vals) else {
            continue;
        };
        seeds[row] = seeds[row].max(mi.n);
        values[row][*c] = Some(mi.mean);
        intervals[row][*c] = if mi.n >= 2 {
            mi.half_width
        } else {
            let ex: Vec<f64> = example_level
                .get(&(m.clone(), *c))
                .map(|e| e.values().copied().collect())
                .unwrap_or_default();
            stats::mean_interval(&ex).and_then(|e| e.half_width)
        };
    }
    Ok(Leaderboard {
        columns: columns.to_vec(),
        methods,
        values,
        intervals,
        seeds,
    })
}

/// Two rows of a leaderboard whose difference on a column is not significant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tie {
    /// The column.
    pub column: ColumnSpec,
    /// The two rows.
    pub rows: (String, String),
    /// The test's two-sided p-value.
    pub p_value: f64,
    /// Pairs of values the test is over (non-zero differences).
    pub pairs: usize,
}

/// The pairs of rows whose difference on a column is not significant at level `alpha`: the
/// Wilcoxon signed-rank test over the per-example values paired by (seed, example) — both
/// rows scored the same questions with the same seeds. Pairs without per-example values are
/// paired by seed on the split-level values.
pub fn ties(
    results: &DataFrame,
    columns: &[ColumnSpec],
    attack: &str,
    alpha: f64,
) -> Result<Vec<Tie>, ReportError> {
    let (methods, split_level, example_level) = both_levels(results, columns, attack)?;
    let mut out = Vec::new();
    for (c, column) in columns.iter().enumerate() {
        for (i, a) in methods.iter().enumerate() {
            for b in &methods[i + 1..] {
                let pick = |m: &String| {
                    example_level
                        .get(&(m.clone(), c))
                        .or_else(|| split_level.get(&(m.clone(), c)))
                };
                let (Some(va), Some(vb)) = (pick(a), pick(b)) else {
                    continue;
                };
                let d: Vec<f64> = va
                    .iter()
                    .filter_map(|(k, x)| vb.get(k).map(|y| x - y))
                    .collect();
                let nonzero = d.iter().filter(|x| **x != 0.0).count();
                let p_value = match stats::signed_rank(&d) {
                    // Too few differences for any outcome to reach `alpha` (the smallest
                    // two-sided p of n differences is 2 / 2^n): the test cannot tell, so the
                    // pair is not called a tie (three seeds' split-level values, say).
                    Some(_) if 2f64.powi(1 - nonzero.min(64) as i32) >= alpha => continue,
                    Some(t) => t.p_value,
                    // Identical everywhere: no difference at all.
                    None if !d.is_empty() => 1.0,
                    None => continue,
                };
                if p_value >= alpha {
                    out.push(Tie {
                        column: column.clone(),
                        rows: (a.clone(), b.clone()),
                        p_value,
                        pairs: nonzero,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The ties as a Markdown list under their columns' headers (empty without ties).
pub fn ties_markdown(ties: &[Tie], columns: &[ColumnSpec]) -> String {
    let heads = headers(columns);
    let mut out = String::new();
    for (c, column) in columns.iter().enumerate() {
        let here: Vec<String> = ties
            .iter()
            .filter(|t| &t.column == column)
            .map(|t| format!("{} ~ {} (p = {:.2})", t.rows.0, t.rows.1, t.p_value))
            .collect();
        if !here.is_empty() {
            out.push_str(&format!("- {}: {}\n", heads[c], here.join(", ")));
        }
    }
    out
}

impl Leaderboard {
    /// A Markdown table, values rounded to `decimals`; a cell with an interval reads
    /// "mean ± half width".
    pub fn to_markdown(&self, decimals: usize) -> String {
        let mut out = String::from("| method |");
        for h in headers(&self.columns) {
            out.push_str(&format!(" {h} |"));
        }
        out.push_str("\n|---|");
        for _ in &self.columns {
            out.push_str("---:|");
        }
        out.push('\n');
        for (i, m) in self.methods.iter().enumerate() {
            out.push_str(&format!("| {m} |"));
            for j in 0..self.columns.len() {
                let cell = match (self.values[i][j], self.intervals[i][j]) {
                    (Some(v), Some(s)) => format!("{v:.decimals$} ± {s:.decimals$}"),
                    (Some(v), None) => format!("{v:.decimals$}"),
                    _ => "–".to_owned(),
                };
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out
    }

    /// A note saying what the cells' intervals are over (`None` when no row has a value).
    pub fn interval_note(&self) -> Option<String> {
        interval_note(&self.seeds)
    }

    /// The leaderboard as a polars frame: a `method` column and one column per spec.
    pub fn to_frame(&self) -> Result<DataFrame, ReportError> {
        let mut cols = vec![
            Column::new("method".into(), self.methods.clone()),
            Column::new(
                "seeds".into(),
                self.seeds.iter().map(|&n| n as u64).collect::<Vec<u64>>(),
            ),
        ];
        for (j, h) in headers(&self.columns).into_iter().enumerate() {
            let v: Vec<Option<f64>> = self.values.iter().map(|r| r[j]).collect();
            let ci: Vec<Option<f64>> = self.intervals.iter().map(|r| r[j]).collect();
            cols.push(Column::new(format!("{h} ±95%").into(), ci));
            cols.insert(cols.len() - 1, Column::new(h.into(), v));
        }
        Ok(DataFrame::new(cols)?)
    }

    /// Write the leaderboard as CSV.
    pub fn write_csv(&self, path: &Path) -> Result<(), ReportError> {
        write_csv(&mut self.to_frame()?, path)
    }
}

/// Write a frame as CSV with a header and six decimals (boards and tables alike).
pub(crate) fn write_csv(df: &mut DataFrame, path: &Path) -> Result<(), ReportError> {
    let file = fs_err::File::create(path)?;
    CsvWriter::new(file.into_parts().0)
        .include_header(true)
        .with_float_precision(Some(6))
        .finish(df)?;
    Ok(())
}

/// What a table's intervals are over, from the seeds behind each of its rows: rows with one
/// seed have intervals over the split's examples, the others over seeds. `None` when no row
/// has a value.
pub fn interval_note(row_seeds: &[usize]) -> Option<String> {
    let counts: Vec<usize> = row_seeds.iter().copied().filter(|&n| n > 0).collect();
    let (min, max) = (*counts.iter().min()?, *counts.iter().max()?);
    let t = "mean ± half width of the 95 % Student-t interval";
    Some(match (min, max) {
        (_, 1) => "Cells: value ± half width of the 95 % Student-t interval over the split's \
                   examples (one seed)."
            .to_owned(),
        (a, b) if a == b => format!("Cells: {t} over {a} seeds."),
        (1, b) => format!(
            "Cells: {t} over each row's seeds (up to {b}); rows with one seed: over the \
             split's examples (the CSV's seeds column gives each row's count)."
        ),
        (a, b) => format!(
            "Cells: {t} over each row's seeds ({a} to {b}; the CSV's seeds column gives each \
             row's count)."
        ),
    })
}

/// The attacks results were measured under, besides "none", in order of appearance.
pub fn attacks(results: &DataFrame) -> Result<Vec<String>, ReportError> {
    let mut v: Vec<String> = Vec::new();
    for x in results.column("attack")?.str()?.into_iter().flatten() {
        if x != "none" && !v.iter().any(|y| y == x) {
            v.push(x.to_owned());
        }
    }
    Ok(v)
}

/// The rows of one suite (`name@version`).
pub fn for_suite(results: &DataFrame, suite: &str) -> Result<DataFrame, ReportError> {
    Ok(results
        .clone()
        .lazy()
        .filter(col("suite").eq(lit(suite)))
        .collect()?)
}

/// How much of each model's forgetting survives each attack, on one forget-split column: a
/// summary of Lethe's own, not SPEC's robustness (`R` with the relearned oracle, `Q` under
/// quantization and their harmonic mean), which belongs to the metric meta-evaluation.
///
/// With `t` and `u` the target's and a row's clean values, and `t_A` and `a` their values
/// under an attack, the share of forgetting kept is `(t_A − a) / (t − u)` (the same formula
/// reads right whether higher means the model knows more or less): 1 when the row stays as far
/// below the target as it was, 0 when the attack brings it level with the target attacked the
/// same way, negative beyond. The attacked target is the reference because a query attack also
/// changes how well the target answers; when the target was not measured under the attack, its
/// clean value stands in. Rows that forgot nothing (|t − u| below `min_gap`) have no share.
#[derive(Debug, Clone, PartialEq)]
pub struct ForgettingKept {
    /// The column the shares are computed on.
    pub column: ColumnSpec,
    /// The attacks, in column order.
    pub attacks: Vec<String>,
    /// Row labels (every row except the target).
    pub methods: Vec<String>,
    /// Each row's clean value.
    pub clean: Vec<Option<f64>>,
    /// `kept[row][attack]`.
    pub kept: Vec<Vec<Option<f64>>>,
}

/// Compute [`ForgettingKept`] from results. `target` labels the finetuned model's row; rows in
/// `skip` (a base model that never learned the forget set) are left out.
pub fn forgetting_kept(
    results: &DataFrame,
    column: &ColumnSpec,
    higher_knows: bool,
    attacks: &[String],
    target: &str,
    skip: &[&str],
    min_gap: f64,
) -> Result<ForgettingKept, ReportError> {
    let cols = std::slice::from_ref(column);
    let clean = leaderboard_under(results, cols, "none")?;
    let value = |b: &Leaderboard, m: &str| -> Option<f64> {
        b.methods
            .iter()
            .position(|x| x == m)
            .and_then(|i| b.values[i][0])
    };
    let t = value(&clean, target);
    let under: Vec<Leaderboard> = attacks
        .iter()
        .map(|a| leaderboard_under(results, cols, a))
        .collect::<Result<_, _>>()?;
    // An attack that left questions out is compared with the clean values on the questions
    // it kept (`none@ATTACK`), where results carry them.
    let baselines: Vec<Option<Leaderboard>> = attacks
        .iter()
        .map(|a| {
            let b = leaderboard_under(results, cols, &format!("none@{a}"))?;
            Ok::<_, ReportError>((!b.methods.is_empty()).then_some(b))
        })
        .collect::<Result<_, _>>()?;
    let methods: Vec<String> = clean
        .methods
        .iter()
        .filter(|m| m.as_str() != target && !skip.contains(&m.as_str()))
        .cloned()
        .collect();
    let sign = if higher_knows { 1.0 } else { -1.0 };
    let mut kept = Vec::new();
    let mut cleans = Vec::new();
    for m in &methods {
        let u = value(&clean, m);
        cleans.push(u);
        kept.push(
            under
                .iter()
                .zip(&baselines)
                .map(|(b, base)| {
                    let (t, u) = match base {
                        Some(base) => (value(base, target), value(base, m)),
                        None => (t, u),
                    };
                    (b, t, u)
                })
                .map(|(b, t, u)| match (t, u, value(b, m)) {
                    (Some(t), Some(u), Some(a)) if sign * (t - u) > min_gap => {
                        let t_attacked = value(b, target).unwrap_or(t);
                        Some((t_attacked - a) / (t - u))
                    }
                    _ => None,
                })
                .collect(),
        );
    }
    Ok(ForgettingKept {
        column: column.clone(),
        attacks: attacks.to_vec(),
        methods,
        clean: cleans,
        kept,
    })
}

/// Each row's recovery under the relearning attack beside the oracle's under the same attack,
/// on one forget-split column, with how far the attack moved the row's weights. SPEC: a model
/// that recovers more than the retain-only oracle (which never saw the forget set) was not
/// unlearned; a row whose weights barely moved says nothing either way.
#[derive(Debug, Clone, PartialEq)]
pub struct RelearnGain {
    /// The column the gains are computed on.
    pub column: ColumnSpec,
    /// Row labels (every row except the oracle).
    pub methods: Vec<String>,
    /// `sign·(relearned − clean)` per row, sign +1 when higher means the model knows more.
    pub gain: Vec<Option<f64>>,
    /// The oracle's gain under the same attack.
    pub oracle_gain: Option<f64>,
    /// `‖θ' − θ‖/‖θ‖` of each row's relearning.
    pub weight_change: Vec<Option<f64>>,
    /// The weight change below which a row is flagged.
    pub min_change: f64,
}

/// What a row's relearning shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelearnVerdict {
    /// The attack moved the weights less than the threshold: it shows nothing.
    TooWeak,
    /// The row recovered more than the oracle: the forget set was not unlearned.
    AboveOracle,
    /// The row recovered no more than the oracle.
    WithinOracle,
    /// A value is missing.
    Unknown,
}

/// Compute [`RelearnGain`]: `column` under attacks "none" and `attack`, the weight change
/// from `weight_column` under `attack`.
pub fn relearn_gain(
    results: &DataFrame,
    column: &ColumnSpec,
    higher_knows: bool,
    attack: &str,
    oracle: &str,
    weight_column: &ColumnSpec,
    min_change: f64,
) -> Result<RelearnGain, ReportError> {
    let cols = std::slice::from_ref(column);
    let clean = leaderboard_under(results, cols, "none")?;
    let after = leaderboard_under(results, cols, attack)?;
    let moved = leaderboard_under(results, std::slice::from_ref(weight_column), attack)?;
    let value = |b: &Leaderboard, m: &str| -> Option<f64> {
        b.methods
            .iter()
            .position(|x| x == m)
            .and_then(|i| b.values[i][0])
    };
    let sign = if higher_knows { 1.0 } else { -1.0 };
    let gain = |m: &str| match (value(&clean, m), value(&after, m)) {
        (Some(c), Some(a)) => Some(sign * (a - c)),
        _ => None,
    };
    let methods: Vec<String> = clean
        .methods
        .iter()
        .filter(|m| m.as_str() != oracle)
        .cloned()
        .collect();
    Ok(RelearnGain {
        column: column.clone(),
        gain: methods.iter().map(|m| gain(m)).collect(),
        weight_change: methods.iter().map(|m| value(&moved, m)).collect(),
        oracle_gain: gain(oracle),
        methods,
        min_change,
    })
}

impl RelearnGain {
    /// The verdict on row `i`.
    pub fn verdict(&self, i: usize) -> RelearnVerdict {
        match (self.weight_change[i], self.gain[i], self.oracle_gain) {
            (Some(w), _, _) if w < self.min_change => RelearnVerdict::TooWeak,
            (_, Some(g), Some(o)) if g > o => RelearnVerdict::AboveOracle,
            (_, Some(_), Some(_)) => RelearnVerdict::WithinOracle,
            _ => RelearnVerdict::Unknown,
        }
    }

    /// A Markdown table: a row per model, its gain, the oracle's, the weight change and the
    /// verdict.
    pub fn to_markdown(&self, decimals: usize) -> String {
        let cell = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.decimals$}"));
        let mut out = format!(
            "| method | gain on {} | oracle's gain | weight change | verdict |\n|---|---:|---:|---:|---|\n",
            self.column.header(true)
        );
        for (i, m) in self.methods.iter().enumerate() {
            let verdict = match self.verdict(i) {
                RelearnVerdict::TooWeak => "attack too weak",
                RelearnVerdict::AboveOracle => "recovers more than the oracle: not unlearned",
                RelearnVerdict::WithinOracle => "within the oracle's",
                RelearnVerdict::Unknown => "–",
            };
            out.push_str(&format!(
                "| {m} | {} | {} | {} | {verdict} |\n",
                cell(self.gain[i]),
                cell(self.oracle_gain),
                self.weight_change[i].map_or("–".to_owned(), |w| format!("{w:.1e}")),
            ));
        }
        out
    }
}

impl ForgettingKept {
    /// A Markdown table: a row per model, its clean value, and the share kept per attack.
    pub fn to_markdown(&self, decimals: usize) -> String {
        let mut out = format!("| method | {} (clean) |", self.column.header(true));
        for a in &self.attacks {
            out.push_str(&format!(" kept under {a} |"));
        }
        out.push_str("\n|---|---:|");
        for _ in &self.attacks {
            out.push_str("---:|");
        }
        out.push('\n');
        let cell = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.decimals$}"));
        for (i, m) in self.methods.iter().enumerate() {
            out.push_str(&format!("| {m} | {} |", cell(self.clean[i])));
            for v in &self.kept[i] {
                out.push_str(&format!(" {} |", cell(*v)));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(method: &str, split: &str, example: Option<&str>, value: f64, seed: u64) -> ResultRow {
        ResultRow {
            run: "r".into(),
            suite: "s@1".into(),
            method: method.into(),
            method_sha256: String::new(),
            attack: "none".into(),
            metric: "rouge".into(),
            metric_sha256: "h".into(),
            output: "rougeL_recall".into(),
            split: split.into(),
            example: example.map(str::to_owned),
            value,
            seed,
        }
    }

    #[test]
    fn forgetting_kept_is_the_share_of_forgetting_an_attack_leaves() {
        let under = |method: &str, attack: &str, value: f64| ResultRow {
            attack: attack.into(),
            ..row(method, "forget", None, value, 1)
        };
        let rows = vec![
            under("target", "none", 1.0),
            under("oracle", "none", 0.4),
            under("ga", "none", 0.2),
            under("kept-all", "none", 0.6),
            under("target", "relearn", 1.0),
            under("oracle", "relearn", 0.5),
            under("ga", "relearn", 0.8),
            under("kept-all", "relearn", 0.6),
            under("ga", "quant4", 1.1),
            under("target", "few-shot", 0.5),
            under("ga", "few-shot", 0.3),
        ];
        let df = results_frame(&rows).unwrap();
        let col = ColumnSpec {
            metric: "rouge".into(),
            output: "rougeL_recall".into(),
            split: "forget".into(),
        };
        let attacks = vec![
            "relearn".to_owned(),
            "quant4".to_owned(),
            "few-shot".to_owned(),
        ];
        let r = forgetting_kept(&df, &col, true, &attacks, "target", &[], 1e-9).unwrap();
        assert_eq!(r.methods, vec!["oracle", "ga", "kept-all"]);
        let kept = |i: usize, j: usize| r.kept[i][j].unwrap();
        // Few-shot lowers the target to 0.5 too: GA's gap to it, 0.2, is a quarter of 0.8.
        assert!((kept(1, 2) - 0.25).abs() < 1e-12);
        // Oracle: forgot 0.6, relearning brings back 0.1 → keeps 5/6.
        assert!((kept(0, 0) - 5.0 / 6.0).abs() < 1e-12);
        // GA: forgot 0.8, relearning brings back 0.6 → keeps 1/4; 4-bit overshoots the target.
        assert!((kept(1, 0) - 0.25).abs() < 1e-12);
        assert!((kept(1, 1) + 0.125).abs() < 1e-12);
        assert!((kept(2, 0) - 1.0).abs() < 1e-12);
        assert_eq!(r.kept[0][1], None, "not measured under quant4");
        let md = r.to_markdown(2);
        assert!(md.contains("| ga | 0.20 | 0.25 | -0.13 | 0.25 |"), "{md}");

        // Lower-knows columns read the other way round.
        let lower: Vec<ResultRow> = rows
            .iter()
            .map(|r| ResultRow {
                value: -r.value,
                ..r.clone()
            })
            .collect();
        let df = results_frame(&lower).unwrap();
        let r2 = forgetting_kept(&df, &col, false, &attacks, "target", &[], 1e-9).unwrap();
        assert_eq!(r2.kept, r.kept);
    }

    #[test]
    fn an_attack_that_left_questions_out_is_compared_on_the_questions_it_kept() {
        let at = |method: &str, attack: &str, value: f64| ResultRow {
            attack: attack.into(),
            ..row(method, "forget", None, value, 1)
        };
        // Over all questions the target has 1.0 and GA 0.2; on the paraphrased ones only,
        // 0.8 and 0.4. Paraphrased, the target keeps 0.8 and GA rises to 0.6.
        let rows = vec![
            at("target", "none", 1.0),
            at("ga", "none", 0.2),
            at("target", "none@paraphrase", 0.8),
            at("ga", "none@paraphrase", 0.4),
            at("target", "paraphrase", 0.8),
            at("ga", "paraphrase", 0.6),
        ];
        let df = results_frame(&rows).unwrap();
        let col = ColumnSpec {
            metric: "rouge".into(),
            output: "rougeL_recall".into(),
            split: "forget".into(),
        };
        let attacks = vec!["paraphrase".to_owned()];
        let r = forgetting_kept(&df, &col, true, &attacks, "target", &[], 1e-9).unwrap();
        // (0.8 − 0.6) / (0.8 − 0.4) = 0.5; against all questions it would read 0.25.
        assert!((r.kept[0][0].unwrap() - 0.5).abs() < 1e-12, "{:?}", r.kept);
        assert_eq!(r.clean[0], Some(0.2));
    }

    #[test]
    fn relearning_gains_are_read_against_the_oracles_and_weak_attacks_are_flagged() {
        let at = |method: &str, attack: &str, value: f64| ResultRow {
            attack: attack.into(),
            ..row(method, "forget", None, value, 1)
        };
        let moved = |method: &str, change: f64| ResultRow {
            attack: "relearn".into(),
            metric: "weight-change".into(),
            output: "relative_l2".into(),
            ..row(method, "weights", None, change, 1)
        };
        let rows = vec![
            at("target", "none", 0.9),
            at("oracle", "none", 0.3),
            at("ga", "none", 0.2),
            at("npo", "none", 0.25),
            at("idle", "none", 0.2),
            at("target", "relearn", 0.95),
            at("oracle", "relearn", 0.4),
            at("ga", "relearn", 0.7),
            at("npo", "relearn", 0.3),
            at("idle", "relearn", 0.2),
            moved("target", 1e-2),
            moved("oracle", 1e-2),
            moved("ga", 1e-2),
            moved("npo", 1e-2),
            moved("idle", 1e-6),
        ];
        let df = results_frame(&rows).unwrap();
        let col = ColumnSpec {
            metric: "rouge".into(),
            output: "rougeL_recall".into(),
            split: "forget".into(),
        };
        let weights = ColumnSpec {
            metric: "weight-change".into(),
            output: "relative_l2".into(),
            split: "weights".into(),
        };
        let g = relearn_gain(&df, &col, true, "relearn", "oracle", &weights, 1e-4).unwrap();
        assert_eq!(g.methods, ["target", "ga", "npo", "idle"]);
        assert!((g.oracle_gain.unwrap() - 0.1).abs() < 1e-12);
        // GA regains 0.5 (more than the oracle's 0.1); NPO 0.05.
        assert!((g.gain[1].unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(g.verdict(1), RelearnVerdict::AboveOracle);
        assert_eq!(g.verdict(2), RelearnVerdict::WithinOracle);
        assert_eq!(g.verdict(3), RelearnVerdict::TooWeak);
        let md = g.to_markdown(2);
        assert!(
            md.contains("| ga | 0.50 | 0.10 | 1.0e-2 | recovers more than the oracle"),
            "{md}"
        );

        // A column where lower means the model knows more reads the other way round.
        let lower: Vec<ResultRow> = rows
            .iter()
            .map(|r| ResultRow {
                value: if r.metric == "rouge" {
                    -r.value
                } else {
                    r.value
                },
                ..r.clone()
            })
            .collect();
        let df = results_frame(&lower).unwrap();
        let l = relearn_gain(&df, &col, false, "relearn", "oracle", &weights, 1e-4).unwrap();
        assert_eq!(l.gain, g.gain);
    }

    #[test]
    fn leaderboard_averages_seeds_with_t_intervals_and_falls_back_to_examples() {
        let rows = vec![
            row("target", "forget", None, 0.9, 1),
            row("target", "forget", None, 0.7, 2),
            // Per-example values do not enter a mean over seeds.
            row("target", "forget", Some("e1"), 0.0, 1),
            row("ga", "forget", None, 0.1, 1),
            row("ga", "forget", Some("e1"), 0.0, 1),
            row("ga", "forget", Some("e2"), 0.2, 1),
            row("ga", "forget", Some("e3"), 0.1, 1),
            row("npo", "forget", None, 0.3, 1),
        ];
        let df = results_frame(&rows).unwrap();
        let cols = vec![ColumnSpec {
            metric: "rouge".into(),
            output: "rougeL_recall".into(),
            split: "forget".into(),
        }];
        let lb = leaderboard(&df, &cols).unwrap();
        assert_eq!(lb.methods, vec!["target", "ga", "npo"]);
        assert_eq!(lb.seeds, vec![2, 1, 1]);
        assert!((lb.values[0][0].unwrap() - 0.8).abs() < 1e-12);
        // Two seeds: t(0.975, 1) · s / √2 = 12.7062047 · 0.1414214 / 1.4142136 = 1.2706205.
        assert!((lb.intervals[0][0].unwrap() - 1.270_620_473_617_47).abs() < 1e-9);
        // One seed: over its three examples, t(0.975, 2) · 0.1 / √3 = 0.2484138.
        assert!((lb.intervals[1][0].unwrap() - 0.248_413_771_175_033_8).abs() < 1e-9);
        // One seed and no examples: no interval.
        assert_eq!(lb.intervals[2][0], None);
        let md = lb.to_markdown(3);
        assert!(md.contains("| target | 0.800 ± 1.271 |"), "{md}");
        assert!(md.contains("| npo | 0.300 |"), "{md}");
    }

    #[test]
    fn parquet_round_trips() {
        let rows = vec![row("ga", "retain", Some("x"), 0.25, 3)];
        let mut df = results_frame(&rows).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.parquet");
        write_parquet(&mut df, &path).unwrap();
        let back = read_parquet(&path).unwrap();
        assert!(back.equals_missing(&df));
    }
}
