//! AdamW training with gradient clipping, and a seeded epoch loop for (pre)training.

use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Sequence;
use crate::kernels::{self, AdamStep};
use crate::ops;
use crate::{LanguageModel, ModelError};

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimSettings {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (Hugging Face's default is 1.0).
    pub max_grad_norm: Option<f64>,
}

impl Default for OptimSettings {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
        }
    }
}

/// AdamW's update, fused and in place on CPU f32 parameters: one pass over each parameter,
/// its gradient and its two moments (candle-nn's `AdamW` makes about a dozen temporaries per
/// parameter and step). Computes what candle-nn's `AdamW` computes.
struct FusedAdamW {
    vars: Vec<Var>,
    moments: Vec<Mutex<(Vec<f32>, Vec<f32>)>>,
    params: ParamsAdamW,
    t: i32,
}

/// The in-place update of one parameter.
struct AdamUpdate<'a> {
    step: AdamStep,
    moments: &'a Mutex<(Vec<f32>, Vec<f32>)>,
}

impl InplaceOp2 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "lethe-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(grad)) = (s1, s2) else {
            candle_core::bail!("adamw: expected f32 parameter and gradient")
        };
        let (Some((a, b)), Some((ga, gb))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("adamw: parameter or gradient is not contiguous")
        };
        let mut guard = self
            .moments
            .lock()
            .map_err(|_| candle_core::Error::Msg("adamw: poisoned state".into()))?;
        let (m, v) = &mut *guard;
        if m.len() != b - a || gb - ga != b - a {
            candle_core::bail!("adamw: parameter, gradient and moments differ in size")
        }
        kernels::adamw(&mut theta[a..b], &grad[ga..gb], m, v, self.step);
        Ok(())
    }
}

impl FusedAdamW {
    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Self {
        let moments = vars
            .iter()
            .map(|v| {
                let n = v.as_tensor().elem_count();
                Mutex::new((vec![0f32; n], vec![0f32; n]))
            })
            .collect();
        Self {
            vars,
            moments,
            params,
            t: 0,
        }
    }

    fn step(&mut self, grads: &GradStore, grad_scale: f64) -> Result<(), ModelError> {
        self.t += 1;
        let p = &self.params;
        let step = AdamStep {
            lr: p.lr as f32,
            beta1: p.beta1 as f32,
            beta2: p.beta2 as f32,
            eps: p.eps as f32,
            weight_decay: p.weight_decay as f32,
            scale_m: (1.0 / (1.0 - p.beta1.powi(self.t))) as f32,
            scale_v: (1.0 / (1.0 - p.beta2.powi(self.t))) as f32,
            grad_scale: grad_scale as f32,
        };
        for (var, moments) in self.vars.iter().zip(&self.moments) {
            if let Some(g) = grads.get(var.as_tensor()) {
                var.as_tensor()
                    .inplace_op2(&g.contiguous()?, &AdamUpdate { step, moments })?;
            }
        }
        Ok(())
    }
}

enum Optim {
    Fused(FusedAdamW),
    Candle(AdamW),
}

/// An optimiser over some of a model's parameters.
pub struct Trainer {
    opt: Optim,
    vars: Vec<Var>,
    max_grad_norm: Option<f64>,
    steps: usize,
}

impl Trainer {
    /// An optimiser over the given parameters.
    pub fn new(vars: Vec<Var>, settings: &OptimSettings) -> Result<Self, ModelError> {
        let params = ParamsAdamW {
            lr: settings.learning_rate,
            weight_decay: settings.weight_decay,
            ..ParamsAdamW::default()
        };
        let cpu_f32 = vars.iter().all(|v| {
            v.as_tensor().device().is_cpu()
                && v.dtype() == DType::F32
                && v.as_tensor().is_contiguous()
        });
        let opt = if cpu_f32 {
            Optim::Fused(FusedAdamW::new(vars.clone(), params))
        } else {
            Optim::Candle(AdamW::new(vars.clone(), params)?)
        };
        Ok(Self {
            opt,
            vars,
            max_grad_norm: settings.max_grad_norm,
            steps: 0,
        })
    }

    /// An optimiser over every trainable parameter of a model: its weights, or its adapters
    /// when it has them.
    pub fn for_model(model: &LanguageModel, settings: &OptimSettings) -> Result<Self, ModelError> {
        Self::new(
            model.trainable().into_iter().map(|(_, v)| v).collect(),
            settings,
        )
    }

    /// Set the learning rate of the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        match &mut self.opt {
            Optim::Fused(f) => f.params.lr = lr,
            Optim::Candle(a) => a.set_learning_rate(lr),
        }
    }

    /// The parameters it updates.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Back-propagate a one-element loss, clip, and step. Returns the loss value.
    ///
    /// A non-finite loss is refused before it can poison the weights.
    pub fn step(&mut self, loss: &Tensor) -> Result<f64, ModelError> {
        crate::kernels::on_pool(|| self.step_on_this_thread(loss))
    }

    fn step_on_this_thread(&mut self, loss: &Tensor) -> Result<f64, ModelError> {
        let value = f64::from(
            loss.flatten_all()?
                .to_vec1::<f32>()?
                .first()
                .copied()
                .unwrap_or(f32::NAN),
        );
        if !value.is_finite() {
            return Err(ModelError::NonFinite(format!("loss is {value}")));
        }
        let mut grads = loss.backward()?;
        let mut scale = 1.0;
        if let Some(max) = self.max_grad_norm {
            let mut sq = 0f64;
            for v in &self.vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    sq += ops::sum_squares(g)?;
                }
            }
            let norm = sq.sqrt();
            if !norm.is_finite() {
                return Err(ModelError::NonFinite(format!("gradient norm is {norm}")));
            }
            if norm > max {
                scale = max / (norm + 1e-6);
            }
        }
        match &mut self.opt {
            Optim::Fused(f) => f.step(&grads, scale)?,
            Optim::Candle(a) => {
                if scale != 1.0 {
                    for v in &self.vars {
                        if let Some(g) = grads.remove(v.as_tensor()) {
                            grads.insert(v.as_tensor(), (g * scale)?);
                        }
                    }
                }
                a.step(&grads)?;
            }
        }
        self.steps += 1;
        Ok(value)
    }
}

