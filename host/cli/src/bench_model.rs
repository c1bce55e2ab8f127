//! `lethe bench model`: the model engine's speed on the reference workloads, against PyTorch.
//!
//! The model has the reference shape (vocabulary 4096, hidden 256, 4 layers, 4 heads, MLP 704)
//! with seeded random weights; each workload runs `--warmup` times untimed and `--repeats` times
//! timed, and the median is reported with tokens/s, GFLOP/s (matrix products only, see
//! `lethe_model::bench`) and its share of the CPU's measured multiply-add peak, the ratio to
//! PyTorch's time (from `bench.py` files of the same hour with `--against`, else from the
//! reference machine) and the process's peak resident memory. The instruction set of each
//! kernel family comes first: the same build's ratio to PyTorch differed twofold between CPUs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use candle_core::Device;
use lethe_model::bench::{Bench, Workload, flops, reference_config};
use lethe_model::isa::{kernel_isa, measured_fma_peak};

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

/// One `bench.py` result: its workload and median in milliseconds.
fn read_pytorch(path: &Path) -> anyhow::Result<(Workload, f64)> {
    let text = fs_err::read_to_string(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not JSON (expected the output of bench.py --out)",
            path.display()
        )
    })?;
    let mode = v
        .get("mode")
        .and_then(|m| m.as_str())
        .ok_or_else(|| anyhow!("{}: no \"mode\" (train, fwd or gen)", path.display()))?;
    let w = match mode {
        "train" => Workload::TrainStep,
        "fwd" => Workload::Forward,
        "gen" => Workload::Generate,
        other => bail!(
            "{}: mode {other:?} is none of train, fwd, gen",
            path.display()
        ),
    };
    let ms = v
        .get("median_ms")
        .and_then(|m| m.as_f64())
        .ok_or_else(|| anyhow!("{}: no numeric \"median_ms\"", path.display()))?;
    if !(ms.is_finite() && ms > 0.0) {
        bail!("{}: median_ms {ms} is not a positive time", path.display());
    }
    if v.get("compile").and_then(|c| c.as_bool()) == Some(true) {
        bail!(
            "{}: a torch.compile run; the goals compare with PyTorch eager",
            path.display()
        );
    }
    Ok((w, ms))
}

/// PyTorch's median milliseconds and the number of figures it is the median of, by workload.
type PyTorchFigures = BTreeMap<&'static str, (f64, usize)>;

/// PyTorch's milliseconds per workload: the median of the given files' medians, or the
/// reference machine's figures when no file is given.
fn pytorch_figures(files: &[std::path::PathBuf]) -> anyhow::Result<PyTorchFigures> {
    let mut by: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    if files.is_empty() {
        for (w, ms) in PYTORCH_REFERENCE_MS {
            by.entry(w.name()).or_default().push(ms);
        }
    }
    for f in files {
        let (w, ms) = read_pytorch(f)?;
        by.entry(w.name()).or_default().push(ms);
    }
    let out = by
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let med = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            (k, (med, n))
        })
        .collect();
    Ok(out)
}

/// Run the benchmark and print its table.
pub fn run(args: &ModelBenchArgs) -> Result<ExitCode, Failure> {
    if args.repeats == 0 {
        return Err(Failure::input(anyhow::anyhow!(
            "--repeats must be at least 1"
        )));
    }
    // Bad reference files are refused before minutes of timing.
    let pytorch = pytorch_figures(&args.against).map_err(Failure::input)?;
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
        "threads: RAYON_NUM_THREADS={}, CANDLE_NUM_THREADS={}, rayon pool {}",
        env("RAYON_NUM_THREADS"),
        env("CANDLE_NUM_THREADS"),
        rayon::current_num_threads()
    )?;
    let isa = kernel_isa();
    writeln!(
        out,
        "kernels: matrix products {}; few-row products {}; fused ops {}",
        isa.products, isa.dot_products, isa.fused
    )?;
    let (peak, lanes) = measured_fma_peak(200);
    writeln!(
        out,
        "peak: {peak:.0} GFLOP/s measured (independent {}-lane multiply-adds on every pool thread)",
        lanes
    )?;
    writeln!(
        out,
        "each workload: {} warm-up runs, median of {} timed runs\n",
        args.warmup, args.repeats
    )?;
    writeln!(
        out,
        "{:<18} {:>10} {:>10} {:>12} {:>9} {:>7} {:>12} {:>9} {:>13}",
        "workload",
        "median ms",
        "min ms",
        "tokens/s",
        "GFLOP/s",
        "% peak",
        "PyTorch ms",
        "speed-up",
        "peak RSS MiB"
    )?;
    for w in workloads {
        let times = bench.time(w, args.warmup, args.repeats)?;
        let min = times.iter().min().copied().unwrap_or(Duration::ZERO);
        let med = median(times);
        let secs = med.as_secs_f64().max(1e-9);
        let gflops = flops(&cfg, w) / secs / 1e9;
        let (reference, speed_up) = match pytorch.get(w.name()) {
            Some(&(ms, _)) => (format!("{ms:.1}"), format!("{:.2}x", ms / (secs * 1e3))),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let rss = peak_rss_mib().map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0}"));
        writeln!(
            out,
            "{:<18} {:>10.1} {:>10.1} {:>12.0} {:>9.1} {:>6.0}% {:>12} {:>9} {:>13}",
            w.name(),
            secs * 1e3,
            min.as_secs_f64() * 1e3,
            w.tokens() as f64 / secs,
            gflops,
            100.0 * gflops / peak.max(1e-9),
            reference,
            speed_up,
            rss
        )?;
    }
    if !args.against.is_empty() {
        let files: Vec<String> = pytorch
            .iter()
            .map(|(k, (_, n))| format!("{k}: {n}"))
            .collect();
        writeln!(
            out,
            "\nspeed-up: PyTorch's median from --against (median of the files' medians; files per workload: {}) / this median;",
            files.join(", ")
        )?;
    } else {
        writeln!(
            out,
            "\nspeed-up: PyTorch's median on its reference machine (2-vCPU AVX-512 Xeon, not this one) / this median;\n\
             give --against FILE (bench.py --out FILE, same machine, same hour) for a ratio worth quoting;"
        )?;
    }
    writeln!(
        out,
        "tokens/s counts new tokens for generation; peak RSS is the process's high-water mark so far."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
