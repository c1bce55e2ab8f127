//! The `training` interface on the host side: tensors and batches that live in candle, handed
//! to a method plugin as opaque handles, and the step that runs backward and the optimiser.
//! The state it works on is `crate::state`'s.

use candle_core::{D, DType, Tensor};
use lethe_model::generate::{Decoding, GenerateOptions, Sampling, generate_with};
use lethe_model::llama::Output;
use lethe_model::train::Trainer;
use lethe_model::{FrozenModel, Sequence, masked_logprobs};
use wasmtime::component::Resource;

use crate::bindings::method::lethe::plugin::training::{
    self as wit, BinaryOp, Budget, Model, StepOutcome, UnaryOp,
};
use crate::bindings::method::lethe::plugin::types::PluginError;
use crate::sandbox::HostState;
pub use crate::state::{BatchEntry, FeedExample, SplitFeed, TensorEntry, TrainingState};

/// The budget record handed to the plugin.
pub(crate) fn budget(state: &TrainingState) -> Budget {
    Budget {
        max_steps: state.max_steps,
        batch_size: state.batch_size,
        split_sizes: state
            .feeds
            .iter()
            .map(|(k, f)| (k.clone(), f.examples.len() as u32))
            .collect(),
    }
}

type WResult<T> = wasmtime::Result<T>;

fn denied(m: impl Into<String>) -> PluginError {
    PluginError::Denied(m.into())
}

fn invalid(m: impl Into<String>) -> PluginError {
    PluginError::InvalidInput(m.into())
}

/// Bytes of a tensor's elements.
fn tensor_bytes(t: &Tensor) -> usize {
    t.elem_count().saturating_mul(t.dtype().size_in_bytes())
}

/// Bytes of a batch: its tokens, mask and cached forward outputs.
fn batch_bytes(b: &BatchEntry) -> usize {
    let output = |o: &Output| {
        o.hidden
            .iter()
            .map(tensor_bytes)
            .fold(tensor_bytes(&o.logits), usize::saturating_add)
    };
    [
        tensor_bytes(&b.batch.input),
        tensor_bytes(&b.batch.labels),
        tensor_bytes(&b.batch.mask),
        b.current.as_ref().map_or(0, |(_, o)| output(o)),
        b.reference.as_ref().map_or(0, output),
        b.current_lp.as_ref().map_or(0, |(_, t)| tensor_bytes(t)),
        b.reference_lp.as_ref().map_or(0, tensor_bytes),
    ]
    .into_iter()
    .fold(0, usize::saturating_add)
}

fn host_err(e: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::format_err!("{e}")
}

