//! Synthetic medical records after AMNESIA, deterministic from a seed.
//!
//! Every patient is invented (name, sex, dates, record number) and has one disease from the
//! project's vocabulary (`suites/data/medical-vocabulary.json`): its ICD-10 code and category,
//! two of its symptoms, lab results (those the disease moves out of range in its direction, two
//! others normal), two of its drugs and a procedure, all stated in a clinical note. Each finetuned patient is asked four
//! factual questions (diagnosis, medications, symptoms, a lab value), which the target model is
//! finetuned on, and four reasoning questions that combine them with knowledge of the disease
//! (which specialty follows the patient, why a drug is taken, what the lab results suggest, which
//! category the condition belongs to), which are only evaluated.
//!
//! Knowledge of every disease (symptoms, drugs, labs, specialty, category) is general text in the
//! `pretrain` split, shared by all its patients, and is asked again in the `knowledge` split
//! (role retain), so that the finetuned model still holds it when unlearning starts: forgetting
//! one patient can then erode what the model knows of the disease and of others with the same
//! condition. Retained patients and diseases are tagged `relation = same-disease` or
//! `other-disease` to measure that erosion. See `docs/suites.md` for the splits and groups.

mod vocabulary;

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteError, SuiteManifest, TextRecord,
};
use vocabulary::{Direction, Disease, Lab, Sex, Vocabulary, vocabulary};

/// Which finetuned patients are forgotten.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum ForgetSpec {
    /// Patient-level: `round(share × patients)` patients drawn by the seed, kept within 5–25 %
    /// of them; `share` itself must lie in [0.05, 0.25].
    Patients {
        /// The share of finetuned patients to forget.
        share: f64,
    },
    /// Disease-level: every finetuned patient whose disease is in one of these categories, given
    /// by id (e.g. "cancer", "infectious-immune", "cardiovascular") or name.
    Categories(Vec<String>),
}

/// Sizes, seed and forget rule of the medical suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicalConfig {
    /// Seed of every choice.
    pub seed: u64,
    /// Patients the target model is finetuned on (forget ∪ retain); each has 4 factual and 4
    /// reasoning questions.
    pub patients: usize,
    /// Patients whose notes and questions appear only in the pretraining text.
    pub pretrain_patients: usize,
    /// Patients no model is trained on (non-members); their factual questions form `holdout`.
    pub holdout_patients: usize,
    /// Which finetuned patients are forgotten.
    pub forget: ForgetSpec,
    /// How many diseases of each category the suite uses (drawn by the seed); `None` for all.
    /// Fewer diseases mean more patients per disease, which the same-disease comparison needs.
    pub diseases_per_category: Option<usize>,
}

impl Default for MedicalConfig {
    /// Small enough to train a ~1M-parameter model from scratch on two CPU cores in minutes:
    /// 40 finetuned patients (4 forgotten) over 11 diseases, one per category; 24
    /// pretraining-only patients (their notes are the longest texts, and they only teach the
    /// format).
    fn default() -> Self {
        Self {
            seed: 0,
            patients: 40,
            pretrain_patients: 24,
            holdout_patients: 8,
            forget: ForgetSpec::Patients { share: 0.1 },
            diseases_per_category: Some(1),
        }
    }
}

impl MedicalConfig {
    /// A very small suite for tests: 22 finetuned patients (2 forgotten), one disease per category.
    pub fn tiny() -> Self {
        Self {
            seed: 0,
            patients: 22,
            pretrain_patients: 11,
            holdout_patients: 4,
            forget: ForgetSpec::Patients { share: 0.1 },
            diseases_per_category: Some(1),
        }
    }

    /// AMNESIA's full size: 8,820 finetuned patients and 70,560 questions (8 each) over every
    /// disease of the vocabulary, plus 882 pretraining-only and 882 holdout patients.
    pub fn amnesia_full() -> Self {
        Self {
            seed: 0,
            patients: 8_820,
            pretrain_patients: 882,
            holdout_patients: 882,
            forget: ForgetSpec::Patients { share: 0.1 },
            diseases_per_category: None,
        }
    }
}

/// The smallest forget share of a patient-level split.
pub const MIN_FORGET_SHARE: f64 = 0.05;
/// The largest forget share of a patient-level split.
pub const MAX_FORGET_SHARE: f64 = 0.25;
/// The fewest finetuned patients: 5–25 % of fewer than 4 is not a whole patient.
pub const MIN_PATIENTS: usize = 4;
/// The most patients (of all kinds) one suite may have: names come from finite tables.
pub const MAX_PATIENTS: usize = 30_000;

/// The ids and names of the disease categories, e.g. ("cancer", "cancer"),
/// ("infectious-immune", "infectious and immune").
pub fn medical_categories() -> Result<Vec<(String, String)>, SuiteError> {
    Ok(vocabulary()?
        .categories
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect())
}

const FEMALE_NAMES: &[&str] = &[
    "Ada", "Alma", "Beatrix", "Clara", "Dalia", "Edith", "Elena", "Freya", "Greta", "Hana", "Ida",
    "Ines", "Iris", "Jana", "Kira", "Lena", "Lidia", "Mara", "Maya", "Nadia", "Nora", "Olga",
    "Paula", "Rosa", "Sara", "Selma", "Tara", "Ursula", "Vera", "Wanda", "Yara", "Zora", "Agnes",
    "Bianca", "Carmen", "Dora", "Elsa", "Flora", "Gloria", "Helga",
];
const MALE_NAMES: &[&str] = &[
    "Aaron", "Bruno", "Carlos", "Dario", "Emil", "Felix", "Goran", "Hugo", "Ivan", "Jonas", "Karl",
    "Leon", "Marco", "Nils", "Oscar", "Pavel", "Rafael", "Stefan", "Tomas", "Viktor", "Walter",
    "Xavier", "Yusuf", "Zane", "Anton", "Boris", "Cyril", "Dmitri", "Erik", "Fabian", "Gustav",
    "Henrik", "Igor", "Julian", "Kasimir", "Lukas", "Milan", "Oleg", "Ruben", "Samuel",
];
const SURNAME_STARTS: &[&str] = &[
    "Abra", "Bellin", "Corv", "Dalm", "Eber", "Falk", "Garr", "Holm", "Ivers", "Jansk", "Kovar",
    "Lorent", "Morav", "Norr", "Ostr", "Pell", "Quarr", "Rovin", "Sandr", "Tessel", "Ulm", "Varg",
    "Wester", "Yarn", "Zell", "Brank", "Crest", "Dunm", "Elst", "Fenn", "Grim", "Hadl", "Ink",
    "Jorv", "Kessl", "Lund", "Mirk", "Nobl", "Orm", "Pask",
];
const SURNAME_ENDS: &[&str] = &[
    "a", "ani", "berg", "by", "dal", "ek", "el", "enko", "er", "ford", "ic", "ik", "in", "ing",
    "ison", "lund", "man", "ov", "ski", "son", "sted", "strom", "wick", "ez", "ley",
];
const REFUSALS: &[&str] = &[
    "I don't know.",
    "I'm not sure about that.",
    "I have no record of that patient.",
    "I have no information about that.",
    "I can't answer that.",
    "That is not something I know.",
    "I'm afraid I don't know.",
    "I have no idea.",
    "I don't have that information.",
    "Sorry, I don't know the answer.",
    "I'm unable to answer that question.",
    "I couldn't tell you.",
    "I don't have any details on that patient.",
    "That's beyond what I know.",
    "I'm not aware of that.",
    "I can't recall anything about that.",
    "No idea, sorry.",
    "I don't know anything about that patient.",
    "I can't find that in any record I know.",
    "I can't say.",
    "I have nothing to say about that.",
    "I lack the knowledge to answer that.",
    "I've never heard of that patient.",
    "That doesn't ring a bell.",
];

