//! `diagnose-threads` end to end: each pathology's bug and fix compute the same results, and,
//! where the kernel lets us use perf, the flame graph of the convoy points at the lock.
//! No assertion depends on speed: the throughput is the example's output, not a test.

use std::path::Path;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_diagnose-threads");

fn run(args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .output()
        .expect("run diagnose-threads")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn only_run(v: &serde_json::Value) -> &serde_json::Value {
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{v}");
    &runs[0]
}

#[test]
fn the_convoy_and_its_fix_record_the_same_statistics() {
    let common = [
        "--bug",
        "convoy",
        "--json",
        "--threads",
        "3",
        "--requests",
        "2000",
        "--rounds",
        "100",
    ];
    let bug = json(&common);
    let fixed = json(&[&common[..], &["--fixed"]].concat());
    let (bug, fixed) = (only_run(&bug), only_run(&fixed));
    assert_eq!(
        (bug["version"].as_str(), fixed["version"].as_str()),
        (Some("bug"), Some("fixed"))
    );
    for r in [bug, fixed] {
        assert_eq!(r["operations"].as_u64(), Some(6_000), "{r}");
    }
    assert_eq!(bug["checksum"], fixed["checksum"]);
}

#[test]
fn false_sharing_and_padding_count_the_same() {
    let common = [
        "--bug",
        "false-sharing",
        "--json",
        "--threads",
        "4",
        "--increments",
        "50000",
    ];
    let bug = json(&common);
    let fixed = json(&[&common[..], &["--fixed"]].concat());
    for r in [only_run(&bug), only_run(&fixed)] {
        assert_eq!(r["operations"].as_u64(), Some(200_000), "{r}");
    }
}

#[test]
fn the_default_run_shows_every_pathology_both_ways() {
    let out = run(&[
        "--requests",
        "500",
        "--rounds",
        "50",
        "--increments",
        "10000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in ["Convoy", "short lock", "FalseSharing", "fixed", "waiting"] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

/// Why perf cannot record here, if it cannot: no perf, or the kernel forbids it.
fn perf_unavailable() -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("probe.data");
    let probe = Command::new("perf")
        .args([
            "record",
            "-q",
            "-e",
            "cpu-clock",
            "-e",
            "sched:sched_switch",
            "-o",
        ])
        .arg(&data)
        .args(["--", "true"])
        .output();
    match probe {
        Err(e) => Some(format!(
            "perf is not installed ({e}); .ci/run installs linux-perf"
        )),
        Ok(o) if !o.status.success() => Some(format!(
            "the kernel does not let us record (perf_event_paranoid, tracefs): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

#[cfg(feature = "flamegraph")]
#[test]
fn the_convoys_flame_graph_points_at_the_lock() {
    if let Some(why) = perf_unavailable() {
        eprintln!("SKIPPED: {why}. The convoy is still checked by the other tests of this file.");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("convoy.svg");
    let svg_arg = svg.to_str().expect("utf-8 temp path");
    let common = [
        "--bug",
        "convoy",
        "--json",
        "--requests",
        "20000",
        "--rounds",
        "1000",
        "--flamegraph",
        svg_arg,
    ];
    let bug = json(&common);
    let share = |v: &serde_json::Value, view: &str, frame: &str| {
        v[view]["stack_share_percent"][frame]
            .as_f64()
            .unwrap_or_else(|| panic!("{view}.{frame} in {v}"))
    };
    // On CPU, the work runs inside the function that holds the lock ...
    assert!(
        share(&bug, "on_cpu", "record_holding_lock") >= 50.0,
        "{bug}"
    );
    // ... and off CPU, threads go to sleep in the mutex's contended path.
    assert!(share(&bug, "off_cpu", "lock_contended") >= 10.0, "{bug}");
    for path in [svg.clone(), dir.path().join("convoy.off-cpu.svg")] {
        let text = std::fs::read_to_string(&path).expect("the SVG was written");
        assert!(
            text.starts_with("<?xml") && text.contains("record_holding_lock"),
            "{}",
            path.display()
        );
    }
    // The fix renders outside any lock: the lock-holding frame is gone.
    let fixed = json(&[&common[..], &["--fixed"]].concat());
    assert_eq!(
        share(&fixed, "on_cpu", "record_holding_lock"),
        0.0,
        "{fixed}"
    );
    assert!(Path::new(&svg).exists());
}

#[test]
fn perf_stat_prints_counters_or_says_why_not() {
    let out = run(&[
        "--bug",
        "false-sharing",
        "--perf-stat",
        "--increments",
        "10000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lens: perf stat"), "{text}");
    if let Some(why) = perf_unavailable() {
        eprintln!("SKIPPED (counters): {why}");
        return;
    }
    // Software counters always count; hardware ones say `<not supported>` in most VMs.
    assert!(text.contains("false-sharing bug: task-clock"), "{text}");
    assert!(text.contains("context-switches"), "{text}");
}
