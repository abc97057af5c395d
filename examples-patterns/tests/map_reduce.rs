//! End-to-end tests of `map-reduce`: the real binary on generated and hostile files, checking its
//! JSON, its exit codes, its messages and its memory. No timing assertions: the runs that must
//! meet a file change are made long (`--repeat 50`: minutes) and the change is made as soon as
//! the binary says it has started; the binary checks its files after every pass, so it stops on
//! the next pass, long before the run could have ended.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MAP_REDUCE: &str = env!("CARGO_BIN_EXE_map-reduce");

/// Generous bound on any run (debug build, shared cores): a hang guard, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(180);

/// Kills `pid` if `done` is not signalled within the hang guard; returns whether it killed.
fn hang_guard(pid: u32) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<bool>) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if done_rx.recv_timeout(HANG_GUARD).is_err() {
            // SIGKILL by pid: the child is still ours (not yet reaped), so the pid is not reused.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            return true;
        }
        false
    });
    (done_tx, guard)
}

/// Runs the binary to completion with a hang guard, and prints what it said (shown on failure).
fn run(args: &[&str]) -> Output {
    let child = Command::new(MAP_REDUCE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, guard) = hang_guard(child.id());
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(
        !guard.join().unwrap(),
        "map-reduce {args:?} hung and was killed"
    );
    eprintln!("$ map-reduce {}", args.join(" "));
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Run with `--json`, expect success, parse the one JSON line.
fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(&all);
    assert!(out.status.success(), "map-reduce {all:?} failed");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Writes `size` bytes of `byte` without holding them all in memory.
fn write_filled(dir: &Path, name: &str, byte: u8, size: usize) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let block = vec![byte; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
    p
}

/// A text file of about `size` bytes (many words, a small vocabulary).
fn write_text(dir: &Path, name: &str, size: usize) -> PathBuf {
    let line = b"the quick brown fox jumps over the lazy dog while the cat watches it\n";
    let mut text = Vec::with_capacity(size + line.len());
    while text.len() < size {
        text.extend_from_slice(line);
    }
    write(dir, name, &text)
}

/// Runs the binary, waits for its `input:` line (it has looked at its files and starts
/// counting), calls `change`, and returns how the run ended.
fn run_and_change_the_input(args: &[&str], change: impl FnOnce()) -> Output {
    let mut child = Command::new(MAP_REDUCE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, guard) = hang_guard(child.id());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("input:"), "first line: {first:?}");
    change();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let mut out = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(
        !guard.join().unwrap(),
        "map-reduce {args:?} hung and was killed"
    );
    out.stdout = [first.as_bytes(), &rest].concat();
    eprintln!("$ map-reduce {}", args.join(" "));
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", stderr(&out));
    out
}

/// Peak resident memory (KiB) of a run, from `wait4`'s resource usage of that one child.
fn peak_rss_kib(args: &[&str]) -> (i32, u64) {
    let child = Command::new(MAP_REDUCE)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, guard) = hang_guard(pid);
    let mut status = 0;
    // SAFETY: plain FFI call with valid pointers to locals; the child is ours and not yet reaped
    // (we never call `wait` on `child`, which is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as i32, "wait4");
    let _ = done.send(());
    assert!(
        !guard.join().unwrap(),
        "map-reduce {args:?} hung and was killed"
    );
    assert!(
        libc::WIFEXITED(status),
        "map-reduce {args:?} died of signal {}",
        libc::WTERMSIG(status)
    );
    drop(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64)
}

#[test]
fn help_works() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
}

#[test]
fn parallel_equals_sequential_on_generated_corpus() {
    let v = json(&["--size", "2MB", "--chunk-size", "64KiB", "--threads", "3"]);
    assert_eq!(v["agrees"], true);
    assert!(v["words"].as_u64().unwrap() > 100_000);
    assert_eq!(v["top"][0][0], "the");
    let s = json(&[
        "--size",
        "2MB",
        "--input",
        "stream",
        "--chunk-size",
        "50KiB",
    ]);
    assert_eq!(s["agrees"], true);
    assert_eq!(
        s["words"], v["words"],
        "streamed and mapped inputs count the same"
    );
    assert_eq!(s["distinct"], v["distinct"]);
}

