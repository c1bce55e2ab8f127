//! The reference workloads of the model benchmark: the shapes and inputs PyTorch was timed on
//! (a Llama with vocabulary 4096, hidden 256, 4 layers, 4 heads, MLP 704; batch 8 × 128), so
//! that `lethe bench model` and the profiling example time exactly the same work.
//!
//! Each workload is a method that runs once; the caller times repeats. FLOP counts follow the
//! usual convention (a multiply-add is 2 FLOPs; only matrix products are counted; a backward
//! pass costs twice its forward), counting the attention over the full `T × S` score matrix as
//! every eager implementation computes it.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::generate::{Decoding, GenerateOptions, generate_with};
use crate::llama::{Llama, causal_mask, sequential_positions};
use crate::train::{OptimSettings, Trainer};
use crate::{Config, ModelError, Params};

/// Sequences per batch.
pub const BATCH: usize = 8;
/// Tokens per sequence of the train and forward workloads.
pub const SEQ_LEN: usize = 128;
/// Prompt tokens of the generation workload.
pub const PROMPT_LEN: usize = 32;
/// New tokens of the generation workload.
pub const NEW_TOKENS: usize = 32;

/// One of the three timed workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Forward over `BATCH × SEQ_LEN`, Hugging Face loss (labels = inputs), backward, AdamW.
    TrainStep,
    /// Forward over `BATCH × SEQ_LEN` without gradient, log-probs of each next token.
    Forward,
    /// Greedy generation of `NEW_TOKENS` after `BATCH` prompts of `PROMPT_LEN`, with KV cache.
    Generate,
}

impl Workload {
    /// All workloads, in the order they are run.
    pub const ALL: [Self; 3] = [Self::TrainStep, Self::Forward, Self::Generate];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::TrainStep => "train step",
            Self::Forward => "forward log-probs",
            Self::Generate => "greedy generation",
        }
    }

    /// Tokens processed (train, forward) or generated (generation) per run.
    pub fn tokens(self) -> usize {
        match self {
            Self::TrainStep | Self::Forward => BATCH * SEQ_LEN,
            Self::Generate => BATCH * NEW_TOKENS,
        }
    }
}

/// The reference shape: `tiny-llama` of the PyTorch timings.
pub fn reference_config() -> Config {
    Config {
        hidden_size: 256,
        intermediate_size: 704,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        max_position_embeddings: 256,
        ..Config::small(4096)
    }
}

/// FLOPs of one forward pass over `tokens` new positions per row attending to `keys` keys each,
/// with the output projection applied to `head_rows` positions in all.
fn forward_flops(cfg: &Config, rows: usize, tokens: usize, keys: usize, head_rows: usize) -> f64 {
    let d = cfg.hidden_size as f64;
    let kvd = (cfg.num_key_value_heads * cfg.head_dim()) as f64;
    let m = cfg.intermediate_size as f64;
    let per_token_layer = 2.0 * (2.0 * d * d + 2.0 * d * kvd) + 6.0 * d * m + 4.0 * keys as f64 * d;
    let n = (rows * tokens) as f64;
    n * per_token_layer * cfg.num_hidden_layers as f64
        + 2.0 * d * cfg.vocab_size as f64 * head_rows as f64
}

/// FLOPs of one run of a workload on a model of shape `cfg`.
pub fn flops(cfg: &Config, workload: Workload) -> f64 {
    match workload {
        Workload::TrainStep => 3.0 * forward_flops(cfg, BATCH, SEQ_LEN, SEQ_LEN, BATCH * SEQ_LEN),
        Workload::Forward => forward_flops(cfg, BATCH, SEQ_LEN, SEQ_LEN, BATCH * SEQ_LEN),
        Workload::Generate => {
            let prefill = forward_flops(cfg, BATCH, PROMPT_LEN, PROMPT_LEN, BATCH);
            let steps: f64 = (1..NEW_TOKENS)
                .map(|i| forward_flops(cfg, BATCH, 1, PROMPT_LEN + i, BATCH))
                .sum();
            prefill + steps
        }
    }
}

/// A model of some shape with seeded random weights and inputs, ready to run the workloads.
pub struct Bench {
    cfg: Config,
    llama: Llama,
    trainer: Trainer,
    input: Tensor,
    labels: Tensor,
    ids: Vec<Vec<u32>>,
    device: Device,
}

