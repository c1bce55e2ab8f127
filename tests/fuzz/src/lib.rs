//! Fuzz targets for every parser a user or submitter feeds Lethe: suite folders, the QA, TOFU
//! and MUSE importers, checkpoints (`config.json`, `tokenizer.json`, `model.safetensors`), and
//! with the `heavy` feature plan files, boards, submissions and CSV, TSV and Parquet tables.
//!
//! A target takes bytes and hands them to the real parser, as the file it reads, in a folder
//! where every other file is valid: an error is the right answer to a damaged input, a panic,
//! an abort or a hang is a bug. Targets that read a folder of several files take the first
//! byte of the input as the choice of the file it replaces, so one corpus reaches them all.
//!
//! `cargo afl build` compiles the `lethe-fuzz` binary with coverage instrumentation and runs
//! each target in AFL++'s persistent mode (see `tests/fuzz/run`); an ordinary build replays
//! the seeds and every file under `tests/fuzz/regressions/` through the same functions, so a
//! crash found once stays fixed.

use std::path::{Path, PathBuf};

use candle_core::Device;
use lethe_model::{Config, LanguageModel, Params, Tokenizer};
use lethe_suites::generate::{AuthorsConfig, NewsConfig, authors, news};
use lethe_suites::import::qa::{Assign, Columns, QaImport, Source, import, read_json};
use lethe_suites::import::{muse, tofu, write_muse_layout};
use lethe_suites::{Records, SplitRole, Suite};

/// Why a target could not be set up (never a verdict on an input).
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

fn setup(what: &str) -> impl Fn(String) -> SetupError + '_ {
    move |e| SetupError(format!("{what}: {e}"))
}

/// A folder of valid files, one of which an input replaces before the parser reads the folder.
pub struct Folder {
    dir: PathBuf,
    files: Vec<(String, Vec<u8>)>,
    replaced: Option<usize>,
    /// Whether this process has written the folder itself. AFL++ forks the process after
    /// setup; a child that crashed (or ended its run of inputs) left its damaged file behind,
    /// so each process rewrites every file before its first input.
    written: bool,
}

impl Folder {
    fn new(dir: PathBuf, files: Vec<(String, Vec<u8>)>) -> Result<Self, SetupError> {
        let err = setup("writing the target's folder");
        for (name, bytes) in &files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
            }
            std::fs::write(&path, bytes).map_err(|e| err(e.to_string()))?;
        }
        Ok(Self {
            dir,
            files,
            replaced: None,
            written: false,
        })
    }

    /// Put back the file the last input replaced, then write `input` (its first byte chooses
    /// the file) in its place. Returns false when the folder could not be written.
    fn put(&mut self, input: &[u8]) -> bool {
        let restore: Vec<usize> = match self.written {
            false => (0..self.files.len()).collect(),
            true => self.replaced.take().into_iter().collect(),
        };
        for i in restore {
            let (name, bytes) = &self.files[i];
            if std::fs::write(self.dir.join(name), bytes).is_err() {
                return false;
            }
        }
        self.written = true;
        let Some((&choice, content)) = input.split_first() else {
            return false;
        };
        let i = choice as usize % self.files.len();
        self.replaced = Some(i);
        std::fs::write(self.dir.join(&self.files[i].0), content).is_ok()
    }

    /// One seed per file: its index, then its valid content.
    fn seeds(&self) -> Vec<(String, Vec<u8>)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| {
                let mut seed = vec![i as u8];
                seed.extend_from_slice(bytes);
                (name.replace('/', "-"), seed)
            })
            .collect()
    }
}

/// The parser a target feeds, with whatever it keeps between inputs.
enum Kind {
    /// `Suite::load` of a generated suite's folder (`suite.json` or a split's records).
    Suite(Folder),
    /// `tofu` on a folder in TOFU's layout.
    Tofu(Folder),
    /// `muse` on a folder in MUSE's layout.
    Muse(Folder),
    /// `LanguageModel::load` of a tiny checkpoint.
    Checkpoint(Folder),
    /// `Config::from_hf_json` alone (no file: the parser takes text); the scratch folder in
    /// which its seed's checkpoint is made.
    Config(PathBuf),
    /// `read_json` of a QA file, then `import` of its rows.
    QaJson(PathBuf),
    /// `Plan::parse` (text).
    #[cfg(feature = "heavy")]
    Plan,
    /// `BoardSpec::read`, then `Submission::read` against it.
    #[cfg(feature = "heavy")]
    Board(Folder),
    /// `read_table` of a CSV, TSV or Parquet file in `dir` (the first byte picks the format).
    #[cfg(feature = "heavy")]
    Table(PathBuf),
}

