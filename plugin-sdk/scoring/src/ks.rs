//! The two-sample Kolmogorov-Smirnov test, two-sided, as scipy 1.17.1's
//! `scipy.stats.ks_2samp` computes it.
//!
//! The statistic is the largest distance between the two empirical distribution functions,
//! evaluated at every pooled value (ties counted as `searchsorted(side="right")` counts them).
//! Its p-value comes from one of two methods, as scipy's `method` argument chooses:
//!
//! - exact: the proportion of monotone lattice paths from (0, 0) to (n1, n2) that leave the band
//!   the statistic defines (Hodges 1958; the numerically stable recursion of Viehmann 2021 for
//!   unequal sizes, a Horner-like alternating sum for equal sizes);
//! - asymptotic: the one-sample two-sided Kolmogorov distribution `kstwo.sf(D, round(en))` with
//!   `en = n1 n2 / (n1 + n2)`, computed the way scipy's `kolmogn` does (Simard and L'Ecuyer 2011:
//!   Ruben-Gambino closed forms, the Durbin matrix of Marsaglia, Tsang and Wang, the Pomeranz
//!   recursion, the Pelz-Good expansion, and the one-sided Smirnov sum of scipy's special
//!   functions in double-double arithmetic).
//!
//! The branch points and the order of the floating-point work follow scipy's, so the p-values
//! agree with scipy's to within about 1e-12 relative (mostly to the last bit), not merely to the
//! accuracy of each approximation.

/// How the p-value is computed, as scipy's `method` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exact (with its fallback) when neither sample has more than 10 000 values, asymptotic
    /// otherwise.
    Auto,
    /// The exact distribution of the statistic; falls back to `Asymp` where scipy does (the
    /// least common multiple of the sizes would exceed a 32-bit integer, or the computation
    /// leaves [0, 1]).
    Exact,
    /// The one-sample two-sided Kolmogorov distribution at the effective sample size.
    Asymp,
}

/// The test's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The statistic D = max |F1 - F2|. In exact mode it is scipy's `h / lcm(n1, n2)`, the
    /// lattice value the p-value was computed for, which can differ from the raw difference in
    /// the last bit.
    pub statistic: f64,
    /// The two-sided p-value, in [0, 1]. NaN only where scipy's is NaN: the asymptotic method with
    /// one value in each sample, whose effective size rounds to 0.
    pub pvalue: f64,
    /// The mode that produced `pvalue` (`Auto` resolves to `Exact` or `Asymp`).
    pub mode: Mode,
}

/// Above this many values in either sample, `Mode::Auto` uses the asymptotic method (scipy's
/// `MAX_AUTO_N`).
const MAX_AUTO_N: usize = 10_000;

/// Two-sided two-sample KS test; None when a sample is empty or holds a non-finite value.
pub fn ks_2samp(x: &[f64], y: &[f64], mode: Mode) -> Option<Outcome> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let raw = statistic(x, y);
    let n1 = x.len() as u64;
    let n2 = y.len() as u64;
    let g = gcd(n1, n2);
    let (n1g, n2g) = (n1 / g, n2 / g);
    let mut mode = match mode {
        Mode::Auto if x.len().max(y.len()) <= MAX_AUTO_N => Mode::Exact,
        Mode::Auto => Mode::Asymp,
        // The exact method indexes lattice points by lcm(n1, n2); scipy gives up on it past
        // the 32-bit range (its comparison is a float division, reproduced as such).
        Mode::Exact if n1g as f64 >= f64::from(i32::MAX) / n2g as f64 => Mode::Asymp,
        other => other,
    };
    let mut d = raw;
    let mut pvalue = f64::NAN;
    if mode == Mode::Exact {
        let (lattice_d, prob) = exact_pvalue(n1, n2, g, raw);
        // scipy keeps the lattice statistic even when it then falls back to the asymptotic
        // method.
        d = lattice_d;
        match prob {
            Some(p) => pvalue = p,
            None => mode = Mode::Asymp,
        }
    }
    if mode == Mode::Asymp {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = m * n / (m + n);
        pvalue = kstwo_sf(d, en.round_ties_even());
    }
    Some(Outcome {
        statistic: d,
        pvalue: clip_prob(pvalue),
        mode,
    })
}