#[test]
fn edge_case_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(dir.path(), "empty.txt", b""),
        write(dir.path(), "huge-word.txt", &[b'z'; 300_000]),
        write(
            dir.path(),
            "broken-utf8.txt",
            b"caf\xe9 CAF\xc3\xa9 caf\xc3\xa9 \xff\xfe ok\n",
        ),
        write(
            dir.path(),
            "boundaries.txt",
            "alpha beta gamma ".repeat(5000).as_bytes(),
        ),
    ];
    let paths: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    for mode in ["mmap", "stream"] {
        let mut args = paths.clone();
        args.extend(["--chunk-size", "7", "--input", mode, "--top", "50"]);
        let v = json(&args);
        assert_eq!(v["agrees"], true, "{mode}");
        // 1 huge word + 5 in the UTF-8 file + 15000 in the boundaries file.
        assert_eq!(v["words"], 1 + 5 + 15_000, "{mode}");
        let top = v["top"].as_array().unwrap();
        let count = |w: &str| {
            top.iter()
                .find(|e| e[0] == w)
                .map(|e| e[1].as_u64().unwrap())
        };
        assert_eq!(count("café"), Some(2), "CAFÉ lower-cases to café: {top:?}");
        assert_eq!(count("caf\u{fffd}"), Some(1));
        assert_eq!(count("alpha"), Some(5000));
    }
}

#[test]
fn rejects_a_missing_file() {
    let out = run(&["/nonexistent/file.txt"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/file.txt"));
}

// ---------------------------------------------------------------------------------------------
// Defect 7 of issue #12 (each test failed on the binary before its fix) and bad input.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_file_truncated_during_the_run_is_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_text(dir.path(), "shrinks.txt", 4_000_000);
    let path = file.to_str().unwrap();
    let out = run_and_change_the_input(&[path, "--repeat", "50"], || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    // Before the fix: killed by SIGBUS (no exit code), or, when the truncation came before the
    // mapping, 0 words reported with exit 0.
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
    let err = stderr(&out);
    assert!(
        err.contains("shrinks.txt") && err.contains("changed"),
        "{err}"
    );
}

#[test]
fn a_file_that_changes_during_a_streamed_run_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_text(dir.path(), "grows.txt", 4_000_000);
    let path = file.to_str().unwrap();
    let out = run_and_change_the_input(&[path, "--input", "stream", "--repeat", "50"], || {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(b"late words appended while counting\n")
            .unwrap();
    });
    // Before the fix: the counts of whichever version each pass read, exit 0.
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
    let err = stderr(&out);
    assert!(
        err.contains("grows.txt") && err.contains("changed"),
        "{err}"
    );
}

#[test]
fn streamed_memory_stays_bounded_on_a_file_without_separators() {
    let dir = tempfile::tempdir().unwrap();
    let size = 200_000_000;
    let file = write_filled(dir.path(), "one-word.txt", b'z', size);
    let (code, rss) = peak_rss_kib(&[
        file.to_str().unwrap(),
        "--input",
        "stream",
        "--chunk-size",
        "1MiB",
        "--threads",
        "2",
    ]);
    assert_eq!(code, 0);
    // Before the fix the 200 MB "word" was held whole, in several copies (about 4x its size).
    assert!(
        rss < 100 * 1024,
        "peak RSS {rss} KiB for a {size}-byte file"
    );
}

#[test]
fn the_default_mode_holds_one_copy_of_a_file_without_separators() {
    let dir = tempfile::tempdir().unwrap();
    let size = 100_000_000;
    let file = write_filled(dir.path(), "one-word.txt", b'z', size);
    let (code, rss) = peak_rss_kib(&[file.to_str().unwrap(), "--threads", "2"]);
    assert_eq!(code, 0);
    // The input itself, and not the ~4 copies of its one word there were before the fix.
    let bound = (size as u64 * 3 / 2) / 1024 + 64 * 1024;
    assert!(rss < bound, "peak RSS {rss} KiB for a {size}-byte file");
}

#[test]
fn printed_words_are_escaped_and_shortened() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"\x1b[2J\x1b]0;owned\x07 bell\x07 ok ok ".to_vec();
    text.extend(std::iter::repeat_n(b'w', 5000));
    text.push(b'\n');
    let file = write(dir.path(), "control.txt", &text);
    let out = run(&[file.to_str().unwrap(), "--top", "10"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !stdout.bytes().any(|b| b < 0x20 && b != b'\n'),
        "raw control bytes reach the terminal: {stdout:?}"
    );
    assert!(stdout.contains("\\u{1b}[2j"), "escaped, visible: {stdout}");
    for line in stdout.lines() {
        assert!(line.chars().count() < 200, "a {}-char line", line.len());
    }
    assert!(
        stdout.contains("www…"),
        "the long word is shortened: {stdout}"
    );
}

#[test]
fn a_binary_file_fails_the_run_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_text(dir.path(), "good.txt", 10_000);
    let zeros = write_filled(dir.path(), "zeros.bin", 0, 1_000_000);
    for mode in ["mmap", "stream"] {
        let out = run(&[
            good.to_str().unwrap(),
            zeros.to_str().unwrap(),
            "--input",
            mode,
        ]);
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let err = stderr(&out);
        assert!(err.contains("zeros.bin") && err.contains("binary"), "{err}");
        assert!(out.stdout.is_empty(), "no partial report: {mode}");
    }
}

