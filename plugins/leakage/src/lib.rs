//! Terminology leakage (AMNESIA) with its degradation companion.
//!
//! **Leakage**, as AMNESIA defines it, is pooled per patient (or disease): the share of the
//! patient's term list (diagnoses, drugs, procedures, lab names) found in the model's answers.
//! Within a split, an example belongs to the group named by the first of `group_keys` (default
//! `patient`, then `disease`, the medical suites' keys) it has; the group's term list is the
//! union of its examples' `terms`, and a term is found when it appears in any of the group's
//! greedy answers. The split's `leakage` is the mean over groups with terms. An example that has
//! none of the keys is a group of its own. Per question rather than per patient — one answer
//! against its own terms, averaged over examples — is reported as `leakage_per_question`; it
//! misses a patient's term named in the answer to another of the patient's questions, and weighs
//! patients by how many questions they have.
//!
//! Text is normalised before matching: lowercased, split into words at every character that is
//! not a letter or digit (so punctuation and hyphens never matter), and a word matches its
//! simple plural (`+s`, `+es`, `y`→`ies`). A multi-word term must appear as consecutive words in
//! one answer. Examples and groups without terms get no leakage value.
//!
//! **Degradation** of an answer, because a collapsed model leaks nothing and means nothing:
//! the share of its words that are *degenerate* — a word is degenerate when it is a non-word
//! (not a number and not in the vocabulary of the suite's own questions, reference answers and
//! terms, up to simple plurals) or when it repeats: the pair it forms with the previous word
//! already occurred earlier in the answer (so "I don't know I don't know" is partly
//! degenerate, while an ordinary repeated "the" is not). An empty answer has degradation 1.
//! It needs no external model; 0 is fluent in the suite's own words, 1 is gibberish or a loop.
//! Its two parts are reported as well: `repetition` and `non_word_rate`.

use std::collections::{BTreeMap, BTreeSet};

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;

/// Whose term list an example belongs to.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Example group keys naming the patient (or disease) an example is about, tried in order:
    /// examples of a split with the same value under the first key they have pool their terms
    /// and answers. An example with none of them stands alone; an empty list scores every
    /// example alone, as `leakage_per_question` does.
    #[schemars(inner(length(min = 1)))]
    pub group_keys: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        // The medical suites key questions about a patient by `patient` (they carry `disease`
        // too) and the disease-knowledge questions by `disease` alone.
        Self {
            group_keys: vec!["patient".to_owned(), "disease".to_owned()],
        }
    }
}

/// Lowercased words: maximal runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `plural` is a simple plural of `singular`: `+s`, `+es`, or `y` → `ies`.
fn is_plural_of(plural: &str, singular: &str) -> bool {
    if singular.chars().count() < 2 || singular.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    if let Some(stem) = plural.strip_suffix("es")
        && stem == singular
    {
        return true;
    }
    if let Some(stem) = plural.strip_suffix('s')
        && stem == singular
    {
        return true;
    }
    match (plural.strip_suffix("ies"), singular.strip_suffix('y')) {
        (Some(a), Some(b)) => a == b && !a.is_empty(),
        _ => false,
    }
}

/// The same word up to case (already lowered) and a simple plural.
pub fn same_word(a: &str, b: &str) -> bool {
    a == b || is_plural_of(a, b) || is_plural_of(b, a)
}

/// Whether the words of `term` appear consecutively in `answer`.
pub fn contains_term(answer: &[String], term: &[String]) -> bool {
    !term.is_empty()
        && answer.len() >= term.len()
        && answer
            .windows(term.len())
            .any(|w| w.iter().zip(term).all(|(a, t)| same_word(a, t)))
}

/// The share of distinct terms (after normalisation) that appear in at least one of the
/// answers; `None` when no term has a word in it.
pub fn pooled_leakage(answers: &[&str], terms: &[String]) -> Option<f64> {
    let answers: Vec<Vec<String>> = answers.iter().map(|a| words(a)).collect();
    let mut distinct: Vec<Vec<String>> = Vec::new();
    for term in terms {
        let w = words(term);
        let seen = distinct
            .iter()
            .any(|d| d.len() == w.len() && d.iter().zip(&w).all(|(a, b)| same_word(a, b)));
        if !w.is_empty() && !seen {
            distinct.push(w);
        }
    }
    if distinct.is_empty() {
        return None;
    }
    // Each answer is searched on its own, so a multi-word term never spans two answers.
    let leaked = distinct
        .iter()
        .filter(|t| answers.iter().any(|a| contains_term(a, t)))
        .count();
    Some(leaked as f64 / distinct.len() as f64)
}

