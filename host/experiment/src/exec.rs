//! Running jobs: each job writes one Parquet shard and its run record into the output folder,
//! atomically; a job whose complete shard is there is skipped, so an interrupted plan resumes
//! where it stopped and a plan split over many machines merges.
//!
//! Layout of an output folder:
//!
//! ```text
//! DIR/plan.jsonl          the plan (written by every `exec`; the same bytes each time)
//! DIR/jobs/ID.parquet     the job's results, long format
//! DIR/jobs/ID.json        its record: the job, its provenance, failures, losses, the shard's sha256
//! ```
//!
//! A shard counts as complete only when its record is there, describes the same job, and the
//! Parquet file's sha256 matches the record's. The record is written last, so a process killed
//! at any point leaves either a complete shard or one that is run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lethe_manifest::{PluginKind, RunFailure};
use lethe_pipeline::{
    AttackSpec, Checkpoint, Choice, ModelCache, Reporter, RunInfo, RunSpec, StageTime, StageTimer,
    Starts,
};
use lethe_runtime::{Plugin, PluginHost};
use lethe_suites::Suite;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::ExperimentError;
use crate::plan::{Job, Plan, PluginRef, Rows, SuiteSource};
use crate::variant::{JobSuites, job_suites};

/// What a finished job leaves beside its shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job, as planned.
    pub job: Job,
    /// What produced its results (suite, model, plugins, settings, cache keys).
    pub run: RunInfo,
    /// Plugins that failed in it.
    pub failures: Vec<RunFailure>,
    /// The loss of every unlearning step, by row.
    pub losses: BTreeMap<String, Vec<f64>>,
    /// Result rows in the shard.
    pub rows: usize,
    /// sha256 of the shard's bytes.
    pub shard_sha256: String,
    /// The Lethe version that computed it.
    pub lethe: String,
}

/// Whether a job's shard is there.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardState {
    /// Complete: its record.
    Complete(Box<JobRecord>),
    /// Not written (or only partly: no record yet).
    Missing,
    /// There but not usable, and why (truncated, another job's, unreadable).
    Damaged(String),
}

/// The shards of an output folder.
#[derive(Debug, Clone)]
pub struct Shards {
    dir: PathBuf,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Shards {
    /// The shards under `dir` (nothing is created until a shard is written).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the plan is kept.
    pub fn plan_path(&self) -> PathBuf {
        self.dir.join("plan.jsonl")
    }

    /// The Parquet shard of a job.
    pub fn shard_path(&self, id: &str) -> PathBuf {
        self.dir.join("jobs").join(format!("{id}.parquet"))
    }

    /// The record of a job.
    pub fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join("jobs").join(format!("{id}.json"))
    }

