//! Every example is a copyable lesson: this test holds the file shape to its promise.
//!
//! The shape (see the README's *Layout and conventions*):
//!
//! ```text
//! //! header: summary, course section, Crates:, Concepts, Run, What to observe, Exercises (≤ 60 lines)
//! // === Lesson: copy from here ===
//! mod the_idea { … }            one or more modules, only std + the crates on the Crates: line
//! // === Harness: not part of the lesson ===
//! use clap::Parser; …           Args, self-started servers, tables, --json, --python
//! #[cfg(test)] mod tests { … }
//! ```
//!
//! Two checks live here:
//! - the fast, textual ones (always run): markers present and in order, the lesson starts within
//!   the first 120 lines, no lesson module over 250 lines (tests excluded), no forbidden path in a
//!   lesson (`shared::`, `examples_sync::`, clap, serde, indicatif, `crate::` or `super::` into the
//!   harness), a `Crates:` line whose entries are Cargo.toml dependency lines;
//! - `copy_check` (ignored by default, run by `.ci/run`): every lesson block is written into one
//!   scratch crate, each as its own module, with a Cargo.toml made from the `Crates:` lines, and
//!   `cargo check --tests` must pass. That proves "paste this into a fresh `cargo new` project",
//!   and a header that forgets a crate or a feature fails CI.

mod common;

use common::workspace_root;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The line that opens a lesson block.
const LESSON_MARKER: &str = "// === Lesson: copy from here ===";
/// The line that closes it (everything after is harness and tests).
const HARNESS_MARKER: &str = "// === Harness: not part of the lesson ===";
/// The lesson's first line must be this early: a reader meets the idea, not the CLI.
const MAX_LESSON_START: usize = 120;
/// The longest lesson module, its tests excluded: longer means two ideas, so two modules.
const MAX_LESSON_MODULE_LINES: usize = 250;
/// The longest header (figures belong in the crate READMEs, where they can be kept current).
const MAX_HEADER_LINES: usize = 60;
/// Crates a lesson must not name: the workspace's plumbing and the harness's own tools.
const FORBIDDEN_PATHS: [&str; 7] = [
    "shared::",
    "examples_sync::",
    "examples_threads::",
    "examples_async::",
    "clap::",
    "serde::",
    "indicatif::",
];
/// Attribute-style uses of the harness crates (`#[derive(Serialize)]`, `#[arg(..)]`).
const FORBIDDEN_WORDS: [&str; 5] = ["Serialize", "Deserialize", "Parser", "ProgressBar", "clap"];

/// One file that carries a lesson: every binary, and the library modules that hold a lesson
/// (examples-sync keeps its hand-built primitives in the library so loom can check them).
#[derive(Debug)]
struct LessonFile {
    /// `examples-threads`, …
    krate: String,
    /// `thread-pool` for a binary, `semaphore` for a library module.
    name: String,
    path: PathBuf,
    text: String,
    /// A library module (its block is a module body) rather than a binary (its block is modules).
    is_lib: bool,
}

impl LessonFile {
    fn display(&self) -> String {
        let rel = self
            .path
            .strip_prefix(workspace_root())
            .unwrap_or(&self.path);
        rel.display().to_string()
    }
}

/// Every lesson file, or only those whose path contains `$LESSON_FILTER` (a crate or file
/// name): `LESSON_FILTER=examples-threads cargo test -p shared --test lessons -- --include-ignored`
/// checks one crate while the others are being reworked.
fn lesson_files() -> Vec<LessonFile> {
    let filter = std::env::var("LESSON_FILTER").unwrap_or_default();
    let mut files = all_lesson_files();
    files.retain(|f| f.is_lib || f.path.to_string_lossy().contains(&filter));
    files
}

