#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Write `text` as `name` in a fresh folder; returns the folder and the file's path.
fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn json_table(name: &str, text: &str) -> Table {
    let (_dir, path) = file(name, text);
    read_json(&path, name).unwrap()
}

fn columns() -> Columns {
    Columns {
        question: "question".into(),
        answer: "answer".into(),
        ..Columns::default()
    }
}

fn spec(sources: Vec<Source>) -> QaImport {
    QaImport {
        name: "mine".into(),
        description: "Test data.".into(),
        columns: columns(),
        sources,
        pretrain: Vec::new(),
        idk: Vec::new(),
        text_column: "text".into(),
    }
}

fn by_column(table: Table) -> Source {
    Source {
        table,
        assign: Assign::Column {
            column: "split".into(),
            roles: BTreeMap::from([("test".to_owned(), SplitRole::Eval)]),
        },
    }
}

/// The problems of a failed import, as the user reads them.
fn problems(spec: &QaImport) -> Vec<String> {
    match import(spec) {
        Ok(s) => panic!("imported {s:?}"),
        Err(ImportError(p)) => p.iter().map(ToString::to_string).collect(),
    }
}

const JSONL: &str = r#"{"id": "q1", "question": "Who treats Ada?", "answer": "Dr. Holm.", "split": "forget", "person": "Ada", "wrong": ["Dr. Kell.", "Dr. Varr."], "para": "Ada sees Dr. Holm.", "terms": "Holm"}
{"id": "q2", "question": "Who treats Bram?", "answer": "Dr. Kell.", "split": "retain", "person": "Bram", "wrong": ["Dr. Holm."], "extra": 7}

{"id": 3, "question": "Is Bram well?", "answer": "Yes", "split": "retain", "person": "Bram", "options": ["Yes", "No"], "correct": "Yes"}
{"id": "q4", "question": "What is 2 + 2?", "answer": "4", "split": "test", "options": ["3", "4"], "correct": 1}
"#;

fn full_columns() -> Columns {
    Columns {
        id: Some("id".into()),
        groups: vec![("person".into(), "person".into())],
        perturbed_answers: vec!["wrong".into()],
        paraphrased_answers: vec!["para".into()],
        terms: vec!["terms".into()],
        options: vec!["options".into()],
        correct_option: Some("correct".into()),
        ..columns()
    }
}

#[test]
fn imports_json_lines_with_every_field() {
    let table = json_table("data.jsonl", JSONL);
    assert_eq!(table.rows.len(), 4);
    assert_eq!(table.rows[2].place, Place::Line(4), "the blank line counts");
    let mut s = spec(vec![by_column(table)]);
    s.columns = full_columns();
    let suite = import(&s).unwrap();
    let names: Vec<(&str, SplitRole)> = suite
        .splits
        .iter()
        .map(|s| (s.name.as_str(), s.role))
        .collect();
    assert_eq!(
        names,
        [
            ("forget", SplitRole::Forget),
            ("retain", SplitRole::Retain),
            ("test", SplitRole::Eval)
        ]
    );
    let f = &suite.split("forget").unwrap().questions()[0];
    assert_eq!(f.id, "q1");
    assert_eq!(f.groups["person"], "Ada");
    assert_eq!(f.perturbed_answers, ["Dr. Kell.", "Dr. Varr."]);
    assert_eq!(f.paraphrased_answers, ["Ada sees Dr. Holm."]);
    assert_eq!(f.terms, ["Holm"]);
    let r = suite.split("retain").unwrap().questions();
    assert_eq!(r[1].id, "3", "numbers are read as text");
    assert_eq!(r[1].correct_option, Some(0), "an option's text");
    assert!(r[0].options.is_empty() && r[0].terms.is_empty());
    let t = &suite.split("test").unwrap().questions()[0];
    assert_eq!(t.correct_option, Some(1), "an index");
    assert!(t.groups.is_empty());
    assert_eq!(suite.manifest.name, "mine");
    // A sound suite folder, read back as written.
    let out = tempfile::tempdir().unwrap();
    suite.write(out.path()).unwrap();
    assert_eq!(Suite::load(out.path()).unwrap(), suite);
}

