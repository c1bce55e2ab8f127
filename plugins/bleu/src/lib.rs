//! BLEU of the greedy answer against the reference answer, as `sacrebleu` 2.6.0 computes it:
//! sentence BLEU per example (13a tokenizer, exponential smoothing, effective order) averaged
//! per split, and corpus BLEU per split. MLLMU-Med reports BLEU beside ROUGE.

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::bleu;

/// BLEU has no knobs.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The BLEU metric.
pub struct BleuMetric;

impl Metric for BleuMetric {
    type Config = Config;
    const NAME: &'static str = "bleu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Sentence and corpus BLEU of greedy answers, as sacrebleu.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::GeneratedAnswer];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: "bleu".to_owned(),
                reading: Reading::HigherKnows,
                summary: "mean sentence BLEU (0-100) of the greedy answers".to_owned(),
            },
            MetricOutput {
                name: "corpus_bleu".to_owned(),
                reading: Reading::HigherKnows,
                summary: "corpus BLEU (0-100) of the split's greedy answers".to_owned(),
            },
        ]
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut column = Vec::with_capacity(split.examples.len());
            let mut pairs = Vec::with_capacity(split.examples.len());
            for example in &split.examples {
                let generated = example
                    .generated
                    .as_deref()
                    .ok_or_else(|| missing("generated answer", example))?;
                let b = bleu::sentence_bleu(generated, &example.answer).score;
                values.push(example_value("bleu", &split.split, &example.id, b));
                column.push(b);
                pairs.push((generated, example.answer.as_str()));
            }
            if let Some(m) = mean(&column) {
                values.push(split_value("bleu", &split.split, m));
                let corpus = bleu::corpus_bleu(&pairs).score;
                values.push(split_value("corpus_bleu", &split.split, corpus));
            }
        }
        Ok(values)
    }
}

export_metric!(BleuMetric);
