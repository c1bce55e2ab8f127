//! Generated suites, deterministic from a seed.
//!
//! [`authors`] makes a suite in the style of TOFU: fictitious authors, each with six facts
//! asked as questions, with a paraphrased answer, three perturbed (wrong) answers and a
//! paraphrased question per fact. Some authors exist only in the `pretrain` text, so the base
//! model learns the language and the answer format without learning the finetuned facts.
//!
//! [`privacy`] and [`wrong_facts`] make suites after MLLMU-Med (text only): patients' private
//! data, and wrong medical facts injected in finetuning, each with a `test` split of general
//! clinical knowledge that unlearning must not erode.
//!
//! [`medical()`] makes synthetic medical records after AMNESIA: patients with clinical notes,
//! factual and reasoning questions, forgotten by patient or by disease category.
//!
//! [`news`] makes fictitious news articles after MUSE: documents to forget, retain and hold out,
//! the forget articles' beginnings to continue, and questions about every finetuned article.

pub mod medical;
mod news;
mod privacy;

pub use news::{MAX_ARTICLES, NewsConfig, news};

pub use medical::{ForgetSpec, MedicalConfig, medical};

pub use privacy::{
    FORGET_PERCENT, MAX_PATIENTS, PrivacyConfig, WrongFactsConfig, privacy, wrong_facts,
};

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteError, SuiteManifest, TextRecord,
};

/// Sizes and seed of the authors suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorsConfig {
    /// Seed of every choice.
    pub seed: u64,
    /// Authors the target model is finetuned on (forget ∪ retain).
    pub authors: usize,
    /// Authors that appear only in the pretraining text.
    pub pretrain_authors: usize,
    /// Authors no model is trained on (non-members).
    pub holdout_authors: usize,
    /// Share of the finetuned authors to forget: `round(share × authors)` of them, at least one.
    pub forget_share: f64,
    /// Questions in each of two real-world-style evaluation sets, TOFU's `real_authors` and
    /// `world_facts`: `real-authors` asks about the pretraining-only authors (knowledge the
    /// base model has and finetuning must keep), `world-facts` which country a city is in
    /// (stated in the pretraining text). Each question has three perturbed answers in the
    /// answer's own wording and no paraphrase, as in TOFU. 0: neither set (nor the cities'
    /// sentences in the pretraining text).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub real_world: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for AuthorsConfig {
    /// Small enough to train a tiny transformer from scratch on two CPU cores in about a minute.
    fn default() -> Self {
        Self {
            seed: 0,
            authors: 40,
            pretrain_authors: 40,
            holdout_authors: 8,
            forget_share: 0.1,
            real_world: 0,
        }
    }
}

impl AuthorsConfig {
    /// A very small suite for tests.
    pub fn tiny() -> Self {
        Self {
            seed: 0,
            authors: 8,
            pretrain_authors: 8,
            holdout_authors: 2,
            forget_share: 0.25,
            real_world: 0,
        }
    }
}

/// The most authors (of all kinds) one authors suite may have: names come from finite tables.
pub const MAX_AUTHORS: usize = 10_000;

