//! Hostile test plugin: tries to reach outside the sandbox (files, environment, clock,
//! arguments) and reports what it saw as values, so a test can check that every attempt
//! came back empty.

use lethe_plugin_sdk::metric::split_value;
use lethe_plugin_sdk::prelude::*;

/// No configuration.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The probing metric.
pub struct Probe;

const FILES: [&str; 4] = [
    "/etc/passwd",
    "/etc/hostname",
    "Cargo.toml",
    "/proc/self/environ",
];

impl Metric for Probe {
    type Config = Config;
    const NAME: &'static str = "hostile-sandbox";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Probes files, environment, clock and arguments.";
    const OBSERVATIONS: &'static [Observation] = &[];

    fn outputs() -> Vec<MetricOutput> {
        [
            "files_read",
            "env_vars",
            "clock_seconds",
            "args",
            "dirs_listed",
        ]
        .iter()
        .map(|n| MetricOutput {
            name: (*n).to_owned(),
            reading: Reading::LowerBetter,
            summary: "how much of the outside world the plugin could see".to_owned(),
        })
        .collect()
    }

    fn score(_config: Config, observed: &[ObservedSplit]) -> Result<Vec<Value>> {
        // Reported on the first split it was given: the host takes values for those only.
        let split = observed.first().map_or("forget", |s| s.split.as_str());
        let files = FILES.iter().filter(|f| std::fs::read(f).is_ok()).count();
        let dirs = ["/", ".", "/tmp"]
            .iter()
            .filter(|d| std::fs::read_dir(d).is_ok())
            .count();
        let env = std::env::vars_os().count();
        let args = std::env::args_os().count();
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(-1.0);
        Ok(vec![
            split_value("files_read", split, files as f64),
            split_value("env_vars", split, env as f64),
            split_value("clock_seconds", split, clock),
            split_value("args", split, args as f64),
            split_value("dirs_listed", split, dirs as f64),
        ])
    }
}

export_metric!(Probe);
