//! Weight quantization as quantize → dequantize, for the quantization attack: the published
//! finding is that 4-bit weights bring back much of what unlearning removed, 8-bit little.
//!
//! Only the matrices of linear layers and embeddings are quantized (as bitsandbytes and GPTQ
//! do); norm weights and biases stay in f32.

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::{ModelError, Params};

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
            Self::Int4Group { group } | Self::Nf4Group { group } => group.max(1),
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

/// Quantize then dequantize a slice holding one group.
fn round_trip(group: &mut [f32], q: Quantization) {
    let absmax = group.iter().fold(0f32, |m, x| m.max(x.abs()));
    if absmax == 0.0 {
        return;
    }
    match q {
        Quantization::Int8PerChannel => {
            let scale = absmax / 127.0;
            for x in group.iter_mut() {
                *x = (*x / scale).round().clamp(-127.0, 127.0) * scale;
            }
        }
        Quantization::Int4Group { .. } => {
            let scale = absmax / 7.0;
            for x in group.iter_mut() {
                *x = (*x / scale).round().clamp(-7.0, 7.0) * scale;
            }
        }
        Quantization::Nf4Group { .. } => {
            for x in group.iter_mut() {
                *x = nearest_nf4(*x / absmax) * absmax;
            }
        }
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

/// A copy of the parameters with every 2-D weight quantized → dequantized.
pub fn quantized(params: &Params, q: Quantization) -> Result<Params, ModelError> {
    let mut out = BTreeMap::new();
    for (name, var) in params.vars() {
        let t = var.as_tensor();
        let t = if t.rank() == 2 && name.ends_with(".weight") {
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