/// The two-sided statistic max |F1 - F2| over the pooled values.
///
/// The difference at each pooled value is `i / n1 - j / n2` in floating point, as scipy forms it,
/// and the larger of the positive and negative excursions wins (the positive one on a tie, which
/// leaves the value unchanged).
fn statistic(x: &[f64], y: &[f64]) -> f64 {
    let sort = |s: &[f64]| {
        let mut v = s.to_vec();
        // All values are finite here, so the total order agrees with the numeric one except
        // that -0.0 sorts before 0.0, which the `<=` walk below treats as equal anyway.
        v.sort_by(f64::total_cmp);
        v
    };
    let (xs, ys) = (sort(x), sort(y));
    let (n1, n2) = (xs.len() as f64, ys.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut max_diff = f64::NEG_INFINITY;
    let mut min_diff = f64::INFINITY;
    while i < xs.len() || j < ys.len() {
        let v = match (xs.get(i), ys.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        while xs.get(i).is_some_and(|&a| a <= v) {
            i += 1;
        }
        while ys.get(j).is_some_and(|&b| b <= v) {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let min_s = (-min_diff).clamp(0.0, 1.0);
    if min_s > max_diff { min_s } else { max_diff }
}

/// Greatest common divisor (both arguments positive).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Clips a probability to [0, 1], leaving NaN as it is (as `np.clip` does).
fn clip_prob(p: f64) -> f64 {
    if p.is_nan() { p } else { p.clamp(0.0, 1.0) }
}

// ---------------------------------------------------------------------------------------------
// Exact method
// ---------------------------------------------------------------------------------------------

/// The exact two-sided p-value, as scipy's `_attempt_exact_2kssamp`.
///
/// Returns the lattice statistic `h / lcm` and the p-value, or None where scipy gives up on the
/// exact computation (a result outside [0, 1]).
fn exact_pvalue(n1: u64, n2: u64, g: u64, d: f64) -> (f64, Option<f64>) {
    let lcm = (n1 / g) * n2;
    // The statistic is a multiple of 1/lcm up to rounding; h is that multiple.
    let h = (d * lcm as f64).round_ties_even() as i64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (d, Some(1.0));
    }
    let prob = if n1 == n2 {
        prob_outside_square(n1 as i64, h)
    } else {
        outer_prob_inside(n1 as i64, n2 as i64, g as i64, h)
    };
    if (0.0..=1.0).contains(&prob) {
        (d, Some(prob))
    } else {
        (d, None)
    }
}

/// Pr(D_{n,n} >= h/n) for two samples of size n, as scipy's `_compute_prob_outside_square`.
///
/// The reflection principle gives `2 * sum_k (-1)^(k-1) C(2n, n - k h) / C(2n, n)`, which cancels
/// badly; dividing each term by its predecessor turns it into the nested product
/// `2 A0 (1 - A1 (1 - A2 (1 - ...)))`, each `Ai` a product of h ratios below one.
fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// The proportion of lattice paths from (0, 0) to (m, n) that do not stay strictly inside
/// |x/m - y/n| < h / lcm(m, n), as scipy's `_compute_outer_prob_inside_method`.
///
/// Each entry holds the probability that a random path to that point has already left the band
/// (Viehmann's recursion for 1 - p), so every update is a convex combination of numbers in
/// [0, 1]: no overflow, no cancellation. Only the band's window of one column is kept; points
/// outside the band hold 1 (every path through them has left it).
fn outer_prob_inside(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1).max(1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        // scipy floors and ceils a float quotient; for integers below 2^53 that equals the
        // integer floor and ceiling used here.
        minj = (floor_div(ng * i - h, mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            // Beyond the stored window every point is outside the band.
            let prev = a
                .get((jj + minj - lastminj) as usize)
                .copied()
                .unwrap_or(1.0);
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // The window shrank: the points it no longer covers are outside the band.
            let end = (lastlen as usize).min(len_a);
            for v in a.iter_mut().take(end).skip(curlen as usize) {
                *v = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize).copied().unwrap_or(1.0)
}

/// Floor of a / b for b > 0.
fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

/// Ceiling of a / b for b > 0.
fn ceil_div(a: i64, b: i64) -> i64 {
    -(-a).div_euclid(b)
}

// ---------------------------------------------------------------------------------------------
// Asymptotic method: the one-sample two-sided Kolmogorov distribution (scipy's `kolmogn`)
// ---------------------------------------------------------------------------------------------

/// Powers of two the matrix and recursion algorithms rescale by to stay within range.
const E128: i32 = 128;
/// 2^128.
const EP128: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;
/// 2^-128.
const EM128: f64 = 1.0 / EP128;

/// `scipy.stats.kstwo.sf(x, n)`: Pr(D_n >= x) for the two-sided one-sample statistic.
///
/// `n` is the (already rounded) effective sample size; scipy's distribution is undefined for
/// n < 1, giving NaN.
fn kstwo_sf(x: f64, n: f64) -> f64 {
    if x.is_nan() || n.is_nan() || n < 1.0 || n != n.round() {
        return f64::NAN;
    }
    // Outside the open support (1/(2n), 1) the distribution object answers without kolmogn.
    if x <= 0.5 / n {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    kolmogn_sf(n as i64, x)
}

/// scipy's `_kolmogn(n, x, cdf=False)`: chooses among exact formulas, exact algorithms and
/// approximations by n and n x^2 as Simard and L'Ecuyer recommend.
fn kolmogn_sf(n: i64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: for 1/(2n) <= x <= 1/n the CDF is n!/n^n (2t - 1)^n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let mut p = 1.0;
            for i in 1..=n {
                p *= i as f64 * (1.0 / nf) * (2.0 * t - 1.0);
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip_prob(1.0 - prob);
    }
    if t >= nf - 1.0 {
        // Ruben-Gambino: for x >= 1 - 1/n the SF is 2 (1 - x)^n.
        return clip_prob(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        // The two one-sided excursions cannot both exceed 1/2: the SF is twice Smirnov's.
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return clip_prob(1.0 - kolmogn_dmtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip_prob(1.0 - kolmogn_pomeranz_cdf(n, x));
        }
        // Miller's approximation: twice the one-sided tail.
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    let cdfprob = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x)
    } else {
        kolmogn_pelz_good_cdf(n, x)
    };
    clip_prob(1.0 - cdfprob)
}

/// log(n! / n^n) by Stirling's series, with the n log n removed up front so it does not cancel.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // B_{2j} / (2j (2j - 1)) for j = 8, ..., 1, highest power first.
    const STIRLING_COEFFS: [f64; 8] = [
        -0.029550653594771242,
        0.00641025641025641,
        -0.0019175269175269176,
        0.0008417508417508417,
        -0.0005952380952380953,
        0.0007936507936507937,
        -0.002777777777777778,
        0.08333333333333333,
    ];
    let rn = 1.0 / n;
    let z = rn / n;
    let poly = STIRLING_COEFFS.iter().fold(0.0, |acc, &c| acc * z + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * poly
}

/// Pr(D_n <= d) by Durbin's matrix algorithm as Marsaglia, Tsang and Wang compute it (scipy's
/// `_kolmogn_DMTW`): the k-th diagonal entry of H^n times n!/n^n, with d = (k - h)/n.
///
/// Powers of H are rescaled by 2^128 whenever they grow past it and the exponent kept apart, as
/// scipy does; scipy's scaled matrices are extended precision, so the running power is rescaled
/// here as well to stay within double range.
fn kolmogn_dmtw_cdf(n: i64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    // v[j] = (1 - h^(j+1)) / (j+1)!, w[j] = 1/j!.
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut hpwr = vec![0.0; m * m];
    for r in 0..m {
        hpwr[r * m + r] = 1.0;
    }
    let diag = (k - 1) * m + (k - 1);
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut hexpnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
            if hpwr[diag].abs() > EP128 {
                hpwr.iter_mut().for_each(|e| *e /= EP128);
                expnt += i64::from(E128);
            }
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[diag].abs() > EP128 {
            hm.iter_mut().for_each(|e| *e /= EP128);
            hexpnt += i64::from(E128);
        }
        nn /= 2;
    }
    let mut p = hpwr[diag];
    // Multiply by n!/n^n, rescaling before it underflows.
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= i64::from(E128);
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip_prob(p)
}

/// The product of two m x m row-major matrices.
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for r in 0..m {
        for t in 0..m {
            let art = a[r * m + t];
            if art == 0.0 {
                continue;
            }
            for col in 0..m {
                c[r * m + col] += art * b[t * m + col];
            }
        }
    }
    c
}

/// The interval of non-zero entries of row i of the Pomeranz recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Pr(D_n <= x) by the Pomeranz recursion (scipy's `_kolmogn_Pomeranz`).
///
/// Each row is the previous row convolved with (unnormalised) Poisson probabilities; only two
/// rows, and only their few non-zero entries, are kept, rescaled by 2^128 against underflow.
fn kolmogn_pomeranz_cdf(n: i64, x: f64) -> f64 {
    let nf = n as f64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    // (g/n)^m/m!, (2g/n)^m/m!, ((1-2g)/n)^m/m!.
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i64 = 0;
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for mm in 1..npwrs {
        gpower[mm] = gpower[mm - 1] * g_over_n / mm as f64;
        twogpower[mm] = twogpower[mm - 1] * two_g_over_n / mm as f64;
        onem2gpower[mm] = onem2gpower[mm - 1] * one_minus_two_g_over_n / mm as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let j2;
        (j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            // The slice of the previous row, clipped to its storage as numpy slicing clips.
            let start = (k1 - v0s).max(0) as usize;
            let end = ((k1 - v0s + ln2).max(0) as usize).min(npwrs);
            let src = v0.get(start..end).unwrap_or(&[]);
            let ker = pwrs.get(..(ln2 as usize).min(npwrs)).unwrap_or(&[]);
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            for out in 0..conv_len.max(0) {
                let idx = conv_start + out;
                if idx < 0 {
                    continue;
                }
                let idx = idx as usize;
                // Full convolution entry idx: sum over a + b = idx.
                let mut s = 0.0;
                let lo = idx.saturating_sub(ker.len().saturating_sub(1));
                for (a_i, &sv) in src.iter().enumerate().take(idx + 1).skip(lo) {
                    s += sv * ker[idx - a_i];
                }
                if let Some(slot) = v1.get_mut(out as usize) {
                    *slot = s;
                }
            }
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < EM128 {
                v1.iter_mut().for_each(|e| *e *= EP128);
                expnt -= i64::from(E128);
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1.get((n - v1s).max(0) as usize).copied().unwrap_or(0.0);
    // Multiply by n!, rescaling before it overflows.
    for mm in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += i64::from(E128);
        }
        ans *= mm as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip_prob(ans)
}

/// The Pelz-Good approximation to Pr(D_n <= x) (scipy's `_kolmogn_PelzGood`): the Li-Chien /
/// Korolyuk expansion K0 + K1/sqrt(n) + K2/n + K3/n^1.5 in z = x sqrt(n), each term transformed
/// with Jacobi theta identities into series that converge fast for small z.
fn kolmogn_pelz_good_cdf(n: i64, x: f64) -> f64 {
    use std::f64::consts::PI;
    const MIN_LOG: f64 = -708.0;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = (2.0 * PI).sqrt();
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z * z, z.powf(3.0), z.powf(4.0), z.powf(6.0));
    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);
    let mut kk = [0.0f64; 4];
    // Horner in q^8 over the odd integers m = 2k - 1 of sum c_m q^(m^2).
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (msquared, mfour, msix) = (m * m, m.powf(4.0), m.powf(6.0));
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (acc, c) in kk.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let divisors = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (acc, dv) in kk.iter_mut().zip(divisors) {
        *acc = *acc * q * sqrt2pi / dv;
    }
    // The remaining sums over all integers k, for K2 and K3; no cancellation to fear.
    let q = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for k in (1..=maxk).rev() {
        let ksq = (k * k) as f64;
        let kspi = PI * k as f64;
        let qp = q.powf(ksq);
        k2extra += ksq * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    kk[2] += k2extra * (pi2 * sqrt2pi / (-36.0 * zthree));
    kk[3] += k3extra * (pi2 * sqrt2pi / (216.0 * zsix));
    let mut sum = 0.0;
    for (i, acc) in kk.iter().enumerate() {
        sum += acc / nf.powf(i as f64 / 2.0);
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// The one-sided Smirnov distribution (scipy.special.smirnov), in double-double arithmetic
// ---------------------------------------------------------------------------------------------

/// `scipy.special.smirnov(n, x)`: Pr(D_n^+ >= x) for the one-sided one-sample statistic.
///
/// The Birnbaum-Tingey sum of `C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1)`, in double-double so
/// that the bases, raised to powers up to n, keep their accuracy; binomials and powers carry a
/// separate binary exponent because they overflow doubles long before the terms do.
fn smirnov_sf(n: i64, x: f64) -> f64 {
    const MINLOG: f64 = -745.1332191019412;
    const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
    const SM_UPPER_MAX_TERMS: i64 = 3;
    const SM_UPPERSUM_MIN_N: i64 = 10;
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    // floor(n x) and the remainder, exactly.
    let nx_d = Dd::from(x) * nf;
    let nxfloor_d = nx_d.floor();
    let mut alpha = (nx_d - nxfloor_d).hi;
    let mut nxfl = nxfloor_d.hi as i64;
    if alpha == 1.0 {
        nxfl += 1;
        alpha = 0.0;
    }
    let mut n1mxfl = n - nxfl - if alpha == 0.0 { 0 } else { 1 };
    let mut n1mxceil = n - nxfl;
    // With alpha 0 the last term belongs to neither the lower nor the upper sum.
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        // x <= 1/n: the CDF is x (1 + x)^(n-1).
        let cdf = x * pow_dd(Dd::from(1.0) + x, n - 1).hi;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nxfl >= n - 1 {
        // x >= 1 - 1/n: the SF is (1 - x)^n.
        return pow_dd(Dd::from(1.0) + (-x), n).hi.clamp(0.0, 1.0);
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        // Too many terms: p ~ exp(-(6nx + 1)^2 / 18n).
        let logp = -(6.0 * nf * x + 1.0).powf(2.0) / 18.0 / nf;
        // Whichever of SF and CDF is the smaller is computed directly.
        let sf = if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            let cdf = -logp.exp_m1();
            1.0 - cdf
        };
        return sf.clamp(0.0, 1.0);
    }
    // The upper sum (v from n down) has few terms for small x but alternates in effect; use it
    // only where scipy does.
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper = (n_upper_terms <= 1 && x < 0.5)
        || (n >= SM_UPPERSUM_MIN_N && n_upper_terms <= SM_UPPER_MAX_TERMS && x <= 0.5 / nf.sqrt());
    let (start, step, n_terms) = if use_upper {
        (n, -1i64, n - n1mxceil + 1)
    } else {
        (0, 1i64, n1mxfl + 1)
    };
    let vmid = n / 2;
    let mut cman = Dd::from(1.0);
    let mut cexpt: i64 = 0;
    let mut aj = if use_upper {
        pow4_dd(1.0, x, 1.0, 0.0, n - 1)
    } else {
        pow4_dd(1.0, -x, 1.0, 0.0, n) / x
    };
    let mut aj_sum = Dd::from(0.0) + aj;
    update_binomial(&mut cman, &mut cexpt, n, 0);
    for j in 1..n_terms {
        let v = start + j * step;
        aj = smirnov_term(n, x, v, cman, cexpt);
        if aj.hi.is_finite() && aj != Dd::from(0.0) {
            aj_sum = aj_sum + aj;
        }
        // Stop once the remaining terms cannot move the sum.
        if aj != Dd::from(0.0) {
            if 4.0 * (n_terms - j) as f64 * aj.hi.abs() < f64::EPSILON * aj_sum.hi
                && j != n_terms - 1
            {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
    }
    let prob = (aj_sum * x).hi;
    let sf = if step < 0 { 1.0 - prob } else { prob };
    sf.clamp(0.0, 1.0)
}

/// One term `C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1)` of the Smirnov sum, the binomial given
/// as a mantissa and binary exponent.
fn smirnov_term(n: i64, x: f64, v: i64, cman: Dd, cexpt: i64) -> Dd {
    let nf = n as f64;
    let t2x = Dd::from((n - v) as f64) / nf - x;
    let (t2, t2e) = pow_scaled_dd(t2x, n - v);
    let t1x = Dd::from(v as f64) / nf + x;
    let (t1, t1e) = pow_scaled_dd(t1x, v - 1);
    let ans = t1 * t2 * cman;
    ans.ldexp(cexpt + t1e + t2e)
}

/// C(n, j+1) from C(n, j), kept as a mantissa in [0.5, 1) and a separate binary exponent.
fn update_binomial(cman: &mut Dd, cexpt: &mut i64, n: i64, j: i64) {
    let rat = Dd::from((n - j) as f64) / (j as f64 + 1.0);
    let (man, e) = (*cman * rat).frexp();
    *cexpt += e;
    *cman = man;
}

/// a^m in double-double: the power of the high part, corrected for the low part to first order
/// (or by exp(m log1p(lo/hi)) when that correction is large), as scipy trades accuracy for time.
fn pow_dd(a: Dd, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::from(1.0);
        }
        return Dd::from(1.0) / pow_dd(a, -m);
    }
    if a == Dd::from(0.0) {
        return Dd::from(0.0);
    }
    let mf = m as f64;
    let ans = a.hi.powf(mf);
    let r = a.lo / a.hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            adj += (mf * r) * ((m - 1) as f64 / 2.0 * r);
        } else {
            adj = (mf * r.ln_1p()).exp_m1();
        }
    }
    Dd::from(ans) + ans * adj
}

/// ((a + b) / (c + d))^m in double-double.
fn pow4_dd(a: f64, b: f64, c: f64, d: f64, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::from(1.0);
        }
        return pow4_dd(c, d, a, b, -m);
    }
    let num = Dd::from(a) + b;
    let den = Dd::from(c) + d;
    if num == Dd::from(0.0) {
        return if den == Dd::from(0.0) {
            Dd::from(f64::NAN)
        } else {
            Dd::from(0.0)
        };
    }
    if den == Dd::from(0.0) {
        return Dd::from(if num.hi < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    pow_dd(num / den, m)
}

/// The largest exponent a partial power may reach before it is split (below 1023 - 52 so both
/// halves of a double-double stay normal).
const SM_MAX_EXPONENT: i64 = 960;

/// a^m as (mantissa, binary exponent), splitting the power where the mantissa would underflow.
fn pow_scaled_dd(a: Dd, m: i64) -> (Dd, i64) {
    use std::f64::consts::LN_2;
    if m <= 0 {
        if m == 0 {
            return (Dd::from(1.0), 0);
        }
        let (ans, e1) = pow_scaled_dd(a, -m);
        let (ans, e2) = (Dd::from(1.0) / ans).frexp();
        return (ans, -e1 + e2);
    }
    let (y, ye) = a.frexp();
    if m == 1 {
        return (y, ye);
    }
    let mut max_expt = SM_MAX_EXPONENT;
    let mf = m as f64;
    if mf * (y.hi - 1.0) / y.hi < -(SM_MAX_EXPONENT as f64) * LN_2 {
        // Possibly too small for one power: find a safe block size.
        let lg2y = y.hi.ln() / LN_2;
        let lg_ans = mf * lg2y;
        if lg_ans <= -(SM_MAX_EXPONENT as f64) {
            max_expt = (next_power_of_2(-(SM_MAX_EXPONENT as f64) / lg2y + 1.0) / 2.0) as i64;
        }
    }
    if m <= max_expt {
        let (ans, mut ans_e) = pow_dd(y, m).frexp();
        ans_e += m * ye;
        return (ans, ans_e);
    }
    let q = m / max_expt;
    let r = m % max_expt;
    // y^m = (y^max_expt)^q * y^r.
    let (y2r, y2r_e) = pow_scaled_dd(y, r);
    let (y2m, y2m_e) = pow_scaled_dd(y, max_expt);
    let (y2mq, mut y2mq_e) = pow_scaled_dd(y2m, q);
    let (ans, mut ans_e) = (y2r * y2mq).frexp();
    y2mq_e += y2m_e * q;
    ans_e += y2mq_e + y2r_e;
    ans_e += m * ye;
    (ans, ans_e)
}

/// scipy's `nextPowerOf2` helper (despite its name, x rounded up by one unit of its last place,
/// made integral when it is integral).
fn next_power_of_2(x: f64) -> f64 {
    let q = ldexp(x, 1 - f64::MANTISSA_DIGITS as i64);
    let l = (q + x).abs();
    if l == 0.0 {
        return x.abs();
    }
    let lint = l as i32;
    if f64::from(lint) == l {
        f64::from(lint)
    } else {
        l
    }
}

/// x * 2^e, as C's `ldexp` (the scaling split so no intermediate factor overflows).
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    let step_up = f64::from_bits(((1023 + 1000) as u64) << 52);
    let step_down = f64::from_bits(((1023 - 1000) as u64) << 52);
    while e > 1000 {
        x *= step_up;
        e -= 1000;
        if !x.is_finite() {
            return x;
        }
    }
    while e < -1000 {
        x *= step_down;
        e += 1000;
        if x == 0.0 {
            return x;
        }
    }
    x * f64::from_bits(((1023 + e) as u64) << 52)
}

/// The mantissa in [0.5, 1) and the exponent of x, as C's `frexp`.
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    if exp == 0 {
        // Subnormal: normalise first.
        let (m, e) = frexp(x * f64::from_bits(((1023 + 64) as u64) << 52));
        return (m, e - 64);
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp - 1022)
}

/// A double-double number hi + lo, |lo| <= ulp(hi)/2, with the operations scipy's Smirnov code
/// uses (the algorithms of Hida, Li and Bailey's QD library, as in scipy's `dd_real.h`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dd {
    hi: f64,
    lo: f64,
}

impl From<f64> for Dd {
    fn from(hi: f64) -> Self {
        Dd { hi, lo: 0.0 }
    }
}

/// s = fl(a + b) and its error, assuming |a| >= |b|.
fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// s = fl(a + b) and its exact error.
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

/// p = fl(a * b) and its exact error.
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl std::ops::Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl std::ops::Add for Dd {
    type Output = Dd;
    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs.hi);
        let (t1, t2) = two_sum(self.lo, rhs.lo);
        let (s1, s2) = quick_two_sum(s1, s2 + t1);
        let (hi, lo) = quick_two_sum(s1, s2 + t2);
        Dd { hi, lo }
    }
}

