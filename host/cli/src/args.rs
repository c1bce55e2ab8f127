//! The command line, as clap types only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Measure how well machine-unlearning methods make a language model forget.
#[derive(Debug, Parser)]
#[command(name = "lethe", version, about, max_term_width = 100)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug); hides progress bars. LETHE_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Learn, unlearn, observe and score on a suite, over seeds; write results and a
    /// leaderboard with intervals (= `lethe plan`, `lethe exec`, `lethe report` in one).
    Run(Box<RunCmd>),
    /// Write the plan of an experiment (OUT/plan.jsonl) from the options `lethe run` takes,
    /// without running it.
    Plan(Box<PlanCmd>),
    /// Meta-evaluate metrics: how faithfully each separates models that know the forget set
    /// from models that do not, and how robust its reading is to relearning, quantization and
    /// query attacks; a ranked table with intervals, every value, plots.
    MetaEval(Box<MetaEvalCmd>),
    /// Run the jobs of a plan (all, one index, or a range), one Parquet shard each; jobs whose
    /// complete shard is present are skipped.
    Exec(ExecArgs),
    /// Merge the shards of one or more output folders into leaderboards with intervals.
    Report(ReportArgs),
    /// Write a Slurm job array for a plan (one task per job, then the report).
    Slurm(SlurmArgs),
    /// Write a Kubernetes Indexed Job for a plan (one completion per job, then the report).
    K8s(K8sArgs),
    /// List the installed plugins (built-in and from --plugin-dir).
    Plugins(PluginsArgs),
    /// Work with one plugin.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Leaderboards from submissions: add one (checked, run, verified), build the pages.
    Leaderboard {
        #[command(subcommand)]
        command: LeaderboardCommand,
    },
    /// Work with suites.
    Suite {
        #[command(subcommand)]
        command: SuiteCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Work with model checkpoints.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

/// Model checkpoints.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Make a Llama-shaped checkpoint of any size in Hugging Face layout (config.json,
    /// model.safetensors, tokenizer.json): a BPE trained on a suite's text and seeded initial
    /// weights, for `lethe run --model DIR` (e.g. a ~100 M-parameter model to try LoRA on).
    Init(ModelInitArgs),
}

/// Options of `lethe model init`.
#[derive(Debug, Args)]
pub struct ModelInitArgs {
    /// The folder to write (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// The suite whose text the tokenizer learns [default: the generated authors suite].
    #[arg(long)]
    pub suite: Option<PathBuf>,
    /// Width of the residual stream.
    #[arg(long, default_value_t = 768)]
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    #[arg(long, default_value_t = 2048)]
    pub intermediate_size: usize,
    /// Decoder layers.
    #[arg(long, default_value_t = 12)]
    pub layers: usize,
    /// Query heads.
    #[arg(long, default_value_t = 12)]
    pub heads: usize,
    /// Key/value heads (fewer than --heads: grouped-query attention).
    #[arg(long, default_value_t = 4)]
    pub kv_heads: usize,
    /// Largest vocabulary the tokenizer may learn.
    #[arg(long, default_value_t = 8192)]
    pub vocab_size: usize,
    /// Longest sequence.
    #[arg(long, default_value_t = 256)]
    pub max_positions: usize,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Cost of one host↔plugin call, and the share of a GradDiff step spent in the boundary.
    Boundary(BenchArgs),
    /// Speed of the model engine (train step, forward log-probs, greedy generation) on the
    /// reference model shape, against PyTorch's figures.
    Model(ModelBenchArgs),
}

/// Options of `lethe bench model`.
#[derive(Debug, Args)]
pub struct ModelBenchArgs {
    /// Timed runs of each workload (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// Untimed runs of each workload first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Only these workloads (repeatable); all three by default.
    #[arg(long, value_enum)]
    pub workload: Vec<ModelWorkload>,
    /// Seed of the weights and the input tokens.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// PyTorch's figures to compare with: JSON files written by the reference `bench.py
    /// {train,fwd,gen} --out FILE` on this machine in the same hour (repeatable; several files
    /// of one workload give the median of their medians). Without it the ratio is to PyTorch's
    /// figures on the reference machine, which the table says.
    #[arg(long, value_name = "FILE")]
    pub against: Vec<PathBuf>,
}

/// A workload of `lethe bench model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelWorkload {
    /// Forward, loss, backward and AdamW on 8 × 128 tokens.
    Train,
    /// Per-token log-probs of 8 × 128 tokens, no gradient.
    Forward,
    /// Greedy generation of 32 tokens after 8 prompts of 32, with a KV cache.
    Generate,
}

