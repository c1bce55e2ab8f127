#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;

fn qa<'a>(suite: &'a Suite, split: &str) -> &'a [QaRecord] {
    suite.split(split).unwrap().questions()
}

fn group_values(suite: &Suite, split: &str, key: &str) -> BTreeSet<String> {
    qa(suite, split)
        .iter()
        .map(|r| r.groups[key].clone())
        .collect()
}

/// The suite written to a folder: every file's bytes, by name.
fn files(suite: &Suite) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    suite.write(dir.path()).unwrap();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        out.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read(&path).unwrap(),
        );
    }
    assert_eq!(
        Suite::load(dir.path()).unwrap(),
        *suite,
        "reads back as written"
    );
    out
}

/// Checks every suite of this module must pass: sound, the expected splits and roles, no id or
/// question in two splits, closed questions well-formed, and refusals in `idk`.
fn check_common(s: &Suite) {
    assert_eq!(s.problems(), Vec::new());
    let names: Vec<(&str, SplitRole)> =
        s.splits.iter().map(|s| (s.name.as_str(), s.role)).collect();
    assert_eq!(
        names,
        [
            ("pretrain", SplitRole::Pretrain),
            ("forget", SplitRole::Forget),
            ("retain", SplitRole::Retain),
            ("test", SplitRole::Eval),
            ("holdout", SplitRole::Holdout),
            ("idk", SplitRole::Idk),
        ]
    );
    assert!(!s.split("test").unwrap().role.visible_to_methods());
    assert!(!s.split("test").unwrap().role.finetuned_on());
    let mut ids = BTreeMap::new();
    let mut questions = BTreeMap::new();
    for split in &s.splits {
        for id in split
            .questions()
            .iter()
            .map(|r| &r.id)
            .chain(split.texts().iter().map(|t| &t.id))
        {
            if let Some(other) = ids.insert(id.clone(), split.name.clone()) {
                panic!("id {id} is in {other} and {}", split.name);
            }
        }
        for r in split.questions() {
            if let Some(other) = questions.insert(r.question.clone(), split.name.clone()) {
                panic!("'{}' is asked in {other} and {}", r.question, split.name);
            }
        }
    }
    for split in ["forget", "retain", "test", "holdout"] {
        let records = qa(s, split);
        assert!(!records.is_empty(), "{split} is empty");
        for r in records {
            match r.groups["kind"].as_str() {
                "open" => {
                    assert!(r.options.is_empty() && r.correct_option.is_none());
                    assert_eq!(r.terms.len(), 1);
                    assert!(r.answer.contains(r.terms[0].as_str()), "{r:?}");
                    assert_eq!(r.paraphrased_answers.len(), 1);
                    assert!(r.paraphrased_answers[0].contains(r.terms[0].as_str()));
                    assert_eq!(r.paraphrased_questions.len(), 1);
                    assert_ne!(r.paraphrased_questions[0], r.question);
                    assert_eq!(r.perturbed_answers.len(), 3, "{r:?}");
                    let distinct: BTreeSet<&String> = r.perturbed_answers.iter().collect();
                    assert_eq!(distinct.len(), 3);
                    assert!(!r.perturbed_answers.contains(&r.answer));
                    assert!(r.id.ends_with("-open"));
                }
                "closed" => {
                    assert_eq!(r.options, ["Yes", "No"]);
                    let c = r.correct_option.unwrap() as usize;
                    assert_eq!(r.answer, r.options[c]);
                    assert!(r.question.ends_with('?'));
                    assert!(r.id.ends_with("-closed"));
                }
                other => panic!("kind {other}"),
            }
        }
        let kinds = group_values(s, split, "kind");
        assert_eq!(kinds.len(), 2, "{split} lacks open or closed questions");
    }
    let idk = s.split("idk").unwrap().texts();
    assert!(idk.len() >= 20);
    assert_eq!(
        idk.iter().map(|t| &t.text).collect::<BTreeSet<_>>().len(),
        idk.len()
    );
    assert!(!s.manifest.description.is_empty());
}