impl std::ops::Add<f64> for Dd {
    type Output = Dd;
    fn add(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs);
        let (hi, lo) = quick_two_sum(s1, s2 + self.lo);
        Dd { hi, lo }
    }
}

impl std::ops::Sub for Dd {
    type Output = Dd;
    fn sub(self, rhs: Dd) -> Dd {
        self + (-rhs)
    }
}

impl std::ops::Sub<f64> for Dd {
    type Output = Dd;
    fn sub(self, rhs: f64) -> Dd {
        self + (-rhs)
    }
}

impl std::ops::Mul for Dd {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        let (p1, p2) = two_prod(self.hi, rhs.hi);
        let p2 = p2 + (self.hi * rhs.lo + self.lo * rhs.hi);
        let (hi, lo) = quick_two_sum(p1, p2);
        Dd { hi, lo }
    }
}

impl std::ops::Mul<f64> for Dd {
    type Output = Dd;
    fn mul(self, rhs: f64) -> Dd {
        let (p1, e1) = two_prod(self.hi, rhs);
        let (p2, e2) = two_prod(self.lo, rhs);
        let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
        Dd { hi, lo }
    }
}

impl std::ops::Mul<Dd> for f64 {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        rhs * self
    }
}

impl std::ops::Div for Dd {
    type Output = Dd;
    fn div(self, rhs: Dd) -> Dd {
        let q1 = self.hi / rhs.hi;
        let r = self - rhs * q1;
        let q2 = r.hi / rhs.hi;
        let r = r - rhs * q2;
        let q3 = r.hi / rhs.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd { hi: q1, lo: q2 } + q3
    }
}

