#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::RecordKind;

fn seeded(seed: u64) -> NewsConfig {
    NewsConfig {
        seed,
        ..NewsConfig::tiny()
    }
}

fn texts<'a>(suite: &'a Suite, split: &str) -> &'a [TextRecord] {
    suite.split(split).unwrap().texts()
}

fn questions<'a>(suite: &'a Suite, split: &str) -> &'a [QaRecord] {
    suite.split(split).unwrap().questions()
}

/// The organisations (one per article) of a knowmem split.
fn orgs_of(suite: &Suite, split: &str) -> BTreeSet<String> {
    questions(suite, split)
        .iter()
        .map(|q| q.groups["article"].clone())
        .collect()
}

#[test]
fn same_config_same_suite_other_config_other_suite() {
    let a = news(&seeded(7)).unwrap();
    let b = news(&seeded(7)).unwrap();
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.digest(), b.digest());
    let others = [
        seeded(8),
        NewsConfig {
            articles: 9,
            ..seeded(7)
        },
        NewsConfig {
            holdout_articles: 3,
            ..seeded(7)
        },
        NewsConfig {
            forget_share: 0.5,
            ..seeded(7)
        },
    ];
    for other in others {
        let c = news(&other).unwrap();
        assert_ne!(a, c, "{other:?}");
        assert_ne!(a.digest(), c.digest(), "{other:?}");
    }
}

#[test]
fn the_forgotten_articles_depend_on_the_seed() {
    let chosen: BTreeSet<Vec<String>> = (0..8)
        .map(|seed| {
            texts(&news(&seeded(seed)).unwrap(), "forget")
                .iter()
                .map(|t| t.id.clone())
                .collect()
        })
        .collect();
    assert!(chosen.len() > 1, "always the same articles: {chosen:?}");
}

