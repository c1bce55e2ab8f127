//! Test plugin built directly against the frozen `lethe:plugin@0.1.0` WIT (not through the
//! SDK, which follows the newest version): a host that speaks 0.1.1 must still load and run
//! it, since 0.1.1 only adds. It scores the mean number of words of each split's questions.

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../plugin-sdk/wit/v0.1.0",
        world: "lethe:plugin/metric-plugin@0.1.0",
    });

    use exports::lethe::plugin::metric::{Guest, ObservedSplit, Value};
    use lethe::plugin::types::{Manifest, MetricOutput, PluginError, PluginKind, Reading};

    /// The metric.
    pub struct QuestionWords;

    impl Guest for QuestionWords {
        fn describe() -> Manifest {
            Manifest {
                name: "compat-v010".into(),
                version: "0.1.0".into(),
                kind: PluginKind::Metric,
                api_version: "0.1.0".into(),
                summary: "Mean words per question (built against lethe:plugin@0.1.0).".into(),
                config_schema: "{\"type\":\"object\"}".into(),
                splits: Vec::new(),
                needs_reference: false,
                observations: Vec::new(),
                models: Vec::new(),
                outputs: vec![MetricOutput {
                    name: "question_words".into(),
                    reading: Reading::HigherKnows,
                    summary: "Mean words per question.".into(),
                }],
            }
        }

        fn score(_config: String, observed: Vec<ObservedSplit>) -> Result<Vec<Value>, PluginError> {
            Ok(observed
                .iter()
                .filter(|s| !s.examples.is_empty())
                .map(|s| Value {
                    name: "question_words".into(),
                    split: s.split.clone(),
                    example: None,
                    value: s
                        .examples
                        .iter()
                        .map(|e| e.question.split_whitespace().count() as f64)
                        .sum::<f64>()
                        / s.examples.len() as f64,
                })
                .collect())
        }
    }

    #[cfg(target_arch = "wasm32")]
    export!(QuestionWords);
}
