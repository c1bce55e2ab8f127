//! A Llama-architecture decoder: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU.
//!
//! Every op here has a backward pass. candle-nn's fused CPU kernels (`ops::rms_norm`,
//! `softmax_last_dim`, `rotary_emb::rope`, `sdpa`) have none and would silently stop the
//! gradient, so this file uses Lethe's own fused ops (`crate::ops`, each with a backward and
//! tested against its composed form) or differentiable primitives; a test checks that every
//! parameter receives a gradient.

use std::collections::BTreeMap;

use candle_core::{Device, IndexOp, Tensor};

use crate::{Config, ModelError, ops};

/// Additive mask value for positions a query may not see. Finite on purpose: a fully masked
/// row (a left-padding query) must give a uniform softmax, not NaN that would leak into
/// valid rows through `0 · NaN`.
pub const MASKED: f32 = -1e9;

/// Which positions to compute logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every position: `[B, T, V]`.
    All,
    /// Only the last position: `[B, 1, V]` (generation).
    Last,
}

/// What a forward pass returns.
#[derive(Debug)]
pub struct Output {
    /// Logits, `[B, T, V]` or `[B, 1, V]`.
    pub logits: Tensor,
    /// Output of every decoder layer, `[B, T, D]` each, when asked for.
    pub hidden: Vec<Tensor>,
}

/// Keys and values of past positions, per layer, for incremental decoding.
///
/// With a capacity, each layer's keys and values live in buffers of `capacity` positions
/// allocated once and filled in place; without one (or past it) they grow by concatenation.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    capacity: usize,
}

