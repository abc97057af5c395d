//! The README's catalogue is the map readers navigate by: every binary it lists must exist and
//! answer `--help`, and every binary of the workspace must be listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shared/ lives in the workspace root")
        .to_path_buf()
}

/// `(crate, binary)` for every row of the catalogue table: rows whose 2nd and 3rd cells are
/// `` `examples-…` `` / `` `shared` `` and a binary name in backticks.
fn catalogue() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let section = readme
        .split("## Catalogue")
        .nth(1)
        .expect("README has a '## Catalogue' section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // cells[0] is empty (leading '|'), then: section, crate, binary, shows, command.
            let krate = cells.get(2)?.trim_matches('`');
            let bin = cells.get(3)?.trim_matches('`');
            (krate.starts_with("examples-") || krate == "shared")
                .then(|| (krate.to_string(), bin.to_string()))
        })
        .collect()
}

/// Every `src/bin/*.rs` of every workspace member.
fn workspace_binaries() -> BTreeSet<(String, String)> {
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

#[test]
fn every_binary_is_in_the_catalogue_and_every_row_is_a_binary() {
    let rows = catalogue();
    let listed: BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(
        rows.len(),
        listed.len(),
        "a binary is listed twice in the README catalogue: {rows:?}"
    );
    let real = workspace_binaries();
    assert!(real.len() >= 6, "found only {real:?}");
    let missing: Vec<_> = real.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&real).collect();
    assert!(
        missing.is_empty(),
        "binaries missing from the README catalogue: {missing:?}"
    );
    assert!(stale.is_empty(), "README rows without a binary: {stale:?}");
}

/// The directory cargo puts binaries in for this build (`target/debug`), found from the test's
/// own path (`target/debug/deps/readme_catalogue-…`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps")
        .to_path_buf()
}

#[test]
fn every_catalogue_binary_answers_help() {
    let dir = bin_dir();
    let rows = catalogue();
    // `cargo test --workspace` builds every binary before running tests. When this test runs
    // alone (`cargo test -p shared`), build them first.
    if rows.iter().any(|(_, b)| !dir.join(b).exists()) {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--bins", "--all-features"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    }
    for (krate, bin) in rows {
        let out = Command::new(dir.join(&bin))
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("{krate}/{bin}: cannot run: {e}"));
        assert!(
            out.status.success(),
            "{krate}/{bin} --help exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Usage"),
            "{krate}/{bin} --help printed no usage: {text}"
        );
    }
}
