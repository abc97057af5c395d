//! What a crash takes down: a worker process versus a thread (panic, abort, stack overflow, kill, exit).
//!
//! Course 8.1 "Threading et multiprocessing": *Isolation complète entre processus*, the
//! advantage the course lists first for multiprocessing, shown fault by fault.
//!
//! # Concepts
//! - A process is a wall: whatever happens inside a worker (a panic, `abort()`, a stack
//!   overflow, SIGKILL, `exit()`), the parent sees an `ExitStatus` and carries on.
//! - A thread shares its process's fate. Only a *panic* stays inside the thread (it unwinds and
//!   `join()` returns `Err(payload)`), and only with the default `panic = "unwind"`. Abort, stack
//!   overflow, a fatal signal or `exit()` from any thread ends the whole process.
//! - To demonstrate a thread taking its process down without taking *this* program down, the
//!   thread experiments also run in a child process (this binary re-executed with `--fault`).
//!
//! # Run
//! ```text
//! cargo run -p examples-processes --bin isolation
//! cargo run -p examples-processes --bin isolation -- --json
//! ```
//!
//! # What to observe
//! - Column "worker process": every fault becomes a status: `exited with code 101` for a panic,
//!   `killed by signal 6 (SIGABRT)` for an abort *and* for a stack overflow (Rust's guard page
//!   handler prints "has overflowed its stack" and aborts), `signal 9` for a kill.
//! - Column "thread": only the panic line says `caught at join()`; every other fault killed the
//!   process that hosted the thread, and the line "main thread carried on" was never printed.
//! - The last line: this program ran ten faults and is still here.
//!
//! # Exercises
//! 1. Build with `[profile.release] panic = "abort"` and run again: what happens to the panic
//!    row in the thread column? (This is why a pool of threads cannot rely on catching panics.)
//! 2. Add a `segfault` fault (write through a null pointer in an `unsafe` block): which column
//!    survives it? What does Python do when a C extension segfaults in a thread?
//! 3. Add an `oom` fault that allocates until it fails, and run the child with
//!    `prlimit --as=200000000`: what status does the parent see?
//! 4. Python's `multiprocessing.Pool` replaces a worker that was killed, but the task it ran is
//!    lost and `pool.map()` waits forever; `ProcessPoolExecutor` raises `BrokenProcessPool`.
//!    Compare with `process-pool --chaos` in this crate.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Faults in a worker process versus in a thread: what survives what.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Hidden: be the child and commit this fault.
    #[arg(long, hide = true, value_enum)]
    fault: Option<Fault>,
    /// Hidden: commit the fault in a spawned thread, then try to carry on.
    #[arg(long, hide = true)]
    in_thread: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Fault {
    /// `panic!`: unwinds; caught at `join()` in a thread.
    Panic,
    /// `std::process::abort()`: SIGABRT, no unwinding, no destructors.
    Abort,
    /// Unbounded recursion: hits the guard page below the stack.
    StackOverflow,
    /// SIGKILL: cannot be caught, blocked or handled.
    Killed,
    /// `std::process::exit(3)`: ends the process from wherever it is called.
    Exit,
}

const ALL: [Fault; 5] = [
    Fault::Panic,
    Fault::Abort,
    Fault::StackOverflow,
    Fault::Killed,
    Fault::Exit,
];
const SURVIVED: &str = "main thread carried on";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(fault) = args.fault {
        child_main(fault, args.in_thread);
        return Ok(());
    }
    parent_main(args.json)
}

// ---- The child: commit the fault, in main or in a spawned thread. --------------------------

fn commit(fault: Fault) {
    match fault {
        Fault::Panic => panic!("worker bug: index out of range"),
        Fault::Abort => std::process::abort(),
        Fault::StackOverflow => {
            let depth = recurse(0);
            println!("unreachable: recursion returned {depth}");
        }
        Fault::Killed => {
            // SIGKILL is delivered to the process, not the thread: every thread dies with it.
            // SAFETY: raise(3) takes a signal number; no memory is involved.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        Fault::Exit => std::process::exit(3),
    }
}

/// Recursion the optimiser cannot turn into a loop: a 4 KiB frame used after the call.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 4096]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[depth as usize % 4096]))
}

