//! `lethe run --protocol …`: the seed benchmarks' experiments, one command each.

use crate::{lethe, shared_cache, text};

fn protocol(name: &str, out: &std::path::Path, methods: &str) -> std::process::Output {
    lethe()
        .args([
            "run",
            "--protocol",
            name,
            "--preset",
            "tiny",
            "--methods",
            methods,
        ])
        .arg("--out")
        .arg(out)
        .arg("--cache-dir")
        .arg(shared_cache())
        .output()
        .unwrap()
}

fn jobs(out: &std::path::Path) -> Vec<(String, String)> {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    run.as_array()
        .unwrap()
        .iter()
        .map(|j| {
            assert_eq!(j["run"].as_str().unwrap().len(), 16, "{j}");
            assert!(j["plugins"].as_array().is_some_and(|p| !p.is_empty()));
            (
                j["family"].as_str().unwrap().to_owned(),
                j["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_mllmu_med_protocol_writes_its_tables_and_ablations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mllmu");
    let o = protocol("mllmu-med", &out, "ga");
    assert!(o.status.success(), "{}", text(&o));
    let j = jobs(&out);
    let labels: Vec<&str> = j
        .iter()
        .map(|(f, l)| (f.as_str(), l.as_str()))
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        labels,
        [
            "5 %", "10 %", "15 %", "20 %", "25 %", "30 %", "10 %", "round 1", "round 2", "round 3"
        ]
    );
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    for title in [
        "## Privacy (private patient data): forget / retain / test, UES",
        "## Wrong medical facts: forget / retain / test, UES",
        "## Ablation: forget ratio (privacy)",
        "## Ablation: three sequential unlearning rounds of 5 % each (privacy)",
        "| forget | method | forget acc % | forget ROUGE-1 | forget BLEU | retain acc % |",
        "| 10 % | finetuned |",
        "| 30 % | ga |",
        "| round 3 | ga |",
    ] {
        assert!(tables.contains(title), "{title} missing:\n{tables}");
    }
    // UES is measured for the unlearned model: its cell in the main table is a number.
    let ga = tables
        .lines()
        .find(|l| l.starts_with("| 10 % | ga |"))
        .unwrap();
    let ues: f64 = ga
        .trim_end_matches('|')
        .rsplit('|')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ues.is_finite(), "{ga}");
    for f in [
        "privacy",
        "wrong-facts",
        "forget-ratio",
        "sequential-rounds",
    ] {
        assert!(out.join(format!("table-{f}.csv")).exists(), "table-{f}.csv");
    }
    let df = lethe_reports::read_parquet(&out.join("results.parquet")).unwrap();
    assert_eq!(df.column("run").unwrap().n_unique().unwrap(), 10);
}

#[test]
fn the_amnesia_protocol_writes_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("amnesia");
    let o = protocol("amnesia", &out, "graddiff");
    assert!(o.status.success(), "{}", text(&o));
    let j = jobs(&out);
    assert_eq!(j.len(), 8);
    assert_eq!(j.iter().filter(|(f, _)| f == "patient").count(), 5);
    assert!(j.contains(&("disease".into(), "disease: cancer".into())));
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    for title in [
        "## Forget efficacy, utility (ROUGE-L part), terminology leakage and degradation",
        "## Factual vs reasoning questions and unseen rephrasings (ROUGE-L recall)",
        "## Collateral erosion",
        "| patients 25 % | graddiff |",
        "| disease: cardiovascular | graddiff |",
    ] {
        assert!(tables.contains(title), "{title} missing:\n{tables}");
    }
    for f in ["forgetting", "questions", "collateral-erosion"] {
        assert!(out.join(format!("table-{f}.csv")).exists(), "table-{f}.csv");
    }
}

#[test]
fn a_protocol_brings_its_own_suites() {
    let dir = tempfile::tempdir().unwrap();
    let o = lethe()
        .args(["run", "--protocol", "amnesia", "--suite"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--suite"),
        "{}",
        text(&o)
    );
}
