//! A port of the parts of Google's `rouge_score` 0.1.2 that score ROUGE-N and ROUGE-L:
//! `tokenize.tokenize` (with the Porter stemmer, i.e. `RougeScorer(..., use_stemmer=True)`),
//! `rouge_scorer._score_ngrams` and `rouge_scorer._score_lcs`, and `scoring.fmeasure`.
//!
//! Unlearning benchmarks (TOFU, MUSE, OpenUnlearning) report ROUGE computed by that Python
//! package, and Lethe's numbers are compared with theirs, so this must agree token for token
//! and bit for bit: the same tokens (see [`porter`] for the stemmer), the same clipped
//! counts, and the same floating-point operations in the same order.

pub mod porter;

use std::collections::HashMap;

/// Tokenizes `text` as `rouge_score` 0.1.2's `tokenize.tokenize(text, PorterStemmer())` does.
///
/// The text is lowercased (Unicode lowercasing, like Python's `str.lower()`, so e.g. `İ`
/// becomes `i` plus a combining dot before anything is filtered), every run of characters
/// outside `[a-z0-9]` becomes a space, the result is split on whitespace, tokens longer than
/// three characters are Porter-stemmed, and empty or non-`[a-z0-9]+` tokens are dropped.
/// Non-ASCII letters therefore split words (`café` gives `caf`).
pub fn tokenize(text: &str) -> Vec<String> {
    let lowered = text.to_lowercase();
    lowered
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            // `raw` is ASCII, so its byte length is Python's `len`.
            if raw.len() > 3 {
                porter::stem(raw)
            } else {
                raw.to_owned()
            }
        })
        .filter(|token| is_valid_token(token))
        .collect()
}

