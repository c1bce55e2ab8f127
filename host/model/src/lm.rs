//! A language model: the decoder, its parameters and its tokenizer, with the primitives the
//! rest of Lethe uses (teacher-forced log-probs, losses, greedy answers, checkpoints).

use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};

use crate::data::{Sequence, TokenBatch};
use crate::llama::{Llama, Logits, Output, causal_mask, label_logprobs, sequential_positions};
use crate::lora::{Adapters, LoraSettings};
use crate::{Config, ModelError, Params, Tokenizer};

/// A trainable language model: every weight trained, or low-rank adapters on frozen weights
/// ([`LanguageModel::with_lora`]).
pub struct LanguageModel {
    cfg: Config,
    tokenizer: Tokenizer,
    /// The weights; under adapters, the frozen ones (shared with the model they were put on).
    params: Params,
    adapters: Option<Adapters>,
    llama: Llama,
    device: Device,
}

/// Teacher-forced statistics of one answer, per answer token.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerStats {
    /// `log p(y_t | x, y_<t)`.
    pub logprobs: Vec<f32>,
    /// Whether the most likely token is `y_t`.
    pub argmax_match: Vec<bool>,
    /// Mean of `log p(v)` over the vocabulary at that position.
    pub logprob_mean: Vec<f32>,
    /// Standard deviation of `log p(v)` under `p` at that position (Min-K%++).
    pub logprob_std: Vec<f32>,
}

impl LanguageModel {
    /// A model from its parts.
    pub fn new(cfg: Config, tokenizer: Tokenizer, params: Params) -> Result<Self, ModelError> {
        if tokenizer.vocab_size() > cfg.vocab_size {
            return Err(ModelError::Config(format!(
                "tokenizer has {} tokens but the model only {}",
                tokenizer.vocab_size(),
                cfg.vocab_size
            )));
        }
        let llama = Llama::new(&cfg, &params.tensors())?;
        let device = params
            .vars()
            .next()
            .map(|(_, v)| v.device().clone())
            .unwrap_or(Device::Cpu);
        Ok(Self {
            cfg,
            tokenizer,
            params,
            adapters: None,
            llama,
            device,
        })
    }

    /// This model's weights, frozen and shared (no copy), under fresh low-rank adapters: the
    /// adapters are the only parameters ([`LanguageModel::trainable`]), and until a step is
    /// taken the model computes what `self` does (`B = 0`). Refused, naming the setting, when
    /// it does not fit the shape.
    pub fn with_lora(&self, settings: &LoraSettings, seed: u64) -> Result<Self, ModelError> {
        if self.adapters.is_some() {
            return Err(ModelError::Input(
                "LoRA: the model already has adapters; merge them first".to_owned(),
            ));
        }
        let adapters = Adapters::init(&self.cfg, settings, seed, &self.device)?;
        let frozen = self.params.detached_tensors();
        let llama =
            Llama::with_adapters(&self.cfg, &frozen, &adapters.tensors(), settings.scale())?;
        Ok(Self {
            cfg: self.cfg.clone(),
            tokenizer: self.tokenizer.clone(),
            params: self.params.shared(),
            adapters: Some(adapters),
            llama,
            device: self.device.clone(),
        })
    }

    /// The adapters, when the model has them.
    pub fn adapters(&self) -> Option<&Adapters> {
        self.adapters.as_ref()
    }

    /// What an optimiser trains, by name: the adapters when there are any, else every weight.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        match &self.adapters {
            Some(a) => a.vars().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => self
                .params
                .vars()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The trainable parameters whose names (without the leading "model.") start with a
    /// prefix.
    pub fn select_trainable(&self, prefixes: &[String]) -> Vec<(String, Var)> {
        self.trainable()
            .into_iter()
            .filter(|(name, _)| {
                let short = name.strip_prefix("model.").unwrap_or(name);
                prefixes.iter().any(|p| short.starts_with(p.as_str()))
            })
            .collect()
    }

    /// Plugin-facing names of the trainable parameters: Hugging Face names without the
    /// leading "model.".
    pub fn trainable_names(&self) -> Vec<String> {
        self.trainable()
            .into_iter()
            .map(|(n, _)| n.strip_prefix("model.").unwrap_or(&n).to_owned())
            .collect()
    }

