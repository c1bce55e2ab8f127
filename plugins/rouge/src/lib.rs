//! ROUGE-1 and ROUGE-L of the greedy answer against the reference answer, as `rouge_score`
//! (0.1.2, Porter stemming) computes them: precision, recall and F1, per example and averaged
//! per split. TOFU reports ROUGE-L recall, MUSE ROUGE-L F1, MLLMU-Med ROUGE-1.

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;
use lethe_scoring::rouge;

/// ROUGE has no knobs: every variant is reported.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The ROUGE metric.
pub struct Rouge;

/// The outputs, headline first: TOFU's ROUGE-L recall.
const OUTPUTS: [(&str, &str); 6] = [
    (
        "rougeL_recall",
        "ROUGE-L recall of the greedy answer (TOFU's ROUGE)",
    ),
    ("rougeL_precision", "ROUGE-L precision of the greedy answer"),
    (
        "rougeL_f1",
        "ROUGE-L F1 of the greedy answer (MUSE's ROUGE)",
    ),
    ("rouge1_recall", "ROUGE-1 recall of the greedy answer"),
    ("rouge1_precision", "ROUGE-1 precision of the greedy answer"),
    (
        "rouge1_f1",
        "ROUGE-1 F1 of the greedy answer (MLLMU-Med's ROUGE)",
    ),
];

/// The six ROUGE values of one prediction against one reference, in `OUTPUTS` order.
pub fn rouge_values(prediction: &str, reference: &str) -> [f64; 6] {
    let pred = rouge::tokenize(prediction);
    let refr = rouge::tokenize(reference);
    let r1 = rouge::rouge_n(&pred, &refr, 1);
    let rl = rouge::rouge_l(&pred, &refr);
    [
        rl.recall,
        rl.precision,
        rl.fmeasure,
        r1.recall,
        r1.precision,
        r1.fmeasure,
    ]
}

impl Metric for Rouge {
    type Config = Config;
    const NAME: &'static str = "rouge";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "ROUGE-1 and ROUGE-L (P/R/F1) of greedy answers, as rouge_score.";
    const OBSERVATIONS: &'static [Observation] = &[Observation::GeneratedAnswer];

    fn outputs() -> Vec<MetricOutput> {
        OUTPUTS
            .iter()
            .map(|(name, summary)| MetricOutput {
                name: (*name).to_owned(),
                reading: Reading::HigherKnows,
                summary: (*summary).to_owned(),
            })
            .collect()
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut columns: [Vec<f64>; 6] = Default::default();
            for example in &split.examples {
                let generated = example
                    .generated
                    .as_deref()
                    .ok_or_else(|| missing("generated answer", example))?;
                let row = rouge_values(generated, &example.answer);
                for (i, v) in row.into_iter().enumerate() {
                    values.push(example_value(OUTPUTS[i].0, &split.split, &example.id, v));
                    columns[i].push(v);
                }
            }
            for (i, column) in columns.iter().enumerate() {
                if let Some(m) = mean(column) {
                    values.push(split_value(OUTPUTS[i].0, &split.split, m));
                }
            }
        }
        Ok(values)
    }
}

export_metric!(Rouge);
