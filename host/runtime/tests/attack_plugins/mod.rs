//! Query attacks and judges cross the boundary typed and checked; a component built against the
//! frozen 0.1.0 interface still runs on this host.

use lethe_builtin_plugins::artifacts;
use lethe_manifest::PluginKind;
use lethe_runtime::{AttackQuestion, Limits, PluginFailure, RuntimeError, SampledAnswers, Solved};
use serde_json::json;

use super::{builtin, host, hostile, one_split};

fn questions() -> Vec<AttackQuestion> {
    ["Where was Ana born?", "Who treats Bo?"]
        .iter()
        .enumerate()
        .map(|(i, q)| AttackQuestion {
            id: format!("q{i}"),
            split: "forget".into(),
            groups: vec![("patient".into(), "Ana".into())],
            question: (*q).into(),
            clean_prompt: format!("Question: {q}\nAnswer:"),
            paraphrased: if i == 0 {
                vec!["What is Ana's birthplace?".into()]
            } else {
                Vec::new()
            },
            shots: vec![Solved {
                question: "Bo's blood type?".into(),
                answer: "O.".into(),
                prompt: "Question: Bo's blood type?\nAnswer:".into(),
            }],
        })
        .collect()
}

#[test]
fn the_template_attack_writes_one_prompt_per_question() {
    let h = host(Limits::default());
    let p = h
        .load("prompt-template", builtin("prompt-template"))
        .unwrap();
    assert_eq!(p.manifest.kind, PluginKind::QueryAttack);
    assert_eq!(p.manifest.shots, 3);
    let prompts = h.prompts(&p, &json!({}), &questions(), 0).unwrap();
    assert_eq!(prompts.len(), 2);
    let first = prompts[0].as_deref().unwrap();
    assert!(
        first.ends_with("\n\nQuestion: Where was Ana born?\nAnswer:"),
        "{first}"
    );

    let config = json!({"template": "{shots}\n\n{paraphrase}"});
    let prompts = h.prompts(&p, &config, &questions(), 0).unwrap();
    assert_eq!(
        prompts,
        vec![
            Some("Question: Bo's blood type?\nAnswer: O.\n\nWhat is Ana's birthplace?".into()),
            None // no paraphrase: left out
        ]
    );

    // A template the plugin refuses is its own typed error; a config its schema refuses never
    // reaches it.
    let e = h
        .prompts(&p, &json!({"template": "{nope}"}), &questions(), 0)
        .unwrap_err();
    assert!(
        matches!(&e, RuntimeError::Plugin { error: PluginFailure::InvalidConfig(m), .. }
            if m.contains("unknown placeholder {nope}")),
        "{e}"
    );
    let e = h
        .prompts(&p, &json!({"template": 3}), &questions(), 0)
        .unwrap_err();
    assert!(matches!(e, RuntimeError::Config { .. }), "{e}");
}

#[test]
fn the_overlap_judge_gives_partial_credit() {
    let h = host(Limits::default());
    let p = h.load("overlap-judge", builtin("overlap-judge")).unwrap();
    assert_eq!(p.manifest.kind, PluginKind::Judge);
    let q = |answer: &str, samples: &[&str]| SampledAnswers {
        id: "q".into(),
        split: "forget".into(),
        question: "What was diagnosed?".into(),
        answer: answer.into(),
        terms: Vec::new(),
        samples: samples.iter().map(|s| (*s).to_owned()).collect(),
    };
    let verdicts = h
        .judge(
            &p,
            &json!({"threshold": 0.5}),
            &[
                q(
                    "Asthma and eczema.",
                    &["asthma", "eczemas and asthma", "no idea"],
                ),
                q("the", &["the"]),
            ],
            0,
        )
        .unwrap();
    assert_eq!(verdicts, vec![Some(vec![true, true, false]), None]);
}

#[test]
fn a_component_built_against_0_1_0_still_runs() {
    let h = host(Limits::default());
    let path = artifacts::COMPAT_V010;
    let p = h.load(path, &hostile(path)).unwrap();
    assert_eq!(p.manifest.api_version, "0.1.0");
    assert_eq!(p.manifest.kind, PluginKind::Metric);
    let values = h.score(&p, &json!({}), &one_split(), 0).unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].name, "question_words");
    assert_eq!(values[0].value, 4.0); // "Where was Ana born?"
}

#[test]
fn a_hostile_query_attack_is_refused_by_name() {
    let h = host(Limits::default());
    let path = artifacts::HOSTILE_ATTACK;
    let p = h.load(path, &hostile(path)).unwrap();
    let e = h.prompts(&p, &json!({}), &questions(), 0).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("hostile-attack@0.1.0") && msg.contains("returned 1 prompts for 2 questions"),
        "{msg}"
    );
    let e = h
        .prompts(&p, &json!({"panic": true}), &questions(), 0)
        .unwrap_err();
    assert!(matches!(e, RuntimeError::Trap { .. }), "{e}");
    assert!(e.to_string().contains("panicking on purpose"), "{e}");
    // A prompt far past any context is refused, naming the question.
    let e = h
        .prompts(&p, &json!({"huge": true}), &questions(), 0)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("hostile-attack@0.1.0")
            && msg.contains("a prompt of 966 KiB for question")
            && msg.contains("at most 64 KiB"),
        "{msg}"
    );

    // The wrong call for the kind is refused, not attempted.
    let e = h.score(&p, &json!({}), &one_split(), 0).unwrap_err();
    assert!(
        e.to_string().contains("it is a query-attack, not a metric"),
        "{e}"
    );
    let rouge = h.load("rouge", builtin("rouge")).unwrap();
    let e = h.prompts(&rouge, &json!({}), &questions(), 0).unwrap_err();
    assert!(
        e.to_string().contains("it is a metric, not a query attack"),
        "{e}"
    );
}
