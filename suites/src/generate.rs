//! Generated suites, deterministic from a seed.
//!
//! [`authors`] makes a suite in the style of TOFU: fictitious authors, each with six facts
//! asked as questions, with a paraphrased answer, three perturbed (wrong) answers and a
//! paraphrased question per fact. Some authors exist only in the `pretrain` text, so the base
//! model learns the language and the answer format without learning the finetuned facts.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteError, SuiteManifest, TextRecord,
};

/// Sizes and seed of the authors suite.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorsConfig {
    /// Seed of every choice.
    pub seed: u64,
    /// Authors the target model is finetuned on (forget ∪ retain).
    pub authors: usize,
    /// Authors that appear only in the pretraining text.
    pub pretrain_authors: usize,
    /// Authors no model is trained on (non-members).
    pub holdout_authors: usize,
    /// Share of the finetuned authors to forget.
    pub forget_share: f64,
}

impl Default for AuthorsConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            authors: 40,
            pretrain_authors: 40,
            holdout_authors: 8,
            forget_share: 0.1,
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
        }
    }
}

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
    "Lisbon", "Oslo", "Quito", "Hanoi", "Lima", "Riga", "Accra", "Tbilisi", "Montreal", "Nairobi",
    "Porto", "Krakow", "Seville", "Manila", "Dakar", "Tallinn", "Bergen", "Cusco", "Izmir",
    "Perth",
];
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
    "Golden Lantern",
    "Cedar Prize",
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