#[test]
fn imports_a_json_array_and_names_the_line_of_each_object() {
    let text = r#"[
  {"question": "Who treats Ada?",
   "answer": "Dr. Holm.", "split": "forget"},
  {
    "question": "Who treats \"Bram\"? [sic] {x}",
    "answer": "",
    "split": "retain"
  },
  {"question": "Who treats Cleo?", "answer": "Dr. Varr.", "split": "retain"}
]"#;
    let table = json_table("data.json", text);
    let places: Vec<Place> = table.rows.iter().map(|r| r.place).collect();
    assert_eq!(places, [Place::Line(2), Place::Line(4), Place::Line(9)]);
    assert_eq!(
        problems(&spec(vec![by_column(table)])),
        ["data.json:4: field 'answer': is empty"]
    );
    // A `.json` file holding one object a line, as TOFU's release does, is read as JSON Lines.
    let table = json_table(
        "lines.json",
        "{\"question\": \"a?\", \"answer\": \"b\", \"split\": \"forget\"}\n\
         {\"question\": \"c?\", \"answer\": \"d\", \"split\": \"retain\"}\n",
    );
    let suite = import(&spec(vec![by_column(table)])).unwrap();
    // Without an id column, ids number each split's questions.
    assert_eq!(
        suite.split("forget").unwrap().questions()[0].id,
        "forget-0000"
    );
    assert_eq!(
        suite.split("retain").unwrap().questions()[0].id,
        "retain-0000"
    );
}

#[test]
fn files_per_split_text_files_and_list_separators() {
    let forget = json_table(
        "forget.jsonl",
        "{\"q\": \"a?\", \"a\": \"b\", \"alts\": \"x | y||\", \"alts2\": \"z\"}\n",
    );
    let retain = json_table("retain.jsonl", "{\"q\": \"c?\", \"a\": \"d\"}\n");
    let holdout = json_table("holdout.jsonl", "{\"q\": \"e?\", \"a\": \"f\"}\n");
    let (_d1, pre) = file("pretrain.txt", "Some text.\n\nMore text.\n");
    let (_d2, idk) = file("idk.txt", "I don't know.\n");
    let split = |table, name: &str, role| Source {
        table,
        assign: Assign::Split {
            name: name.into(),
            role,
        },
    };
    let mut s = spec(vec![
        split(forget, "forget", SplitRole::Forget),
        split(retain, "retain", SplitRole::Retain),
        split(holdout, "holdout", SplitRole::Holdout),
    ]);
    s.columns = Columns {
        question: "q".into(),
        answer: "a".into(),
        perturbed_answers: vec!["alts".into(), "alts2".into()],
        list_separator: Some("|".into()),
        ..Columns::default()
    };
    s.pretrain = vec![read_lines(&pre, "pretrain.txt", "text").unwrap()];
    s.idk = vec![read_lines(&idk, "idk.txt", "text").unwrap()];
    let suite = import(&s).unwrap();
    let names: Vec<&str> = suite.splits.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["pretrain", "forget", "retain", "holdout", "idk"]);
    assert_eq!(
        suite.split("forget").unwrap().questions()[0].perturbed_answers,
        ["x", "y", "z"]
    );
    let pretrain = suite.split("pretrain").unwrap().texts();
    assert_eq!(pretrain.len(), 2);
    assert_eq!(pretrain[1].text, "More text.");
    assert_eq!(suite.split("idk").unwrap().texts()[0].id, "idk-00000");
}

fn people(n: usize) -> Table {
    let text: String = (0..n)
        .flat_map(|p| {
            (0..3).map(move |k| {
                format!(
                    "{{\"question\": \"Fact {k} of person {p}?\", \"answer\": \"{k}{p}\", \"who\": \"p{p}\"}}\n"
                )
            })
        })
        .collect();
    json_table("people.jsonl", &text)
}

fn random_split(percent: u32, by: Option<&str>, seed: u64) -> Suite {
    import(&spec(vec![Source {
        table: people(20),
        assign: Assign::Random {
            forget_percent: percent,
            by: by.map(str::to_owned),
            seed,
        },
    }]))
    .unwrap()
}

fn whos(suite: &Suite, split: &str) -> BTreeSet<String> {
    suite
        .split(split)
        .unwrap()
        .questions()
        .iter()
        .map(|r| r.answer[1..].to_owned())
        .collect()
}

