//! Reading, checking, writing and digesting suite folders.
//!
//! One set of rules serves three callers: [`load`] applies them to a folder, [`problems`] to a
//! suite in memory (lines numbered as [`write`] would write them), and [`write`] refuses a suite
//! that [`load`] would refuse, so whatever is written can be read back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{
    ContinuationRecord, Problem, QaRecord, RecordKind, Records, Split, SplitRole, Suite,
    SuiteError, SuiteManifest, TextRecord,
};

/// The manifest's file name, at the root of the suite folder.
const MANIFEST: &str = "suite.json";

/// Bumped whenever the digest's serialisation changes, so old and new digests never collide.
const DIGEST_DOMAIN: &[u8] = b"lethe-suite-digest-v1\0";

/// A problem at a place.
pub(crate) fn problem(
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
pub(crate) fn clean(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The longest suite or split name.
pub(crate) const MAX_NAME: usize = 64;

/// Whether a suite or split name is 1 to 64 lowercase letters, digits and '-' (it names a
/// file, and results name the suite by it).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether a split's file stays inside the suite folder: relative, without `..`, not empty.
fn inside(file: &str) -> bool {
    let path = Path::new(file);
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}

/// A split file's path with `.` components dropped, to notice two splits sharing one file.
fn normalised(file: &str) -> PathBuf {
    Path::new(file)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The record types of a split file, with the checks that go beyond their serde shape.
trait Record: Serialize + DeserializeOwned + JsonSchema {
    fn id(&self) -> &str;
    /// The fields that must not be empty, with their values.
    fn required_texts(&self) -> Vec<(&'static str, &str)>;
    /// A minimal valid record: the base on which one field at a time is type-checked.
    fn sample() -> Self;
    /// Checks beyond emptiness.
    fn check_more(&self, _file: &str, _line: usize, _problems: &mut Vec<Problem>) {}
}

impl Record for QaRecord {
    fn id(&self) -> &str {
        &self.id
    }

    fn required_texts(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("id", &self.id),
            ("question", &self.question),
            ("answer", &self.answer),
        ]
    }

    fn sample() -> Self {
        QaRecord {
            id: "x".into(),
            question: "x".into(),
            answer: "x".into(),
            groups: BTreeMap::new(),
            paraphrased_answers: Vec::new(),
            perturbed_answers: Vec::new(),
            paraphrased_questions: Vec::new(),
            terms: Vec::new(),
            options: Vec::new(),
            correct_option: None,
        }
    }

    fn check_more(&self, file: &str, line: usize, problems: &mut Vec<Problem>) {
        if let Some(c) = self.correct_option
            && c as usize >= self.options.len()
        {
            problems.push(problem(
                file,
                Some(line),
                Some("correct_option"),
                format!(
                    "{c} is out of range: there are {} options (counted from 0)",
                    self.options.len()
                ),
            ));
        }
    }
}

impl Record for TextRecord {
    fn id(&self) -> &str {
        &self.id
    }

    fn required_texts(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id), ("text", &self.text)]
    }

    fn sample() -> Self {
        TextRecord {
            id: "x".into(),
            text: "x".into(),
        }
    }
}

impl Record for ContinuationRecord {
    fn id(&self) -> &str {
        &self.id
    }

    fn required_texts(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("id", &self.id),
            ("prompt", &self.prompt),
            ("continuation", &self.continuation),
        ]
    }

    fn sample() -> Self {
        ContinuationRecord {
            id: "x".into(),
            prompt: "x".into(),
            continuation: "x".into(),
        }
    }
}

/// The fields a record type knows and requires (from its JSON Schema), and a valid base object.
struct Shape {
    known: Vec<String>,
    required: Vec<String>,
    base: Map<String, Value>,
}

impl Shape {
    fn of<T: Record>() -> Shape {
        let schema = schemars::schema_for!(T);
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::Object(m)) => m.keys().cloned().collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let base = match serde_json::to_value(T::sample()) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut known = strings(schema.get("properties"));
        known.sort();
        Shape {
            known,
            required: strings(schema.get("required")),
            base,
        }
    }
}