/// A fuzz target: a parser and a scratch folder of its own.
pub struct Target {
    name: &'static str,
    kind: Kind,
    _scratch: tempfile::TempDir,
}

/// The targets' names, in the order `tests/fuzz/run` runs them.
pub fn names() -> Vec<&'static str> {
    let mut names = vec!["suite", "qa-json", "tofu", "muse", "config", "checkpoint"];
    if cfg!(feature = "heavy") {
        names.extend(["plan", "board", "table"]);
    }
    names
}

impl Target {
    /// Set up the target `name`: its scratch folder, the valid files around the input, seeds.
    pub fn new(name: &str) -> Result<Self, SetupError> {
        let scratch = tempfile::Builder::new()
            .prefix("lethe-fuzz-")
            .tempdir()
            .map_err(|e| SetupError(format!("a scratch folder: {e}")))?;
        let dir = scratch.path().to_owned();
        let (name, kind) = match name {
            "suite" => ("suite", Kind::Suite(Folder::new(dir, suite_files()?)?)),
            "qa-json" => ("qa-json", Kind::QaJson(dir.join("qa"))),
            "tofu" => ("tofu", Kind::Tofu(Folder::new(dir, tofu_files()?)?)),
            "muse" => {
                let files = muse_files(&dir.join("layout"))?;
                ("muse", Kind::Muse(Folder::new(dir, files)?))
            }
            "config" => ("config", Kind::Config(dir.join("model"))),
            "checkpoint" => {
                let files = checkpoint_files(&dir.join("model"))?;
                ("checkpoint", Kind::Checkpoint(Folder::new(dir, files)?))
            }
            #[cfg(feature = "heavy")]
            "plan" => ("plan", Kind::Plan),
            #[cfg(feature = "heavy")]
            "board" => (
                "board",
                Kind::Board(Folder::new(dir, heavy::board_files())?),
            ),
            #[cfg(feature = "heavy")]
            "table" => ("table", Kind::Table(dir)),
            other => {
                return Err(SetupError(format!(
                    "no target '{other}' (targets: {})",
                    names().join(", ")
                )));
            }
        };
        Ok(Self {
            name,
            kind,
            _scratch: scratch,
        })
    }

    /// The target's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Valid inputs to start from: (file name, bytes). Made on demand, not by `new`: the
    /// fuzzing process forks after setup, and a parser's thread pool started before the fork
    /// (polars', writing the Parquet seed) would not exist in the children that use it.
    pub fn seeds(&self) -> Result<Vec<(String, Vec<u8>)>, SetupError> {
        match &self.kind {
            Kind::Suite(folder)
            | Kind::Tofu(folder)
            | Kind::Muse(folder)
            | Kind::Checkpoint(folder) => Ok(folder.seeds()),
            #[cfg(feature = "heavy")]
            Kind::Board(folder) => Ok(folder.seeds()),
            Kind::QaJson(_) => qa_seeds(),
            Kind::Config(dir) => Ok(checkpoint_files(dir)?
                .into_iter()
                .filter(|(n, _)| n == "config.json")
                .collect()),
            #[cfg(feature = "heavy")]
            Kind::Plan => heavy::plan_seeds(),
            #[cfg(feature = "heavy")]
            Kind::Table(_) => heavy::table_seeds(),
        }
    }

    /// Feed one input to the parser; true when it accepted it. Whatever it answers is fine:
    /// only a panic, an abort or a hang is a finding.
    pub fn run(&mut self, input: &[u8]) -> bool {
        match &mut self.kind {
            Kind::Suite(folder) => {
                folder.put(input)
                    && Suite::load(&folder.dir).is_ok()
                    && Suite::check(&folder.dir).is_empty()
            }
            Kind::Tofu(folder) => folder.put(input) && tofu(&folder.dir, 1).is_ok(),
            Kind::Muse(folder) => folder.put(input) && muse(&folder.dir).is_ok(),
            Kind::Checkpoint(folder) => {
                folder.put(input) && LanguageModel::load(&folder.dir, &Device::Cpu).is_ok()
            }
            Kind::Config(_) => {
                std::str::from_utf8(input).is_ok_and(|text| Config::from_hf_json(text).is_ok())
            }
            Kind::QaJson(path) => qa_json(path, input),
            #[cfg(feature = "heavy")]
            Kind::Plan => heavy::plan(input),
            #[cfg(feature = "heavy")]
            Kind::Board(folder) => folder.put(input) && heavy::board(&folder.dir),
            #[cfg(feature = "heavy")]
            Kind::Table(dir) => heavy::table(dir, input),
        }
    }
}

