//! Hostile test plugin: exports `lethe:plugin/metric@9.0.0`, a version no host supports. The
//! host must refuse it before compiling, naming the supported range.

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package lethe:plugin@9.0.0;
            interface metric {
                score: func(config: string) -> string;
            }
            world metric-plugin {
                export metric;
            }
        ",
        world: "metric-plugin",
    });

    /// The future metric.
    pub struct Future;

    impl exports::lethe::plugin::metric::Guest for Future {
        fn score(config: String) -> String {
            config
        }
    }

    #[cfg(target_arch = "wasm32")]
    export!(Future);
}
