//! Unlearning methods: a policy over host-owned tensors.
//!
//! The host owns the model and every tensor; a method holds handles ([`Tensor`], [`Batch`]),
//! combines them with a small closed algebra, and calls [`Session::step`] with a one-element
//! loss. The host back-propagates and runs the optimiser. A method sees only the splits it
//! declares in [`Method::SPLITS`] and the suite allows (forget, retain, idk).

use crate::__private::method_world::exports::lethe::plugin::method as wit_method;
use crate::__private::method_world::lethe::plugin::training as wit;
use crate::__private::method_world::lethe::plugin::types::{Manifest, PluginKind};
use crate::error::{parse_config, schema_of};
use crate::{API_VERSION, PluginError, Result};

pub use wit::Model;

/// An unlearning method.
pub trait Method {
    /// The configuration, deserialised from JSON that the host validated against its schema.
    /// Use `#[serde(deny_unknown_fields)]` and defaults for every field.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// A short identifier: lowercase letters, digits and '-'.
    const NAME: &'static str;
    /// The plugin's own version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One sentence for listings.
    const SUMMARY: &'static str;
    /// The splits the method reads, among "forget", "retain" and "idk".
    const SPLITS: &'static [&'static str];
    /// Whether the method needs the frozen reference model (KL terms, NPO, DPO …).
    const NEEDS_REFERENCE: bool = false;

    /// Unlearn until done or until the session's step budget is spent. By default the
    /// schedule most methods share ([`schedule`]): every step draws one batch of each split in
    /// [`Method::SPLITS`], in order, and steps on [`Method::loss`] of them. Write your own when
    /// the steps differ (batches of other sizes, a dual variable, sampled answers …).
    fn unlearn(config: Self::Config, session: &mut Session) -> Result<()>
    where
        Self: Sized,
    {
        schedule::<Self>(&config, session)
    }

    /// The loss of one step of the default schedule, from one batch of each declared split.
    /// A method that writes its own [`Method::unlearn`] need not write this.
    fn loss(_config: &Self::Config, _batches: &Batches) -> Result<Tensor> {
        Err(PluginError::Failed(format!(
            "method {} writes neither `loss` nor `unlearn`",
            Self::NAME
        )))
    }
}

/// One batch of each split a method declares, for [`Method::loss`].
pub struct Batches {
    batches: Vec<(&'static str, Batch)>,
}

impl Batches {
    /// The batch of `split`; an error when the method did not declare it.
    pub fn get(&self, split: &str) -> Result<&Batch> {
        self.batches
            .iter()
            .find(|(s, _)| *s == split)
            .map(|(_, b)| b)
            .ok_or_else(|| {
                PluginError::Failed(format!(
                    "no '{split}' batch: the method's SPLITS do not declare it"
                ))
            })
    }

    /// The forget batch.
    pub fn forget(&self) -> Result<&Batch> {
        self.get("forget")
    }

    /// The retain batch.
    pub fn retain(&self) -> Result<&Batch> {
        self.get("retain")
    }
}

/// The schedule of [`Method::unlearn`]'s default: until the step budget is spent, one batch
/// of each of `M::SPLITS` (in that order, at the run's batch size), then one step on
/// `M::loss`.
pub fn schedule<M: Method>(config: &M::Config, session: &mut Session) -> Result<()> {
    while session.steps_left() > 0 {
        let mut batches = Vec::with_capacity(M::SPLITS.len());
        for split in M::SPLITS {
            batches.push((*split, session.next_batch(split)?));
        }
        let loss = M::loss(config, &Batches { batches })?;
        session.step(&loss)?;
    }
    Ok(())
}

/// The configuration of a method whose loss is `γ·L_forget + α·L_retain`: the two weights,
/// both 1 by default. Methods with more knobs declare their own type.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Weight γ of the forget term.
    #[schemars(range(min = 0.0))]
    pub gamma: f64,
    /// Weight α of the retain term.
    #[schemars(range(min = 0.0))]
    pub alpha: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            alpha: 1.0,
        }
    }
}

