//! `--python`: each binary runs the course's Python recipe (`python/*.py`) on the same small
//! input, and the two languages give the same results (counts, cycles, items delivered), never
//! compared on speed. Skipped, with `SKIPPED: <reason>`, only when python3 is absent (CI has it).
#![cfg(not(loom))]
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

fn python_present() -> bool {
    match shared::python::Python::find(&[]) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

/// Runs `bin --python --json args…`; returns its exit code and JSON.
fn run(bin: &str, args: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(bin)
        .args(args)
        .args(["--python", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{bin} {args:?}: not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

fn ok(bin: &str, args: &[&str]) -> Value {
    let (code, json) = run(bin, args);
    assert_eq!(code, Some(0), "{bin} {args:?} --python failed: {json}");
    json
}

#[test]
fn race_condition_fixes_are_exact_in_both_and_python_loses_with_a_switch_in_the_window() {
    if !python_present() {
        return;
    }
    let v = ok(
        env!("CARGO_BIN_EXE_race-condition"),
        &["--increments", "5000", "--runs", "2"],
    );
    let py = v["python"]["variants"].as_array().unwrap();
    assert_eq!(py.len(), 8);
    for var in py {
        assert_eq!(var["expected"], 4 * 5000, "{var}");
        if var["racy"] == false {
            assert_eq!(var["lost_total"], 0, "a Python fix lost updates: {var}");
        }
    }
    // `v = counter; time.sleep(0); counter = v + 1`: the GIL is released inside the window.
    let widened = py
        .iter()
        .find(|v| v["mirrors"] == "atomic load + store")
        .unwrap();
    assert!(
        widened["lost_total"].as_u64().unwrap() > 0,
        "a read, a sleep(0), then a write lost nothing: {widened}"
    );
}

#[test]
fn deadlock_python_finds_the_same_cycle_and_every_fix_completes() {
    if !python_present() {
        return;
    }
    let (code, v) = run(env!("CARGO_BIN_EXE_deadlock"), &["--rounds", "50"]);
    assert_eq!(code, Some(2), "the staged deadlock exits 2: {v}");
    assert_eq!(v["python_agrees"], true, "{v}");
    let runs = v["python"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["cycle"], v["runs"][0]["cycle"]);
    assert_eq!(
        runs[0]["cycle"][0],
        "transfer A->B holds [account A], waits for account B"
    );
    for r in &runs[1..] {
        assert_eq!(r["invariant_ok"], true, "{r}");
        assert_eq!(r["completed_rounds"], 100, "{r}");
    }
    let v = ok(
        env!("CARGO_BIN_EXE_deadlock"),
        &[
            "--scenario",
            "philosophers",
            "--seats",
            "3",
            "--rounds",
            "20",
            "--fix",
            "ordering",
        ],
    );
    assert_eq!(v["python_agrees"], true, "{v}");
    assert_eq!(v["python"]["runs"][0]["completed_rounds"], 60);
}

#[test]
fn locks_python_shows_the_same_half_update_and_the_same_refusals() {
    if !python_present() {
        return;
    }
    let v = ok(
        env!("CARGO_BIN_EXE_locks"),
        &["--ops", "1000", "--work-ms", "1", "--threads", "2"],
    );
    let py = &v["python"];
    assert_eq!(py["crash_left_balances"], v["poison_seen"]);
    assert_eq!(py["crash_left_balances"], serde_json::json!([50, 0]));
    assert_eq!(py["crash_reported"], false, "Python has no poisoning");
    assert_eq!(py["second_lock_refused"], true);
    assert_eq!(py["forgotten_release_keeps_lock"], true);
    assert_eq!(v["forgotten_guard_keeps_lock"], true);
    assert_eq!(py["reentrant_depth_reached"], v["reentrant_depth_reached"]);
}

#[test]
fn semaphore_python_completes_every_download_within_the_limit() {
    if !python_present() {
        return;
    }
    let v = ok(
        env!("CARGO_BIN_EXE_semaphore"),
        &["--downloads", "6", "--permits", "2", "--download-ms", "5"],
    );
    let runs = v["python"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for r in runs {
        assert_eq!(r["completed"], 6, "{r}");
        if let Some(limit) = r["limit"].as_u64() {
            assert!(r["max_in_flight"].as_u64().unwrap() <= limit, "{r}");
        }
    }
}

#[test]
fn condition_python_delivers_every_item_once_in_every_signalling() {
    if !python_present() {
        return;
    }
    let v = ok(
        env!("CARGO_BIN_EXE_condition"),
        &["--items", "300", "--consumers", "3", "--capacity", "2"],
    );
    let runs = v["python"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for r in runs {
        assert_eq!(r["checksum_ok"], true, "{r}");
        assert_eq!(r["items"], 300, "{r}");
    }
}

#[test]
fn event_python_agrees_on_every_signal() {
    if !python_present() {
        return;
    }
    let v = ok(
        env!("CARGO_BIN_EXE_event"),
        &["--workers", "3", "--run-ms", "20"],
    );
    let py = &v["python"];
    for key in [
        "workers_released",
        "timeout_returned_false",
        "barrier_leaders",
        "lazy_inits",
        "timer_fired",
        "timer_cancelled_ran",
        "async_event_released",
        "async_event_gave_up_after_clear",
    ] {
        assert_eq!(py[key], v[key], "{key}");
    }
    assert_eq!(v["async_event_released"], 3);
    assert_eq!(v["notify_permit_released"], 1, "Notify keeps one permit");
}

#[test]
fn queues_python_delivers_every_message_and_join_waits_for_every_task() {
    if !python_present() {
        return;
    }
    let v = ok(env!("CARGO_BIN_EXE_queues"), &["--messages", "2000"]);
    let rows = v["python"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["delivered_ok"], true, "{r}");
    }
    assert_eq!(
        v["python"]["join"]["done_at_join"],
        v["join"]["done_at_join"]
    );
    assert_eq!(v["join"]["done_at_join"], 1000);
}

#[test]
fn without_python3_the_flag_exits_2_and_says_what_to_install() {
    let out = Command::new(env!("CARGO_BIN_EXE_semaphore"))
        .args(["--python", "--downloads", "1", "--download-ms", "0"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
}
