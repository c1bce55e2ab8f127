#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn seeded(seed: u64) -> AuthorsConfig {
    AuthorsConfig {
        seed,
        ..AuthorsConfig::tiny()
    }
}

fn authors_of(suite: &Suite, split: &str) -> BTreeSet<String> {
    suite
        .split(split)
        .unwrap()
        .questions()
        .iter()
        .map(|r| r.groups["author"].clone())
        .collect()
}

#[test]
fn same_seed_same_suite_other_seed_other_suite() {
    let a = authors(&seeded(7)).unwrap();
    let b = authors(&seeded(7)).unwrap();
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.digest(), b.digest());
    let c = authors(&seeded(8)).unwrap();
    assert_ne!(a, c);
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn the_forgotten_authors_depend_on_the_seed() {
    let chosen: BTreeSet<Vec<String>> = (0..8)
        .map(|seed| {
            let s = authors(&seeded(seed)).unwrap();
            let mut ids: Vec<String> = s
                .split("forget")
                .unwrap()
                .questions()
                .iter()
                .map(|r| r.id[..10].to_owned())
                .collect();
            ids.dedup();
            ids
        })
        .collect();
    assert!(chosen.len() > 1, "always the same authors: {chosen:?}");
}

#[test]
fn splits_have_the_expected_sizes() {
    for cfg in [AuthorsConfig::default(), AuthorsConfig::tiny()] {
        let s = authors(&cfg).unwrap();
        let n_forget = (cfg.authors as f64 * cfg.forget_share).round() as usize;
        let names: Vec<&str> = s.splits.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pretrain", "forget", "retain", "holdout", "idk"]);
        for split in &s.splits {
            assert_eq!(
                serde_json::to_value(split.role).unwrap(),
                split.name.as_str(),
                "split names equal roles"
            );
        }
        assert_eq!(s.split("forget").unwrap().len(), n_forget * 6);
        assert_eq!(
            s.split("retain").unwrap().len(),
            (cfg.authors - n_forget) * 6
        );
        assert_eq!(s.split("holdout").unwrap().len(), cfg.holdout_authors * 6);
        assert_eq!(
            s.split("pretrain").unwrap().len(),
            cfg.pretrain_authors * 7 * 3
        );
        let idk = s.split("idk").unwrap().texts();
        assert!(idk.len() >= 20);
        let distinct: BTreeSet<&str> = idk.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(distinct.len(), idk.len());
        assert_eq!(authors_of(&s, "forget").len(), n_forget);
        assert_eq!(s.manifest.name, "authors");
        assert_eq!(s.manifest.version, "1");
        assert!(!s.manifest.description.is_empty());
    }
    assert_eq!(
        authors(&AuthorsConfig::default())
            .unwrap()
            .split("forget")
            .unwrap()
            .len(),
        4 * 6
    );
}

#[test]
fn the_suite_is_sound_and_no_id_is_in_two_splits() {
    let s = authors(&AuthorsConfig::default()).unwrap();
    assert_eq!(s.problems(), Vec::new());
    let mut ids = BTreeMap::new();
    for split in &s.splits {
        let split_ids = split
            .questions()
            .iter()
            .map(|r| &r.id)
            .chain(split.texts().iter().map(|t| &t.id));
        for id in split_ids {
            if let Some(other) = ids.insert(id.clone(), split.name.clone()) {
                panic!("id {id} is in {other} and {}", split.name);
            }
        }
    }
}

#[test]
fn authors_never_cross_splits_and_finetuned_facts_stay_out_of_pretraining() {
    let s = authors(&AuthorsConfig::default()).unwrap();
    let (forget, retain, holdout) = (
        authors_of(&s, "forget"),
        authors_of(&s, "retain"),
        authors_of(&s, "holdout"),
    );
    assert!(forget.is_disjoint(&retain));
    assert!(forget.is_disjoint(&holdout));
    assert!(retain.is_disjoint(&holdout));
    assert_eq!(forget.len() + retain.len(), 40);
    let pretrain: Vec<&str> = s
        .split("pretrain")
        .unwrap()
        .texts()
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    for name in forget.iter().chain(&retain).chain(&holdout) {
        assert!(
            !pretrain.iter().any(|t| t.contains(name.as_str())),
            "{name} leaks into pretraining"
        );
    }
    // The pretraining text does use the question format and both wordings.
    assert!(
        pretrain
            .iter()
            .any(|t| t.starts_with("Question: Where was "))
    );
    assert!(
        pretrain
            .iter()
            .any(|t| t.starts_with("Question: In which city was "))
    );
}