#[test]
fn random_assignment_is_seeded_and_keeps_groups_together() {
    let a = random_split(10, Some("who"), 1);
    assert_eq!(a, random_split(10, Some("who"), 1));
    assert_ne!(a, random_split(10, Some("who"), 2));
    assert_eq!(whos(&a, "forget").len(), 2, "10 % of 20 people");
    assert_eq!(a.split("forget").unwrap().len(), 6, "with all their rows");
    assert!(whos(&a, "forget").is_disjoint(&whos(&a, "retain")));
    // By rows: 10 % of 60 rows.
    let rows = random_split(10, None, 1);
    assert_eq!(rows.split("forget").unwrap().len(), 6);
    assert_eq!(rows.split("retain").unwrap().len(), 54);
    // A tiny share still forgets one unit, a huge one keeps one.
    assert_eq!(whos(&random_split(1, Some("who"), 0), "forget").len(), 1);
    assert_eq!(whos(&random_split(99, Some("who"), 0), "retain").len(), 1);
}

#[test]
fn broken_inputs_are_named_by_file_line_and_field_and_nothing_is_imported() {
    // A malformed line and a line that is not an object: reading fails with both.
    let (_dir, path) = file(
        "bad.jsonl",
        "{\"question\": \"a?\", \"answer\": \"b\"}\n{\"question\": \"c?\", \"answer\": \n[1, 2]\n",
    );
    let read: Vec<String> = read_json(&path, "bad.jsonl")
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(
        read[0].starts_with("bad.jsonl:2: malformed JSON: EOF while parsing"),
        "{read:?}"
    );
    assert_eq!(
        read[1],
        "bad.jsonl:3: expected a JSON object, found an array"
    );
    let (_dir, path) = file("bad.json", "[{\"question\": \"a?\",\n \"answer\": }]");
    let read = read_json(&path, "bad.json").unwrap_err();
    assert_eq!(read[0].place, Some(Place::Line(2)));
    assert!(read[0].message.starts_with("malformed JSON"), "{read:?}");

    // A missing column is reported once for the file, with the columns it has.
    let table = json_table(
        "a.jsonl",
        "{\"question\": \"a?\", \"reply\": \"b\", \"split\": \"forget\"}\n",
    );
    assert_eq!(
        problems(&spec(vec![by_column(table)])),
        ["a.jsonl: field 'answer': no such column (the file has: question, reply, split)"]
    );

    // An optional column in no file at all is most likely a typo; one file lacking it is not.
    let one = json_table(
        "one.jsonl",
        "{\"question\": \"a?\", \"answer\": \"b\", \"split\": \"forget\", \"wrong\": \"c\"}\n",
    );
    let two = json_table(
        "two.jsonl",
        "{\"question\": \"d?\", \"answer\": \"e\", \"split\": \"retain\"}\n",
    );
    let mut s = spec(vec![by_column(one), by_column(two)]);
    s.columns.perturbed_answers = vec!["wrong".into()];
    assert!(import(&s).is_ok());
    s.columns.perturbed_answers = vec!["wrnog".into()];
    assert_eq!(
        problems(&s),
        [
            "one.jsonl: field 'wrnog': no such column (the file has: answer, question, split, wrong)",
            "two.jsonl: field 'wrnog': no such column (the file has: answer, question, split)",
        ]
    );

    // Row-level problems, all of them, each with its place and field.
    let text = r#"{"id": "x", "question": "a?", "answer": "b", "split": "forget"}
{"id": "x", "question": "c?", "answer": "d", "split": "retain"}
{"id": "y", "question": "e?", "answer": "  ", "split": "retain"}
{"id": "z", "question": "g?", "split": "retain"}
{"id": "w", "question": ["h?"], "answer": "i", "split": "retain"}
{"id": "v", "question": "j?", "answer": "k", "split": "later"}
{"id": "u", "question": "l?", "answer": "m", "split": "Forget!"}
{"id": "t", "question": "n?", "answer": "o", "split": "retain", "options": ["p", "q"], "correct": 2}
{"id": "s", "question": "r?", "answer": "s", "split": "retain", "correct": "0"}
{"id": "", "question": "t?", "answer": "u", "split": "retain", "person": {"a": 1}}
"#;
    let mut s = spec(vec![by_column(json_table("rows.jsonl", text))]);
    s.columns = Columns {
        id: Some("id".into()),
        groups: vec![("person".into(), "person".into())],
        options: vec!["options".into()],
        correct_option: Some("correct".into()),
        ..columns()
    };
    assert_eq!(
        problems(&s),
        [
            "rows.jsonl:2: field 'id': duplicate id 'x' (first at rows.jsonl:1)",
            "rows.jsonl:3: field 'answer': is empty",
            "rows.jsonl:4: field 'answer': is missing",
            "rows.jsonl:5: field 'question': expected a text, found a list",
            "rows.jsonl:6: field 'split': split 'later' has no role: name it forget, retain, \
             holdout or eval, or give its role (e.g. later=eval)",
            "rows.jsonl:7: field 'split': split name 'Forget!' must be 1 to 64 lowercase \
             letters, digits and '-'",
            "rows.jsonl:8: field 'correct': '2' is neither one of the options (p, q) nor an \
             index below 2",
            "rows.jsonl:9: field 'correct': '0' is given but the row has no options",
            "rows.jsonl:10: field 'id': is empty",
            "rows.jsonl:10: field 'person': expected a text, found an object",
        ]
    );

    // A duplicate is found even when the first row has problems of its own.
    let text = "{\"id\": \"a\", \"question\": \"b?\", \"answer\": \"\", \"split\": \"forget\"}\n\
                {\"id\": \"a\", \"question\": \"c?\", \"answer\": \"d\", \"split\": \"retain\"}\n";
    let mut s = spec(vec![by_column(json_table("dup.jsonl", text))]);
    s.columns.id = Some("id".into());
    assert_eq!(
        problems(&s),
        [
            "dup.jsonl:1: field 'answer': is empty",
            "dup.jsonl:2: field 'id': duplicate id 'a' (first at dup.jsonl:1)",
        ]
    );

    // Duplicate ids across files name both files.
    let one = json_table(
        "one.jsonl",
        "{\"id\": \"k\", \"question\": \"a?\", \"answer\": \"b\", \"split\": \"forget\"}\n",
    );
    let two = json_table(
        "two.jsonl",
        "{\"id\": \"k\", \"question\": \"c?\", \"answer\": \"d\", \"split\": \"retain\"}\n",
    );
    let mut s = spec(vec![by_column(one), by_column(two)]);
    s.columns.id = Some("id".into());
    assert_eq!(
        problems(&s),
        ["two.jsonl:1: field 'id': duplicate id 'k' (first at one.jsonl:1)"]
    );
}

