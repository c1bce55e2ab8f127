//! Accuracy on closed questions (yes/no, multiple choice): an example scores 1 when the model's
//! choice is the correct option. Open questions (no options) are skipped; a split without closed
//! questions gets no value. The choice is, by `mode`:
//!
//! - `logprob` (default): the option whose tokens have the highest mean log-probability under
//!   teacher forcing (length-normalised, so a long option is not penalised for its length);
//! - `generated`: the option the greedy answer gives. Both are normalised (lowercased, every
//!   run of characters that are not letters or digits made one space, trimmed); the choice is
//!   the one option equal to the answer, else the one option the answer starts with as whole
//!   words ("yes, he did" gives "yes"). An answer that matches no option, or several (equal to
//!   two, or starting with two such as "no" and "no, never"), is counted wrong and reported in
//!   `unmatched` or `ambiguous`, so a model that stopped answering in options shows as such.
//!
//! The manifest asks for both option log-probs and greedy answers, since observations cannot
//! depend on the configuration; the host generates answers once per model for every metric
//! that needs them.

use lethe_plugin_sdk::metric::{example_value, mean, missing, split_value};
use lethe_plugin_sdk::prelude::*;

/// How the model's choice is read.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// "logprob" (default): the most likely option under teacher forcing; "generated": the
    /// option the greedy answer gives.
    pub mode: Mode,
}

/// Where the model's choice comes from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The option with the highest mean token log-probability.
    #[default]
    Logprob,
    /// The option the greedy answer matches.
    Generated,
}

/// Which option a greedy answer gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Exactly one option.
    One(usize),
    /// No option.
    None,
    /// Several options.
    Several,
}

/// Lowercase, every run of characters that are not letters or digits made one space, trimmed.
pub fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The option a greedy answer gives: the one equal to it after [`normalise`], else the one it
/// starts with as whole words; none or several is not a choice. Options that normalise to
/// nothing never match.
pub fn generated_option(answer: &str, options: &[String]) -> Match {
    let answer = normalise(answer);
    let options: Vec<String> = options.iter().map(|o| normalise(o)).collect();
    let pick = |matches: Vec<usize>| match matches.as_slice() {
        [] => Match::None,
        [i] => Match::One(*i),
        _ => Match::Several,
    };
    let equal: Vec<usize> = (0..options.len())
        .filter(|&i| !options[i].is_empty() && options[i] == answer)
        .collect();
    if !equal.is_empty() {
        return pick(equal);
    }
    pick(
        (0..options.len())
            .filter(|&i| {
                let o = &options[i];
                !o.is_empty()
                    && answer
                        .strip_prefix(o.as_str())
                        .is_some_and(|rest| rest.starts_with(' '))
            })
            .collect(),
    )
}

/// The accuracy metric.
pub struct Accuracy;

/// Generated mode: closed questions whose answer gave no option.
pub const UNMATCHED: &str = "unmatched";
/// Generated mode: closed questions whose answer gave several options.
pub const AMBIGUOUS: &str = "ambiguous";

/// The index of the option with the highest mean token log-probability (the first on a tie),
/// or `None` when there are no options or an option has no tokens.
pub fn chosen_option(option_logprobs: &[Vec<f32>]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, lp) in option_logprobs.iter().enumerate() {
        if lp.is_empty() {
            return None;
        }
        let avg = lp.iter().map(|&l| f64::from(l)).sum::<f64>() / lp.len() as f64;
        // Strictly greater keeps the first of equal options, so the choice does not depend on
        // anything but the values.
        if best.is_none_or(|(_, b)| avg > b) {
            best = Some((i, avg));
        }
    }
    best.map(|(i, _)| i)
}

/// The correct option of a closed question, or an error naming the example.
fn correct_option(example: &Example) -> Result<usize> {
    let correct = example.correct_option.ok_or_else(|| {
        PluginError::InvalidInput(format!(
            "example '{}' has options but no correct option",
            example.id
        ))
    })? as usize;
    if correct >= example.options.len() {
        return Err(PluginError::InvalidInput(format!(
            "example '{}' has {} options but correct option {correct}",
            example.id,
            example.options.len()
        )));
    }
    Ok(correct)
}

/// Generated mode: 1 or 0 and how the answer matched for a closed question, `None` for an open
/// one.
pub fn example_generated_accuracy(example: &Example) -> Result<Option<(f64, Match)>> {
    if example.options.is_empty() {
        return Ok(None);
    }
    let correct = correct_option(example)?;
    let generated = example
        .generated
        .as_deref()
        .ok_or_else(|| missing("generated answer", example))?;
    let m = generated_option(generated, &example.options);
    Ok(Some((if m == Match::One(correct) { 1.0 } else { 0.0 }, m)))
}