#[derive(Debug)]
struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerCache {
    /// Append `k, v [b, kv, t, hd]`; returns views of every cached position.
    fn append(
        slot: &mut Option<Self>,
        k: Tensor,
        v: Tensor,
        capacity: usize,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        match slot {
            Some(c) if c.k.dim(2)? >= c.len + t && c.k.dims()[..2] == k.dims()[..2] => {
                c.k.slice_set(&k.contiguous()?, 2, c.len)?;
                c.v.slice_set(&v.contiguous()?, 2, c.len)?;
                c.len += t;
            }
            Some(c) => {
                c.k = Tensor::cat(&[&c.k.narrow(2, 0, c.len)?, &k], 2)?;
                c.v = Tensor::cat(&[&c.v.narrow(2, 0, c.len)?, &v], 2)?;
                c.len += t;
            }
            None if capacity > t => {
                let (b, kv, _, hd) = k.dims4()?;
                let kb = Tensor::zeros((b, kv, capacity, hd), k.dtype(), k.device())?;
                let vb = Tensor::zeros((b, kv, capacity, hd), v.dtype(), v.device())?;
                kb.slice_set(&k.contiguous()?, 2, 0)?;
                vb.slice_set(&v.contiguous()?, 2, 0)?;
                *slot = Some(Self {
                    k: kb,
                    v: vb,
                    len: t,
                });
            }
            None => {
                *slot = Some(Self {
                    k: k.contiguous()?,
                    v: v.contiguous()?,
                    len: t,
                });
            }
        }
        match slot {
            Some(c) => Ok((c.k.narrow(2, 0, c.len)?, c.v.narrow(2, 0, c.len)?)),
            None => candle_core::bail!("kv cache: empty after append"),
        }
    }
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache with room for `positions` positions before it has to grow.
    pub fn with_capacity(positions: usize) -> Self {
        Self {
            layers: Vec::new(),
            capacity: positions,
        }
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |c| c.len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    /// A low-rank adapter on the (frozen) weight ([`crate::lora`]).
    lora: Option<LoraPair>,
}

/// `A [r, in]`, `B [out, r]` and the scale `α / r`.
struct LoraPair {
    a: Tensor,
    b: Tensor,
    scale: f64,
}

impl Linear {
    /// `x [n, in] → [n, out]` (the fused linear op: no transpose node, one product for the
    /// weight's gradient), plus `scale · (x·Aᵀ)·Bᵀ` under an adapter.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.lora {
            Some(l) => ops::lora_linear(x, &self.weight, &l.a, &l.b, l.scale)?,
            None => ops::linear(x, &self.weight)?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    fn detached(&self) -> Self {
        Self {
            weight: self.weight.detach(),
            bias: self.bias.as_ref().map(Tensor::detach),
            lora: self.lora.as_ref().map(|l| LoraPair {
                a: l.a.detach(),
                b: l.b.detach(),
                scale: l.scale,
            }),
        }
    }
}

struct Layer {
    input_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The decoder. Its tensors are shared with the [`crate::Params`] it was built from, so an
/// optimiser step on those parameters is seen by the next forward pass.
pub struct Llama {
    cfg: Config,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
}

impl Llama {
    /// Build the model from named tensors in Hugging Face layout (`model.layers.0.…`).
    pub fn new(cfg: &Config, tensors: &BTreeMap<String, Tensor>) -> Result<Self, ModelError> {
        Self::with_adapters(cfg, tensors, &BTreeMap::new(), 1.0)
    }

    /// [`Llama::new`] with low-rank adapters: every projection `P` whose
    /// `P.lora_A.weight` and `P.lora_B.weight` are in `adapters` adds `scale · (x·Aᵀ)·Bᵀ`.
    pub fn with_adapters(
        cfg: &Config,
        tensors: &BTreeMap<String, Tensor>,
        adapters: &BTreeMap<String, Tensor>,
        scale: f64,
    ) -> Result<Self, ModelError> {
        cfg.validate()?;
        let get = |name: &str| {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| ModelError::Weights(format!("missing tensor '{name}'")))
        };
        let linear = |prefix: &str, bias: bool| -> Result<Linear, ModelError> {
            let lora = match (
                adapters.get(&format!("{prefix}.lora_A.weight")),
                adapters.get(&format!("{prefix}.lora_B.weight")),
            ) {
                (Some(a), Some(b)) => Some(LoraPair {
                    a: a.clone(),
                    b: b.clone(),
                    scale,
                }),
                (None, None) => None,
                _ => {
                    return Err(ModelError::Weights(format!(
                        "adapter of '{prefix}' has only one of its two matrices"
                    )));
                }
            };
            Ok(Linear {
                weight: get(&format!("{prefix}.weight"))?,
                bias: if bias {
                    Some(get(&format!("{prefix}.bias"))?)
                } else {
                    None
                },
                lora,
            })
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                input_norm: get(&format!("{p}.input_layernorm.weight"))?,
                q: linear(&format!("{p}.self_attn.q_proj"), cfg.attention_bias)?,
                k: linear(&format!("{p}.self_attn.k_proj"), cfg.attention_bias)?,
                v: linear(&format!("{p}.self_attn.v_proj"), cfg.attention_bias)?,
                o: linear(&format!("{p}.self_attn.o_proj"), false)?,
                post_norm: get(&format!("{p}.post_attention_layernorm.weight"))?,
                gate: linear(&format!("{p}.mlp.gate_proj"), false)?,
                up: linear(&format!("{p}.mlp.up_proj"), false)?,
                down: linear(&format!("{p}.mlp.down_proj"), false)?,
            });
        }
        let embed = get("model.embed_tokens.weight")?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            get("lm_head.weight")?
        };
        let device = embed.device().clone();
        let (cos, sin) = rope_table(cfg, &device)?;
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            norm: get("model.norm.weight")?,
            lm_head,
            cos,
            sin,
        })
    }

    /// The same model with every weight detached from the gradient graph. The weights share
    /// their storage (an optimiser's in-place updates stay visible), but no op on them records
    /// a graph: inference then keeps no intermediate alive and takes the fused paths that have
    /// no backward (attention without the stored score matrix).
    pub fn detached(&self) -> Self {
        Self {
            cfg: self.cfg.clone(),
            embed: self.embed.detach(),
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    input_norm: l.input_norm.detach(),
                    q: l.q.detached(),
                    k: l.k.detached(),
                    v: l.v.detached(),
                    o: l.o.detached(),
                    post_norm: l.post_norm.detach(),
                    gate: l.gate.detached(),
                    up: l.up.detached(),
                    down: l.down.detached(),
                })
                .collect(),
            norm: self.norm.detach(),
            lm_head: self.lm_head.detach(),
            cos: self.cos.clone(),
            sin: self.sin.clone(),
        }
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Run the decoder.
    ///
    /// `input`: `[B, T]` token ids; `positions`: `[B, T]` u32 rotary positions; `mask`: an
    /// additive `[B or 1, 1, T, S]` mask over the `S = cached + T` keys (see [`causal_mask`]);
    /// `cache`: past keys/values, extended in place.
    pub fn forward(
        &self,
        input: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&mut KvCache>,
        logits: Logits,
        keep_hidden: bool,
    ) -> Result<Output, ModelError> {
        crate::kernels::on_pool(|| {
            self.forward_on_this_thread(input, positions, mask, cache, logits, keep_hidden)
        })
    }

    /// Log-probabilities of `labels` (`[B, T]` u32, each row's next tokens) under teacher
    /// forcing, `[B, T]`. The same numbers as [`label_logprobs`] of [`Llama::forward`]'s logits,
    /// but the vocabulary projection and the log-softmax are one op
    /// ([`ops::head_label_logprobs`]): neither the `[B, T, V]` logits nor their gradient enter
    /// the graph (a train step 4 % faster at the benchmark's shape).
    pub fn label_logprobs(
        &self,
        input: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        labels: &Tensor,
    ) -> Result<Tensor, ModelError> {
        crate::kernels::on_pool(|| {
            let (x, _) = self.decode(input, positions, mask, None, false)?;
            let (b, t) = input.dims2()?;
            let x = ops::rms_norm(&x, &self.norm, self.cfg.rms_norm_eps)?;
            let x = x.reshape((b, t, self.cfg.hidden_size))?;
            Ok(ops::head_label_logprobs(&x, &self.lm_head, labels)?)
        })
    }

    fn forward_on_this_thread(
        &self,
        input: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&mut KvCache>,
        logits: Logits,
        keep_hidden: bool,
    ) -> Result<Output, ModelError> {
        let (x, hidden) = self.decode(input, positions, mask, cache, keep_hidden)?;
        let (b, t) = input.dims2()?;
        let d = self.cfg.hidden_size;
        let (x, rows) = match logits {
            Logits::All => (x, t),
            Logits::Last => (x.reshape((b, t, d))?.i((.., t - 1, ..))?, 1),
        };
        let x = ops::rms_norm(&x, &self.norm, self.cfg.rms_norm_eps)?;
        // The `[b, rows, V]` logits come out of the product in their final shape: a reshape
        // node after it would copy their 16 MB gradient in the backward pass.
        let logits = ops::linear(&x.reshape((b, rows, d))?, &self.lm_head)?;
        Ok(Output { logits, hidden })
    }

    /// The decoder layers: the residual stream after the last layer, `[B·T, D]` (before the
    /// final norm), and each layer's output when asked for.
    fn decode(
        &self,
        input: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
        keep_hidden: bool,
    ) -> Result<(Tensor, Vec<Tensor>), ModelError> {
        let (b, t) = input.dims2()?;
        let cfg = &self.cfg;
        let (h, kv, hd) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim(),
        );
        let d = cfg.hidden_size;
        let flat_pos = positions.flatten_all()?;
        let cos = self.cos.index_select(&flat_pos, 0)?.reshape((b, t, hd))?;
        let sin = self.sin.index_select(&flat_pos, 0)?.reshape((b, t, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();

        let mut x = self.embed.index_select(&input.flatten_all()?, 0)?;
        let mut hidden = Vec::new();
        if let Some(c) = cache.as_deref_mut()
            && c.layers.len() != self.layers.len()
        {
            c.layers = (0..self.layers.len()).map(|_| None).collect();
        }
        // The residual stream is kept as `[b·t, d]`: every projection is one 2-D product.
        for (i, layer) in self.layers.iter().enumerate() {
            let xn = ops::rms_norm(&x, &layer.input_norm, cfg.rms_norm_eps)?;
            // Rotation and the transpose to `[b, heads, t, hd]` in one pass, one graph node.
            // The three projections of one input run side by side: while decoding each is too
            // small to split well over the threads, together they keep both busy.
            let (q, (k, v)) = rayon::join(
                || ops::rope_heads(&layer.q.forward(&xn)?, &cos, &sin, h),
                || {
                    rayon::join(
                        || ops::rope_heads(&layer.k.forward(&xn)?, &cos, &sin, kv),
                        || ops::split_heads(&layer.v.forward(&xn)?, b, t, kv),
                    )
                },
            );
            let (q, k, v) = (q?, k?, v?);
            let (k, v) = match cache.as_deref_mut() {
                Some(c) => {
                    let capacity = c.capacity;
                    LayerCache::append(&mut c.layers[i], k, v, capacity)?
                }
                None => (k, v),
            };
            let attn = ops::attention(&q, &k, &v, mask, scale)?;
            x = (x + layer.o.forward(&attn)?)?;

            let xn = ops::rms_norm(&x, &layer.post_norm, cfg.rms_norm_eps)?;
            let plain = layer.gate.lora.is_none() && layer.up.lora.is_none();
            let act = match (&layer.gate.bias, &layer.up.bias) {
                // One graph node for both up-projections and the activation.
                (None, None) if plain => {
                    ops::swiglu_projection(&xn, &layer.gate.weight, &layer.up.weight)?
                }
                _ => {
                    let (gate, up) =
                        rayon::join(|| layer.gate.forward(&xn), || layer.up.forward(&xn));
                    ops::swiglu(&gate?, &up?)?
                }
            };
            x = (x + layer.down.forward(&act)?)?;
            if keep_hidden {
                hidden.push(x.reshape((b, t, d))?);
            }
        }
        Ok((x, hidden))
    }
}