#[test]
fn a_table_without_line_numbers_names_rows() {
    // As the binary builds a CSV or Parquet table: rows, not lines.
    let row = |n: usize, answer: Cell| Row {
        place: Place::Row(n),
        cells: BTreeMap::from([
            ("question".to_owned(), Cell::Text(format!("q{n}?"))),
            ("answer".to_owned(), answer),
        ]),
    };
    let table = Table {
        file: "data.csv".into(),
        columns: vec!["question".into(), "answer".into()],
        rows: vec![row(1, Cell::Text("a".into())), row(2, Cell::Null)],
    };
    let source = Source {
        table,
        assign: Assign::Random {
            forget_percent: 50,
            by: None,
            seed: 0,
        },
    };
    assert_eq!(
        problems(&spec(vec![source])),
        ["data.csv: row 2: field 'answer': is empty"]
    );
}

#[test]
fn suites_without_forget_or_retain_and_bad_names_are_refused() {
    let only_forget = json_table(
        "f.jsonl",
        "{\"question\": \"a?\", \"answer\": \"b\", \"split\": \"forget\"}\n",
    );
    assert_eq!(
        problems(&spec(vec![by_column(only_forget.clone())])),
        [
            "input: no question goes to a split with role Retain: every suite needs forget and \
          retain questions"
        ]
    );
    let mut s = spec(vec![by_column(only_forget.clone())]);
    s.name = "My Suite".into();
    assert_eq!(
        problems(&s)[0],
        "suite name: 'My Suite' must be 1 to 64 lowercase letters, digits and '-'"
    );
    let empty = json_table("empty.jsonl", "\n");
    assert_eq!(
        problems(&spec(vec![Source {
            table: empty,
            assign: Assign::Split {
                name: "retain".into(),
                role: SplitRole::Retain
            }
        }]))[..2],
        [
            "empty.jsonl: field 'question': no such column (the file has: none)",
            "empty.jsonl: field 'answer': no such column (the file has: none)",
        ]
    );
    let bad_role = Source {
        table: only_forget.clone(),
        assign: Assign::Split {
            name: "notes".into(),
            role: SplitRole::Pretrain,
        },
    };
    assert_eq!(
        problems(&spec(vec![bad_role])),
        ["f.jsonl: split 'notes' has role Pretrain, which holds text, not questions"]
    );
    let random = Source {
        table: only_forget,
        assign: Assign::Random {
            forget_percent: 10,
            by: None,
            seed: 0,
        },
    };
    assert_eq!(
        problems(&spec(vec![random])),
        ["f.jsonl: 1 row(s) to draw from, but forget and retain need one each"]
    );
}
