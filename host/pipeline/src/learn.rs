//! The learn stage: tokenizer, base model, finetuned target and retain-only oracle, each
//! content-addressed by everything that determines it and reused between runs.

use std::path::{Path, PathBuf};

use candle_core::Device;
use lethe_model::train::{FitSettings, OptimSettings, fit};
use lethe_model::{Config, LanguageModel, Params, Sequence, Tokenizer};
use lethe_suites::{QaRecord, SplitRole, Suite, TextRecord};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::{PipelineError, Reporter};

/// The model shapes Lethe trains from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelPreset {
    /// The embedded default (~1 M parameters; minutes on two cores).
    Small,
    /// For tests: seconds.
    Tiny,
}

impl ModelPreset {
    /// The shape for a vocabulary size.
    pub fn config(self, vocab_size: usize) -> Config {
        match self {
            Self::Small => Config::small(vocab_size),
            Self::Tiny => Config::tiny(vocab_size),
        }
    }
}

/// One training phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Passes over the data.
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Most tokens (prompt and answer, summed over every sequence of every epoch) the phase
    /// may train on: fewer epochs run when `epochs` passes would exceed it, never fewer than
    /// one. A preset's epoch count is sized for its own suite; the budget keeps the same
    /// preset from training 24 passes over a suite twenty times larger (TOFU's 4,000
    /// questions). None: always `epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
}

impl Phase {
    /// The epochs the phase runs over `tokens` tokens an epoch: `epochs`, or as many whole
    /// passes as the budget holds (at least one).
    pub fn epochs_over(&self, tokens: u64) -> usize {
        match self.token_budget {
            Some(budget) if tokens > 0 => {
                let fit = usize::try_from(budget / tokens).unwrap_or(usize::MAX);
                fit.clamp(1, self.epochs.max(1)).min(self.epochs)
            }
            _ => self.epochs,
        }
    }
}

/// The epochs one phase ran, against those it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseRun {
    /// Epochs run.
    pub epochs: usize,
    /// Epochs the phase was given ([`Phase::epochs`]).
    pub of: usize,
    /// Tokens of one epoch.
    pub epoch_tokens: u64,
}

/// The epochs each learning phase ran (the token budget may cut them short); recorded in the
/// run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Schedule {
    /// Pretraining of the base (none from a checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<PhaseRun>,
    /// Finetuning of the target.
    pub target: PhaseRun,
    /// Finetuning of the oracle.
    pub oracle: PhaseRun,
}

impl Schedule {
    /// Whether the budget cut any phase short.
    pub fn was_cut(&self) -> bool {
        let cut = |p: &PhaseRun| p.epochs < p.of;
        self.pretrain.as_ref().is_some_and(cut) || cut(&self.target) || cut(&self.oracle)
    }
}

fn phase_run(phase: &Phase, data: &[Sequence]) -> PhaseRun {
    let epoch_tokens = data.iter().map(|s| s.ids.len() as u64).sum();
    PhaseRun {
        epochs: phase.epochs_over(epoch_tokens),
        of: phase.epochs,
        epoch_tokens,
    }
}

/// Everything the learn stage depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnSpec {
    /// Model shape.
    pub preset: ModelPreset,
    /// Largest vocabulary the BPE may learn.
    pub vocab_size: usize,
    /// Pretraining of the base model on the suite's pretrain split.
    pub pretrain: Phase,
    /// Finetuning on forget ∪ retain (target) or retain only (oracle).
    pub finetune: Phase,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Replay: pretraining texts mixed into each finetune, as a share of its questions
    /// (0.5: one text for every two questions), drawn with the seed. Finetuning on the
    /// suite's questions alone lets the model forget its general text (MLLMU-Med's test
    /// split fell from 77 to 32 ROUGE-1), so the utility a method keeps would be measured
    /// against a model that had already lost it. 0 (the default) mixes nothing in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replay: f64,
    /// Start from this checkpoint instead of training a base model from scratch: `preset`,
    /// `vocab_size` and `pretrain` are then unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Finetune the target and the oracle as low-rank adapters on the frozen base, merged
    /// into each when it is done (pretraining from scratch trains every weight). None:
    /// every weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<lethe_model::LoraSettings>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The pretraining texts a finetune of `questions` examples replays: `round(replay ·
/// questions)` of them, in a seeded order, cycling when the split holds fewer.
pub(crate) fn replay_texts(suite: &Suite, replay: f64, questions: usize, seed: u64) -> Vec<&str> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let pool: Vec<&str> = suite
        .splits_with(SplitRole::Pretrain)
        .flat_map(|s| s.texts())
        .map(|t| t.text.as_str())
        .collect();
    let wanted = (replay * questions as f64).round() as usize;
    if pool.is_empty() || wanted == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..pool.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    (0..wanted).map(|i| pool[order[i % order.len()]]).collect()
}

/// A model folder in Hugging Face layout (`config.json`, `model.safetensors` or shards with
/// an index, `tokenizer.json`) used as the base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Checkpoint {
    /// The folder. Not part of the cache key or the recorded spec: the same weights in another
    /// folder are the same model.
    #[serde(skip)]
    pub path: PathBuf,
    /// sha256 over the folder's config, tokenizer and weight files, in name order.
    pub sha256: String,
}

impl Checkpoint {
    /// Describe a checkpoint folder, hashing what determines the model. Fails with the folder's
    /// name when it lacks a file the model needs.
    pub fn open(path: &Path) -> Result<Self, PipelineError> {
        Self::open_with(path, None, None)
    }

