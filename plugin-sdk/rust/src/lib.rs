//! Write Lethe unlearning **methods**, **metrics**, **query attacks** and **judges** as
//! WebAssembly components.
//!
//! A plugin is a Rust library compiled to `wasm32-wasip2`. It implements one trait and names its
//! type in one macro:
//!
//! - [`Method`] + [`export_method!`]: an unlearning method is a *policy*. It draws batches from
//!   the splits it may see, composes a loss from host-owned [`Tensor`]s (the model runs natively
//!   in the host) and calls [`Session::step`]. See [`method`].
//! - [`Metric`] + [`export_metric!`]: a metric is a pure function from observations (generated
//!   answers, per-token log-probabilities, …) to named values. See [`metric`].
//! - [`QueryAttack`] + [`export_query_attack!`]: puts each question differently (a prompt), never
//!   touching the weights; every metric then scores the model under it. See [`attack`].
//! - [`Judge`] + [`export_judge!`]: decides which sampled answers give a forgotten answer away,
//!   for the sampling attack's leak@k. See [`judge`].
//!
//! The interface version this crate speaks is [`API_VERSION`]; the host refuses a plugin built
//! against a version it does not support, with a message naming the supported range.
//!
//! ```ignore
//! use lethe_plugin_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema, Default)]
//! #[serde(deny_unknown_fields)]
//! struct Config {}
//!
//! struct GradientAscent;
//!
//! impl Method for GradientAscent {
//!     type Config = Config;
//!     const NAME: &'static str = "my-ga";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const SUMMARY: &'static str = "Gradient ascent on the forget split.";
//!     const SPLITS: &'static [&'static str] = &["forget"];
//!
//!     fn unlearn(_config: Config, session: &mut Session) -> Result<()> {
//!         while session.steps_left() > 0 {
//!             let batch = session.next_batch("forget")?;
//!             let loss = batch.mean_nll(Model::Current)?.mean()?.neg();
//!             session.step(&loss)?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_method!(GradientAscent);
//! ```

// The generated bindings name this crate by its public path so that the export macros work
// from a plugin crate; this alias makes the same paths resolve inside the crate itself.
extern crate self as lethe_plugin_sdk;

pub mod attack;
mod error;
pub mod judge;
pub mod losses;
pub mod method;
pub mod metric;

pub use attack::{QueryAttack, Question, Solved};
pub use error::{PluginError, Result};
pub use judge::{Judge, Sampled};
pub use method::{
    Batch, Batches, Budget, Method, Model, Session, StepOutcome, Tensor, Weights, schedule,
};
pub use metric::{
    Example, Metric, MetricOutput, ModelRole, Observation, ObservedSplit, Reading, Value,
};

/// The version of the `lethe:plugin` interface this crate builds plugins against.
pub const API_VERSION: &str = "0.1.2";

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Batch, Batches, Example, Judge, Level, Method, Metric, MetricOutput, Model, ModelRole,
        Observation, ObservedSplit, PluginError, QueryAttack, Question, Reading, Result, Sampled,
        Session, Solved, Tensor, Value, export_judge, export_method, export_metric,
        export_query_attack, log,
    };
}

/// Severity of a log line sent to the host.
pub use __private::method_world::lethe::plugin::host::Level;

/// Write a line to the host's log; the host tags it with the plugin and the run.
pub fn log(level: Level, message: &str) {
    __private::method_world::lethe::plugin::host::log(level, message);
}

/// Generated bindings and helpers used by the export macros. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json;
    pub use wit_bindgen;

    #[allow(missing_docs, unsafe_code)]
    pub mod method_world {
        wit_bindgen::generate!({
            path: "../wit/v0.1.2",
            world: "lethe:plugin/method-plugin@0.1.2",
            pub_export_macro: true,
            export_macro_name: "export_method_world",
            default_bindings_module: "lethe_plugin_sdk::__private::method_world",
            runtime_path: "lethe_plugin_sdk::__private::wit_bindgen::rt",
        });
    }

    #[allow(missing_docs, unsafe_code)]
    pub mod query_attack_world {
        wit_bindgen::generate!({
            path: "../wit/v0.1.2",
            world: "lethe:plugin/query-attack-plugin@0.1.2",
            pub_export_macro: true,
            export_macro_name: "export_query_attack_world",
            default_bindings_module: "lethe_plugin_sdk::__private::query_attack_world",
            runtime_path: "lethe_plugin_sdk::__private::wit_bindgen::rt",
            with: {
                "lethe:plugin/types@0.1.2": crate::__private::method_world::lethe::plugin::types,
                "lethe:plugin/host@0.1.2": crate::__private::method_world::lethe::plugin::host,
            },
        });
    }

    #[allow(missing_docs, unsafe_code)]
    pub mod judge_world {
        wit_bindgen::generate!({
            path: "../wit/v0.1.2",
            world: "lethe:plugin/judge-plugin@0.1.2",
            pub_export_macro: true,
            export_macro_name: "export_judge_world",
            default_bindings_module: "lethe_plugin_sdk::__private::judge_world",
            runtime_path: "lethe_plugin_sdk::__private::wit_bindgen::rt",
            with: {
                "lethe:plugin/types@0.1.2": crate::__private::method_world::lethe::plugin::types,
                "lethe:plugin/host@0.1.2": crate::__private::method_world::lethe::plugin::host,
            },
        });
    }

    #[allow(missing_docs, unsafe_code)]
    pub mod metric_world {
        wit_bindgen::generate!({
            path: "../wit/v0.1.2",
            world: "lethe:plugin/metric-plugin@0.1.2",
            pub_export_macro: true,
            export_macro_name: "export_metric_world",
            default_bindings_module: "lethe_plugin_sdk::__private::metric_world",
            runtime_path: "lethe_plugin_sdk::__private::wit_bindgen::rt",
            with: {
                "lethe:plugin/types@0.1.2": crate::__private::method_world::lethe::plugin::types,
                "lethe:plugin/host@0.1.2": crate::__private::method_world::lethe::plugin::host,
            },
        });
    }

    pub use attack::{attack_manifest, run_attack};
    pub use judge::{judge_manifest, run_judge};
    pub use method::{method_manifest, run_method};
    pub use metric::{metric_manifest, run_metric};

    use crate::{attack, judge, method, metric};
}