impl std::ops::Div<f64> for Dd {
    type Output = Dd;
    fn div(self, rhs: f64) -> Dd {
        self / Dd::from(rhs)
    }
}

impl Dd {
    /// The largest integer not above the number.
    fn floor(self) -> Dd {
        let hi = self.hi.floor();
        if hi == self.hi {
            let (hi, lo) = quick_two_sum(hi, self.lo.floor());
            Dd { hi, lo }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    /// The number times 2^e.
    fn ldexp(self, e: i64) -> Dd {
        Dd {
            hi: ldexp(self.hi, e),
            lo: ldexp(self.lo, e),
        }
    }

    /// Mantissa with |hi| in [0.5, 1) (the low part's sign kept consistent) and exponent.
    fn frexp(self) -> (Dd, i64) {
        let (mut man, mut exponent) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (Dd { hi: man, lo: b1 }, exponent)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// scipy's results for these cases, written by scipy 1.17.1 itself.
    const REFERENCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/reference/metric_refs.json"
    );

    /// Relative error, treating differences below 1e-12 between tiny p-values as agreement.
    fn error(ours: f64, theirs: f64) -> f64 {
        if ours == theirs || (theirs.abs() < 1e-9 && (ours - theirs).abs() <= 1e-12) {
            0.0
        } else {
            (ours - theirs).abs() / theirs.abs()
        }
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|e| e.as_f64().expect("a number"))
            .collect()
    }

    #[test]
    fn matches_scipy_on_every_reference_case_and_mode() {
        let text = std::fs::read_to_string(REFERENCE).expect("the reference file");
        let refs: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = refs["ks_2samp"].as_array().expect("ks_2samp cases");
        assert!(!cases.is_empty());
        let mut failures = Vec::new();
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            let (x, y) = (floats(&case["x"]), floats(&case["y"]));
            for (key, mode) in [
                ("two_sided_auto", Mode::Auto),
                ("two_sided_exact", Mode::Exact),
                ("two_sided_asymp", Mode::Asymp),
            ] {
                let expected = &case[key];
                let statistic = expected["statistic"].as_f64().unwrap();
                let pvalue = expected["pvalue"].as_f64().unwrap();
                let got = ks_2samp(&x, &y, mode).unwrap();
                let worst = error(got.statistic, statistic).max(error(got.pvalue, pvalue));
                println!(
                    "{name} ({}x{}) {key}: D {} p {:e}, max relative error {worst:e}",
                    x.len(),
                    y.len(),
                    got.statistic,
                    got.pvalue
                );
                if worst > 1e-9 {
                    failures.push(format!(
                        "{name} {key}: scipy ({statistic}, {pvalue:e}), ours ({}, {:e})",
                        got.statistic, got.pvalue
                    ));
                }
                // What `Auto` resolves to follows the size rule.
                if mode == Mode::Auto {
                    let expect = if x.len().max(y.len()) <= MAX_AUTO_N {
                        Mode::Exact
                    } else {
                        Mode::Asymp
                    };
                    assert_eq!(got.mode, expect, "{name}");
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn swapping_the_samples_changes_nothing() {
        let text = std::fs::read_to_string(REFERENCE).expect("the reference file");
        let refs: serde_json::Value = serde_json::from_str(&text).unwrap();
        for case in refs["ks_2samp"].as_array().unwrap() {
            let (x, y) = (floats(&case["x"]), floats(&case["y"]));
            if x.len().max(y.len()) > 5000 {
                continue; // the large cases only cost time here
            }
            for mode in [Mode::Auto, Mode::Exact, Mode::Asymp] {
                assert_eq!(ks_2samp(&x, &y, mode), ks_2samp(&y, &x, mode));
            }
        }
        let x = [0.1, 0.4, 0.45, 2.0, 3.5, 3.6, 7.0];
        let y = [0.3, 0.5, 1.0, 1.5];
        for mode in [Mode::Auto, Mode::Exact, Mode::Asymp] {
            assert_eq!(ks_2samp(&x, &y, mode), ks_2samp(&y, &x, mode));
        }
    }

    #[test]
    fn disjoint_samples_of_five() {
        // Only the two arrangements with all of one sample first reach D = 1.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [6.0, 7.0, 8.0, 9.0, 10.0];
        let exact = ks_2samp(&x, &y, Mode::Exact).unwrap();
        assert_eq!(exact.statistic, 1.0);
        assert!((exact.pvalue - 2.0 / 252.0).abs() < 1e-15);
        assert_eq!(exact.mode, Mode::Exact);
        assert_eq!(ks_2samp(&x, &y, Mode::Auto).unwrap(), exact);
        // The asymptotic size round(25/10) is 2 (ties to even), and D_2 never reaches 1.
        let asymp = ks_2samp(&x, &y, Mode::Asymp).unwrap();
        assert_eq!(
            (asymp.statistic, asymp.pvalue, asymp.mode),
            (1.0, 0.0, Mode::Asymp)
        );
    }

    #[test]
    fn identical_samples_have_d_zero_and_p_one() {
        let x = [0.5, 1.5, 1.5, 2.5];
        for mode in [Mode::Auto, Mode::Exact, Mode::Asymp] {
            let got = ks_2samp(&x, &x, mode).unwrap();
            assert_eq!((got.statistic, got.pvalue), (0.0, 1.0));
        }
    }

    #[test]
    fn statistic_by_hand() {
        // At 1: 1/3 - 0; at 2: 2/3 - 0; at 2.5: 2/3 - 1/2; at 3: 1 - 1/2; at 4: 1 - 1.
        assert_eq!(statistic(&[3.0, 1.0, 2.0], &[4.0, 2.5]), 2.0 / 3.0);
        // Ties count every equal value as already passed: at 0: 2/3 - 1/3; at 1: 1 - 1.
        assert_eq!(
            statistic(&[0.0, 0.0, 1.0], &[0.0, 1.0, 1.0]),
            2.0 / 3.0 - 1.0 / 3.0
        );
        // The negative excursion counts as much as the positive one.
        assert_eq!(statistic(&[5.0, 6.0], &[1.0, 2.0, 3.0, 4.0]), 1.0);
        // -0.0 and 0.0 are one value.
        assert_eq!(statistic(&[-0.0, 1.0], &[0.0, 1.0]), 0.0);
    }

    /// Pr(D >= d) by listing every way of labelling n1 + n2 ordered values, d given as
    /// h / lcm(n1, n2).
    fn enumerated_pvalue(n1: usize, n2: usize, h: u64) -> f64 {
        let total = n1 + n2;
        let lcm = (n1 / gcd(n1 as u64, n2 as u64) as usize * n2) as u64;
        let (a, b) = (lcm / n1 as u64, lcm / n2 as u64);
        let (mut hits, mut all) = (0u64, 0u64);
        for mask in 0u32..(1 << total) {
            if mask.count_ones() as usize != n1 {
                continue;
            }
            all += 1;
            // Scaled by lcm, F1 - F2 moves by +a for a value of the first sample, -b otherwise.
            let (mut level, mut worst) = (0i64, 0u64);
            for bit in 0..total {
                level += if mask >> bit & 1 == 1 {
                    a as i64
                } else {
                    -(b as i64)
                };
                worst = worst.max(level.unsigned_abs());
            }
            if worst >= h {
                hits += 1;
            }
        }
        hits as f64 / all as f64
    }

    #[test]
    fn exact_method_agrees_with_enumerating_every_arrangement() {
        for (n1, n2) in [
            (1, 1),
            (2, 3),
            (3, 3),
            (4, 6),
            (5, 5),
            (3, 8),
            (6, 9),
            (7, 7),
            (2, 11),
        ] {
            let g = gcd(n1 as u64, n2 as u64);
            let lcm = (n1 as u64 / g) * n2 as u64;
            for h in 1..=lcm {
                let (d, p) = exact_pvalue(n1 as u64, n2 as u64, g, h as f64 / lcm as f64);
                assert_eq!(d, h as f64 / lcm as f64);
                let expected = enumerated_pvalue(n1, n2, h);
                let Some(p) = p else {
                    // Only where rounding lifts a certain result just above one.
                    assert_eq!(expected, 1.0, "{n1}x{n2} h={h}");
                    continue;
                };
                assert!(
                    (p - expected).abs() <= 1e-13 * expected.max(1e-300) + 1e-300,
                    "{n1}x{n2} h={h}: {p} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn kolmogorov_closed_forms() {
        // Ruben-Gambino, 1/(2n) <= x <= 1/n: CDF = n!/n^n (2nx - 1)^n; n = 3, x = 1/4.
        let cdf = 6.0 / 27.0 * 0.5f64.powi(3);
        assert!((kstwo_sf(0.25, 3.0) - (1.0 - cdf)).abs() < 1e-15);
        // x >= 1 - 1/n: SF = 2 (1 - x)^n.
        let upper = 2.0 * 0.1f64.powi(10);
        assert!((kstwo_sf(0.9, 10.0) - upper).abs() < 1e-13 * upper);
        // Outside the support.
        assert_eq!(kstwo_sf(0.04, 10.0), 1.0);
        assert_eq!(kstwo_sf(1.0, 10.0), 0.0);
        assert!(kstwo_sf(0.3, 0.0).is_nan());
    }

    #[test]
    fn durbin_matrix_and_pomeranz_agree() {
        // Two exact algorithms for the same CDF, where both apply.
        for n in [5i64, 20, 60, 140] {
            for nxsq in [0.3, 0.7, 1.2, 2.5] {
                let x = (nxsq / n as f64).sqrt();
                let (a, b) = (kolmogn_dmtw_cdf(n, x), kolmogn_pomeranz_cdf(n, x));
                assert!((a - b).abs() < 1e-12, "n={n} x={x}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn smirnov_matches_the_plain_birnbaum_tingey_sum() {
        // SF = x sum_{j <= n(1-x)} C(n, j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1), small n.
        for n in [2i64, 5, 12, 30] {
            for x in [0.05, 0.13, 0.3, 0.55, 0.8] {
                let nf = n as f64;
                let mut sum = 0.0;
                let mut binom = 1.0;
                for j in 0..=n {
                    let jf = j as f64;
                    if 1.0 - x - jf / nf < 0.0 {
                        break;
                    }
                    sum += binom * (1.0 - x - jf / nf).powf(nf - jf) * (x + jf / nf).powf(jf - 1.0);
                    binom = binom * (nf - jf) / (jf + 1.0);
                }
                let expected = x * sum;
                let got = smirnov_sf(n, x);
                assert!(
                    (got - expected).abs() < 1e-13,
                    "n={n} x={x}: {got} vs {expected}"
                );
            }
        }
        assert_eq!(smirnov_sf(1, 0.3), 0.7);
    }

    #[test]
    fn exact_falls_back_where_rounding_passes_one() {
        // Interleaved samples of 7: D = 1/7, whose exact p-value 1 comes out as 1 + 2^-52.
        // scipy then warns and answers with the asymptotic method; so does this port.
        let x: Vec<f64> = (0..7).map(|i| f64::from(2 * i + 1)).collect();
        let y: Vec<f64> = (0..7).map(|i| f64::from(2 * i + 2)).collect();
        let got = ks_2samp(&x, &y, Mode::Auto).unwrap();
        assert_eq!(got.mode, Mode::Asymp);
        assert_eq!(got.statistic, 1.0 / 7.0);
        // scipy 1.17.1: ks_2samp(x, y).pvalue.
        assert!(error(got.pvalue, 0.9999609537692629) < 1e-13);
    }

    #[test]
    fn empty_or_non_finite_samples_have_no_outcome() {
        assert_eq!(ks_2samp(&[], &[1.0], Mode::Auto), None);
        assert_eq!(ks_2samp(&[1.0], &[], Mode::Exact), None);
        assert_eq!(ks_2samp(&[1.0, f64::NAN], &[2.0], Mode::Auto), None);
        assert_eq!(ks_2samp(&[1.0], &[f64::INFINITY], Mode::Asymp), None);
    }

    #[test]
    fn one_value_each() {
        // Exact: both arrangements reach D = 1. Asymptotic: round(1/2) = 0, where scipy's
        // distribution is undefined and its p-value NaN.
        let exact = ks_2samp(&[1.0], &[2.0], Mode::Exact).unwrap();
        assert_eq!((exact.statistic, exact.pvalue), (1.0, 1.0));
        assert!(
            ks_2samp(&[1.0], &[2.0], Mode::Asymp)
                .unwrap()
                .pvalue
                .is_nan()
        );
    }

    #[test]
    fn auto_switches_to_asymptotic_above_ten_thousand() {
        let x: Vec<f64> = (0..10_001).map(|i| f64::from(i) * 0.5).collect();
        let y: Vec<f64> = (0..7).map(f64::from).collect();
        assert_eq!(ks_2samp(&x, &y, Mode::Auto).unwrap().mode, Mode::Asymp);
        assert_eq!(
            ks_2samp(&x[..10_000], &y, Mode::Auto).unwrap().mode,
            Mode::Exact
        );
    }

    #[test]
    fn exact_falls_back_when_the_lattice_is_too_fine() {
        // lcm(50000, 49999) is past the 32-bit range: scipy switches to the asymptotic method.
        let x: Vec<f64> = (0..50_000).map(|i| f64::from(i) / 50_000.0).collect();
        let y: Vec<f64> = (0..49_999)
            .map(|i| f64::from(i) / 49_999.0 + 1e-3)
            .collect();
        let exact = ks_2samp(&x, &y, Mode::Exact).unwrap();
        assert_eq!(exact.mode, Mode::Asymp);
        assert_eq!(exact, ks_2samp(&x, &y, Mode::Asymp).unwrap());
    }
}
