//! Leaderboards built from submissions, as data: a board's definition (`board.toml`), a
//! submission (`submission.toml`), and the record a board keeps of each accepted entry.
//!
//! A board folder holds `board.toml`, one folder per accepted entry under `entries/` (its
//! `entry.json`, its component, and per protocol an output folder of the board's plan for it),
//! and what `lethe leaderboard build` writes: `leaderboard.md`, `leaderboard.csv` and a
//! self-contained `index.html`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ExperimentError;

/// The board's definition, in the board folder.
pub const BOARD_FILE: &str = "board.toml";
/// A submission's definition, in the submission folder.
pub const SUBMISSION_FILE: &str = "submission.toml";
/// The folder of accepted entries, in the board folder.
pub const ENTRIES_DIR: &str = "entries";
/// An entry's record, in its folder.
pub const ENTRY_FILE: &str = "entry.json";
/// An entry's component, in its folder.
pub const ENTRY_WASM: &str = "plugin.wasm";

/// The flags of `lethe run` a board sets itself for every entry: a protocol may not set them.
pub const BOARD_FLAGS: &[&str] = &[
    "--methods",
    "--plugin",
    "--config",
    "--out",
    "--grid",
    "--plugin-dir",
];

/// A board: what every entry is run on, and how entries are ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardSpec {
    /// The board's title.
    pub title: String,
    /// What an entry may enter, by name.
    pub protocols: BTreeMap<String, BoardProtocol>,
}

/// One protocol of a board: a plan run for every entry, and the columns it is judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardProtocol {
    /// The options of `lethe run` (preset or protocol, suite, seeds, metrics, attacks …) every
    /// entry's plan is made with; the board adds the entry's method, component and
    /// configuration.
    pub run: Vec<String>,
    /// The column entries are ranked by.
    pub rank: ColumnRef,
    /// The utility column of the forget-versus-utility plot (none: no plot).
    #[serde(default)]
    pub utility: Option<ColumnRef>,
    /// An output folder of `lethe meta-eval` on this protocol's suite, relative to the board
    /// folder: the page then says how far each metric column can be trusted.
    #[serde(default)]
    pub meta: Option<PathBuf>,
    /// How one configuration is chosen from a submission's grid (none: grids are refused).
    #[serde(default)]
    pub select: Option<Selection>,
}

/// The rule that picks one configuration of a submission's grid: the grid runs on validation
/// seeds only, the configurations whose utility keeps `keep` × the target's are eligible, and
/// the best of them by `by` is then run on the scored seeds. The scored runs never see the
/// grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The validation seeds, none of them a scored seed of the protocol.
    pub seeds: Vec<u64>,
    /// The column the best configuration is chosen by.
    pub by: ColumnRef,
    /// The utility column (its `higher_is_better` must be true).
    pub utility: ColumnRef,
    /// Share of the target's utility a configuration must keep, in (0, 1].
    pub keep: f64,
}

/// One configuration of a grid as the validation runs measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its row label in the validation results (`npo[beta=0.5]`).
    pub label: String,
    /// Its configuration.
    pub config: serde_json::Value,
    /// Its value of the selection column, mean over the validation seeds.
    pub by: Option<f64>,
    /// Its utility, mean over the validation seeds.
    pub utility: Option<f64>,
}

/// What a grid search found, kept in the entry's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionRecord {
    /// The rule.
    pub rule: Selection,
    /// The target's utility on the validation seeds.
    pub target_utility: f64,
    /// Every configuration, in grid order.
    pub candidates: Vec<Candidate>,
    /// The label of the one chosen.
    pub chosen: String,
}

impl Selection {
    /// The best eligible candidate's index: utility ≥ `keep` × `target_utility`, then the
    /// best by `by` (the first of equals, in grid order).
    pub fn pick(&self, candidates: &[Candidate], target_utility: f64) -> Result<usize, String> {
        let floor = self.keep * target_utility;
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let (Some(by), Some(u)) = (c.by, c.utility) else {
                continue;
            };
            if u < floor {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) if self.by.higher_is_better => by > b,
                Some((_, b)) => by < b,
            };
            if better {
                best = Some((i, by));
            }
        }
        best.map(|(i, _)| i).ok_or_else(|| {
            format!(
                "no configuration of the grid keeps {} × the target's {} {}:{} ({target_utility:.4})                  on the validation seeds",
                self.keep, self.utility.split, self.utility.metric, self.utility.output
            )
        })
    }
}

