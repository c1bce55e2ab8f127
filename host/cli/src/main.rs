//! `lethe`: measure how well unlearning methods make a language model forget.
//!
//! Logs go to stderr, data (the leaderboard, listings) to stdout. Exit status: 0 success,
//! 1 the run finished but a plugin failed (its failure is in `failures.json`), 2 bad usage or
//! bad input.

mod args;
mod bench;
mod bench_model;
mod catalog;
mod leaderboard;
mod meta;
mod plans;
mod progress;
mod run;
mod scaffold;
mod suites;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed tensor buffers for reuse; glibc's malloc returned them to the kernel
/// and paid a page fault per 4 KiB to get them back (a train step 10-15 % slower).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use args::{
    BenchCommand, Cli, Command, ImportCommand, LeaderboardCommand, ModelCommand, PluginCommand,
    SuiteCommand,
};

/// An error with the exit status it deserves.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// Bad usage or bad input: exit 2.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            code: 1,
            error: e.into(),
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("LETHE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// Candle runs its elementwise ops (above all the gradient sums of the backward pass) on its
/// own spin-waiting thread pool, which fights rayon's pool (matrix products, the model's fused
/// kernels) for the cores: on a two-core machine a train step takes twice as long
/// (docs/benchmarks.md). Unless the user chose otherwise, candle's pool gets one thread.
fn default_candle_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called first thing in `main`, before any thread exists, so nothing reads or
        // writes the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    }
}

fn main() -> ExitCode {
    default_candle_threads();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => plans::run(*args, cli.verbose),
        Command::Plan(cmd) if cmd.schema => plans::plan_schema(),
        Command::Plan(cmd) => plans::plan(&cmd.args),
        Command::MetaEval(cmd) => meta::run(cmd, cli.verbose),
        Command::Exec(args) => plans::exec(&args, cli.verbose),
        Command::Report(args) => plans::report(&args),
        Command::Slurm(args) => plans::slurm(&args),
        Command::K8s(args) => plans::k8s(&args),
        Command::Plugins(args) => catalog::list(&args),
        Command::Plugin {
            command: PluginCommand::Check(args),
        } => catalog::check(&args),
        Command::Plugin {
            command: PluginCommand::New(args),
        } => scaffold::new_plugin(&args),
        Command::Plugin {
            command: PluginCommand::Test(args),
        } => catalog::test(&args, cli.verbose),
        Command::Leaderboard {
            command: LeaderboardCommand::Add(args),
        } => leaderboard::add(&args, cli.verbose),
        Command::Leaderboard {
            command: LeaderboardCommand::Build(args),
        } => leaderboard::build(&args),
        Command::Leaderboard {
            command: LeaderboardCommand::Schema,
        } => leaderboard::schema(),
        Command::Suite {
            command: SuiteCommand::Check(args),
        } => run::suite_check(&args),
        Command::Suite {
            command: SuiteCommand::Generate(args),
        } => run::suite_generate(&args),
        Command::Suite {
            command:
                SuiteCommand::Import {
                    command: ImportCommand::Tofu(args),
                },
        } => run::suite_import(&args),
        Command::Suite {
            command:
                SuiteCommand::Import {
                    command: ImportCommand::Muse(args),
                },
        } => run::suite_import_muse(&args),
        Command::Suite {
            command:
                SuiteCommand::Import {
                    command: ImportCommand::Qa(args),
                },
        } => suites::import_qa(&args),
        Command::Suite {
            command: SuiteCommand::Schema,
        } => run::suite_schema(),
        Command::Bench {
            command: BenchCommand::Boundary(args),
        } => bench::boundary(&args),
        Command::Model {
            command: ModelCommand::Init(args),
        } => run::model_init(&args),
        Command::Bench {
            command: BenchCommand::Model(args),
        } => bench_model::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(Failure { code, error }) => {
            // A closed pipe (`lethe plugins | head`) is not an error.
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {error}");
            for cause in error.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::from(code)
        }
    }
}
