//! A generic importer of users' question–answer data.
//!
//! The input is one or more [`Table`]s: rows of named cells, read from JSON (an array of
//! objects, or one object a line), JSON Lines, plain text (one record a line) here, or from CSV
//! and Parquet by the caller (the `lethe` binary reads those with polars, which this crate does
//! not depend on). A [`Columns`] mapping says which column holds the question, the answer and
//! each optional field; an [`Assign`] says which split each row goes to. [`import`] checks every
//! row and returns a suite, or every problem with its file, line (or row) and field, and no
//! suite at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::{
    QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteManifest, TextRecord, valid_name,
};

/// One cell of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// No value (JSON null, an absent key, an empty CSV field or a Parquet null).
    Null,
    /// A text (numbers and booleans are read as their text).
    Text(String),
    /// A list of texts (a JSON array or a Parquet list column).
    List(Vec<String>),
    /// A value of another kind, named for the message (e.g. "an object").
    Other(String),
}

/// Where a row is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A 1-based line of a text file.
    Line(usize),
    /// A 1-based row of a table without line numbers (Parquet; counted after any header).
    Row(usize),
}

/// One row of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Where the row is.
    pub place: Place,
    /// Its cells by column name; a column the row lacks counts as [`Cell::Null`].
    pub cells: BTreeMap<String, Cell>,
}

/// The rows of one input file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The file, as messages name it.
    pub file: String,
    /// Every column name (for JSON, every key any row has), in first-seen order.
    pub columns: Vec<String>,
    /// The rows, in file order.
    pub rows: Vec<Row>,
}

