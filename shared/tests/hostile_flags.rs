//! Every numeric flag of every binary, tried with the values a hostile (or careless) user types:
//! `0`, `-1`, `NaN`, `inf`, `1e30` and `18446744073709551615` (u64::MAX).
//!
//! The promise: a bad value is refused with a message and exit status 2 (clap's usage error), a
//! good one runs; never a panic, never a hang. Programs that run until stopped (servers) must stop
//! cleanly on SIGTERM, so the harness sends one after a short while and expects a clean exit.
//!
//! How a flag is found numeric: `--help` lists every flag that takes a value; the harness tries
//! `--flag=abc` on each, and a flag that refuses it as an invalid value (not as one of a list of
//! possible values) parses numbers, durations or addresses: all of them get the hostile values.
//!
//! This is a hang guard, not a timing assertion: the bounds are generous, and a binary is only
//! failed when it is still running long after it should have ended.
//!
//! `HOSTILE_FILTER=chat` runs only the binaries whose name contains `chat`.

mod common;

use common::{bin_dir, ensure_binaries_built, workspace_binaries};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a hostile user types into a numeric flag.
const HOSTILE_VALUES: [&str; 6] = ["0", "-1", "NaN", "inf", "1e30", "18446744073709551615"];

/// How long a run may take on its own before it gets SIGTERM (debug build, shared cores).
const RUN_BOUND: Duration = Duration::from_secs(40);
/// How long a server runs before it gets SIGTERM: it never ends on its own.
const SERVER_RUN: Duration = Duration::from_millis(1500);
/// How long a program may take to stop after SIGTERM before it counts as hung.
const STOP_BOUND: Duration = Duration::from_secs(30);
/// Runs at once: most runs are refusals that exit in milliseconds; the rest mostly sleep.
const PARALLEL_RUNS: usize = 4;

/// How to run a binary quickly: arguments that shrink its default workload (a debug build runs
/// every hostile value), and whether it runs until stopped.
struct Profile {
    args: &'static [&'static str],
    server: bool,
}

const QUICK: Profile = Profile {
    args: &[],
    server: false,
};

