//! The benchmarks' experiments as data: a protocol is its suites (generated at the preset's
//! size, each under a name of its own so its results report apart), the methods and metrics
//! the paper runs with the settings it needs, and the tables it reports. A protocol's plan is
//! an ordinary plan (seeds, grids, shards, Slurm), and its tables travel in the plan's header,
//! so `lethe report` lays them out from any folder of its shards.
//!
//! Jobs share models where they can: the learn stage keys each model by the data it is
//! trained on, so suites that differ only in their forget split reuse one base and one target.

use std::collections::BTreeMap;

use lethe_reports::{TableColumn, TableGroup, TableSpec};
use lethe_suites::Suite;
use lethe_suites::generate::{
    ForgetSpec, MedicalConfig, PrivacyConfig, WrongFactsConfig, medical, privacy, wrong_facts,
};
use serde::{Deserialize, Serialize};

use crate::plan::{Round, SuiteSource};
use crate::request::PlannedSuite;
use crate::{ExperimentError, Preset};

/// A benchmark's whole experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// MLLMU-Med, text only: private patient data and wrong medical facts at a 10 % forget
    /// ratio, the forget-ratio sweep (5–30 %) and three sequential rounds of 5 %.
    MllmuMed,
    /// AMNESIA: patient-level forgetting of 5–25 % of the patients and disease-level
    /// forgetting of three categories.
    Amnesia,
}

/// The MLLMU-Med forget ratios; 10 % is the main table's.
const RATIOS: [u32; 6] = [5, 10, 15, 20, 25, 30];
/// AMNESIA's patient-level shares, in percent.
const PATIENT_SHARES: [u32; 5] = [5, 10, 15, 20, 25];
/// AMNESIA's disease-level categories.
const CATEGORIES: [&str; 3] = ["cancer", "infectious-immune", "cardiovascular"];
/// Sequential rounds of the MLLMU-Med ablation, 5 % each.
const ROUNDS: usize = 3;

fn column(header: &str, metric: &str, output: &str, split: &str, scale: f64) -> TableColumn {
    TableColumn {
        header: header.into(),
        metric: metric.into(),
        output: output.into(),
        split: split.into(),
        scale,
    }
}

fn group(label: impl Into<String>, suite: impl Into<String>) -> TableGroup {
    TableGroup {
        label: label.into(),
        suite: suite.into(),
    }
}

/// Rows named as the papers name them.
fn row_names() -> BTreeMap<String, String> {
    [
        ("target".to_owned(), "finetuned".to_owned()),
        ("oracle".to_owned(), "retrain (oracle)".to_owned()),
    ]
    .into()
}

fn table(
    file: &str,
    title: &str,
    lead: &str,
    groups: Vec<TableGroup>,
    columns: Vec<TableColumn>,
    decimals: usize,
) -> TableSpec {
    TableSpec {
        file: file.into(),
        title: title.into(),
        lead: lead.into(),
        groups,
        columns,
        decimals,
        row_names: row_names(),
    }
}

fn generated(r: Result<Suite, lethe_suites::SuiteError>) -> Result<Suite, ExperimentError> {
    r.map_err(|e| ExperimentError::Selection(format!("protocol suite: {e}")))
}

