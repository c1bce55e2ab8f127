//! The benchmarks' experiments as data: a protocol is its suites (generated at the preset's
//! size, each under a name of its own so its results report apart), the methods and metrics
//! the paper runs with the settings it needs, and the tables it reports. A protocol's plan is
//! an ordinary plan (seeds, grids, shards, Slurm), and its tables travel in the plan's header,
//! so `lethe report` lays them out from any folder of its shards.
//!
//! Jobs share models where they can: the learn stage keys each model by the data it is
//! trained on, so suites that differ only in their forget split reuse one base and one target.

use std::collections::BTreeMap;
use std::path::Path;

use lethe_reports::{TableColumn, TableGroup, TableSpec};
use lethe_suites::Suite;
use lethe_suites::generate::{
    AuthorsConfig, ForgetSpec, MedicalConfig, NewsConfig, PrivacyConfig, WrongFactsConfig, authors,
    medical, news, privacy, wrong_facts,
};
use serde::{Deserialize, Serialize};

use crate::plan::{Round, SuiteSource};
use crate::request::PlannedSuite;
use crate::{ExperimentError, Preset};

/// A benchmark's whole experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// TOFU: forget 1, 5 and 10 % of the fictitious authors; forget quality and model utility
    /// per method beside the retain-only oracle. On a local copy of the release, or on the
    /// generated authors suite with its two real-world-style sets.
    Tofu,
    /// MUSE's six criteria: verbatim and knowledge memorization, privacy leakage, utility,
    /// scalability (three forget sizes) and sustainability (three sequential requests), on
    /// the generated news suite or a corpus in MUSE's layout.
    Muse,
    /// MLLMU-Med, text only: private patient data and wrong medical facts at a 10 % forget
    /// ratio, the forget-ratio sweep (5–30 %) and three sequential rounds of 5 %.
    MllmuMed,
    /// AMNESIA: patient-level forgetting of 5–25 % of the patients and disease-level
    /// forgetting of three categories.
    Amnesia,
}

/// TOFU's forget ratios, in percent of the authors.
const TOFU_PERCENTS: [u32; 3] = [1, 5, 10];
/// Questions in each real-world-style set of the generated TOFU suite (one per city of the
/// world facts at the default size).
const TOFU_REAL_WORLD: usize = 24;