/// Settings of an epoch loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    /// Passes over the data.
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Optimiser settings.
    pub optim: OptimSettings,
    /// Fraction of steps spent warming the learning rate up linearly; it then decays linearly
    /// to a tenth of its peak.
    pub warmup: f64,
    /// Seed of the shuffling.
    pub seed: u64,
}

/// Train on sequences for some epochs. `progress(step, total, loss)` is called after each step.
pub fn fit(
    model: &LanguageModel,
    data: &[Sequence],
    settings: &FitSettings,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<Vec<f64>, ModelError> {
    if data.is_empty() || settings.batch_size == 0 || settings.epochs == 0 {
        return Ok(Vec::new());
    }
    let mut trainer = Trainer::for_model(model, &settings.optim)?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let per_epoch = data.len().div_ceil(settings.batch_size);
    let total = per_epoch * settings.epochs;
    let warmup = ((total as f64) * settings.warmup).ceil() as usize;
    let peak = settings.optim.learning_rate;
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut losses = Vec::with_capacity(total);
    for _ in 0..settings.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(settings.batch_size) {
            let step = trainer.steps();
            let lr = if step < warmup {
                peak * (step + 1) as f64 / warmup as f64
            } else {
                let frac = (step - warmup) as f64 / (total - warmup).max(1) as f64;
                peak * (1.0 - 0.9 * frac)
            };
            trainer.set_learning_rate(lr);
            let seqs: Vec<&Sequence> = chunk.iter().map(|&i| &data[i]).collect();
            let batch = model.collate(&seqs)?;
            let loss = trainer.step(&model.lm_loss(&batch)?)?;
            losses.push(loss);
            progress(trainer.steps(), total, loss);
        }
    }
    Ok(losses)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use candle_core::Device;

    use super::*;

    /// The fused in-place AdamW takes the same steps as candle-nn's `AdamW`.
    #[test]
    fn fused_adamw_matches_candle_nn() {
        let init: Vec<f32> = (0..5000).map(|i| ((i as f32) * 0.37).sin()).collect();
        let target: Vec<f32> = (0..5000).map(|i| ((i as f32) * 0.11).cos()).collect();
        let target = Tensor::from_vec(target, (50, 100), &Device::Cpu).unwrap();
        let make = || {
            Var::from_tensor(&Tensor::from_vec(init.clone(), (50, 100), &Device::Cpu).unwrap())
                .unwrap()
        };
        let (a, b) = (make(), make());
        let settings = OptimSettings {
            learning_rate: 1e-2,
            weight_decay: 0.1,
            max_grad_norm: None,
        };
        let mut fused = Trainer::new(vec![a.clone()], &settings).unwrap();
        assert!(matches!(fused.opt, Optim::Fused(_)));
        let mut reference = AdamW::new(
            vec![b.clone()],
            ParamsAdamW {
                lr: 1e-2,
                weight_decay: 0.1,
                ..ParamsAdamW::default()
            },
        )
        .unwrap();
        let loss = |v: &Var| {
            (v.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
        };
        for _ in 0..5 {
            fused.step(&loss(&a)).unwrap();
            reference.backward_step(&loss(&b)).unwrap();
        }
        let diff = (a.as_tensor() - b.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "parameters differ by {diff}");
        let moved = (a
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0]
            - init[0])
            .abs();
        assert!(moved > 1e-3, "the step did not move the parameter");
    }

    /// Clipping scales the gradient before the moments see it, as candle-nn would see a
    /// clipped gradient.
    #[test]
    fn clipping_scales_the_gradient() {
        let make = || {
            Var::from_tensor(&Tensor::from_vec(vec![0f32; 4], 4, &Device::Cpu).unwrap()).unwrap()
        };
        let (a, b) = (make(), make());
        let grad_target = Tensor::from_vec(vec![30f32, -40.0, 0.0, 0.0], 4, &Device::Cpu).unwrap();
        let mut clipped = Trainer::new(
            vec![a.clone()],
            &OptimSettings {
                learning_rate: 0.1,
                weight_decay: 0.0,
                max_grad_norm: Some(1.0),
            },
        )
        .unwrap();
        let mut reference = AdamW::new(
            vec![b.clone()],
            ParamsAdamW {
                lr: 0.1,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )
        .unwrap();
        // Gradient of Σ g·x is g (norm 50); clipped to norm 1 it is g / 50.
        for _ in 0..3 {
            clipped
                .step(&(a.as_tensor() * &grad_target).unwrap().sum_all().unwrap())
                .unwrap();
            let mut grads = (b.as_tensor() * &grad_target)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g = grads.remove(b.as_tensor()).unwrap();
            grads.insert(b.as_tensor(), (g * (1.0 / (50.0 + 1e-6))).unwrap());
            reference.step(&grads).unwrap();
        }
        let (x, y) = (
            a.as_tensor().to_vec1::<f32>().unwrap(),
            b.as_tensor().to_vec1::<f32>().unwrap(),
        );
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() < 1e-5, "{x:?} vs {y:?}");
        }
        assert!(x[0] < 0.0 && x[1] > 0.0);
    }
}