/// Options of `lethe bench boundary`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Repeats of each measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Training steps per GradDiff measurement.
    #[arg(long, default_value_t = 10)]
    pub steps: u32,
    /// Host calls per call-cost measurement.
    #[arg(long, default_value_t = 200_000)]
    pub calls: u32,
    /// Seed of the model and data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The `bench-calls` component (tests/plugins/bench-calls, built for wasm32-wasip2); by
    /// default the one this build compiled, which a binary installed elsewhere does not have.
    #[arg(long, value_name = "FILE.wasm")]
    pub calls_plugin: Option<std::path::PathBuf>,
}

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a third-party component (API version, manifest, config schema) without
    /// running a suite.
    Check(CheckArgs),
    /// Write a new plugin crate of its own (no workspace needed) from the SDK's template.
    New(NewPluginArgs),
    /// The conformance check a leaderboard runs before it accepts a plugin: run it on the
    /// tiny preset (twice) and report every check, exiting non-zero if any fails.
    Test(Box<PluginTestArgs>),
}

/// What a plugin is, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// An unlearning method.
    Method,
    /// A metric.
    Metric,
    /// A query attack.
    QueryAttack,
    /// A judge of sampled answers.
    Judge,
}

impl From<KindArg> for lethe_manifest::PluginKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Method => Self::Method,
            KindArg::Metric => Self::Metric,
            KindArg::QueryAttack => Self::QueryAttack,
            KindArg::Judge => Self::Judge,
        }
    }
}

/// Options of `lethe plugin new`.
#[derive(Debug, Args)]
pub struct NewPluginArgs {
    /// The plugin's name (also the crate's): lowercase letters, digits and '-'.
    pub name: String,
    /// What the plugin is.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// The folder to create (default: ./NAME); it must not exist or be empty.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// The SDK as a path: the `plugin-sdk/rust` folder of a Lethe checkout (default: the
    /// checkout this binary was built from, when it is still there; else --sdk-git).
    #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
    pub sdk_path: Option<PathBuf>,
    /// The SDK as a git dependency on this Lethe repository (default: the repository this
    /// binary was built from).
    #[arg(long, value_name = "URL")]
    pub sdk_git: Option<String>,
    /// The tag of --sdk-git (default: v<this Lethe's version>).
    #[arg(long, requires = "sdk_git")]
    pub sdk_tag: Option<String>,
}

/// Leaderboard subcommands.
#[derive(Debug, Subcommand)]
pub enum LeaderboardCommand {
    /// Check a submission folder (submission.toml, the component's sha256, the conformance
    /// check), run the board's plan for it, run one of its jobs again to verify the shard is
    /// byte-identical, and accept it; anything that fails refuses it with the reason.
    Add(Box<BoardAddArgs>),
    /// Regenerate the board's leaderboard.md, leaderboard.csv and index.html from every
    /// accepted entry's shards.
    Build(BoardBuildArgs),
    /// Print the JSON Schema of submission.toml (its TOML read as JSON).
    Schema,
}

/// Options of `lethe leaderboard add`.
#[derive(Debug, Args)]
pub struct BoardAddArgs {
    /// The submission folder (submission.toml and the component it names).
    pub submission: PathBuf,
    /// The board folder (board.toml, entries/).
    #[arg(long)]
    pub board: PathBuf,
    /// Run an entry already on the board again, replacing it once accepted.
    #[arg(long)]
    pub replace: bool,
    /// Jobs run at once, each in a worker process of its own.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Sandbox, cache and plugin folder.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Options of `lethe leaderboard build`.
#[derive(Debug, Args)]
pub struct BoardBuildArgs {
    /// The board folder.
    pub board: PathBuf,
}

/// Options of `lethe plugin test`.
#[derive(Debug, Args)]
pub struct PluginTestArgs {
    /// The component to test.
    pub file: PathBuf,
    /// The configuration to test it with (JSON; default: the plugin's defaults).
    #[arg(long, default_value = "{}")]
    pub config: String,
    /// Seed of the tiny suite, its models and the runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sandbox, cache and plugin folder.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Suite subcommands.
#[derive(Debug, Subcommand)]
pub enum SuiteCommand {
    /// Check a suite folder and report every problem with file, line and field.
    Check(SuiteCheckArgs),
    /// Write a generated suite to a folder.
    Generate(SuiteGenerateArgs),
    /// Print the JSON Schema of the suite format (manifest; question, text and continuation
    /// lines).
    Schema,
    /// Import a published benchmark (from a local copy of its release) or your own
    /// question-answer data into a suite folder.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
}

/// Options of `lethe suite import tofu`.
#[derive(Debug, Args)]
pub struct SuiteImportArgs {
    /// The folder holding the release's files (e.g. TOFU's forget10.json, retain90.json …).
    #[arg(long)]
    pub from: PathBuf,
    /// Percentage of authors to forget (TOFU: 1, 5 or 10; any with full.json).
    #[arg(long, default_value_t = 10)]
    pub forget_percent: u32,
    /// The suite folder to write (must not exist yet).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `lethe suite import muse`.
#[derive(Debug, Args)]
pub struct MuseImportArgs {
    /// The corpus folder (e.g. MUSE's data/news).
    #[arg(long)]
    pub from: PathBuf,
    /// The suite folder to write (must not exist yet).
    #[arg(long)]
    pub out: PathBuf,
}

/// What `lethe suite import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// TOFU, from a local copy of the Hugging Face release's JSON Lines files.
    Tofu(SuiteImportArgs),
    /// MUSE, one corpus from a local copy in MUSE's layout: knowmem/forget_qa.json,
    /// knowmem/retain2_qa.json, verbmem/forget.json, privleak/{forget,retain2,holdout}.json
    /// (single-line JSON arrays), and raw/forget.json, raw/retain1.json when present.
    Muse(MuseImportArgs),
    /// Your own question-answer data (JSON, JSON Lines, CSV, TSV or Parquet) with a column
    /// mapping: `--from FILE --split COL`, `--from FILE --forget-percent P`, or one file per
    /// split (`--forget-file`, `--retain-file` …).
    Qa(Box<QaImportArgs>),
}

/// Options of `lethe suite import qa`. Input files are read by extension: .json (an array of
/// objects, or one object a line), .jsonl, .csv, .tsv, .parquet; .txt for text files.
#[derive(Debug, Args)]
pub struct QaImportArgs {
    /// A table of questions whose rows go to splits by --split or --forget-percent.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Input",
        conflicts_with_all = ["forget_file", "retain_file"]
    )]
    pub from: Option<PathBuf>,
    /// A table whose rows all go to the forget split (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub forget_file: Vec<PathBuf>,
    /// A table whose rows all go to the retain split (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub retain_file: Vec<PathBuf>,
    /// A table of non-members, for membership inference (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub holdout_file: Vec<PathBuf>,
    /// An evaluation-only split NAME from FILE, e.g. test=test.csv (repeatable).
    #[arg(long, value_name = "NAME=FILE", help_heading = "Input")]
    pub eval_file: Vec<String>,
    /// Text to pretrain the base model on: a .txt file (one text a line) or a table with a
    /// --text column (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub pretrain_file: Vec<PathBuf>,
    /// Refusals ("I don't know") a method may train towards, in the forms of --pretrain-file
    /// (repeatable).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub idk_file: Vec<PathBuf>,

