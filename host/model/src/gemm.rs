//! A bounds-checked, safe front to the `gemm` crate's f32 matrix product (the kernel candle's
//! own CPU matmul calls), for the fused linear op.
//!
//! Why not candle's matmul: in candle 0.11 every CPU matmul asks `get_num_threads()`, which,
//! unless `RAYON_NUM_THREADS` is set, re-parses `/proc/cpuinfo` on each call (visible in
//! profiles of generation, where the products are small and many), and it always splits a
//! product over the thread pool, even an 8-row one whose split costs more than it saves.
//!
//! This is the one module of the crate that needs `unsafe`: `gemm::gemm` takes raw pointers
//! and strides. The wrapper checks that every element the strides can reach lies inside the
//! borrowed slices before calling it.
#![allow(unsafe_code)]

use gemm::Parallelism;
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// Products with fewer multiply-adds than this run on the calling thread.
const PAR_MIN_MACS: usize = 1 << 22;

/// Products with at most this many rows whose operands are both contiguous along the inner
/// dimension (`x · Wᵀ` with `W` row-major: every linear layer while decoding) take the
/// dot-product path. `gemm` packs `b` into panels before every product, which for a handful of
/// rows costs as much as the product itself (over a third of greedy generation's time went to
/// packing); dot products read each weight once, straight from where it lies.
const DOT_MAX_ROWS: usize = 8;

/// Dot-product-path products with at least this many multiply-adds are split over the threads
/// by columns (the vocabulary projection and the MLP while decoding; not the small attention
/// projections, whose fork and join would cost more than they save).
const DOT_PAR_MIN_MACS: usize = 1 << 18;

/// A read-only strided matrix view over a slice.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `rows × cols` matrix (so `cols × rows`).
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows: cols,
            cols: rows,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// Whether every reachable element is inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .zip((self.cols - 1).checked_mul(self.col_stride))
            .and_then(|(a, b)| a.checked_add(b));
        last.is_some_and(|l| l < self.data.len())
    }
}

/// `dst (+)= a · b` with `dst` row-major `a.rows × b.cols`; adds to `dst` when `accumulate`.
pub fn matmul(
    dst: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
) -> Result<(), String> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        return Err(format!(
            "matmul: inner dimensions {k} and {} differ",
            b.rows
        ));
    }
    if dst.len() != m * n {
        return Err(format!("matmul: destination of {} for {m}×{n}", dst.len()));
    }
    if !a.in_bounds() || !b.in_bounds() {
        return Err("matmul: a view reaches outside its data".into());
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    // Products whose operands are both contiguous along k and whose output is small or a
    // single row or column: `gemm` would sum each element across its SIMD lanes (its
    // horizontal kernels and matrix-vector paths), so the bits would depend on the vector width
    // it picked (8 lanes with AVX2, 16 with AVX-512). The dot-product path has a fixed width.
    let unit_k = a.col_stride == 1 && b.row_stride == 1;
    if unit_k && (m <= DOT_MAX_ROWS || m * n <= 256 || n == 1) {
        dot_product(dst, a, b, accumulate, threads);
        return Ok(());
    }
    let parallelism = if threads > 1 && m * n * k >= PAR_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // Fixed k-blocks: on its general path `gemm` sums the inner dimension in blocks whose
    // size it derives from the CPU's L1 cache (a target of at least 512, balanced over k:
    // 512 on a 32 KiB 8-way L1, 1024 on a 48 KiB 12-way one), adding each block's sum to
    // `dst` in turn, so a product with k > 512 rounded differently on different CPUs (the
    // weight gradients, where k = batch × tokens). `gemm` takes a product with k ≤ 512 as one
    // block on every CPU, so Lethe cuts k itself, as `gemm` does for a 512 target. Its path
    // for both sides ≤ 64 uses fixed blocks of 512 and is left as it is. Everything else is
    // cut — its vector paths have no blocks, so cutting them keeps them machine-independent
    // too. Within a block every kernel sums each element in k order, one fused multiply-add at
    // a time, so its AVX2 and AVX-512 kernels give the same bits.
    let small = m <= 64 && n <= 64;
    if k > K_BLOCK && !small {
        for (k0, kb) in k_blocks(k) {
            gemm_block(dst, a, b, k0, kb, accumulate || k0 > 0, parallelism);
        }
    } else {
        gemm_block(dst, a, b, 0, k, accumulate, parallelism);
    }
    Ok(())
}

