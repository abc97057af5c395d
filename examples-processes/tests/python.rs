//! The `--python` paths: the course's Python recipes (`python/*.py`) run on the same input as
//! the Rust examples, and the two must compute the same results. Speed is never asserted.
//!
//! Without python3 each test prints `SKIPPED: <reason>` and passes (CI installs python3).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use serde_json::Value;

fn python_or_skip() -> bool {
    match shared::python::Python::find(&[]) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

/// Runs `bin args --json`, and returns its output and its JSON object.
fn run_json(bin: &str, args: &[&str]) -> (Output, Value) {
    let out = Command::new(bin).args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{bin}: stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

fn python_row(json: &Value) -> &Value {
    let rows = json["table"]["rows"].as_array().unwrap();
    rows.iter()
        .find(|r| r["name"].as_str().unwrap().starts_with("Python"))
        .unwrap_or_else(|| panic!("no Python row in {rows:?}"))
}

const POOL: &str = env!("CARGO_BIN_EXE_process-pool");

#[test]
fn process_pool_and_process_pool_executor_compute_the_same_values() {
    if !python_or_skip() {
        return;
    }
    let args = [
        "--python",
        "--workers",
        "2",
        "--tasks",
        "6",
        "--rounds",
        "20000",
    ];
    let (out, json) = run_json(POOL, &args);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(python_row(&json)["agrees"], true);
    assert_eq!(json["python"]["checksum"], json["checksum"]);
    let order = json["python"]["completion_order"].as_array().unwrap();
    assert_eq!(order.len(), 6, "as_completed yielded every future");
}

#[test]
fn a_poison_task_breaks_the_python_executor_but_only_itself_in_ours() {
    if !python_or_skip() {
        return;
    }
    let args = [
        "--python",
        "--workers",
        "2",
        "--tasks",
        "6",
        "--rounds",
        "20000",
        "--poison",
        "2",
        "--max-attempts",
        "2",
        "--no-compare",
    ];
    let (out, json) = run_json(POOL, &args);
    assert_eq!(out.status.code(), Some(1), "failed tasks fail the run");
    assert_eq!(
        json["failed"],
        serde_json::json!([2]),
        "ours: the poison only"
    );
    let errors = json["python"]["errors"].as_object().unwrap();
    assert!(errors.contains_key("2"), "{errors:?}");
    assert!(
        errors
            .values()
            .all(|e| e.as_str().unwrap().contains("BrokenProcessPool")),
        "{errors:?}"
    );
    // Whatever Python did compute agrees with ours.
    assert_eq!(python_row(&json)["agrees"], true);
}

#[test]
fn without_python3_the_flag_says_what_to_install() {
    let out = Command::new(POOL)
        .args(["--python", "--tasks", "2"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
}

const SHARED_MEMORY: &str = env!("CARGO_BIN_EXE_shared-memory");

#[test]
fn shared_memory_and_multiprocessing_reach_the_same_totals_and_checksums() {
    if !python_or_skip() {
        return;
    }
    let args = [
        "--python",
        "--workers",
        "2",
        "--increments",
        "3000",
        "--cells",
        "5000",
    ];
    let (out, json) = run_json(SHARED_MEMORY, &args);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["exact"], true);
    let python: Vec<&Value> = (json["counters"].as_array().unwrap().iter())
        .chain(json["fill"].as_array().unwrap())
        .filter(|r| r["language"] == "python")
        .collect();
    assert_eq!(
        python.len(),
        6,
        "4 counter variants and 2 fills: {python:?}"
    );
    for r in python {
        let result = r["result"].as_u64().unwrap();
        match r["method"].as_str().unwrap() {
            "value_no_lock" => assert!(result <= 6000, "{r}"),
            "array" | "send_bytes" => assert_eq!(Some(result), json["expected_checksum"].as_u64()),
            _ => assert_eq!(result, 6000, "{r}"),
        }
    }
}

const PIPE_IPC: &str = env!("CARGO_BIN_EXE_pipe-ipc");

#[test]
fn pipe_ipc_and_multiprocessing_move_the_same_messages() {
    if !python_or_skip() {
        return;
    }
    let args = [
        "--python",
        "--mib",
        "1",
        "--max-messages",
        "300",
        "--round-trips",
        "50",
    ];
    let (out, json) = run_json(PIPE_IPC, &args);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["agree"], true);
    let python = json["python"]["one_way"].as_array().unwrap();
    let ours = json["one_way"].as_array().unwrap();
    assert_eq!(python.len(), ours.len());
    for (p, o) in python.iter().zip(ours) {
        assert_eq!(p["messages"], o["messages"], "{p}");
        assert_eq!(p["counts_agree"], true, "{p}");
    }
    assert!(json["python"]["round_trip_us"].as_f64().unwrap() > 0.0);
}

const ISOLATION: &str = env!("CARGO_BIN_EXE_isolation");

#[test]
fn isolation_faults_are_contained_by_python_worker_processes_too() {
    if !python_or_skip() {
        return;
    }
    let (out, json) = run_json(ISOLATION, &["--python"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = json["python"].as_array().unwrap();
    let faults: Vec<&str> = python
        .iter()
        .map(|r| r["fault"].as_str().unwrap())
        .collect();
    assert_eq!(
        faults,
        ["panic", "abort", "stack-overflow", "killed", "exit"]
    );
    assert!(
        python.iter().all(|r| r["process_contained"] == true),
        "{python:?}"
    );
    // The same verdict as Rust where the languages agree, the documented difference elsewhere.
    let survived = |rows: &Value, fault: &str| {
        let rows = rows.as_array().unwrap();
        let row = rows.iter().find(|r| r["fault"] == fault).unwrap();
        row["thread_survived"].as_bool().unwrap()
    };
    for fault in ["panic", "abort", "killed"] {
        assert_eq!(
            survived(&json["python"], fault),
            survived(&json["faults"], fault),
            "{fault}"
        );
    }
    for fault in ["stack-overflow", "exit"] {
        assert!(
            survived(&json["python"], fault),
            "Python: an exception ends the thread only"
        );
        assert!(
            !survived(&json["faults"], fault),
            "Rust: the whole process ends"
        );
    }
}

const SPAWN_PROCESS: &str = env!("CARGO_BIN_EXE_spawn-process");

#[test]
fn spawn_process_and_subprocess_see_the_same_endings_and_counts() {
    if !python_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", ".hidden"] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let out = Command::new(SPAWN_PROCESS)
        .args([
            "--python",
            "--stdin-mib",
            "1",
            "--timeout-ms",
            "50",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("the same steps with Python"))
        .filter(|l| l.contains(" | "))
        .skip(1)
        .collect();
    assert_eq!(table.len(), 8, "one row per step (4 for step 2):\n{stdout}");
    assert!(table.iter().all(|row| row.ends_with("| yes")), "{stdout}");
    let pipeline = table.iter().find(|r| r.starts_with("4.")).unwrap();
    assert!(
        pipeline.matches("| 3 ").count() == 2,
        "ls -A counts 3 entries: {pipeline}"
    );
}
