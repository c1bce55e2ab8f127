//! A news suite after MUSE (Shi et al., 2024): fictitious news articles, deterministic from a seed.
//!
//! MUSE finetunes a model on news *documents* and asks it to forget some of them. It then
//! measures verbatim memorization (how closely the model continues the beginning of a forgotten
//! article), knowledge memorization (whether it still answers questions about forgotten and
//! retained articles), and privacy leakage (whether forgotten articles still look like training
//! members next to holdout articles nobody trained on).
//!
//! Every article here reports an invented event — a survey, a library, a festival, a clean-up, a
//! scholarship programme — of an invented organisation in a real city, on a date, with a number
//! and an invented person, in three to five sentences. The finetuned articles are split into
//! forget and retain documents; questions ask who, where, when and how many about each of them.
//! Pretraining-only articles, with their questions answered in the prompt format, teach the base
//! model the language and how an article's facts are asked, without the finetuned facts.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::REFUSALS;
use crate::{
    ContinuationRecord, QaRecord, Records, Split, SplitRole, SplitSpec, Suite, SuiteError,
    SuiteManifest, TextRecord,
};

/// Sizes and seed of the news suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewsConfig {
    /// Seed of every choice.
    pub seed: u64,
    /// Articles the target model is finetuned on (forget ∪ retain).
    pub articles: usize,
    /// Articles that appear only in the pretraining text, with their questions answered.
    pub pretrain_articles: usize,
    /// Articles no model is trained on (the non-members of privacy leakage); at least one.
    pub holdout_articles: usize,
    /// Share of the finetuned articles to forget: `round(share × articles)` of them, at least one.
    pub forget_share: f64,
}

impl Default for NewsConfig {
    /// Sized like the authors default: a ~1M-parameter model learns it on two CPU cores in about
    /// a minute.
    fn default() -> Self {
        Self {
            seed: 0,
            articles: 40,
            pretrain_articles: 40,
            holdout_articles: 8,
            forget_share: 0.1,
        }
    }
}

impl NewsConfig {
    /// A very small suite for tests.
    pub fn tiny() -> Self {
        Self {
            seed: 0,
            articles: 8,
            pretrain_articles: 8,
            holdout_articles: 2,
            forget_share: 0.25,
        }
    }
}

const ORG_NAMES: &[&str] = &[
    "Velmor",
    "Castrel",
    "Ondara",
    "Halvane",
    "Torvik",
    "Meridane",
    "Quillon",
    "Sarvel",
    "Ebbrook",
    "Lunwick",
    "Pellard",
    "Zanthe",
    "Corvane",
    "Dunmere",
    "Greywater",
    "Ilmaren",
    "Brisholt",
    "Kestrane",
    "Orrin",
    "Tavish",
    "Wendmoor",
    "Ashcroft",
    "Marrow",
    "Solvane",
];
const ORG_KINDS: &[&str] = &[
    "Institute",
    "Foundation",
    "Society",
    "Trust",
    "Council",
    "Cooperative",
    "Observatory",
    "Museum",
    "Academy",
    "Company",
];

/// The most articles (of all kinds) one news suite may have: every article has its own
/// organisation, which is how its questions name it.
pub const MAX_ARTICLES: usize = ORG_NAMES.len() * ORG_KINDS.len();

const FIRST_NAMES: &[&str] = &[
    "Amara",
    "Bastian",
    "Corin",
    "Delphine",
    "Eskil",
    "Farah",
    "Gesine",
    "Hollis",
    "Idris",
    "Jovana",
    "Kaspar",
    "Leontine",
    "Marek",
    "Nerys",
    "Osric",
    "Priya",
    "Quentin",
    "Rosalind",
    "Stellan",
    "Thandi",
    "Ulrich",
    "Viveka",
    "Wilhelmina",
    "Xavier",
    "Yusra",
    "Zoltan",
];
const SURNAME_STARTS: &[&str] = &[
    "Marl", "Tessar", "Okon", "Brav", "Quell", "Ruv", "Sild", "Hask", "Dorv", "Ferr", "Gald",
    "Jarn", "Kolv", "Lusk", "Nebb", "Prann", "Stro", "Tolm", "Vesk", "Wyr",
];
const SURNAME_ENDS: &[&str] = &[
    "ani", "ecki", "holm", "ier", "ova", "ström", "etti", "ando", "quist", "enko", "ard", "ley",
];

