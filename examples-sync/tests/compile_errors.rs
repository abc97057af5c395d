//! The `compile_fail` doc tests of `src/lib.rs` name the error each snippet must produce
//! (`compile_fail,E0499`), but on stable Rust rustdoc checks only that the snippet fails to
//! compile, not which error it fails with (error codes are checked on nightly only). A snippet
//! that broke for an unrelated reason, a typo, would still pass. This test compiles each snippet
//! with rustc and checks that the error code the documentation promises is the one reported.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// The `compile_fail,EXXXX` blocks of the crate docs: (error code, code).
fn compile_fail_snippets() -> Vec<(String, String)> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    let text = std::fs::read_to_string(lib).unwrap();
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match current.as_mut() {
            None => {
                if let Some(code) = doc.strip_prefix("```compile_fail,") {
                    current = Some((code.trim().to_string(), Vec::new()));
                }
            }
            Some((_, body)) if doc.trim_start() != "```" => body.push(doc.to_string()),
            Some(_) => {
                let (code, body) = current.take().unwrap();
                out.push((code, body.join("\n")));
            }
        }
    }
    out
}

#[test]
fn each_compile_fail_snippet_fails_with_the_error_code_it_names() {
    let snippets = compile_fail_snippets();
    let codes: Vec<&str> = snippets.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        ["E0499", "E0133", "E0277"],
        "the snippets of src/lib.rs changed"
    );

    let dir = std::env::temp_dir().join(format!(
        "examples-sync-compile-errors-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    for (i, (code, body)) in snippets.iter().enumerate() {
        // rustdoc wraps a snippet without `fn main` in one; so do we.
        let file = dir.join(format!("snippet{i}.rs"));
        std::fs::write(&file, format!("fn main() {{\n{body}\n}}\n")).unwrap();
        let out = Command::new(&rustc)
            .current_dir(env!("CARGO_MANIFEST_DIR")) // the workspace's toolchain
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "bin",
                "--emit",
                "metadata",
                "--color",
                "never",
                "-o",
            ])
            .arg(dir.join(format!("snippet{i}.rmeta")))
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {rustc}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "snippet {code} compiled:\n{body}");
        assert!(
            stderr.contains(&format!("error[{code}]")),
            "snippet {code} failed with another error:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
