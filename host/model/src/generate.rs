//! Batched generation with left padding and a KV cache: greedy, or seeded sampling with
//! temperature, top-k and top-p.

use candle_core::{D, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ModelError;
use crate::llama::{KvCache, Llama, Logits, padded_mask};

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoding {
    /// The most likely token.
    Greedy,
    /// A draw from the (tempered, truncated) distribution.
    Sample(Sampling),
}

/// Sampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Logits are divided by this (> 0).
    pub temperature: f64,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1.0: all).
    pub top_p: f64,
    /// Seed; row `i` of a batch draws from its own stream seeded with `seed + i`.
    pub seed: u64,
}

/// Draw a token from logits under `s`.
fn draw(logits: &[f32], s: &Sampling, rng: &mut ChaCha8Rng) -> u32 {
    let t = s.temperature.max(1e-6);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, (f64::from(l - max) / t).exp()))
        .collect();
    // Most likely first; ties by index so the order is total and deterministic.
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if s.top_k > 0 {
        probs.truncate(s.top_k);
    }
    if s.top_p < 1.0 {
        let total: f64 = probs.iter().map(|p| p.1).sum();
        let mut acc = 0.0;
        let mut keep = 0;
        for p in &probs {
            acc += p.1 / total;
            keep += 1;
            if acc >= s.top_p {
                break;
            }
        }
        probs.truncate(keep.max(1));
    }
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(i, p) in &probs {
        if u < p {
            return i as u32;
        }
        u -= p;
    }
    probs.last().map_or(0, |p| p.0 as u32)
}

/// A function from generated token ids to text, used to look for stop strings.
pub type Decode<'a> = &'a dyn Fn(&[u32]) -> Result<String, ModelError>;

/// What to generate and when to stop.
#[derive(Clone)]
pub struct GenerateOptions<'a> {
    /// End-of-sequence token: a row stops when it is drawn (it is not returned).
    pub eos: Option<u32>,
    /// Padding token of left-padded prompts (never attended to).
    pub pad: u32,
    /// At most this many new tokens per row.
    pub max_new: usize,
    /// How to pick the next token.
    pub decoding: Decoding,
    /// A row stops as soon as its decoded continuation contains one of these strings.
    pub stop: Vec<String>,
    /// Decodes a row's continuation; required when `stop` is not empty.
    pub decode: Option<Decode<'a>>,
}

impl std::fmt::Debug for GenerateOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("max_new", &self.max_new)
            .field("decoding", &self.decoding)
            .field("stop", &self.stop)
            .field("decode", &self.decode.is_some())
            .finish()
    }
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The end-of-sequence token was drawn.
    Eos,
    /// The continuation contains `stop[i]`.
    StopString(usize),
    /// `max_new` tokens were generated.
    Length,
}

/// One row's continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// New tokens, without the end-of-sequence token; with a stop string, up to and including
    /// the token that completed it.
    pub tokens: Vec<u32>,
    /// Why the row stopped.
    pub reason: StopReason,
}

/// Greedy continuations of `prompts`, each cut at (and without) `eos`, at most `max_new` long.
///
/// Prompts are left-padded to a common length; padding keys are masked and rotary positions
/// start at each prompt's first real token, so a prompt's answer does not depend on the
/// other prompts of the batch.
pub fn greedy(
    llama: &Llama,
    device: &Device,
    prompts: &[Vec<u32>],
    eos: u32,
    pad: u32,
    max_new: usize,
) -> Result<Vec<Vec<u32>>, ModelError> {
    generate(llama, device, prompts, eos, pad, max_new, Decoding::Greedy)
}

/// Continuations of `prompts` under a decoding rule; see [`greedy`] for padding and positions.
pub fn generate(
    llama: &Llama,
    device: &Device,
    prompts: &[Vec<u32>],
    eos: u32,
    pad: u32,
    max_new: usize,
    decoding: Decoding,
) -> Result<Vec<Vec<u32>>, ModelError> {
    let opts = GenerateOptions {
        eos: Some(eos),
        pad,
        max_new,
        decoding,
        stop: Vec::new(),
        decode: None,
    };
    Ok(generate_with(llama, device, prompts, &opts)?
        .into_iter()
        .map(|g| g.tokens)
        .collect())
}

/// The first stop string found in `text`, by position (then by list order).
fn find_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .filter_map(|(i, s)| text.find(s.as_str()).map(|at| (at, i)))
        .min()
        .map(|(_, i)| i)
}