#[test]
fn every_question_has_its_variants() {
    let s = authors(&AuthorsConfig::default()).unwrap();
    for split in ["forget", "retain", "holdout"] {
        for r in s.split(split).unwrap().questions() {
            let author = &r.groups["author"];
            let fact = &r.groups["fact"];
            assert_eq!(r.groups.len(), 2);
            assert!(
                r.id.starts_with("author-") && r.id.ends_with(&format!("-{fact}")),
                "{}",
                r.id
            );
            assert!(r.question.contains(author.as_str()) && r.question.ends_with(['?', '.']));
            assert!(r.answer.starts_with(author.as_str()) || r.answer.starts_with('"'));
            assert_eq!(r.terms.len(), 1);
            let term = &r.terms[0];
            assert!(r.answer.contains(term.as_str()), "{r:?}");
            assert!(!author.contains(term.as_str()), "{r:?}");

            assert_eq!(r.paraphrased_answers.len(), 1);
            assert_ne!(r.paraphrased_answers[0], r.answer);
            assert!(r.paraphrased_answers[0].contains(term.as_str()));

            assert_eq!(r.paraphrased_questions.len(), 1);
            assert_ne!(r.paraphrased_questions[0], r.question);
            assert!(r.paraphrased_questions[0].contains(author.as_str()));

            assert_eq!(r.perturbed_answers.len(), 3);
            let distinct: BTreeSet<&String> = r.perturbed_answers.iter().collect();
            assert_eq!(distinct.len(), 3, "{r:?}");
            for p in &r.perturbed_answers {
                assert!(!p.contains(term.as_str()), "{p} still says {term}");
                assert!(p.contains(author.as_str()));
                // The paraphrased answer's wording (as TOFU perturbs it): only the value
                // differs, so the prefix is shared.
                let prefix = r.paraphrased_answers[0]
                    .split(term.as_str())
                    .next()
                    .unwrap();
                let prefix = prefix
                    .strip_suffix("an ")
                    .or_else(|| prefix.strip_suffix("a "))
                    .unwrap_or(prefix);
                assert!(p.starts_with(prefix), "{p} vs {}", r.paraphrased_answers[0]);
            }
            assert!(r.options.is_empty() && r.correct_option.is_none());
        }
    }
    let forget = s.split("forget").unwrap().questions();
    let facts: Vec<&str> = forget[..6]
        .iter()
        .map(|r| r.groups["fact"].as_str())
        .collect();
    assert_eq!(
        facts,
        [
            "birthplace",
            "birth-year",
            "genre",
            "father",
            "book",
            "award"
        ]
    );
}