    /// With --from: the column naming each row's split. forget, retain, holdout and eval are
    /// roles; any other name needs --role.
    #[arg(
        long,
        value_name = "COL",
        help_heading = "Splits",
        requires = "from",
        conflicts_with = "forget_percent"
    )]
    pub split: Option<String>,
    /// The role of a split named in the --split column, NAME=ROLE with ROLE one of forget,
    /// retain, holdout, eval (repeatable), e.g. test=eval.
    #[arg(
        long = "role",
        value_name = "NAME=ROLE",
        help_heading = "Splits",
        requires = "split"
    )]
    pub roles: Vec<String>,
    /// With --from: forget this percentage (1 to 99) of the rows, drawn by --seed, and retain
    /// the rest.
    #[arg(
        long,
        value_name = "PERCENT",
        help_heading = "Splits",
        requires = "from"
    )]
    pub forget_percent: Option<u32>,
    /// With --forget-percent: draw whole groups instead of rows, the rows that share this
    /// column's value (e.g. a person).
    #[arg(
        long,
        value_name = "COL",
        help_heading = "Splits",
        requires = "forget_percent"
    )]
    pub forget_by: Option<String>,
    /// Seed of the --forget-percent draw.
    #[arg(long, default_value_t = 0, help_heading = "Splits")]
    pub seed: u64,

    /// The column of the questions.
    #[arg(
        long,
        value_name = "COL",
        default_value = "question",
        help_heading = "Columns"
    )]
    pub question: String,
    /// The column of the reference answers.
    #[arg(
        long,
        value_name = "COL",
        default_value = "answer",
        help_heading = "Columns"
    )]
    pub answer: String,
    /// The column of the ids (unique across all files) [default: made from split and position].
    #[arg(long, value_name = "COL", help_heading = "Columns")]
    pub id: Option<String>,
    /// A group key reports can slice by: COL, or KEY=COL to name it differently (repeatable).
    #[arg(long = "group", value_name = "[KEY=]COL", help_heading = "Columns")]
    pub groups: Vec<String>,
    /// A column of paraphrased answers (repeatable; each cell a text or a list).
    #[arg(
        long = "paraphrased-answer",
        value_name = "COL",
        help_heading = "Columns"
    )]
    pub paraphrased_answers: Vec<String>,
    /// A column of perturbed (wrong) answers (repeatable).
    #[arg(
        long = "perturbed-answer",
        value_name = "COL",
        help_heading = "Columns"
    )]
    pub perturbed_answers: Vec<String>,
    /// A column of paraphrased questions (repeatable).
    #[arg(
        long = "paraphrased-question",
        value_name = "COL",
        help_heading = "Columns"
    )]
    pub paraphrased_questions: Vec<String>,
    /// A column of leakage terms (repeatable).
    #[arg(long = "term", value_name = "COL", help_heading = "Columns")]
    pub terms: Vec<String>,
    /// A column of a closed question's options (repeatable: one column per option, or one
    /// column of lists).
    #[arg(long = "option", value_name = "COL", help_heading = "Columns")]
    pub options: Vec<String>,
    /// The column of the correct option: its 0-based index or its text.
    #[arg(long, value_name = "COL", help_heading = "Columns")]
    pub correct_option: Option<String>,
    /// Split text cells of list columns (answers, questions, terms, options) on this
    /// separator, e.g. "|".
    #[arg(long, value_name = "SEP", help_heading = "Columns")]
    pub list_separator: Option<String>,
    /// The column of the texts in --pretrain-file and --idk-file tables.
    #[arg(
        long,
        value_name = "COL",
        default_value = "text",
        help_heading = "Columns"
    )]
    pub text: String,

    /// The suite's name: lowercase letters, digits and '-'.
    #[arg(long, default_value = "imported")]
    pub name: String,
    /// The suite folder to write (must not exist yet).
    #[arg(long)]
    pub out: PathBuf,
}