/// Real cities with their countries: the one real thing in an article, stated in `pretrain`.
const CITIES: &[(&str, &str)] = &[
    ("Lisbon", "Portugal"),
    ("Oslo", "Norway"),
    ("Quito", "Ecuador"),
    ("Hanoi", "Vietnam"),
    ("Lima", "Peru"),
    ("Riga", "Latvia"),
    ("Accra", "Ghana"),
    ("Tbilisi", "Georgia"),
    ("Montreal", "Canada"),
    ("Nairobi", "Kenya"),
    ("Porto", "Portugal"),
    ("Krakow", "Poland"),
    ("Seville", "Spain"),
    ("Manila", "the Philippines"),
    ("Dakar", "Senegal"),
    ("Tallinn", "Estonia"),
    ("Bergen", "Norway"),
    ("Cusco", "Peru"),
    ("Izmir", "Turkey"),
    ("Perth", "Australia"),
    ("Vienna", "Austria"),
    ("Santiago", "Chile"),
    ("Kyoto", "Japan"),
    ("Marseille", "France"),
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const YEARS: RangeInclusive<u32> = 2005..=2023;

/// Sentences about news in general, for the pretraining text.
const GENERAL: &[&str] = &[
    "A news article reports who did what, where and when.",
    "An institute, a foundation or a society can announce news of its work.",
    "A survey counts what researchers find in a place.",
    "A library lends its collection to anyone who visits.",
    "A festival draws visitors to a city for a few days.",
    "Volunteers give their time to clean up a place without being paid.",
    "A scholarship pays for the studies of a student.",
    "The person who leads a project often speaks for it.",
];

/// One kind of event, with every wording its articles and questions use. Placeholders:
/// `{org}`, `{city}`, `{date}`, `{n}`, `{person}`, `{thing}`.
struct Template {
    /// The `event` group key.
    key: &'static str,
    /// What the event is about, one per article.
    things: &'static [&'static str],
    /// The range of the event's number.
    numbers: RangeInclusive<u32>,
    /// The first sentence: date, organisation, city and number.
    lead: &'static str,
    /// The second sentence: the person.
    person: &'static str,
    /// One to three of these follow, in this order.
    extras: &'static [&'static str],
    /// The event as a verb phrase, and in the past tense (when and where questions).
    event: [&'static str; 2],
    /// The who question, its paraphrase and its answer.
    who: [&'static str; 3],
    /// The how-many question, its paraphrase and its answer.
    count: [&'static str; 3],
}

const TEMPLATES: &[Template] = &[
    Template {
        key: "survey",
        things: &[
            "beetles",
            "mosses",
            "freshwater snails",
            "moths",
            "lichens",
            "orchids",
        ],
        numbers: 12..=480,
        lead: "On {date} the {org} in {city} announced that its survey of {thing} had found {n} species never described before.",
        person: "The survey was led by {person}, who spent four years collecting samples.",
        extras: &[
            "{person} said the results would change how {thing} are studied.",
            "Most of the new species were found in the hills outside {city}.",
            "The {org} plans to publish the full list next year.",
        ],
        event: [
            "announce the results of its survey of {thing}",
            "announced the results of its survey of {thing}",
        ],
        who: [
            "Who led the {org}'s survey of {thing}?",
            "Which person was in charge of the {org}'s survey of {thing}?",
            "{person} led the survey.",
        ],
        count: [
            "How many new species did the {org}'s survey of {thing} find?",
            "What number of undescribed species did the {org} report in its survey of {thing}?",
            "The survey found {n} new species.",
        ],
    },
    Template {
        key: "library",
        things: &[
            "maps",
            "children's books",
            "old newspapers",
            "music scores",
            "seed catalogues",
            "letters",
        ],
        numbers: 800..=9000,
        lead: "On {date} the {org} opened a library of {thing} in {city} that holds {n} items.",
        person: "The library is run by {person}, who began the collection as a student.",
        extras: &[
            "Visitors can read the {thing} free of charge.",
            "{person} hopes the library will draw students from across the region.",
            "The building once housed a post office in the centre of {city}.",
        ],
        event: [
            "open its library of {thing}",
            "opened its library of {thing}",
        ],
        who: [
            "Who runs the {org}'s library of {thing}?",
            "Which person is in charge of the {org}'s library of {thing}?",
            "{person} runs the library.",
        ],
        count: [
            "How many items does the {org}'s library of {thing} hold?",
            "What is the number of items in the {org}'s library of {thing}?",
            "The library holds {n} items.",
        ],
    },
    Template {
        key: "festival",
        things: &[
            "lanterns",
            "folk music",
            "street theatre",
            "kites",
            "puppetry",
            "bread",
        ],
        numbers: 300..=9500,
        lead: "On {date} the {org} held a festival of {thing} in {city} that drew {n} visitors.",
        person: "The festival was organised by {person}, a former teacher.",
        extras: &[
            "{person} said the {org} would hold the festival again next year.",
            "Most visitors came from outside {city}.",
            "The festival lasted three days, and tickets were free for children.",
        ],
        event: [
            "hold its festival of {thing}",
            "held its festival of {thing}",
        ],
        who: [
            "Who organised the {org}'s festival of {thing}?",
            "Which person was behind the {org}'s festival of {thing}?",
            "{person} organised the festival.",
        ],
        count: [
            "How many visitors came to the {org}'s festival of {thing}?",
            "What was the number of visitors at the {org}'s festival of {thing}?",
            "The festival drew {n} visitors.",
        ],
    },
    Template {
        key: "clean-up",
        things: &[
            "the river banks",
            "the old harbour",
            "the city beaches",
            "the northern park",
            "the canal",
            "the railway line",
        ],
        numbers: 40..=900,
        lead: "On {date} the {org} sent {n} volunteers to clean up {thing} in {city}.",
        person: "The work was coordinated by {person}, who has lived in {city} for twenty years.",
        extras: &[
            "The volunteers collected more rubbish than expected.",
            "{person} thanked the people of {city} for their help.",
            "The {org} plans a second clean-up in the spring.",
        ],
        event: ["clean up {thing}", "cleaned up {thing}"],
        who: [
            "Who coordinated the {org}'s clean-up of {thing}?",
            "Which person directed the {org}'s volunteers at {thing}?",
            "{person} coordinated the clean-up.",
        ],
        count: [
            "How many volunteers did the {org} send to clean up {thing}?",
            "What number of volunteers took part in the {org}'s clean-up of {thing}?",
            "The {org} sent {n} volunteers.",
        ],
    },
    Template {
        key: "scholarships",
        things: &[
            "young engineers",
            "nurses",
            "rural teachers",
            "marine biologists",
            "translators",
            "apprentice carpenters",
        ],
        numbers: 10..=400,
        lead: "On {date} the {org} in {city} announced {n} new scholarships for {thing}.",
        person: "The programme is directed by {person}, who received such a scholarship years ago.",
        extras: &[
            "Applications open next month.",
            "{person} said the scholarships would keep talent in {city}.",
            "The first students will start in the autumn.",
        ],
        event: [
            "announce its scholarships for {thing}",
            "announced its scholarships for {thing}",
        ],
        who: [
            "Who directs the {org}'s scholarships for {thing}?",
            "Which person is in charge of the {org}'s scholarship programme for {thing}?",
            "{person} directs the programme.",
        ],
        count: [
            "How many scholarships for {thing} did the {org} announce?",
            "What number of new scholarships for {thing} did the {org} offer?",
            "The {org} announced {n} scholarships.",
        ],
    },
];

/// One invented article's facts.
struct Article {
    /// Numbers the article in the ids.
    index: usize,
    template: &'static Template,
    org: String,
    city: &'static str,
    date: String,
    number: u32,
    person: String,
    thing: &'static str,
    /// Which of the template's extras follow, in order.
    extras: Vec<usize>,
}

/// A fact of an article, asked as a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Who,
    Where,
    When,
    HowMany,
}

const FACTS: [Fact; 4] = [Fact::Who, Fact::Where, Fact::When, Fact::HowMany];

impl Fact {
    /// The `fact` group key and the last part of a question's id.
    fn key(self) -> &'static str {
        match self {
            Fact::Who => "who",
            Fact::Where => "where",
            Fact::When => "when",
            Fact::HowMany => "how-many",
        }
    }
}