/// Binaries whose default run is long in a debug build, or that run until stopped. A binary not
/// listed runs with no arguments.
fn profile(bin: &str) -> Profile {
    let (args, server): (&'static [&'static str], bool) = match bin {
        "async-basics" => (&["--step-ms", "5"], false),
        "async-race" => (&["--runs", "1", "--buyers", "40"], false),
        "async-downloader" => (&["--count", "5", "--latency", "1ms", "--out", "dl"], false),
        "chat-load" => (&["--clients", "3", "--ws", "2", "--messages", "2"], false),
        "chat-server" => (&["--addr", "127.0.0.1:0"], true),
        "event-loop" => (&["--block-ms", "5", "--blocks", "1"], false),
        "diagnose-async" => (
            &["--requests", "20", "--block-ms", "2", "--io-ms", "1"],
            false,
        ),
        "diagnose-threads" => (
            &[
                "--requests",
                "500",
                "--rounds",
                "100",
                "--increments",
                "10000",
            ],
            false,
        ),
        "diagnose-sync" => (
            &["--runs", "100", "--transfers", "1000", "--patience", "0.05"],
            false,
        ),
        "shop-api" => (&["--addr", "127.0.0.1:0", "--db", ":memory:"], true),
        "shop-load" => (
            &["--users", "2", "--duration", "300ms", "--products", "3"],
            false,
        ),
        "sensor-stream" => (&["--duration", "200ms", "--window", "50ms"], false),
        "actor" => (&["--customers", "20"], false),
        "circuit-breaker" => (&["--rate", "50", "--duration", "0.5"], false),
        "compare" => (
            &[
                "--requests",
                "4",
                "--latency-ms",
                "5",
                "--tasks",
                "4",
                "--rounds",
                "1000",
            ],
            false,
        ),
        "map-reduce" => (&["--size", "1"], false),
        "map-reduce-distributed" => (&["--size", "100KB", "--range-size", "16KiB"], false),
        "pipeline" => (&["--files", "4", "--rows", "20", "--read-us", "10"], false),
        "producer-consumer" => (&["--items", "50"], false),
        "rate-limiter" => (&["--duration", "0.3"], false),
        "worker-pool" => (&["--orders", "20", "--rate", "1000"], false),
        "image-batch" | "image-batch-processes" => {
            (&["--count", "3", "--sample-max-mp", "0.2"], false)
        }
        "pipe-ipc" => (
            &[
                "--mib",
                "1",
                "--max-messages",
                "100",
                "--round-trips",
                "100",
            ],
            false,
        ),
        "process-pool" => (&["--tasks", "4", "--rounds", "1000"], false),
        "shared-memory" => (&["--increments", "1000", "--cells", "1000"], false),
        "spawn-cost" => (
            &[
                "--thread-iters",
                "20",
                "--process-iters",
                "5",
                "--idle",
                "2",
            ],
            false,
        ),
        "spawn-process" => (&["--stdin-mib", "1"], false),
        "condition" => (&["--items", "200"], false),
        "deadlock" => (&["--rounds", "20"], false),
        "locks" => (&["--ops", "1000", "--work-ms", "1"], false),
        "queues" => (&["--messages", "2000"], false),
        "race-condition" => (&["--increments", "200", "--runs", "1"], false),
        "semaphore" => (&["--downloads", "4", "--download-ms", "5"], false),
        "starvation" => (&["--limit-ms", "100"], false),
        "cpu-scaling" => (&["--jobs", "4", "--rounds", "1000"], false),
        "hello-threads" => (&["--spawn-count", "10"], false),
        "shared-state" => (&["--ops", "1000"], false),
        "thread-channels" => (&["--messages", "50"], false),
        // `--panics 0`: its deliberate panics print "panicked at" (caught by the pool) by design.
        "thread-pool" => (&["--jobs", "8", "--rounds", "1000", "--panics", "0"], false),
        "url-downloader" => (&["--count", "5", "--latency-ms", "1"], false),
        "test-server" => (&[], true),
        _ => return QUICK,
    };
    Profile { args, server }
}

/// Flags whose valid values make a run fail on purpose: it ends with exit status 1 and says
/// why (`process-pool --poison 0`: task 0 crashes every worker, and a failed task fails the run).
/// The hostile values must still never panic or hang; a refused value is still exit 2.
fn fails_by_design(job: &Job) -> bool {
    matches!(
        (job.bin.as_str(), job.flag.as_str()),
        ("process-pool", "--poison")
    )
}

/// `--name` of every flag of `bin` that takes a value, read from its `--help`.
fn value_flags(exe: &Path) -> Vec<String> {
    let out = Command::new(exe)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{}: cannot run --help: {e}", exe.display()));
    let help = String::from_utf8_lossy(&out.stdout);
    let mut flags = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let t = t
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-'))
            .map_or(t, |r| r.get(3..).unwrap_or("")); // `-h, --x`
        let Some(rest) = t.strip_prefix("--") else {
            continue;
        };
        let mut parts = rest.splitn(2, ' ');
        let name = parts.next().unwrap_or_default();
        let takes_value = parts
            .next()
            .is_some_and(|v| v.starts_with('<') || v.starts_with("[<"));
        if takes_value && !name.is_empty() {
            flags.push(format!("--{name}"));
        }
    }
    flags
}

/// The base arguments of `profile`, without `flag` (and its value) when the profile sets it.
fn base_args_without(profile: &Profile, flag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in profile.args {
        if skip {
            skip = false;
            continue;
        }
        if *a == flag {
            skip = true;
            continue;
        }
        out.push((*a).to_string());
    }
    out
}