/// The run presets: model size, suite size and training lengths together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The embedded default: a ~1M-parameter model on the generated authors suite (minutes).
    Default,
    /// A very small model and suite, for tests and smoke checks (seconds).
    Tiny,
}

/// Options of `lethe run`.
#[derive(Debug, Args)]
pub struct RunCmd {
    /// What to run.
    #[command(flatten)]
    pub args: RunArgs,
    /// Jobs run at once, each in a worker process of its own (results do not depend on it).
    #[arg(long, default_value_t = 1, help_heading = "Execution")]
    pub workers: usize,
}

/// Options of `lethe meta-eval`. The options of `lethe run` apply (suite, preset, model,
/// budgets, runtime); its --methods are the robustness pool's methods, --attack its attacks,
/// --metrics the metrics meta-evaluated, and the first of --seeds (or --seed) the reference
/// models' seed.
#[derive(Debug, Args)]
pub struct MetaEvalCmd {
    /// What to run on.
    #[command(flatten)]
    pub args: RunArgs,
    /// Models in each faithfulness pool (P knows the forget set, N does not).
    #[arg(long, default_value_t = 8, help_heading = "Meta-evaluation")]
    pub pool_size: usize,
    /// Learning-rate factors of the robustness pool, × each method's rate.
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 2.0], help_heading = "Meta-evaluation")]
    pub lr_factors: Vec<f64>,
    /// Step budgets of the robustness pool, as unlearning epochs [default: the preset's and
    /// twice it].
    #[arg(long, value_delimiter = ',', help_heading = "Meta-evaluation")]
    pub step_budgets: Vec<usize>,
    /// Share of the target's utility (ROUGE-L recall on retain) an unlearned model must keep
    /// to enter the robustness pool.
    #[arg(long, default_value_t = 0.8, help_heading = "Meta-evaluation")]
    pub utility_share: f64,
    /// Bootstrap replicates of the intervals.
    #[arg(long, default_value_t = 1000, help_heading = "Meta-evaluation")]
    pub bootstrap: usize,
    /// Only write OUT/plan.jsonl (then `lethe exec`, `lethe slurm`, `lethe report`).
    #[arg(long, help_heading = "Meta-evaluation")]
    pub plan_only: bool,
    /// Jobs run at once, each in a worker process of its own (results do not depend on it).
    #[arg(long, default_value_t = 1, help_heading = "Execution")]
    pub workers: usize,
}

/// Options of `lethe plan`.
#[derive(Debug, Args)]
pub struct PlanCmd {
    /// What to plan.
    #[command(flatten)]
    pub args: RunArgs,
    /// Print the JSON Schemas of a plan file's lines (header, job) instead.
    #[arg(long)]
    pub schema: bool,
}

/// The sandbox's limits, the model cache and the plugin folder: how jobs run, not what they
/// compute.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// More plugins to choose from by name: every *.wasm in this folder.
    #[arg(
        long,
        value_name = "DIR",
        env = "LETHE_PLUGIN_DIR",
        help_heading = "Execution"
    )]
    pub plugin_dir: Option<PathBuf>,
    /// Where trained models are cached (content-addressed).
    #[arg(long, env = "LETHE_CACHE_DIR", help_heading = "Execution")]
    pub cache_dir: Option<PathBuf>,
    /// Train every model again instead of using the cache.
    #[arg(long, help_heading = "Execution")]
    pub no_cache: bool,
    /// Fuel (≈ wasm instructions) a plugin call may use.
    #[arg(long, default_value_t = 20_000_000_000, help_heading = "Execution")]
    pub fuel: u64,
    /// Seconds a plugin may go without progress, host work for it included: a method between
    /// training steps, any other plugin for its whole call.
    #[arg(long, default_value_t = 60.0, help_heading = "Execution")]
    pub plugin_timeout: f64,
    /// Memory a plugin may use, in MiB.
    #[arg(long, default_value_t = 512, help_heading = "Execution")]
    pub plugin_memory_mib: usize,
    /// Tensor memory a method may hold on the host at once, in MiB (its tensors, and its
    /// batches' tokens and cached forward outputs); raise it for large checkpoints.
    #[arg(long, default_value_t = 4096, help_heading = "Execution")]
    pub plugin_tensor_mib: usize,
    /// Log messages one plugin call may write, in KiB.
    #[arg(long, default_value_t = 1024, help_heading = "Execution")]
    pub plugin_log_kib: usize,
}

