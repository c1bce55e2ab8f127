//! The on-disk and in-memory form of a suite.
//!
//! A split holds one kind of record ([`RecordKind`]): questions ([`QaRecord`]), plain texts
//! ([`TextRecord`]) or prompt–continuation pairs ([`ContinuationRecord`]). Its role implies a
//! kind ([`SplitRole::default_records`]); the manifest may name another where the role allows it
//! ([`SplitRole::allows`]), e.g. a forget split of documents, as MUSE finetunes on texts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The manifest of a suite, `suite.json` at the root of its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteManifest {
    /// A short identifier: lowercase letters, digits and '-'.
    pub name: String,
    /// The suite's own version; results record it.
    pub version: String,
    /// One paragraph: what the suite measures and where its data comes from.
    #[serde(default)]
    pub description: String,
    /// The splits, each in its own JSON Lines file.
    pub splits: Vec<SplitSpec>,
}

/// One split of a suite.
///
/// Serialised by hand: `records` is left out when it is the role's default, so that a manifest
/// written before the field existed, and its digest, stay as they were. For the same reason two
/// specs are equal when their effective kinds ([`SplitSpec::record_kind`]) are.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// The split's name, unique in the suite (e.g. "forget", "retain", "holdout").
    pub name: String,
    /// What the split is for; decides who may read it.
    pub role: SplitRole,
    /// The JSON Lines file, relative to the suite folder.
    pub file: String,
    /// The kind of records in the file; absent: the role's ([`SplitRole::default_records`]).
    #[serde(default)]
    pub records: Option<RecordKind>,
}

impl SplitSpec {
    /// A split stored the way Lethe writes suites: in `<name>.jsonl`, holding the role's default
    /// kind of records.
    pub fn in_jsonl(name: &str, role: SplitRole) -> Self {
        Self {
            name: name.to_owned(),
            role,
            file: format!("{name}.jsonl"),
            records: None,
        }
    }

    /// A split stored in `<name>.jsonl` holding `records` (which may differ from the role's
    /// default; whether the role allows it is checked on load and write).
    pub fn in_jsonl_holding(name: &str, role: SplitRole, records: RecordKind) -> Self {
        Self::in_jsonl(name, role).holding(records)
    }

    /// The spec of an in-memory split, stored in `<name>.jsonl`: its name, role and kind.
    pub fn for_split(split: &Split) -> Self {
        Self::in_jsonl_holding(&split.name, split.role, split.records.kind())
    }

    /// The same spec holding `records`; the role's default is stored as absent.
    pub fn holding(mut self, records: RecordKind) -> Self {
        self.records = (records != self.role.default_records()).then_some(records);
        self
    }

    /// The kind of records the split holds: the manifest's, else the role's default.
    pub fn record_kind(&self) -> RecordKind {
        self.records.unwrap_or(self.role.default_records())
    }

    /// `records` as it is written: only when it is not the role's default.
    fn written_records(&self) -> Option<RecordKind> {
        self.records.filter(|k| *k != self.role.default_records())
    }
}

impl PartialEq for SplitSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.role == other.role
            && self.file == other.file
            && self.record_kind() == other.record_kind()
    }
}

impl Serialize for SplitSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let records = self.written_records();
        let mut s = serializer.serialize_struct("SplitSpec", 3 + usize::from(records.is_some()))?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("role", &self.role)?;
        s.serialize_field("file", &self.file)?;
        if let Some(records) = records {
            s.serialize_field("records", &records)?;
        }
        s.end()
    }
}

/// The kind of records a split file holds, one a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// [`QaRecord`]s.
    Questions,
    /// [`TextRecord`]s.
    Texts,
    /// [`ContinuationRecord`]s.
    Continuations,
}