/// The tiny generated authors suite, as `Suite::write` lays it out.
fn suite_files() -> Result<Vec<(String, Vec<u8>)>, SetupError> {
    let err = setup("the authors suite");
    let suite = authors(&AuthorsConfig::tiny()).map_err(|e| err(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
    suite.write(dir.path()).map_err(|e| err(e.to_string()))?;
    read_tree(dir.path())
}

/// Every file under `dir`, by its path relative to `dir`, sorted.
fn read_tree(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, SetupError> {
    let err = setup("reading a generated folder");
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| err(e.to_string()))? {
            let path = entry.map_err(|e| err(e.to_string()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|e| err(e.to_string()))?
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).map_err(|e| err(e.to_string()))?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The generated suite's forget and retain questions as QA rows: an array of objects and the
/// same rows one object a line, with every optional column the importer maps.
fn qa_seeds() -> Result<Vec<(String, Vec<u8>)>, SetupError> {
    let err = setup("the QA seeds");
    let suite = authors(&AuthorsConfig::tiny()).map_err(|e| err(e.to_string()))?;
    let mut rows = Vec::new();
    for split in &suite.splits {
        if let Records::Qa(records) = &split.records {
            for r in records.iter().take(6) {
                rows.push(serde_json::json!({
                    "id": r.id,
                    "split": split.name,
                    "question": r.question,
                    "answer": r.answer,
                    "author": r.groups.values().next(),
                    "para": r.paraphrased_answers,
                    "wrong": r.perturbed_answers,
                    "terms": r.terms,
                }));
            }
        }
    }
    let array = serde_json::to_vec_pretty(&rows).map_err(|e| err(e.to_string()))?;
    let lines: Vec<u8> = rows
        .iter()
        .flat_map(|r| format!("{r}\n").into_bytes())
        .collect();
    Ok(vec![
        ("array.json".into(), array),
        ("lines.jsonl".into(), lines),
    ])
}

fn qa_json(path: &Path, input: &[u8]) -> bool {
    if std::fs::write(path, input).is_err() {
        return false;
    }
    let Ok(table) = read_json(path, "qa.json") else {
        return false;
    };
    let spec = QaImport {
        name: "fuzzed".into(),
        description: "Fuzzed rows.".into(),
        columns: Columns {
            question: "question".into(),
            answer: "answer".into(),
            id: Some("id".into()),
            groups: vec![("author".into(), "author".into())],
            paraphrased_answers: vec!["para".into()],
            perturbed_answers: vec!["wrong".into()],
            terms: vec!["terms".into()],
            list_separator: Some("|".into()),
            ..Columns::default()
        },
        sources: vec![Source {
            table,
            assign: Assign::Column {
                column: "split".into(),
                roles: [("test".to_owned(), SplitRole::Eval)].into(),
            },
        }],
        pretrain: Vec::new(),
        idk: Vec::new(),
        text_column: "text".into(),
    };
    import(&spec).is_ok()
}

/// A folder in TOFU's layout (JSON Lines, TOFU's field names) made from the generated suite:
/// forget01 with its perturbed twin, the retain and holdout sets, both real-world sets.
fn tofu_files() -> Result<Vec<(String, Vec<u8>)>, SetupError> {
    let err = setup("the TOFU layout");
    let suite = authors(&AuthorsConfig::tiny()).map_err(|e| err(e.to_string()))?;
    let rows = |name: &str, evaluation: bool, n: usize| -> Vec<u8> {
        let Some(Records::Qa(records)) = suite.split(name).map(|s| &s.records) else {
            return Vec::new();
        };
        records
            .iter()
            .take(n)
            .flat_map(|r| {
                let row = match evaluation {
                    true => serde_json::json!({
                        "question": r.question,
                        "answer": r.answer,
                        "paraphrased_answer": r.paraphrased_answers.first(),
                        "perturbed_answer": r.perturbed_answers,
                        "paraphrased_question": r.paraphrased_questions.first(),
                    }),
                    false => serde_json::json!({"question": r.question, "answer": r.answer}),
                };
                format!("{row}\n").into_bytes()
            })
            .collect()
    };
    Ok(vec![
        ("forget01.json".into(), rows("forget", false, 8)),
        ("forget01_perturbed.json".into(), rows("forget", true, 8)),
        ("retain_perturbed.json".into(), rows("retain", true, 8)),
        ("holdout01.json".into(), rows("holdout", false, 4)),
        (
            "real_authors_perturbed.json".into(),
            rows("retain", true, 3),
        ),
        ("world_facts_perturbed.json".into(), rows("forget", true, 3)),
    ])
}

/// A folder in MUSE's layout, written by the MUSE writer from the tiny news suite.
fn muse_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, SetupError> {
    let err = setup("the MUSE layout");
    let suite = news(&NewsConfig::tiny()).map_err(|e| err(e.to_string()))?;
    write_muse_layout(&suite, dir).map_err(|e| err(e.to_string()))?;
    read_tree(dir)
}

/// A checkpoint of a tiny model: a tokenizer trained on a few sentences, a two-layer Llama
/// eight wide, its weights.
fn checkpoint_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, SetupError> {
    let err = setup("the tiny checkpoint");
    let texts = [
        "Question: Where was the author born?\nAnswer: In Kuwait City.",
        "Question: What does the author write?\nAnswer: Crime novels, mostly.",
    ];
    let tokenizer = Tokenizer::train(texts.iter().copied(), 300).map_err(|e| err(e.to_string()))?;
    let cfg = Config {
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
        ..Config::tiny(tokenizer.vocab_size())
    };
    let params = Params::init(&cfg, 0, &Device::Cpu).map_err(|e| err(e.to_string()))?;
    let model = LanguageModel::new(cfg, tokenizer, params).map_err(|e| err(e.to_string()))?;
    model.save(dir).map_err(|e| err(e.to_string()))?;
    read_tree(dir)
}

/// The targets that need lethe-experiment or lethe-reports.
#[cfg(feature = "heavy")]
mod heavy {
    use std::path::Path;

    use lethe_experiment::board::{BoardSpec, Submission};
    use lethe_experiment::{Plan, PlanRequest, PluginRef, Preset};
    use lethe_manifest::PluginKind;

    use super::{SetupError, setup};

    pub(super) fn plan(input: &[u8]) -> bool {
        std::str::from_utf8(input)
            .is_ok_and(|text| Plan::parse(Path::new("plan.jsonl"), text).is_ok())
    }

    /// A plan of the tiny preset: two seeds, GA and GradDiff, two metrics.
    pub(super) fn plan_seeds() -> Result<Vec<(String, Vec<u8>)>, SetupError> {
        let err = setup("the plan seed");
        let plugin = |name: &str, kind| PluginRef {
            name: name.into(),
            kind,
            sha256: "0".repeat(64),
            config: serde_json::json!({}),
            file: None,
        };
        let methods = vec![
            plugin("ga", PluginKind::Method),
            plugin("graddiff", PluginKind::Method),
        ];
        let metrics = vec![
            plugin("rouge", PluginKind::Metric),
            plugin("probability", PluginKind::Metric),
        ];
        let request =
            PlanRequest::of_preset(Preset::Tiny, "fuzz seed", methods, metrics, vec![0, 1])
                .map_err(|e| err(e.to_string()))?;
        let text = request
            .plan()
            .and_then(|p| p.to_jsonl())
            .map_err(|e| err(e.to_string()))?;
        Ok(vec![("plan.jsonl".into(), text.into_bytes())])
    }

    /// A board with one protocol and its selection rule, and a submission with a grid.
    pub(super) fn board_files() -> Vec<(String, Vec<u8>)> {
        const BOARD: &str = r#"title = "Fuzzed board"

[protocols.authors-tiny]
run = ["--preset", "tiny", "--seeds", "0..2", "--metrics", "probability,rouge"]
rank = { metric = "probability", output = "probability", split = "forget", higher_is_better = false }
utility = { metric = "rouge", output = "rougeL_recall", split = "retain", higher_is_better = true }

[protocols.authors-tiny.select]
seeds = [100]
by = { metric = "probability", output = "probability", split = "forget", higher_is_better = false }
utility = { metric = "rouge", output = "rougeL_recall", split = "retain", higher_is_better = true }
keep = 0.5
"#;
        const SUBMISSION: &str = r#"name = "graddiff"
authors = ["Ada Author"]
contact = "ada@example.org"
protocols = ["authors-tiny"]

[plugin]
builtin = "graddiff"

[config]
gamma = 1.0

[grid]
alpha = [0.5, 2.0]
"#;
        vec![
            ("board.toml".into(), BOARD.as_bytes().to_vec()),
            ("submission.toml".into(), SUBMISSION.as_bytes().to_vec()),
        ]
    }

    pub(super) fn board(dir: &Path) -> bool {
        BoardSpec::read(dir).is_ok_and(|board| Submission::read(dir, &board).is_ok())
    }

    /// The formats a table input is read as, by its first byte (modulo their number).
    const TABLE_FORMATS: [&str; 3] = ["csv", "tsv", "parquet"];

    pub(super) fn table(dir: &Path, input: &[u8]) -> bool {
        let Some((&format, bytes)) = input.split_first() else {
            return false;
        };
        let ext = TABLE_FORMATS[usize::from(format) % TABLE_FORMATS.len()];
        let path = dir.join(format!("qa.{ext}"));
        std::fs::write(&path, bytes).is_ok() && lethe_reports::read_table(&path).is_ok()
    }

    /// The same QA rows in each format, with the cells a quote, a separator, a line break, a
    /// byte-order mark and a leading zero make hard.
    pub(super) fn table_seeds() -> Result<Vec<(String, Vec<u8>)>, SetupError> {
        let err = setup("the table seeds");
        let rows: [[&str; 3]; 4] = [
            ["007", "Who wrote \"Dawn\"?", "Ada, in 1990."],
            ["008", "Where was she born?", "In Lyon\nFrance."],
            ["009", "What is her field?", "Tabs\tand spaces."],
            ["010", "", "An empty question."],
        ];
        let header = ["id", "question", "answer"];
        let quote = |cell: &str| format!("\"{}\"", cell.replace('"', "\"\""));
        let mut csv = String::from("\u{feff}");
        let mut tsv = String::new();
        csv.push_str(&header.join(","));
        tsv.push_str(&header.join("\t"));
        for row in &rows {
            let cells: Vec<String> = row.iter().map(|c| quote(c)).collect();
            csv.push_str(&format!("\n{}", cells.join(",")));
            tsv.push_str(&format!("\n{}", cells.join("\t")));
        }
        csv.push('\n');
        tsv.push('\n');
        let columns = (0..header.len())
            .map(|j| {
                let cells: Vec<&str> = rows.iter().map(|r| r[j]).collect();
                polars::prelude::Column::new(header[j].into(), cells)
            })
            .collect();
        let mut df = polars::prelude::DataFrame::new(columns).map_err(|e| err(e.to_string()))?;
        let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
        let path = dir.path().join("qa.parquet");
        lethe_reports::write_parquet(&mut df, &path).map_err(|e| err(e.to_string()))?;
        let parquet = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
        Ok([csv.into_bytes(), tsv.into_bytes(), parquet]
            .into_iter()
            .zip(TABLE_FORMATS)
            .enumerate()
            .map(|(i, (bytes, ext))| {
                let mut seed = vec![i as u8];
                seed.extend(bytes);
                (format!("qa.{ext}"), seed)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed is accepted as it is: the fuzzer starts from inputs that reach the parsers'
    /// success paths, not from ones refused at the first byte.
    #[test]
    fn every_seed_is_accepted() -> Result<(), SetupError> {
        for name in names() {
            let mut target = Target::new(name)?;
            let seeds = target.seeds()?;
            assert!(!seeds.is_empty(), "{name}: no seeds");
            for (file, seed) in seeds {
                assert!(target.run(&seed), "{name}: the seed {file} is refused");
            }
        }
        Ok(())
    }

    /// Every crash the fuzzer found, kept under `regressions/TARGET/`, runs without one now.
    #[test]
    fn regressions_run_without_a_crash() -> Result<(), Box<dyn std::error::Error>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        let mut replayed = 0;
        for name in names() {
            let dir = root.join(name);
            if !dir.is_dir() {
                continue;
            }
            let mut target = Target::new(name)?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.sort();
            for file in files {
                target.run(&std::fs::read(&file)?);
                replayed += 1;
            }
        }
        // The Parquet crashes of the table target are there (the test is not vacuous).
        assert!(
            replayed >= 39 || !cfg!(feature = "heavy"),
            "{replayed} regressions"
        );
        Ok(())
    }

    /// A damaged file in a folder target is put back before the next input replaces another:
    /// one input never leaks into the next.
    #[test]
    fn a_replaced_file_is_restored_before_the_next_input() -> Result<(), SetupError> {
        let mut target = Target::new("tofu")?;
        let seeds = target.seeds()?;
        assert!(
            !target.run(&[0, b'{']),
            "a damaged forget01.json is accepted"
        );
        assert!(target.run(&seeds[1].1), "the folder was left damaged");
        Ok(())
    }
}
