//! Reading, checking, writing and digesting suite folders.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use super::{
    Problem, QaRecord, Records, Split, SplitRole, Suite, SuiteError, SuiteManifest, TextRecord,
};

const MANIFEST: &str = "suite.json";

fn problem(
    file: &str,
    line: Option<usize>,
    field: Option<&str>,
    message: impl Into<String>,
) -> Problem {
    Problem {
        file: file.to_owned(),
        line,
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

/// The field a serde_json error is about, when its message names one.
fn field_of(message: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `", "duplicate field `"] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

/// Cut serde_json's " at line 1 column 40" tail: our line numbers are the file's.
fn clean(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn parse_lines<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(usize, T)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(v) => out.push((i + 1, v)),
            Err(e) => {
                let msg = e.to_string();
                let what = if e.is_syntax() || e.is_eof() {
                    "malformed JSON: "
                } else {
                    ""
                };
                problems.push(problem(
                    file,
                    Some(i + 1),
                    field_of(&msg).as_deref(),
                    format!("{what}{}", clean(&msg)),
                ));
            }
        }
    }
    out
}

pub(crate) fn load(dir: &Path) -> Result<Suite, SuiteError> {
    let mut problems = Vec::new();
    let manifest_path = dir.join(MANIFEST);
    let text = match fs_err::read_to_string(&manifest_path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(problem(MANIFEST, None, None, format!("cannot read: {e}")));
            return Err(SuiteError::Invalid {
                dir: dir.to_owned(),
                problems,
            });
        }
    };
    let manifest: SuiteManifest = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            let msg = e.to_string();
            problems.push(problem(
                MANIFEST,
                Some(e.line()),
                field_of(&msg).as_deref(),
                clean(&msg),
            ));
            return Err(SuiteError::Invalid {
                dir: dir.to_owned(),
                problems,
            });
        }
    };
    if !valid_name(&manifest.name) {
        problems.push(problem(
            MANIFEST,
            None,
            Some("name"),
            format!(
                "'{}' must be lowercase letters, digits and '-'",
                manifest.name
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for s in &manifest.splits {
        if !names.insert(s.name.clone()) {
            problems.push(problem(
                MANIFEST,
                None,
                Some("splits"),
                format!("split name '{}' appears twice", s.name),
            ));
        }
    }
    for role in [SplitRole::Forget, SplitRole::Retain] {
        if !manifest.splits.iter().any(|s| s.role == role) {
            problems.push(problem(
                MANIFEST,
                None,
                Some("splits"),
                format!("no split has role {role:?}; every suite needs forget and retain"),
            ));
        }
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut splits = Vec::new();
    for spec in &manifest.splits {
        let rel = Path::new(&spec.file);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
            problems.push(problem(
                MANIFEST,
                None,
                Some("file"),
                format!(
                    "split '{}': path '{}' leaves the suite folder",
                    spec.name, spec.file
                ),
            ));
            continue;
        }
        let text = match fs_err::read_to_string(dir.join(rel)) {
            Ok(t) => t,
            Err(e) => {
                problems.push(problem(
                    &spec.file,
                    None,
                    None,
                    format!("cannot read split '{}': {e}", spec.name),
                ));
                continue;
            }
        };
        let mut note_id = |id: &str, line: usize, problems: &mut Vec<Problem>| {
            let here = format!("{}:{line}", spec.file);
            if id.trim().is_empty() {
                problems.push(problem(&spec.file, Some(line), Some("id"), "is empty"));
            } else if let Some(first) = seen.get(id) {
                problems.push(problem(
                    &spec.file,
                    Some(line),
                    Some("id"),
                    format!("duplicate id '{id}' (first at {first})"),
                ));
            } else {
                seen.insert(id.to_owned(), here);
            }
        };
        let records = if spec.role.holds_questions() {
            let rows = parse_lines::<QaRecord>(&spec.file, &text, &mut problems);
            for (line, r) in &rows {
                note_id(&r.id, *line, &mut problems);
                for (field, value) in [("question", &r.question), ("answer", &r.answer)] {
                    if value.trim().is_empty() {
                        problems.push(problem(&spec.file, Some(*line), Some(field), "is empty"));
                    }
                }
                if let Some(c) = r.correct_option
                    && c as usize >= r.options.len()
                {
                    problems.push(problem(
                        &spec.file,
                        Some(*line),
                        Some("correct_option"),
                        format!("{c} is out of range for {} options", r.options.len()),
                    ));
                }
            }
            Records::Qa(rows.into_iter().map(|(_, r)| r).collect())
        } else {
            let rows = parse_lines::<TextRecord>(&spec.file, &text, &mut problems);
            for (line, r) in &rows {
                note_id(&r.id, *line, &mut problems);
                if r.text.trim().is_empty() {
                    problems.push(problem(&spec.file, Some(*line), Some("text"), "is empty"));
                }
            }
            Records::Text(rows.into_iter().map(|(_, r)| r).collect())
        };
        splits.push(Split {
            name: spec.name.clone(),
            role: spec.role,
            records,
        });
    }
    if problems.is_empty() {
        Ok(Suite { manifest, splits })
    } else {
        Err(SuiteError::Invalid {
            dir: dir.to_owned(),
            problems,
        })
    }
}

fn jsonl<T: serde::Serialize>(records: &[T]) -> Result<String, SuiteError> {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).map_err(|e| SuiteError::Generate(e.to_string()))?);
        out.push('\n');
    }
    Ok(out)
}

