//! Per-example scores of the membership-inference attacks that need no gradient, from the
//! teacher-forced per-token log-probabilities of an answer (EOS included, as the host observes
//! them: SPEC's T counts it). Every score is oriented the same way — **lower means more likely a
//! member** (a training example is the likelier, lower-loss one) — so an attack's AUC is
//! [`roc_auc`](crate::auc::roc_auc)`(non-members, members)` for all of them.
//!
//! - LOSS (Yeom et al. 2018): `avg(y|x)`, the mean token NLL.
//! - ZLib (Carlini et al. 2021): `avg(y|x) / len(zlib(answer bytes))`, the loss relative to how
//!   compressible the text is, with zlib's length from [`crate::zlib`].
//! - Min-K% (Shi et al. 2024): `−mean` of the lowest `⌈k·T⌉` token log-probs: a member has few
//!   very unlikely tokens.
//! - Min-K%++ (Zhang et al. 2024): Min-K% of `z_t = (log p(y_t) − μ_t) / σ_t`, where `μ_t` and
//!   `σ_t` are the mean and standard deviation of `log p(v)` under `p` itself at position t (the
//!   host's moments observation: `μ = Σ_v p(v) log p(v)`, `σ² = Σ_v p(v) log² p(v) − μ²`), so a
//!   token counts as likely relative to what the model expected there.
//!
//! The mia and privleak metrics both call these, so their Min-K% is the same number.

use crate::zlib;

/// `avg(y|x)`: the mean negative log-likelihood of the tokens; `None` for no tokens.
pub fn loss(logprobs: &[f32]) -> Option<f64> {
    if logprobs.is_empty() {
        return None;
    }
    let total: f64 = logprobs.iter().map(|&l| f64::from(l)).sum();
    Some(-total / logprobs.len() as f64)
}

/// The ZLib score `avg / len(zlib.compress(answer.encode()))`; `None` for no tokens.
pub fn zlib_score(logprobs: &[f32], answer: &str) -> Option<f64> {
    // The compressed length is at least 8 bytes (an empty stream), so the ratio is defined.
    Some(loss(logprobs)? / zlib::compressed_len(answer.as_bytes()) as f64)
}

/// `⌈k·n⌉`, the number of lowest values Min-K% averages, for `k` in (0, 1] and `n ≥ 1`.
///
/// A product within 1e-9 of an integer is taken as that integer: in binary floating point
/// `0.07 · 100 = 7.000000000000001`, whose ceiling would average 8 tokens instead of 7.
pub fn min_k_count(k: f64, n: usize) -> usize {
    let x = k * n as f64;
    let nearest = x.round();
    let count = if (x - nearest).abs() < 1e-9 {
        nearest
    } else {
        x.ceil()
    };
    (count as usize).clamp(1, n.max(1))
}

/// Min-K%: `−mean` of the lowest `⌈k·T⌉` values; `None` for no values or a non-finite one.
pub fn min_k(values: &[f64], k: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let lowest = &sorted[..min_k_count(k, sorted.len())];
    Some(-lowest.iter().sum::<f64>() / lowest.len() as f64)
}

/// Min-K% of token log-probabilities.
pub fn min_k_logprobs(logprobs: &[f32], k: f64) -> Option<f64> {
    let values: Vec<f64> = logprobs.iter().map(|&l| f64::from(l)).collect();
    min_k(&values, k)
}

/// Why a Min-K%++ score could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum MinKppError {
    /// The three per-token lists differ in length.
    Lengths {
        /// Log-probs.
        logprobs: usize,
        /// Means.
        mean: usize,
        /// Standard deviations.
        std: usize,
    },
    /// No tokens.
    Empty,
    /// `z_t` is not finite at this position: σ is zero (the model put all its mass on one
    /// token) or a value is not finite.
    Undefined {
        /// The token position (0-based, EOS last).
        position: usize,
    },
}

