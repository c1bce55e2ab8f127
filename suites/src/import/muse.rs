//! MUSE (Shi et al., 2024) from a local copy of one of its corpora, and the same layout written
//! from a suite. The files and how they become splits are described in the [parent
//! module](super).

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::format::load::{clean, kind_of, problem, write_files};
use crate::{
    ContinuationRecord, Problem, QaRecord, RecordKind, Records, Split, SplitRole, SplitSpec, Suite,
    SuiteError, SuiteManifest, TextRecord,
};

/// Questions and answers about the forget documents.
const KNOWMEM_FORGET: &str = "knowmem/forget_qa.json";
/// Questions and answers about retained documents.
const KNOWMEM_RETAIN: &str = "knowmem/retain2_qa.json";
/// Beginnings of forget documents (`prompt`) with their true continuations (`gt`).
const VERBMEM_FORGET: &str = "verbmem/forget.json";
/// Forget documents, the members of privacy leakage.
const PRIVLEAK_FORGET: &str = "privleak/forget.json";
/// Retained documents.
const PRIVLEAK_RETAIN: &str = "privleak/retain2.json";
/// Documents no model was trained on, the non-members of privacy leakage.
const PRIVLEAK_HOLDOUT: &str = "privleak/holdout.json";
/// The forget training corpus, when the copy has it.
const RAW_FORGET: &str = "raw/forget.json";
/// The retain training corpus, when the copy has it.
const RAW_RETAIN: &str = "raw/retain1.json";

/// The suite name's part after `muse-` when the folder's name gives none.
const DEFAULT_CORPUS: &str = "news";

/// The elements of a JSON array file, or `None` when it is missing (a problem if `required`) or
/// cannot be read as a non-empty array (always a problem).
fn read_array(
    dir: &Path,
    file: &str,
    required: bool,
    problems: &mut Vec<Problem>,
) -> Option<Vec<Value>> {
    let path = dir.join(file);
    if !path.exists() {
        if required {
            problems.push(problem(file, None, None, "missing"));
        }
        return None;
    }
    let text = match fs_err::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(problem(file, None, None, format!("cannot read: {e}")));
            return None;
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Err(e) => {
            problems.push(problem(
                file,
                Some(e.line()),
                None,
                format!("malformed JSON: {}", clean(&e.to_string())),
            ));
            None
        }
        Ok(Value::Array(values)) if values.is_empty() => {
            problems.push(problem(file, None, None, "is an empty array"));
            None
        }
        Ok(Value::Array(values)) => Some(values),
        Ok(other) => {
            problems.push(problem(
                file,
                None,
                None,
                format!("expected a JSON array, found {}", kind_of(&other)),
            ));
            None
        }
    }
}

/// A non-empty string, or a problem at `field` (the element's index, and key if any).
fn text(value: Option<&Value>, file: &str, field: &str, problems: &mut Vec<Problem>) -> String {
    let at = |message: String| problem(file, None, Some(field), message);
    match value {
        None => problems.push(at("missing field (required)".to_owned())),
        Some(Value::String(s)) if s.trim().is_empty() => problems.push(at("is empty".to_owned())),
        Some(Value::String(s)) => return s.clone(),
        Some(other) => problems.push(at(format!("expected a string, found {}", kind_of(other)))),
    }
    String::new()
}

/// A file of strings; `None` when it is missing or unreadable.
fn strings(
    dir: &Path,
    file: &str,
    required: bool,
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let values = read_array(dir, file, required, problems)?;
    Some(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| text(Some(v), file, &format!("[{i}]"), problems))
            .collect(),
    )
}

/// A file of objects with two string fields (others are ignored); the pairs in order.
fn pairs(dir: &Path, file: &str, keys: [&str; 2], problems: &mut Vec<Problem>) -> Vec<[String; 2]> {
    let Some(values) = read_array(dir, file, true, problems) else {
        return Vec::new();
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(o) => keys.map(|k| text(o.get(k), file, &format!("[{i}].{k}"), problems)),
            other => {
                problems.push(problem(
                    file,
                    None,
                    Some(&format!("[{i}]")),
                    format!(
                        "expected a JSON object with '{}' and '{}', found {}",
                        keys[0],
                        keys[1],
                        kind_of(other)
                    ),
                ));
                [String::new(), String::new()]
            }
        })
        .collect()
}

