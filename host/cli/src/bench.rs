//! `lethe bench boundary`: what the plugin boundary costs.
//!
//! 1. One guest→host call: the `bench-calls` plugin makes N calls of `tensor.shape()`; the time
//!    of N calls minus the time of 0 calls, divided by N.
//! 2. The share of a GradDiff training step spent outside candle: the built-in `graddiff`
//!    plugin against the same loss written natively in Rust, on the same model and batches,
//!    and, independently, (host calls per step × cost of a call) / step time.
//!
//! Every figure is the median of several repeats measured in this one process; compare ratios,
//! not absolute times, across machines.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};
use candle_core::{D, Device};
use lethe_model::train::{OptimSettings, Trainer};
use lethe_model::{Config, LanguageModel, Params, Sequence, Tokenizer, masked_logprobs};
use lethe_runtime::{FeedExample, Limits, PluginHost, SplitFeed, TrainingState};
use lethe_suites::generate::{AuthorsConfig, authors};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::Failure;
use crate::args::BenchArgs;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

struct Fixture {
    model: LanguageModel,
    forget: Vec<FeedExample>,
    retain: Vec<FeedExample>,
}

fn fixture(seed: u64) -> Result<Fixture, Failure> {
    let suite = authors(&AuthorsConfig {
        seed,
        ..AuthorsConfig::default()
    })?;
    let texts: Vec<String> = suite
        .splits
        .iter()
        .flat_map(|s| {
            s.questions()
                .iter()
                .map(|q| format!("{} {}", q.question, q.answer))
        })
        .collect();
    let tok = Tokenizer::train(texts.iter().map(String::as_str), 1024)?;
    let cfg = Config::small(tok.vocab_size());
    let params = Params::init(&cfg, seed, &Device::Cpu)?;
    let model = LanguageModel::new(cfg, tok, params)?;
    let feed = |name: &str| -> Result<Vec<FeedExample>, Failure> {
        let split = suite
            .split(name)
            .ok_or_else(|| anyhow!("no {name} split"))?;
        let mut out = Vec::new();
        for q in split.questions() {
            out.push(FeedExample {
                question: Some(q.question.clone()),
                sequence: Sequence::qa(model.tokenizer(), &q.question, &q.answer)?,
            });
        }
        Ok(out)
    };
    let forget = feed("forget")?;
    let retain = feed("retain")?;
    Ok(Fixture {
        model,
        forget,
        retain,
    })
}

fn state(fx: &Fixture, steps: u32, batch: u32) -> Result<TrainingState, Failure> {
    let mut feeds = BTreeMap::new();
    feeds.insert("forget".to_owned(), SplitFeed::new(fx.forget.clone()));
    feeds.insert("retain".to_owned(), SplitFeed::new(fx.retain.clone()));
    Ok(TrainingState::new(
        fx.model.deep_copy()?,
        None,
        feeds,
        BTreeMap::new(),
        Vec::new(),
        steps,
        batch,
        OptimSettings {
            learning_rate: 1e-5,
            ..OptimSettings::default()
        },
        0,
    )?)
}