/// Rotary cos/sin tables, `[max_positions, head_dim]`.
fn rope_table(cfg: &Config, device: &Device) -> Result<(Tensor, Tensor), ModelError> {
    let hd = cfg.head_dim();
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / (cfg.rope_theta.powf(2.0 * i as f64 / hd as f64)) as f32)
        .collect();
    let n = cfg.max_position_embeddings;
    let mut freqs = Vec::with_capacity(n * hd);
    for p in 0..n {
        // Computed as f32 like transformers does, so positions agree to the last bit.
        let row: Vec<f32> = inv.iter().map(|f| p as f32 * f).collect();
        freqs.extend_from_slice(&row);
        freqs.extend_from_slice(&row);
    }
    let freqs = Tensor::from_vec(freqs, (n, hd), device)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// Positions `0..t` for every row: `[b, t]` u32.
pub fn sequential_positions(b: usize, t: usize, device: &Device) -> Result<Tensor, ModelError> {
    let row: Vec<u32> = (0..t as u32).collect();
    Ok(Tensor::new(row.as_slice(), device)?
        .unsqueeze(0)?
        .broadcast_as((b, t))?
        .contiguous()?)
}

/// A causal mask `[1, 1, t, t]` for right-padded batches (padding at the end never influences
/// earlier positions, and its positions are masked out of every loss).
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor, ModelError> {
    let mut m = vec![0f32; t * t];
    for q in 0..t {
        for k in q + 1..t {
            m[q * t + k] = MASKED;
        }
    }
    Ok(Tensor::from_vec(m, (1, 1, t, t), device)?)
}