fn planned(
    source: SuiteSource,
    name: String,
    round: Option<Round>,
    suite: &Suite,
) -> (PlannedSuite, Suite) {
    (
        PlannedSuite {
            source,
            name: Some(name),
            round,
        },
        suite.clone(),
    )
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 2] = [Protocol::MllmuMed, Protocol::Amnesia];

    /// The protocol's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::MllmuMed => "mllmu-med",
            Self::Amnesia => "amnesia",
        }
    }

    /// Its title in reports.
    pub fn title(self) -> &'static str {
        match self {
            Self::MllmuMed => "MLLMU-Med (text only)",
            Self::Amnesia => "AMNESIA",
        }
    }

    /// The methods the paper compares.
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Self::MllmuMed => &["ga", "graddiff", "kl-min", "idknll", "llmu"],
            Self::Amnesia => &["rmu", "graddiff", "kl-min", "simnpo"],
        }
    }

    /// The metrics its tables read.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            Self::MllmuMed => &["accuracy", "rouge", "bleu", "ues"],
            Self::Amnesia => &["rouge", "forget-efficacy", "leakage", "collateral-erosion"],
        }
    }

    /// Plugin configurations the protocol needs (a user's own win).
    pub fn configs(self) -> Vec<(&'static str, serde_json::Value)> {
        match self {
            Self::MllmuMed => Vec::new(),
            Self::Amnesia => vec![
                (
                    "forget-efficacy",
                    serde_json::json!({
                        "forget_splits": ["forget", "forget-reasoning", "forget-rephrased"],
                        "utility_splits": ["retain", "retain-reasoning", "knowledge"],
                    }),
                ),
                // RMU trains only three MLP down-projections: at the shared 3e-4 it left the
                // default model's answers unchanged (forget efficacy 0 at every setting); at
                // 1e-3 with α = 1 it collapsed retain (ROUGE-L 0.33 at 25 % of the patients);
                // at 1e-3 with α = 10 it forgot about as far as the oracle (forget 0.53 vs
                // 0.43) and kept retain (1.00) and the shared knowledge (0.98). The WMDP
                // paper's α is large too.
                ("rmu", serde_json::json!({"alpha": 10.0})),
            ],
        }
    }

    /// Learning rates of particular methods (a user's `--unlearn-lr-for` wins).
    pub fn learning_rates(self) -> Vec<(&'static str, f64)> {
        match self {
            Self::MllmuMed => Vec::new(),
            Self::Amnesia => vec![("rmu", 1e-3)],
        }
    }

    /// The share of pretraining text replayed in finetuning (see `LearnSpec::replay`): the
    /// MLLMU-Med paper's UES rewards a test split the model still answers, which it only does
    /// when finetuning on the patients did not wipe its general text.
    pub fn replay(self) -> f64 {
        match self {
            Self::MllmuMed => 0.5,
            _ => 0.0,
        }
    }

    /// The protocol's suites, generated at the preset's size from `suite_seed`, each with the
    /// name its results carry; and the generated suite itself (to check attacks against).
    pub fn suites(
        self,
        preset: Preset,
        suite_seed: u64,
    ) -> Result<Vec<(PlannedSuite, Suite)>, ExperimentError> {
        let tiny = preset == Preset::Tiny;
        let mut out = Vec::new();
        match self {
            Self::MllmuMed => {
                let privacy_at = |percent: u32| -> Result<(SuiteSource, Suite), ExperimentError> {
                    let config = PrivacyConfig {
                        seed: suite_seed,
                        forget_percent: percent,
                        ..if tiny {
                            PrivacyConfig::tiny()
                        } else {
                            PrivacyConfig::default()
                        }
                    };
                    let suite = generated(privacy(&config))?;
                    let digest = suite.digest();
                    Ok((SuiteSource::Privacy { config, digest }, suite))
                };
                for percent in RATIOS {
                    let (source, suite) = privacy_at(percent)?;
                    out.push(planned(source, format!("privacy-{percent}"), None, &suite));
                }
                let config = WrongFactsConfig {
                    seed: suite_seed,
                    forget_percent: 10,
                    ..if tiny {
                        WrongFactsConfig::tiny()
                    } else {
                        WrongFactsConfig::default()
                    }
                };
                let suite = generated(wrong_facts(&config))?;
                let digest = suite.digest();
                out.push(planned(
                    SuiteSource::WrongFacts { config, digest },
                    "wrong-facts-10".into(),
                    None,
                    &suite,
                ));
                // Three rounds of 5 %: the 15 % suite's forget split, cut in three.
                let (source, suite) = privacy_at(15)?;
                for round in 1..=ROUNDS {
                    out.push(planned(
                        source.clone(),
                        format!("privacy-rounds-{round}"),
                        Some(Round { round, of: ROUNDS }),
                        &suite,
                    ));
                }
            }
            Self::Amnesia => {
                let at = |forget: ForgetSpec| -> Result<(SuiteSource, Suite), ExperimentError> {
                    let config = MedicalConfig {
                        seed: suite_seed,
                        forget,
                        ..if tiny {
                            MedicalConfig::tiny()
                        } else {
                            MedicalConfig::default()
                        }
                    };
                    let suite = generated(medical(&config))?;
                    let digest = suite.digest();
                    Ok((SuiteSource::Medical { config, digest }, suite))
                };
                for percent in PATIENT_SHARES {
                    let (source, suite) = at(ForgetSpec::Patients {
                        share: f64::from(percent) / 100.0,
                    })?;
                    out.push(planned(
                        source,
                        format!("medical-patients-{percent}"),
                        None,
                        &suite,
                    ));
                }
                for category in CATEGORIES {
                    let (source, suite) = at(ForgetSpec::Categories(vec![category.to_owned()]))?;
                    out.push(planned(source, format!("medical-{category}"), None, &suite));
                }
            }
        }
        Ok(out)
    }

    /// The tables the paper reports.
    pub fn tables(self) -> Vec<TableSpec> {
        match self {
            Self::MllmuMed => mllmu_tables(),
            Self::Amnesia => amnesia_tables(),
        }
    }
}

