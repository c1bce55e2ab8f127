//! TOFU's truth ratio of one question, from teacher-forced per-token log-probabilities:
//! `p_c = exp(−mean_i avg(correct_i))`, `p_w = exp(−mean_j avg(wrong_j))`, `tr = p_w / p_c`,
//! where `avg` is the mean per-token negative log-likelihood of one answer (EOS included, as
//! the host observes it).
//!
//! The correct side is normally the paraphrased answer; with several paraphrases their `avg`s
//! are averaged before the exponential, exactly as the perturbed (wrong) answers are, so both
//! sides are geometric means of per-answer probabilities and a question with two paraphrases is
//! treated like one with one. The caller picks the correct side: the truth-ratio metric uses the
//! paraphrases, model utility falls back to the reference answer on sets that have none (TOFU's
//! real-world sets), as TOFU does.
//!
//! The truth-ratio, forget-quality and model-utility metrics all call this, so the ratio is the
//! same number wherever it is reported. Values are computed from `avg` differences
//! (`tr = exp(avg_c − avg_w)`), which never overflows where the two probabilities would
//! underflow.

use std::fmt;

/// The truth ratio of one question and the two probabilities it compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthRatio {
    /// `exp(−mean avg)` of the correct (paraphrased) answers.
    pub p_correct: f64,
    /// `exp(−mean avg)` of the wrong (perturbed) answers.
    pub p_wrong: f64,
    /// `p_wrong / p_correct`: below 1 when the model prefers the correct answer. It saturates
    /// at `f64::MAX` (a wrong answer more than e^709 times likelier), so it is always finite.
    pub ratio: f64,
    /// `mean avg(correct) − mean avg(wrong)`, the ratio's logarithm.
    log_ratio: f64,
}

impl TruthRatio {
    /// `min(tr, 1/tr)`, the forget-set form: 1 when the model cannot tell the correct answer
    /// from the wrong ones (forgotten), towards 0 when it prefers either side strongly.
    pub fn forget_form(&self) -> f64 {
        (-self.log_ratio.abs()).exp()
    }

    /// `max(0, 1 − tr)`, the retain and real-world form: towards 1 when the model prefers the
    /// correct answer, 0 when it prefers the wrong ones as much or more.
    pub fn retain_form(&self) -> f64 {
        (1.0 - self.ratio).max(0.0)
    }

    /// `p_c / (p_c + p_w) = 1 / (1 + tr)`, the meta-evaluation form: in (0, 1), higher when
    /// the model prefers the correct answer.
    pub fn meta_form(&self) -> f64 {
        // 1 / (1 + exp(x)) as exp(−x) / (1 + exp(−x)) for large x, so neither side overflows.
        if self.log_ratio > 0.0 {
            let e = (-self.log_ratio).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + self.ratio)
        }
    }
}

/// Which side of the ratio an answer was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A correct (paraphrased, or reference) answer.
    Correct,
    /// A wrong (perturbed) answer.
    Wrong,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Correct => "correct",
            Side::Wrong => "wrong",
        })
    }
}