/// One problem in the input: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// The file (or, for a problem with the mapping itself, what it concerns).
    pub file: String,
    /// The line or row, when the problem is in one.
    pub place: Option<Place>,
    /// The column (field), when the problem is in one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        match self.place {
            Some(Place::Line(n)) => write!(f, ":{n}")?,
            Some(Place::Row(n)) => write!(f, ": row {n}")?,
            None => {}
        }
        if let Some(field) = &self.field {
            write!(f, ": field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

fn at(
    file: &str,
    place: Option<Place>,
    field: Option<&str>,
    message: impl Into<String>,
) -> InputProblem {
    InputProblem {
        file: file.to_owned(),
        place,
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

/// Why nothing was imported: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("cannot import: {} problem(s):\n{}", .0.len(), list(.0))]
pub struct ImportError(pub Vec<InputProblem>);

fn list(problems: &[InputProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which column holds each field of a question record. Columns the mapping does not name are
/// ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    /// The question (required in every row).
    pub question: String,
    /// The reference answer (required in every row).
    pub answer: String,
    /// The id; without it, ids are made from the split's name and the row's position in it.
    pub id: Option<String>,
    /// Group keys: (key, column). A row whose cell is empty has no value for that key.
    pub groups: Vec<(String, String)>,
    /// Columns of paraphrased answers (each a text or a list; all are gathered in order).
    pub paraphrased_answers: Vec<String>,
    /// Columns of perturbed (wrong) answers.
    pub perturbed_answers: Vec<String>,
    /// Columns of paraphrased questions.
    pub paraphrased_questions: Vec<String>,
    /// Columns of leakage terms.
    pub terms: Vec<String>,
    /// Columns of a closed question's options.
    pub options: Vec<String>,
    /// The correct option: a 0-based index, or the text of one of the options.
    pub correct_option: Option<String>,
    /// When set, a text cell of a list column is split on this separator (e.g. "|"); empty
    /// pieces are dropped. Without it a text cell is one element.
    pub list_separator: Option<String>,
}

/// Which split the rows of one table go to.
#[derive(Debug, Clone, PartialEq)]
pub enum Assign {
    /// Every row goes to the split `name` with `role`.
    Split {
        /// The split's name.
        name: String,
        /// Its role: forget, retain, holdout or eval.
        role: SplitRole,
    },
    /// A column names each row's split. A split named like a question role (`forget`,
    /// `retain`, `holdout`, `eval`) has that role; any other name needs an entry in `roles`.
    Column {
        /// The column.
        column: String,
        /// Roles of split names that are not role names (e.g. "test" → eval).
        roles: BTreeMap<String, SplitRole>,
    },
    /// `forget_percent` % of the rows, drawn with `seed`, are forgotten and the rest retained.
    /// With `by`, whole groups of rows sharing that column's value are drawn instead of rows.
    Random {
        /// Percentage forgotten, 1 to 99; rounded, at least one unit, never all.
        forget_percent: u32,
        /// The column whose values are the units drawn (e.g. a person).
        by: Option<String>,
        /// Seed of the draw.
        seed: u64,
    },
}

/// One table of questions and how its rows are assigned to splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The rows.
    pub table: Table,
    /// Their splits.
    pub assign: Assign,
}

/// Everything [`import`] imports.
#[derive(Debug, Clone, PartialEq)]
pub struct QaImport {
    /// The suite's name: lowercase letters, digits and '-'.
    pub name: String,
    /// The suite's description.
    pub description: String,
    /// The column mapping, shared by every question table.
    pub columns: Columns,
    /// The question tables.
    pub sources: Vec<Source>,
    /// Tables of pretraining text for the base model (split `pretrain`).
    pub pretrain: Vec<Table>,
    /// Tables of refusals (split `idk`).
    pub idk: Vec<Table>,
    /// The column of the text tables' texts.
    pub text_column: String,
}

/// Read a JSON file (an array of objects, or one object a line) or a JSON Lines file into a
/// table. JSON numbers and booleans become texts; arrays of them become lists.
pub fn read_json(path: &Path, file: &str) -> Result<Table, Vec<InputProblem>> {
    let text = fs_err::read_to_string(path)
        .map_err(|e| vec![at(file, None, None, format!("cannot read: {e}"))])?;
    if text.trim_start().starts_with('[') {
        json_array(&text, file)
    } else {
        json_lines(&text, file)
    }
}

/// Read a plain text file into a table with one column, `column`: one row per non-blank line.
pub fn read_lines(path: &Path, file: &str, column: &str) -> Result<Table, Vec<InputProblem>> {
    let text = fs_err::read_to_string(path)
        .map_err(|e| vec![at(file, None, None, format!("cannot read: {e}"))])?;
    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Row {
            place: Place::Line(i + 1),
            cells: BTreeMap::from([(column.to_owned(), Cell::Text(l.to_owned()))]),
        })
        .collect();
    Ok(Table {
        file: file.to_owned(),
        columns: vec![column.to_owned()],
        rows,
    })
}

/// What a JSON value is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Array(items) => match items.iter().map(scalar).collect::<Option<Vec<_>>>() {
            Some(texts) => Cell::List(texts),
            None => Cell::Other("an array of non-texts".into()),
        },
        Value::Object(_) => Cell::Other("an object".into()),
        other => scalar(other).map_or(Cell::Null, Cell::Text),
    }
}

/// Cut serde_json's " at line 1 column 40" tail when the line is reported separately.
fn clean(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Turn one JSON value into a row, or a problem at `place`.
fn object_row(
    value: Value,
    place: Place,
    file: &str,
    columns: &mut Vec<String>,
) -> Result<Row, InputProblem> {
    match value {
        Value::Object(map) => {
            let mut cells = BTreeMap::new();
            for (k, v) in map {
                if !columns.contains(&k) {
                    columns.push(k.clone());
                }
                cells.insert(k, cell(&v));
            }
            Ok(Row { place, cells })
        }
        other => Err(at(
            file,
            Some(place),
            None,
            format!("expected a JSON object, found {}", kind(&other)),
        )),
    }
}

fn json_lines(text: &str, file: &str) -> Result<Table, Vec<InputProblem>> {
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let place = Place::Line(i + 1);
        match serde_json::from_str::<Value>(line) {
            Ok(v) => match object_row(v, place, file, &mut columns) {
                Ok(row) => rows.push(row),
                Err(p) => problems.push(p),
            },
            Err(e) => problems.push(at(
                file,
                Some(place),
                None,
                format!("malformed JSON: {}", clean(&e.to_string())),
            )),
        }
    }
    if problems.is_empty() {
        Ok(Table {
            file: file.to_owned(),
            columns,
            rows,
        })
    } else {
        Err(problems)
    }
}

