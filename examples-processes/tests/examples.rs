//! End-to-end tests of the smaller examples: they run, say what they should, and `--help` works.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

fn json_of(bin: &str, args: &[&str]) -> Value {
    let out = Command::new(bin)
        .args(args)
        .arg("--json")
        .output()
        .expect("running the example");
    assert!(
        out.status.success(),
        "{bin} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn every_binary_has_help() {
    for bin in [
        env!("CARGO_BIN_EXE_spawn-process"),
        env!("CARGO_BIN_EXE_process-pool"),
        env!("CARGO_BIN_EXE_image-batch-processes"),
        env!("CARGO_BIN_EXE_spawn-cost"),
        env!("CARGO_BIN_EXE_isolation"),
        env!("CARGO_BIN_EXE_pipe-ipc"),
    ] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success(), "{bin} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{bin} --help"
        );
    }
}

#[test]
fn bad_numbers_are_refused_before_any_work() {
    // Each a value that once slipped through: a deadline past the 30 s child (step 3 then
    // fails), zero-sized runs, NaN, and a poison task that does not exist.
    for (bin, args) in [
        (
            env!("CARGO_BIN_EXE_spawn-process"),
            &["--timeout-ms", "60000"][..],
        ),
        (env!("CARGO_BIN_EXE_spawn-process"), &["--stdin-mib", "0"]),
        (env!("CARGO_BIN_EXE_spawn-cost"), &["--idle", "0"]),
        (env!("CARGO_BIN_EXE_pipe-ipc"), &["--round-trips", "-1"]),
        (env!("CARGO_BIN_EXE_process-pool"), &["--chaos", "NaN"]),
        (
            env!("CARGO_BIN_EXE_process-pool"),
            &["--tasks", "4", "--poison", "4"],
        ),
    ] {
        let out = Command::new(bin).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin} {args:?}: {stderr}");
        assert!(
            stderr.contains("error:"),
            "{bin} {args:?} says why: {stderr}"
        );
    }
}

#[test]
fn spawn_process_tour_runs_every_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_spawn-process"))
        .args(["--timeout-ms", "50", "--stdin-mib", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        r#"args ["two words", "$(not expanded)"]"#,
        "GREETING=bonjour",
        "HOME is cleared",
        "captured stderr: \"child: this line goes to stderr\"",
        "exited with code 3",
        "kill -TERM $$    -> killed by signal 15 (SIGTERM)",
        "sleep 30",
        "killed by signal 9 (SIGKILL) after",
        "2 MiB through cat and back",
        "identical",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn isolation_contains_every_fault_in_a_process_and_only_panics_in_a_thread() {
    let json = json_of(env!("CARGO_BIN_EXE_isolation"), &[]);
    let faults = json["faults"].as_array().unwrap();
    let row = |name: &str| {
        faults
            .iter()
            .find(|f| f["fault"] == name)
            .unwrap_or_else(|| panic!("no {name} row"))
    };
    assert!(
        row("panic")["process"]
            .as_str()
            .unwrap()
            .starts_with("exited with code 101")
    );
    assert!(
        row("abort")["process"]
            .as_str()
            .unwrap()
            .contains("SIGABRT")
    );
    assert!(
        row("stack-overflow")["process"]
            .as_str()
            .unwrap()
            .contains("overflowed its stack")
    );
    assert!(
        row("killed")["process"]
            .as_str()
            .unwrap()
            .contains("SIGKILL")
    );
    assert!(
        row("exit")["process"]
            .as_str()
            .unwrap()
            .starts_with("exited with code 3")
    );
    for f in faults {
        let survived = f["thread_survived"].as_bool().unwrap();
        assert_eq!(survived, f["fault"] == "panic", "{f}");
    }
}

#[test]
fn spawn_cost_reports_medians_and_memory() {
    let json = json_of(
        env!("CARGO_BIN_EXE_spawn-cost"),
        &[
            "--thread-iters",
            "100",
            "--process-iters",
            "10",
            "--idle",
            "2",
        ],
    );
    let spawn = json["spawn"].as_array().unwrap();
    // std spawn, pinned, bare pthread, this binary, /bin/true (python3 only if installed).
    assert!(spawn.len() >= 5, "{json}");
    assert!(
        spawn[2]["what"].as_str().unwrap().contains("pthread"),
        "{json}"
    );
    assert!(json["std_over_pthread_us"].is_number(), "{json}");
    for row in spawn {
        let median = row["median_us"].as_f64().unwrap();
        assert!(
            median > 0.0 && row["min_us"].as_f64().unwrap() <= median,
            "{row}"
        );
    }
    let reuse = json["reuse"].as_array().unwrap();
    assert_eq!(reuse.len(), 2, "hand-off to a thread and to a process");
    assert!(reuse.iter().all(|r| r["median_us"].as_f64().unwrap() > 0.0));
    let memory = json["memory"].as_array().unwrap();
    assert_eq!(memory.len(), 2);
    assert!(
        memory[1]["rss_kib_each"].as_f64().unwrap() > 0.0,
        "idle processes have a resident size"
    );
}

#[test]
fn pipe_ipc_moves_every_message() {
    let json = json_of(
        env!("CARGO_BIN_EXE_pipe-ipc"),
        &["--mib", "1", "--round-trips", "50"],
    );
    let rows = json["one_way"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        // Each run checked its own counts (the child reports messages and bytes received).
        assert!(
            r["pipe_mib_s"].as_f64().unwrap() > 0.0 && r["channel_mib_s"].as_f64().unwrap() > 0.0
        );
    }
    assert!(json["round_trip"]["pipe_us"].as_f64().unwrap() > 0.0);
}