impl Bench {
    /// Seeded weights (as [`Params::init`]) and seeded random tokens of `BATCH × (SEQ_LEN+1)`.
    pub fn new(cfg: &Config, seed: u64, device: &Device) -> Result<Self, ModelError> {
        let params = Params::init(cfg, seed, device)?;
        let llama = Llama::new(cfg, &params.tensors())?;
        // The reference step is plain AdamW (lr 1e-4, weight decay 0.01), without clipping.
        let trainer = Trainer::new(
            params.vars().map(|(_, v)| v.clone()).collect(),
            &OptimSettings {
                learning_rate: 1e-4,
                weight_decay: 0.01,
                max_grad_norm: None,
            },
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let vocab = cfg.vocab_size as u32;
        let ids: Vec<Vec<u32>> = (0..BATCH)
            .map(|_| (0..=SEQ_LEN).map(|_| rng.random_range(0..vocab)).collect())
            .collect();
        let take = |from: usize| -> Vec<u32> {
            ids.iter()
                .flat_map(|r| r[from..from + SEQ_LEN].iter().copied())
                .collect()
        };
        let input = Tensor::from_vec(take(0), (BATCH, SEQ_LEN), device)?;
        let labels = Tensor::from_vec(take(1), (BATCH, SEQ_LEN), device)?;
        Ok(Self {
            cfg: cfg.clone(),
            llama,
            trainer,
            input,
            labels,
            ids,
            device: device.clone(),
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Run a workload once; returns a number derived from its result (loss, mean log-prob,
    /// or a checksum of the generated tokens) so the work cannot be skipped.
    pub fn run(&mut self, workload: Workload) -> Result<f64, ModelError> {
        match workload {
            Workload::TrainStep => self.train_step(),
            Workload::Forward => self.forward_logprobs(),
            Workload::Generate => self.generate(),
        }
    }

    /// Run a workload `warmup` times untimed, then `repeats` times timed.
    pub fn time(
        &mut self,
        workload: Workload,
        warmup: usize,
        repeats: usize,
    ) -> Result<Vec<Duration>, ModelError> {
        for _ in 0..warmup {
            self.run(workload)?;
        }
        let mut out = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let start = Instant::now();
            self.run(workload)?;
            out.push(start.elapsed());
        }
        Ok(out)
    }

    /// A digest of the exact bits the engine computes: two train steps (their losses and
    /// every weight after them), the forward log-probs of the trained model and its greedy
    /// continuations. Two CPUs that give the same digest computed the same numbers, so a
    /// cached model or a result from one is valid on the other.
    pub fn fingerprint(&mut self) -> Result<String, ModelError> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for _ in 0..2 {
            h.update(self.train_step()?.to_bits().to_le_bytes());
        }
        for var in self.trainer.vars() {
            for x in var.as_tensor().flatten_all()?.to_vec1::<f32>()? {
                h.update(x.to_bits().to_le_bytes());
            }
        }
        let lp = self.label_logprobs(&self.llama.detached())?;
        for x in lp.flatten_all()?.to_vec1::<f32>()? {
            h.update(x.to_bits().to_le_bytes());
        }
        h.update(self.generate()?.to_bits().to_le_bytes());
        Ok(format!("{:x}", h.finalize()))
    }

    /// Log-prob of every next token, as the training loop computes them (vocabulary
    /// projection and log-softmax fused).
    fn label_logprobs(&self, llama: &Llama) -> Result<Tensor, ModelError> {
        let positions = sequential_positions(BATCH, SEQ_LEN, &self.device)?;
        let mask = causal_mask(SEQ_LEN, &self.device)?;
        llama.label_logprobs(&self.input, &positions, &mask, &self.labels)
    }

    /// Mean NLL of every next token, backward, one AdamW step.
    fn train_step(&mut self) -> Result<f64, ModelError> {
        let loss = self.label_logprobs(&self.llama)?.mean_all()?.neg()?;
        self.trainer.step(&loss)
    }

    /// Per-token log-probs without gradient; returns their mean.
    fn forward_logprobs(&self) -> Result<f64, ModelError> {
        // As PyTorch's `no_grad`: weights detached, no graph recorded.
        let lp = self.label_logprobs(&self.llama.detached())?;
        Ok(f64::from(lp.mean_all()?.to_scalar::<f32>()?))
    }

    /// Greedy continuation of the first `PROMPT_LEN` tokens of each row.
    fn generate(&self) -> Result<f64, ModelError> {
        let prompts: Vec<Vec<u32>> = self.ids.iter().map(|r| r[..PROMPT_LEN].to_vec()).collect();
        let out = generate_with(
            &self.llama,
            &self.device,
            &prompts,
            &GenerateOptions {
                eos: None,
                pad: self.cfg.pad_token_id,
                max_new: NEW_TOKENS,
                decoding: Decoding::Greedy,
                stop: Vec::new(),
                decode: None,
            },
        )?;
        Ok(out
            .iter()
            .flat_map(|g| g.tokens.iter())
            .map(|&t| f64::from(t))
            .sum())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The digest of [`Bench::fingerprint`] on the reference shape, seed 0, on x86-64 with
    /// AVX2 and FMA. Recorded on an AMD Zen 4 with `gemm`'s AVX-512 kernels and, the same
    /// digest, with its AVX2 ones; a change that alters a computed bit on purpose bumps
    /// [`crate::NUMERIC_VERSION`] and records the new digest here.
    const X86_FINGERPRINT: &str =
        "fed36e41681cb0de441b826c199ee460f7c85b29ffd1db47dd3acb19080ac8dd";

    #[test]
    fn the_engine_computes_the_same_bits_on_every_x86_cpu_with_avx2_and_fma() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            let mut bench = Bench::new(&reference_config(), 0, &Device::Cpu).unwrap();
            let got = bench.fingerprint().unwrap();
            assert_eq!(
                got,
                X86_FINGERPRINT,
                "this CPU ({:?}) computed other bits than the recorded ones",
                crate::isa::kernel_isa()
            );
        }
    }

    #[test]
    fn reference_flops_match_the_published_estimate() {
        // The PyTorch notes give ≈ 9.3 GFLOP for one forward of 8 × 128.
        let f = flops(&reference_config(), Workload::Forward);
        assert!((f / 1e9 - 9.26).abs() < 0.05, "{f}");
    }
}
