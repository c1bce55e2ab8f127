//! The statistics of leaderboards: 95 % Student-t intervals of a mean, and the Wilcoxon
//! signed-rank test of paired differences, two-sided, as scipy's
//! `wilcoxon(d, zero_method="wilcox", correction=False, method="auto")` computes it (1.17):
//! zeros dropped; the exact null distribution for at most 50 differences without ties or
//! zeros; every sign assignment enumerated for at most 13 with ties or zeros; else the normal
//! approximation with the tie correction.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A mean with a symmetric confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanInterval {
    /// The mean.
    pub mean: f64,
    /// Half the width of the 95 % interval (`None` below two values).
    pub half_width: Option<f64>,
    /// Values the mean is over.
    pub n: usize,
}

/// The mean of `values` and the half width of its 95 % Student-t interval,
/// `t(0.975, n − 1) · s / √n` with `s` the sample standard deviation.
pub fn mean_interval(values: &[f64]) -> Option<MeanInterval> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some(MeanInterval {
            mean,
            half_width: None,
            n,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .ok()?
        .inverse_cdf(0.975);
    Some(MeanInterval {
        mean,
        half_width: Some(t * (var / n as f64).sqrt()),
        n,
    })
}

/// The result of a Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedRank {
    /// The smaller of the positive and negative rank sums (scipy's statistic).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Non-zero differences the test is over.
    pub n: usize,
}

/// Average ranks (1-based) of `|d|`, ties sharing their mean rank, and the tie groups' sizes.
fn ranks(abs: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..abs.len()).collect();
    order.sort_by(|&a, &b| abs[a].total_cmp(&abs[b]));
    let mut r = vec![0.0; abs.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && abs[order[j + 1]] == abs[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = avg;
        }
        if j > i {
            ties.push(j - i + 1);
        }
        i = j + 1;
    }
    (r, ties)
}

/// Two-sided exact p-value of rank sum `t` over `n` untied ranks: the null distribution of
/// the positive rank sum by counting sign assignments.
fn exact_p(t: f64, n: usize) -> f64 {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0f64; max + 1];
    counts[0] = 1.0;
    for k in 1..=n {
        for s in (k..=max).rev() {
            counts[s] += counts[s - k];
        }
    }
    let total = 2f64.powi(n as i32);
    // t is the smaller rank sum, so the lower tail; doubled, at most 1.
    let t = t.floor() as usize;
    let lower: f64 = counts[..=t.min(max)].iter().sum();
    (2.0 * lower / total).min(1.0)
}

/// Two-sided p-value by enumerating every sign assignment of the ranked differences (zeros
/// have no rank and change nothing): `2 · min(P(T ≤ t), P(T ≥ t))` of the positive rank sum.
fn sign_flip_p(r: &[f64], observed: f64) -> f64 {
    let n = r.len();
    let (mut le, mut ge) = (0u64, 0u64);
    let tol = 1e-9 * observed.abs().max(1.0);
    for mask in 0u32..(1u32 << n) {
        let t: f64 = (0..n).filter(|i| mask >> i & 1 == 1).map(|i| r[i]).sum();
        le += u64::from(t <= observed + tol);
        ge += u64::from(t >= observed - tol);
    }
    let total = (1u64 << n) as f64;
    (2.0 * le.min(ge) as f64 / total).min(1.0)
}

