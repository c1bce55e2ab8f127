//! Merging the shards of many jobs into one results table.

use std::path::PathBuf;

use polars::prelude::*;

use crate::{ColumnSpec, ReportError};

/// Read many Parquet shards as one lazy scan and collect them, in the order given (the order
/// of the plans' jobs), so the merged table is the same bytes however the jobs were run.
/// A shard that fails [`crate::parquet_input::check`] is refused by name.
pub fn merge_shards(paths: &[PathBuf]) -> Result<DataFrame, ReportError> {
    if paths.is_empty() {
        return crate::results_frame(&[]);
    }
    let sources: Vec<PlPath> = paths
        .iter()
        .map(|p| PlPath::Local(p.as_path().into()))
        .collect();
    let args = ScanArgsParquet {
        // Shards carry no statistics (they are written without), and must not be cached:
        // a resumed run rewrites some of them.
        use_statistics: false,
        cache: false,
        rechunk: true,
        ..Default::default()
    };
    // Each shard is checked before polars decodes any (a damaged one is named, never a crash).
    for path in paths {
        crate::parquet_input::check(path, &fs_err::read(path)?)?;
    }
    // Each shard passed its check, so a failure now is the merged scan's: name them all.
    let what = match paths {
        [one] => one.clone(),
        [first, rest @ ..] => PathBuf::from(format!(
            "{} and {} other shard(s)",
            first.display(),
            rest.len()
        )),
        [] => PathBuf::new(),
    };
    let df = crate::parquet_input::guarded(&what, || {
        LazyFrame::scan_parquet_files(sources.into(), args)?.collect()
    });
    Ok(df?)
}

/// The leaderboard's columns: each metric's first output (in `metrics` order, as results list
/// it) on each split that has a split-level value, in order of appearance.
pub fn metric_columns(
    results: &DataFrame,
    metrics: &[String],
) -> Result<Vec<ColumnSpec>, ReportError> {
    let df = results
        .clone()
        .lazy()
        .filter(col("example").is_null().and(col("attack").eq(lit("none"))))
        .select([col("metric"), col("output"), col("split")])
        .collect()?;
    let metric = df.column("metric")?.str()?;
    let output = df.column("output")?.str()?;
    let split = df.column("split")?.str()?;
    let mut out: Vec<ColumnSpec> = Vec::new();
    for m in metrics {
        let mut first: Option<&str> = None;
        for i in 0..df.height() {
            if metric.get(i) != Some(m.as_str()) {
                continue;
            }
            let (Some(o), Some(s)) = (output.get(i), split.get(i)) else {
                continue;
            };
            let o = *first.get_or_insert(o);
            if o == output.get(i).unwrap_or_default()
                && !out
                    .iter()
                    .any(|c| &c.metric == m && c.output == o && c.split == s)
            {
                out.push(ColumnSpec {
                    metric: m.clone(),
                    output: o.to_owned(),
                    split: s.to_owned(),
                });
            }
        }
    }
    Ok(out)
}