/// The largest inner dimension `gemm` sums as one block on every CPU: the k-block Lethe
/// imposes so products are machine-independent.
pub const K_BLOCK: usize = 512;

/// `(start, len)` of the k-blocks of an inner dimension `k`: as few as `K_BLOCK` allows, of
/// equal length but the last — `gemm`'s own blocks for a 512 target
/// (`kc = ceil(k / ceil(k / 512))`), so a CPU with that target computes the same bits with or
/// without them.
pub fn k_blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let len = k.div_ceil(k.div_ceil(K_BLOCK).max(1)).max(1);
    (0..k).step_by(len).map(move |k0| (k0, len.min(k - k0)))
}

/// `dst (+)= a[:, k0..k0+kb] · b[k0..k0+kb, :]` on `gemm`; the caller has checked shapes and
/// bounds of the whole views.
fn gemm_block(
    dst: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    k0: usize,
    kb: usize,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let (m, n) = (a.rows, b.cols);
    // SAFETY: `dst` is an exclusive borrow of exactly m·n elements written row-major
    // (row stride n, column stride 1); `a` and `b` are shared borrows (so they cannot alias
    // `dst`) whose every reachable element (rows−1)·row_stride + (cols−1)·col_stride was
    // checked by the caller to lie inside their slices. The block starts k0 columns into `a`
    // and k0 rows into `b` and spans kb ≤ k − k0 of them, so it reaches a subset of those
    // elements; `wrapping_add` is never used, `add` stays inside the allocation. All strides
    // are non-negative and fit isize because they index into allocated slices. `read_dst` is
    // only set when `dst` holds initialised values, which a `&mut [f32]` always does.
    unsafe {
        gemm::gemm(
            m,
            n,
            kb,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr().add(k0 * a.col_stride),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr().add(k0 * b.row_stride),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `dst (+)= a · b` by dot products of `a`'s rows with `b`'s columns, both contiguous; the
/// caller has checked the shapes and bounds. Each element's sum runs in the same order whatever
/// the thread count, so results do not depend on it.
fn dot_product(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if threads < 2 || m * n * k < DOT_PAR_MIN_MACS {
        fixed_width(DotBlock {
            out: dst,
            a,
            b,
            cols: 0..n,
            accumulate,
        });
        return;
    }
    // Column ranges of whole tiles, two per thread; each fills its own buffer, copied after.
    let per = n.div_ceil(threads * 2).next_multiple_of(12);
    let parts: Vec<(usize, Vec<f32>)> = (0..n)
        .step_by(per)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|j0| {
            let cols = j0..(j0 + per).min(n);
            let mut out = vec![0f32; m * cols.len()];
            fixed_width(DotBlock {
                out: &mut out,
                a,
                b,
                cols,
                accumulate: false,
            });
            (j0, out)
        })
        .collect();
    for (j0, part) in parts {
        let w = part.len() / m;
        for (row, src) in dst.chunks_exact_mut(n).zip(part.chunks_exact(w)) {
            let d = &mut row[j0..j0 + w];
            if accumulate {
                d.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            } else {
                d.copy_from_slice(src);
            }
        }
    }
}

/// Run `op` on 8-lane vectors where the CPU has AVX2 and FMA, even where it has AVX-512:
/// the lane accumulators of a dot product fix its order of summation, so one width on every
/// such CPU keeps the results the same bits on all of them. (The dot-product path is bound by
/// reading the weights, not by arithmetic, so the wider vectors would buy little.)
pub(crate) fn fixed_width<Op: WithSimd>(op: Op) -> Op::Output {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if let Some(v3) = pulp::x86::V3::try_new() {
        return Simd::vectorize(v3, op);
    }
    pulp::Arch::new().dispatch(op)
}

/// Columns `cols` of `a · b` into `out`, a row-major `a.rows × cols.len()` block.
struct DotBlock<'a> {
    out: &'a mut [f32],
    a: MatRef<'a>,
    b: MatRef<'a>,
    cols: std::ops::Range<usize>,
    accumulate: bool,
}

impl WithSimd for DotBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Self {
            out,
            a,
            b,
            cols,
            accumulate,
        } = self;
        let (m, k, w) = (a.rows, a.cols, cols.len());
        let row = |i: usize| &a.data[i * a.row_stride..][..k];
        let col = |j: usize| &b.data[j * b.col_stride..][..k];
        let mut put = |i: usize, j: usize, v: f32| {
            let o = &mut out[i * w + j - cols.start];
            *o = if accumulate { *o + v } else { v };
        };
        // Rows in fours, columns in threes; then the last columns of those rows, then the last
        // rows (fewer than four) a column tile of four at a time.
        let full = m / 4 * 4;
        let mut j = cols.start;
        while j + 3 <= cols.end {
            let bs = [col(j), col(j + 1), col(j + 2)];
            for i in (0..full).step_by(4) {
                let t = tile_4x3(s, [row(i), row(i + 1), row(i + 2), row(i + 3)], bs);
                for (r, vals) in t.iter().enumerate() {
                    for (c, &v) in vals.iter().enumerate() {
                        put(i + r, j + c, v);
                    }
                }
            }
            j += 3;
        }
        for j in j..cols.end {
            for i in 0..full {
                put(i, j, dot(s, row(i), col(j)));
            }
        }
        for i in full..m {
            let mut j = cols.start;
            while j + 4 <= cols.end {
                let t = tile_1x4(s, row(i), [col(j), col(j + 1), col(j + 2), col(j + 3)]);
                for (c, v) in t.into_iter().enumerate() {
                    put(i, j + c, v);
                }
                j += 4;
            }
            for j in j..cols.end {
                put(i, j, dot(s, row(i), col(j)));
            }
        }
    }
}

