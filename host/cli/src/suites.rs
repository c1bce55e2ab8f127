//! `lethe suite generate privacy|wrong-facts` and `lethe suite import qa`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use lethe_reports::{TableError, TextCell, read_table};
use lethe_suites::generate::{PrivacyConfig, WrongFactsConfig, privacy, wrong_facts};
use lethe_suites::import::qa::{
    Assign, Cell, Columns, ImportError, InputProblem, Place, QaImport, Row, Source, Table, import,
    read_json, read_lines,
};
use lethe_suites::{SplitRole, Suite};

use crate::Failure;
use crate::args::{GeneratorKind, QaImportArgs, SuiteGenerateArgs, SuitePreset};
use crate::run::write_suite;

/// The privacy or wrong-facts suite at the preset's size, with the flags that change it.
pub fn generate_mllmu(args: &SuiteGenerateArgs) -> anyhow::Result<Suite> {
    let only = |flag: &str| anyhow!("{flag} does not apply to the {:?} generator", args.kind);
    if args.forget_share.is_some() {
        return Err(only("--forget-share (use --forget-percent)"));
    }
    if !args.forget_category.is_empty() {
        return Err(only("--forget-category"));
    }
    if args.preset == SuitePreset::Full {
        return Err(anyhow!(
            "the privacy and wrong-facts generators have no full preset (use tiny or default)"
        ));
    }
    let tiny = args.preset == SuitePreset::Tiny;
    let suite = match args.kind {
        GeneratorKind::Privacy => {
            let mut config = if tiny {
                PrivacyConfig::tiny()
            } else {
                PrivacyConfig::default()
            };
            config.seed = args.seed;
            if let Some(n) = args.patients {
                config.patients = n;
            }
            if let Some(p) = args.forget_percent {
                config.forget_percent = p;
            }
            privacy(&config)?
        }
        _ => {
            if args.patients.is_some() {
                return Err(only("--patients"));
            }
            let mut config = if tiny {
                WrongFactsConfig::tiny()
            } else {
                WrongFactsConfig::default()
            };
            config.seed = args.seed;
            if let Some(p) = args.forget_percent {
                config.forget_percent = p;
            }
            wrong_facts(&config)?
        }
    };
    Ok(suite)
}

/// A problem with a file as a whole.
fn file_problem(file: &str, message: impl Into<String>) -> InputProblem {
    InputProblem {
        file: file.to_owned(),
        place: None,
        field: None,
        message: message.into(),
    }
}

/// A CSV, TSV or Parquet table (read by lethe-reports) as the importer's rows: placed by line
/// where the reader knows it (CSV, TSV), else by row.
fn from_text_table(file: &str, table: lethe_reports::TextTable) -> Table {
    let lines = table.lines.unwrap_or_default();
    let rows = table
        .rows
        .into_iter()
        .enumerate()
        .map(|(i, cells)| Row {
            place: lines.get(i).map_or(Place::Row(i + 1), |l| Place::Line(*l)),
            cells: table
                .columns
                .iter()
                .cloned()
                .zip(cells.into_iter().map(|c| match c {
                    TextCell::Null => Cell::Null,
                    TextCell::Text(t) => Cell::Text(t),
                    TextCell::List(l) => Cell::List(l),
                }))
                .collect(),
        })
        .collect();
    Table {
        file: file.to_owned(),
        columns: table.columns,
        rows,
    }
}

/// Read one input file by its extension; `text` is the column plain text lines go to (text
/// files are only for pretraining text and refusals).
fn read(path: &Path, text: Option<&str>) -> Result<Table, Vec<InputProblem>> {
    let file = path.display().to_string();
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match (extension.as_str(), text) {
        ("json" | "jsonl" | "ndjson", _) => read_json(path, &file),
        ("txt", Some(column)) => read_lines(path, &file, column),
        ("csv" | "tsv" | "parquet" | "pq", _) => match read_table(path) {
            Ok(t) => Ok(from_text_table(&file, t)),
            Err(TableError::Ragged {
                kind,
                line,
                found,
                expected,
                ..
            }) => Err(vec![InputProblem {
                file: file.clone(),
                place: Some(Place::Line(line)),
                field: None,
                message: format!(
                    "malformed {kind}: {found} field(s) where the header has {expected}"
                ),
            }]),
            Err(e) => {
                // The reader's message starts with the path; the problem names the file itself.
                let message = e.to_string();
                let message = message
                    .strip_prefix(&format!("{file}: "))
                    .unwrap_or(&message)
                    .to_owned();
                Err(vec![file_problem(&file, message)])
            }
        },
        _ => Err(vec![file_problem(
            &file,
            format!(
                "unknown format '.{extension}' (expected .json, .jsonl, .csv, .tsv or .parquet{})",
                if text.is_some() { ", or .txt" } else { "" }
            ),
        )]),
    }
}

/// Split `NAME=VALUE`, naming the flag when it is malformed.
fn pair<'a>(flag: &str, text: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok((name, value)),
        _ => Err(anyhow!("{flag} '{text}': expected NAME=VALUE")),
    }
}