    /// Whether `job`'s shard is complete, missing or damaged.
    pub fn state(&self, job: &Job) -> ShardState {
        let record = self.record_path(&job.id);
        let text = match fs_err::read(&record) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ShardState::Missing,
            Err(e) => return ShardState::Damaged(e.to_string()),
        };
        let rec: JobRecord = match serde_json::from_slice(&text) {
            Ok(r) => r,
            Err(e) => {
                return ShardState::Damaged(format!("{}: unreadable ({e})", record.display()));
            }
        };
        // The same content is the same job wherever its folders lie (ids leave paths out).
        if rec.job.id != job.id || rec.job.digest() != rec.job.id {
            return ShardState::Damaged(format!(
                "{} describes another job than the plan's",
                record.display()
            ));
        }
        match fs_err::read(self.shard_path(&job.id)) {
            Ok(bytes) if sha256_hex(&bytes) == rec.shard_sha256 => {
                ShardState::Complete(Box::new(rec))
            }
            Ok(_) => ShardState::Damaged(format!(
                "{} does not match the sha256 its record gives (truncated or replaced)",
                self.shard_path(&job.id).display()
            )),
            Err(e) => ShardState::Damaged(e.to_string()),
        }
    }

    /// The plan the folder keeps, if it is another than `plan`. `exec` and the scheduler
    /// writers refuse such a folder (replacing its plan would orphan its shards); `run` and
    /// `plan` replace it, saying so.
    pub fn other_plan(&self, plan: &Plan) -> Result<Option<Plan>, ExperimentError> {
        let path = self.plan_path();
        let text = match fs_err::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if text == plan.to_jsonl()? {
            return Ok(None);
        }
        // An unreadable plan is another plan too: its title and size as far as they parse.
        Ok(Some(Plan::parse(&path, &text).unwrap_or(Plan {
            title: "unreadable".into(),
            jobs: Vec::new(),
            tables: Vec::new(),
            meta: None,
        })))
    }

    /// Refuse a folder that keeps another plan than `plan`.
    pub fn require_same_plan(&self, plan: &Plan) -> Result<(), ExperimentError> {
        match self.other_plan(plan)? {
            None => Ok(()),
            Some(other) => Err(ExperimentError::OtherPlan {
                path: self.plan_path(),
                title: other.title,
                jobs: other.jobs.len(),
            }),
        }
    }

    /// Keep the plan in the folder (the same bytes for the same plan, so concurrent workers
    /// of one plan agree). Refuses a folder that holds something other than Lethe's output.
    pub fn adopt(&self, plan: &Plan) -> Result<(), ExperimentError> {
        if self.dir.exists() && !self.plan_path().exists() {
            let empty = fs_err::read_dir(&self.dir)?.next().is_none();
            if !empty {
                return Err(ExperimentError::NotOurs(self.dir.clone()));
            }
        }
        fs_err::create_dir_all(self.dir.join("jobs"))?;
        let text = plan.to_jsonl()?;
        if fs_err::read_to_string(self.plan_path()).ok().as_deref() != Some(text.as_str()) {
            crate::atomic_write(&self.plan_path(), text.as_bytes())?;
        }
        Ok(())
    }

    /// Remove the temporary files a killed writer left behind (`jobs/.ID.…`, `timings/.ID.…`
    /// and `.plan.jsonl.…`, for the jobs of `plan`) once they are older than `stale`; returns
    /// how many. A writer renames its temporary file into place within seconds of making it,
    /// and another worker of the same plan may be writing one right now (shared storage, two
    /// pods), so only old ones go: a young one is someone's work in progress.
    pub fn sweep_stale_temporaries(
        &self,
        plan: &Plan,
        stale: std::time::Duration,
    ) -> Result<usize, ExperimentError> {
        let ids: std::collections::BTreeSet<&str> =
            plan.jobs.iter().map(|j| j.id.as_str()).collect();
        let ours = |dir: &Path, name: &str| -> bool {
            let Some(rest) = name.strip_prefix('.') else {
                return false;
            };
            if dir == self.dir {
                return rest.starts_with("plan.jsonl.");
            }
            rest.split_once('.').is_some_and(|(id, _)| ids.contains(id))
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for dir in [self.dir.clone(), self.dir.join("jobs"), self.timings_dir()] {
            let entries = match fs_err::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !ours(&dir, &name) || !entry.file_type()?.is_file() {
                    continue;
                }
                let age = entry
                    .metadata()?
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok());
                if age.is_some_and(|age| age >= stale) {
                    match fs_err::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        // Another worker's sweep got there first.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Write a job's shard, then its record (each through a temporary file and a rename).
    pub fn write(&self, job: &Job, output: JobOutput) -> Result<JobRecord, ExperimentError> {
        fs_err::create_dir_all(self.dir.join("jobs"))?;
        let shard = self.shard_path(&job.id);
        let mut df = lethe_reports::results_frame(&output.rows)?;
        // A temporary name of its own: two pods (each lethe as PID 1) or two machines on
        // shared storage may write the same job's shard at once.
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", shard.display()));
        let tmp =
            crate::temp_result_file(&self.dir.join("jobs"), &format!(".{}.", job.id), ".parquet")
                .map_err(named)?
                .into_temp_path();
        lethe_reports::write_parquet(&mut df, &tmp)?;
        let bytes = fs_err::read(&tmp)?;
        tmp.persist(&shard).map_err(|e| named(e.error))?;
        let record = JobRecord {
            job: job.clone(),
            run: output.info,
            failures: output.failures,
            losses: output.losses,
            rows: output.rows.len(),
            shard_sha256: sha256_hex(&bytes),
            lethe: env!("CARGO_PKG_VERSION").to_owned(),
        };
        crate::atomic_write(
            &self.record_path(&job.id),
            &serde_json::to_vec_pretty(&record)?,
        )?;
        Ok(record)
    }

    /// Where the timings of jobs are kept.
    pub fn timings_dir(&self) -> PathBuf {
        self.dir.join("timings")
    }

    /// Write one job's timings (`timings/JOB.json`).
    pub fn write_timings(&self, timings: &JobTimings) -> Result<(), ExperimentError> {
        fs_err::create_dir_all(self.timings_dir())?;
        crate::atomic_write(
            &self.timings_dir().join(format!("{}.json", timings.job)),
            &serde_json::to_vec_pretty(timings)?,
        )?;
        Ok(())
    }

    /// The timings of the plan's jobs that have them, in plan order.
    pub fn timings(&self, plan: &Plan) -> Vec<JobTimings> {
        plan.jobs
            .iter()
            .filter_map(|job| {
                let text =
                    fs_err::read_to_string(self.timings_dir().join(format!("{}.json", job.id)))
                        .ok()?;
                serde_json::from_str(&text).ok()
            })
            .collect()
    }
}

/// What a job computed.
pub struct JobOutput {
    /// Provenance.
    pub info: RunInfo,
    /// Result rows, their `run` column set to the job's id.
    pub rows: Vec<lethe_manifest::ResultRow>,
    /// Plugins that failed.
    pub failures: Vec<RunFailure>,
    /// Unlearning losses by row.
    pub losses: BTreeMap<String, Vec<f64>>,
}

/// What jobs run with: the sandbox, the plugins to choose from, the model cache, progress.
pub struct JobEnv<'a> {
    /// The sandbox.
    pub host: &'a PluginHost,
    /// Every loaded plugin (built-ins, the plugin folder, files the plan names).
    pub plugins: &'a [&'a Plugin],
    /// Trained models, shared between jobs and processes.
    pub cache: &'a ModelCache,
    /// Progress.
    pub reporter: &'a dyn Reporter,
}

