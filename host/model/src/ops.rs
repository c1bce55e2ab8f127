//! Fused ops with their own backward pass, as candle custom ops over the kernels of
//! `kernels.rs` and `gemm.rs`: linear (`x · Wᵀ`), RMSNorm, rotary embedding fused with the
//! transpose to heads, the head split/merge transposes, masked scaled softmax of attention
//! scores, SwiGLU, and label log-probabilities (log-softmax + gather without materialising the
//! `[N, V]` log-softmax). Each is one graph node, so candle's backward pass (which allocates a
//! zero tensor and adds into it for every node) has less to do.
//!
//! candle-nn's own fused CPU kernels have no backward and silently stop the gradient; these do
//! have one, and the tests compare each op and its gradients with the composed form. On any
//! device but the CPU, or on dtypes other than f32, every function here falls back to the
//! composed form, so a CUDA build computes the same functions with candle's own kernels.

use std::sync::{Mutex, MutexGuard};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Layout, Shape, Tensor};

use crate::gemm::{self, MatRef};
use crate::kernels::{self, RopeShape, SoftmaxShape};

type CResult<T> = candle_core::Result<T>;

fn f32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> CResult<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: expected f32 input, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: input is not contiguous"),
    }
}

/// An op's kept state (a poisoned lock means an earlier op panicked mid-update).
fn state<'a, T>(m: &'a Mutex<T>, op: &str) -> CResult<MutexGuard<'a, T>> {
    m.lock()
        .map_err(|_| candle_core::Error::Msg(format!("{op}: poisoned state")))
}

fn u32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> CResult<&'a [u32]> {
    let CpuStorage::U32(v) = s else {
        candle_core::bail!("{op}: expected u32 labels, got {:?}", s.dtype())
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: labels are not contiguous"),
    }
}

/// Whether the fused CPU kernels apply to these tensors.
fn fused(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// The composed forms: the reference the fused ops are tested against, and the path on
/// devices without fused kernels.
pub mod composed {
    use super::*;

    /// RMSNorm from differentiable primitives.
    pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> CResult<Tensor> {
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let inv = (ms + eps)?.sqrt()?.recip()?;
        x.broadcast_mul(&inv)?.broadcast_mul(weight)
    }

    /// `[x1, x2] -> [-x2, x1]` on the last dimension (the Hugging Face rotary layout).
    fn rotate_half(x: &Tensor) -> CResult<Tensor> {
        let half = x.dim(D::Minus1)? / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)
    }

    /// Rotary embedding of `x [b, t, h, hd]` with tables `[b, t, hd]`, returned as
    /// `[b, h, t, hd]`.
    pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> CResult<Tensor> {
        let x = x.transpose(1, 2)?.contiguous()?;
        let cos = cos.unsqueeze(1)?;
        let sin = sin.unsqueeze(1)?;
        x.broadcast_mul(&cos)? + rotate_half(&x)?.broadcast_mul(&sin)?
    }

    /// `softmax(scores · scale + mask)` over the last dimension.
    pub fn attn_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> CResult<Tensor> {
        candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(mask)?, D::Minus1)
    }

    /// `x · weightᵀ` over the last dimension.
    pub fn linear(x: &Tensor, weight: &Tensor) -> CResult<Tensor> {
        x.broadcast_matmul(&weight.t()?)
    }

    /// `silu(gate) · up`.
    pub fn swiglu(gate: &Tensor, up: &Tensor) -> CResult<Tensor> {
        gate.silu()? * up
    }

    /// `silu(x · w_gateᵀ) · (x · w_upᵀ)`.
    pub fn swiglu_projection(x: &Tensor, w_gate: &Tensor, w_up: &Tensor) -> CResult<Tensor> {
        swiglu(&linear(x, w_gate)?, &linear(x, w_up)?)
    }

    /// `log_softmax(logits)[label]` over the last dimension.
    pub fn label_logprobs(logits: &Tensor, labels: &Tensor) -> CResult<Tensor> {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        logp.gather(&labels.unsqueeze(D::Minus1)?, D::Minus1)?
            .squeeze(D::Minus1)
    }

    /// `log_softmax(x · wᵀ)[label]`: the vocabulary projection, then label log-probs.
    pub fn head_label_logprobs(x: &Tensor, w: &Tensor, labels: &Tensor) -> CResult<Tensor> {
        label_logprobs(&linear(x, w)?, labels)
    }
}

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "lethe-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        if w.is_empty() || l1.dims().last() != Some(&w.len()) {
            candle_core::bail!("rms-norm: weight of {} for input {:?}", w.len(), l1.dims())
        }
        let mut y = vec![0f32; x.len()];
        kernels::rms_norm(x, w, self.eps, &mut y);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let out = x.apply_op3_no_bwd(w, &dy.contiguous()?, &RmsNormBwd { eps: self.eps })?;
        let n = x.elem_count();
        let dx = out.narrow(0, 0, n)?.reshape(x.shape())?;
        // A frozen weight (LoRA) gets none (the kernel computes it in the same pass).
        let dw = match w.track_op() {
            true => Some(out.narrow(0, n, w.elem_count())?.reshape(w.shape())?),
            false => None,
        };
        Ok((Some(dx), dw))
    }
}

/// `(x, w, dy) -> [dx (flattened), dw]`.
struct RmsNormBwd {
    eps: f32,
}

impl CustomOp3 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "lethe-rms-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let dy = f32s(s3, l3, self.name())?;
        let mut out = vec![0f32; x.len() + w.len()];
        let (dx, rest) = out.split_at_mut(x.len());
        let dw = kernels::rms_norm_bwd(x, w, dy, self.eps, dx);
        rest.copy_from_slice(&dw);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + w.len())))
    }
}

/// RMSNorm over the last dimension: `x · 1/√(mean(x²) + eps) · weight`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> CResult<Tensor> {
    if !fused(&[x, weight]) {
        return composed::rms_norm(x, weight, eps);
    }
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, RmsNorm { eps: eps as f32 })
}

struct Rope {
    shape: RopeShape,
}

impl Rope {
    fn tables<'a>(
        &self,
        s2: &'a CpuStorage,
        l2: &Layout,
        s3: &'a CpuStorage,
        l3: &Layout,
    ) -> CResult<(&'a [f32], &'a [f32])> {
        let cos = f32s(s2, l2, "rope")?;
        let sin = f32s(s3, l3, "rope")?;
        let s = self.shape;
        if cos.len() != s.b * s.t * s.hd || sin.len() != cos.len() {
            candle_core::bail!("rope: tables of {} values for {s:?}", cos.len())
        }
        Ok((cos, sin))
    }
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "lethe-rope"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let (cos, sin) = self.tables(s2, l2, s3, l3)?;
        let RopeShape { b, t, h, hd } = self.shape;
        let mut y = vec![0f32; x.len()];
        kernels::rope(x, cos, sin, self.shape, &mut y);
        Ok((CpuStorage::F32(y), Shape::from((b, h, t, hd))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = dy
            .contiguous()?
            .apply_op3_no_bwd(cos, sin, &RopeBwd { shape: self.shape })?
            .reshape(x.shape())?;
        // The tables are constants.
        Ok((Some(dx), None, None))
    }
}

struct RopeBwd {
    shape: RopeShape,
}

impl CustomOp3 for RopeBwd {
    fn name(&self) -> &'static str {
        "lethe-rope-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let dy = f32s(s1, l1, self.name())?;
        let (cos, sin) = Rope { shape: self.shape }.tables(s2, l2, s3, l3)?;
        let RopeShape { b, t, h, hd } = self.shape;
        let mut dx = vec![0f32; dy.len()];
        kernels::rope_bwd(dy, cos, sin, self.shape, &mut dx);
        Ok((CpuStorage::F32(dx), Shape::from((b, t, h, hd))))
    }
}

/// Rotary embedding (Hugging Face layout) of `x [b, t, h, hd]` with per-position tables
/// `cos, sin [b, t, hd]`, returned transposed to heads: `[b, h, t, hd]`, contiguous.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> CResult<Tensor> {
    if !fused(&[x, cos, sin]) {
        return composed::rope(x, cos, sin);
    }
    let (b, t, h, hd) = x.dims4()?;
    if hd % 2 != 0 || cos.dims() != [b, t, hd] || sin.dims() != [b, t, hd] {
        candle_core::bail!(
            "rope: input {:?} with tables {:?} / {:?}",
            x.dims(),
            cos.dims(),
            sin.dims()
        )
    }
    x.contiguous()?.apply_op3(
        &cos.contiguous()?,
        &sin.contiguous()?,
        Rope {
            shape: RopeShape { b, t, h, hd },
        },
    )
}