    /// [`Checkpoint::open`] for a run that finetunes and/or unlearns with low-rank adapters:
    /// each setting is checked against the checkpoint's shape, and the memory floor is that
    /// of a LoRA run when both stages train adapters (one stage that trains every weight
    /// needs the full floor).
    pub fn open_with(
        path: &Path,
        finetune_lora: Option<&lethe_model::LoraSettings>,
        unlearn_lora: Option<&lethe_model::LoraSettings>,
    ) -> Result<Self, PipelineError> {
        if !path.is_dir() {
            return Err(PipelineError::Checkpoint(format!(
                "model folder {} does not exist",
                path.display()
            )));
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in fs_err::read_dir(path)? {
            let p = entry?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name == "config.json"
                || name == "tokenizer.json"
                || name == "model.safetensors.index.json"
                || name.ends_with(".safetensors")
            {
                files.push(p);
            }
        }
        files.sort();
        for needed in ["config.json", "tokenizer.json"] {
            if !files.iter().any(|f| f.ends_with(needed)) {
                return Err(PipelineError::Checkpoint(format!(
                    "model folder {} has no {needed}",
                    path.display()
                )));
            }
        }
        // Config and tokenizer are cheap to read: a bad folder is refused before anything runs.
        let text = fs_err::read_to_string(path.join("config.json"))?;
        let cfg = Config::from_hf_json(&text).map_err(|e| {
            PipelineError::Checkpoint(format!("{}: config.json: {e}", path.display()))
        })?;
        // A model the machine cannot hold would be killed by the kernel mid-run, results and
        // all: refused from its config alone, before the weights are even hashed.
        for l in finetune_lora.iter().chain(unlearn_lora.iter()) {
            l.check(&cfg)
                .map_err(|e| PipelineError::Checkpoint(format!("{}: {e}", path.display())))?;
        }
        let all_lora = finetune_lora.is_some() && unlearn_lora.is_some();
        if let Some(available) = available_memory() {
            check_fits_with(&cfg, available, all_lora)
                .map_err(|e| PipelineError::Checkpoint(format!("{}: {e}", path.display())))?;
        }
        let tok = Tokenizer::load_pretrained(
            &path.join("tokenizer.json"),
            (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id),
        )
        .map_err(|e| PipelineError::Checkpoint(format!("{}: {e}", path.display())))?;
        if tok.vocab_size() > cfg.vocab_size {
            return Err(PipelineError::Checkpoint(format!(
                "{}: the tokenizer has {} tokens but config.json's vocab_size is {}",
                path.display(),
                tok.vocab_size(),
                cfg.vocab_size
            )));
        }
        let mut h = Sha256::new();
        for f in &files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            h.update(name.unwrap_or_default().as_bytes());
            let mut file = fs_err::File::open(f)?;
            std::io::copy(&mut file, &mut h)?;
        }
        Ok(Self {
            path: path.to_owned(),
            sha256: hex(&h.finalize()),
        })
    }
}

/// The sizes of a Llama-family model made from scratch ([`init_checkpoint`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Largest vocabulary the BPE may learn.
    pub vocab_size: usize,
    /// Longest sequence.
    pub max_positions: usize,
}

/// A new checkpoint in Hugging Face layout (`config.json`, `model.safetensors`,
/// `tokenizer.json`) in `out`: a BPE tokenizer trained on the suite's text and seeded initial
/// weights of the given shape (for `lethe run --model`, which finetunes it). Written to a
/// sibling folder and renamed into place, so `out` is whole or absent. Returns the config.
pub fn init_checkpoint(
    suite: &Suite,
    shape: &Shape,
    seed: u64,
    out: &Path,
) -> Result<Config, PipelineError> {
    let bad = |m: String| PipelineError::Learn(format!("model shape: {m}"));
    if out.exists() {
        return Err(PipelineError::Learn(format!(
            "{} already exists; not overwriting it",
            out.display()
        )));
    }
    let texts = all_text(suite);
    let tok = Tokenizer::train(texts.iter().map(String::as_str), shape.vocab_size)?;
    let cfg = Config {
        hidden_size: shape.hidden_size,
        intermediate_size: shape.intermediate_size,
        num_hidden_layers: shape.layers,
        num_attention_heads: shape.heads,
        num_key_value_heads: shape.kv_heads,
        max_position_embeddings: shape.max_positions,
        ..Config::small(tok.vocab_size())
    };
    cfg.validate().map_err(|e| bad(e.to_string()))?;
    if let Some(available) = available_memory() {
        // Only the weights are made here; a run of it needs the floor checked again then.
        let need = parameter_count(&cfg).saturating_mul(8);
        if need > available {
            return Err(bad(format!(
                "{:.2} B parameters need {} to make, {} available",
                parameter_count(&cfg) as f64 / 1e9,
                gib(need),
                gib(available)
            )));
        }
    }
    let params = Params::init(&cfg, seed, &Device::Cpu)?;
    let model = LanguageModel::new(cfg.clone(), tok, params)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_owned());
    let tmp = out.with_file_name(format!(".{name}.partial"));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp)?;
    }
    model.save(&tmp)?;
    fs_err::rename(&tmp, out)?;
    Ok(cfg)
}

/// Copies of the weights a run holds at least: base, target and oracle, and while it trains
/// one of them (or unlearns a copy) that model's gradient and AdamW's two moments.
pub const RESIDENT_COPIES: u64 = 6;

/// The same under LoRA: base, target and oracle, and the merged copy of the model whose
/// adapters were trained (the adapters, their gradients and moments are small beside it).
pub const LORA_RESIDENT_COPIES: u64 = 4;