/// A leaderboard column: one metric output on one split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnRef {
    /// The metric plugin's name.
    pub metric: String,
    /// Its output.
    pub output: String,
    /// The split.
    pub split: String,
    /// Whether a higher value ranks an entry higher (for a forget-split knowledge metric,
    /// false: less knowledge left is better).
    pub higher_is_better: bool,
}

/// A submission: who sends what, configured how, to which protocols.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The entry's name on the board; also the method's row label, so it must be the
    /// plugin's name.
    pub name: String,
    /// Its authors.
    pub authors: Vec<String>,
    /// Whom to write to about it.
    pub contact: String,
    /// The method.
    pub plugin: SubmittedPlugin,
    /// Its configuration (the plugin's defaults where absent).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Values to search for some configuration keys (each a list of numbers, strings or
    /// booleans): the board picks one configuration by its protocol's `select` rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grid: BTreeMap<String, Vec<serde_json::Value>>,
    /// The board's protocols it enters.
    pub protocols: Vec<String>,
}

/// The method of a submission: a component with its digest, or a built-in by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmittedPlugin {
    /// The component, relative to the submission folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<PathBuf>,
    /// Its sha256, in hex: the board refuses a component that does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A built-in method, by name, instead of a component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
}

/// Where a submission's method comes from, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginSource {
    /// A component file and the digest it must have.
    Wasm {
        /// The file.
        path: PathBuf,
        /// The declared sha256.
        sha256: String,
    },
    /// A built-in method.
    Builtin(String),
}

/// What a board keeps of an accepted entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The submission as accepted.
    pub submission: Submission,
    /// `name@version` of the method.
    pub plugin: String,
    /// sha256 of its component.
    pub sha256: String,
    /// The interface version it was built against (its SDK).
    pub api_version: String,
    /// The Lethe version that ran and verified it.
    pub lethe: String,
    /// The checks it passed, as `check: detail` lines.
    pub conformance: Vec<String>,
    /// Per protocol, the job that was run twice and gave the same shard, and that shard's
    /// sha256.
    pub verified: BTreeMap<String, (String, String)>,
    /// Per protocol, the configuration its scored runs used.
    #[serde(default)]
    pub configs: BTreeMap<String, serde_json::Value>,
    /// Per protocol, the grid search that chose it (when the submission has a grid).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selections: BTreeMap<String, SelectionRecord>,
}

fn bad(path: &Path, message: impl std::fmt::Display) -> ExperimentError {
    ExperimentError::Selection(format!("{}: {message}", path.display()))
}

impl BoardSpec {
    /// Read and check `DIR/board.toml`.
    pub fn read(dir: &Path) -> Result<Self, ExperimentError> {
        let path = dir.join(BOARD_FILE);
        let text = fs_err::read_to_string(&path)
            .map_err(|e| bad(&path, format!("cannot read the board's definition: {e}")))?;
        let spec: Self = toml::from_str(&text).map_err(|e| bad(&path, e))?;
        if spec.protocols.is_empty() {
            return Err(bad(&path, "a board needs at least one [protocols.NAME]"));
        }
        for (name, p) in &spec.protocols {
            crate::board::check_key(name).map_err(|e| bad(&path, format!("protocol {e}")))?;
            if let Some(sel) = &p.select {
                if sel.seeds.is_empty() {
                    return Err(bad(
                        &path,
                        format!("protocol '{name}': select.seeds is empty"),
                    ));
                }
                if !(sel.keep > 0.0 && sel.keep <= 1.0) {
                    return Err(bad(
                        &path,
                        format!(
                            "protocol '{name}': select.keep {} is not in (0, 1]",
                            sel.keep
                        ),
                    ));
                }
                if !sel.utility.higher_is_better {
                    return Err(bad(
                        &path,
                        format!("protocol '{name}': select.utility must be higher-is-better"),
                    ));
                }
            }
            if let Some(flag) = p
                .run
                .iter()
                .find(|a| BOARD_FLAGS.iter().any(|f| a.split('=').next() == Some(*f)))
            {
                return Err(bad(
                    &path,
                    format!(
                        "protocol '{name}': run sets {flag}, which the board sets for each entry"
                    ),
                ));
            }
        }
        Ok(spec)
    }
}

