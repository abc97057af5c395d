//! `diagnose-async` end to end: the tokio-metrics lens sees the blocking call (slow polls) with
//! `--bug blocking` and does not with `--fixed`. Assertions are on the counts the binary prints
//! with `--json`, with margins far from the boundary; nothing depends on wall-clock speed.

use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_diagnose-async");
const REQUESTS: u64 = 100;

fn run(args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .output()
        .expect("run diagnose-async")
}

/// The one run of a `--json` invocation.
fn json_run(fixed: bool) -> serde_json::Value {
    let requests = REQUESTS.to_string();
    let mut args = vec!["--bug", "blocking", "--json", "--requests", &requests];
    args.extend(["--concurrency", "20", "--block-ms", "10", "--io-ms", "1"]);
    if fixed {
        args.push("--fixed");
    }
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{json}");
    runs[0].clone()
}

#[test]
fn slow_polls_are_detected_with_the_bug_and_absent_with_the_fix() {
    let bug = json_run(false);
    let fixed = json_run(true);
    assert_eq!(bug["variant"], "bug");
    assert_eq!(fixed["variant"], "fixed");
    for r in [&bug, &fixed] {
        assert_eq!(r["completed"].as_u64(), Some(REQUESTS), "{r}");
    }
    assert_eq!(
        bug["checksum"], fixed["checksum"],
        "both versions answer the same"
    );
    // Every request sleeps 10 ms inside one poll: at least one slow poll (> 1 ms) each, and
    // their mean is at least the sleep.
    let slow = bug["slow_polls"].as_u64().expect("slow_polls");
    assert!(
        slow >= REQUESTS,
        "bug: {slow} slow polls for {REQUESTS} requests: {bug}"
    );
    let mean = bug["mean_slow_poll_ms"]
        .as_f64()
        .expect("mean_slow_poll_ms");
    assert!(mean >= 10.0, "bug: mean slow poll {mean} ms: {bug}");
    // Fixed, a poll is slow only when the OS preempts it: a quarter of the requests would be
    // an extraordinarily busy machine, the bug gives four times that.
    let slow = fixed["slow_polls"].as_u64().expect("slow_polls");
    assert!(slow <= REQUESTS / 4, "fixed: {slow} slow polls: {fixed}");
}

#[test]
fn the_default_run_prints_the_before_after_table() {
    let out = run(&["--requests", "20", "--block-ms", "2", "--io-ms", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "tokio-metrics TaskMonitor",
        "handlers: slow polls",
        "heartbeat: mean scheduling delay",
        "the fix:",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

/// Without a `--cfg tokio_unstable` build, `--console` is a usage error that says how to rebuild.
#[test]
fn console_outside_an_unstable_build_says_how_to_rebuild() {
    let out = run(&["--console", "--requests", "1"]);
    if cfg!(all(feature = "console", tokio_unstable)) {
        return; // this build has the agent (the CI check builds it, it does not run it)
    }
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cfg tokio_unstable") && err.contains("--features console"),
        "{err}"
    );
}