/// What a JSON value is, for messages ("an array", "a number", …).
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Explain why a line did not parse as a `T`: every unknown, mistyped and missing field.
fn explain<T: Record>(
    shape: &Shape,
    file: &str,
    line: usize,
    text: &str,
    error: &serde_json::Error,
    problems: &mut Vec<Problem>,
) {
    let at = |field: Option<&str>, message: String| problem(file, Some(line), field, message);
    let object = match serde_json::from_str::<Value>(text) {
        Err(e) => {
            problems.push(at(
                None,
                format!("malformed JSON: {}", clean(&e.to_string())),
            ));
            return;
        }
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            let kind = kind_of(&other);
            problems.push(at(None, format!("expected a JSON object, found {kind}")));
            return;
        }
    };
    let before = problems.len();
    // Sorted, so the report does not depend on serde_json's `preserve_order` feature.
    let keys: BTreeSet<&String> = object.keys().collect();
    for key in &keys {
        if !shape.known.contains(key) {
            problems.push(at(
                Some(key),
                format!(
                    "unknown field (expected one of: {})",
                    shape.known.join(", ")
                ),
            ));
        }
    }
    for key in &keys {
        if !shape.known.contains(key) {
            continue;
        }
        let mut one = shape.base.clone();
        if let Some(value) = object.get(*key) {
            one.insert((*key).clone(), value.clone());
        }
        if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
            problems.push(at(Some(key), clean(&e.to_string())));
        }
    }
    for field in &shape.required {
        if !object.contains_key(field) {
            problems.push(at(Some(field), "missing field (required)".to_owned()));
        }
    }
    if problems.len() == before {
        // Something the field-by-field pass cannot see, such as a duplicate key.
        let message = error.to_string();
        problems.push(at(field_of(&message).as_deref(), clean(&message)));
    }
}

/// The ids seen so far, with where each first appeared.
#[derive(Default)]
struct Ids(BTreeMap<String, String>);

impl Ids {
    fn note(&mut self, id: &str, file: &str, line: usize, problems: &mut Vec<Problem>) {
        if id.trim().is_empty() {
            return; // Reported as an empty field.
        }
        if let Some(first) = self.0.get(id) {
            problems.push(problem(
                file,
                Some(line),
                Some("id"),
                format!("duplicate id '{id}' (first at {first})"),
            ));
        } else {
            self.0.insert(id.to_owned(), format!("{file}:{line}"));
        }
    }
}

fn check_record<T: Record>(
    record: &T,
    file: &str,
    line: usize,
    ids: &mut Ids,
    problems: &mut Vec<Problem>,
) {
    ids.note(record.id(), file, line, problems);
    for (field, value) in record.required_texts() {
        if value.trim().is_empty() {
            problems.push(problem(file, Some(line), Some(field), "is empty"));
        }
    }
    record.check_more(file, line, problems);
}

/// Parse and check every line of a split file; blank lines are skipped.
fn parse_lines<T: Record>(
    file: &str,
    text: &str,
    ids: &mut Ids,
    problems: &mut Vec<Problem>,
) -> Vec<T> {
    let shape = Shape::of::<T>();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(record) => {
                check_record(&record, file, i + 1, ids, problems);
                out.push(record);
            }
            Err(e) => explain::<T>(&shape, file, i + 1, line, &e, problems),
        }
    }
    out
}

fn check_records<T: Record>(file: &str, records: &[T], ids: &mut Ids, problems: &mut Vec<Problem>) {
    for (i, record) in records.iter().enumerate() {
        check_record(record, file, i + 1, ids, problems);
    }
}