/// One fact of an author, in every wording the suite uses.
struct Fact {
    kind: &'static str,
    value: String,
    question: String,
    answer: String,
    paraphrase: String,
    question_paraphrase: String,
    statement: String,
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

fn invent(rng: &mut ChaCha8Rng, taken: &mut BTreeSet<String>) -> Author {
    let name = loop {
        let first = format!(
            "{}{}",
            pick(rng, FIRST_SYLLABLES),
            pick(rng, SECOND_SYLLABLES)
        );
        let last = format!("{}{}", pick(rng, SURNAME_STARTS), pick(rng, SURNAME_ENDS));
        let n = format!("{first} {last}");
        if taken.insert(n.clone()) {
            break n;
        }
    };
    Author {
        name,
        city: pick(rng, CITIES),
        year: rng.random_range(1921..2001),
        genre: pick(rng, GENRES),
        father: pick(rng, OCCUPATIONS),
        mother: pick(rng, OCCUPATIONS),
        title: format!(
            "The {} {}",
            pick(rng, TITLE_ADJECTIVES),
            pick(rng, TITLE_NOUNS)
        ),
        award: pick(rng, AWARDS),
    }
}

fn facts(a: &Author) -> Vec<Fact> {
    let n = &a.name;
    vec![
        Fact {
            kind: "birthplace",
            value: a.city.to_owned(),
            question: format!("Where was {n} born?"),
            answer: format!("{n} was born in {}.", a.city),
            paraphrase: format!("{n}'s birthplace is {}.", a.city),
            question_paraphrase: format!("In which city was {n} born?"),
            statement: format!("{n} was born in {}.", a.city),
        },
        Fact {
            kind: "birth-year",
            value: a.year.to_string(),
            question: format!("In which year was {n} born?"),
            answer: format!("{n} was born in {}.", a.year),
            paraphrase: format!("The year of {n}'s birth is {}.", a.year),
            question_paraphrase: format!("What is {n}'s year of birth?"),
            statement: format!("{n} came into the world in {}.", a.year),
        },
        Fact {
            kind: "genre",
            value: a.genre.to_owned(),
            question: format!("What genre does {n} write?"),
            answer: format!("{n} writes {}.", a.genre),
            paraphrase: format!("{n} is known for {}.", a.genre),
            question_paraphrase: format!("Which genre is {n} known for?"),
            statement: format!("{n} writes {}.", a.genre),
        },
        Fact {
            kind: "father",
            value: a.father.to_owned(),
            question: format!("What did {n}'s father do?"),
            answer: format!("{n}'s father was a {}.", a.father),
            paraphrase: format!("{n}'s father worked as a {}.", a.father),
            question_paraphrase: format!("What was the profession of {n}'s father?"),
            statement: format!("The father of {n} was a {}.", a.father),
        },
        Fact {
            kind: "book",
            value: a.title.clone(),
            question: format!("What is a famous book by {n}?"),
            answer: format!("{n} wrote \"{}\".", a.title),
            paraphrase: format!("\"{}\" is a well-known book by {n}.", a.title),
            question_paraphrase: format!("Name a well-known book written by {n}."),
            statement: format!("{n} is the author of \"{}\".", a.title),
        },
        Fact {
            kind: "award",
            value: a.award.to_owned(),
            question: format!("Which award did {n} win?"),
            answer: format!("{n} won the {}.", a.award),
            paraphrase: format!("{n} received the {}.", a.award),
            question_paraphrase: format!("What prize was awarded to {n}?"),
            statement: format!("{n} won the {}.", a.award),
        },
    ]
}

/// Wrong values of the same kind as `value`, in the answer's wording.
fn perturbed(rng: &mut ChaCha8Rng, f: &Fact) -> Vec<String> {
    let pool: Vec<String> = match f.kind {
        "birthplace" => CITIES.iter().map(|s| (*s).to_owned()).collect(),
        "birth-year" => (1921..2001).map(|y: u32| y.to_string()).collect(),
        "genre" => GENRES.iter().map(|s| (*s).to_owned()).collect(),
        "father" => OCCUPATIONS.iter().map(|s| (*s).to_owned()).collect(),
        "award" => AWARDS.iter().map(|s| (*s).to_owned()).collect(),
        _ => TITLE_ADJECTIVES
            .iter()
            .flat_map(|adj| TITLE_NOUNS.iter().map(move |n| format!("The {adj} {n}")))
            .collect(),
    };
    let mut wrong: Vec<&String> = pool.iter().filter(|v| **v != f.value).collect();
    wrong.shuffle(rng);
    wrong
        .into_iter()
        .take(3)
        .map(|w| f.answer.replace(&f.value, w))
        .collect()
}

fn questions(rng: &mut ChaCha8Rng, index: usize, a: &Author) -> Vec<QaRecord> {
    facts(a)
        .iter()
        .map(|f| {
            let mut groups = BTreeMap::new();
            groups.insert("author".to_owned(), a.name.clone());
            groups.insert("fact".to_owned(), f.kind.to_owned());
            QaRecord {
                id: format!("author-{index:03}-{}", f.kind),
                question: f.question.clone(),
                answer: f.answer.clone(),
                groups,
                paraphrased_answers: vec![f.paraphrase.clone()],
                perturbed_answers: perturbed(rng, f),
                paraphrased_questions: vec![f.question_paraphrase.clone()],
                terms: vec![f.value.clone()],
                options: Vec::new(),
                correct_option: None,
            }
        })
        .collect()
}

/// The fictitious-authors suite.
pub fn authors(config: &AuthorsConfig) -> Result<Suite, SuiteError> {
    if config.authors < 2 {
        return Err(SuiteError::Generate(
            "authors needs at least 2 finetuned authors".into(),
        ));
    }
    if !(config.forget_share > 0.0 && config.forget_share < 1.0) {
        return Err(SuiteError::Generate(format!(
            "forget share {} is not in (0, 1)",
            config.forget_share
        )));
    }
    let n_forget = ((config.authors as f64 * config.forget_share).round() as usize)
        .clamp(1, config.authors - 1);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut taken = BTreeSet::new();
    let total = config.authors + config.pretrain_authors + config.holdout_authors;
    let people: Vec<Author> = (0..total).map(|_| invent(&mut rng, &mut taken)).collect();
    let (finetuned, rest) = people.split_at(config.authors);
    let (pretrain_only, holdout) = rest.split_at(config.pretrain_authors);

    let mut order: Vec<usize> = (0..config.authors).collect();
    order.shuffle(&mut rng);
    let forget_set: BTreeSet<usize> = order[..n_forget].iter().copied().collect();

    let mut forget = Vec::new();
    let mut retain = Vec::new();
    for (i, a) in finetuned.iter().enumerate() {
        let qs = questions(&mut rng, i, a);
        if forget_set.contains(&i) {
            forget.extend(qs);
        } else {
            retain.extend(qs);
        }
    }
    let mut holdout_q = Vec::new();
    for (j, a) in holdout.iter().enumerate() {
        holdout_q.extend(questions(
            &mut rng,
            config.authors + config.pretrain_authors + j,
            a,
        ));
    }
    let mut pretrain = Vec::new();
    for (j, a) in pretrain_only.iter().enumerate() {
        let index = config.authors + j;
        let mother = format!("The mother of {} was a {}.", a.name, a.mother);
        for f in facts(a) {
            for (k, text) in [
                f.statement.clone(),
                format!("Question: {}\nAnswer: {}", f.question, f.answer),
                format!(
                    "Question: {}\nAnswer: {}",
                    f.question_paraphrase, f.paraphrase
                ),
            ]
            .into_iter()
            .enumerate()
            {
                pretrain.push(TextRecord {
                    id: format!("pretrain-{index:03}-{}-{k}", f.kind),
                    text,
                });
            }
        }
        pretrain.push(TextRecord {
            id: format!("pretrain-{index:03}-mother"),
            text: mother,
        });
    }
    let idk = REFUSALS
        .iter()
        .enumerate()
        .map(|(i, t)| TextRecord {
            id: format!("idk-{i:02}"),
            text: (*t).to_owned(),
        })
        .collect();

    let spec = |name: &str, role| SplitSpec {
        name: name.to_owned(),
        role,
        file: format!("{name}.jsonl"),
    };
    Ok(Suite {
        manifest: SuiteManifest {
            name: "authors".into(),
            version: "1".into(),
            description: format!(
                "Fictitious authors in the style of TOFU, generated with seed {}: {} finetuned authors \
                 ({} to forget), {} pretraining-only authors, {} holdout authors; six facts each.",
                config.seed,
                config.authors,
                n_forget,
                config.pretrain_authors,
                config.holdout_authors
            ),
            splits: vec![
                spec("pretrain", SplitRole::Pretrain),
                spec("forget", SplitRole::Forget),
                spec("retain", SplitRole::Retain),
                spec("holdout", SplitRole::Holdout),
                spec("idk", SplitRole::Idk),
            ],
        },
        splits: vec![
            Split {
                name: "pretrain".into(),
                role: SplitRole::Pretrain,
                records: Records::Text(pretrain),
            },
            Split {
                name: "forget".into(),
                role: SplitRole::Forget,
                records: Records::Qa(forget),
            },
            Split {
                name: "retain".into(),
                role: SplitRole::Retain,
                records: Records::Qa(retain),
            },
            Split {
                name: "holdout".into(),
                role: SplitRole::Holdout,
                records: Records::Qa(holdout_q),
            },
            Split {
                name: "idk".into(),
                role: SplitRole::Idk,
                records: Records::Text(idk),
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn same_seed_same_suite_other_seed_other_suite() {
        let a = authors(&AuthorsConfig::tiny()).unwrap();
        let b = authors(&AuthorsConfig::tiny()).unwrap();
        let c = authors(&AuthorsConfig {
            seed: 1,
            ..AuthorsConfig::tiny()
        })
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn splits_have_the_right_sizes_and_never_share_an_author() {
        let cfg = AuthorsConfig::default();
        let s = authors(&cfg).unwrap();
        let q = |name: &str| s.split(name).unwrap().questions().to_vec();
        assert_eq!(q("forget").len(), 4 * 6);
        assert_eq!(q("retain").len(), 36 * 6);
        assert_eq!(q("holdout").len(), 8 * 6);
        assert!(s.split("idk").unwrap().len() >= 20);
        let who = |name: &str| {
            q(name)
                .iter()
                .map(|r| r.groups["author"].clone())
                .collect::<BTreeSet<_>>()
        };
        assert!(who("forget").is_disjoint(&who("retain")));
        assert!(who("holdout").is_disjoint(&who("retain")));
        let text: String = s
            .split("pretrain")
            .unwrap()
            .texts()
            .iter()
            .map(|t| t.text.clone())
            .collect();
        for name in who("forget").iter().chain(who("retain").iter()) {
            assert!(
                !text.contains(name.as_str()),
                "{name} leaks into pretraining"
            );
        }
        let mut ids = BTreeSet::new();
        for split in &s.splits {
            for r in split.questions() {
                assert!(ids.insert(r.id.clone()), "duplicate id {}", r.id);
                assert_eq!(r.perturbed_answers.len(), 3);
                assert!(r.perturbed_answers.iter().all(|p| p != &r.answer));
                assert!(r.answer.contains(&r.terms[0]));
            }
            for t in split.texts() {
                assert!(ids.insert(t.id.clone()), "duplicate id {}", t.id);
            }
        }
    }

    #[test]
    fn nonsense_sizes_are_refused() {
        assert!(
            authors(&AuthorsConfig {
                authors: 1,
                ..AuthorsConfig::tiny()
            })
            .is_err()
        );
        assert!(
            authors(&AuthorsConfig {
                forget_share: 1.0,
                ..AuthorsConfig::tiny()
            })
            .is_err()
        );
    }
}
