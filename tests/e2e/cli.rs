//! `lethe plugins` and `lethe plugin check`, snapshotted.

use lethe_builtin_plugins::artifacts;

use crate::{lethe, text};

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\b[0-9a-f]{12}\b", "[sha]"),
        (r"\b[0-9a-f]{64}\b", "[sha256]"),
        (r"/\S+/(lethe_|lethe-)", "[path]/$1"),
    ]
}

#[test]
fn plugins_lists_the_builtins() {
    let o = lethe().arg("plugins").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
    });
}

#[test]
fn plugin_check_accepts_the_templates() {
    for path in [artifacts::TEMPLATE_METHOD, artifacts::TEMPLATE_METRIC] {
        let o = lethe()
            .args(["plugin", "check", path, "--config", "{}"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("is a valid Lethe") && out.contains("config:      valid"),
            "{out}"
        );
    }
    let o = lethe()
        .args(["plugin", "check", artifacts::TEMPLATE_METHOD])
        .output()
        .unwrap();
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
    });
}

#[test]
fn plugin_check_refuses_bad_components_and_bad_configs() {
    let o = lethe()
        .args(["plugin", "check", artifacts::HOSTILE_VERSION])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "built against lethe:plugin@9.0.0; this host supports lethe:plugin@0.1.0, @0.1.1, @0.1.2"
        ),
        "{err}"
    );

    let o = lethe()
        .args([
            "plugin",
            "check",
            artifacts::TEMPLATE_METHOD,
            "--config",
            r#"{"gamma": -1}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("my-method@0.1.0: invalid config: at /gamma"),
        "{err}"
    );

    let o = lethe()
        .args(["plugin", "check", "/nonexistent.wasm"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent.wasm"),
        "{}",
        text(&o)
    );
}

#[test]
fn bench_boundary_runs_and_reports_its_figures() {
    let o = lethe()
        .args([
            "bench",
            "boundary",
            "--repeats",
            "1",
            "--steps",
            "2",
            "--calls",
            "2000",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "ns per call",
        "host calls per step",
        "boundary share, estimated",
    ] {
        assert!(out.contains(needle), "'{needle}' missing:\n{out}");
    }
}