/// The 1-based line on which each element of a JSON text's top-level array starts. The text
/// must be valid JSON: strings are skipped by their quotes and escapes, nesting by brackets.
fn element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth) = (1, 0usize);
    let (mut in_string, mut escaped, mut expecting) = (false, false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            if c == '\n' {
                line += 1;
            }
            continue;
        }
        if c == '\n' {
            line += 1;
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if expecting && c != ']' {
            lines.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    lines
}

fn json_array(text: &str, file: &str) -> Result<Table, Vec<InputProblem>> {
    let values = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(values)) => values,
        Ok(other) => {
            return Err(vec![at(
                file,
                None,
                None,
                format!("expected an array of objects, found {}", kind(&other)),
            )]);
        }
        Err(e) => {
            return Err(vec![at(
                file,
                Some(Place::Line(e.line())),
                None,
                format!("malformed JSON: {}", clean(&e.to_string())),
            )]);
        }
    };
    let lines = element_lines(text);
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        // The scanner finds every element of valid JSON; rows are the fallback all the same.
        let place = lines.get(i).map_or(Place::Row(i + 1), |l| Place::Line(*l));
        match object_row(v, place, file, &mut columns) {
            Ok(row) => rows.push(row),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(Table {
            file: file.to_owned(),
            columns,
            rows,
        })
    } else {
        Err(problems)
    }
}

/// The question roles, by the names splits may carry without a mapping.
fn role_named(name: &str) -> Option<SplitRole> {
    match name {
        "forget" => Some(SplitRole::Forget),
        "retain" => Some(SplitRole::Retain),
        "holdout" => Some(SplitRole::Holdout),
        "eval" => Some(SplitRole::Eval),
        _ => None,
    }
}

/// Reads one row's cells, noting problems.
struct Reader<'a> {
    table: &'a Table,
    row: &'a Row,
    problems: &'a mut Vec<InputProblem>,
    /// Columns the table lacks: reported once for the file, not on every row.
    absent: &'a BTreeSet<String>,
}

impl Reader<'_> {
    fn problem(&mut self, column: &str, message: impl Into<String>) {
        self.problems.push(at(
            &self.table.file,
            Some(self.row.place),
            Some(column),
            message,
        ));
    }

    fn cell(&self, column: &str) -> &Cell {
        self.row.cells.get(column).unwrap_or(&Cell::Null)
    }

    /// An optional text: `None` when empty or absent.
    fn text(&mut self, column: &str) -> Option<String> {
        if self.absent.contains(column) {
            return None;
        }
        match self.cell(column).clone() {
            Cell::Null => None,
            Cell::Text(t) if t.trim().is_empty() => None,
            Cell::Text(t) => Some(t),
            Cell::List(_) => {
                self.problem(column, "expected a text, found a list");
                None
            }
            Cell::Other(what) => {
                self.problem(column, format!("expected a text, found {what}"));
                None
            }
        }
    }

    /// A required text: a problem when empty or absent.
    fn required(&mut self, column: &str) -> Option<String> {
        if self.absent.contains(column) {
            return None;
        }
        let value = self.text(column);
        if value.is_none() && matches!(self.cell(column), Cell::Null | Cell::Text(_)) {
            let what = if self.row.cells.contains_key(column) {
                "is empty"
            } else {
                "is missing"
            };
            self.problem(column, what);
        }
        value
    }

    /// The elements of list columns, in column order; empty elements are dropped.
    fn list(&mut self, columns: &[String], separator: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        for column in columns {
            if self.absent.contains(column) {
                continue;
            }
            let items = match self.cell(column).clone() {
                Cell::Null => Vec::new(),
                Cell::Text(t) => match separator {
                    Some(sep) => t.split(sep).map(str::to_owned).collect(),
                    None => vec![t],
                },
                Cell::List(items) => items,
                Cell::Other(what) => {
                    self.problem(column, format!("expected a text or a list, found {what}"));
                    Vec::new()
                }
            };
            out.extend(
                items
                    .into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            );
        }
        out
    }
}

/// The columns every question table must have.
fn required_columns(columns: &Columns) -> Vec<&str> {
    let mut out = vec![columns.question.as_str(), columns.answer.as_str()];
    out.extend(columns.id.as_deref());
    out
}

