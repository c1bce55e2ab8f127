//! A small table of correct clinical facts, asked and stated in fixed wordings.
//!
//! The diseases, first-line drugs, symptoms and specialties are textbook facts; the disease
//! names, drugs and specialties were cross-checked against the vocabulary of the
//! faker-healthcare-provider 2.5.0 package (MIT). Each disease belongs to one category, and a
//! *wrong* value for a fact is only ever drawn from diseases of another category (and never from
//! [`NOT_WRONG`]), so that a statement the suites present as false is plainly false.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// One disease and its facts. Names are written as they appear mid-sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Disease {
    pub name: &'static str,
    /// A first-line drug, used for no other disease in the table.
    pub drug: &'static str,
    /// A hallmark symptom, distinct from every other disease's.
    pub symptom: &'static str,
    /// The medical specialty that usually treats it.
    pub specialty: &'static str,
    /// The kind of condition, with its article: also the category wrong values avoid.
    pub class: &'static str,
}

const fn d(
    name: &'static str,
    drug: &'static str,
    symptom: &'static str,
    specialty: &'static str,
    class: &'static str,
) -> Disease {
    Disease {
        name,
        drug,
        symptom,
        specialty,
        class,
    }
}

const ENDOCRINE: &str = "an endocrine disorder";
const HEART: &str = "a cardiovascular disease";
const LUNG: &str = "a respiratory disease";
const NERVE: &str = "a neurological disorder";
const MIND: &str = "a mental disorder";
const GUT: &str = "a digestive disease";
const BONE: &str = "a musculoskeletal disorder";
const URINARY: &str = "a urinary disorder";
const SKIN: &str = "a skin disease";
const BLOOD: &str = "a blood disorder";
const EYE: &str = "an eye disease";
const EAR: &str = "an ear disorder";

/// The diseases, grouped by category.
#[rustfmt::skip]
pub(super) const DISEASES: &[Disease] = &[
    d("type 2 diabetes", "metformin", "excessive thirst", "endocrinology", ENDOCRINE),
    d("hypothyroidism", "levothyroxine", "cold intolerance", "endocrinology", ENDOCRINE),
    d("hyperthyroidism", "methimazole", "heat intolerance", "endocrinology", ENDOCRINE),
    d("atrial fibrillation", "apixaban", "an irregular heartbeat", "cardiology", HEART),
    d("angina pectoris", "nitroglycerin", "chest pain on exertion", "cardiology", HEART),
    d("heart failure", "furosemide", "swollen ankles", "cardiology", HEART),
    d("deep vein thrombosis", "heparin", "a swollen painful calf", "vascular medicine", HEART),
    d("asthma", "salbutamol", "wheezing", "pulmonology", LUNG),
    d("chronic obstructive pulmonary disease", "tiotropium", "a chronic productive cough", "pulmonology", LUNG),
    d("tuberculosis", "isoniazid", "night sweats", "pulmonology", LUNG),
    d("migraine", "sumatriptan", "a throbbing one-sided headache", "neurology", NERVE),
    d("Parkinson's disease", "levodopa", "a resting tremor", "neurology", NERVE),
    d("epilepsy", "levetiracetam", "recurrent seizures", "neurology", NERVE),
    d("Alzheimer's disease", "donepezil", "progressive memory loss", "neurology", NERVE),
    d("multiple sclerosis", "fingolimod", "numbness in the limbs", "neurology", NERVE),
    d("depression", "sertraline", "persistent low mood", "psychiatry", MIND),
    d("bipolar disorder", "lithium", "episodes of mania", "psychiatry", MIND),
    d("schizophrenia", "risperidone", "hallucinations", "psychiatry", MIND),
    d("attention deficit hyperactivity disorder", "methylphenidate", "inattention", "psychiatry", MIND),
    d("gastroesophageal reflux disease", "omeprazole", "heartburn", "gastroenterology", GUT),
    d("ulcerative colitis", "mesalamine", "bloody diarrhea", "gastroenterology", GUT),
    d("hepatitis C", "sofosbuvir", "jaundice", "gastroenterology", GUT),
    d("irritable bowel syndrome", "linaclotide", "abdominal bloating", "gastroenterology", GUT),
    d("rheumatoid arthritis", "methotrexate", "morning joint stiffness", "rheumatology", BONE),
    d("gout", "allopurinol", "a painful swollen big toe", "rheumatology", BONE),
    d("osteoporosis", "alendronate", "fragile bones", "rheumatology", BONE),
    d("benign prostatic hyperplasia", "tamsulosin", "a weak urine stream", "urology", URINARY),
    d("overactive bladder", "oxybutynin", "sudden urges to urinate", "urology", URINARY),
    d("urinary tract infection", "nitrofurantoin", "painful urination", "urology", URINARY),
    d("acne", "benzoyl peroxide", "pimples", "dermatology", SKIN),
    d("rosacea", "azelaic acid", "facial redness", "dermatology", SKIN),
    d("eczema", "hydrocortisone cream", "itchy dry skin", "dermatology", SKIN),
    d("iron deficiency anemia", "ferrous sulfate", "pale skin", "hematology", BLOOD),
    d("sickle cell disease", "hydroxyurea", "episodes of severe pain", "hematology", BLOOD),
    d("hemophilia A", "factor VIII", "prolonged bleeding", "hematology", BLOOD),
    d("glaucoma", "latanoprost", "loss of side vision", "ophthalmology", EYE),
    d("macular degeneration", "ranibizumab", "loss of central vision", "ophthalmology", EYE),
    d("Meniere's disease", "betahistine", "attacks of vertigo", "otolaryngology", EAR),
];