/// A name used as a folder: lowercase letters, digits and '-', 1-64 of them, a letter first.
pub fn check_key(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' must be 1-64 lowercase letters, digits or '-', starting with a letter"
        ))
    }
}

impl Submission {
    /// Read and check `DIR/submission.toml` against `board`.
    pub fn read(dir: &Path, board: &BoardSpec) -> Result<(Self, PluginSource), ExperimentError> {
        let path = dir.join(SUBMISSION_FILE);
        let text = fs_err::read_to_string(&path)
            .map_err(|e| bad(&path, format!("cannot read the submission: {e}")))?;
        let sub: Self = toml::from_str(&text).map_err(|e| bad(&path, e))?;
        check_key(&sub.name).map_err(|e| bad(&path, format!("name {e}")))?;
        if sub.authors.is_empty() || sub.authors.iter().any(|a| a.trim().is_empty()) {
            return Err(bad(&path, "authors: name at least one, none empty"));
        }
        if sub.contact.trim().is_empty() {
            return Err(bad(&path, "contact is empty"));
        }
        if sub.protocols.is_empty() {
            return Err(bad(&path, "protocols: enter at least one"));
        }
        for p in &sub.protocols {
            if !board.protocols.contains_key(p) {
                return Err(bad(
                    &path,
                    format!(
                        "protocols: the board has no protocol '{p}' (it has: {})",
                        board
                            .protocols
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        for (key, values) in &sub.grid {
            let scalar = |v: &serde_json::Value| {
                v.is_number() || v.is_boolean() || v.as_str().is_some_and(|s| !s.contains(','))
            };
            if values.is_empty() || !values.iter().all(scalar) {
                return Err(bad(
                    &path,
                    format!("grid.{key}: give a list of numbers, booleans or strings without ','"),
                ));
            }
            if sub.config.contains_key(key) {
                return Err(bad(&path, format!("grid.{key}: also set in [config]")));
            }
        }
        if !sub.grid.is_empty() {
            for p in &sub.protocols {
                if board.protocols[p].select.is_none() {
                    return Err(bad(
                        &path,
                        format!(
                            "grid: protocol '{p}' states no selection rule (select), so it takes                              one configuration"
                        ),
                    ));
                }
            }
        }
        let source = match (&sub.plugin.wasm, &sub.plugin.sha256, &sub.plugin.builtin) {
            (Some(wasm), Some(sha), None) => {
                let sha = sha.to_ascii_lowercase();
                if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(&path, "plugin.sha256 is not 64 hex digits"));
                }
                if wasm.is_absolute() || wasm.components().any(|c| c.as_os_str() == "..") {
                    return Err(bad(
                        &path,
                        "plugin.wasm must be a path inside the submission folder",
                    ));
                }
                PluginSource::Wasm {
                    path: dir.join(wasm),
                    sha256: sha,
                }
            }
            (Some(_), None, None) => {
                return Err(bad(&path, "plugin.wasm needs plugin.sha256 beside it"));
            }
            (None, None, Some(name)) => PluginSource::Builtin(name.clone()),
            _ => {
                return Err(bad(
                    &path,
                    "plugin: give either wasm and sha256, or builtin, not both",
                ));
            }
        };
        Ok((sub, source))
    }

    /// The submission as `submission.toml` text.
    pub fn to_toml(&self) -> Result<String, ExperimentError> {
        toml::to_string(self)
            .map_err(|e| ExperimentError::Selection(format!("submission '{}': {e}", self.name)))
    }

    /// The JSON Schema of `submission.toml` (TOML read as JSON).
    pub fn schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Submission)).unwrap_or_default()
    }
}

/// The folder of entry `name` in board `dir`.
pub fn entry_dir(board: &Path, name: &str) -> PathBuf {
    board.join(ENTRIES_DIR).join(name)
}

