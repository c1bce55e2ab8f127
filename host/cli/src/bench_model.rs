//! `lethe bench model`: the model engine's speed on the reference workloads, against PyTorch.
//!
//! The model has the reference shape (vocabulary 4096, hidden 256, 4 layers, 4 heads, MLP 704)
//! with seeded random weights; each workload runs `--warmup` times untimed and `--repeats` times
//! timed, and the median is reported with tokens/s, GFLOP/s (matrix products only, see
//! `lethe_model::bench`), the ratio to PyTorch's time and the process's peak resident memory.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use candle_core::Device;
use lethe_model::bench::{Bench, Workload, flops, reference_config};

use crate::Failure;
use crate::args::{ModelBenchArgs, ModelWorkload};

/// PyTorch 2.15 eager + transformers 5.23, f32, 2 threads, on a 2-vCPU Intel Xeon with AVX-512
/// (the reference machine of the project's speed goals): medians of 40 timed iterations
/// (4 processes × 10 after 3 warm-ups), milliseconds. See docs/benchmarks.md for the same
/// script run on other machines.
const PYTORCH_REFERENCE_MS: [(Workload, f64); 3] = [
    (Workload::TrainStep, 184.0),
    (Workload::Forward, 65.0),
    (Workload::Generate, 123.0),
];

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    match xs.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2,
    }
}

/// The process's peak resident set size in MiB (`VmHWM`), where the OS tells it.
fn peak_rss_mib() -> Option<f64> {
    let status = fs_err::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn workload(w: ModelWorkload) -> Workload {
    match w {
        ModelWorkload::Train => Workload::TrainStep,
        ModelWorkload::Forward => Workload::Forward,
        ModelWorkload::Generate => Workload::Generate,
    }
}

/// Run the benchmark and print its table.
pub fn run(args: &ModelBenchArgs) -> Result<ExitCode, Failure> {
    if args.repeats == 0 {
        return Err(Failure::input(anyhow::anyhow!(
            "--repeats must be at least 1"
        )));
    }
    let workloads: Vec<Workload> = if args.workload.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workload.iter().map(|&w| workload(w)).collect()
    };
    let cfg = reference_config();
    let mut bench = Bench::new(&cfg, args.seed, &Device::Cpu)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "model: vocab {}, hidden {}, {} layers, {} heads, MLP {}; f32 on CPU, {} cores available",
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.num_hidden_layers,
        cfg.num_attention_heads,
        cfg.intermediate_size,
        cores()
    )?;
    // Thread settings change the figures a lot on a busy two-core machine (docs/benchmarks.md).
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "unset".to_owned());
    writeln!(
        out,
        "threads: RAYON_NUM_THREADS={}, CANDLE_NUM_THREADS={}",
        env("RAYON_NUM_THREADS"),
        env("CANDLE_NUM_THREADS")
    )?;
    writeln!(
        out,
        "each workload: {} warm-up runs, median of {} timed runs\n",
        args.warmup, args.repeats
    )?;
    writeln!(
        out,
        "{:<18} {:>10} {:>10} {:>12} {:>9} {:>12} {:>9} {:>13}",
        "workload",
        "median ms",
        "min ms",
        "tokens/s",
        "GFLOP/s",
        "PyTorch ms",
        "speed-up",
        "peak RSS MiB"
    )?;
    for w in workloads {
        let times = bench.time(w, args.warmup, args.repeats)?;
        let min = times.iter().min().copied().unwrap_or(Duration::ZERO);
        let med = median(times);
        let secs = med.as_secs_f64().max(1e-9);
        let reference = PYTORCH_REFERENCE_MS
            .iter()
            .find(|(r, _)| *r == w)
            .map_or(f64::NAN, |(_, ms)| *ms);
        let rss = peak_rss_mib().map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0}"));
        writeln!(
            out,
            "{:<18} {:>10.1} {:>10.1} {:>12.0} {:>9.1} {:>12.0} {:>8.2}x {:>13}",
            w.name(),
            secs * 1e3,
            min.as_secs_f64() * 1e3,
            w.tokens() as f64 / secs,
            flops(&cfg, w) / secs / 1e9,
            reference,
            reference / (secs * 1e3),
            rss
        )?;
    }
    writeln!(
        out,
        "\nspeed-up: PyTorch's median on its reference machine (2-vCPU AVX-512 Xeon) / this median;\n\
         tokens/s counts new tokens for generation; peak RSS is the process's high-water mark so far."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