/// Rotary embedding of `x [b·t, heads·hd]` (a projection's output as it comes, no reshape
/// node), with tables `cos, sin [b, t, hd]`, returned as `[b, heads, t, hd]`.
pub fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor, heads: usize) -> CResult<Tensor> {
    let (b, t, hd) = cos.dims3()?;
    if !fused(&[x, cos, sin]) {
        return composed::rope(&x.reshape((b, t, heads, hd))?, cos, sin);
    }
    if hd % 2 != 0 || sin.dims() != cos.dims() || x.elem_count() != b * t * heads * hd {
        candle_core::bail!(
            "rope: input {:?} with {heads} heads and tables {:?} / {:?}",
            x.dims(),
            cos.dims(),
            sin.dims()
        )
    }
    x.contiguous()?.apply_op3(
        &cos.contiguous()?,
        &sin.contiguous()?,
        Rope {
            shape: RopeShape { b, t, h: heads, hd },
        },
    )
}

/// `[b, t, h, hd]` (any shape of that many elements, read in that order) ↔ `[b, h, t, hd]`.
struct Heads {
    shape: RopeShape,
    /// `true`: to heads (`[b, t, h, hd]` → `[b, h, t, hd]`); `false`: back.
    split: bool,
}

impl CustomOp1 for Heads {
    fn name(&self) -> &'static str {
        if self.split {
            "lethe-split-heads"
        } else {
            "lethe-merge-heads"
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        let RopeShape { b, t, h, hd } = self.shape;
        if x.len() != b * t * h * hd {
            candle_core::bail!("{}: {} values for {:?}", self.name(), x.len(), self.shape)
        }
        let mut y = vec![0f32; x.len()];
        if self.split {
            kernels::split_heads(x, self.shape, &mut y);
            Ok((CpuStorage::F32(y), Shape::from((b, h, t, hd))))
        } else {
            kernels::merge_heads(x, self.shape, &mut y);
            Ok((CpuStorage::F32(y), Shape::from((b * t, h * hd))))
        }
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> CResult<Option<Tensor>> {
        let back = Heads {
            shape: self.shape,
            split: !self.split,
        };
        Ok(Some(
            dy.contiguous()?
                .apply_op1_no_bwd(&back)?
                .reshape(x.shape())?,
        ))
    }
}

/// `x [b·t, heads·hd]` → `[b, heads, t, hd]`, contiguous (one node, one copy).
pub fn split_heads(x: &Tensor, b: usize, t: usize, heads: usize) -> CResult<Tensor> {
    let hd = x.elem_count() / (b * t * heads).max(1);
    if !fused(&[x]) {
        return x.reshape((b, t, heads, hd))?.transpose(1, 2)?.contiguous();
    }
    x.contiguous()?.apply_op1(Heads {
        shape: RopeShape { b, t, h: heads, hd },
        split: true,
    })
}

/// `x [b, heads, t, hd]` → `[b·t, heads·hd]`, contiguous (one node, one copy).
pub fn merge_heads(x: &Tensor) -> CResult<Tensor> {
    let (b, h, t, hd) = x.dims4()?;
    if !fused(&[x]) {
        return x.transpose(1, 2)?.reshape((b * t, h * hd));
    }
    x.contiguous()?.apply_op1(Heads {
        shape: RopeShape { b, t, h, hd },
        split: false,
    })
}

/// Repeat each of `kv` key/value heads `rep` times: `[b, kv, s, hd]` → `[b, kv·rep, s, hd]`.
fn repeat_kv(x: &Tensor, rep: usize) -> CResult<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, kv, s, hd) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, kv, rep, s, hd))?
        .reshape((b, kv * rep, s, hd))
}

/// Attention of queries `q [b, heads, t, hd]` over keys and values `[b, kv_heads, s, hd]`
/// (grouped-query when `kv_heads < heads`) under an additive mask `[b or 1, 1, t, s]`:
/// `softmax(q·kᵀ · scale + mask) · v` with the heads merged, `[b·t, heads·hd]`.
///
/// On the CPU this is one fused op that never builds the `[b, heads, t, s]` scores as a
/// tensor. Without a gradient to track (generation, scoring a frozen model) the weights live in
/// a per-task buffer; with one they are kept in the op for its backward pass, and the graph has
/// one node where the chain of products, softmax and head merge had four (each of whose
/// gradients candle would allocate, zero-fill and add on one thread). Elsewhere it is that
/// chain ([`attention_chain`]).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> CResult<Tensor> {
    let (b, h, t, hd) = q.dims4()?;
    let (kb, kv, s, khd) = k.dims4()?;
    if kb != b || khd != hd || v.dims() != k.dims() || kv == 0 || h % kv != 0 {
        candle_core::bail!(
            "attention: queries {:?}, keys {:?}, values {:?}",
            q.dims(),
            k.dims(),
            v.dims()
        )
    }
    if !fused(&[q, k, v, mask]) || mask.track_op() {
        return attention_chain(q, k, v, mask, scale);
    }
    let (mb, one, mt, ms) = mask.dims4()?;
    if !(mb == 1 || mb == b) || one != 1 || mt != t || ms != s {
        candle_core::bail!(
            "attention: mask {:?} for queries {:?} over {s} keys",
            mask.dims(),
            q.dims()
        )
    }
    let op = Attention {
        scale: scale as f32,
        mask: mask.contiguous()?,
        dims: kernels::AttnDims {
            b,
            heads: h,
            kv_heads: kv,
            t,
            s,
            hd,
            mask_batches: mb,
        },
    };
    if q.track_op() || k.track_op() || v.track_op() {
        return q.contiguous()?.apply_op3(
            &k.contiguous()?,
            &v.contiguous()?,
            TrainedAttention {
                inner: op,
                saved: Mutex::new(None),
            },
        );
    }
    q.contiguous()?
        .apply_op3_no_bwd(&rows_contiguous(k)?, &rows_contiguous(v)?, &op)
}

/// [`attention`] as the differentiable chain: scores, masked softmax, weighted values, head
/// merge.
pub fn attention_chain(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
) -> CResult<Tensor> {
    let rep = q.dim(1)? / k.dim(1)?.max(1);
    let scores = matmul_nt(q, &repeat_kv(k, rep)?)?;
    let probs = attn_softmax(&scores, mask, scale)?;
    merge_heads(&matmul(&probs, &repeat_kv(v, rep)?)?)
}

/// The fused attention of [`attention`]; the mask rides along in the op.
#[derive(Clone)]
struct Attention {
    scale: f32,
    mask: Tensor,
    dims: kernels::AttnDims,
}

impl Attention {
    /// A keys/values layout as a strided view, checked against the data it indexes.
    fn view<'a>(&self, s: &'a CpuStorage, l: &Layout) -> CResult<kernels::HeadsView<'a>> {
        let CpuStorage::F32(data) = s else {
            candle_core::bail!("attention: expected f32 keys and values")
        };
        let st = l.stride();
        if l.dims().len() != 4 || (st[3] != 1 && self.dims.hd > 1) {
            candle_core::bail!("attention: keys/values of layout {:?} / {st:?}", l.dims())
        }
        let view = kernels::HeadsView {
            data,
            offset: l.start_offset(),
            batch: st[0],
            head: st[1],
            pos: st[2],
        };
        match view.end(&self.dims) {
            Some(end) if end <= data.len() => Ok(view),
            _ => candle_core::bail!("attention: a key/value view reaches outside its data"),
        }
    }

    /// The merged output, keeping the weights in `probs` when given.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
        probs: Option<&mut [f32]>,
    ) -> CResult<Vec<f32>> {
        let q = f32s(s1, l1, "attention")?;
        let (k, v) = (self.view(s2, l2)?, self.view(s3, l3)?);
        let (mask_storage, mask_layout) = self.mask.storage_and_layout();
        let candle_core::Storage::Cpu(ms) = &*mask_storage else {
            candle_core::bail!("attention: the mask is not on the CPU")
        };
        let mask = f32s(ms, mask_layout, "attention")?;
        let d = self.dims;
        if q.len() != d.b * d.heads * d.t * d.hd || mask.len() != d.mask_batches * d.t * d.s {
            candle_core::bail!(
                "attention: {} query and {} mask elements for {d:?}",
                q.len(),
                mask.len()
            )
        }
        let mut out = vec![0f32; q.len()];
        kernels::attention(q, k, v, mask, self.scale, d, &mut out, probs).map_err(gemm_err)?;
        Ok(out)
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.dims.b * self.dims.t, self.dims.heads * self.dims.hd))
    }

    fn probs_len(&self) -> usize {
        let d = self.dims;
        d.b * d.heads * d.t * d.s
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "lethe-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let out = self.run(s1, l1, s2, l2, s3, l3, None)?;
        Ok((CpuStorage::F32(out), self.out_shape()))
    }
}

/// [`Attention`] with a gradient: keeps the `[b, heads, t, s]` weights for the backward pass.
struct TrainedAttention {
    inner: Attention,
    saved: Mutex<Option<Vec<f32>>>,
}