impl RuntimeArgs {
    /// The options as `lethe exec` flags, for worker processes and scheduler tasks.
    pub fn to_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = &self.plugin_dir {
            out.extend(["--plugin-dir".to_owned(), d.display().to_string()]);
        }
        if let Some(d) = &self.cache_dir {
            out.extend(["--cache-dir".to_owned(), d.display().to_string()]);
        }
        if self.no_cache {
            out.push("--no-cache".into());
        }
        out.extend([
            "--fuel".to_owned(),
            self.fuel.to_string(),
            "--plugin-timeout".to_owned(),
            self.plugin_timeout.to_string(),
            "--plugin-memory-mib".to_owned(),
            self.plugin_memory_mib.to_string(),
            "--plugin-tensor-mib".to_owned(),
            self.plugin_tensor_mib.to_string(),
            "--plugin-log-kib".to_owned(),
            self.plugin_log_kib.to_string(),
        ]);
        out
    }
}

/// Options of `lethe exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The plan file, or an output folder holding plan.jsonl.
    pub plan: PathBuf,
    /// The output folder (default: the plan file's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only job I (0-based; a scheduler's array index).
    #[arg(long, value_name = "I", conflicts_with = "jobs")]
    pub index: Option<usize>,
    /// Run only jobs A..B (end exclusive).
    #[arg(long, value_name = "A..B")]
    pub jobs: Option<String>,
    /// Jobs run at once, each in a worker process of its own.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Sandbox, cache and plugin folder.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Options of `lethe report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output folders of `lethe exec` / `lethe run` (each holds plan.jsonl and jobs/).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write leaderboard.md/.csv, results.parquet (merged), failures.json, run.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Report the complete shards even if some jobs have none yet.
    #[arg(long)]
    pub partial: bool,
    /// A plugin folder, to read how third-party metrics' outputs read.
    #[arg(long, value_name = "DIR", env = "LETHE_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
}

/// What every scheduler writer takes.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The plan file, or an output folder holding plan.jsonl.
    pub plan: PathBuf,
    /// The output folder the tasks write shards into (default: the plan file's folder); as
    /// the tasks see it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the report step writes the leaderboard (default: OUT/board).
    #[arg(long)]
    pub board: Option<PathBuf>,
    /// The lethe binary as the tasks see it (default: this one for Slurm, `lethe` on the
    /// image's PATH for Kubernetes).
    #[arg(long)]
    pub lethe: Option<PathBuf>,
    /// Sandbox, cache and plugin folder of every task.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Options of `lethe slurm`.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Plan, folders, binary.
    #[command(flatten)]
    pub common: SchedulerArgs,
    /// Partition (the cluster's default if not given).
    #[arg(long)]
    pub partition: Option<String>,
    /// CPUs of each task.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory of each task.
    #[arg(long, default_value = "4G")]
    pub mem: String,
    /// Time limit of each task.
    #[arg(long, default_value = "02:00:00")]
    pub time: String,
    /// At most this many tasks at once.
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Submit with sbatch after writing, and print the array's and the report's job ids.
    #[arg(long)]
    pub submit: bool,
}

/// Options of `lethe k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// Plan, folders, binary.
    #[command(flatten)]
    pub common: SchedulerArgs,
    /// The container image holding lethe. The plan, the output folder and the cache must be
    /// at the same paths in the pods as here (on the claim, mounted at --mount).
    #[arg(long)]
    pub image: String,
    /// A persistent volume claim holding the plan, output and cache folders.
    #[arg(long)]
    pub claim: Option<String>,
    /// Where the claim is mounted in the pods.
    #[arg(long, default_value = "/data")]
    pub mount: PathBuf,
    /// Pods at once.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// CPUs of each pod.
    #[arg(long, default_value = "2")]
    pub cpu: String,
    /// Memory of each pod.
    #[arg(long, default_value = "4Gi")]
    pub memory: String,
    /// The Job's name.
    #[arg(long, default_value = "lethe")]
    pub name: String,
}

/// A stage LoRA can replace full training in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoraStage {
    /// The target's and the oracle's finetuning.
    Finetune,
    /// Unlearning (and model attacks written as methods).
    Unlearn,
}

