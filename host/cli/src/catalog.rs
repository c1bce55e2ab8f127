//! Finding plugins: the built-ins embedded in the binary, a plugin folder, and files named on
//! the command line; `lethe plugins` and `lethe plugin check`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use lethe_manifest::PluginKind;
use lethe_runtime::{Limits, Plugin, PluginHost};

use crate::Failure;
use crate::args::{CheckArgs, PluginTestArgs, PluginsArgs};

/// The plugins a command can choose from.
pub struct Catalog {
    /// Loaded plugins, built-ins first.
    pub plugins: Vec<Plugin>,
    /// Files of the plugin folder that failed to load, with the error.
    pub broken: Vec<(PathBuf, String)>,
}

fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries = fs_err::read_dir(dir).map_err(Failure::input)?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

impl Catalog {
    /// Load the built-ins and every component of `dir`. Components of the folder that fail
    /// are kept aside in `broken` (a bad file must not hide the good ones).
    pub fn load(host: &PluginHost, dir: Option<&Path>) -> Result<Self, Failure> {
        Self::load_named(host, dir, None)
    }

    /// As [`Catalog::load`], but of the built-ins only those named in `wanted` (compiling a
    /// component takes a noticeable share of a second; a run needs a few of them).
    pub fn load_named(
        host: &PluginHost,
        dir: Option<&Path>,
        wanted: Option<&[String]>,
    ) -> Result<Self, Failure> {
        let mut plugins = Vec::new();
        let builtins = lethe_builtin_plugins::BUILTIN
            .iter()
            .filter(|(name, _)| wanted.is_none_or(|w| w.iter().any(|n| n == name)));
        for (name, bytes) in builtins {
            let p = host
                .load(&format!("builtin:{name}"), bytes)
                .with_context(|| format!("built-in plugin {name} failed to load"))?;
            plugins.push(p);
        }
        let mut broken = Vec::new();
        if let Some(dir) = dir {
            for file in wasm_files(dir)? {
                match load_file(host, &file) {
                    Ok(p) => plugins.push(p),
                    Err(e) => broken.push((file, format!("{:#}", e.error))),
                }
            }
        }
        Ok(Self { plugins, broken })
    }

    /// The plugin with this name and kind.
    pub fn find(&self, name: &str, kind: PluginKind) -> Result<&Plugin, Failure> {
        self.plugins
            .iter()
            .rev() // a plugin folder may override a built-in of the same name
            .find(|p| p.manifest.name == name && p.manifest.kind == kind)
            .ok_or_else(|| {
                let mut known: Vec<&str> = self
                    .plugins
                    .iter()
                    .filter(|p| p.manifest.kind == kind)
                    .map(|p| p.manifest.name.as_str())
                    .collect();
                // Built-ins not loaded are named too (their kind is only known once loaded).
                for (b, _) in lethe_builtin_plugins::BUILTIN {
                    if !self.plugins.iter().any(|p| p.manifest.name == *b) {
                        known.push(b);
                    }
                }
                known.sort_unstable();
                known.dedup();
                Failure::input(anyhow!(
                    "no {kind} named '{name}' (installed: {}; see `lethe plugins`)",
                    known.join(", ")
                ))
            })
    }
}

/// Read and load one component file.
pub fn load_file(host: &PluginHost, file: &Path) -> Result<Plugin, Failure> {
    let bytes = fs_err::read(file).map_err(Failure::input)?;
    host.load(&file.display().to_string(), &bytes)
        .map_err(Failure::input)
}