impl RecordKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [RecordKind; 3] = [Self::Questions, Self::Texts, Self::Continuations];

    /// The kind's name in a manifest (`questions`, `texts`, `continuations`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Questions => "questions",
            Self::Texts => "texts",
            Self::Continuations => "continuations",
        }
    }

    /// One record of the kind, for messages ("question", "text", "continuation").
    fn singular(self) -> &'static str {
        match self {
            Self::Questions => "question",
            Self::Texts => "text",
            Self::Continuations => "continuation",
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a split is for. The host enforces it: only forget, retain and idk reach a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SplitRole {
    /// Text the base model is trained on before finetuning ([`TextRecord`]s).
    Pretrain,
    /// Questions (or documents) the target model learns and the method must make it forget
    /// ([`QaRecord`]s, or [`TextRecord`]s).
    Forget,
    /// Questions (or documents) the target model learns and must keep ([`QaRecord`]s, or
    /// [`TextRecord`]s).
    Retain,
    /// Refusals ("I don't know") a method may train towards ([`TextRecord`]s).
    Idk,
    /// Questions no model was trained on: non-members for membership inference ([`QaRecord`]s).
    Holdout,
    /// Any other evaluation-only questions ([`QaRecord`]s), or texts or continuations.
    Eval,
}

impl SplitRole {
    /// Whether a method plugin may read the split.
    pub fn visible_to_methods(self) -> bool {
        matches!(self, Self::Forget | Self::Retain | Self::Idk)
    }

    /// Whether a split of this role holds questions unless its manifest names another kind
    /// ([`SplitSpec::record_kind`] says what a given split holds).
    pub fn holds_questions(self) -> bool {
        self.default_records() == RecordKind::Questions
    }

    /// The kind of records a split of this role holds unless its manifest names another.
    pub fn default_records(self) -> RecordKind {
        match self {
            Self::Pretrain | Self::Idk => RecordKind::Texts,
            Self::Forget | Self::Retain | Self::Holdout | Self::Eval => RecordKind::Questions,
        }
    }

    /// Whether a split of this role may hold `kind`: pretraining text and refusals are texts;
    /// forget, retain and holdout are questions or documents (training, and membership inference,
    /// need the same kind on both sides); only evaluation splits hold continuations, which no
    /// stage trains on.
    pub fn allows(self, kind: RecordKind) -> bool {
        match self {
            Self::Pretrain | Self::Idk => kind == RecordKind::Texts,
            Self::Forget | Self::Retain | Self::Holdout => {
                matches!(kind, RecordKind::Questions | RecordKind::Texts)
            }
            Self::Eval => true,
        }
    }

    /// Whether the finetuned (target) model is trained on the split.
    pub fn finetuned_on(self) -> bool {
        matches!(self, Self::Forget | Self::Retain)
    }

    /// Whether metrics are computed on the split.
    pub fn evaluated(self) -> bool {
        matches!(
            self,
            Self::Forget | Self::Retain | Self::Holdout | Self::Eval
        )
    }
}

/// A question with its answer and the variants metrics use: one line of a question split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QaRecord {
    /// Unique across the whole suite.
    pub id: String,
    /// The question, without any prompt template.
    pub question: String,
    /// The reference answer.
    pub answer: String,
    /// Group keys for slicing reports, e.g. {"author": "…", "kind": "birthplace"}.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, String>,
    /// The same answer in other words (truth ratio).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paraphrased_answers: Vec<String>,
    /// Wrong answers in the answer's style (truth ratio).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perturbed_answers: Vec<String>,
    /// The same question in other words (paraphrase attack).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paraphrased_questions: Vec<String>,
    /// Terms whose appearance in an answer counts as leakage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// Options of a closed question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Index of the correct option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_option: Option<u32>,
}

/// A line of plain text: one line of a pretrain or idk split, or a document of a text split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextRecord {
    /// Unique across the whole suite.
    pub id: String,
    /// The text.
    pub text: String,
}

/// A prompt and the text that truly follows it: one line of a continuation split (verbatim
/// memorization compares a model's continuation of the prompt with this one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContinuationRecord {
    /// Unique across the whole suite.
    pub id: String,
    /// The beginning of a document, given to the model as it is.
    pub prompt: String,
    /// The document's true continuation of the prompt.
    pub continuation: String,
}

/// The examples of one split.
#[derive(Debug, Clone, PartialEq)]
pub enum Records {
    /// A question split's records.
    Qa(Vec<QaRecord>),
    /// A text split's records.
    Text(Vec<TextRecord>),
    /// A continuation split's records.
    Continuation(Vec<ContinuationRecord>),
}

