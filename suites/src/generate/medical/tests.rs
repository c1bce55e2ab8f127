#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::vocabulary::{decimal, parse, valid_code};
use super::*;

fn seeded(seed: u64) -> MedicalConfig {
    MedicalConfig {
        seed,
        ..MedicalConfig::tiny()
    }
}

fn by_category(names: &[&str]) -> MedicalConfig {
    MedicalConfig {
        forget: ForgetSpec::Categories(names.iter().map(|s| (*s).to_owned()).collect()),
        ..MedicalConfig::default()
    }
}

fn questions<'a>(suite: &'a Suite, split: &str) -> &'a [QaRecord] {
    suite.split(split).unwrap().questions()
}

fn patients_of(suite: &Suite, split: &str) -> BTreeSet<String> {
    questions(suite, split)
        .iter()
        .map(|r| r.groups["patient"].clone())
        .collect()
}

fn generate_err(config: &MedicalConfig) -> String {
    match medical(config) {
        Err(SuiteError::Generate(message)) => message,
        other => panic!("{config:?} gave {other:?}"),
    }
}

/// Whether `text` names `name` as a whole name (not as the start of a longer one).
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        !text[i + name.len()..]
            .chars()
            .next()
            .is_some_and(char::is_alphabetic)
    })
}

fn shared() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/medical")
}

// ---- The vocabulary ----

#[test]
fn the_embedded_vocabulary_is_sound() {
    let v = vocabulary().unwrap();
    assert_eq!(v.categories.len(), 11);
    assert_eq!(v.diseases.len(), 154);
    assert_eq!(v.labs.len(), 24);
    for name in ["cancer", "infectious and immune", "cardiovascular"] {
        assert!(v.category(name).is_some(), "{name}");
    }
    for d in &v.diseases {
        // Every disease's category exists and holds its code; codes parse.
        let c = &v.categories[d.category];
        assert!(valid_code(&d.code), "{}", d.code);
        assert!(c.icd.iter().any(|r| r.contains(&d.code[..3])), "{}", d.code);
        // Lab references resolve; procedures, drugs and symptoms are there.
        for (lab, _) in &d.labs {
            assert!(*lab < v.labs.len());
        }
        assert!(d.symptoms.len() >= 2 && d.drugs.len() >= 2 && !d.procedures.is_empty());
        assert!(d.ages.0 <= d.ages.1);
    }
    // Some diseases move labs, in both directions.
    assert!(v.diseases.iter().filter(|d| !d.labs.is_empty()).count() >= 30);
    assert!(
        v.diseases
            .iter()
            .any(|d| d.labs.iter().any(|(_, x)| *x == Direction::Low))
    );
}

