//! A template for a query attack: put every question differently, keep the weights.
//! `lethe plugin new NAME --kind query-attack` writes a copy of it, renamed.
//!
//! As shipped it is a few-shot attack: each question is preceded by `shots` solved retain
//! examples (drawn by the host with the run's seed), as their prompts and answers, so the
//! model is primed to answer in the suite's style. The attack never sees the reference answer
//! of the question it rewrites — only the question, its clean prompt and its paraphrases.
//!
//! Build: `cargo build --release --target wasm32-wasip2`; check: `lethe plugin test
//! target/wasm32-wasip2/release/<name>.wasm`; run: `lethe run --plugin <that file>
//! --query-attacks <name>`.

use lethe_plugin_sdk::prelude::*;

/// The configuration.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Text put before the solved examples.
    pub preamble: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            preamble: "Answer as in these examples.".to_owned(),
        }
    }
}

/// The attack.
pub struct MyAttack;

/// The prompt for one question: the preamble, each solved example, then the clean prompt.
pub fn prompt(preamble: &str, question: &Question) -> String {
    let mut text = String::new();
    if !preamble.is_empty() {
        text.push_str(preamble);
        text.push_str("\n\n");
    }
    for shot in &question.shots {
        text.push_str(&shot.prompt);
        text.push(' ');
        text.push_str(&shot.answer);
        text.push_str("\n\n");
    }
    text.push_str(&question.clean_prompt);
    text
}

impl QueryAttack for MyAttack {
    type Config = Config;
    const NAME: &'static str = "my-attack";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Template: two solved retain examples before each question.";
    const SHOTS: u32 = 2;

    fn prompts(config: Config, questions: &[Question]) -> Result<Vec<Option<String>>> {
        Ok(questions
            .iter()
            .map(|q| Some(prompt(&config.preamble, q)))
            .collect())
    }
}

export_query_attack!(MyAttack);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_ends_with_the_clean_prompt_after_the_shots() {
        let q = Question {
            id: "q1".into(),
            split: "forget".into(),
            groups: vec![],
            question: "Where was Ana born?".into(),
            clean_prompt: "Question: Where was Ana born?\nAnswer:".into(),
            paraphrased: vec![],
            shots: vec![Solved {
                question: "Who wrote X?".into(),
                answer: "Bo".into(),
                prompt: "Question: Who wrote X?\nAnswer:".into(),
            }],
        };
        assert_eq!(
            prompt("P", &q),
            "P\n\nQuestion: Who wrote X?\nAnswer: Bo\n\nQuestion: Where was Ana born?\nAnswer:"
        );
    }
}