/// The accepted entries of board `dir`, by name (folders without a record are left out: an
/// entry is accepted only once its record is written).
pub fn entries(board: &Path) -> Result<Vec<(PathBuf, EntryRecord)>, ExperimentError> {
    let dir = board.join(ENTRIES_DIR);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut names: Vec<PathBuf> = fs_err::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(ENTRY_FILE).is_file())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let file = path.join(ENTRY_FILE);
        let text = fs_err::read_to_string(&file)?;
        let record: EntryRecord = serde_json::from_str(&text)
            .map_err(|e| bad(&file, format!("not an entry record: {e}")))?;
        out.push((path, record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BOARD: &str = r#"
title = "Tiny authors"
[protocols.authors-tiny]
run = ["--preset", "tiny", "--seeds", "0..2"]
rank = { metric = "probability", output = "probability", split = "forget", higher_is_better = false }
"#;

    fn board_in(dir: &Path, text: &str) -> Result<BoardSpec, ExperimentError> {
        std::fs::write(dir.join(BOARD_FILE), text).unwrap();
        BoardSpec::read(dir)
    }

    fn submission_in(dir: &Path, text: &str, board: &BoardSpec) -> Result<PluginSource, String> {
        std::fs::write(dir.join(SUBMISSION_FILE), text).unwrap();
        Submission::read(dir, board)
            .map(|(_, s)| s)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_board_that_sets_what_the_board_owns_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let board = board_in(dir.path(), BOARD).unwrap();
        assert_eq!(board.protocols.len(), 1);
        let e = board_in(
            dir.path(),
            &BOARD.replace("\"0..2\"]", "\"0..2\", \"--methods=npo\"]"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--methods=npo") && e.contains("authors-tiny"),
            "{e}"
        );
        let e = board_in(dir.path(), "title = 1").unwrap_err().to_string();
        assert!(e.contains("board.toml"), "{e}");
    }

    #[test]
    fn submissions_name_their_component_with_its_digest_or_a_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let board = board_in(dir.path(), BOARD).unwrap();
        let head = "name = \"npo\"\nauthors = [\"A\"]\ncontact = \"a@b\"\nprotocols = [\"authors-tiny\"]\n";
        assert_eq!(
            submission_in(
                dir.path(),
                &format!("{head}[plugin]\nbuiltin = \"npo\"\n"),
                &board
            ),
            Ok(PluginSource::Builtin("npo".into()))
        );
        let sha = "ab".repeat(32);
        let ok = submission_in(
            dir.path(),
            &format!("{head}[plugin]\nwasm = \"m.wasm\"\nsha256 = \"{sha}\"\n"),
            &board,
        )
        .unwrap();
        assert_eq!(
            ok,
            PluginSource::Wasm {
                path: dir.path().join("m.wasm"),
                sha256: sha.clone()
            }
        );
        for (body, says) in [
            ("[plugin]\nwasm = \"m.wasm\"\n", "needs plugin.sha256"),
            (
                "[plugin]\nwasm = \"../m.wasm\"\nsha256 = \"SHA\"\n",
                "inside the submission",
            ),
            (
                "[plugin]\nwasm = \"m.wasm\"\nsha256 = \"12\"\n",
                "64 hex digits",
            ),
            (
                "[plugin]\nbuiltin = \"npo\"\nwasm = \"m.wasm\"\n",
                "not both",
            ),
            ("[plugin]\nbuiltin = \"npo\"\nextra = 1\n", "unknown field"),
        ] {
            let body = body.replace("SHA", &sha);
            let e = submission_in(dir.path(), &format!("{head}{body}"), &board).unwrap_err();
            assert!(
                e.contains(says) && e.contains("submission.toml"),
                "{says}: {e}"
            );
        }
        let e = submission_in(
            dir.path(),
            &format!(
                "{}[plugin]\nbuiltin = \"npo\"\n",
                head.replace("authors-tiny", "tofu")
            ),
            &board,
        )
        .unwrap_err();
        assert!(
            e.contains("no protocol 'tofu'") && e.contains("authors-tiny"),
            "{e}"
        );
        let grid = format!("{head}[plugin]\nbuiltin = \"npo\"\n[grid]\nbeta = [0.1, 0.5]\n");
        let e = submission_in(dir.path(), &grid, &board).unwrap_err();
        assert!(e.contains("states no selection rule"), "{e}");
    }

    fn candidate(label: &str, by: f64, utility: f64) -> Candidate {
        Candidate {
            label: label.into(),
            config: serde_json::json!({}),
            by: Some(by),
            utility: Some(utility),
        }
    }

    #[test]
    fn a_grid_picks_the_best_configuration_that_keeps_the_utility() {
        let rule = Selection {
            seeds: vec![100],
            by: ColumnRef {
                metric: "probability".into(),
                output: "probability".into(),
                split: "forget".into(),
                higher_is_better: false,
            },
            utility: ColumnRef {
                metric: "rouge".into(),
                output: "rougeL_recall".into(),
                split: "retain".into(),
                higher_is_better: true,
            },
            keep: 0.9,
        };
        // c forgets most but keeps 0.5 of the utility; b is the best of those that keep 0.9.
        let grid = [
            candidate("a", 0.30, 0.95),
            candidate("b", 0.20, 0.90),
            candidate("c", 0.05, 0.50),
            candidate("d", 0.20, 0.99),
        ];
        assert_eq!(rule.pick(&grid, 1.0), Ok(1));
        let mut higher = rule.clone();
        higher.by.higher_is_better = true;
        assert_eq!(higher.pick(&grid, 1.0), Ok(0));
        let e = rule.pick(&grid, 2.0).unwrap_err();
        assert!(
            e.contains("keeps 0.9") && e.contains("retain rouge:rougeL_recall"),
            "{e}"
        );
    }

    /// Seeded damage (bytes flipped, cut, inserted, TOML punctuation swapped in) to a valid
    /// text, `LETHE_FUZZ_CASES` times (a short budget by default).
    fn damaged(text: &str, seed: u64) -> Vec<Vec<u8>> {
        const PUNCT: &[u8] = b"[]{}=\",.'#\n\\ 0-9e\x00\xff";
        let cases = std::env::var("LETHE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let mut x = seed | 1;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n.max(1) as u64) as usize
        };
        (0..cases)
            .map(|_| {
                let mut out = text.as_bytes().to_vec();
                for _ in 0..1 + next(4) {
                    let at = next(out.len());
                    match next(4) {
                        0 if !out.is_empty() => out[at] ^= 1 << next(8),
                        1 if !out.is_empty() => out[at] = PUNCT[next(PUNCT.len())],
                        2 => out.truncate(at),
                        _ => out
                            .splice(at..at, [PUNCT[next(PUNCT.len())]; 2])
                            .for_each(drop),
                    }
                }
                out
            })
            .collect()
    }

    #[test]
    fn damaged_board_and_submission_files_are_refused_by_name_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let board = board_in(dir.path(), BOARD).unwrap();
        let submission = "name = \"npo\"\nauthors = [\"A\"]\ncontact = \"a@b\"\n\
                          protocols = [\"authors-tiny\"]\n[plugin]\nbuiltin = \"npo\"\n\
                          [config]\nbeta = 0.5\n";
        let (mut refused, mut read) = (0, 0);
        for bytes in damaged(submission, 7) {
            std::fs::write(dir.path().join(SUBMISSION_FILE), &bytes).unwrap();
            match Submission::read(dir.path(), &board) {
                Ok(_) => read += 1,
                Err(e) => {
                    assert!(e.to_string().contains(SUBMISSION_FILE), "{e}");
                    refused += 1;
                }
            }
        }
        for bytes in damaged(BOARD, 11) {
            std::fs::write(dir.path().join(BOARD_FILE), &bytes).unwrap();
            match BoardSpec::read(dir.path()) {
                Ok(_) => read += 1,
                Err(e) => {
                    assert!(e.to_string().contains(BOARD_FILE), "{e}");
                    refused += 1;
                }
            }
        }
        // The damage is real: most cases are refused.
        assert!(refused > read, "{refused} refused, {read} read");
    }

    #[test]
    fn the_submission_schema_names_every_field() {
        let schema = Submission::schema().to_string();
        for field in [
            "authors",
            "contact",
            "sha256",
            "builtin",
            "protocols",
            "config",
        ] {
            assert!(schema.contains(field), "{field}");
        }
    }
}