/// A job ready to run: its suite loaded and its plugins found and configured.
pub struct Prepared<'a> {
    /// The job's index in the plan.
    pub index: usize,
    suites: JobSuites,
    checkpoint: Option<Checkpoint>,
    method: Option<Choice<'a>>,
    metrics: Vec<Choice<'a>>,
    attack_methods: Vec<Choice<'a>>,
    attack_queries: Vec<Choice<'a>>,
    judge: Option<Choice<'a>>,
}

/// Find a plan's plugin among those loaded: same name and kind, and the same component.
fn resolve<'a>(r: &PluginRef, env: &JobEnv<'a>, field: &str) -> Result<Choice<'a>, String> {
    let named: Vec<&&Plugin> = env
        .plugins
        .iter()
        .filter(|p| p.manifest.name == r.name && p.manifest.kind == r.kind)
        .collect();
    let plugin = match named.iter().find(|p| p.sha256 == r.sha256) {
        Some(p) => **p,
        None if named.is_empty() => {
            return Err(format!(
                "{field}: no {} named '{}' is installed (see `lethe plugins`)",
                r.kind, r.name
            ));
        }
        None => {
            return Err(format!(
                "{field}: the plan pins {} {} with sha256 {}…, but the installed one is {}…; \
                 make the plan again to use it",
                r.kind,
                r.name,
                r.sha256.get(..12).unwrap_or(&r.sha256),
                named[0].sha256.get(..12).unwrap_or_default()
            ));
        }
    };
    env.host
        .validate_config(plugin, &r.config)
        .map_err(|e| format!("{field}: {e}"))?;
    Ok(Choice {
        plugin,
        config: r.config.clone(),
        label: None,
    })
}