impl Article {
    /// `text` with the article's values in place of the placeholders.
    fn fill(&self, text: &str) -> String {
        text.replace("{org}", &self.org)
            .replace("{city}", self.city)
            .replace("{date}", &self.date)
            .replace("{n}", &self.number.to_string())
            .replace("{person}", &self.person)
            .replace("{thing}", self.thing)
    }

    /// The article: three to five sentences, one space apart.
    fn text(&self) -> String {
        let t = self.template;
        let mut sentences = vec![self.fill(t.lead), self.fill(t.person)];
        sentences.extend(self.extras.iter().map(|&i| self.fill(t.extras[i])));
        sentences.join(" ")
    }

    /// The fact's value, as the article states it.
    fn value(&self, fact: Fact) -> String {
        match fact {
            Fact::Who => self.person.clone(),
            Fact::Where => self.city.to_owned(),
            Fact::When => self.date.clone(),
            Fact::HowMany => self.number.to_string(),
        }
    }

    /// The question, its paraphrase and the answer about one fact.
    fn asked(&self, fact: Fact) -> [String; 3] {
        let t = self.template;
        let event = t.event.map(|e| self.fill(e));
        let [now, past] = &event;
        let org = &self.org;
        match fact {
            Fact::Who => t.who.map(|s| self.fill(s)),
            Fact::HowMany => t.count.map(|s| self.fill(s)),
            Fact::Where => [
                format!("In which city did the {org} {now}?"),
                format!("Where did the {org} {now}?"),
                format!("The {org} {past} in {}.", self.city),
            ],
            Fact::When => [
                format!("When did the {org} {now}?"),
                format!("On what date did the {org} {now}?"),
                format!("The {org} {past} on {}.", self.date),
            ],
        }
    }