fn mllmu_tables() -> Vec<TableSpec> {
    let main = || {
        let mut v = Vec::new();
        for split in ["forget", "retain", "test"] {
            v.push(column(
                &format!("{split} acc %"),
                "accuracy",
                "accuracy",
                split,
                100.0,
            ));
            v.push(column(
                &format!("{split} ROUGE-1"),
                "rouge",
                "rouge1_f1",
                split,
                100.0,
            ));
            v.push(column(&format!("{split} BLEU"), "bleu", "bleu", split, 1.0));
        }
        v.push(column("UES", "ues", "ues", "forget", 1.0));
        v
    };
    let short = || {
        vec![
            column("forget ROUGE-1", "rouge", "rouge1_f1", "forget", 100.0),
            column("retain ROUGE-1", "rouge", "rouge1_f1", "retain", 100.0),
            column("test ROUGE-1", "rouge", "rouge1_f1", "test", 100.0),
            column("UES", "ues", "ues", "forget", 1.0),
        ]
    };
    vec![
        table(
            "privacy",
            "Privacy (private patient data): forget / retain / test, UES",
            "forget",
            vec![group("10 %", "privacy-10")],
            main(),
            2,
        ),
        table(
            "wrong-facts",
            "Wrong medical facts: forget / retain / test, UES",
            "forget",
            vec![group("10 %", "wrong-facts-10")],
            main(),
            2,
        ),
        table(
            "forget-ratio",
            "Ablation: forget ratio (privacy)",
            "forget",
            RATIOS
                .iter()
                .map(|p| group(format!("{p} %"), format!("privacy-{p}")))
                .collect(),
            short(),
            2,
        ),
        table(
            "sequential-rounds",
            "Ablation: three sequential unlearning rounds of 5 % each (privacy)",
            "round",
            (1..=ROUNDS)
                .map(|r| group(format!("round {r}"), format!("privacy-rounds-{r}")))
                .collect(),
            short(),
            2,
        ),
    ]
}

