//! Meta-evaluation of metrics (SPEC, "Meta-evaluation of metrics"): how faithfully a metric
//! separates models that know the forget set from models that do not, and how robust its
//! reading of unlearned models is to relearning, quantization and query attacks.
//!
//! - Faithfulness: ROC AUC of the metric's forget-split value, oriented so that higher reads
//!   "knows", separating pool P (knows) from pool N (does not).
//! - Relearning: r = (m_oracle_after − m_oracle_before) / (m_unl_after − m_unl_before),
//!   R = min(r, 1) (and at least 0), per unlearned model.
//! - Quantization and query attacks: q = m_before / m_after on the reading where higher
//!   knows (m_after / m_before where lower knows), Q = min(q, 1); the headline Q is the mean
//!   of 4-bit int4 and NF4.
//! - Robustness = HM(R, Q); Overall = HM(Faithfulness, Robustness).
//!
//! Aggregates are means over the unlearned models that keep at least a share of the target's
//! utility; intervals are percentile bootstraps over the models of every pool at once.

use std::collections::BTreeMap;

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ReportError;
use crate::svg::{COLOURS, Svg, unit};

/// One metric output a meta-evaluation ranks, and how it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaOutput {
    /// The metric plugin.
    pub metric: String,
    /// Its output.
    pub output: String,
    /// Whether a higher value means the model knows the forget set better (a verdict where
    /// higher is better reads the other way).
    pub higher_knows: bool,
}

impl MetaOutput {
    /// `metric:output`, as tables name it.
    pub fn label(&self) -> String {
        format!("{}:{}", self.metric, self.output)
    }
}

/// The utility an unlearned model must keep to enter the robustness pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UtilityRule {
    /// The metric.
    pub metric: String,
    /// Its output (higher is better).
    pub output: String,
    /// The split.
    pub split: String,
    /// The share of the target's value a model must keep (0.8).
    pub share: f64,
}

/// What a meta-evaluation computes from a plan's results: the pools by row label, the
/// outputs, the attacks and the bootstrap. It travels in the plan's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaSpec {
    /// The forget split whose values are read.
    pub forget_split: String,
    /// Rows of pool P (models that know the forget set).
    pub knows: Vec<String>,
    /// Rows of pool N (models that do not).
    pub unaware: Vec<String>,
    /// Rows of the unlearned models (the robustness pool before the utility filter).
    pub unlearned: Vec<String>,
    /// The row of the finetuned target (its utility is the filter's reference).
    pub target: String,
    /// The row of the retain-only oracle (relearned as each unlearned model is).
    pub oracle: String,
    /// The utility filter.
    pub utility: UtilityRule,
    /// The outputs ranked.
    pub outputs: Vec<MetaOutput>,
    /// The relearning attack's label.
    pub relearn: String,
    /// The 4-bit quantizations whose mean is Q.
    pub quant4: Vec<String>,
    /// Further model and query attacks, each a column of its own (8-bit, paraphrase …).
    pub extra: Vec<String>,
    /// Bootstrap replicates of the intervals.
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
}

/// A value with its 95 % bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The value on the pools as they are.
    pub value: f64,
    /// 2.5th percentile of the bootstrap.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

/// One ranked row.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaRow {
    /// The output.
    pub output: MetaOutput,
    /// Faithfulness (ROC AUC).
    pub faithfulness: Option<Estimate>,
    /// Relearning robustness R.
    pub relearn: Option<Estimate>,
    /// Quantization robustness Q (4-bit).
    pub quant: Option<Estimate>,
    /// HM(R, Q).
    pub robustness: Option<Estimate>,
    /// HM(faithfulness, robustness).
    pub overall: Option<Estimate>,
    /// The extra attacks' Q-form robustness, in [`MetaSpec::extra`] order.
    pub extra: Vec<Option<Estimate>>,
    /// Why a part is missing, when one is.
    pub note: Option<String>,
}

