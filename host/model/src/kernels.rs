//! CPU kernels of the fused ops: plain loops over contiguous f32 slices, split over rows with
//! rayon (the pool the matrix products use, so the two never fight over the cores). The loops
//! are written so that the compiler vectorises them (no branches, lane accumulators for sums).
//!
//! Each kernel is compiled three times by `multiversion`, for AVX-512 (which `multiversion`
//! takes only with the Ice Lake extensions too, so Skylake-SP and Cascade Lake keep AVX2), for
//! AVX2 + FMA and for the baseline, and picks one at run time. The rayon closures that hold the
//! loops are compiled with the features of the function they are written in; a closure handed
//! to a dispatcher such as `pulp::Arch::dispatch` is not, and stayed SSE2 code (perf showed it:
//! scalar conversions and 4-wide arithmetic in every kernel). All versions compute the same
//! IEEE operations in the
//! same order (no fused multiply-add is introduced without `mul_add`; sums keep their eight
//! lane accumulators whatever the vector width): all versions give the same bits.
//!
//! Every kernel has a composed (candle) twin in `ops.rs`; the tests compare the two.

use multiversion::multiversion;
use rayon::prelude::*;

/// Below this many elements a kernel runs on the calling thread: splitting costs more.
const PAR_MIN: usize = 32 * 1024;

/// Run `f` on a thread of rayon's pool (directly when the caller is one). The parallel loops
/// and products inside `f` then fork and join by work stealing; called from outside the pool,
/// each of them would instead be injected into the pool while the caller sleeps on a latch — a
/// wake-up per product, a fifth of the time of a decoding step measured with perf.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

/// Rows per parallel task for rows of `len` elements: a few tasks per thread.
fn rows_per_task(rows: usize, len: usize) -> usize {
    if rows * len < PAR_MIN {
        return rows.max(1);
    }
    let threads = rayon::current_num_threads().max(1);
    rows.div_ceil(threads * 4).max(1)
}

/// `e^x` to about 2 ulp, branch-free so that it vectorises (Cephes' single-precision
/// polynomial). Exactly 0 below the smallest normal result; inputs above 88 give `e^88`
/// (inputs here are logits minus their maximum, ≤ 0, or negated activations).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting rounds to nearest
    let xc = x.clamp(-87.336_54, 88.0);
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let mut y = 1.987_569_1e-4f32;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 0.166_666_65;
    y = y * r + 0.5;
    y = y * z + r + 1.0;
    // `n` as an integer is the difference of the two floats' bit patterns (both lie in
    // [2^23, 2^24), where one unit is one ulp). `n as i32` would be a saturating conversion
    // with a NaN check, which the compiler does not vectorise.
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    if x < -87.336_54 { 0.0 } else { y * scale }
}

/// Sum with eight lane accumulators (vectorises; the order differs from a sequential sum by
/// rounding only).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for &x in rest {
        s += x;
    }
    s
}

/// `Σ a·b` with eight lane accumulators.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Maximum (NaN-free input assumed; a NaN is propagated as the result of later arithmetic).
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let mut m = acc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &x in rest {
        m = m.max(x);
    }
    m
}

/// RMSNorm forward: `y = (x · 1/√(mean(x²) + eps)) · w`, rows of `w.len()`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let d = w.len();
    let per = rows_per_task(x.len() / d.max(1), d);
    y.par_chunks_mut(per * d)
        .zip(x.par_chunks(per * d))
        .for_each(|(yc, xc)| {
            for (yr, xr) in yc.chunks_exact_mut(d).zip(xc.chunks_exact(d)) {
                let inv = 1.0 / (dot(xr, xr) / d as f32 + eps).sqrt();
                for ((o, &xv), &wv) in yr.iter_mut().zip(xr).zip(w) {
                    *o = (xv * inv) * wv;
                }
            }
        });
}

