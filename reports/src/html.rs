//! A leaderboard as one self-contained HTML page: inline style, inline SVG plots, no script
//! and no request for anything (it works opened from a file, offline, forever).
//!
//! Per protocol: the entries ranked by the board's column with 95 % intervals over seeds and
//! the pairs a paired test cannot tell apart marked; the reference models beside them; a
//! forget-versus-utility scatter with the Pareto front; the ranking column under each attack;
//! and, when a meta-evaluation is at hand, how far each metric column can be trusted. Then
//! every entry's provenance, stale entries marked.

use std::fmt::Write as _;

use crate::svg::{COLOURS, Svg, escape, unit};
use crate::{ColumnSpec, Leaderboard, Tie};

/// The page.
#[derive(Debug, Clone)]
pub struct BoardPage {
    /// The board's title.
    pub title: String,
    /// One line under the title: what built it.
    pub subtitle: String,
    /// The protocols, in the board's order.
    pub protocols: Vec<ProtocolPage>,
    /// Every entry, for the provenance section.
    pub entries: Vec<EntryInfo>,
}

/// One protocol's section.
#[derive(Debug, Clone)]
pub struct ProtocolPage {
    /// The protocol's name.
    pub name: String,
    /// What it runs (suite, model, seeds …).
    pub description: String,
    /// The clean leaderboard: entries and reference rows, every column.
    pub board: Leaderboard,
    /// The rows that are entries (the others are reference models).
    pub entries: Vec<String>,
    /// The ranking column, an index into `board.columns`.
    pub rank: usize,
    /// Whether a higher value of it ranks higher.
    pub higher_is_better: bool,
    /// The utility column of the scatter, an index into `board.columns`.
    pub utility: Option<usize>,
    /// Pairs of rows a paired test cannot tell apart, on any column.
    pub ties: Vec<Tie>,
    /// The ranking column under each attack: (attack, leaderboard of that one column).
    pub attacks: Vec<(String, Leaderboard)>,
    /// Trust in the metric outputs, from a meta-evaluation of this protocol's suite.
    pub trust: Vec<Trust>,
}

/// How far one metric output can be trusted: its meta-evaluation's overall score.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust {
    /// `metric:output`.
    pub output: String,
    /// Harmonic mean of faithfulness and robustness.
    pub overall: f64,
    /// Its bootstrap interval.
    pub interval: Option<(f64, f64)>,
}

/// The trust rows of a meta-evaluation's `meta-eval.csv` (ranked, as written); outputs
/// without an overall score are left out.
pub fn read_trust(path: &std::path::Path) -> Result<Vec<Trust>, crate::ReportError> {
    let table = crate::read_table(path).map_err(|e| crate::ReportError::Invalid(e.to_string()))?;
    let at = |name: &str| {
        table.columns.iter().position(|c| c == name).ok_or_else(|| {
            crate::ReportError::Invalid(format!(
                "{}: no column '{name}' (not a meta-eval.csv of `lethe meta-eval`)",
                path.display()
            ))
        })
    };
    let (o, v, lo, hi) = (
        at("output")?,
        at("overall")?,
        at("overall_low")?,
        at("overall_high")?,
    );
    let num = |c: &crate::TextCell| match c {
        crate::TextCell::Text(t) => t.parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    };
    Ok(table
        .rows
        .iter()
        .filter_map(|r| {
            let output = match &r[o] {
                crate::TextCell::Text(t) => t.clone(),
                _ => return None,
            };
            Some(Trust {
                output,
                overall: num(&r[v])?,
                interval: num(&r[lo]).zip(num(&r[hi])),
            })
        })
        .collect())
}