/// A meta-evaluation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaTable {
    /// The spec it was computed from.
    pub spec: MetaSpec,
    /// Rows, best overall first; rows without an overall value last, by faithfulness.
    pub rows: Vec<MetaRow>,
    /// Unlearned models that kept the utility (the robustness pool).
    pub kept: Vec<String>,
    /// The target's utility.
    pub target_utility: f64,
    /// Metrics left out of the ranking, with the reason.
    pub left_out: Vec<(String, String)>,
    /// Every value used: (model, pool, output, attack, value).
    pub values: Vec<(String, String, String, String, f64)>,
}

/// What a split aggregate is of: (row, attack, metric, output, split).
type Cell = (String, String, String, String, String);
/// Clean and attacked split aggregates, each the mean over seeds.
type Values = BTreeMap<Cell, f64>;

fn aggregates(results: &DataFrame) -> Result<Values, ReportError> {
    let s = |name: &str| -> Result<Vec<Option<String>>, ReportError> {
        Ok(results
            .column(name)?
            .str()?
            .into_iter()
            .map(|v| v.map(str::to_owned))
            .collect())
    };
    let (method, attack, metric, output, split, example) = (
        s("method")?,
        s("attack")?,
        s("metric")?,
        s("output")?,
        s("split")?,
        s("example")?,
    );
    let value: Vec<Option<f64>> = results.column("value")?.f64()?.into_iter().collect();
    let mut sums: BTreeMap<Cell, (f64, usize)> = BTreeMap::new();
    for i in 0..value.len() {
        if example[i].is_some() {
            continue;
        }
        let (Some(m), Some(a), Some(me), Some(o), Some(sp), Some(v)) = (
            &method[i], &attack[i], &metric[i], &output[i], &split[i], value[i],
        ) else {
            continue;
        };
        let e = sums
            .entry((m.clone(), a.clone(), me.clone(), o.clone(), sp.clone()))
            .or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    Ok(sums
        .into_iter()
        .map(|(k, (sum, n))| (k, sum / n as f64))
        .collect())
}

/// ROC AUC of `pos` against `neg` (ties count a half); `None` without both.
pub fn auc(pos: &[f64], neg: &[f64]) -> Option<f64> {
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in pos {
        for n in neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

/// The harmonic mean of two values in [0, 1] (0 when either is).
pub fn harmonic(a: f64, b: f64) -> f64 {
    if a <= 0.0 || b <= 0.0 {
        0.0
    } else {
        2.0 * a * b / (a + b)
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Per-model parts of one output: faithfulness scores and robustness ratios.
struct Parts {
    p: Vec<f64>,
    n: Vec<f64>,
    /// R per kept model (`None`: the model's value did not move under relearning).
    r: Vec<Option<f64>>,
    /// Q per kept model (mean over the 4-bit quantizations it has).
    q: Vec<Option<f64>>,
    extra: Vec<Vec<Option<f64>>>,
}

/// The statistics of one set of parts.
fn point(parts: &Parts) -> (Option<f64>, Option<f64>, Option<f64>, Vec<Option<f64>>) {
    let f = auc(&parts.p, &parts.n);
    let some = |v: &[Option<f64>]| mean(&v.iter().flatten().copied().collect::<Vec<_>>());
    let r = some(&parts.r);
    let q = some(&parts.q);
    let extra = parts.extra.iter().map(|v| some(v)).collect();
    (f, r, q, extra)
}

fn combine(f: Option<f64>, r: Option<f64>, q: Option<f64>) -> (Option<f64>, Option<f64>) {
    let rob = match (r, q) {
        (Some(r), Some(q)) => Some(harmonic(r, q)),
        _ => None,
    };
    let overall = match (f, rob) {
        (Some(f), Some(rob)) => Some(harmonic(f, rob)),
        _ => None,
    };
    (rob, overall)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Compute the meta-evaluation. `failed` names metrics with recorded failures (left out with
/// the reason given).
pub fn meta_evaluate(
    results: &DataFrame,
    spec: &MetaSpec,
    failed: &BTreeMap<String, String>,
) -> Result<MetaTable, ReportError> {
    let values = aggregates(results)?;
    let get = |row: &str, attack: &str, metric: &str, output: &str, split: &str| {
        values
            .get(&(
                row.to_owned(),
                attack.to_owned(),
                metric.to_owned(),
                output.to_owned(),
                split.to_owned(),
            ))
            .copied()
            .filter(|v| v.is_finite())
    };
    let invalid = |why: String| ReportError::Invalid(format!("meta-evaluation: {why}"));
    for (pool, rows) in [
        ("P (knows)", &spec.knows),
        ("N (does not know)", &spec.unaware),
    ] {
        if rows.len() < 2 {
            return Err(invalid(format!(
                "pool {pool} has {} model(s); at least 2 are needed",
                rows.len()
            )));
        }
    }
    let u = &spec.utility;
    let utility = |row: &str| get(row, "none", &u.metric, &u.output, &u.split);
    let target_utility = utility(&spec.target).ok_or_else(|| {
        invalid(format!(
            "the target has no {}:{} on {} (the utility filter's reference)",
            u.metric, u.output, u.split
        ))
    })?;
    let kept: Vec<String> = spec
        .unlearned
        .iter()
        .filter(|m| utility(m).is_some_and(|v| v >= u.share * target_utility))
        .cloned()
        .collect();
    if kept.len() < 2 {
        return Err(invalid(format!(
            "{} of {} unlearned models keep {} ≥ {:.2} × the target's {:.4}; at least 2 are \
             needed (more learning rates or step budgets, or a lower share)",
            kept.len(),
            spec.unlearned.len(),
            format_args!("{}:{} on {}", u.metric, u.output, u.split),
            u.share,
            target_utility
        )));
    }
    let split = &spec.forget_split;
    let mut rows = Vec::new();
    let mut left_out = Vec::new();
    let mut used = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed);
    for out in &spec.outputs {
        if let Some(why) = failed.get(&out.metric) {
            if !left_out.iter().any(|(m, _)| m == &out.metric) {
                left_out.push((out.metric.clone(), why.clone()));
            }
            continue;
        }
        let (me, o) = (&out.metric, &out.output);
        let sign = if out.higher_knows { 1.0 } else { -1.0 };
        let v = |row: &str, attack: &str| get(row, attack, me, o, split);
        let pool = |rows: &[String]| -> Vec<f64> {
            rows.iter()
                .filter_map(|r| v(r, "none"))
                .map(|x| sign * x)
                .collect()
        };
        let p = pool(&spec.knows);
        let n = pool(&spec.unaware);
        if p.is_empty() && n.is_empty() {
            continue; // no value on the forget split
        }
        for (row, pool) in spec
            .knows
            .iter()
            .map(|r| (r, "P"))
            .chain(spec.unaware.iter().map(|r| (r, "N")))
        {
            if let Some(x) = v(row, "none") {
                used.push((row.clone(), pool.into(), out.label(), "none".into(), x));
            }
        }
        // q on the knowing reading: recovery (the value moving towards "knows") lowers it.
        let ratio = |before: f64, after: f64| -> Option<f64> {
            let (a, b) = if out.higher_knows {
                (before, after)
            } else {
                (after, before)
            };
            (a > 0.0 && b > 0.0).then(|| (a / b).min(1.0))
        };
        let q_under = |row: &str, attack: &str| -> Option<f64> {
            // A query attack that left questions out is compared on the questions it kept.
            let base = v(row, &format!("none@{attack}")).or_else(|| v(row, "none"))?;
            ratio(base, v(row, attack)?)
        };
        let oracle_gain = match (v(&spec.oracle, &spec.relearn), v(&spec.oracle, "none")) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let mut r = Vec::new();
        let mut q = Vec::new();
        let mut extra = vec![Vec::new(); spec.extra.len()];
        for m in &kept {
            for attack in std::iter::once(&spec.relearn)
                .chain(&spec.quant4)
                .chain(&spec.extra)
                .chain(std::iter::once(&"none".to_owned()))
            {
                if let Some(x) = v(m, attack) {
                    used.push((
                        m.clone(),
                        "unlearned".into(),
                        out.label(),
                        attack.clone(),
                        x,
                    ));
                }
            }
            let gain = match (v(m, &spec.relearn), v(m, "none")) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            };
            r.push(match (oracle_gain, gain) {
                (Some(o), Some(g)) if g.abs() > 1e-12 => Some((o / g).clamp(0.0, 1.0)),
                _ => None,
            });
            let qs: Vec<f64> = spec.quant4.iter().filter_map(|a| q_under(m, a)).collect();
            q.push(mean(&qs));
            for (j, a) in spec.extra.iter().enumerate() {
                extra[j].push(q_under(m, a));
            }
        }
        let parts = Parts { p, n, r, q, extra };
        let (f, rr, qq, ex) = point(&parts);
        let (rob, overall) = combine(f, rr, qq);
        // The bootstrap draws each pool's models with replacement, all pools at once.
        let mut draws: Vec<[Option<f64>; 5]> = Vec::new();
        let mut extra_draws: Vec<Vec<Option<f64>>> = vec![Vec::new(); spec.extra.len()];
        for _ in 0..spec.bootstrap {
            let pick = |v: &[f64], rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f64> {
                (0..v.len())
                    .map(|_| v[rng.random_range(0..v.len())])
                    .collect()
            };
            let bp = if parts.p.is_empty() {
                Vec::new()
            } else {
                pick(&parts.p, &mut rng)
            };
            let bn = if parts.n.is_empty() {
                Vec::new()
            } else {
                pick(&parts.n, &mut rng)
            };
            let idx: Vec<usize> = (0..kept.len())
                .map(|_| rng.random_range(0..kept.len()))
                .collect();
            let take = |v: &[Option<f64>]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
            let b = Parts {
                p: bp,
                n: bn,
                r: take(&parts.r),
                q: take(&parts.q),
                extra: parts.extra.iter().map(|v| take(v)).collect(),
            };
            let (bf, br, bq, bex) = point(&b);
            let (brob, bo) = combine(bf, br, bq);
            draws.push([bf, br, bq, brob, bo]);
            for (j, x) in bex.into_iter().enumerate() {
                extra_draws[j].push(x);
            }
        }
        let estimate = |value: Option<f64>, col: &mut dyn Iterator<Item = Option<f64>>| {
            let value = value?;
            let mut xs: Vec<f64> = col.flatten().collect();
            if xs.is_empty() {
                return Some(Estimate {
                    value,
                    low: value,
                    high: value,
                });
            }
            xs.sort_by(f64::total_cmp);
            Some(Estimate {
                value,
                low: percentile(&xs, 0.025),
                high: percentile(&xs, 0.975),
            })
        };
        let col = |k: usize| draws.iter().map(move |d| d[k]);
        let note = if rr.is_none() {
            Some("R undefined: relearning moved no kept model's value".to_owned())
        } else if qq.is_none() {
            Some("Q undefined: no positive value before and after 4-bit rounding".to_owned())
        } else {
            None
        };
        rows.push(MetaRow {
            output: out.clone(),
            faithfulness: estimate(f, &mut col(0)),
            relearn: estimate(rr, &mut col(1)),
            quant: estimate(qq, &mut col(2)),
            robustness: estimate(rob, &mut col(3)),
            overall: estimate(overall, &mut col(4)),
            extra: ex
                .into_iter()
                .zip(&extra_draws)
                .map(|(x, d)| estimate(x, &mut d.iter().copied()))
                .collect(),
            note,
        });
    }
    // Best overall first; without one, after every row that has one, by faithfulness.
    let key = |r: &MetaRow| {
        (
            r.overall.is_some(),
            r.overall.map_or(f64::NEG_INFINITY, |e| e.value),
            r.faithfulness.map_or(f64::NEG_INFINITY, |e| e.value),
        )
    };
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(kb.2.total_cmp(&ka.2))
            .then(a.output.label().cmp(&b.output.label()))
    });
    Ok(MetaTable {
        spec: spec.clone(),
        rows,
        kept,
        target_utility,
        left_out,
        values: used,
    })
}

fn cell(e: &Option<Estimate>, decimals: usize) -> String {
    match e {
        Some(e) => format!(
            "{:.d$} [{:.d$}, {:.d$}]",
            e.value,
            e.low,
            e.high,
            d = decimals
        ),
        None => "—".to_owned(),
    }
}

impl MetaTable {
    /// The ranked table as Markdown, with what each column is and the pools' sizes.
    pub fn to_markdown(&self, decimals: usize) -> String {
        let s = &self.spec;
        let mut out = String::from(
            "| rank | metric:output | faithfulness | R (relearn) | Q (4-bit) | robustness | overall |",
        );
        for a in &s.extra {
            out.push_str(&format!(" {a} |"));
        }
        out.push_str("\n|---:|---|---:|---:|---:|---:|---:|");
        out.push_str(&"---:|".repeat(s.extra.len()));
        out.push('\n');
        for (i, r) in self.rows.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                r.output.label(),
                cell(&r.faithfulness, decimals),
                cell(&r.relearn, decimals),
                cell(&r.quant, decimals),
                cell(&r.robustness, decimals),
                cell(&r.overall, decimals)
            ));
            for e in &r.extra {
                out.push_str(&format!(" {} |", cell(e, decimals)));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "\nCells: value [95 % bootstrap interval, {} replicates over the pools' models]. \
             Pool P (knows the forget set): {} models; pool N (does not): {}. Robustness pool: \
             {} of {} unlearned models keep {}:{} on {} ≥ {} × the target's {:.4}. Q is the \
             mean of {}; the further columns are the same min(before/after, 1) under each \
             attack. Faithfulness reads each output's forget-split value, oriented so that \
             higher means \"knows\".\n",
            s.bootstrap,
            s.knows.len(),
            s.unaware.len(),
            self.kept.len(),
            s.unlearned.len(),
            s.utility.metric,
            s.utility.output,
            s.utility.split,
            s.utility.share,
            self.target_utility,
            s.quant4.join(" and ")
        ));
        let notes: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| {
                r.note
                    .as_ref()
                    .map(|n| format!("- {}: {n}", r.output.label()))
            })
            .collect();
        if !notes.is_empty() {
            out.push_str(&format!("\nNot ranked by overall:\n{}\n", notes.join("\n")));
        }
        if !self.left_out.is_empty() {
            out.push_str("\nLeft out of the ranking:\n");
            for (m, why) in &self.left_out {
                out.push_str(&format!("- {m}: {why}\n"));
            }
        }
        out
    }

    /// The ranked table as a frame (value, low, high per column).
    pub fn to_frame(&self) -> Result<DataFrame, ReportError> {
        let mut cols = vec![
            Column::new(
                "rank".into(),
                (1..=self.rows.len() as u32).collect::<Vec<u32>>(),
            ),
            Column::new(
                "output".into(),
                self.rows
                    .iter()
                    .map(|r| r.output.label())
                    .collect::<Vec<_>>(),
            ),
        ];
        let mut add = |name: &str, get: &dyn Fn(&MetaRow) -> Option<Estimate>| {
            for (suffix, f) in [
                ("", (|e: Estimate| e.value) as fn(Estimate) -> f64),
                ("_low", |e: Estimate| e.low),
                ("_high", |e: Estimate| e.high),
            ] {
                cols.push(Column::new(
                    format!("{name}{suffix}").into(),
                    self.rows
                        .iter()
                        .map(|r| get(r).map(f))
                        .collect::<Vec<Option<f64>>>(),
                ));
            }
        };
        add("faithfulness", &|r| r.faithfulness);
        add("relearn", &|r| r.relearn);
        add("quant4", &|r| r.quant);
        add("robustness", &|r| r.robustness);
        add("overall", &|r| r.overall);
        for (j, a) in self.spec.extra.iter().enumerate() {
            add(a, &|r: &MetaRow| r.extra.get(j).copied().flatten());
        }
        Ok(DataFrame::new(cols)?)
    }

    /// Write the ranked table as CSV.
    pub fn write_csv(&self, path: &std::path::Path) -> Result<(), ReportError> {
        crate::write_csv(&mut self.to_frame()?, path)
    }

    /// Every value the table was computed from: model, pool, output, attack, value.
    pub fn values_frame(&self) -> Result<DataFrame, ReportError> {
        let v = &self.values;
        Ok(DataFrame::new(vec![
            Column::new(
                "model".into(),
                v.iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "pool".into(),
                v.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "output".into(),
                v.iter().map(|x| x.2.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "attack".into(),
                v.iter().map(|x| x.3.clone()).collect::<Vec<_>>(),
            ),
            Column::new("value".into(), v.iter().map(|x| x.4).collect::<Vec<f64>>()),
        ])?)
    }
}