/// RMSNorm backward: writes `dx` (same shape as `x`) and returns `dw`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn rms_norm_bwd(x: &[f32], w: &[f32], dy: &[f32], eps: f32, dx: &mut [f32]) -> Vec<f32> {
    let d = w.len();
    // `dw` sums over rows. Both the rows per partial sum (`rows_per_task`) and rayon's
    // `reduce` tree depend on the pool, so the bits of `dw` did too; here the partials are
    // fixed (eight, as a two-thread pool made them) and summed in a fixed tree (the one rayon
    // builds for eight parts on two threads), whatever the pool.
    let rows = x.len() / d.max(1);
    let per = if rows * d < PAR_MIN {
        rows.max(1)
    } else {
        rows.div_ceil(REDUCE_PARTS).max(1)
    };
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(per * d)
        .zip(x.par_chunks(per * d).zip(dy.par_chunks(per * d)))
        .map(|(dxc, (xc, dyc))| {
            let mut dw = vec![0f32; d];
            let mut g = vec![0f32; d];
            let mut xhat = vec![0f32; d];
            for ((dxr, xr), dyr) in dxc
                .chunks_exact_mut(d)
                .zip(xc.chunks_exact(d))
                .zip(dyc.chunks_exact(d))
            {
                let inv = 1.0 / (dot(xr, xr) / d as f32 + eps).sqrt();
                for i in 0..d {
                    xhat[i] = xr[i] * inv;
                    g[i] = dyr[i] * w[i];
                    dw[i] += dyr[i] * xhat[i];
                }
                let c = dot(&g, &xhat) / d as f32;
                for i in 0..d {
                    dxr[i] = inv * (g[i] - xhat[i] * c);
                }
            }
            dw
        })
        .collect();
    sum_tree(&partials, d, 0)
}

/// Partial sums of a reduction over rows: fixed, so the sums do not depend on the pool.
const REDUCE_PARTS: usize = 8;

/// Sum `parts` elementwise as rayon's `reduce` does for `REDUCE_PARTS` parts on two threads:
/// halves (split at len / 2) for two levels, then in order from zero within each quarter.
fn sum_tree(parts: &[Vec<f32>], d: usize, depth: usize) -> Vec<f32> {
    if depth == 2 || parts.len() <= 1 {
        let mut acc = vec![0f32; d];
        for p in parts {
            for (a, b) in acc.iter_mut().zip(p) {
                *a += b;
            }
        }
        return acc;
    }
    let (l, r) = parts.split_at(parts.len() / 2);
    let mut a = sum_tree(l, d, depth + 1);
    let b = sum_tree(r, d, depth + 1);
    for (x, y) in a.iter_mut().zip(&b) {
        *x += y;
    }
    a
}

/// Shape of a rotary application: `x` is `[b, t, h, hd]`, the tables `[b, t, hd]`.
#[derive(Debug, Clone, Copy)]
pub struct RopeShape {
    /// Batch.
    pub b: usize,
    /// Positions.
    pub t: usize,
    /// Heads.
    pub h: usize,
    /// Head width (even).
    pub hd: usize,
}

/// Rotary embedding (Hugging Face's half-split layout) fused with the transpose to heads:
/// `x [b, t, h, hd]` → `y [b, h, t, hd]`, `y = x·cos + rotate_half(x)·sin`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn rope(x: &[f32], cos: &[f32], sin: &[f32], s: RopeShape, y: &mut [f32]) {
    let RopeShape { t, h, hd, .. } = s;
    let half = hd / 2;
    let per = rows_per_task(s.b * h, t * hd);
    y.par_chunks_mut(per * t * hd)
        .enumerate()
        .for_each(|(task, yc)| {
            for (j, yb) in yc.chunks_exact_mut(t * hd).enumerate() {
                let bh = task * per + j;
                let (bi, hi) = (bh / h, bh % h);
                for (ti, yr) in yb.chunks_exact_mut(hd).enumerate() {
                    let src = ((bi * t + ti) * h + hi) * hd;
                    let xr = &x[src..src + hd];
                    let tab = (bi * t + ti) * hd;
                    let (c, sn) = (&cos[tab..tab + hd], &sin[tab..tab + hd]);
                    let (x1, x2) = xr.split_at(half);
                    let (y1, y2) = yr.split_at_mut(half);
                    for i in 0..half {
                        y1[i] = x1[i] * c[i] + (-x2[i]) * sn[i];
                        y2[i] = x2[i] * c[half + i] + x1[i] * sn[half + i];
                    }
                }
            }
        });
}