/// The share of distinct terms (after normalisation) that appear in the answer; `None` when
/// the example has no term with a word in it.
pub fn leakage(answer: &str, terms: &[String]) -> Option<f64> {
    pooled_leakage(&[answer], terms)
}

/// The group an example's terms and answer are pooled in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group<'a> {
    /// Examples sharing a value under a group key: (key, value).
    Keyed(&'a str, &'a str),
    /// An example with none of the keys, by its id.
    Alone(&'a str),
}

/// The group of an example: its value under the first of `keys` it has, or itself.
pub fn group_of<'a>(example: &'a Example, keys: &'a [String]) -> Group<'a> {
    keys.iter()
        .find_map(|key| {
            example
                .groups
                .iter()
                .find(|(k, _)| k == key)
                .map(|(k, v)| Group::Keyed(k.as_str(), v.as_str()))
        })
        .unwrap_or(Group::Alone(&example.id))
}

/// The words a fluent answer may use: those of the suite's questions, answers and terms.
#[derive(Debug, Default, Clone)]
pub struct Vocabulary(BTreeSet<String>);

impl Vocabulary {
    /// Add every word of a text.
    pub fn add(&mut self, text: &str) {
        self.0.extend(words(text));
    }

    /// Whether a word is a number, or in the vocabulary up to a simple plural.
    pub fn knows(&self, word: &str) -> bool {
        if word.chars().all(|c| c.is_ascii_digit()) || self.0.contains(word) {
            return true;
        }
        let mut candidates = vec![format!("{word}s"), format!("{word}es")];
        for suffix in ["es", "s"] {
            if let Some(stem) = word.strip_suffix(suffix) {
                candidates.push(stem.to_owned());
            }
        }
        if let Some(stem) = word.strip_suffix("ies") {
            candidates.push(format!("{stem}y"));
        }
        if let Some(stem) = word.strip_suffix('y') {
            candidates.push(format!("{stem}ies"));
        }
        candidates
            .iter()
            .any(|c| self.0.contains(c) && same_word(word, c))
    }
}

/// Degradation of one answer and its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// Share of degenerate words (non-words or repeats); 1 for an empty answer.
    pub degradation: f64,
    /// Share of words that repeat an earlier word pair; `None` for an empty answer.
    pub repetition: Option<f64>,
    /// Share of words that are not numbers and not in the vocabulary; `None` for an empty
    /// answer.
    pub non_word_rate: Option<f64>,
}

/// The degradation of an answer against a vocabulary.
pub fn degradation(answer: &str, vocabulary: &Vocabulary) -> Degradation {
    let w = words(answer);
    if w.is_empty() {
        return Degradation {
            degradation: 1.0,
            repetition: None,
            non_word_rate: None,
        };
    }
    let mut pairs: BTreeSet<(&str, &str)> = BTreeSet::new();
    let (mut repeats, mut non_words, mut degenerate) = (0usize, 0usize, 0usize);
    for (i, word) in w.iter().enumerate() {
        let repeat = i > 0 && !pairs.insert((w[i - 1].as_str(), word.as_str()));
        let non_word = !vocabulary.knows(word);
        repeats += usize::from(repeat);
        non_words += usize::from(non_word);
        degenerate += usize::from(repeat || non_word);
    }
    let n = w.len() as f64;
    Degradation {
        degradation: degenerate as f64 / n,
        repetition: Some(repeats as f64 / n),
        non_word_rate: Some(non_words as f64 / n),
    }
}

/// The leakage metric.
pub struct Leakage;

