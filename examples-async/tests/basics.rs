//! End-to-end runs of the small async lessons (`async-basics`, `event-loop`, `sensor-stream`):
//! each runs with quick arguments, ends on its own, prints the JSON its scripts read, and
//! refuses out-of-range flags with exit status 2. No assertion depends on speed: only lower
//! bounds that a sleep guarantees, or counts that paused time does not change.

// Test helpers panic on failure like the tests themselves (clippy.toml only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn json_of(exe: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(exe).args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{exe} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{exe}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn refuses(exe: &str, args: &[&str]) {
    let out = Command::new(exe).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{exe} {args:?} accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn async_basics_times_every_step_and_each_takes_at_least_its_sleep() {
    let exe = env!("CARGO_BIN_EXE_async-basics");
    let v = json_of(exe, &["--step-ms", "10"]);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 13, "{v}");
    assert_eq!(steps[0]["name"], "sequential");

    for s in steps {
        // A sleep never ends early: each step takes at least half of its expected time.
        let (took, expected) = (
            s["took_ms"].as_f64().unwrap(),
            s["expected_ms"].as_f64().unwrap(),
        );
        assert!(took >= expected / 2.0, "{s}");
    }
    // Its panic demo is caught and reported in one line, not as a crash.
    let out = Command::new(exe).args(["--step-ms", "5"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("(panic hook) a task failed: task failure"));
    assert!(!stderr.contains("panicked at"), "{stderr}");
    for bad in ["0", "-1", "NaN", "18446744073709551615"] {
        refuses(exe, &["--step-ms", bad]);
    }
}

#[test]
fn async_basics_python_finds_the_same_outcomes_step_by_step() {
    if let Err(e) = shared::python::Python::find(&[]) {
        println!("SKIPPED: {e}");
        return;
    }
    let exe = env!("CARGO_BIN_EXE_async-basics");
    // Steps of 100 ms: the orders compared below are decided by sleeps tens of milliseconds
    // apart, far more than a busy machine delays a timer.
    let v = json_of(exe, &["--step-ms", "100", "--python"]);
    assert_eq!(v["differences"].as_array().unwrap().len(), 0, "{v}");
    let ours = v["steps"].as_array().unwrap();
    let outcome = |name: &str| {
        ours.iter().find(|s| s["name"] == name).unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome("JoinSet of 5"), "4 2 3 1 5");
    assert_eq!(
        outcome("task group, first error"),
        "failed: service B is down; 2 cancelled"
    );
    assert_eq!(
        outcome("async with, cancelled"),
        "timed out: true; released while awaiting the rows; 0 in use"
    );
    let theirs = v["python"]["steps"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len(), "{v}");
    for (r, p) in ours.iter().zip(theirs) {
        assert_eq!(r["name"], p["name"], "same steps, same order");
        assert_eq!(r["outcome"], p["outcome"], "{}", r["name"]);
    }
}

#[test]
fn event_loop_shows_a_blocked_ticker() {
    let exe = env!("CARGO_BIN_EXE_event-loop");
    let v = json_of(exe, &["--block-ms", "60", "--blocks", "1"]);
    let rows = v["scenarios"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{v}");
    let blocked = &rows[0];
    assert_eq!(blocked["scenario"], "blocking std::thread::sleep");
    // One thread, blocked 60 ms: some tick is at least 60 - 10 ms late.
    assert!(
        blocked["max_late_ms"].as_f64().unwrap() >= 50.0,
        "{blocked}"
    );
    assert!(rows.iter().all(|r| r["ticks"].as_u64().unwrap() > 0), "{v}");
    refuses(exe, &["--tick-ms", "0"]);
    refuses(exe, &["--block-ms", "18446744073709551615"]);
    refuses(exe, &["--blocks", "-1"]);
}

#[test]
fn event_loop_python_stalls_asyncio_the_same_way() {
    if let Err(e) = shared::python::Python::find(&[]) {
        println!("SKIPPED: {e}");
        return;
    }
    let exe = env!("CARGO_BIN_EXE_event-loop");
    let v = json_of(
        exe,
        &[
            "--block-ms",
            "60",
            "--blocks",
            "1",
            "--tick-ms",
            "10",
            "--python",
        ],
    );
    assert_eq!(v["differences"].as_array().unwrap().len(), 0, "{v}");
    let rows = v["python"]["scenarios"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "every single-loop scenario, in asyncio: {v}");
    for blocking in ["thread_sleep", "cpu_loop"] {
        let row = rows.iter().find(|r| r["id"] == blocking).unwrap();
        // One thread blocked 60 ms: some tick is at least 60 - 10 ms late, in Python too.
        assert!(row["max_late_ms"].as_f64().unwrap() >= 50.0, "{row}");
    }
    assert!(rows.iter().all(|r| r["ticks"].as_u64().unwrap() > 0), "{v}");
}

#[test]
fn sensor_stream_conserves_readings_under_both_policies() {
    let exe = env!("CARGO_BIN_EXE_sensor-stream");
    let v = json_of(
        exe,
        &[
            "--duration",
            "300ms",
            "--window",
            "100ms",
            "--seed",
            "18446744073709551615",
        ],
    );
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs[0]["policy"], "Backpressure");
    assert_eq!(runs[1]["policy"], "DropNewest");
    for run in runs {
        let n = |k: &str| run[k].as_u64().unwrap();
        assert_eq!(n("produced"), n("delivered") + n("dropped"), "{run}");
        let windowed: u64 = run["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["count"].as_u64().unwrap())
            .sum();
        assert_eq!(windowed, n("delivered"), "{run}");
    }
    assert_eq!(runs[0]["dropped"], 0);
    refuses(exe, &["--capacity", "18446744073709551615"]);
    refuses(exe, &["--capacity", "0"]);
    refuses(exe, &["--duration", "0s"]);
}