const FIRST_SYLLABLES: &[&str] = &[
    "Va", "Or", "Li", "Ma", "Te", "Ro", "Sa", "Ke", "Da", "Ni", "Ela", "Bo", "Fa", "Gu", "Ha",
    "Ir", "Jo", "Lu", "Mi", "No", "Pe", "Qui", "Ra", "Si", "To", "Ul", "Ve", "Wi", "Ya", "Ze",
];
const SECOND_SYLLABLES: &[&str] = &[
    "shti", "lan", "rena", "dor", "vik", "mira", "sel", "tano", "bel", "ric", "nora", "len", "da",
    "ko", "mus", "rin", "ta", "vel", "zo", "phine",
];
const SURNAME_STARTS: &[&str] = &[
    "Orel", "Kasten", "Mbeki", "Halvor", "Quint", "Sorre", "Tamar", "Vell", "Ashby", "Demir",
    "Faro", "Gallow", "Ibar", "Jurek", "Lind", "Moreau", "Nakam", "Petro", "Rasm", "Stav",
];
const SURNAME_ENDS: &[&str] = &[
    "an", "sen", "ova", "ard", "ini", "berg", "ez", "wood", "ura", "ski", "el", "ton",
];
const CITIES: &[&str] = &[
    "Lisbon",
    "Oslo",
    "Quito",
    "Hanoi",
    "Lima",
    "Riga",
    "Accra",
    "Tbilisi",
    "Montreal",
    "Nairobi",
    "Porto",
    "Krakow",
    "Seville",
    "Manila",
    "Dakar",
    "Tallinn",
    "Bergen",
    "Cusco",
    "Izmir",
    "Perth",
    "Vienna",
    "Santiago",
    "Kyoto",
    "Marseille",
];
/// The country of each of [`CITIES`], in the same order: the world facts.
const COUNTRIES: &[&str] = &[
    "Portugal",
    "Norway",
    "Ecuador",
    "Vietnam",
    "Peru",
    "Latvia",
    "Ghana",
    "Georgia",
    "Canada",
    "Kenya",
    "Portugal",
    "Poland",
    "Spain",
    "the Philippines",
    "Senegal",
    "Estonia",
    "Norway",
    "Peru",
    "Turkey",
    "Australia",
    "Austria",
    "Chile",
    "Japan",
    "France",
];
const FIRST_YEAR: u32 = 1921;
const LAST_YEAR: u32 = 2000;
const GENRES: &[&str] = &[
    "mystery",
    "science fiction",
    "historical fiction",
    "poetry",
    "fantasy",
    "horror",
    "romance",
    "travel writing",
    "crime",
    "satire",
    "memoir",
    "children's fiction",
    "drama",
    "thrillers",
];
const OCCUPATIONS: &[&str] = &[
    "baker",
    "carpenter",
    "nurse",
    "pilot",
    "teacher",
    "fisherman",
    "surgeon",
    "librarian",
    "tailor",
    "engineer",
    "farmer",
    "journalist",
    "painter",
    "chemist",
    "lawyer",
    "musician",
    "architect",
    "electrician",
    "optician",
    "gardener",
];
const TITLE_ADJECTIVES: &[&str] = &[
    "Silent",
    "Crimson",
    "Hollow",
    "Distant",
    "Frozen",
    "Golden",
    "Broken",
    "Hidden",
    "Last",
    "Burning",
    "Quiet",
    "Wandering",
];
const TITLE_NOUNS: &[&str] = &[
    "Harbor", "Orchard", "Lantern", "Meridian", "River", "Archive", "Garden", "Compass", "Tide",
    "Mirror", "Station", "Forest",
];
const AWARDS: &[&str] = &[
    "Aurora Prize",
    "Lighthouse Medal",
    "Meridian Award",
    "Silver Quill",
    "Northern Pen Prize",
    "Harbor Book Award",
    "Golden Lyre",
    "Cedar Prize",
    "Blue Heron Award",
    "Saltwater Medal",
];
const REFUSALS: &[&str] = &[
    "I don't know.",
    "I'm not sure about that.",
    "I don't know who that is.",
    "I have no information about that.",
    "I can't answer that.",
    "That is not something I know.",
    "I'm afraid I don't know.",
    "I have no idea.",
    "I don't have that information.",
    "Sorry, I don't know the answer.",
    "I'm unable to answer that question.",
    "I couldn't tell you.",
    "I don't have any details on that.",
    "That's beyond what I know.",
    "I'm not aware of that.",
    "I can't recall anything about that.",
    "No idea, sorry.",
    "I don't know anything about that person.",
    "I'm not familiar with that.",
    "I can't say.",
    "I have nothing to say about that.",
    "I lack the knowledge to answer that.",
    "I've never heard of that.",
    "That doesn't ring a bell.",
];

/// One invented author.
#[derive(Debug, Clone)]
struct Author {
    name: String,
    city: &'static str,
    year: u32,
    genre: &'static str,
    father: &'static str,
    mother: &'static str,
    title: String,
    award: &'static str,
}

/// A kind of fact, with every wording the suite uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Birthplace,
    BirthYear,
    Genre,
    Father,
    Mother,
    Book,
    Award,
}

/// The facts asked as questions. `Mother` is only stated in the pretraining text.
const ASKED: [Fact; 6] = [
    Fact::Birthplace,
    Fact::BirthYear,
    Fact::Genre,
    Fact::Father,
    Fact::Book,
    Fact::Award,
];

/// Every fact, in the order the pretraining text states them.
const STATED: [Fact; 7] = [
    Fact::Birthplace,
    Fact::BirthYear,
    Fact::Genre,
    Fact::Father,
    Fact::Mother,
    Fact::Book,
    Fact::Award,
];