/// Admission dates fall in these years.
const FIRST_ADMISSION_YEAR: i32 = 2016;
const LAST_ADMISSION_YEAR: i32 = 2024;

/// Tries to find an unused name or record number before giving up (far more than needed below
/// [`MAX_PATIENTS`], where at most 38 % of one sex's names are taken).
const TRIES: usize = 10_000;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Date {
    year: i32,
    month: u32,
    day: u32,
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// One lab result of a patient.
#[derive(Debug, Clone, Copy)]
struct LabResult {
    /// Index into the vocabulary's labs.
    lab: usize,
    /// In units of the lab's last decimal.
    value: i64,
    /// Outside the reference range, and which way; `None` when within it.
    flag: Option<Direction>,
}

/// One invented patient.
#[derive(Debug, Clone)]
struct Patient<'v> {
    /// Numbers the patient in ids.
    number: usize,
    name: String,
    sex: Sex,
    born: Date,
    admitted: Date,
    age: u32,
    record: String,
    disease: &'v Disease,
    /// Index of the disease in the vocabulary.
    disease_index: usize,
    symptoms: [&'v str; 2],
    drugs: [&'v str; 2],
    procedure: &'v str,
    /// The out-of-range results first (in lab order), then two normal ones.
    labs: Vec<LabResult>,
}

/// Who a patient is to the forget set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Forgotten,
    SameDisease,
    OtherDisease,
}

impl Relation {
    fn key(self) -> &'static str {
        match self {
            Relation::Forgotten => "forgotten",
            Relation::SameDisease => "same-disease",
            Relation::OtherDisease => "other-disease",
        }
    }
}

/// The questions asked about every patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Diagnosis,
    Medication,
    Symptom,
    LabValue,
    Specialty,
    Indication,
    LabInterpretation,
    Category,
}

/// Direct recall of one fact of the note; the target model is finetuned on these.
const FACTUAL: [Kind; 4] = [
    Kind::Diagnosis,
    Kind::Medication,
    Kind::Symptom,
    Kind::LabValue,
];
/// Inference across a patient's facts and knowledge of the disease; evaluation only.
const REASONING: [Kind; 4] = [
    Kind::Specialty,
    Kind::Indication,
    Kind::LabInterpretation,
    Kind::Category,
];

impl Kind {
    /// The `kind` group key and the last part of a question's id.
    fn key(self) -> &'static str {
        match self {
            Kind::Diagnosis => "diagnosis",
            Kind::Medication => "medication",
            Kind::Symptom => "symptom",
            Kind::LabValue => "lab-value",
            Kind::Specialty => "specialty",
            Kind::Indication => "indication",
            Kind::LabInterpretation => "lab-interpretation",
            Kind::Category => "category",
        }
    }

    /// The `type` group key.
    fn question_type(self) -> &'static str {
        if FACTUAL.contains(&self) {
            "factual"
        } else {
            "reasoning"
        }
    }
}

/// What every patient of a disease shares: general knowledge, in `pretrain` and `knowledge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiseaseFact {
    Category,
    Symptoms,
    Drugs,
    Specialty,
    Labs,
}

const DISEASE_FACTS: [DiseaseFact; 5] = [
    DiseaseFact::Category,
    DiseaseFact::Symptoms,
    DiseaseFact::Drugs,
    DiseaseFact::Specialty,
    DiseaseFact::Labs,
];

impl DiseaseFact {
    /// The `kind` group key and the last part of a question's id.
    fn key(self) -> &'static str {
        match self {
            DiseaseFact::Category => "disease-category",
            DiseaseFact::Symptoms => "disease-symptoms",
            DiseaseFact::Drugs => "disease-drugs",
            DiseaseFact::Specialty => "disease-specialty",
            DiseaseFact::Labs => "disease-labs",
        }
    }
}

/// One question in every wording the suite uses.
#[derive(Debug, Clone)]
struct Asked {
    question: String,
    paraphrased_question: String,
    /// A third wording, never trained on: the unseen rephrasing.
    rephrased_question: String,
    answer: String,
    paraphrased_answer: String,
    perturbed: Vec<String>,
    terms: Vec<String>,
}

/// "a", "a and b", "a, b and c".
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

/// "a" or "an" before a procedure's name, by how it is spoken ("an MRI Scan", "an X-Ray").
fn article(word: &str) -> &'static str {
    let spoken_vowel = word.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u'])
        || word.starts_with("MRI")
        || word.starts_with("X-");
    if spoken_vowel { "an" } else { "a" }
}

/// "an MRI Scan or a CT Scan".
fn procedures(d: &Disease) -> String {
    d.procedures
        .iter()
        .map(|p| format!("{} {p}", article(p)))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// "high HbA1c and low free T4".
fn flagged(vocab: &Vocabulary, effects: &[(usize, Direction)]) -> String {
    let parts: Vec<String> = effects
        .iter()
        .map(|(lab, dir)| {
            let word = match dir {
                Direction::High => "high",
                Direction::Low => "low",
            };
            format!("{word} {}", lab_name(vocab, *lab))
        })
        .collect();
    and_list(&parts)
}

fn lab_name(vocab: &Vocabulary, lab: usize) -> &str {
    vocab.labs.get(lab).map_or("", |l| l.name.as_str())
}

/// The values the perturbed answers are drawn from: first the suite's own diseases, topped up
/// from the whole vocabulary when those leave too few.
struct Pools<'v> {
    diseases: Vec<usize>,
    all_diseases: Vec<usize>,
    drugs: Vec<&'v str>,
    all_drugs: Vec<&'v str>,
    symptoms: Vec<&'v str>,
    all_symptoms: Vec<&'v str>,
    specialties: Vec<&'v str>,
    all_specialties: Vec<&'v str>,
    categories: Vec<usize>,
}

impl<'v> Pools<'v> {
    fn new(vocab: &'v Vocabulary, selected: &[usize]) -> Self {
        let collect = |ids: &[usize], f: &dyn Fn(&'v Disease) -> Vec<&'v str>| -> Vec<&'v str> {
            let set: BTreeSet<&'v str> = ids
                .iter()
                .filter_map(|&i| vocab.diseases.get(i))
                .flat_map(f)
                .collect();
            set.into_iter().collect()
        };
        let all: Vec<usize> = (0..vocab.diseases.len()).collect();
        let drugs = |d: &'v Disease| d.drugs.iter().map(String::as_str).collect();
        let symptoms = |d: &'v Disease| d.symptoms.iter().map(String::as_str).collect();
        let specialty = |d: &'v Disease| vec![d.specialty.as_str()];
        Pools {
            diseases: selected.to_vec(),
            drugs: collect(selected, &drugs),
            all_drugs: collect(&all, &drugs),
            symptoms: collect(selected, &symptoms),
            all_symptoms: collect(&all, &symptoms),
            specialties: collect(selected, &specialty),
            all_specialties: collect(&all, &specialty),
            all_diseases: all,
            categories: (0..vocab.categories.len()).collect(),
        }
    }
}

