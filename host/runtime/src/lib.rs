//! The sandboxed WebAssembly host for Lethe's plugins: methods, metrics, query attacks and
//! judges.
//!
//! A plugin is a component built against `lethe:plugin@0.1.0` or `@0.1.1`
//! (`plugin-sdk/wit/`). The host
//! reads its exports before compiling ([`inspect`]), compiles it once, asks it to describe
//! itself and checks that manifest. Every call then runs in a fresh store
//! ([`sandbox`]): deny-by-default WASI (no files, network, environment or clock; seeded
//! randomness), fuel for compute, a memory limit, and an epoch-based guard against hangs. A
//! trap comes back as [`RuntimeError::Trap`], a plugin's own error as
//! [`RuntimeError::Plugin`]; both name the plugin and its version.
//!
//! Methods work on host-owned tensors through [`training`]: the plugin holds handles, the
//! model runs natively in candle.

mod bindings;
mod error;
pub mod inspect;
mod plugin;
pub mod sandbox;
mod state;
pub mod training;

pub use error::{PluginFailure, RuntimeError};
pub use plugin::{AttackQuestion, Plugin, PluginHost, SampledAnswers, Solved, sha256_hex};
pub use sandbox::Limits;
pub use training::{FeedExample, SplitFeed, TrainingState};
