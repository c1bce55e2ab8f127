//! Loss terms that unlearning methods are built from, each as `../shared`'s SPEC states it
//! (`l_t = −log p(y_t | x, y_<t)`, `avg = mean_t l_t`, `log π = −Σ_t l_t`; prompt positions are
//! masked out by the host). A method composes a few of these with its weights, as the peer's
//! trainers compose GradDiff's parts into NPO; writing them once keeps every method on the
//! same definition.
//!
//! Reductions: a term "per example" averages over the batch; a term "per token" averages over
//! every answer token of the batch (the peer's `CrossEntropyLoss` with `ignore_index`).

use crate::Result;
use crate::method::{Batch, Model, Tensor};

/// `mean_batch avg(y|x)` of the current model: the answer NLL that finetuning minimises (the
/// retain term of most methods; gradient ascent is its negation).
pub fn answer_nll(batch: &Batch) -> Result<Tensor> {
    batch.mean_nll(Model::Current)?.mean()
}

/// `−mean_batch avg(y|x)`: gradient ascent on the answers.
pub fn gradient_ascent(batch: &Batch) -> Result<Tensor> {
    Ok(answer_nll(batch)?.neg())
}

/// `KL(p_ref ‖ p_θ)` averaged over the batch's answer positions (KL-Min's retain term).
pub fn kl_to_reference(batch: &Batch) -> Result<Tensor> {
    batch
        .kl_to_reference()?
        .sum()?
        .div(&batch.answer_mask().sum()?)
}

/// `log πθ(y|x) − log π_ref(y|x)` per example. `[B]`
pub fn log_ratio(batch: &Batch) -> Result<Tensor> {
    batch
        .sequence_logprob(Model::Current)?
        .sub(&batch.sequence_logprob(Model::Reference)?)
}

/// NPO: `−(2/β)·mean logσ(−β·[log πθ(y|x) − log π_ref(y|x)])`, the answers dispreferred with
/// no preferred one.
pub fn npo(beta: f64, batch: &Batch) -> Result<Tensor> {
    Ok(log_ratio(batch)?
        .scale(-beta)
        .log_sigmoid()
        .mean()?
        .scale(-2.0 / beta))
}

/// DPO: `−(2/β)·mean logσ(β·[(log πθ(w) − log π_ref(w)) − (log πθ(l) − log π_ref(l))])` for
/// preferred answers `win` and dispreferred `lose` to the same questions, row by row.
pub fn dpo(beta: f64, win: &Batch, lose: &Batch) -> Result<Tensor> {
    Ok(log_ratio(win)?
        .sub(&log_ratio(lose)?)?
        .scale(beta)
        .log_sigmoid()
        .mean()?
        .scale(-2.0 / beta))
}

/// SimNPO: `−(2/β)·mean logσ(β·(avg(y|x) − δ))`, length-normalised and reference-free.
pub fn simnpo(beta: f64, delta: f64, batch: &Batch) -> Result<Tensor> {
    Ok(batch
        .mean_nll(Model::Current)?
        .shift(-delta)
        .scale(beta)
        .log_sigmoid()
        .mean()?
        .scale(-2.0 / beta))
}

/// `p_t = p(y_t | x, y_<t)` of the current model at answer positions, cut from the gradient;
/// 1 elsewhere (the log-probs are 0 there), so mask what is built from it. `[B, T]`
pub fn token_probabilities(batch: &Batch) -> Result<Tensor> {
    Ok(batch.token_logprobs(Model::Current)?.exp().detach())
}

/// `−mean_t (w_t·l_t)` per token: gradient ascent with a (detached) weight per answer token.
/// Positions outside the answer count nothing whatever their weight.
pub fn weighted_ascent(batch: &Batch, weights: &Tensor) -> Result<Tensor> {
    // token_logprobs is log p = −l_t at answer positions and 0 elsewhere.
    batch
        .token_logprobs(Model::Current)?
        .mul(weights)?
        .mul(&batch.answer_mask())?
        .sum()?
        .div(&batch.answer_mask().sum()?)
}

/// Cross-entropy `−Σ_v q_v log pθ_v` of the current model against a target distribution `q`
/// (`[B, T, V]`, detached by the caller), averaged over the positions where `mask` (`[B, T]`)
/// is 1.
pub fn cross_entropy_to(batch: &Batch, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let log_p = batch.logits(Model::Current)?.log_softmax()?;
    target
        .mul(&log_p)?
        .sum_dim(2)?
        .neg()
        .mul(mask)?
        .sum()?
        .div(&mask.sum()?)
}

/// A logit offset that drives a token's probability to exactly zero in f32 (`exp(−1e9)` is 0)
/// without the NaN an actual −∞ would give in `0·(−∞)`.
pub const MASKED_LOGIT: f64 = -1e9;