/// A mask `[b, 1, t, s]` for queries at the last `t` of `s` key positions, causal and hiding
/// keys whose `valid` entry is false (left padding).
pub fn padded_mask(valid: &[Vec<bool>], t: usize, device: &Device) -> Result<Tensor, ModelError> {
    let b = valid.len();
    let s = valid.first().map_or(0, Vec::len);
    let mut m = vec![0f32; b * t * s];
    for (row, keys) in valid.iter().enumerate() {
        for q in 0..t {
            let q_abs = s - t + q;
            for (k, &ok) in keys.iter().enumerate() {
                if !ok || k > q_abs {
                    m[(row * t + q) * s + k] = MASKED;
                }
            }
        }
    }
    Ok(Tensor::from_vec(m, (b, 1, t, s), device)?)
}

/// Per-position log-probabilities of `labels` under `logits`: `[B, T, V]`, `[B, T]` → `[B, T]`.
///
/// Fused: the `[B, T, V]` log-softmax is never materialised (see [`ops::label_logprobs`]).
pub fn label_logprobs(logits: &Tensor, labels: &Tensor) -> Result<Tensor, ModelError> {
    Ok(ops::label_logprobs(logits, labels)?)
}

#[cfg(test)]
mod tests {
    // Index loops spell the formulas out as written.
    #![allow(clippy::unwrap_used, clippy::needless_range_loop)]

    use candle_core::Var;

    use super::*;