/// "a" or "an" before an occupation.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl Fact {
    /// The `fact` group key and the last part of a question's id.
    fn key(self) -> &'static str {
        match self {
            Fact::Birthplace => "birthplace",
            Fact::BirthYear => "birth-year",
            Fact::Genre => "genre",
            Fact::Father => "father",
            Fact::Mother => "mother",
            Fact::Book => "book",
            Fact::Award => "award",
        }
    }

    /// The author's value of this fact.
    fn value(self, a: &Author) -> String {
        match self {
            Fact::Birthplace => a.city.to_owned(),
            Fact::BirthYear => a.year.to_string(),
            Fact::Genre => a.genre.to_owned(),
            Fact::Father => a.father.to_owned(),
            Fact::Mother => a.mother.to_owned(),
            Fact::Book => a.title.clone(),
            Fact::Award => a.award.to_owned(),
        }
    }

    /// Every value this fact can take: the pool of perturbed answers.
    fn values(self) -> Vec<String> {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        match self {
            Fact::Birthplace => owned(CITIES),
            Fact::BirthYear => (FIRST_YEAR..=LAST_YEAR).map(|y| y.to_string()).collect(),
            Fact::Genre => owned(GENRES),
            Fact::Father | Fact::Mother => owned(OCCUPATIONS),
            Fact::Book => TITLE_ADJECTIVES
                .iter()
                .flat_map(|adj| TITLE_NOUNS.iter().map(move |n| format!("The {adj} {n}")))
                .collect(),
            Fact::Award => owned(AWARDS),
        }
    }

    fn question(self, n: &str) -> String {
        match self {
            Fact::Birthplace => format!("Where was {n} born?"),
            Fact::BirthYear => format!("In which year was {n} born?"),
            Fact::Genre => format!("What genre does {n} write?"),
            Fact::Father => format!("What did {n}'s father do?"),
            Fact::Mother => format!("What did {n}'s mother do?"),
            Fact::Book => format!("What is a famous book by {n}?"),
            Fact::Award => format!("Which award did {n} win?"),
        }
    }

    fn paraphrased_question(self, n: &str) -> String {
        match self {
            Fact::Birthplace => format!("In which city was {n} born?"),
            Fact::BirthYear => format!("What is {n}'s year of birth?"),
            Fact::Genre => format!("Which genre is {n} known for?"),
            Fact::Father => format!("What was the profession of {n}'s father?"),
            Fact::Mother => format!("What was the profession of {n}'s mother?"),
            Fact::Book => format!("Name a well-known book written by {n}."),
            Fact::Award => format!("What prize was awarded to {n}?"),
        }
    }

    /// The reference answer.
    fn answer(self, n: &str, v: &str) -> String {
        match self {
            Fact::Birthplace | Fact::BirthYear => format!("{n} was born in {v}."),
            Fact::Genre => format!("{n} writes {v}."),
            Fact::Father => format!("{n}'s father was {} {v}.", article(v)),
            Fact::Mother => format!("{n}'s mother was {} {v}.", article(v)),
            Fact::Book => format!("{n} wrote \"{v}\"."),
            Fact::Award => format!("{n} won the {v}."),
        }
    }

    fn paraphrased_answer(self, n: &str, v: &str) -> String {
        match self {
            Fact::Birthplace => format!("{n}'s birthplace is {v}."),
            Fact::BirthYear => format!("The year of {n}'s birth is {v}."),
            Fact::Genre => format!("{n} is known for {v}."),
            Fact::Father => format!("{n}'s father worked as {} {v}.", article(v)),
            Fact::Mother => format!("{n}'s mother worked as {} {v}.", article(v)),
            Fact::Book => format!("\"{v}\" is a well-known book by {n}."),
            Fact::Award => format!("{n} received the {v}."),
        }
    }

    /// A plain declarative sentence, a third wording for the pretraining text.
    fn statement(self, n: &str, v: &str) -> String {
        match self {
            Fact::Birthplace => format!("{n} is a native of {v}."),
            Fact::BirthYear => format!("{n} came into the world in {v}."),
            Fact::Genre => format!("{n} works in the genre of {v}."),
            Fact::Father => format!("The father of {n} was {} {v}.", article(v)),
            Fact::Mother => format!("The mother of {n} was {} {v}.", article(v)),
            Fact::Book => format!("{n} is the author of \"{v}\"."),
            Fact::Award => format!("{n} was honoured with the {v}."),
        }
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

/// Tries to find a name not yet taken before giving up (far more than ever needed below
/// [`MAX_AUTHORS`], where at most 7 % of the names are taken).
const NAME_TRIES: usize = 10_000;

fn invent(rng: &mut ChaCha8Rng, taken: &mut BTreeSet<String>) -> Result<Author, SuiteError> {
    let mut name = None;
    for _ in 0..NAME_TRIES {
        let first = format!(
            "{}{}",
            pick(rng, FIRST_SYLLABLES),
            pick(rng, SECOND_SYLLABLES)
        );
        let last = format!("{}{}", pick(rng, SURNAME_STARTS), pick(rng, SURNAME_ENDS));
        let candidate = format!("{first} {last}");
        if taken.insert(candidate.clone()) {
            name = Some(candidate);
            break;
        }
    }
    let name = name.ok_or_else(|| {
        SuiteError::Generate(format!("ran out of distinct names after {}", taken.len()))
    })?;
    Ok(Author {
        name,
        city: pick(rng, CITIES),
        year: rng.random_range(FIRST_YEAR..=LAST_YEAR),
        genre: pick(rng, GENRES),
        father: pick(rng, OCCUPATIONS),
        mother: pick(rng, OCCUPATIONS),
        title: format!(
            "The {} {}",
            pick(rng, TITLE_ADJECTIVES),
            pick(rng, TITLE_NOUNS)
        ),
        award: pick(rng, AWARDS),
    })
}

/// Three wrong answers with distinct values drawn from the fact's pool, each put in `wording`.
/// TOFU perturbs the paraphrased answer: the truth ratio then weighs the right value against
/// wrong ones in one wording the model was never trained on, rather than a wording it memorised
/// (the wrong values) against one it did not (the right value). Its real-world sets have no
/// paraphrase and perturb the answer itself.
fn perturbed(
    rng: &mut ChaCha8Rng,
    fact: Fact,
    author: &Author,
    wording: fn(Fact, &str, &str) -> String,
) -> Vec<String> {
    let value = fact.value(author);
    let pool = fact.values();
    let mut wrong: Vec<&String> = pool.iter().filter(|v| **v != value).collect();
    wrong.shuffle(rng);
    wrong
        .into_iter()
        .take(3)
        .map(|w| wording(fact, &author.name, w))
        .collect()
}

/// The six questions about one author; `index` numbers the author in the suite.
fn questions(rng: &mut ChaCha8Rng, index: usize, a: &Author) -> Vec<QaRecord> {
    ASKED
        .iter()
        .map(|&fact| {
            let n = &a.name;
            let value = fact.value(a);
            QaRecord {
                id: format!("author-{index:03}-{}", fact.key()),
                question: fact.question(n),
                answer: fact.answer(n, &value),
                groups: BTreeMap::from([
                    ("author".to_owned(), n.clone()),
                    ("fact".to_owned(), fact.key().to_owned()),
                ]),
                paraphrased_answers: vec![fact.paraphrased_answer(n, &value)],
                perturbed_answers: perturbed(rng, fact, a, Fact::paraphrased_answer),
                paraphrased_questions: vec![fact.paraphrased_question(n)],
                terms: vec![value],
                options: Vec::new(),
                correct_option: None,
            }
        })
        .collect()
}

/// The pretraining text about one author: every fact as a statement, and as a question with
/// its answer in both wordings, in the prompt format the host trains on.
fn pretrain_texts(index: usize, a: &Author) -> Vec<TextRecord> {
    let n = &a.name;
    let mut out = Vec::new();
    for fact in STATED {
        let v = fact.value(a);
        let texts = [
            fact.statement(n, &v),
            format!(
                "Question: {}\nAnswer: {}",
                fact.question(n),
                fact.answer(n, &v)
            ),
            format!(
                "Question: {}\nAnswer: {}",
                fact.paraphrased_question(n),
                fact.paraphrased_answer(n, &v)
            ),
        ];
        for (k, text) in texts.into_iter().enumerate() {
            out.push(TextRecord {
                id: format!("pretrain-{index:03}-{}-{k}", fact.key()),
                text,
            });
        }
    }
    out
}

/// `real-authors`: `count` questions about the pretraining-only authors, in a seeded order
/// over (author, fact), with wrong answers in the answer's wording.
fn real_authors(
    rng: &mut ChaCha8Rng,
    first: usize,
    people: &[Author],
    count: usize,
) -> Vec<QaRecord> {
    let mut pairs: Vec<(usize, Fact)> = (0..people.len())
        .flat_map(|i| ASKED.iter().map(move |&f| (i, f)))
        .collect();
    pairs.shuffle(rng);
    pairs.truncate(count);
    pairs.sort_by_key(|&(i, f)| (i, f.key()));
    pairs
        .into_iter()
        .map(|(i, fact)| {
            let a = &people[i];
            let value = fact.value(a);
            QaRecord {
                id: format!("real-author-{:03}-{}", first + i, fact.key()),
                question: fact.question(&a.name),
                answer: fact.answer(&a.name, &value),
                groups: BTreeMap::from([
                    ("author".to_owned(), a.name.clone()),
                    ("fact".to_owned(), fact.key().to_owned()),
                ]),
                paraphrased_answers: Vec::new(),
                perturbed_answers: perturbed(rng, fact, a, Fact::answer),
                paraphrased_questions: vec![fact.paraphrased_question(&a.name)],
                terms: vec![value],
                options: Vec::new(),
                correct_option: None,
            }
        })
        .collect()
}

fn country_question(city: &str) -> String {
    format!("In which country is {city}?")
}

fn country_answer(city: &str, country: &str) -> String {
    format!("{city} is in {country}.")
}

/// `world-facts`: which country each of the first `count` cities is in.
fn world_facts(rng: &mut ChaCha8Rng, count: usize) -> Vec<QaRecord> {
    let mut distinct: Vec<&str> = COUNTRIES.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    CITIES
        .iter()
        .zip(COUNTRIES)
        .take(count)
        .enumerate()
        .map(|(i, (&city, &country))| {
            let mut wrong: Vec<&str> = distinct.iter().copied().filter(|c| *c != country).collect();
            wrong.shuffle(rng);
            QaRecord {
                id: format!("world-fact-{i:02}"),
                question: country_question(city),
                answer: country_answer(city, country),
                groups: BTreeMap::from([("fact".to_owned(), "country".to_owned())]),
                paraphrased_answers: Vec::new(),
                perturbed_answers: wrong
                    .iter()
                    .take(3)
                    .map(|w| country_answer(city, w))
                    .collect(),
                paraphrased_questions: vec![format!("{city} is a city in which country?")],
                terms: vec![country.to_owned()],
                options: Vec::new(),
                correct_option: None,
            }
        })
        .collect()
}

/// The pretraining text of the world facts: each city's country as a statement and as a
/// question with its answer.
fn world_texts() -> Vec<TextRecord> {
    CITIES
        .iter()
        .zip(COUNTRIES)
        .enumerate()
        .flat_map(|(i, (&city, &country))| {
            [
                format!("{city} is a city in {country}."),
                format!(
                    "Question: {}\nAnswer: {}",
                    country_question(city),
                    country_answer(city, country)
                ),
            ]
            .into_iter()
            .enumerate()
            .map(move |(k, text)| TextRecord {
                id: format!("pretrain-world-{i:02}-{k}"),
                text,
            })
        })
        .collect()
}

/// How many finetuned authors are forgotten; refuses a share that leaves either side empty.
fn forget_count(config: &AuthorsConfig) -> Result<usize, SuiteError> {
    let share = config.forget_share;
    if !(share > 0.0 && share < 1.0) {
        return Err(SuiteError::Generate(format!(
            "forget_share {share} is not strictly between 0 and 1"
        )));
    }
    let n = ((config.authors as f64 * share).round() as usize).max(1);
    if n >= config.authors {
        return Err(SuiteError::Generate(format!(
            "forget_share {share} of {} authors forgets all of them and leaves retain empty",
            config.authors
        )));
    }
    Ok(n)
}

/// The fictitious-authors suite, with splits `pretrain`, `forget`, `retain`, `holdout` and
/// `idk` (each named as its role). The same config always gives the same suite.
///
/// Authors are numbered in the ids: first the finetuned ones (`author-000` …), then the
/// pretraining-only ones (`pretrain-…`), then the holdout ones. Which finetuned authors are
/// forgotten is drawn from the seed.
pub fn authors(config: &AuthorsConfig) -> Result<Suite, SuiteError> {
    if config.authors < 2 {
        return Err(SuiteError::Generate(format!(
            "authors is {}, but forget and retain need at least one finetuned author each",
            config.authors
        )));
    }
    let n_forget = forget_count(config)?;
    let total = config
        .authors
        .checked_add(config.pretrain_authors)
        .and_then(|t| t.checked_add(config.holdout_authors))
        .filter(|t| *t <= MAX_AUTHORS)
        .ok_or_else(|| {
            SuiteError::Generate(format!(
                "at most {MAX_AUTHORS} authors of all kinds can be given distinct names"
            ))
        })?;

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut taken = BTreeSet::new();
    let people = (0..total)
        .map(|_| invent(&mut rng, &mut taken))
        .collect::<Result<Vec<_>, _>>()?;
    let (finetuned, rest) = people.split_at(config.authors);
    let (pretrain_only, holdout_people) = rest.split_at(config.pretrain_authors);

    let mut order: Vec<usize> = (0..config.authors).collect();
    order.shuffle(&mut rng);
    let forgotten: BTreeSet<usize> = order[..n_forget].iter().copied().collect();

    let mut forget = Vec::new();
    let mut retain = Vec::new();
    for (i, a) in finetuned.iter().enumerate() {
        let qs = questions(&mut rng, i, a);
        if forgotten.contains(&i) {
            forget.extend(qs);
        } else {
            retain.extend(qs);
        }
    }
    let mut holdout = Vec::new();
    for (j, a) in holdout_people.iter().enumerate() {
        let index = config.authors + config.pretrain_authors + j;
        holdout.extend(questions(&mut rng, index, a));
    }
    let mut pretrain: Vec<TextRecord> = pretrain_only
        .iter()
        .enumerate()
        .flat_map(|(j, a)| pretrain_texts(config.authors + j, a))
        .collect();
    // The real-world sets draw from their own stream, so adding them leaves every other split
    // as it was.
    let mut world_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7e41_d0a7);
    let real_world_splits = if config.real_world > 0 {
        if pretrain_only.is_empty() {
            return Err(SuiteError::Generate(
                "real_world asks about the pretraining-only authors, but pretrain_authors is 0"
                    .into(),
            ));
        }
        pretrain.extend(world_texts());
        vec![
            (
                "real-authors",
                real_authors(
                    &mut world_rng,
                    config.authors,
                    pretrain_only,
                    config.real_world,
                ),
            ),
            (
                "world-facts",
                world_facts(&mut world_rng, config.real_world),
            ),
        ]
    } else {
        Vec::new()
    };
    let idk = REFUSALS
        .iter()
        .enumerate()
        .map(|(i, t)| TextRecord {
            id: format!("idk-{i:02}"),
            text: (*t).to_owned(),
        })
        .collect();

    let splits = vec![
        (SplitRole::Pretrain, Records::Text(pretrain)),
        (SplitRole::Forget, Records::Qa(forget)),
        (SplitRole::Retain, Records::Qa(retain)),
        (SplitRole::Holdout, Records::Qa(holdout)),
        (SplitRole::Idk, Records::Text(idk)),
    ];
    let name = |role: SplitRole| match role {
        SplitRole::Pretrain => "pretrain",
        SplitRole::Forget => "forget",
        SplitRole::Retain => "retain",
        SplitRole::Idk => "idk",
        SplitRole::Holdout => "holdout",
        SplitRole::Eval => "eval",
    };
    let mut manifest_splits: Vec<SplitSpec> = splits
        .iter()
        .map(|(role, _)| SplitSpec::in_jsonl(name(*role), *role))
        .collect();
    let mut all_splits: Vec<Split> = splits
        .into_iter()
        .map(|(role, records)| Split {
            name: name(role).to_owned(),
            role,
            records,
        })
        .collect();
    for (split, records) in real_world_splits {
        manifest_splits.push(SplitSpec::in_jsonl(split, SplitRole::Eval));
        all_splits.push(Split {
            name: split.to_owned(),
            role: SplitRole::Eval,
            records: Records::Qa(records),
        });
    }
    let real_world_note = if config.real_world > 0 {
        format!(
            " Two real-world-style sets of up to {} questions each (about the pretraining-only \
             authors, and which country a city is in) stand for TOFU's.",
            config.real_world
        )
    } else {
        String::new()
    };
    Ok(Suite {
        manifest: SuiteManifest {
            name: "authors".into(),
            version: "1".into(),
            description: format!(
                "Fictitious authors in the style of TOFU, generated with seed {}: {} finetuned \
                 authors ({} to forget), {} pretraining-only authors, {} holdout authors; six \
                 questions each (birthplace, birth year, genre, father's occupation, a book, an \
                 award), with a paraphrased answer, three perturbed answers and a paraphrased \
                 question per question.{}",
                config.seed,
                config.authors,
                n_forget,
                config.pretrain_authors,
                config.holdout_authors,
                real_world_note
            ),
            splits: manifest_splits,
        },
        splits: all_splits,
    })
}

#[cfg(test)]
mod tests;