/// Backward of [`rope`]: `dy [b, h, t, hd]` → `dx [b, t, h, hd]`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn rope_bwd(dy: &[f32], cos: &[f32], sin: &[f32], s: RopeShape, dx: &mut [f32]) {
    let RopeShape { t, h, hd, .. } = s;
    let half = hd / 2;
    let per = rows_per_task(s.b * t, h * hd);
    dx.par_chunks_mut(per * h * hd)
        .enumerate()
        .for_each(|(task, dc)| {
            for (j, drow) in dc.chunks_exact_mut(h * hd).enumerate() {
                let bt = task * per + j;
                let (bi, ti) = (bt / t, bt % t);
                let tab = bt * hd;
                let (c, sn) = (&cos[tab..tab + hd], &sin[tab..tab + hd]);
                for (hi, dr) in drow.chunks_exact_mut(hd).enumerate() {
                    let src = ((bi * h + hi) * t + ti) * hd;
                    let g = &dy[src..src + hd];
                    let (g1, g2) = g.split_at(half);
                    let (d1, d2) = dr.split_at_mut(half);
                    for i in 0..half {
                        d1[i] = g1[i] * c[i] + g2[i] * sn[half + i];
                        d2[i] = g2[i] * c[half + i] - g1[i] * sn[i];
                    }
                }
            }
        });
}

/// The transpose to heads without rotation: `x [b, t, h, hd]` → `y [b, h, t, hd]`.
pub fn split_heads(x: &[f32], s: RopeShape, y: &mut [f32]) {
    let RopeShape { t, h, hd, .. } = s;
    let per = rows_per_task(s.b * h, t * hd);
    y.par_chunks_mut(per * t * hd)
        .enumerate()
        .for_each(|(task, yc)| {
            for (j, yb) in yc.chunks_exact_mut(t * hd).enumerate() {
                let bh = task * per + j;
                let (bi, hi) = (bh / h, bh % h);
                for (ti, yr) in yb.chunks_exact_mut(hd).enumerate() {
                    let src = ((bi * t + ti) * h + hi) * hd;
                    yr.copy_from_slice(&x[src..src + hd]);
                }
            }
        });
}

/// The transpose back from heads: `x [b, h, t, hd]` → `y [b, t, h, hd]`.
pub fn merge_heads(x: &[f32], s: RopeShape, y: &mut [f32]) {
    let RopeShape { t, h, hd, .. } = s;
    let per = rows_per_task(s.b * t, h * hd);
    y.par_chunks_mut(per * h * hd)
        .enumerate()
        .for_each(|(task, yc)| {
            for (j, yrow) in yc.chunks_exact_mut(h * hd).enumerate() {
                let bt = task * per + j;
                let (bi, ti) = (bt / t, bt % t);
                for (hi, yr) in yrow.chunks_exact_mut(hd).enumerate() {
                    let src = ((bi * h + hi) * t + ti) * hd;
                    yr.copy_from_slice(&x[src..src + hd]);
                }
            }
        });
}

/// Masked, scaled softmax of attention scores: rows of `s` keys; `mask` holds `mask_rows`
/// rows that repeat every `rows_per_mask_batch` score rows' worth of heads:
/// score row `r` uses mask row `(r / (heads · t)) % mask_batches · t + r % t`.
#[derive(Debug, Clone, Copy)]
pub struct SoftmaxShape {
    /// Keys per row.
    pub s: usize,
    /// Query positions per head.
    pub t: usize,
    /// Heads per batch row.
    pub heads: usize,
    /// Batch rows of the mask (1: shared by the batch).
    pub mask_batches: usize,
}