/// Load (or generate) the suite a job names and check its digest.
pub fn load_suite(source: &SuiteSource) -> Result<Suite, String> {
    let suite = source.load().map_err(|e| match source {
        SuiteSource::Folder { path, .. } => format!("suite {}: {e}", path.display()),
        SuiteSource::Tofu {
            path,
            forget_percent,
            ..
        } => format!(
            "TOFU forget{forget_percent:02} from {}: {e}",
            path.display()
        ),
        SuiteSource::Muse { path, .. } => format!("MUSE from {}: {e}", path.display()),
        _ => format!("suite: {e}"),
    })?;
    let actual = suite.digest();
    if actual != source.digest() {
        return Err(format!(
            "suite: its content's digest is {actual}, the plan's {}: the suite changed \
             since the plan was made",
            source.digest()
        ));
    }
    Ok(suite)
}

/// Check the jobs `indices` of `plan` against what is installed and load their suites, before
/// anything runs. A problem names the job's line in the plan file and the field.
pub fn prepare<'a>(
    plan: &Plan,
    indices: &[usize],
    env: &JobEnv<'a>,
) -> Result<Vec<Prepared<'a>>, ExperimentError> {
    let mut suites: BTreeMap<String, std::sync::Arc<Suite>> = BTreeMap::new();
    let mut out = Vec::new();
    for &index in indices {
        let job = plan.jobs.get(index).ok_or_else(|| {
            ExperimentError::Selection(format!(
                "job {index}: the plan has jobs 0..{}",
                plan.jobs.len()
            ))
        })?;
        let fail = |message: String| ExperimentError::Job {
            line: index + 2,
            id: job.id.clone(),
            message,
        };
        let key = serde_json::to_string(&job.suite)?;
        let suite = match suites.get(&key) {
            Some(s) => s.clone(),
            None => {
                let s = std::sync::Arc::new(load_suite(&job.suite).map_err(fail)?);
                suites.insert(key, s.clone());
                s
            }
        };
        let (learn_lora, unlearn_lora) = (job.learn.lora.as_ref(), job.unlearn.lora.as_ref());
        let checkpoint = match &job.model {
            Some(m) => {
                let c = Checkpoint::open_with(&m.path, learn_lora, unlearn_lora)
                    .map_err(|e| fail(format!("model: {e}")))?;
                if c.sha256 != m.sha256 {
                    return Err(fail(format!(
                        "model: {} changed since the plan was made (sha256 {}…, planned {}…)",
                        m.path.display(),
                        c.sha256.get(..12).unwrap_or_default(),
                        m.sha256.get(..12).unwrap_or_default()
                    )));
                }
                Some(c)
            }
            None => None,
        };
        // A LoRA setting that does not fit the preset's shape is refused before anything
        // trains (a checkpoint's was checked against its config.json above).
        if job.model.is_none() {
            let cfg = job.learn.preset.config(job.learn.vocab_size);
            for l in learn_lora.iter().chain(unlearn_lora.iter()) {
                l.check(&cfg).map_err(|e| fail(format!("lora: {e}")))?;
            }
        }
        let method = match &job.rows {
            Rows::Baselines | Rows::Pool { .. } => None,
            Rows::Method { label, plugin } => {
                let mut c = resolve(plugin, env, "rows.plugin").map_err(fail)?;
                c.label = Some(label.clone());
                Some(c)
            }
        };
        let all = |refs: &[PluginRef], field: &str| -> Result<Vec<Choice<'a>>, ExperimentError> {
            refs.iter()
                .map(|r| resolve(r, env, field).map_err(fail))
                .collect()
        };
        let judge = match &job.judge {
            Some(r) => Some(resolve(r, env, "judge").map_err(fail)?),
            None => None,
        };
        if judge
            .as_ref()
            .is_some_and(|j| j.plugin.manifest.kind != PluginKind::Judge)
        {
            return Err(fail("judge: not a judge plugin".into()));
        }
        let suites = job_suites((*suite).clone(), job).map_err(|e| fail(format!("round: {e}")))?;
        job.attacks
            .validate(suites.rounds.last().unwrap_or(&suites.whole))
            .map_err(|e| fail(format!("attacks: {e}")))?;
        out.push(Prepared {
            index,
            suites,
            checkpoint,
            method,
            metrics: all(&job.metrics, "metrics")?,
            attack_methods: all(&job.attack_methods, "attack_methods")?,
            attack_queries: all(&job.attack_queries, "attack_queries")?,
            judge,
        });
    }
    Ok(out)
}

