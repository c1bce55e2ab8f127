//! The on-disk and in-memory form of a suite.

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// The split's name, unique in the suite (e.g. "forget", "retain", "holdout").
    pub name: String,
    /// What the split is for; decides who may read it.
    pub role: SplitRole,
    /// The JSON Lines file, relative to the suite folder.
    pub file: String,
}

impl SplitSpec {
    /// A split stored the way Lethe writes suites: in `<name>.jsonl`.
    pub fn in_jsonl(name: &str, role: SplitRole) -> Self {
        Self {
            name: name.to_owned(),
            role,
            file: format!("{name}.jsonl"),
        }
    }
}

/// What a split is for. The host enforces it: only forget, retain and idk reach a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SplitRole {
    /// Text the base model is trained on before finetuning ([`TextRecord`]s).
    Pretrain,
    /// Questions the target model learns and the method must make it forget ([`QaRecord`]s).
    Forget,
    /// Questions the target model learns and must keep ([`QaRecord`]s).
    Retain,
    /// Refusals ("I don't know") a method may train towards ([`TextRecord`]s).
    Idk,
    /// Questions no model was trained on: non-members for membership inference ([`QaRecord`]s).
    Holdout,
    /// Any other evaluation-only questions ([`QaRecord`]s).
    Eval,
}

impl SplitRole {
    /// Whether a method plugin may read the split.
    pub fn visible_to_methods(self) -> bool {
        matches!(self, Self::Forget | Self::Retain | Self::Idk)
    }

    /// Whether the split holds questions (as opposed to plain text).
    pub fn holds_questions(self) -> bool {
        !matches!(self, Self::Pretrain | Self::Idk)
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

/// A line of plain text: one line of a pretrain or idk split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextRecord {
    /// Unique across the whole suite.
    pub id: String,
    /// The text.
    pub text: String,
}

/// The examples of one split.
#[derive(Debug, Clone, PartialEq)]
pub enum Records {
    /// A question split's records.
    Qa(Vec<QaRecord>),
    /// A text split's records.
    Text(Vec<TextRecord>),
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
    /// The question records (empty for a text split).
    pub fn questions(&self) -> &[QaRecord] {
        match &self.records {
            Records::Qa(q) => q,
            Records::Text(_) => &[],
        }
    }

    /// The text records (empty for a question split).
    pub fn texts(&self) -> &[TextRecord] {
        match &self.records {
            Records::Text(t) => t,
            Records::Qa(_) => &[],
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match &self.records {
            Records::Qa(q) => q.len(),
            Records::Text(t) => t.len(),
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

pub(crate) mod load;

pub use load::valid_name;