/// Options of `lethe run` and `lethe plan`: what an experiment computes.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Model size, suite size and training lengths.
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    pub preset: Preset,
    /// A suite folder (suite.json + JSON Lines), repeatable (an axis of the plan); default:
    /// the generated authors suite.
    #[arg(long)]
    pub suite: Vec<PathBuf>,
    /// Seed of the generated authors suite (the suite stays the same across --seeds).
    #[arg(long, default_value_t = 0)]
    pub suite_seed: u64,
    /// Start from this checkpoint (Hugging Face layout: config.json, model.safetensors or
    /// shards, tokenizer.json) instead of a model trained from scratch; the preset's model
    /// size and pretraining are then unused.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Run a benchmark's whole experiment instead of one suite: its suites (generated at the
    /// preset's size), methods, metrics, ablations and tables. Several, comma-separated, make
    /// one plan of all their jobs.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "suite")]
    pub protocol: Vec<ProtocolArg>,
    /// With --protocol tofu: a local copy of TOFU's release (its JSON Lines files as
    /// downloaded: forget01/05/10 and their _perturbed files, retain_perturbed, holdout,
    /// real_authors_perturbed, world_facts_perturbed, or full.json), imported when each job
    /// runs; the ratios whose files are missing are left out. With --protocol muse: one
    /// corpus in MUSE's layout (knowmem/, verbmem/, privleak/, optionally raw/). Default: the
    /// generated suites.
    #[arg(long, value_name = "DIR", requires = "protocol")]
    pub release: Option<PathBuf>,
    /// Evaluate only the first N questions of a split, as SPLIT=N (repeatable); the rest are
    /// still trained on. TOFU's protocol evaluates retain on the questions of
    /// retain_perturbed by itself.
    #[arg(long, value_name = "SPLIT=N")]
    pub eval_first: Vec<String>,
    /// Most tokens the target's and the oracle's finetuning may train on (prompt and answer
    /// tokens over all epochs): fewer epochs run on a suite too large for the preset's count
    /// (the run record says how many); 0 lifts the limit [default: the preset's, 1.5 M].
    #[arg(long, value_name = "TOKENS")]
    pub finetune_tokens: Option<u64>,
    /// Methods to run, by name (built-in, from --plugin-dir, or a --plugin's),
    /// comma-separated [default: ga,graddiff; a protocol's own list with --protocol]; a
    /// --plugin method not named here runs too.
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Metrics to compute, by name, comma-separated [default: rouge,probability; a protocol's
    /// own list with --protocol].
    #[arg(long, value_delimiter = ',')]
    pub metrics: Option<Vec<String>>,
    /// Extra plugin components to run (methods, metrics, query attacks or a judge, by what they
    /// export).
    #[arg(long = "plugin", value_name = "FILE.wasm")]
    pub plugins: Vec<PathBuf>,
    /// Configuration of a plugin, as NAME=JSON (e.g. graddiff='{"alpha":0.5}').
    #[arg(long = "config", value_name = "NAME=JSON")]
    pub configs: Vec<String>,
    /// Seeds of the models, training and every random choice (an axis of the plan): a range
    /// A..B (end exclusive), A..=B, or a list, e.g. 0..5 or 0,3,7.
    #[arg(long, value_name = "SEEDS", default_value = "0..3")]
    pub seeds: String,
    /// One seed: the same as --seeds N.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Grid over a method's configuration, METHOD.KEY=V1,V2,… (repeatable; each value JSON
    /// or text), e.g. graddiff.alpha=0.5,1,2.
    #[arg(long, value_name = "METHOD.KEY=V1,V2")]
    pub grid: Vec<String>,
    /// The output folder: plan.jsonl, jobs/ (one shard and record per job), and the report
    /// (results.parquet, leaderboard.md/.csv, failures.json, losses.json, run.json).
    #[arg(long, default_value = "lethe-out")]
    pub out: PathBuf,
    /// Passes over the forget split each method may take.
    #[arg(long)]
    pub unlearn_epochs: Option<usize>,
    /// Learning rate of unlearning; several, comma-separated, are an axis of the plan.
    #[arg(long, value_delimiter = ',')]
    pub unlearn_lr: Vec<f64>,
    /// Learning rate of one method, as NAME=LR (repeatable), instead of --unlearn-lr.
    #[arg(long = "unlearn-lr-for", value_name = "NAME=LR")]
    pub unlearn_lr_for: Vec<String>,
    /// Re-measure every model under these attacks, comma-separated (results carry an
    /// `attack` column; the leaderboard shows each clean and attacked).
    #[arg(long = "attack", value_enum, value_delimiter = ',')]
    pub attacks: Vec<AttackArg>,
    /// Model attacks written as method plugins (installed, or given with --plugin), by name,
    /// comma-separated: each trains a copy of every model row within the unlearning step
    /// budget; results carry `method:NAME` as their attack.
    #[arg(long = "attack-method", value_delimiter = ',', value_name = "NAME")]
    pub attack_methods: Vec<String>,
    /// Query attacks written as plugins (installed, or given with --plugin), by name,
    /// comma-separated: every model row is re-observed on the plugin's prompts; results carry
    /// `query:NAME` as their attack.
    #[arg(long = "attack-query", value_delimiter = ',', value_name = "NAME")]
    pub attack_queries: Vec<String>,
    /// A judge plugin (installed, or given with --plugin) that decides which answers of the
    /// sampling attack leak, instead of the default "every key term present".
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// Relearning: share of the source examples trained on, in (0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub relearn_share: f64,
    /// Finetuning replay: pretraining texts mixed into the target's and the oracle's finetune,
    /// as a share of their questions (0.5: one text per two questions), so finetuning does not
    /// wipe the model's general text [default: the protocol's (mllmu-med 0.5), else 0].
    #[arg(long, value_name = "SHARE")]
    pub finetune_replay: Option<f64>,
    /// Train low-rank adapters (LoRA) of this rank instead of every weight, in the target's
    /// and the oracle's finetuning and in unlearning (see --lora-for): the frozen weights are
    /// shared, a method's reference model is them without adapters, and every model is
    /// evaluated merged. Pretraining from scratch always trains every weight.
    #[arg(long, value_name = "RANK")]
    pub lora_rank: Option<usize>,
    /// LoRA's α: adapters are scaled by α / rank [default: 2 × rank].
    #[arg(long, value_name = "ALPHA", requires = "lora_rank")]
    pub lora_alpha: Option<f64>,
    /// The projections LoRA adapts, comma-separated, from q_proj, k_proj, v_proj, o_proj,
    /// gate_proj, up_proj, down_proj [default: all seven].
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "MODULES",
        requires = "lora_rank"
    )]
    pub lora_targets: Vec<String>,
    /// LoRA's learning rates: each phase's (and method's) rate times this (a large
    /// checkpoint finetuned at ~1e-5 usually wants about 10) [default: 1].
    #[arg(long, value_name = "SCALE", requires = "lora_rank")]
    pub lora_lr_scale: Option<f64>,
    /// Where LoRA replaces full training, comma-separated [default: finetune,unlearn].
    #[arg(long, value_enum, value_delimiter = ',', requires = "lora_rank")]
    pub lora_for: Vec<LoraStage>,
    /// Relearning: passes over them (at least; see --relearn-min-steps).
    #[arg(long, default_value_t = 1)]
    pub relearn_epochs: usize,
    /// Relearning: the fewest optimiser steps (more passes are made until they are taken).
    #[arg(long, default_value_t = lethe_pipeline::attack::RELEARN_MIN_STEPS)]
    pub relearn_min_steps: usize,
    /// Relearning: learning rate [default: the preset's finetuning rate, the rate the model
    /// learnt at; the peer's 2e-5 suits a 1B model finetuned at 1e-5].
    #[arg(long)]
    pub relearn_lr: Option<f64>,
    /// Relearning: train on part of the forget set ("forget"), or on retained examples that
    /// share a group value with forgotten ones ("group:KEY", e.g. group:disease), optionally
    /// from one retain split only ("group:KEY@SPLIT", e.g. group:disease@knowledge for the
    /// shared disease knowledge, group:disease@retain for other patients with the disease).
    #[arg(
        long,
        default_value = "forget",
        value_name = "forget|group:KEY[@SPLIT]"
    )]
    pub relearn_from: String,
    /// Few-shot: solved retain examples prefixed to each question.
    #[arg(long, default_value_t = 3)]
    pub few_shot: usize,
    /// Sampling: answers drawn per question (leak@k for k = 1…n).
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// Sampling: temperature.
    #[arg(long, default_value_t = 1.0)]
    pub sample_temperature: f64,
    /// 4-bit quantization: weights per group (symmetric and NF4; asymmetric uses 128).
    #[arg(long, default_value_t = 64)]
    pub quant_group: usize,
    /// Quantization: which weights are rounded ("decoder-linear": the decoder blocks' linear
    /// layers, keeping embeddings and lm_head in full precision as bitsandbytes and GPTQ do;
    /// "all": every weight matrix).
    #[arg(long, value_enum, default_value_t = QuantScopeArg::DecoderLinear)]
    pub quant_scope: QuantScopeArg,
    /// Sandbox, cache and plugin folder.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl RunArgs {
    /// The seeds asked for.
    pub fn seed_list(&self) -> Result<Vec<u64>, lethe_experiment::ExperimentError> {
        match self.seed {
            Some(s) => Ok(vec![s]),
            None => lethe_experiment::parse_seeds(&self.seeds),
        }
    }
}