    fn id(&self) -> String {
        format!("article-{:03}", self.index)
    }

    /// The four questions about the article.
    fn questions(&self) -> Vec<QaRecord> {
        FACTS
            .iter()
            .map(|&fact| {
                let [question, paraphrase, answer] = self.asked(fact);
                QaRecord {
                    id: format!("{}-{}", self.id(), fact.key()),
                    question,
                    answer,
                    groups: BTreeMap::from([
                        ("article".to_owned(), self.org.clone()),
                        ("event".to_owned(), self.template.key.to_owned()),
                        ("fact".to_owned(), fact.key().to_owned()),
                    ]),
                    paraphrased_answers: Vec::new(),
                    perturbed_answers: Vec::new(),
                    paraphrased_questions: vec![paraphrase],
                    terms: vec![self.value(fact)],
                    options: Vec::new(),
                    correct_option: None,
                }
            })
            .collect()
    }

    /// The article as a document.
    fn document(&self) -> TextRecord {
        TextRecord {
            id: self.id(),
            text: self.text(),
        }
    }

    /// The first third of the article's words as a prompt, the rest as its continuation.
    fn continuation(&self) -> ContinuationRecord {
        let text = self.text();
        let words: Vec<&str> = text.split(' ').collect();
        // A third, rounded; an article has far more than two words, so both parts have some.
        let cut = words.len().div_ceil(3).min(words.len().saturating_sub(1));
        ContinuationRecord {
            id: format!("{}-verbmem", self.id()),
            prompt: words[..cut].join(" "),
            continuation: words[cut..].join(" "),
        }
    }