#[test]
fn answers_read_well() {
    let a = Author {
        name: "Vashti Orelan".into(),
        city: "Lisbon",
        year: 1950,
        genre: "poetry",
        father: "engineer",
        mother: "baker",
        title: "The Silent Harbor".into(),
        award: "Aurora Prize",
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let q = questions(&mut rng, 7, &a);
    assert_eq!(q[0].id, "author-007-birthplace");
    assert_eq!(q[0].question, "Where was Vashti Orelan born?");
    assert_eq!(q[0].answer, "Vashti Orelan was born in Lisbon.");
    assert_eq!(q[0].terms, ["Lisbon"]);
    assert_eq!(q[3].answer, "Vashti Orelan's father was an engineer.");
    assert_eq!(q[4].answer, "Vashti Orelan wrote \"The Silent Harbor\".");
    let texts = pretrain_texts(7, &a);
    assert!(
        texts
            .iter()
            .any(|t| t.text == "The mother of Vashti Orelan was a baker.")
    );
}

#[test]
fn names_are_unique_even_for_many_authors() {
    let s = authors(&AuthorsConfig {
        authors: 400,
        pretrain_authors: 400,
        holdout_authors: 200,
        ..AuthorsConfig::default()
    })
    .unwrap();
    let questions: Vec<&QaRecord> = s.splits.iter().flat_map(|s| s.questions()).collect();
    let names: BTreeSet<&String> = questions.iter().map(|r| &r.groups["author"]).collect();
    assert_eq!(names.len(), 600);
    assert!(s.problems().is_empty());
}

#[test]
fn a_small_share_forgets_at_least_one_author() {
    let s = authors(&AuthorsConfig {
        forget_share: 0.01,
        ..AuthorsConfig::tiny()
    })
    .unwrap();
    assert_eq!(authors_of(&s, "forget").len(), 1);
}

#[test]
fn nonsense_sizes_are_refused() {
    let tiny = AuthorsConfig::tiny;
    let bad = [
        AuthorsConfig {
            authors: 0,
            ..tiny()
        },
        AuthorsConfig {
            authors: 1,
            ..tiny()
        },
        AuthorsConfig {
            forget_share: 0.0,
            ..tiny()
        },
        AuthorsConfig {
            forget_share: 1.0,
            ..tiny()
        },
        AuthorsConfig {
            forget_share: -0.5,
            ..tiny()
        },
        AuthorsConfig {
            forget_share: f64::NAN,
            ..tiny()
        },
        // round(0.95 × 8) = 8: nothing left to retain.
        AuthorsConfig {
            forget_share: 0.95,
            ..tiny()
        },
        AuthorsConfig {
            pretrain_authors: MAX_AUTHORS,
            ..tiny()
        },
        AuthorsConfig {
            holdout_authors: usize::MAX,
            ..tiny()
        },
    ];
    for cfg in bad {
        match authors(&cfg) {
            Err(SuiteError::Generate(message)) => assert!(!message.is_empty()),
            other => panic!("{cfg:?} gave {other:?}"),
        }
    }
    assert!(
        authors(&AuthorsConfig {
            pretrain_authors: 0,
            holdout_authors: 0,
            ..tiny()
        })
        .is_ok()
    );
}

#[test]
fn the_real_world_sets_ask_what_pretraining_taught_and_change_nothing_else() {
    let plain = authors(&AuthorsConfig::default()).unwrap();
    let with = authors(&AuthorsConfig {
        real_world: 20,
        ..AuthorsConfig::default()
    })
    .unwrap();
    // Forget, retain, holdout and idk are those of the suite without the sets.
    for name in ["forget", "retain", "holdout", "idk"] {
        assert_eq!(plain.split(name), with.split(name), "{name}");
    }
    let pretrain: String = with
        .split("pretrain")
        .unwrap()
        .texts()
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let finetuned = authors_of(&with, "forget")
        .union(&authors_of(&with, "retain"))
        .cloned()
        .collect::<BTreeSet<_>>();
    for name in ["real-authors", "world-facts"] {
        let split = with.split(name).unwrap();
        assert_eq!(split.role, SplitRole::Eval);
        assert_eq!(split.len(), 20, "{name}");
        for q in split.questions() {
            // TOFU's real-world sets: the answer against three wrong ones in its own wording.
            assert!(q.paraphrased_answers.is_empty());
            assert_eq!(q.perturbed_answers.len(), 3);
            assert!(!q.perturbed_answers.contains(&q.answer));
            let lead = |a: &str| a.split(' ').take(3).collect::<Vec<_>>().join(" ");
            assert!(
                q.perturbed_answers
                    .iter()
                    .all(|p| lead(p) == lead(&q.answer))
            );
            // What is asked was stated in pretraining.
            assert!(pretrain.contains(&q.terms[0]), "{}", q.terms[0]);
        }
    }
    for q in with.split("real-authors").unwrap().questions() {
        assert!(!finetuned.contains(&q.groups["author"]), "{}", q.id);
        assert!(pretrain.contains(&q.answer), "{}", q.answer);
    }
    assert!(pretrain.contains("Question: In which country is Kyoto?\nAnswer: Kyoto is in Japan."));
    assert!(with.problems().is_empty(), "{:?}", with.problems());
    assert!(
        authors(&AuthorsConfig {
            real_world: 5,
            pretrain_authors: 0,
            ..AuthorsConfig::default()
        })
        .is_err()
    );
}
