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