impl Weights {
    /// `γ·forget + α·retain`.
    pub fn combine(&self, forget: &Tensor, retain: &Tensor) -> Result<Tensor> {
        forget.scale(self.gamma).add(&retain.scale(self.alpha))
    }
}

/// The host-set limits a method works within.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The most optimiser steps the method may take.
    pub max_steps: u32,
    /// The batch size the run asks for.
    pub batch_size: u32,
    /// Number of examples in each split the method may read.
    pub split_sizes: Vec<(String, u32)>,
}

/// What the host did with one step.
pub type StepOutcome = wit::StepOutcome;

/// A method's handle on the run: batches, steps and the model's shape.
pub struct Session {
    budget: Budget,
    steps_taken: u32,
}

impl Session {
    /// The limits of this run.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Steps left in the budget.
    pub fn steps_left(&self) -> u32 {
        self.budget.max_steps.saturating_sub(self.steps_taken)
    }

    /// Number of examples in a split (0 for a split the method may not read).
    pub fn split_size(&self, split: &str) -> u32 {
        self.budget
            .split_sizes
            .iter()
            .find(|(name, _)| name == split)
            .map_or(0, |(_, n)| *n)
    }

    /// The next batch of a split, of the run's batch size.
    pub fn next_batch(&mut self, split: &str) -> Result<Batch> {
        self.next_batch_of(split, self.budget.batch_size)
    }

    /// The next batch of a split, of a given size.
    pub fn next_batch_of(&mut self, split: &str, size: u32) -> Result<Batch> {
        Ok(Batch(wit::next_batch(split, size)?))
    }

    /// Back-propagate a one-element loss and take one optimiser step on the current model.
    pub fn step(&mut self, loss: &Tensor) -> Result<StepOutcome> {
        let outcome = wit::step(&loss.0)?;
        self.steps_taken = outcome.step;
        Ok(outcome)
    }

    /// Number of decoder layers of the model.
    pub fn num_layers(&self) -> u32 {
        wit::num_layers()
    }

    /// Width of the model's hidden states (the last dimension of [`Batch::hidden_state`]).
    pub fn hidden_size(&self) -> u32 {
        wit::hidden_size()
    }

    /// Names of the trainable parameters, e.g. "layers.3.mlp.down_proj.weight".
    pub fn parameter_names(&self) -> Vec<String> {
        wit::parameter_names()
    }

    /// Restrict later steps to the parameters whose names start with one of the prefixes.
    pub fn train_only(&mut self, prefixes: &[&str]) -> Result<()> {
        let prefixes: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
        Ok(wit::train_only(&prefixes)?)
    }
}

/// A tensor owned by the host. Operations are differentiable unless they say otherwise.
pub struct Tensor(wit::Tensor);

macro_rules! unary {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self) -> Tensor {
            Tensor(self.0.unary(wit::UnaryOp::$op))
        }
    )*};
}

macro_rules! binary {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
            Ok(Tensor(self.0.binary(wit::BinaryOp::$op, &other.0)?))
        }
    )*};
}

impl Tensor {
    /// A one-element tensor.
    pub fn scalar(value: f64) -> Tensor {
        Tensor(wit::scalar(value))
    }

    /// A tensor of the given shape filled with `value`.
    pub fn full(shape: &[u32], value: f64) -> Result<Tensor> {
        Ok(Tensor(wit::full(shape, value)?))
    }

