//! ROC AUC of scores separating two groups, in the Mann–Whitney form: the probability that a
//! score drawn from the positive group exceeds one drawn from the negative group, a tie counted
//! one half. It equals scikit-learn's `roc_auc_score` with the positive group labelled 1 (the
//! trapezoidal area under the ROC curve, whose diagonal steps at tied scores are the halves).
//!
//! Membership-inference attacks and the meta-evaluation's faithfulness both report it; computing
//! it from ranks costs one sort, O(n log n), where counting pairs would cost n_pos · n_neg.

/// `P(positive > negative) + ½·P(positive = negative)` over all pairs of one positive and one
/// negative score; 1 when every positive score is above every negative one, 0 when below, 0.5
/// when all are tied.
///
/// `None` when either group is empty (no pair to compare) or any score is NaN or infinite (an
/// infinite score would tie with another infinite one by accident of representation, and NaN
/// has no order).
pub fn roc_auc(positive: &[f64], negative: &[f64]) -> Option<f64> {
    if positive.is_empty() || negative.is_empty() {
        return None;
    }
    if positive.iter().chain(negative).any(|s| !s.is_finite()) {
        return None;
    }
    // Pool the scores with their group, sort, and give each run of tied scores the mean of the
    // ranks it spans (1-based): the positives' rank sum minus its least possible value counts
    // the pairs a positive wins, each tie counting one half.
    let mut pooled: Vec<(f64, bool)> = positive
        .iter()
        .map(|&s| (s, true))
        .chain(negative.iter().map(|&s| (s, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        // `==` rather than `total_cmp`, so that 0.0 and -0.0 tie as the numbers they are.
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        // Ranks start + 1 ..= end; their mean.
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        let positives_here = pooled[start..end].iter().filter(|p| p.1).count();
        positive_rank_sum += mid_rank * positives_here as f64;
        start = end;
    }
    let n_pos = positive.len() as f64;
    let n_neg = negative.len() as f64;
    let wins = positive_rank_sum - n_pos * (n_pos + 1.0) / 2.0;
    Some(wins / (n_pos * n_neg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The definition, pair by pair.
    fn brute_force(positive: &[f64], negative: &[f64]) -> f64 {
        let mut wins = 0.0;
        for &p in positive {
            for &n in negative {
                if p > n {
                    wins += 1.0;
                } else if p == n {
                    wins += 0.5;
                }
            }
        }
        wins / (positive.len() * negative.len()) as f64
    }

    /// A deterministic stream of small integers (xorshift64), so ties are frequent.
    struct Stream(u64);
    impl Stream {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    #[test]
    fn agrees_with_the_pair_count_on_tied_inputs() {
        let mut s = Stream(0x9e37_79b9_7f4a_7c15);
        for case in 0..400 {
            let n_pos = 1 + s.next(30) as usize;
            let n_neg = 1 + s.next(30) as usize;
            // Few distinct values in some cases (many ties), many in others; the positive group
            // shifted by a varying amount so the AUCs spread over [0, 1].
            let levels = [2, 5, 50, 1000][case % 4];
            let shift = s.next(levels) as f64 - levels as f64 / 2.0;
            let pos: Vec<f64> = (0..n_pos)
                .map(|_| s.next(levels) as f64 * 0.25 + shift * 0.25)
                .collect();
            let neg: Vec<f64> = (0..n_neg).map(|_| s.next(levels) as f64 * 0.25).collect();
            let got = roc_auc(&pos, &neg).unwrap();
            let want = brute_force(&pos, &neg);
            assert!(
                (got - want).abs() < 1e-12,
                "case {case}: {got} vs {want} ({pos:?} / {neg:?})"
            );
        }
    }

    #[test]
    fn hand_cases() {
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(roc_auc(&[7.0, 7.0, 7.0], &[7.0, 7.0]), Some(0.5));
        // One positive between two negatives: it beats one of two.
        assert_eq!(roc_auc(&[2.0], &[1.0, 3.0]), Some(0.5));
        // 0.0 and -0.0 are the same score.
        assert_eq!(roc_auc(&[0.0], &[-0.0]), Some(0.5));
        // Pairs (2 vs 1) win, (2 vs 2) tie, (1 vs 1) tie, (1 vs 2) lose: 2 / 4.
        assert_eq!(roc_auc(&[2.0, 1.0], &[1.0, 2.0]), Some(0.5));
        // 3 beats 1, 0, 0 and ties 3 (3.5); 1 ties 1, loses to 3, beats 0, 0 (2.5): 6 / 8.
        let got = roc_auc(&[3.0, 1.0], &[1.0, 3.0, 0.0, 0.0]).unwrap();
        assert!((got - 6.0 / 8.0).abs() < 1e-15, "{got}");
    }

    #[test]
    fn undefined_without_pairs_or_with_non_finite_scores() {
        assert_eq!(roc_auc(&[], &[1.0]), None);
        assert_eq!(roc_auc(&[1.0], &[]), None);
        assert_eq!(roc_auc(&[f64::NAN], &[1.0]), None);
        assert_eq!(roc_auc(&[1.0], &[f64::INFINITY]), None);
        assert_eq!(roc_auc(&[f64::NEG_INFINITY], &[1.0]), None);
    }
}
