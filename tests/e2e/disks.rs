//! A full disk and a read-only output folder: a clear error, a non-zero exit, and the
//! results already there left whole. The test mounts a small tmpfs (as root, which CI is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run_tiny, text};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` at `dir`; `None` (the test skips) where this may not mount,
    /// except in CI, which runs as root and must run the test.
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Self(dir.to_owned())),
            other => {
                let why = match other {
                    Ok(o) => text(&o),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot mount a tmpfs (CI runs as root):\n{why}"
                );
                eprintln!("skipping: cannot mount a tmpfs here ({why})");
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_full_disk_and_a_read_only_folder_are_clear_errors_that_keep_earlier_results() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("mnt"), "16m") else {
        return;
    };
    let out = fs.0.join("out");
    let o = run_tiny(&out, &["--methods", "ga"]);
    assert!(o.status.success(), "{}", text(&o));
    let before = snapshot(&out);

    // Fill the disk to the last byte.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(fs.0.join("fill")).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let mut byte = [0u8; 1];
        while f.write_all(&byte[..]).is_ok() {
            byte[0] = byte[0].wrapping_add(1);
        }
    }
    let o = run_tiny(&out, &["--methods", "ga,graddiff"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(&out.display().to_string()),
        "the error names no path: {err}"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "a full disk changed the earlier results"
    );

    // Read-only: refused as clearly, nothing changed.
    std::fs::remove_file(fs.0.join("fill")).unwrap();
    fs.remount("ro");
    let o = run_tiny(&out, &["--methods", "ga,graddiff"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(snapshot(&out), before);
    fs.remount("rw");
}
