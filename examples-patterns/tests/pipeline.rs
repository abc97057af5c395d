//! End-to-end: pipeline never prints a wrong total. Records it cannot account for exactly
//! (a quantity or price out of range, a negative, NaN or infinite price) are rejected with their
//! file and line; within `--max-rejected` the run goes on without them, beyond it the run stops
//! with the cause and writes no report. SIGTERM stops it cleanly, like Ctrl-C.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Running, assert_refused, json, run};
use std::path::Path;

const PIPELINE: &str = env!("CARGO_BIN_EXE_pipeline");
const HEADER: &str = "date,region,product,currency,qty,unit_price";

/// A folder with `good.csv` (3 valid rows: 2 + 3 + 4 laptops at 10.00 EUR) and `bad.csv`
/// holding `bad_rows` between two valid ones.
fn inputs(dir: &Path, bad_rows: &[&str]) {
    let good = format!(
        "{HEADER}\n2024-01-01,north,laptop,EUR,2,10.00\n2024-01-02,north,laptop,EUR,3,10.00\n\
         2024-01-03,north,laptop,EUR,4,10.00\n"
    );
    std::fs::write(dir.join("good.csv"), good).unwrap();
    let mut bad = format!("{HEADER}\n2024-02-01,south,phone,EUR,1,5.00\n");
    for row in bad_rows {
        bad.push_str(row);
        bad.push('\n');
    }
    bad.push_str("2024-02-02,south,phone,EUR,1,5.00\n");
    std::fs::write(dir.join("bad.csv"), bad).unwrap();
}

fn args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--input", dir, "--read-us", "0", "--transform-us", "0"];
    a.extend_from_slice(extra);
    a
}

#[test]
fn pipeline_rejects_an_overflowing_quantity_with_its_file_and_line() {
    // Before the fix, a quantity of u64::MAX wrapped in release builds (reported as 1) and
    // panicked in debug builds; either way the message had no line number.
    let dir = tempfile::tempdir().unwrap();
    inputs(
        dir.path(),
        &["2024-02-03,south,phone,EUR,18446744073709551615,5.00"],
    );
    let d = dir.path().to_str().unwrap();
    let report = dir.path().join("report.out");
    let out = run(PIPELINE, &args(d, &["--out", report.to_str().unwrap()]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad record must not pass silently");
    assert!(err.contains("bad.csv line 3"), "{err}");
    assert!(err.contains("quantity"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!report.exists(), "no report from a run that stopped");
}

#[test]
fn pipeline_rejects_negative_nan_and_infinite_prices() {
    // Before the fix, `-1`, `NaN` and `-inf` counted as a price of 0 and `inf` wrapped.
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        "2024-02-03,south,phone,EUR,1,-1.00",
        "2024-02-04,south,phone,EUR,1,NaN",
        "2024-02-05,south,phone,EUR,1,inf",
        "2024-02-06,south,phone,EUR,1,-inf",
        "2024-02-07,south,phone,EUR,1,1e30",
    ];
    inputs(dir.path(), &bad);
    let d = dir.path().to_str().unwrap();
    let report = dir.path().join("report.out");
    let v = json(
        PIPELINE,
        &args(
            d,
            &["--max-rejected", "10", "--out", report.to_str().unwrap()],
        ),
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"], 5 + 2 + 3, "{v}");
    assert_eq!(v["rejected"], 5, "{v}");
    assert_eq!(v["rows"], 5, "accepted = read - rejected: {v}");
    let lines: Vec<u64> = v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["file"], "bad.csv", "{r}");
            r["line"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    // The totals are those of the accepted records, exactly.
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("north,laptop,3,9,90.00,0\n"), "{text}");
    assert!(text.contains("south,phone,2,2,10.00,0\n"), "{text}");
}

#[test]
fn pipeline_refuses_bad_numbers() {
    for flag in ["--readers", "--parsers", "--transformers", "--queue"] {
        assert_refused(PIPELINE, flag, "0", &[]);
        assert_refused(PIPELINE, flag, "18446744073709551615", &[]);
    }
    for flag in ["--files", "--rows", "--read-us", "--transform-us"] {
        assert_refused(PIPELINE, flag, "18446744073709551615", &[]);
    }
}

#[test]
fn pipeline_stops_cleanly_on_sigterm() {
    // Slow reads: the run would take minutes. SIGTERM stops every stage, writes no report
    // (it would be incomplete), removes the generated inputs, and exits 130 like Ctrl-C.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    let mut p = Running::start(
        PIPELINE,
        &[
            "--files",
            "2000",
            "--rows",
            "10",
            "--read-us",
            "100000",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    p.wait_for_line("files from");
    p.signal("TERM");
    let (status, _stdout, stderr) = p.finish();
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!report.exists(), "no report from an interrupted run");
}