/// GradDiff written natively: the same primitives the plugin composes, without the boundary.
fn native_graddiff(fx: &Fixture, steps: u32, batch: usize) -> Result<f64, Failure> {
    let model = fx.model.deep_copy()?;
    let mut trainer = Trainer::for_model(
        &model,
        &OptimSettings {
            learning_rate: 1e-5,
            ..OptimSettings::default()
        },
    )?;
    let mean_nll = |examples: &[FeedExample]| -> Result<candle_core::Tensor, Failure> {
        let seqs: Vec<&Sequence> = examples.iter().map(|e| &e.sequence).collect();
        let b = model.collate(&seqs)?;
        let out = model.forward(&b, true)?;
        let lp = masked_logprobs(&out.logits, &b)?;
        let avg = lp.sum(D::Minus1)?.neg()?.div(&b.mask.sum(D::Minus1)?)?;
        Ok(avg.mean_all()?)
    };
    // The same batches the plugin gets: the host's feeds, drawn in the same order from a
    // generator seeded like the plugin's training state.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut forget_feed = SplitFeed::new(fx.forget.clone());
    let mut retain_feed = SplitFeed::new(fx.retain.clone());
    let start = Instant::now();
    for _ in 0..steps {
        let forget = mean_nll(&forget_feed.draw(batch, &mut rng))?;
        let retain = mean_nll(&retain_feed.draw(batch, &mut rng))?;
        let loss = (retain - forget)?;
        trainer.step(&loss)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// `lethe bench boundary`.
pub fn boundary(args: &BenchArgs) -> Result<ExitCode, Failure> {
    let host = PluginHost::new(Limits::default())?;
    // A test plugin, not shipped in the binary: the file this build compiled, or the user's.
    let file = args
        .calls_plugin
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(lethe_builtin_plugins::artifacts::BENCH_CALLS));
    let bytes = fs_err::read(&file).map_err(|e| {
        Failure::input(anyhow::anyhow!(
            "--calls-plugin {}: {e}; build tests/plugins/bench-calls for wasm32-wasip2 and \
             name its .wasm",
            file.display()
        ))
    })?;
    let calls_plugin = host.load("bench-calls", &bytes)?;
    let gd_bytes = lethe_builtin_plugins::BUILTIN
        .iter()
        .find(|(n, _)| *n == "graddiff")
        .map(|(_, b)| *b)
        .context("graddiff is not embedded")?;
    let graddiff = host.load("graddiff", gd_bytes)?;
    let fx = fixture(args.seed)?;
    let n = args.calls;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "lethe bench boundary: {} repeats, median of each",
        args.repeats
    )?;

    // 1. One call.
    let mut empty = Vec::new();
    let mut full = Vec::new();
    for _ in 0..args.repeats {
        for (calls, sink) in [(0u32, &mut empty), (n, &mut full)] {
            let st = state(&fx, 1, 8)?;
            let t = Instant::now();
            host.unlearn(&calls_plugin, &json!({ "calls": calls }), st, 0)?;
            sink.push(t.elapsed().as_secs_f64());
        }
    }
    let per_call_ns = (median(full.clone()) - median(empty.clone())) / f64::from(n) * 1e9;
    writeln!(
        out,
        "host call (tensor.shape), guest→host→guest: {per_call_ns:.0} ns per call ({n} calls)"
    )?;
    writeln!(
        out,
        "instantiate + empty unlearn call:          {:.2} ms",
        median(empty) * 1e3
    )?;

    // 2. GradDiff steps through the plugin and natively.
    let steps = args.steps;
    let batch = 8u32;
    let mut plugin_times = Vec::new();
    let mut native_times = Vec::new();
    let mut calls_per_step = 0.0;
    for r in 0..args.repeats {
        // Alternate the order so that neither side always runs on a warm allocator.
        if r % 2 == 1 {
            native_times.push(native_graddiff(&fx, steps, batch as usize)?);
        }
        let st = state(&fx, steps, batch)?;
        let t = Instant::now();
        let done = host.unlearn(&graddiff, &json!({}), st, 0)?;
        plugin_times.push(t.elapsed().as_secs_f64());
        calls_per_step = done.host_calls as f64 / f64::from(steps);
        if r % 2 == 0 {
            native_times.push(native_graddiff(&fx, steps, batch as usize)?);
        }
    }
    let plugin_step = median(plugin_times) / f64::from(steps);
    let native_step = median(native_times) / f64::from(steps);
    let ab_share = (plugin_step - native_step) / plugin_step * 100.0;
    let est_share = calls_per_step * per_call_ns * 1e-9 / plugin_step * 100.0;
    writeln!(
        out,
        "graddiff step, batch {batch}+{batch}, model {} params:",
        fx.model.params().count()
    )?;
    writeln!(
        out,
        "  through the plugin: {:.1} ms/step",
        plugin_step * 1e3
    )?;
    writeln!(
        out,
        "  native Rust:        {:.1} ms/step",
        native_step * 1e3
    )?;
    writeln!(out, "  host calls per step: {calls_per_step:.0}")?;
    writeln!(
        out,
        "  boundary share, estimated (calls × cost / step): {est_share:.4} %"
    )?;
    writeln!(
        out,
        "  boundary share, measured A/B (noisy, may be < 0): {ab_share:.2} %"
    )?;
    Ok(ExitCode::SUCCESS)
}
