//! Weight quantization as quantize → dequantize, for the quantization attack: the published
//! finding is that 4-bit weights bring back much of what unlearning removed, 8-bit little.
//!
//! # What is quantized
//!
//! By default ([`QuantScope::DecoderLinear`]) only the weight matrices of the decoder blocks'
//! linear layers: the attention projections `q_proj`, `k_proj`, `v_proj`, `o_proj` and the MLP's
//! `gate_proj`, `up_proj`, `down_proj`. The token embeddings and the output head (`lm_head`)
//! stay in full precision, as bitsandbytes (`load_in_8bit` / `load_in_4bit`) and GPTQ leave
//! them, so the attack measures what those tools do to a released model. [`QuantScope::All`]
//! also rounds the embeddings and `lm_head` (every 2-D `.weight`), the harsher variant. Norm
//! weights and biases are never quantized.
//!
//! # The schemes
//!
//! A weight `[out, in]` is cut along each row into groups of `g` consecutive input weights
//! (the last group of a row may be shorter); `round` rounds half away from zero.
//!
//! - [`Quantization::Int8PerChannel`]: one group per row; `scale = absmax / 127`,
//!   `ŵ = clamp(round(w / scale), −127, 127) · scale`.
//! - [`Quantization::Int4Group`] (symmetric): `scale = absmax / 7`,
//!   `ŵ = clamp(round(w / scale), −7, 7) · scale`.
//! - [`Quantization::Int4AsymGroup`] (asymmetric, with a zero point, as GPTQ and AWQ store
//!   4-bit weights; their usual group is [`INT4_ASYM_GROUP`] = 128):
//!   `scale = (max − min) / 15`, `zero = clamp(round(−min / scale), 0, 15)`,
//!   `q = clamp(round(w / scale) + zero, 0, 15)`, `ŵ = (q − zero) · scale`.
//!   The levels span the group's own range instead of a range symmetric about zero, so a
//!   skewed group loses less. As in AWQ's reference code the zero point is clamped: a group
//!   lying wholly above zero gets `zero = 0` and can represent only `[0, 15 · scale]`, so
//!   values above `max − min` are clipped (real weight groups straddle zero). A constant
//!   group (`max = min`, scale 0) is kept as it is: one level represents it exactly.
//! - [`Quantization::Nf4Group`]: `ŵ = absmax · nearest(NF4_LEVELS, w / absmax)`.
//!
//! A group that is all zeros stays zero under every scheme.

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::{ModelError, Params};

/// The group size GPTQ and AWQ use by default for asymmetric 4-bit weights.
pub const INT4_ASYM_GROUP: usize = 128;

/// The weight matrices a quantization touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuantScope {
    /// The decoder blocks' linear layers only (attention q/k/v/o, MLP gate/up/down); the
    /// embeddings and `lm_head` stay in full precision, as bitsandbytes and GPTQ keep them.
    #[default]
    DecoderLinear,
    /// Every 2-D weight, embeddings and `lm_head` included.
    All,
}

/// Suffixes of the decoder blocks' linear weights, by their Hugging Face names.
const DECODER_LINEAR: [&str; 7] = [
    ".self_attn.q_proj.weight",
    ".self_attn.k_proj.weight",
    ".self_attn.v_proj.weight",
    ".self_attn.o_proj.weight",
    ".mlp.gate_proj.weight",
    ".mlp.up_proj.weight",
    ".mlp.down_proj.weight",
];

impl QuantScope {
    /// Whether the parameter `name` (of rank `rank`) is quantized under this scope.
    pub fn covers(self, name: &str, rank: usize) -> bool {
        if rank != 2 || !name.ends_with(".weight") {
            return false;
        }
        match self {
            Self::All => true,
            Self::DecoderLinear => {
                name.starts_with("model.layers.")
                    && DECODER_LINEAR.iter().any(|s| name.ends_with(s))
            }
        }
    }
}

/// The 16 levels of NF4 (normal-float 4-bit, as in QLoRA / bitsandbytes), in units of the
/// group's absolute maximum.
pub const NF4_LEVELS: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// A quantization scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// 8-bit symmetric integers, one scale per output channel (row).
    Int8PerChannel,
    /// 4-bit symmetric integers (−7…7), one scale per group of `group` input weights.
    Int4Group {
        /// Weights per group (32–128 are usual).
        group: usize,
    },
    /// 4-bit unsigned integers (0…15) with a zero point, one scale and zero per group of
    /// `group` input weights (GPTQ / AWQ; [`INT4_ASYM_GROUP`] is their usual group).
    Int4AsymGroup {
        /// Weights per group.
        group: usize,
    },
    /// NF4 levels, one absmax per group of `group` input weights.
    Nf4Group {
        /// Weights per group.
        group: usize,
    },
}

impl Quantization {
    fn group(self, row: usize) -> usize {
        match self {
            Self::Int8PerChannel => row,
            Self::Int4Group { group }
            | Self::Int4AsymGroup { group }
            | Self::Nf4Group { group } => group.max(1),
        }
    }
}