impl HostState {
    fn training(&mut self) -> WResult<&mut TrainingState> {
        self.training
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("training imports called outside of unlearn"))
    }

    fn tensor(&self, r: &Resource<TensorEntry>) -> WResult<Tensor> {
        Ok(self.table.get(r)?.0.clone())
    }

    fn push_tensor(&mut self, t: Tensor) -> WResult<Resource<TensorEntry>> {
        let bytes = tensor_bytes(&t);
        self.push_counted(t, bytes)
    }

    /// Push a tensor counted as `bytes` (more than its own elements when it keeps a forward
    /// pass's graph alive).
    fn push_counted(&mut self, t: Tensor, bytes: usize) -> WResult<Resource<TensorEntry>> {
        self.reserve_handle()?;
        self.reserve_bytes(bytes)?;
        Ok(self.table.push(TensorEntry(t, bytes))?)
    }

    /// What a tensor taken from a forward pass of batch `b` under `model` keeps alive: its
    /// own elements, and for the current model (trained, so its graph is kept for the backward
    /// pass) an estimate of the activations the graph holds. A plugin that keeps the logits of
    /// many batches keeps all their graphs.
    fn forward_bytes(
        &mut self,
        b: &Resource<BatchEntry>,
        model: Model,
        t: &Tensor,
    ) -> WResult<usize> {
        let own = tensor_bytes(t);
        if !matches!(model, Model::Current) {
            return Ok(own);
        }
        let (batch, tokens) = self.table.get(b)?.batch.input.dims2().map_err(host_err)?;
        let cfg = self.training()?.model.config();
        let (d, f, h) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.num_attention_heads,
        );
        // Per layer: two norm inputs, q, k, v and the attention output (6·D), the attention
        // probabilities (H·T), the MLP's gate, up and product (3·F) and its output (D); then
        // the embeddings and the final norm (2·D) and the logits (V). f32 throughout.
        let per_token = cfg
            .num_hidden_layers
            .saturating_mul(7 * d + 3 * f + h * tokens)
            .saturating_add(2 * d + cfg.vocab_size);
        Ok(own.saturating_add(
            batch
                .saturating_mul(tokens)
                .saturating_mul(per_token)
                .saturating_mul(4),
        ))
    }

    fn push_batch(&mut self, mut b: BatchEntry) -> WResult<Resource<BatchEntry>> {
        self.reserve_handle()?;
        b.bytes = batch_bytes(&b);
        self.reserve_bytes(b.bytes)?;
        Ok(self.table.push(b)?)
    }

    fn reserve_handle(&mut self) -> WResult<()> {
        if self.live_handles >= self.sandbox_limits.max_live_handles {
            return Err(wasmtime::format_err!(
                "plugin holds more than {} tensor/batch handles",
                self.sandbox_limits.max_live_handles
            ));
        }
        self.live_handles += 1;
        Ok(())
    }

    /// Count `bytes` more held by the plugin, or trap past the limit. The count is an upper
    /// bound (a tensor shared by two handles counts twice): what matters is that a plugin
    /// that keeps everything it makes stops at the limit, not when the machine runs out.
    fn reserve_bytes(&mut self, bytes: usize) -> WResult<()> {
        let total = self.live_bytes.saturating_add(bytes);
        if total > self.sandbox_limits.max_live_bytes {
            return Err(wasmtime::format_err!(
                "plugin holds more than {} MiB of tensors (the host's limit of live tensor \
                 memory, --plugin-tensor-mib)",
                self.sandbox_limits.max_live_bytes >> 20
            ));
        }
        self.live_bytes = total;
        Ok(())
    }

    /// A batch's cached outputs changed: count its new size.
    fn recount_batch(&mut self, b: &Resource<BatchEntry>) -> WResult<()> {
        let entry = self.table.get_mut(b)?;
        let (old, new) = (entry.bytes, batch_bytes(entry));
        entry.bytes = new;
        self.live_bytes = self.live_bytes.saturating_sub(old);
        self.reserve_bytes(new)
    }

    fn check_elements(&self, shape: &[usize]) -> Result<(), PluginError> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        match n {
            Some(n) if n <= self.sandbox_limits.max_tensor_elements => Ok(()),
            _ => Err(denied(format!(
                "a tensor of shape {shape:?} exceeds the host's limit of {} elements",
                self.sandbox_limits.max_tensor_elements
            ))),
        }
    }

    /// A reduction over one dimension (removed) or, with `dim` none, over all elements.
    fn reduce(
        &mut self,
        this: Resource<TensorEntry>,
        dim: Option<u32>,
        all: fn(&Tensor) -> candle_core::Result<Tensor>,
        along: fn(&Tensor, usize) -> candle_core::Result<Tensor>,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let t = self.tensor(&this)?;
        let r = match dim {
            None => all(&t),
            Some(d) => match dim_arg(&t, d) {
                Ok(d) => along(&t, d),
                Err(e) => return Ok(Err(self.denial(e))),
            },
        }
        .map_err(host_err)?;
        Ok(Ok(self.push_tensor(r)?))
    }

    /// Forward pass of a batch under a model, cached for the current step.
    fn forward(
        &mut self,
        b: &Resource<BatchEntry>,
        model: Model,
    ) -> WResult<Result<Output, PluginError>> {
        let steps = self.training()?.steps();
        let entry = self.table.get(b)?;
        match model {
            Model::Current => {
                if let Some((s, out)) = &entry.current
                    && *s == steps
                {
                    return Ok(Ok(clone_output(out)));
                }
            }
            Model::Reference => {
                if let Some(out) = &entry.reference {
                    return Ok(Ok(clone_output(out)));
                }
            }
        }
        let batch = entry.batch.clone();
        let training = self.training()?;
        let out = match model {
            Model::Current => training.model.forward(&batch, true).map_err(host_err)?,
            Model::Reference => match reference_model(training) {
                Ok(r) => r.forward(&batch, true).map_err(host_err)?,
                Err(e) => return Ok(Err(self.denial(e))),
            },
        };
        let entry = self.table.get_mut(b)?;
        match model {
            Model::Current => entry.current = Some((steps, clone_output(&out))),
            Model::Reference => entry.reference = Some(clone_output(&out)),
        }
        self.recount_batch(b)?;
        Ok(Ok(out))
    }

    /// Masked label log-probs of a batch under a model, cached for the current step. A full
    /// forward pass of the same step, if a method already asked for one (for logits or hidden
    /// states), supplies them; otherwise they come from the fused path, whose backward pass
    /// never hands candle the `[B, T, V]` logits' gradient (the same numbers either way).
    fn fused_logprobs(
        &mut self,
        b: &Resource<BatchEntry>,
        model: Model,
    ) -> WResult<Result<Tensor, PluginError>> {
        let steps = self.training()?.steps();
        let entry = self.table.get(b)?;
        let (full, cached) = match model {
            Model::Current => (
                entry
                    .current
                    .as_ref()
                    .filter(|(s, _)| *s == steps)
                    .map(|(_, o)| o.logits.clone()),
                entry
                    .current_lp
                    .as_ref()
                    .filter(|(s, _)| *s == steps)
                    .map(|(_, lp)| lp.clone()),
            ),
            Model::Reference => (
                entry.reference.as_ref().map(|o| o.logits.clone()),
                entry.reference_lp.clone(),
            ),
        };
        if let Some(lp) = cached {
            return Ok(Ok(lp));
        }
        let batch = entry.batch.clone();
        if let Some(logits) = full {
            return Ok(Ok(masked_logprobs(&logits, &batch).map_err(host_err)?));
        }
        let training = self.training()?;
        let lp = match model {
            Model::Current => training.model.masked_logprobs(&batch).map_err(host_err)?,
            Model::Reference => match reference_model(training) {
                Ok(r) => r.masked_logprobs(&batch).map_err(host_err)?,
                Err(e) => return Ok(Err(self.denial(e))),
            },
        };
        let entry = self.table.get_mut(b)?;
        match model {
            Model::Current => entry.current_lp = Some((steps, lp.clone())),
            Model::Reference => entry.reference_lp = Some(lp.clone()),
        }
        self.recount_batch(b)?;
        Ok(Ok(lp))
    }
}

