//! Which instruction set the model's kernels run on this CPU, and the arithmetic peak they can
//! reach, for `lethe bench model` (a figure means little without them: the same build ran
//! twice as fast, relative to PyTorch, on one x86-64 CPU as on another).

use std::time::Instant;

use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// The instruction set of each family of kernels, as they are dispatched on this CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelIsa {
    /// `gemm`'s matrix-product micro-kernels (the bulk of training and prefill).
    pub products: &'static str,
    /// The dot-product path of few-row products (decoding), fixed at one width.
    pub dot_products: &'static str,
    /// The fused element-wise and attention kernels (`kernels.rs`).
    pub fused: &'static str,
}

/// Whether every named CPU feature is detected.
#[cfg(target_arch = "x86_64")]
macro_rules! detected {
    ($($feature:tt),+) => { $(std::arch::is_x86_feature_detected!($feature))&&+ };
}

/// The kernels' instruction sets on this CPU, by the rules their dispatchers follow: `gemm`
/// takes AVX-512 where `avx512f` is detected, else FMA; the fused kernels take the first of
/// their `multiversion` targets whose features are all detected.
pub fn kernel_isa() -> KernelIsa {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = detected!("avx2", "fma");
        let avx512f = detected!("avx512f");
        // multiversion's AVX-512 target: the Ice Lake extensions too, so that the first
        // AVX-512 CPUs (Skylake-SP, Cascade Lake), whose clock drops under 512-bit arithmetic,
        // keep the AVX2 versions.
        let multiversion_avx512 = avx2
            && detected!(
                "avx512bitalg",
                "avx512bw",
                "avx512cd",
                "avx512dq",
                "avx512f",
                "avx512ifma",
                "avx512vbmi",
                "avx512vbmi2",
                "avx512vl",
                "avx512vnni",
                "avx512vpopcntdq",
                "gfni",
                "vaes",
                "vpclmulqdq"
            );
        let products = if avx512f {
            "AVX-512 (16 lanes)"
        } else if detected!("fma") {
            "AVX2+FMA (8 lanes)"
        } else {
            "scalar"
        };
        let fused = if multiversion_avx512 {
            "AVX-512"
        } else if avx2 && avx512f {
            "AVX2+FMA (an AVX-512 CPU without the Ice Lake extensions)"
        } else if avx2 {
            "AVX2+FMA"
        } else {
            "baseline x86-64 (SSE2)"
        };
        let dot_products = if avx2 {
            "AVX2+FMA (8 lanes, on every such CPU)"
        } else {
            "baseline"
        };
        KernelIsa {
            products,
            dot_products,
            fused,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        KernelIsa {
            products: std::env::consts::ARCH,
            dot_products: std::env::consts::ARCH,
            fused: std::env::consts::ARCH,
        }
    }
}

/// The widest vectors the CPU has (pulp's choice), their lanes, and independent multiply-add
/// chains enough to fill the pipelines (latency 4–5 cycles × 2 ports).
struct FmaLoop {
    iterations: usize,
}

impl WithSimd for FmaLoop {
    type Output = (f32, usize);

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> (f32, usize) {
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        let a = s.splat_f32s(0.999_999);
        let b = s.splat_f32s(1e-7);
        let mut c = [s.splat_f32s(1.0); 12];
        for _ in 0..self.iterations {
            for acc in &mut c {
                *acc = s.mul_add_e_f32s(*acc, a, b);
            }
        }
        let sum = c.iter().fold(s.splat_f32s(0.0), |t, x| s.add_f32s(t, *x));
        (s.reduce_sum_f32s(sum), lanes)
    }
}

/// The arithmetic peak of the CPU's widest fused multiply-add, measured: every thread of the
/// current rayon pool runs independent multiply-add chains for about `millis` milliseconds.
/// Returns (GFLOP/s on all those threads, lanes per vector). A multiply-add is 2 FLOPs.
pub fn measured_fma_peak(millis: u64) -> (f64, usize) {
    // (GFLOP/s, lanes, seconds) of `iterations` rounds on every thread.
    let run = |iterations: usize| -> (f64, usize, f64) {
        let threads = rayon::current_num_threads().max(1);
        let start = Instant::now();
        let out: Vec<(f32, usize)> = (0..threads)
            .into_par_iter()
            .map(|_| pulp::Arch::new().dispatch(FmaLoop { iterations }))
            .collect();
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let lanes = out.first().map_or(1, |l| l.1);
        // Keep the sums observable so the loops are not optimised away.
        std::hint::black_box(out.iter().map(|l| l.0).sum::<f32>());
        let flops = (threads * iterations * 12 * lanes * 2) as f64;
        (flops / secs / 1e9, lanes, secs)
    };
    // Calibrate on a short run, then the best of three of the asked length.
    const PROBE: usize = 100_000;
    let (_, _, probe_secs) = run(PROBE);
    let scale = (millis.max(1) as f64 / 1e3 / probe_secs).max(1.0);
    let iterations = (PROBE as f64 * scale) as usize;
    let best = (0..3)
        .map(|_| run(iterations))
        .fold((0.0, 1, 0.0), |best, r| if r.0 > best.0 { r } else { best });
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_positive_and_the_isa_named() {
        let (peak, lanes) = measured_fma_peak(5);
        assert!(peak.is_finite() && peak > 0.0, "{peak}");
        assert!(lanes >= 1);
        let isa = kernel_isa();
        assert!(!isa.products.is_empty() && !isa.fused.is_empty());
    }
}
