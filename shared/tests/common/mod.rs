//! What the workspace-wide tests share: where the workspace and its binaries are.

#![allow(dead_code)] // each test file uses its own part of this module

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shared/ lives in the workspace root")
        .to_path_buf()
}

/// `(crate, binary)` for every `src/bin/*.rs` of every workspace member.
pub fn workspace_binaries() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(workspace_root()).expect("read workspace root") {
        let dir = entry.expect("dir entry").path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.starts_with("examples-") || name == "shared") {
            continue;
        }
        let Ok(bins) = std::fs::read_dir(dir.join("src/bin")) else {
            continue;
        };
        for b in bins {
            let p = b.expect("bin entry").path();
            if p.extension().is_some_and(|e| e == "rs") {
                let stem = p.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
                out.insert((name.to_string(), stem.to_string()));
            }
        }
    }
    out
}

/// The directory cargo puts binaries in for this build (`target/debug`), found from the test's
/// own path (`target/debug/deps/<test>-…`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_path_buf()
}

/// `cargo test --workspace` builds every binary before running tests. When a test of this crate
/// runs alone (`cargo test -p shared`), the others' binaries may be missing or stale: build them.
pub fn ensure_binaries_built(bins: impl IntoIterator<Item = String>) {
    let dir = bin_dir();
    if bins.into_iter().any(|b| !dir.join(b).exists()) {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--bins", "--all-features"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    }
}