fn copy<'a>(c: &Choice<'a>) -> Choice<'a> {
    Choice {
        plugin: c.plugin,
        config: c.config.clone(),
        label: c.label.clone(),
    }
}

/// Run one prepared job through the pipeline. A sequential job learns its models on the whole
/// suite, unlearns the rounds before its own (without measuring them), each from the model
/// the last left, then unlearns and measures its round.
pub fn run_job(
    job: &Job,
    p: &Prepared<'_>,
    env: &JobEnv<'_>,
) -> Result<JobOutput, ExperimentError> {
    let mut learn = job.learn.clone();
    learn.checkpoint = p.checkpoint.clone();
    let spec = |suite| RunSpec {
        suite,
        learn: learn.clone(),
        unlearn: job.unlearn.clone(),
        observe: job.observe.clone(),
        methods: p.method.iter().map(copy).collect(),
        metrics: p.metrics.iter().map(copy).collect(),
        attacks: job.attacks.clone(),
        attack_methods: p.attack_methods.iter().map(copy).collect(),
        attack_queries: p.attack_queries.iter().map(copy).collect(),
        judge: p.judge.as_ref().map(copy),
        seed: job.seed,
        baselines: matches!(job.rows, Rows::Baselines),
    };
    if let Rows::Pool { label, member } = &job.rows {
        // A pool model: the job's models are its references, the pool model its one row.
        let suite = &p.suites.whole;
        let learned = lethe_pipeline::learn(suite, &learn, env.cache, env.reporter)?;
        let (model, key) =
            lethe_pipeline::learn_member(suite, &learn, &learned, member, env.cache, env.reporter)?;
        let starts = Starts {
            members: vec![(label.clone(), model, key)],
            ..Starts::default()
        };
        let out = lethe_pipeline::run_learned(
            &spec(suite),
            &learned,
            &starts,
            env.host,
            env.cache,
            env.reporter,
        )?;
        return Ok(stamped(job, out));
    }
    let out = match p.suites.rounds.split_last() {
        None => lethe_pipeline::run(&spec(&p.suites.whole), env.host, env.cache, env.reporter)?,
        Some((measured, before)) => {
            let learned = lethe_pipeline::learn(&p.suites.whole, &learn, env.cache, env.reporter)?;
            let mut starts = Starts {
                models: BTreeMap::new(),
                keep: true,
                ..Starts::default()
            };
            // The baselines do not unlearn: only a method's rows carry the earlier rounds.
            let earlier = if p.method.is_some() { before } else { &[] };
            for (r, suite) in earlier.iter().enumerate() {
                let quiet = RunSpec {
                    metrics: Vec::new(),
                    attacks: AttackSpec {
                        attacks: Vec::new(),
                        ..job.attacks.clone()
                    },
                    attack_methods: Vec::new(),
                    attack_queries: Vec::new(),
                    judge: None,
                    ..spec(suite)
                };
                let mut round = lethe_pipeline::run_learned(
                    &quiet,
                    &learned,
                    &starts,
                    env.host,
                    env.cache,
                    env.reporter,
                )?;
                if !round.failures.is_empty() {
                    // The method failed in an earlier round: its failure is the job's result.
                    for f in &mut round.failures {
                        f.error = format!("round {} of the sequence: {}", r + 1, f.error);
                    }
                    return Ok(stamped(job, round));
                }
                starts.models = std::mem::take(&mut round.models);
            }
            starts.keep = false;
            lethe_pipeline::run_learned(
                &spec(measured),
                &learned,
                &starts,
                env.host,
                env.cache,
                env.reporter,
            )?
        }
    };
    Ok(stamped(job, out))
}

