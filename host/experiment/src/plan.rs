//! Plans: an experiment as a list of jobs, each with a stable id, written as JSON Lines.
//!
//! A plan file's first line is a [`Header`]; every further line is one [`Job`]. A job holds
//! everything that determines its results — the suite (and its digest), the model and learn
//! settings, the one method it unlearns with (or the three baselines), the unlearning,
//! observation and attack settings, the metrics, the seed, the plugins' sha256 and Lethe's
//! numeric version — and its id is a digest of exactly that. A job writes one shard; two jobs
//! with the same id would compute the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lethe_manifest::PluginKind;
use lethe_pipeline::{AttackSpec, LearnSpec, ObserveSettings, UnlearnSpec};
use lethe_reports::TableSpec;
use lethe_suites::generate::{AuthorsConfig, MedicalConfig, PrivacyConfig, WrongFactsConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ExperimentError;

/// The plan file format this Lethe reads and writes.
pub const PLAN_FORMAT: u32 = 1;

/// The first line of a plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The plan file format ([`PLAN_FORMAT`]).
    pub lethe_plan: u32,
    /// What the plan is, for people ("lethe run", a protocol's name …).
    pub title: String,
    /// Jobs on the following lines.
    pub jobs: usize,
    /// The tables a protocol reports from the jobs' results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableSpec>,
    /// A meta-evaluation's pools and settings, computed from the jobs' results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<lethe_reports::meta::MetaSpec>,
}

/// An experiment: jobs, in the order they run and are reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What the plan is, for people.
    pub title: String,
    /// The jobs.
    pub jobs: Vec<Job>,
    /// The tables a protocol reports (none for a plain sweep: its report is the leaderboard).
    pub tables: Vec<TableSpec>,
    /// A meta-evaluation's pools and settings (`lethe meta-eval`).
    pub meta: Option<lethe_reports::meta::MetaSpec>,
}

/// A plugin a job uses, pinned by its component's sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// The plugin's name.
    pub name: String,
    /// What it is.
    pub kind: PluginKind,
    /// sha256 of its component: the plan runs with exactly this build of it.
    pub sha256: String,
    /// Its configuration.
    pub config: serde_json::Value,
    /// The component file, for a plugin that is neither built in nor in the plugin folder.
    /// Not part of the job's id: the same component elsewhere is the same plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// Where a job's suite comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SuiteSource {
    /// The generated authors suite (the embedded default).
    Authors {
        /// The generator's settings.
        config: AuthorsConfig,
        /// Digest of the generated suite (checked when the job runs).
        digest: String,
    },
    /// The generated medical-records suite (AMNESIA).
    Medical {
        /// The generator's settings.
        config: MedicalConfig,
        /// Digest of the generated suite (checked when the job runs).
        digest: String,
    },
    /// The generated private-patient-data suite (MLLMU-Med).
    Privacy {
        /// The generator's settings.
        config: PrivacyConfig,
        /// Digest of the generated suite (checked when the job runs).
        digest: String,
    },
    /// The generated wrong-medical-facts suite (MLLMU-Med).
    WrongFacts {
        /// The generator's settings.
        config: WrongFactsConfig,
        /// Digest of the generated suite (checked when the job runs).
        digest: String,
    },
    /// The generated news suite (MUSE-style).
    News {
        /// The generator's settings.
        config: lethe_suites::generate::NewsConfig,
        /// Digest of the generated suite (checked when the job runs).
        digest: String,
    },
    /// MUSE imported from a local copy of one corpus in MUSE's layout
    /// (`lethe_suites::import::muse`) each time a job runs.
    Muse {
        /// The corpus folder (not part of the job's id).
        path: PathBuf,
        /// Digest of the imported suite (checked when the job runs).
        digest: String,
    },
    /// TOFU imported from a local copy of its release (`lethe_suites::import::tofu`) each time
    /// a job runs, so a plan names the downloaded files rather than a converted copy.
    Tofu {
        /// The release folder (not part of the job's id).
        path: PathBuf,
        /// The share of the authors forgotten, in percent (1, 5, 10 in the release).
        forget_percent: u32,
        /// Digest of the imported suite (checked when the job runs).
        digest: String,
    },
    /// A suite folder.
    Folder {
        /// The folder (not part of the job's id).
        path: PathBuf,
        /// Digest of its content (checked when the job runs).
        digest: String,
    },
}

impl SuiteSource {
    /// The suite's content digest.
    pub fn digest(&self) -> &str {
        match self {
            Self::Authors { digest, .. }
            | Self::Medical { digest, .. }
            | Self::Privacy { digest, .. }
            | Self::WrongFacts { digest, .. }
            | Self::Tofu { digest, .. }
            | Self::News { digest, .. }
            | Self::Muse { digest, .. }
            | Self::Folder { digest, .. } => digest,
        }
    }