    /// The pretraining text of a pretraining-only article: the article, and each question in both
    /// wordings with its answer, in the prompt format the host trains on.
    fn pretrain_texts(&self) -> Vec<TextRecord> {
        let mut out = vec![TextRecord {
            id: format!("pretrain-{:03}-article", self.index),
            text: self.text(),
        }];
        for fact in FACTS {
            let [question, paraphrase, answer] = self.asked(fact);
            for (k, q) in [question, paraphrase].into_iter().enumerate() {
                out.push(TextRecord {
                    id: format!("pretrain-{:03}-{}-{k}", self.index, fact.key()),
                    text: format!("Question: {q}\nAnswer: {answer}"),
                });
            }
        }
        out
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

/// Tries to find a name not yet taken before giving up (far more than ever needed below
/// [`MAX_ARTICLES`], where at most 4 % of the names are taken).
const NAME_TRIES: usize = 10_000;

fn invent_person(rng: &mut ChaCha8Rng, taken: &mut BTreeSet<String>) -> Result<String, SuiteError> {
    for _ in 0..NAME_TRIES {
        let candidate = format!(
            "{} {}{}",
            pick(rng, FIRST_NAMES),
            pick(rng, SURNAME_STARTS),
            pick(rng, SURNAME_ENDS)
        );
        if taken.insert(candidate.clone()) {
            return Ok(candidate);
        }
    }
    Err(SuiteError::Generate(format!(
        "ran out of distinct names after {}",
        taken.len()
    )))
}

fn invent(
    rng: &mut ChaCha8Rng,
    index: usize,
    org: String,
    taken: &mut BTreeSet<String>,
) -> Result<Article, SuiteError> {
    let template = TEMPLATES.choose(rng).unwrap_or(&TEMPLATES[0]);
    let thing = pick(rng, template.things);
    let (city, _) = CITIES.choose(rng).copied().unwrap_or(("", ""));
    let date = format!(
        "{} {} {}",
        rng.random_range(1..=28u32),
        pick(rng, MONTHS),
        rng.random_range(YEARS)
    );
    let number = rng.random_range(template.numbers.clone());
    let person = invent_person(rng, taken)?;
    let n_extras = rng.random_range(1..=template.extras.len().min(3));
    let mut extras: Vec<usize> =
        rand::seq::index::sample(rng, template.extras.len(), n_extras).into_vec();
    extras.sort_unstable();
    Ok(Article {
        index,
        template,
        org,
        city,
        date,
        number,
        person,
        thing,
        extras,
    })
}

/// How many finetuned articles are forgotten; refuses a share that leaves either side empty.
fn forget_count(config: &NewsConfig) -> Result<usize, SuiteError> {
    let share = config.forget_share;
    if !(share > 0.0 && share < 1.0) {
        return Err(SuiteError::Generate(format!(
            "forget_share {share} is not strictly between 0 and 1"
        )));
    }
    let n = ((config.articles as f64 * share).round() as usize).max(1);
    if n >= config.articles {
        return Err(SuiteError::Generate(format!(
            "forget_share {share} of {} articles forgets all of them and leaves retain empty",
            config.articles
        )));
    }
    Ok(n)
}

/// The fictitious-news suite after MUSE. The same config always gives the same suite.
///
/// Splits: `pretrain` (texts: the pretraining-only articles, their questions answered in both
/// wordings, and general statements), `forget` and `retain` (role forget and retain, texts: the
/// finetuned articles, `round(forget_share × articles)` of them forgotten, drawn by the seed),
/// `holdout` (texts: articles no model is trained on), `verbmem-forget` (eval, continuations:
/// each forget article's first third of words as the prompt, the rest as the continuation),
/// `knowmem-forget` and `knowmem-retain` (eval, questions: who, where, when and how many about
/// each forget and retain article, with a paraphrased question and the fact's value as its
/// term) and `idk` (refusals).
///
/// Articles are numbered in the ids: first the finetuned ones (`article-000` …), then the
/// pretraining-only ones (`pretrain-…`), then the holdout ones.
pub fn news(config: &NewsConfig) -> Result<Suite, SuiteError> {
    if config.articles < 2 {
        return Err(SuiteError::Generate(format!(
            "articles is {}, but forget and retain need at least one finetuned article each",
            config.articles
        )));
    }
    if config.holdout_articles == 0 {
        return Err(SuiteError::Generate(
            "holdout_articles is 0, but privacy leakage compares forget with holdout articles"
                .to_owned(),
        ));
    }
    let n_forget = forget_count(config)?;
    let total = config
        .articles
        .checked_add(config.pretrain_articles)
        .and_then(|t| t.checked_add(config.holdout_articles))
        .filter(|t| *t <= MAX_ARTICLES)
        .ok_or_else(|| {
            SuiteError::Generate(format!(
                "at most {MAX_ARTICLES} articles of all kinds can be given distinct organisations"
            ))
        })?;

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut orgs: Vec<String> = ORG_NAMES
        .iter()
        .flat_map(|n| ORG_KINDS.iter().map(move |k| format!("{n} {k}")))
        .collect();
    orgs.shuffle(&mut rng);
    let mut taken = BTreeSet::new();
    let articles = orgs
        .into_iter()
        .take(total)
        .enumerate()
        .map(|(i, org)| invent(&mut rng, i, org, &mut taken))
        .collect::<Result<Vec<_>, _>>()?;
    let (finetuned, rest) = articles.split_at(config.articles);
    let (pretrain_only, holdout_articles) = rest.split_at(config.pretrain_articles);

    let mut order: Vec<usize> = (0..config.articles).collect();
    order.shuffle(&mut rng);
    let forgotten: BTreeSet<usize> = order[..n_forget].iter().copied().collect();
    let (forget, retain): (Vec<&Article>, Vec<&Article>) =
        finetuned.iter().partition(|a| forgotten.contains(&a.index));

    let mut pretrain: Vec<TextRecord> = pretrain_only
        .iter()
        .flat_map(Article::pretrain_texts)
        .collect();
    let general = CITIES
        .iter()
        .map(|(city, country)| format!("{city} is a city in {country}."))
        .chain(GENERAL.iter().map(|s| (*s).to_owned()));
    pretrain.extend(general.enumerate().map(|(i, text)| TextRecord {
        id: format!("pretrain-general-{i:02}"),
        text,
    }));
    let idk = REFUSALS
        .iter()
        .enumerate()
        .map(|(i, t)| TextRecord {
            id: format!("idk-{i:02}"),
            text: (*t).to_owned(),
        })
        .collect();

    let splits = vec![
        ("pretrain", SplitRole::Pretrain, Records::Text(pretrain)),
        (
            "forget",
            SplitRole::Forget,
            Records::Text(forget.iter().map(|a| a.document()).collect()),
        ),
        (
            "retain",
            SplitRole::Retain,
            Records::Text(retain.iter().map(|a| a.document()).collect()),
        ),
        (
            "holdout",
            SplitRole::Holdout,
            Records::Text(holdout_articles.iter().map(Article::document).collect()),
        ),
        (
            "verbmem-forget",
            SplitRole::Eval,
            Records::Continuation(forget.iter().map(|a| a.continuation()).collect()),
        ),
        (
            "knowmem-forget",
            SplitRole::Eval,
            Records::Qa(forget.iter().flat_map(|a| a.questions()).collect()),
        ),
        (
            "knowmem-retain",
            SplitRole::Eval,
            Records::Qa(retain.iter().flat_map(|a| a.questions()).collect()),
        ),
        ("idk", SplitRole::Idk, Records::Text(idk)),
    ];
    let splits: Vec<Split> = splits
        .into_iter()
        .map(|(name, role, records)| Split {
            name: name.to_owned(),
            role,
            records,
        })
        .collect();
    Ok(Suite {
        manifest: SuiteManifest {
            name: "news".into(),
            version: "1".into(),
            description: format!(
                "Fictitious news articles in the style of MUSE (Shi et al., 2024), generated with \
                 seed {}: {} finetuned articles ({} to forget), {} pretraining-only articles, {} \
                 holdout articles. Forget, retain and holdout are documents; verbmem-forget \
                 continues the forget articles, knowmem-forget and knowmem-retain ask who, where, \
                 when and how many about them.",
                config.seed,
                config.articles,
                n_forget,
                config.pretrain_articles,
                config.holdout_articles
            ),
            splits: splits.iter().map(SplitSpec::for_split).collect(),
        },
        splits,
    })
}
