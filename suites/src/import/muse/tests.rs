#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::generate::{NewsConfig, news};

/// A generated news suite written in MUSE's layout in `<tmp>/news`.
fn layout() -> (tempfile::TempDir, PathBuf, Suite) {
    let suite = news(&NewsConfig::tiny()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("news");
    write_muse_layout(&suite, &dir).unwrap();
    (tmp, dir, suite)
}

fn texts(suite: &Suite, split: &str) -> Vec<String> {
    suite
        .split(split)
        .unwrap()
        .texts()
        .iter()
        .map(|t| t.text.clone())
        .collect()
}

fn qa(suite: &Suite, split: &str) -> Vec<(String, String)> {
    suite
        .split(split)
        .unwrap()
        .questions()
        .iter()
        .map(|q| (q.question.clone(), q.answer.clone()))
        .collect()
}

fn continuations(suite: &Suite, split: &str) -> Vec<(String, String)> {
    suite
        .split(split)
        .unwrap()
        .continuations()
        .iter()
        .map(|c| (c.prompt.clone(), c.continuation.clone()))
        .collect()
}

/// The problems `muse` refuses `dir` with.
fn problems_of(dir: &Path) -> Vec<Problem> {
    match muse(dir) {
        Err(SuiteError::Invalid { dir: d, problems }) => {
            assert_eq!(d, dir);
            problems
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn find<'a>(problems: &'a [Problem], file: &str, field: Option<&str>) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.file == file && p.field.as_deref() == field)
        .unwrap_or_else(|| panic!("no problem in {file} field {field:?}: {problems:#?}"))
}

fn put(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

#[test]
fn the_layout_has_exactly_muses_files_each_one_json_array_on_one_line() {
    let (_tmp, dir, _) = layout();
    let mut files = Vec::new();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            files.push(f.strip_prefix(&dir).unwrap().display().to_string());
            let text = std::fs::read_to_string(&f).unwrap();
            assert_eq!(text.lines().count(), 1, "{}", f.display());
            assert!(text.starts_with('['), "{}", f.display());
            assert!(serde_json::from_str::<Value>(&text).unwrap().is_array());
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            "knowmem/forget_qa.json",
            "knowmem/retain2_qa.json",
            "privleak/forget.json",
            "privleak/holdout.json",
            "privleak/retain2.json",
            "raw/forget.json",
            "raw/retain1.json",
            "verbmem/forget.json",
        ]
    );
    let verbmem: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(VERBMEM_FORGET)).unwrap()).unwrap();
    let first = verbmem[0].as_object().unwrap();
    assert_eq!(
        first.keys().collect::<BTreeSet<_>>(),
        BTreeSet::from([&"gt".to_owned(), &"prompt".to_owned()])
    );
}