/// The Wilcoxon signed-rank test of paired differences `d`.
pub fn signed_rank(d: &[f64]) -> Option<SignedRank> {
    let finite: Vec<f64> = d.iter().copied().filter(|x| x.is_finite()).collect();
    let zeros = finite.iter().filter(|x| **x == 0.0).count();
    let nz: Vec<f64> = finite.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return None;
    }
    let abs: Vec<f64> = nz.iter().map(|x| x.abs()).collect();
    let (r, ties) = ranks(&abs);
    let plus: f64 = nz
        .iter()
        .zip(&r)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let minus: f64 = nz
        .iter()
        .zip(&r)
        .filter(|(x, _)| **x < 0.0)
        .map(|(_, r)| r)
        .sum();
    let t = plus.min(minus);
    let len = finite.len();
    let p_value = if len <= 50 && ties.is_empty() && zeros == 0 {
        exact_p(t, n)
    } else if len <= 13 {
        sign_flip_p(&r, plus)
    } else {
        let nf = n as f64;
        let mean = nf * (nf + 1.0) / 4.0;
        let tie: f64 = ties.iter().map(|&c| (c * c * c - c) as f64).sum();
        let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie / 48.0;
        if var <= 0.0 {
            1.0
        } else {
            let z = (t - mean) / var.sqrt();
            (2.0 * Normal::standard().cdf(-z.abs())).min(1.0)
        }
    };
    Some(SignedRank {
        statistic: t,
        p_value,
        n,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// scipy 1.14: `scipy.stats.t.ppf(0.975, df) * np.std(x, ddof=1) / np.sqrt(len(x))`.
    #[test]
    fn intervals_match_scipy() {
        let m = mean_interval(&[0.079, 0.254, 0.12]).unwrap();
        assert!((m.mean - 0.151).abs() < 1e-12);
        // df = 2: t = 4.302652729911275; s = 0.09153141537 → 0.2273797...
        let s = ((0.072f64.powi(2) + 0.103f64.powi(2) + 0.031f64.powi(2)) / 2.0).sqrt();
        let want = 4.302_652_729_911_275 * s / 3f64.sqrt();
        assert!(
            (m.half_width.unwrap() - want).abs() < 1e-9,
            "{m:?} vs {want}"
        );
        assert_eq!(mean_interval(&[1.0]).unwrap().half_width, None);
        assert!(mean_interval(&[]).is_none());
    }

    /// scipy 1.17.1: `wilcoxon(d, zero_method="wilcox", correction=False, method="auto")`.
    #[test]
    fn signed_rank_tests_match_scipy_in_each_of_its_regimes() {
        // Exact: 8 untied, no zeros. Statistic 5.0, p 0.078125.
        let d1 = [0.5, -1.25, 2.0, 3.5, -0.75, 1.5, 4.0, 2.5];
        let r = signed_rank(&d1).unwrap();
        assert_eq!(r.statistic, 5.0);
        assert!((r.p_value - 0.078_125).abs() < 1e-12, "{r:?}");
        // The sign of the differences does not matter to a two-sided test.
        let flipped: Vec<f64> = d1.iter().map(|x| -x).collect();
        assert_eq!(signed_rank(&flipped).unwrap().p_value, r.p_value);
        // Ties and zeros, 12 differences: every sign assignment. Statistic 14.0, p 0.19921875.
        let d2 = [
            0.1, 0.1, -0.2, 0.0, 0.3, 0.3, 0.3, -0.1, 0.4, 0.0, 0.2, -0.3,
        ];
        let r = signed_rank(&d2).unwrap();
        assert_eq!(r.statistic, 14.0);
        assert!((r.p_value - 0.199_218_75).abs() < 1e-12, "{r:?}");
        // 60 differences: the normal approximation. Statistic 731.0, p 0.17556577014041042.
        let d3 = [
            0.22573, -0.032105, 0.740423, 0.2049, -0.435669, 0.461595, 1.404, 1.047081, -0.603735,
            -1.165421, -0.523274, 0.141326, -2.225031, -0.118792, -1.145911, -0.632267, -0.444259,
            -0.2163, 0.511631, 1.142513, -0.028535, 1.466463, -0.565195, 0.45151, 1.00347,
            0.194012, -0.643499, -0.821725, -0.357726, 0.320195, -0.909618, -0.109176, -0.059225,
            0.640846, 0.314659, 0.455373, -0.553829, -0.029614, 0.883975, 1.593431, -1.159066,
            1.613924, 1.445875, 0.881311, 0.364456, -0.213923, 1.558021, 2.060258, 1.901635,
            1.415104, 0.45738, -1.108319, 0.095546, 0.756475, -1.188361, 0.495122, 0.529864,
            0.796043, -1.084118, -0.561703,
        ];
        let r = signed_rank(&d3).unwrap();
        assert_eq!(r.statistic, 731.0);
        assert!((r.p_value - 0.175_565_770_140_410_42).abs() < 1e-9, "{r:?}");
        assert!(signed_rank(&[0.0, 0.0]).is_none());
    }
}