/// The optional columns: each must be in at least one question table (a typo is caught), but a
/// table without it just has no values for it.
fn optional_columns(columns: &Columns) -> Vec<&str> {
    let mut out: Vec<&str> = columns.groups.iter().map(|(_, c)| c.as_str()).collect();
    for list in [
        &columns.paraphrased_answers,
        &columns.perturbed_answers,
        &columns.paraphrased_questions,
        &columns.terms,
        &columns.options,
    ] {
        out.extend(list.iter().map(String::as_str));
    }
    out.extend(columns.correct_option.as_deref());
    out
}

/// Report every mapped column the table lacks; returns them.
fn absent_columns(
    table: &Table,
    wanted: &[&str],
    problems: &mut Vec<InputProblem>,
) -> BTreeSet<String> {
    let mut absent = BTreeSet::new();
    for column in wanted {
        if !table.columns.iter().any(|c| c == column) && absent.insert((*column).to_owned()) {
            problems.push(at(
                &table.file,
                None,
                Some(column),
                format!(
                    "no such column (the file has: {})",
                    if table.columns.is_empty() {
                        "none".to_owned()
                    } else {
                        table.columns.join(", ")
                    }
                ),
            ));
        }
    }
    absent
}

/// A question with where it came from, before ids are settled.
struct Parsed {
    place: (String, Place),
    split: String,
    record: QaRecord,
}

/// The row's given id (when the mapping has an id column and the cell holds one), and its
/// record when the row is sound.
fn parse_row(columns: &Columns, reader: &mut Reader<'_>) -> (Option<String>, Option<QaRecord>) {
    let question = reader.required(&columns.question);
    let answer = reader.required(&columns.answer);
    // Every field is read before giving up on the row, so that all its problems are reported.
    let id = columns.id.as_ref().map(|c| reader.required(c));
    let mut groups = BTreeMap::new();
    for (key, column) in &columns.groups {
        if let Some(v) = reader.text(column) {
            groups.insert(key.clone(), v);
        }
    }
    let sep = columns.list_separator.as_deref();
    let options = reader.list(&columns.options, sep);
    let correct_option = match &columns.correct_option {
        None => None,
        Some(column) => match reader.text(column) {
            None => None,
            Some(v) => {
                if options.is_empty() {
                    reader.problem(column, format!("'{v}' is given but the row has no options"));
                    None
                } else if let Some(i) = options.iter().position(|o| *o == v.trim()) {
                    Some(i as u32)
                } else {
                    match v.trim().parse::<u32>() {
                        Ok(i) if (i as usize) < options.len() => Some(i),
                        _ => {
                            reader.problem(
                                column,
                                format!(
                                    "'{v}' is neither one of the options ({}) nor an index \
                                     below {}",
                                    options.join(", "),
                                    options.len()
                                ),
                            );
                            None
                        }
                    }
                }
            }
        },
    };
    let paraphrased_answers = reader.list(&columns.paraphrased_answers, sep);
    let perturbed_answers = reader.list(&columns.perturbed_answers, sep);
    let paraphrased_questions = reader.list(&columns.paraphrased_questions, sep);
    let terms = reader.list(&columns.terms, sep);
    let given = id.clone().flatten();
    let record = (|| {
        Some(QaRecord {
            id: match id {
                Some(given) => given?,
                None => String::new(),
            },
            question: question?,
            answer: answer?,
            groups,
            paraphrased_answers,
            perturbed_answers,
            paraphrased_questions,
            terms,
            options,
            correct_option,
        })
    })();
    (given, record)
}