impl CustomOp3 for TrainedAttention {
    fn name(&self) -> &'static str {
        "lethe-trained-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let mut probs = vec![0f32; self.inner.probs_len()];
        let out = self.inner.run(s1, l1, s2, l2, s3, l3, Some(&mut probs))?;
        *state(&self.saved, "attention")? = Some(probs);
        Ok((CpuStorage::F32(out), self.inner.out_shape()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        dout: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Taken, not cloned: a second backward pass over the same graph recomputes them.
        let saved = state(&self.saved, "attention")?.take();
        let probs = match saved {
            Some(p) => p,
            None => q
                .apply_op3_no_bwd(k, v, &AttentionWeights(self.inner.clone()))?
                .flatten_all()?
                .to_vec1::<f32>()?,
        };
        let grads = q.apply_op3_no_bwd(
            k,
            v,
            &AttentionBwd {
                scale: self.inner.scale,
                dims: self.inner.dims,
                probs,
                dout: dout.contiguous()?,
            },
        )?;
        let (nq, nk) = (q.elem_count(), k.elem_count());
        let dq = grads.narrow(0, 0, nq)?.reshape(q.shape())?;
        let dk = grads.narrow(0, nq, nk)?.reshape(k.shape())?;
        let dv = grads.narrow(0, nq + nk, nk)?.reshape(v.shape())?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// The `[b, heads, t, s]` weights of an [`Attention`] (to recompute them).
struct AttentionWeights(Attention);

impl CustomOp3 for AttentionWeights {
    fn name(&self) -> &'static str {
        "lethe-attention-weights"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let mut probs = vec![0f32; self.0.probs_len()];
        self.0.run(s1, l1, s2, l2, s3, l3, Some(&mut probs))?;
        let d = self.0.dims;
        Ok((
            CpuStorage::F32(probs),
            Shape::from((d.b, d.heads, d.t, d.s)),
        ))
    }
}

/// `(q, k, v) → [dq | dk | dv]` (flattened) of [`TrainedAttention`] at the kept weights and the
/// output's gradient.
struct AttentionBwd {
    scale: f32,
    dims: kernels::AttnDims,
    probs: Vec<f32>,
    dout: Tensor,
}

impl CustomOp3 for AttentionBwd {
    fn name(&self) -> &'static str {
        "lethe-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let q = f32s(s1, l1, self.name())?;
        let k = f32s(s2, l2, self.name())?;
        let v = f32s(s3, l3, self.name())?;
        let (dout_storage, dout_layout) = self.dout.storage_and_layout();
        let candle_core::Storage::Cpu(ds) = &*dout_storage else {
            candle_core::bail!("attention backward: the gradient is not on the CPU")
        };
        let dout = f32s(ds, dout_layout, self.name())?;
        let mut out = vec![0f32; q.len() + 2 * k.len()];
        let (dq, rest) = out.split_at_mut(q.len());
        let (dk, dv) = rest.split_at_mut(k.len());
        kernels::attention_bwd(
            q,
            k,
            v,
            &self.probs,
            dout,
            self.scale,
            self.dims,
            dq,
            dk,
            dv,
        )
        .map_err(gemm_err)?;
        let n = out.len();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}

struct AttnSoftmax {
    scale: f32,
    shape: SoftmaxShape,
}

impl CustomOp2 for AttnSoftmax {
    fn name(&self) -> &'static str {
        "lethe-attn-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let scores = f32s(s1, l1, self.name())?;
        let mask = f32s(s2, l2, self.name())?;
        let mut p = vec![0f32; scores.len()];
        kernels::attn_softmax(scores, mask, self.scale, self.shape, &mut p);
        Ok((CpuStorage::F32(p), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _scores: &Tensor,
        _mask: &Tensor,
        p: &Tensor,
        dp: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let ds = p.apply_op2_no_bwd(
            &dp.contiguous()?,
            &AttnSoftmaxBwd {
                scale: self.scale,
                s: self.shape.s,
            },
        )?;
        // The mask is a constant.
        Ok((Some(ds), None))
    }
}

struct AttnSoftmaxBwd {
    scale: f32,
    s: usize,
}

impl CustomOp2 for AttnSoftmaxBwd {
    fn name(&self) -> &'static str {
        "lethe-attn-softmax-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let p = f32s(s1, l1, self.name())?;
        let dp = f32s(s2, l2, self.name())?;
        let mut ds = vec![0f32; p.len()];
        kernels::attn_softmax_bwd(p, dp, self.scale, self.s, &mut ds);
        Ok((CpuStorage::F32(ds), l1.shape().clone()))
    }
}

/// `softmax(scores · scale + mask)` over the last dimension, for scores `[b, h, t, s]` and an
/// additive mask `[b or 1, 1, t, s]`.
pub fn attn_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> CResult<Tensor> {
    if !fused(&[scores, mask]) {
        return composed::attn_softmax(scores, mask, scale);
    }
    let (b, h, t, s) = scores.dims4()?;
    let (mb, one, mt, ms) = mask.dims4()?;
    if !(mb == 1 || mb == b) || one != 1 || mt != t || ms != s {
        candle_core::bail!(
            "attention softmax: mask {:?} for scores {:?}",
            mask.dims(),
            scores.dims()
        )
    }
    scores.contiguous()?.apply_op2(
        &mask.contiguous()?,
        AttnSoftmax {
            scale: scale as f32,
            shape: SoftmaxShape {
                s,
                t,
                heads: h,
                mask_batches: mb,
            },
        },
    )
}

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "lethe-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = f32s(s1, l1, self.name())?;
        let u = f32s(s2, l2, self.name())?;
        let mut y = vec![0f32; g.len()];
        kernels::swiglu(g, u, &mut y);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        g: &Tensor,
        u: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let out = g.apply_op3_no_bwd(u, &dy.contiguous()?, &SwiGluBwd)?;
        let n = g.elem_count();
        let dg = out.narrow(0, 0, n)?.reshape(g.shape())?;
        let du = out.narrow(0, n, n)?.reshape(u.shape())?;
        Ok((Some(dg), Some(du)))
    }
}

/// `(g, u, dy) -> [dg, du]` (flattened).
struct SwiGluBwd;

impl CustomOp3 for SwiGluBwd {
    fn name(&self) -> &'static str {
        "lethe-swiglu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = f32s(s1, l1, self.name())?;
        let u = f32s(s2, l2, self.name())?;
        let dy = f32s(s3, l3, self.name())?;
        let mut out = vec![0f32; 2 * g.len()];
        kernels::swiglu_bwd(g, u, dy, &mut out);
        Ok((CpuStorage::F32(out), Shape::from(2 * g.len())))
    }
}