/// `lethe plugins`.
pub fn list(args: &PluginsArgs) -> Result<ExitCode, Failure> {
    let host = PluginHost::new(Limits::default())?;
    let catalog = Catalog::load(&host, args.plugin_dir.as_deref())?;
    let mut out = std::io::stdout().lock();
    // Columns as wide as their widest entry, so long names keep the table aligned.
    let width = |header: &str, cell: &dyn Fn(&lethe_runtime::Plugin) -> String| {
        catalog
            .plugins
            .iter()
            .map(|p| cell(p).chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let name_w = width("name", &|p| p.manifest.name.clone());
    let version_w = width("version", &|p| p.manifest.version.clone());
    let source_w = width("source", &|p| p.source.to_string());
    let kind_w = width("kind", &|p| p.manifest.kind.to_string());
    writeln!(
        out,
        "{:<name_w$} {:<version_w$} {:<kind_w$} {:<6} {:<12} {:<source_w$} summary",
        "name", "version", "kind", "api", "sha256", "source"
    )?;
    for p in &catalog.plugins {
        let m = &p.manifest;
        writeln!(
            out,
            "{:<name_w$} {:<version_w$} {:<kind_w$} {:<6} {:<12} {:<source_w$} {}",
            m.name,
            m.version,
            m.kind.to_string(),
            m.api_version,
            &p.sha256[..12],
            p.source.to_string(),
            m.summary
        )?;
    }
    for (file, error) in &catalog.broken {
        writeln!(out, "{:<16} broken: {}: {error}", "?", file.display())?;
    }
    Ok(if catalog.broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `lethe plugin check FILE.wasm`.
pub fn check(args: &CheckArgs) -> Result<ExitCode, Failure> {
    let host = PluginHost::new(Limits::default())?;
    let plugin = load_file(&host, &args.file)?;
    let m = &plugin.manifest;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ok: {} is a valid Lethe {}",
        args.file.display(),
        m.kind
    )?;
    writeln!(out, "  name:        {}", m.name)?;
    writeln!(out, "  version:     {}", m.version)?;
    writeln!(out, "  api version: lethe:plugin@{}", m.api_version)?;
    writeln!(out, "  sha256:      {}", plugin.sha256)?;
    writeln!(out, "  summary:     {}", m.summary)?;
    match m.kind {
        PluginKind::Method => {
            writeln!(out, "  reads:       {}", m.splits.join(", "))?;
            writeln!(
                out,
                "  reference:   {}",
                if m.needs_reference { "yes" } else { "no" }
            )?;
        }
        PluginKind::Metric => {
            let obs: Vec<String> = m.observations.iter().map(|o| format!("{o:?}")).collect();
            let outs: Vec<&str> = m.outputs.iter().map(|o| o.name.as_str()).collect();
            writeln!(out, "  observes:    {}", obs.join(", "))?;
            writeln!(out, "  outputs:     {}", outs.join(", "))?;
        }
        PluginKind::QueryAttack => {
            writeln!(out, "  shots:       {}", m.shots)?;
        }
        PluginKind::Judge => {}
    }
    writeln!(
        out,
        "  config schema: {}",
        serde_json::to_string(&m.config_schema)?
    )?;
    if let Some(config) = &args.config {
        let value: serde_json::Value = serde_json::from_str(config)
            .map_err(|e| Failure::input(anyhow!("--config is not JSON: {e}")))?;
        host.validate_config(&plugin, &value)
            .map_err(Failure::input)?;
        writeln!(out, "  config:      valid")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `lethe plugin test FILE.wasm`: the conformance check, printed as a report.
pub fn test(args: &PluginTestArgs, verbose: u8) -> Result<ExitCode, Failure> {
    use lethe_experiment::conformance::{self, PARTNER_METHOD, PARTNER_METRIC, Partners};
    let config: serde_json::Value = serde_json::from_str(&args.config)
        .map_err(|e| Failure::input(anyhow!("--config is not JSON: {e}")))?;
    let wanted = [PARTNER_METHOD.to_owned(), PARTNER_METRIC.to_owned()];
    let (host, catalog, cache) = crate::run::runtime(&args.runtime, Some(&wanted))?;
    let plugin = load_file(&host, &args.file)?;
    let partners = Partners {
        method: catalog.find(PARTNER_METHOD, PluginKind::Method)?,
        metric: catalog.find(PARTNER_METRIC, PluginKind::Metric)?,
    };
    let progress = crate::progress::reporter(verbose);
    let report = conformance::check(
        &plugin, &config, &partners, &host, &cache, &*progress, args.seed,
    )
    .map_err(crate::plans::failure)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "conformance of {} ({}, sha256 {}) on the tiny preset, seed {}",
        report.plugin,
        report.kind,
        &plugin.sha256[..12],
        args.seed
    )?;
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        writeln!(out, "  {mark}  {:<width$}  {}", c.name, c.detail)?;
    }
    let runs: Vec<String> = report
        .runs
        .iter()
        .map(|d| format!("{:.1} s", d.as_secs_f64()))
        .collect();
    if !runs.is_empty() {
        writeln!(out, "  runs: {}", runs.join(", "))?;
    }
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    if failed == 0 {
        writeln!(out, "ok: {} passed every check", args.file.display())?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "failed: {} of {} checks failed for {}",
            failed,
            report.checks.len(),
            args.file.display()
        )?;
        Ok(ExitCode::from(1))
    }
}