/// The plots of a meta-evaluation, as (file name, SVG text): the P and N pools' forget-split
/// values per output (`meta-faithfulness.svg`), and per attack each kept unlearned model's
/// value before against after (`meta-ATTACK.svg`), each output scaled to [0, 1] over its
/// own values so that all share one frame.
pub fn plots(table: &MetaTable) -> Vec<(String, String)> {
    let mut out = vec![("meta-faithfulness.svg".to_owned(), faithfulness_plot(table))];
    let s = &table.spec;
    for attack in std::iter::once(&s.relearn).chain(&s.quant4).chain(&s.extra) {
        out.push((format!("meta-{attack}.svg"), attack_plot(table, attack)));
    }
    out
}

fn faithfulness_plot(table: &MetaTable) -> String {
    let (left, right, top, step) = (300.0, 880.0, 50.0, 26.0);
    let height = (top + step * table.rows.len() as f64 + 40.0) as u32;
    let mut svg = Svg::new(
        900,
        height,
        "Forget-split value per model, scaled per output: P (blue) knows, N (red) does not",
    );
    let x = |u: f64| left + u * (right - left);
    for (i, row) in table.rows.iter().enumerate() {
        let label = row.output.label();
        let y = top + step * i as f64 + step / 2.0;
        svg.text(left - 10.0, y + 4.0, &label, "end", 12);
        svg.line((x(0.0), y), (x(1.0), y), "#dddddd");
        let vals: Vec<(&str, f64)> = table
            .values
            .iter()
            .filter(|v| v.2 == label && v.3 == "none" && (v.1 == "P" || v.1 == "N"))
            .map(|v| (v.1.as_str(), v.4))
            .collect();
        let lo = vals.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
        let hi = vals.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
        for (pool, v) in vals {
            let (colour, dy) = if pool == "P" {
                ("#1f77b4", -5.0)
            } else {
                ("#d62728", 5.0)
            };
            svg.dot(x(unit(v, lo, hi)), y + dy, colour);
        }
    }
    let bottom = top + step * table.rows.len() as f64 + 20.0;
    svg.text(x(0.0), bottom, "lowest", "middle", 11);
    svg.text(x(1.0), bottom, "highest", "middle", 11);
    svg.finish()
}