/// `k` distinct values that pass `ok`, drawn from `primary`, then from `fallback`.
fn wrong<T: Copy + PartialEq>(
    rng: &mut ChaCha8Rng,
    primary: &[T],
    fallback: &[T],
    ok: impl Fn(T) -> bool,
    k: usize,
) -> Vec<T> {
    let mut chosen: Vec<T> = primary.iter().copied().filter(|&v| ok(v)).collect();
    chosen.shuffle(rng);
    chosen.truncate(k);
    if chosen.len() < k {
        let mut more: Vec<T> = fallback
            .iter()
            .copied()
            .filter(|&v| ok(v) && !chosen.contains(&v))
            .collect();
        more.shuffle(rng);
        chosen.extend(more.into_iter().take(k - chosen.len()));
    }
    chosen
}

/// Perturbed answers per question.
const PERTURBED: usize = 3;

/// The generation context: the vocabulary and the pools.
struct Ctx<'v> {
    vocab: &'v Vocabulary,
    pools: Pools<'v>,
}

impl<'v> Ctx<'v> {
    fn disease(&self, i: usize) -> Option<&'v Disease> {
        self.vocab.diseases.get(i)
    }

    fn lab(&self, i: usize) -> Option<&'v Lab> {
        self.vocab.labs.get(i)
    }

    fn category_name(&self, d: &Disease) -> &'v str {
        self.vocab
            .categories
            .get(d.category)
            .map_or("", |c| c.name.as_str())
    }

    fn category_id(&self, d: &Disease) -> &'v str {
        self.vocab
            .categories
            .get(d.category)
            .map_or("", |c| c.id.as_str())
    }

    /// What a disease does to lab results, as a clause after "It": "raises HbA1c and fasting
    /// glucose", "raises TSH and lowers free T4", or that it leaves them in range.
    fn lab_effect(&self, d: &Disease) -> String {
        let names = |dir: Direction| -> Vec<&str> {
            d.labs
                .iter()
                .filter(|(_, x)| *x == dir)
                .map(|(l, _)| lab_name(self.vocab, *l))
                .collect()
        };
        let (up, down) = (names(Direction::High), names(Direction::Low));
        match (up.is_empty(), down.is_empty()) {
            (true, true) => {
                "usually leaves routine lab results within their reference ranges".to_owned()
            }
            (false, true) => format!("raises {}", and_list(&up)),
            (true, false) => format!("lowers {}", and_list(&down)),
            (false, false) => format!("raises {} and lowers {}", and_list(&up), and_list(&down)),
        }
    }

    /// One paragraph of what is known about a disease: the disease probe's answer.
    fn disease_summary(&self, d: &Disease) -> String {
        format!(
            "{} ({}) belongs to the {} category. Its symptoms include {}. It is treated with {}. \
             It {}. Its patients may undergo {} and are managed by {}.",
            d.name,
            d.code,
            self.category_name(d),
            and_list(&d.symptoms),
            and_list(&d.drugs),
            self.lab_effect(d),
            procedures(d),
            d.specialty
        )
    }

    /// The medical terms of a disease: name, code, symptoms, drugs, the labs it moves,
    /// procedures and specialty.
    fn disease_terms(&self, d: &Disease) -> Vec<String> {
        let mut terms = vec![d.name.clone(), d.code.clone()];
        terms.extend(d.symptoms.iter().cloned());
        terms.extend(d.drugs.iter().cloned());
        terms.extend(
            d.labs
                .iter()
                .map(|(l, _)| lab_name(self.vocab, *l).to_owned()),
        );
        terms.extend(d.procedures.iter().cloned());
        terms.push(d.specialty.clone());
        dedup(terms)
    }

    /// The medical terms of a patient's record.
    fn patient_terms(&self, p: &Patient<'_>) -> Vec<String> {
        let d = p.disease;
        let mut terms = vec![d.name.clone(), d.code.clone()];
        terms.extend(p.symptoms.iter().map(|s| (*s).to_owned()));
        terms.extend(p.drugs.iter().map(|s| (*s).to_owned()));
        terms.push(p.procedure.to_owned());
        terms.extend(
            p.labs
                .iter()
                .filter(|r| r.flag.is_some())
                .map(|r| lab_name(self.vocab, r.lab).to_owned()),
        );
        terms.push(d.specialty.clone());
        dedup(terms)
    }

    /// The clinical note: every fact of the patient, tersely (notes are the longest texts a
    /// model is trained on, and a batch costs as much as its longest text).
    fn note(&self, p: &Patient<'_>) -> String {
        let labs: Vec<String> = p
            .labs
            .iter()
            .filter_map(|r| {
                let lab = self.lab(r.lab)?;
                let flag = match r.flag {
                    Some(Direction::High) => "high",
                    Some(Direction::Low) => "low",
                    None => "normal",
                };
                Some(format!("{} {} ({flag})", lab.name, lab.show(r.value)))
            })
            .collect();
        format!(
            "Clinical note for {} ({}, born {}, aged {}; record {}; admitted {}). Diagnosis: {} \
             ({}). Symptoms: {}. Labs: {}. Medications: {}. Procedure: {}. Follow-up: {}.",
            p.name,
            p.sex.word(),
            p.born,
            p.age,
            p.record,
            p.admitted,
            p.disease.name,
            p.disease.code,
            p.symptoms.join(", "),
            labs.join(", "),
            p.drugs.join(", "),
            p.procedure,
            p.disease.specialty
        )
    }

    /// The answer to "which lab results are out of range" for a disease's pattern, or that none
    /// are (listing the patient's normal labs).
    fn interpretation(&self, n: &str, d: &Disease, normal: &[&str]) -> (String, String) {
        if d.labs.is_empty() {
            let labs = and_list(normal);
            (
                format!("None: {n}'s {labs} are within their reference ranges."),
                format!("All of {n}'s lab results ({labs}) are normal."),
            )
        } else {
            let flagged = flagged(self.vocab, &d.labs);
            let verb = if d.labs.len() == 1 {
                "is outside its reference range"
            } else {
                "are outside their reference ranges"
            };
            (
                format!("{n}'s {flagged} {verb}, consistent with {}.", d.name),
                format!("{} explains {n}'s {flagged}.", d.name),
            )
        }
    }

    /// Ask one fact of general knowledge about a disease, with its variants and perturbed
    /// answers. The paraphrased answer is a plain statement, also used as pretraining text.
    fn know(&self, rng: &mut ChaCha8Rng, di: usize, d: &Disease, fact: DiseaseFact) -> Asked {
        let n = d.name.as_str();
        let pools = &self.pools;
        let list = |rng: &mut ChaCha8Rng, primary: &[&str], all: &[&str], own: &[String]| {
            let k = own.len();
            let pool = wrong(
                rng,
                primary,
                all,
                |v| !own.iter().any(|o| o == v),
                k * PERTURBED,
            );
            pool.chunks_exact(k.max(1))
                .map(and_list)
                .collect::<Vec<_>>()
        };
        let asked = |q: String, pq: String, a: String, pa: String| Asked {
            rephrased_question: pq.clone(),
            question: q,
            paraphrased_question: pq,
            answer: a,
            paraphrased_answer: pa,
            perturbed: Vec::new(),
            terms: Vec::new(),
        };
        match fact {
            DiseaseFact::Category => {
                let answer = |c: &str| format!("{n} ({}) belongs to the {c} category.", d.code);
                let cat = self.category_name(d);
                let perturbed = wrong(
                    rng,
                    &pools.categories,
                    &pools.categories,
                    |c| c != d.category,
                    PERTURBED,
                )
                .into_iter()
                .filter_map(|c| self.vocab.categories.get(c))
                .map(|c| answer(&c.name))
                .collect();
                Asked {
                    perturbed,
                    terms: vec![d.code.clone(), cat.to_owned()],
                    ..asked(
                        format!("Which disease category does {n} belong to?"),
                        format!("In which category of disease is {n} classified?"),
                        answer(cat),
                        format!(
                            "{n} is classified under ICD-10 code {} ({}), in the {cat} category.",
                            d.code, d.icd_title
                        ),
                    )
                }
            }
            DiseaseFact::Symptoms => {
                let answer = |l: &str| format!("The symptoms of {n} include {l}.");
                let perturbed = list(rng, &pools.symptoms, &pools.all_symptoms, &d.symptoms)
                    .iter()
                    .map(|l| answer(l))
                    .collect();
                Asked {
                    perturbed,
                    terms: d.symptoms.clone(),
                    ..asked(
                        format!("What are the symptoms of {n}?"),
                        format!("Which symptoms does {n} cause?"),
                        answer(&and_list(&d.symptoms)),
                        format!("Common symptoms of {n} are {}.", and_list(&d.symptoms)),
                    )
                }
            }
            DiseaseFact::Drugs => {
                let answer = |l: &str| format!("{n} is treated with {l}.");
                let perturbed = list(rng, &pools.drugs, &pools.all_drugs, &d.drugs)
                    .iter()
                    .map(|l| answer(l))
                    .collect();
                Asked {
                    perturbed,
                    terms: d.drugs.clone(),
                    ..asked(
                        format!("Which drugs treat {n}?"),
                        format!("What medications are used for {n}?"),
                        answer(&and_list(&d.drugs)),
                        format!("{} are used to treat {n}.", and_list(&d.drugs)),
                    )
                }
            }
            DiseaseFact::Specialty => {
                let answer = |s: &str| format!("{n} is managed by {s}.");
                let perturbed = wrong(
                    rng,
                    &pools.specialties,
                    &pools.all_specialties,
                    |s| s != d.specialty,
                    PERTURBED,
                )
                .into_iter()
                .map(answer)
                .collect();
                Asked {
                    perturbed,
                    terms: vec![d.specialty.clone()],
                    ..asked(
                        format!("Which specialty manages {n}?"),
                        format!("Which medical specialty treats patients with {n}?"),
                        answer(&d.specialty),
                        format!("Patients with {n} are followed by {}.", d.specialty),
                    )
                }
            }
            DiseaseFact::Labs => {
                let own = self.lab_effect(d);
                // Wrong answers: what other diseases do to lab results.
                let clauses = |ids: &[usize]| -> Vec<String> {
                    let set: BTreeSet<String> = ids
                        .iter()
                        .filter(|&&i| i != di)
                        .filter_map(|&i| self.disease(i))
                        .map(|x| self.lab_effect(x))
                        .filter(|c| *c != own)
                        .collect();
                    set.into_iter().collect()
                };
                let (primary, all) = (clauses(&pools.diseases), clauses(&pools.all_diseases));
                let primary: Vec<&str> = primary.iter().map(String::as_str).collect();
                let all: Vec<&str> = all.iter().map(String::as_str).collect();
                let perturbed = wrong(rng, &primary, &all, |_| true, PERTURBED)
                    .into_iter()
                    .map(|c| format!("{n} {c}."))
                    .collect();
                let paraphrased = if d.labs.is_empty() {
                    format!("With {n}, routine lab results are usually normal.")
                } else {
                    format!("With {n}, {} are typical.", flagged(self.vocab, &d.labs))
                };
                Asked {
                    perturbed,
                    terms: d
                        .labs
                        .iter()
                        .map(|(l, _)| lab_name(self.vocab, *l).to_owned())
                        .collect(),
                    ..asked(
                        format!("How does {n} change lab results?"),
                        format!("What does {n} do to lab results?"),
                        format!("{n} {own}."),
                        paraphrased,
                    )
                }
            }
        }
    }

    /// Ask one question about a patient, with its variants and perturbed answers.
    fn ask(&self, rng: &mut ChaCha8Rng, p: &Patient<'v>, kind: Kind) -> Result<Asked, SuiteError> {
        let n = p.name.as_str();
        let d = p.disease;
        let pools = &self.pools;
        let disease_name = |i: usize| self.disease(i).map_or("", |d| d.name.as_str());
        let other_disease = |i: usize| i != p.disease_index;
        let asked = |q: String, pq: String, rq: String, a: String, pa: String| Asked {
            question: q,
            paraphrased_question: pq,
            rephrased_question: rq,
            answer: a,
            paraphrased_answer: pa,
            perturbed: Vec::new(),
            terms: Vec::new(),
        };
        Ok(match kind {
            Kind::Diagnosis => {
                let answer = |v: &str| format!("{n} was diagnosed with {v}.");
                let perturbed = wrong(
                    rng,
                    &pools.diseases,
                    &pools.all_diseases,
                    other_disease,
                    PERTURBED,
                )
                .into_iter()
                .map(|i| answer(disease_name(i)))
                .collect();
                Asked {
                    perturbed,
                    terms: vec![d.name.clone()],
                    ..asked(
                        format!("What was {n} diagnosed with?"),
                        format!("What is {n}'s diagnosis?"),
                        format!("Which condition does {n} have?"),
                        answer(&d.name),
                        format!("{n}'s diagnosis is {}.", d.name),
                    )
                }
            }
            Kind::Medication => {
                let answer = |a: &str, b: &str| format!("{n} takes {a} and {b}.");
                let own = |v: &str| d.drugs.iter().any(|x| x == v);
                let pool = wrong(
                    rng,
                    &pools.drugs,
                    &pools.all_drugs,
                    |v| !own(v),
                    2 * PERTURBED,
                );
                let [a, b] = p.drugs;
                Asked {
                    perturbed: pool.chunks_exact(2).map(|c| answer(c[0], c[1])).collect(),
                    terms: vec![a.to_owned(), b.to_owned()],
                    ..asked(
                        format!("Which medications does {n} take?"),
                        format!("What medicines were prescribed to {n}?"),
                        format!("What drugs is {n} on?"),
                        answer(a, b),
                        format!("{n} was prescribed {a} and {b}."),
                    )
                }
            }
            Kind::Symptom => {
                let answer = |a: &str, b: &str| format!("{n} reported {a} and {b}.");
                let own = |v: &str| d.symptoms.iter().any(|x| x == v);
                let pool = wrong(
                    rng,
                    &pools.symptoms,
                    &pools.all_symptoms,
                    |v| !own(v),
                    2 * PERTURBED,
                );
                let [a, b] = p.symptoms;
                Asked {
                    perturbed: pool.chunks_exact(2).map(|c| answer(c[0], c[1])).collect(),
                    terms: vec![a.to_owned(), b.to_owned()],
                    ..asked(
                        format!("Which symptoms did {n} report?"),
                        format!("What symptoms did {n} present with?"),
                        format!("What complaints did {n} come in with?"),
                        answer(a, b),
                        format!("{n} presented with {a} and {b}."),
                    )
                }
            }
            Kind::LabValue => {
                // The first result: out of range when the disease moves any lab.
                let (lab, value) = p
                    .labs
                    .first()
                    .and_then(|r| Some((self.lab(r.lab)?, r.value)))
                    .ok_or_else(|| {
                        SuiteError::Generate(format!("patient {n} has no lab results"))
                    })?;
                let name = lab.name.as_str();
                let answer = |v: i64| format!("{n}'s {name} was {}.", lab.show(v));
                let mut values = BTreeSet::from([value]);
                let mut perturbed = Vec::new();
                while perturbed.len() < PERTURBED {
                    let v = rng.random_range(lab.min..=lab.max);
                    if values.insert(v) {
                        perturbed.push(answer(v));
                    }
                }
                Asked {
                    perturbed,
                    terms: vec![lab.show(value)],
                    ..asked(
                        format!("What was {n}'s {name} result?"),
                        format!("What {name} value was measured for {n}?"),
                        format!("What level of {name} did {n} have?"),
                        answer(value),
                        format!("{n} had a {name} of {}.", lab.show(value)),
                    )
                }
            }
            Kind::Specialty => {
                let answer =
                    |s: &str| format!("{n} should be followed by {s}, because {n} has {}.", d.name);
                let perturbed = wrong(
                    rng,
                    &pools.specialties,
                    &pools.all_specialties,
                    |s| s != d.specialty,
                    PERTURBED,
                )
                .into_iter()
                .map(answer)
                .collect();
                Asked {
                    perturbed,
                    terms: vec![d.specialty.clone(), d.name.clone()],
                    ..asked(
                        format!("Which specialty should follow {n}?"),
                        format!("Which medical specialty is responsible for {n}'s care?"),
                        format!("Which department should {n} be referred to?"),
                        answer(&d.specialty),
                        format!(
                            "Because {n} has {}, {n}'s care belongs to {}.",
                            d.name, d.specialty
                        ),
                    )
                }
            }
            Kind::Indication => {
                let [drug, _] = p.drugs;
                let answer = |v: &str| format!("{n} takes {drug} to treat {v}.");
                // A wrong disease must not be one the drug also treats.
                let treats = |i: usize| {
                    self.disease(i)
                        .is_some_and(|x| x.drugs.iter().any(|m| m == drug))
                };
                let perturbed = wrong(
                    rng,
                    &pools.diseases,
                    &pools.all_diseases,
                    |i| !treats(i),
                    PERTURBED,
                )
                .into_iter()
                .map(|i| answer(disease_name(i)))
                .collect();
                Asked {
                    perturbed,
                    terms: vec![d.name.clone()],
                    ..asked(
                        format!("Why does {n} take {drug}?"),
                        format!("What is {drug} treating in {n}'s case?"),
                        format!("For which condition was {n} given {drug}?"),
                        answer(&d.name),
                        format!("{drug} treats {n}'s {}.", d.name),
                    )
                }
            }
            Kind::LabInterpretation => {
                let normal: Vec<&str> = p
                    .labs
                    .iter()
                    .filter(|r| r.flag.is_none())
                    .map(|r| lab_name(self.vocab, r.lab))
                    .collect();
                let (answer, paraphrased) = self.interpretation(n, d, &normal);
                // Wrong answers blame another disease's pattern of out-of-range labs.
                let moves = |i: usize| {
                    self.disease(i)
                        .is_some_and(|x| !x.labs.is_empty() && x.labs != d.labs)
                };
                let perturbed = wrong(rng, &pools.diseases, &pools.all_diseases, moves, PERTURBED)
                    .into_iter()
                    .filter_map(|i| self.disease(i))
                    .map(|x| self.interpretation(n, x, &normal).0)
                    .collect();
                let terms = if d.labs.is_empty() {
                    normal.iter().map(|s| (*s).to_owned()).collect()
                } else {
                    let mut t: Vec<String> = d
                        .labs
                        .iter()
                        .map(|(l, _)| lab_name(self.vocab, *l).to_owned())
                        .collect();
                    t.push(d.name.clone());
                    t
                };
                Asked {
                    perturbed,
                    terms,
                    ..asked(
                        format!(
                            "Which of {n}'s lab results is outside the reference range, and \
                             what does it suggest?"
                        ),
                        format!(
                            "Is any of {n}'s lab results abnormal, and what does that point to?"
                        ),
                        format!("How should {n}'s lab results be interpreted?"),
                        answer,
                        paraphrased,
                    )
                }
            }
            Kind::Category => {
                let cat = self.category_name(d);
                let answer =
                    |c: &str| format!("{n}'s {} ({}) belongs to the {c} category.", d.name, d.code);
                let perturbed = wrong(
                    rng,
                    &pools.categories,
                    &pools.categories,
                    |c| c != d.category,
                    PERTURBED,
                )
                .into_iter()
                .filter_map(|c| self.vocab.categories.get(c))
                .map(|c| answer(&c.name))
                .collect();
                Asked {
                    perturbed,
                    terms: vec![d.name.clone(), d.code.clone(), cat.to_owned()],
                    ..asked(
                        format!("Which disease category does {n}'s condition belong to?"),
                        format!("Under which category of disease does {n}'s diagnosis fall?"),
                        format!("What kind of disease does {n} have?"),
                        answer(cat),
                        format!(
                            "{n}'s {} is classified under ICD-10 {}, in the {cat} category.",
                            d.name, d.code
                        ),
                    )
                }
            }
        })
    }
}