/// MUSE's scalability sizes on the generated news suite, in percent of the finetuned articles;
/// 10 % is the main table's.
const MUSE_PERCENTS: [u32; 3] = [5, 10, 20];
/// MUSE's sequential requests: the 15 % suite's forget documents cut in three (40 % on the
/// tiny suite).
const MUSE_ROUNDS: usize = 3;

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
    pub const ALL: [Protocol; 4] = [
        Protocol::Tofu,
        Protocol::Muse,
        Protocol::MllmuMed,
        Protocol::Amnesia,
    ];

    /// The protocol's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tofu => "tofu",
            Self::Muse => "muse",
            Self::MllmuMed => "mllmu-med",
            Self::Amnesia => "amnesia",
        }
    }

    /// Its title in reports.
    pub fn title(self) -> &'static str {
        match self {
            Self::Tofu => "TOFU",
            Self::Muse => "MUSE",
            Self::MllmuMed => "MLLMU-Med (text only)",
            Self::Amnesia => "AMNESIA",
        }
    }

    /// The methods the paper compares.
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Self::Tofu => &["ga", "graddiff", "npo", "simnpo"],
            Self::Muse => &["ga", "graddiff", "kl-min", "npo"],
            Self::MllmuMed => &["ga", "graddiff", "kl-min", "idknll", "llmu"],
            Self::Amnesia => &["rmu", "graddiff", "kl-min", "simnpo"],
        }
    }

    /// The metrics its tables read.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            Self::Tofu => &[
                "forget-quality",
                "model-utility",
                "truth-ratio",
                "rouge",
                "probability",
                "extraction-strength",
                "privleak",
            ],
            Self::Muse => &["rouge", "privleak"],
            Self::MllmuMed => &["accuracy", "rouge", "bleu", "ues"],
            Self::Amnesia => &["rouge", "forget-efficacy", "leakage", "collateral-erosion"],
        }
    }

    /// Plugin configurations the protocol needs (a user's own win).
    pub fn configs(self) -> Vec<(&'static str, serde_json::Value)> {
        match self {
            Self::Tofu | Self::Muse | Self::MllmuMed => Vec::new(),
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
            Self::Tofu | Self::Muse | Self::MllmuMed => Vec::new(),
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

    /// The protocol's suites, generated at the preset's size from `suite_seed` or imported
    /// from a local copy of the benchmark's `release`, each with the name its results carry;
    /// and the suite itself (to check attacks against).
    pub fn suites(
        self,
        preset: Preset,
        suite_seed: u64,
        release: Option<&Path>,
    ) -> Result<ProtocolSuites, ExperimentError> {
        let tiny = preset == Preset::Tiny;
        let mut out = Vec::new();
        let mut eval_first = BTreeMap::new();
        let mut left_out = Vec::new();
        if release.is_some() && !matches!(self, Self::Tofu | Self::Muse) {
            return Err(ExperimentError::Selection(format!(
                "--protocol {}: runs on its generated suites; only tofu and muse read a \
                 release (--release)",
                self.name()
            )));
        }
        match self {
            Self::Muse => match release {
                Some(dir) => {
                    let suite = lethe_suites::import::muse(dir).map_err(|e| {
                        ExperimentError::Selection(format!("MUSE from {}: {e}", dir.display()))
                    })?;
                    let source = SuiteSource::Muse {
                        path: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
                        digest: suite.digest(),
                    };
                    out.push(planned(source.clone(), "muse".into(), None, &suite));
                    for round in 1..=MUSE_ROUNDS {
                        out.push(planned(
                            source.clone(),
                            format!("muse-rounds-{round}"),
                            Some(Round {
                                round,
                                of: MUSE_ROUNDS,
                            }),
                            &suite,
                        ));
                    }
                    left_out.push(
                        "scalability: a release has one forget set (generated suites have three)"
                            .into(),
                    );
                }
                None => {
                    let at = |percent: u32| -> Result<(SuiteSource, Suite), ExperimentError> {
                        let config = NewsConfig {
                            seed: suite_seed,
                            forget_share: f64::from(percent) / 100.0,
                            ..if tiny {
                                NewsConfig::tiny()
                            } else {
                                NewsConfig::default()
                            }
                        };
                        let suite = generated(news(&config))?;
                        let digest = suite.digest();
                        Ok((SuiteSource::News { config, digest }, suite))
                    };
                    for percent in MUSE_PERCENTS {
                        let (source, suite) = at(percent)?;
                        out.push(planned(source, format!("muse-{percent}"), None, &suite));
                    }
                    // Three requests need three forget documents: the tiny suite's eight
                    // articles have them at 40 %.
                    let (source, suite) = at(if tiny { 40 } else { 15 })?;
                    for round in 1..=MUSE_ROUNDS {
                        out.push(planned(
                            source.clone(),
                            format!("muse-rounds-{round}"),
                            Some(Round {
                                round,
                                of: MUSE_ROUNDS,
                            }),
                            &suite,
                        ));
                    }
                }
            },
            Self::Tofu => match release {
                Some(dir) => {
                    for percent in TOFU_PERCENTS {
                        let nn = format!("{percent:02}");
                        if !dir.join(format!("forget{nn}.json")).exists()
                            && !dir.join("full.json").exists()
                        {
                            left_out.push(format!(
                                "forget{nn}: {} has neither forget{nn}.json nor full.json",
                                dir.display()
                            ));
                            continue;
                        }
                        let suite = lethe_suites::import::tofu(dir, percent).map_err(|e| {
                            ExperimentError::Selection(format!(
                                "TOFU forget{nn} from {}: {e}",
                                dir.display()
                            ))
                        })?;
                        // TOFU evaluates retain on `retain_perturbed`: the first authors'
                        // questions, the only ones with paraphrased and perturbed answers.
                        if let Some(n) = evaluated_prefix(&suite, "retain") {
                            eval_first.insert("retain".to_owned(), n);
                        }
                        let source = SuiteSource::Tofu {
                            path: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
                            forget_percent: percent,
                            digest: suite.digest(),
                        };
                        out.push(planned(source, format!("tofu-forget{nn}"), None, &suite));
                    }
                    if out.is_empty() {
                        return Err(ExperimentError::Selection(format!(
                            "--release {}: no TOFU forget split there ({})",
                            dir.display(),
                            left_out.join("; ")
                        )));
                    }
                }
                None => {
                    for percent in TOFU_PERCENTS {
                        let base = if tiny {
                            AuthorsConfig::tiny()
                        } else {
                            AuthorsConfig::default()
                        };
                        let config = AuthorsConfig {
                            seed: suite_seed,
                            forget_share: f64::from(percent) / 100.0,
                            real_world: if tiny { 6 } else { TOFU_REAL_WORLD },
                            ..base
                        };
                        let suite = generated(authors(&config))?;
                        let digest = suite.digest();
                        out.push(planned(
                            SuiteSource::Authors { config, digest },
                            format!("tofu-forget{percent:02}"),
                            None,
                            &suite,
                        ));
                    }
                }
            },
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
        Ok(ProtocolSuites {
            suites: out,
            eval_first,
            left_out,
        })
    }

    /// The tables the paper reports.
    pub fn tables(self) -> Vec<TableSpec> {
        match self {
            Self::Tofu => tofu_tables(),
            Self::Muse => muse_tables(),
            Self::MllmuMed => mllmu_tables(),
            Self::Amnesia => amnesia_tables(),
        }
    }
}

/// A protocol's suites and what observing them needs.
#[derive(Debug, Clone)]
pub struct ProtocolSuites {
    /// Each suite as planned, with the suite itself.
    pub suites: Vec<(PlannedSuite, Suite)>,
    /// Evaluation subsets the benchmark prescribes ([`lethe_pipeline::ObserveSettings`]).
    pub eval_first: BTreeMap<String, usize>,
    /// Parts of the protocol left out because the release lacks their files, with why.
    pub left_out: Vec<String>,
}

/// When only a leading run of `split`'s questions carries perturbed answers (TOFU's retain:
/// 400 of 3,600), that run's length.
fn evaluated_prefix(suite: &Suite, split: &str) -> Option<usize> {
    let questions = suite.split(split)?.questions();
    let n = questions
        .iter()
        .take_while(|q| !q.perturbed_answers.is_empty())
        .count();
    (n > 0 && n < questions.len()).then_some(n)
}

fn muse_tables() -> Vec<TableSpec> {
    let criteria = || {
        vec![
            column(
                "VerbMem (forget)",
                "rouge",
                "rougeL_f1",
                "verbmem-forget",
                100.0,
            ),
            column(
                "KnowMem (forget)",
                "rouge",
                "rougeL_f1",
                "knowmem-forget",
                100.0,
            ),
            column(
                "KnowMem (retain): utility",
                "rouge",
                "rougeL_f1",
                "knowmem-retain",
                100.0,
            ),
            column("PrivLeak", "privleak", "privleak", "forget", 1.0),
        ]
    };
    vec![
        table(
            "muse",
            "MUSE: verbatim memorization, knowledge memorization, privacy leakage and utility \
             (ROUGE-L F1 × 100; PrivLeak in %, 0 = as the retrained model)",
            "forget",
            vec![group("10 %", "muse-10"), group("release", "muse")],
            criteria(),
            2,
        ),
        table(
            "muse-scalability",
            "MUSE scalability: the criteria across forget-set sizes",
            "forget",
            MUSE_PERCENTS
                .iter()
                .map(|p| group(format!("{p} %"), format!("muse-{p}")))
                .collect(),
            criteria(),
            2,
        ),
        table(
            "muse-sustainability",
            "MUSE sustainability: the criteria after each of three sequential unlearning requests",
            "request",
            (1..=MUSE_ROUNDS)
                .map(|r| group(format!("request {r}"), format!("muse-rounds-{r}")))
                .collect(),
            criteria(),
            2,
        ),
    ]
}

fn tofu_tables() -> Vec<TableSpec> {
    let groups: Vec<TableGroup> = TOFU_PERCENTS
        .iter()
        .map(|p| group(format!("forget{p:02}"), format!("tofu-forget{p:02}")))
        .collect();
    vec![
        table(
            "tofu",
            "Forget quality and model utility (TOFU), with the forget set's own numbers",
            "forget",
            groups.clone(),
            vec![
                column(
                    "forget quality",
                    "forget-quality",
                    "forget_quality",
                    "forget",
                    1.0,
                ),
                column(
                    "model utility",
                    "model-utility",
                    "model_utility",
                    "retain",
                    1.0,
                ),
                column(
                    "forget truth ratio",
                    "truth-ratio",
                    "truth_ratio",
                    "forget",
                    1.0,
                ),
                column("forget ROUGE-L", "rouge", "rougeL_recall", "forget", 1.0),
                column("forget prob.", "probability", "probability", "forget", 1.0),
                column(
                    "extraction strength",
                    "extraction-strength",
                    "extraction_strength",
                    "forget",
                    1.0,
                ),
                column("privleak", "privleak", "privleak", "forget", 1.0),
            ],
            3,
        ),
        table(
            "tofu-utility",
            "Model utility's nine parts: probability, ROUGE-L recall and truth ratio on retain \
             and the two real-world sets",
            "forget",
            groups,
            ["retain", "real-authors", "world-facts"]
                .iter()
                .flat_map(|split| {
                    [
                        ("prob.", "utility_probability"),
                        ("ROUGE-L", "utility_rougeL_recall"),
                        ("TR", "utility_truth_ratio"),
                    ]
                    .into_iter()
                    .map(move |(h, o)| {
                        column(&format!("{split} {h}"), "model-utility", o, split, 1.0)
                    })
                })
                .collect(),
            3,
        ),
    ]
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
            let suites = p.suites(Preset::Tiny, 0, None).unwrap().suites;
            let names: Vec<String> = suites.iter().filter_map(|(s, _)| s.name.clone()).collect();
            for t in p.tables() {
                // A release's own suite ("muse") exists only when one is given.
                for g in t.groups.iter().filter(|g| g.suite != "muse") {
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
        let suites = Protocol::MllmuMed
            .suites(Preset::Tiny, 0, None)
            .unwrap()
            .suites;
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

#[cfg(test)]
mod tofu_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shared() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tofu")
    }

    #[test]
    fn generated_tofu_nests_its_forget_sets_and_has_every_set_model_utility_reads() {
        let p = Protocol::Tofu.suites(Preset::Tiny, 3, None).unwrap();
        assert!(p.eval_first.is_empty() && p.left_out.is_empty());
        let forget = |i: usize| -> Vec<String> {
            p.suites[i]
                .1
                .split("forget")
                .unwrap()
                .questions()
                .iter()
                .map(|q| q.id.clone())
                .collect()
        };
        // 1 % ⊆ 5 % ⊆ 10 %, so the three share one target model.
        for (small, large) in [(0, 1), (1, 2)] {
            assert!(forget(small).iter().all(|id| forget(large).contains(id)));
        }
        for (_, suite) in &p.suites {
            for split in ["retain", "real-authors", "world-facts", "holdout"] {
                assert!(!suite.split(split).unwrap().is_empty(), "{split}");
            }
        }
    }

    #[test]
    fn a_release_runs_the_ratios_it_has_and_evaluates_retain_on_the_perturbed_prefix() {
        let p = Protocol::Tofu
            .suites(Preset::Default, 0, Some(&shared()))
            .unwrap();
        let names: Vec<_> = p
            .suites
            .iter()
            .filter_map(|(s, _)| s.name.clone())
            .collect();
        assert_eq!(names, ["tofu-forget01"]);
        assert_eq!(p.left_out.len(), 2, "{:?}", p.left_out);
        assert!(p.left_out[0].contains("forget05.json"), "{:?}", p.left_out);
        // The shared subset trains on retain_perturbed itself: nothing to cut.
        assert!(p.eval_first.is_empty());

        // A release whose retain has more questions than retain_perturbed covers.
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "forget01.json",
            "forget01_perturbed.json",
            "holdout01.json",
            "retain_perturbed.json",
        ] {
            fs_err::copy(shared().join(f), dir.path().join(f)).unwrap();
        }
        let mut retain = fs_err::read_to_string(shared().join("retain_perturbed.json")).unwrap();
        if !retain.ends_with('\n') {
            retain.push('\n');
        }
        retain.push_str(&fs_err::read_to_string(shared().join("holdout01.json")).unwrap());
        fs_err::write(dir.path().join("retain99.json"), retain).unwrap();
        let p = Protocol::Tofu
            .suites(Preset::Default, 0, Some(dir.path()))
            .unwrap();
        assert_eq!(p.suites[0].1.split("retain").unwrap().len(), 440);
        assert_eq!(p.eval_first, BTreeMap::from([("retain".to_owned(), 400)]));

        // No forget split at all: refused, naming the folder.
        let empty = tempfile::tempdir().unwrap();
        let e = Protocol::Tofu
            .suites(Preset::Default, 0, Some(empty.path()))
            .unwrap_err();
        assert!(e.to_string().contains("no TOFU forget split"), "{e}");
        // Other protocols read no release.
        assert!(
            Protocol::Amnesia
                .suites(Preset::Tiny, 0, Some(dir.path()))
                .is_err()
        );
    }
}