    /// The model as plain weights: under adapters, a new model of `W + (α/r)·B·A`; without,
    /// an independent copy.
    pub fn merged(&self) -> Result<Self, ModelError> {
        match &self.adapters {
            Some(a) => Self::new(
                self.cfg.clone(),
                self.tokenizer.clone(),
                Params::from_tensors(a.merge(&self.params.tensors())?)?,
            ),
            None => self.deep_copy(),
        }
    }

    /// [`LanguageModel::merged`] without a second copy of the weights: each adapted weight
    /// becomes `W + (α/r)·B·A` in its own storage, one matrix at a time.
    ///
    /// The frozen weights are shared with the model the adapters were put on, which then
    /// computes the merged model too (and so does a reference from
    /// [`LanguageModel::frozen_base`]): only for a start nothing reads afterwards. Without
    /// adapters, the model itself.
    pub fn merge_in_place(self) -> Result<Self, ModelError> {
        let Some(adapters) = &self.adapters else {
            return Ok(self);
        };
        let scale = adapters.settings().scale();
        let lora = adapters.tensors();
        for (name, var) in self.params.vars() {
            let Some(stem) = name.strip_suffix(".weight") else {
                continue;
            };
            if let (Some(a), Some(b)) = (
                lora.get(&format!("{stem}.lora_A.weight")),
                lora.get(&format!("{stem}.lora_B.weight")),
            ) {
                let merged = crate::lora::merge_one(var.as_tensor(), a, b, scale)?;
                var.set(&merged)?;
            }
        }
        Self::new(self.cfg, self.tokenizer, self.params)
    }

    /// A model over the same weights, shared (a step on either shows in both): training it
    /// trains `self`. Only for a start nothing reads afterwards.
    pub fn shared_view(&self) -> Result<Self, ModelError> {
        Self::new(
            self.cfg.clone(),
            self.tokenizer.clone(),
            self.params.shared(),
        )
    }

    /// The frozen weights without their adapters, as a reference model that shares their
    /// storage (no copy); None for a model without adapters (its weights move as it trains).
    pub fn frozen_base(&self) -> Result<Option<FrozenModel>, ModelError> {
        if self.adapters.is_none() {
            return Ok(None);
        }
        let frozen = self.params.detached_tensors();
        Ok(Some(FrozenModel {
            llama: Llama::new(&self.cfg, &frozen)?,
        }))
    }

    /// A frozen copy: same weights (merged, under adapters), no gradient, unaffected by later
    /// steps on `self`.
    pub fn frozen_copy(&self) -> Result<FrozenModel, ModelError> {
        let tensors = match &self.adapters {
            Some(a) => a.merge(&self.params.tensors())?,
            None => self.params.frozen_copy()?,
        };
        Ok(FrozenModel {
            llama: Llama::new(&self.cfg, &tensors)?,
        })
    }

    /// An independent trainable copy (adapters and frozen weights both copied).
    pub fn deep_copy(&self) -> Result<Self, ModelError> {
        let copy = Self::new(
            self.cfg.clone(),
            self.tokenizer.clone(),
            self.params.deep_copy()?,
        )?;
        match &self.adapters {
            None => Ok(copy),
            Some(a) => {
                let adapters = a.deep_copy()?;
                let frozen = copy.params.detached_tensors();
                let llama = Llama::with_adapters(
                    &self.cfg,
                    &frozen,
                    &adapters.tensors(),
                    a.settings().scale(),
                )?;
                Ok(Self {
                    llama,
                    adapters: Some(adapters),
                    ..copy
                })
            }
        }
    }

    /// The shape.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The decoder.
    pub fn llama(&self) -> &Llama {
        &self.llama
    }

    /// The device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Tokenise and pad sequences into a batch on this model's device.
    pub fn collate(&self, seqs: &[&Sequence]) -> Result<TokenBatch, ModelError> {
        TokenBatch::collate(seqs, self.tokenizer.pad, &self.device)
    }

    /// Teacher-forced forward pass over a batch.
    pub fn forward(&self, batch: &TokenBatch, keep_hidden: bool) -> Result<Output, ModelError> {
        teacher_forced(&self.llama, batch, keep_hidden)
    }

