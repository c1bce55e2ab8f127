//! Importers: published benchmarks from a local copy of their release, and users' own data.
//!
//! [`qa`] imports users' question–answer tables (JSON, JSON Lines, CSV, Parquet) with a column
//! mapping; see its module.
//!
//! [`tofu`] reads TOFU (Maini et al., 2024) as the Hugging Face release lays it out: JSON Lines
//! files named `full`, `forgetNN`, `retainNN`, `holdoutNN`, their `_perturbed` variants,
//! `retain_perturbed`, `real_authors_perturbed`, `world_facts_perturbed` and `idontknow.jsonl`
//! (one refusal a line). The data is never shipped with Lethe: users download it themselves.
//!
//! TOFU's rules: `full` is 200 authors × 20 questions in author order; `forgetNN` is the last
//! NN % of the authors, `retainNN` the rest (`retain90` with `forget10` …); `retain_perturbed`
//! holds the first 20 authors with paraphrased and perturbed answers for evaluation.
//!
//! [`muse()`] reads one corpus of MUSE (Shi et al., 2024; e.g. its `news` folder) as MUSE's own
//! data folder lays it out, each file one JSON array:
//!
//! | file | elements | split (role, records) |
//! |---|---|---|
//! | `raw/forget.json` (optional) | strings: the forget training corpus | `forget` (forget, texts) |
//! | `raw/retain1.json` (optional) | strings: the retain training corpus | `retain` (retain, texts) |
//! | `privleak/forget.json` | strings | `forget` when there is no `raw/forget.json` |
//! | `privleak/retain2.json` | strings | `retain` when there is no `raw/retain1.json` |
//! | `privleak/holdout.json` | strings: never trained on | `holdout` (holdout, texts) |
//! | `verbmem/forget.json` | `{"prompt", "gt"}` | `verbmem-forget` (eval, continuations) |
//! | `knowmem/forget_qa.json` | `{"question", "answer"}` | `knowmem-forget` (eval, questions) |
//! | `knowmem/retain2_qa.json` | `{"question", "answer"}` | `knowmem-retain` (eval, questions) |
//!
//! Without `raw/forget.json`, the forget documents are those of `privleak/forget.json` and each
//! verbmem prompt joined to its continuation by a space, exact duplicates dropped: the target
//! is then finetuned on every forget text the copy has. The suite is named `muse-` and the
//! folder's name, lowercased, each run of other characters than letters and digits made one
//! '-', a leading `muse` dropped (`news` and `MUSE-News` both give `muse-news`), and `muse-news`
//! when nothing is left. [`write_muse_layout`] writes a suite in the same layout, for MUSE's own
//! scripts and for tests. Like TOFU, MUSE is never shipped with Lethe.

mod muse;
pub mod qa;

pub use muse::{muse, write_muse_layout};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::format::load::problem;
use crate::{
    Problem, QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteError, SuiteManifest,
    TextRecord,
};

/// Questions per author in TOFU.
pub const QUESTIONS_PER_AUTHOR: usize = 20;
/// Authors in TOFU's `full` split.
pub const AUTHORS: usize = 200;

/// One line of a TOFU file (the union of the fields its files use).
#[derive(Debug, Deserialize)]
struct TofuRow {
    question: String,
    answer: String,
    #[serde(default)]
    paraphrased_answer: Option<String>,
    #[serde(default)]
    perturbed_answer: Option<Vec<String>>,
    #[serde(default)]
    paraphrased_question: Option<String>,
}

fn read_rows(dir: &Path, file: &str, problems: &mut Vec<Problem>) -> Option<Vec<TofuRow>> {
    let path = dir.join(file);
    if !path.exists() {
        return None;
    }
    let text = match fs_err::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(problem(file, None, None, format!("cannot read: {e}")));
            return Some(Vec::new());
        }
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<TofuRow>(line) {
            Ok(r) => rows.push(r),
            Err(e) => problems.push(problem(file, Some(i + 1), None, e.to_string())),
        }
    }
    Some(rows)
}

/// Turn TOFU rows into records; `first_author` is the 0-based author of the first row.
fn records(prefix: &str, rows: &[TofuRow], first_author: Option<usize>) -> Vec<QaRecord> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut groups = BTreeMap::new();
            if let Some(a) = first_author {
                groups.insert(
                    "author".to_owned(),
                    format!("{:03}", a + i / QUESTIONS_PER_AUTHOR),
                );
            }
            QaRecord {
                id: format!("{prefix}-{i:04}"),
                question: r.question.clone(),
                answer: r.answer.clone(),
                groups,
                paraphrased_answers: r.paraphrased_answer.iter().cloned().collect(),
                perturbed_answers: r.perturbed_answer.clone().unwrap_or_default(),
                paraphrased_questions: r.paraphrased_question.iter().cloned().collect(),
                terms: Vec::new(),
                options: Vec::new(),
                correct_option: None,
            }
        })
        .collect()
}