/// `muse-` and the folder's name: lowercased, each run of anything but letters and digits made
/// one '-', a leading `muse` dropped (a folder named `MUSE-News` gives `muse-news`, not
/// `muse-muse-news`); `muse-news` when nothing is left.
fn suite_name(dir: &Path) -> String {
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            // "." or "..": the name of the folder they stand for.
            fs_err::canonicalize(dir)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_default()
        .to_lowercase();
    let mut corpus = String::new();
    for c in folder.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            corpus.push(c);
        } else if !corpus.is_empty() && !corpus.ends_with('-') {
            corpus.push('-');
        }
    }
    let corpus = corpus.trim_end_matches('-');
    let corpus = corpus
        .strip_prefix("muse")
        .map(|rest| rest.trim_start_matches('-'))
        .unwrap_or(corpus);
    let corpus = if corpus.is_empty() {
        DEFAULT_CORPUS
    } else {
        corpus
    };
    let mut name = format!("muse-{corpus}");
    name.truncate(crate::format::load::MAX_NAME);
    name.trim_end_matches('-').to_owned()
}

/// One document made of a verbatim-memorization pair: the prompt, one space, the continuation.
fn joined(prompt: &str, gt: &str) -> String {
    format!("{} {}", prompt.trim_end(), gt.trim_start())
}

fn documents(prefix: &str, texts: Vec<String>) -> Records {
    Records::Text(
        texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| TextRecord {
                id: format!("{prefix}-{i:05}"),
                text,
            })
            .collect(),
    )
}

fn questions(prefix: &str, pairs: Vec<[String; 2]>) -> Records {
    Records::Qa(
        pairs
            .into_iter()
            .enumerate()
            .map(|(i, [question, answer])| QaRecord {
                id: format!("{prefix}-{i:05}"),
                question,
                answer,
                groups: Default::default(),
                paraphrased_answers: Vec::new(),
                perturbed_answers: Vec::new(),
                paraphrased_questions: Vec::new(),
                terms: Vec::new(),
                options: Vec::new(),
                correct_option: None,
            })
            .collect(),
    )
}