/// The protocols of `lethe run --protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// TOFU: forget 1, 5 and 10 % of the authors (generated, or a release with --release);
    /// GA, GradDiff, NPO, SimNPO; forget quality, model utility, truth ratio, ROUGE-L,
    /// probability, extraction strength, PrivLeak.
    Tofu,
    /// MUSE: verbatim and knowledge memorization, privacy leakage, utility, scalability
    /// (5/10/20 % of the articles) and sustainability (three requests), on the generated news
    /// suite or a corpus in MUSE's layout with --release; GA, GradDiff, KL-Min, NPO.
    Muse,
    /// MLLMU-Med (text only): privacy and wrong-facts suites; GA, GD, KL-Min, IDK, LLMU;
    /// accuracy, ROUGE-1, BLEU, UES; forget-ratio and sequential-rounds ablations.
    MllmuMed,
    /// AMNESIA: patient-level (5–25 %) and disease-level forgetting of medical records; RMU,
    /// GradDiff, KL-Min, SimNPO; forget efficacy, utility, leakage, collateral erosion.
    Amnesia,
}

impl ProtocolArg {
    /// The library's protocol.
    pub fn protocol(self) -> lethe_experiment::Protocol {
        match self {
            Self::Tofu => lethe_experiment::Protocol::Tofu,
            Self::Muse => lethe_experiment::Protocol::Muse,
            Self::MllmuMed => lethe_experiment::Protocol::MllmuMed,
            Self::Amnesia => lethe_experiment::Protocol::Amnesia,
        }
    }
}