/// A role a question split may have, by name.
fn question_role(flag: &str, text: &str) -> anyhow::Result<SplitRole> {
    match text {
        "forget" => Ok(SplitRole::Forget),
        "retain" => Ok(SplitRole::Retain),
        "holdout" => Ok(SplitRole::Holdout),
        "eval" => Ok(SplitRole::Eval),
        other => Err(anyhow!(
            "{flag}: role '{other}' is not one of forget, retain, holdout, eval"
        )),
    }
}

/// `lethe suite import qa`.
pub fn import_qa(args: &QaImportArgs) -> Result<ExitCode, Failure> {
    if args.out.exists() {
        return Err(Failure::input(anyhow!(
            "{} already exists",
            args.out.display()
        )));
    }
    let (spec, mut problems) = spec(args).map_err(Failure::input)?;
    match import(&spec) {
        Ok(suite) if problems.is_empty() => write_suite(&suite, &args.out),
        Ok(_) => Err(Failure::input(ImportError(problems))),
        Err(ImportError(found)) => {
            // With files unread, "no forget questions" and the like say nothing new.
            let unread = !problems.is_empty();
            problems.extend(found.into_iter().filter(|p| !(unread && p.file == "input")));
            Err(Failure::input(ImportError(problems)))
        }
    }
}

/// The import the flags describe, with the problems of files that could not be read.
fn spec(args: &QaImportArgs) -> anyhow::Result<(QaImport, Vec<InputProblem>)> {
    let mut problems = Vec::new();
    let mut tables = |paths: &[&Path], text: Option<&str>| -> Vec<Table> {
        let mut out = Vec::new();
        for path in paths {
            match read(path, text) {
                Ok(t) => out.push(t),
                Err(p) => problems.extend(p),
            }
        }
        out
    };

    let mut sources = Vec::new();
    let mut names = Vec::new();
    if let Some(from) = &args.from {
        let assign = match (&args.split, args.forget_percent) {
            (Some(column), None) => {
                let mut roles = BTreeMap::new();
                for r in &args.roles {
                    let (name, role) = pair("--role", r)?;
                    roles.insert(name.to_owned(), question_role("--role", role)?);
                }
                Assign::Column {
                    column: column.clone(),
                    roles,
                }
            }
            (None, Some(forget_percent)) => Assign::Random {
                forget_percent,
                by: args.forget_by.clone(),
                seed: args.seed,
            },
            _ => {
                return Err(anyhow!(
                    "--from needs --split COL or --forget-percent P to say which split each row \
                     goes to"
                ));
            }
        };
        names.push(from.as_path());
        for table in tables(&[from], None) {
            sources.push(Source {
                table,
                assign: assign.clone(),
            });
        }
    } else if args.forget_file.is_empty() || args.retain_file.is_empty() {
        return Err(anyhow!(
            "give the questions with --from FILE (and --split or --forget-percent), or with \
             --forget-file and --retain-file"
        ));
    }
    let mut fixed: Vec<(String, SplitRole, &Path)> = Vec::new();
    for (paths, name, role) in [
        (&args.forget_file, "forget", SplitRole::Forget),
        (&args.retain_file, "retain", SplitRole::Retain),
        (&args.holdout_file, "holdout", SplitRole::Holdout),
    ] {
        fixed.extend(paths.iter().map(|p| (name.to_owned(), role, p.as_path())));
    }
    for e in &args.eval_file {
        let (name, file) = pair("--eval-file", e)?;
        fixed.push((name.to_owned(), SplitRole::Eval, Path::new(file)));
    }
    for (name, role, path) in fixed {
        names.push(path);
        sources.extend(tables(&[path], None).into_iter().map(|table| Source {
            table,
            assign: Assign::Split {
                name: name.clone(),
                role,
            },
        }));
    }
    let pretrain: Vec<&Path> = args.pretrain_file.iter().map(|p| p.as_path()).collect();
    let pretrain = tables(&pretrain, Some(&args.text));
    let idk: Vec<&Path> = args.idk_file.iter().map(|p| p.as_path()).collect();
    let idk = tables(&idk, Some(&args.text));

    let mut groups = Vec::new();
    for g in &args.groups {
        groups.push(match g.split_once('=') {
            Some(_) => {
                let (key, column) = pair("--group", g)?;
                (key.to_owned(), column.to_owned())
            }
            None => (g.clone(), g.clone()),
        });
    }
    let files: Vec<String> = names
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let spec = QaImport {
        name: args.name.clone(),
        description: format!("Question-answer data imported from {}.", files.join(", ")),
        columns: Columns {
            question: args.question.clone(),
            answer: args.answer.clone(),
            id: args.id.clone(),
            groups,
            paraphrased_answers: args.paraphrased_answers.clone(),
            perturbed_answers: args.perturbed_answers.clone(),
            paraphrased_questions: args.paraphrased_questions.clone(),
            terms: args.terms.clone(),
            options: args.options.clone(),
            correct_option: args.correct_option.clone(),
            list_separator: args.list_separator.clone(),
        },
        sources,
        pretrain,
        idk,
        text_column: args.text.clone(),
    };
    Ok((spec, problems))
}