/// The split of every row of a table (`None` where the row's split is unusable), and the
/// roles of the splits seen.
fn assign(
    source: &Source,
    absent: &BTreeSet<String>,
    roles: &mut BTreeMap<String, (SplitRole, String)>,
    problems: &mut Vec<InputProblem>,
) -> Vec<Option<String>> {
    let table = &source.table;
    let mut note_role = |name: &str, role: SplitRole, problems: &mut Vec<InputProblem>, place| {
        match roles.get(name) {
            Some((r, first)) if *r != role => problems.push(at(
                &table.file,
                place,
                None,
                format!("split '{name}' has role {role:?} here but {r:?} in {first}"),
            )),
            Some(_) => {}
            None => {
                roles.insert(name.to_owned(), (role, table.file.clone()));
            }
        }
    };
    match &source.assign {
        Assign::Split { name, role } => {
            if !valid_name(name) {
                problems.push(at(
                    &table.file,
                    None,
                    None,
                    format!(
                        "split name '{name}' must be 1 to 64 lowercase letters, digits and '-'"
                    ),
                ));
                return vec![None; table.rows.len()];
            }
            if !role.holds_questions() {
                problems.push(at(
                    &table.file,
                    None,
                    None,
                    format!("split '{name}' has role {role:?}, which holds text, not questions"),
                ));
                return vec![None; table.rows.len()];
            }
            note_role(name, *role, problems, None);
            vec![Some(name.clone()); table.rows.len()]
        }
        Assign::Column {
            column,
            roles: given,
        } => {
            for (name, role) in given {
                if !role.holds_questions() {
                    problems.push(at(
                        "split roles",
                        None,
                        None,
                        format!(
                            "split '{name}' is given role {role:?}, which holds text, not questions"
                        ),
                    ));
                }
            }
            if absent.contains(column) {
                return vec![None; table.rows.len()];
            }
            let mut out = Vec::new();
            for row in &table.rows {
                let mut reader = Reader {
                    table,
                    row,
                    problems,
                    absent,
                };
                let Some(name) = reader.required(column) else {
                    out.push(None);
                    continue;
                };
                let name = name.trim().to_owned();
                let role = given.get(&name).copied().or_else(|| role_named(&name));
                match role {
                    _ if !valid_name(&name) => {
                        reader.problem(
                            column,
                            format!(
                                "split name '{name}' must be 1 to 64 lowercase letters, digits \
                                 and '-'"
                            ),
                        );
                        out.push(None);
                    }
                    None => {
                        reader.problem(
                            column,
                            format!(
                                "split '{name}' has no role: name it forget, retain, holdout or \
                                 eval, or give its role (e.g. {name}=eval)"
                            ),
                        );
                        out.push(None);
                    }
                    Some(role) if !role.holds_questions() => {
                        out.push(None);
                    }
                    Some(role) => {
                        note_role(&name, role, problems, Some(row.place));
                        out.push(Some(name));
                    }
                }
            }
            out
        }
        Assign::Random {
            forget_percent,
            by,
            seed,
        } => random(
            table,
            *forget_percent,
            by.as_deref(),
            *seed,
            absent,
            roles,
            problems,
        ),
    }
}

/// Forget `percent` % of the rows (or of the values of `by`) at random, retain the rest.
fn random(
    table: &Table,
    percent: u32,
    by: Option<&str>,
    seed: u64,
    absent: &BTreeSet<String>,
    roles: &mut BTreeMap<String, (SplitRole, String)>,
    problems: &mut Vec<InputProblem>,
) -> Vec<Option<String>> {
    let none = vec![None; table.rows.len()];
    if !(1..=99).contains(&percent) {
        problems.push(at(
            &table.file,
            None,
            None,
            format!("forget percentage {percent} is not in 1..=99"),
        ));
        return none;
    }
    // The unit of each row: its `by` value, or the row itself.
    let mut units: Vec<Option<String>> = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        units.push(match by {
            None => Some(i.to_string()),
            Some(column) if absent.contains(column) => None,
            Some(column) => Reader {
                table,
                row,
                problems,
                absent,
            }
            .required(column),
        });
    }
    let mut distinct: Vec<&String> = Vec::new();
    let mut seen = BTreeSet::new();
    for u in units.iter().flatten() {
        if seen.insert(u) {
            distinct.push(u);
        }
    }
    if distinct.len() < 2 {
        problems.push(at(
            &table.file,
            None,
            by,
            format!(
                "{} {} to draw from, but forget and retain need one each",
                distinct.len(),
                if by.is_some() {
                    "distinct value(s)"
                } else {
                    "row(s)"
                }
            ),
        ));
        return none;
    }
    let n = ((distinct.len() * percent as usize + 50) / 100).clamp(1, distinct.len() - 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    distinct.shuffle(&mut rng);
    let forgotten: BTreeSet<&String> = distinct[..n].iter().copied().collect();
    for (name, role) in [("forget", SplitRole::Forget), ("retain", SplitRole::Retain)] {
        roles
            .entry(name.to_owned())
            .or_insert((role, table.file.clone()));
    }
    units
        .iter()
        .map(|u| {
            u.as_ref().map(|u| {
                if forgotten.contains(u) {
                    "forget".to_owned()
                } else {
                    "retain".to_owned()
                }
            })
        })
        .collect()
}

