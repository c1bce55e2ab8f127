//! Host bindings of `lethe:plugin@0.1.2`, one module per world. The other worlds reuse the
//! method world's `types` and `host` interfaces so every world shares one set of Rust types.
//!
//! Components built against 0.1.0 or 0.1.1 run on these bindings unchanged: each patch release
//! only adds, and wasmtime matches `@0.1.0` and `@0.1.1` imports and exports with the host's
//! `@0.1.2` (semver-compatible).

#![allow(missing_docs)]

/// The `method-plugin` world.
pub mod method {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.2",
        world: "lethe:plugin/method-plugin@0.1.2",
        imports: { default: trappable },
        with: {
            "lethe:plugin/training.tensor": crate::state::TensorEntry,
            "lethe:plugin/training.batch": crate::state::BatchEntry,
        },
    });
}

/// The `metric-plugin` world.
pub mod metric {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.2",
        world: "lethe:plugin/metric-plugin@0.1.2",
        imports: { default: trappable },
        with: {
            "lethe:plugin/types": crate::bindings::method::lethe::plugin::types,
            "lethe:plugin/host": crate::bindings::method::lethe::plugin::host,
        },
    });
}

/// The `query-attack-plugin` world (0.1.1 on).
pub mod query_attack {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.2",
        world: "lethe:plugin/query-attack-plugin@0.1.2",
        imports: { default: trappable },
        with: {
            "lethe:plugin/types": crate::bindings::method::lethe::plugin::types,
            "lethe:plugin/host": crate::bindings::method::lethe::plugin::host,
        },
    });
}

/// The `judge-plugin` world (0.1.1 on).
pub mod judge {
    wasmtime::component::bindgen!({
        path: "../../plugin-sdk/wit/v0.1.2",
        world: "lethe:plugin/judge-plugin@0.1.2",
        imports: { default: trappable },
        with: {
            "lethe:plugin/types": crate::bindings::method::lethe::plugin::types,
            "lethe:plugin/host": crate::bindings::method::lethe::plugin::host,
        },
    });
}
