//! The sandboxed WebAssembly host for Lethe method and metric plugins.