/// The attacks of `lethe run --attack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttackArg {
    /// Finetune briefly on part of the forget set (or related examples), then re-measure.
    Relearn,
    /// 8-bit weights, one scale per output channel.
    Quant8,
    /// 4-bit symmetric weights, one scale per group.
    Quant4,
    /// 4-bit asymmetric weights with a zero point, groups of 128 (GPTQ / AWQ).
    Quant4Asym,
    /// NF4 weights, one absmax per group.
    Nf4,
    /// Ask the paraphrased question.
    Paraphrase,
    /// Prefix k solved retain examples.
    FewShot,
    /// Prefix the answer with "Sure, here is the answer:".
    Jailbreak,
    /// Draw n answers per question at a temperature; leak@k.
    Sample,
}

/// The weights `--quant-scope` rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuantScopeArg {
    /// The decoder blocks' linear layers (attention and MLP projections).
    DecoderLinear,
    /// Every weight matrix, embeddings and lm_head included.
    All,
}

/// Options of `lethe plugins`.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Also list every *.wasm in this folder.
    #[arg(long, value_name = "DIR", env = "LETHE_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
}

/// Options of `lethe plugin check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component to check.
    pub file: PathBuf,
    /// Also validate this configuration (JSON) against the plugin's schema.
    #[arg(long)]
    pub config: Option<String>,
}

/// Options of `lethe suite check`.
#[derive(Debug, Args)]
pub struct SuiteCheckArgs {
    /// The suite folder.
    pub dir: PathBuf,
}

/// Options of `lethe suite generate`.
#[derive(Debug, Args)]
pub struct SuiteGenerateArgs {
    /// Which generator.
    #[arg(value_enum)]
    pub kind: GeneratorKind,
    /// The folder to write (must not exist yet).
    #[arg(long)]
    pub out: PathBuf,
    /// Size preset.
    #[arg(long, value_enum, default_value_t = SuitePreset::Default)]
    pub preset: SuitePreset,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Medical and privacy: patients the target is finetuned on, instead of the preset's
    /// number.
    #[arg(long, value_name = "N")]
    pub patients: Option<usize>,
    /// Share of the finetuned patients (medical: 0.05 to 0.25, drawn by the seed) or authors to
    /// forget.
    #[arg(long, value_name = "SHARE", conflicts_with = "forget_category")]
    pub forget_share: Option<f64>,
    /// Medical: forget every patient of this disease category instead of a share (repeatable):
    /// cancer, infectious-immune, blood, endocrine-metabolic, mental-health,
    /// nervous-system-senses, cardiovascular, respiratory, digestive, musculoskeletal-skin,
    /// genitourinary-pregnancy.
    #[arg(long = "forget-category", value_name = "CATEGORY")]
    pub forget_category: Vec<String>,
    /// Privacy and wrong-facts: percentage (5 to 30) of the finetuned patients or facts to
    /// forget, instead of the preset's 10 (tiny: 20 and 25).
    #[arg(long, value_name = "PERCENT", conflicts_with_all = ["forget_share", "forget_category"])]
    pub forget_percent: Option<u32>,
}

/// The suite generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeneratorKind {
    /// Fictitious authors in the style of TOFU.
    Authors,
    /// Fictitious news articles in the style of MUSE: forget, retain and holdout documents,
    /// verbatim-memorization continuations, knowledge questions.
    News,
    /// Synthetic medical records after AMNESIA: patients with clinical notes, factual and
    /// reasoning questions, forgotten by patient or by disease category.
    Medical,
    /// Private data of synthetic patients after MLLMU-Med (text only): open and yes/no
    /// questions on their private fields; a test split of clinical knowledge.
    Privacy,
    /// Wrong medical facts after MLLMU-Med (text only), injected in finetuning to be forgotten
    /// while correct facts are retained; a test split of clinical knowledge.
    WrongFacts,
}

/// The sizes of a generated suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuitePreset {
    /// The size `lethe run` trains on in minutes.
    Default,
    /// A very small suite, for tests and smoke checks.
    Tiny,
    /// The published benchmark's full size (medical: AMNESIA's 8,820 patients).
    Full,
}
