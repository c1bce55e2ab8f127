//! `lethe suite generate privacy|wrong-facts` and `lethe suite import qa`.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::{generate, lethe, run_tiny, text};

/// Every file of a folder, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect()
}

#[test]
fn mllmu_generators_are_deterministic_checked_and_refuse_bad_ratios() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["privacy", "wrong-facts"] {
        let (a, b) = (
            dir.path().join(format!("{kind}-a")),
            dir.path().join(format!("{kind}-b")),
        );
        for out in [&a, &b] {
            let o = generate(kind, out, &["--seed", "4", "--forget-percent", "30"]);
            assert!(o.status.success(), "{}", text(&o));
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert!(
                stdout.contains("test ") && stdout.contains("idk 24"),
                "{stdout}"
            );
        }
        assert_eq!(files(&a), files(&b), "{kind}: same seed, same bytes");
        let o = lethe().args(["suite", "check"]).arg(&a).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));

        let bad = dir.path().join(format!("{kind}-bad"));
        let o = generate(kind, &bad, &["--forget-percent", "40"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("forget percentage 40 is outside 5..=30"),
            "{err}"
        );
        assert!(!bad.exists(), "nothing is written");
    }
    let o = generate(
        "authors",
        &dir.path().join("a"),
        &["--forget-percent", "10"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_privacy_suite_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("privacy");
    let o = generate("privacy", &suite, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("out");
    let o = run_tiny(
        &out,
        &["--suite", suite.to_str().unwrap(), "--methods", "ga"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(board.contains("test rougeL_recall"), "{board}");
}

/// A row of the test data: id, question, answer, split, person, wrong answers.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const CSV: &str = "id,question,answer,split,person,wrong\n\
    a1,Where does Ada live?,\"Ada lives in Oslo, Norway.\",forget,Ada,Ada lives in Lima.|Ada lives in Riga.\n\
    b1,Where does Bram live?,Bram lives in Quito.,retain,Bram,\n\
    c1,What is 2 + 2?,4,test,,\n";

fn import(dir: &Path, args: &[&str]) -> std::process::Output {
    lethe()
        .current_dir(dir)
        .args(["suite", "import", "qa"])
        .args(args)
        .output()
        .unwrap()
}

/// The imported suite's questions, by split.
fn questions(suite: &Path, split: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(suite.join(format!("{split}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn qa_import_reads_csv_jsonl_json_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("qa.csv"), CSV).unwrap();
    let mapping = [
        "--split",
        "split",
        "--role",
        "test=eval",
        "--id",
        "id",
        "--group",
        "patient=person",
        "--perturbed-answer",
        "wrong",
        "--list-separator",
        "|",
    ];
    let o = import(
        d,
        &[&["--from", "qa.csv"], &mapping[..], &["--out", "from-csv"]].concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("forget 1, retain 1, test 1"),
        "{}",
        text(&o)
    );
    let forget = questions(&d.join("from-csv"), "forget");
    assert_eq!(forget[0]["answer"], "Ada lives in Oslo, Norway.");
    assert_eq!(forget[0]["groups"]["patient"], "Ada");
    assert_eq!(
        forget[0]["perturbed_answers"],
        serde_json::json!(["Ada lives in Lima.", "Ada lives in Riga."])
    );
    let o = lethe()
        .args(["suite", "check"])
        .arg(d.join("from-csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // The same rows as JSON Lines, as a JSON array and as Parquet give the same suite files.
    let rows: [Row; 3] = [
        (
            "a1",
            "Where does Ada live?",
            "Ada lives in Oslo, Norway.",
            "forget",
            Some("Ada"),
            "Ada lives in Lima.|Ada lives in Riga.",
        ),
        (
            "b1",
            "Where does Bram live?",
            "Bram lives in Quito.",
            "retain",
            Some("Bram"),
            "",
        ),
        ("c1", "What is 2 + 2?", "4", "test", None, ""),
    ];
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .map(|(id, q, a, s, p, w)| {
            serde_json::json!({"id": id, "question": q, "answer": a, "split": s, "person": p, "wrong": w})
        })
        .collect();
    let jsonl: String = objects.iter().map(|o| format!("{o}\n")).collect();
    std::fs::write(d.join("qa.jsonl"), jsonl).unwrap();
    std::fs::write(
        d.join("qa.json"),
        serde_json::to_string_pretty(&objects).unwrap(),
    )
    .unwrap();
    let column = |f: fn(&Row) -> Option<&'static str>, name: &str| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let mut df = DataFrame::new(vec![
        column(|r| Some(r.0), "id"),
        column(|r| Some(r.1), "question"),
        column(|r| Some(r.2), "answer"),
        column(|r| Some(r.3), "split"),
        column(|r| r.4, "person"),
        column(|r| Some(r.5).filter(|w| !w.is_empty()), "wrong"),
    ])
    .unwrap();
    ParquetWriter::new(std::fs::File::create(d.join("qa.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let expected = files(&d.join("from-csv"));
    for (file, out) in [("qa.jsonl", "j1"), ("qa.json", "j2"), ("qa.parquet", "pq")] {
        let o = import(
            d,
            &[&["--from", file], &mapping[..], &["--out", out]].concat(),
        );
        assert!(o.status.success(), "{file}: {}", text(&o));
        let mut got = files(&d.join(out));
        let mut want = expected.clone();
        // The description names the input file; everything else is identical.
        got.remove("suite.json");
        want.remove("suite.json");
        assert_eq!(got, want, "{file}");
    }

    // One file per split, a seeded draw by person, pretraining text and refusals.
    std::fs::write(
        d.join("forget.jsonl"),
        "{\"question\": \"a?\", \"answer\": \"b\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("retain.csv"), "question,answer\nc?,d\ne?,f\n").unwrap();
    std::fs::write(d.join("pretrain.txt"), "Some text.\nMore text.\n").unwrap();
    std::fs::write(d.join("idk.txt"), "I don't know.\n").unwrap();
    let o = import(
        d,
        &[
            "--forget-file",
            "forget.jsonl",
            "--retain-file",
            "retain.csv",
            "--eval-file",
            "test=qa.csv",
            "--pretrain-file",
            "pretrain.txt",
            "--idk-file",
            "idk.txt",
            "--name",
            "mine",
            "--out",
            "files",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("pretrain 2, forget 1, retain 2, test 3, idk 1"),
        "{}",
        text(&o)
    );
    let o = import(
        d,
        &[
            "--from",
            "qa.jsonl",
            "--forget-percent",
            "30",
            "--forget-by",
            "person",
            "--seed",
            "1",
            "--out",
            "drawn",
        ],
    );
    // Row c1 has no person: it cannot be drawn, and the error says so.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("qa.jsonl:3: field 'person': is empty"),
        "{}",
        text(&o)
    );
    assert!(!d.join("drawn").exists());
}

#[test]
fn broken_qa_inputs_name_file_line_and_field_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, &str, &[&str], &[&str]); 6] = [
        (
            "ragged.csv",
            "question,answer,split\na?,b,forget\nc?,d,retain,x\n",
            &[],
            &["ragged.csv:3: malformed CSV: 4 field(s) where the header has 3"],
        ),
        (
            "empty.csv",
            "id,question,answer,split\n1,Where?,,forget\n2,Who?,Me.,retain\n",
            &["--id", "id"],
            &["empty.csv:2: field 'answer': is empty"],
        ),
        (
            "dup.csv",
            "id,question,answer,split\n1,Where?,Here.,forget\n1,Who?,Me.,retain\n",
            &["--id", "id"],
            &["dup.csv:3: field 'id': duplicate id '1' (first at dup.csv:2)"],
        ),
        (
            "column.csv",
            "id,question,reply,split\n1,Where?,Here.,forget\n",
            &[],
            &[
                "column.csv: field 'answer': no such column (the file has: id, question, reply, split)",
            ],
        ),
        (
            "malformed.jsonl",
            "{\"question\": \"a?\", \"answer\": \"b\", \"split\": \"forget\"}\n{\"question\": \"c?\",\n",
            &[],
            &["malformed.jsonl:2: malformed JSON: EOF while parsing"],
        ),
        (
            "role.csv",
            "question,answer,split\na?,b,forget\nc?,d,retain\ne?,f,later\n",
            &[],
            &["role.csv:4: field 'split': split 'later' has no role"],
        ),
    ];
    for (file, content, extra, expected) in cases {
        std::fs::write(d.join(file), content).unwrap();
        let out = format!("{file}-out");
        let o = import(
            d,
            &[&["--from", file, "--split", "split", "--out", &out], extra].concat(),
        );
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error: cannot import:"), "{err}");
        for e in expected {
            assert!(err.contains(e), "{file}: expected '{e}' in\n{err}");
        }
        assert!(!d.join(&out).exists(), "{file}: nothing is written");
    }
    // How rows are split must be said.
    std::fs::write(d.join("ok.csv"), "question,answer\na?,b\n").unwrap();
    let o = import(d, &["--from", "ok.csv", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--split COL or --forget-percent"));
}