/// `Σ x·y` of the scalar tails shorter than a vector.
#[inline(always)]
fn tail(x: &[f32], y: &[f32]) -> f32 {
    x.iter().zip(y).map(|(x, y)| x * y).sum()
}

// The tiles name each accumulator: kept in an array, they were stored back to the stack at
// every step (SROA runs before the loops over the array are unrolled), halving the speed.
// 4 rows × 3 columns: 12 accumulators, 3 column loads and 4 row loads per 12 multiply-adds
// (2 × 4 tiles needed 6 loads per 8; measured 12–16 % slower).

/// The 4 × 3 dot products of rows `a` with columns `b`, all of one length.
#[inline(always)]
fn tile_4x3<S: Simd>(s: S, a: [&[f32]; 4], b: [&[f32]; 3]) -> [[f32; 3]; 4] {
    let (x0, x0t) = S::as_simd_f32s(a[0]);
    let (x1, x1t) = S::as_simd_f32s(a[1]);
    let (x2, x2t) = S::as_simd_f32s(a[2]);
    let (x3, x3t) = S::as_simd_f32s(a[3]);
    let (y0, y0t) = S::as_simd_f32s(b[0]);
    let (y1, y1t) = S::as_simd_f32s(b[1]);
    let (y2, y2t) = S::as_simd_f32s(b[2]);
    let z = s.splat_f32s(0.0);
    let (mut c00, mut c01, mut c02) = (z, z, z);
    let (mut c10, mut c11, mut c12) = (z, z, z);
    let (mut c20, mut c21, mut c22) = (z, z, z);
    let (mut c30, mut c31, mut c32) = (z, z, z);
    let xs = x0.iter().zip(x1).zip(x2).zip(x3);
    let ys = y0.iter().zip(y1).zip(y2);
    for ((((a0, a1), a2), a3), ((b0, b1), b2)) in xs.zip(ys) {
        c00 = s.mul_add_e_f32s(*a0, *b0, c00);
        c01 = s.mul_add_e_f32s(*a0, *b1, c01);
        c02 = s.mul_add_e_f32s(*a0, *b2, c02);
        c10 = s.mul_add_e_f32s(*a1, *b0, c10);
        c11 = s.mul_add_e_f32s(*a1, *b1, c11);
        c12 = s.mul_add_e_f32s(*a1, *b2, c12);
        c20 = s.mul_add_e_f32s(*a2, *b0, c20);
        c21 = s.mul_add_e_f32s(*a2, *b1, c21);
        c22 = s.mul_add_e_f32s(*a2, *b2, c22);
        c30 = s.mul_add_e_f32s(*a3, *b0, c30);
        c31 = s.mul_add_e_f32s(*a3, *b1, c31);
        c32 = s.mul_add_e_f32s(*a3, *b2, c32);
    }
    let r = |c: S::f32s, x: &[f32], y: &[f32]| s.reduce_sum_f32s(c) + tail(x, y);
    [
        [r(c00, x0t, y0t), r(c01, x0t, y1t), r(c02, x0t, y2t)],
        [r(c10, x1t, y0t), r(c11, x1t, y1t), r(c12, x1t, y2t)],
        [r(c20, x2t, y0t), r(c21, x2t, y1t), r(c22, x2t, y2t)],
        [r(c30, x3t, y0t), r(c31, x3t, y1t), r(c32, x3t, y2t)],
    ]
}