impl SoftmaxShape {
    fn mask_row(&self, r: usize) -> usize {
        let b = r / (self.heads * self.t);
        let mb = if self.mask_batches == 1 { 0 } else { b };
        mb * self.t + r % self.t
    }
}

/// `p = softmax(scores · scale + mask)` over the last dimension.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn attn_softmax(scores: &[f32], mask: &[f32], scale: f32, sh: SoftmaxShape, p: &mut [f32]) {
    let s = sh.s;
    let rows = scores.len() / s.max(1);
    let per = rows_per_task(rows, s);
    p.par_chunks_mut(per * s)
        .zip(scores.par_chunks(per * s))
        .enumerate()
        .for_each(|(task, (pc, sc))| {
            for (j, (pr, sr)) in pc.chunks_exact_mut(s).zip(sc.chunks_exact(s)).enumerate() {
                let mr = sh.mask_row(task * per + j);
                let m = &mask[mr * s..mr * s + s];
                for ((o, &x), &mv) in pr.iter_mut().zip(sr).zip(m) {
                    *o = x * scale + mv;
                }
                let mx = max(pr);
                for o in pr.iter_mut() {
                    *o = exp(*o - mx);
                }
                let total = sum(pr);
                for o in pr.iter_mut() {
                    *o /= total;
                }
            }
        });
}

/// Shape of a fused attention: `b` batch rows, `heads` query heads sharing `kv_heads` key/value
/// heads, `t` queries attending over `s` keys, `hd` elements per head.
#[derive(Debug, Clone, Copy)]
pub struct AttnDims {
    /// Batch rows.
    pub b: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Queries per head.
    pub t: usize,
    /// Keys per head.
    pub s: usize,
    /// Elements per head.
    pub hd: usize,
    /// Batch rows of the mask (1: shared by the batch).
    pub mask_batches: usize,
}

/// Keys or values `[b, kv_heads, s, hd]` as a strided view (a KV cache's buffer, narrowed to
/// the filled positions): position `j` of head `g` of row `r` starts at
/// `offset + r·batch + g·head + j·pos` and its `hd` elements are contiguous.
#[derive(Debug, Clone, Copy)]
pub struct HeadsView<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Where row 0, head 0, position 0 starts.
    pub offset: usize,
    /// Distance between batch rows.
    pub batch: usize,
    /// Distance between heads.
    pub head: usize,
    /// Distance between positions.
    pub pos: usize,
}

impl<'a> HeadsView<'a> {
    /// One past the last element the view reaches for `d`, if it fits in `usize`.
    pub fn end(&self, d: &AttnDims) -> Option<usize> {
        if d.b == 0 || d.kv_heads == 0 || d.s == 0 || d.hd == 0 {
            return Some(self.offset);
        }
        let last = (d.b - 1)
            .checked_mul(self.batch)?
            .checked_add((d.kv_heads - 1).checked_mul(self.head)?)?
            .checked_add((d.s - 1).checked_mul(self.pos)?)?;
        self.offset.checked_add(last)?.checked_add(d.hd)
    }

    /// The elements from head `g` of batch row `r` on.
    fn head(&self, r: usize, g: usize) -> Result<&'a [f32], String> {
        let start = self.offset + r * self.batch + g * self.head;
        self.data
            .get(start..)
            .ok_or_else(|| "attention: a key/value view starts outside its data".to_string())
    }
}

/// A batch row of [`attention`]: its index, its output, where its weights are kept.
type AttnRow<'a> = (usize, &'a mut [f32], Option<&'a mut [f32]>);

/// A batch row of [`attention_bwd`]: its index and its `dq`, `dk`, `dv`.
type AttnGradRow<'a> = (usize, (&'a mut [f32], (&'a mut [f32], &'a mut [f32])));

