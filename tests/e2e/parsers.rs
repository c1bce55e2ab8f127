//! Mutated inputs against every parser a user or submitter feeds: suite folders, plan files, QA
//! tables (CSV, TSV, JSON, JSON Lines, Parquet), the TOFU release's files, and checkpoints
//! (`config.json`, `tokenizer.json`, `model.safetensors`). Each case takes a valid input,
//! damages it (bytes flipped, cut, inserted, repeated, JSON punctuation swapped in) with a
//! seeded generator, and feeds it to the real command (or, for checkpoints, the loader): an
//! error is fine, a panic or a signal is a failure. `LETHE_FUZZ_CASES=N` runs N cases per
//! input instead of the short CI budget.

use std::path::{Path, PathBuf};
use std::process::Output;

use candle_core::Device;
use lethe_model::{Config, LanguageModel, Params, Tokenizer};

use crate::{lethe, text};

/// Cases per input: a short budget in CI, more on request.
fn cases() -> usize {
    std::env::var("LETHE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// A seeded xorshift generator: the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four damages to `input`.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    const PUNCT: &[u8] = b"{}[]\",:0-9e.\n\\ \x00\xff";
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let n = out.len();
        let at = rng.below(n);
        match rng.below(7) {
            0 if n > 0 => out[at] ^= 1 << rng.below(8),
            1 if n > 0 => out[at] = PUNCT[rng.below(PUNCT.len())],
            2 => out.truncate(at),
            3 => {
                let len = rng.below(64).min(n - at);
                out.drain(at..at + len);
            }
            4 => {
                let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            5 => {
                let len = rng.below(256).min(n - at);
                let copy = out[at..at + len].to_vec();
                out.splice(at..at, copy);
            }
            _ => {
                // A number made huge or negative, where the text has digits.
                if let Some(d) = out.iter().skip(at).position(u8::is_ascii_digit) {
                    let at = at + d;
                    let big: &[u8] = match rng.below(3) {
                        0 => b"99999999999999999999",
                        1 => b"-1",
                        _ => b"1e308",
                    };
                    out.splice(at..at + 1, big.iter().copied());
                }
            }
        }
    }
    out
}

/// A command's outcome on a damaged input: any exit status but a panic's or a signal's, and an
/// error message when it fails.
fn survived(o: &Output, case: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"),
        "{case}: the command panicked:\n{}",
        text(o)
    );
    match o.status.code() {
        Some(0) => {}
        Some(1 | 2) => assert!(stderr.contains("error"), "{case}: failed silently"),
        other => panic!("{case}: exit {other:?} (a crash):\n{}", text(o)),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Damage `file` of a copy of `base` for each case and run `check` on the copy.
fn each_case(base: &Path, file: &str, seed: u64, check: &dyn Fn(&Path, &str)) {
    let original = std::fs::read(base.join(file)).unwrap();
    let mut rng = Rng(seed | 1);
    let scratch = tempfile::tempdir().unwrap();
    for i in 0..cases() {
        let dir = scratch.path().join(format!("case-{i}"));
        copy_dir(base, &dir);
        std::fs::write(dir.join(file), mutate(&original, &mut rng)).unwrap();
        check(&dir, &format!("{file} case {i} (seed {seed})"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn damaged_suite_folders_are_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("suite");
    let o = crate::generate("authors", &base, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut files: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for (k, file) in files.iter().enumerate() {
        each_case(&base, file, 11 + k as u64, &|d, case| {
            survived(
                &lethe().args(["suite", "check"]).arg(d).output().unwrap(),
                case,
            );
        });
    }
}

#[test]
fn damaged_plan_files_are_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("plan");
    let o = lethe()
        .args([
            "plan",
            "--preset",
            "tiny",
            "--seeds",
            "0..2",
            "--methods",
            "ga",
            "--out",
        ])
        .arg(&base)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_dir_all(base.join("jobs")).ok();
    let board = dir.path().join("board");
    each_case(&base, "plan.jsonl", 23, &|d, case| {
        // A report reads the plan and refuses before anything runs (no shard is there).
        let o = lethe()
            .arg("report")
            .arg(d)
            .arg("--out")
            .arg(&board)
            .output()
            .unwrap();
        survived(&o, case);
        assert_ne!(o.status.code(), Some(0), "{case}: a report of no shards");
    });
}

/// QA tables in each format the importer reads.
fn qa_tables(dir: &Path) -> Vec<PathBuf> {
    let rows: Vec<(String, String)> = (0..12)
        .map(|i| {
            (
                format!("Where was person {i} born?"),
                format!("Person {i} was born in town {}.", i * 7),
            )
        })
        .collect();
    let csv: String = std::iter::once("question,answer\n".to_owned())
        .chain(rows.iter().map(|(q, a)| format!("\"{q}\",\"{a}\"\n")))
        .collect();
    let tsv: String = std::iter::once("question\tanswer\n".to_owned())
        .chain(rows.iter().map(|(q, a)| format!("{q}\t{a}\n")))
        .collect();
    let jsonl: String = rows
        .iter()
        .map(|(q, a)| format!("{}\n", serde_json::json!({"question": q, "answer": a})))
        .collect();
    let json = serde_json::to_string(
        &rows
            .iter()
            .map(|(q, a)| serde_json::json!({"question": q, "answer": a}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let files = [
        ("qa.csv", csv.into_bytes()),
        ("qa.tsv", tsv.into_bytes()),
        ("qa.jsonl", jsonl.into_bytes()),
        ("qa.json", json.into_bytes()),
    ];
    let mut out = Vec::new();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
        out.push(dir.join(name));
    }
    let mut df = polars::prelude::DataFrame::new(vec![
        polars::prelude::Column::new(
            "question".into(),
            rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ),
        polars::prelude::Column::new(
            "answer".into(),
            rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        ),
    ])
    .unwrap();
    let parquet = dir.join("qa.parquet");
    lethe_reports::write_parquet(&mut df, &parquet).unwrap();
    out.push(parquet);
    out
}

#[test]
fn damaged_qa_tables_are_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("tables");
    std::fs::create_dir_all(&base).unwrap();
    let tables = qa_tables(&base);
    let out = dir.path().join("out");
    for (k, table) in tables.iter().enumerate() {
        let name = table.file_name().unwrap().to_string_lossy().into_owned();
        // The undamaged table imports.
        let o = lethe()
            .args(["suite", "import", "qa", "--forget-percent", "25", "--from"])
            .arg(table)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
        std::fs::remove_dir_all(&out).unwrap();
        each_case(&base, &name, 37 + k as u64, &|d, case| {
            let o = lethe()
                .args(["suite", "import", "qa", "--forget-percent", "25", "--from"])
                .arg(d.join(&name))
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            survived(&o, case);
            let _ = std::fs::remove_dir_all(&out);
        });
    }
}

/// The Parquet files coverage-guided fuzzing found crashing polars' reader (panics in its
/// decoders, and a negative page count that aborted the process on allocation), through
/// `lethe suite import qa`: each is refused naming the file, exit 2, nothing printed as a panic and
/// nothing written.
#[test]
fn the_parquet_files_fuzzing_found_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let found = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/regressions/table");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&found)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} regression files", files.len());
    let table = dir.path().join("qa.parquet");
    let out = dir.path().join("out");
    let mut refused_before_decoding = 0;
    for file in &files {
        // A target's input is the format byte, then the file.
        let bytes = std::fs::read(file).unwrap();
        std::fs::write(&table, &bytes[1..]).unwrap();
        let o = lethe()
            .args(["suite", "import", "qa", "--forget-percent", "25", "--from"])
            .arg(&table)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let case = file.display().to_string();
        survived(&o, &case);
        assert_eq!(o.status.code(), Some(2), "{case}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        // Refused by the check or the guard, or (for those that crashed only under the
        // fuzzer's timing) by polars itself: always naming the file.
        assert!(stderr.contains("qa.parquet: "), "{case}: {stderr}");
        refused_before_decoding += usize::from(stderr.contains(" values (expected 0 to"));
        assert!(!out.exists(), "{case}: a suite was written");
    }
    // The aborts among them are caught by the header check, before polars reads.
    assert!(refused_before_decoding >= 3, "{refused_before_decoding}");
}

#[test]
fn damaged_tofu_files_are_refused_without_a_crash() {
    let tofu = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tofu");
    let out = tempfile::tempdir().unwrap();
    for (k, file) in ["forget01.json", "holdout01.json", "idontknow.jsonl"]
        .iter()
        .enumerate()
    {
        each_case(&tofu, file, 51 + k as u64, &|d, case| {
            let target = out.path().join("suite");
            let o = lethe()
                .args(["suite", "import", "tofu", "--forget-percent", "1", "--from"])
                .arg(d)
                .arg("--out")
                .arg(&target)
                .output()
                .unwrap();
            survived(&o, case);
            let _ = std::fs::remove_dir_all(&target);
        });
    }
}

#[test]
fn damaged_checkpoints_are_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("model");
    let texts = ["Where was Ana born? Ana was born in Lisbon."];
    let tok = Tokenizer::train(texts.iter().copied(), 120).unwrap();
    let cfg = Config::tiny(tok.vocab_size());
    let params = Params::init(&cfg, 3, &Device::Cpu).unwrap();
    LanguageModel::new(cfg, tok, params)
        .unwrap()
        .save(&base)
        .unwrap();
    let original_header = {
        let bytes = std::fs::read(base.join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        (bytes, n)
    };
    for (k, file) in ["config.json", "tokenizer.json"].iter().enumerate() {
        each_case(&base, file, 71 + k as u64, &|d, _case| {
            // An error is fine; a panic fails the test.
            let _ = lethe_pipeline::Checkpoint::open(d);
            let _ = LanguageModel::load(d, &Device::Cpu);
        });
    }
    // The weights: damage the safetensors header (its length and JSON), not only the data.
    let (bytes, header) = original_header;
    let mut rng = Rng(97);
    let scratch = tempfile::tempdir().unwrap();
    for i in 0..cases() {
        let d = scratch.path().join(format!("case-{i}"));
        copy_dir(&base, &d);
        let cut = (8 + header).min(bytes.len());
        let mut damaged = mutate(&bytes[..cut], &mut rng);
        damaged.extend_from_slice(&bytes[cut..]);
        std::fs::write(d.join("model.safetensors"), damaged).unwrap();
        let _ = LanguageModel::load(&d, &Device::Cpu);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
