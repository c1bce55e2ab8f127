//! AdamW training with gradient clipping, and a seeded epoch loop for (pre)training.

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Sequence;
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

/// An optimiser over some of a model's parameters.
pub struct Trainer {
    opt: AdamW,
    vars: Vec<Var>,
    max_grad_norm: Option<f64>,
    steps: usize,
}

impl Trainer {
    /// An optimiser over the given parameters.
    pub fn new(vars: Vec<Var>, settings: &OptimSettings) -> Result<Self, ModelError> {
        let opt = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: settings.learning_rate,
                weight_decay: settings.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            opt,
            vars,
            max_grad_norm: settings.max_grad_norm,
            steps: 0,
        })
    }

    /// An optimiser over every parameter of a model.
    pub fn for_model(model: &LanguageModel, settings: &OptimSettings) -> Result<Self, ModelError> {
        Self::new(
            model.params().vars().map(|(_, v)| v.clone()).collect(),
            settings,
        )
    }

    /// Set the learning rate of the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.opt.set_learning_rate(lr);
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Back-propagate a one-element loss, clip, and step. Returns the loss value.
    ///
    /// A non-finite loss is refused before it can poison the weights.
    pub fn step(&mut self, loss: &Tensor) -> Result<f64, ModelError> {
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
        if let Some(max) = self.max_grad_norm {
            let mut sq = 0f64;
            for v in &self.vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
                }
            }
            let norm = sq.sqrt();
            if !norm.is_finite() {
                return Err(ModelError::NonFinite(format!("gradient norm is {norm}")));
            }
            if norm > max {
                let scale = max / (norm + 1e-6);
                for v in &self.vars {
                    if let Some(g) = grads.remove(v.as_tensor()) {
                        grads.insert(v.as_tensor(), (g * scale)?);
                    }
                }
            }
        }
        self.opt.step(&grads)?;
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