/// `softmax(q·kᵀ · scale + mask) · v` for every head, written as `[b, t, heads·hd]` (heads
/// merged). `q` is `[b, heads, t, hd]`, `mask` is `[mask_batches, t, s]`; the caller checks
/// that the views fit their data. Batch rows run in parallel; each head's two products are the
/// ones the differentiable path makes (so the results agree with it), but the `[t, s]` scores
/// live in a per-task buffer instead of a `[b, heads, t, s]` tensor, and there is no separate
/// softmax or head-merge pass. With `probs` (`[b, heads, t, s]`) the attention weights are kept
/// there for [`attention_bwd`].
#[allow(clippy::too_many_arguments)]
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn attention(
    q: &[f32],
    k: HeadsView<'_>,
    v: HeadsView<'_>,
    mask: &[f32],
    scale: f32,
    d: AttnDims,
    out: &mut [f32],
    probs: Option<&mut [f32]>,
) -> Result<(), String> {
    let (hd, s, t) = (d.hd, d.s, d.t);
    let row_len = t * d.heads * hd;
    let group = (d.heads / d.kv_heads.max(1)).max(1);
    let body = |(r, o, mut kept): AttnRow<'_>| -> Result<(), String> {
        let mut tmp = if kept.is_none() {
            vec![0f32; t * s]
        } else {
            Vec::new()
        };
        let mut pv = vec![0f32; t * hd];
        for h in 0..d.heads {
            let p: &mut [f32] = match kept.as_deref_mut() {
                Some(kp) => &mut kp[h * t * s..(h + 1) * t * s],
                None => &mut tmp,
            };
            let g = h / group;
            let qo = (r * d.heads + h) * t * hd;
            let (kd, kpos) = (k.head(r, g)?, k.pos);
            let (vd, vpos) = (v.head(r, g)?, v.pos);
            // scores = q · kᵀ: keys are rows of length hd, `kpos` apart.
            crate::gemm::matmul(
                p,
                crate::gemm::MatRef::rows(&q[qo..qo + t * hd], t, hd),
                crate::gemm::MatRef {
                    data: kd,
                    rows: hd,
                    cols: s,
                    row_stride: 1,
                    col_stride: kpos,
                },
                false,
            )?;
            for (i, pr) in p.chunks_exact_mut(s).enumerate() {
                let mr = if d.mask_batches == 1 { i } else { r * t + i };
                let m = &mask[mr * s..mr * s + s];
                for (o, &mv) in pr.iter_mut().zip(m) {
                    *o = *o * scale + mv;
                }
                let mx = max(pr);
                for o in pr.iter_mut() {
                    *o = exp(*o - mx);
                }
                let total = sum(pr);
                for o in pr.iter_mut() {
                    *o /= total;
                }
            }
            crate::gemm::matmul(
                &mut pv,
                crate::gemm::MatRef::rows(p, t, s),
                crate::gemm::MatRef {
                    data: vd,
                    rows: s,
                    cols: hd,
                    row_stride: vpos,
                    col_stride: 1,
                },
                false,
            )?;
            for (i, row) in pv.chunks_exact(hd).enumerate() {
                o[(i * d.heads + h) * hd..][..hd].copy_from_slice(row);
            }
        }
        Ok(())
    };
    let rows: Vec<AttnRow<'_>> = match probs {
        Some(kp) => {
            if kp.len() != d.b * d.heads * t * s {
                return Err(format!("attention: {} kept weights for {d:?}", kp.len()));
            }
            out.chunks_mut(row_len)
                .zip(kp.chunks_mut(d.heads * t * s))
                .enumerate()
                .map(|(r, (o, p))| (r, o, Some(p)))
                .collect()
        }
        None => out
            .chunks_mut(row_len)
            .enumerate()
            .map(|(r, o)| (r, o, None))
            .collect(),
    };
    if d.b > 1 && d.b * d.heads * t * s * hd >= PAR_MIN {
        rows.into_par_iter().try_for_each(body)
    } else {
        rows.into_iter().try_for_each(body)
    }
}

