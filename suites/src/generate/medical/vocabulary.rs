//! The medical vocabulary the generator draws from: `suites/data/medical-vocabulary.json`,
//! embedded in the binary, parsed and checked once.
//!
//! The file is derived from faker-healthcare-provider's disease list and the ICD-10-CM
//! classification by `suites/data/derive-medical-vocabulary.py`; its provenance and licences are in
//! `suites/data/medical-vocabulary.NOTICE.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::SuiteError;

/// The embedded file.
const TEXT: &str = include_str!("../../../data/medical-vocabulary.json");

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVocabulary {
    #[allow(dead_code)]
    about: String,
    #[allow(dead_code)]
    dropped: Vec<String>,
    categories: Vec<Category>,
    labs: Vec<RawLab>,
    diseases: Vec<RawDisease>,
}

/// A disease category: a union of ICD-10-CM chapters or blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Category {
    /// The group key, e.g. "cardiovascular".
    pub id: String,
    /// The name used in sentences, e.g. "infectious and immune".
    pub name: String,
    /// The ICD-10-CM chapters or blocks it is made of.
    pub icd: Vec<IcdRange>,
}

/// A range of three-character ICD-10-CM categories, e.g. "C00-D49", with its title.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IcdRange {
    /// "first-last" or a single three-character code.
    pub range: String,
    /// The chapter's or block's title.
    pub title: String,
}

impl IcdRange {
    /// The first and last three-character code.
    fn bounds(&self) -> (&str, &str) {
        match self.range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (&self.range, &self.range),
        }
    }

    /// Whether a three-character code lies in the range. ICD-10 codes compare as strings.
    pub fn contains(&self, three: &str) -> bool {
        let (a, b) = self.bounds();
        a <= three && three <= b
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    id: String,
    name: String,
    unit: String,
    decimals: u32,
    low: f64,
    high: f64,
    min: f64,
    max: f64,
}

/// A lab test. Values are kept as integers in units of the last shown decimal, so that a value
/// drawn outside the reference range stays outside once printed.
#[derive(Debug, Clone)]
pub(crate) struct Lab {
    /// The source's key, e.g. "fasting_glucose".
    pub id: String,
    /// The display name, e.g. "fasting glucose".
    pub name: String,
    /// The unit, empty for a ratio.
    pub unit: String,
    /// Decimals shown.
    pub decimals: u32,
    /// Reference range, inclusive.
    pub low: i64,
    /// Reference range, inclusive.
    pub high: i64,
    /// Plausible extremes.
    pub min: i64,
    /// Plausible extremes.
    pub max: i64,
}

impl Lab {
    /// A value in the lab's units, e.g. "58 mmol/mol" or "1.7" for a ratio.
    pub fn show(&self, value: i64) -> String {
        let number = decimal(value, self.decimals);
        if self.unit.is_empty() {
            number
        } else {
            format!("{number} {}", self.unit)
        }
    }

    /// "between 20 and 41 mmol/mol".
    pub fn reference(&self) -> String {
        format!(
            "between {} and {}",
            decimal(self.low, self.decimals),
            self.show(self.high)
        )
    }
}

/// `value` × 10^-decimals, printed with exactly `decimals` decimals.
pub(crate) fn decimal(value: i64, decimals: u32) -> String {
    let scale = 10i64.pow(decimals);
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    let s = scale.unsigned_abs();
    if decimals == 0 {
        format!("{sign}{v}")
    } else {
        format!(
            "{sign}{}.{:0width$}",
            v / s,
            v % s,
            width = decimals as usize
        )
    }
}

/// Which way a disease moves a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    /// Above the reference range.
    High,
    /// Below the reference range.
    Low,
}

/// A patient's sex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