    fn values(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + 1.0) * k).sin()).collect()
    }

    /// An adapted projection computes `x·Wᵀ + s·(x·Aᵀ)·Bᵀ`, and its gradients are
    /// `∂L/∂B = s·dyᵀ·(x·Aᵀ)`, `∂L/∂A = s·(dy·B)ᵀ·x`, none for `W`: against an f64 loop, on
    /// shapes (in 6, out 5, rank 3) where a transposed or swapped matrix could not pass.
    #[test]
    fn an_adapted_projection_matches_an_independent_computation() {
        let (n, inp, out, r, s) = (4, 6, 5, 3, 0.75);
        let dev = Device::Cpu;
        let xs = values(n * inp, 0.37);
        let ws = values(out * inp, 0.11);
        let a_s = values(r * inp, 0.53);
        let b_s = values(out * r, 0.29);
        let c = values(n * out, 0.71);
        let x = Var::from_vec(xs.clone(), (n, inp), &dev).unwrap();
        let w = Tensor::from_vec(ws.clone(), (out, inp), &dev).unwrap();
        let a = Var::from_vec(a_s.clone(), (r, inp), &dev).unwrap();
        let b = Var::from_vec(b_s.clone(), (out, r), &dev).unwrap();
        let lin = Linear {
            weight: w,
            bias: None,
            lora: Some(LoraPair {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale: s,
            }),
        };
        let y = lin.forward(x.as_tensor()).unwrap();
        let cw = Tensor::from_vec(c.clone(), (n, out), &dev).unwrap();
        let grads = (&y * &cw).unwrap().sum_all().unwrap().backward().unwrap();

        let f = |v: &[f32], i: usize| f64::from(v[i]);
        // xa = x·Aᵀ [n, r]; y = x·Wᵀ + s·xa·Bᵀ.
        let mut xa = vec![0f64; n * r];
        for i in 0..n {
            for k in 0..r {
                xa[i * r + k] = (0..inp)
                    .map(|j| f(&xs, i * inp + j) * f(&a_s, k * inp + j))
                    .sum();
            }
        }
        let y = y.to_vec2::<f32>().unwrap();
        for i in 0..n {
            for o in 0..out {
                let plain: f64 = (0..inp)
                    .map(|j| f(&xs, i * inp + j) * f(&ws, o * inp + j))
                    .sum();
                let low: f64 = (0..r).map(|k| xa[i * r + k] * f(&b_s, o * r + k)).sum();
                let want = plain + s * low;
                assert!((f64::from(y[i][o]) - want).abs() < 1e-5, "y[{i}][{o}]");
            }
        }
        // dy = c. ∂B[o][k] = s Σ_i c[i][o] xa[i][k]; ∂A[k][j] = s Σ_i (Σ_o c[i][o] B[o][k]) x[i][j].
        let db = grads.get(b.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for o in 0..out {
            for k in 0..r {
                let want: f64 = s
                    * (0..n)
                        .map(|i| f(&c, i * out + o) * xa[i * r + k])
                        .sum::<f64>();
                assert!((f64::from(db[o][k]) - want).abs() < 1e-5, "dB[{o}][{k}]");
            }
        }
        let da = grads.get(a.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for k in 0..r {
            for j in 0..inp {
                let want: f64 = s
                    * (0..n)
                        .map(|i| {
                            let cb: f64 = (0..out)
                                .map(|o| f(&c, i * out + o) * f(&b_s, o * r + k))
                                .sum();
                            cb * f(&xs, i * inp + j)
                        })
                        .sum::<f64>();
                assert!((f64::from(da[k][j]) - want).abs() < 1e-5, "dA[{k}][{j}]");
            }
        }
        // The input still gets its gradient: (c·W + s·c·B·A).
        let dx = grads.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for i in 0..n {
            for j in 0..inp {
                let plain: f64 = (0..out)
                    .map(|o| f(&c, i * out + o) * f(&ws, o * inp + j))
                    .sum();
                let low: f64 = (0..r)
                    .map(|k| {
                        let cb: f64 = (0..out)
                            .map(|o| f(&c, i * out + o) * f(&b_s, o * r + k))
                            .sum();
                        cb * f(&a_s, k * inp + j)
                    })
                    .sum();
                assert!(
                    (f64::from(dx[i][j]) - (plain + s * low)).abs() < 1e-5,
                    "dx[{i}][{j}]"
                );
            }
        }
    }
}
