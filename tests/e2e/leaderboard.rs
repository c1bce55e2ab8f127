//! A board from submissions: built-in methods and a third party's component are added
//! (checked, run, verified), broken submissions are refused with the reason, and the built
//! page is opened in a real browser (Debian's chromium, headless).

use std::path::{Path, PathBuf};
use std::process::Output;

use lethe_builtin_plugins::artifacts;

use crate::{lethe, shared_cache, text};

const BOARD: &str = r#"title = "Tiny authors board"

[protocols.authors-tiny]
run = ["--preset", "tiny", "--seeds", "0..2", "--metrics", "probability,rouge", "--attack", "quant4"]
rank = { metric = "probability", output = "probability", split = "forget", higher_is_better = false }
utility = { metric = "rouge", output = "rougeL_recall", split = "retain", higher_is_better = true }

# A submission's grid runs on seed 100 only; the scored seeds never see it.
[protocols.authors-tiny.select]
seeds = [100]
by = { metric = "probability", output = "probability", split = "forget", higher_is_better = false }
utility = { metric = "rouge", output = "rougeL_recall", split = "retain", higher_is_better = true }
keep = 0.5
"#;

fn add(submission: &Path, board: &Path) -> Output {
    lethe()
        .args(["leaderboard", "add"])
        .arg(submission)
        .arg("--board")
        .arg(board)
        .arg("--cache-dir")
        .arg(shared_cache())
        .output()
        .unwrap()
}

/// A submission folder for `name` with `plugin` as its `[plugin]` table.
fn submission(root: &Path, name: &str, plugin: &str, config: &str) -> PathBuf {
    let dir = root.join(format!("sub-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("submission.toml"),
        format!(
            "name = \"{name}\"\nauthors = [\"Ada Author\", \"Bo Builder\"]\ncontact = \
             \"ada@example.org\"\nprotocols = [\"authors-tiny\"]\n\n[plugin]\n{plugin}\n\n\
             [config]\n{config}\n"
        ),
    )
    .unwrap();
    dir
}

/// A submission of the component `file`, copied beside it, with its digest.
fn component_submission(root: &Path, name: &str, file: &str, sha256: Option<&str>) -> PathBuf {
    let o = lethe().args(["plugin", "check", file]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let actual = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("sha256:"))
        .unwrap()
        .trim()
        .to_owned();
    let dir = submission(
        root,
        name,
        &format!(
            "wasm = \"method.wasm\"\nsha256 = \"{}\"",
            sha256.unwrap_or(&actual)
        ),
        "",
    );
    std::fs::copy(file, dir.join("method.wasm")).unwrap();
    dir
}

#[test]
fn a_board_of_four_entries_is_ranked_verified_and_renders_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let board = dir.path().join("board");
    std::fs::create_dir_all(&board).unwrap();
    std::fs::write(board.join("board.toml"), BOARD).unwrap();

    // Three built-in methods and a third party's component (the method template, built
    // outside any board).
    // GradDiff enters with a grid over α, searched by the board's rule.
    for (name, config) in [
        ("ga", ""),
        ("graddiff", "gamma = 1.0\n\n[grid]\nalpha = [0.5, 2.0]"),
        ("npo", ""),
    ] {
        let sub = submission(dir.path(), name, &format!("builtin = \"{name}\""), config);
        let o = add(&sub, &board);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(
            text(&o).contains("ran twice, the same shard"),
            "{}",
            text(&o)
        );
    }
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(board.join("entries/graddiff/entry.json")).unwrap())
            .unwrap();
    let search = &record["selections"]["authors-tiny"];
    let labels: Vec<&str> = search["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["graddiff[alpha=0.5]", "graddiff[alpha=2.0]"],
        "{search}"
    );
    let chosen = search["chosen"].as_str().unwrap();
    let alpha = record["configs"]["authors-tiny"]["alpha"].as_f64().unwrap();
    assert!(
        (chosen == "graddiff[alpha=0.5]" && alpha == 0.5)
            || (chosen == "graddiff[alpha=2.0]" && alpha == 2.0),
        "{record}"
    );
    // The scored runs used the chosen configuration, on the scored seeds only.
    let plan =
        std::fs::read_to_string(board.join("entries/graddiff/authors-tiny/plan.jsonl")).unwrap();
    assert!(!plan.contains("\"seed\":100"), "{plan}");
    let third = component_submission(dir.path(), "my-method", artifacts::TEMPLATE_METHOD, None);
    let o = add(&third, &board);
    assert!(o.status.success(), "{}", text(&o));

    // Broken submissions are refused with the reason, and leave the board as it was.
    let before = std::fs::read_dir(board.join("entries")).unwrap().count();
    let swallow = component_submission(
        dir.path(),
        "hostile-swallow",
        artifacts::HOSTILE_SWALLOW,
        None,
    );
    let o = add(&swallow, &board);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("failed the conformance check") && text(&o).contains("holdout"),
        "{}",
        text(&o)
    );
    let forged = component_submission(
        dir.path(),
        "forged",
        artifacts::TEMPLATE_METHOD,
        Some(&"0".repeat(64)),
    );
    let o = add(&forged, &board);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("sha256 is"), "{}", text(&o));
    let o = add(
        &submission(dir.path(), "ga", "builtin = \"ga\"", ""),
        &board,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("already on the board"), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(board.join("entries")).unwrap().count(),
        before,
        "a refused submission left something behind"
    );

    let o = lethe()
        .args(["leaderboard", "build"])
        .arg(&board)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(board.join("leaderboard.md")).unwrap();
    for entry in ["ga", "graddiff", "npo", "my-method"] {
        assert!(md.contains(&format!("| {entry} ")), "{entry}\n{md}");
    }
    assert!(md.contains("*target (reference)*"), "{md}");
    let csv = std::fs::read_to_string(board.join("leaderboard.csv")).unwrap();
    assert!(csv.starts_with("protocol,rank,entry"), "{csv}");
    let html = std::fs::read_to_string(board.join("index.html")).unwrap();
    for fetch in ["src=", "<link", "<script", "url("] {
        assert!(!html.contains(fetch), "the page fetches: {fetch}");
    }
    assert!(html.contains("<svg") && html.contains("quant4"), "{html}");
    assert!(html.contains("(grid)"), "{html}");

    // The page in a real browser, from a file: it renders, with every entry ranked.
    let chromium = ["chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is needed (.ci/run installs Debian's chromium package)");
    let url = format!("file://{}", board.join("index.html").display());
    let browser = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let o = browser(&["--dump-dom"]);
    assert!(o.status.success(), "{}", text(&o));
    let dom = String::from_utf8_lossy(&o.stdout);
    let ranked = dom.matches("<tr class=\"entry\">").count();
    assert_eq!(ranked, 4, "{dom}");
    assert!(
        dom.contains("my-method") && dom.contains("Ada Author"),
        "{dom}"
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("leaderboard.png");
    let _ = std::fs::remove_file(&shot);
    let o = browser(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,2400",
        "--hide-scrollbars",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
}
