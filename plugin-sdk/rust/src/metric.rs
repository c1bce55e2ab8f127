//! Metrics: pure functions from observations to named values.
//!
//! A metric declares the observations it needs ([`Metric::OBSERVATIONS`]) and the reference
//! models it compares against ([`Metric::MODELS`]); the host computes exactly those and calls
//! [`Metric::score`] once per scored model with every split of the suite. The metric returns
//! values per example (`example: Some(id)`) and per split (`example: None`).

use crate::__private::method_world::lethe::plugin::types::{Manifest, PluginKind};
use crate::__private::metric_world::exports::lethe::plugin::metric as wit;
use crate::error::{parse_config, schema_of};
use crate::{API_VERSION, PluginError, Result};

pub use crate::__private::method_world::lethe::plugin::types::{
    MetricOutput, ModelRole, Observation, Reading,
};
pub use wit::{Example, ObservedSplit, Value};

/// A metric.
pub trait Metric {
    /// The configuration, deserialised from JSON that the host validated against its schema.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// A short identifier: lowercase letters, digits and '-'.
    const NAME: &'static str;
    /// The plugin's own version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One sentence for listings.
    const SUMMARY: &'static str;
    /// The observations the metric needs; the host computes only these.
    const OBSERVATIONS: &'static [Observation];
    /// Reference models whose observations the metric needs besides the subject.
    const MODELS: &'static [ModelRole] = &[];

    /// The values the metric produces.
    fn outputs() -> Vec<MetricOutput>;

    /// Score the subject model from its observations (and the declared references').
    fn score(config: Self::Config, observed: &[ObservedSplit]) -> Result<Vec<Value>>;
}

/// A per-split value.
pub fn split_value(name: &str, split: &str, value: f64) -> Value {
    Value {
        name: name.to_owned(),
        split: split.to_owned(),
        example: None,
        value,
    }
}

/// A per-example value.
pub fn example_value(name: &str, split: &str, example: &str, value: f64) -> Value {
    Value {
        name: name.to_owned(),
        split: split.to_owned(),
        example: Some(example.to_owned()),
        value,
    }
}

/// One value per example of every subject split, from `value`, and its mean per split under
/// the same output name: the shape of most per-example metrics.
pub fn per_example_and_mean(
    name: &str,
    observed: &[ObservedSplit],
    value: impl Fn(&Example) -> Result<f64>,
) -> Result<Vec<Value>> {
    let mut values = Vec::new();
    for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
        let mut column = Vec::with_capacity(split.examples.len());
        for example in &split.examples {
            let v = value(example)?;
            values.push(example_value(name, &split.split, &example.id, v));
            column.push(v);
        }
        if let Some(m) = mean(&column) {
            values.push(split_value(name, &split.split, m));
        }
    }
    Ok(values)
}

/// The arithmetic mean, or `None` for an empty slice.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// An example with a question and its reference answer and no observations (no groups, terms
/// or options either): the base to build test bundles from with struct-update syntax.
pub fn example(id: &str, question: &str, answer: &str) -> Example {
    Example {
        id: id.into(),
        groups: Vec::new(),
        question: question.into(),
        answer: answer.into(),
        terms: Vec::new(),
        options: Vec::new(),
        correct_option: None,
        generated: None,
        answer_logprobs: None,
        answer_argmax_match: None,
        answer_logprob_mean: None,
        answer_logprob_std: None,
        paraphrased_logprobs: None,
        perturbed_logprobs: None,
        option_logprobs: None,
    }
}

/// An observation the host should have supplied but did not.
pub fn missing(what: &str, example: &Example) -> PluginError {
    PluginError::InvalidInput(format!("example '{}' has no {what}", example.id))
}

#[doc(hidden)]
pub fn metric_manifest<M: Metric>() -> Manifest {
    Manifest {
        name: M::NAME.to_owned(),
        version: M::VERSION.to_owned(),
        kind: PluginKind::Metric,
        api_version: API_VERSION.to_owned(),
        summary: M::SUMMARY.to_owned(),
        config_schema: schema_of::<M::Config>(),
        splits: Vec::new(),
        needs_reference: false,
        observations: M::OBSERVATIONS.to_vec(),
        models: M::MODELS.to_vec(),
        outputs: M::outputs(),
    }
}

#[doc(hidden)]
pub fn run_metric<M: Metric>(
    config: String,
    observed: Vec<ObservedSplit>,
) -> std::result::Result<Vec<Value>, wit::PluginError> {
    let config: M::Config = parse_config(&config)?;
    M::score(config, &observed).map_err(PluginError::into)
}

/// Export a type implementing [`Metric`] as this component's metric.
#[macro_export]
macro_rules! export_metric {
    ($ty:ty) => {
        #[doc(hidden)]
        struct __LetheMetricExport;

        impl $crate::__private::metric_world::exports::lethe::plugin::metric::Guest
            for __LetheMetricExport
        {
            fn describe() -> $crate::__private::method_world::lethe::plugin::types::Manifest {
                $crate::__private::metric_manifest::<$ty>()
            }

            fn score(
                config: ::std::string::String,
                observed: ::std::vec::Vec<$crate::metric::ObservedSplit>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::metric::Value>,
                $crate::__private::method_world::lethe::plugin::types::PluginError,
            > {
                $crate::__private::run_metric::<$ty>(config, observed)
            }
        }

        // Native builds (unit tests) export nothing: the component ABI names only exist in wasm.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::metric_world::export_metric_world!(__LetheMetricExport with_types_in $crate::__private::metric_world);
    };
}