fn all_lesson_files() -> Vec<LessonFile> {
    let root = workspace_root();
    let mut out = Vec::new();
    let mut crates: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read workspace root")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("examples-"))
        })
        .collect();
    crates.sort();
    for dir in crates {
        let krate = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 crate name")
            .to_string();
        for (sub, is_lib) in [("src/bin", false), ("src", true)] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).expect("read source");
                // Library modules are lessons only when they say so; every binary must be one.
                if is_lib && !text.lines().any(|l| l.trim() == LESSON_MARKER) {
                    continue;
                }
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("utf-8 file name")
                    .to_string();
                out.push(LessonFile {
                    krate: krate.clone(),
                    name,
                    path,
                    text,
                    is_lib,
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A small Rust lexer: enough to tell code from comments and strings, and to follow braces.
// ---------------------------------------------------------------------------------------------

/// `source` with comments and the contents of string and char literals blanked out (replaced by
/// spaces, newlines kept), so a path mentioned in a comment or a message is not a use of it.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // Raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('r');
            for _ in 0..=hashes {
                out.push(' ');
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(chars[j]));
                j += 1;
            }
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): a literal closes within a
            // few characters, a lifetime does not close at all.
            let close = if next == Some('\\') {
                (i + 2..(i + 12).min(chars.len())).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(end) => {
                    out.push('\'');
                    for _ in i + 1..end {
                        out.push(' ');
                    }
                    out.push('\'');
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A top-level module of a lesson block: its name and its lines (0-based, inclusive), and the
/// lines that belong to its `#[cfg(test)]` modules.
#[derive(Debug)]
struct LessonModule {
    name: String,
    first: usize,
    last: usize,
    test_lines: usize,
}

/// The parsed lesson of one file.
#[derive(Debug)]
struct Lesson {
    /// 0-based line index of the lesson marker.
    start: usize,
    /// The block's text (between the markers).
    block: String,
    modules: Vec<LessonModule>,
}

fn parse_lesson(file: &LessonFile) -> Result<Lesson, String> {
    let lines: Vec<&str> = file.text.lines().collect();
    let find = |marker: &str| -> Vec<usize> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == marker)
            .map(|(i, _)| i)
            .collect()
    };
    let starts = find(LESSON_MARKER);
    let ends = find(HARNESS_MARKER);
    let start = match starts.as_slice() {
        [s] => *s,
        [] => return Err(format!("no `{LESSON_MARKER}` line")),
        _ => return Err(format!("`{LESSON_MARKER}` appears {} times", starts.len())),
    };
    let end = match (ends.as_slice(), file.is_lib) {
        ([e], _) => *e,
        ([], true) => {
            // A library module's lesson runs to its tests (or the end of the file).
            lines
                .iter()
                .enumerate()
                .skip(start)
                .find(|(_, l)| l.trim() == "#[cfg(test)]" || l.starts_with("#[cfg(all(test"))
                .map_or(lines.len(), |(i, _)| i)
        }
        ([], false) => return Err(format!("no `{HARNESS_MARKER}` line")),
        (many, _) => return Err(format!("`{HARNESS_MARKER}` appears {} times", many.len())),
    };
    if end <= start {
        return Err("the harness marker comes before the lesson marker".into());
    }
    let block = lines[start + 1..end].join("\n");
    let modules = if file.is_lib {
        vec![LessonModule {
            name: file.name.clone(),
            first: start + 1,
            last: end.saturating_sub(1),
            test_lines: 0,
        }]
    } else {
        top_level_modules(&block, start + 1)?
    };
    if modules.is_empty() {
        return Err("the lesson block holds no module".into());
    }
    Ok(Lesson {
        start,
        block,
        modules,
    })
}