    /// Generate or load the suite (its digest is not checked here).
    pub fn load(&self) -> Result<lethe_suites::Suite, lethe_suites::SuiteError> {
        use lethe_suites::generate::{authors, medical, privacy, wrong_facts};
        match self {
            Self::Authors { config, .. } => authors(config),
            Self::Medical { config, .. } => medical(config),
            Self::Privacy { config, .. } => privacy(config),
            Self::WrongFacts { config, .. } => wrong_facts(config),
            Self::Tofu {
                path,
                forget_percent,
                ..
            } => lethe_suites::import::tofu(path, *forget_percent),
            Self::News { config, .. } => lethe_suites::generate::news(config),
            Self::Muse { path, .. } => lethe_suites::import::muse(path),
            Self::Folder { path, .. } => lethe_suites::Suite::load(path),
        }
    }
}

/// One round of sequential unlearning: the forget split cut into `of` parts, owner by owner
/// (patient or author), in suite order; round `round` (1-based) unlearns its part, starting
/// from the model the same method left after the rounds before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// This round, from 1.
    pub round: usize,
    /// Rounds in all.
    pub of: usize,
}

/// A Hugging Face checkpoint folder a job starts from instead of a model trained from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSource {
    /// The folder (not part of the job's id).
    pub path: PathBuf,
    /// sha256 over its config, tokenizer and weights (checked when the job runs).
    pub sha256: String,
}

/// The model rows a job produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Rows {
    /// The base, target and oracle models of the job's seed.
    Baselines,
    /// One method's unlearned copy of the target.
    Method {
        /// The row's name in results and leaderboards ("graddiff", "graddiff[alpha=2]" …).
        label: String,
        /// The method.
        plugin: PluginRef,
    },
    /// One model of a meta-evaluation's faithfulness pools, scored as it is (the job's
    /// target and oracle are its metrics' references).
    Pool {
        /// The row's name in results ("forget[lr=2e-3,epochs=8,seed=1]" …).
        label: String,
        /// How it is finetuned.
        member: lethe_pipeline::PoolMember,
    },
}

/// One unit of work: one shard of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// A digest of everything below ([`Job::digest`]).
    pub id: String,
    /// What the job produces.
    pub rows: Rows,
    /// The suite.
    pub suite: SuiteSource,
    /// The name the job's results give the suite, when not its own: generated variants of one
    /// suite (forget ratios, rounds) report apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_name: Option<String>,
    /// Sequential unlearning: the round this job measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<Round>,
    /// The checkpoint the models start from, if not trained from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSource>,
    /// The learn stage (its `seed` is the job's).
    pub learn: LearnSpec,
    /// The unlearn stage.
    pub unlearn: UnlearnSpec,
    /// The observe stage.
    pub observe: ObserveSettings,
    /// The metrics.
    pub metrics: Vec<PluginRef>,
    /// The attacks every row is re-measured under.
    pub attacks: AttackSpec,
    /// Model attacks written as method plugins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack_methods: Vec<PluginRef>,
    /// Query-attack plugins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack_queries: Vec<PluginRef>,
    /// The sampling attack's judge plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<PluginRef>,
    /// The seed of every random choice of the job (the suite's own seed is in its source).
    pub seed: u64,
    /// [`lethe_model::NUMERIC_VERSION`] of the Lethe that made the plan.
    pub numeric_version: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Job {
    /// The digest of what determines the job's results: the job without its id and without
    /// the paths of folders and files, whose content is pinned by their digests instead.
    pub fn digest(&self) -> String {
        let mut identity = self.clone();
        identity.id = String::new();
        if let SuiteSource::Folder { path, .. }
        | SuiteSource::Tofu { path, .. }
        | SuiteSource::Muse { path, .. } = &mut identity.suite
        {
            *path = PathBuf::new();
        }
        if let Some(m) = &mut identity.model {
            m.path = PathBuf::new();
        }
        for p in identity.plugins_mut() {
            p.file = None;
        }
        // serde_json's maps are ordered by key: the text is canonical.
        let text = serde_json::to_string(&identity).unwrap_or_default();
        hex(&Sha256::digest(text.as_bytes()))[..16].to_owned()
    }

    /// The job with its id set from its content.
    pub fn sealed(mut self) -> Self {
        self.id = self.digest();
        self
    }

    /// The row labels the job produces.
    pub fn labels(&self) -> Vec<&str> {
        match &self.rows {
            Rows::Baselines => vec!["base", "target", "oracle"],
            Rows::Method { label, .. } | Rows::Pool { label, .. } => vec![label],
        }
    }

    /// A short description for progress lines: "graddiff · seed 1", "ga · privacy-10 · seed 0".
    pub fn describe(&self) -> String {
        let rows = match &self.rows {
            Rows::Baselines => "baselines",
            Rows::Method { label, .. } | Rows::Pool { label, .. } => label,
        };
        match &self.suite_name {
            Some(name) => format!("{rows} · {name} · seed {}", self.seed),
            None => format!("{rows} · seed {}", self.seed),
        }
    }

    /// What identifies the suite the job's rows belong to: its source's content, the name
    /// the job gives it and the round.
    pub fn suite_key(&self) -> String {
        let round = self.round.map(|r| format!("{}/{}", r.round, r.of));
        format!(
            "{}:{}:{}",
            self.suite.digest(),
            self.suite_name.as_deref().unwrap_or(""),
            round.unwrap_or_default()
        )
    }

    /// Every plugin the job names.
    pub fn plugins(&self) -> Vec<&PluginRef> {
        let mut out = Vec::new();
        if let Rows::Method { plugin, .. } = &self.rows {
            out.push(plugin);
        }
        out.extend(&self.metrics);
        out.extend(&self.attack_methods);
        out.extend(&self.attack_queries);
        out.extend(&self.judge);
        out
    }

    fn plugins_mut(&mut self) -> Vec<&mut PluginRef> {
        let mut out = Vec::new();
        if let Rows::Method { plugin, .. } = &mut self.rows {
            out.push(plugin);
        }
        out.extend(&mut self.metrics);
        out.extend(&mut self.attack_methods);
        out.extend(&mut self.attack_queries);
        out.extend(&mut self.judge);
        out
    }
}

