#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::SplitSpec;
use crate::generate::{AuthorsConfig, authors};

/// A small hand-made suite: two question splits and one text split.
fn small() -> Suite {
    let qa = |id: &str, answer: &str| QaRecord {
        id: id.into(),
        question: format!("Question {id}?"),
        answer: answer.into(),
        groups: BTreeMap::from([("kind".to_owned(), "demo".to_owned())]),
        paraphrased_answers: vec![format!("In other words, {answer}")],
        perturbed_answers: Vec::new(),
        paraphrased_questions: Vec::new(),
        terms: vec![answer.into()],
        options: Vec::new(),
        correct_option: None,
    };
    let spec = |name: &str, role| SplitSpec {
        name: name.into(),
        role,
        file: format!("{name}.jsonl"),
        records: None,
    };
    Suite {
        manifest: SuiteManifest {
            name: "small".into(),
            version: "1".into(),
            description: "A test suite.".into(),
            splits: vec![
                spec("forget", SplitRole::Forget),
                spec("retain", SplitRole::Retain),
                spec("idk", SplitRole::Idk),
            ],
        },
        splits: vec![
            Split {
                name: "forget".into(),
                role: SplitRole::Forget,
                records: Records::Qa(vec![qa("f1", "Oslo")]),
            },
            Split {
                name: "retain".into(),
                role: SplitRole::Retain,
                records: Records::Qa(vec![qa("r1", "Lima"), qa("r2", "Riga")]),
            },
            Split {
                name: "idk".into(),
                role: SplitRole::Idk,
                records: Records::Text(vec![TextRecord {
                    id: "idk-0".into(),
                    text: "I don't know.".into(),
                }]),
            },
        ],
    }
}

fn written() -> (tempfile::TempDir, Suite) {
    let suite = authors(&AuthorsConfig::tiny()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    suite.write(dir.path()).unwrap();
    (dir, suite)
}

fn edit(dir: &Path, file: &str, f: impl FnOnce(String) -> String) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(text)).unwrap();
}

/// Replace one line (1-based) of a split file.
fn edit_line(dir: &Path, file: &str, line: usize, f: impl Fn(&str) -> String) {
    edit(dir, file, |text| {
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == line { f(l) } else { l.to_owned() })
            .collect();
        lines.join("\n") + "\n"
    });
}

/// Change one line's JSON object.
fn edit_json(dir: &Path, file: &str, line: usize, f: impl Fn(&mut Map<String, Value>)) {
    edit_line(dir, file, line, |l| {
        let mut v: Value = serde_json::from_str(l).unwrap();
        f(v.as_object_mut().unwrap());
        v.to_string()
    });
}

/// The problems of a folder, checked to be exactly what `load` refuses with.
fn problems_of(dir: &Path) -> Vec<Problem> {
    let problems = Suite::check(dir);
    match Suite::load(dir) {
        Err(SuiteError::Invalid {
            dir: d,
            problems: p,
        }) => {
            assert_eq!(d, dir);
            assert_eq!(p, problems);
        }
        Ok(_) => assert!(problems.is_empty(), "{problems:#?}"),
        Err(e) => panic!("unexpected error {e}"),
    }
    problems
}

fn find<'a>(
    problems: &'a [Problem],
    file: &str,
    line: Option<usize>,
    field: Option<&str>,
) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.file == file && p.line == line && p.field.as_deref() == field)
        .unwrap_or_else(|| panic!("no problem at {file}:{line:?} field {field:?} in {problems:#?}"))
}

#[test]
fn round_trips_through_a_folder() {
    let (dir, suite) = written();
    let loaded = Suite::load(dir.path()).unwrap();
    assert_eq!(loaded, suite);
    assert_eq!(loaded.digest(), suite.digest());
    assert!(Suite::check(dir.path()).is_empty());
    assert!(suite.problems().is_empty());

    let small = small();
    let dir = tempfile::tempdir().unwrap();
    small.write(dir.path()).unwrap();
    assert_eq!(Suite::load(dir.path()).unwrap(), small);
}

