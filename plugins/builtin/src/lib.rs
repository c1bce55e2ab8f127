//! The built-in Lethe plugins, compiled to wasm32-wasip2 and embedded.