#[test]
fn a_generated_suite_round_trips_through_the_layout() {
    let (_tmp, dir, suite) = layout();
    let imported = muse(&dir).unwrap();
    assert_eq!(imported.problems(), Vec::new());
    for split in ["forget", "retain", "holdout"] {
        assert_eq!(texts(&imported, split), texts(&suite, split), "{split}");
    }
    for split in ["knowmem-forget", "knowmem-retain"] {
        assert_eq!(qa(&imported, split), qa(&suite, split), "{split}");
    }
    assert_eq!(
        continuations(&imported, "verbmem-forget"),
        continuations(&suite, "verbmem-forget")
    );
    let layout: Vec<(&str, SplitRole, RecordKind)> = imported
        .splits
        .iter()
        .map(|s| (s.name.as_str(), s.role, s.records.kind()))
        .collect();
    assert_eq!(
        layout,
        [
            ("forget", SplitRole::Forget, RecordKind::Texts),
            ("retain", SplitRole::Retain, RecordKind::Texts),
            ("holdout", SplitRole::Holdout, RecordKind::Texts),
            ("verbmem-forget", SplitRole::Eval, RecordKind::Continuations),
            ("knowmem-forget", SplitRole::Eval, RecordKind::Questions),
            ("knowmem-retain", SplitRole::Eval, RecordKind::Questions),
        ]
    );
    let forget = imported.split("forget").unwrap().texts();
    assert_eq!(forget[0].id, "forget-00000");
    assert_eq!(forget[1].id, "forget-00001");
    assert_eq!(
        imported.split("knowmem-retain").unwrap().questions()[0].id,
        "knowmem-retain-00000"
    );
    assert_eq!(imported.manifest.name, "muse-news");
    assert!(
        imported
            .manifest
            .description
            .contains("MUSE (Shi et al., 2024) imported from a local copy"),
        "{}",
        imported.manifest.description
    );
    // The same folder gives the same suite; it is a sound suite folder, and writes back the same.
    assert_eq!(muse(&dir).unwrap(), imported);
    let out = tempfile::tempdir().unwrap();
    imported.write(out.path()).unwrap();
    assert_eq!(Suite::load(out.path()).unwrap(), imported);
    let again = tempfile::tempdir().unwrap();
    write_muse_layout(&imported, again.path()).unwrap();
    for file in [KNOWMEM_FORGET, VERBMEM_FORGET, PRIVLEAK_HOLDOUT, RAW_FORGET] {
        assert_eq!(
            std::fs::read_to_string(again.path().join(file)).unwrap(),
            std::fs::read_to_string(dir.join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn without_the_raw_corpora_the_forget_documents_come_from_privleak_and_verbmem() {
    let (_tmp, dir, suite) = layout();
    std::fs::remove_dir_all(dir.join("raw")).unwrap();
    // The news suite's verbmem pairs join to its forget articles: nothing new, all deduplicated.
    assert_eq!(
        texts(&muse(&dir).unwrap(), "forget"),
        texts(&suite, "forget")
    );
    assert_eq!(
        texts(&muse(&dir).unwrap(), "retain"),
        texts(&suite, "retain")
    );

    // A prompt that is no privleak document adds one; a repeated one adds nothing.
    put(
        &dir,
        VERBMEM_FORGET,
        r#"[{"prompt":"A new","gt":"document."},{"prompt":"A new ","gt":"document."}]"#,
    );
    put(&dir, PRIVLEAK_FORGET, r#"["One.","Two.","One."]"#);
    put(&dir, PRIVLEAK_RETAIN, r#"["Kept."]"#);
    let imported = muse(&dir).unwrap();
    assert_eq!(
        texts(&imported, "forget"),
        ["One.", "Two.", "A new document."]
    );
    assert_eq!(texts(&imported, "retain"), ["Kept."]);
    assert_eq!(imported.split("verbmem-forget").unwrap().len(), 2);

    // When present, the raw corpora are the training documents.
    std::fs::create_dir(dir.join("raw")).unwrap();
    put(&dir, RAW_FORGET, r#"["Raw forget."]"#);
    put(&dir, RAW_RETAIN, r#"["Raw retain.", "More."]"#);
    let imported = muse(&dir).unwrap();
    assert_eq!(texts(&imported, "forget"), ["Raw forget."]);
    assert_eq!(texts(&imported, "retain"), ["Raw retain.", "More."]);
}

#[test]
fn missing_files_are_reported_together_and_nothing_is_returned() {
    let (_tmp, dir, _) = layout();
    std::fs::remove_file(dir.join(KNOWMEM_RETAIN)).unwrap();
    std::fs::remove_file(dir.join(PRIVLEAK_HOLDOUT)).unwrap();
    // The optional corpora may be missing.
    std::fs::remove_file(dir.join(RAW_RETAIN)).unwrap();
    let problems = problems_of(&dir);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(
        find(&problems, KNOWMEM_RETAIN, None).to_string(),
        "knowmem/retain2_qa.json: missing"
    );
    find(&problems, PRIVLEAK_HOLDOUT, None);

    let empty = tempfile::tempdir().unwrap();
    assert_eq!(problems_of(empty.path()).len(), 6);
}

#[test]
fn malformed_json_and_files_that_are_not_arrays_are_reported() {
    let (_tmp, dir, _) = layout();
    put(&dir, VERBMEM_FORGET, r#"{"prompt": "a", "gt": "b"}"#);
    put(
        &dir,
        KNOWMEM_FORGET,
        "[{\"question\": \"q\",\n \"answer\": ",
    );
    put(&dir, PRIVLEAK_HOLDOUT, "\"a document\"");
    let problems = problems_of(&dir);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_eq!(
        find(&problems, VERBMEM_FORGET, None).message,
        "expected a JSON array, found an object"
    );
    let p = find(&problems, KNOWMEM_FORGET, None);
    assert_eq!(p.line, Some(2), "{p}");
    assert!(p.message.starts_with("malformed JSON: "), "{p}");
    assert_eq!(
        find(&problems, PRIVLEAK_HOLDOUT, None).message,
        "expected a JSON array, found a string"
    );
}

#[test]
fn bad_elements_are_reported_with_their_index_and_field() {
    let (_tmp, dir, _) = layout();
    put(&dir, PRIVLEAK_FORGET, r#"["a document", 3, "  "]"#);
    put(
        &dir,
        KNOWMEM_FORGET,
        r#"[{"question":"Who?","answer":"Ada."},{"question":"Why?"},{"question":5,"answer":"x","extra":1},"Where?"]"#,
    );
    put(&dir, VERBMEM_FORGET, r#"[{"prompt":"On 3 May","gt":""}]"#);
    put(&dir, RAW_RETAIN, r#"[null]"#);
    let problems = problems_of(&dir);
    let shown: Vec<String> = problems.iter().map(Problem::to_string).collect();
    assert_eq!(
        shown,
        [
            "knowmem/forget_qa.json: field '[1].answer': missing field (required)",
            "knowmem/forget_qa.json: field '[2].question': expected a string, found a number",
            "knowmem/forget_qa.json: field '[3]': expected a JSON object with 'question' and \
             'answer', found a string",
            "verbmem/forget.json: field '[0].gt': is empty",
            "privleak/forget.json: field '[1]': expected a string, found a number",
            "privleak/forget.json: field '[2]': is empty",
            "raw/retain1.json: field '[0]': expected a string, found null",
        ]
    );
}

#[test]
fn empty_arrays_are_refused_even_in_optional_files() {
    let (_tmp, dir, _) = layout();
    put(&dir, KNOWMEM_RETAIN, "[]");
    put(&dir, RAW_FORGET, " [ ]\n");
    let problems = problems_of(&dir);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(
        find(&problems, KNOWMEM_RETAIN, None).message,
        "is an empty array"
    );
    find(&problems, RAW_FORGET, None);
}

#[test]
fn the_suite_is_named_after_the_folder() {
    for (folder, name) in [
        ("news", "muse-news"),
        ("books", "muse-books"),
        ("MUSE-News", "muse-news"),
        ("muse_books", "muse-books"),
        ("muse", "muse-news"),
        ("Books (2024)", "muse-books-2024"),
        ("data/news", "muse-news"),
        ("--", "muse-news"),
        ("Ünïcode", "muse-n-code"),
        ("", "muse-news"),
    ] {
        assert_eq!(suite_name(Path::new(folder)), name, "{folder}");
    }
    let long = "x".repeat(100);
    let name = suite_name(Path::new(&long));
    assert_eq!(name.len(), 64);
    assert!(crate::valid_name(&name));
}

#[test]
fn the_writer_needs_the_muse_splits() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("layout");
    let authors = crate::generate::authors(&crate::generate::AuthorsConfig::tiny()).unwrap();
    let problems = match write_muse_layout(&authors, &target) {
        Err(SuiteError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let shown: Vec<String> = problems.iter().map(Problem::to_string).collect();
    assert_eq!(
        shown,
        [
            "raw/forget.json: needs split 'forget' to hold texts, but it holds questions",
            "raw/retain1.json: needs split 'retain' to hold texts, but it holds questions",
            "privleak/holdout.json: needs split 'holdout' to hold texts, but it holds questions",
            "verbmem/forget.json: needs a split 'verbmem-forget' holding continuations; the suite \
             has none",
            "knowmem/forget_qa.json: needs a split 'knowmem-forget' holding questions; the suite \
             has none",
            "knowmem/retain2_qa.json: needs a split 'knowmem-retain' holding questions; the suite \
             has none",
        ]
    );
    assert!(!target.exists());

    // An unsound suite is refused as `Suite::write` refuses it.
    let mut broken = news(&NewsConfig::tiny()).unwrap();
    if let Records::Text(t) = &mut broken.splits[1].records {
        t[0].text = " ".into();
    }
    assert!(write_muse_layout(&broken, &target).is_err());
    assert!(!target.exists());
}