/// `silu(gate) · up`, elementwise.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> CResult<Tensor> {
    if !fused(&[gate, up]) {
        return composed::swiglu(gate, up);
    }
    if gate.shape() != up.shape() {
        candle_core::bail!("swiglu: gate {:?} and up {:?}", gate.dims(), up.dims())
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

/// The MLP's two up-projections and SwiGLU as one op: `silu(x · w_gateᵀ) · (x · w_upᵀ)`.
/// As three ops, the `[n, mlp]` gate and up outputs were graph nodes: in the backward pass
/// candle allocated, zero-filled and added a copy of each one's gradient on one thread, and
/// summed two gradients for `x`. Here the gate and up products stay inside the op (kept for
/// the backward pass when a gradient is tracked), and the backward pass writes `dx` with one
/// product and one accumulating product.
struct SwiGluProjection {
    keep: bool,
    saved: Mutex<Option<GateUp>>,
}

/// The gate and up products of [`SwiGluProjection`], `[n, mlp]` each.
struct GateUp {
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// `x [n, inp] · wᵀ` for a row-major `w [out, inp]`.
fn project(x: &[f32], w: &[f32], n: usize, inp: usize, out: usize) -> CResult<Vec<f32>> {
    let mut y = vec![0f32; n * out];
    gemm::matmul(
        &mut y,
        MatRef::rows(x, n, inp),
        MatRef::transposed(w, out, inp),
        false,
    )
    .map_err(gemm_err)?;
    Ok(y)
}

/// Gate and up products side by side (each too small to keep both threads busy while decoding).
fn gate_up(x: &[f32], wg: &[f32], wu: &[f32], inp: usize, m: usize) -> CResult<GateUp> {
    let n = x.len() / inp.max(1);
    let (gate, up) = rayon::join(|| project(x, wg, n, inp, m), || project(x, wu, n, inp, m));
    Ok(GateUp {
        gate: gate?,
        up: up?,
    })
}

impl CustomOp3 for SwiGluProjection {
    fn name(&self) -> &'static str {
        "lethe-swiglu-projection"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let wg = f32s(s2, l2, self.name())?;
        let wu = f32s(s3, l3, self.name())?;
        let (_, inp, m) = linear_dims(l1, l2)?;
        if l3.dims() != l2.dims() {
            candle_core::bail!(
                "swiglu projection: gate {:?} and up {:?}",
                l2.dims(),
                l3.dims()
            )
        }
        let gu = gate_up(x, wg, wu, inp, m)?;
        let mut act = vec![0f32; gu.gate.len()];
        kernels::swiglu(&gu.gate, &gu.up, &mut act);
        if self.keep {
            *state(&self.saved, "swiglu projection")? = Some(gu);
        }
        Ok((CpuStorage::F32(act), last_dim(l1, m)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        wg: &Tensor,
        wu: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Taken, not cloned: a second backward pass over the same graph recomputes them.
        let saved = state(&self.saved, "swiglu projection")?.take();
        let gu = match saved {
            Some(gu) => gu,
            None => {
                let xs = x.flatten_all()?.to_vec1::<f32>()?;
                let wgs = wg.flatten_all()?.to_vec1::<f32>()?;
                let wus = wu.flatten_all()?.to_vec1::<f32>()?;
                let (m, inp) = wg.dims2()?;
                gate_up(&xs, &wgs, &wus, inp, m)?
            }
        };
        let (m, inp) = wg.dims2()?;
        let n = gu.gate.len() / m.max(1);
        // [dgate; dup], `[2, n, m]`.
        let dgu = dy.contiguous()?.apply_op1_no_bwd(&SwiGluGrad(gu))?;
        let (dg, du) = (dgu.get(0)?, dgu.get(1)?);
        let dx = dgu
            .apply_op3_no_bwd(wg, wu, &PairBwdInput)?
            .reshape(x.shape())?;
        let x2 = x.reshape((n, inp))?;
        // Frozen weights (LoRA on attention only) get no gradient.
        let weight_grad = |d: &Tensor, w: &Tensor| -> CResult<Option<Tensor>> {
            match w.track_op() {
                true => Ok(Some(d.apply_op2_no_bwd(&x2, &LinearBwdWeight)?)),
                false => Ok(None),
            }
        };
        Ok((Some(dx), weight_grad(&dg, wg)?, weight_grad(&du, wu)?))
    }
}

/// `dy → [dgate; dup]` of SwiGLU at the kept gate and up products.
struct SwiGluGrad(GateUp);

impl CustomOp1 for SwiGluGrad {
    fn name(&self) -> &'static str {
        "lethe-swiglu-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let dy = f32s(s, l, self.name())?;
        let GateUp { gate, up } = &self.0;
        if dy.len() != gate.len() {
            candle_core::bail!("swiglu projection backward: forward state does not match")
        }
        let m = l.dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; 2 * gate.len()];
        kernels::swiglu_bwd(gate, up, dy, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((2, gate.len() / m, m))))
    }
}

/// `([dg; du] [2, n, m], wg [m, inp], wu [m, inp]) → dg · wg + du · wu`, `[n, inp]`.
struct PairBwdInput;

impl CustomOp3 for PairBwdInput {
    fn name(&self) -> &'static str {
        "lethe-pair-bwd-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let d = f32s(s1, l1, self.name())?;
        let wg = f32s(s2, l2, self.name())?;
        let wu = f32s(s3, l3, self.name())?;
        let (&[2, n, m], &[m2, inp]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!("pair backward: {:?} and {:?}", l1.dims(), l2.dims())
        };
        if m != m2 || l3.dims() != l2.dims() {
            candle_core::bail!(
                "pair backward: {:?}, {:?} and {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            )
        }
        let (dg, du) = d.split_at(n * m);
        let mut dx = vec![0f32; n * inp];
        gemm::matmul(
            &mut dx,
            MatRef::rows(dg, n, m),
            MatRef::rows(wg, m, inp),
            false,
        )
        .map_err(gemm_err)?;
        gemm::matmul(
            &mut dx,
            MatRef::rows(du, n, m),
            MatRef::rows(wu, m, inp),
            true,
        )
        .map_err(gemm_err)?;
        Ok((CpuStorage::F32(dx), Shape::from((n, inp))))
    }
}

/// `silu(x · w_gateᵀ) · (x · w_upᵀ)` for `x [..., in]` and `w_gate`, `w_up` `[mlp, in]` →
/// `[..., mlp]`: what [`swiglu`] of two [`linear`]s computes, in one graph node.
pub fn swiglu_projection(x: &Tensor, w_gate: &Tensor, w_up: &Tensor) -> CResult<Tensor> {
    if !fused(&[x, w_gate, w_up]) {
        return composed::swiglu_projection(x, w_gate, w_up);
    }
    x.contiguous()?.apply_op3(
        &w_gate.contiguous()?,
        &w_up.contiguous()?,
        SwiGluProjection {
            keep: x.track_op() || w_gate.track_op() || w_up.track_op(),
            saved: Mutex::new(None),
        },
    )
}

/// Log-softmax + gather; keeps each row's `(max, ln Σ)` for the backward pass.
struct LabelLogprobs {
    v: usize,
    stats: Mutex<Vec<(f32, f32)>>,
}

fn check_labels(labels: &[u32], v: usize) -> CResult<()> {
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= v) {
        candle_core::bail!("label {l} at row {i} is outside the vocabulary of {v}")
    }
    Ok(())
}

impl CustomOp2 for LabelLogprobs {
    fn name(&self) -> &'static str {
        "lethe-label-logprobs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let labels = u32s(s2, l2, self.name())?;
        check_labels(labels, self.v)?;
        let mut out = vec![0f32; labels.len()];
        let stats = kernels::label_logprobs(x, labels, self.v, &mut out);
        *state(&self.stats, "label log-probs")? = stats;
        Ok((CpuStorage::F32(out), l2.shape().clone()))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let stats = state(&self.stats, "label log-probs")?.clone();
        let dx = logits.apply_op3_no_bwd(
            labels,
            &dy.contiguous()?,
            &LabelLogprobsBwd { v: self.v, stats },
        )?;
        // Labels are integers: no gradient.
        Ok((Some(dx), None))
    }
}

struct LabelLogprobsBwd {
    v: usize,
    stats: Vec<(f32, f32)>,
}

impl CustomOp3 for LabelLogprobsBwd {
    fn name(&self) -> &'static str {
        "lethe-label-logprobs-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let labels = u32s(s2, l2, self.name())?;
        let dy = f32s(s3, l3, self.name())?;
        if self.stats.len() != labels.len() || dy.len() != labels.len() {
            candle_core::bail!("label log-probs backward: forward state does not match")
        }
        let mut dx = x.to_vec();
        kernels::label_logprobs_bwd(&mut dx, labels, &self.stats, dy, self.v);
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `log_softmax(logits)[label]` over the last dimension: logits `[..., V]`, u32 labels `[...]`
/// → `[...]`. The `[..., V]` log-softmax is never materialised; its backward writes the logits'
/// gradient in one pass.
pub fn label_logprobs(logits: &Tensor, labels: &Tensor) -> CResult<Tensor> {
    if !fused(&[logits]) || labels.dtype() != DType::U32 || !labels.device().is_cpu() {
        return composed::label_logprobs(logits, labels);
    }
    let v = logits.dim(D::Minus1)?;
    let n = labels.elem_count();
    if logits.elem_count() != n * v {
        candle_core::bail!(
            "label log-probs: logits {:?} for labels {:?}",
            logits.dims(),
            labels.dims()
        )
    }
    // No reshape on the way: each would be a graph node whose backward allocates, zero-fills
    // and adds a copy of the `[..., V]` gradient (16 MB for the benchmark's batch).
    logits.contiguous()?.apply_op2(
        &labels.contiguous()?,
        LabelLogprobs {
            v,
            stats: Mutex::new(Vec::new()),
        },
    )
}

/// `x [n, in] · wᵀ` for `w [out, in]`.
struct Linear;

fn linear_dims(x: &Layout, w: &Layout) -> CResult<(usize, usize, usize)> {
    let (out, inp) = match w.dims() {
        [o, i] => (*o, *i),
        d => candle_core::bail!("linear: weight of shape {d:?}"),
    };
    if x.dims().last() != Some(&inp) {
        candle_core::bail!("linear: input {:?} for weight {:?}", x.dims(), w.dims())
    }
    Ok((x.shape().elem_count() / inp.max(1), inp, out))
}

/// The shape of `l` with its last dimension set to `n` (a projection's output).
fn last_dim(l: &Layout, n: usize) -> Shape {
    let mut dims = l.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    Shape::from(dims)
}

fn gemm_err(e: String) -> candle_core::Error {
    candle_core::Error::Msg(e)
}

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "lethe-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let (n, inp, out) = linear_dims(l1, l2)?;
        let y = project(x, w, n, inp, out)?;
        Ok((CpuStorage::F32(y), last_dim(l1, out)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        // A frozen operand (a LoRA model's base weight, its first layer's input) records no
        // graph and gets no gradient: its product is never computed.
        let dx = match x.track_op() {
            true => Some(
                dy.apply_op2_no_bwd(w, &LinearBwdInput)?
                    .reshape(x.shape())?,
            ),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(dy.apply_op2_no_bwd(x, &LinearBwdWeight)?),
            false => None,
        };
        Ok((dx, dw))
    }
}

/// `(dy [n, out], w [out, in]) → dy · w`.
struct LinearBwdInput;

impl CustomOp2 for LinearBwdInput {
    fn name(&self) -> &'static str {
        "lethe-linear-bwd-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let dy = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let [out, inp] = l2.dims() else {
            candle_core::bail!("linear backward: weight of shape {:?}", l2.dims())
        };
        let n = dy.len() / out.max(&1);
        let mut dx = vec![0f32; n * inp];
        gemm::matmul(
            &mut dx,
            MatRef::rows(dy, n, *out),
            MatRef::rows(w, *out, *inp),
            false,
        )
        .map_err(gemm_err)?;
        Ok((CpuStorage::F32(dx), Shape::from((n, *inp))))
    }
}