/// Check the manifest alone. Returns, per split, whether its file may be opened.
fn check_manifest(manifest: &SuiteManifest, problems: &mut Vec<Problem>) -> Vec<bool> {
    let at = |field: &str, message: String| problem(MANIFEST, None, Some(field), message);
    if !valid_name(&manifest.name) {
        problems.push(at(
            "name",
            format!(
                "'{}' must be 1 to 64 lowercase letters, digits and '-'",
                manifest.name
            ),
        ));
    }
    if manifest.version.trim().is_empty() {
        problems.push(at("version", "is empty".to_owned()));
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut files: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut openable = Vec::new();
    for (i, spec) in manifest.splits.iter().enumerate() {
        if spec.name.trim().is_empty() {
            problems.push(at(&format!("splits[{i}].name"), "is empty".to_owned()));
        } else if let Some(first) = names.get(spec.name.as_str()) {
            problems.push(at(
                &format!("splits[{i}].name"),
                format!(
                    "split name '{}' appears twice (first at splits[{first}])",
                    spec.name
                ),
            ));
        } else {
            names.insert(&spec.name, i);
        }
        let field = format!("splits[{i}].file");
        let ok = if spec.file.trim().is_empty() {
            problems.push(at(&field, format!("split '{}': is empty", spec.name)));
            false
        } else if !inside(&spec.file) {
            problems.push(at(
                &field,
                format!(
                    "split '{}': path '{}' leaves the suite folder (absolute or with '..')",
                    spec.name, spec.file
                ),
            ));
            false
        } else if normalised(&spec.file) == Path::new(MANIFEST) {
            problems.push(at(
                &field,
                format!("split '{}': '{MANIFEST}' is the manifest", spec.name),
            ));
            false
        } else if let Some(first) = files.get(&normalised(&spec.file)) {
            problems.push(at(
                &field,
                format!(
                    "split '{}': file '{}' is also the file of splits[{first}]",
                    spec.name, spec.file
                ),
            ));
            false
        } else {
            files.insert(normalised(&spec.file), i);
            true
        };
        let kind = spec.record_kind();
        // A file of a kind its role cannot hold is not read: its lines would only repeat that.
        let ok = if spec.role.allows(kind) {
            ok
        } else {
            let allowed: Vec<&str> = RecordKind::ALL
                .iter()
                .filter(|k| spec.role.allows(**k))
                .map(|k| k.as_str())
                .collect();
            problems.push(at(
                &format!("splits[{i}].records"),
                format!(
                    "split '{}': role {:?} cannot hold {kind} (it holds: {})",
                    spec.name,
                    spec.role,
                    allowed.join(", ")
                ),
            ));
            false
        };
        openable.push(ok);
    }
    for role in [SplitRole::Forget, SplitRole::Retain] {
        if !manifest.splits.iter().any(|s| s.role == role) {
            problems.push(at(
                "splits",
                format!("no split has role {role:?}; every suite needs forget and retain"),
            ));
        }
    }
    openable
}

/// A forget or retain split without records makes the benchmark meaningless.
fn check_not_empty(split: &Split, file: &str, problems: &mut Vec<Problem>) {
    if split.role.finetuned_on() && split.is_empty() {
        problems.push(problem(
            file,
            None,
            None,
            format!(
                "split '{}' (role {:?}) has no records",
                split.name, split.role
            ),
        ));
    }
}

/// Read and check a suite folder; on any problem, the full list and nothing else.
pub(crate) fn load(dir: &Path) -> Result<Suite, SuiteError> {
    let invalid = |problems| SuiteError::Invalid {
        dir: dir.to_owned(),
        problems,
    };
    let text = match fs_err::read_to_string(dir.join(MANIFEST)) {
        Ok(t) => t,
        Err(e) => {
            return Err(invalid(vec![problem(
                MANIFEST,
                None,
                None,
                format!("cannot read: {e}"),
            )]));
        }
    };
    let manifest: SuiteManifest = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            let message = e.to_string();
            let what = if e.is_syntax() || e.is_eof() {
                "malformed JSON: "
            } else {
                ""
            };
            return Err(invalid(vec![problem(
                MANIFEST,
                Some(e.line()),
                field_of(&message).as_deref(),
                format!("{what}{}", clean(&message)),
            )]));
        }
    };
    let mut problems = Vec::new();
    let openable = check_manifest(&manifest, &mut problems);

    let mut ids = Ids::default();
    let mut splits = Vec::new();
    for (spec, ok) in manifest.splits.iter().zip(openable) {
        if !ok {
            continue;
        }
        let text = match fs_err::read_to_string(dir.join(&spec.file)) {
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
        let (file, p) = (&spec.file, &mut problems);
        let records = match spec.record_kind() {
            RecordKind::Questions => Records::Qa(parse_lines(file, &text, &mut ids, p)),
            RecordKind::Texts => Records::Text(parse_lines(file, &text, &mut ids, p)),
            RecordKind::Continuations => {
                Records::Continuation(parse_lines(file, &text, &mut ids, p))
            }
        };
        let split = Split {
            name: spec.name.clone(),
            role: spec.role,
            records,
        };
        check_not_empty(&split, &spec.file, &mut problems);
        splits.push(split);
    }
    if problems.is_empty() {
        Ok(Suite { manifest, splits })
    } else {
        Err(invalid(problems))
    }
}