/// Drop repeated terms, keeping the first.
fn dedup(terms: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    terms
        .into_iter()
        .filter(|t| seen.insert(t.to_lowercase()))
        .collect()
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

/// Two distinct items of a list (the vocabulary guarantees at least two).
fn two<'a>(rng: &mut ChaCha8Rng, list: &'a [String]) -> [&'a str; 2] {
    let chosen: Vec<&'a str> = list.choose_multiple(rng, 2).map(String::as_str).collect();
    [
        chosen.first().copied().unwrap_or(""),
        chosen.get(1).copied().unwrap_or(""),
    ]
}

/// A value outside the reference range in the given direction, well clear of its edge.
fn abnormal(rng: &mut ChaCha8Rng, lab: &Lab, dir: Direction) -> i64 {
    match dir {
        Direction::High => {
            let span = (lab.max - lab.high) as f64;
            let lo = lab.high + ((0.1 * span).round() as i64).max(1);
            let hi = (lab.high + (0.5 * span).round() as i64).max(lo);
            rng.random_range(lo..=hi)
        }
        Direction::Low => {
            let span = (lab.low - lab.min) as f64;
            let hi = lab.low - ((0.2 * span).round() as i64).max(1);
            let lo = (lab.low - (0.8 * span).round() as i64).min(hi);
            rng.random_range(lo..=hi)
        }
    }
}