/// (disease, value) pairs that another category offers as a wrong value but that are not
/// plainly wrong for the disease, so they are never used as its wrong value.
const NOT_WRONG: &[(&str, &str)] = &[
    ("hyperthyroidism", "an irregular heartbeat"),
    ("hypothyroidism", "persistent low mood"),
    ("hypothyroidism", "progressive memory loss"),
    ("iron deficiency anemia", "cold intolerance"),
    ("migraine", "attacks of vertigo"),
    ("Parkinson's disease", "persistent low mood"),
    ("Parkinson's disease", "hallucinations"),
    ("Parkinson's disease", "sudden urges to urinate"),
    ("multiple sclerosis", "persistent low mood"),
    ("multiple sclerosis", "sudden urges to urinate"),
    ("sickle cell disease", "jaundice"),
    ("deep vein thrombosis", "hematology"),
    ("Meniere's disease", "neurology"),
    ("Alzheimer's disease", "psychiatry"),
    ("attention deficit hyperactivity disorder", "neurology"),
    ("depression", "neurology"),
    ("schizophrenia", "neurology"),
    ("bipolar disorder", "neurology"),
    ("Alzheimer's disease", MIND),
    ("attention deficit hyperactivity disorder", NERVE),
    ("osteoporosis", ENDOCRINE),
    ("osteoporosis", "endocrinology"),
    ("deep vein thrombosis", BLOOD),
    ("glaucoma", "a throbbing one-sided headache"),
    ("multiple sclerosis", "loss of central vision"),
    ("depression", "irritable bowel syndrome"),
];

/// What a fact says about a disease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Relation {
    /// The disease a drug is a first-line treatment for (the drug is the subject).
    Treatment,
    /// A hallmark symptom.
    Symptom,
    /// The specialty that treats it.
    Specialty,
    /// The kind of condition.
    Class,
}

/// Every relation, in the order the suites list them.
pub(super) const RELATIONS: [Relation; 4] = [
    Relation::Treatment,
    Relation::Symptom,
    Relation::Specialty,
    Relation::Class,
];

/// Upper-case the first letter, for a value that opens a sentence.
pub(super) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The short category name of a class, for group keys ("an endocrine disorder" → "endocrine").
pub(super) fn category(class: &str) -> &str {
    let rest = class
        .strip_prefix("an ")
        .or_else(|| class.strip_prefix("a "))
        .unwrap_or(class);
    rest.split(' ').next().unwrap_or(rest)
}