    /// Uniform values in [0, 1) from the run's seeded generator.
    pub fn uniform(shape: &[u32]) -> Result<Tensor> {
        Ok(Tensor(wit::uniform(shape)?))
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> Vec<u32> {
        self.0.shape()
    }

    unary! {
        /// `-x`.
        neg => Neg;
        /// `e^x`.
        exp => Exp;
        /// Natural logarithm.
        log => Log;
        /// `log σ(x)`, computed stably.
        log_sigmoid => LogSigmoid;
        /// `σ(x)`.
        sigmoid => Sigmoid;
        /// `|x|`.
        abs => Abs;
        /// `x²`.
        sqr => Sqr;
        /// `√x`.
        sqrt => Sqrt;
        /// `max(x, 0)`.
        relu => Relu;
        /// `tanh x`.
        tanh => Tanh;
    }

    binary! {
        /// `self + other`, broadcasting.
        add => Add;
        /// `self - other`, broadcasting.
        sub => Sub;
        /// `self * other`, broadcasting.
        mul => Mul;
        /// `self / other`, broadcasting.
        div => Div;
        /// Elementwise maximum, broadcasting.
        maximum => Maximum;
        /// Elementwise minimum, broadcasting.
        minimum => Minimum;
    }

    /// `self * mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Tensor {
        Tensor(self.0.affine(mul, add))
    }

    /// `self * k`.
    pub fn scale(&self, k: f64) -> Tensor {
        self.affine(k, 0.0)
    }

    /// `self + k`.
    pub fn shift(&self, k: f64) -> Tensor {
        self.affine(1.0, k)
    }

    /// `self ^ exponent`.
    pub fn powf(&self, exponent: f64) -> Tensor {
        Tensor(self.0.powf(exponent))
    }

    /// Sum of all elements (a one-element tensor).
    pub fn sum(&self) -> Result<Tensor> {
        Ok(Tensor(self.0.sum(None)?))
    }

    /// Sum over one dimension, which is removed.
    pub fn sum_dim(&self, dim: u32) -> Result<Tensor> {
        Ok(Tensor(self.0.sum(Some(dim))?))
    }

    /// Mean of all elements (a one-element tensor).
    pub fn mean(&self) -> Result<Tensor> {
        Ok(Tensor(self.0.mean(None)?))
    }

    /// Mean over one dimension, which is removed.
    pub fn mean_dim(&self, dim: u32) -> Result<Tensor> {
        Ok(Tensor(self.0.mean(Some(dim))?))
    }

    /// Maximum over one dimension, which is removed.
    pub fn max_dim(&self, dim: u32) -> Result<Tensor> {
        Ok(Tensor(self.0.max(dim)?))
    }

    /// Log-softmax over the last dimension.
    pub fn log_softmax(&self) -> Result<Tensor> {
        Ok(Tensor(self.0.log_softmax()?))
    }

    /// The same values, cut from the gradient.
    pub fn detach(&self) -> Tensor {
        Tensor(self.0.detach())
    }

    /// The values, flattened (refused by the host for very large tensors).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.0.to_list()?)
    }

    /// The value of a one-element tensor.
    pub fn to_scalar(&self) -> Result<f64> {
        Ok(self.0.to_scalar()?)
    }
}

/// A batch of examples from one split, tokenised and padded by the host.
///
/// A `[B, T]` tensor has one entry per predicted token; only answer tokens are unmasked.
pub struct Batch(wit::Batch);

impl Batch {
    /// Number of examples.
    pub fn size(&self) -> u32 {
        self.0.size()
    }

    /// The split it was drawn from.
    pub fn split(&self) -> String {
        self.0.split()
    }

    /// 1.0 where a position predicts an answer token, 0.0 elsewhere. `[B, T]`
    pub fn answer_mask(&self) -> Tensor {
        Tensor(self.0.answer_mask())
    }

    /// `log p(y_t | x, y_<t)` at answer positions, 0.0 elsewhere. `[B, T]`
    pub fn token_logprobs(&self, model: Model) -> Result<Tensor> {
        Ok(Tensor(self.0.token_logprobs(model)?))
    }

    /// Logits at each position. `[B, T, V]`
    pub fn logits(&self, model: Model) -> Result<Tensor> {
        Ok(Tensor(self.0.logits(model)?))
    }

    /// One-hot labels at answer positions, zero elsewhere. `[B, T, V]`
    pub fn labels_one_hot(&self) -> Tensor {
        Tensor(self.0.labels_one_hot())
    }

    /// `KL(p_ref ‖ p_θ)` at answer positions, 0.0 elsewhere. `[B, T]`
    pub fn kl_to_reference(&self) -> Result<Tensor> {
        Ok(Tensor(self.0.kl_to_reference()?))
    }