/// An answer whose log-probabilities cannot enter the ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The answer (0-based index on its side) has no tokens; the host always observes at
    /// least EOS, so this is a malformed input.
    EmptyAnswer(Side, usize),
    /// The answer has a log-probability that is NaN or infinite.
    NotFinite(Side, usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyAnswer(side, i) => write!(f, "{side} answer {i} has no tokens"),
            Error::NotFinite(side, i) => {
                write!(
                    f,
                    "{side} answer {i} has a log-probability that is not finite"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// `avg(y|x)`, the mean per-token negative log-likelihood, or `None` for no tokens.
pub fn avg_nll(token_logprobs: &[f32]) -> Option<f64> {
    if token_logprobs.is_empty() {
        return None;
    }
    let total: f64 = token_logprobs.iter().map(|&l| f64::from(l)).sum();
    Some(-total / token_logprobs.len() as f64)
}

/// The mean of the answers' `avg`s, checked.
fn mean_avg<A: AsRef<[f32]>>(answers: &[A], side: Side) -> Result<f64, Error> {
    let mut sum = 0.0;
    for (i, a) in answers.iter().enumerate() {
        let avg = avg_nll(a.as_ref()).ok_or(Error::EmptyAnswer(side, i))?;
        if !avg.is_finite() {
            return Err(Error::NotFinite(side, i));
        }
        sum += avg;
    }
    Ok(sum / answers.len() as f64)
}

/// The truth ratio of one question from the per-token log-probabilities of its correct and
/// wrong answers; `Ok(None)` when either side has no answers (the question is skipped).
pub fn truth_ratio<C: AsRef<[f32]>, W: AsRef<[f32]>>(
    correct: &[C],
    wrong: &[W],
) -> Result<Option<TruthRatio>, Error> {
    if correct.is_empty() || wrong.is_empty() {
        return Ok(None);
    }
    let avg_c = mean_avg(correct, Side::Correct)?;
    let avg_w = mean_avg(wrong, Side::Wrong)?;
    let log_ratio = avg_c - avg_w;
    Ok(Some(TruthRatio {
        p_correct: (-avg_c).exp(),
        p_wrong: (-avg_w).exp(),
        ratio: log_ratio.exp().min(f64::MAX),
        log_ratio,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        // Inputs are f32, so agreement is to f32 precision.
        (a - b).abs() <= 1e-6 * (1.0 + b.abs())
    }

    #[test]
    fn ratio_and_forms_match_the_probabilities() {
        // Correct: one paraphrase with token probabilities 1/2 and 1/8, so p_c = 1/4 (their
        // geometric mean). Wrong: three answers with probabilities 1/2, 1/8, 1/8 per token.
        let correct = [vec![0.5f32.ln(), 0.125f32.ln()]];
        let wrong = [vec![0.5f32.ln()], vec![0.125f32.ln()], vec![0.125f32.ln()]];
        let t = truth_ratio(&correct, &wrong).unwrap().unwrap();
        // avg_w = (ln 2 + ln 8 + ln 8) / 3 = 7/3 ln 2.
        let p_c = 0.25;
        let p_w = 2f64.powf(-7.0 / 3.0);
        assert!(close(t.p_correct, p_c), "{}", t.p_correct);
        assert!(close(t.p_wrong, p_w), "{}", t.p_wrong);
        assert!(close(t.ratio, p_w / p_c));
        assert!(close(t.forget_form(), (p_w / p_c).min(p_c / p_w)));
        assert!(close(t.retain_form(), (1.0 - p_w / p_c).max(0.0)));
        assert!(close(t.meta_form(), p_c / (p_c + p_w)));
    }

    #[test]
    fn several_paraphrases_are_averaged_in_log_space() {
        let correct = [vec![-1.0f32], vec![-3.0, -3.0]];
        let wrong = [vec![-2.0f32]];
        let t = truth_ratio(&correct, &wrong).unwrap().unwrap();
        assert!(close(t.p_correct, (-2.0f64).exp()));
        assert!(close(t.ratio, 1.0));
        assert!(close(t.forget_form(), 1.0) && t.retain_form() == 0.0);
    }

    #[test]
    fn a_preferred_wrong_answer_gives_ratio_above_one() {
        let t = truth_ratio(&[vec![-3.0f32]], &[vec![-1.0f32]])
            .unwrap()
            .unwrap();
        assert!(close(t.ratio, 2f64.exp()));
        assert!(close(t.forget_form(), (-2f64).exp()));
        assert_eq!(t.retain_form(), 0.0);
        assert!(close(t.meta_form(), 1.0 / (1.0 + 2f64.exp())));
        // Extreme ratios stay finite in every form.
        let t = truth_ratio(&[vec![-900.0f32]], &[vec![-0.1f32]])
            .unwrap()
            .unwrap();
        assert!(t.ratio == f64::MAX && t.retain_form() == 0.0);
        assert!(t.forget_form() >= 0.0 && t.meta_form() >= 0.0 && t.meta_form().is_finite());
    }

    #[test]
    fn missing_sides_skip_and_bad_answers_are_errors() {
        let none: [Vec<f32>; 0] = [];
        assert_eq!(truth_ratio(&none, &[vec![-1.0f32]]).unwrap(), None);
        assert_eq!(truth_ratio(&[vec![-1.0f32]], &none).unwrap(), None);
        assert_eq!(
            truth_ratio(&[vec![-1.0f32]], &[vec![-1.0f32], vec![]]),
            Err(Error::EmptyAnswer(Side::Wrong, 1))
        );
        assert_eq!(
            truth_ratio(&[vec![f32::NEG_INFINITY]], &[vec![-1.0f32]]),
            Err(Error::NotFinite(Side::Correct, 0))
        );
        assert_eq!(avg_nll(&[]), None);
        assert_eq!(avg_nll(&[-1.0, -3.0]), Some(2.0));
    }
}