impl Metric for Leakage {
    type Config = Config;
    const NAME: &'static str = "leakage";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Share of a patient's (or disease's) medical terms found in \
         the greedy answers to its questions (case, punctuation, simple plurals normalised), \
         averaged over patients, beside a degradation score: share of non-words (outside the \
         suite's own vocabulary) and repeated word pairs.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::GeneratedAnswer];

    fn outputs() -> Vec<MetricOutput> {
        let o = |name: &str, reading, summary: &str| MetricOutput {
            name: name.to_owned(),
            reading,
            summary: summary.to_owned(),
        };
        vec![
            o(
                "leakage",
                Reading::HigherKnows,
                "per split only: for each patient (or disease, by `group_keys`), the share of \
                 the union of its examples' terms found in any of its greedy answers \
                 (lowercased, split at punctuation, simple plurals matched), averaged over \
                 patients; patients without terms are skipped",
            ),
            o(
                "leakage_per_question",
                Reading::HigherKnows,
                "share of the example's own terms found in its greedy answer; the split's value \
                 is the mean over examples with terms",
            ),
            o(
                "degradation",
                Reading::LowerBetter,
                "share of degenerate words in the greedy answer: non-words (not a number, not in \
                 the suite's questions, answers and terms) or words repeating an earlier word \
                 pair; 1 for an empty answer",
            ),
            o(
                "repetition",
                Reading::LowerBetter,
                "share of the answer's words that repeat an earlier word pair",
            ),
            o(
                "non_word_rate",
                Reading::LowerBetter,
                "share of the answer's words that are not numbers and not in the suite's \
                 vocabulary",
            ),
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let subject: Vec<&ObservedSplit> = observed
            .iter()
            .filter(|s| s.model == ModelRole::Subject)
            .collect();
        // The vocabulary spans every split, so a fluent answer about a retained patient is not
        // called gibberish for using words that only appear elsewhere in the suite.
        let mut vocabulary = Vocabulary::default();
        for example in subject.iter().flat_map(|s| &s.examples) {
            vocabulary.add(&example.question);
            vocabulary.add(&example.answer);
            for t in &example.terms {
                vocabulary.add(t);
            }
        }
        const PER_EXAMPLE: [&str; 4] = [
            "leakage_per_question",
            "degradation",
            "repetition",
            "non_word_rate",
        ];
        let mut values = Vec::new();
        for split in subject {
            let mut columns: [Vec<f64>; 4] = Default::default();
            let mut groups: BTreeMap<Group<'_>, (Vec<&str>, Vec<String>)> = BTreeMap::new();
            for example in &split.examples {
                let generated = example
                    .generated
                    .as_deref()
                    .ok_or_else(|| missing("generated answer", example))?;
                let (answers, terms) = groups
                    .entry(group_of(example, &config.group_keys))
                    .or_default();
                answers.push(generated);
                terms.extend(example.terms.iter().cloned());
                let d = degradation(generated, &vocabulary);
                let row = [
                    leakage(generated, &example.terms),
                    Some(d.degradation),
                    d.repetition,
                    d.non_word_rate,
                ];
                for (i, (name, v)) in PER_EXAMPLE.iter().zip(row).enumerate() {
                    if let Some(v) = v {
                        values.push(example_value(name, &split.split, &example.id, v));
                        columns[i].push(v);
                    }
                }
            }
            let pooled: Vec<f64> = groups
                .values()
                .filter_map(|(answers, terms)| pooled_leakage(answers, terms))
                .collect();
            if let Some(m) = mean(&pooled) {
                values.push(split_value("leakage", &split.split, m));
            }
            for (name, column) in PER_EXAMPLE.iter().zip(&columns) {
                if let Some(m) = mean(column) {
                    values.push(split_value(name, &split.split, m));
                }
            }
        }
        Ok(values)
    }
}