/// 1 or 0 for a closed question, `None` for an open one; an error when the observations do not
/// fit the question.
pub fn example_accuracy(example: &Example) -> Result<Option<f64>> {
    if example.options.is_empty() {
        return Ok(None);
    }
    let correct = correct_option(example)?;
    let lps = example
        .option_logprobs
        .as_deref()
        .ok_or_else(|| missing("option log-probs", example))?;
    if lps.len() != example.options.len() {
        return Err(PluginError::InvalidInput(format!(
            "example '{}' has {} options but log-probs for {}",
            example.id,
            example.options.len(),
            lps.len()
        )));
    }
    let chosen = chosen_option(lps).ok_or_else(|| {
        PluginError::InvalidInput(format!(
            "example '{}' has an option without tokens",
            example.id
        ))
    })?;
    Ok(Some(if chosen == correct { 1.0 } else { 0.0 }))
}

impl Metric for Accuracy {
    type Config = Config;
    const NAME: &'static str = "accuracy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Closed-question accuracy: the option with the highest mean token log-prob is the answer.";
    const OBSERVATIONS: &'static [Observation] =
        &[Observation::OptionLogprobs, Observation::GeneratedAnswer];

    fn outputs() -> Vec<MetricOutput> {
        vec![
            MetricOutput {
                name: "accuracy".to_owned(),
                reading: Reading::HigherKnows,
                summary: "share of closed questions whose chosen option (most likely, or the \
                          greedy answer's in generated mode) is the correct one"
                    .to_owned(),
            },
            MetricOutput {
                name: UNMATCHED.to_owned(),
                reading: Reading::LowerBetter,
                summary: "generated mode: closed questions whose greedy answer gives no option"
                    .to_owned(),
            },
            MetricOutput {
                name: AMBIGUOUS.to_owned(),
                reading: Reading::LowerBetter,
                summary: "generated mode: closed questions whose greedy answer gives several \
                          options"
                    .to_owned(),
            },
        ]
    }

    fn score(config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for split in observed.iter().filter(|s| s.model == ModelRole::Subject) {
            let mut column = Vec::new();
            let (mut unmatched, mut ambiguous) = (0usize, 0usize);
            for example in &split.examples {
                let v = match config.mode {
                    Mode::Logprob => example_accuracy(example)?,
                    Mode::Generated => example_generated_accuracy(example)?.map(|(v, m)| {
                        match m {
                            Match::None => unmatched += 1,
                            Match::Several => ambiguous += 1,
                            Match::One(_) => {}
                        }
                        v
                    }),
                };
                if let Some(v) = v {
                    values.push(example_value("accuracy", &split.split, &example.id, v));
                    column.push(v);
                }
            }
            if let Some(m) = mean(&column) {
                values.push(split_value("accuracy", &split.split, m));
                if config.mode == Mode::Generated {
                    values.push(split_value(UNMATCHED, &split.split, unmatched as f64));
                    values.push(split_value(AMBIGUOUS, &split.split, ambiguous as f64));
                }
            }
        }
        Ok(values)
    }
}

