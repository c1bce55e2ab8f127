//! Batched greedy generation with left padding and a KV cache.

use candle_core::{D, Device, Tensor};

use crate::ModelError;
use crate::llama::{KvCache, Llama, Logits, padded_mask};

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
    let b = prompts.len();
    if b == 0 || max_new == 0 {
        return Ok(vec![Vec::new(); b]);
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Input("empty prompt".into()));
    }
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
        ids.extend(std::iter::repeat_n(pad, padding));
        ids.extend_from_slice(p);
        positions.extend(std::iter::repeat_n(0u32, padding));
        positions.extend(0..p.len() as u32);
        let mut v = vec![false; padding];
        v.extend(std::iter::repeat_n(true, p.len()));
        valid.push(v);
        next_pos.push(p.len() as u32);
    }
    let mut cache = KvCache::new();
    let mut input = Tensor::from_vec(ids, (b, longest), device)?;
    let mut pos = Tensor::from_vec(positions, (b, longest), device)?;
    let mut mask = padded_mask(&valid, longest, device)?;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    for _ in 0..max_new {
        let step = llama.forward(&input, &pos, &mask, Some(&mut cache), Logits::Last, false)?;
        let next = step
            .logits
            .squeeze(1)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        for (row, &tok) in next.iter().enumerate() {
            if done[row] {
                continue;
            }
            if tok == eos {
                done[row] = true;
            } else {
                out[row].push(tok);
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