/// Read the texts of pretraining or refusal tables; ids are `{prefix}-NNNNN`.
fn texts(
    tables: &[Table],
    column: &str,
    prefix: &str,
    problems: &mut Vec<InputProblem>,
    ids: &mut BTreeMap<String, (String, Place)>,
) -> Vec<TextRecord> {
    let mut out = Vec::new();
    for table in tables {
        let absent = absent_columns(table, &[column], problems);
        if table.rows.is_empty() {
            problems.push(at(&table.file, None, None, "has no rows"));
        }
        for row in &table.rows {
            let mut reader = Reader {
                table,
                row,
                problems,
                absent: &absent,
            };
            if let Some(text) = reader.required(column) {
                let id = format!("{prefix}-{:05}", out.len());
                ids.insert(id.clone(), (table.file.clone(), row.place));
                out.push(TextRecord { id, text });
            }
        }
    }
    out
}

fn located(file: &str, place: Place) -> String {
    match place {
        Place::Line(n) => format!("{file}:{n}"),
        Place::Row(n) => format!("{file}: row {n}"),
    }
}

/// Order problems as the user reads the input: by file (in the order given, problems with the
/// mapping first), then by line or row; problems of one row keep the order of its fields.
fn sort(spec: &QaImport, problems: &mut [InputProblem]) {
    let files: Vec<&str> = spec
        .sources
        .iter()
        .map(|s| s.table.file.as_str())
        .chain(
            spec.pretrain
                .iter()
                .chain(&spec.idk)
                .map(|t| t.file.as_str()),
        )
        .collect();
    problems.sort_by_key(|p| {
        let file = files.iter().position(|f| *f == p.file).map_or(0, |i| i + 1);
        let place = match p.place {
            None => 0,
            Some(Place::Line(n) | Place::Row(n)) => n,
        };
        (file, place)
    });
}