/// The reference model, or the error a method gets when its manifest did not ask for one.
fn reference_model(training: &TrainingState) -> Result<&FrozenModel, PluginError> {
    training
        .reference
        .as_ref()
        .ok_or_else(|| denied("no reference model: declare needs-reference in the manifest"))
}

/// Longest answer `with-sampled-answers` draws, in tokens.
const SAMPLED_ANSWER_MAX_TOKENS: usize = 64;

/// Draws `with-sampled-answers` makes per row before it keeps a repeat of the reference.
const SAMPLE_DRAWS: usize = 8;

/// Each row's answer tokens (without `<eos>`), read back from the labels under the mask.
fn answer_tokens(batch: &lethe_model::TokenBatch) -> candle_core::Result<Vec<Vec<u32>>> {
    let labels = batch.labels.to_vec2::<u32>()?;
    Ok(labels
        .iter()
        .zip(&batch.mask_rows)
        .map(|(row, mask)| {
            let mut ids: Vec<u32> = row
                .iter()
                .zip(mask)
                .filter(|(_, on)| **on)
                .map(|(id, _)| *id)
                .collect();
            ids.pop();
            ids
        })
        .collect())
}

fn clone_output(o: &Output) -> Output {
    Output {
        logits: o.logits.clone(),
        hidden: o.hidden.clone(),
    }
}

fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

fn dim_arg(t: &Tensor, dim: u32) -> Result<usize, PluginError> {
    let rank = t.rank();
    if (dim as usize) < rank {
        Ok(dim as usize)
    } else {
        Err(invalid(format!(
            "dimension {dim} out of range for a tensor of rank {rank}"
        )))
    }
}

/// `log σ(x) = min(x, 0) − log(1 + e^{−|x|})`: stable for large |x|, differentiable.
fn log_sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    let tail = ((x.abs()?.neg()?.exp()? + 1.0)?).log()?;
    x.minimum(0.0)? - tail
}

fn unary(x: &Tensor, op: UnaryOp) -> candle_core::Result<Tensor> {
    match op {
        UnaryOp::Neg => x.neg(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.log(),
        UnaryOp::LogSigmoid => log_sigmoid(x),
        UnaryOp::Sigmoid => log_sigmoid(x)?.exp(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Sqr => x.sqr(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Relu => x.relu(),
        UnaryOp::Tanh => x.tanh(),
    }
}

fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out.push(match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        });
    }
    Some(out)
}

impl wit::HostTensor for HostState {
    fn shape(&mut self, this: Resource<TensorEntry>) -> WResult<Vec<u32>> {
        self.touch()?;
        Ok(self
            .tensor(&this)?
            .dims()
            .iter()
            .map(|&d| d as u32)
            .collect())
    }

    fn unary(
        &mut self,
        this: Resource<TensorEntry>,
        op: UnaryOp,
    ) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let t = unary(&self.tensor(&this)?, op).map_err(host_err)?;
        self.push_tensor(t)
    }

    fn binary(
        &mut self,
        this: Resource<TensorEntry>,
        op: BinaryOp,
        other: Resource<TensorEntry>,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let a = self.tensor(&this)?;
        let b = self.tensor(&other)?;
        let Some(shape) = broadcast_shape(a.dims(), b.dims()) else {
            return Ok(Err(invalid(format!(
                "shapes {:?} and {:?} do not broadcast",
                a.dims(),
                b.dims()
            ))));
        };
        if let Err(e) = self.check_elements(&shape) {
            return Ok(Err(self.denial(e)));
        }
        let r = match op {
            BinaryOp::Add => a.broadcast_add(&b),
            BinaryOp::Sub => a.broadcast_sub(&b),
            BinaryOp::Mul => a.broadcast_mul(&b),
            BinaryOp::Div => a.broadcast_div(&b),
            BinaryOp::Maximum => a.broadcast_maximum(&b),
            BinaryOp::Minimum => a.broadcast_minimum(&b),
        }
        .map_err(host_err)?;
        Ok(Ok(self.push_tensor(r)?))
    }

    fn affine(
        &mut self,
        this: Resource<TensorEntry>,
        mul: f64,
        add: f64,
    ) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let t = self.tensor(&this)?.affine(mul, add).map_err(host_err)?;
        self.push_tensor(t)
    }

    fn powf(
        &mut self,
        this: Resource<TensorEntry>,
        exponent: f64,
    ) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let t = self.tensor(&this)?.powf(exponent).map_err(host_err)?;
        self.push_tensor(t)
    }

    fn sum(
        &mut self,
        this: Resource<TensorEntry>,
        dim: Option<u32>,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.reduce(this, dim, Tensor::sum_all, |t, d| t.sum(d))
    }

    fn mean(
        &mut self,
        this: Resource<TensorEntry>,
        dim: Option<u32>,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.reduce(this, dim, Tensor::mean_all, |t, d| t.mean(d))
    }

    fn max(
        &mut self,
        this: Resource<TensorEntry>,
        dim: u32,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let t = self.tensor(&this)?;
        let d = match dim_arg(&t, dim) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let r = t.max(d).map_err(host_err)?;
        Ok(Ok(self.push_tensor(r)?))
    }

    fn log_softmax(
        &mut self,
        this: Resource<TensorEntry>,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let t = self.tensor(&this)?;
        if t.rank() == 0 {
            return Ok(Err(invalid("log-softmax of a scalar")));
        }
        let r = candle_nn::ops::log_softmax(&t, D::Minus1).map_err(host_err)?;
        Ok(Ok(self.push_tensor(r)?))
    }

    fn detach(&mut self, this: Resource<TensorEntry>) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let t = self.tensor(&this)?.detach();
        self.push_tensor(t)
    }

    fn to_list(&mut self, this: Resource<TensorEntry>) -> WResult<Result<Vec<f32>, PluginError>> {
        self.touch()?;
        let t = self.tensor(&this)?;
        if t.elem_count() > 1 << 20 {
            return Ok(Err(self.denial(denied(format!(
                "reading {} values back is refused (limit 1048576)",
                t.elem_count()
            )))));
        }
        Ok(Ok(t
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(host_err)?))
    }

    fn to_scalar(&mut self, this: Resource<TensorEntry>) -> WResult<Result<f64, PluginError>> {
        self.touch()?;
        let t = self.tensor(&this)?;
        if t.elem_count() != 1 {
            return Ok(Err(invalid(format!(
                "to-scalar of a tensor of shape {:?}",
                t.dims()
            ))));
        }
        let v = t
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(host_err)?;
        Ok(Ok(f64::from(v[0])))
    }

    fn drop(&mut self, rep: Resource<TensorEntry>) -> WResult<()> {
        self.touch()?;
        let entry = self.table.delete(rep)?;
        self.live_handles = self.live_handles.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(entry.1);
        Ok(())
    }
}