impl Records {
    /// The kind of the records.
    pub fn kind(&self) -> RecordKind {
        match self {
            Records::Qa(_) => RecordKind::Questions,
            Records::Text(_) => RecordKind::Texts,
            Records::Continuation(_) => RecordKind::Continuations,
        }
    }
}

/// One loaded split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The split's name.
    pub name: String,
    /// Its role.
    pub role: SplitRole,
    /// Its records.
    pub records: Records,
}

impl Split {
    /// The question records (empty for a split of another kind).
    pub fn questions(&self) -> &[QaRecord] {
        match &self.records {
            Records::Qa(q) => q,
            Records::Text(_) | Records::Continuation(_) => &[],
        }
    }

    /// The text records (empty for a split of another kind).
    pub fn texts(&self) -> &[TextRecord] {
        match &self.records {
            Records::Text(t) => t,
            Records::Qa(_) | Records::Continuation(_) => &[],
        }
    }

    /// The continuation records (empty for a split of another kind).
    pub fn continuations(&self) -> &[ContinuationRecord] {
        match &self.records {
            Records::Continuation(c) => c,
            Records::Qa(_) | Records::Text(_) => &[],
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match &self.records {
            Records::Qa(q) => q.len(),
            Records::Text(t) => t.len(),
            Records::Continuation(c) => c.len(),
        }
    }

    /// Whether the split has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A loaded (or generated) suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// The manifest.
    pub manifest: SuiteManifest,
    /// The splits, in manifest order.
    pub splits: Vec<Split>,
}

/// One problem found in a suite: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, relative to the suite folder.
    pub file: String,
    /// The 1-based line, when the problem is on one line.
    pub line: Option<usize>,
    /// The field, when the problem is in one field.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a suite could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The suite has problems; nothing was loaded.
    #[error("suite {} has {} problem(s):\n{}", .dir.display(), .problems.len(), list(.problems))]
    Invalid {
        /// The suite folder.
        dir: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A generator was asked for something it cannot make.
    #[error("cannot generate suite: {0}")]
    Generate(String),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Suite {
    /// The split with this name.
    pub fn split(&self, name: &str) -> Option<&Split> {
        self.splits.iter().find(|s| s.name == name)
    }

    /// The splits with this role.
    pub fn splits_with(&self, role: SplitRole) -> impl Iterator<Item = &Split> {
        self.splits.iter().filter(move |s| s.role == role)
    }

    /// Read and check a suite folder. On any problem nothing is returned but the full list.
    pub fn load(dir: &Path) -> Result<Suite, SuiteError> {
        crate::format::load::load(dir)
    }

    /// Check a suite folder and list every problem (empty when it is sound).
    pub fn check(dir: &Path) -> Vec<Problem> {
        match crate::format::load::load(dir) {
            Ok(_) => Vec::new(),
            Err(SuiteError::Invalid { problems, .. }) => problems,
            Err(e) => vec![Problem {
                file: dir.display().to_string(),
                line: None,
                field: None,
                message: e.to_string(),
            }],
        }
    }

    /// Check the suite in memory by the rules of [`Suite::load`] (files named as the manifest names
    /// them, lines numbered as [`Suite::write`] writes them), and that its splits match the
    /// manifest's, in order. Empty when it is sound.
    pub fn problems(&self) -> Vec<Problem> {
        crate::format::load::problems(self)
    }

    /// Write the suite as a folder (manifest + one JSON Lines file per split). Nothing is written
    /// if [`Suite::problems`] finds any; a failure part way leaves no file half-written.
    pub fn write(&self, dir: &Path) -> Result<(), SuiteError> {
        crate::format::load::write(self, dir)
    }

    /// A stable digest of the suite's content, for content-addressed caches.
    pub fn digest(&self) -> String {
        crate::format::load::digest(self)
    }
}

/// The JSON Schemas of `suite.json` and of each kind of split line, keyed as `lethe suite
/// schema` prints them.
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "suite.json": schemars::schema_for!(SuiteManifest),
        "question line": schemars::schema_for!(QaRecord),
        "text line": schemars::schema_for!(TextRecord),
        "continuation line": schemars::schema_for!(ContinuationRecord),
    })
}

pub(crate) mod load;

pub use load::valid_name;