/// Parameters of a model of this shape.
pub fn parameter_count(cfg: &Config) -> u64 {
    lethe_model::shapes(cfg)
        .iter()
        .map(|(_, shape)| shape.iter().map(|&d| d as u64).product::<u64>())
        .sum()
}

/// Bytes a run needs at least for a model of this shape: [`RESIDENT_COPIES`] copies of its
/// f32 weights (activations, the tokenizer and the plugins come on top).
pub fn memory_floor(cfg: &Config) -> u64 {
    memory_floor_with(cfg, false)
}

/// [`memory_floor`] of a run that trains every weight, or adapters ([`LORA_RESIDENT_COPIES`]).
pub fn memory_floor_with(cfg: &Config, lora: bool) -> u64 {
    parameter_count(cfg)
        .saturating_mul(4)
        .saturating_mul(resident_copies(lora))
}

fn resident_copies(lora: bool) -> u64 {
    match lora {
        true => LORA_RESIDENT_COPIES,
        false => RESIDENT_COPIES,
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuse a model whose [`memory_floor`] exceeds `available` bytes, naming both.
pub fn check_fits(cfg: &Config, available: u64) -> Result<(), String> {
    check_fits_with(cfg, available, false)
}

/// [`check_fits`] for a run that trains every weight or, with `lora`, adapters.
pub fn check_fits_with(cfg: &Config, available: u64, lora: bool) -> Result<(), String> {
    let need = memory_floor_with(cfg, lora);
    if need <= available {
        return Ok(());
    }
    let params = parameter_count(cfg);
    let why = match lora {
        true => "base, target, oracle, and the merged copy of the model whose adapters train",
        false => "base, target, oracle, and a gradient and two AdamW moments while one trains",
    };
    Err(format!(
        "config.json describes {:.2} B parameters ({} of f32 weights); a run holds at least \
         {} copies ({why}): {} needed, {} of memory available",
        params as f64 / 1e9,
        gib(params.saturating_mul(4)),
        resident_copies(lora),
        gib(need),
        gib(available)
    ))
}

/// Memory this process can still use: the system's `MemAvailable`, or less where a cgroup
/// (a container, a Slurm job) on this process's path sets a lower limit. `None` where the OS
/// does not tell.
pub fn available_memory() -> Option<u64> {
    let meminfo = fs_err::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let system = kib.saturating_mul(1024);
    let cgroups = fs_err::read_to_string("/proc/self/cgroup").unwrap_or_default();
    Some(cgroup_headroom(&cgroups, Path::new("/sys/fs/cgroup")).map_or(system, |c| c.min(system)))
}

/// The least `limit − usage` over the memory cgroups (v2, or v1's memory controller) on the
/// paths `/proc/self/cgroup` names and their ancestors, under the mount `root`.
fn cgroup_headroom(proc_self_cgroup: &str, root: &Path) -> Option<u64> {
    let read = |f: PathBuf| -> Option<u64> { fs_err::read_to_string(f).ok()?.trim().parse().ok() };
    let mut least: Option<u64> = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // v2 ("0::/path", limit in memory.max; "max" does not parse: no limit) or v1's memory
        // controller (memory.limit_in_bytes).
        let (mount, limit, usage) = if controllers.is_empty() {
            (root.to_owned(), "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                root.join("memory"),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        let mut dir = mount.join(path.trim_start_matches('/'));
        loop {
            if let Some(max) = read(dir.join(limit)) {
                let left = max.saturating_sub(read(dir.join(usage)).unwrap_or(0));
                least = Some(least.map_or(left, |l| l.min(left)));
            }
            if dir == mount || !dir.pop() || !dir.starts_with(&mount) {
                break;
            }
        }
    }
    least
}

/// The three models every run starts from.
pub struct Learned {
    /// The model before finetuning ([`Learned::base`]).
    base: LazyModel,
    /// Finetuned on forget ∪ retain: the model to unlearn.
    pub target: LanguageModel,
    /// Finetuned on retain only: what perfect unlearning would give ([`Learned::oracle`]).
    oracle: LazyModel,
    /// Cache keys of base, target and oracle.
    pub keys: [String; 3],
    /// The epochs each phase ran.
    pub schedule: Schedule,
    /// Whether the last method of a run may unlearn the target itself rather than a copy
    /// (set by the one caller that drops these models afterwards, [`crate::run`]): a method's
    /// job then holds one copy of the weights, not two.
    pub(crate) disposable: bool,
    /// Set once a method has unlearned the target itself: the models are spent.
    pub(crate) consumed: std::sync::atomic::AtomicBool,
}

impl Learned {
    /// The base model, read from the cache (or its checkpoint) the first time it is needed.
    pub fn base(&self) -> Result<&LanguageModel, PipelineError> {
        self.base.get()
    }

    /// The oracle, read from the cache the first time it is needed.
    pub fn oracle(&self) -> Result<&LanguageModel, PipelineError> {
        self.oracle.get()
    }
}

/// A learned model whose weights are read only when first needed: a method's job finds the
/// base's and the oracle's observations in the cache and never needs their weights, so it
/// holds one model (the target) rather than three.
struct LazyModel {
    cell: std::sync::OnceLock<LanguageModel>,
    source: LazySource,
}

enum LazySource {
    /// In memory from the start.
    Loaded,
    /// A verified cache entry.
    Cache(ModelCache, String),
    /// A checkpoint folder.
    Checkpoint(PathBuf),
}

impl LazyModel {
    fn loaded(model: LanguageModel) -> Self {
        Self {
            cell: std::sync::OnceLock::from(model),
            source: LazySource::Loaded,
        }
    }

    fn later(source: LazySource) -> Self {
        Self {
            cell: std::sync::OnceLock::new(),
            source,
        }
    }

    fn get(&self) -> Result<&LanguageModel, PipelineError> {
        if let Some(m) = self.cell.get() {
            return Ok(m);
        }
        let model = match &self.source {
            LazySource::Loaded => {
                return Err(PipelineError::Internal("a loaded model is missing".into()));
            }
            LazySource::Cache(cache, key) => cache.load(key).ok_or_else(|| {
                PipelineError::Learn(format!(
                    "cached model {key} was verified when the job started but is now missing \
                     or damaged; run the job again to train it"
                ))
            })?,
            LazySource::Checkpoint(path) => LanguageModel::load(path, &Device::Cpu)?,
        };
        Ok(self.cell.get_or_init(|| model))
    }
}

/// A content-addressed store of trained models.
#[derive(Clone)]
pub struct ModelCache {
    dir: Option<PathBuf>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

impl ModelCache {
    /// A cache in `dir`, or none (always train).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("models").join(key))
    }

    pub(crate) fn load(&self, key: &str) -> Option<LanguageModel> {
        let path = self.path(key)?;
        if !path.join("model.safetensors").exists() {
            return None;
        }
        // An entry is used only as it was stored: a truncated or altered file is trained again,
        // never silently used.
        if let Err(why) = check_entry(&path) {
            warn!("cached model {} {why}; training it again", path.display());
            discard(&path);
            return None;
        }
        match LanguageModel::load(&path, &Device::Cpu) {
            Ok(m) => Some(m),
            Err(e) => {
                warn!(
                    "cached model {} is unreadable ({e}); training it again",
                    path.display()
                );
                discard(&path);
                None
            }
        }
    }

    /// Whether `key` holds an entry whose files are as they were stored (checked against
    /// their digests, without reading the model); a damaged entry is discarded.
    pub(crate) fn verified(&self, key: &str) -> bool {
        let Some(path) = self.path(key) else {
            return false;
        };
        if !path.join("model.safetensors").exists() {
            return false;
        }
        match check_entry(&path) {
            Ok(()) => true,
            Err(why) => {
                warn!("cached model {} {why}; training it again", path.display());
                discard(&path);
                false
            }
        }
    }

    pub(crate) fn store(&self, key: &str, model: &LanguageModel) -> Result<(), PipelineError> {
        let Some(path) = self.path(key) else {
            return Ok(());
        };
        // Write next to the final place and rename, so a crash never leaves a half entry.
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp)?;
        }
        model.save(&tmp)?;
        seal_entry(&tmp)?;
        // Entries are immutable: the same key always holds the same model, so if another
        // process stored it meanwhile, keep theirs.
        if path.exists() || fs_err::rename(&tmp, &path).is_err() {
            fs_err::remove_dir_all(&tmp)?;
        }
        Ok(())
    }

    /// Hold an exclusive lock on `key` (released when the guard drops); none without a cache.
    pub(crate) fn lock(&self, key: &str) -> Result<Option<fs_err::File>, PipelineError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let dir = dir.join("locks");
        fs_err::create_dir_all(&dir)?;
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{key}.lock")))?;
        file.file().lock()?;
        Ok(Some(file))
    }

    fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn observed_path(&self, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join("observations").join(format!("{key}.json")))
    }

    /// A model's clean observations stored under `key`, if they are there as they were stored
    /// (their sha256 is checked; anything else is observed again).
    pub(crate) fn load_observed(&self, key: &str) -> Option<Vec<lethe_manifest::ObservedSplit>> {
        let path = self.observed_path(key)?;
        let bytes = fs_err::read(&path).ok()?;
        let want = fs_err::read_to_string(path.with_extension("sha256")).ok()?;
        if hex(&Sha256::digest(&bytes)) != want.trim() {
            warn!(
                "cached observations {} were altered; observing again",
                path.display()
            );
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }

    /// Store a model's clean observations under `key` (written aside and renamed: a crash
    /// never leaves half a file where a reader would take it).
    pub(crate) fn store_observed(
        &self,
        key: &str,
        observed: &[lethe_manifest::ObservedSplit],
    ) -> Result<(), PipelineError> {
        let Some(path) = self.observed_path(key) else {
            return Ok(());
        };
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let bytes =
            serde_json::to_vec(observed).map_err(|e| PipelineError::Internal(e.to_string()))?;
        let pid = std::process::id();
        let tmp = path.with_extension(format!("json.tmp-{pid}"));
        let tmp_sum = path.with_extension(format!("sha256.tmp-{pid}"));
        fs_err::write(&tmp, &bytes)?;
        fs_err::write(&tmp_sum, hex(&Sha256::digest(&bytes)))?;
        // The digest lands first: a reader that finds the new file checks it against its own.
        fs_err::rename(&tmp_sum, path.with_extension("sha256"))?;
        fs_err::rename(&tmp, &path)?;
        Ok(())
    }
}

