//! Named parameters: seeded initialisation, safetensors I/O, frozen copies.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Config, ModelError};

/// The trainable parameters of a model, by Hugging Face name, in a stable (sorted) order.
#[derive(Debug)]
pub struct Params {
    vars: BTreeMap<String, Var>,
}

/// Draw `n` values from N(0, std²) with Box–Muller on a seeded ChaCha stream, so that an
/// initialisation is the same on every machine (candle's CPU generator cannot be seeded).
fn normal(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// The names and shapes of a model's parameters, in a fixed order.
pub fn shapes(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let (d, m, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let kv = cfg.num_key_value_heads * cfg.head_dim();
    let mut out = vec![("model.embed_tokens.weight".to_owned(), vec![v, d])];
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        out.push((format!("{p}.input_layernorm.weight"), vec![d]));
        out.push((format!("{p}.self_attn.q_proj.weight"), vec![d, d]));
        out.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d]));
        out.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d]));
        if cfg.attention_bias {
            out.push((format!("{p}.self_attn.q_proj.bias"), vec![d]));
            out.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
            out.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
        }
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![d, d]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        out.push((format!("{p}.mlp.gate_proj.weight"), vec![m, d]));
        out.push((format!("{p}.mlp.up_proj.weight"), vec![m, d]));
        out.push((format!("{p}.mlp.down_proj.weight"), vec![d, m]));
    }
    out.push(("model.norm.weight".to_owned(), vec![d]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_owned(), vec![v, d]));
    }
    out
}

impl Params {
    /// Fresh parameters: N(0, 0.02²) weights (output projections scaled by 1/√(2L), as GPT-2
    /// does, so the residual stream starts small), unit norms, zero biases.
    pub fn init(cfg: &Config, seed: u64, device: &Device) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let residual_std = 0.02 / (2.0 * cfg.num_hidden_layers as f64).sqrt();
        let mut vars = BTreeMap::new();
        for (name, shape) in shapes(cfg) {
            let n: usize = shape.iter().product();
            let data = if name.ends_with("norm.weight") {
                vec![1f32; n]
            } else if name.ends_with(".bias") {
                vec![0f32; n]
            } else if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") {
                normal(&mut rng, n, residual_std)
            } else {
                normal(&mut rng, n, 0.02)
            };
            let t = Tensor::from_vec(data, shape, device)?;
            vars.insert(name, Var::from_tensor(&t)?);
        }
        Ok(Self { vars })
    }

    /// Wrap loaded tensors as trainable parameters (converted to f32).
    pub fn from_tensors(tensors: BTreeMap<String, Tensor>) -> Result<Self, ModelError> {
        let mut vars = BTreeMap::new();
        for (name, t) in tensors {
            vars.insert(name, Var::from_tensor(&t.to_dtype(DType::F32)?)?);
        }
        Ok(Self { vars })
    }

    /// The tensors, sharing storage with the parameters (an optimiser step shows through).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// An independent copy, detached from the gradient: a frozen reference.
    pub fn frozen_copy(&self) -> Result<BTreeMap<String, Tensor>, ModelError> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.vars {
            out.insert(k.clone(), v.as_tensor().copy()?.detach());
        }
        Ok(out)
    }

    /// The same parameters, sharing their storage (a step on either shows in both).
    pub(crate) fn shared(&self) -> Self {
        Self {
            vars: self.vars.clone(),
        }
    }

    /// An independent trainable copy.
    pub fn deep_copy(&self) -> Result<Self, ModelError> {
        Self::from_tensors(self.frozen_copy()?)
    }

    /// The parameters whose names (without the leading "model.") start with a prefix.
    pub fn select(&self, prefixes: &[String]) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .filter(|(name, _)| {
                let short = name.strip_prefix("model.").unwrap_or(name);
                prefixes.iter().any(|p| short.starts_with(p.as_str()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every parameter, by name.
    pub fn vars(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// Plugin-facing names: Hugging Face names without the leading "model.".
    pub fn short_names(&self) -> Vec<String> {
        self.vars
            .keys()
            .map(|n| n.strip_prefix("model.").unwrap_or(n).to_owned())
            .collect()
    }

    /// Number of scalar parameters.
    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.as_tensor().elem_count()).sum()
    }

    /// Write `model.safetensors` (f32). Written to a temporary file and renamed into place.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let tmp = path.with_extension("safetensors.tmp");
        let tensors: BTreeMap<String, Tensor> = self.tensors();
        candle_core::safetensors::save(&tensors.into_iter().collect(), &tmp)
            .map_err(|e| ModelError::Io(format!("{}: {e}", tmp.display())))?;
        fs_err::rename(&tmp, path).map_err(|e| ModelError::Io(e.to_string()))?;
        Ok(())
    }

    /// Read `model.safetensors`, or the shards listed in `model.safetensors.index.json`,
    /// converting bf16/f16 weights to f32.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files = if single.exists() {
            vec![single]
        } else if index.exists() {
            let text = fs_err::read_to_string(&index).map_err(|e| ModelError::Io(e.to_string()))?;
            let parsed: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::Weights(format!("{}: {e}", index.display())))?;
            let map = parsed
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| {
                    ModelError::Weights(format!("{}: no weight_map", index.display()))
                })?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            shards.sort();
            shards.dedup();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            return Err(ModelError::Weights(format!(
                "{}: neither model.safetensors nor model.safetensors.index.json",
                dir.display()
            )));
        };
        let mut tensors = BTreeMap::new();
        for file in files {
            let loaded = candle_core::safetensors::load(&file, device)
                .map_err(|e| ModelError::Weights(format!("{}: {e}", file.display())))?;
            tensors.extend(loaded);
        }
        Self::from_tensors(tensors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_seeded() -> Result<(), ModelError> {
        let cfg = Config::tiny(64);
        let a = Params::init(&cfg, 7, &Device::Cpu)?;
        let b = Params::init(&cfg, 7, &Device::Cpu)?;
        let c = Params::init(&cfg, 8, &Device::Cpu)?;
        let name = "model.layers.0.mlp.up_proj.weight";
        let get = |p: &Params| -> Result<Vec<f32>, ModelError> {
            Ok(p.tensors()[name].flatten_all()?.to_vec1()?)
        };
        assert_eq!(get(&a)?, get(&b)?);
        assert_ne!(get(&a)?, get(&c)?);
        let std = {
            let v = get(&a)?;
            (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt()
        };
        assert!((std - 0.02).abs() < 0.002, "std {std}");
        Ok(())
    }
}