fn nearest_nf4(x: f32) -> f32 {
    let mut best = NF4_LEVELS[0];
    for &l in &NF4_LEVELS {
        if (x - l).abs() < (x - best).abs() {
            best = l;
        }
    }
    best
}

/// Asymmetric 4-bit round trip of one group (the formulas of the module doc).
fn round_trip_asym(group: &mut [f32]) {
    let (min, max) = group
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let scale = (max - min) / 15.0;
    // A constant (or empty) group: one level holds it exactly; dividing by 0 would not.
    if scale <= 0.0 || !scale.is_finite() {
        return;
    }
    let zero = (-min / scale).round().clamp(0.0, 15.0);
    for x in group.iter_mut() {
        let q = ((*x / scale).round() + zero).clamp(0.0, 15.0);
        *x = (q - zero) * scale;
    }
}

/// Symmetric round trip of one group: `levels` steps of `absmax / levels` on either side of
/// zero.
fn round_trip_sym(group: &mut [f32], levels: f32) {
    let absmax = group.iter().fold(0f32, |m, x| m.max(x.abs()));
    if absmax == 0.0 {
        return;
    }
    let scale = absmax / levels;
    for x in group.iter_mut() {
        *x = (*x / scale).round().clamp(-levels, levels) * scale;
    }
}

/// NF4 round trip of one group.
fn round_trip_nf4(group: &mut [f32]) {
    let absmax = group.iter().fold(0f32, |m, x| m.max(x.abs()));
    if absmax == 0.0 {
        return;
    }
    for x in group.iter_mut() {
        *x = nearest_nf4(*x / absmax) * absmax;
    }
}

/// Quantize then dequantize a slice holding one group.
fn round_trip(group: &mut [f32], q: Quantization) {
    match q {
        Quantization::Int8PerChannel => round_trip_sym(group, 127.0),
        Quantization::Int4Group { .. } => round_trip_sym(group, 7.0),
        Quantization::Int4AsymGroup { .. } => round_trip_asym(group),
        Quantization::Nf4Group { .. } => round_trip_nf4(group),
    }
}

/// Quantize → dequantize a 2-D weight `[out, in]`: groups run along each row.
pub fn fake_quantize(weight: &Tensor, q: Quantization) -> Result<Tensor, ModelError> {
    let (rows, cols) = weight.dims2()?;
    let mut data = weight.flatten_all()?.to_vec1::<f32>()?;
    let g = q.group(cols);
    for row in data.chunks_mut(cols) {
        for group in row.chunks_mut(g) {
            round_trip(group, q);
        }
    }
    Ok(Tensor::from_vec(data, (rows, cols), weight.device())?)
}

