//! End-to-end tests of `shared-memory`: every correct method reaches the exact total, the
//! array is the same whichever way it travelled, and no segment is left in /dev/shm.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_shared-memory");

/// Segments this run of the binary (pid `pid`) created and did not remove.
fn leftover_segments(pid: u32) -> Vec<String> {
    let prefix = format!("shm-lesson-{pid}-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

#[test]
fn every_correct_method_is_exact_and_no_segment_is_left_behind() {
    let child = Command::new(BIN)
        .args([
            "--workers",
            "3",
            "--increments",
            "20000",
            "--cells",
            "10001",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["expected_total"], 60_000);
    assert_eq!(json["exact"], true);
    let counters = json["counters"].as_array().unwrap();
    let methods: Vec<&str> = counters
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["pipe", "pipe-buffered", "counter", "slots", "racy"]
    );
    for r in counters {
        let total = r["result"].as_u64().unwrap();
        if r["must_be_exact"] == true {
            assert_eq!(total, 60_000, "{r}");
        } else {
            assert!(
                total <= 60_000,
                "a race loses updates, never invents them: {r}"
            );
        }
    }
    // The checksum of cells 0..10001, computed here the way the workers compute the cells.
    let expected = (0..10_001u64).fold(0u64, |s, i| {
        s.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    });
    for r in json["fill"].as_array().unwrap() {
        assert_eq!(r["result"].as_u64().unwrap(), expected, "{r}");
    }
    assert!(
        leftover_segments(pid).is_empty(),
        "{:?}",
        leftover_segments(pid)
    );
}

#[test]
fn one_worker_and_one_increment_are_fine_too() {
    let out = Command::new(BIN)
        .args([
            "--workers",
            "1",
            "--increments",
            "1",
            "--cells",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counters = json["counters"].as_array().unwrap();
    assert!(counters.iter().all(|r| r["result"] == 1), "{counters:?}");
}

#[test]
fn bad_numbers_are_refused_with_a_usage_error() {
    for bad in [
        ["--workers", "0"],
        ["--increments", "-1"],
        ["--cells", "1e30"],
    ] {
        let out = Command::new(BIN).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