#[test]
fn splits_have_the_expected_names_kinds_and_sizes() {
    for cfg in [NewsConfig::default(), NewsConfig::tiny()] {
        let s = news(&cfg).unwrap();
        let n_forget = ((cfg.articles as f64 * cfg.forget_share).round() as usize).max(1);
        let n_retain = cfg.articles - n_forget;
        let layout: Vec<(&str, SplitRole, RecordKind)> = s
            .splits
            .iter()
            .map(|s| (s.name.as_str(), s.role, s.records.kind()))
            .collect();
        use RecordKind::{Continuations, Questions, Texts};
        assert_eq!(
            layout,
            [
                ("pretrain", SplitRole::Pretrain, Texts),
                ("forget", SplitRole::Forget, Texts),
                ("retain", SplitRole::Retain, Texts),
                ("holdout", SplitRole::Holdout, Texts),
                ("verbmem-forget", SplitRole::Eval, Continuations),
                ("knowmem-forget", SplitRole::Eval, Questions),
                ("knowmem-retain", SplitRole::Eval, Questions),
                ("idk", SplitRole::Idk, Texts),
            ]
        );
        let len = |name: &str| s.split(name).unwrap().len();
        assert_eq!(len("forget"), n_forget);
        assert_eq!(len("retain"), n_retain);
        assert_eq!(len("holdout"), cfg.holdout_articles);
        assert_eq!(len("verbmem-forget"), n_forget);
        assert_eq!(len("knowmem-forget"), 4 * n_forget);
        assert_eq!(len("knowmem-retain"), 4 * n_retain);
        assert_eq!(
            len("pretrain"),
            cfg.pretrain_articles * 9 + CITIES.len() + GENERAL.len()
        );
        assert_eq!(len("idk"), REFUSALS.len());
        assert_eq!(orgs_of(&s, "knowmem-forget").len(), n_forget);
        assert_eq!(s.manifest.name, "news");
        assert_eq!(s.manifest.version, "1");
        assert!(s.manifest.description.contains("MUSE"));
    }
    assert_eq!(
        news(&NewsConfig::default())
            .unwrap()
            .split("forget")
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn the_suite_is_sound_and_round_trips_through_a_folder() {
    for cfg in [NewsConfig::default(), NewsConfig::tiny()] {
        let s = news(&cfg).unwrap();
        assert_eq!(s.problems(), Vec::new());
        let dir = tempfile::tempdir().unwrap();
        s.write(dir.path()).unwrap();
        let loaded = Suite::load(dir.path()).unwrap();
        assert_eq!(loaded, s);
        assert_eq!(loaded.digest(), s.digest());
    }
}

#[test]
fn forget_retain_and_holdout_articles_are_disjoint_and_untrained_ones_stay_out_of_pretraining() {
    let s = news(&NewsConfig::default()).unwrap();
    let (forget, retain) = (orgs_of(&s, "knowmem-forget"), orgs_of(&s, "knowmem-retain"));
    assert!(forget.is_disjoint(&retain));
    let docs = |split: &str| -> BTreeSet<&str> {
        texts(&s, split).iter().map(|t| t.text.as_str()).collect()
    };
    assert!(docs("forget").is_disjoint(&docs("retain")));
    assert!(docs("forget").is_disjoint(&docs("holdout")));
    assert!(docs("retain").is_disjoint(&docs("holdout")));
    let pretrain: String = texts(&s, "pretrain")
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for org in forget.iter().chain(&retain) {
        assert!(!pretrain.contains(org.as_str()), "{org} is in pretrain");
    }
    for doc in texts(&s, "holdout") {
        let org = ORG_NAMES
            .iter()
            .flat_map(|n| ORG_KINDS.iter().map(move |k| format!("{n} {k}")))
            .find(|o| doc.text.contains(o.as_str()))
            .unwrap();
        assert!(!pretrain.contains(&org), "holdout {org} is in pretrain");
        assert!(!forget.contains(&org) && !retain.contains(&org));
        for split in ["forget", "retain"] {
            assert!(texts(&s, split).iter().all(|t| !t.text.contains(&org)));
        }
    }
}

#[test]
fn every_knowmem_answer_and_its_fact_are_in_the_articles_document() {
    let s = news(&NewsConfig::default()).unwrap();
    for (qa, docs) in [("knowmem-forget", "forget"), ("knowmem-retain", "retain")] {
        for q in questions(&s, qa) {
            let article = &q.id[..11];
            let doc = texts(&s, docs).iter().find(|t| t.id == article).unwrap();
            assert_eq!(q.terms.len(), 1, "{q:?}");
            let value = &q.terms[0];
            assert!(doc.text.contains(value.as_str()), "{value} not in {doc:?}");
            assert!(doc.text.contains(&q.groups["article"]), "{doc:?}");
            assert!(q.answer.contains(value.as_str()), "{q:?}");
            assert!(
                q.answer.ends_with('.') && q.question.ends_with('?'),
                "{q:?}"
            );
            assert_eq!(q.paraphrased_questions.len(), 1);
            assert_ne!(q.paraphrased_questions[0], q.question);
            assert!(q.paraphrased_questions[0].contains(&q.groups["article"]));
        }
    }
    let facts: BTreeSet<&str> = questions(&s, "knowmem-forget")
        .iter()
        .map(|q| q.groups["fact"].as_str())
        .collect();
    assert_eq!(facts, BTreeSet::from(["who", "where", "when", "how-many"]));
}

#[test]
fn verbmem_continues_each_forget_article_from_its_first_third() {
    let s = news(&NewsConfig::default()).unwrap();
    let forget = texts(&s, "forget");
    let verbmem = s.split("verbmem-forget").unwrap().continuations();
    assert_eq!(verbmem.len(), forget.len());
    for (c, doc) in verbmem.iter().zip(forget) {
        assert_eq!(c.id, format!("{}-verbmem", doc.id));
        assert_eq!(format!("{} {}", c.prompt, c.continuation), doc.text);
        let (p, all) = (c.prompt.split(' ').count(), doc.text.split(' ').count());
        assert!(3 * p >= all && 3 * p <= all + 3, "{p} of {all} words");
    }
}

#[test]
fn articles_read_as_news() {
    let s = news(&NewsConfig::default()).unwrap();
    let mut events = BTreeSet::new();
    for split in ["forget", "retain", "holdout"] {
        for doc in texts(&s, split) {
            let sentences = doc.text.matches(". ").count() + 1;
            assert!((3..=5).contains(&sentences), "{sentences}: {}", doc.text);
            assert!(doc.text.starts_with("On "), "{}", doc.text);
            assert!(!doc.text.contains("  ") && doc.text.ends_with('.'));
            assert!(CITIES.iter().any(|(c, _)| doc.text.contains(c)));
        }
    }
    for q in questions(&s, "knowmem-retain") {
        events.insert(q.groups["event"].clone());
    }
    assert_eq!(events.len(), TEMPLATES.len(), "{events:?}");
    let every: String = s
        .splits
        .iter()
        .flat_map(|sp| {
            sp.texts()
                .iter()
                .map(|t| t.text.clone())
                .chain(sp.questions().iter().flat_map(|q| {
                    [q.question.clone(), q.answer.clone()]
                        .into_iter()
                        .chain(q.paraphrased_questions.clone())
                }))
                .chain(
                    sp.continuations()
                        .iter()
                        .map(|c| format!("{} {}", c.prompt, c.continuation)),
                )
        })
        .collect();
    assert!(
        !every.contains('{') && !every.contains('}'),
        "a placeholder is left"
    );
}

#[test]
fn the_default_is_small_enough_to_train_quickly() {
    let s = news(&NewsConfig::default()).unwrap();
    let chars = |split: &str| -> usize { texts(&s, split).iter().map(|t| t.text.len()).sum() };
    let finetuned = chars("forget") + chars("retain");
    let pretrain = chars("pretrain");
    // The authors default pretrains on about 68 kB of text and finetunes on about 17 kB of
    // questions and answers; this stays within that.
    assert!(finetuned < 17_000, "{finetuned}");
    assert!(pretrain < 70_000, "{pretrain}");
}

#[test]
fn impossible_configs_are_refused_with_a_message() {
    let refused = [
        (
            NewsConfig {
                articles: 1,
                ..NewsConfig::tiny()
            },
            "at least one finetuned article each",
        ),
        (
            NewsConfig {
                forget_share: 0.0,
                ..NewsConfig::tiny()
            },
            "not strictly between 0 and 1",
        ),
        (
            NewsConfig {
                forget_share: 1.0,
                ..NewsConfig::tiny()
            },
            "not strictly between 0 and 1",
        ),
        (
            NewsConfig {
                forget_share: f64::NAN,
                ..NewsConfig::tiny()
            },
            "not strictly between 0 and 1",
        ),
        (
            NewsConfig {
                forget_share: 0.95,
                ..NewsConfig::tiny()
            },
            "leaves retain empty",
        ),
        (
            NewsConfig {
                holdout_articles: 0,
                ..NewsConfig::tiny()
            },
            "holdout_articles is 0",
        ),
        (
            NewsConfig {
                pretrain_articles: MAX_ARTICLES,
                ..NewsConfig::tiny()
            },
            "distinct organisations",
        ),
        (
            NewsConfig {
                articles: usize::MAX,
                ..NewsConfig::tiny()
            },
            "distinct organisations",
        ),
    ];
    for (cfg, expected) in refused {
        match news(&cfg) {
            Err(SuiteError::Generate(m)) => assert!(m.contains(expected), "{cfg:?}: {m}"),
            other => panic!("{cfg:?}: expected a generate error, got {other:?}"),
        }
    }
    // The largest suite the organisations allow is still made.
    let s = news(&NewsConfig {
        articles: MAX_ARTICLES - 20,
        pretrain_articles: 10,
        holdout_articles: 10,
        ..NewsConfig::tiny()
    })
    .unwrap();
    assert_eq!(s.problems(), Vec::new());
}

#[test]
fn the_config_reads_from_json_and_refuses_unknown_fields() {
    let cfg: NewsConfig = serde_json::from_str(
        r#"{"seed":3,"articles":10,"pretrain_articles":4,"holdout_articles":2,"forget_share":0.2}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::from_value::<NewsConfig>(serde_json::to_value(&cfg).unwrap()).unwrap(),
        cfg
    );
    assert!(
        serde_json::from_str::<NewsConfig>(
            r#"{"seed":3,"articles":10,"pretrain_articles":4,"holdout_articles":2,"forget_share":0.2,"x":1}"#
        )
        .is_err()
    );
}
