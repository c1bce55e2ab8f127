//! A template for a metric: `lethe plugin new NAME --kind metric` writes a copy of it,
//! renamed, as a crate of its own. Declare the observations you need and compute your values.
//!
//! Build: `cargo build --release --target wasm32-wasip2`; check: `lethe plugin test
//! target/wasm32-wasip2/release/<name>.wasm`; run: `lethe run --plugin <that file>`.
//!
//! As shipped it is exact match: 1 when the greedy answer equals the reference answer after
//! lowercasing and dropping punctuation, per example, and its mean per split.

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;

/// The configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Compare case-sensitively.
    pub case_sensitive: bool,
}

/// The metric.
pub struct MyMetric;

/// The text as compared: punctuation dropped, spaces folded, optionally lowercased.
pub fn normalise(text: &str, case_sensitive: bool) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    let folded = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if case_sensitive {
        folded
    } else {
        folded.to_lowercase()
    }
}

impl Metric for MyMetric {
    type Config = Config;
    const NAME: &'static str = "my-metric";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Template: exact match of the greedy answer.";
    // The host computes only what is declared here.
    const OBSERVATIONS: &'static [Observation] = &[Observation::GeneratedAnswer];

    fn outputs() -> Vec<MetricOutput> {
        vec![MetricOutput {
            name: "exact_match".to_owned(),
            reading: Reading::HigherKnows,
            summary: "share of greedy answers equal to the reference".to_owned(),
        }]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut column = Vec::new();
            for example in &split.examples {
                let generated = example
                    .generated
                    .as_deref()
                    .ok_or_else(|| missing("generated answer", example))?;
                let hit = normalise(generated, config.case_sensitive)
                    == normalise(&example.answer, config.case_sensitive);
                let v = if hit { 1.0 } else { 0.0 };
                values.push(example_value("exact_match", &split.split, &example.id, v));
                column.push(v);
            }
            if let Some(m) = mean(&column) {
                values.push(split_value("exact_match", &split.split, m));
            }
        }
        Ok(values)
    }
}

export_metric!(MyMetric);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_and_punctuation() {
        assert_eq!(
            normalise("Ana was born in  Lisbon!", false),
            "ana was born in lisbon"
        );
        assert_ne!(normalise("Ana", true), normalise("ana", true));
    }
}