/// Check a suite in memory by the rules of [`load`]: files as the manifest names them, lines
/// numbered as [`write`] writes them. Also checks that the splits match the manifest.
pub(crate) fn problems(suite: &Suite) -> Vec<Problem> {
    let mut problems = Vec::new();
    let manifest = &suite.manifest;
    check_manifest(manifest, &mut problems);
    let specs = manifest.splits.len();
    if suite.splits.len() != specs {
        problems.push(problem(
            MANIFEST,
            None,
            Some("splits"),
            format!(
                "the manifest lists {specs} split(s) but the suite has {}",
                suite.splits.len()
            ),
        ));
    }
    let mut ids = Ids::default();
    for (i, (spec, split)) in manifest.splits.iter().zip(&suite.splits).enumerate() {
        if spec.name != split.name || spec.role != split.role {
            problems.push(problem(
                MANIFEST,
                None,
                Some(&format!("splits[{i}]")),
                format!(
                    "lists split '{}' (role {:?}) where the suite has '{}' (role {:?})",
                    spec.name, spec.role, split.name, split.role
                ),
            ));
            continue;
        }
        let (has, wants) = (split.records.kind(), spec.record_kind());
        if has != wants {
            let wants = wants.singular();
            let says = if spec.records.is_some() {
                format!("the manifest says it holds {wants} records")
            } else {
                format!("role {:?} holds {wants} records", split.role)
            };
            problems.push(problem(
                &spec.file,
                None,
                None,
                format!(
                    "split '{}' holds {} records, but {says}",
                    split.name,
                    has.singular()
                ),
            ));
        } else {
            let (file, p) = (&spec.file, &mut problems);
            match &split.records {
                Records::Qa(r) => check_records(file, r, &mut ids, p),
                Records::Text(r) => check_records(file, r, &mut ids, p),
                Records::Continuation(r) => check_records(file, r, &mut ids, p),
            }
        }
        check_not_empty(split, &spec.file, &mut problems);
    }
    problems
}

fn jsonl<T: Serialize>(records: &[T]) -> Result<String, SuiteError> {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).map_err(std::io::Error::from)?);
        out.push('\n');
    }
    Ok(out)
}

/// Write `text` next to `path` under a temporary name; returns that name.
fn stage(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(e) = fs_err::write(&tmp, text) {
        let _ = fs_err::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Write the suite as a folder. Every file is first written under a temporary name; only when
/// all are written are they renamed into place, the manifest last. A suite that [`load`] would
/// refuse is not written at all.
pub(crate) fn write(suite: &Suite, dir: &Path) -> Result<(), SuiteError> {
    let found = problems(suite);
    if !found.is_empty() {
        return Err(SuiteError::Invalid {
            dir: dir.to_owned(),
            problems: found,
        });
    }
    let mut files = Vec::new();
    for (spec, split) in suite.manifest.splits.iter().zip(&suite.splits) {
        let text = match &split.records {
            Records::Qa(r) => jsonl(r)?,
            Records::Text(r) => jsonl(r)?,
            Records::Continuation(r) => jsonl(r)?,
        };
        files.push((dir.join(&spec.file), text));
    }
    let manifest = serde_json::to_string_pretty(&suite.manifest).map_err(std::io::Error::from)?;
    files.push((dir.join(MANIFEST), format!("{manifest}\n")));
    write_files(dir, &files)
}

/// Write `files` (paths with their contents) all or nothing: each is first written under a
/// temporary name beside it, and only when all are written are they renamed into place, in
/// order (so the last is the one whose presence says the rest is complete).
pub(crate) fn write_files(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), SuiteError> {
    fs_err::create_dir_all(dir)?;
    let mut staged: Vec<(PathBuf, &Path)> = Vec::new();
    let discard = |staged: &[(PathBuf, &Path)]| {
        for (tmp, _) in staged {
            let _ = fs_err::remove_file(tmp);
        }
    };
    for (path, text) in files {
        match stage(path, text) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                discard(&staged);
                return Err(e.into());
            }
        }
    }
    for i in 0..staged.len() {
        let (tmp, path) = &staged[i];
        if let Err(e) = fs_err::rename(tmp, path) {
            discard(&staged[i..]);
            return Err(e.into());
        }
    }
    Ok(())
}

/// Serialise for the digest. The record types serialise infallibly (string keys, no floats);
/// the fallback only keeps this function total.
fn canonical<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<unserialisable: {e}>"))
}

/// sha256 over the manifest and every split's records in order, each piece length-prefixed.
/// Structs serialise in field order and maps are sorted, so the bytes are the same everywhere.
pub(crate) fn digest(suite: &Suite) -> String {
    let mut h = Sha256::new();
    h.update(DIGEST_DOMAIN);
    let mut feed = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    feed(&canonical(&suite.manifest));
    for split in &suite.splits {
        feed(&split.name);
        feed(&canonical(&split.role));
        match &split.records {
            Records::Qa(r) => {
                feed("qa");
                feed(&r.len().to_string());
                r.iter().for_each(|x| feed(&canonical(x)));
            }
            Records::Text(r) => {
                feed("text");
                feed(&r.len().to_string());
                r.iter().for_each(|x| feed(&canonical(x)));
            }
            Records::Continuation(r) => {
                feed("continuation");
                feed(&r.len().to_string());
                r.iter().for_each(|x| feed(&canonical(x)));
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