/// The key of a model's clean observations: the model, the suite as observed, what was
/// observed and how.
pub(crate) fn observed_key(
    model_key: &str,
    eval_digest: &str,
    needs: &str,
    settings: &str,
) -> String {
    key(&[
        "observed",
        &lethe_model::NUMERIC_VERSION.to_string(),
        model_key,
        eval_digest,
        needs,
        settings,
    ])
}

/// The file in a cache entry that lists its other files' sha256.
const ENTRY_DIGESTS: &str = "lethe-entry.json";

fn file_sha256(path: &Path) -> Result<String, std::io::Error> {
    let mut h = Sha256::new();
    let mut f = fs_err::File::open(path)?;
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Record the sha256 of every file of a freshly saved entry.
fn seal_entry(dir: &Path) -> Result<(), PipelineError> {
    let mut digests = std::collections::BTreeMap::new();
    for e in fs_err::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name != ENTRY_DIGESTS && e.file_type()?.is_file() {
            digests.insert(name, file_sha256(&e.path())?);
        }
    }
    let text = serde_json::to_string_pretty(&digests)
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    fs_err::write(dir.join(ENTRY_DIGESTS), text)?;
    Ok(())
}

/// Whether an entry's files are those it was stored with, or what differs.
fn check_entry(dir: &Path) -> Result<(), String> {
    let text = fs_err::read_to_string(dir.join(ENTRY_DIGESTS))
        .map_err(|_| format!("has no {ENTRY_DIGESTS} (written by an older Lethe, or cut short)"))?;
    let digests: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
        .map_err(|e| format!("has an unreadable {ENTRY_DIGESTS}: {e}"))?;
    if digests.is_empty() {
        return Err(format!("lists no files in {ENTRY_DIGESTS}"));
    }
    for (name, want) in &digests {
        match file_sha256(&dir.join(name)) {
            Ok(got) if &got == want => {}
            Ok(_) => return Err(format!("was altered or truncated ({name}: sha256 differs)")),
            Err(e) => return Err(format!("lost {name} ({e})")),
        }
    }
    Ok(())
}