/// `(dy [n, out], x [n, in]) → dyᵀ · x`.
struct LinearBwdWeight;

impl CustomOp2 for LinearBwdWeight {
    fn name(&self) -> &'static str {
        "lethe-linear-bwd-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let dy = f32s(s1, l1, self.name())?;
        let x = f32s(s2, l2, self.name())?;
        let out = l1.dims().last().copied().unwrap_or(1).max(1);
        let inp = l2.dims().last().copied().unwrap_or(1).max(1);
        let n = dy.len() / out;
        if x.len() != n * inp {
            candle_core::bail!(
                "linear backward: {n} gradient rows for input {:?}",
                l2.dims()
            )
        }
        let mut dw = vec![0f32; out * inp];
        gemm::matmul(
            &mut dw,
            MatRef::transposed(dy, n, out),
            MatRef::rows(x, n, inp),
            false,
        )
        .map_err(gemm_err)?;
        Ok((CpuStorage::F32(dw), Shape::from((out, inp))))
    }
}

/// `x · weightᵀ` for `x [..., in]` and `weight [out, in]` → `[..., out]`: one matrix product
/// forward and two backward, with no transpose nodes in the graph.
pub fn linear(x: &Tensor, weight: &Tensor) -> CResult<Tensor> {
    if !fused(&[x, weight]) {
        return composed::linear(x, weight);
    }
    x.contiguous()?.apply_op2(&weight.contiguous()?, Linear)
}

/// `x·Wᵀ + s·(x·Aᵀ)·Bᵀ` (a LoRA projection) as one graph node, with `A [r, in]` and
/// `B [out, r]` packed flat into one operand (`[A; B]`, so each still gets its own gradient
/// through the concatenation). As five nodes (two products, a scale, a product, an add), each
/// kept its `[n, out]` output and had its gradient zero-filled and summed by candle.
struct LoraLinear {
    r: usize,
    scale: f32,
    keep: bool,
    /// `s·(x·Aᵀ)`, `[n, r]`, for the backward pass.
    saved: Mutex<Option<Vec<f32>>>,
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "lethe-lora-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let ab = f32s(s3, l3, self.name())?;
        let (n, inp, out) = linear_dims(l1, l2)?;
        let r = self.r;
        if ab.len() != r * (inp + out) {
            candle_core::bail!(
                "lora linear: {} adapter values for rank {r}, {inp} in, {out} out",
                ab.len()
            )
        }
        let (a, b) = ab.split_at(r * inp);
        let mut xa = project(x, a, n, inp, r)?;
        for v in &mut xa {
            *v *= self.scale;
        }
        let mut y = project(x, w, n, inp, out)?;
        gemm::matmul(
            &mut y,
            MatRef::rows(&xa, n, r),
            MatRef::transposed(b, out, r),
            true,
        )
        .map_err(gemm_err)?;
        if self.keep {
            *state(&self.saved, "lora linear")? = Some(xa);
        }
        Ok((CpuStorage::F32(y), last_dim(l1, out)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        ab: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, inp) = w.dims2()?;
        let r = self.r;
        let n = x.elem_count() / inp.max(1);
        let x2 = x.reshape((n, inp))?;
        let dy = dy.contiguous()?.reshape((n, out))?;
        let a = ab.narrow(0, 0, r * inp)?.reshape((r, inp))?;
        let b = ab.narrow(0, r * inp, out * r)?.reshape((out, r))?;
        // Taken, not cloned: a second backward pass over the same graph recomputes it.
        let xa = match state(&self.saved, "lora linear")?.take() {
            Some(v) => Tensor::from_vec(v, (n, r), x.device())?,
            None => (x2.apply_op2_no_bwd(&a, &Linear)? * f64::from(self.scale))?,
        };
        // g = s·(dy·B), [n, r]; dB = dyᵀ·xa; dA = gᵀ·x; dx = dy·W + g·A.
        let g = (dy.apply_op2_no_bwd(&b, &LinearBwdInput)? * f64::from(self.scale))?;
        let db = dy.apply_op2_no_bwd(&xa, &LinearBwdWeight)?;
        let da = g.apply_op2_no_bwd(&x2, &LinearBwdWeight)?;
        let dab = Tensor::cat(&[da.flatten_all()?, db.flatten_all()?], 0)?;
        let dx = match x.track_op() {
            true => {
                let through_w = dy.apply_op2_no_bwd(w, &LinearBwdInput)?;
                let through_a = g.apply_op2_no_bwd(&a, &LinearBwdInput)?;
                Some((through_w + through_a)?.reshape(x.shape())?)
            }
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(dy.apply_op2_no_bwd(&x2, &LinearBwdWeight)?),
            false => None,
        };
        Ok((dx, dw, Some(dab)))
    }
}

/// `x·Wᵀ + scale·(x·Aᵀ)·Bᵀ` for `x [..., in]`, `W [out, in]`, `A [r, in]`, `B [out, r]` →
/// `[..., out]`: a LoRA projection in one graph node on CPU f32, composed elsewhere.
pub fn lora_linear(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> CResult<Tensor> {
    if !fused(&[x, w, a, b]) {
        let xa = (composed::linear(x, a)? * scale)?;
        return composed::linear(x, w)? + composed::linear(&xa, b)?;
    }
    let r = a.dim(0)?;
    let ab = Tensor::cat(&[a.flatten_all()?, b.flatten_all()?], 0)?;
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &ab,
        LoraLinear {
            r,
            scale: scale as f32,
            keep: x.track_op() || ab.track_op(),
            saved: Mutex::new(None),
        },
    )
}

/// The vocabulary projection and label log-probs as one op: `log_softmax(x · wᵀ)[label]`.
/// The `[n, V]` logits never become a graph node, so candle never allocates, zero-fills and
/// sums their gradient (16 MB for the benchmark's batch, on one thread): the backward pass turns
/// the kept logits into that gradient in place and multiplies it straight into the gradients of
/// `x` and `w`.
struct HeadLabelLogprobs {
    v: usize,
    /// Keep the logits and each row's statistics for the backward pass.
    keep: bool,
    saved: Mutex<Option<HeadForward>>,
}

/// What the vocabulary projection computes.
struct HeadForward {
    /// `[n, V]`.
    logits: Vec<f32>,
    /// Each row's label log-prob.
    lp: Vec<f32>,
    /// Each row's `(max, ln Σ e^{x − max})`.
    stats: Vec<(f32, f32)>,
}

/// Logits, label log-probs and row statistics of `x [n, inp] · w[v, inp]ᵀ`.
fn head_forward(
    x: &[f32],
    w: &[f32],
    labels: &[u32],
    inp: usize,
    v: usize,
) -> CResult<HeadForward> {
    check_labels(labels, v)?;
    let n = labels.len();
    if x.len() != n * inp || w.len() != v * inp {
        candle_core::bail!(
            "vocabulary projection: {} inputs and {} weights for {n} labels of {inp} features",
            x.len(),
            w.len()
        )
    }
    let logits = project(x, w, n, inp, v)?;
    let mut lp = vec![0f32; n];
    let stats = kernels::label_logprobs(&logits, labels, v, &mut lp);
    Ok(HeadForward { logits, lp, stats })
}