    /// The mean token NLL over the batch's loss positions (Hugging Face's causal-LM loss).
    ///
    /// The logits never enter the graph ([`Llama::label_logprobs`]).
    pub fn lm_loss(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        mean_nll(self.masked_logprobs(batch)?, batch)
    }

    /// [`masked_logprobs`] of a teacher-forced forward pass, `[B, T]`, without the logits in
    /// the graph ([`Llama::label_logprobs`]).
    pub fn masked_logprobs(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        fused_masked_logprobs(&self.llama, batch)
    }

    /// Per-answer statistics under teacher forcing, one entry per sequence.
    pub fn answer_stats(&self, seqs: &[&Sequence]) -> Result<Vec<AnswerStats>, ModelError> {
        answer_stats(&self.llama, &self.collate(seqs)?)
    }

    /// Greedy answers to prompts (token ids, `<bos>` first), cut at `<eos>`.
    pub fn generate_greedy(
        &self,
        prompts: &[Vec<u32>],
        max_new_tokens: usize,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        crate::generate::greedy(
            &self.llama,
            &self.device,
            prompts,
            self.cfg.eos_token_id,
            self.tokenizer.pad,
            max_new_tokens,
        )
    }

    /// Continuations of prompts (token ids, `<bos>` first) under a decoding rule, each ending
    /// at `<eos>`, at the first of `stop` found in its decoded text (the tokens up to and
    /// including the one that completed it are kept), or after `max_new_tokens`.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        max_new_tokens: usize,
        stop: &[String],
        decoding: crate::generate::Decoding,
    ) -> Result<Vec<crate::generate::Generated>, ModelError> {
        let decode = |ids: &[u32]| self.tokenizer.decode(ids);
        crate::generate::generate_with(
            &self.llama,
            &self.device,
            prompts,
            &crate::generate::GenerateOptions {
                eos: Some(self.cfg.eos_token_id),
                pad: self.tokenizer.pad,
                max_new: max_new_tokens,
                decoding,
                stop: stop.to_vec(),
                decode: Some(&decode),
            },
        )
    }

    /// Write `config.json`, `model.safetensors` and `tokenizer.json` (Hugging Face layout);
    /// under adapters, the merged weights (what the model computes).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let io = |e: std::io::Error| ModelError::Io(e.to_string());
        fs_err::create_dir_all(dir).map_err(io)?;
        fs_err::write(dir.join("config.json"), self.cfg.to_hf_json()).map_err(io)?;
        fs_err::write(dir.join("tokenizer.json"), self.tokenizer.to_json()?).map_err(io)?;
        match &self.adapters {
            Some(_) => self.merged()?.params.save(&dir.join("model.safetensors")),
            None => self.params.save(&dir.join("model.safetensors")),
        }
    }

    /// Read a model folder in Hugging Face layout.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let text = fs_err::read_to_string(dir.join("config.json"))
            .map_err(|e| ModelError::Io(e.to_string()))?;
        let cfg = Config::from_hf_json(&text)?;
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.exists() {
            return Err(ModelError::Io(format!(
                "{} has no tokenizer.json: Lethe asks the model questions in text, so a \
                 checkpoint needs its tokenizer",
                dir.display()
            )));
        }
        let tokenizer = Tokenizer::load_pretrained(
            &tok_path,
            (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id),
        )?;
        let params = Params::load(dir, device)?;
        Self::new(cfg, tokenizer, params)
    }
}

/// A frozen model: the reference a method compares against, or a baseline being observed.
pub struct FrozenModel {
    llama: Llama,
}

impl FrozenModel {
    /// The frozen network (for generation).
    pub fn llama(&self) -> &Llama {
        &self.llama
    }

    /// [`masked_logprobs`] of a teacher-forced forward pass, `[B, T]`, without gradient.
    pub fn masked_logprobs(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        fused_masked_logprobs(&self.llama.detached(), batch)
    }