/// Backward of [`attention`] over contiguous `q [b, heads, t, hd]`, `k`, `v` `[b, kv_heads,
/// s, hd]`, the kept weights `p [b, heads, t, s]` and the merged output's gradient
/// `dout [b·t, heads·hd]`. Per head: `dp = dout_h · vᵀ`, `ds = scale · p ⊙ (dp − Σ dp·p)`,
/// `dq = ds · k`, `dk += dsᵀ · q`, `dv += pᵀ · dout_h` (the key/value heads of a group sum
/// over its query heads). `dk` and `dv` must come zeroed. Batch rows run in parallel.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn attention_bwd(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    p: &[f32],
    dout: &[f32],
    scale: f32,
    d: AttnDims,
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) -> Result<(), String> {
    use crate::gemm::{MatRef, matmul};
    let (hd, s, t, heads) = (d.hd, d.s, d.t, d.heads);
    let group = (heads / d.kv_heads.max(1)).max(1);
    let (q_row, kv_row, p_row) = (heads * t * hd, d.kv_heads * s * hd, heads * t * s);
    if q.len() != d.b * q_row
        || k.len() != d.b * kv_row
        || v.len() != d.b * kv_row
        || p.len() != d.b * p_row
        || dout.len() != d.b * q_row
        || dq.len() != q.len()
        || dk.len() != k.len()
        || dv.len() != v.len()
    {
        return Err(format!("attention backward: buffers do not match {d:?}"));
    }
    let body = |(r, (dqr, (dkr, dvr))): AttnGradRow<'_>| {
        let mut ds = vec![0f32; t * s];
        for h in 0..heads {
            let g = h / group;
            let qh = &q[r * q_row + h * t * hd..][..t * hd];
            let kg = &k[r * kv_row + g * s * hd..][..s * hd];
            let vg = &v[r * kv_row + g * s * hd..][..s * hd];
            let ph = &p[r * p_row + h * t * s..][..t * s];
            // This head's slice of the merged gradient: rows `heads·hd` apart.
            let dout_h = MatRef {
                data: &dout[r * q_row + h * hd..],
                rows: t,
                cols: hd,
                row_stride: heads * hd,
                col_stride: 1,
            };
            matmul(&mut ds, dout_h, MatRef::transposed(vg, s, hd), false)?;
            for (dr, pr) in ds.chunks_exact_mut(s).zip(ph.chunks_exact(s)) {
                let c = dot(pr, dr);
                for (o, &pv) in dr.iter_mut().zip(pr) {
                    *o = scale * (pv * (*o - c));
                }
            }
            matmul(
                &mut dqr[h * t * hd..][..t * hd],
                MatRef::rows(&ds, t, s),
                MatRef::rows(kg, s, hd),
                false,
            )?;
            matmul(
                &mut dkr[g * s * hd..][..s * hd],
                MatRef::transposed(&ds, t, s),
                MatRef::rows(qh, t, hd),
                true,
            )?;
            matmul(
                &mut dvr[g * s * hd..][..s * hd],
                MatRef::transposed(ph, t, s),
                dout_h,
                true,
            )?;
        }
        Ok::<(), String>(())
    };
    let rows = dq
        .par_chunks_mut(q_row)
        .zip(dk.par_chunks_mut(kv_row).zip(dv.par_chunks_mut(kv_row)))
        .enumerate();
    if d.b > 1 && d.b * heads * t * s * hd >= PAR_MIN {
        rows.try_for_each(body)
    } else {
        rows.with_min_len(usize::MAX).try_for_each(body)
    }
}