/// Import MUSE from a local copy of one corpus (e.g. `news` or `books`), laid out as MUSE's own
/// data folder is: `knowmem/forget_qa.json` and `knowmem/retain2_qa.json` (arrays of
/// `{"question", "answer"}`), `verbmem/forget.json` (an array of `{"prompt", "gt"}`),
/// `privleak/forget.json`, `privleak/retain2.json` and `privleak/holdout.json` (arrays of
/// strings), and optionally the training corpora `raw/forget.json` and `raw/retain1.json`
/// (arrays of strings). Fields other than those named are ignored.
///
/// The splits: `forget` (role forget, texts: `raw/forget.json`, else `privleak/forget.json` and
/// each verbmem prompt and continuation joined by a space, exact duplicates dropped), `retain`
/// (role retain, texts: `raw/retain1.json`, else `privleak/retain2.json`), `holdout` (role
/// holdout, texts: `privleak/holdout.json`), `verbmem-forget` (eval, continuations),
/// `knowmem-forget` and `knowmem-retain` (eval, questions). Ids are the split's name and the
/// element's index, `forget-00000` …. The suite is named `muse-` and the folder's name (see
/// the module docs).
///
/// Every problem — a missing or unreadable file, malformed JSON, a file that is not an array or
/// is empty, an element of the wrong type, a missing or empty field — is reported with its file
/// and, for an element, its index (`field` `[3].answer`); on any, nothing is returned.
pub fn muse(dir: &Path) -> Result<Suite, SuiteError> {
    let mut problems = Vec::new();
    let p = &mut problems;
    let knowmem_forget = pairs(dir, KNOWMEM_FORGET, ["question", "answer"], p);
    let knowmem_retain = pairs(dir, KNOWMEM_RETAIN, ["question", "answer"], p);
    let verbmem = pairs(dir, VERBMEM_FORGET, ["prompt", "gt"], p);
    let privleak_forget = strings(dir, PRIVLEAK_FORGET, true, p).unwrap_or_default();
    let privleak_retain = strings(dir, PRIVLEAK_RETAIN, true, p).unwrap_or_default();
    let holdout = strings(dir, PRIVLEAK_HOLDOUT, true, p).unwrap_or_default();
    let raw_forget = strings(dir, RAW_FORGET, false, p);
    let raw_retain = strings(dir, RAW_RETAIN, false, p);
    if !problems.is_empty() {
        return Err(SuiteError::Invalid {
            dir: dir.to_owned(),
            problems,
        });
    }

    let forget = raw_forget.unwrap_or_else(|| {
        // Without the corpus, the forget documents are all MUSE shows of them.
        let mut seen = BTreeSet::new();
        privleak_forget
            .into_iter()
            .chain(verbmem.iter().map(|[prompt, gt]| joined(prompt, gt)))
            .filter(|t| seen.insert(t.clone()))
            .collect()
    });
    let retain = raw_retain.unwrap_or(privleak_retain);
    let continuations = verbmem
        .into_iter()
        .enumerate()
        .map(|(i, [prompt, continuation])| ContinuationRecord {
            id: format!("verbmem-forget-{i:05}"),
            prompt,
            continuation,
        })
        .collect();
    let splits = vec![
        ("forget", SplitRole::Forget, documents("forget", forget)),
        ("retain", SplitRole::Retain, documents("retain", retain)),
        ("holdout", SplitRole::Holdout, documents("holdout", holdout)),
        (
            "verbmem-forget",
            SplitRole::Eval,
            Records::Continuation(continuations),
        ),
        (
            "knowmem-forget",
            SplitRole::Eval,
            questions("knowmem-forget", knowmem_forget),
        ),
        (
            "knowmem-retain",
            SplitRole::Eval,
            questions("knowmem-retain", knowmem_retain),
        ),
    ];
    let splits: Vec<Split> = splits
        .into_iter()
        .map(|(name, role, records)| Split {
            name: name.to_owned(),
            role,
            records,
        })
        .collect();
    let name = suite_name(dir);
    let suite = Suite {
        manifest: SuiteManifest {
            description: format!(
                "MUSE (Shi et al., 2024) imported from a local copy ({name}): forget, retain and \
                 holdout documents, verbatim-memorization prompts on the forget documents, and \
                 knowledge-memorization questions on the forget and retained documents."
            ),
            name,
            version: "1".into(),
            splits: splits.iter().map(SplitSpec::for_split).collect(),
        },
        splits,
    };
    // What the files cannot show alone, such as a folder name that makes no valid suite name.
    let problems = suite.problems();
    if problems.is_empty() {
        Ok(suite)
    } else {
        Err(SuiteError::Invalid {
            dir: dir.to_owned(),
            problems,
        })
    }
}

/// The split `name` of `suite` if it holds `kind`; else a problem at the MUSE `file` it feeds.
fn needed<'a>(
    suite: &'a Suite,
    name: &str,
    kind: RecordKind,
    file: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a Split> {
    match suite.split(name) {
        Some(split) if split.records.kind() == kind => Some(split),
        Some(split) => {
            problems.push(problem(
                file,
                None,
                None,
                format!(
                    "needs split '{name}' to hold {kind}, but it holds {}",
                    split.records.kind()
                ),
            ));
            None
        }
        None => {
            problems.push(problem(
                file,
                None,
                None,
                format!("needs a split '{name}' holding {kind}; the suite has none"),
            ));
            None
        }
    }
}

