//! `lethe plugin new`: a plugin crate of its own, outside any workspace, from the SDK's
//! templates (the same files this repository builds and tests as workspace members).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use lethe_manifest::PluginKind;

use crate::Failure;
use crate::args::NewPluginArgs;

/// One template: its manifest, its source, and the name its source gives the plugin.
struct Template {
    cargo_toml: &'static str,
    lib_rs: &'static str,
    /// The quoted `NAME` of the template's plugin, replaced by the new plugin's name.
    name: &'static str,
}

fn template(kind: PluginKind) -> Template {
    match kind {
        PluginKind::Method => Template {
            cargo_toml: include_str!("../../../plugin-sdk/template/method/Cargo.toml"),
            lib_rs: include_str!("../../../plugin-sdk/template/method/src/lib.rs"),
            name: "\"my-method\"",
        },
        PluginKind::Metric => Template {
            cargo_toml: include_str!("../../../plugin-sdk/template/metric/Cargo.toml"),
            lib_rs: include_str!("../../../plugin-sdk/template/metric/src/lib.rs"),
            name: "\"my-metric\"",
        },
        PluginKind::QueryAttack => Template {
            cargo_toml: include_str!("../../../plugin-sdk/template/query-attack/Cargo.toml"),
            lib_rs: include_str!("../../../plugin-sdk/template/query-attack/src/lib.rs"),
            name: "\"my-attack\"",
        },
        PluginKind::Judge => Template {
            cargo_toml: include_str!("../../../plugin-sdk/template/judge/Cargo.toml"),
            lib_rs: include_str!("../../../plugin-sdk/template/judge/src/lib.rs"),
            name: "\"my-judge\"",
        },
    }
}

/// The versions this Lethe was built and tested with: a new plugin starts from them, so its
/// first build resolves nothing new and compiles the SDK as the host's tests did.
const LOCKFILE: &str = include_str!("../../../Cargo.lock");

/// The SDK line of every template, rewritten for the new crate.
const SDK_LINE: &str = "lethe-plugin-sdk = { path = \"../../rust\" }";

/// Where the new crate gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A checkout's `plugin-sdk/rust` folder.
    Path(PathBuf),
    /// A git repository holding Lethe, at a tag.
    Git {
        /// The repository.
        url: String,
        /// The tag.
        tag: String,
    },
}

impl SdkSource {
    fn dependency(&self) -> String {
        // TOML basic strings: backslashes and quotes escaped (a Windows path, an odd URL).
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        match self {
            Self::Path(p) => format!(
                "lethe-plugin-sdk = {{ path = {} }}",
                quote(&p.to_string_lossy())
            ),
            Self::Git { url, tag } => format!(
                "lethe-plugin-sdk = {{ git = {}, tag = {} }}",
                quote(url),
                quote(tag)
            ),
        }
    }
}

/// A plugin name as the host accepts it, starting with a letter (it also names the crate,
/// and the `.wasm` file after it).
pub fn check_name(name: &str) -> Result<(), String> {
    lethe_experiment::board::check_key(name).map_err(|e| format!("plugin name {e}"))
}

/// The files of a new plugin crate, by path inside its folder.
pub fn render(
    name: &str,
    kind: PluginKind,
    sdk: &SdkSource,
) -> Result<Vec<(&'static str, String)>, String> {
    check_name(name)?;
    let t = template(kind);
    let mut manifest = String::from("# Made by `lethe plugin new`.\n");
    let mut replaced = (false, false, false);
    for line in t.cargo_toml.lines() {
        let line = if line.starts_with("name = ") && !replaced.0 {
            replaced.0 = true;
            format!("name = \"{name}\"")
        } else if line.starts_with("description = ") && !replaced.1 {
            replaced.1 = true;
            format!("description = \"A {kind} for Lethe.\"")
        } else if line == SDK_LINE {
            replaced.2 = true;
            sdk.dependency()
        } else if line.starts_with('#') && !replaced.0 {
            // The template's header speaks of the template.
            continue;
        } else if line == "# lethe-plugin-sdk" {
            "# The SDK: `{ path = \"<Lethe checkout>/plugin-sdk/rust\" }` or `{ git = \"<Lethe \
             repository>\", tag = \"v<version>\" }`."
                .to_owned()
        } else {
            line.to_owned()
        };
        manifest.push_str(&line);
        manifest.push('\n');
    }
    if replaced != (true, true, true) {
        return Err(format!(
            "the {kind} template's Cargo.toml lacks its name, description or SDK line"
        ));
    }
    if t.lib_rs.matches(t.name).count() != 1 {
        return Err(format!(
            "the {kind} template's source names its plugin other than once"
        ));
    }
    let source = t.lib_rs.replace(t.name, &format!("\"{name}\""));
    let wasm = name.replace('-', "_");
    let readme = format!(
        "# {name}\n\nA {kind} plugin for Lethe, made by `lethe plugin new`.\n\n```sh\n\
         rustup target add wasm32-wasip2\n\
         cargo build --release --target wasm32-wasip2\n\
         lethe plugin check target/wasm32-wasip2/release/{wasm}.wasm\n\
         lethe plugin test target/wasm32-wasip2/release/{wasm}.wasm\n\
         ```\n\n`cargo test` runs the unit tests natively. `lethe plugin test` is the conformance \
         check a leaderboard runs before it accepts a submission.\n"
    );
    Ok(vec![
        ("Cargo.toml", manifest),
        ("Cargo.lock", LOCKFILE.to_owned()),
        ("src/lib.rs", source),
        (".gitignore", "/target\n".to_owned()),
        ("README.md", readme),
    ])
}