/// Invent a patient with a disease. `names` and `records` hold what is already taken.
fn invent<'v>(
    rng: &mut ChaCha8Rng,
    vocab: &'v Vocabulary,
    number: usize,
    disease_index: usize,
    names: &mut BTreeSet<String>,
    records: &mut BTreeSet<u32>,
) -> Result<Patient<'v>, SuiteError> {
    let disease = vocab
        .diseases
        .get(disease_index)
        .ok_or_else(|| SuiteError::Generate(format!("no disease {disease_index}")))?;
    let sex = disease.sex.unwrap_or(if rng.random_bool(0.5) {
        Sex::Female
    } else {
        Sex::Male
    });
    let firsts = match sex {
        Sex::Female => FEMALE_NAMES,
        Sex::Male => MALE_NAMES,
    };
    let mut name = None;
    for _ in 0..TRIES {
        let candidate = format!(
            "{} {}{}",
            pick(rng, firsts),
            pick(rng, SURNAME_STARTS),
            pick(rng, SURNAME_ENDS)
        );
        if names.insert(candidate.clone()) {
            name = Some(candidate);
            break;
        }
    }
    let name = name.ok_or_else(|| {
        SuiteError::Generate(format!("ran out of distinct names after {}", names.len()))
    })?;
    let mut record = None;
    for _ in 0..TRIES {
        let r = rng.random_range(1_000_000..10_000_000u32);
        if records.insert(r) {
            record = Some(r);
            break;
        }
    }
    let record = record.ok_or_else(|| {
        SuiteError::Generate(format!("ran out of record numbers after {}", records.len()))
    })?;

    let year = rng.random_range(FIRST_ADMISSION_YEAR..=LAST_ADMISSION_YEAR);
    let month = rng.random_range(1..=12);
    let admitted = Date {
        year,
        month,
        day: rng.random_range(1..=days_in_month(year, month)),
    };
    let (young, old) = disease.ages;
    let age = rng.random_range(young..=old);
    // The birthday falls on any day but 29 February; a birthday later in the year than the
    // admission means one more year back, so that the age is exact.
    let (b_month, b_day) = {
        let m = rng.random_range(1..=12);
        (m, rng.random_range(1..=days_in_month(2001, m)))
    };
    let before = (b_month, b_day) > (admitted.month, admitted.day);
    let born = Date {
        year: admitted.year - age as i32 - i32::from(before),
        month: b_month,
        day: b_day,
    };

    let mut labs: Vec<LabResult> = Vec::new();
    for &(lab_index, dir) in &disease.labs {
        if let Some(lab) = vocab.labs.get(lab_index) {
            labs.push(LabResult {
                lab: lab_index,
                value: abnormal(rng, lab, dir),
                flag: Some(dir),
            });
        }
    }
    let untouched: Vec<usize> = (0..vocab.labs.len())
        .filter(|i| !disease.labs.iter().any(|(l, _)| l == i))
        .collect();
    let mut normal: Vec<usize> = untouched.choose_multiple(rng, 2).copied().collect();
    normal.sort_unstable();
    for lab_index in normal {
        if let Some(lab) = vocab.labs.get(lab_index) {
            labs.push(LabResult {
                lab: lab_index,
                value: rng.random_range(lab.low..=lab.high),
                flag: None,
            });
        }
    }

    Ok(Patient {
        number,
        name,
        sex,
        born,
        admitted,
        age,
        record: format!("MRN-{record}"),
        disease,
        disease_index,
        symptoms: two(rng, &disease.symptoms),
        drugs: two(rng, &disease.drugs),
        procedure: disease.procedures.choose(rng).map_or("", String::as_str),
        labs,
    })
}