/// Move a bad entry out of the way (then delete it), so a retrained model can take its place.
fn discard(dir: &Path) {
    let aside = dir.with_extension(format!("bad-{}", std::process::id()));
    if fs_err::rename(dir, &aside).is_ok() {
        let _ = fs_err::remove_dir_all(&aside);
    }
}

pub(crate) fn qa_sequences(
    records: &[&QaRecord],
    tok: &Tokenizer,
    max_len: usize,
) -> Result<Vec<Sequence>, PipelineError> {
    records
        .iter()
        .map(|q| Ok(Sequence::qa_within(tok, &q.question, &q.answer, max_len)?))
        .collect()
}

fn all_text(suite: &Suite) -> Vec<String> {
    let mut texts = Vec::new();
    for split in &suite.splits {
        for q in split.questions() {
            texts.push(lethe_model::prompt(&q.question));
            texts.push(q.answer.clone());
            texts.extend(q.paraphrased_answers.iter().cloned());
            texts.extend(q.perturbed_answers.iter().cloned());
            texts.extend(q.paraphrased_questions.iter().cloned());
        }
        for t in split.texts() {
            texts.push(t.text.clone());
        }
    }
    // BPE counts do not depend on order; sorting makes the tokenizer (and its cache key) a
    // function of the suite's text alone, not of which split a question sits in.
    texts.sort();
    texts
}

/// The records a finetune learns, in id order: the models depend on which examples they see,
/// not on how a suite happens to split or order them, so suites that differ only in their
/// forget split (a forget-ratio sweep) share their target model.
fn finetune_records<'a>(suite: &'a Suite, roles: &[SplitRole]) -> Vec<&'a QaRecord> {
    let mut records: Vec<&QaRecord> = suite
        .splits
        .iter()
        .filter(|s| roles.contains(&s.role))
        .flat_map(|s| s.questions())
        .collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    records
}

/// The documents (text records of forget and retain splits: MUSE's corpora) a finetune learns
/// beside its questions, in id order, for the same reason.
fn finetune_documents<'a>(suite: &'a Suite, roles: &[SplitRole]) -> Vec<&'a TextRecord> {
    let mut docs: Vec<&TextRecord> = suite
        .splits
        .iter()
        .filter(|s| roles.contains(&s.role))
        .flat_map(|s| s.texts())
        .collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    docs
}