impl Sex {
    /// "female" or "male".
    pub fn word(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisease {
    name: String,
    code: String,
    icd_title: String,
    category: String,
    specialty: String,
    symptoms: Vec<String>,
    drugs: Vec<String>,
    labs: BTreeMap<String, Direction>,
    procedures: Vec<String>,
    #[serde(default)]
    sex: Option<Sex>,
    #[serde(default)]
    ages: Option<[u32; 2]>,
}

/// A disease with its references resolved.
#[derive(Debug, Clone)]
pub(crate) struct Disease {
    /// E.g. "Type 2 Diabetes".
    pub name: String,
    /// ICD-10-CM code, e.g. "E11.9".
    pub code: String,
    /// The title of its three-character ICD-10-CM category.
    pub icd_title: String,
    /// Index into [`Vocabulary::categories`].
    pub category: usize,
    /// E.g. "Endocrinology".
    pub specialty: String,
    /// Lower-case symptoms, at least two.
    pub symptoms: Vec<String>,
    /// Drugs, at least two.
    pub drugs: Vec<String>,
    /// The labs it moves (indices into [`Vocabulary::labs`], in lab order) and how.
    pub labs: Vec<(usize, Direction)>,
    /// Procedures that fit it, at least one.
    pub procedures: Vec<String>,
    /// The only sex it occurs in, if any.
    pub sex: Option<Sex>,
    /// Youngest and oldest age of its patients.
    pub ages: (u32, u32),
}

/// The whole vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Vocabulary {
    /// The 11 categories.
    pub categories: Vec<Category>,
    /// The lab tests.
    pub labs: Vec<Lab>,
    /// The diseases, grouped by nothing in particular (file order).
    pub diseases: Vec<Disease>,
}

/// Ages of adults when a disease says nothing else.
pub(crate) const ADULT_AGES: (u32, u32) = (18, 90);

/// The vocabulary, parsed and checked on first use.
pub(crate) fn vocabulary() -> Result<&'static Vocabulary, SuiteError> {
    static PARSED: OnceLock<Result<Vocabulary, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| parse(TEXT))
        .as_ref()
        .map_err(|e| SuiteError::Generate(format!("the embedded medical vocabulary: {e}")))
}

/// Whether `code` has the shape of an ICD-10-CM code: a letter, two characters (a digit, then a
/// digit or letter), then optionally a dot and one to four digits or letters.
pub(crate) fn valid_code(code: &str) -> bool {
    let (head, tail) = match code.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (code, None),
    };
    let h: Vec<char> = head.chars().collect();
    let head_ok = h.len() == 3
        && h[0].is_ascii_uppercase()
        && h[1].is_ascii_digit()
        && (h[2].is_ascii_digit() || h[2].is_ascii_uppercase());
    let tail_ok = tail.is_none_or(|t| {
        (1..=4).contains(&t.len())
            && t.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    });
    head_ok && tail_ok
}

/// Scale a decimal number to an integer in units of its last decimal; refuses numbers that do
/// not have exactly that many decimals.
fn scaled(x: f64, decimals: u32, what: &str) -> Result<i64, String> {
    let scale = 10f64.powi(decimals as i32);
    let v = (x * scale).round();
    if !x.is_finite() || (x * scale - v).abs() > 1e-6 || v.abs() > 1e12 {
        return Err(format!("{what} {x} does not have {decimals} decimal(s)"));
    }
    Ok(v as i64)
}