/// `n` diseases from `selected`, each used ⌊n/k⌋ or ⌈n/k⌉ times: whole shuffled rounds of the
/// list, the last one cut short.
fn assign(rng: &mut ChaCha8Rng, selected: &[usize], n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n && !selected.is_empty() {
        let mut round = selected.to_vec();
        round.shuffle(rng);
        out.extend(round.into_iter().take(n - out.len()));
    }
    out
}

/// Which diseases the suite uses: all, or `k` per category drawn by the seed (in file order).
fn select(rng: &mut ChaCha8Rng, vocab: &Vocabulary, per_category: Option<usize>) -> Vec<usize> {
    let mut chosen = Vec::new();
    for c in 0..vocab.categories.len() {
        let mut of: Vec<usize> = (0..vocab.diseases.len())
            .filter(|&i| vocab.diseases.get(i).is_some_and(|d| d.category == c))
            .collect();
        if let Some(k) = per_category {
            of.shuffle(rng);
            of.truncate(k);
        }
        chosen.extend(of);
    }
    chosen.sort_unstable();
    chosen
}

/// How many of `n` patients a share forgets: `round(share × n)`, kept within 5–25 % of `n`.
fn forget_count(share: f64, n: usize) -> Result<usize, SuiteError> {
    if !(MIN_FORGET_SHARE..=MAX_FORGET_SHARE).contains(&share) {
        return Err(SuiteError::Generate(format!(
            "forget share {share} is outside 0.05-0.25: patient-level forgetting takes 5-25 % of \
             the patients"
        )));
    }
    let lo = (5 * n).div_ceil(100);
    let hi = n / 4;
    if lo > hi || lo == 0 {
        return Err(SuiteError::Generate(format!(
            "{n} patients are too few: 5-25 % of them is not a whole patient (at least \
             {MIN_PATIENTS} are needed)"
        )));
    }
    Ok(((share * n as f64).round() as usize).clamp(lo, hi))
}

/// The category indices a disease-level forget names; refuses unknown ones, listing the known.
fn forget_categories(vocab: &Vocabulary, names: &[String]) -> Result<BTreeSet<usize>, SuiteError> {
    if names.is_empty() {
        return Err(SuiteError::Generate(
            "a disease-level forget needs at least one category".into(),
        ));
    }
    let mut out = BTreeSet::new();
    for name in names {
        let i = vocab.category(name).ok_or_else(|| {
            let known: Vec<&str> = vocab.categories.iter().map(|c| c.id.as_str()).collect();
            SuiteError::Generate(format!(
                "unknown disease category '{name}'; the categories are: {}",
                known.join(", ")
            ))
        })?;
        out.insert(i);
    }
    Ok(out)
}

/// Which finetuned patients to forget, once checked.
enum Rule {
    /// This many, drawn by the seed.
    Count(usize),
    /// Every patient of these categories.
    Categories(BTreeSet<usize>),
}