/// `rouge_score`'s final token check, `^[a-z0-9]+$`.
fn is_valid_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Precision, recall and F-measure of one ROUGE variant (`rouge_score.scoring.Score`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prf {
    /// Matched units over the prediction's units.
    pub precision: f64,
    /// Matched units over the reference's units.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub fmeasure: f64,
}

impl Prf {
    const ZERO: Prf = Prf {
        precision: 0.0,
        recall: 0.0,
        fmeasure: 0.0,
    };

    /// Builds a score from precision and recall, with `rouge_score.scoring.fmeasure`.
    fn from_pr(precision: f64, recall: f64) -> Prf {
        Prf {
            precision,
            recall,
            fmeasure: fmeasure(precision, recall),
        }
    }
}

/// `rouge_score.scoring.fmeasure`: `2 * p * r / (p + r)` evaluated left to right as Python
/// does, or 0 when `p + r` is not positive.
fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// Counts the n-grams (`rouge_scorer._create_ngrams`) of `tokens`.
fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// ROUGE-N of a tokenized prediction against a tokenized reference, as `rouge_score`'s
/// `_score_ngrams`: the overlap is the clipped n-gram count
/// `sum over reference n-grams g of min(count_ref(g), count_pred(g))`, precision is
/// `overlap / max(prediction n-grams, 1)`, recall `overlap / max(reference n-grams, 1)`.
///
/// `rouge_score` rejects `n = 0`; here it scores all zeros.
pub fn rouge_n(prediction_tokens: &[String], reference_tokens: &[String], n: usize) -> Prf {
    if n == 0 {
        return Prf::ZERO;
    }
    let reference = ngram_counts(reference_tokens, n);
    let prediction = ngram_counts(prediction_tokens, n);
    let overlap: usize = reference
        .iter()
        .map(|(gram, &count)| count.min(prediction.get(gram).copied().unwrap_or(0)))
        .sum();
    let reference_total = reference_tokens.len().saturating_sub(n - 1);
    let prediction_total = prediction_tokens.len().saturating_sub(n - 1);
    let precision = overlap as f64 / prediction_total.max(1) as f64;
    let recall = overlap as f64 / reference_total.max(1) as f64;
    Prf::from_pr(precision, recall)
}

/// Length of the longest common subsequence of `a` and `b` (the last cell of
/// `rouge_scorer._lcs_table`), with one row of the table kept at a time.
fn lcs_length(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// ROUGE-L of a tokenized prediction against a tokenized reference, as `rouge_score`'s
/// `_score_lcs`: precision is `LCS / prediction length`, recall `LCS / reference length`, and
/// all three values are 0 when either side has no tokens.
pub fn rouge_l(prediction_tokens: &[String], reference_tokens: &[String]) -> Prf {
    if prediction_tokens.is_empty() || reference_tokens.is_empty() {
        return Prf::ZERO;
    }
    let lcs = lcs_length(reference_tokens, prediction_tokens);
    let precision = lcs as f64 / prediction_tokens.len() as f64;
    let recall = lcs as f64 / reference_tokens.len() as f64;
    Prf::from_pr(precision, recall)
}

#[cfg(test)]
mod tests {
    use super::{Prf, rouge_l, rouge_n, tokenize};
    use std::error::Error;

    const REFS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/reference/metric_refs.json"
    );

    fn strings(value: &serde_json::Value) -> Result<Vec<String>, Box<dyn Error>> {
        value
            .as_array()
            .ok_or("expected a token array")?
            .iter()
            .map(|t| Ok(t.as_str().ok_or("expected a string token")?.to_owned()))
            .collect()
    }

    fn check(name: &str, kind: &str, got: Prf, want: &serde_json::Value) -> Vec<String> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("precision", got.precision),
            ("recall", got.recall),
            ("fmeasure", got.fmeasure),
        ] {
            match want[field].as_f64() {
                Some(expected) if (expected - value).abs() <= 1e-9 => {}
                expected => errors.push(format!(
                    "{name} {kind}.{field}: got {value}, want {expected:?}"
                )),
            }
        }
        errors
    }

    #[test]
    fn matches_rouge_score_reference_pairs() -> Result<(), Box<dyn Error>> {
        let text = std::fs::read_to_string(REFS)?;
        let refs: serde_json::Value = serde_json::from_str(&text)?;
        let pairs = refs["pairs"]
            .as_array()
            .ok_or("no pairs in metric_refs.json")?;
        assert_eq!(pairs.len(), 27);
        let mut errors = Vec::new();
        for pair in pairs {
            let name = pair["name"].as_str().ok_or("pair without a name")?;
            let prediction = pair["prediction"].as_str().ok_or("no prediction")?;
            let reference = pair["reference"].as_str().ok_or("no reference")?;
            let pred = tokenize(prediction);
            let refr = tokenize(reference);
            if pred != strings(&pair["rouge_tokens_prediction"])? {
                errors.push(format!("{name}: prediction tokens {pred:?}"));
            }
            if refr != strings(&pair["rouge_tokens_reference"])? {
                errors.push(format!("{name}: reference tokens {refr:?}"));
            }
            errors.extend(check(
                name,
                "rouge1",
                rouge_n(&pred, &refr, 1),
                &pair["rouge1"],
            ));
            errors.extend(check(
                name,
                "rougeL",
                rouge_l(&pred, &refr),
                &pair["rougeL"],
            ));
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        Ok(())
    }

    fn toks(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn tokenizer_lowercases_filters_and_stems() {
        assert_eq!(
            tokenize("The runners were RUNNING, café-style! 3.14"),
            toks("the runner were run caf style 3 14")
        );
        assert_eq!(tokenize("   \n\t "), Vec::<String>::new());
        assert_eq!(tokenize("東京は日本"), Vec::<String>::new());
        // 'İ' lowercases to "i\u{307}" before the ASCII filter, so its 'i' survives.
        assert_eq!(tokenize("İS"), toks("i s"));
    }

    #[test]
    fn rouge_n_clips_counts() {
        let pred = toks("the the the the");
        let refr = toks("the cat the");
        let s = rouge_n(&pred, &refr, 1);
        assert_eq!((s.precision, s.recall), (0.5, 2.0 / 3.0));
        let bigrams = rouge_n(&toks("a b c"), &toks("a b d"), 2);
        assert_eq!((bigrams.precision, bigrams.recall), (0.5, 0.5));
        let short = rouge_n(&toks("a"), &toks("a"), 2);
        assert_eq!(short, Prf::ZERO);
        assert_eq!(rouge_n(&[], &toks("a"), 1), Prf::ZERO);
    }

    #[test]
    fn rouge_l_uses_the_longest_common_subsequence() {
        let s = rouge_l(&toks("a x b y c"), &toks("a b c d"));
        assert_eq!((s.precision, s.recall), (3.0 / 5.0, 3.0 / 4.0));
        assert_eq!(s.fmeasure, 2.0 * 0.6 * 0.75 / (0.6 + 0.75));
        assert_eq!(rouge_l(&[], &toks("a")), Prf::ZERO);
        assert_eq!(rouge_l(&toks("a"), &[]), Prf::ZERO);
    }
}