/// A problem with a plan file: the line (1-based) and what is wrong there.
fn invalid(path: &Path, line: usize, message: impl Into<String>) -> ExperimentError {
    ExperimentError::Plan {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

impl Plan {
    /// The plan as JSON Lines: the header, then one job a line.
    pub fn to_jsonl(&self) -> Result<String, ExperimentError> {
        let header = Header {
            lethe_plan: PLAN_FORMAT,
            title: self.title.clone(),
            jobs: self.jobs.len(),
            tables: self.tables.clone(),
            meta: self.meta.clone(),
        };
        let mut out = serde_json::to_string(&header)?;
        out.push('\n');
        for job in &self.jobs {
            out.push_str(&serde_json::to_string(job)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Write the plan to `path` (a temporary file, then renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), ExperimentError> {
        crate::atomic_write(path, self.to_jsonl()?.as_bytes())
    }

    /// Read and check a plan file. Every problem names the file, the line and the field.
    pub fn read(path: &Path) -> Result<Self, ExperimentError> {
        let text = fs_err::read_to_string(path)?;
        Self::parse(path, &text)
    }

    /// Parse and check plan text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ExperimentError> {
        // Job i is on line i + 2: errors found later name the line from the index.
        let mut lines = text.lines().enumerate();
        let Some((_, first)) = lines.next() else {
            return Err(invalid(
                path,
                1,
                "empty file: a plan starts with its header line",
            ));
        };
        let header: Header =
            serde_json::from_str(first).map_err(|e| invalid(path, 1, format!("header: {e}")))?;
        if header.lethe_plan != PLAN_FORMAT {
            return Err(invalid(
                path,
                1,
                format!(
                    "lethe_plan: format {} is not the {PLAN_FORMAT} this Lethe reads",
                    header.lethe_plan
                ),
            ));
        }
        let mut jobs = Vec::new();
        let mut at_line = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                return Err(invalid(
                    path,
                    i + 1,
                    "a blank line (one job a line, none empty)",
                ));
            }
            let job: Job =
                serde_json::from_str(line).map_err(|e| invalid(path, i + 1, e.to_string()))?;
            jobs.push(job);
            at_line.push(i + 1);
        }
        if jobs.len() != header.jobs {
            return Err(invalid(
                path,
                1,
                format!(
                    "jobs: the header announces {} jobs but the file holds {} (truncated?)",
                    header.jobs,
                    jobs.len()
                ),
            ));
        }
        let plan = Plan {
            title: header.title,
            jobs,
            tables: header.tables,
            meta: header.meta,
        };
        plan.check().map_err(|(job, message)| {
            invalid(path, at_line.get(job).copied().unwrap_or(1), message)
        })?;
        Ok(plan)
    }

    /// What makes a plan runnable and its results mergeable, as (job index, problem).
    pub fn check(&self) -> Result<(), (usize, String)> {
        if self.jobs.is_empty() {
            return Err((0, "the plan has no jobs".into()));
        }
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        // Within a suite, a row label and a seed name one model: two jobs may not both make it.
        let mut rows: BTreeMap<(String, &str, u64), usize> = BTreeMap::new();
        for (i, job) in self.jobs.iter().enumerate() {
            let numeric = lethe_model::NUMERIC_VERSION;
            if job.numeric_version != numeric {
                return Err((
                    i,
                    format!(
                        "numeric_version: the job was planned for numeric version {} and this \
                         Lethe computes version {numeric}; make the plan again",
                        job.numeric_version
                    ),
                ));
            }
            let digest = job.digest();
            if job.id != digest {
                return Err((
                    i,
                    format!(
                        "id: '{}' is not the digest of the job's content ({digest}); was the \
                         line edited? Make the plan again with `lethe plan`",
                        job.id
                    ),
                ));
            }
            if job.learn.seed != job.seed {
                return Err((
                    i,
                    format!(
                        "learn.seed: {} differs from the job's seed {}",
                        job.learn.seed, job.seed
                    ),
                ));
            }
            if job.learn.checkpoint.is_some() {
                return Err((
                    i,
                    "learn.checkpoint: name a checkpoint with the job's `model` field".into(),
                ));
            }
            if let Some(first) = ids.insert(&job.id, i) {
                return Err((i, format!("id: the same job as job {first} (duplicate)")));
            }
            if let Rows::Method { label, plugin } = &job.rows {
                if plugin.kind != PluginKind::Method {
                    return Err((
                        i,
                        format!(
                            "rows.plugin: {} is a {}, not a method",
                            plugin.name, plugin.kind
                        ),
                    ));
                }
                if ["base", "target", "oracle"].contains(&label.as_str()) || label.is_empty() {
                    return Err((i, format!("rows.label: '{label}' is reserved or empty")));
                }
            }
            if let Rows::Pool { label, member } = &job.rows {
                if ["base", "target", "oracle"].contains(&label.as_str()) || label.is_empty() {
                    return Err((i, format!("rows.label: '{label}' is reserved or empty")));
                }
                if !(member.learning_rate.is_finite() && member.learning_rate > 0.0)
                    || member.epochs == 0
                {
                    return Err((
                        i,
                        format!(
                            "rows.member: learning rate {} and epochs {} must be positive",
                            member.learning_rate, member.epochs
                        ),
                    ));
                }
            }
            for p in job.metrics.iter() {
                if p.kind != PluginKind::Metric {
                    return Err((
                        i,
                        format!("metrics: {} is a {}, not a metric", p.name, p.kind),
                    ));
                }
            }
            if job.metrics.is_empty() {
                return Err((i, "metrics: a job needs at least one metric".into()));
            }
            if let Some(r) = job.round
                && (r.round == 0 || r.round > r.of)
            {
                return Err((
                    i,
                    format!("round: round {} of {} does not exist", r.round, r.of),
                ));
            }
            if let Some(name) = &job.suite_name
                && !lethe_suites::valid_name(name)
            {
                return Err((
                    i,
                    format!(
                        "suite_name: '{name}' is not a suite name (lowercase letters, digits \
                         and '-', at most 64)"
                    ),
                ));
            }
            for label in job.labels() {
                if let Some(first) = rows.insert((job.suite_key(), label, job.seed), i) {
                    return Err((
                        i,
                        format!(
                            "rows: job {first} already produces row '{label}' for seed {} on \
                             this suite; their results would be merged as one",
                            job.seed
                        ),
                    ));
                }
            }
        }
        let mut files: BTreeMap<&str, &TableSpec> = BTreeMap::new();
        for t in &self.tables {
            if files.insert(&t.file, t).is_some_and(|other| other != t) {
                return Err((
                    0,
                    format!("tables: two different tables write table-{}.csv", t.file),
                ));
            }
        }
        Ok(())
    }

    /// Jobs by index range `a..b` (end exclusive), checked against the plan's length.
    pub fn range(&self, a: usize, b: usize) -> Result<std::ops::Range<usize>, ExperimentError> {
        if a >= b || b > self.jobs.len() {
            return Err(ExperimentError::Selection(format!(
                "jobs {a}..{b}: the plan has jobs 0..{}",
                self.jobs.len()
            )));
        }
        Ok(a..b)
    }
}

/// The JSON Schemas of a plan file's two kinds of lines.
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "header line": schemars::schema_for!(Header),
        "job line": schemars::schema_for!(Job),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// A job's id is the digest of its JSON text: a number read back from a plan file must be
    /// the same bits, or every plan with an awkward learning rate would read as edited.
    #[test]
    fn numbers_in_plan_text_read_back_as_the_same_bits() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // A fixed xorshift: learning rates, shares and scales over many magnitudes.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = (x % 24) as i32 - 16;
            let v = mantissa * 10f64.powi(exponent);
            let text = serde_json::to_string(&v).unwrap();
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
        }
    }
}