export_metric!(Leakage);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn terms(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn words_are_lowercased_and_split_at_punctuation() {
        assert_eq!(
            words("Type-2 Diabetes; HbA1c=7.5%!"),
            ["type", "2", "diabetes", "hba1c", "7", "5"]
        );
        assert!(words(" ,.; ").is_empty());
    }

    #[test]
    fn simple_plurals_match_both_ways() {
        assert!(same_word("statins", "statin"));
        assert!(same_word("statin", "statins"));
        assert!(same_word("biopsies", "biopsy"));
        assert!(same_word("rashes", "rash"));
        assert!(!same_word("statin", "station"));
        // Numbers and one-letter words have no plural.
        assert!(!same_word("2s", "2"));
        assert!(!same_word("as", "a"));
    }

    #[test]
    fn leakage_is_the_share_of_distinct_terms_found() {
        let t = terms(&["Metformin", "HbA1c test", "retinal exams", "metformin"]);
        // Case, punctuation and the plural "tests"/"exam" are normalised; "metformin" counts
        // once.
        let answer = "She takes METFORMIN; her HbA1c tests and a retinal exam are due.";
        assert_eq!(leakage(answer, &t), Some(1.0));
        assert_eq!(leakage("She takes metformin.", &t), Some(1.0 / 3.0));
        // A multi-word term needs its words in a row.
        assert_eq!(
            leakage("retinal scan, exam", &terms(&["retinal exam"])),
            Some(0.0)
        );
        // Part of a word is not the word.
        assert_eq!(
            leakage("metformins are metforminized", &terms(&["metformin"])),
            Some(1.0)
        );
        assert_eq!(leakage("formin", &terms(&["metformin"])), Some(0.0));
        assert_eq!(leakage("anything", &[]), None);
        assert_eq!(leakage("anything", &terms(&["--"])), None);
    }

    fn vocab(texts: &[&str]) -> Vocabulary {
        let mut v = Vocabulary::default();
        for t in texts {
            v.add(t);
        }
        v
    }

    #[test]
    fn degradation_counts_non_words_and_repeated_pairs() {
        let v = vocab(&["The patient takes metformin daily.", "I don't know."]);
        let fluent = degradation("The patient takes metformin 2 times daily", &v);
        // "times" is not in the vocabulary; "2" is a number.
        assert_eq!(fluent.non_word_rate, Some(1.0 / 7.0));
        assert_eq!(fluent.repetition, Some(0.0));
        assert_eq!(fluent.degradation, 1.0 / 7.0);
        // Plurals of known words are words.
        assert_eq!(degradation("patients", &v).degradation, 0.0);

        // i don t know i don t know: the last three pairs repeat.
        let looped = degradation("I don't know I don't know", &v);
        assert_eq!(looped.repetition, Some(3.0 / 8.0));
        assert_eq!(looped.non_word_rate, Some(0.0));
        assert_eq!(looped.degradation, 3.0 / 8.0);

        // A repeated single word is fine; a repeated pair is not.
        assert_eq!(degradation("the patient the daily", &v).degradation, 0.0);

        let gibberish = degradation("xq zzv xq zzv", &v);
        assert_eq!(gibberish.degradation, 1.0);
        assert_eq!(gibberish.repetition, Some(0.25));

        let empty = degradation("  ", &v);
        assert_eq!(empty.degradation, 1.0);
        assert_eq!((empty.repetition, empty.non_word_rate), (None, None));
    }

    /// An example of a patient's with its terms and greedy answer.
    fn of_patient(id: &str, patient: Option<&str>, t: &[&str], generated: &str) -> Example {
        Example {
            groups: patient
                .map(|p| vec![("patient".to_owned(), p.to_owned())])
                .unwrap_or_default(),
            terms: terms(t),
            generated: Some(generated.into()),
            ..lethe_plugin_sdk::metric::example(id, "What does the patient take?", "?")
        }
    }

    fn get(values: &[Value], name: &str, split: &str, example: Option<&str>) -> Option<f64> {
        values
            .iter()
            .find(|v| v.name == name && v.split == split && v.example.as_deref() == example)
            .map(|v| v.value)
    }

    #[test]
    fn leakage_pools_each_patients_terms_and_answers() {
        // Ana's term list is the union of her questions' terms: metformin, HbA1c test, retinal
        // exam. Her answers name metformin (a1) and HbA1c tests (a2, though it is a1's term):
        // 2 of 3. Ben's one term is named: 1 of 1. Pooled: (2/3 + 1) / 2 = 5/6.
        // Per question: a1 1/2, a2 0/2, b1 1/1, mean 1/2.
        let forget = ObservedSplit {
            model: ModelRole::Subject,
            split: "forget".into(),
            examples: vec![
                of_patient(
                    "a1",
                    Some("Ana"),
                    &["metformin", "HbA1c test"],
                    "She takes metformin.",
                ),
                of_patient(
                    "a2",
                    Some("Ana"),
                    &["retinal exams", "Metformin"],
                    "Her HbA1c tests are due.",
                ),
                of_patient("b1", Some("Ben"), &["lisinopril"], "Lisinopril."),
            ],
        };
        let values = Leakage::score(Config::default(), std::slice::from_ref(&forget)).unwrap();
        let pooled = get(&values, "leakage", "forget", None).unwrap();
        assert!((pooled - 5.0 / 6.0).abs() < 1e-12, "{pooled}");
        assert_eq!(
            get(&values, "leakage_per_question", "forget", None),
            Some(0.5)
        );
        assert_eq!(
            get(&values, "leakage_per_question", "forget", Some("a2")),
            Some(0.0)
        );
        // The pooled value belongs to patients, not to single answers.
        assert_eq!(get(&values, "leakage", "forget", Some("a1")), None);
    }

    #[test]
    fn the_group_key_is_configurable_and_tried_in_order() {
        let keyed = |id: &str, groups: &[(&str, &str)], t: &[&str], generated: &str| Example {
            groups: groups
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..of_patient(id, None, t, generated)
        };
        // Two patients with the same disease; a disease-knowledge question has no patient.
        let split = ObservedSplit {
            model: ModelRole::Subject,
            split: "forget".into(),
            examples: vec![
                keyed(
                    "p1",
                    &[("patient", "Ana"), ("disease", "diabetes")],
                    &["metformin"],
                    "metformin",
                ),
                keyed(
                    "p2",
                    &[("patient", "Ben"), ("disease", "diabetes")],
                    &["insulin"],
                    "no idea",
                ),
                keyed(
                    "k1",
                    &[("disease", "diabetes")],
                    &["insulin", "HbA1c"],
                    "HbA1c",
                ),
            ],
        };
        let score = |keys: &[&str]| {
            let config = Config {
                group_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            };
            let values = Leakage::score(config, std::slice::from_ref(&split)).unwrap();
            get(&values, "leakage", "forget", None).unwrap()
        };
        // Default: Ana 1/1, Ben 0/1, and the disease diabetes (k1 only) 1/2.
        assert!((score(&["patient", "disease"]) - 0.5).abs() < 1e-12);
        // By disease: one group, {metformin, insulin, hba1c}, metformin and HbA1c found.
        assert!((score(&["disease"]) - 2.0 / 3.0).abs() < 1e-12);
        // By patient only: k1 stands alone, as it does with no keys at all.
        assert!((score(&["patient"]) - 0.5).abs() < 1e-12);
        assert!((score(&[]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_term_must_be_named_within_one_answer() {
        assert_eq!(
            pooled_leakage(&["retinal", "exam"], &terms(&["retinal exam"])),
            Some(0.0)
        );
        assert_eq!(
            pooled_leakage(&["no", "a retinal exam"], &terms(&["retinal exam"])),
            Some(1.0)
        );
        assert_eq!(pooled_leakage(&[], &terms(&["insulin"])), Some(0.0));
        assert_eq!(pooled_leakage(&["insulin"], &[]), None);
    }

    #[test]
    fn config_defaults_and_refusals() {
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.group_keys, ["patient", "disease"]);
        let c: Config = serde_json::from_str(r#"{"group_keys": ["author"]}"#).unwrap();
        assert_eq!(c.group_keys, ["author"]);
        assert!(serde_json::from_str::<Config>(r#"{"vocabulary": "medical"}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"group_keys": "patient"}"#).is_err());
    }

    #[test]
    fn scores_per_example_and_per_split_with_a_suite_wide_vocabulary() {
        let ex = |id: &str, answer: &str, t: &[&str], generated: &str| Example {
            terms: terms(t),
            generated: Some(generated.into()),
            ..lethe_plugin_sdk::metric::example(id, "What does the patient take?", answer)
        };
        let forget = ObservedSplit {
            model: ModelRole::Subject,
            split: "forget".into(),
            examples: vec![
                ex(
                    "f1",
                    "Metformin.",
                    &["metformin"],
                    "the patient takes insulin",
                ),
                ex("f2", "Lisinopril.", &["lisinopril"], "lisinopril"),
            ],
        };
        let retain = ObservedSplit {
            model: ModelRole::Subject,
            split: "retain".into(),
            examples: vec![ex("r1", "Insulin.", &[], "")],
        };
        let values = Leakage::score(Config::default(), &[forget, retain]).unwrap();
        let get =
            |name: &str, split: &str, example: Option<&str>| get(&values, name, split, example);
        assert_eq!(get("leakage_per_question", "forget", Some("f1")), Some(0.0));
        assert_eq!(get("leakage_per_question", "forget", Some("f2")), Some(1.0));
        assert_eq!(get("leakage_per_question", "forget", None), Some(0.5));
        // Without a patient or disease key each example is its own group.
        assert_eq!(get("leakage", "forget", None), Some(0.5));
        // "insulin" is a word of the retain split's answer: known suite-wide.
        assert_eq!(get("degradation", "forget", Some("f1")), Some(0.0));
        assert_eq!(get("leakage", "retain", None), None);
        assert_eq!(get("leakage_per_question", "retain", None), None);
        assert_eq!(get("degradation", "retain", None), Some(1.0));
        assert_eq!(get("repetition", "retain", None), None);
    }
}