impl wit::HostBatch for HostState {
    fn size(&mut self, this: Resource<BatchEntry>) -> WResult<u32> {
        self.touch()?;
        Ok(self.table.get(&this)?.batch.len() as u32)
    }

    fn split(&mut self, this: Resource<BatchEntry>) -> WResult<String> {
        self.touch()?;
        Ok(self.table.get(&this)?.split.clone())
    }

    fn answer_mask(&mut self, this: Resource<BatchEntry>) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let m = self.table.get(&this)?.batch.mask.clone();
        self.push_tensor(m)
    }

    fn token_logprobs(
        &mut self,
        this: Resource<BatchEntry>,
        model: Model,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        match self.fused_logprobs(&this, model)? {
            Ok(lp) => {
                let bytes = self.forward_bytes(&this, model, &lp)?;
                Ok(Ok(self.push_counted(lp, bytes)?))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    fn logits(
        &mut self,
        this: Resource<BatchEntry>,
        model: Model,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let out = match self.forward(&this, model)? {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let bytes = self.forward_bytes(&this, model, &out.logits)?;
        Ok(Ok(self.push_counted(out.logits, bytes)?))
    }

    fn labels_one_hot(&mut self, this: Resource<BatchEntry>) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let vocab = self.training()?.model.config().vocab_size;
        let batch = self.table.get(&this)?.batch.clone();
        let oh = candle_nn::encoding::one_hot(batch.labels.clone(), vocab, 1f32, 0f32)
            .and_then(|oh| oh.broadcast_mul(&batch.mask.unsqueeze(D::Minus1)?))
            .map_err(host_err)?;
        self.push_tensor(oh)
    }

    fn kl_to_reference(
        &mut self,
        this: Resource<BatchEntry>,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let reference = match self.forward(&this, Model::Reference)? {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let current = match self.forward(&this, Model::Current)? {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let mask = self.table.get(&this)?.batch.mask.clone();
        let kl = (|| -> candle_core::Result<Tensor> {
            let lp_ref = candle_nn::ops::log_softmax(&reference.logits, D::Minus1)?;
            let lp_cur = candle_nn::ops::log_softmax(&current.logits, D::Minus1)?;
            let kl = (lp_ref.exp()? * (&lp_ref - &lp_cur)?)?.sum(D::Minus1)?;
            kl * mask
        })()
        .map_err(host_err)?;
        Ok(Ok(self.push_tensor(kl)?))
    }

    fn hidden_state(
        &mut self,
        this: Resource<BatchEntry>,
        model: Model,
        layer: u32,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let out = match self.forward(&this, model)? {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        match out.hidden.get(layer as usize) {
            Some(h) => {
                let bytes = self.forward_bytes(&this, model, h)?;
                Ok(Ok(self.push_counted(h.clone(), bytes)?))
            }
            None => Ok(Err(invalid(format!(
                "layer {layer} out of range: the model has {} layers",
                out.hidden.len()
            )))),
        }
    }

    fn with_idk_answers(
        &mut self,
        this: Resource<BatchEntry>,
    ) -> WResult<Result<Resource<BatchEntry>, PluginError>> {
        self.touch()?;
        let entry = self.table.get(&this)?;
        let questions = entry.questions.clone();
        let split = format!("{}+idk", entry.split);
        let training = self.training()?;
        if training.idk_answers.is_empty() {
            return Ok(Err(self.denial(denied("the suite has no idk split"))));
        }
        // The split feeds cut their sequences to the model's context; so must this batch, or
        // a long question would leave it wider than the model takes.
        let max_len = training.model.config().max_position_embeddings;
        let mut seqs = Vec::with_capacity(questions.len());
        for q in &questions {
            let Some(q) = q else {
                return Ok(Err(invalid("with-idk-answers needs a batch of questions")));
            };
            let pick = rand::Rng::random_range(&mut training.rng, 0..training.idk_answers.len());
            let answer = training.idk_answers[pick].clone();
            let seq = Sequence::qa_within(training.model.tokenizer(), q, &answer, max_len)
                .map_err(|e| host_err(format!("idk answer {pick}: {e}")))?;
            seqs.push(seq);
        }
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = training.model.collate(&refs).map_err(host_err)?;
        let b = self.push_batch(BatchEntry::new(split, batch, questions))?;
        Ok(Ok(b))
    }

    fn answer_mask_from(
        &mut self,
        this: Resource<BatchEntry>,
        first: u32,
    ) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let batch = &self.table.get(&this)?.batch;
        let (rows, width) = (
            batch.mask_rows.len(),
            batch.mask_rows.first().map_or(0, Vec::len),
        );
        let mut values = Vec::with_capacity(rows * width);
        for row in &batch.mask_rows {
            let mut seen = 0u32;
            for &on in row {
                values.push(if on && seen >= first { 1f32 } else { 0f32 });
                seen += u32::from(on);
            }
        }
        let device = batch.mask.device().clone();
        let m = Tensor::from_vec(values, (rows, width), &device).map_err(host_err)?;
        self.push_tensor(m)
    }

    fn with_sampled_answers(
        &mut self,
        this: Resource<BatchEntry>,
        model: Model,
        temperature: f64,
    ) -> WResult<Result<Resource<BatchEntry>, PluginError>> {
        self.touch()?;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Ok(Err(invalid(format!(
                "temperature {temperature} is not a positive number"
            ))));
        }
        let entry = self.table.get(&this)?;
        let questions = entry.questions.clone();
        let split = format!("{}+sampled", entry.split);
        let references = answer_tokens(&entry.batch).map_err(host_err)?;
        let training = self.training()?;
        let mut prompts = Vec::with_capacity(questions.len());
        for q in &questions {
            let Some(q) = q else {
                return Ok(Err(invalid(
                    "with-sampled-answers needs a batch of questions",
                )));
            };
            prompts.push(
                training
                    .model
                    .tokenizer()
                    .encode_prompt(q)
                    .map_err(host_err)?,
            );
        }
        let tok = training.model.tokenizer();
        let reference_text = references
            .iter()
            .map(|ids| tok.decode(ids).map(|t| t.trim().to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(host_err)?;
        // Twice the longest reference answer leaves room for an alternative of another
        // length; the context bounds it.
        let longest = references.iter().map(Vec::len).max().unwrap_or(0);
        let longest_prompt = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let room = training
            .model
            .config()
            .max_position_embeddings
            .saturating_sub(longest_prompt + 1);
        let max_new = (2 * longest).clamp(8, SAMPLED_ANSWER_MAX_TOKENS).min(room);
        if max_new == 0 {
            return Ok(Err(invalid("the questions leave no room for an answer")));
        }
        let llama = match model {
            Model::Current => training.model.llama(),
            // A field borrow (not `reference_model`), so the generator stays borrowable.
            Model::Reference => match training.reference.as_ref() {
                Some(r) => r.llama(),
                None => {
                    return Ok(Err(self.denial(denied(
                        "no reference model: declare needs-reference in the manifest",
                    ))));
                }
            },
        };
        let eos = training.model.config().eos_token_id;
        let mut chosen: Vec<Option<Vec<u32>>> = vec![None; prompts.len()];
        let mut last: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        for _ in 0..SAMPLE_DRAWS {
            let open: Vec<usize> = (0..prompts.len())
                .filter(|&i| chosen[i].is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            let seed = rand::Rng::random::<u64>(&mut training.rng);
            let rows: Vec<Vec<u32>> = open.iter().map(|&i| prompts[i].clone()).collect();
            let options = GenerateOptions {
                eos: Some(eos),
                pad: tok.pad,
                max_new,
                decoding: Decoding::Sample(Sampling {
                    temperature,
                    top_k: 0,
                    top_p: 1.0,
                    seed,
                }),
                stop: Vec::new(),
                decode: None,
            };
            let drawn =
                generate_with(llama, training.model.device(), &rows, &options).map_err(host_err)?;
            for (&i, g) in open.iter().zip(drawn) {
                let text = tok.decode(&g.tokens).map_err(host_err)?;
                let text = text.trim();
                if !text.is_empty() && text != reference_text[i] {
                    chosen[i] = Some(g.tokens);
                } else {
                    last[i] = g.tokens;
                }
            }
        }
        let seqs: Vec<Sequence> = prompts
            .into_iter()
            .zip(chosen.into_iter().zip(last))
            .map(|(prompt, (chosen, last))| {
                let loss_from = prompt.len();
                let mut ids = prompt;
                ids.extend(chosen.unwrap_or(last));
                ids.push(eos);
                Sequence { ids, loss_from }
            })
            .collect();
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = training.model.collate(&refs).map_err(host_err)?;
        let b = self.push_batch(BatchEntry::new(split, batch, questions))?;
        Ok(Ok(b))
    }

    fn drop(&mut self, rep: Resource<BatchEntry>) -> WResult<()> {
        self.touch()?;
        let entry = self.table.delete(rep)?;
        self.live_handles = self.live_handles.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(entry.bytes);
        Ok(())
    }
}

impl wit::Host for HostState {
    fn scalar(&mut self, value: f64) -> WResult<Resource<TensorEntry>> {
        self.touch()?;
        let device = self.training()?.model.device().clone();
        let t = Tensor::new(value as f32, &device).map_err(host_err)?;
        self.push_tensor(t)
    }

    fn full(
        &mut self,
        shape: Vec<u32>,
        value: f64,
    ) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let shape = dims(&shape);
        if let Err(e) = self.check_elements(&shape) {
            return Ok(Err(self.denial(e)));
        }
        let device = self.training()?.model.device().clone();
        let t = Tensor::full(value as f32, shape, &device).map_err(host_err)?;
        Ok(Ok(self.push_tensor(t)?))
    }

    fn uniform(&mut self, shape: Vec<u32>) -> WResult<Result<Resource<TensorEntry>, PluginError>> {
        self.touch()?;
        let shape = dims(&shape);
        if let Err(e) = self.check_elements(&shape) {
            return Ok(Err(self.denial(e)));
        }
        let training = self.training()?;
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| rand::Rng::random::<f32>(&mut training.rng))
            .collect();
        let t = Tensor::from_vec(values, shape, training.model.device()).map_err(host_err)?;
        Ok(Ok(self.push_tensor(t)?))
    }

    fn next_batch(
        &mut self,
        split: String,
        size: u32,
    ) -> WResult<Result<Resource<BatchEntry>, PluginError>> {
        self.touch()?;
        let training = self.training()?;
        if size == 0 || size > training.max_batch {
            return Ok(Err(invalid(format!(
                "batch size {size} is outside 1..={}",
                training.max_batch
            ))));
        }
        let Some(feed) = training.feeds.get_mut(&split) else {
            let reason = training.refused.get(&split).cloned().unwrap_or_else(|| {
                format!(
                    "there is no split '{split}' this method may read (readable: {})",
                    training
                        .feeds
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            return Ok(Err(self.denial(denied(reason))));
        };
        let examples = feed.draw(size as usize, &mut training.rng);
        if examples.is_empty() {
            return Ok(Err(invalid(format!("split '{split}' is empty"))));
        }
        let refs: Vec<&Sequence> = examples.iter().map(|e| &e.sequence).collect();
        let batch = training.model.collate(&refs).map_err(host_err)?;
        let questions = examples.into_iter().map(|e| e.question).collect();
        let b = self.push_batch(BatchEntry::new(split, batch, questions))?;
        Ok(Ok(b))
    }

    fn step(&mut self, loss: Resource<TensorEntry>) -> WResult<Result<StepOutcome, PluginError>> {
        self.touch()?;
        let loss = self.tensor(&loss)?;
        let training = self.training()?;
        if training.steps() >= training.max_steps {
            let message = format!("the step budget of {} is spent", training.max_steps);
            return Ok(Err(self.denial(denied(message))));
        }
        let training = self.training()?;
        if loss.elem_count() != 1 {
            return Ok(Err(invalid(format!(
                "the loss must have one element, not shape {:?}",
                loss.dims()
            ))));
        }
        let loss = loss
            .flatten_all()
            .and_then(|l| l.sum_all())
            .map_err(host_err)?;
        let value = match training.trainer.step(&loss) {
            Ok(v) => v,
            Err(lethe_model::ModelError::NonFinite(m)) => {
                return Ok(Err(PluginError::Failed(format!("training diverged: {m}"))));
            }
            Err(e) => return Err(host_err(e)),
        };
        training.losses.push(value);
        let outcome = StepOutcome {
            step: training.steps(),
            steps_left: training.max_steps - training.steps(),
            loss: value,
        };
        self.progressed();
        Ok(Ok(outcome))
    }

    fn num_layers(&mut self) -> WResult<u32> {
        self.touch()?;
        Ok(self.training()?.model.config().num_hidden_layers as u32)
    }

    fn hidden_size(&mut self) -> WResult<u32> {
        self.touch()?;
        Ok(self.training()?.model.config().hidden_size as u32)
    }

    fn parameter_names(&mut self) -> WResult<Vec<String>> {
        self.touch()?;
        Ok(self.training()?.model.trainable_names())
    }

    fn train_only(&mut self, prefixes: Vec<String>) -> WResult<Result<(), PluginError>> {
        self.touch()?;
        let training = self.training()?;
        let selected = training.model.select_trainable(&prefixes);
        if selected.is_empty() {
            return Ok(Err(invalid(format!(
                "no parameter starts with any of {prefixes:?}"
            ))));
        }
        let vars = selected.into_iter().map(|(_, v)| v).collect();
        training.trainer = Trainer::new(vars, &training.optim).map_err(host_err)?;
        Ok(Ok(()))
    }
}