/// A copy of the parameters with the weights `scope` covers quantized → dequantized and
/// every other tensor copied bit for bit.
pub fn quantized(
    params: &Params,
    q: Quantization,
    scope: QuantScope,
) -> Result<Params, ModelError> {
    let mut out = BTreeMap::new();
    for (name, var) in params.vars() {
        let t = var.as_tensor();
        let t = if scope.covers(name, t.rank()) {
            fake_quantize(t, q)?
        } else {
            t.copy()?
        };
        out.insert(name.clone(), t);
    }
    Params::from_tensors(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn int8_keeps_values_on_the_grid_and_is_idempotent() {
        let w = Tensor::from_vec(
            vec![0.5f32, -1.0, 0.25, 0.0, 2.0, -0.1],
            (2, 3),
            &Device::Cpu,
        )
        .unwrap();
        let q1 = fake_quantize(&w, Quantization::Int8PerChannel).unwrap();
        let q2 = fake_quantize(&q1, Quantization::Int8PerChannel).unwrap();
        assert_eq!(q1.to_vec2::<f32>().unwrap(), q2.to_vec2::<f32>().unwrap());
        let row0 = q1.to_vec2::<f32>().unwrap()[0].clone();
        // The absmax is exact; 0.5 is 63.5 steps of 1/127 and rounds to 64.
        assert_eq!(row0[1], -1.0);
        assert!((row0[0] - 64.0 / 127.0).abs() < 1e-7);
    }

    fn row(values: Vec<f32>) -> Tensor {
        let n = values.len();
        Tensor::from_vec(values, (1, n), &Device::Cpu).unwrap()
    }

    fn asym(values: Vec<f32>, group: usize) -> Vec<f32> {
        let q = fake_quantize(&row(values), Quantization::Int4AsymGroup { group }).unwrap();
        q.to_vec2::<f32>().unwrap().remove(0)
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() < 1e-6,
                "weight {i}: got {g}, want {w} ({got:?})"
            );
        }
    }

    #[test]
    fn asymmetric_int4_reproduces_values_worked_by_hand() {
        // One group (the row is shorter than 128): min −1, max 2, so scale = 3/15 = 0.2 and
        // zero = round(1/0.2) = 5. Then w/scale, rounded, plus 5, clamped to 0…15:
        //   −1 → −5 → 0 → (0−5)·0.2 = −1.0      −0.45 → −2.25 → −2 → 3 → −0.4
        //    0 →  0 → 5 → 0.0                    0.09 →  0.45 →  0 → 5 →  0.0
        //  0.33 → 1.65 → 2 → 7 → 0.4             0.61 →  3.05 →  3 → 8 →  0.6
        //    1 →  5 → 10 → 1.0                      2 →  10   → 15 → 2.0
        let got = asym(
            vec![-1.0, -0.45, 0.0, 0.09, 0.33, 0.61, 1.0, 2.0],
            INT4_ASYM_GROUP,
        );
        assert_close(&got, &[-1.0, -0.4, 0.0, 0.0, 0.4, 0.6, 1.0, 2.0]);

        // Groups of 4. First group wholly above zero: min 0.5, max 2, scale 0.1,
        // −min/scale = −5 clamps the zero to 0, so 2.0 → 20 clamps to 15 → 1.5 (AWQ's
        // clipping). Second group constant: kept as it is, not divided by a zero scale.
        let got = asym(vec![0.5, 0.6, 0.8, 2.0, 0.3, 0.3, 0.3, 0.3], 4);
        assert_close(&got, &[0.5, 0.6, 0.8, 1.5, 0.3, 0.3, 0.3, 0.3]);
    }

    #[test]
    fn asymmetric_int4_loses_less_than_symmetric_on_a_skewed_row() {
        // 256 weights in [0.01, 1.0] (two groups of 128), spread by the golden ratio.
        let values: Vec<f32> = (0..256)
            .map(|i| 0.01 + 0.99 * ((i as f32) * 0.618_034).fract())
            .collect();
        let mean_abs_error = |q: Quantization| -> f32 {
            let got = fake_quantize(&row(values.clone()), q).unwrap();
            let got = got.to_vec2::<f32>().unwrap().remove(0);
            got.iter()
                .zip(&values)
                .map(|(g, w)| (g - w).abs())
                .sum::<f32>()
                / 256.0
        };
        let sym = mean_abs_error(Quantization::Int4Group {
            group: INT4_ASYM_GROUP,
        });
        let asym = mean_abs_error(Quantization::Int4AsymGroup {
            group: INT4_ASYM_GROUP,
        });
        println!("mean abs error on a skewed row: symmetric {sym:.5}, asymmetric {asym:.5}");
        // Symmetric spends half its levels on negative values this row never takes.
        assert!(asym < sym, "asymmetric {asym} should beat symmetric {sym}");
        assert!(asym < 0.6 * sym, "asymmetric {asym} vs symmetric {sym}");
    }

    #[test]
    fn the_default_scope_keeps_embeddings_and_head_and_rounds_every_decoder_linear() {
        let cfg = crate::Config::tiny(96);
        let params = Params::init(&cfg, 3, &Device::Cpu).unwrap();
        let before = params.tensors();
        let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for q in [
            Quantization::Int8PerChannel,
            Quantization::Int4Group { group: 64 },
            Quantization::Int4AsymGroup {
                group: INT4_ASYM_GROUP,
            },
            Quantization::Nf4Group { group: 64 },
        ] {
            let after = quantized(&params, q, QuantScope::default())
                .unwrap()
                .tensors();
            let mut linears = 0;
            for (name, t) in &before {
                let same = bits(t)
                    .iter()
                    .zip(bits(&after[name]))
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                if DECODER_LINEAR.iter().any(|s| name.ends_with(s)) {
                    assert!(!same, "{q:?}: {name} was not quantized");
                    linears += 1;
                } else {
                    assert!(same, "{q:?}: {name} changed");
                }
            }
            assert_eq!(linears, 7 * cfg.num_hidden_layers);
            assert!(before.contains_key("lm_head.weight"));

            // The harsher scope rounds the embeddings and the head too.
            let all = quantized(&params, q, QuantScope::All).unwrap().tensors();
            for name in ["model.embed_tokens.weight", "lm_head.weight"] {
                assert_ne!(bits(&before[name]), bits(&all[name]), "{q:?}: {name}");
            }
        }
    }

    #[test]
    fn nf4_uses_only_its_sixteen_levels() {
        let vals: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin()).collect();
        let w = Tensor::from_vec(vals, (2, 32), &Device::Cpu).unwrap();
        let q = fake_quantize(&w, Quantization::Nf4Group { group: 16 }).unwrap();
        let orig = w.to_vec2::<f32>().unwrap();
        for (r, row) in q.to_vec2::<f32>().unwrap().iter().enumerate() {
            for (gi, group) in row.chunks(16).enumerate() {
                let absmax = orig[r][gi * 16..gi * 16 + 16]
                    .iter()
                    .fold(0f32, |m, x| m.max(x.abs()));
                for v in group {
                    assert!(
                        NF4_LEVELS.iter().any(|l| (l * absmax - v).abs() < 1e-6),
                        "{v}"
                    );
                }
            }
        }
    }
}
