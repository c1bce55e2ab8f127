//! Protocol tables: a benchmark's tables as data ([`TableSpec`]: which suites stack, which
//! metric outputs are columns, how they are scaled) and their layout from the merged results
//! ([`render_table`]), with the same means and 95 % intervals as the leaderboards.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ColumnSpec, ReportError, leaderboard};

/// One column of a protocol table: its header and the metric output it shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableColumn {
    /// The header, as the paper names it ("forget acc %").
    pub header: String,
    /// The metric plugin.
    pub metric: String,
    /// Its output.
    pub output: String,
    /// The split.
    pub split: String,
    /// Values (and intervals) are multiplied by this: 100 for a percentage.
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

/// A block of a protocol table: the rows of one suite, led by a label ("10 %", "round 2").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableGroup {
    /// The lead cell of the block's rows.
    pub label: String,
    /// The suite's name (its results' `suite` column is `NAME@VERSION`).
    pub suite: String,
}

/// A protocol table as data: what a benchmark reports, kept in the plan that computes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// A short name for its file (`table-<file>.csv`).
    pub file: String,
    /// One line saying what the table shows.
    pub title: String,
    /// The header of the lead column ("forget", "round", "setting").
    pub lead: String,
    /// The blocks, top to bottom.
    pub groups: Vec<TableGroup>,
    /// The columns after the lead and the method.
    pub columns: Vec<TableColumn>,
    /// Decimals of the printed values.
    pub decimals: usize,
    /// Row names as the paper gives them ("target" → "finetuned").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub row_names: BTreeMap<String, String>,
}

/// A cell of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text: a lead label or a method.
    Text(String),
    /// A number: mean, and half width of its 95 % interval when there is one; `None` when the
    /// results hold no value.
    Value {
        /// The mean (over seeds, or the one seed's value).
        mean: Option<f64>,
        /// Half width of the 95 % interval.
        interval: Option<f64>,
    },
}

/// A table with a title: what a protocol prints (Markdown) and stores (CSV).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// A short name for its file (`table-<file>.csv`).
    pub file: String,
    /// One line saying what the table shows.
    pub title: String,
    /// Column headers.
    pub header: Vec<String>,
    /// Rows of cells, as many as headers.
    pub rows: Vec<Vec<Cell>>,
    /// Decimals of the printed values.
    pub decimals: usize,
    /// Seeds behind each row (what its intervals are over: seeds, or examples for one).
    pub seeds: Vec<usize>,
}

/// The suite value (`NAME@VERSION`) of results whose suite is called `name`.
fn suite_value(results: &DataFrame, name: &str) -> Result<Option<String>, ReportError> {
    let suites = results.column("suite")?.str()?;
    Ok(suites
        .into_iter()
        .flatten()
        .find(|s| s.rsplit_once('@').map_or(*s, |(n, _)| n) == name)
        .map(str::to_owned))
}