fn amnesia_tables() -> Vec<TableSpec> {
    let patients: Vec<TableGroup> = PATIENT_SHARES
        .iter()
        .map(|p| group(format!("patients {p} %"), format!("medical-patients-{p}")))
        .collect();
    let mut all = patients.clone();
    all.extend(
        CATEGORIES
            .iter()
            .map(|c| group(format!("disease: {c}"), format!("medical-{c}"))),
    );
    let main = vec![
        column(
            "forget efficacy",
            "forget-efficacy",
            "forget_efficacy_rougeL",
            "forget",
            1.0,
        ),
        column(
            "utility",
            "forget-efficacy",
            "utility_rougeL",
            "retain",
            1.0,
        ),
        column(
            "utility (knowledge)",
            "forget-efficacy",
            "utility_rougeL",
            "knowledge",
            1.0,
        ),
        column("leakage (forget)", "leakage", "leakage", "forget", 1.0),
        column(
            "leakage (rephrased)",
            "leakage",
            "leakage",
            "forget-rephrased",
            1.0,
        ),
        column(
            "degradation (forget)",
            "leakage",
            "degradation",
            "forget",
            1.0,
        ),
        column(
            "degradation (retain)",
            "leakage",
            "degradation",
            "retain",
            1.0,
        ),
    ];
    let questions = vec![
        column("forget factual", "rouge", "rougeL_recall", "forget", 1.0),
        column(
            "forget reasoning",
            "rouge",
            "rougeL_recall",
            "forget-reasoning",
            1.0,
        ),
        column(
            "forget rephrased",
            "rouge",
            "rougeL_recall",
            "forget-rephrased",
            1.0,
        ),
        column("retain factual", "rouge", "rougeL_recall", "retain", 1.0),
        column(
            "retain reasoning",
            "rouge",
            "rougeL_recall",
            "retain-reasoning",
            1.0,
        ),
    ];
    let erosion = |split: &str| {
        [
            ("same-disease before", "target_utility_same"),
            ("same-disease after", "utility_same"),
            ("other-disease before", "target_utility_other"),
            ("other-disease after", "utility_other"),
            ("erosion same", "erosion_same"),
            ("erosion other", "erosion_other"),
            ("collateral erosion", "collateral_erosion"),
        ]
        .iter()
        .map(|(header, output)| column(header, "collateral-erosion", output, split, 1.0))
        .collect::<Vec<_>>()
    };
    vec![
        table(
            "forgetting",
            "Forget efficacy, utility (ROUGE-L part), terminology leakage and degradation",
            "setting",
            all.clone(),
            main,
            3,
        ),
        table(
            "questions",
            "Factual vs reasoning questions and unseen rephrasings (ROUGE-L recall)",
            "setting",
            all,
            questions,
            3,
        ),
        // Disease-level forgetting leaves no retained patient with a forgotten disease.
        table(
            "collateral-erosion",
            "Collateral erosion: utility (ROUGE-L recall) on retained same-disease vs \
             other-disease patients, before and after unlearning",
            "setting",
            patients.clone(),
            erosion("retain"),
            3,
        ),
        table(
            "collateral-erosion-knowledge",
            "Collateral erosion of shared disease knowledge: the diseases' general questions \
             (knowledge split), same vs other disease as the forgotten patients",
            "setting",
            patients,
            erosion("knowledge"),
            3,
        ),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_table_group_names_a_suite_of_its_protocol() {
        for p in Protocol::ALL {
            let suites = p.suites(Preset::Tiny, 0).unwrap();
            let names: Vec<String> = suites.iter().filter_map(|(s, _)| s.name.clone()).collect();
            for t in p.tables() {
                for g in &t.groups {
                    assert!(
                        names.contains(&g.suite),
                        "{}: {} has no suite",
                        p.name(),
                        g.suite
                    );
                }
                for c in &t.columns {
                    assert!(p.metrics().contains(&c.metric.as_str()), "{}", c.metric);
                }
            }
            // Names are unique and valid suite names.
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len());
            assert!(names.iter().all(|n| lethe_suites::valid_name(n)));
        }
    }

    #[test]
    fn the_rounds_share_one_source_and_cover_its_forget_split() {
        let suites = Protocol::MllmuMed.suites(Preset::Tiny, 0).unwrap();
        let rounds: Vec<&PlannedSuite> = suites
            .iter()
            .map(|(s, _)| s)
            .filter(|s| s.round.is_some())
            .collect();
        assert_eq!(rounds.len(), ROUNDS);
        assert!(rounds.iter().all(|r| r.source == rounds[0].source));
        let fifteen = suites
            .iter()
            .find(|(s, _)| s.name.as_deref() == Some("privacy-15"))
            .unwrap();
        assert_eq!(fifteen.0.source, rounds[0].source);
    }
}
