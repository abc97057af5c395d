//! End-to-end tests of `process-pool`: results, fault tolerance, and no orphan processes.
//!
//! The orphan tests find workers the way an operator would: by scanning `/proc/*/cmdline` for a
//! unique marker that the test passes to the pool, which passes it on to every worker.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_process-pool");
/// Hang guard only: nothing here depends on timing, but nothing may wait forever either.
const PATIENCE: Duration = Duration::from_secs(30);

fn run(args: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--json")
        .output()
        .expect("running process-pool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// Checks every result against the task computed here, and that each id appears exactly once,
/// in submission order. Returns the ids of failed tasks.
fn check_results(json: &Value, tasks: u64) -> Vec<u64> {
    let rounds = u32::try_from(json["rounds"].as_u64().unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len() as u64, tasks, "one outcome per task");
    let mut failed = Vec::new();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(
            r["id"].as_u64().unwrap(),
            i as u64,
            "results are in submission order"
        );
        match r["value"].as_u64() {
            Some(v) => {
                let seed = r["seed"].as_u64().unwrap();
                assert_eq!(
                    v,
                    shared::work::cpu_task(seed, rounds),
                    "task {i} computed the wrong value"
                );
            }
            None => failed.push(i as u64),
        }
    }
    failed
}

#[test]
fn computes_the_right_results_in_submission_order() {
    let (out, json) = run(&[
        "--workers",
        "3",
        "--tasks",
        "30",
        "--rounds",
        "20000",
        "--no-compare",
    ]);
    assert!(out.status.success(), "exit status {:?}", out.status);
    assert!(check_results(&json, 30).is_empty());
    assert_eq!(json["stats"]["worker_failures"], 0);
    // Not `== 3`: on a loaded machine one slot may find the queue empty before it starts.
    let started = json["stats"]["workers_started"].as_u64().unwrap();
    assert!((1..=3).contains(&started), "started {started} workers");
}

#[test]
fn the_comparison_runs_agree() {
    let (out, json) = run(&["--workers", "2", "--tasks", "6", "--rounds", "10000"]);
    assert!(out.status.success());
    let rows = json["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "1 worker, N workers, rayon");
    for row in &rows[1..] {
        assert_eq!(row["agrees"], true, "{row}");
    }
}

#[test]
fn with_chaos_every_result_is_present_exactly_once() {
    let (out, json) = run(&[
        "--workers",
        "2",
        "--tasks",
        "24",
        "--rounds",
        "1000000",
        "--chaos",
        "0.5",
        "--no-compare",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        check_results(&json, 24).is_empty(),
        "chaos must not fail any task"
    );
    let stats = &json["stats"];
    let failures = stats["worker_failures"].as_u64().unwrap();
    assert!(
        stats["chaos_kills"].as_u64().unwrap() >= 1,
        "the monkey struck: {stats}"
    );
    assert!(failures >= stats["chaos_kills"].as_u64().unwrap());
    // Every dead worker was replaced: started = (1 or 2 initial workers) + one per failure.
    let initial = stats["workers_started"].as_u64().unwrap() - failures;
    assert!((1..=2).contains(&initial), "{stats}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SIGKILL"),
        "the parent reports how its workers died:\n{stderr}"
    );
}

#[test]
fn a_poison_task_fails_after_the_retry_limit_and_the_rest_succeed() {
    let (out, json) = run(&[
        "--workers",
        "2",
        "--tasks",
        "8",
        "--rounds",
        "20000",
        "--poison",
        "3",
        "--max-attempts",
        "2",
        "--no-compare",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed task makes the run fail"
    );
    assert_eq!(check_results(&json, 8), vec![3]);
    assert_eq!(json["failed"], serde_json::json!([3]));
    let poison = &json["results"][3];
    assert_eq!(
        poison["attempts"], 2,
        "retried up to the limit, not forever"
    );
    assert!(
        poison["error"].as_str().unwrap().contains("SIGABRT"),
        "{poison}"
    );
    assert_eq!(json["stats"]["worker_failures"], 2);
}

/// Every failure of `run` listed in the JSON `failures` (one entry per run and task).
fn failures_of(json: &Value, run: &str) -> Vec<u64> {
    json["failures"]
        .as_array()
        .unwrap_or_else(|| panic!("no `failures` list in {json}"))
        .iter()
        .filter(|f| f["run"] == run)
        .map(|f| f["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_poison_task_is_reported_by_every_run_and_only_comparable_results_are_compared() {
    // Issue 12, defect 9. The poison task fails in the pool *and* in the 1-worker baseline, and
    // rayon cannot run it at all (it would abort the whole process): all three say so, and the
    // comparison covers the 5 tasks that every run computed.
    let (out, json) = run(&[
        "--workers",
        "2",
        "--tasks",
        "6",
        "--rounds",
        "10000",
        "--poison",
        "3",
        "--max-attempts",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "a failed task fails the run");
    assert_eq!(json["failed"], serde_json::json!([3]));
    assert_eq!(failures_of(&json, "1 worker process"), vec![3]);
    assert_eq!(failures_of(&json, "2 worker processes"), vec![3]);
    assert_eq!(failures_of(&json, "2 threads (rayon)"), vec![3]);
    let rows = json["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "1 worker, N workers, rayon");
    for row in &rows[1..] {
        assert_eq!(row["agrees"], true, "{row}");
        assert!(
            row["note"].as_str().unwrap().contains("compared 5 of 6"),
            "the row says what was compared: {row}"
        );
    }
}

#[test]
fn a_failure_in_the_baseline_run_is_listed_and_fails_the_run() {
    // Issue 12, defect 9: the 1-worker baseline lost a task (its worker was killed, here by
    // us, with no retry left), the pool computed everything. Before the fix: `agrees: false`,
    // exit 0, and the baseline's failure listed nowhere.
    let marker = unique_marker("baseline");
    let child = Command::new(BIN)
        .args([
            "--workers",
            "2",
            "--tasks",
            "4",
            // About half a second per task in a debug build: the kill lands mid-baseline.
            "--rounds",
            "50000000",
            "--max-attempts",
            "1",
            "--json",
            "--marker",
            &marker,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting process-pool");
    let start = Instant::now();
    let killed = loop {
        let workers = processes_with_marker(&marker, child.id());
        if let [only] = workers[..]
            && state(only) == Some('R')
        {
            // SAFETY: kill(2) with plain integers; the pool's only worker, computing.
            unsafe { libc::kill(only as libc::pid_t, libc::SIGKILL) };
            break only;
        }
        assert!(
            workers.len() < 2,
            "the baseline (1 worker) ended before the test could kill its worker"
        );
        assert!(start.elapsed() < PATIENCE, "the baseline never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().expect("waiting for the pool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr:\n{stderr}"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed baseline task fails the run; stderr:\n{stderr}"
    );
    assert!(
        check_results(&json, 4).is_empty(),
        "the pool itself computed every task"
    );
    let lost = failures_of(&json, "1 worker process");
    assert_eq!(lost.len(), 1, "the baseline lost one task: {json}");
    assert!(
        stderr.contains(&format!("worker {killed} failed")),
        "the kill is reported: {stderr}"
    );
    assert!(
        stderr.contains("1 worker process") && stderr.contains(&format!("task {}", lost[0])),
        "the baseline's failure is listed: {stderr}"
    );
    // The failed task is not comparable; the other three are, and they agree.
    let rows = json["table"]["rows"].as_array().unwrap();
    assert_eq!(rows[1]["agrees"], true, "{}", rows[1]);
    assert!(
        rows[1]["note"]
            .as_str()
            .unwrap()
            .contains("compared 3 of 4"),
        "{}",
        rows[1]
    );
}

#[test]
fn as_completed_returns_every_task_once_and_a_poison_task_fails_alone() {
    let (out, json) = run(&[
        "--as-completed",
        "--workers",
        "2",
        "--tasks",
        "12",
        "--rounds",
        "20000",
        "--poison",
        "5",
        "--max-attempts",
        "2",
        "--no-compare",
    ]);
    assert_eq!(out.status.code(), Some(1), "a failed task fails the run");
    assert_eq!(
        check_results(&json, 12),
        vec![5],
        "only the poison task failed"
    );
    let error = json["results"][5]["error"].as_str().unwrap();
    assert!(error.contains("gave up after 2 attempts"), "{error}");
    assert!(error.contains("SIGABRT"), "{error}");
    // The completion order is a permutation of the tasks: each came back exactly once.
    let mut order: Vec<u64> = json["completion_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    order.sort_unstable();
    assert_eq!(order, (0..12).collect::<Vec<u64>>());
    let stats = &json["stats"];
    assert_eq!(stats["worker_failures"], 2, "{stats}");
}

#[test]
fn as_completed_refuses_the_chaos_monkey() {
    // The monkey strikes from the batch's `Sent` events, which the executor does not emit.
    let out = Command::new(BIN)
        .args(["--as-completed", "--chaos"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn a_worker_writing_garbage_is_a_failed_worker_not_a_crash() {
    let (out, json) = run(&[
        "--workers",
        "2",
        "--tasks",
        "10",
        "--rounds",
        "20000",
        "--garbage-worker",
        "--no-compare",
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(check_results(&json, 10).is_empty());
    assert_eq!(json["stats"]["protocol_errors"], 1);
    assert_eq!(json["stats"]["worker_failures"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("over the 65536-byte limit"), "{stderr}");
}

// ---- No orphans. ----------------------------------------------------------------------------

/// Live (not zombie) processes whose command line contains `marker`, other than `except`.
fn processes_with_marker(marker: &str, except: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == except {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            continue;
        }
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().chars().next());
        if state != Some(Some('Z')) {
            found.push(pid);
        }
    }
    found
}

/// The state letter of `pid` (R running, S sleeping, Z zombie...), from /proc/PID/stat.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The ppid of `pid`, from /proc/PID/stat.
fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn unique_marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("pool-test-{name}-{}-{nanos}", std::process::id())
}

/// Starts a long pool run (each task takes seconds) and waits until its 2 workers compute.
// The caller waits for the returned child; clippy cannot see across the return.
#[allow(clippy::zombie_processes)]
fn start_long_pool(marker: &str, extra: &[&str]) -> Child {
    let mut parent = Command::new(BIN)
        .args([
            "--workers",
            "2",
            "--tasks",
            "1000",
            "--rounds",
            "2000000000",
            "--no-compare",
            "--json",
        ])
        .args(["--marker", marker])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting process-pool");
    let start = Instant::now();
    loop {
        let workers = processes_with_marker(marker, parent.id());
        // 'R': computing its first task (a worker waiting for one sleeps in read(2): 'S').
        if workers.len() == 2 && workers.iter().all(|&w| state(w) == Some('R')) {
            for w in &workers {
                assert_eq!(
                    ppid(*w),
                    Some(parent.id()),
                    "workers are children of the pool"
                );
            }
            return parent;
        }
        if start.elapsed() > PATIENCE {
            let _ = parent.kill();
            let _ = parent.wait();
            panic!("the workers never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until no process carries the marker; returns the survivors if any remain.
fn survivors_after_wait(marker: &str, except: u32) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let left = processes_with_marker(marker, except);
        if left.is_empty() || start.elapsed() > Duration::from_secs(10) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_all(pids: &[u32]) {
    for &pid in pids {
        // SAFETY: kill(2) with plain integers; these are the test's own orphans.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// Sends `signal` to a running pool whose workers compute, and checks the clean stop: exit 130,
/// the message, and no worker left in /proc.
fn a_signal_stops_the_pool_and_reaps_every_worker(name: &str, signal: libc::c_int) {
    let marker = unique_marker(name);
    // Without PDEATHSIG, only the parent's own cleanup can make the workers go away.
    let parent = start_long_pool(&marker, &["--no-pdeathsig"]);
    // SAFETY: kill(2) with plain integers; the pid is our unreaped child.
    unsafe { libc::kill(parent.id() as libc::pid_t, signal) };
    let out = parent.wait_with_output().expect("waiting for the pool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "interrupted run exits 130; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("every worker was killed and reaped"),
        "{stderr}"
    );
    // The parent reaped its workers before exiting, so nothing is left *right now*.
    let left = processes_with_marker(&marker, 0);
    kill_all(&left);
    assert!(left.is_empty(), "orphan workers after {name}: {left:?}");
}

#[test]
fn sigint_kills_and_reaps_every_worker() {
    a_signal_stops_the_pool_and_reaps_every_worker("sigint", libc::SIGINT);
}

#[test]
fn sigterm_kills_and_reaps_every_worker() {
    // What `docker stop`, systemd and `kill` send: the same clean stop as Ctrl-C.
    a_signal_stops_the_pool_and_reaps_every_worker("sigterm", libc::SIGTERM);
}

#[test]
fn sigkill_of_the_parent_leaves_no_worker_thanks_to_pdeathsig() {
    let marker = unique_marker("sigkill");
    let mut parent = start_long_pool(&marker, &[]);
    let parent_pid = parent.id();
    parent.kill().expect("SIGKILL the pool"); // No handler, no destructor runs in the parent.
    parent.wait().expect("reaping the pool");
    let left = survivors_after_wait(&marker, parent_pid);
    kill_all(&left);
    assert!(
        left.is_empty(),
        "orphan workers after SIGKILL of the parent: {left:?}"
    );
}

#[test]
fn without_pdeathsig_a_sigkilled_parent_leaves_orphans() {
    // The control experiment: shows that the test above can fail, and why PDEATHSIG is there.
    let marker = unique_marker("orphans");
    let mut parent = start_long_pool(&marker, &["--no-pdeathsig"]);
    let workers: HashSet<u32> = processes_with_marker(&marker, parent.id())
        .into_iter()
        .collect();
    parent.kill().expect("SIGKILL the pool");
    parent.wait().expect("reaping the pool");
    // Each worker is seconds into a task: it only notices its parent is gone when it answers.
    let left: HashSet<u32> = processes_with_marker(&marker, 0).into_iter().collect();
    kill_all(&left.iter().copied().collect::<Vec<_>>());
    assert_eq!(
        left, workers,
        "the workers outlive a SIGKILLed parent when nothing kills them"
    );
}