export_metric!(Accuracy);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn closed(id: &str, options: &[&str], correct: Option<u32>, lps: Vec<Vec<f32>>) -> Example {
        Example {
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            correct_option: correct,
            option_logprobs: Some(lps),
            ..lethe_plugin_sdk::metric::example(id, "Is it?", "Yes")
        }
    }

    #[test]
    fn the_choice_is_by_mean_not_total_log_prob() {
        // Option 1 has the lower total (-3.0 < -2.0) but the higher mean (-0.75 > -1.0).
        let lps = vec![vec![-1.0, -1.0], vec![-0.5, -0.5, -1.0, -1.0]];
        assert_eq!(chosen_option(&lps), Some(1));
        // A tie keeps the first.
        assert_eq!(chosen_option(&[vec![-1.0], vec![-0.5, -1.5]]), Some(0));
        assert_eq!(chosen_option(&[]), None);
        assert_eq!(chosen_option(&[vec![-1.0], vec![]]), None);
    }

    #[test]
    fn examples_score_one_or_zero_and_open_questions_are_skipped() {
        let right = closed("a", &["yes", "no"], Some(0), vec![vec![-0.1], vec![-2.0]]);
        let wrong = closed("b", &["yes", "no"], Some(1), vec![vec![-0.1], vec![-2.0]]);
        let open = closed("c", &[], None, vec![]);
        assert_eq!(example_accuracy(&right).unwrap(), Some(1.0));
        assert_eq!(example_accuracy(&wrong).unwrap(), Some(0.0));
        assert_eq!(example_accuracy(&open).unwrap(), None);

        let split = ObservedSplit {
            model: ModelRole::Subject,
            split: "test".into(),
            examples: vec![right, wrong, open],
        };
        let values = Accuracy::score(Config::default(), &[split]).unwrap();
        assert_eq!(values.len(), 3);
        let total = values.iter().find(|v| v.example.is_none()).unwrap();
        assert_eq!((total.split.as_str(), total.value), ("test", 0.5));
    }

    #[test]
    fn malformed_closed_questions_are_named() {
        let no_key = closed("k", &["yes", "no"], None, vec![vec![-0.1], vec![-2.0]]);
        let e = example_accuracy(&no_key).unwrap_err().to_string();
        assert!(e.contains("'k'") && e.contains("no correct option"), "{e}");
        let short = closed("s", &["yes", "no"], Some(0), vec![vec![-0.1]]);
        let e = example_accuracy(&short).unwrap_err().to_string();
        assert!(e.contains("2 options but log-probs for 1"), "{e}");
        let mut none = closed("n", &["yes", "no"], Some(0), vec![]);
        none.option_logprobs = None;
        let e = example_accuracy(&none).unwrap_err().to_string();
        assert!(e.contains("'n'") && e.contains("option log-probs"), "{e}");
    }
    #[test]
    fn generated_answers_match_by_equality_then_leading_words() {
        let opts: Vec<String> = ["Yes", "No", "No, never", "Paris, France", "?!"]
            .iter()
            .map(|o| (*o).to_owned())
            .collect();
        assert_eq!(generated_option("  YES. ", &opts), Match::One(0));
        // Equality wins over a prefix: "no never" equals option 2 and starts with option 1.
        assert_eq!(generated_option("No - never!", &opts), Match::One(2));
        assert_eq!(generated_option("Yes, he did.", &opts), Match::One(0));
        // Starts with two options.
        assert_eq!(generated_option("no never ever", &opts), Match::Several);
        // Part of a word is not the word; an option of punctuation only never matches.
        assert_eq!(generated_option("Yesterday", &opts), Match::None);
        assert_eq!(generated_option("?!", &opts), Match::None);
        assert_eq!(generated_option("paris france", &opts), Match::One(3));
        let dup: Vec<String> = vec!["yes".into(), "Yes".into()];
        assert_eq!(generated_option("yes", &dup), Match::Several);
    }

    #[test]
    fn generated_mode_scores_the_answer_and_counts_misses() {
        let gen_closed = |id: &str, correct: u32, generated: &str| Example {
            generated: Some(generated.into()),
            // Log-probs that favour the wrong option, so a mode mix-up shows.
            option_logprobs: Some(vec![vec![-5.0], vec![-5.0], vec![-0.1]]),
            ..closed(id, &["yes", "no", "maybe"], Some(correct), Vec::new())
        };
        let split = ObservedSplit {
            model: ModelRole::Subject,
            split: "test".into(),
            examples: vec![
                gen_closed("a", 0, "Yes."),
                gen_closed("b", 1, "No, it is not."),
                gen_closed("c", 1, "yes"),
                gen_closed("d", 0, "I do not know"),
                closed("open", &[], None, vec![]),
            ],
        };
        let get = |v: &[Value], name: &str, ex: Option<&str>| {
            v.iter()
                .find(|x| x.name == name && x.example.as_deref() == ex)
                .map(|x| x.value)
        };
        let cfg: Config = serde_json::from_str(r#"{"mode": "generated"}"#).unwrap();
        let v = Accuracy::score(cfg, std::slice::from_ref(&split)).unwrap();
        // By hand: a right, b right, c wrong option, d no option.
        assert_eq!(get(&v, "accuracy", Some("a")), Some(1.0));
        assert_eq!(get(&v, "accuracy", Some("c")), Some(0.0));
        assert_eq!(get(&v, "accuracy", None), Some(0.5));
        assert_eq!(get(&v, UNMATCHED, None), Some(1.0));
        assert_eq!(get(&v, AMBIGUOUS, None), Some(0.0));
        // Log-prob mode picks "maybe" everywhere: all wrong, and no match counts.
        let v = Accuracy::score(Config::default(), &[split]).unwrap();
        assert_eq!(get(&v, "accuracy", None), Some(0.0));
        assert_eq!(get(&v, UNMATCHED, None), None);

        let mut missing = gen_closed("m", 0, "yes");
        missing.generated = None;
        let e = example_generated_accuracy(&missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'m'") && e.contains("generated answer"), "{e}");
        assert!(serde_json::from_str::<Config>(r#"{"mode": "sampled"}"#).is_err());
    }
}
