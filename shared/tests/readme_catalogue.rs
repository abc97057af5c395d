//! The README's catalogue is the map readers navigate by: every binary it lists must exist and
//! answer `--help`, and every binary of the workspace must be listed.

mod common;

use common::{bin_dir, ensure_binaries_built, workspace_binaries, workspace_root};
use std::collections::BTreeSet;
use std::process::Command;

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

#[test]
fn every_catalogue_binary_answers_help() {
    let dir = bin_dir();
    let rows = catalogue();
    ensure_binaries_built(rows.iter().map(|(_, b)| b.clone()));
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
