//! Host bindings of `lethe:plugin@0.1.0`, one module per world. The metric world reuses the
//! method world's `types` and `host` interfaces so both worlds share one set of Rust types.

#![allow(missing_docs)]

/// The `method-plugin` world.
pub mod method {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.0",
        world: "lethe:plugin/method-plugin@0.1.0",
        imports: { default: trappable },
        with: {
            "lethe:plugin/training.tensor": crate::training::TensorEntry,
            "lethe:plugin/training.batch": crate::training::BatchEntry,
        },
    });
}

/// The `metric-plugin` world.
pub mod metric {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.0",
        world: "lethe:plugin/metric-plugin@0.1.0",
        imports: { default: trappable },
        with: {
            "lethe:plugin/types": crate::bindings::method::lethe::plugin::types,
            "lethe:plugin/host": crate::bindings::method::lethe::plugin::host,
        },
    });
}
