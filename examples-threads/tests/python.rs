//! The `--python` paths of examples-threads: the course's Python recipes (`python/*.py`) run on
//! the same input as the Rust examples, and both must compute the same results (same files and
//! dimensions, same checksums, same values). Speed is never asserted.
//!
//! Without python3 (or Pillow, for the image batch) each test prints `SKIPPED: <reason>` and
//! passes; CI installs them (`pip install -r examples-threads/python/requirements.txt`).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use shared::images::{self, SampleSpec};

const IMAGE_BATCH: &str = env!("CARGO_BIN_EXE_image-batch");

fn python_or_skip(imports: &[&str]) -> bool {
    match shared::python::Python::find(imports) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

/// Runs `bin args --json`; returns the output and its JSON object.
fn run_json(bin: &str, args: &[&str]) -> (Output, Value) {
    let out = Command::new(bin)
        .args(args)
        .arg("--json")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{bin}: stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

fn python_row(json: &Value, key: &str) -> Value {
    let rows = json[key]["rows"].as_array().unwrap();
    rows.iter()
        .find(|r| r["name"].as_str().unwrap().starts_with("Python"))
        .unwrap_or_else(|| panic!("no Python row in {rows:?}"))
        .clone()
}

/// Every kind of image the generator makes (CMYK, 16-bit, alpha, grey), small, plus the broken
/// files, one level down for `--recursive`.
fn mixed_folder(dir: &Path) {
    let spec = SampleSpec {
        count: 8,
        seed: 11,
        min_mp: 0.01,
        max_mp: 0.12,
        png_fraction: 0.4,
        rgba_fraction: 0.5,
        gray_fraction: 0.2,
        cmyk_fraction: 0.3,
        deep_fraction: 0.5,
        ..SampleSpec::default()
    };
    images::generate_folder(dir, &spec).unwrap();
    images::write_broken_files(&dir.join("sub")).unwrap();
    images::generate_folder(&dir.join("sub"), &SampleSpec { seed: 12, ..spec }).unwrap();
}

#[test]
fn image_batch_and_pool_with_pillow_write_the_same_files_with_the_same_dimensions() {
    if !python_or_skip(&["PIL"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let in_dir = root.path().join("in");
    mixed_folder(&in_dir);
    let in_arg = in_dir.to_str().unwrap();
    for (i, flags) in [
        &["--recursive"][..],
        &[
            "--recursive",
            "--size",
            "64x40",
            "--format",
            "png",
            "--grayscale",
        ],
        &["--size", "300", "--blur", "1.5"],
    ]
    .into_iter()
    .enumerate()
    {
        let out_dir = root.path().join(format!("out{i}"));
        let mut args = vec![in_arg, out_dir.to_str().unwrap(), "--python"];
        args.extend(flags);
        let (out, json) = run_json(IMAGE_BATCH, &args);
        let python = &json["python"];
        assert_eq!(
            python["same_files_and_dimensions"], true,
            "{flags:?}: {python}"
        );
        assert_eq!(python["ok"], json["ok"], "{flags:?}: {python}");
        assert_eq!(python_row(&json, "speedup")["agrees"], true);
        // The broken files fail on both sides (and make the run exit 1); the rest agree.
        let broken = if flags.contains(&"--recursive") { 6 } else { 0 };
        assert_eq!(json["failed"], broken, "{flags:?}: {json}");
        assert_eq!(python["failed"], broken, "{flags:?}: {python}");
        let expected = if broken > 0 { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(expected), "{flags:?}");
    }
}

#[test]
fn without_pillow_python_flags_say_what_to_install() {
    let out = Command::new(IMAGE_BATCH)
        .args(["--python", "--count", "1"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
    assert!(out.stdout.is_empty(), "no work before the check");
}

const CPU_SCALING: &str = env!("CARGO_BIN_EXE_cpu-scaling");

#[test]
fn cpu_scaling_python_threads_and_processes_compute_the_same_checksum() {
    if !python_or_skip(&[]) {
        return;
    }
    let args = [
        "--python",
        "--jobs",
        "6",
        "--rounds",
        "3000",
        "--max-threads",
        "2",
    ];
    let (out, json) = run_json(CPU_SCALING, &args);
    assert!(out.status.success(), "{json}");
    let python = &json["python"];
    assert_eq!(python["checksum_agrees"], true, "{python}");
    let rows = python["rows"].as_array().unwrap();
    let kinds: Vec<&str> = rows
        .iter()
        .map(|r| r["python"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"threads"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"processes"), "{kinds:?}");
    for r in rows {
        assert_eq!(r["python"]["checksum"], json["checksum"], "{r}");
    }
    // The 1-thread row is each language's baseline.
    assert_eq!(rows[0]["python_speedup"], 1.0);
    assert_eq!(rows[0]["rust_speedup"], 1.0);
}

#[test]
fn without_python3_cpu_scaling_says_what_to_install() {
    let out = Command::new(CPU_SCALING)
        .args(["--python", "--jobs", "2"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
}

const THREAD_POOL: &str = env!("CARGO_BIN_EXE_thread-pool");

#[test]
fn thread_pool_executor_computes_the_same_values_and_stores_the_exceptions() {
    if !python_or_skip(&[]) {
        return;
    }
    let args = [
        "--python",
        "--jobs",
        "12",
        "--rounds",
        "2000",
        "--workers",
        "3",
        "--panics",
        "2",
    ];
    let (out, json) = run_json(THREAD_POOL, &args);
    assert!(out.status.success(), "{json}");
    let python = &json["python"];
    assert_eq!(python["values_agree"], true, "{python}");
    assert_eq!(
        python["raised"], 2,
        "each failing job's exception is in its Future"
    );
    assert_eq!(python["workers"], 3);
    assert_eq!(json["panicked_jobs"], 2, "and ours caught the same two");
}

#[test]
fn without_python3_thread_pool_says_what_to_install() {
    let out = Command::new(THREAD_POOL)
        .args(["--python", "--jobs", "2"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
}

const HELLO: &str = env!("CARGO_BIN_EXE_hello-threads");

#[test]
fn hello_threads_python_waits_for_its_default_threads_and_kills_daemon_ones() {
    if !python_or_skip(&[]) {
        return;
    }
    let out = Command::new(HELLO)
        .args(["--python", "--spawn-count", "5"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |who: &str| {
        text.lines()
            .find(|l| l.contains(who))
            .unwrap_or_else(|| panic!("no line for {who}:\n{text}"))
            .to_owned()
    };
    let daemon = line("Python: Thread(daemon=True)");
    assert!(daemon.contains("cleanup NEVER ran"), "{daemon}");
    // The default thread ticks 5 times, and the interpreter waits for all of them.
    let default = line("Python: Thread() (non-daemon");
    assert!(
        default.contains("5 ticks") && default.contains("cleanup ran"),
        "{default}"
    );
    assert!(line("Rust: main returns").contains("cleanup NEVER ran"));
}

#[test]
fn without_python3_hello_threads_says_what_to_install() {
    let out = Command::new(HELLO)
        .arg("--python")
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
    assert!(out.stdout.is_empty(), "no part ran before the check");
}
