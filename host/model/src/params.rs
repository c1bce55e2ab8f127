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

    /// The tensors, sharing storage with the parameters but recording no gradient graph
    /// (frozen weights under adapters).
    pub fn detached_tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
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

    /// Every parameter, by name.
    pub fn vars(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
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
        let mut vars = BTreeMap::new();
        for file in files {
            load_file(&file, device, &mut vars)
                .map_err(|e| ModelError::Weights(format!("{}: {e}", file.display())))?;
        }
        Ok(Self { vars })
    }
}

/// Read one safetensors file tensor by tensor into f32 parameters: the file is never held
/// whole in memory beside its tensors (reading it whole, then copying each tensor into a
/// parameter, took three times the weights' size at the peak of a cached model's load).
///
/// The header is checked as the format requires: its length within the file, every tensor's
/// offsets inside the data and its bytes those of its shape and type, the data ending where
/// the file does.
fn load_file(file: &Path, device: &Device, vars: &mut BTreeMap<String, Var>) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| e.to_string();
    let mut f = fs_err::File::open(file).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| "shorter than a safetensors header".to_owned())?;
    let n = u64::from_le_bytes(len);
    // The format's own bound on the header (100 MB).
    if n > 100_000_000 || n.saturating_add(8) > size {
        return Err(format!(
            "header length {n} does not fit a file of {size} bytes"
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io)?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| format!("header: {e}"))?;
    let data_len = size - 8 - n;
    let mut spans = Vec::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| format!("tensor '{name}': {what}");
        // Every type candle reads, converted to f32 as candle's own loader did.
        let dtype = match info.get("dtype").and_then(|d| d.as_str()) {
            Some("F32") => DType::F32,
            Some("BF16") => DType::BF16,
            Some("F16") => DType::F16,
            Some("F64") => DType::F64,
            Some("I64") => DType::I64,
            Some("U32") => DType::U32,
            Some("U8") => DType::U8,
            Some(other) => return Err(bad(&format!("type {other} cannot be read as weights"))),
            None => return Err(bad("no dtype")),
        };
        let dims = |key: &str| -> Option<Vec<u64>> {
            info.get(key)?
                .as_array()?
                .iter()
                .map(serde_json::Value::as_u64)
                .collect()
        };
        let shape = dims("shape").ok_or_else(|| bad("no shape"))?;
        let offsets = dims("data_offsets").ok_or_else(|| bad("no data_offsets"))?;
        let &[start, end] = offsets.as_slice() else {
            return Err(bad("data_offsets is not [start, end]"));
        };
        let elems = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad("shape overflows"))?;
        let bytes = elems
            .checked_mul(dtype.size_in_bytes() as u64)
            .ok_or_else(|| bad("shape overflows"))?;
        if start > end || end > data_len || end - start != bytes {
            return Err(bad(&format!(
                "offsets {start}..{end} for {bytes} bytes of data, in {data_len}"
            )));
        }
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        spans.push((start, end, name.clone(), dtype, shape));
    }
    // The data is the tensors, back to back, ending with the file.
    spans.sort_by_key(|s| (s.0, s.1));
    let mut at = 0;
    for (start, end, name, ..) in &spans {
        if *start != at {
            return Err(format!("tensor '{name}' starts at {start}, not {at}"));
        }
        at = *end;
    }
    if at != data_len {
        return Err(format!(
            "the tensors hold {at} bytes of the {data_len} after the header"
        ));
    }
    let mut buf = Vec::new();
    for (start, end, name, dtype, shape) in spans {
        f.seek(SeekFrom::Start(8 + n + start)).map_err(io)?;
        buf.resize((end - start) as usize, 0);
        f.read_exact(&mut buf).map_err(io)?;
        let var = match dtype {
            DType::F32 => {
                let values: Vec<f32> = buf
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Var::from_vec(values, shape, device)
            }
            _ => Tensor::from_raw_buffer(&buf, dtype, &shape, device)
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| Var::from_tensor(&t)),
        }
        .map_err(|e| format!("tensor '{name}': {e}"))?;
        vars.insert(name, var);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_load_tensor_by_tensor_and_a_file_that_breaks_the_format_is_refused()
    -> Result<(), ModelError> {
        let cfg = Config::tiny(64);
        let dir = tempfile::tempdir().map_err(|e| ModelError::Io(e.to_string()))?;
        let saved = Params::init(&cfg, 5, &Device::Cpu)?;
        saved.save(&dir.path().join("model.safetensors"))?;
        let loaded = Params::load(dir.path(), &Device::Cpu)?;
        for ((a, x), (b, y)) in saved.vars().zip(loaded.vars()) {
            assert_eq!(a, b);
            let (x, y) = (x.flatten_all()?, y.flatten_all()?);
            assert_eq!(x.to_vec1::<f32>()?, y.to_vec1::<f32>()?, "{a}");
        }
        let file = dir.path().join("model.safetensors");
        let clean = fs_err::read(&file).map_err(|e| ModelError::Io(e.to_string()))?;
        let n = u64::from_le_bytes(clean[..8].try_into().unwrap_or_default()) as usize;
        let header = String::from_utf8_lossy(&clean[8..8 + n]).into_owned();
        let first = "model.embed_tokens.weight";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            ([clean.clone(), vec![0]].concat(), "after the header"),
            (clean[..clean.len() - 4].to_vec(), "in"),
            (clean[..5].to_vec(), "shorter than a safetensors header"),
            (
                [&u64::MAX.to_le_bytes()[..], &clean[8..]].concat(),
                "does not fit a file",
            ),
            (
                {
                    let h = header.replacen("\"F32\"", "\"C64\"", 1);
                    [&clean[..8], h.as_bytes(), &clean[8 + n..]].concat()
                },
                "cannot be read as weights",
            ),
        ];
        for (bytes, expected) in cases {
            fs_err::write(&file, &bytes).map_err(|e| ModelError::Io(e.to_string()))?;
            let err = Params::load(dir.path(), &Device::Cpu)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
        assert!(header.contains(first));
        Ok(())
    }

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