/// One entry's provenance.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// The entry's name.
    pub name: String,
    /// Its authors, joined.
    pub authors: String,
    /// `name@version` of its method.
    pub plugin: String,
    /// sha256 of the component.
    pub sha256: String,
    /// The interface (SDK) version it was built against.
    pub api_version: String,
    /// The Lethe version that ran it.
    pub lethe: String,
    /// Digest of each suite it ran on.
    pub suites: Vec<String>,
    /// The model cache keys its jobs started from (target).
    pub models: Vec<String>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// The configuration its scored runs used, as JSON, per protocol when they differ (a
    /// grid's choice).
    pub config: String,
    /// Why it is stale (its results no longer match the board), when it is.
    pub stale: Option<String>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;\
padding:0 1rem;color:#1b1b1b}h1{margin-bottom:.2rem}.sub{color:#555;margin-top:0}\
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .6rem;border-bottom:1px solid #ddd;\
text-align:right}th:first-child,td:first-child,td.name{text-align:left}td.name{font-weight:600}\
tr.ref td{color:#666;font-style:italic}.pm{color:#777;font-size:.85em}.tie{color:#a05a00}\
.stale{color:#b00020;font-weight:600}code{font-size:.85em;word-break:break-all}\
section{margin-bottom:3rem}figure{margin:1rem 0}.wide{overflow-x:auto}\
table.prov td,table.prov th,table.ranked th:nth-child(2),td.lab{text-align:left}";

/// `value ± interval`, or `–`.
fn cell(value: Option<f64>, interval: Option<f64>) -> String {
    match (value, interval) {
        (Some(v), Some(h)) => format!("{v:.3} <span class=\"pm\">± {h:.3}</span>"),
        (Some(v), None) => format!("{v:.3}"),
        _ => "–".to_owned(),
    }
}

/// The entries of `p` in rank order (best first; without a value last, by name).
pub fn ranked(p: &ProtocolPage) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..p.board.methods.len())
        .filter(|&i| p.entries.contains(&p.board.methods[i]))
        .collect();
    rows.sort_by(|&a, &b| {
        let (va, vb) = (p.board.values[a][p.rank], p.board.values[b][p.rank]);
        match (va, vb) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                if p.higher_is_better { o.reverse() } else { o }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => p.board.methods[a].cmp(&p.board.methods[b]),
        }
    });
    rows
}

fn tied(ties: &[Tie], column: &ColumnSpec, a: &str, b: &str) -> Option<f64> {
    ties.iter()
        .find(|t| {
            &t.column == column
                && ((t.rows.0 == a && t.rows.1 == b) || (t.rows.0 == b && t.rows.1 == a))
        })
        .map(|t| t.p_value)
}

/// The entries no other entry beats on both axes of the scatter: (row, x, y) with x the
/// ranking column (better as `higher_is_better` says) and y the utility (higher is better).
pub fn pareto_front(points: &[(String, f64, f64)], higher_is_better: bool) -> Vec<String> {
    let better = |a: f64, b: f64| if higher_is_better { a >= b } else { a <= b };
    points
        .iter()
        .filter(|(_, x, y)| {
            !points
                .iter()
                .any(|(_, ox, oy)| better(*ox, *x) && *oy >= *y && (ox != x || oy != y))
        })
        .map(|(n, _, _)| n.clone())
        .collect()
}

