//! `--python`: each binary runs the course's Python recipe (`python/*.py`) on the same small
//! input, and the two languages give the same results (counts, totals, states), never compared
//! on speed. Skipped, with `SKIPPED: <reason>`, only when python3 is absent (CI installs it).
//! `compare --python` is tested in `tests/compare.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

fn python_present(imports: &[&str]) -> bool {
    match shared::python::Python::find(imports) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

/// Runs `bin args… --python --json`, expects success, returns the JSON.
fn with_python(bin: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--python");
    common::json(bin, &all)
}

#[test]
fn producer_consumer_python_consumes_every_item_exactly_once_too() {
    if !python_present(&[]) {
        return;
    }
    let v = with_python(
        env!("CARGO_BIN_EXE_producer-consumer"),
        &[
            "--producers",
            "3",
            "--consumers",
            "2",
            "--items",
            "400",
            "--capacity",
            "4",
        ],
    );
    assert_eq!(v["exactly_once"], true);
    assert_eq!(v["check"]["consumed"], 1200);
    let py = &v["python"];
    assert_eq!(py["exactly_once"], true, "{py}");
    assert_eq!(py["produced"], 1200, "{py}");
    assert_eq!(py["consumed"], 1200, "{py}");
    assert_eq!(py["per_consumer"].as_array().unwrap().len(), 2, "{py}");
}

#[test]
fn python_flag_without_python_says_what_to_install() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_producer-consumer"))
        .args(["--items", "5", "--python"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("install"));
}

#[test]
fn worker_pool_python_ends_every_order_the_same_way() {
    if !python_present(&[]) {
        return;
    }
    let v = with_python(
        env!("CARGO_BIN_EXE_worker-pool"),
        &[
            "--orders",
            "60",
            "--rate",
            "2000",
            "--fail-rate",
            "0.3",
            "--workers",
            "4",
        ],
    );
    let py = &v["python"];
    // The same seeded orders and failures per (order, attempt): the same ends, whatever the timing.
    for key in [
        "completed",
        "failed_validate",
        "failed_charge",
        "failed_email",
        "retries",
    ] {
        assert_eq!(py[key], v[key], "{key}: {py}");
    }
    assert_eq!(py["submitted"], 60);
    assert_eq!(py["double_charges"], 0);
    assert_eq!(py["mails_received"], py["completed"]);
    assert!(
        v["retries"].as_u64().unwrap() > 0,
        "a 30% failure rate retries: {v}"
    );
}

#[test]
fn pipeline_python_writes_the_same_report_from_the_same_files() {
    if !python_present(&[]) {
        return;
    }
    // A bad record in file 3, tolerated: both must reject it and count the rest the same.
    let v = with_python(
        env!("CARGO_BIN_EXE_pipeline"),
        &[
            "--files",
            "8",
            "--rows",
            "50",
            "--read-us",
            "10",
            "--transform-us",
            "10",
            "--readers",
            "2",
            "--transformers",
            "2",
            "--fail-at",
            "3",
            "--max-rejected",
            "1",
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    let py = &v["python"];
    assert_eq!(py["ok"], true, "{py}");
    for key in ["files", "records", "rows", "rejected"] {
        assert_eq!(py[key], v[key], "{key}: {py}");
    }
    assert_eq!(py["rejected"], 1);
    let csv = py["report_csv"].as_str().unwrap();
    assert!(
        csv.starts_with("region,product,rows,qty,revenue_eur,large_orders\n"),
        "{csv}"
    );
    // The binary compared the report line for line (it exits non-zero otherwise).
    assert_eq!(csv.lines().count(), 1 + 30, "5 regions x 6 products: {csv}");
}

#[test]
fn circuit_breaker_python_decides_every_call_of_the_script_the_same_way() {
    if !python_present(&[]) {
        return;
    }
    for extra in [
        &["--probes", "2"][..],
        &["--probes", "3", "--threshold", "3", "--cool-down-ms", "100"],
    ] {
        let mut a = vec![
            "--rate",
            "200",
            "--duration",
            "1.5",
            "--outage-start",
            "0.3",
        ];
        a.extend_from_slice(&["--outage-len", "0.6", "--timeout-ms", "100"]);
        a.extend_from_slice(extra);
        let v = with_python(env!("CARGO_BIN_EXE_circuit-breaker"), &a);
        let py = &v["python"];
        assert_eq!(py["same_decisions"], true, "{py}");
        assert_eq!(py["same_transitions"], true, "{py}");
        assert_eq!(py["calls"], 300, "1.5 s at 200/s: {py}");
        let states: Vec<&str> = py["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t[2].as_str().unwrap())
            .collect();
        // The outage opens the breaker; the recovery closes it through half-open.
        assert_eq!(states.first(), Some(&"open"), "{py}");
        assert!(states.ends_with(&["half-open", "closed"]), "{states:?}");
        assert!(py["rejected"].as_u64().unwrap() > 0, "{py}");
    }
}

#[test]
fn actor_python_handles_the_same_messages_and_never_oversells() {
    if !python_present(&[]) {
        return;
    }
    // Supply exceeds demand here (1,000 units of each product), so every reservation is
    // granted in both languages, whatever the order the tasks ran in.
    let v = with_python(
        env!("CARGO_BIN_EXE_actor"),
        &["--customers", "300", "--stock", "1000", "--mailbox", "4"],
    );
    let py = &v["python"];
    assert_eq!(py["conserved"], true, "{py}");
    assert_eq!(py["messages"], v["messages"], "{py}");
    assert_eq!(
        py["messages"],
        2 * 300 + 300 / 50,
        "a reserve and a look each, plus restocks"
    );
    assert_eq!(py["granted"], 300, "{py}");
    assert_eq!(v["granted"], 300);
    assert_eq!(
        py["final_state"]["stock"], v["final_state"]["stock"],
        "{py}"
    );
    assert_eq!(
        py["final_state"]["reserved"], v["final_state"]["reserved"],
        "{py}"
    );
}

#[test]
fn async_work_queue_python_handles_the_same_jobs_exactly_once() {
    if !python_present(&[]) {
        return;
    }
    let v = with_python(
        env!("CARGO_BIN_EXE_async-work-queue"),
        &[
            "--jobs",
            "120",
            "--workers",
            "7",
            "--capacity",
            "3",
            "--job-ms",
            "1",
        ],
    );
    assert_eq!(v["exactly_once"], true);
    let py = &v["python"];
    assert_eq!(py["exactly_once"], true, "{py}");
    assert_eq!(py["handled"], 120);
    assert_eq!(py["value_sum"], v["value_sum"], "{py}");
    assert_eq!(py["per_worker"].as_array().unwrap().len(), 7);
}
