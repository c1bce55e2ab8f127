//! Plans: `lethe plan`, `lethe exec` in shards, resume after SIGKILL, worker processes,
//! `lethe report` over many folders, bad plans and damaged shards, and a real Slurm array.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{lethe, run_tiny, shared_cache, text};

/// `lethe plan --preset tiny` with extra options, into `out`.
fn plan(out: &Path, extra: &[&str]) {
    let o = lethe()
        .args(["plan", "--preset", "tiny", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn exec(plan_dir: &Path, extra: &[&str]) -> std::process::Output {
    lethe()
        .arg("exec")
        .arg(plan_dir.join("plan.jsonl"))
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(extra)
        .output()
        .unwrap()
}

fn report(dirs: &[&Path], out: &Path) -> std::process::Output {
    lethe()
        .arg("report")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// The files of a report that must be the same bytes however the jobs ran.
const REPORT_FILES: [&str; 5] = [
    "results.parquet",
    "leaderboard.md",
    "leaderboard.csv",
    "failures.json",
    "run.json",
];

fn same_reports(a: &Path, b: &Path) {
    for f in REPORT_FILES {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn records(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("jobs"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const SWEEP: [&str; 6] = [
    "--seeds",
    "0..2",
    "--methods",
    "ga,graddiff",
    "--unlearn-lr",
    "1e-4,1e-3",
];

#[test]
fn a_plan_run_in_pieces_reports_what_one_run_reports() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let o = run_tiny(&whole, &SWEEP);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // 2 seeds × (baselines + 2 methods × 2 learning rates) = 10 jobs, labelled by the axis.
    assert!(stdout.contains("| ga[lr=1e-4] |"), "{stdout}");
    assert!(stdout.contains("| graddiff[lr=1e-3] |"), "{stdout}");
    assert!(stdout.contains("seeds 0, 1"), "{stdout}");
    assert!(stdout.contains(" ± "), "intervals over seeds:\n{stdout}");
    assert_eq!(records(&whole).len(), 10);

    // The same plan, split in two folders by job range, merges into the same report.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    plan(&a, &SWEEP);
    plan(&b, &SWEEP);
    assert_eq!(
        std::fs::read(a.join("plan.jsonl")).unwrap(),
        std::fs::read(whole.join("plan.jsonl")).unwrap(),
        "`lethe plan` writes the plan `lethe run` runs"
    );
    let o = exec(&a, &["--jobs", "0..4"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = exec(&b, &["--jobs", "4..10", "--workers", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    // One folder alone is incomplete: refused, naming what is missing, unless --partial.
    let board = dir.path().join("board");
    let o = report(&[&a], &board);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("6 job(s) have no complete shard"),
        "{}",
        text(&o)
    );
    let o = report(&[&a, &b], &board);
    assert!(o.status.success(), "{}", text(&o));
    same_reports(&whole, &board);
}

/// Start `lethe exec` of a folder's plan without a cache (each baselines job trains its
/// models, so a signal lands in the middle of a job) and return once it has written one more
/// shard than the folder had.
fn exec_until_a_new_shard(plan_dir: &Path) -> std::process::Child {
    let before = records(plan_dir).len();
    let mut child = lethe()
        .arg("exec")
        .arg(plan_dir.join("plan.jsonl"))
        .arg("--no-cache")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while records(plan_dir).len() == before {
        assert!(t0.elapsed() < Duration::from_secs(120), "no shard in 120 s");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exec ended before it was interrupted: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

#[test]
fn a_plan_killed_mid_way_resumes_without_losing_or_repeating_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let plan_dir = dir.path().join("p");
    // No cache: each baselines job trains its models, so the kill lands in the middle.
    let args = ["--seeds", "0..3", "--methods", "ga"];
    plan(&plan_dir, &args);
    let mut child = exec_until_a_new_shard(&plan_dir);
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let done = records(&plan_dir);
    assert!(!done.is_empty() && done.len() < 6, "{done:?}");
    let kept: Vec<Vec<u8>> = done
        .iter()
        .map(|r| std::fs::read(plan_dir.join("jobs").join(r)).unwrap())
        .collect();

    let o = lethe()
        .arg("exec")
        .arg(plan_dir.join("plan.jsonl"))
        .arg("--no-cache")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let summary = format!(
        "exec: {} job(s) run, {} already complete, 0 failed",
        6 - done.len(),
        done.len()
    );
    assert!(err.contains(&summary), "want '{summary}' in:\n{err}");
    // The shards written before the kill were not written again.
    for (r, bytes) in done.iter().zip(&kept) {
        assert_eq!(
            &std::fs::read(plan_dir.join("jobs").join(r)).unwrap(),
            bytes
        );
    }
    assert_eq!(records(&plan_dir).len(), 6);

    // The merged results are those of an uninterrupted run.
    let whole = dir.path().join("whole");
    let no_cache: Vec<&str> = ["--no-cache"].into_iter().chain(args).collect();
    let o = run_tiny(&whole, &no_cache);
    assert!(o.status.success(), "{}", text(&o));
    let board = dir.path().join("board");
    let o = report(&[&plan_dir], &board);
    assert!(o.status.success(), "{}", text(&o));
    same_reports(&whole, &board);
}

#[test]
fn folders_whose_jobs_make_the_same_row_differently_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    plan(&a, &["--seeds", "0", "--methods", "ga"]);
    plan(
        &b,
        &["--seeds", "0", "--methods", "ga", "--unlearn-epochs", "1"],
    );
    for p in [&a, &b] {
        let o = exec(p, &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    // The baselines job is the same job in both (merged once); GA's differs in its settings.
    let o = report(&[&a, &b], &dir.path().join("board"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("both produce row 'ga' for seed 0"),
        "{}",
        text(&o)
    );
}

#[test]
fn two_workers_that_need_the_same_models_train_them_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p");
    plan(&p, &["--seeds", "0", "--methods", "ga"]);
    let cache = dir.path().join("cache");
    // The baselines job and GA's job of one seed need the same base, target and oracle.
    let start = |index: &str| {
        lethe()
            .arg("exec")
            .arg(p.join("plan.jsonl"))
            .args(["-v", "--index", index, "--cache-dir"])
            .arg(&cache)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("0"), start("1"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    // The second waits for the first's lock, then finds the models cached.
    let reused = [&a, &b]
        .iter()
        .filter(|o| {
            String::from_utf8_lossy(&o.stderr).contains("reusing cached base, target and oracle")
        })
        .count();
    assert_eq!(reused, 1, "{}\n{}", text(&a), text(&b));
    let models = std::fs::read_dir(cache.join("models")).unwrap().count();
    assert_eq!(
        models, 3,
        "base, target, oracle, and no temporary entry left"
    );
}

#[test]
fn bad_plans_are_refused_with_their_line_and_field_and_damaged_shards_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p");
    plan(&p, &["--seeds", "0", "--methods", "ga"]);
    let file = p.join("plan.jsonl");
    let good = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two jobs:\n{good}");

    let refused = |text: &str, needle: &str| {
        std::fs::write(&file, text).unwrap();
        let o = exec(&p, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", crate::text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "want '{needle}' in:\n{err}");
        assert!(records(&p).is_empty(), "nothing may run");
    };
    // A misspelt field, with its line.
    refused(
        &good.replacen("\"seed\":0", "\"sed\":0", 1),
        "plan.jsonl:2: unknown field `sed`",
    );
    // A changed setting no longer matches the job's id.
    refused(
        &good.replacen("\"epochs\":2", "\"epochs\":3", 1),
        "plan.jsonl:2: id: ",
    );
    // A truncated file.
    refused(
        &lines[..2].join("\n"),
        "plan.jsonl:1: jobs: the header announces 2 jobs",
    );
    // A plugin that is not installed (the job resealed, as a hand-made plan would be).
    let mut job: lethe_experiment::Job = serde_json::from_str(lines[2]).unwrap();
    if let lethe_experiment::Rows::Method { plugin, .. } = &mut job.rows {
        plugin.name = "gx".into();
    }
    let job = serde_json::to_string(&job.sealed()).unwrap();
    refused(
        &format!("{}\n{}\n{job}\n", lines[0], lines[1]),
        "job on plan line 3",
    );
    refused(
        &format!("{}\n{}\n{job}\n", lines[0], lines[1]),
        "rows.plugin: no method named 'gx' is installed",
    );
    // An index outside the plan.
    std::fs::write(&file, &good).unwrap();
    let o = exec(&p, &["--index", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A truncated shard is detected by its digest and run again, never merged.
    let o = exec(&p, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let shard = std::fs::read_dir(p.join("jobs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|f| f.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let o = report(&[&p], &dir.path().join("board"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not match the sha256"),
        "{}",
        text(&o)
    );
    let o = exec(&p, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 job(s) run, 1 already complete"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(&shard).unwrap(), bytes);
}

/// Whether a Slurm cluster answers here (`.ci/slurm-up` starts a single-node one; CI runs it
/// first). Outside CI a machine without one skips the test; in CI it must be there.
fn slurm_up() -> bool {
    let o = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output();
    let up = matches!(&o, Ok(o) if o.status.success()
        && ["idle", "mix", "alloc"].iter().any(|s| String::from_utf8_lossy(&o.stdout).contains(s)));
    if !up {
        let why = match o {
            Ok(o) => text(&o),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "no Slurm cluster (.ci/run starts one with .ci/slurm-up):\n{why}"
        );
        eprintln!("skipping: no Slurm cluster here; `bash .ci/slurm-up` starts one ({why})");
    }
    up
}

#[test]
fn a_slurm_array_runs_the_plan_and_its_report_step_merges_the_shards() {
    if !slurm_up() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p");
    let args = ["--seeds", "0..2", "--methods", "ga"];
    plan(&p, &args);
    let t0 = Instant::now();
    let o = lethe()
        .arg("slurm")
        .arg(&p)
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(["--cpus", "1", "--mem", "2G", "--submit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let id = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .unwrap_or_else(|| panic!("no '{what}' in {stdout}"))
            .trim()
            .to_owned()
    };
    let (array, report_job) = (id("array "), id("report "));
    // Wait until both are out of the queue (bounded).
    loop {
        let q = std::process::Command::new("squeue")
            .args(["-h", "-j", &format!("{array},{report_job}")])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "the Slurm jobs did not finish in 600 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("slurm array + report: {:.1} s", t0.elapsed().as_secs_f64());
    let board = p.join("board");
    assert!(
        board.join("leaderboard.md").exists(),
        "no report; logs: {:?}",
        std::fs::read_dir(p.join("slurm/logs"))
            .map(|r| r
                .filter_map(|e| e.ok())
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect::<Vec<_>>())
            .unwrap_or_default()
    );
    assert_eq!(records(&p).len(), 4);
    let whole = dir.path().join("whole");
    let o = run_tiny(&whole, &args);
    assert!(o.status.success(), "{}", text(&o));
    same_reports(&whole, &board);
}

#[test]
fn exec_keeps_a_folders_plan_and_run_says_when_it_replaces_one() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |methods: &str, out: &Path| {
        lethe()
            .args(["plan", "--preset", "tiny", "--methods", methods, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(plan("ga", &a).status.success());
    assert!(plan("graddiff", &b).status.success());
    let before = std::fs::read(a.join("plan.jsonl")).unwrap();
    // Another plan into a's folder would orphan a's shards: refused, a's plan kept.
    let o = lethe()
        .arg("exec")
        .arg(b.join("plan.jsonl"))
        .arg("--out")
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("keeps another plan"), "{}", text(&o));
    assert_eq!(std::fs::read(a.join("plan.jsonl")).unwrap(), before);
    // `plan` (like `run`) makes the folder's plan its own, and says so.
    let o = plan("graddiff", &a);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("replacing the plan"), "{}", text(&o));
    assert_eq!(
        std::fs::read(a.join("plan.jsonl")).unwrap(),
        std::fs::read(b.join("plan.jsonl")).unwrap()
    );
}

#[test]
fn sigint_and_sigterm_mid_plan_leave_complete_shards_and_the_next_exec_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let plan_dir = dir.path().join("p");
    plan(&plan_dir, &["--seeds", "0..3", "--methods", "ga"]);
    for signal in ["INT", "TERM"] {
        let mut child = exec_until_a_new_shard(&plan_dir);
        let o = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .output()
            .unwrap();
        assert!(o.status.success(), "kill -{signal}: {}", text(&o));
        let status = child.wait().unwrap();
        assert!(!status.success(), "SIG{signal}: {status}");
        // Every record that is there describes a complete shard; nothing else but the
        // plan, shards and records (and hidden temporary files) is in the folder.
        for name in std::fs::read_dir(plan_dir.join("jobs")).unwrap() {
            let name = name.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with('.') || name.ends_with(".json") || name.ends_with(".parquet"),
                "{name}"
            );
        }
        assert!(!plan_dir.join("leaderboard.md").exists());
        // What is there reports: every recorded shard matches its sha256, none is damaged.
        let partial = dir.path().join(format!("partial-{signal}"));
        let o = lethe()
            .arg("report")
            .arg(&plan_dir)
            .arg("--partial")
            .arg("--out")
            .arg(&partial)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(!text(&o).contains("does not match"), "{}", text(&o));
    }
    let o = lethe()
        .arg("exec")
        .arg(plan_dir.join("plan.jsonl"))
        .arg("--no-cache")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(records(&plan_dir).len(), 6);
    let board = dir.path().join("board");
    let o = report(&[&plan_dir], &board);
    assert!(o.status.success(), "{}", text(&o));
}