pub(crate) fn records_digest(records: &[&QaRecord]) -> String {
    let mut h = Sha256::new();
    for r in records {
        for part in [&r.id, &r.question, &r.answer] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    hex(&h.finalize())
}

pub(crate) fn texts_digest<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    hex(&h.finalize())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn train_phase(
    name: &str,
    model: &LanguageModel,
    data: &[Sequence],
    phase: &Phase,
    seed: u64,
    reporter: &dyn Reporter,
) -> Result<(), PipelineError> {
    let epochs = phase_run(phase, data).epochs;
    if epochs < phase.epochs {
        info!(
            stage = name,
            epochs,
            of = phase.epochs,
            "the token budget allows fewer epochs"
        );
    }
    let steps = data.len().div_ceil(phase.batch_size.max(1)) * epochs;
    reporter.stage(name, steps as u64);
    let settings = FitSettings {
        epochs,
        batch_size: phase.batch_size,
        optim: OptimSettings {
            learning_rate: phase.learning_rate,
            ..OptimSettings::default()
        },
        warmup: 0.05,
        seed,
    };
    let losses = fit(model, data, &settings, &mut |_, _, loss| {
        reporter.advance(1, &format!("loss {loss:.3}"));
    })?;
    reporter.finish();
    if let Some(last) = losses.last() {
        info!(
            stage = name,
            steps = losses.len(),
            final_loss = last,
            "trained"
        );
    }
    Ok(())
}

/// Train (or load from the cache) the base, target and oracle models of a suite.
pub fn learn(
    suite: &Suite,
    spec: &LearnSpec,
    cache: &ModelCache,
    reporter: &dyn Reporter,
) -> Result<Learned, PipelineError> {
    if !(spec.replay.is_finite() && spec.replay >= 0.0) {
        return Err(PipelineError::Learn(format!(
            "replay {} is not a share ≥ 0",
            spec.replay
        )));
    }
    // The base model does not depend on replay: its key is that of the spec without it.
    let spec_json = serde_json::to_string(&LearnSpec {
        replay: 0.0,
        lora: None,
        ..spec.clone()
    })
    .map_err(|e| PipelineError::Internal(e.to_string()))?;
    // Each key hashes exactly what determines its model: the base its tokenizer's text, its
    // pretraining text and the settings; target and oracle the base and their finetuning data.
    let texts = all_text(suite);
    let pretrain = texts_digest(
        suite
            .splits_with(SplitRole::Pretrain)
            .flat_map(|s| s.texts())
            .map(|t| t.text.as_str()),
    );
    let seed = spec.seed.to_string();
    let numeric = lethe_model::NUMERIC_VERSION.to_string();
    let base_key = key(&[
        "base",
        &numeric,
        &texts_digest(texts.iter().map(String::as_str)),
        &pretrain,
        &spec_json,
        &seed,
    ]);
    let target_records = finetune_records(suite, &[SplitRole::Forget, SplitRole::Retain]);
    let oracle_records = finetune_records(suite, &[SplitRole::Retain]);
    let target_docs = finetune_documents(suite, &[SplitRole::Forget, SplitRole::Retain]);
    let oracle_docs = finetune_documents(suite, &[SplitRole::Retain]);
    // Documents and replay enter the finetuned models' keys only when there are any, so the
    // keys of runs on question suites without replay are what they were.
    let replayed = |records: &[&QaRecord], docs: &[&TextRecord], seed: u64| {
        let replay = replay_texts(suite, spec.replay, records.len() + docs.len(), seed);
        let mut digest = records_digest(records);
        if !docs.is_empty() {
            let parts = docs.iter().flat_map(|d| [d.id.as_str(), d.text.as_str()]);
            digest = format!("{digest}:documents:{}", texts_digest(parts));
        }
        if spec.replay > 0.0 {
            digest = format!(
                "{digest}:replay:{}:{}",
                spec.replay,
                texts_digest(replay.iter().copied())
            );
        }
        (replay, digest)
    };
    // The texts each finetune learns beside its questions: its documents, then the replay.
    let with_docs = |docs: &[&'_ TextRecord], replay: Vec<&'_ str>| -> Vec<String> {
        docs.iter()
            .map(|d| d.text.clone())
            .chain(replay.into_iter().map(str::to_owned))
            .collect()
    };
    let (replay, target_digest) = replayed(&target_records, &target_docs, spec.seed + 4);
    let target_replay = with_docs(&target_docs, replay);
    let (replay, oracle_digest) = replayed(&oracle_records, &oracle_docs, spec.seed + 5);
    let oracle_replay = with_docs(&oracle_docs, replay);
    // Adapters enter the finetuned models' keys only when there are any (keys of full
    // finetuning are what they were).
    let lora_part = match &spec.lora {
        Some(l) => format!(
            ":lora:{}",
            serde_json::to_string(l).map_err(|e| PipelineError::Internal(e.to_string()))?
        ),
        None => String::new(),
    };
    let target_key = key(&["target", &base_key, &format!("{target_digest}{lora_part}")]);
    let oracle_key = key(&["oracle", &base_key, &format!("{oracle_digest}{lora_part}")]);

    // Two workers that need the same models take turns: the second finds them cached instead
    // of training them again (entries are also published atomically, see `store`).
    let _lock = cache.lock(&target_key)?;

    // The data of each phase, tokenized as the base's tokenizer does (cheap next to training;
    // also done on a cache hit, to record the schedule the cached models were trained with).
    let pretrain_data = |tok: &Tokenizer, max_len: usize| -> Result<Vec<Sequence>, PipelineError> {
        let mut corpus = Vec::new();
        for split in suite.splits_with(SplitRole::Pretrain) {
            for t in split.texts() {
                corpus.push(Sequence::text(tok, &t.text)?.truncated(max_len));
            }
        }
        Ok(corpus)
    };
    let finetune_data = |tok: &Tokenizer,
                         max_len: usize,
                         records: &[&QaRecord],
                         replay: &[String]|
     -> Result<Vec<Sequence>, PipelineError> {
        let mut data = qa_sequences(records, tok, max_len)?;
        for t in replay {
            data.push(Sequence::text(tok, t)?.truncated(max_len));
        }
        Ok(data)
    };
    let schedule_of = |base: &LanguageModel| -> Result<Schedule, PipelineError> {
        let tok = base.tokenizer();
        let max_len = base.config().max_position_embeddings;
        Ok(Schedule {
            pretrain: match spec.checkpoint {
                Some(_) => None,
                None => Some(phase_run(&spec.pretrain, &pretrain_data(tok, max_len)?)),
            },
            target: phase_run(
                &spec.finetune,
                &finetune_data(tok, max_len, &target_records, &target_replay)?,
            ),
            oracle: phase_run(
                &spec.finetune,
                &finetune_data(tok, max_len, &oracle_records, &oracle_replay)?,
            ),
        })
    };

    // Everything cached: only the target is read now; base and oracle when first needed.
    let base_there = spec.checkpoint.is_some() || cache.verified(&base_key);
    if base_there
        && cache.verified(&oracle_key)
        && let Some(target) = cache.load(&target_key)
    {
        info!(cache = ?cache.dir(), "reusing cached base, target and oracle models");
        let base = match &spec.checkpoint {
            Some(c) => LazySource::Checkpoint(c.path.clone()),
            None => LazySource::Cache(cache.clone(), base_key.clone()),
        };
        let schedule = schedule_of(&target)?;
        return Ok(Learned {
            base: LazyModel::later(base),
            target,
            oracle: LazyModel::later(LazySource::Cache(cache.clone(), oracle_key.clone())),
            keys: [base_key, target_key, oracle_key],
            schedule,
            disposable: false,
            consumed: Default::default(),
        });
    }

    // A checkpoint is its own base: loaded from its folder, never copied into the cache.
    let from_checkpoint = match &spec.checkpoint {
        Some(c) => {
            reporter.stage("load checkpoint", 0);
            let model = LanguageModel::load(&c.path, &Device::Cpu)?;
            reporter.finish();
            info!(checkpoint = %c.path.display(), parameters = model.params().count(), "loaded");
            Some(model)
        }
        None => None,
    };
    let cached = (
        match from_checkpoint {
            Some(m) => Some(m),
            None => cache.load(&base_key),
        },
        cache.load(&target_key),
        cache.load(&oracle_key),
    );
    let (base_hit, target_hit, oracle_hit) = match cached {
        (Some(base), Some(target), Some(oracle)) => {
            info!(cache = ?cache.dir(), "reusing cached base, target and oracle models");
            let schedule = schedule_of(&base)?;
            return Ok(Learned {
                base: LazyModel::loaded(base),
                target,
                oracle: LazyModel::loaded(oracle),
                keys: [base_key, target_key, oracle_key],
                schedule,
                disposable: false,
                consumed: Default::default(),
            });
        }
        partial => partial,
    };

    let base = match base_hit {
        Some(m) => m,
        None => {
            reporter.stage("tokenizer", 0);
            let tok = Tokenizer::train(texts.iter().map(String::as_str), spec.vocab_size)?;
            reporter.finish();
            let cfg = spec.preset.config(tok.vocab_size());
            let max_len = cfg.max_position_embeddings;
            let params = Params::init(&cfg, spec.seed, &Device::Cpu)?;
            let model = LanguageModel::new(cfg.clone(), tok.clone(), params)?;
            let corpus = pretrain_data(&tok, max_len)?;
            train_phase(
                "pretrain base",
                &model,
                &corpus,
                &spec.pretrain,
                spec.seed + 1,
                reporter,
            )?;
            cache.store(&base_key, &model)?;
            model
        }
    };
    let tok = base.tokenizer().clone();
    let max_len = base.config().max_position_embeddings;
    // Adapters train at the phase's rate times their scale.
    let finetune_phase = Phase {
        learning_rate: spec.finetune.learning_rate
            * spec.lora.as_ref().map_or(1.0, |l| l.learning_rate_scale),
        ..spec.finetune.clone()
    };
    // What a finetune trains: a copy of the base, or adapters on it (merged when done).
    let fresh = |base: &LanguageModel, seed: u64| -> Result<LanguageModel, PipelineError> {
        Ok(match &spec.lora {
            Some(l) => base.with_lora(l, seed)?,
            None => base.deep_copy()?,
        })
    };
    let plain = |model: LanguageModel| -> Result<LanguageModel, PipelineError> {
        Ok(match model.adapters() {
            Some(_) => model.merged()?,
            None => model,
        })
    };

    let target = match target_hit {
        Some(m) => m,
        None => {
            let model = fresh(&base, spec.seed + 2)?;
            let data = finetune_data(&tok, max_len, &target_records, &target_replay)?;
            train_phase(
                "finetune target",
                &model,
                &data,
                &finetune_phase,
                spec.seed + 2,
                reporter,
            )?;
            let model = plain(model)?;
            cache.store(&target_key, &model)?;
            model
        }
    };
    let oracle = match oracle_hit {
        Some(m) => m,
        None => {
            let model = fresh(&base, spec.seed + 3)?;
            let data = finetune_data(&tok, max_len, &oracle_records, &oracle_replay)?;
            train_phase(
                "finetune oracle",
                &model,
                &data,
                &finetune_phase,
                spec.seed + 3,
                reporter,
            )?;
            let model = plain(model)?;
            cache.store(&oracle_key, &model)?;
            model
        }
    };
    let schedule = schedule_of(&base)?;
    Ok(Learned {
        base: LazyModel::loaded(base),
        target,
        oracle: LazyModel::loaded(oracle),
        keys: [base_key, target_key, oracle_key],
        schedule,
        disposable: false,
        consumed: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tiny() -> LanguageModel {
        let texts = ["Where was Ana born? Ana was born in Lisbon."];
        let tok = Tokenizer::train(texts.iter().copied(), 120).unwrap();
        let cfg = Config::tiny(tok.vocab_size());
        let params = Params::init(&cfg, 3, &Device::Cpu).unwrap();
        LanguageModel::new(cfg, tok, params).unwrap()
    }

    /// Llama 3 8B's config.json as published.
    const LLAMA3_8B: &str = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "tie_word_embeddings": false, "bos_token_id": 128000, "eos_token_id": 128001}"#;

    #[test]
    fn a_model_too_large_for_the_memory_left_is_refused_with_the_numbers() {
        let cfg = Config::from_hf_json(LLAMA3_8B).unwrap();
        // The model card's count.
        assert_eq!(parameter_count(&cfg), 8_030_261_248);
        let gib = 1u64 << 30;
        // 8.03 B × 4 bytes × 6 copies = 179.5 GiB.
        let err = check_fits(&cfg, 100 * gib).unwrap_err();
        for part in [
            "8.03 B parameters",
            "29.9 GiB of f32 weights",
            "179.5 GiB needed",
            "100.0 GiB of memory available",
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
        assert!(check_fits(&cfg, 180 * gib).is_ok());
        // With adapters in both stages: four copies, 119.7 GiB.
        let err = check_fits_with(&cfg, 100 * gib, true).unwrap_err();
        assert!(
            err.contains("at least 4 copies") && err.contains("119.7 GiB needed"),
            "{err}"
        );
        assert!(check_fits_with(&cfg, 120 * gib, true).is_ok());
        assert!(available_memory().is_none_or(|b| b > 0));
    }

    #[test]
    fn the_tightest_cgroup_on_the_process_path_bounds_the_memory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let put = |p: &str, v: &str| {
            let f = root.join(p);
            fs_err::create_dir_all(f.parent().unwrap()).unwrap();
            fs_err::write(f, v).unwrap();
        };
        // v2: the job's own cgroup has no limit ("max"), its parent 8 GiB with 3 GiB used.
        put("slurm/job_7/memory.max", "max\n");
        put("slurm/job_7/memory.current", "1073741824\n");
        put("slurm/memory.max", "8589934592\n");
        put("slurm/memory.current", "3221225472\n");
        let v2 = "0::/slurm/job_7\n";
        assert_eq!(cgroup_headroom(v2, root), Some(5 << 30));
        // v1's memory controller, listed among others; an unlimited v1 limit is a huge number.
        put("memory/docker/abc/memory.limit_in_bytes", "2147483648\n");
        put("memory/docker/abc/memory.usage_in_bytes", "536870912\n");
        put("memory/memory.limit_in_bytes", "9223372036854771712\n");
        let v1 = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n";
        assert_eq!(cgroup_headroom(v1, root), Some(3 << 29));
        // No memory cgroup at all: nothing to say.
        assert_eq!(cgroup_headroom("1:cpu:/\n", root), None);
    }

    #[test]
    fn an_altered_or_truncated_cache_entry_is_discarded_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(Some(dir.path().to_owned()));
        let model = tiny();
        cache.store("k", &model).unwrap();
        assert!(cache.load("k").is_some());
        let weights = cache.path("k").unwrap().join("model.safetensors");
        let clean = fs_err::read(&weights).unwrap();

        // One byte flipped in the weights: same length, still parses, different model.
        let mut bytes = clean.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        fs_err::write(&weights, &bytes).unwrap();
        assert!(cache.load("k").is_none());
        assert!(!cache.path("k").unwrap().exists(), "the bad entry stays");

        // Stored again, then cut short.
        cache.store("k", &model).unwrap();
        assert!(cache.load("k").is_some());
        fs_err::write(&weights, &clean[..clean.len() / 2]).unwrap();
        assert!(cache.load("k").is_none());

        // Observations: stored, read back equal, and an altered file is observed again.
        let observed = vec![lethe_manifest::ObservedSplit {
            model: lethe_manifest::ModelRole::Subject,
            split: "forget".into(),
            examples: vec![lethe_manifest::ObservedExample {
                id: "q1".into(),
                answer_logprobs: Some(vec![-0.125, -3.5e-7, -12.75]),
                generated: Some("Lisbon".into()),
                ..lethe_manifest::ObservedExample::default()
            }],
        }];
        cache.store_observed("o", &observed).unwrap();
        assert_eq!(cache.load_observed("o"), Some(observed.clone()));
        let file = cache.observed_path("o").unwrap();
        let text = fs_err::read_to_string(&file)
            .unwrap()
            .replace("Lisbon", "Lisboa");
        fs_err::write(&file, text).unwrap();
        assert_eq!(cache.load_observed("o"), None);
        assert_eq!(ModelCache::new(None).load_observed("o"), None);

        // An entry without its digests (an older Lethe's, or a copy cut short) is not trusted.
        cache.store("k", &model).unwrap();
        fs_err::remove_file(cache.path("k").unwrap().join(ENTRY_DIGESTS)).unwrap();
        assert!(cache.load("k").is_none());
    }
}

#[cfg(test)]
mod replay_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn spec() -> LearnSpec {
        LearnSpec {
            preset: ModelPreset::Tiny,
            vocab_size: 300,
            pretrain: Phase {
                epochs: 1,
                batch_size: 8,
                learning_rate: 1e-3,
                token_budget: None,
            },
            finetune: Phase {
                epochs: 1,
                batch_size: 8,
                learning_rate: 1e-3,
                token_budget: None,
            },
            seed: 0,
            replay: 0.0,
            checkpoint: None,
            lora: None,
        }
    }

    #[test]
    fn replay_draws_a_seeded_share_of_pretraining_texts_and_is_absent_from_old_specs() {
        let suite = lethe_suites::generate::authors(&lethe_suites::generate::AuthorsConfig::tiny())
            .unwrap();
        let pretrain: usize = suite
            .splits_with(SplitRole::Pretrain)
            .map(|s| s.texts().len())
            .sum();
        let a = replay_texts(&suite, 0.5, 40, 7);
        assert_eq!(a.len(), 20);
        assert_eq!(a, replay_texts(&suite, 0.5, 40, 7), "seeded");
        assert_ne!(a, replay_texts(&suite, 0.5, 40, 8));
        // More than the split holds: it cycles.
        assert_eq!(
            replay_texts(&suite, 1.0, 3 * pretrain, 7).len(),
            3 * pretrain
        );
        assert!(replay_texts(&suite, 0.0, 40, 7).is_empty());

        // A spec without replay serialises as before, so cache keys and job ids stay.
        let json = serde_json::to_string(&spec()).unwrap();
        assert!(!json.contains("replay"), "{json}");
        let with: LearnSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(with.replay, 0.0);
        let half = serde_json::to_string(&LearnSpec {
            replay: 0.5,
            ..spec()
        })
        .unwrap();
        assert!(half.contains("\"replay\":0.5"), "{half}");
    }
}