/// One JSON array on one line, as MUSE's files are.
fn array<T: serde::Serialize>(items: &[T]) -> Result<String, SuiteError> {
    let line = serde_json::to_string(items).map_err(std::io::Error::from)?;
    Ok(format!("{line}\n"))
}

/// Write `suite` in MUSE's layout under `dir`, so that MUSE's own scripts can use a suite made
/// here (and so that [`muse`] can be tested on it): `raw/forget.json` and
/// `privleak/forget.json` from the `forget` split's texts, `raw/retain1.json` and
/// `privleak/retain2.json` from `retain`, `privleak/holdout.json` from `holdout`,
/// `verbmem/forget.json` from `verbmem-forget` (`prompt`, and the continuation as `gt`),
/// `knowmem/forget_qa.json` and `knowmem/retain2_qa.json` from `knowmem-forget` and
/// `knowmem-retain` (`question`, `answer`); each a JSON array on one line. Ids and every other
/// field are left out, as MUSE has none.
///
/// The suite needs those six splits, by name, with those kinds of records (what [`muse`] and
/// the `news` generator make); a suite without them, or one [`Suite::problems`] finds fault
/// with, is refused with every problem and nothing is written. The files are written all or
/// nothing.
pub fn write_muse_layout(suite: &Suite, dir: &Path) -> Result<(), SuiteError> {
    let invalid = |problems| SuiteError::Invalid {
        dir: dir.to_owned(),
        problems,
    };
    let found = suite.problems();
    if !found.is_empty() {
        return Err(invalid(found));
    }
    let mut problems = Vec::new();
    let p = &mut problems;
    let forget = needed(suite, "forget", RecordKind::Texts, RAW_FORGET, p);
    let retain = needed(suite, "retain", RecordKind::Texts, RAW_RETAIN, p);
    let holdout = needed(suite, "holdout", RecordKind::Texts, PRIVLEAK_HOLDOUT, p);
    let verbmem = needed(
        suite,
        "verbmem-forget",
        RecordKind::Continuations,
        VERBMEM_FORGET,
        p,
    );
    let knowmem_forget = needed(
        suite,
        "knowmem-forget",
        RecordKind::Questions,
        KNOWMEM_FORGET,
        p,
    );
    let knowmem_retain = needed(
        suite,
        "knowmem-retain",
        RecordKind::Questions,
        KNOWMEM_RETAIN,
        p,
    );
    let (
        Some(forget),
        Some(retain),
        Some(holdout),
        Some(verbmem),
        Some(knowmem_forget),
        Some(knowmem_retain),
    ) = (
        forget,
        retain,
        holdout,
        verbmem,
        knowmem_forget,
        knowmem_retain,
    )
    else {
        return Err(invalid(problems));
    };

    let texts = |s: &Split| s.texts().iter().map(|t| t.text.clone()).collect::<Vec<_>>();
    let qa = |s: &Split| {
        s.questions()
            .iter()
            .map(|q| serde_json::json!({"question": q.question, "answer": q.answer}))
            .collect::<Vec<_>>()
    };
    let continuations: Vec<Value> = verbmem
        .continuations()
        .iter()
        .map(|c| serde_json::json!({"prompt": c.prompt, "gt": c.continuation}))
        .collect();
    let files: Vec<(PathBuf, String)> = vec![
        (RAW_FORGET, array(&texts(forget))?),
        (RAW_RETAIN, array(&texts(retain))?),
        (PRIVLEAK_FORGET, array(&texts(forget))?),
        (PRIVLEAK_RETAIN, array(&texts(retain))?),
        (PRIVLEAK_HOLDOUT, array(&texts(holdout))?),
        (VERBMEM_FORGET, array(&continuations)?),
        (KNOWMEM_FORGET, array(&qa(knowmem_forget))?),
        (KNOWMEM_RETAIN, array(&qa(knowmem_retain))?),
    ]
    .into_iter()
    .map(|(file, text)| (dir.join(file), text))
    .collect();
    write_files(dir, &files)
}