fn attack_plot(table: &MetaTable, attack: &str) -> String {
    let (left, top, size) = (60.0, 50.0, 500.0);
    let mut svg = Svg::new(
        820,
        640,
        &format!("Kept unlearned models before and after {attack}, each output scaled"),
    );
    let px = |u: f64| left + u * size;
    let py = |u: f64| top + (1.0 - u) * size;
    svg.line((px(0.0), py(0.0)), (px(1.0), py(0.0)), "black");
    svg.line((px(0.0), py(0.0)), (px(0.0), py(1.0)), "black");
    svg.line((px(0.0), py(0.0)), (px(1.0), py(1.0)), "#999999");
    svg.text(px(0.5), py(0.0) + 35.0, "before (clean)", "middle", 12);
    svg.text(20.0, py(0.5), &format!("after {attack}"), "middle", 12);
    let mut legend = 0;
    for (j, row) in table.rows.iter().enumerate() {
        let label = row.output.label();
        let of = |model: &str, a: &str| {
            table
                .values
                .iter()
                .find(|v| v.0 == model && v.2 == label && v.3 == a)
                .map(|v| v.4)
        };
        let pairs: Vec<(f64, f64)> = table
            .kept
            .iter()
            .filter_map(|m| Some((of(m, "none")?, of(m, attack)?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let lo = pairs
            .iter()
            .flat_map(|p| [p.0, p.1])
            .fold(f64::INFINITY, f64::min);
        let hi = pairs
            .iter()
            .flat_map(|p| [p.0, p.1])
            .fold(f64::NEG_INFINITY, f64::max);
        let colour = COLOURS[j % COLOURS.len()];
        for p in pairs {
            svg.dot(px(unit(p.0, lo, hi)), py(unit(p.1, lo, hi)), colour);
        }
        if legend < 10 {
            svg.dot(px(1.0) + 15.0, top + 14.0 * legend as f64, colour);
            svg.text(
                px(1.0) + 22.0,
                top + 14.0 * legend as f64 + 4.0,
                &label,
                "start",
                9,
            );
            legend += 1;
        }
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use lethe_manifest::ResultRow;

    #[test]
    fn auc_counts_ties_as_halves_and_orders_by_pool() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(auc(&[1.0, 1.0], &[1.0]), Some(0.5));
        // One of four pairs reversed.
        assert_eq!(auc(&[2.0, 4.0], &[1.0, 3.0]), Some(0.75));
        assert_eq!(auc(&[], &[1.0]), None);
        assert!((harmonic(0.5, 1.0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(harmonic(0.0, 1.0), 0.0);
    }

    fn row(method: &str, attack: &str, metric: &str, split: &str, value: f64) -> ResultRow {
        ResultRow {
            run: "r".into(),
            suite: "s@1".into(),
            method: method.into(),
            method_sha256: String::new(),
            attack: attack.into(),
            metric: metric.into(),
            metric_sha256: String::new(),
            output: "v".into(),
            split: split.into(),
            example: None,
            value,
            seed: 0,
        }
    }

    fn spec(outputs: Vec<MetaOutput>) -> MetaSpec {
        MetaSpec {
            forget_split: "forget".into(),
            knows: vec!["p1".into(), "p2".into()],
            unaware: vec!["n1".into(), "n2".into()],
            unlearned: vec!["u1".into(), "u2".into(), "u3".into()],
            target: "target".into(),
            oracle: "oracle".into(),
            utility: UtilityRule {
                metric: "util".into(),
                output: "v".into(),
                split: "retain".into(),
                share: 0.8,
            },
            outputs,
            relearn: "relearn".into(),
            quant4: vec!["quant4".into()],
            extra: vec!["quant8".into()],
            bootstrap: 50,
            seed: 0,
        }
    }

    /// Hand-computed values: the pools separate perfectly for `good` and not at all for
    /// `flat`; u3 falls below the utility share and is left out (its ratios would change
    /// both means); R and Q use the oracle's gain over each model's, before over after.
    #[test]
    fn faithfulness_and_robustness_follow_spec_on_hand_computed_pools() {
        let mut rows = Vec::new();
        for (m, u) in [("target", 1.0), ("u1", 0.9), ("u2", 0.85), ("u3", 0.5)] {
            rows.push(row(m, "none", "util", "retain", u));
        }
        for (m, v) in [("p1", 0.9), ("p2", 0.8), ("n1", 0.3), ("n2", 0.2)] {
            rows.push(row(m, "none", "good", "forget", v));
            rows.push(row(m, "none", "flat", "forget", 1.0));
        }
        // Oracle gains 0.1 under relearning; u1 gains 0.2 (r = 0.5), u2 0.05 (r = 2 → 1).
        for (m, before, relearn, q4, q8) in [
            ("oracle", 0.2, 0.3, 0.2, 0.2),
            ("u1", 0.4, 0.6, 0.5, 0.4),
            ("u2", 0.3, 0.35, 0.6, 0.3),
            ("u3", 0.1, 0.9, 0.9, 0.9),
        ] {
            rows.push(row(m, "none", "good", "forget", before));
            rows.push(row(m, "relearn", "good", "forget", relearn));
            rows.push(row(m, "quant4", "good", "forget", q4));
            rows.push(row(m, "quant8", "good", "forget", q8));
            for a in ["none", "relearn", "quant4", "quant8"] {
                rows.push(row(m, a, "flat", "forget", 1.0));
            }
        }
        let df = crate::results_frame(&rows).unwrap();
        let outs = vec![
            MetaOutput {
                metric: "flat".into(),
                output: "v".into(),
                higher_knows: true,
            },
            MetaOutput {
                metric: "good".into(),
                output: "v".into(),
                higher_knows: true,
            },
        ];
        let t = meta_evaluate(&df, &spec(outs.clone()), &BTreeMap::new()).unwrap();
        assert_eq!(t.kept, ["u1", "u2"]);
        assert_eq!(t.rows[0].output.metric, "good", "{}", t.to_markdown(3));
        let g = &t.rows[0];
        assert_eq!(g.faithfulness.unwrap().value, 1.0);
        let r = (0.5 + 1.0) / 2.0;
        assert!((g.relearn.unwrap().value - r).abs() < 1e-12);
        let q = (0.4 / 0.5 + 0.3 / 0.6) / 2.0;
        assert!((g.quant.unwrap().value - q).abs() < 1e-12);
        assert!((g.robustness.unwrap().value - harmonic(r, q)).abs() < 1e-12);
        assert!((g.overall.unwrap().value - harmonic(1.0, harmonic(r, q))).abs() < 1e-12);
        assert!((g.extra[0].unwrap().value - 1.0).abs() < 1e-12);
        // The flat metric: chance faithfulness, no relearning signal: ranked last.
        let f = &t.rows[1];
        assert_eq!(f.faithfulness.unwrap().value, 0.5);
        assert!(f.relearn.is_none() && f.overall.is_none() && f.note.is_some());

        // Read the other way, the same values are perfectly unfaithful.
        let flipped = vec![MetaOutput {
            higher_knows: false,
            ..outs[1].clone()
        }];
        let t = meta_evaluate(&df, &spec(flipped), &BTreeMap::new()).unwrap();
        assert_eq!(t.rows[0].faithfulness.unwrap().value, 0.0);

        // A failed metric is left out with its reason; too strict a filter is refused.
        let failed = BTreeMap::from([("flat".to_owned(), "trapped on 2 models".to_owned())]);
        let t = meta_evaluate(&df, &spec(outs.clone()), &failed).unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.left_out[0].0, "flat");
        let mut strict = spec(outs.clone());
        strict.utility.share = 0.88;
        let e = meta_evaluate(&df, &strict, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("1 of 3 unlearned models"), "{e}");
        let mut small = spec(outs);
        small.knows.pop();
        let e = meta_evaluate(&df, &small, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("1 model(s)"), "{e}");
    }
}
