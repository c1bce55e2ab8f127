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

/// Products with fewer multiply-adds than this run on the calling thread.
const PAR_MIN_MACS: usize = 1 << 22;

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
    let parallelism = if threads > 1 && m * n * k >= PAR_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: `dst` is an exclusive borrow of exactly m·n elements written row-major
    // (row stride n, column stride 1); `a` and `b` are shared borrows (so they cannot alias
    // `dst`) whose every reachable element (rows−1)·row_stride + (cols−1)·col_stride was
    // checked above to lie inside their slices; all strides are non-negative and fit isize
    // because they index into allocated slices. `read_dst` is only set when `dst` holds
    // initialised values, which a `&mut [f32]` always does.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
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
    Ok(())
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