#[test]
fn written_files_are_pretty_json_and_one_compact_record_per_line() {
    let dir = tempfile::tempdir().unwrap();
    small().write(dir.path()).unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("suite.json")).unwrap();
    assert!(
        manifest.starts_with("{\n  \"name\": \"small\""),
        "{manifest}"
    );
    assert!(manifest.ends_with("}\n"));
    let retain = std::fs::read_to_string(dir.path().join("retain.jsonl")).unwrap();
    assert_eq!(retain.lines().count(), 2);
    assert!(retain.ends_with("}\n"));
    assert!(retain.starts_with("{\"id\":\"r1\",\"question\":\"Question r1?\","));
    // Nothing but the suite's files, no temporary leftovers.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["forget.jsonl", "idk.jsonl", "retain.jsonl", "suite.json"]
    );
}

#[test]
fn blank_lines_and_crlf_are_accepted_and_subfolders_work() {
    let mut suite = small();
    suite.manifest.splits[1].file = "data/./retain.jsonl".into();
    let dir = tempfile::tempdir().unwrap();
    suite.write(dir.path()).unwrap();
    assert!(dir.path().join("data/retain.jsonl").is_file());
    edit(dir.path(), "data/retain.jsonl", |t| {
        format!("\n   \n{}\r\n\n", t.trim_end().replace('\n', "\r\n\n"))
    });
    assert_eq!(Suite::load(dir.path()).unwrap(), suite);
}

