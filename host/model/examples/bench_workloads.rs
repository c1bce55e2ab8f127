//! Time the reference workloads of `lethe bench model` without the CLI, for profiling:
//! `cargo run -p lethe-model --example bench_workloads -- [train|forward|generate] [repeats]`.

use std::time::Duration;

use candle_core::Device;
use lethe_model::ModelError;
use lethe_model::bench::{Bench, Workload, flops, reference_config};

fn main() -> Result<(), ModelError> {
    let args: Vec<String> = std::env::args().collect();
    let which: Vec<Workload> = match args.get(1).map(String::as_str) {
        Some("train") => vec![Workload::TrainStep],
        Some("forward") => vec![Workload::Forward],
        Some("generate") => vec![Workload::Generate],
        _ => Workload::ALL.to_vec(),
    };
    let repeats: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(10);
    let cfg = reference_config();
    let mut bench = Bench::new(&cfg, 0, &Device::Cpu)?;
    for w in which {
        let cpu0 = cpu_seconds();
        let mut times = bench.time(w, 2, repeats)?;
        let cpu = (cpu_seconds() - cpu0) / (repeats + 2) as f64;
        times.sort();
        let median = times
            .get(times.len() / 2)
            .copied()
            .unwrap_or(Duration::ZERO);
        let ms = median.as_secs_f64() * 1e3;
        let gflops = flops(&cfg, w) / median.as_secs_f64() / 1e9;
        println!(
            "{:<18} median {ms:8.1} ms  min {:8.1} ms  cpu {:8.1} ms/run  {gflops:6.1} GFLOP/s  result {:.4}",
            w.name(),
            times.first().map_or(0.0, |t| t.as_secs_f64() * 1e3),
            cpu * 1e3,
            bench.run(w)?
        );
    }
    Ok(())
}

/// User + system CPU time of this process so far (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}