/// Backward of [`attn_softmax`] with respect to the scores: `ds = scale · p ⊙ (dp − Σ dp·p)`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn attn_softmax_bwd(p: &[f32], dp: &[f32], scale: f32, s: usize, ds: &mut [f32]) {
    let rows = p.len() / s.max(1);
    let per = rows_per_task(rows, s);
    ds.par_chunks_mut(per * s)
        .zip(p.par_chunks(per * s).zip(dp.par_chunks(per * s)))
        .for_each(|(dc, (pc, gc))| {
            for ((dr, pr), gr) in dc
                .chunks_exact_mut(s)
                .zip(pc.chunks_exact(s))
                .zip(gc.chunks_exact(s))
            {
                let c = dot(pr, gr);
                for ((o, &pv), &gv) in dr.iter_mut().zip(pr).zip(gr) {
                    *o = scale * (pv * (gv - c));
                }
            }
        });
}

/// SwiGLU: `y = silu(g) · u` with `silu(g) = g / (1 + e^{-g})`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn swiglu(g: &[f32], u: &[f32], y: &mut [f32]) {
    let per = rows_per_task(g.len().div_ceil(1024), 1024) * 1024;
    y.par_chunks_mut(per)
        .zip(g.par_chunks(per).zip(u.par_chunks(per)))
        .for_each(|(yc, (gc, uc))| {
            for ((o, &gv), &uv) in yc.iter_mut().zip(gc).zip(uc) {
                *o = gv / (1.0 + exp(-gv)) * uv;
            }
        });
}

/// Backward of [`swiglu`]: `out = [dg, du]` (twice the length of `g`).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn swiglu_bwd(g: &[f32], u: &[f32], dy: &[f32], out: &mut [f32]) {
    let n = g.len();
    let (dg, du) = out.split_at_mut(n);
    let per = rows_per_task(n.div_ceil(1024), 1024) * 1024;
    dg.par_chunks_mut(per)
        .zip(du.par_chunks_mut(per))
        .zip(
            g.par_chunks(per)
                .zip(u.par_chunks(per))
                .zip(dy.par_chunks(per)),
        )
        .for_each(|((dgc, duc), ((gc, uc), yc))| {
            for i in 0..gc.len() {
                let gv = gc[i];
                let sig = 1.0 / (1.0 + exp(-gv));
                let silu = gv * sig;
                dgc[i] = yc[i] * uc[i] * (sig * (1.0 + gv * (1.0 - sig)));
                duc[i] = yc[i] * silu;
            }
        });
}

/// Log-probability of each row's label: `(x[label] − max) − ln Σ e^{x − max}`, rows of `v`.
/// Also returns each row's `(max, ln Σ)` for the backward pass. Labels must be `< v`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn label_logprobs(
    logits: &[f32],
    labels: &[u32],
    v: usize,
    out: &mut [f32],
) -> Vec<(f32, f32)> {
    let per = rows_per_task(labels.len(), v);
    out.par_chunks_mut(per)
        .zip(logits.par_chunks(per * v).zip(labels.par_chunks(per)))
        .flat_map_iter(|(oc, (xc, lc))| {
            let mut buf = vec![0f32; v];
            let mut stats = Vec::with_capacity(oc.len());
            for ((o, xr), &l) in oc.iter_mut().zip(xc.chunks_exact(v)).zip(lc) {
                let mx = max(xr);
                for (b, &x) in buf.iter_mut().zip(xr) {
                    *b = exp(x - mx);
                }
                let lse = sum(&buf).ln();
                *o = (xr[l as usize] - mx) - lse;
                stats.push((mx, lse));
            }
            stats
        })
        .collect()
}

/// Backward of [`label_logprobs`], in place: each row of logits becomes its gradient
/// `dy · (δ(v, label) − p(v))`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn label_logprobs_bwd(
    logits: &mut [f32],
    labels: &[u32],
    stats: &[(f32, f32)],
    dy: &[f32],
    v: usize,
) {
    let per = rows_per_task(labels.len(), v);
    logits
        .par_chunks_mut(per * v)
        .zip(
            labels
                .par_chunks(per)
                .zip(stats.par_chunks(per))
                .zip(dy.par_chunks(per)),
        )
        .for_each(|(xc, ((lc, sc), gc))| {
            for (((xr, &l), &(mx, lse)), &g) in xc.chunks_exact_mut(v).zip(lc).zip(sc).zip(gc) {
                for x in xr.iter_mut() {
                    *x = -g * exp((*x - mx) - lse);
                }
                xr[l as usize] += g;
            }
        });
}