#[test]
fn a_malformed_line_is_reported_with_its_line() {
    let (dir, _) = written();
    edit_line(dir.path(), "forget.jsonl", 2, |_| {
        "{\"id\": \"x\", oops".to_owned()
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = find(&problems, "forget.jsonl", Some(2), None);
    assert!(p.message.starts_with("malformed JSON: "), "{p}");
    assert!(
        !p.message.contains("at line"),
        "serde's own position is cut: {p}"
    );
}

#[test]
fn a_line_that_is_not_an_object_is_reported() {
    let (dir, _) = written();
    edit_line(dir.path(), "idk.jsonl", 3, |_| "[1, 2]".to_owned());
    let problems = problems_of(dir.path());
    let p = find(&problems, "idk.jsonl", Some(3), None);
    assert_eq!(p.message, "expected a JSON object, found an array");
}

#[test]
fn a_missing_field_is_named() {
    let (dir, _) = written();
    edit_json(dir.path(), "retain.jsonl", 3, |o| {
        o.remove("answer");
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = find(&problems, "retain.jsonl", Some(3), Some("answer"));
    assert_eq!(
        p.to_string(),
        "retain.jsonl:3: field 'answer': missing field (required)"
    );
}

#[test]
fn an_unknown_field_is_named_and_a_typo_also_reports_the_missing_field() {
    let (dir, _) = written();
    edit_line(dir.path(), "retain.jsonl", 1, |l| {
        l.replace("\"answer\":", "\"answr\":")
    });
    edit_json(dir.path(), "holdout.jsonl", 2, |o| {
        o.insert("source".into(), Value::from("wiki"));
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let p = find(&problems, "retain.jsonl", Some(1), Some("answr"));
    assert!(
        p.to_string()
            .starts_with("retain.jsonl:1: field 'answr': unknown field (expected one of: "),
        "{p}"
    );
    assert!(
        p.message.contains("answer") && p.message.contains("correct_option"),
        "{p}"
    );
    find(&problems, "retain.jsonl", Some(1), Some("answer"));
    find(&problems, "holdout.jsonl", Some(2), Some("source"));
}

#[test]
fn a_field_of_the_wrong_type_is_named() {
    let (dir, _) = written();
    edit_json(dir.path(), "forget.jsonl", 1, |o| {
        o.insert("correct_option".into(), Value::from("two"));
        o.insert("terms".into(), Value::from(3));
    });
    edit_json(dir.path(), "pretrain.jsonl", 5, |o| {
        o.insert("text".into(), Value::Null);
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let p = find(&problems, "forget.jsonl", Some(1), Some("correct_option"));
    assert!(p.message.starts_with("invalid type: string \"two\""), "{p}");
    find(&problems, "forget.jsonl", Some(1), Some("terms"));
    find(&problems, "pretrain.jsonl", Some(5), Some("text"));
}

#[test]
fn a_duplicate_id_names_both_places() {
    let (dir, suite) = written();
    let first = suite.split("forget").unwrap().questions()[0].id.clone();
    edit_json(dir.path(), "holdout.jsonl", 2, |o| {
        o.insert("id".into(), Value::from(first.clone()));
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = find(&problems, "holdout.jsonl", Some(2), Some("id"));
    assert_eq!(
        p.message,
        format!("duplicate id '{first}' (first at forget.jsonl:1)")
    );
}

#[test]
fn empty_values_and_an_option_out_of_range_are_reported() {
    let (dir, _) = written();
    edit_json(dir.path(), "retain.jsonl", 2, |o| {
        o.insert("question".into(), Value::from("  "));
        o.insert("options".into(), serde_json::json!(["a", "b"]));
        o.insert("correct_option".into(), Value::from(2));
    });
    edit_json(dir.path(), "idk.jsonl", 1, |o| {
        o.insert("id".into(), Value::from(""));
        o.insert("text".into(), Value::from(""));
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 4, "{problems:#?}");
    find(&problems, "retain.jsonl", Some(2), Some("question"));
    let p = find(&problems, "retain.jsonl", Some(2), Some("correct_option"));
    assert!(p.message.contains("out of range"), "{p}");
    find(&problems, "idk.jsonl", Some(1), Some("id"));
    find(&problems, "idk.jsonl", Some(1), Some("text"));
}

#[test]
fn a_missing_split_file_is_reported_with_its_path() {
    let (dir, _) = written();
    std::fs::remove_file(dir.path().join("holdout.jsonl")).unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = find(&problems, "holdout.jsonl", None, None);
    assert!(
        p.message.starts_with("cannot read split 'holdout': "),
        "{p}"
    );
    assert!(
        p.message
            .contains(&dir.path().join("holdout.jsonl").display().to_string()),
        "fs-err names the path: {p}"
    );
}

#[test]
fn a_missing_or_broken_manifest_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let problems = problems_of(dir.path());
    assert!(
        problems[0]
            .to_string()
            .starts_with("suite.json: cannot read"),
        "{problems:#?}"
    );

    let (dir, _) = written();
    edit(dir.path(), "suite.json", |t| {
        t.replace("\"role\": \"idk\",", "\"role\": \"idk\", \"rolle\": 1,")
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].field.as_deref(), Some("rolle"), "{problems:#?}");
    assert!(problems[0].line.is_some());
}

#[test]
fn manifest_problems_are_all_reported_at_once() {
    let (dir, _) = written();
    edit(dir.path(), "suite.json", |t| {
        t.replace("\"authors\"", "\"Authors!\"")
            .replace("\"role\": \"forget\"", "\"role\": \"eval\"")
            .replace("\"name\": \"holdout\"", "\"name\": \"retain\"")
            .replace("\"idk.jsonl\"", "\"../idk.jsonl\"")
            .replace("\"pretrain.jsonl\"", "\"/etc/passwd\"")
    });
    let problems = problems_of(dir.path());
    let text: Vec<String> = problems.iter().map(Problem::to_string).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(
        has("suite.json: field 'name': 'Authors!' must be"),
        "{text:#?}"
    );
    assert!(
        has("field 'splits[3].name': split name 'retain' appears twice (first at splits[2])"),
        "{text:#?}"
    );
    assert!(has("field 'splits': no split has role Forget"), "{text:#?}");
    assert!(
        has("field 'splits[4].file': split 'idk': path '../idk.jsonl' leaves the suite folder"),
        "{text:#?}"
    );
    assert!(
        has("field 'splits[0].file': split 'pretrain': path '/etc/passwd' leaves the suite folder"),
        "{text:#?}"
    );
    assert_eq!(problems.len(), 5, "{text:#?}");
}

#[test]
fn problems_in_many_files_are_collected_together() {
    let (dir, _) = written();
    edit_line(dir.path(), "forget.jsonl", 1, |_| "nope".to_owned());
    edit_line(dir.path(), "forget.jsonl", 4, |_| "{".to_owned());
    edit_json(dir.path(), "retain.jsonl", 1, |o| {
        o.remove("question");
    });
    std::fs::remove_file(dir.path().join("idk.jsonl")).unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 4, "{problems:#?}");
    find(&problems, "forget.jsonl", Some(1), None);
    find(&problems, "forget.jsonl", Some(4), None);
    find(&problems, "retain.jsonl", Some(1), Some("question"));
    find(&problems, "idk.jsonl", None, None);
}

#[test]
fn an_empty_forget_split_is_refused() {
    let (dir, _) = written();
    std::fs::write(dir.path().join("forget.jsonl"), "\n").unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].message.contains("has no records"),
        "{problems:#?}"
    );
}

#[test]
fn write_refuses_what_load_would_refuse_and_writes_nothing() {
    let target = tempfile::tempdir().unwrap();
    let out = target.path().join("suite");

    let mut escaping = small();
    escaping.manifest.splits[2].file = "../outside.jsonl".into();
    match escaping.write(&out) {
        Err(SuiteError::Invalid { problems, .. }) => {
            assert!(
                problems[0].message.contains("leaves the suite folder"),
                "{problems:#?}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }

    let mut duplicate = small();
    if let Records::Qa(r) = &mut duplicate.splits[1].records {
        r[1].id = "f1".into();
    }
    let problems = duplicate.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "retain.jsonl:2: field 'id': duplicate id 'f1' (first at forget.jsonl:1)"
    );
    assert!(duplicate.write(&out).is_err());

    let mut mismatched = small();
    mismatched.splits.swap(0, 1);
    assert!(!mismatched.problems().is_empty());
    assert!(mismatched.write(&out).is_err());

    let mut wrong_kind = small();
    wrong_kind.splits[2].records = Records::Qa(Vec::new());
    assert!(
        wrong_kind.problems()[0]
            .message
            .contains("holds question records")
    );

    assert!(!out.exists());
    assert!(!target.path().join("outside.jsonl").exists());
}

#[test]
fn digest_is_stable_and_sensitive() {
    let a = small();
    // Pinned: the digest must not change across runs, platforms or refactorings. If the
    // serialisation changes on purpose, bump DIGEST_DOMAIN and update this value.
    assert_eq!(
        a.digest(),
        "70028c1afacbcb21af2403e0c14b006a4f7d08d405a27a0f848b25663dffb598"
    );
    assert_eq!(a.digest().len(), 64);
    assert_eq!(a.digest(), a.clone().digest());

    let mut changed = Vec::new();
    let mut b = a.clone();
    if let Records::Qa(r) = &mut b.splits[1].records {
        r[0].answer.push('!');
    }
    changed.push(b);
    let mut b = a.clone();
    b.manifest.description.push(' ');
    changed.push(b);
    let mut b = a.clone();
    if let Records::Qa(r) = &mut b.splits[1].records {
        r.swap(0, 1);
    }
    changed.push(b);
    let mut b = a.clone();
    if let Records::Qa(r) = &mut b.splits[1].records {
        r[0].groups.insert("extra".into(), String::new());
    }
    changed.push(b);
    for b in changed {
        assert_ne!(a.digest(), b.digest());
    }
}

/// The digests of the generated authors suites as computed before splits could name their kind
/// of records: adding the field must not change the digest of a suite that does not use it.
#[test]
fn the_digest_of_a_suite_without_record_kinds_is_unchanged() {
    assert_eq!(
        authors(&AuthorsConfig::default()).unwrap().digest(),
        "598150fd28c92a8f06c0f1e07bfb9368d39d7ca59c9953cc466cbbd933e3cd9c"
    );
    assert_eq!(
        authors(&AuthorsConfig::tiny()).unwrap().digest(),
        "34e9cf8cfb58b6444c6001cc40c8cc934a0b8af751f03db408728831122fea3c"
    );
    let (dir, _) = written();
    let manifest = std::fs::read_to_string(dir.path().join("suite.json")).unwrap();
    assert!(!manifest.contains("records"), "{manifest}");
}

/// A suite after MUSE: documents to forget, retain and hold out, prompts to continue.
fn documents() -> Suite {
    let texts = |prefix: &str, n: usize| {
        Records::Text(
            (0..n)
                .map(|i| TextRecord {
                    id: format!("{prefix}-{i}"),
                    text: format!("Document {i} of the {prefix} set."),
                })
                .collect(),
        )
    };
    let splits = vec![
        Split {
            name: "pretrain".into(),
            role: SplitRole::Pretrain,
            records: texts("pretrain", 2),
        },
        Split {
            name: "forget".into(),
            role: SplitRole::Forget,
            records: texts("forget", 2),
        },
        Split {
            name: "retain".into(),
            role: SplitRole::Retain,
            records: texts("retain", 3),
        },
        Split {
            name: "holdout".into(),
            role: SplitRole::Holdout,
            records: texts("holdout", 1),
        },
        Split {
            name: "idk".into(),
            role: SplitRole::Idk,
            records: texts("idk", 1),
        },
        Split {
            name: "verbmem".into(),
            role: SplitRole::Eval,
            records: Records::Continuation(vec![
                ContinuationRecord {
                    id: "verbmem-0".into(),
                    prompt: "Document 0".into(),
                    continuation: "of the forget set.".into(),
                },
                ContinuationRecord {
                    id: "verbmem-1".into(),
                    prompt: "Document 1 of".into(),
                    continuation: "the forget set.".into(),
                },
            ]),
        },
        Split {
            name: "knowmem".into(),
            role: SplitRole::Eval,
            records: Records::Qa(vec![QaRecord {
                id: "knowmem-0".into(),
                question: "Which set is document 0 in?".into(),
                answer: "The forget set.".into(),
                ..QaRecord::sample()
            }]),
        },
    ];
    Suite {
        manifest: SuiteManifest {
            name: "documents".into(),
            version: "1".into(),
            description: "Documents and continuations.".into(),
            splits: splits.iter().map(SplitSpec::for_split).collect(),
        },
        splits,
    }
}

#[test]
fn text_and_continuation_splits_round_trip() {
    let suite = documents();
    assert_eq!(suite.problems(), Vec::new());
    let kinds: Vec<RecordKind> = suite
        .manifest
        .splits
        .iter()
        .map(SplitSpec::record_kind)
        .collect();
    use RecordKind::{Continuations, Questions, Texts};
    assert_eq!(
        kinds,
        [Texts, Texts, Texts, Texts, Texts, Continuations, Questions]
    );
    // Only the kinds that differ from the role's are stored.
    let stored: Vec<Option<RecordKind>> = suite.manifest.splits.iter().map(|s| s.records).collect();
    assert_eq!(
        stored,
        [
            None,
            Some(Texts),
            Some(Texts),
            Some(Texts),
            None,
            Some(Continuations),
            None
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    suite.write(dir.path()).unwrap();
    let loaded = Suite::load(dir.path()).unwrap();
    assert_eq!(loaded, suite);
    assert_eq!(loaded.digest(), suite.digest());
    assert_eq!(loaded.split("verbmem").unwrap().continuations().len(), 2);
    assert!(loaded.split("verbmem").unwrap().questions().is_empty());
    assert_eq!(loaded.split("forget").unwrap().texts().len(), 2);
    assert!(loaded.split("forget").unwrap().continuations().is_empty());

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("suite.json")).unwrap())
            .unwrap();
    let records: Vec<Option<&str>> = manifest["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("records").and_then(Value::as_str))
        .collect();
    assert_eq!(
        records,
        [
            None,
            Some("texts"),
            Some("texts"),
            Some("texts"),
            None,
            Some("continuations"),
            None
        ]
    );
    let verbmem = std::fs::read_to_string(dir.path().join("verbmem.jsonl")).unwrap();
    assert!(
        verbmem.starts_with(
            "{\"id\":\"verbmem-0\",\"prompt\":\"Document 0\",\"continuation\":\"of the forget set.\"}\n"
        ),
        "{verbmem}"
    );
}

#[test]
fn the_record_kind_changes_the_digest_and_an_explicit_default_does_not() {
    let suite = documents();
    let mut other = suite.clone();
    other.splits[6] = Split {
        records: Records::Text(vec![TextRecord {
            id: "knowmem-0".into(),
            text: "x".into(),
        }]),
        ..other.splits[6].clone()
    };
    other.manifest.splits[6] = SplitSpec::for_split(&other.splits[6]);
    assert_ne!(suite.digest(), other.digest());

    // A manifest that names the role's own kind is the manifest that names none.
    let mut explicit = suite.clone();
    explicit.manifest.splits[0].records = Some(RecordKind::Texts);
    explicit.manifest.splits[6].records = Some(RecordKind::Questions);
    assert_eq!(explicit, suite);
    assert_eq!(explicit.digest(), suite.digest());
    let dir = tempfile::tempdir().unwrap();
    suite.write(dir.path()).unwrap();
    edit(dir.path(), "suite.json", |t| {
        t.replace(
            "\"file\": \"knowmem.jsonl\"",
            "\"file\": \"knowmem.jsonl\", \"records\": \"questions\"",
        )
    });
    assert_eq!(Suite::load(dir.path()).unwrap(), suite);
}

#[test]
fn a_kind_the_role_cannot_hold_is_refused_naming_file_and_field() {
    let refused = [
        (0, SplitRole::Pretrain, RecordKind::Questions),
        (0, SplitRole::Pretrain, RecordKind::Continuations),
        (1, SplitRole::Forget, RecordKind::Continuations),
        (2, SplitRole::Retain, RecordKind::Continuations),
        (3, SplitRole::Holdout, RecordKind::Continuations),
        (4, SplitRole::Idk, RecordKind::Questions),
        (4, SplitRole::Idk, RecordKind::Continuations),
    ];
    // Exactly these combinations are refused.
    let all_refused: Vec<(SplitRole, RecordKind)> = [
        SplitRole::Pretrain,
        SplitRole::Forget,
        SplitRole::Retain,
        SplitRole::Holdout,
        SplitRole::Idk,
        SplitRole::Eval,
    ]
    .into_iter()
    .flat_map(|r| RecordKind::ALL.into_iter().map(move |k| (r, k)))
    .filter(|(r, k)| !r.allows(*k))
    .collect();
    assert_eq!(
        all_refused,
        refused.iter().map(|(_, r, k)| (*r, *k)).collect::<Vec<_>>()
    );

    for (i, role, kind) in refused {
        let field = format!("splits[{i}].records");
        let mut suite = documents();
        assert_eq!(suite.manifest.splits[i].role, role);
        suite.manifest.splits[i].records = Some(kind);
        let in_memory = suite.problems();
        let p = find(&in_memory, "suite.json", None, Some(&field));
        assert!(
            p.message
                .contains(&format!("role {role:?} cannot hold {kind}")),
            "{p}"
        );
        assert!(suite.write(tempfile::tempdir().unwrap().path()).is_err());

        let dir = tempfile::tempdir().unwrap();
        documents().write(dir.path()).unwrap();
        let name = &suite.manifest.splits[i].name;
        edit(dir.path(), "suite.json", |t| {
            let mut v: Value = serde_json::from_str(&t).unwrap();
            v["splits"][i]["records"] = Value::from(kind.as_str());
            v.to_string()
        });
        let problems = problems_of(dir.path());
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let p = find(&problems, "suite.json", None, Some(&field));
        assert!(
            p.to_string().starts_with(&format!(
                "suite.json: field '{field}': split '{name}': role {role:?} cannot hold {kind}"
            )),
            "{p}"
        );
    }
}

#[test]
fn records_that_do_not_match_the_manifests_kind_are_refused() {
    let mut suite = documents();
    suite.splits[5].records = Records::Text(Vec::new());
    let problems = suite.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "verbmem.jsonl: split 'verbmem' holds text records, but the manifest says it holds \
         continuation records"
    );
}

#[test]
fn a_bad_continuation_line_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    documents().write(dir.path()).unwrap();
    edit_json(dir.path(), "verbmem.jsonl", 2, |o| {
        o.insert("gt".into(), Value::from("the forget set."));
    });
    edit_json(dir.path(), "verbmem.jsonl", 1, |o| {
        o.insert("continuation".into(), Value::from(" "));
    });
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(
        find(&problems, "verbmem.jsonl", Some(2), Some("gt")).to_string(),
        "verbmem.jsonl:2: field 'gt': unknown field (expected one of: continuation, id, prompt)"
    );
    assert_eq!(
        find(&problems, "verbmem.jsonl", Some(1), Some("continuation")).to_string(),
        "verbmem.jsonl:1: field 'continuation': is empty"
    );

    // A question line in a continuation file is a continuation line without its fields.
    edit_line(dir.path(), "verbmem.jsonl", 1, |_| {
        "{\"id\":\"verbmem-0\",\"question\":\"q\",\"answer\":\"a\"}".to_owned()
    });
    let problems = problems_of(dir.path());
    find(&problems, "verbmem.jsonl", Some(1), Some("question"));
    find(&problems, "verbmem.jsonl", Some(1), Some("prompt"));
}

#[test]
fn the_schema_covers_every_kind_of_line_and_the_record_kind() {
    let schema = crate::schema();
    for key in [
        "suite.json",
        "question line",
        "text line",
        "continuation line",
    ] {
        assert!(schema.get(key).is_some(), "{key}");
    }
    let line = &schema["continuation line"];
    assert_eq!(line["additionalProperties"], Value::Bool(false));
    let required: BTreeSet<&str> = line["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, BTreeSet::from(["id", "prompt", "continuation"]));
    let manifest = schema["suite.json"].to_string();
    assert!(
        manifest.contains("\"continuations\"") && manifest.contains("\"records\""),
        "{manifest}"
    );
}