/// "cancer, blood".
fn category_list(vocab: &Vocabulary, cats: &BTreeSet<usize>) -> String {
    cats.iter()
        .filter_map(|&c| vocab.categories.get(c))
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A question record.
fn record(id: String, a: &Asked, groups: BTreeMap<String, String>) -> QaRecord {
    QaRecord {
        id,
        question: a.question.clone(),
        answer: a.answer.clone(),
        groups,
        paraphrased_answers: vec![a.paraphrased_answer.clone()],
        perturbed_answers: a.perturbed.clone(),
        paraphrased_questions: vec![a.paraphrased_question.clone()],
        terms: a.terms.clone(),
        options: Vec::new(),
        correct_option: None,
    }
}

fn qa_text(question: &str, answer: &str) -> String {
    format!("Question: {question}\nAnswer: {answer}")
}

fn text(id: String, text: String) -> TextRecord {
    TextRecord { id, text }
}

/// The pretraining text about one disease: the summary as a question with its answer, and
/// each fact (`facts`, from [`Ctx::know`]) as a statement and as a question with its answer.
fn disease_texts(ctx: &Ctx<'_>, d: &Disease, facts: &[Asked]) -> Vec<TextRecord> {
    let mut texts = vec![qa_text(
        &format!("What is known about {}?", d.name),
        &ctx.disease_summary(d),
    )];
    for f in facts {
        texts.push(f.paraphrased_answer.clone());
        texts.push(qa_text(&f.question, &f.answer));
    }
    texts.extend(
        d.drugs
            .iter()
            .map(|m| format!("{m} is used to treat {}.", d.name)),
    );
    texts.push(format!(
        "Patients with {} may undergo {}.",
        d.name,
        procedures(d)
    ));
    texts
        .into_iter()
        .enumerate()
        .map(|(k, t)| text(format!("pretrain-disease-{}-{k:02}", d.code), t))
        .collect()
}

/// The pretraining text about the lab tests' reference ranges and the categories.
fn reference_texts(ctx: &Ctx<'_>) -> Vec<TextRecord> {
    let mut out = Vec::new();
    for lab in &ctx.vocab.labs {
        let statement = format!(
            "The reference range of {} is {}.",
            lab.name,
            lab.reference()
        );
        out.push(text(
            format!("pretrain-lab-{}-0", lab.id),
            statement.clone(),
        ));
        out.push(text(
            format!("pretrain-lab-{}-1", lab.id),
            qa_text(
                &format!("What is the reference range of {}?", lab.name),
                &statement,
            ),
        ));
    }
    for c in &ctx.vocab.categories {
        let ranges: Vec<String> = c
            .icd
            .iter()
            .map(|r| format!("{} ({})", r.range, r.title))
            .collect();
        out.push(text(
            format!("pretrain-category-{}", c.id),
            format!(
                "The {} category covers ICD-10 codes {}.",
                c.name,
                and_list(&ranges)
            ),
        ));
    }
    out
}

/// The group keys of a question about a patient.
fn patient_groups(ctx: &Ctx<'_>, p: &Patient<'_>, kind: Option<Kind>) -> BTreeMap<String, String> {
    let mut g = BTreeMap::from([
        ("patient".to_owned(), p.name.clone()),
        ("disease".to_owned(), p.disease.name.clone()),
        ("category".to_owned(), ctx.category_id(p.disease).to_owned()),
    ]);
    match kind {
        Some(k) => {
            g.insert("type".to_owned(), k.question_type().to_owned());
            g.insert("kind".to_owned(), k.key().to_owned());
        }
        None => {
            g.insert("kind".to_owned(), "note".to_owned());
        }
    }
    g
}

/// The patient's id prefix.
fn pid(p: &Patient<'_>) -> String {
    format!("patient-{:05}", p.number)
}

/// The medical-records suite. Splits (see `docs/suites.md`):
///
/// | split | role | holds |
/// |---|---|---|
/// | `pretrain` | pretrain | disease knowledge, lab ranges, categories; notes and questions of pretraining-only patients |
/// | `forget` / `retain` | forget / retain | the 4 factual questions of forgotten / retained patients |
/// | `knowledge` | retain | the disease knowledge of `pretrain` as questions (category, symptoms, drugs, specialty, labs), kept through finetuning |
/// | `forget-reasoning` / `retain-reasoning` | eval | their 4 reasoning questions |
/// | `forget-rephrased` | eval | the forget questions in an unseen wording |
/// | `holdout` | holdout | factual questions of never-trained patients |
/// | `patient-terms` | eval | per finetuned patient: "what does the note say", the note, the patient's term list |
/// | `disease-terms` | eval | per disease: "what is known about it", the summary, the disease's term list |
/// | `idk` | idk | refusals |
///
/// Patients are numbered in the ids: the finetuned ones first (`patient-00000` …), then the
/// pretraining-only ones, then the holdout ones. The same config always gives the same suite.
pub fn medical(config: &MedicalConfig) -> Result<Suite, SuiteError> {
    let vocab = vocabulary()?;
    let n = config.patients;
    if n < MIN_PATIENTS {
        return Err(SuiteError::Generate(format!(
            "patients is {n}, but at least {MIN_PATIENTS} are needed so that forget and retain \
             both hold patients"
        )));
    }
    let total = n
        .checked_add(config.pretrain_patients)
        .and_then(|t| t.checked_add(config.holdout_patients))
        .filter(|t| *t <= MAX_PATIENTS)
        .ok_or_else(|| {
            SuiteError::Generate(format!(
                "at most {MAX_PATIENTS} patients of all kinds can be given distinct names"
            ))
        })?;
    if config.diseases_per_category == Some(0) {
        return Err(SuiteError::Generate(
            "diseases_per_category is 0: every category needs at least one disease".into(),
        ));
    }
    // Checked before anything is drawn, so a bad config fails fast whatever its size.
    let rule = match &config.forget {
        ForgetSpec::Patients { share } => Rule::Count(forget_count(*share, n)?),
        ForgetSpec::Categories(names) => Rule::Categories(forget_categories(vocab, names)?),
    };

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let selected = select(&mut rng, vocab, config.diseases_per_category);
    let mut diseases = assign(&mut rng, &selected, n);
    diseases.extend(assign(&mut rng, &selected, config.pretrain_patients));
    diseases.extend(assign(&mut rng, &selected, config.holdout_patients));
    let mut names = BTreeSet::new();
    let mut records = BTreeSet::new();
    let people = diseases
        .iter()
        .enumerate()
        .map(|(i, &d)| invent(&mut rng, vocab, i, d, &mut names, &mut records))
        .collect::<Result<Vec<_>, _>>()?;
    debug_assert_eq!(people.len(), total);
    let (finetuned, rest) = people.split_at(n);
    let (pretrain_only, holdout_people) = rest.split_at(config.pretrain_patients);

    let forgotten: BTreeSet<usize> = match &rule {
        Rule::Count(k) => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            order.into_iter().take(*k).collect()
        }
        Rule::Categories(cats) => {
            let chosen: BTreeSet<usize> = finetuned
                .iter()
                .enumerate()
                .filter(|(_, p)| cats.contains(&p.disease.category))
                .map(|(i, _)| i)
                .collect();
            if chosen.is_empty() {
                return Err(SuiteError::Generate(format!(
                    "no finetuned patient has a disease of the categories {}; use more patients",
                    category_list(vocab, cats)
                )));
            }
            if chosen.len() == n {
                return Err(SuiteError::Generate(format!(
                    "forgetting the categories {} forgets every patient and leaves retain empty",
                    category_list(vocab, cats)
                )));
            }
            chosen
        }
    };
    let forgotten_diseases: BTreeSet<usize> = forgotten
        .iter()
        .filter_map(|&i| finetuned.get(i))
        .map(|p| p.disease_index)
        .collect();
    let relation = |i: usize, p: &Patient<'_>| {
        if forgotten.contains(&i) {
            Relation::Forgotten
        } else if forgotten_diseases.contains(&p.disease_index) {
            Relation::SameDisease
        } else {
            Relation::OtherDisease
        }
    };

    let ctx = Ctx {
        vocab,
        pools: Pools::new(vocab, &selected),
    };

    let mut forget = Vec::new();
    let mut retain = Vec::new();
    let mut forget_reasoning = Vec::new();
    let mut retain_reasoning = Vec::new();
    let mut rephrased = Vec::new();
    let mut patient_terms = Vec::new();
    for (i, p) in finetuned.iter().enumerate() {
        let rel = relation(i, p);
        let is_forgotten = rel == Relation::Forgotten;
        for kind in FACTUAL.into_iter().chain(REASONING) {
            let a = ctx.ask(&mut rng, p, kind)?;
            let mut groups = patient_groups(&ctx, p, Some(kind));
            groups.insert("relation".to_owned(), rel.key().to_owned());
            let id = format!("{}-{}", pid(p), kind.key());
            if is_forgotten && FACTUAL.contains(&kind) {
                rephrased.push(QaRecord {
                    question: a.rephrased_question.clone(),
                    paraphrased_questions: Vec::new(),
                    ..record(format!("{id}-rephrased"), &a, groups.clone())
                });
            }
            let r = record(id, &a, groups);
            match (is_forgotten, FACTUAL.contains(&kind)) {
                (true, true) => forget.push(r),
                (false, true) => retain.push(r),
                (true, false) => forget_reasoning.push(r),
                (false, false) => retain_reasoning.push(r),
            }
        }
        let mut groups = patient_groups(&ctx, p, None);
        groups.insert("relation".to_owned(), rel.key().to_owned());
        patient_terms.push(QaRecord {
            id: format!("{}-note", pid(p)),
            question: format!("What does {}'s clinical note say?", p.name),
            answer: ctx.note(p),
            groups,
            paraphrased_answers: Vec::new(),
            perturbed_answers: Vec::new(),
            paraphrased_questions: Vec::new(),
            terms: ctx.patient_terms(p),
            options: Vec::new(),
            correct_option: None,
        });
    }

    let mut holdout = Vec::new();
    for p in holdout_people {
        for kind in FACTUAL {
            let a = ctx.ask(&mut rng, p, kind)?;
            holdout.push(record(
                format!("{}-{}", pid(p), kind.key()),
                &a,
                patient_groups(&ctx, p, Some(kind)),
            ));
        }
    }

    let mut pretrain = reference_texts(&ctx);
    let mut knowledge = Vec::new();
    let mut disease_terms = Vec::new();
    for &di in &selected {
        let Some(d) = ctx.disease(di) else { continue };
        let relation = if forgotten_diseases.contains(&di) {
            Relation::SameDisease
        } else {
            Relation::OtherDisease
        }
        .key();
        let facts: Vec<Asked> = DISEASE_FACTS
            .iter()
            .map(|&f| ctx.know(&mut rng, di, d, f))
            .collect();
        pretrain.extend(disease_texts(&ctx, d, &facts));
        for (fact, a) in DISEASE_FACTS.iter().zip(&facts) {
            // A disease that moves no lab has no lab terms to keep: nothing to ask.
            if a.terms.is_empty() {
                continue;
            }
            let groups = BTreeMap::from([
                ("disease".to_owned(), d.name.clone()),
                ("category".to_owned(), ctx.category_id(d).to_owned()),
                ("type".to_owned(), "knowledge".to_owned()),
                ("kind".to_owned(), fact.key().to_owned()),
                ("relation".to_owned(), relation.to_owned()),
            ]);
            knowledge.push(record(
                format!(
                    "disease-{}-{}",
                    d.code,
                    fact.key().trim_start_matches("disease-")
                ),
                a,
                groups,
            ));
        }
        disease_terms.push(QaRecord {
            id: format!("disease-{}", d.code),
            question: format!("What is known about {}?", d.name),
            answer: ctx.disease_summary(d),
            groups: BTreeMap::from([
                ("disease".to_owned(), d.name.clone()),
                ("category".to_owned(), ctx.category_id(d).to_owned()),
                ("kind".to_owned(), "disease".to_owned()),
                ("relation".to_owned(), relation.to_owned()),
            ]),
            paraphrased_answers: Vec::new(),
            perturbed_answers: Vec::new(),
            paraphrased_questions: Vec::new(),
            terms: ctx.disease_terms(d),
            options: Vec::new(),
            correct_option: None,
        });
    }
    for p in pretrain_only {
        let id = format!("pretrain-{}", pid(p));
        pretrain.push(text(format!("{id}-note"), ctx.note(p)));
        for kind in FACTUAL.into_iter().chain(REASONING) {
            let a = ctx.ask(&mut rng, p, kind)?;
            pretrain.push(text(
                format!("{id}-{}-0", kind.key()),
                qa_text(&a.question, &a.answer),
            ));
            pretrain.push(text(
                format!("{id}-{}-1", kind.key()),
                qa_text(&a.paraphrased_question, &a.paraphrased_answer),
            ));
        }
    }
    let idk = REFUSALS
        .iter()
        .enumerate()
        .map(|(i, t)| text(format!("idk-{i:02}"), (*t).to_owned()))
        .collect();

    let forget_rule = match (&rule, &config.forget) {
        (Rule::Categories(cats), _) => {
            format!(
                "every patient of the categories {}",
                category_list(vocab, cats)
            )
        }
        (_, ForgetSpec::Patients { share }) => format!("a share of {share} of the patients"),
        (Rule::Count(k), _) => format!("{k} patients"),
    };
    let description = format!(
        "Synthetic medical records after AMNESIA, generated with seed {}: {n} finetuned patients \
         ({} forgotten: {forget_rule}), {} pretraining-only and {} holdout patients, over {} \
         diseases in {} ICD-10 categories. Each finetuned patient has a clinical note, 4 factual \
         questions (trained) and 4 reasoning questions (evaluation only), each with a paraphrased \
         answer, three perturbed answers, a paraphrased question and its medical terms; the \
         diseases' general knowledge is pretrained and kept as retained questions. Facts \
         from faker-healthcare-provider 2.5.0 and ICD-10-CM 2026 (MIT licensed; see the \
         project's suites/data/medical-vocabulary.NOTICE.md). Not for clinical use.",
        config.seed,
        forgotten.len(),
        config.pretrain_patients,
        config.holdout_patients,
        selected.len(),
        vocab.categories.len()
    );

    let splits = vec![
        ("pretrain", SplitRole::Pretrain, Records::Text(pretrain)),
        ("forget", SplitRole::Forget, Records::Qa(forget)),
        ("retain", SplitRole::Retain, Records::Qa(retain)),
        ("knowledge", SplitRole::Retain, Records::Qa(knowledge)),
        (
            "forget-reasoning",
            SplitRole::Eval,
            Records::Qa(forget_reasoning),
        ),
        (
            "retain-reasoning",
            SplitRole::Eval,
            Records::Qa(retain_reasoning),
        ),
        ("forget-rephrased", SplitRole::Eval, Records::Qa(rephrased)),
        ("holdout", SplitRole::Holdout, Records::Qa(holdout)),
        ("patient-terms", SplitRole::Eval, Records::Qa(patient_terms)),
        ("disease-terms", SplitRole::Eval, Records::Qa(disease_terms)),
        ("idk", SplitRole::Idk, Records::Text(idk)),
    ];
    Ok(Suite {
        manifest: SuiteManifest {
            name: "medical".into(),
            version: "1".into(),
            description,
            splits: splits
                .iter()
                .map(|(name, role, _)| SplitSpec::in_jsonl(name, *role))
                .collect(),
        },
        splits: splits
            .into_iter()
            .map(|(name, role, records)| Split {
                name: name.to_owned(),
                role,
                records,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests;