/// The 4 dot products of row `a` with columns `b`, all of one length.
#[inline(always)]
fn tile_1x4<S: Simd>(s: S, a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    let (x0, x0t) = S::as_simd_f32s(a);
    let (y0, y0t) = S::as_simd_f32s(b[0]);
    let (y1, y1t) = S::as_simd_f32s(b[1]);
    let (y2, y2t) = S::as_simd_f32s(b[2]);
    let (y3, y3t) = S::as_simd_f32s(b[3]);
    let z = s.splat_f32s(0.0);
    let (mut c0, mut c1, mut c2, mut c3) = (z, z, z, z);
    let ys = y0.iter().zip(y1).zip(y2).zip(y3);
    for (a0, (((b0, b1), b2), b3)) in x0.iter().zip(ys) {
        c0 = s.mul_add_e_f32s(*a0, *b0, c0);
        c1 = s.mul_add_e_f32s(*a0, *b1, c1);
        c2 = s.mul_add_e_f32s(*a0, *b2, c2);
        c3 = s.mul_add_e_f32s(*a0, *b3, c3);
    }
    let r = |c: S::f32s, y: &[f32]| s.reduce_sum_f32s(c) + tail(x0t, y);
    [r(c0, y0t), r(c1, y1t), r(c2, y2t), r(c3, y3t)]
}