/// Import question–answer tables as a suite: `pretrain` (if any text is given), the question
/// splits (forget, retain, holdout, then eval splits, each group by name), and `idk` (if any).
/// Every row is checked; on any problem, all of them are returned and no suite.
pub fn import(spec: &QaImport) -> Result<Suite, ImportError> {
    let mut problems = Vec::new();
    if !valid_name(&spec.name) {
        problems.push(at(
            "suite name",
            None,
            None,
            format!(
                "'{}' must be 1 to 64 lowercase letters, digits and '-'",
                spec.name
            ),
        ));
    }
    let columns = &spec.columns;
    let mut roles: BTreeMap<String, (SplitRole, String)> = BTreeMap::new();
    let mut parsed: Vec<Parsed> = Vec::new();
    // Every given id with its place, also of rows with other problems, so that a duplicate is
    // reported in the same pass.
    let mut given_ids: Vec<(String, String, Place)> = Vec::new();
    for source in &spec.sources {
        let table = &source.table;
        let mut wanted = required_columns(columns);
        match &source.assign {
            Assign::Column { column, .. } => wanted.push(column),
            Assign::Random {
                by: Some(column), ..
            } => wanted.push(column),
            _ => {}
        }
        let mut absent = absent_columns(table, &wanted, &mut problems);
        absent.extend(
            optional_columns(columns)
                .into_iter()
                .filter(|c| !table.columns.iter().any(|t| t == c))
                .map(str::to_owned),
        );
        if table.rows.is_empty() {
            problems.push(at(&table.file, None, None, "has no rows"));
        }
        let splits = assign(source, &absent, &mut roles, &mut problems);
        for (row, split) in table.rows.iter().zip(splits) {
            let mut reader = Reader {
                table,
                row,
                problems: &mut problems,
                absent: &absent,
            };
            let (given, record) = parse_row(columns, &mut reader);
            if let Some(id) = given {
                given_ids.push((id, table.file.clone(), row.place));
            }
            if let (Some(record), Some(split)) = (record, split) {
                parsed.push(Parsed {
                    place: (table.file.clone(), row.place),
                    split,
                    record,
                });
            }
        }
    }

    for column in optional_columns(columns) {
        let tables = spec.sources.iter().map(|s| &s.table);
        if !tables
            .clone()
            .any(|t| t.columns.iter().any(|c| c == column))
        {
            for table in tables {
                absent_columns(table, &[column], &mut problems);
            }
        }
    }

    // Ids: the given ones must be unique; made ones number each split's questions.
    let mut ids: BTreeMap<String, (String, Place)> = BTreeMap::new();
    let pretrain = texts(
        &spec.pretrain,
        &spec.text_column,
        "pretrain",
        &mut problems,
        &mut ids,
    );
    let idk = texts(&spec.idk, &spec.text_column, "idk", &mut problems, &mut ids);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    if columns.id.is_none() {
        for p in &mut parsed {
            let n = counts.entry(p.split.clone()).or_default();
            p.record.id = format!("{}-{n:04}", p.split);
            *n += 1;
            given_ids.push((p.record.id.clone(), p.place.0.clone(), p.place.1));
        }
    }
    for (id, file, place) in given_ids {
        if let Some((first_file, first_place)) = ids.get(&id) {
            problems.push(at(
                &file,
                Some(place),
                columns.id.as_deref(),
                format!(
                    "duplicate id '{id}' (first at {})",
                    located(first_file, *first_place)
                ),
            ));
        } else {
            ids.insert(id, (file, place));
        }
    }

    for role in [SplitRole::Forget, SplitRole::Retain] {
        let has = parsed
            .iter()
            .any(|p| roles.get(&p.split).is_some_and(|(r, _)| *r == role));
        if !has && problems.is_empty() {
            problems.push(at(
                "input",
                None,
                None,
                format!(
                    "no question goes to a split with role {role:?}: every suite needs forget and \
                     retain questions"
                ),
            ));
        }
    }
    if !problems.is_empty() {
        sort(spec, &mut problems);
        return Err(ImportError(problems));
    }

    let mut by_split: BTreeMap<(u8, String), Vec<QaRecord>> = BTreeMap::new();
    for p in parsed {
        let role = roles.get(&p.split).map_or(SplitRole::Eval, |(r, _)| *r);
        let rank = match role {
            SplitRole::Forget => 0,
            SplitRole::Retain => 1,
            SplitRole::Holdout => 2,
            _ => 3,
        };
        by_split.entry((rank, p.split)).or_default().push(p.record);
    }
    let mut splits = Vec::new();
    if !pretrain.is_empty() {
        splits.push(Split {
            name: "pretrain".into(),
            role: SplitRole::Pretrain,
            records: Records::Text(pretrain),
        });
    }
    for ((_, name), records) in by_split {
        let role = roles.get(&name).map_or(SplitRole::Eval, |(r, _)| *r);
        splits.push(Split {
            name,
            role,
            records: Records::Qa(records),
        });
    }
    if !idk.is_empty() {
        splits.push(Split {
            name: "idk".into(),
            role: SplitRole::Idk,
            records: Records::Text(idk),
        });
    }
    let names: BTreeSet<&str> = splits.iter().map(|s| s.name.as_str()).collect();
    if names.len() != splits.len() {
        return Err(ImportError(vec![at(
            "input",
            None,
            None,
            "a question split is named 'pretrain' or 'idk', which hold the text files",
        )]));
    }
    let suite = Suite {
        manifest: SuiteManifest {
            name: spec.name.clone(),
            version: "1".into(),
            description: spec.description.clone(),
            splits: splits
                .iter()
                .map(|s| SplitSpec::in_jsonl(&s.name, s.role))
                .collect(),
        },
        splits,
    };
    // The checks above cover the suite format's rules; this is the last guard before writing.
    let left = suite.problems();
    if !left.is_empty() {
        return Err(ImportError(
            left.into_iter()
                .map(|p| {
                    at(
                        "the imported suite",
                        None,
                        p.field.as_deref(),
                        p.to_string(),
                    )
                })
                .collect(),
        ));
    }
    Ok(suite)
}

#[cfg(test)]
mod tests;