fn scatter(p: &ProtocolPage, utility: usize) -> String {
    let b = &p.board;
    let points: Vec<(String, f64, f64)> = (0..b.methods.len())
        .filter_map(|i| {
            Some((
                b.methods[i].clone(),
                b.values[i][p.rank]?,
                b.values[i][utility]?,
            ))
        })
        .collect();
    let front = pareto_front(
        &points
            .iter()
            .filter(|(n, _, _)| p.entries.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
        p.higher_is_better,
    );
    let headers = (
        b.columns[p.rank].header(true),
        b.columns[utility].header(true),
    );
    let (left, right, top, bottom) = (70.0, 620.0, 40.0, 380.0);
    let mut svg = Svg::new(680, 430, &format!("{} against {}", headers.1, headers.0));
    let lo = |k: usize| {
        points
            .iter()
            .map(|q| if k == 0 { q.1 } else { q.2 })
            .fold(f64::INFINITY, f64::min)
    };
    let hi = |k: usize| {
        points
            .iter()
            .map(|q| if k == 0 { q.1 } else { q.2 })
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let (x0, x1, y0, y1) = (lo(0), hi(0), lo(1), hi(1));
    let pad = |a: f64, b: f64| if b > a { (b - a) * 0.08 } else { 0.5 };
    let (x0, x1) = (x0 - pad(x0, x1), x1 + pad(x0, x1));
    let (y0, y1) = (y0 - pad(y0, y1), y1 + pad(y0, y1));
    let px = |v: f64| left + unit(v, x0, x1) * (right - left);
    let py = |v: f64| bottom - unit(v, y0, y1) * (bottom - top);
    svg.line((left, bottom), (right, bottom), "#444444");
    svg.line((left, bottom), (left, top), "#444444");
    svg.text(
        (left + right) / 2.0,
        bottom + 35.0,
        &headers.0,
        "middle",
        12,
    );
    svg.text(left - 10.0, top - 10.0, &headers.1, "start", 12);
    for (v, anchor) in [(x0, "start"), (x1, "end")] {
        svg.text(px(v), bottom + 16.0, &format!("{v:.3}"), anchor, 11);
    }
    for v in [y0, y1] {
        svg.text(left - 6.0, py(v) + 4.0, &format!("{v:.3}"), "end", 11);
    }
    let mut on_front: Vec<&(String, f64, f64)> =
        points.iter().filter(|q| front.contains(&q.0)).collect();
    on_front.sort_by(|a, b| a.1.total_cmp(&b.1));
    for w in on_front.windows(2) {
        svg.line(
            (px(w[0].1), py(w[0].2)),
            (px(w[1].1), py(w[1].2)),
            "#e15759",
        );
    }
    // Labels are moved down until they clear the ones already placed (close points would
    // otherwise print their names over each other).
    let mut placed: Vec<(f64, f64, f64)> = Vec::new();
    for (i, (name, x, y)) in points.iter().enumerate() {
        let entry = p.entries.contains(name);
        let colour = if entry {
            COLOURS[i % COLOURS.len()]
        } else {
            "#999999"
        };
        svg.dot(px(*x), py(*y), colour);
        let label = if front.contains(name) {
            format!("{name} ★")
        } else {
            name.clone()
        };
        let (lx, width) = (px(*x) + 7.0, 6.5 * label.chars().count() as f64);
        let mut ly = py(*y) - 6.0;
        for _ in 0..8 {
            let clash = placed
                .iter()
                .any(|(ox, oy, ow)| (ly - oy).abs() < 12.0 && lx < ox + ow && *ox < lx + width);
            if !clash {
                break;
            }
            ly += 12.0;
        }
        placed.push((lx, ly, width));
        svg.text(lx, ly, &label, "start", 11);
    }
    svg.finish()
}

fn protocol_section(html: &mut String, p: &ProtocolPage) {
    let b = &p.board;
    let _ = write!(
        html,
        "<section id=\"protocol-{id}\"><h2>{name}</h2><p class=\"sub\">{desc}</p>",
        id = escape(&p.name),
        name = escape(&p.name),
        desc = escape(&p.description)
    );
    let rank_header = b.columns[p.rank].header(true);
    let _ = write!(
        html,
        "<p>Ranked by <b>{}</b> ({} is better); 95 % intervals over seeds. ≈ marks an entry a \
         paired Wilcoxon test cannot tell from the one above it on that column (p ≥ 0.05).</p>",
        escape(&rank_header),
        if p.higher_is_better {
            "higher"
        } else {
            "lower"
        }
    );
    html.push_str(
        "<div class=\"wide\"><table class=\"ranked\"><thead><tr><th>#</th><th>entry</th>\
         <th>seeds</th>",
    );
    for c in &b.columns {
        let _ = write!(html, "<th>{}</th>", escape(&c.header(true)));
    }
    html.push_str("</tr></thead><tbody>");
    let order = ranked(p);
    for (k, &i) in order.iter().enumerate() {
        let name = &b.methods[i];
        let tie = k
            .checked_sub(1)
            .and_then(|j| tied(&p.ties, &b.columns[p.rank], name, &b.methods[order[j]]));
        let mark = tie.map_or(String::new(), |pv| {
            format!(" <span class=\"tie\" title=\"p = {pv:.3}\">≈</span>")
        });
        let _ = write!(
            html,
            "<tr class=\"entry\"><td>{}</td><td class=\"name\">{}{mark}</td><td>{}</td>",
            k + 1,
            escape(name),
            b.seeds[i]
        );
        for j in 0..b.columns.len() {
            let _ = write!(html, "<td>{}</td>", cell(b.values[i][j], b.intervals[i][j]));
        }
        html.push_str("</tr>");
    }
    for i in (0..b.methods.len()).filter(|i| !p.entries.contains(&b.methods[*i])) {
        let _ = write!(
            html,
            "<tr class=\"ref\"><td></td><td class=\"lab\">{} (reference)</td><td>{}</td>",
            escape(&b.methods[i]),
            b.seeds[i]
        );
        for j in 0..b.columns.len() {
            let _ = write!(html, "<td>{}</td>", cell(b.values[i][j], b.intervals[i][j]));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");

    if let Some(u) = p.utility {
        let _ = write!(
            html,
            "<figure>{}<figcaption>Each row at its mean over seeds; ★ and the red line: the \
             entries no other entry beats on both.</figcaption></figure>",
            scatter(p, u)
        );
    }
    if !p.attacks.is_empty() {
        let _ = write!(
            html,
            "<h3>Under attack</h3><p>{} of every row, clean and after each attack.</p>\
             <table><thead><tr><th>row</th><th>clean</th>",
            escape(&rank_header)
        );
        for (a, _) in &p.attacks {
            let _ = write!(html, "<th>{}</th>", escape(a));
        }
        html.push_str("</tr></thead><tbody>");
        for (i, name) in b.methods.iter().enumerate() {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td>",
                escape(name),
                cell(b.values[i][p.rank], b.intervals[i][p.rank])
            );
            for (_, board) in &p.attacks {
                let at = board.methods.iter().position(|m| m == name);
                let v = at.and_then(|r| board.values[r].first().copied().flatten());
                let h = at.and_then(|r| board.intervals[r].first().copied().flatten());
                let _ = write!(html, "<td>{}</td>", cell(v, h));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
    }
    if !p.trust.is_empty() {
        html.push_str(
            "<h3>Trust in the metrics</h3><p>Overall score of each metric output in this \
             board's meta-evaluation (harmonic mean of faithfulness and robustness).</p>\
             <table><thead><tr><th>metric output</th><th>overall</th><th>95 % interval</th></tr>\
             </thead><tbody>",
        );
        for t in &p.trust {
            let iv = t
                .interval
                .map_or("–".to_owned(), |(a, b)| format!("[{a:.3}, {b:.3}]"));
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{:.3}</td><td>{iv}</td></tr>",
                escape(&t.output),
                t.overall
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
}

/// The page as HTML text.
pub fn board_html(page: &BoardPage) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1><p class=\"sub\">{s}</p>",
        t = escape(&page.title),
        s = escape(&page.subtitle)
    );
    if page.protocols.len() > 1 {
        html.push_str("<nav><ul>");
        for p in &page.protocols {
            let _ = write!(
                html,
                "<li><a href=\"#protocol-{0}\">{0}</a></li>",
                escape(&p.name)
            );
        }
        html.push_str("</ul></nav>");
    }
    for p in &page.protocols {
        protocol_section(&mut html, p);
    }
    html.push_str(
        "<section id=\"provenance\"><h2>Entries</h2><div class=\"wide\"><table class=\"prov\"><thead><tr><th>entry</th>\
         <th>authors</th><th>method</th><th>configuration</th><th>SDK</th><th>Lethe</th><th>seeds</th>\
         <th>component sha256</th><th>suite digests</th><th>target model</th><th>status</th>\
         </tr></thead><tbody>",
    );
    for e in &page.entries {
        let seeds: Vec<String> = e.seeds.iter().map(u64::to_string).collect();
        let status = match &e.stale {
            Some(why) => format!("<span class=\"stale\">stale</span>: {}", escape(why)),
            None => "current".to_owned(),
        };
        let _ = write!(
            html,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
             <td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td>\
             <td>{status}</td></tr>",
            escape(&e.name),
            escape(&e.authors),
            escape(&e.plugin),
            escape(&e.config),
            escape(&e.api_version),
            escape(&e.lethe),
            seeds.join(", "),
            escape(&e.sha256),
            escape(&e.suites.join(" ")),
            escape(&e.models.join(" ")),
        );
    }
    html.push_str("</tbody></table></div></section></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn column(split: &str) -> ColumnSpec {
        ColumnSpec {
            metric: "m".into(),
            output: "o".into(),
            split: split.into(),
        }
    }

    fn page() -> ProtocolPage {
        ProtocolPage {
            name: "tiny".into(),
            description: "authors@1".into(),
            board: Leaderboard {
                columns: vec![column("forget"), column("retain")],
                methods: vec!["target".into(), "a".into(), "b".into(), "c".into()],
                values: vec![
                    vec![Some(0.9), Some(0.8)],
                    vec![Some(0.3), Some(0.5)],
                    vec![Some(0.2), Some(0.4)],
                    vec![Some(0.4), Some(0.3)],
                ],
                intervals: vec![vec![Some(0.01), None]; 4],
                seeds: vec![3; 4],
            },
            entries: vec!["a".into(), "b".into(), "c".into()],
            rank: 0,
            higher_is_better: false,
            utility: Some(1),
            ties: vec![Tie {
                column: column("forget"),
                rows: ("a".into(), "b".into()),
                p_value: 0.4,
                pairs: 10,
            }],
            attacks: Vec::new(),
            trust: Vec::new(),
        }
    }

    #[test]
    fn entries_rank_by_the_column_in_its_direction_and_references_are_not_ranked() {
        let mut p = page();
        let names = |p: &ProtocolPage| -> Vec<String> {
            ranked(p)
                .iter()
                .map(|&i| p.board.methods[i].clone())
                .collect()
        };
        assert_eq!(names(&p), ["b", "a", "c"]);
        p.higher_is_better = true;
        assert_eq!(names(&p), ["c", "a", "b"]);
    }

    #[test]
    fn the_front_holds_the_entries_nothing_beats_on_both_axes() {
        // Lower forget is better, higher utility is better: c (0.4, 0.3) is beaten by a.
        let pts = vec![
            ("a".to_owned(), 0.3, 0.5),
            ("b".to_owned(), 0.2, 0.4),
            ("c".to_owned(), 0.4, 0.3),
        ];
        assert_eq!(pareto_front(&pts, false), ["a", "b"]);
        // Higher forget is better: a beats b on both; c has the best forget.
        assert_eq!(pareto_front(&pts, true), ["a", "c"]);
    }

    #[test]
    fn the_page_is_self_contained_escapes_text_and_marks_ties() {
        let mut p = page();
        p.board.methods[3] = "<script>x</script>".into();
        p.entries[2] = "<script>x</script>".into();
        let html = board_html(&BoardPage {
            title: "Board & co".into(),
            subtitle: "built".into(),
            protocols: vec![p],
            entries: vec![],
        });
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("Board &amp; co"));
        // Nothing is fetched: no script, stylesheet, image or frame from anywhere.
        for fetch in ["src=", "<link", "@import", "url("] {
            assert!(!html.contains(fetch), "{fetch}");
        }
        // a is ranked second, right below b, and tied with it.
        let a_row = html.split("<tr class=\"entry\">").nth(2).unwrap();
        assert!(a_row.contains(">a <span class=\"tie\""), "{a_row}");
        assert!(html.contains("<svg"));
    }
}