    /// Output of decoder layer `layer` (0-based). `[B, T, D]`
    pub fn hidden_state(&self, model: Model, layer: u32) -> Result<Tensor> {
        Ok(Tensor(self.0.hidden_state(model, layer)?))
    }

    /// The same questions, answered with refusals from the suite's "I don't know" pool.
    pub fn with_idk_answers(&self) -> Result<Batch> {
        Ok(Batch(self.0.with_idk_answers()?))
    }

    /// The answer mask without each answer's first `first` tokens: 1.0 where a position
    /// predicts answer token `first` (0-based) or a later one. `[B, T]`
    pub fn answer_mask_from(&self, first: u32) -> Tensor {
        Tensor(self.0.answer_mask_from(first))
    }

    /// The same questions, each answered by a sample from `model` at `temperature` (> 0) with
    /// the run's seeded generator. A sample that repeats the reference answer, or is empty, is
    /// drawn again (up to eight draws in all; then the last draw is kept).
    pub fn with_sampled_answers(&self, model: Model, temperature: f64) -> Result<Batch> {
        Ok(Batch(self.0.with_sampled_answers(model, temperature)?))
    }

    /// Number of answer tokens of each example. `[B]`
    pub fn answer_lengths(&self) -> Result<Tensor> {
        self.answer_mask().sum_dim(1)
    }

    /// `log π(y|x)`: the answer's total log-probability, per example. `[B]`
    pub fn sequence_logprob(&self, model: Model) -> Result<Tensor> {
        self.token_logprobs(model)?.sum_dim(1)
    }

    /// `avg(y|x)`: the answer's mean negative log-likelihood per token, per example. `[B]`
    pub fn mean_nll(&self, model: Model) -> Result<Tensor> {
        self.sequence_logprob(model)?
            .neg()
            .div(&self.answer_lengths()?)
    }
}

#[doc(hidden)]
pub fn method_manifest<M: Method>() -> Manifest {
    Manifest {
        name: M::NAME.to_owned(),
        version: M::VERSION.to_owned(),
        kind: PluginKind::Method,
        api_version: API_VERSION.to_owned(),
        summary: M::SUMMARY.to_owned(),
        config_schema: schema_of::<M::Config>(),
        splits: M::SPLITS.iter().map(|s| (*s).to_owned()).collect(),
        needs_reference: M::NEEDS_REFERENCE,
        observations: Vec::new(),
        models: Vec::new(),
        outputs: Vec::new(),
    }
}

#[doc(hidden)]
pub fn run_method<M: Method>(
    config: String,
    budget: wit::Budget,
) -> std::result::Result<(), wit_method::PluginError> {
    let config: M::Config = parse_config(&config)?;
    let mut session = Session {
        budget: Budget {
            max_steps: budget.max_steps,
            batch_size: budget.batch_size,
            split_sizes: budget.split_sizes,
        },
        steps_taken: 0,
    };
    M::unlearn(config, &mut session).map_err(PluginError::into)
}

/// Export a type implementing [`Method`] as this component's unlearning method.
#[macro_export]
macro_rules! export_method {
    ($ty:ty) => {
        #[doc(hidden)]
        struct __LetheMethodExport;

        impl $crate::__private::method_world::exports::lethe::plugin::method::Guest
            for __LetheMethodExport
        {
            fn describe() -> $crate::__private::method_world::lethe::plugin::types::Manifest {
                $crate::__private::method_manifest::<$ty>()
            }

            fn unlearn(
                config: ::std::string::String,
                budget: $crate::__private::method_world::lethe::plugin::training::Budget,
            ) -> ::std::result::Result<
                (),
                $crate::__private::method_world::lethe::plugin::types::PluginError,
            > {
                $crate::__private::run_method::<$ty>(config, budget)
            }
        }

        // Native builds (unit tests) export nothing: the component ABI names only exist in wasm.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::method_world::export_method_world!(__LetheMethodExport with_types_in $crate::__private::method_world);
    };
}
