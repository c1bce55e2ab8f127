//! Low-rank adapters (LoRA, Hu et al. 2021): each targeted projection `W [out, in]` computes
//! `x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ` with `A [r, in]` and `B [out, r]` trained and `W` frozen.
//!
//! Only the adapters are parameters: the frozen weights are shared with the model the adapters
//! were put on (no copy) and record no gradient graph (the fused ops then skip their weight
//! gradients), and the same
//! frozen weights without the adapters are the reference model at no cost. `B` starts at zero,
//! so a fresh adapter computes exactly what the frozen model does. Evaluation and the cache see
//! the merged weights `W + (α/r)·B·A` ([`crate::LanguageModel::merged`]).

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Config, ModelError, ops};

/// The projections an adapter can target, as Hugging Face (and PEFT) name them.
pub const TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Where each target lives in a decoder layer.
fn module_path(target: &str) -> &'static str {
    match target {
        "q_proj" | "k_proj" | "v_proj" | "o_proj" => "self_attn",
        _ => "mlp",
    }
}

/// A LoRA setting: rank, scale and the projections it adapts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    /// Rank `r` of each adapter (PEFT's `r`).
    pub rank: usize,
    /// `α`: the adapter's output is scaled by `α / r` (PEFT's `lora_alpha`).
    pub alpha: f64,
    /// The projections adapted in every layer (names from [`TARGETS`]).
    pub targets: Vec<String>,
    /// The learning rate of a phase trained with adapters is the phase's (full-training)
    /// rate times this. On a large pretrained checkpoint finetuned at ~1e-5, LoRA usually
    /// wants about ten times that; the presets' rates (2e-3 on a model trained from scratch)
    /// are already as high as adapters bear (ten times them diverged), hence 1 by default.
    #[serde(default = "default_rate_scale")]
    pub learning_rate_scale: f64,
}

/// [`LoraSettings::learning_rate_scale`]'s default.
pub const DEFAULT_RATE_SCALE: f64 = 1.0;

fn default_rate_scale() -> f64 {
    DEFAULT_RATE_SCALE
}

impl LoraSettings {
    /// Rank `r` with `α = 2r` on every linear projection of every layer (MLLMU-Med's setting is
    /// rank 128, α 256; PEFT calls the target set "all-linear").
    pub fn all_linear(rank: usize) -> Self {
        Self {
            rank,
            alpha: 2.0 * rank as f64,
            targets: TARGETS.iter().map(|t| (*t).to_owned()).collect(),
            learning_rate_scale: DEFAULT_RATE_SCALE,
        }
    }

    /// `α / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank.max(1) as f64
    }

    /// `(in, out)` of a target's projection in a model of this shape.
    fn widths(cfg: &Config, target: &str) -> (usize, usize) {
        let (d, m) = (cfg.hidden_size, cfg.intermediate_size);
        let kv = cfg.num_key_value_heads * cfg.head_dim();
        match target {
            "k_proj" | "v_proj" => (d, kv),
            "gate_proj" | "up_proj" => (d, m),
            "down_proj" => (m, d),
            _ => (d, d),
        }
    }

    /// Refuse a setting that does not fit the model, naming the setting and the numbers: an
    /// unknown or repeated target, a rank of zero or above a targeted projection's width, an
    /// `α` that is not a positive number.
    pub fn check(&self, cfg: &Config) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Input(format!("LoRA: {m}")));
        if self.targets.is_empty() {
            return bad(format!(
                "no target modules; choose among {}",
                TARGETS.join(", ")
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            if !TARGETS.contains(&t.as_str()) {
                return bad(format!(
                    "target module {t:?}: the model has no such projection (its layers have {})",
                    TARGETS.join(", ")
                ));
            }
            if self.targets[..i].contains(t) {
                return bad(format!("target module {t:?} is listed twice"));
            }
        }
        if self.rank == 0 {
            return bad("rank 0: an adapter needs a rank of at least 1".to_owned());
        }
        for t in &self.targets {
            let (inp, out) = Self::widths(cfg, t);
            if self.rank > inp.min(out) {
                return bad(format!(
                    "rank {} is above the width of {t} ({inp} in, {out} out): at most {}",
                    self.rank,
                    inp.min(out)
                ));
            }
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad(format!("alpha {} is not a positive number", self.alpha));
        }
        let scale = self.learning_rate_scale;
        if !(scale.is_finite() && scale > 0.0) {
            return bad(format!(
                "learning-rate scale {scale} is not a positive number"
            ));
        }
        Ok(())
    }

    /// Trainable scalars the adapters add to a model of this shape.
    pub fn parameter_count(&self, cfg: &Config) -> usize {
        let per_layer: usize = self
            .targets
            .iter()
            .map(|t| {
                let (inp, out) = Self::widths(cfg, t);
                self.rank * (inp + out)
            })
            .sum();
        per_layer * cfg.num_hidden_layers
    }
}