    /// Teacher-forced forward pass; outputs carry no gradient.
    pub fn forward(&self, batch: &TokenBatch, keep_hidden: bool) -> Result<Output, ModelError> {
        let out = teacher_forced(&self.llama, batch, keep_hidden)?;
        Ok(Output {
            logits: out.logits.detach(),
            hidden: out.hidden.into_iter().map(|h| h.detach()).collect(),
        })
    }
}

fn fused_masked_logprobs(llama: &Llama, batch: &TokenBatch) -> Result<Tensor, ModelError> {
    let (b, t) = batch.input.dims2()?;
    let device = batch.input.device();
    let lp = llama.label_logprobs(
        &batch.input,
        &sequential_positions(b, t, device)?,
        &causal_mask(t, device)?,
        &batch.labels,
    )?;
    Ok((lp * &batch.mask)?)
}

fn teacher_forced(
    llama: &Llama,
    batch: &TokenBatch,
    keep_hidden: bool,
) -> Result<Output, ModelError> {
    let (b, t) = batch.input.dims2()?;
    let device = batch.input.device();
    let positions = sequential_positions(b, t, device)?;
    let mask = causal_mask(t, device)?;
    llama.forward(
        &batch.input,
        &positions,
        &mask,
        None,
        Logits::All,
        keep_hidden,
    )
}

/// Masked per-position log-probs of a batch's labels, `[B, T]`, zero outside the loss.
pub fn masked_logprobs(logits: &Tensor, batch: &TokenBatch) -> Result<Tensor, ModelError> {
    Ok((label_logprobs(logits, &batch.labels)? * &batch.mask)?)
}

/// Hugging Face's causal-LM loss: mean NLL over every loss position of the batch.
pub fn lm_loss_from(logits: &Tensor, batch: &TokenBatch) -> Result<Tensor, ModelError> {
    mean_nll(masked_logprobs(logits, batch)?, batch)
}

/// `−Σ lp / (loss positions)` of masked log-probs.
fn mean_nll(lp: Tensor, batch: &TokenBatch) -> Result<Tensor, ModelError> {
    let n = batch.mask.sum_all()?;
    Ok(lp.sum_all()?.neg()?.div(&n.maximum(1.0)?)?)
}

fn answer_stats(llama: &Llama, batch: &TokenBatch) -> Result<Vec<AnswerStats>, ModelError> {
    // Statistics carry no gradient: no graph, and the fused inference attention.
    let out = teacher_forced(&llama.detached(), batch, false)?;
    let logp = candle_nn::ops::log_softmax(&out.logits, D::Minus1)?;
    let label_lp = logp
        .gather(&batch.labels.unsqueeze(D::Minus1)?, D::Minus1)?
        .squeeze(D::Minus1)?
        .to_vec2::<f32>()?;
    let argmax = logp.argmax(D::Minus1)?.to_vec2::<u32>()?;
    let labels = batch.labels.to_vec2::<u32>()?;
    // Moments of log p under p: E[log p] and sqrt(E[(log p)^2] - E[log p]^2).
    let p = logp.exp()?;
    let mean = (&p * &logp)?.sum(D::Minus1)?;
    let second = (&p * logp.sqr()?)?.sum(D::Minus1)?;
    let std = (second - mean.sqr()?)?.relu()?.sqrt()?;
    let mean = mean.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let std = std.to_vec2::<f32>()?;
    let mut stats = Vec::with_capacity(batch.len());
    for (row, bits) in batch.mask_rows.iter().enumerate() {
        let mut s = AnswerStats {
            logprobs: Vec::new(),
            argmax_match: Vec::new(),
            logprob_mean: Vec::new(),
            logprob_std: Vec::new(),
        };
        for (pos, &on) in bits.iter().enumerate() {
            if on {
                s.logprobs.push(label_lp[row][pos]);
                s.argmax_match.push(argmax[row][pos] == labels[row][pos]);
                s.logprob_mean.push(mean[row][pos]);
                s.logprob_std.push(std[row][pos]);
            }
        }
        stats.push(s);
    }
    Ok(stats)
}

impl FrozenModel {
    /// Per-answer statistics under teacher forcing.
    pub fn answer_stats(&self, batch: &TokenBatch) -> Result<Vec<AnswerStats>, ModelError> {
        answer_stats(&self.llama, batch)
    }
}