/// Add the evaluation fields of `perturbed` to `base`, matching rows by question.
fn merge(file: &str, base: &mut [QaRecord], perturbed: &[TofuRow], problems: &mut Vec<Problem>) {
    let by_question: BTreeMap<&str, &TofuRow> =
        perturbed.iter().map(|r| (r.question.as_str(), r)).collect();
    for rec in base.iter_mut() {
        match by_question.get(rec.question.as_str()) {
            Some(p) => {
                rec.paraphrased_answers = p.paraphrased_answer.iter().cloned().collect();
                rec.perturbed_answers = p.perturbed_answer.clone().unwrap_or_default();
                rec.paraphrased_questions = p.paraphrased_question.iter().cloned().collect();
            }
            None => problems.push(problem(
                file,
                None,
                None,
                format!("has no row for the question '{}'", rec.question),
            )),
        }
    }
}

/// Import TOFU from a local folder, forgetting `forget_percent` % of the authors (1, 5, 10 in
/// the release; any value when `full.json` is present).
pub fn tofu(dir: &Path, forget_percent: u32) -> Result<Suite, SuiteError> {
    let mut problems = Vec::new();
    if forget_percent == 0 || forget_percent >= 100 {
        return Err(SuiteError::Generate(format!(
            "forget percentage {forget_percent} is not in 1..=99"
        )));
    }
    let nn = format!("{forget_percent:02}");
    let n_forget_authors = (AUTHORS * forget_percent as usize).div_ceil(100);
    let first_forget = AUTHORS - n_forget_authors;
    let full = read_rows(dir, "full.json", &mut problems);
    // The ratios are cut from `full` by author: any other length would cut mid-author (or
    // past the end).
    if let Some(rows) = &full
        && rows.len() != AUTHORS * QUESTIONS_PER_AUTHOR
    {
        problems.push(problem(
            "full.json",
            None,
            None,
            format!(
                "has {} rows; TOFU's full split has {} ({AUTHORS} authors × {QUESTIONS_PER_AUTHOR} questions)",
                rows.len(),
                AUTHORS * QUESTIONS_PER_AUTHOR
            ),
        ));
    }

    let mut forget = match (
        read_rows(dir, &format!("forget{nn}.json"), &mut problems),
        &full,
    ) {
        (Some(rows), _) => records("forget", &rows, Some(first_forget)),
        (None, Some(full)) => records(
            "forget",
            full.get(first_forget * QUESTIONS_PER_AUTHOR..)
                .unwrap_or_default(),
            Some(first_forget),
        ),
        (None, None) => {
            problems.push(problem(
                &format!("forget{nn}.json"),
                None,
                None,
                "missing (and no full.json to cut it from)",
            ));
            Vec::new()
        }
    };
    if let Some(p) = read_rows(dir, &format!("forget{nn}_perturbed.json"), &mut problems) {
        merge(
            &format!("forget{nn}_perturbed.json"),
            &mut forget,
            &p,
            &mut problems,
        );
    }

    let retain_nn = format!("retain{:02}.json", 100 - forget_percent);
    let retain_perturbed = read_rows(dir, "retain_perturbed.json", &mut problems);
    let mut retain = match (
        read_rows(dir, &retain_nn, &mut problems),
        &full,
        &retain_perturbed,
    ) {
        (Some(rows), _, _) => records("retain", &rows, Some(0)),
        (None, Some(full), _) => records(
            "retain",
            full.get(..first_forget * QUESTIONS_PER_AUTHOR)
                .unwrap_or_default(),
            Some(0),
        ),
        // The subset shipped for tests has only the evaluation retain set: train on it.
        (None, None, Some(rows)) => records("retain", rows, Some(0)),
        (None, None, None) => {
            problems.push(problem(
                &retain_nn,
                None,
                None,
                "missing (and neither full.json nor retain_perturbed.json)",
            ));
            Vec::new()
        }
    };
    if let Some(p) = &retain_perturbed {
        // Evaluation fields for the retain questions that have them (the first 20 authors).
        let by_q: BTreeSet<&str> = p.iter().map(|r| r.question.as_str()).collect();
        let mut covered: Vec<QaRecord> = retain
            .iter()
            .filter(|r| by_q.contains(r.question.as_str()))
            .cloned()
            .collect();
        merge("retain_perturbed.json", &mut covered, p, &mut problems);
        let map: BTreeMap<String, QaRecord> =
            covered.into_iter().map(|r| (r.id.clone(), r)).collect();
        for r in &mut retain {
            if let Some(m) = map.get(&r.id) {
                *r = m.clone();
            }
        }
    }

    let mut splits = vec![
        Split {
            name: "forget".into(),
            role: SplitRole::Forget,
            records: Records::Qa(forget),
        },
        Split {
            name: "retain".into(),
            role: SplitRole::Retain,
            records: Records::Qa(retain),
        },
    ];
    if let Some(rows) = read_rows(dir, &format!("holdout{nn}.json"), &mut problems) {
        splits.push(Split {
            name: "holdout".into(),
            role: SplitRole::Holdout,
            records: Records::Qa(records("holdout", &rows, None)),
        });
    }
    for (file, name) in [
        ("real_authors_perturbed.json", "real-authors"),
        ("world_facts_perturbed.json", "world-facts"),
    ] {
        if let Some(rows) = read_rows(dir, file, &mut problems) {
            splits.push(Split {
                name: name.into(),
                role: SplitRole::Eval,
                records: Records::Qa(records(name, &rows, None)),
            });
        }
    }
    let idk_path = dir.join("idontknow.jsonl");
    if idk_path.exists() {
        let text = fs_err::read_to_string(&idk_path)?;
        let idk: Vec<TextRecord> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| TextRecord {
                id: format!("idk-{i:03}"),
                text: l.to_owned(),
            })
            .collect();
        splits.push(Split {
            name: "idk".into(),
            role: SplitRole::Idk,
            records: Records::Text(idk),
        });
    }
    if !problems.is_empty() {
        return Err(SuiteError::Invalid {
            dir: dir.to_owned(),
            problems,
        });
    }
    Ok(Suite {
        manifest: SuiteManifest {
            name: format!("tofu-forget{nn}"),
            version: "1".into(),
            description: format!(
                "TOFU (Maini et al., 2024; MIT licence) imported from a local copy: forget the last {forget_percent} % \
                 of the 200 fictitious authors."
            ),
            splits: splits
                .iter()
                .map(|s| SplitSpec::in_jsonl(&s.name, s.role))
                .collect(),
        },
        splits,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shared() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/tofu")
    }

    #[test]
    fn imports_the_shared_subset() {
        let s = tofu(&shared(), 1).unwrap();
        let split = |n: &str| s.split(n).unwrap();
        assert_eq!(split("forget").len(), 40);
        assert_eq!(split("retain").len(), 400);
        assert_eq!(split("holdout").len(), 40);
        assert_eq!(split("real-authors").len(), 100);
        assert_eq!(split("world-facts").len(), 117);
        assert_eq!(split("idk").len(), 100);
        let f = &split("forget").questions()[0];
        assert!(f.answer.contains("Basil Mahfouz Al-Kuwaiti"));
        assert_eq!(f.perturbed_answers.len(), 5);
        assert_eq!(f.paraphrased_answers.len(), 1);
        assert_eq!(f.groups["author"], "198");
        assert_eq!(split("forget").questions()[39].groups["author"], "199");
        assert_eq!(split("retain").questions()[399].groups["author"], "019");
        assert_eq!(split("retain").questions()[0].perturbed_answers.len(), 5);
        assert!(
            split("holdout").role == SplitRole::Holdout
                && !split("holdout").role.visible_to_methods()
        );
        // No question is both forgotten and retained.
        let fq: BTreeSet<&str> = split("forget")
            .questions()
            .iter()
            .map(|r| r.question.as_str())
            .collect();
        assert!(
            split("retain")
                .questions()
                .iter()
                .all(|r| !fq.contains(r.question.as_str()))
        );
        // The imported suite is a valid suite folder.
        let out = tempfile::tempdir().unwrap();
        s.write(out.path()).unwrap();
        assert_eq!(Suite::load(out.path()).unwrap(), s);
    }

    #[test]
    fn a_full_split_of_the_wrong_length_is_a_problem_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        // 440 rows: cutting forget10 (the last 400 of 4,000) from it would slice past the end.
        let mut rows = fs_err::read_to_string(shared().join("retain_perturbed.json")).unwrap();
        if !rows.ends_with('\n') {
            rows.push('\n');
        }
        rows.push_str(&fs_err::read_to_string(shared().join("forget01.json")).unwrap());
        fs_err::write(dir.path().join("full.json"), rows).unwrap();
        let e = tofu(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("full.json: has 440 rows"), "{e}");
    }

    #[test]
    fn a_missing_forget_file_is_reported() {
        let e = tofu(&shared(), 5).unwrap_err().to_string();
        assert!(e.contains("forget05.json: missing"), "{e}");
    }
}
