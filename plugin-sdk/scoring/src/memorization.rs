//! Exact memorization and extraction strength from teacher-forced argmax matches: whether the
//! model's most likely next token equals the reference answer's token at each position.
//!
//! Both count the answer's own tokens only, not the end-of-sequence token: the host appends EOS
//! to every answer it teacher-forces and reports it as the last entry of each per-token list,
//! and SPEC's exact memorization excludes it (whether a model would stop there says nothing
//! about whether it memorised the answer). [`without_eos`] drops it; both metrics then work on
//! the same T tokens.

/// The host's per-token list of an answer without its last entry, the EOS token.
pub fn without_eos<T>(per_token: &[T]) -> &[T] {
    per_token.split_last().map_or(per_token, |(_, rest)| rest)
}

/// Exact memorization: the share of the tokens the model predicts; `None` for no tokens.
pub fn exact_memorization(matches: &[bool]) -> Option<f64> {
    if matches.is_empty() {
        return None;
    }
    let hits = matches.iter().filter(|&&m| m).count();
    Some(hits as f64 / matches.len() as f64)
}

/// Extraction strength: `1 − k/T` for the smallest k such that tokens k..T all match — the
/// share of the answer a greedy decoder would reproduce once given the prefix before k. 1 when
/// every token matches, 0 when the last does not (OpenUnlearning returns 1/T there, because its
/// loop stops at k = T − 1); `None` for no tokens.
pub fn extraction_strength(matches: &[bool]) -> Option<f64> {
    if matches.is_empty() {
        return None;
    }
    let t = matches.len();
    let matching_suffix = matches.iter().rev().take_while(|&&m| m).count();
    let k = t - matching_suffix;
    Some(1.0 - k as f64 / t as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_is_the_last_entry() {
        assert_eq!(without_eos(&[1, 2, 3]), &[1, 2]);
        assert_eq!(without_eos::<u8>(&[]), &[] as &[u8]);
    }

    #[test]
    fn hand_cases() {
        let m = [true, false, true, true];
        assert_eq!(exact_memorization(&m), Some(0.75));
        // Tokens 2 and 3 match, token 1 does not: k = 2, ES = 1 - 2/4.
        assert_eq!(extraction_strength(&m), Some(0.5));
        assert_eq!(extraction_strength(&[true; 3]), Some(1.0));
        assert_eq!(extraction_strength(&[true, true, false]), Some(0.0));
        assert_eq!(exact_memorization(&[]), None);
        assert_eq!(extraction_strength(&[]), None);
    }
}