impl CustomOp3 for HeadLabelLogprobs {
    fn name(&self) -> &'static str {
        "lethe-head-label-logprobs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let labels = u32s(s3, l3, self.name())?;
        let (_, inp, v) = linear_dims(l1, l2)?;
        let mut head = head_forward(x, w, labels, inp, v)?;
        let lp = std::mem::take(&mut head.lp);
        if self.keep {
            *state(&self.saved, "vocabulary projection")? = Some(head);
        }
        Ok((CpuStorage::F32(lp), l3.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        labels: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let label_ids = labels.flatten_all()?.to_vec1::<u32>()?;
        let dy = dy.flatten_all()?.to_vec1::<f32>()?;
        let inp = x.dim(D::Minus1)?;
        // Taken, not cloned: a second backward pass over the same graph recomputes them.
        let saved = state(&self.saved, "vocabulary projection")?.take();
        let HeadForward {
            logits: mut grad,
            stats,
            ..
        } = match saved {
            Some(s) => s,
            None => {
                let xs = x.flatten_all()?.to_vec1::<f32>()?;
                let ws = w.flatten_all()?.to_vec1::<f32>()?;
                head_forward(&xs, &ws, &label_ids, inp, self.v)?
            }
        };
        if stats.len() != label_ids.len() || dy.len() != label_ids.len() {
            candle_core::bail!("vocabulary projection backward: forward state does not match")
        }
        kernels::label_logprobs_bwd(&mut grad, &label_ids, &stats, &dy, self.v);
        let grad = Tensor::from_vec(grad, (label_ids.len(), self.v), x.device())?;
        let dx = grad
            .apply_op2_no_bwd(w, &LinearBwdInput)?
            .reshape(x.shape())?;
        // A frozen head (LoRA) gets no gradient.
        let dw = match w.track_op() {
            true => Some(grad.apply_op2_no_bwd(x, &LinearBwdWeight)?),
            false => None,
        };
        // Labels are integers: no gradient.
        Ok((Some(dx), dw, None))
    }
}

/// `log_softmax(x · wᵀ)[label]` for `x [..., in]`, `w [V, in]` and u32 labels `[...]` →
/// `[...]`: what [`label_logprobs`] of [`linear`] computes, without the logits in the graph.
pub fn head_label_logprobs(x: &Tensor, w: &Tensor, labels: &Tensor) -> CResult<Tensor> {
    if !fused(&[x, w]) || labels.dtype() != DType::U32 || !labels.device().is_cpu() {
        return composed::head_label_logprobs(x, w, labels);
    }
    let v = w.dim(0)?;
    if x.elem_count() / x.dim(D::Minus1)?.max(1) != labels.elem_count() {
        candle_core::bail!(
            "vocabulary projection: input {:?} for labels {:?}",
            x.dims(),
            labels.dims()
        )
    }
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &labels.contiguous()?,
        HeadLabelLogprobs {
            v,
            keep: x.track_op() || w.track_op(),
            saved: Mutex::new(None),
        },
    )
}

/// Batched `op(a) · op(b)` over the leading dimensions, `op` transposing the last two when
/// asked. Inputs may be strided views (a KV cache's narrowed buffer) as long as their last
/// dimension is contiguous; each batch's product is one `gemm` call, and the batches are split
/// over the threads when the product is large enough (candle's matmul forks and joins the pool
/// for every batch of every product instead).
struct Bmm {
    ta: bool,
    tb: bool,
}

/// Element offsets of each matrix of a `[.., r, c]` layout, and its row stride.
fn batch_offsets(l: &Layout, op: &str) -> CResult<(Vec<usize>, usize)> {
    let dims = l.dims();
    let stride = l.stride();
    let rank = dims.len();
    if rank < 2 || stride[rank - 1] != 1 && dims[rank - 1] > 1 {
        candle_core::bail!("{op}: last dimension of {dims:?} is not contiguous")
    }
    let mut offsets = vec![l.start_offset()];
    for d in 0..rank - 2 {
        let mut next = Vec::with_capacity(offsets.len() * dims[d]);
        for &o in &offsets {
            for i in 0..dims[d] {
                next.push(o + i * stride[d]);
            }
        }
        offsets = next;
    }
    Ok((offsets, stride[rank - 2]))
}

impl Bmm {
    /// `(rows, cols)` of `op(x)` for a stored `[.., r, c]`.
    fn op_dims(dims: &[usize], t: bool) -> (usize, usize) {
        let (r, c) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        if t { (c, r) } else { (r, c) }
    }

    fn view<'a>(
        data: &'a [f32],
        offset: usize,
        rs: usize,
        rows: usize,
        cols: usize,
        t: bool,
    ) -> MatRef<'a> {
        let data = data.get(offset..).unwrap_or(&[]);
        if t {
            MatRef {
                data,
                rows,
                cols,
                row_stride: 1,
                col_stride: rs,
            }
        } else {
            MatRef {
                data,
                rows,
                cols,
                row_stride: rs,
                col_stride: 1,
            }
        }
    }
}

impl CustomOp2 for Bmm {
    fn name(&self) -> &'static str {
        "lethe-bmm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (CpuStorage::F32(a), CpuStorage::F32(b)) = (s1, s2) else {
            candle_core::bail!("bmm: expected f32 inputs")
        };
        let (da, db) = (l1.dims(), l2.dims());
        if da.len() < 2 || da.len() != db.len() || da[..da.len() - 2] != db[..db.len() - 2] {
            candle_core::bail!("bmm: shapes {da:?} and {db:?}")
        }
        let (m, k) = Self::op_dims(da, self.ta);
        let (kb, n) = Self::op_dims(db, self.tb);
        if k != kb {
            candle_core::bail!("bmm: inner dimensions of {da:?} and {db:?} differ")
        }
        let (oa, rsa) = batch_offsets(l1, self.name())?;
        let (ob, rsb) = batch_offsets(l2, self.name())?;
        let mut out = vec![0f32; oa.len() * m * n];
        let one = |dst: &mut [f32], i: usize| -> CResult<()> {
            gemm::matmul(
                dst,
                Self::view(a, oa[i], rsa, m, k, self.ta),
                Self::view(b, ob[i], rsb, k, n, self.tb),
                false,
            )
            .map_err(gemm_err)
        };
        if m * n > 0 {
            if oa.len() * m * n * k >= 1 << 20 && oa.len() > 1 {
                use rayon::prelude::*;
                out.par_chunks_mut(m * n)
                    .enumerate()
                    .try_for_each(|(i, dst)| one(dst, i))?;
            } else {
                for (i, dst) in out.chunks_mut(m * n).enumerate() {
                    one(dst, i)?;
                }
            }
        }
        let mut dims = da[..da.len() - 2].to_vec();
        dims.extend([m, n]);
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dc: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        if self.ta {
            candle_core::bail!("bmm: no backward for a transposed left operand")
        }
        let dc = dc.contiguous()?;
        let no_t = Bmm {
            ta: false,
            tb: false,
        };
        let (da, db) = if self.tb {
            // c = a·bᵀ: da = dc·b, db = dcᵀ·a.
            (
                dc.apply_op2_no_bwd(b, &no_t)?,
                dc.apply_op2_no_bwd(
                    a,
                    &Bmm {
                        ta: true,
                        tb: false,
                    },
                )?,
            )
        } else {
            // c = a·b: da = dc·bᵀ, db = aᵀ·dc.
            (
                dc.apply_op2_no_bwd(
                    b,
                    &Bmm {
                        ta: false,
                        tb: true,
                    },
                )?,
                a.apply_op2_no_bwd(
                    &dc,
                    &Bmm {
                        ta: true,
                        tb: false,
                    },
                )?,
            )
        };
        Ok((Some(da), Some(db)))
    }
}

/// `t` itself when its last dimension is contiguous (a strided view such as a KV cache's
/// narrowed buffer is read in place), else a contiguous copy.
fn rows_contiguous(t: &Tensor) -> CResult<Tensor> {
    if t.stride().last() == Some(&1) || t.dims().last() == Some(&1) {
        Ok(t.clone())
    } else {
        t.contiguous()
    }
}

fn bmm(a: &Tensor, b: &Tensor, tb: bool) -> CResult<Tensor> {
    rows_contiguous(a)?.apply_op2(&rows_contiguous(b)?, Bmm { ta: false, tb })
}

/// Batched `a · bᵀ` over the leading dimensions: `[.., m, k] · [.., n, k]ᵀ → [.., m, n]`.
pub fn matmul_nt(a: &Tensor, b: &Tensor) -> CResult<Tensor> {
    if !fused(&[a, b]) {
        return a.matmul(&b.t()?);
    }
    bmm(a, b, true)
}

/// Batched `a · b` over the leading dimensions: `[.., m, k] · [.., k, n] → [.., m, n]`.
pub fn matmul(a: &Tensor, b: &Tensor) -> CResult<Tensor> {
    if !fused(&[a, b]) {
        return a.matmul(b);
    }
    bmm(a, b, false)
}

/// `Σ x²` of an f32 CPU tensor without a temporary (for gradient clipping).
struct SumSquares;

impl CustomOp1 for SumSquares {
    fn name(&self) -> &'static str {
        "lethe-sum-squares"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = f32s(s, l, self.name())?;
        let total: f64 = x
            .chunks(4096)
            .map(|c| f64::from(c.iter().map(|v| v * v).sum::<f32>()))
            .sum();
        Ok((CpuStorage::F64(vec![total]), Shape::from(())))
    }
}

