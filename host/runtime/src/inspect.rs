//! Read what a component exports before compiling it, to refuse a wrong interface version
//! with a message that names the supported range.

use wasmtime::wasmparser::{Parser, Payload};

use crate::RuntimeError;
use lethe_manifest::{PluginKind, SUPPORTED_API};

/// The kind and interface version a component exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// Method, metric, query attack or judge.
    pub kind: PluginKind,
    /// The `lethe:plugin` version, e.g. "0.1.0".
    pub api_version: String,
}

/// Find the `lethe:plugin/<kind>@V` export of a component (method, metric, query-attack, judge).
pub fn exported_interface(label: &str, bytes: &[u8]) -> Result<Exported, RuntimeError> {
    let malformed = |reason: String| RuntimeError::Malformed {
        plugin: label.to_owned(),
        reason,
    };
    if !Parser::is_component(bytes) {
        let what = if Parser::is_core_wasm(bytes) {
            "a core WebAssembly module, not a component (build for wasm32-wasip2)"
        } else {
            "not WebAssembly at all"
        };
        return Err(malformed(what.to_owned()));
    }
    let mut depth = 0usize;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| malformed(e.to_string()))?;
        match payload {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| malformed(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    let ours: Vec<&String> = exports
        .iter()
        .filter(|n| n.starts_with("lethe:plugin/"))
        .collect();
    let Some(name) = ours.first() else {
        return Err(malformed(format!(
            "it exports no lethe:plugin interface (exports: {})",
            if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            }
        )));
    };
    if ours.len() > 1 {
        return Err(malformed(format!(
            "it exports more than one lethe:plugin interface: {}",
            ours.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let rest = name.trim_start_matches("lethe:plugin/");
    let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
    let kind = match iface {
        "method" => PluginKind::Method,
        "metric" => PluginKind::Metric,
        "query-attack" => PluginKind::QueryAttack,
        "judge" => PluginKind::Judge,
        other => {
            return Err(malformed(format!(
                "it exports lethe:plugin/{other}, which is not method, metric, query-attack or judge"
            )));
        }
    };
    if !SUPPORTED_API.contains(&version) {
        return Err(RuntimeError::ApiVersion {
            plugin: label.to_owned(),
            found: if version.is_empty() {
                "(unversioned)".to_owned()
            } else {
                version.to_owned()
            },
            supported: supported_range(),
        });
    }
    Ok(Exported {
        kind,
        api_version: version.to_owned(),
    })
}

/// The supported versions, for messages.
pub fn supported_range() -> String {
    match SUPPORTED_API {
        [one] => format!("lethe:plugin@{one} only"),
        many => format!("lethe:plugin@{}", many.join(", @")),
    }
}