impl Relation {
    /// The `relation` group key and part of ids.
    pub(super) fn key(self) -> &'static str {
        match self {
            Relation::Treatment => "treatment",
            Relation::Symptom => "symptom",
            Relation::Specialty => "specialty",
            Relation::Class => "class",
        }
    }

    /// The disease's true value.
    pub(super) fn value(self, disease: &Disease) -> &'static str {
        match self {
            Relation::Treatment => disease.name,
            Relation::Symptom => disease.symptom,
            Relation::Specialty => disease.specialty,
            Relation::Class => disease.class,
        }
    }

    /// Every value of other categories that is plainly wrong for `disease`, without repeats,
    /// in table order.
    pub(super) fn wrong_values(self, disease: &Disease) -> Vec<&'static str> {
        let right = self.value(disease);
        let mut out: Vec<&'static str> = Vec::new();
        for other in DISEASES.iter().filter(|o| o.class != disease.class) {
            let v = self.value(other);
            if v != right && !out.contains(&v) && !NOT_WRONG.contains(&(disease.name, v)) {
                out.push(v);
            }
        }
        out
    }

    /// `n` distinct wrong values, drawn with `rng`.
    pub(super) fn draw_wrong(
        self,
        rng: &mut ChaCha8Rng,
        disease: &Disease,
        n: usize,
    ) -> Vec<&'static str> {
        let mut pool = self.wrong_values(disease);
        pool.shuffle(rng);
        pool.truncate(n);
        pool
    }

    /// The open question.
    pub(super) fn question(self, disease: &Disease) -> String {
        let n = disease.name;
        match self {
            Relation::Treatment => format!("What is {} a first-line treatment for?", disease.drug),
            Relation::Symptom => format!("What is a hallmark symptom of {n}?"),
            Relation::Specialty => format!("Which medical specialty treats {n}?"),
            Relation::Class => format!("What kind of condition is {n}?"),
        }
    }

    /// The open question in other words.
    pub(super) fn paraphrased_question(self, disease: &Disease) -> String {
        let n = disease.name;
        match self {
            Relation::Treatment => {
                format!(
                    "Which condition is {} commonly prescribed for?",
                    disease.drug
                )
            }
            Relation::Symptom => format!("Which symptom is typical of {n}?"),
            Relation::Specialty => format!("Which specialists care for patients with {n}?"),
            Relation::Class => format!("How is {n} classified?"),
        }
    }

    /// The answer stating `value`.
    pub(super) fn answer(self, disease: &Disease, value: &str) -> String {
        let n = disease.name;
        match self {
            Relation::Treatment => format!(
                "{} is a first-line treatment for {value}.",
                capitalised(disease.drug)
            ),
            Relation::Symptom => format!("A hallmark symptom of {n} is {value}."),
            Relation::Specialty => format!("{} is treated in {value}.", capitalised(n)),
            Relation::Class => format!("{} is {value}.", capitalised(n)),
        }
    }

    /// The answer in other words.
    pub(super) fn paraphrased_answer(self, disease: &Disease, value: &str) -> String {
        let n = disease.name;
        match self {
            Relation::Treatment => format!(
                "{} is commonly prescribed for {value}.",
                capitalised(disease.drug)
            ),
            Relation::Symptom => format!("{} typically causes {value}.", capitalised(n)),
            Relation::Specialty => format!("Patients with {n} are cared for in {value}."),
            Relation::Class => format!("{} is classified as {value}.", capitalised(n)),
        }
    }

    /// A plain statement, a third wording for pretraining text.
    pub(super) fn statement(self, disease: &Disease, value: &str) -> String {
        let n = disease.name;
        match self {
            Relation::Treatment => format!("Doctors prescribe {} for {value}.", disease.drug),
            Relation::Symptom => format!("Patients with {n} often have {value}."),
            Relation::Specialty => {
                format!("{} is the specialty that manages {n}.", capitalised(value))
            }
            Relation::Class => format!("Doctors count {n} as {value}."),
        }
    }

    /// The closed (yes/no) question asking whether `value` is right.
    pub(super) fn closed_question(self, disease: &Disease, value: &str) -> String {
        let n = disease.name;
        match self {
            Relation::Treatment => {
                format!("Is {} a first-line treatment for {value}?", disease.drug)
            }
            Relation::Symptom => format!("Is {value} a hallmark symptom of {n}?"),
            Relation::Specialty => format!("Is {n} treated in {value}?"),
            Relation::Class => format!("Is {n} {value}?"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let distinct =
            |f: fn(&Disease) -> &'static str| DISEASES.iter().map(f).collect::<BTreeSet<_>>().len();
        assert_eq!(distinct(|d| d.name), DISEASES.len());
        assert_eq!(distinct(|d| d.drug), DISEASES.len(), "a drug is used twice");
        assert_eq!(
            distinct(|d| d.symptom),
            DISEASES.len(),
            "a symptom is used twice"
        );
        for (name, value) in NOT_WRONG {
            let d = DISEASES.iter().find(|d| d.name == *name);
            assert!(d.is_some(), "{name} is not in the table");
            let used = DISEASES
                .iter()
                .any(|o| RELATIONS.iter().any(|r| r.value(o) == *value));
            assert!(used, "{value} is no value of the table");
        }
    }

    #[test]
    fn wrong_values_are_from_other_categories_and_never_the_truth() {
        for d in DISEASES {
            for r in RELATIONS {
                let wrong = r.wrong_values(d);
                assert!(wrong.len() >= 3, "{} {:?}: {wrong:?}", d.name, r);
                assert!(!wrong.contains(&r.value(d)));
                for w in &wrong {
                    assert!(!NOT_WRONG.contains(&(d.name, *w)));
                    let owner = DISEASES.iter().find(|o| r.value(o) == *w).unwrap();
                    assert_ne!(owner.class, d.class, "{w} is of {}'s own category", d.name);
                }
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let asthma = DISEASES.iter().find(|d| d.name == "asthma").unwrap();
        let three = Relation::Symptom.draw_wrong(&mut rng, asthma, 3);
        assert_eq!(three.len(), 3);
        assert!(!three.contains(&"a chronic productive cough"));
    }

    #[test]
    fn sentences_read_well() {
        let metformin = &DISEASES[0];
        let r = Relation::Treatment;
        assert_eq!(
            r.question(metformin),
            "What is metformin a first-line treatment for?"
        );
        assert_eq!(
            r.answer(metformin, "asthma"),
            "Metformin is a first-line treatment for asthma."
        );
        assert_eq!(
            r.closed_question(metformin, "type 2 diabetes"),
            "Is metformin a first-line treatment for type 2 diabetes?"
        );
        let pd = DISEASES
            .iter()
            .find(|d| d.name.starts_with("Parkinson"))
            .unwrap();
        assert_eq!(
            Relation::Class.answer(pd, pd.class),
            "Parkinson's disease is a neurological disorder."
        );
        assert_eq!(category(pd.class), "neurological");
        assert_eq!(category(EYE), "eye");
        assert_eq!(capitalised("hemophilia A"), "Hemophilia A");
    }
}