/// Hyper-parameters of one AdamW step, as candle-nn's `AdamW` computes it.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the root of the second moment.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// `1 / (1 − beta1^t)`.
    pub scale_m: f32,
    /// `1 / (1 − beta2^t)`.
    pub scale_v: f32,
    /// Multiplies the gradient first (clipping).
    pub grad_scale: f32,
}

/// One AdamW step in place on `theta`, `m`, `v`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
pub fn adamw(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], a: AdamStep) {
    let per = rows_per_task(theta.len().div_ceil(4096), 4096) * 4096;
    let decay = 1.0 - a.lr * a.weight_decay;
    theta
        .par_chunks_mut(per)
        .zip(m.par_chunks_mut(per).zip(v.par_chunks_mut(per)))
        .zip(grad.par_chunks(per))
        .for_each(|((tc, (mc, vc)), gc)| {
            for i in 0..tc.len() {
                let g = gc[i] * a.grad_scale;
                let nm = mc[i] * a.beta1 + g * (1.0 - a.beta1);
                let nv = vc[i] * a.beta2 + (g * g) * (1.0 - a.beta2);
                mc[i] = nm;
                vc[i] = nv;
                let m_hat = nm * a.scale_m;
                let v_hat = nv * a.scale_v;
                tc[i] = tc[i] * decay - (m_hat / (v_hat.sqrt() + a.eps)) * a.lr;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_useful_range() {
        let mut worst = 0f64;
        let mut x = -100.0f32;
        while x < 80.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            if want > 1e-36 {
                worst = worst.max(((got - want) / want).abs());
            } else {
                assert!(got < 1e-36, "exp({x}) = {got}");
            }
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e9), 0.0);
    }

    /// The weight gradient of RMSNorm sums over rows: its bits must not depend on the pool's
    /// size (a user's 8-core machine against CI's 2 cores) or on work stealing.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn rms_norm_weight_gradient_is_the_same_on_every_pool() {
        let d = 96;
        let rows = 701; // 67 296 elements: the parallel path, with a short last part
        let x: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) * 1e-3)
            .collect();
        let dy: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 104_729 % 997) as f32 - 498.0) * 1e-3)
            .collect();
        let w: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 * 0.01).collect();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut dx = vec![0f32; rows * d];
                    let dw = rms_norm_bwd(&x, &w, &dy, 1e-6, &mut dx);
                    (dw.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), dx)
                })
        };
        let (one, dx1) = on(1);
        for threads in [2, 3, 8] {
            let (other, dx) = on(threads);
            assert_eq!(one, other, "{threads} threads");
            assert_eq!(dx1, dx);
        }
        // And it is the sum over rows (to rounding).
        let mut want = vec![0f64; d];
        for r in 0..rows {
            let xr = &x[r * d..(r + 1) * d];
            let inv = 1.0
                / (xr.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / d as f64 + 1e-6).sqrt();
            for i in 0..d {
                want[i] += f64::from(dy[r * d + i]) * f64::from(xr[i]) * inv;
            }
        }
        for (g, w) in one.iter().zip(&want) {
            assert!((f64::from(f32::from_bits(*g)) - w).abs() < 1e-3 * w.abs().max(1.0));
        }
    }

    #[test]
    fn reductions_match_sequential_sums() {
        let xs: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let seq: f32 = xs.iter().sum();
        assert!((sum(&xs) - seq).abs() < 1e-5);
        let d: f32 = xs.iter().map(|x| x * x).sum();
        assert!((dot(&xs, &xs) - d).abs() < 1e-5);
        let m = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&xs), m);
    }
}
