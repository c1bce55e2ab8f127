//! `lethe run --protocol …`: the seed benchmarks' experiments as plans, one command each.

use std::path::Path;

use crate::{job_records, lethe, run_tiny, text};

fn protocol(name: &str, out: &Path, methods: &str, seeds: &[&str]) -> std::process::Output {
    let mut args = vec!["--protocol", name, "--methods", methods];
    args.extend_from_slice(seeds);
    run_tiny(out, &args)
}

/// The suite names of a folder's jobs, in plan order, each once.
fn suites(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in job_records(out) {
        let s = r["run"]["suite"].as_str().unwrap().to_owned();
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

#[test]
fn the_mllmu_med_protocol_is_a_plan_that_writes_its_tables_and_ablations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mllmu");
    let o = protocol("mllmu-med", &out, "ga", &["--seed", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        suites(&out),
        [
            "privacy-5@1",
            "privacy-10@1",
            "privacy-15@1",
            "privacy-20@1",
            "privacy-25@1",
            "privacy-30@1",
            "wrong-facts-10@1",
            "privacy-rounds-1@1",
            "privacy-rounds-2@1",
            "privacy-rounds-3@1",
        ]
    );
    // Baselines and GA on each of the ten suites.
    assert_eq!(job_records(&out).len(), 20);
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    for title in [
        "# MLLMU-Med (text only)",
        "## Privacy (private patient data): forget / retain / test, UES",
        "## Wrong medical facts: forget / retain / test, UES",
        "## Ablation: forget ratio (privacy)",
        "## Ablation: three sequential unlearning rounds of 5 % each (privacy)",
        "| forget | method | forget acc % | forget ROUGE-1 | forget BLEU | retain acc % |",
        "| 10 % | finetuned |",
        "| 10 % | retrain (oracle) |",
        "| 30 % | ga |",
        "| round 3 | ga |",
        "over the split's examples (one seed)",
    ] {
        assert!(tables.contains(title), "{title} missing:\n{tables}");
    }
    // What stdout shows is the tables.
    assert!(String::from_utf8_lossy(&o.stdout).contains("## Ablation: forget ratio (privacy)"));
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
    assert_eq!(df.column("run").unwrap().n_unique().unwrap(), 20);

    // Each round measures its own share of the 15 % suite's forget split; together the
    // three shares are the whole split.
    let rounds: Vec<(usize, u64)> = job_records(&out)
        .iter()
        .filter(|r| r["job"]["rows"]["label"] == "ga" && r["job"]["round"].is_object())
        .map(|r| {
            (
                r["job"]["round"]["round"].as_u64().unwrap() as usize,
                r["run"]["split_sizes"]["forget"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rounds.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    let fifteen = job_records(&out)
        .into_iter()
        .find(|r| r["run"]["suite"] == "privacy-15@1")
        .unwrap();
    let whole = fifteen["run"]["split_sizes"]["forget"].as_u64().unwrap();
    assert_eq!(rounds.iter().map(|r| r.1).sum::<u64>(), whole);

    // The tables travel in the plan: a report of the folder lays them out again, the same.
    let board = dir.path().join("board");
    let o = lethe()
        .args(["report"])
        .arg(&out)
        .arg("--out")
        .arg(&board)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(board.join("tables.md")).unwrap(),
        std::fs::read(out.join("tables.md")).unwrap()
    );
}

#[test]
fn the_amnesia_protocol_runs_over_seeds_with_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("amnesia");
    let o = protocol("amnesia", &out, "graddiff", &["--seeds", "0..2"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = suites(&out);
    assert_eq!(s.len(), 8, "{s:?}");
    assert!(s.contains(&"medical-patients-25@1".to_owned()));
    assert!(s.contains(&"medical-cancer@1".to_owned()));
    // Baselines and GradDiff, two seeds, eight suites.
    assert_eq!(job_records(&out).len(), 32);
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    for title in [
        "## Forget efficacy, utility (ROUGE-L part), terminology leakage and degradation",
        "## Factual vs reasoning questions and unseen rephrasings (ROUGE-L recall)",
        "## Collateral erosion",
        "| patients 25 % | graddiff |",
        "| disease: cardiovascular | graddiff |",
        "Cells: mean ± half width of the 95 % Student-t interval over 2 seeds.",
        "seeds 0, 1;",
    ] {
        assert!(tables.contains(title), "{title} missing:\n{tables}");
    }
    // RMU is not in the run: neither are its protocol settings.
    assert!(!tables.contains("rmu@"), "{tables}");
    // The protocol's own metric settings are in the provenance.
    assert!(tables.contains("forget-rephrased"), "{tables}");
    for f in ["forgetting", "questions", "collateral-erosion"] {
        assert!(out.join(format!("table-{f}.csv")).exists(), "table-{f}.csv");
    }
    let csv = std::fs::read_to_string(out.join("table-forgetting.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("forget efficacy,forget efficacy ±95%"),
        "{csv}"
    );
}

#[test]
fn protocols_make_one_plan_together_with_their_own_methods_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("both");
    let o = lethe()
        .args([
            "plan",
            "--protocol",
            "mllmu-med,amnesia",
            "--preset",
            "tiny",
            "--seeds",
            "0..2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let plan = std::fs::read_to_string(out.join("plan.jsonl")).unwrap();
    let mut lines = plan.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["title"], "MLLMU-Med (text only) + AMNESIA");
    let files: Vec<&str> = header["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["file"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"sequential-rounds") && files.contains(&"forgetting"));
    let jobs: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    // MLLMU-Med: 10 suites × 2 seeds × (baselines + 5 methods); AMNESIA: 8 × 2 × (1 + 4).
    assert_eq!(jobs.len(), 10 * 2 * 6 + 8 * 2 * 5);
    let method = |suite: &str, name: &str| {
        jobs.iter()
            .find(|j| j["suite_name"] == suite && j["rows"]["label"] == name)
            .cloned()
    };
    // Each protocol's methods on its own suites only; RMU with AMNESIA's settings.
    assert!(method("privacy-10", "rmu").is_none());
    assert!(method("medical-cancer", "llmu").is_none());
    let rmu = method("medical-cancer", "rmu").unwrap();
    assert_eq!(rmu["rows"]["plugin"]["config"]["alpha"], 10.0);
    assert_eq!(rmu["unlearn"]["learning_rate"], 1e-3);
    assert_eq!(
        method("privacy-10", "graddiff").unwrap()["unlearn"]["learning_rate"],
        1e-4
    );

    // A setting for a plugin no protocol runs is refused, naming it.
    let o = lethe()
        .args([
            "plan",
            "--protocol",
            "mllmu-med",
            "--preset",
            "tiny",
            "--config",
            r#"rmu={"alpha":1}"#,
            "--out",
        ])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--config rmu"), "{}", text(&o));
    assert!(!dir.path().join("bad").exists());
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

#[test]
fn the_tofu_protocol_runs_forget01_05_10_on_the_generated_suite_with_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tofu");
    let o = protocol("tofu", &out, "ga", &["--seeds", "0..2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        suites(&out),
        ["tofu-forget01@1", "tofu-forget05@1", "tofu-forget10@1"]
    );
    // Baselines and GA, two seeds, three ratios.
    assert_eq!(job_records(&out).len(), 12);
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    for want in [
        "# TOFU",
        "## Forget quality and model utility (TOFU), with the forget set's own numbers",
        "| forget | method | forget quality | model utility | forget truth ratio |",
        "| forget01 | finetuned |",
        "| forget10 | retrain (oracle) |",
        "| forget05 | ga |",
        "## Model utility's nine parts",
        "world-facts TR",
        "Cells: mean ± half width of the 95 % Student-t interval over 2 seeds.",
    ] {
        assert!(tables.contains(want), "{want} missing:\n{tables}");
    }
    // Every model utility cell has a value: the generated suite has all nine parts.
    let csv = std::fs::read_to_string(out.join("table-tofu-utility.csv")).unwrap();
    for line in csv.lines().skip(1) {
        assert!(!line.split(',').any(str::is_empty), "{line}");
    }
    // Where the time went, per job and stage, beside the results.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("time by stage: "), "{stderr}");
    let timings: Vec<_> = std::fs::read_dir(out.join("timings")).unwrap().collect();
    assert_eq!(timings.len(), 12);
}

#[test]
fn the_tofu_protocol_reads_a_local_release_and_says_what_it_lacks() {
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tofu");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("release");
    let o = run_tiny(
        &out,
        &[
            "--protocol",
            "tofu",
            "--methods",
            "ga",
            "--release",
            release.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("note: tofu: left out forget05:") && stderr.contains("forget10:"),
        "{stderr}"
    );
    assert_eq!(suites(&out), ["tofu-forget01@1"]);
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    assert!(tables.contains("| forget01 | ga |"), "{tables}");
    assert!(!tables.contains("| forget05 |"), "{tables}");
    // The token budget cut the tiny preset's ten epochs over TOFU's 440 questions short,
    // and the run record says so.
    let r = &job_records(&out)[0]["run"];
    let target = &r["schedule"]["target"];
    assert_eq!(target["of"], 10, "{r}");
    assert!(target["epochs"].as_u64().unwrap() < 10, "{r}");
    assert_eq!(r["learn"]["finetune"]["token_budget"], 300_000);

    // An evaluation subset naming a split the suite lacks is refused before anything runs.
    let bad = dir.path().join("bad");
    let o = run_tiny(&bad, &["--eval-first", "nosuch=3"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nosuch=3"),
        "{}",
        text(&o)
    );
    assert!(!bad.join("plan.jsonl").exists());
    // A release with another protocol is refused.
    let o = run_tiny(
        &bad,
        &[
            "--protocol",
            "amnesia",
            "--release",
            release.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_muse_protocol_reports_its_six_criteria_on_the_generated_news_suite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("muse");
    let o = protocol("muse", &out, "ga", &["--seed", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        suites(&out),
        [
            "muse-5@1",
            "muse-10@1",
            "muse-20@1",
            "muse-rounds-1@1",
            "muse-rounds-2@1",
            "muse-rounds-3@1"
        ]
    );
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    for want in [
        "# MUSE",
        "| forget | method | VerbMem (forget) | KnowMem (forget) | KnowMem (retain): utility | PrivLeak |",
        "| 10 % | ga |",
        "## MUSE scalability",
        "| 20 % | retrain (oracle) |",
        "## MUSE sustainability",
        "| request 3 | ga |",
    ] {
        assert!(tables.contains(want), "{want} missing:\n{tables}");
    }
    // Every criterion has a value on every row: continuations were generated, documents
    // scored for membership, and no metric was handed a split it cannot read.
    let csv = std::fs::read_to_string(out.join("table-muse.csv")).unwrap();
    // Value columns (the ± ones are empty over a single example).
    let values = |line: &str| -> Vec<String> {
        line.split(',')
            .skip(2)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    for line in csv.lines().skip(1) {
        assert!(values(line).iter().all(|v| !v.is_empty()), "{line}");
    }
    let failures = std::fs::read_to_string(out.join("failures.json")).unwrap_or_default();
    assert!(
        !failures.contains("rouge") && !failures.contains("privleak"),
        "{failures}"
    );
    // The oracle's PrivLeak against itself is 0 by definition.
    let oracle = csv
        .lines()
        .find(|l| l.contains("retrain (oracle)"))
        .unwrap();
    let privleak: f64 = values(oracle)[3].parse().unwrap();
    assert_eq!(privleak, 0.0, "{oracle}");
}

#[test]
fn a_corpus_in_muses_layout_imports_and_runs_under_the_muse_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let news = lethe_suites::generate::news(&lethe_suites::generate::NewsConfig::tiny()).unwrap();
    let corpus = dir.path().join("news");
    lethe_suites::import::write_muse_layout(&news, &corpus).unwrap();
    let imported = dir.path().join("imported");
    let o = lethe()
        .args(["suite", "import", "muse", "--from"])
        .arg(&corpus)
        .arg("--out")
        .arg(&imported)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = lethe()
        .args(["suite", "check"])
        .arg(&imported)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // A broken file is named, and nothing is written.
    std::fs::write(corpus.join("verbmem/forget.json"), "[{\"prompt\": 3}]").unwrap();
    let bad = dir.path().join("bad");
    let o = lethe()
        .args(["suite", "import", "muse", "--from"])
        .arg(&corpus)
        .arg("--out")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("verbmem/forget.json"),
        "{}",
        text(&o)
    );
    assert!(!bad.exists());
}
