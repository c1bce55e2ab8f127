//! The built-in Lethe plugins, compiled to `wasm32-wasip2` by this crate's build script and
//! embedded in the `lethe` binary, so that the quick start needs nothing but the binary.
//!
//! The build script also compiles the plugin templates and the hostile test plugins; their
//! paths are in [`artifacts`] for the tests.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
