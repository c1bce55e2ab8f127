//! A Llama-architecture transformer in candle, trainable on CPU: the model Lethe teaches and
//! then makes forget.
//!
//! - [`Config`]: the shape, read from / written to a Hugging Face `config.json`.
//! - [`Tokenizer`]: a byte-level BPE trained on a suite's text, and the prompt format.
//! - [`Params`]: named parameters with seeded initialisation and safetensors I/O.
//! - [`LanguageModel`]: decoder + parameters + tokenizer, with teacher-forced log-probs,
//!   losses, greedy generation and checkpoints; [`FrozenModel`] is its gradient-free copy.
//! - [`train`]: AdamW with clipping and a seeded epoch loop.
//! - [`bench`]: the reference workloads of `lethe bench model`.
//! - [`quant`]: 8-bit and 4-bit weight quantization (quantize → dequantize).
//! - [`lora`]: low-rank adapters on frozen weights, merged for evaluation.

pub mod bench;
mod config;
pub mod data;
mod gemm;
pub mod generate;
pub mod isa;
mod kernels;
pub mod llama;
mod lm;
pub mod lora;
pub mod ops;
mod params;
pub mod quant;
mod tokenizer;
pub mod train;

/// The version of Lethe's numerics: bumped whenever a change alters any computed bit (a
/// kernel's summation order, an initialisation, a schedule). It is part of every model cache
/// key and every job id, so a result or a cached model is never reused across versions.
///
/// 2: products cut the inner dimension into fixed blocks (the same bits on every x86-64 CPU
/// with AVX2 and FMA); RMSNorm's weight gradient sums fixed row blocks in order.
/// 3: an over-long question is cut from the front of its prompt, never through its answer.
/// 4: products with a small output or a single column of operands contiguous along the inner
/// dimension take the fixed-width dot-product path (gemm summed them across its lanes, whose
/// number is 16 with AVX-512): the same bits with AVX2 and with AVX-512.
pub const NUMERIC_VERSION: u32 = 4;

pub use config::Config;
pub use data::{Sequence, TokenBatch};
pub use lm::{AnswerStats, FrozenModel, LanguageModel, lm_loss_from, masked_logprobs};
pub use lora::LoraSettings;
pub use params::{Params, shapes};
pub use tokenizer::{BOS_ID, EOS_ID, PAD_ID, Tokenizer, prompt};

/// Why a model operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The model's shape is inconsistent or unreadable.
    #[error("model config: {0}")]
    Config(String),
    /// Weights are missing or unreadable.
    #[error("weights: {0}")]
    Weights(String),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// An input does not fit the model.
    #[error("input: {0}")]
    Input(String),
    /// A question's answer has no text, so a sequence of it has nothing to learn or score.
    #[error("the answer to the question {question:?} is empty")]
    EmptyAnswer {
        /// The question.
        question: String,
    },
    /// A loss or gradient became NaN or infinite.
    #[error("training diverged: {0}")]
    NonFinite(String),
}

#[cfg(test)]
mod tests;