/// How one run ended.
#[derive(Debug)]
struct RunResult {
    status: ExitStatus,
    /// We sent SIGTERM (the run was still going when its time was up).
    terminated: bool,
    stderr: String,
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    // SAFETY: kill(2) with a pid we own; no memory is involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits for `child` until `deadline`; `None` if it is still running.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `exe args` in `dir`, SIGTERMs it after `run_for`, kills it (and fails) if it does not stop.
fn run_guarded(
    exe: &Path,
    args: &[String],
    dir: &Path,
    run_for: Duration,
    stop_bound: Duration,
) -> Result<RunResult, String> {
    let stderr_path = dir.join(format!("stderr-{}", rand_suffix()));
    let stderr_file = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let mut terminated = false;
    let status = match wait_until(&mut child, Instant::now() + run_for) {
        Some(s) => s,
        None => {
            terminated = true;
            signal(&child, libc::SIGTERM);
            match wait_until(&mut child, Instant::now() + stop_bound) {
                Some(s) => s,
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "hang: still running {stop_bound:?} after SIGTERM (killed)"
                    ));
                }
            }
        }
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    Ok(RunResult {
        status,
        terminated,
        stderr,
    })
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Is this run's ending acceptable? `None` if so, else what is wrong.
fn verdict(r: &RunResult) -> Option<String> {
    if r.stderr.contains("panicked at") {
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains("panicked at"))
            .unwrap_or_default();
        return Some(format!("panic: {line}"));
    }
    let code = r.status.code();
    let ok = if r.terminated {
        // Stopped by our SIGTERM: the graceful path ends with a normal exit status.
        matches!(code, Some(0 | 2 | 130 | 143))
    } else {
        matches!(code, Some(0 | 2))
    };
    if ok {
        None
    } else {
        let tail: Vec<&str> = r.stderr.lines().rev().take(3).collect();
        Some(format!(
            "exit {:?}{} (expected 0 or 2{}); stderr ends: {:?}",
            code,
            r.status
                .to_string()
                .strip_prefix("signal")
                .map_or(String::new(), |s| format!(", signal{s}")),
            if r.terminated {
                ", or a clean stop on SIGTERM"
            } else {
                ""
            },
            tail
        ))
    }
}

/// One unit of work: a binary, a flag, a value (or the `abc` probe).
struct Job {
    bin: String,
    exe: PathBuf,
    flag: String,
    value: String,
}