/// One dot product, with two accumulators to hide the multiply-add latency.
#[inline(always)]
fn dot<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let (x, xt) = S::as_simd_f32s(a);
    let (y, yt) = S::as_simd_f32s(b);
    let z = s.splat_f32s(0.0);
    let (mut c0, mut c1) = (z, z);
    let (xp, xr) = x.split_at(x.len() / 2 * 2);
    let (yp, yr) = y.split_at(y.len() / 2 * 2);
    for (a, b) in xp.chunks_exact(2).zip(yp.chunks_exact(2)) {
        c0 = s.mul_add_e_f32s(a[0], b[0], c0);
        c1 = s.mul_add_e_f32s(a[1], b[1], c1);
    }
    for (a, b) in xr.iter().zip(yr) {
        c0 = s.mul_add_e_f32s(*a, *b, c0);
    }
    s.reduce_sum_f32s(s.add_f32s(c0, c1)) + tail(xt, yt)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f32> {
        let mut out = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0f32;
                for p in 0..a.cols {
                    s += a.data[i * a.row_stride + p * a.col_stride]
                        * b.data[p * b.row_stride + j * b.col_stride];
                }
                out[i * b.cols + j] = s;
            }
        }
        out
    }

    #[test]
    fn products_of_plain_and_transposed_views_match_a_naive_loop() {
        let x: Vec<f32> = (0..7 * 5).map(|i| (i as f32 * 0.3).sin()).collect();
        let w: Vec<f32> = (0..9 * 5).map(|i| (i as f32 * 0.7).cos()).collect();
        // x [7, 5] · wᵀ [5, 9], and with accumulation on top of ones.
        let (a, b) = (MatRef::rows(&x, 7, 5), MatRef::transposed(&w, 9, 5));
        let want = naive(a, b);
        let mut got = vec![0f32; 63];
        matmul(&mut got, a, b, false).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5);
        }
        let mut acc = vec![1f32; 63];
        matmul(&mut acc, a, b, true).unwrap();
        for (g, w) in acc.iter().zip(&want) {
            assert!((g - (w + 1.0)).abs() < 1e-5);
        }
        // A large product takes the parallel path.
        let big: Vec<f32> = (0..256 * 300).map(|i| ((i % 97) as f32) * 0.01).collect();
        let (a, b) = (
            MatRef::rows(&big, 300, 256),
            MatRef::transposed(&big, 300, 256),
        );
        let mut got = vec![0f32; 300 * 300];
        matmul(&mut got, a, b, false).unwrap();
        let want = naive(a, b);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0));
        }
    }

    #[test]
    fn few_row_products_match_a_naive_loop_in_every_tile_shape() {
        // Rows 1..=8 cover full and partial row tiles; 1030 columns end in a partial column
        // tile; 139 inner elements leave a scalar tail; 8 × 1030 × 139 > 1 M multiply-adds
        // takes the column-split path on a multi-thread pool.
        let (n, k) = (1030, 139);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i % 89) as f32 - 44.0) * 0.01)
            .collect();
        for m in 1..=DOT_MAX_ROWS {
            // Rows with a stride longer than `k`, as in a strided view.
            let x: Vec<f32> = (0..m * (k + 3)).map(|i| (i as f32 * 0.37).sin()).collect();
            let a = MatRef {
                data: &x,
                rows: m,
                cols: k,
                row_stride: k + 3,
                col_stride: 1,
            };
            let b = MatRef::transposed(&w, n, k);
            let want = naive(a, b);
            let mut got = vec![0f32; m * n];
            matmul(&mut got, a, b, false).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{m} rows: {g} vs {w}"
                );
            }
            matmul(&mut got, a, b, true).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - 2.0 * w).abs() <= 1e-5 * w.abs().max(1.0));
            }
        }
    }

    /// `len` values in [-0.5, 0.5] from a multiplicative pattern (no two operands alike).
    fn operand(len: usize, mul: usize, modulus: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * mul % modulus) as f32 - (modulus / 2) as f32) * 1e-3)
            .collect()
    }

    /// gemm's micro-kernel order on one k-block: per output, a fused multiply-add chain from
    /// +0 in k order, then one rounding of `dst + block` (gemm-common's `microkernel.rs`).
    fn blocked_reference(a: MatRef<'_>, b: MatRef<'_>, blocks: &[(usize, usize)]) -> Vec<f32> {
        let mut out = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut d = 0f32;
                for &(k0, kb) in blocks {
                    let mut acc = 0f32;
                    for p in k0..k0 + kb {
                        let x = a.data[i * a.row_stride + p * a.col_stride];
                        let y = b.data[p * b.row_stride + j * b.col_stride];
                        acc = x.mul_add(y, acc);
                    }
                    d = if k0 == 0 { acc } else { d + acc };
                }
                out[i * b.cols + j] = d;
            }
        }
        out
    }

    #[test]
    fn k_blocks_cover_k_in_equal_blocks_of_at_most_512() {
        assert_eq!(k_blocks(512).collect::<Vec<_>>(), vec![(0, 512)]);
        assert_eq!(
            k_blocks(513).collect::<Vec<_>>(),
            vec![(0, 257), (257, 256)]
        );
        assert_eq!(
            k_blocks(1300).collect::<Vec<_>>(),
            vec![(0, 434), (434, 434), (868, 432)]
        );
        assert_eq!(k_blocks(7).collect::<Vec<_>>(), vec![(0, 7)]);
    }

    /// The machine independence of products: gemm chooses its own k-block from the CPU's L1
    /// cache (1024 on a 48 KiB 12-way L1, 512 on 32 KiB 8-way), so without Lethe's blocks the
    /// bits of a product with k > 512 depend on the CPU. With them every product equals, bit
    /// for bit, a scalar computation in one fixed order, whatever gemm would have chosen and
    /// however many threads run it: the scalar loop stands for every CPU at once.
    #[test]
    fn products_with_long_inner_dimensions_are_bit_identical_to_a_fixed_order() {
        // k = 1300 > 1024: gemm alone would cut it by its L1-derived block (one block of
        // 1300 → two of 650 on this machine, three of 434 on a 32 KiB L1). m = 70 > 64 takes
        // the general (L1-derived) path, not the small-shape one.
        let (m, n, k) = (70, 90, 1300);
        let (x, w) = (operand(m * k, 7919, 1013), operand(n * k, 104_729, 997));
        // a = xᵀ-style strided view (a weight gradient: k runs down the rows of both operands).
        let a = MatRef::transposed(&x, k, m);
        let b = MatRef::rows(&w, k, n);
        let blocks: Vec<_> = k_blocks(k).collect();
        let want = blocked_reference(a, b, &blocks);
        let mut one = vec![0f32; m * n];
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| matmul(&mut one, a, b, false).unwrap());
        let mut two = vec![0f32; m * n];
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| matmul(&mut two, a, b, false).unwrap());
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&want));
        assert_eq!(bits(&two), bits(&want));
        // A different blocking gives different bits: the order is what the test pins.
        let other = blocked_reference(a, b, &[(0, 1024), (1024, 276)]);
        assert_ne!(bits(&other), bits(&want));
    }

    /// Every shape `gemm` computes (its small-shape path, its general path in one block and
    /// in Lethe's blocks, strided and contiguous operands) equals the scalar order bit for bit,
    /// so its AVX2 and AVX-512 kernels, whichever the CPU runs, give the same bits.
    #[test]
    fn every_gemm_path_sums_in_the_scalar_order() {
        let shapes = [
            (40, 50, 700, true),    // both sides ≤ 64: gemm's own 512-blocks
            (300, 200, 256, false), // general path, one block, contiguous k
            (130, 70, 1030, true),  // general path, Lethe's blocks, strided k
            (33, 257, 96, false),   // odd widths: partial register tiles
        ];
        for (m, n, k, strided) in shapes {
            let (x, w) = (operand(m * k, 7919, 1013), operand(n * k, 104_729, 997));
            let (a, b) = if strided {
                (MatRef::transposed(&x, k, m), MatRef::rows(&w, k, n))
            } else {
                (MatRef::rows(&x, m, k), MatRef::transposed(&w, n, k))
            };
            let blocks: Vec<_> = if m <= 64 && n <= 64 {
                (0..k)
                    .step_by(512)
                    .map(|k0| (k0, 512.min(k - k0)))
                    .collect()
            } else {
                k_blocks(k).collect()
            };
            let want = blocked_reference(a, b, &blocks);
            let mut got = vec![0f32; m * n];
            matmul(&mut got, a, b, false).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}×{n}×{k}, strided {strided}");
        }
    }

    /// Products gemm would sum across its SIMD lanes (a small output, a single column) take
    /// the fixed-width dot path: the same bits as that path computes directly, whichever
    /// vector width gemm would have picked on this CPU.
    #[test]
    fn lane_summed_shapes_take_the_fixed_width_dot_path() {
        for (m, n, k) in [(16, 16, 700), (20, 12, 64), (300, 1, 513)] {
            let (x, w) = (operand(m * k, 7919, 1013), operand(n * k, 104_729, 997));
            let (a, b) = (MatRef::rows(&x, m, k), MatRef::transposed(&w, n, k));
            let mut got = vec![0f32; m * n];
            matmul(&mut got, a, b, false).unwrap();
            let mut want = vec![0f32; m * n];
            dot_product(&mut want, a, b, false, 1);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}×{n}×{k}");
        }
    }

    #[test]
    fn out_of_bounds_views_are_refused() {
        let x = vec![0f32; 10];
        let bad = MatRef::rows(&x, 4, 3);
        let ok = MatRef::rows(&x, 3, 3);
        let mut dst = vec![0f32; 12];
        assert!(matmul(&mut dst, bad, ok, false).is_err());
        let mut dst = vec![0f32; 5];
        assert!(matmul(&mut dst, ok, ok, false).is_err());
    }
}
