//! End-to-end: the measured comparison runs every approach on both workloads, and they agree.

use std::process::Command;

fn compare() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compare"))
}

#[test]
fn small_run_has_every_approach_and_they_agree() {
    let out = compare()
        .args([
            "--requests",
            "12",
            "--latency-ms",
            "5",
            "--concurrency",
            "4",
        ])
        .args([
            "--size", "3000", "--tasks", "6", "--rounds", "20000", "--json",
        ])
        .output()
        .expect("run compare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["all_agree"], true);
    let expected = [
        "sequential",
        "threads",
        "processes",
        "async, 1 thread",
        "async, multi-thread",
        "rayon",
    ];
    for workload in ["io", "cpu"] {
        let rows = v[workload]["rows"].as_array().expect("rows");
        let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, expected, "{workload}");
        for r in &rows[1..] {
            assert_eq!(r["agrees"], true, "{workload}: {r}");
            assert!(r["wall"].as_f64().expect("wall") > 0.0);
            assert!(r["ideal"].as_f64().is_some());
            assert!(r["peak_rss_kib"].as_u64().expect("rss") > 0);
        }
    }
    // The I/O ideal is ceil(N/C)·L: 12 requests, 4 at a time, 5 ms each.
    let threads = &v["io"]["rows"][1];
    assert!((threads["ideal"].as_f64().expect("ideal") - 0.015).abs() < 1e-9);
    // Sequential I/O cannot beat N·L, whatever the machine: 12 × 5 ms.
    assert!(v["io"]["rows"][0]["wall"].as_f64().expect("wall") >= 0.060);
}

#[test]
fn table_output_explains_the_results() {
    let out = compare()
        .args(["--only", "cpu", "--tasks", "4", "--rounds", "10000"])
        .output()
        .expect("run compare");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CPU-bound: 4 tasks"), "{text}");
    assert!(
        !text.contains("I/O-bound:"),
        "--only cpu ran the I/O workload: {text}"
    );
    assert!(text.contains("GIL"), "{text}");
    assert!(!text.contains(" NO "), "{text}");
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    // A usage error (exit 2) that names the flag and its range, before any work starts.
    for (flag, value) in [
        ("--tasks", "0"),
        ("--requests", "0"),
        ("--concurrency", "0"),
        ("--cores", "0"),
        ("--latency-ms", "18446744073709551615"),
        ("--rounds", "0"),
    ] {
        let out = compare()
            .arg(format!("{flag}={value}"))
            .output()
            .expect("run compare");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}={value}: {err}");
        assert!(
            err.contains(flag) && err.contains("use "),
            "{flag}={value}: {err}"
        );
    }
}

#[test]
fn hidden_worker_flags_are_checked_too() {
    // `--step 0` reached `step_by(0)`, which panics.
    let out = compare()
        .args(["--worker", "cpu", "--step", "0"])
        .output()
        .expect("run compare");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// python3 (with aiohttp for the I/O rows), or a printed reason to skip.
fn python_or_skip(imports: &[&str]) -> bool {
    match shared::python::Python::find(imports) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

#[test]
fn python_rows_compute_what_rust_computes() {
    if !python_or_skip(&["aiohttp"]) {
        return;
    }
    let out = compare()
        .args(["--requests", "8", "--latency-ms", "5", "--concurrency", "4"])
        .args(["--size", "3000", "--tasks", "4", "--rounds", "20000"])
        .args(["--python", "--python-scale", "10", "--json"])
        .output()
        .expect("run compare");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(v["all_agree"], true);
    assert_eq!(v["python"]["cpu_rounds"], 2000, "20000 rounds / 10");
    let expected = [
        ("Python sequential", "sequential"),
        ("Python threading", "threads"),
        ("Python multiprocessing", "processes"),
        ("Python asyncio", "async, 1 thread"),
    ];
    for workload in ["io", "cpu"] {
        let rows = v["python"][workload]["rows"]
            .as_array()
            .expect("python rows");
        let names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or(""),
                    r["rust_peer"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(names, expected, "{workload}");
        for r in rows {
            // Same result: the same bodies (I/O) or the same task totals (CPU) as Rust's.
            assert_eq!(r["agrees"], true, "{workload}: {r}");
            assert!(r["wall"].as_f64().expect("wall") > 0.0, "{r}");
            assert!(r["python_over_rust"].as_f64().is_some(), "{r}");
        }
        // Rust's rows are still all there, unchanged.
        assert_eq!(v[workload]["rows"].as_array().expect("rust rows").len(), 6);
    }
}

#[test]
fn python_cpu_rows_need_no_aiohttp_and_table_output_has_both_languages() {
    if !python_or_skip(&[]) {
        return;
    }
    let out = compare()
        .args(["--only", "cpu", "--tasks", "4", "--rounds", "10000"])
        .args(["--python", "--python-scale", "10"])
        .output()
        .expect("run compare");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "Rust threads",
        "Python threading",
        "Python multiprocessing",
        "The GIL, measured",
    ] {
        assert!(text.contains(row), "no {row:?} in:\n{text}");
    }
    assert!(!text.contains(" NO "), "{text}");
}

#[test]
fn python_missing_says_what_to_install() {
    let out = compare()
        .args([
            "--only", "cpu", "--tasks", "2", "--rounds", "10", "--python",
        ])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .expect("run compare");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("install"), "{err}");
}

#[test]
fn a_python_result_that_differs_fails_the_run() {
    // A stand-in interpreter whose "recipe" answers every run with a wrong total.
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("python3");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in\n  --version) echo 'Python 3.99 (fake)' ;;\n  -c) exit 0 ;;\n  \
         *) echo '{\"wall_s\": 0.01, \"cpu_s\": 0.0, \"peak_rss_kib\": 1, \"result\": 12345}' ;;\nesac\n",
    )
    .expect("write the fake interpreter");
    let mut perms = std::fs::metadata(&fake).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).expect("chmod");
    let out = compare()
        .args([
            "--only", "cpu", "--tasks", "2", "--rounds", "100", "--python", "--json",
        ])
        .env("PYTHON", &fake)
        .output()
        .expect("run compare");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(v["all_agree"], false);
    assert_eq!(v["python"]["cpu"]["rows"][1]["agrees"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("different result"));
}