/// The top-level `mod name { … }` items of a binary's lesson block. Anything else at the top
/// level (a `use`, a `fn`) is an error: the lesson is modules, so it pastes as a unit.
fn top_level_modules(block: &str, first_line: usize) -> Result<Vec<LessonModule>, String> {
    let code = code_only(block);
    let mut modules = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<LessonModule> = None;
    // Depth at which a `#[cfg(test)]` module opened, and its first line.
    let mut test_open: Option<(usize, usize)> = None;
    // The line of a `#[cfg(test)]` attribute waiting for its module's `{`.
    let mut pending_test_attr: Option<usize> = None;
    for (k, line) in code.lines().enumerate() {
        let lineno = first_line + k;
        let t = line.trim();
        if depth == 0 && !t.is_empty() && t != "}" {
            let is_mod = t.starts_with("mod ") || t.starts_with("pub mod ");
            let is_attr = t.starts_with("#[") || t.starts_with("#!");
            if !is_mod && !is_attr {
                return Err(format!(
                    "line {}: only modules belong at the top level of a lesson, found `{t}`",
                    lineno + 1
                ));
            }
            if is_mod {
                let name = t
                    .trim_start_matches("pub ")
                    .trim_start_matches("mod ")
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default()
                    .to_string();
                current = Some(LessonModule {
                    name,
                    first: lineno,
                    last: lineno,
                    test_lines: 0,
                });
            }
        }
        if depth == 1 && (t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test")) {
            pending_test_attr = Some(lineno);
        }
        for c in line.chars() {
            match c {
                '{' => {
                    if let Some(attr_line) = pending_test_attr
                        && depth == 1
                        && test_open.is_none()
                    {
                        test_open = Some((depth, attr_line));
                        pending_test_attr = None;
                    }
                    depth += 1;
                }
                '}' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| format!("line {}: unbalanced `}}`", lineno + 1))?;
                    if let Some((d, from)) = test_open
                        && depth == d
                    {
                        if let Some(m) = current.as_mut() {
                            m.test_lines += lineno - from + 1;
                        }
                        test_open = None;
                    }
                    if depth == 0
                        && let Some(mut m) = current.take()
                    {
                        m.last = lineno;
                        modules.push(m);
                    }
                }
                _ => {}
            }
        }
    }
    if depth != 0 {
        return Err("the lesson block's braces do not balance".into());
    }
    Ok(modules)
}

/// Library lesson modules of a crate (`semaphore`, `sync`, …): a binary's lesson may name them
/// as `crate::semaphore`, because the reader copies that file next to it.
fn lib_lessons(files: &[LessonFile], krate: &str) -> BTreeSet<String> {
    files
        .iter()
        .filter(|f| f.is_lib && f.krate == krate)
        .map(|f| f.name.clone())
        .collect()
}

/// Everything wrong with one lesson, as sentences.
fn problems(file: &LessonFile, all: &[LessonFile]) -> Vec<String> {
    let mut out = Vec::new();
    let header_lines = file
        .text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .count();
    if header_lines > MAX_HEADER_LINES {
        out.push(format!(
            "its header is {header_lines} lines (at most {MAX_HEADER_LINES}: figures go to the crate README)"
        ));
    }
    match crates_line(&file.text) {
        Ok(_) => {}
        Err(e) => out.push(e),
    }
    if !file.is_lib
        && !file
            .text
            .lines()
            .take(header_lines)
            .any(|l| l.contains("# Exercises"))
    {
        out.push("its header has no `# Exercises` section".into());
    }
    let lesson = match parse_lesson(file) {
        Ok(l) => l,
        Err(e) => {
            out.push(e);
            return out;
        }
    };
    if lesson.start + 2 > MAX_LESSON_START {
        out.push(format!(
            "the lesson starts at line {} (at most {MAX_LESSON_START}: the idea comes before the CLI)",
            lesson.start + 2
        ));
    }
    for m in &lesson.modules {
        let size = m.last - m.first + 1 - m.test_lines;
        if size > MAX_LESSON_MODULE_LINES {
            out.push(format!(
                "lesson module `{}` is {size} lines without its tests (at most \
                 {MAX_LESSON_MODULE_LINES}: a second idea is a second module)",
                m.name
            ));
        }
    }
    let siblings: BTreeSet<String> = lesson.modules.iter().map(|m| m.name.clone()).collect();
    let libs = lib_lessons(all, &file.krate);
    let code = code_only(&lesson.block);
    let mut depth = 0usize;
    for (k, line) in code.lines().enumerate() {
        let lineno = lesson.start + 2 + k;
        for path in FORBIDDEN_PATHS {
            if contains_path(line, path) {
                out.push(format!("line {lineno}: a lesson must not use `{path}`"));
            }
        }
        for word in FORBIDDEN_WORDS {
            if contains_word(line, word) {
                out.push(format!(
                    "line {lineno}: `{word}` belongs to the harness, not the lesson"
                ));
            }
        }
        for (at, _) in line.match_indices("crate::") {
            if at > 0 && line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue; // `my_crate::`
            }
            let name = ident_after(&line[at + "crate::".len()..]);
            if !libs.contains(name) {
                out.push(format!(
                    "line {lineno}: `crate::{name}` reaches outside the lesson (only the \
                     library lessons {libs:?} may be named through `crate::`)"
                ));
            }
        }
        // `super::` one level inside a binary's lesson module is the binary's root: the
        // harness. Deeper (a module's own tests) it is the lesson itself, which is fine.
        let mut d = depth;
        for (i, c) in line.char_indices() {
            if line[i..].starts_with("super::") && (i == 0 || !line[..i].ends_with('_')) {
                let name = ident_after(&line[i + "super::".len()..]);
                let reaches_root = if file.is_lib { d == 0 } else { d <= 1 };
                let ok_sibling = !file.is_lib && d == 1 && siblings.contains(name);
                if reaches_root && !ok_sibling {
                    out.push(format!(
                        "line {lineno}: `super::{name}` reaches the harness from the lesson"
                    ));
                }
            }
            match c {
                '{' => d += 1,
                '}' => d = d.saturating_sub(1),
                _ => {}
            }
        }
        depth = d;
    }
    out
}