pub(crate) fn write(suite: &Suite, dir: &Path) -> Result<(), SuiteError> {
    fs_err::create_dir_all(dir)?;
    let put = |name: &str, text: &str| -> Result<(), SuiteError> {
        let tmp = dir.join(format!(".{name}.tmp"));
        fs_err::write(&tmp, text)?;
        fs_err::rename(&tmp, dir.join(name))?;
        Ok(())
    };
    for split in &suite.splits {
        let spec = suite
            .manifest
            .splits
            .iter()
            .find(|s| s.name == split.name)
            .ok_or_else(|| {
                SuiteError::Generate(format!("split '{}' is not in the manifest", split.name))
            })?;
        let text = match &split.records {
            Records::Qa(r) => jsonl(r)?,
            Records::Text(r) => jsonl(r)?,
        };
        put(&spec.file, &text)?;
    }
    // The manifest last: a folder with a manifest is complete.
    let manifest = serde_json::to_string_pretty(&suite.manifest)
        .map_err(|e| SuiteError::Generate(e.to_string()))?;
    put(MANIFEST, &format!("{manifest}\n"))
}

pub(crate) fn digest(suite: &Suite) -> String {
    let mut h = Sha256::new();
    let mut feed = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    feed(&serde_json::to_string(&suite.manifest).unwrap_or_default());
    for split in &suite.splits {
        feed(&split.name);
        match &split.records {
            Records::Qa(r) => r
                .iter()
                .for_each(|x| feed(&serde_json::to_string(x).unwrap_or_default())),
            Records::Text(r) => r
                .iter()
                .for_each(|x| feed(&serde_json::to_string(x).unwrap_or_default())),
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::generate::{AuthorsConfig, authors};

    fn written() -> (tempfile::TempDir, Suite) {
        let suite = authors(&AuthorsConfig::tiny()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        suite.write(dir.path()).unwrap();
        (dir, suite)
    }

    fn break_line(dir: &Path, file: &str, line: usize, f: impl Fn(&str) -> String) {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == line { f(l) } else { l.to_owned() })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn round_trips_through_a_folder() {
        let (dir, suite) = written();
        assert_eq!(Suite::load(dir.path()).unwrap(), suite);
        assert!(Suite::check(dir.path()).is_empty());
    }

    #[test]
    fn reports_file_line_and_field_and_loads_nothing() {
        let (dir, _) = written();
        break_line(dir.path(), "forget.jsonl", 2, |_| "{not json".to_owned());
        break_line(dir.path(), "retain.jsonl", 1, |l| {
            l.replace("\"answer\":", "\"answr\":")
        });
        break_line(dir.path(), "retain.jsonl", 3, |l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("answer");
            v.to_string()
        });
        let first_id = {
            let text = std::fs::read_to_string(dir.path().join("forget.jsonl")).unwrap();
            let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            v["id"].as_str().unwrap().to_owned()
        };
        break_line(dir.path(), "holdout.jsonl", 1, |l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"] = serde_json::Value::String(first_id.clone());
            v.to_string()
        });
        let problems = Suite::check(dir.path());
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(has("forget.jsonl:2: malformed JSON"), "{text:#?}");
        assert!(
            has("retain.jsonl:1: field 'answr': unknown field"),
            "{text:#?}"
        );
        assert!(
            has("retain.jsonl:3: field 'answer': missing field"),
            "{text:#?}"
        );
        assert!(
            has(&format!(
                "holdout.jsonl:1: field 'id': duplicate id '{first_id}' (first at forget.jsonl:1)"
            )),
            "{text:#?}"
        );
        assert!(matches!(
            Suite::load(dir.path()),
            Err(SuiteError::Invalid { .. })
        ));
    }

    #[test]
    fn a_missing_split_file_and_an_escaping_path_are_reported() {
        let (dir, _) = written();
        std::fs::remove_file(dir.path().join("holdout.jsonl")).unwrap();
        let manifest = std::fs::read_to_string(dir.path().join("suite.json")).unwrap();
        std::fs::write(
            dir.path().join("suite.json"),
            manifest.replace("\"idk.jsonl\"", "\"../idk.jsonl\""),
        )
        .unwrap();
        let text: Vec<String> = Suite::check(dir.path())
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("holdout.jsonl: cannot read split 'holdout'")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|t| t.contains("leaves the suite folder")),
            "{text:#?}"
        );
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = authors(&AuthorsConfig::tiny()).unwrap();
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        if let Records::Qa(r) = &mut b.splits[1].records {
            r[0].answer.push('!');
        }
        assert_ne!(a.digest(), b.digest());
    }
}