/// Name of a target's `A` (`lora_A`) or `B` (`lora_B`) matrix in layer `layer`, in Hugging
/// Face layout beside the weight it adapts (`model.layers.0.self_attn.q_proj.lora_A.weight`).
pub fn adapter_name(layer: usize, target: &str, matrix: &str) -> String {
    format!(
        "model.layers.{layer}.{}.{target}.{matrix}.weight",
        module_path(target)
    )
}

/// The adapters of one model: `A` and `B` of every targeted projection of every layer.
#[derive(Debug)]
pub struct Adapters {
    settings: LoraSettings,
    vars: BTreeMap<String, Var>,
}

impl Adapters {
    /// Fresh adapters for a model of shape `cfg`: `A` drawn from PEFT's default
    /// (Kaiming-uniform with `a = √5`, i.e. U(−1/√in, 1/√in)) on a seeded stream, `B = 0`.
    pub fn init(
        cfg: &Config,
        settings: &LoraSettings,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        settings.check(cfg)?;
        // Salted: callers pass the seed of the phase the adapters train in, whose own stream
        // (batch order) must not be the one that draws `A`.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4c6f_5241);
        let r = settings.rank;
        let mut vars = BTreeMap::new();
        for layer in 0..cfg.num_hidden_layers {
            for target in &settings.targets {
                let (inp, out) = LoraSettings::widths(cfg, target);
                let bound = 1.0 / (inp as f64).sqrt();
                let a: Vec<f32> = (0..r * inp)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect();
                let a = Tensor::from_vec(a, (r, inp), device)?;
                let b = Tensor::zeros((out, r), candle_core::DType::F32, device)?;
                vars.insert(adapter_name(layer, target, "lora_A"), Var::from_tensor(&a)?);
                vars.insert(adapter_name(layer, target, "lora_B"), Var::from_tensor(&b)?);
            }
        }
        Ok(Self {
            settings: settings.clone(),
            vars,
        })
    }

    /// The setting they were made with.
    pub fn settings(&self) -> &LoraSettings {
        &self.settings
    }

    /// Every adapter matrix, by name.
    pub fn vars(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// The matrices, sharing storage with the parameters (an optimiser step shows through).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// An independent trainable copy.
    pub fn deep_copy(&self) -> Result<Self, ModelError> {
        let mut vars = BTreeMap::new();
        for (k, v) in &self.vars {
            vars.insert(k.clone(), Var::from_tensor(&v.as_tensor().copy()?)?);
        }
        Ok(Self {
            settings: self.settings.clone(),
            vars,
        })
    }

    /// Number of trainable scalars.
    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.as_tensor().elem_count()).sum()
    }

    /// The frozen weights with every adapter merged in, `W + (α/r)·B·A`, as new tensors
    /// detached from any graph; the weights no adapter targets are copied as they are.
    pub fn merge(
        &self,
        frozen: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, ModelError> {
        let scale = self.settings.scale();
        let mut out = BTreeMap::new();
        for (name, w) in frozen {
            let merged = match name.strip_suffix(".weight") {
                Some(stem) => match (
                    self.vars.get(&format!("{stem}.lora_A.weight")),
                    self.vars.get(&format!("{stem}.lora_B.weight")),
                ) {
                    (Some(a), Some(b)) => merge_one(w, a.as_tensor(), b.as_tensor(), scale)?,
                    _ => w.copy()?.detach(),
                },
                None => w.copy()?.detach(),
            };
            out.insert(name.clone(), merged);
        }
        Ok(out)
    }
}

/// `W + scale·B·A`, detached; `B·A` with the model's own product (`x·wᵀ` with `x = B`,
/// `w = Aᵀ`), so the merge is the same bits on every CPU the model's products are.
pub(crate) fn merge_one(
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
) -> Result<Tensor, ModelError> {
    let a_t = a.detach().t()?.contiguous()?;
    let delta = ops::linear(&b.detach(), &a_t)?;
    Ok((w.detach() + (delta * scale)?)?)
}