fn ident_after(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// `path` (like `shared::`) appears as a path, not as the tail of a longer name.
fn contains_path(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(at, _)| {
        at == 0 || !line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

fn contains_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

// ---------------------------------------------------------------------------------------------
// The `Crates:` line.
// ---------------------------------------------------------------------------------------------

/// The dependency lines of a header's `Crates:` entry, e.g.
/// ``//! Crates: `rayon = "1.12"`, `crossbeam-channel = "0.5"` `` (or `//! Crates: std only.`).
/// The entry may continue on the following `//!` lines until a blank `//!` line.
fn crates_line(text: &str) -> Result<Vec<String>, String> {
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim())
        .collect();
    let Some(at) = header.iter().position(|l| l.starts_with("Crates:")) else {
        return Err("its header has no `Crates:` line".into());
    };
    let mut entry = header[at]["Crates:".len()..].to_string();
    for l in &header[at + 1..] {
        if l.is_empty() || l.starts_with('#') {
            break;
        }
        entry.push(' ');
        entry.push_str(l);
    }
    let mut deps = Vec::new();
    for (i, span) in entry.split('`').enumerate() {
        if i % 2 == 1 && span.contains('=') {
            deps.push(span.trim().to_string());
        }
    }
    if deps.is_empty() && !entry.contains("std only") {
        return Err(format!(
            "its `Crates:` line names no dependency in backticks (`name = \"version\"`) and does \
             not say `std only`: {entry:?}"
        ));
    }
    for d in &deps {
        if let Err(e) = d.parse::<toml::Table>() {
            return Err(format!(
                "`Crates:` entry `{d}` is not a Cargo.toml dependency line: {e}"
            ));
        }
    }
    Ok(deps)
}

#[test]
fn every_example_has_the_lesson_first_shape() {
    let files = lesson_files();
    let bins = files.iter().filter(|f| !f.is_lib).count();
    if std::env::var_os("LESSON_FILTER").is_none() {
        assert!(bins >= 30, "found only {bins} binaries");
    }
    let mut report = String::new();
    for f in &files {
        for p in problems(f, &files) {
            let _ = writeln!(report, "{}: {p}", f.display());
        }
    }
    assert!(
        report.is_empty(),
        "lesson shape (see README, Layout and conventions):\n{report}"
    );
}

// The checks above must reject what they exist to reject: each case is a small file that one
// rule forbids, and the rule must name it.

fn fake(name: &str, text: &str) -> LessonFile {
    LessonFile {
        krate: "examples-fake".into(),
        name: name.into(),
        path: PathBuf::from(format!("examples-fake/src/bin/{name}.rs")),
        text: text.into(),
        is_lib: false,
    }
}

const GOOD: &str = "//! A demo.\n//!\n//! Crates: `rayon = \"1.12\"`\n//!\n//! # Exercises\n//! 1. Try.\n\n\
// === Lesson: copy from here ===\nmod demo {\n    pub fn twice(x: u32) -> u32 {\n        x * 2\n    }\n\
    #[cfg(test)]\n    mod tests {\n        use super::*;\n        #[test]\n        fn t() { assert_eq!(twice(2), 4); }\n    }\n}\n\
// === Harness: not part of the lesson ===\nuse clap::Parser;\nfn main() { println!(\"{}\", demo::twice(1)); }\n";

#[test]
fn a_well_formed_lesson_passes() {
    let f = fake("good", GOOD);
    assert_eq!(problems(&f, &[]), Vec::<String>::new());
    let lesson = parse_lesson(&f).expect("parses");
    assert_eq!(lesson.modules.len(), 1);
    assert_eq!(lesson.modules[0].name, "demo");
    assert_eq!(lesson.modules[0].test_lines, 6);
}

fn assert_rejected(text: &str, expected: &str) {
    let f = fake("bad", text);
    let found = problems(&f, &[]);
    assert!(
        found.iter().any(|p| p.contains(expected)),
        "expected a problem mentioning {expected:?}, got {found:?}"
    );
}

#[test]
fn a_lesson_that_imports_a_forbidden_path_fails() {
    for (bad, expected) in [
        ("use shared::report::timed;", "shared::"),
        ("use examples_sync::table::Table;", "examples_sync::"),
        ("use clap::Parser;", "clap::"),
        ("#[derive(serde::Serialize)] pub struct S;", "serde::"),
        ("#[derive(Serialize)] pub struct S;", "Serialize"),
        ("use indicatif::ProgressBar;", "indicatif::"),
        ("use super::Args;", "super::Args"),
        ("use crate::Args;", "crate::Args"),
    ] {
        let text = GOOD.replace("    pub fn twice", &format!("    {bad}\n    pub fn twice"));
        assert_rejected(&text, expected);
    }
}

#[test]
fn mentions_in_comments_and_strings_are_not_uses() {
    let text = GOOD.replace(
        "    pub fn twice",
        "    // shared::report does the timing in the harness\n    pub const S: &str = \"clap::Parser\";\n    pub fn twice",
    );
    assert_eq!(problems(&fake("ok", &text), &[]), Vec::<String>::new());
}

#[test]
fn a_lesson_that_starts_past_line_120_fails() {
    let padding = "//\n".repeat(130);
    let text = GOOD.replace(
        "// === Lesson: copy from here ===",
        &format!("{padding}// === Lesson: copy from here ==="),
    );
    assert_rejected(&text, "the lesson starts at line");
}

#[test]
fn an_oversized_lesson_module_fails() {
    let body = "        let _ = 1;\n".repeat(300);
    let text = GOOD.replace("        x * 2\n", &format!("{body}        x * 2\n"));
    assert_rejected(&text, "lesson module `demo` is");
}

#[test]
fn missing_markers_and_crates_lines_fail() {
    assert_rejected(&GOOD.replace(LESSON_MARKER, "//"), "no `// === Lesson");
    assert_rejected(&GOOD.replace(HARNESS_MARKER, "//"), "no `// === Harness");
    assert_rejected(
        &GOOD.replace("//! Crates: `rayon = \"1.12\"`\n", ""),
        "no `Crates:` line",
    );
    assert_rejected(
        &GOOD.replace("`rayon = \"1.12\"`", "rayon 1.12"),
        "names no dependency",
    );
    assert_rejected(
        &GOOD.replace("mod demo {", "fn loose() {}\nmod demo {"),
        "only modules belong",
    );
}

// ---------------------------------------------------------------------------------------------
// The copy check: every lesson in one scratch crate, `cargo check --tests`.
// ---------------------------------------------------------------------------------------------

/// Merges the `Crates:` entries of every lesson into one `[dependencies]` table: the union of
/// features; `default-features = false` only where every lesson asks for it.
fn merged_dependencies(files: &[LessonFile]) -> Result<toml::Table, String> {
    let mut merged: BTreeMap<String, toml::Table> = BTreeMap::new();
    let mut defaults_on: BTreeSet<String> = BTreeSet::new();
    for f in files {
        for line in crates_line(&f.text).map_err(|e| format!("{}: {e}", f.display()))? {
            let table: toml::Table = line.parse().map_err(|e| format!("{line}: {e}"))?;
            for (name, spec) in table {
                let spec = match spec {
                    toml::Value::String(v) => {
                        let mut t = toml::Table::new();
                        t.insert("version".into(), toml::Value::String(v));
                        t
                    }
                    toml::Value::Table(t) => t,
                    other => return Err(format!("{}: `{name} = {other}`", f.display())),
                };
                if spec.get("default-features") != Some(&toml::Value::Boolean(false)) {
                    defaults_on.insert(name.clone());
                }
                let entry = merged.entry(name).or_default();
                for (k, v) in spec {
                    match (k.as_str(), entry.get_mut(&k)) {
                        ("features", Some(toml::Value::Array(have))) => {
                            for feat in v.as_array().into_iter().flatten() {
                                if !have.contains(feat) {
                                    have.push(feat.clone());
                                }
                            }
                        }
                        // Keep the most precise version requirement ("1.54" over "1").
                        ("version", Some(toml::Value::String(have))) => {
                            if let toml::Value::String(new) = &v
                                && new.len() > have.len()
                            {
                                *have = new.clone();
                            }
                        }
                        _ => {
                            entry.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    let mut out = toml::Table::new();
    for (name, mut spec) in merged {
        if defaults_on.contains(&name) {
            spec.remove("default-features");
        }
        out.insert(name, toml::Value::Table(spec));
    }
    Ok(out)
}

fn module_name(f: &LessonFile) -> String {
    if f.is_lib {
        f.name.replace('-', "_")
    } else {
        format!("{}__{}", f.krate, f.name).replace('-', "_")
    }
}

/// Writes the scratch crate and returns its directory.
fn write_scratch_crate(files: &[LessonFile], dir: &Path) -> Result<(), String> {
    let deps = merged_dependencies(files)?;
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    let mut manifest = String::from(
        "# Generated by shared/tests/lessons.rs (copy_check): every lesson of the workspace, as a \
         reader would paste it.\n[package]\nname = \"lessons\"\nversion = \"0.0.0\"\nedition = \
         \"2024\"\npublish = false\n\n[workspace]\n\n[lints.rust]\nunexpected_cfgs = { level = \
         \"allow\" }\n\n",
    );
    let mut table = toml::Table::new();
    table.insert("dependencies".into(), toml::Value::Table(deps));
    manifest.push_str(&toml::to_string(&table).map_err(|e| e.to_string())?);
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    // The workspace's lock file: the scratch crate resolves to the versions the examples use.
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| e.to_string())?;
    // Lints are the workspace's business; here only "does it compile" counts.
    let mut lib = String::from("#![allow(dead_code, unused, clippy::all)]\n");
    // Library lessons sit at the root, where `crate::sync`/`crate::semaphore` point in a
    // reader's project too; binary lessons each get a module of their own.
    let mut seen_libs = BTreeSet::new();
    for f in files {
        let lesson = parse_lesson(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let name = module_name(f);
        if f.is_lib && !seen_libs.insert(name.clone()) {
            return Err(format!(
                "two library lessons are both called `{name}`: rename one"
            ));
        }
        let _ = writeln!(lib, "pub mod {name};");
        std::fs::write(src.join(format!("{name}.rs")), lesson.block + "\n")
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(src.join("lib.rs"), lib).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
#[ignore = "builds a scratch crate (1-3 min): run by .ci/run, or with `-- --ignored copy_check`"]
fn copy_check() {
    let files = lesson_files();
    let dir = workspace_root().join("target/lesson-copy-check");
    std::fs::create_dir_all(&dir).expect("create the scratch crate's folder");
    // One scratch crate (its dependencies stay checked between runs); two runs at once would
    // rewrite each other's sources, so they take turns.
    let lock = std::fs::File::create(dir.with_extension("lock")).expect("create the lock file");
    lock.lock().expect("lock the scratch crate");
    write_scratch_crate(&files, &dir).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO"))
        .args(["check", "--tests", "--quiet", "--message-format", "short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo check");
    assert!(
        out.status.success(),
        "the lessons do not compile on their own (scratch crate in {}):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