/// The embedded file says what its sources say: re-read them and compare.
#[test]
fn the_vocabulary_matches_its_sources() {
    let v = vocabulary().unwrap();
    let faker: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(shared().join("faker_healthcare_diseases.json")).unwrap(),
    )
    .unwrap();
    let source: Vec<&serde_json::Value> = faker["diseases"].as_array().unwrap().iter().collect();
    let effects = &faker["condition_lab_effects"];
    for d in &v.diseases {
        let s = source
            .iter()
            .find(|s| s["icd10"] == d.code.as_str())
            .unwrap_or_else(|| panic!("{} is not in the source", d.code));
        assert_eq!(s["name"], d.name.as_str());
        assert_eq!(s["medical_specialty"], d.specialty.as_str());
        let symptoms: Vec<String> = s["symptoms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_lowercase())
            .collect();
        let ours: Vec<String> = d.symptoms.iter().map(|x| x.to_lowercase()).collect();
        assert_eq!(ours, symptoms, "{}", d.name);
        let meds: Vec<&str> = s["medications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(
            d.drugs.iter().all(|m| meds.contains(&m.as_str())),
            "{}",
            d.name
        );
        let moved: BTreeMap<String, String> = effects
            .get(&d.code)
            .and_then(|e| e.as_object())
            .map(|o| {
                o.iter()
                    .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let ours: BTreeMap<String, String> = d
            .labs
            .iter()
            .map(|(l, dir)| {
                let word = if *dir == Direction::High {
                    "high"
                } else {
                    "low"
                };
                (v.labs[*l].id.clone(), word.to_owned())
            })
            .collect();
        assert_eq!(ours, moved, "{}", d.name);
    }
    for lab in &v.labs {
        let s = &faker["lab_definitions"][&lab.id];
        let scale = 10f64.powi(lab.decimals as i32);
        let low = s["ref_low"].as_f64().unwrap();
        assert_eq!(lab.low, (low * scale).round() as i64, "{}", lab.id);
        let high = s["ref_high"].as_f64().unwrap();
        assert_eq!(lab.high, (high * scale).round() as i64, "{}", lab.id);
        if lab.id != "inr" {
            assert_eq!(s["unit"], lab.unit.as_str());
        }
    }

    let tsv = fs_err::read_to_string(shared().join("icd10cm_2026_chapters_blocks_categories.tsv"))
        .unwrap();
    let mut titles = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (code, title) = match cols[0] {
            "chapter" => {
                let (t, r) = cols[2].rsplit_once(" (").unwrap();
                (r.trim_end_matches(')').to_owned(), t.to_owned())
            }
            "block" => (
                cols[1].to_owned(),
                cols[2].rsplit_once(" (").unwrap().0.to_owned(),
            ),
            _ => (cols[1].to_owned(), cols[2].to_owned()),
        };
        titles.insert(code, title);
    }
    for c in &v.categories {
        for r in &c.icd {
            assert_eq!(titles.get(&r.range), Some(&r.title), "{}", r.range);
        }
    }
    for d in &v.diseases {
        assert_eq!(titles.get(&d.code[..3]), Some(&d.icd_title), "{}", d.code);
    }
}

#[test]
fn a_broken_vocabulary_is_refused_with_what_is_wrong() {
    let good = include_str!("../../../data/medical-vocabulary.json");
    assert!(parse(good).is_ok());
    let cases = [
        (
            "\"category\":\"cancer\"",
            "\"category\":\"oncology\"",
            "unknown category 'oncology'",
        ),
        ("\"code\":\"C61\"", "\"code\":\"C6\"", "not an ICD-10 code"),
        (
            "\"hba1c\":\"high\"",
            "\"hba1c_x\":\"high\"",
            "unknown lab 'hba1c_x'",
        ),
        // Type 2 Diabetes filed under cardiovascular: E11 lies outside its ranges.
        (
            "\"code\":\"E11.9\",\"icd_title\":\"Type 2 diabetes mellitus\",\"category\":\"endocrine-metabolic\"",
            "\"code\":\"E11.9\",\"icd_title\":\"Type 2 diabetes mellitus\",\"category\":\"cardiovascular\"",
            "E11 lies",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(good.contains(from), "{from}");
        let broken = good.replacen(from, to, 1);
        let e = parse(&broken).unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
    assert!(parse("{").is_err());
}

#[test]
fn codes_and_decimals() {
    for ok in ["E11.9", "I10", "J45.909", "O9A", "M35.00", "U07.1"] {
        assert!(valid_code(ok), "{ok}");
    }
    for bad in [
        "",
        "E1",
        "e11.9",
        "E11.",
        "E11.12345",
        "11E",
        "E11-9",
        "EE1",
    ] {
        assert!(!valid_code(bad), "{bad}");
    }
    assert_eq!(decimal(58, 0), "58");
    assert_eq!(decimal(91, 1), "9.1");
    assert_eq!(decimal(5, 2), "0.05");
    assert_eq!(decimal(-5, 1), "-0.5");
    assert_eq!(decimal(120, 1), "12.0");
}

// ---- Patients ----

#[test]
fn patients_are_consistent_with_their_disease() {
    let v = vocabulary().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut names = BTreeSet::new();
    let mut records = BTreeSet::new();
    for (i, d) in v.diseases.iter().enumerate() {
        for k in 0..6 {
            let p = invent(&mut rng, v, i * 6 + k, i, &mut names, &mut records).unwrap();
            if let Some(sex) = d.sex {
                assert_eq!(p.sex, sex, "{}", d.name);
            }
            assert!(
                (d.ages.0..=d.ages.1).contains(&p.age),
                "{} {}",
                d.name,
                p.age
            );
            // The age is exact: the birthday has passed this year unless born a year earlier.
            let had_birthday = (p.born.month, p.born.day) <= (p.admitted.month, p.admitted.day);
            let years = p.admitted.year - p.born.year - i32::from(!had_birthday);
            assert_eq!(years, p.age as i32);
            assert!(p.admitted.day <= days_in_month(p.admitted.year, p.admitted.month));
            assert!(d.symptoms.iter().any(|s| s == p.symptoms[0]));
            assert_ne!(p.symptoms[0], p.symptoms[1]);
            assert_ne!(p.drugs[0], p.drugs[1]);
            assert!(d.drugs.iter().any(|s| s == p.drugs[1]));
            assert!(d.procedures.iter().any(|s| s == p.procedure));
            assert_eq!(p.labs.len(), d.labs.len() + 2);
            for r in &p.labs {
                let lab = &v.labs[r.lab];
                assert!(lab.min <= r.value && r.value <= lab.max, "{}", lab.id);
                match r.flag {
                    Some(Direction::High) => assert!(r.value > lab.high, "{}", lab.id),
                    Some(Direction::Low) => assert!(r.value < lab.low, "{}", lab.id),
                    None => assert!(lab.low <= r.value && r.value <= lab.high),
                }
                let moved = d.labs.iter().find(|(l, _)| *l == r.lab).map(|(_, x)| *x);
                assert_eq!(r.flag, moved);
            }
            assert!(p.record.starts_with("MRN-") && p.record.len() == 11);
        }
    }
    assert_eq!(names.len(), v.diseases.len() * 6);
    assert_eq!(records.len(), v.diseases.len() * 6);
}

#[test]
fn a_note_and_answers_read_well() {
    let v = vocabulary().unwrap();
    let i = v.diseases.iter().position(|d| d.code == "E11.9").unwrap();
    let d = &v.diseases[i];
    let hba1c = v.labs.iter().position(|l| l.id == "hba1c").unwrap();
    let glucose = v
        .labs
        .iter()
        .position(|l| l.id == "fasting_glucose")
        .unwrap();
    let sodium = v.labs.iter().position(|l| l.id == "sodium").unwrap();
    let p = Patient {
        number: 7,
        name: "Ada Kovarik".into(),
        sex: Sex::Female,
        born: Date {
            year: 1958,
            month: 3,
            day: 14,
        },
        admitted: Date {
            year: 2023,
            month: 7,
            day: 2,
        },
        age: 65,
        record: "MRN-4829131".into(),
        disease: d,
        disease_index: i,
        symptoms: ["blurred vision", "fatigue"],
        drugs: ["Metformin", "Sitagliptin"],
        procedure: "Blood Test",
        labs: vec![
            LabResult {
                lab: glucose,
                value: 91,
                flag: Some(Direction::High),
            },
            LabResult {
                lab: hba1c,
                value: 58,
                flag: Some(Direction::High),
            },
            LabResult {
                lab: sodium,
                value: 140,
                flag: None,
            },
        ],
    };
    let selected: Vec<usize> = (0..v.diseases.len()).collect();
    let ctx = Ctx {
        vocab: v,
        pools: Pools::new(v, &selected),
    };
    assert_eq!(
        ctx.note(&p),
        "Clinical note for Ada Kovarik (female, born 1958-03-14, aged 65; record MRN-4829131; \
         admitted 2023-07-02). Diagnosis: Type 2 Diabetes (E11.9). Symptoms: blurred vision, \
         fatigue. Labs: fasting glucose 9.1 mmol/L (high), HbA1c 58 mmol/mol (high), sodium 140 \
         mmol/L (normal). Medications: Metformin, Sitagliptin. Procedure: Blood Test. Follow-up: \
         Endocrinology."
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ask = |rng: &mut ChaCha8Rng, k| ctx.ask(rng, &p, k).unwrap();
    let a = ask(&mut rng, Kind::Diagnosis);
    assert_eq!(a.question, "What was Ada Kovarik diagnosed with?");
    assert_eq!(a.answer, "Ada Kovarik was diagnosed with Type 2 Diabetes.");
    assert_eq!(a.terms, ["Type 2 Diabetes"]);
    let a = ask(&mut rng, Kind::Medication);
    assert_eq!(a.answer, "Ada Kovarik takes Metformin and Sitagliptin.");
    let a = ask(&mut rng, Kind::LabValue);
    assert_eq!(a.question, "What was Ada Kovarik's fasting glucose result?");
    assert_eq!(a.answer, "Ada Kovarik's fasting glucose was 9.1 mmol/L.");
    assert_eq!(a.terms, ["9.1 mmol/L"]);
    let a = ask(&mut rng, Kind::Specialty);
    assert_eq!(
        a.answer,
        "Ada Kovarik should be followed by Endocrinology, because Ada Kovarik has Type 2 Diabetes."
    );
    let a = ask(&mut rng, Kind::Indication);
    assert_eq!(a.question, "Why does Ada Kovarik take Metformin?");
    assert_eq!(
        a.answer,
        "Ada Kovarik takes Metformin to treat Type 2 Diabetes."
    );
    for wrong in &a.perturbed {
        // A wrong disease is never one Metformin also treats.
        let named = v
            .diseases
            .iter()
            .find(|d| wrong.ends_with(&format!(" {}.", d.name)));
        assert!(
            !named.unwrap().drugs.iter().any(|m| m == "Metformin"),
            "{wrong}"
        );
    }
    let a = ask(&mut rng, Kind::LabInterpretation);
    assert_eq!(
        a.answer,
        "Ada Kovarik's high fasting glucose and high HbA1c are outside their reference ranges, \
         consistent with Type 2 Diabetes."
    );
    assert_eq!(a.terms, ["fasting glucose", "HbA1c", "Type 2 Diabetes"]);
    let a = ask(&mut rng, Kind::Category);
    assert_eq!(
        a.answer,
        "Ada Kovarik's Type 2 Diabetes (E11.9) belongs to the endocrine and metabolic category."
    );
    let summary = ctx.disease_summary(d);
    assert!(
        summary.starts_with(
            "Type 2 Diabetes (E11.9) belongs to the endocrine and metabolic category. Its \
             symptoms include frequent urination, increased appetite, fatigue, blurred vision \
             and weight loss."
        ),
        "{summary}"
    );
    assert!(
        summary.contains("It raises fasting glucose and HbA1c."),
        "{summary}"
    );
    assert!(
        summary.contains("may undergo a Blood Test or an Ultrasound"),
        "{summary}"
    );
}

// ---- Suites ----

#[test]
fn splits_have_the_expected_sizes_and_roles() {
    let v = vocabulary().unwrap();
    for cfg in [MedicalConfig::tiny(), MedicalConfig::default()] {
        let s = medical(&cfg).unwrap();
        let share = match cfg.forget {
            ForgetSpec::Patients { share } => share,
            ForgetSpec::Categories(_) => unreachable!(),
        };
        let k = (share * cfg.patients as f64).round() as usize;
        let n = cfg.patients;
        let roles: Vec<(&str, SplitRole)> =
            s.splits.iter().map(|s| (s.name.as_str(), s.role)).collect();
        assert_eq!(
            roles,
            [
                ("pretrain", SplitRole::Pretrain),
                ("forget", SplitRole::Forget),
                ("retain", SplitRole::Retain),
                ("knowledge", SplitRole::Retain),
                ("forget-reasoning", SplitRole::Eval),
                ("retain-reasoning", SplitRole::Eval),
                ("forget-rephrased", SplitRole::Eval),
                ("holdout", SplitRole::Holdout),
                ("patient-terms", SplitRole::Eval),
                ("disease-terms", SplitRole::Eval),
                ("idk", SplitRole::Idk),
            ]
        );
        let visible: Vec<&str> = s
            .splits
            .iter()
            .filter(|s| s.role.visible_to_methods())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(visible, ["forget", "retain", "knowledge", "idk"]);
        let len = |name: &str| s.split(name).unwrap().len();
        assert_eq!(len("forget"), 4 * k);
        assert_eq!(len("retain"), 4 * (n - k));
        assert_eq!(len("forget-reasoning"), 4 * k);
        assert_eq!(len("retain-reasoning"), 4 * (n - k));
        assert_eq!(len("forget-rephrased"), 4 * k);
        assert_eq!(len("holdout"), 4 * cfg.holdout_patients);
        assert_eq!(len("patient-terms"), n);
        assert_eq!(len("disease-terms"), 11);
        assert_eq!(len("idk"), REFUSALS.len());
        let used: Vec<&Disease> = questions(&s, "disease-terms")
            .iter()
            .map(|r| {
                v.diseases
                    .iter()
                    .find(|d| d.name == r.groups["disease"])
                    .unwrap()
            })
            .collect();
        // Per disease: the summary, five facts in two forms, one line per drug, procedures.
        let disease_texts: usize = used.iter().map(|d| 12 + d.drugs.len()).sum();
        assert_eq!(
            len("pretrain"),
            2 * v.labs.len() + v.categories.len() + disease_texts + 17 * cfg.pretrain_patients
        );
        // Five facts per disease, but no lab question for a disease that moves no lab.
        let known: usize = used
            .iter()
            .map(|d| 4 + usize::from(!d.labs.is_empty()))
            .sum();
        assert_eq!(len("knowledge"), known);
        assert_eq!(patients_of(&s, "forget").len(), k);
        assert_eq!(patients_of(&s, "retain").len(), n - k);
        assert_eq!(patients_of(&s, "holdout").len(), cfg.holdout_patients);
        // One disease per category: each category appears once in disease-terms.
        let cats: BTreeSet<&str> = questions(&s, "disease-terms")
            .iter()
            .map(|r| r.groups["category"].as_str())
            .collect();
        assert_eq!(cats.len(), 11);
        assert_eq!(s.manifest.name, "medical");
        assert!(
            s.manifest
                .description
                .contains(&format!("{n} finetuned patients"))
        );
        assert_eq!(s.problems(), Vec::new());
    }
    // The default compares like for like: some retained patients share a forgotten disease.
    let s = medical(&MedicalConfig::default()).unwrap();
    let same = questions(&s, "retain")
        .iter()
        .filter(|r| r.groups["relation"] == "same-disease")
        .count();
    assert!(same >= 4 * 4, "only {same} same-disease retain questions");
}

#[test]
fn the_full_size_has_amnesias_counts() {
    let s = medical(&MedicalConfig::amnesia_full()).unwrap();
    let finetuned: BTreeSet<String> = ["forget", "retain"]
        .iter()
        .flat_map(|n| patients_of(&s, n))
        .collect();
    assert_eq!(finetuned.len(), 8_820);
    let asked: usize = ["forget", "retain", "forget-reasoning", "retain-reasoning"]
        .iter()
        .map(|n| s.split(n).unwrap().len())
        .sum();
    assert_eq!(asked, 70_560);
    assert_eq!(s.split("forget").unwrap().len(), 882 * 4);
    assert_eq!(s.split("patient-terms").unwrap().len(), 8_820);
    assert_eq!(s.split("disease-terms").unwrap().len(), 154);
    assert_eq!(s.split("holdout").unwrap().len(), 882 * 4);
    assert_eq!(s.problems(), Vec::new());
    // Every disease has patients: 8,820 over 154 diseases is 57 or 58 each.
    let mut per_disease: BTreeMap<&str, usize> = BTreeMap::new();
    for r in questions(&s, "patient-terms") {
        *per_disease.entry(r.groups["disease"].as_str()).or_default() += 1;
    }
    assert_eq!(per_disease.len(), 154);
    assert!(per_disease.values().all(|&c| c == 57 || c == 58));
}

#[test]
fn ids_are_unique_and_no_example_is_in_two_splits() {
    for cfg in [MedicalConfig::default(), by_category(&["cardiovascular"])] {
        let s = medical(&cfg).unwrap();
        let mut ids = BTreeMap::new();
        let mut asked = BTreeMap::new();
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
                if let Some(other) = asked.insert(r.question.clone(), split.name.clone()) {
                    panic!("'{}' is asked in {other} and {}", r.question, split.name);
                }
            }
        }
        // Patients never cross the forget, retain and holdout sides.
        let forget = patients_of(&s, "forget");
        let retain = patients_of(&s, "retain");
        let holdout = patients_of(&s, "holdout");
        assert!(forget.is_disjoint(&retain) && forget.is_disjoint(&holdout));
        assert!(retain.is_disjoint(&holdout));
        assert_eq!(patients_of(&s, "forget-reasoning"), forget);
        assert_eq!(patients_of(&s, "forget-rephrased"), forget);
        assert_eq!(patients_of(&s, "retain-reasoning"), retain);
        let noted = patients_of(&s, "patient-terms");
        assert_eq!(noted, forget.union(&retain).cloned().collect());
        // No finetuned or holdout patient is in the pretraining text; its own patients are.
        let pretrain: Vec<&str> = s
            .split("pretrain")
            .unwrap()
            .texts()
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        for name in forget.iter().chain(&retain).chain(&holdout) {
            assert!(
                !pretrain.iter().any(|t| mentions(t, name)),
                "{name} leaks into pretraining"
            );
        }
        assert!(pretrain.iter().any(|t| t.starts_with("Clinical note for ")));
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_suite() {
    let a = medical(&seeded(7)).unwrap();
    let b = medical(&seeded(7)).unwrap();
    assert_eq!(a, b);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    a.write(da.path()).unwrap();
    b.write(db.path()).unwrap();
    let mut files = 0;
    for spec in a
        .manifest
        .splits
        .iter()
        .map(|s| s.file.as_str())
        .chain(["suite.json"])
    {
        let x = fs_err::read(da.path().join(spec)).unwrap();
        let y = fs_err::read(db.path().join(spec)).unwrap();
        assert_eq!(x, y, "{spec} differs");
        files += 1;
    }
    assert_eq!(files, 12);
    assert_eq!(Suite::load(da.path()).unwrap(), a);

    let c = medical(&seeded(8)).unwrap();
    assert_ne!(a, c);
    assert_ne!(a.digest(), c.digest());
    // The seed changes who is forgotten, not only the names.
    let forgotten = |seed| -> Vec<String> {
        let s = medical(&seeded(seed)).unwrap();
        let mut ids: Vec<String> = questions(&s, "forget")
            .iter()
            .map(|r| r.id[..13].to_owned())
            .collect();
        ids.dedup();
        ids
    };
    let chosen: BTreeSet<Vec<String>> = (0..8).map(forgotten).collect();
    assert!(chosen.len() > 1, "always the same patients: {chosen:?}");
}

#[test]
fn patient_level_shares_stay_within_5_to_25_percent() {
    for n in [4, 5, 7, 10, 19, 20, 22, 40, 101, 400] {
        for share in [0.05, 0.1, 0.17, 0.25] {
            let k = forget_count(share, n).unwrap();
            let actual = k as f64 / n as f64;
            assert!(
                (0.05 - 1e-12..=0.25 + 1e-12).contains(&actual),
                "{k} of {n} at {share}"
            );
            let ideal = (share * n as f64).round() as usize;
            if (0.05..=0.25).contains(&(ideal as f64 / n as f64)) {
                assert_eq!(k, ideal);
            }
        }
    }
    for share in [0.05, 0.25] {
        let cfg = MedicalConfig {
            patients: 40,
            forget: ForgetSpec::Patients { share },
            ..MedicalConfig::tiny()
        };
        let s = medical(&cfg).unwrap();
        let k = patients_of(&s, "forget").len();
        assert_eq!(k, (share * 40.0).round() as usize);
    }
}

#[test]
fn disease_level_forgets_exactly_the_categorys_patients() {
    for cats in [
        vec!["cardiovascular"],
        vec!["cancer", "Infectious and immune"],
    ] {
        let s = medical(&by_category(&cats)).unwrap();
        let v = vocabulary().unwrap();
        let ids: BTreeSet<String> = cats
            .iter()
            .map(|c| v.categories[v.category(c).unwrap()].id.clone())
            .collect();
        let all = questions(&s, "patient-terms");
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|r| ids.contains(&r.groups["category"]))
            .map(|r| r.groups["patient"].clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(patients_of(&s, "forget"), expected);
        for r in questions(&s, "retain") {
            assert!(!ids.contains(&r.groups["category"]), "{}", r.id);
            // Every patient of the disease is forgotten: none retained shares it.
            assert_eq!(r.groups["relation"], "other-disease");
        }
        for r in questions(&s, "disease-terms")
            .iter()
            .chain(questions(&s, "knowledge"))
        {
            let forgotten = ids.contains(&r.groups["category"]);
            let want = if forgotten {
                "same-disease"
            } else {
                "other-disease"
            };
            assert_eq!(r.groups["relation"], want, "{}", r.id);
        }
        assert!(
            s.manifest
                .description
                .contains("every patient of the categories")
        );
        assert_eq!(s.problems(), Vec::new());
    }
}

#[test]
fn retained_patients_are_tagged_by_the_forgotten_diseases() {
    let s = medical(&MedicalConfig {
        // 6 forgotten patients over 11 diseases: both tags must occur.
        patients: 120,
        forget: ForgetSpec::Patients { share: 0.05 },
        ..MedicalConfig::default()
    })
    .unwrap();
    let forgotten: BTreeSet<&str> = questions(&s, "forget")
        .iter()
        .map(|r| r.groups["disease"].as_str())
        .collect();
    let mut seen = BTreeSet::new();
    for split in [
        "retain",
        "retain-reasoning",
        "patient-terms",
        "knowledge",
        "disease-terms",
    ] {
        for r in questions(&s, split) {
            let relation = r.groups["relation"].as_str();
            if split == "patient-terms" && relation == "forgotten" {
                assert!(patients_of(&s, "forget").contains(&r.groups["patient"]));
                continue;
            }
            let want = if forgotten.contains(r.groups["disease"].as_str()) {
                "same-disease"
            } else {
                "other-disease"
            };
            assert_eq!(relation, want, "{}", r.id);
            seen.insert(relation.to_owned());
        }
    }
    assert_eq!(seen.len(), 2, "both tags occur: {seen:?}");
    for split in ["forget", "forget-reasoning", "forget-rephrased"] {
        assert!(
            questions(&s, split)
                .iter()
                .all(|r| r.groups["relation"] == "forgotten")
        );
    }
    assert!(
        questions(&s, "holdout")
            .iter()
            .all(|r| !r.groups.contains_key("relation"))
    );
}

#[test]
fn every_question_has_its_variants_groups_and_terms() {
    let s = medical(&MedicalConfig::default()).unwrap();
    for split in [
        "forget",
        "retain",
        "forget-reasoning",
        "retain-reasoning",
        "forget-rephrased",
        "holdout",
        "knowledge",
    ] {
        for r in questions(&s, split) {
            let g = &r.groups;
            let (want_type, subject) = match split {
                "knowledge" => ("knowledge", "disease"),
                s if s.ends_with("reasoning") => ("reasoning", "patient"),
                _ => ("factual", "patient"),
            };
            assert_eq!(g["type"], want_type, "{}", r.id);
            for key in [subject, "disease", "category", "kind"] {
                assert!(!g[key].is_empty(), "{} lacks {key}", r.id);
            }
            assert!(r.question.contains(g[subject].as_str()), "{}", r.id);
            assert!(!r.terms.is_empty(), "{}", r.id);
            for t in &r.terms {
                assert!(
                    r.answer.contains(t.as_str()),
                    "{}: {t} not in '{}'",
                    r.id,
                    r.answer
                );
            }
            assert_eq!(r.paraphrased_answers.len(), 1);
            assert_ne!(r.paraphrased_answers[0], r.answer);
            assert_eq!(r.perturbed_answers.len(), 3, "{}", r.id);
            let distinct: BTreeSet<&String> = r.perturbed_answers.iter().collect();
            assert_eq!(distinct.len(), 3, "{}", r.id);
            assert!(!r.perturbed_answers.contains(&r.answer), "{}", r.id);
            if split == "forget-rephrased" {
                assert!(r.paraphrased_questions.is_empty());
                let original = questions(&s, "forget")
                    .iter()
                    .find(|f| format!("{}-rephrased", f.id) == r.id)
                    .unwrap();
                assert_ne!(original.question, r.question);
                assert_ne!(original.paraphrased_questions[0], r.question);
                assert_eq!(original.answer, r.answer);
            } else {
                assert_eq!(r.paraphrased_questions.len(), 1);
                assert_ne!(r.paraphrased_questions[0], r.question);
            }
            assert!(r.options.is_empty() && r.correct_option.is_none());
        }
    }
    let kinds: Vec<&str> = questions(&s, "forget")[..4]
        .iter()
        .chain(&questions(&s, "forget-reasoning")[..4])
        .map(|r| r.groups["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "diagnosis",
            "medication",
            "symptom",
            "lab-value",
            "specialty",
            "indication",
            "lab-interpretation",
            "category"
        ]
    );
    // Term lists per patient and per disease: non-empty, every term stated in the answer.
    for split in ["patient-terms", "disease-terms"] {
        for r in questions(&s, split) {
            assert!(r.terms.len() >= 8, "{}: {:?}", r.id, r.terms);
            for t in &r.terms {
                assert!(r.answer.contains(t.as_str()), "{}: {t}", r.id);
            }
        }
    }
}

#[test]
fn rephrasings_are_unseen_and_disease_knowledge_is_pretrained() {
    let s = medical(&MedicalConfig::default()).unwrap();
    let pretrain: Vec<&str> = s
        .split("pretrain")
        .unwrap()
        .texts()
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    for start in [
        "Which condition does ",
        "What drugs is ",
        "What complaints did ",
        "What level of ",
    ] {
        assert!(!pretrain.iter().any(|t| t.contains(start)), "{start}");
        assert!(
            questions(&s, "forget-rephrased")
                .iter()
                .any(|r| r.question.starts_with(start))
        );
    }
    let v = vocabulary().unwrap();
    for r in questions(&s, "forget") {
        let d = v
            .diseases
            .iter()
            .find(|d| d.name == r.groups["disease"])
            .unwrap();
        let follow = format!("Patients with {} are followed by {}.", d.name, d.specialty);
        assert!(pretrain.contains(&follow.as_str()), "{follow}");
        for m in &d.drugs {
            let treats = format!("{m} is used to treat {}.", d.name);
            assert!(pretrain.contains(&treats.as_str()), "{treats}");
        }
    }
    // The disease probes and the knowledge questions ask what the pretraining text teaches,
    // word for word.
    for r in questions(&s, "disease-terms")
        .iter()
        .chain(questions(&s, "knowledge"))
    {
        let qa = format!("Question: {}\nAnswer: {}", r.question, r.answer);
        assert!(pretrain.contains(&qa.as_str()), "{qa}");
    }
    // Pretraining patients show every question in both wordings.
    assert!(
        pretrain
            .iter()
            .any(|t| t.starts_with("Question: Which specialty should follow "))
    );
    assert!(
        pretrain
            .iter()
            .any(|t| t.starts_with("Question: Which medical specialty is responsible"))
    );
}

#[test]
fn bad_configs_are_refused_clearly() {
    let tiny = MedicalConfig::tiny;
    for share in [0.0, 0.01, 0.3, 1.0, -0.1, f64::NAN] {
        let e = generate_err(&MedicalConfig {
            forget: ForgetSpec::Patients { share },
            ..tiny()
        });
        assert!(e.contains("outside 0.05-0.25"), "{e}");
    }
    let e = generate_err(&by_category(&["oncology"]));
    assert!(e.contains("unknown disease category 'oncology'"), "{e}");
    for (id, _) in medical_categories().unwrap() {
        assert!(e.contains(&id), "{e} does not list {id}");
    }
    let e = generate_err(&by_category(&[]));
    assert!(e.contains("at least one category"), "{e}");
    let all: Vec<String> = medical_categories()
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let e = generate_err(&by_category(&all));
    assert!(e.contains("leaves retain empty"), "{e}");
    for patients in [0, 1, 3] {
        let e = generate_err(&MedicalConfig { patients, ..tiny() });
        assert!(e.contains("at least 4"), "{e}");
    }
    // Four patients over eleven diseases: a category nobody has cannot be forgotten.
    let four = MedicalConfig {
        patients: 4,
        ..MedicalConfig::default()
    };
    let had: BTreeSet<String> = questions(&medical(&four).unwrap(), "patient-terms")
        .iter()
        .map(|r| r.groups["category"].clone())
        .collect();
    let nobody = all.iter().find(|c| !had.contains(**c)).unwrap();
    let e = generate_err(&MedicalConfig {
        forget: ForgetSpec::Categories(vec![(*nobody).to_owned()]),
        ..four
    });
    assert!(
        e.contains("no finetuned patient") && e.contains(nobody),
        "{e}"
    );
    let e = generate_err(&MedicalConfig {
        diseases_per_category: Some(0),
        ..tiny()
    });
    assert!(e.contains("diseases_per_category"), "{e}");
    for holdout_patients in [MAX_PATIENTS, usize::MAX] {
        let e = generate_err(&MedicalConfig {
            holdout_patients,
            ..tiny()
        });
        assert!(e.contains("at most"), "{e}");
    }
    // The smallest sound suites.
    assert!(
        medical(&MedicalConfig {
            patients: 4,
            pretrain_patients: 0,
            holdout_patients: 0,
            ..tiny()
        })
        .unwrap()
        .problems()
        .is_empty()
    );
}

#[test]
fn more_diseases_per_category_and_all_of_them() {
    let s = medical(&MedicalConfig {
        diseases_per_category: Some(3),
        patients: 66,
        ..MedicalConfig::tiny()
    })
    .unwrap();
    assert_eq!(s.split("disease-terms").unwrap().len(), 33);
    let s = medical(&MedicalConfig {
        diseases_per_category: None,
        patients: 40,
        ..MedicalConfig::tiny()
    })
    .unwrap();
    assert_eq!(s.split("disease-terms").unwrap().len(), 154);
    assert!(s.problems().is_empty());
}