/// The SDK of the checkout this binary was built from, when it is still there.
fn default_sdk() -> SdkSource {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugin-sdk/rust");
    match here.join("Cargo.toml").canonicalize() {
        Ok(manifest) => SdkSource::Path(manifest.parent().map_or(here, Path::to_path_buf)),
        Err(_) => SdkSource::Git {
            url: env!("CARGO_PKG_REPOSITORY").to_owned(),
            tag: format!("v{}", env!("CARGO_PKG_VERSION")),
        },
    }
}

/// Write `files` into `dir`, which must not exist or be empty: built beside it and renamed into
/// place, so an interrupted scaffold leaves nothing half-written.
fn write_all(dir: &Path, files: &[(&str, String)]) -> Result<(), Failure> {
    if dir.exists() {
        let mut entries = fs_err::read_dir(dir).map_err(Failure::input)?;
        if entries.next().is_some() {
            return Err(Failure::input(anyhow!(
                "{} exists and is not empty; choose another --path",
                dir.display()
            )));
        }
        fs_err::remove_dir(dir).map_err(Failure::input)?;
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent).map_err(Failure::input)?;
    let staging = tempfile::Builder::new()
        .prefix(".lethe-plugin-new-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in {}", parent.display()))
        .map_err(Failure::input)?;
    for (path, text) in files {
        let file = staging.path().join(path);
        if let Some(p) = file.parent() {
            fs_err::create_dir_all(p).map_err(Failure::input)?;
        }
        fs_err::write(&file, text).map_err(Failure::input)?;
    }
    fs_err::rename(staging.path(), dir).map_err(Failure::input)?;
    // The folder now lives at `dir`; nothing is left for the guard to remove.
    let _ = staging.keep();
    Ok(())
}

/// `lethe plugin new NAME --kind K`.
pub fn new_plugin(args: &NewPluginArgs) -> Result<ExitCode, Failure> {
    let kind: PluginKind = args.kind.into();
    let sdk = match (&args.sdk_path, &args.sdk_git) {
        (Some(p), _) => {
            let manifest = p.join("Cargo.toml");
            if !manifest.is_file() {
                return Err(Failure::input(anyhow!(
                    "--sdk-path {}: no Cargo.toml there (give the plugin-sdk/rust folder of a Lethe checkout)",
                    p.display()
                )));
            }
            SdkSource::Path(p.canonicalize().map_err(Failure::input)?)
        }
        (None, Some(url)) => SdkSource::Git {
            url: url.clone(),
            tag: args
                .sdk_tag
                .clone()
                .unwrap_or_else(|| format!("v{}", env!("CARGO_PKG_VERSION"))),
        },
        (None, None) => default_sdk(),
    };
    let files = render(&args.name, kind, &sdk).map_err(|e| Failure::input(anyhow!(e)))?;
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    write_all(&dir, &files)?;
    let wasm = args.name.replace('-', "_");
    let mut out = std::io::stdout().lock();
    writeln!(out, "created {kind} '{}' in {}", args.name, dir.display())?;
    match &sdk {
        SdkSource::Path(p) => writeln!(out, "  SDK: {}", p.display())?,
        SdkSource::Git { url, tag } => writeln!(out, "  SDK: {url} at {tag}")?,
    }
    writeln!(out, "next:")?;
    writeln!(out, "  cd {}", dir.display())?;
    writeln!(out, "  cargo build --release --target wasm32-wasip2")?;
    writeln!(
        out,
        "  lethe plugin test target/wasm32-wasip2/release/{wasm}.wasm"
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const KINDS: [PluginKind; 4] = [
        PluginKind::Method,
        PluginKind::Metric,
        PluginKind::QueryAttack,
        PluginKind::Judge,
    ];

    #[test]
    fn every_template_renders_a_standalone_crate_under_the_new_name() {
        let sdk = SdkSource::Path(PathBuf::from("/opt/lethe/plugin-sdk/rust"));
        for kind in KINDS {
            let files = render("my-forgetter", kind, &sdk).unwrap();
            let manifest = &files[0].1;
            assert!(manifest.contains("name = \"my-forgetter\"\n"), "{manifest}");
            assert!(
                manifest.contains("lethe-plugin-sdk = { path = \"/opt/lethe/plugin-sdk/rust\" }"),
                "{manifest}"
            );
            // Nothing inherited from a workspace, and the template's name is gone.
            assert!(!manifest.contains("workspace"), "{manifest}");
            assert!(!manifest.contains("lethe-template"), "{manifest}");
            let source = &files[2].1;
            assert!(
                source.contains("const NAME: &'static str = \"my-forgetter\";"),
                "{kind}"
            );
            assert!(!source.contains(template(kind).name), "{kind}");
        }
    }

    #[test]
    fn a_git_sdk_is_written_as_a_git_dependency() {
        let sdk = SdkSource::Git {
            url: "https://example.org/lethe".into(),
            tag: "v0.1.0".into(),
        };
        let files = render("m", PluginKind::Metric, &sdk).unwrap();
        assert!(files[0].1.contains(
            "lethe-plugin-sdk = { git = \"https://example.org/lethe\", tag = \"v0.1.0\" }"
        ));
    }

    #[test]
    fn names_the_host_would_refuse_are_refused_before_anything_is_written() {
        for bad in ["", "My-Method", "-x", "1x", "a_b", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("npo-2").is_ok());
    }

    #[test]
    fn a_folder_that_is_not_empty_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("keep.txt");
        std::fs::write(&keep, "mine").unwrap();
        let files = vec![("Cargo.toml", String::new())];
        assert!(write_all(dir.path(), &files).is_err());
        assert_eq!(std::fs::read_to_string(&keep).unwrap(), "mine");
        let fresh = dir.path().join("sub/new");
        assert!(write_all(&fresh, &files).is_ok());
        assert!(fresh.join("Cargo.toml").is_file());
        // No staging folder is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