#[test]
fn every_numeric_flag_survives_hostile_values() {
    let filter = std::env::var("HOSTILE_FILTER").unwrap_or_default();
    let bins: Vec<String> = workspace_binaries()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b.contains(&filter))
        .collect();
    assert!(
        !bins.is_empty(),
        "no binary matches HOSTILE_FILTER={filter:?}"
    );
    ensure_binaries_built(bins.clone());
    let dir = bin_dir();
    let scratch = tempfile::tempdir().expect("tempdir");

    // 1. Which flags parse numbers: they refuse `abc` as an invalid value.
    let mut numeric: Vec<(String, PathBuf, String)> = Vec::new();
    for bin in &bins {
        let exe = dir.join(bin);
        for flag in value_flags(&exe) {
            // A flag that accepts `abc` starts a real run, and a server's (`test-server
            // --urls=abc`) never ends: the probe gets the same hang guard as the hostile runs,
            // and a run still going after SERVER_RUN is no refusal.
            let args = [format!("{flag}=abc")];
            let Ok(probe) = run_guarded(&exe, &args, scratch.path(), SERVER_RUN, STOP_BOUND) else {
                continue;
            };
            let err = &probe.stderr;
            if !probe.terminated
                && probe.status.code() == Some(2)
                && err.contains("invalid value")
                && !err.contains("possible values")
            {
                numeric.push((bin.clone(), exe.clone(), flag));
            }
        }
    }
    if numeric.is_empty() && !filter.is_empty() {
        // `HOSTILE_FILTER=isolation`: a binary whose only flags are switches has nothing to try
        // (the parser itself is checked by `the_help_parser_finds_value_flags`).
        eprintln!("no numeric flag in {bins:?}: nothing to try");
        return;
    }
    assert!(
        !numeric.is_empty(),
        "found no numeric flag at all: the --help parser is broken"
    );

    // 2. Every hostile value on every numeric flag, a few runs at a time.
    let jobs: VecDeque<Job> = numeric
        .iter()
        .flat_map(|(bin, exe, flag)| {
            HOSTILE_VALUES.iter().map(move |v| Job {
                bin: bin.clone(),
                exe: exe.clone(),
                flag: flag.clone(),
                value: (*v).to_string(),
            })
        })
        .collect();
    let total = jobs.len();
    let queue = Mutex::new(jobs);
    let failures = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_RUNS {
            s.spawn(|| {
                loop {
                    let Some(job) = queue.lock().expect("queue").pop_front() else {
                        break;
                    };
                    let profile = profile(&job.bin);
                    let mut args = base_args_without(&profile, &job.flag);
                    args.push(format!("{}={}", job.flag, job.value));
                    // Each run in its own folder: outputs written to the current directory
                    // (downloads, reports) must not meet another run's.
                    let run_dir = scratch.path().join(rand_suffix());
                    std::fs::create_dir_all(&run_dir).expect("run dir");
                    let run_for = if profile.server {
                        SERVER_RUN
                    } else {
                        RUN_BOUND
                    };
                    let problem = match run_guarded(&job.exe, &args, &run_dir, run_for, STOP_BOUND)
                    {
                        // A documented failure (exit 1, with its report) is a clean end too.
                        Ok(r)
                            if r.status.code() == Some(1)
                                && fails_by_design(&job)
                                && !r.stderr.contains("panicked at") =>
                        {
                            None
                        }
                        Ok(r) => verdict(&r),
                        Err(e) => Some(e),
                    };
                    if let Some(p) = problem {
                        failures.lock().expect("failures").push(format!(
                            "{} {}: {p}",
                            job.bin,
                            args.join(" ")
                        ));
                    }
                    let _ = std::fs::remove_dir_all(&run_dir);
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    assert!(
        failures.is_empty(),
        "{} of {total} hostile runs ({} numeric flags) misbehaved:\n{}",
        failures.len(),
        numeric.len(),
        failures.join("\n")
    );
}

#[test]
fn the_help_parser_finds_value_flags() {
    // Our own test-server: `--port <PORT>`, `--latency-ms <MS>`, … take values; `--help` does not.
    let bins = vec!["test-server".to_string()];
    ensure_binaries_built(bins);
    let flags = value_flags(&bin_dir().join("test-server"));
    for expected in ["--port", "--latency-ms", "--error-rate", "--seed"] {
        assert!(
            flags.iter().any(|f| f == expected),
            "{expected} not found in {flags:?}"
        );
    }
    assert!(!flags.iter().any(|f| f == "--help"));
}

#[test]
fn verdicts_reject_panics_hangs_and_odd_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sh = Path::new("/bin/sh");
    let short = Duration::from_millis(300);
    let run = |script: &str, run_for: Duration| {
        let args = ["-c".to_string(), script.to_string()];
        run_guarded(sh, &args, dir.path(), run_for, short)
    };
    // A clean refusal and a clean run pass.
    assert_eq!(verdict(&run("exit 2", RUN_BOUND).expect("runs")), None);
    assert_eq!(verdict(&run("exit 0", RUN_BOUND).expect("runs")), None);
    // A panic message, a runtime error and a crash do not.
    let panicked = run(
        "echo \"thread 'main' panicked at src/x.rs:1:1\" >&2; exit 101",
        RUN_BOUND,
    )
    .expect("runs");
    assert!(verdict(&panicked).is_some_and(|v| v.contains("panic")));
    assert!(verdict(&run("exit 1", RUN_BOUND).expect("runs")).is_some());
    assert!(verdict(&run("kill -SEGV $$", RUN_BOUND).expect("runs")).is_some());
    // A program that handles SIGTERM cleanly passes; one that dies of it does not.
    let graceful = run(
        "trap 'exit 143' TERM; while :; do sleep 0.05; done",
        Duration::from_millis(300),
    )
    .expect("runs");
    assert!(graceful.terminated);
    assert_eq!(verdict(&graceful), None);
    let killed = run("sleep 30", short).expect("runs");
    assert!(killed.terminated);
    assert!(verdict(&killed).is_some());
    // One that ignores SIGTERM is a hang, and is killed.
    let hung = run("trap '' TERM; while :; do sleep 0.05; done", short);
    assert!(hung.is_err_and(|e| e.starts_with("hang")));
}