/// A run's output as the job's: every row and failure carries the job's id.
fn stamped(job: &Job, out: lethe_pipeline::RunOutput) -> JobOutput {
    let mut rows = out.rows;
    for r in &mut rows {
        r.run.clone_from(&job.id);
    }
    let mut failures = out.failures;
    for f in &mut failures {
        f.run.clone_from(&job.id);
    }
    JobOutput {
        info: out.info,
        rows,
        failures,
        losses: out.losses,
    }
}

/// Where one job's time went, written to `timings/JOB.json` beside the shards (never into
/// them: shards are byte-identical across reruns, times are not).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobTimings {
    /// The job's id.
    pub job: String,
    /// The job, as progress describes it.
    pub describe: String,
    /// Wall time of the whole job, in seconds.
    pub seconds: f64,
    /// Its stages, in order.
    pub stages: Vec<StageTime>,
}

/// Seconds spent per kind of stage (learn, unlearn, observe, attack, score) over `timings`.
pub fn time_by_kind(timings: &[JobTimings]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for t in timings {
        for s in &t.stages {
            *out.entry(s.kind.clone()).or_insert(0.0) += s.seconds;
        }
    }
    out
}

/// What an `exec` did.
#[derive(Debug, Default)]
pub struct ExecSummary {
    /// Jobs run now.
    pub ran: Vec<usize>,
    /// Jobs whose complete shard was already there.
    pub skipped: Vec<usize>,
    /// Jobs that stopped with an error (no shard written; run again next time).
    pub errors: Vec<(usize, String)>,
    /// Plugin failures recorded in the jobs run now.
    pub plugin_failures: usize,
}