fn child_main(fault: Fault, in_thread: bool) {
    if !in_thread {
        commit(fault);
        return;
    }
    let handle = std::thread::Builder::new()
        .name("faulty".into())
        .spawn(move || commit(fault))
        .expect("spawning the faulty thread");
    match handle.join() {
        Ok(()) => println!("{SURVIVED}: the thread returned normally"),
        Err(payload) => println!(
            "{SURVIVED}: join() returned Err({:?})",
            panic_message(&*payload)
        ),
    }
}

/// The payload is whatever `panic!` was given: a `&str` or a `String` in practice.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string payload>".into())
}

// ---- The parent: run every fault both ways, report. ----------------------------------------

#[derive(Serialize)]
struct Outcome {
    fault: Fault,
    process: String,
    thread: String,
    thread_survived: bool,
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    let sig = status.signal().expect("no code means a signal on Unix");
    let name = match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        _ => "?",
    };
    format!("killed by signal {sig} ({name})")
}

/// Runs this binary with `--fault`, captures its output, returns (status, stdout, first stderr line).
fn run_child(fault: Fault, in_thread: bool) -> anyhow::Result<(ExitStatus, String, String)> {
    let exe = std::env::current_exe().context("finding our own binary")?;
    let name = fault
        .to_possible_value()
        .expect("no skipped variants")
        .get_name()
        .to_owned();
    let mut cmd = Command::new(exe);
    // Predictable stderr: no backtrace even if the user has RUST_BACKTRACE set.
    cmd.args(["--fault", &name]).env("RUST_BACKTRACE", "0");
    if in_thread {
        cmd.arg("--in-thread");
    }
    // Core dumps of deliberate aborts would only fill the disk (and slow the run down).
    // SAFETY: the closure runs in the forked child before exec; setrlimit is async-signal-safe
    // and touches no memory shared with the parent.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running the {name} child"))?;
    Ok((
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        summary(&String::from_utf8_lossy(&out.stderr)),
    ))
}

/// The line of a child's stderr that says what happened.
fn summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(i) = lines.iter().position(|l| l.contains("panicked at")) {
        return format!("panic: {}", lines.get(i + 1).unwrap_or(&"?"));
    }
    if lines.iter().any(|l| l.contains("overflowed its stack")) {
        return "\"has overflowed its stack\"".into();
    }
    lines.first().map_or(String::new(), |l| (*l).to_owned())
}

fn parent_main(json: bool) -> anyhow::Result<()> {
    // First, the one case that is safe to show in *this* process: a panicking thread.
    // (The default panic hook still prints the panic on stderr; the thread's death is caught.)
    let joined =
        std::thread::spawn(|| -> u32 { panic!("a panic in a thread of the parent") }).join();
    if let Err(payload) = &joined
        && !json
    {
        println!(
            "in this very process: a thread panicked, join() returned Err({:?})\n",
            panic_message(&**payload)
        );
    }

    let mut outcomes = Vec::new();
    for fault in ALL {
        // A worker process that commits the fault in its main thread.
        let (status, _, stderr) = run_child(fault, false)?;
        let mut process = describe(status);
        if !stderr.is_empty() {
            process = format!("{process}, {}", truncate(&stderr, 40));
        }
        // A thread that commits the fault, hosted by a child process so that we survive.
        let (status, stdout, _) = run_child(fault, true)?;
        let thread_survived = stdout.contains(SURVIVED);
        let thread = if thread_survived {
            format!(
                "caught at join(), process carried on ({})",
                describe(status)
            )
        } else {
            format!("whole process died: {}", describe(status))
        };
        outcomes.push(Outcome {
            fault,
            process,
            thread,
            thread_survived,
        });
        std::thread::sleep(Duration::from_millis(1)); // Keep stderr lines of children in order.
    }

    if json {
        shared::report::print_json(&serde_json::json!({ "faults": outcomes }));
        return Ok(());
    }
    println!(
        "{:<15} | {:<66} | thread (hosted in a child process)",
        "fault", "worker process: the parent sees"
    );
    println!("{}", "-".repeat(136));
    for o in &outcomes {
        let name = o
            .fault
            .to_possible_value()
            .expect("no skipped variants")
            .get_name()
            .to_owned();
        println!("{name:<15} | {:<66} | {}", o.process, o.thread);
    }
    let survived = outcomes.iter().filter(|o| o.thread_survived).count();
    println!();
    println!(
        "{} faults in worker processes, all contained; in threads, {survived} of {} contained (the panic).",
        outcomes.len(),
        outcomes.len()
    );
    println!("This program is still running: that is what process isolation buys a pool.");
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