#[test]
fn an_empty_file_counts_zero_words() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.txt", b"");
    for mode in ["mmap", "stream"] {
        let v = json(&[empty.to_str().unwrap(), "--input", mode]);
        assert_eq!(
            (v["words"].as_u64(), v["distinct"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(v["agrees"], true);
    }
}

#[test]
fn a_directory_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(dir.path().to_str().unwrap()));
}

/// `--python`: the course's recipe (`python/wordcount.py`, `Pool` + `Counter`) counts the same
/// files with the same word definition, punctuation, case and non-ASCII bytes included, and the
/// run says so. Skipped, with `SKIPPED: <reason>`, only when python3 is absent (CI installs it).
#[test]
fn python_counts_the_same_words_as_rust() {
    if let Err(e) = shared::python::Python::find(&[]) {
        println!("SKIPPED: {e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tricky = write(
        dir.path(),
        "tricky.txt",
        "The the THE, the. naïve\tcafé\r\nend-of-line\x0bvertical  tab\u{a0}nbsp \u{feff}bom 1,000 \n"
            .repeat(300)
            .as_bytes(),
    );
    let text = write_text(dir.path(), "text.txt", 300_000);
    for (what, args) in [
        (
            "a generated corpus",
            vec!["--size", "1MB", "--vocabulary", "5000"],
        ),
        (
            "two files with punctuation, case and non-ASCII bytes",
            vec![tricky.to_str().unwrap(), text.to_str().unwrap()],
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--python", "--threads", "2"]);
        let v = json(&all);
        let py = &v["python"];
        assert_eq!(py["words"], v["words"], "{what}: {py}");
        assert_eq!(py["distinct"], v["distinct"], "{what}: {py}");
        assert_eq!(py["top"], v["top"][0], "{what}: the most frequent word");
        assert_eq!(py["workers"], 2, "{what}");
        assert!(v["python_ratio"].as_f64().unwrap() > 0.0, "{what}");
        let rows = v["table"]["rows"].as_array().unwrap();
        let row = rows
            .iter()
            .find(|r| r["name"].as_str().unwrap().starts_with("python"))
            .expect("a Python row in the table");
        assert_eq!(row["agrees"], true, "{what}: {row}");
    }
}

/// A recipe that counts differently is a failed run (exit 1, both counts named), not a table
/// with a "no" in it and exit 0. The recipe here is a stand-in that miscounts by one word.
#[test]
fn a_python_count_that_differs_fails_the_run() {
    if let Err(e) = shared::python::Python::find(&[]) {
        println!("SKIPPED: {e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = write_text(dir.path(), "text.txt", 10_000);
    let good = json(&[text.to_str().unwrap()]);
    let (words, distinct) = (
        good["words"].as_u64().unwrap(),
        good["distinct"].as_u64().unwrap(),
    );
    let liar = write(
        dir.path(),
        "liar.py",
        format!(
            "import json\nprint(json.dumps({{'words': {}, 'distinct': {distinct}, \
             'top': ['the', 1], 'workers': 2, 'seconds': 0.01}}))\n",
            words - 1
        )
        .as_bytes(),
    );
    let python = format!("--python={}", liar.display());
    let out = run(&[text.to_str().unwrap(), &python]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("counted {} words", words - 1)) && err.contains(&words.to_string()),
        "{err}"
    );
}