impl std::fmt::Display for MinKppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lengths {
                logprobs,
                mean,
                std,
            } => write!(
                f,
                "{logprobs} token log-probs but {mean} means and {std} standard deviations"
            ),
            Self::Empty => write!(f, "no answer tokens"),
            Self::Undefined { position } => write!(
                f,
                "Min-K%++ is undefined at token {position}: log p, its mean or its standard \
                 deviation there is zero or not finite"
            ),
        }
    }
}

impl std::error::Error for MinKppError {}

/// Min-K%++: Min-K% of `z_t = (log p(y_t) − μ_t) / σ_t`.
pub fn min_k_plus_plus(
    logprobs: &[f32],
    mean: &[f32],
    std: &[f32],
    k: f64,
) -> Result<f64, MinKppError> {
    if logprobs.len() != mean.len() || logprobs.len() != std.len() {
        return Err(MinKppError::Lengths {
            logprobs: logprobs.len(),
            mean: mean.len(),
            std: std.len(),
        });
    }
    if logprobs.is_empty() {
        return Err(MinKppError::Empty);
    }
    let mut z = Vec::with_capacity(logprobs.len());
    for (position, ((&l, &m), &s)) in logprobs.iter().zip(mean).zip(std).enumerate() {
        let v = (f64::from(l) - f64::from(m)) / f64::from(s);
        if !v.is_finite() {
            return Err(MinKppError::Undefined { position });
        }
        z.push(v);
    }
    min_k(&z, k).ok_or(MinKppError::Empty)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn min_k_averages_the_lowest_ceiling_share() {
        // T = 5, k = 0.4: ⌈2⌉ = 2 lowest, -(-3 - 2)/2.
        let lp = [-1.0f32, -3.0, -0.5, -2.0, -0.25];
        assert_eq!(min_k_logprobs(&lp, 0.4), Some(2.5));
        // k = 0.3: ⌈1.5⌉ = 2 as well; k = 0.2: 1; k = 1: all five.
        assert_eq!(min_k_logprobs(&lp, 0.3), Some(2.5));
        assert_eq!(min_k_logprobs(&lp, 0.2), Some(3.0));
        assert_eq!(min_k_logprobs(&lp, 1.0), Some(6.75 / 5.0));
        // A tiny k still takes one token.
        assert_eq!(min_k_logprobs(&lp, 1e-6), Some(3.0));
        assert_eq!(min_k_logprobs(&[], 0.4), None);
    }

    #[test]
    fn the_count_is_not_fooled_by_rounding() {
        // The premise of the guard: the product lands just above 7.
        assert!(std::hint::black_box(0.07f64) * 100.0 > 7.0);
        assert_eq!(min_k_count(0.07, 100), 7);
        assert_eq!(min_k_count(0.4, 15), 6);
        assert_eq!(min_k_count(0.4, 16), 7); // 6.4
        assert_eq!(min_k_count(0.1, 30), 3);
        assert_eq!(min_k_count(0.7, 10), 7);
        assert_eq!(min_k_count(1.0, 3), 3);
    }

    #[test]
    fn min_k_plus_plus_standardises_each_token() {
        let lp = [-1.0f32, -2.0, -4.0];
        let mu = [-1.5f32, -1.0, -2.0];
        let sigma = [0.5f32, 2.0, 4.0];
        // z = [1, -0.5, -0.5]; k = 0.4 of 3 → 2 lowest: -(-0.5 - 0.5)/2 = 0.5.
        assert_eq!(min_k_plus_plus(&lp, &mu, &sigma, 0.4), Ok(0.5));
        assert_eq!(
            min_k_plus_plus(&lp, &mu, &[0.5, 0.0, 4.0], 0.4),
            Err(MinKppError::Undefined { position: 1 })
        );
        assert!(matches!(
            min_k_plus_plus(&lp, &mu[..2], &sigma, 0.4),
            Err(MinKppError::Lengths { .. })
        ));
    }

    #[test]
    fn loss_and_zlib() {
        let lp = [-1.0f32, -2.0];
        assert_eq!(loss(&lp), Some(1.5));
        // len(zlib.compress(b"Paris")) == 13 in Python.
        assert_eq!(zlib_score(&lp, "Paris"), Some(1.5 / 13.0));
        assert_eq!(loss(&[]), None);
    }
}