/// `Σ x²` as f64.
pub fn sum_squares(x: &Tensor) -> CResult<f64> {
    if fused(&[x]) {
        return x
            .contiguous()?
            .apply_op1_no_bwd(&SumSquares)?
            .to_scalar::<f64>();
    }
    x.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn rand(rng: &mut ChaCha8Rng, shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// A second backward pass over the same graph gives the same gradient: ops that take their
    /// kept state in the first one recompute it.
    fn assert_second_backward_agrees(loss: &Tensor, var: &Var) {
        let grad = || {
            loss.backward()
                .unwrap()
                .get(var.as_tensor())
                .unwrap()
                .clone()
        };
        let (first, second) = (grad(), grad());
        assert_eq!(max_diff(&first, &second), 0.0);
    }

    /// Forward and gradients (of `Σ out · r` for a random `r`) of a fused op and its composed
    /// form agree on every differentiable input.
    fn check(
        inputs: &[Tensor],
        differentiable: &[bool],
        fused: impl Fn(&[Tensor]) -> CResult<Tensor>,
        composed: impl Fn(&[Tensor]) -> CResult<Tensor>,
        tol: f32,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut grads = Vec::new();
        let mut outs = Vec::new();
        for f in [&fused as &dyn Fn(&[Tensor]) -> CResult<Tensor>, &composed] {
            let vars: Vec<Option<Var>> = inputs
                .iter()
                .zip(differentiable)
                .map(|(t, &d)| d.then(|| Var::from_tensor(t).unwrap()))
                .collect();
            let args: Vec<Tensor> = inputs
                .iter()
                .zip(&vars)
                .map(|(t, v)| {
                    v.as_ref()
                        .map_or_else(|| t.clone(), |v| v.as_tensor().clone())
                })
                .collect();
            let out = f(&args).unwrap();
            let r = {
                let mut rng = ChaCha8Rng::seed_from_u64(7);
                rand(&mut rng, out.dims(), 1.0)
            };
            let loss = (&out * &r).unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            grads.push(
                vars.iter()
                    .map(|v| v.as_ref().map(|v| g.get(v.as_tensor()).unwrap().clone()))
                    .collect::<Vec<_>>(),
            );
            outs.push(out);
            let _ = rng.random::<u8>();
        }
        let d = max_diff(&outs[0], &outs[1]);
        assert!(d <= tol, "forward differs by {d}");
        for (i, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
            if let (Some(a), Some(b)) = (a, b) {
                let d = max_diff(a, b);
                assert!(d <= tol, "gradient of input {i} differs by {d}");
                let norm = a
                    .abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(norm > 0.0, "gradient of input {i} is zero");
            }
        }
    }

    #[test]
    fn rms_norm_matches_the_composed_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = rand(&mut rng, &[3, 5, 40], 2.0);
        let w = (rand(&mut rng, &[40], 0.5) + 1.0).unwrap();
        check(
            &[x, w],
            &[true, true],
            |a| rms_norm(&a[0], &a[1], 1e-5),
            |a| composed::rms_norm(&a[0], &a[1], 1e-5),
            2e-5,
        );
    }

    #[test]
    fn rope_matches_the_composed_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let x = rand(&mut rng, &[2, 7, 3, 16], 1.0);
        let angles = rand(&mut rng, &[2, 7, 16], 3.0);
        let cos = angles.cos().unwrap();
        let sin = angles.sin().unwrap();
        check(
            &[x, cos, sin],
            &[true, false, false],
            |a| rope(&a[0], &a[1], &a[2]),
            |a| composed::rope(&a[0], &a[1], &a[2]),
            1e-6,
        );
    }

    #[test]
    fn head_layout_ops_match_the_composed_forms() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (b, t, h, hd) = (2, 5, 3, 8);
        let x = rand(&mut rng, &[b * t, h * hd], 1.0);
        let angles = rand(&mut rng, &[b, t, hd], 3.0);
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        check(
            &[x.clone(), cos, sin],
            &[true, false, false],
            |a| rope_heads(&a[0], &a[1], &a[2], h),
            |a| composed::rope(&a[0].reshape((b, t, h, hd))?, &a[1], &a[2]),
            1e-6,
        );
        check(
            &[x],
            &[true],
            |a| split_heads(&a[0], b, t, h),
            |a| a[0].reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous(),
            0.0,
        );
        let y = rand(&mut rng, &[b, h, t, hd], 1.0);
        check(
            &[y],
            &[true],
            |a| merge_heads(&a[0]),
            |a| a[0].transpose(1, 2)?.reshape((b * t, h * hd)),
            0.0,
        );
    }

    #[test]
    fn attention_softmax_matches_the_composed_form_with_shared_and_per_row_masks() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let scores = rand(&mut rng, &[2, 3, 5, 9], 4.0);
        // A causal mask over the last 5 of 9 keys, shared by the batch…
        let mut m = vec![0f32; 5 * 9];
        for q in 0..5 {
            for k in (4 + q + 1)..9 {
                m[q * 9 + k] = -1e9;
            }
        }
        let shared = Tensor::from_vec(m.clone(), (1, 1, 5, 9), &Device::Cpu).unwrap();
        // …and one per row, the second row left-padded by 2 keys (a fully masked query row
        // included, which must come out uniform rather than NaN).
        let mut m2 = m.clone();
        for (q, row) in m2.chunks_mut(9).enumerate() {
            row[..2].iter_mut().for_each(|x| *x = -1e9);
            if q == 0 {
                row.iter_mut().for_each(|x| *x = -1e9);
            }
        }
        let per_row = Tensor::from_vec([m, m2].concat(), (2, 1, 5, 9), &Device::Cpu).unwrap();
        for mask in [shared, per_row] {
            check(
                &[scores.clone(), mask],
                &[true, false],
                |a| attn_softmax(&a[0], &a[1], 0.125),
                |a| composed::attn_softmax(&a[0], &a[1], 0.125),
                1e-6,
            );
        }
    }

    #[test]
    fn fused_attention_matches_the_differentiable_chain_in_values_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // 2 rows, 4 query heads over 2 key/value heads (grouped), head size 8; keys and values
        // are the first 7 of 10 positions of a cache buffer (a strided view), queries the last
        // 3 (t = 3) or 1 (decoding) of them, under a per-row mask with left padding.
        let (b, h, kv, hd, cap, s) = (2, 4, 2, 8, 10, 7);
        let kbuf = rand(&mut rng, &[b, kv, cap, hd], 1.0);
        let vbuf = rand(&mut rng, &[b, kv, cap, hd], 1.0);
        let (k, v) = (kbuf.narrow(2, 0, s).unwrap(), vbuf.narrow(2, 0, s).unwrap());
        assert!(!k.is_contiguous());
        for t in [3, 1] {
            let q = rand(&mut rng, &[b, h, t, hd], 2.0);
            let mut m = vec![0f32; b * t * s];
            for r in 0..b {
                for i in 0..t {
                    for j in 0..s {
                        if j > s - t + i || (r == 1 && j < 2) {
                            m[(r * t + i) * s + j] = -1e9;
                        }
                    }
                }
            }
            let mask = Tensor::from_vec(m, (b, 1, t, s), &Device::Cpu).unwrap();
            let fused = attention(&q, &k, &v, &mask, 0.3).unwrap();
            let chain = attention_chain(&q, &k, &v, &mask, 0.3).unwrap();
            assert_eq!(fused.dims(), &[b * t, h * hd]);
            assert!(max_diff(&fused, &chain) <= 1e-6, "t = {t}");
            // With a gradient to track: the op that keeps its weights, values and gradients.
            let (kc, vc) = (k.contiguous().unwrap(), v.contiguous().unwrap());
            check(
                &[q.clone(), kc.clone(), vc.clone(), mask.clone()],
                &[true, true, true, false],
                |a| attention(&a[0], &a[1], &a[2], &a[3], 0.3),
                |a| attention_chain(&a[0], &a[1], &a[2], &a[3], 0.3),
                2e-6,
            );
            // A second backward pass over the same graph recomputes the weights it took.
            let qv = Var::from_tensor(&q).unwrap();
            let out = attention(qv.as_tensor(), &kc, &vc, &mask, 0.3).unwrap();
            assert!(out.track_op());
            let loss = (&out * &out).unwrap().sum_all().unwrap();
            assert_second_backward_agrees(&loss, &qv);
        }
    }

    #[test]
    fn linear_matches_the_composed_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (rows, inp, out) in [(2 * 5, 24, 7), (300, 64, 160)] {
            let x = rand(&mut rng, &[rows / 2, 2, inp], 1.0);
            let w = rand(&mut rng, &[out, inp], 0.5);
            check(
                &[x, w],
                &[true, true],
                |a| linear(&a[0], &a[1]),
                |a| composed::linear(&a[0], &a[1]),
                2e-5,
            );
        }
    }

    #[test]
    fn batched_products_match_candle_matmul_also_on_strided_views() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let q = rand(&mut rng, &[2, 3, 5, 8], 1.0);
        let k = rand(&mut rng, &[2, 3, 7, 8], 1.0);
        let p = rand(&mut rng, &[2, 3, 5, 7], 1.0);
        let v = rand(&mut rng, &[2, 3, 7, 8], 1.0);
        check(
            &[q.clone(), k.clone()],
            &[true, true],
            |a| matmul_nt(&a[0], &a[1]),
            |a| a[0].matmul(&a[1].t()?),
            1e-5,
        );
        check(
            &[p.clone(), v.clone()],
            &[true, true],
            |a| matmul(&a[0], &a[1]),
            |a| a[0].matmul(&a[1]),
            1e-5,
        );
        // A KV cache's view: the first 4 of 7 positions of a larger buffer.
        let kc = k.narrow(2, 0, 4).unwrap();
        let vc = v.narrow(2, 0, 4).unwrap();
        assert!(!kc.is_contiguous());
        let s = matmul_nt(&q, &kc).unwrap();
        let want = q.matmul(&kc.contiguous().unwrap().t().unwrap()).unwrap();
        assert!(max_diff(&s, &want) < 1e-5);
        let pc = p.narrow(3, 0, 4).unwrap().contiguous().unwrap();
        let o = matmul(&pc, &vc).unwrap();
        let want = pc.matmul(&vc.contiguous().unwrap()).unwrap();
        assert!(max_diff(&o, &want) < 1e-5);
        // Large enough to split the batches over threads.
        let a = rand(&mut rng, &[4, 8, 128, 64], 1.0);
        let b = rand(&mut rng, &[4, 8, 128, 64], 1.0);
        let want = a.matmul(&b.t().unwrap()).unwrap();
        assert!(max_diff(&matmul_nt(&a, &b).unwrap(), &want) < 1e-4);
    }

    #[test]
    fn swiglu_matches_the_composed_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let g = rand(&mut rng, &[4, 33], 6.0);
        let u = rand(&mut rng, &[4, 33], 2.0);
        check(
            &[g, u],
            &[true, true],
            |a| swiglu(&a[0], &a[1]),
            |a| composed::swiglu(&a[0], &a[1]),
            2e-6,
        );
    }

    #[test]
    fn label_logprobs_match_the_composed_form_and_reject_bad_labels() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let logits = rand(&mut rng, &[2, 3, 50], 8.0);
        let labels: Vec<u32> = (0..6).map(|_| rng.random_range(0..50)).collect();
        let labels = Tensor::from_vec(labels, (2, 3), &Device::Cpu).unwrap();
        check(
            &[logits.clone(), labels],
            &[true, false],
            |a| label_logprobs(&a[0], &a[1]),
            |a| composed::label_logprobs(&a[0], &a[1]),
            2e-6,
        );
        let bad = Tensor::from_vec(vec![0u32, 1, 2, 3, 4, 50], (2, 3), &Device::Cpu).unwrap();
        let err = label_logprobs(&logits, &bad).unwrap_err().to_string();
        assert!(err.contains("label 50 at row 5"), "{err}");
    }

    #[test]
    fn swiglu_projection_matches_two_projections_then_swiglu() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = rand(&mut rng, &[2, 3, 16], 1.0);
        let wg = rand(&mut rng, &[24, 16], 0.5);
        let wu = rand(&mut rng, &[24, 16], 0.5);
        check(
            &[x.clone(), wg.clone(), wu.clone()],
            &[true, true, true],
            |a| swiglu_projection(&a[0], &a[1], &a[2]),
            |a| composed::swiglu_projection(&a[0], &a[1], &a[2]),
            2e-6,
        );
        // A second backward pass over the same graph recomputes what the first one took.
        let xv = Var::from_tensor(&x).unwrap();
        let loss = swiglu_projection(xv.as_tensor(), &wg, &wu)
            .unwrap()
            .sum_all()
            .unwrap();
        assert_second_backward_agrees(&loss, &xv);
        let bad = rand(&mut rng, &[20, 16], 0.5);
        let err = swiglu_projection(&x, &wg, &bad).unwrap_err().to_string();
        assert!(err.contains("gate [24, 16] and up [20, 16]"), "{err}");
    }

    #[test]
    fn head_label_logprobs_match_the_projection_then_label_logprobs() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let x = rand(&mut rng, &[2, 3, 16], 1.0);
        let w = rand(&mut rng, &[40, 16], 1.0);
        let labels: Vec<u32> = (0..6).map(|_| rng.random_range(0..40)).collect();
        let labels = Tensor::from_vec(labels, (2, 3), &Device::Cpu).unwrap();
        check(
            &[x.clone(), w.clone(), labels.clone()],
            &[true, true, false],
            |a| head_label_logprobs(&a[0], &a[1], &a[2]),
            |a| composed::head_label_logprobs(&a[0], &a[1], &a[2]),
            2e-5,
        );
        // With and without a gradient to track (logits kept or not) the values are the same.
        let wv = Var::from_tensor(&w).unwrap();
        let tracked = head_label_logprobs(&x, wv.as_tensor(), &labels).unwrap();
        assert!(tracked.track_op());
        let plain = head_label_logprobs(&x, &w, &labels).unwrap();
        assert!(!plain.track_op());
        assert_eq!(max_diff(&tracked, &plain), 0.0);
        // A second backward pass over the same graph recomputes what the first one took.
        let xv = Var::from_tensor(&x).unwrap();
        let loss = head_label_logprobs(xv.as_tensor(), &w, &labels)
            .unwrap()
            .sum_all()
            .unwrap();
        assert_second_backward_agrees(&loss, &xv);
        let bad = Tensor::from_vec(vec![0u32, 1, 2, 3, 4, 40], (2, 3), &Device::Cpu).unwrap();
        let err = head_label_logprobs(&x, &w, &bad).unwrap_err().to_string();
        assert!(err.contains("label 40 at row 5"), "{err}");
    }

    #[test]
    fn fused_gradients_agree_with_a_finite_difference() {
        // d/dx_i of Σ r · op(x), by central differences in f64 arithmetic over f32 ops.
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let x = rand(&mut rng, &[2, 24], 1.5);
        let w = (rand(&mut rng, &[24], 0.5) + 1.0).unwrap();
        let labels = Tensor::from_vec(vec![3u32, 17], 2, &Device::Cpu).unwrap();
        let r = rand(&mut rng, &[2, 24], 1.0);
        type Op<'a> = Box<dyn Fn(&Tensor) -> Tensor + 'a>;
        let cases: Vec<(&str, Op)> = vec![
            (
                "rms_norm",
                Box::new(|x: &Tensor| {
                    (rms_norm(x, &w, 1e-5).unwrap() * &r)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                }),
            ),
            (
                "swiglu",
                Box::new(|x: &Tensor| (swiglu(x, &r).unwrap() * &r).unwrap().sum_all().unwrap()),
            ),
            (
                "label_logprobs",
                Box::new(|x: &Tensor| label_logprobs(x, &labels).unwrap().sum_all().unwrap()),
            ),
        ];
        for (name, f) in cases {
            let var = Var::from_tensor(&x).unwrap();
            let g = f(var.as_tensor()).backward().unwrap();
            let analytic = g.get(var.as_tensor()).unwrap().flatten_all().unwrap();
            let analytic = analytic.to_vec1::<f32>().unwrap();
            let base = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for i in [0usize, 5, 17, 30, 47] {
                let eps = 1e-2f32;
                let at = |d: f32| {
                    let mut v = base.clone();
                    v[i] += d;
                    let t = Tensor::from_vec(v, x.shape(), &Device::Cpu).unwrap();
                    f64::from(f(&t).to_scalar::<f32>().unwrap())
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
                let err = (numeric - f64::from(analytic[i])).abs();
                assert!(
                    err < 2e-3 + 0.02 * numeric.abs(),
                    "{name}[{i}]: analytic {} vs numeric {numeric}",
                    analytic[i]
                );
            }
        }
    }

    #[test]
    fn large_inputs_take_the_parallel_path_and_still_agree() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let logits = rand(&mut rng, &[64, 1000], 5.0);
        let labels: Vec<u32> = (0..64).map(|_| rng.random_range(0..1000)).collect();
        let labels = Tensor::from_vec(labels, 64, &Device::Cpu).unwrap();
        check(
            &[logits, labels],
            &[true, false],
            |a| label_logprobs(&a[0], &a[1]),
            |a| composed::label_logprobs(&a[0], &a[1]),
            2e-6,
        );
        let x = rand(&mut rng, &[300, 256], 2.0);
        let w = (rand(&mut rng, &[256], 0.5) + 1.0).unwrap();
        check(
            &[x, w],
            &[true, true],
            |a| rms_norm(&a[0], &a[1], 1e-5),
            |a| composed::rms_norm(&a[0], &a[1], 1e-5),
            1e-4,
        );
    }
}