/// Continuations of `prompts` under `opts`; see [`greedy`] for padding and positions.
pub fn generate_with(
    llama: &Llama,
    device: &Device,
    prompts: &[Vec<u32>],
    opts: &GenerateOptions<'_>,
) -> Result<Vec<Generated>, ModelError> {
    // Generation never needs a gradient: no graph, and the fused inference attention.
    let llama = &llama.detached();
    let b = prompts.len();
    let max_new = opts.max_new;
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Input("empty prompt".into()));
    }
    let decode = match (&opts.decode, opts.stop.is_empty()) {
        (_, true) => None,
        (Some(d), false) => Some(*d),
        (None, false) => {
            return Err(ModelError::Input(
                "stop strings need a decode function".into(),
            ));
        }
    };
    let mut out: Vec<Generated> = vec![
        Generated {
            tokens: Vec::new(),
            reason: StopReason::Length,
        };
        b
    ];
    if b == 0 || max_new == 0 {
        return Ok(out);
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let limit = llama.config().max_position_embeddings;
    if longest + max_new > limit {
        return Err(ModelError::Input(format!(
            "prompt of {longest} tokens + {max_new} new tokens exceeds the model's {limit} positions"
        )));
    }
    let mut ids = Vec::with_capacity(b * longest);
    let mut positions = Vec::with_capacity(b * longest);
    let mut valid: Vec<Vec<bool>> = Vec::with_capacity(b);
    let mut next_pos = Vec::with_capacity(b);
    for p in prompts {
        let padding = longest - p.len();
        ids.extend(std::iter::repeat_n(opts.pad, padding));
        ids.extend_from_slice(p);
        positions.extend(std::iter::repeat_n(0u32, padding));
        positions.extend(0..p.len() as u32);
        let mut v = vec![false; padding];
        v.extend(std::iter::repeat_n(true, p.len()));
        valid.push(v);
        next_pos.push(p.len() as u32);
    }
    let mut cache = KvCache::with_capacity(longest + max_new);
    let mut input = Tensor::from_vec(ids, (b, longest), device)?;
    let mut pos = Tensor::from_vec(positions, (b, longest), device)?;
    let mut mask = padded_mask(&valid, longest, device)?;
    let mut done = vec![false; b];
    let mut rngs: Vec<ChaCha8Rng> = match &opts.decoding {
        Decoding::Sample(s) => (0..b as u64)
            .map(|i| ChaCha8Rng::seed_from_u64(s.seed.wrapping_add(i)))
            .collect(),
        Decoding::Greedy => Vec::new(),
    };
    for _ in 0..max_new {
        let step = llama.forward(&input, &pos, &mask, Some(&mut cache), Logits::Last, false)?;
        let next: Vec<u32> = match &opts.decoding {
            Decoding::Greedy => step
                .logits
                .squeeze(1)?
                .argmax(D::Minus1)?
                .to_vec1::<u32>()?,
            Decoding::Sample(s) => {
                let rows = step.logits.squeeze(1)?.to_vec2::<f32>()?;
                rows.iter()
                    .zip(rngs.iter_mut())
                    .map(|(l, rng)| draw(l, s, rng))
                    .collect()
            }
        };
        for (row, &tok) in next.iter().enumerate() {
            if done[row] {
                continue;
            }
            if Some(tok) == opts.eos {
                done[row] = true;
                out[row].reason = StopReason::Eos;
                continue;
            }
            out[row].tokens.push(tok);
            if let Some(decode) = decode
                && let Some(i) = find_stop(&decode(&out[row].tokens)?, &opts.stop)
            {
                done[row] = true;
                out[row].reason = StopReason::StopString(i);
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
        for v in &mut valid {
            v.push(true);
        }
        input = Tensor::from_vec(next, (b, 1), device)?;
        pos = Tensor::from_vec(next_pos.clone(), (b, 1), device)?;
        for p in &mut next_pos {
            *p += 1;
        }
        mask = padded_mask(&valid, 1, device)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(temperature: f64, top_k: usize, top_p: f64) -> Sampling {
        Sampling {
            temperature,
            top_k,
            top_p,
            seed: 0,
        }
    }

    #[test]
    fn top_k_1_and_tiny_top_p_are_greedy() {
        let logits = [0.1f32, 2.0, -1.0, 1.9];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            assert_eq!(draw(&logits, &s(1.0, 1, 1.0), &mut rng), 1);
            assert_eq!(draw(&logits, &s(1.0, 0, 1e-9), &mut rng), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_respects_top_k() {
        let logits = [0.0f32, (3.0f32).ln(), -30.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 20_000;
        let mut counts = [0usize; 3];
        for _ in 0..n {
            counts[draw(&logits, &s(1.0, 2, 1.0), &mut rng) as usize] += 1;
        }
        let share = counts[1] as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.02, "{counts:?}");
        assert_eq!(counts[2], 0);
    }
}