fn check_list(list: &[String], min: usize, what: &str) -> Result<(), String> {
    if list.len() < min {
        return Err(format!(
            "{what}: {} given, at least {min} needed",
            list.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for item in list {
        if item.trim().is_empty() || item.trim() != item {
            return Err(format!(
                "{what}: '{item}' is empty or has surrounding spaces"
            ));
        }
        if !seen.insert(item) {
            return Err(format!("{what}: '{item}' appears twice"));
        }
    }
    Ok(())
}

/// Parse and check the vocabulary: every reference resolves, every code has the ICD-10 shape and
/// lies in its category's ranges (and no other category's), every list is long enough.
pub(crate) fn parse(text: &str) -> Result<Vocabulary, String> {
    let raw: RawVocabulary = serde_json::from_str(text).map_err(|e| e.to_string())?;

    let mut category_ids = BTreeMap::new();
    for (i, c) in raw.categories.iter().enumerate() {
        if category_ids.insert(c.id.as_str(), i).is_some() {
            return Err(format!("category '{}' appears twice", c.id));
        }
        if c.name.trim().is_empty() || c.icd.is_empty() {
            return Err(format!("category '{}' has no name or no ICD ranges", c.id));
        }
        for r in &c.icd {
            let (a, b) = r.bounds();
            if !valid_code(a) || !valid_code(b) || a.len() != 3 || b.len() != 3 || a > b {
                return Err(format!(
                    "category '{}': '{}' is not a range of three-character ICD-10 codes",
                    c.id, r.range
                ));
            }
        }
    }

    let mut labs = Vec::new();
    let mut lab_ids = BTreeMap::new();
    for (i, l) in raw.labs.iter().enumerate() {
        if lab_ids.insert(l.id.as_str(), i).is_some() {
            return Err(format!("lab '{}' appears twice", l.id));
        }
        if l.decimals > 3 {
            return Err(format!("lab '{}': more than 3 decimals", l.id));
        }
        let what = |f: &str| format!("lab '{}' {f}", l.id);
        let lab = Lab {
            id: l.id.clone(),
            name: l.name.clone(),
            unit: l.unit.clone(),
            decimals: l.decimals,
            low: scaled(l.low, l.decimals, &what("low"))?,
            high: scaled(l.high, l.decimals, &what("high"))?,
            min: scaled(l.min, l.decimals, &what("min"))?,
            max: scaled(l.max, l.decimals, &what("max"))?,
        };
        // Room for normal values and for wrong values to differ from the true one.
        if !(lab.min <= lab.low && lab.low < lab.high && lab.high <= lab.max)
            || lab.max - lab.min < 10
        {
            return Err(format!(
                "lab '{}': needs min <= low < high <= max and a span of at least 10 steps",
                l.id
            ));
        }
        if lab.name.trim().is_empty() {
            return Err(format!("lab '{}' has no name", l.id));
        }
        labs.push(lab);
    }
    let names: BTreeSet<&str> = labs.iter().map(|l| l.name.as_str()).collect();
    if names.len() != labs.len() {
        return Err("two labs share a display name".into());
    }

    let mut diseases = Vec::new();
    let mut codes = BTreeSet::new();
    let mut disease_names = BTreeSet::new();
    for d in &raw.diseases {
        let at = |m: String| format!("disease '{}' ({}): {m}", d.name, d.code);
        if !codes.insert(d.code.as_str()) || !disease_names.insert(d.name.as_str()) {
            return Err(at("code or name appears twice".into()));
        }
        if !valid_code(&d.code) {
            return Err(at("the code is not an ICD-10 code".into()));
        }
        let &category = category_ids
            .get(d.category.as_str())
            .ok_or_else(|| at(format!("unknown category '{}'", d.category)))?;
        let three = &d.code[..3];
        for (i, c) in raw.categories.iter().enumerate() {
            let inside = c.icd.iter().any(|r| r.contains(three));
            if inside != (i == category) {
                return Err(at(format!(
                    "{three} lies {} the ranges of category '{}'",
                    if inside { "in" } else { "outside" },
                    c.id
                )));
            }
        }
        check_list(&d.symptoms, 2, &at("symptoms".into()))?;
        check_list(&d.drugs, 2, &at("drugs".into()))?;
        check_list(&d.procedures, 1, &at("procedures".into()))?;
        if d.specialty.trim().is_empty() || d.icd_title.trim().is_empty() {
            return Err(at("empty specialty or ICD title".into()));
        }
        let mut effects = Vec::new();
        for (lab, dir) in &d.labs {
            let &i = lab_ids
                .get(lab.as_str())
                .ok_or_else(|| at(format!("unknown lab '{lab}'")))?;
            effects.push((i, *dir));
        }
        effects.sort_by_key(|(i, _)| *i);
        if labs.len() < effects.len() + 2 {
            return Err(at("too few labs left to be normal".into()));
        }
        let ages = match d.ages {
            Some([lo, hi]) if lo <= hi && hi <= 110 => (lo, hi),
            Some([lo, hi]) => return Err(at(format!("ages {lo}-{hi} are not a range"))),
            None => ADULT_AGES,
        };
        diseases.push(Disease {
            name: d.name.clone(),
            code: d.code.clone(),
            icd_title: d.icd_title.clone(),
            category,
            specialty: d.specialty.clone(),
            symptoms: d.symptoms.clone(),
            drugs: d.drugs.clone(),
            labs: effects,
            procedures: d.procedures.clone(),
            sex: d.sex,
            ages,
        });
    }
    for (i, c) in raw.categories.iter().enumerate() {
        if !diseases.iter().any(|d| d.category == i) {
            return Err(format!("category '{}' has no disease", c.id));
        }
    }
    Ok(Vocabulary {
        categories: raw.categories,
        labs,
        diseases,
    })
}

impl Vocabulary {
    /// The category with this id, or with this name (any case).
    pub fn category(&self, key: &str) -> Option<usize> {
        let key = key.trim();
        self.categories
            .iter()
            .position(|c| c.id == key || c.name.eq_ignore_ascii_case(key))
    }
}