/// Lay out a protocol table from merged results: for each group, the leaderboard of its suite
/// over the table's columns (clean results), scaled, rows renamed. `None` when no group's
/// suite is in the results (a plan run without that part of the protocol).
pub fn render_table(results: &DataFrame, spec: &TableSpec) -> Result<Option<Table>, ReportError> {
    let mut header = vec![spec.lead.clone(), "method".to_owned()];
    header.extend(spec.columns.iter().map(|c| c.header.clone()));
    let columns: Vec<ColumnSpec> = spec
        .columns
        .iter()
        .map(|c| ColumnSpec {
            metric: c.metric.clone(),
            output: c.output.clone(),
            split: c.split.clone(),
        })
        .collect();
    let mut rows = Vec::new();
    let mut seeds = Vec::new();
    for group in &spec.groups {
        let Some(suite) = suite_value(results, &group.suite)? else {
            continue;
        };
        let sub = results
            .clone()
            .lazy()
            .filter(col("suite").eq(lit(suite.as_str())))
            .collect()?;
        let board = leaderboard(&sub, &columns)?;
        for (i, method) in board.methods.iter().enumerate() {
            seeds.push(board.seeds[i]);
            let mut row = vec![
                Cell::Text(group.label.clone()),
                Cell::Text(spec.row_names.get(method).unwrap_or(method).clone()),
            ];
            for (j, c) in spec.columns.iter().enumerate() {
                row.push(Cell::Value {
                    mean: board.values[i][j].map(|v| v * c.scale),
                    interval: board.intervals[i][j].map(|v| v * c.scale),
                });
            }
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(Table {
        file: spec.file.clone(),
        title: spec.title.clone(),
        header,
        rows,
        decimals: spec.decimals,
        seeds,
    }))
}

impl Table {
    fn numeric(&self, column: usize) -> bool {
        self.rows
            .iter()
            .all(|r| matches!(r.get(column), Some(Cell::Value { .. })))
    }

    /// The table in Markdown, its title as a heading of the given level; a cell with an
    /// interval reads "mean ± half width", and a note says what the intervals are over.
    pub fn to_markdown(&self, level: usize) -> String {
        let d = self.decimals;
        let mut out = format!("{} {}\n\n|", "#".repeat(level.max(1)), self.title);
        for h in &self.header {
            out.push_str(&format!(" {h} |"));
        }
        out.push_str("\n|");
        for i in 0..self.header.len() {
            out.push_str(if self.numeric(i) { "---:|" } else { "---|" });
        }
        out.push('\n');
        for r in &self.rows {
            out.push('|');
            for c in r {
                let text = match c {
                    Cell::Text(t) => t.clone(),
                    Cell::Value {
                        mean: Some(m),
                        interval: Some(h),
                    } => format!("{m:.d$} ± {h:.d$}"),
                    Cell::Value {
                        mean: Some(m),
                        interval: None,
                    } => format!("{m:.d$}"),
                    Cell::Value { mean: None, .. } => "–".to_owned(),
                };
                out.push_str(&format!(" {text} |"));
            }
            out.push('\n');
        }
        if let Some(note) = crate::interval_note(&self.seeds) {
            out.push_str(&format!("\n{note}\n"));
        }
        out
    }

    /// The table as a polars frame: text columns as text; each number column as its value
    /// and a `… ±95%` column with the interval's half width.
    pub fn to_frame(&self) -> Result<DataFrame, ReportError> {
        let mut cols = Vec::new();
        for (i, h) in self.header.iter().enumerate() {
            if self.numeric(i) {
                let (mean, interval): (Vec<Option<f64>>, Vec<Option<f64>>) = self
                    .rows
                    .iter()
                    .map(|r| match &r[i] {
                        Cell::Value { mean, interval } => (*mean, *interval),
                        Cell::Text(_) => (None, None),
                    })
                    .unzip();
                cols.push(Column::new(h.as_str().into(), mean));
                cols.push(Column::new(format!("{h} ±95%").into(), interval));
            } else {
                let text: Vec<Option<String>> = self
                    .rows
                    .iter()
                    .map(|r| match r.get(i) {
                        Some(Cell::Text(t)) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                cols.push(Column::new(h.as_str().into(), text));
            }
        }
        Ok(DataFrame::new(cols)?)
    }

    /// Write the table as CSV.
    pub fn write_csv(&self, path: &Path) -> Result<(), ReportError> {
        crate::write_csv(&mut self.to_frame()?, path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lethe_manifest::ResultRow;

    use super::*;

    fn row(suite: &str, method: &str, split: &str, seed: u64, value: f64) -> ResultRow {
        ResultRow {
            run: format!("{suite}-{seed}"),
            suite: format!("{suite}@1"),
            method: method.into(),
            method_sha256: String::new(),
            attack: "none".into(),
            metric: "rouge".into(),
            metric_sha256: String::new(),
            output: "recall".into(),
            split: split.into(),
            example: None,
            value,
            seed,
        }
    }

    fn spec() -> TableSpec {
        TableSpec {
            file: "t".into(),
            title: "T".into(),
            lead: "forget".into(),
            groups: vec![
                TableGroup {
                    label: "10 %".into(),
                    suite: "privacy-10".into(),
                },
                TableGroup {
                    label: "5 %".into(),
                    suite: "privacy-5".into(),
                },
                TableGroup {
                    label: "absent".into(),
                    suite: "nowhere".into(),
                },
            ],
            columns: vec![
                TableColumn {
                    header: "forget %".into(),
                    metric: "rouge".into(),
                    output: "recall".into(),
                    split: "forget".into(),
                    scale: 100.0,
                },
                TableColumn {
                    header: "retain".into(),
                    metric: "rouge".into(),
                    output: "recall".into(),
                    split: "retain".into(),
                    scale: 1.0,
                },
            ],
            decimals: 1,
            row_names: [("target".to_owned(), "finetuned".to_owned())].into(),
        }
    }

    #[test]
    fn groups_stack_in_the_specs_order_with_scaled_means_and_intervals() {
        // Distinct values per suite, split and seed: a swapped group, a split read for another
        // or a scale applied to the wrong column shows.
        let rows = vec![
            row("privacy-5", "target", "forget", 0, 0.9),
            row("privacy-5", "target", "retain", 0, 0.8),
            row("privacy-10", "target", "forget", 0, 0.5),
            row("privacy-10", "target", "forget", 1, 0.7),
            row("privacy-10", "target", "retain", 0, 0.2),
            row("privacy-10", "target", "retain", 1, 0.4),
            row("privacy-10", "ga", "forget", 0, 0.1),
            row("privacy-10", "ga", "forget", 1, 0.3),
        ];
        let df = crate::results_frame(&rows).unwrap();
        let t = render_table(&df, &spec()).unwrap().unwrap();
        assert_eq!(t.header, ["forget", "method", "forget %", "retain"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0][0], Cell::Text("10 %".into()));
        assert_eq!(t.rows[0][1], Cell::Text("finetuned".into()));
        assert_eq!(t.rows[1][1], Cell::Text("ga".into()));
        assert_eq!(t.rows[2][0], Cell::Text("5 %".into()));
        let Cell::Value { mean, interval } = &t.rows[0][2] else {
            panic!("{:?}", t.rows[0][2]);
        };
        // Mean of 0.5 and 0.7 is 0.6, ×100; the t-interval of two values with s = 0.1414 is
        // t(0.975, 1) · s / √2 = 12.706 · 0.1 = 1.2706, ×100.
        assert!((mean.unwrap() - 60.0).abs() < 1e-9);
        assert!((interval.unwrap() - 127.06).abs() < 0.01, "{interval:?}");
        let Cell::Value { mean, .. } = &t.rows[0][3] else {
            panic!();
        };
        assert!((mean.unwrap() - 0.3).abs() < 1e-12);
        // GA has no retain value: "–".
        assert_eq!(
            t.rows[1][3],
            Cell::Value {
                mean: None,
                interval: None
            }
        );
        // Rows on 2 seeds and on 1: the note says which intervals are over what.
        assert_eq!(t.seeds, [2, 2, 1]);
        let md = t.to_markdown(2);
        assert!(
            md.contains("rows with one seed: over the split's examples"),
            "{md}"
        );
        assert!(
            md.contains("| 10 % | finetuned | 60.0 ± 127.1 | 0.3 ± 1.3 |"),
            "{md}"
        );
        assert!(md.contains("| 10 % | ga | 20.0 ± 127.1 | – |"), "{md}");
        let frame = t.to_frame().unwrap();
        assert_eq!(
            frame
                .get_column_names()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            [
                "forget",
                "method",
                "forget %",
                "forget % ±95%",
                "retain",
                "retain ±95%"
            ]
        );
    }

    #[test]
    fn a_table_none_of_whose_suites_ran_is_left_out() {
        let df = crate::results_frame(&[row("other", "target", "forget", 0, 0.5)]).unwrap();
        assert!(render_table(&df, &spec()).unwrap().is_none());
    }
}