/// How old a temporary result file must be before a new run removes it as left by a killed
/// writer (writers rename theirs into place within seconds).
pub const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Run the jobs `indices` of `plan` into `shards`, one after another, skipping complete ones.
/// A job that fails is reported and the others go on.
pub fn execute(
    plan: &Plan,
    indices: &[usize],
    shards: &Shards,
    env: &JobEnv<'_>,
) -> Result<ExecSummary, ExperimentError> {
    let mut summary = ExecSummary::default();
    let mut pending = Vec::new();
    for &i in indices {
        let job = plan.jobs.get(i).ok_or_else(|| {
            ExperimentError::Selection(format!("job {i}: the plan has jobs 0..{}", plan.jobs.len()))
        })?;
        match shards.state(job) {
            ShardState::Complete(_) => summary.skipped.push(i),
            ShardState::Missing => pending.push(i),
            ShardState::Damaged(why) => {
                env.reporter.warn(&format!(
                    "job {} ({}): {why}; running it again",
                    i,
                    job.describe()
                ));
                pending.push(i);
            }
        }
    }
    // Everything is checked before the first job runs, and before anything is written.
    let prepared = prepare(plan, &pending, env)?;
    shards.adopt(plan)?;
    let swept = shards.sweep_stale_temporaries(plan, STALE_TEMPORARY)?;
    if swept > 0 {
        info!(
            files = swept,
            "removed temporary files left by a killed run"
        );
    }
    let total = prepared.len();
    for (n, p) in prepared.iter().enumerate() {
        let job = &plan.jobs[p.index];
        env.reporter.job(n, total, &job.describe());
        let started = Instant::now();
        let timer = StageTimer::new(env.reporter);
        let timed = JobEnv {
            host: env.host,
            plugins: env.plugins,
            cache: env.cache,
            reporter: &timer,
        };
        let result = run_job(job, p, &timed).and_then(|out| shards.write(job, out));
        if result.is_ok() {
            let timings = JobTimings {
                job: job.id.clone(),
                describe: job.describe(),
                seconds: started.elapsed().as_secs_f64(),
                stages: timer.take(),
            };
            // Timings are not results (they differ run to run): a failure to write them is
            // reported and the job stands.
            if let Err(e) = shards.write_timings(&timings) {
                env.reporter
                    .warn(&format!("job {}: timings not written: {e}", p.index));
            }
        }
        match result {
            Ok(record) => {
                info!(job = %job.id, rows = record.rows, "shard written");
                summary.plugin_failures += record.failures.len();
                summary.ran.push(p.index);
                let outcome = match record.failures.len() {
                    0 => "done".to_owned(),
                    k => format!("done, {k} plugin failure(s) recorded"),
                };
                env.reporter
                    .job_done(n, total, &job.describe(), started.elapsed(), &outcome);
            }
            Err(e) => {
                warn!(job = %job.id, "{e}");
                env.reporter
                    .warn(&format!("job {} ({}) failed: {e}", p.index, job.describe()));
                summary.errors.push((p.index, e.to_string()));
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{PlanRequest, PluginRef, Preset};
    use lethe_manifest::PluginKind;
    use std::time::{Duration, SystemTime};

    fn tiny_plan() -> Plan {
        let plugin = |name: &str, kind| PluginRef {
            name: name.into(),
            kind,
            sha256: "0".repeat(64),
            config: serde_json::json!({}),
            file: None,
        };
        let methods = vec![plugin("ga", PluginKind::Method)];
        let metrics = vec![plugin("rouge", PluginKind::Metric)];
        PlanRequest::of_preset(Preset::Tiny, "sweep", methods, metrics, vec![0])
            .and_then(|r| r.plan())
            .unwrap()
    }

    /// Only Lethe's own temporary files of this plan's jobs, and only old ones, are removed:
    /// a young one may be another worker's shard being written.
    #[test]
    fn only_old_temporaries_of_the_plans_jobs_are_swept() {
        let plan = tiny_plan();
        let dir = tempfile::tempdir().unwrap();
        let shards = Shards::new(dir.path());
        shards.adopt(&plan).unwrap();
        let id = &plan.jobs[0].id;
        let jobs = dir.path().join("jobs");
        std::fs::create_dir_all(shards.timings_dir()).unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        let file = |path: PathBuf, aged: bool| {
            std::fs::write(&path, b"x").unwrap();
            if aged {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
            }
            path
        };
        let swept = [
            file(jobs.join(format!(".{id}.Ab12Cd.parquet")), true),
            file(jobs.join(format!(".{id}.Ab12Cd.parquet.tmp")), true),
            file(jobs.join(format!(".{id}.json.Xy34Zw")), true),
            file(
                shards.timings_dir().join(format!(".{id}.json.Qr56St")),
                true,
            ),
            file(dir.path().join(".plan.jsonl.Mn78Op"), true),
        ];
        let kept = [
            // Someone's write in progress.
            file(jobs.join(format!(".{id}.Ef90Gh.parquet")), false),
            // Not a temporary of this plan's jobs, however old.
            file(jobs.join(".0123456789abcdef.Ij12Kl.parquet"), true),
            file(jobs.join(".nfs000000001"), true),
            file(dir.path().join(".keep"), true),
            file(jobs.join(format!("{id}.parquet")), true),
        ];
        let removed = shards
            .sweep_stale_temporaries(&plan, STALE_TEMPORARY)
            .unwrap();
        assert_eq!(removed, swept.len());
        for path in &swept {
            assert!(!path.exists(), "{} was kept", path.display());
        }
        for path in &kept {
            assert!(path.exists(), "{} was removed", path.display());
        }
        assert!(shards.plan_path().exists());
        // A second sweep finds nothing.
        assert_eq!(
            shards
                .sweep_stale_temporaries(&plan, STALE_TEMPORARY)
                .unwrap(),
            0
        );
    }
}