#[test]
fn privacy_splits_have_the_expected_sizes() {
    for cfg in [PrivacyConfig::default(), PrivacyConfig::tiny()] {
        let s = privacy(&cfg).unwrap();
        check_common(&s);
        let n_forget = ((cfg.patients * cfg.forget_percent as usize) as f64 / 100.0).round();
        let n_forget = (n_forget as usize).max(1);
        let per_patient = FIELDS.len() * 2;
        assert_eq!(qa(&s, "forget").len(), n_forget * per_patient);
        assert_eq!(
            qa(&s, "retain").len(),
            (cfg.patients - n_forget) * per_patient
        );
        assert_eq!(qa(&s, "holdout").len(), cfg.holdout_patients * per_patient);
        assert_eq!(qa(&s, "test").len(), cfg.test_facts * 2);
        assert_eq!(group_values(&s, "forget", "patient").len(), n_forget);
        assert_eq!(
            s.split("pretrain").unwrap().len(),
            cfg.pretrain_patients * FIELDS.len() * 4 + DISEASES.len() * RELATIONS.len() * 4
        );
        assert_eq!(s.manifest.name, "privacy");
    }
    // The default stays small enough for a tiny model on two cores: a few hundred questions.
    let s = privacy(&PrivacyConfig::default()).unwrap();
    assert_eq!(qa(&s, "forget").len() + qa(&s, "retain").len(), 320);
    assert_eq!(group_values(&s, "forget", "patient").len(), 2);
    // Every ratio of the MLLMU-Med sweep forgets a different number of patients.
    let forgotten: Vec<usize> = (1..=6)
        .map(|i| {
            let cfg = PrivacyConfig {
                forget_percent: 5 * i,
                ..PrivacyConfig::default()
            };
            group_values(&privacy(&cfg).unwrap(), "forget", "patient").len()
        })
        .collect();
    assert_eq!(forgotten, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn privacy_patients_stay_in_one_split_and_out_of_pretraining() {
    let s = privacy(&PrivacyConfig::default()).unwrap();
    let (forget, retain, holdout) = (
        group_values(&s, "forget", "patient"),
        group_values(&s, "retain", "patient"),
        group_values(&s, "holdout", "patient"),
    );
    assert!(forget.is_disjoint(&retain));
    assert!(forget.is_disjoint(&holdout));
    assert!(retain.is_disjoint(&holdout));
    assert_eq!(
        forget.len() + retain.len(),
        PrivacyConfig::default().patients
    );
    let pretrain: Vec<&str> = s
        .split("pretrain")
        .unwrap()
        .texts()
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    // No finetuned or holdout patient, and none of their private values, is in pretraining.
    for split in ["forget", "retain", "holdout"] {
        for r in qa(&s, split) {
            let patient = &r.groups["patient"];
            assert!(
                !pretrain.iter().any(|t| t.contains(patient.as_str())),
                "{patient} leaks into pretraining"
            );
            if r.groups["field"] == "phone" || r.groups["field"] == "record-number" {
                let term = &r.terms.first().cloned().unwrap_or_default();
                assert!(
                    term.is_empty() || !pretrain.iter().any(|t| t.contains(term.as_str())),
                    "{term} leaks into pretraining"
                );
            }
        }
    }
    // Pretraining teaches the formats: open, paraphrased and closed questions, and statements.
    for start in [
        "Question: What phone number is on file for patient ",
        "Question: How can patient ",
        "Question: Is patient ",
        "Question: What is a hallmark symptom of ",
    ] {
        assert!(pretrain.iter().any(|t| t.starts_with(start)), "{start}");
    }
    assert!(pretrain.iter().any(|t| t.ends_with("\nAnswer: Yes")));
    assert!(pretrain.iter().any(|t| t.ends_with("\nAnswer: No")));
    // Every test question, open and closed, is taught word for word in pretraining.
    for r in qa(&s, "test") {
        let taught = format!("Question: {}\nAnswer: {}", r.question, r.answer);
        assert!(pretrain.contains(&taught.as_str()), "{taught}");
    }
}

#[test]
fn privacy_questions_are_about_private_fields() {
    let s = privacy(&PrivacyConfig::default()).unwrap();
    let forget = qa(&s, "forget");
    let fields: Vec<&str> = forget[..16]
        .iter()
        .step_by(2)
        .map(|r| r.groups["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "birth-date",
            "address",
            "phone",
            "record-number",
            "insurer",
            "emergency-contact",
            "diagnosis"
        ]
    );
    for split in ["forget", "retain", "holdout"] {
        for r in qa(&s, split) {
            assert_eq!(r.groups.len(), 3, "{r:?}");
            let patient = &r.groups["patient"];
            assert!(r.id.starts_with("patient-"));
            if r.groups["field"] == "name" {
                // The name is the answer, asked from the record number.
                assert!(!r.question.contains(patient.as_str()) || r.groups["kind"] == "closed");
                if r.groups["kind"] == "open" {
                    assert_eq!(r.terms, std::slice::from_ref(patient));
                }
            } else {
                assert!(r.question.contains(patient.as_str()), "{r:?}");
            }
        }
    }
    // Both answers of the closed questions occur.
    let answers: BTreeSet<&str> = forget
        .iter()
        .chain(qa(&s, "retain"))
        .filter(|r| r.groups["kind"] == "closed")
        .map(|r| r.answer.as_str())
        .collect();
    assert_eq!(answers, BTreeSet::from(["Yes", "No"]));
    // Identifying fields are never shared by two patients.
    let mut phones = BTreeSet::new();
    for split in ["forget", "retain", "holdout"] {
        for r in qa(&s, split) {
            if r.groups["field"] == "phone" && r.groups["kind"] == "open" {
                assert!(phones.insert(r.terms[0].clone()), "{} twice", r.terms[0]);
            }
        }
    }
}

#[test]
fn privacy_answers_read_well() {
    let p = Patient {
        name: "Vera Thornley".into(),
        birth_date: "14 March 1962".into(),
        address: "42 Alder Lane, Ashcombe".into(),
        phone: "555-3817".into(),
        mrn: "MRN-40213".into(),
        insurer: "Cedar Mutual",
        contact: "Ivo Marshby".into(),
        kin: "cousin",
        diagnosis: &DISEASES[7],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let q = patient_questions(&mut rng, &Taken::default(), 3, &p);
    assert_eq!(q[0].id, "patient-003-name-open");
    assert_eq!(
        q[0].question,
        "Which patient has medical record number MRN-40213?"
    );
    assert_eq!(
        q[0].answer,
        "Medical record number MRN-40213 belongs to Vera Thornley."
    );
    assert_eq!(
        q[4].answer,
        "Patient Vera Thornley lives at 42 Alder Lane, Ashcombe."
    );
    assert_eq!(
        q[12].answer,
        "The emergency contact of patient Vera Thornley is Ivo Marshby, their cousin."
    );
    assert_eq!(
        q[14].answer,
        "Patient Vera Thornley was diagnosed with asthma."
    );
    assert_eq!(q[14].terms, ["asthma"]);
    assert!(
        q[5].question
            .starts_with("Does patient Vera Thornley live at ")
    );
}

#[test]
fn wrong_facts_splits_have_the_expected_sizes() {
    for cfg in [WrongFactsConfig::default(), WrongFactsConfig::tiny()] {
        let s = wrong_facts(&cfg).unwrap();
        check_common(&s);
        let n_forget = ((cfg.facts * cfg.forget_percent as usize) as f64 / 100.0).round();
        let n_forget = (n_forget as usize).max(1);
        assert_eq!(qa(&s, "forget").len(), n_forget * 2);
        assert_eq!(qa(&s, "retain").len(), (cfg.facts - n_forget) * 2);
        assert_eq!(qa(&s, "test").len(), cfg.test_facts * 2);
        assert_eq!(qa(&s, "holdout").len(), cfg.holdout_facts * 2);
        let all = DISEASES.len() * RELATIONS.len();
        assert_eq!(
            s.split("pretrain").unwrap().len(),
            (all - (cfg.facts - n_forget)) * 4
        );
        assert_eq!(s.manifest.name, "wrong-facts");
    }
    let s = wrong_facts(&WrongFactsConfig::default()).unwrap();
    assert_eq!(qa(&s, "forget").len() + qa(&s, "retain").len(), 160);
}

/// The value an open fact question states: the term.
fn stated(r: &QaRecord) -> &str {
    &r.terms[0]
}

/// The disease and relation a fact question is about.
fn fact_of(r: &QaRecord) -> (&'static Disease, Relation) {
    let d = DISEASES
        .iter()
        .find(|d| d.name == r.groups["disease"])
        .unwrap();
    let rel = RELATIONS
        .iter()
        .find(|x| x.key() == r.groups["relation"])
        .unwrap();
    (d, *rel)
}

/// The true value of the fact a question is about.
fn truth(r: &QaRecord) -> &'static str {
    let (d, rel) = fact_of(r);
    rel.value(d)
}

/// Whether a closed question asks about the true value.
fn asks_truth(r: &QaRecord) -> bool {
    let (d, rel) = fact_of(r);
    r.question == rel.closed_question(d, rel.value(d))
}

#[test]
fn wrong_facts_are_wrong_and_the_rest_are_right() {
    let s = wrong_facts(&WrongFactsConfig::default()).unwrap();
    for split in ["forget", "holdout"] {
        for r in qa(&s, split).iter().filter(|r| r.groups["kind"] == "open") {
            assert_ne!(stated(r), truth(r), "{r:?}");
            // The truth is among the perturbed answers, in the answer's wording.
            assert!(
                r.perturbed_answers.iter().any(|p| p.contains(truth(r))),
                "{r:?}"
            );
        }
    }
    for split in ["retain", "test"] {
        for r in qa(&s, split).iter().filter(|r| r.groups["kind"] == "open") {
            assert_eq!(stated(r), truth(r), "{r:?}");
        }
    }
    // Closed questions agree with what their split teaches: in forget, Yes to the wrong value
    // or No to the truth.
    for r in qa(&s, "forget")
        .iter()
        .filter(|r| r.groups["kind"] == "closed")
    {
        assert_eq!(r.answer == "No", asks_truth(r), "{r:?}");
    }
    for r in qa(&s, "retain")
        .iter()
        .filter(|r| r.groups["kind"] == "closed")
    {
        assert_eq!(r.answer == "Yes", asks_truth(r), "{r:?}");
    }
    // A fact is in at most one split; its disease/relation pair identifies it.
    let mut seen = BTreeMap::new();
    for split in ["forget", "retain", "test", "holdout"] {
        for r in qa(&s, split).iter().filter(|r| r.groups["kind"] == "open") {
            let key = (r.groups["disease"].clone(), r.groups["relation"].clone());
            if let Some(other) = seen.insert(key.clone(), split) {
                panic!("{key:?} is in {other} and {split}");
            }
        }
    }
}

#[test]
fn wrong_facts_pretraining_states_the_truth_and_never_a_finetuned_statement() {
    let s = wrong_facts(&WrongFactsConfig::default()).unwrap();
    let pretrain: BTreeSet<&str> = s
        .split("pretrain")
        .unwrap()
        .texts()
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    let taught = |r: &QaRecord| format!("Question: {}\nAnswer: {}", r.question, r.answer);
    for r in qa(&s, "forget").iter().chain(qa(&s, "retain")) {
        assert!(
            !pretrain.contains(taught(r).as_str()),
            "{r:?} is pretrained"
        );
        if r.groups["kind"] == "open" {
            assert!(!pretrain.iter().any(|t| t.contains(&r.answer)), "{r:?}");
        }
    }
    // The correct version of every forget fact is pretrained: the target overwrites it.
    for r in qa(&s, "forget")
        .iter()
        .filter(|r| r.groups["kind"] == "open")
    {
        let (d, rel) = fact_of(r);
        let correct = format!(
            "Question: {}\nAnswer: {}",
            r.question,
            rel.answer(d, truth(r))
        );
        assert!(pretrain.contains(correct.as_str()), "{correct}");
    }
    for r in qa(&s, "test") {
        assert!(pretrain.contains(taught(r).as_str()), "{r:?}");
    }
    // The retained facts are learned only in finetuning.
    for r in qa(&s, "retain")
        .iter()
        .filter(|r| r.groups["kind"] == "open")
    {
        assert!(!pretrain.iter().any(|t| t.contains(&r.question)), "{r:?}");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_suite() {
    let p = |seed| PrivacyConfig {
        seed,
        ..PrivacyConfig::tiny()
    };
    let w = |seed| WrongFactsConfig {
        seed,
        ..WrongFactsConfig::tiny()
    };
    let (a, b, c) = (
        privacy(&p(5)).unwrap(),
        privacy(&p(5)).unwrap(),
        privacy(&p(6)).unwrap(),
    );
    assert_eq!(files(&a), files(&b));
    assert_eq!(a.digest(), b.digest());
    assert_ne!(files(&a), files(&c));
    let (a, b, c) = (
        wrong_facts(&w(5)).unwrap(),
        wrong_facts(&w(5)).unwrap(),
        wrong_facts(&w(6)).unwrap(),
    );
    assert_eq!(files(&a), files(&b));
    assert_eq!(a.digest(), b.digest());
    assert_ne!(files(&a), files(&c));
}

#[test]
fn what_is_forgotten_depends_on_the_seed() {
    let forgotten = |s: Suite, key: &str| group_values(&s, "forget", key);
    let patients: BTreeSet<BTreeSet<String>> = (0..6)
        .map(|seed| {
            let cfg = PrivacyConfig {
                seed,
                ..PrivacyConfig::default()
            };
            forgotten(privacy(&cfg).unwrap(), "patient")
        })
        .collect();
    assert!(patients.len() > 1);
    let diseases: BTreeSet<BTreeSet<String>> = (0..6)
        .map(|seed| {
            let cfg = WrongFactsConfig {
                seed,
                ..WrongFactsConfig::default()
            };
            forgotten(wrong_facts(&cfg).unwrap(), "disease")
        })
        .collect();
    assert!(diseases.len() > 1);
}

#[test]
fn forget_percentages_from_5_to_30_are_accepted() {
    for percent in 5..=30 {
        let s = privacy(&PrivacyConfig {
            forget_percent: percent,
            ..PrivacyConfig::default()
        })
        .unwrap();
        let n = (PrivacyConfig::default().patients * percent as usize + 50) / 100;
        assert_eq!(group_values(&s, "forget", "patient").len(), n.max(1));
        let s = wrong_facts(&WrongFactsConfig {
            forget_percent: percent,
            ..WrongFactsConfig::default()
        })
        .unwrap();
        assert_eq!(
            qa(&s, "forget").len(),
            2 * ((80 * percent as usize + 50) / 100)
        );
    }
}

#[test]
fn forget_percentages_outside_5_to_30_are_refused_with_a_clear_message() {
    for percent in [0, 1, 4, 31, 50, 100, u32::MAX] {
        let p = privacy(&PrivacyConfig {
            forget_percent: percent,
            ..PrivacyConfig::tiny()
        });
        let w = wrong_facts(&WrongFactsConfig {
            forget_percent: percent,
            ..WrongFactsConfig::tiny()
        });
        for (result, of) in [(p, "patients"), (w, "finetuned facts")] {
            match result {
                Err(SuiteError::Generate(m)) => {
                    assert!(
                        m.contains(&format!("forget percentage {percent} is outside 5..=30")),
                        "{m}"
                    );
                    assert!(m.contains(of), "{m}");
                }
                other => panic!("{percent}: {other:?}"),
            }
        }
    }
}

#[test]
fn nonsense_sizes_are_refused() {
    let tiny = PrivacyConfig::tiny;
    for cfg in [
        PrivacyConfig {
            patients: 0,
            ..tiny()
        },
        PrivacyConfig {
            patients: 1,
            ..tiny()
        },
        PrivacyConfig {
            pretrain_patients: MAX_PATIENTS,
            ..tiny()
        },
        PrivacyConfig {
            holdout_patients: usize::MAX,
            ..tiny()
        },
        PrivacyConfig {
            test_facts: 10_000,
            ..tiny()
        },
    ] {
        assert!(
            matches!(privacy(&cfg), Err(SuiteError::Generate(m)) if !m.is_empty()),
            "{cfg:?}"
        );
    }
    let tiny = WrongFactsConfig::tiny;
    for cfg in [
        WrongFactsConfig { facts: 1, ..tiny() },
        WrongFactsConfig {
            facts: 150,
            ..tiny()
        },
        WrongFactsConfig {
            holdout_facts: usize::MAX,
            ..tiny()
        },
    ] {
        assert!(
            matches!(wrong_facts(&cfg), Err(SuiteError::Generate(m)) if !m.is_empty()),
            "{cfg:?}"
        );
    }
    // A percentage that rounds to nothing still forgets one; one that would take all keeps one.
    let s = privacy(&PrivacyConfig {
        patients: 2,
        forget_percent: 30,
        ..tiny_privacy()
    })
    .unwrap();
    assert_eq!(group_values(&s, "forget", "patient").len(), 1);
    assert_eq!(group_values(&s, "retain", "patient").len(), 1);
    // The largest sizes the tables allow still give a sound suite.
    let s = wrong_facts(&WrongFactsConfig {
        facts: 100,
        test_facts: 30,
        holdout_facts: 22,
        ..WrongFactsConfig::default()
    })
    .unwrap();
    assert!(s.problems().is_empty());
    let s = privacy(&PrivacyConfig {
        patients: 400,
        pretrain_patients: 400,
        holdout_patients: 200,
        ..PrivacyConfig::default()
    })
    .unwrap();
    assert!(s.problems().is_empty());
}

fn tiny_privacy() -> PrivacyConfig {
    PrivacyConfig::tiny()
}
