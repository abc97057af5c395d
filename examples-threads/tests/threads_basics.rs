//! End-to-end runs of the small thread examples: each one runs (with reduced sizes, the debug
//! build is slow), exits 0 and prints what its header promises. No timing is asserted.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    let out = Command::new(bin)
        .args(args)
        // Short panic messages for the deliberate panics, whatever the caller's environment.
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(
        out.status.success(),
        "{bin} {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    let line = text.lines().last().expect("one JSON line on stdout");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const HELLO: &str = env!("CARGO_BIN_EXE_hello-threads");
const CPU: &str = env!("CARGO_BIN_EXE_cpu-scaling");
const CHANNELS: &str = env!("CARGO_BIN_EXE_thread-channels");
const SHARED: &str = env!("CARGO_BIN_EXE_shared-state");
const POOL: &str = env!("CARGO_BIN_EXE_thread-pool");

#[test]
fn every_binary_has_help() {
    for bin in [HELLO, CPU, CHANNELS, SHARED, POOL] {
        let out = run(bin, &["--help"]);
        assert!(stdout(&out).contains("Usage:"), "{bin}");
    }
}

#[test]
fn hello_threads_runs_every_part_with_no_arguments() {
    let out = run(HELLO, &[]);
    let text = stdout(&out);
    for part in 0..=7 {
        assert!(
            text.contains(&format!("== {part}.")),
            "part {part} missing:\n{text}"
        );
    }
    assert!(
        text.contains("worker 3 returned sum(0..=4000) = 8002000"),
        "{text}"
    );
    assert!(text.contains("THREADS OWN THEIR DATA"));
    assert!(text.contains("thread \"deep-recursion\" recursed 20000 frames"));
    assert!(text.contains("total = 500000500000"));
    // The panic is caught at join, and the process still exits 0 (checked by `run`).
    assert!(
        text.contains("caught at join: index out of bounds"),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("thread 'doomed'"),
        "the panic message names the thread: {stderr}"
    );
    // Part 7: a thread still running when main returns dies with the process, its cleanup
    // unrun; stopped and joined, it cleans up. (Seen from outside: each in a child process.)
    let line = |who: &str| {
        text.lines()
            .find(|l| l.contains(who))
            .unwrap_or_else(|| panic!("no line for {who}:\n{text}"))
            .to_owned()
    };
    assert!(
        line("Rust: main returns, the thread not joined").contains("cleanup NEVER ran"),
        "{text}"
    );
    assert!(
        line("Rust: stop flag + join()").contains("cleanup ran"),
        "{text}"
    );
    assert!(!text.contains("Python:"), "Python only with --python");
}

#[test]
fn cpu_scaling_table_agrees_and_oversubscribes() {
    let out = run(
        CPU,
        &["--jobs", "8", "--rounds", "20000", "--max-threads", "3"],
    );
    let text = stdout(&out);
    for row in ["1 thread ", "2 threads", "3 threads"] {
        assert!(text.contains(row), "{row} missing:\n{text}");
    }
    assert!(text.contains("efficiency"));
    assert!(!text.contains(" NO "), "a row disagreed:\n{text}");

    let out = run(
        CPU,
        &[
            "--jobs",
            "8",
            "--rounds",
            "20000",
            "--max-threads",
            "2",
            "--json",
        ],
    );
    let v = json(&out);
    let rows = v["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["agrees"] == true), "{v}");
    assert_eq!(v["efficiency"].as_array().unwrap().len(), 2);
}

#[test]
fn thread_channels_shows_backpressure_and_select() {
    let out = run(CHANNELS, &["--messages", "10", "--consumer-delay-ms", "2"]);
    let text = stdout(&out);
    assert!(
        text.contains("producer 2: received [0, 1, 2, 3, 4] (in order)"),
        "{text}"
    );
    assert!(text.contains("sync_channel(4)"));
    assert!(text.contains("timeout: no message for 250 ms"), "{text}");
    assert!(
        text.contains("all senders dropped: loop over (8 fast + 4 slow)"),
        "{text}"
    );

    let out = run(
        CHANNELS,
        &["--messages", "10", "--consumer-delay-ms", "2", "--json"],
    );
    let v = json(&out);
    assert_eq!(v["bounded"]["received"], 30);
    assert_eq!(v["unbounded"]["received"], 30);
    // A bounded queue of 4 never holds more (the sampled counter may read one more).
    assert!(v["bounded"]["peak_backlog"].as_u64().unwrap() <= 5, "{v}");
}

#[test]
fn shared_state_every_variant_counts_right() {
    let out = run(SHARED, &["--threads", "3", "--ops", "20000"]);
    let text = stdout(&out);
    for name in [
        "Arc<Mutex<u64>>",
        "Arc<RwLock<u64>>",
        "Arc<AtomicU64>",
        "Arc<RwLock<Vec<u64>>>",
        "thread_local! + merge",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains("PoisonError"));
    assert!(
        text.contains("3 threads × 20000 calls used 3 scratch buffer(s),\n   one per thread"),
        "{text}"
    );
    assert!(!text.contains(" NO "), "{text}");

    let v = json(&run(SHARED, &["--threads", "2", "--ops", "5000", "--json"]));
    assert_eq!(v["counter"]["rows"].as_array().unwrap().len(), 7);
    assert_eq!(v["thread_local"]["buffers"], 2);
    assert_eq!(v["thread_local"]["one_per_thread"], true);
    assert_eq!(v["read_mostly"]["rows"].as_array().unwrap().len(), 3);
}

#[test]
fn thread_pool_survives_panicking_jobs_and_agrees() {
    let out = run(
        POOL,
        &[
            "--jobs",
            "30",
            "--rounds",
            "5000",
            "--workers",
            "3",
            "--panics",
            "3",
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains("33 jobs done, 3 panicked and were caught"),
        "{text}"
    );
    assert!(text.contains("rayon::ThreadPool"));
    assert!(text.contains("thread::scope chunks"));
    assert!(!text.contains(" NO "), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a bug in one job"), "{stderr}");

    let v = json(&run(POOL, &["--jobs", "10", "--rounds", "1000", "--json"]));
    assert_eq!(v["panicked_jobs"], 2);
    assert!(
        v["table"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .all(|r| r["agrees"] == true)
    );
}

/// The deliberate panics of `--panics` print their message, one line each, even with
/// RUST_BACKTRACE=1: a captured backtrace costs ~50 ms a panic, and the pool's row would time
/// the panic hook instead of the pool (118 ms for 6 ms of jobs, measured before the fix).
#[test]
fn deliberate_panics_print_no_backtrace() {
    let out = Command::new(POOL)
        .args(["--jobs", "6", "--rounds", "1000", "--panics", "2"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("a bug in one job").count(), 2, "{stderr}");
    assert!(
        stderr.contains("pool-worker-"),
        "names the thread: {stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}

/// Issue 12: numbers that used to panic, hang or fail late (`--jobs 0` exit 1, `--workers 0`
/// and `--jobs 18446744073709551615` panics, `--messages 18446744073709551615` running for ever)
/// are refused by clap: exit status 2 and a message naming the flag, before any work.
#[test]
fn bad_numbers_are_refused_before_any_work() {
    let max = "18446744073709551615";
    for (bin, args) in [
        (HELLO, vec!["--workers", "0"]),
        (HELLO, vec!["--spawn-count", "0"]),
        (HELLO, vec!["--workers", max]),
        (CPU, vec!["--jobs", "0"]),
        (CPU, vec!["--jobs", max]),
        (CPU, vec!["--max-threads", max]),
        (CPU, vec!["--repeat", "0"]),
        (CHANNELS, vec!["--messages", max]),
        (CHANNELS, vec!["--producers", max]),
        (CHANNELS, vec!["--capacity", max]),
        (CHANNELS, vec!["--consumer-delay-ms", max]),
        (SHARED, vec!["--threads", max]),
        (SHARED, vec!["--ops", max]),
        (SHARED, vec!["--threads", "0"]),
        (POOL, vec!["--workers", "0"]),
        (POOL, vec!["--jobs", "0"]),
        (POOL, vec!["--rounds", "0"]),
        (POOL, vec!["--panics", max]),
    ] {
        let out = Command::new(bin).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin} {args:?}: {stderr}");
        assert!(stderr.contains(args[0]), "{bin} {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bin} {args:?}: {stderr}");
    }
}
