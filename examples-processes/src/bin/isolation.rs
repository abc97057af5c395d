//! What a crash takes down: a worker process versus a thread (panic, abort, stack overflow, kill, exit).
//!
//! Course section **8.1 — Threading et multiprocessing** (*Isolation complète entre
//! processus*): the advantage the course lists first for multiprocessing, fault by fault; the
//! course's Python (`multiprocessing.Process`, `threading.Thread`) is `python/isolation.py`.
//!
//! Crates: `libc = "0.2"` (the harness adds clap and serde).
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
//! cargo run -p examples-processes --bin isolation -- --python   # each fault in Python too
//! ```
//!
//! # What to observe
//! - Column "worker process": every fault becomes a status: `exited with code 101` for a panic,
//!   `killed by signal 6 (SIGABRT)` for an abort *and* for a stack overflow (Rust's guard page
//!   handler prints "has overflowed its stack" and aborts), `signal 9` for a kill.
//! - Column "thread": only the panic line says `caught at join()`; every other fault killed the
//!   process that hosted the thread, and the line "main thread carried on" was never printed.
//! - The last line: this program ran ten faults and is still here.
//! - `--python`: a Python line under each Rust line. Processes contain every fault in both;
//!   in a thread, Python survives deep recursion (`RecursionError`) and `sys.exit()` (it ends
//!   only the thread), where Rust's stack overflow and `process::exit` end the process.
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

// === Lesson: copy from here ===

/// The faults, committed by the process (or the thread) that suffers them.
mod fault {
    use std::any::Any;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fault {
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

    impl Fault {
        pub const ALL: [Fault; 5] = [
            Fault::Panic,
            Fault::Abort,
            Fault::StackOverflow,
            Fault::Killed,
            Fault::Exit,
        ];

        pub fn name(self) -> &'static str {
            match self {
                Fault::Panic => "panic",
                Fault::Abort => "abort",
                Fault::StackOverflow => "stack-overflow",
                Fault::Killed => "killed",
                Fault::Exit => "exit",
            }
        }

        pub fn from_name(name: &str) -> Option<Fault> {
            Fault::ALL.into_iter().find(|f| f.name() == name)
        }
    }

    /// Printed by a process whose main thread outlived the fault.
    pub const SURVIVED: &str = "main thread carried on";

    pub fn commit(fault: Fault) {
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

    /// Commits `fault` in a spawned thread, then tries to carry on: prints [`SURVIVED`] if the
    /// process is still alive after `join()`.
    pub fn commit_in_a_thread(fault: Fault) {
        let handle = std::thread::Builder::new()
            .name("faulty".into())
            .spawn(move || commit(fault))
            .expect("spawning the faulty thread");
        match handle.join() {
            Ok(()) => println!("{SURVIVED}: the thread returned normally"),
            Err(payload) => {
                let message = panic_message(&*payload);
                println!("{SURVIVED}: join() returned Err({message:?})");
            }
        }
    }

    /// What a panic leaves behind: a payload, whatever `panic!` was given. In practice a
    /// `&'static str` (a literal message) or a `String` (a formatted one).
    pub fn panic_message(payload: &(dyn Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string payload>".to_owned()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_panicking_thread_hands_its_message_to_join() {
            let n = 7;
            let joined = std::thread::spawn(move || panic!("formatted {n}")).join();
            assert_eq!(panic_message(&*joined.unwrap_err()), "formatted 7");
            let joined = std::thread::spawn(|| commit(Fault::Panic)).join();
            let message = panic_message(&*joined.unwrap_err());
            assert_eq!(message, "worker bug: index out of range");
            let odd = std::thread::spawn(|| std::panic::panic_any(42u8)).join();
            assert_eq!(panic_message(&*odd.unwrap_err()), "<non-string payload>");
        }

        #[test]
        fn names_round_trip() {
            for f in Fault::ALL {
                assert_eq!(Fault::from_name(f.name()), Some(f));
            }
            assert_eq!(Fault::from_name("segfault"), None);
        }
    }
}

/// The parent's side: run a fault in a child process and see only an exit status.
mod contain {
    use std::io;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, ExitStatus};

    /// What the parent learns about a child that committed a fault.
    pub struct ChildReport {
        pub status: ExitStatus,
        pub stdout: String,
        /// The line of its stderr that says what happened.
        pub stderr_gist: String,
    }

    /// Runs `cmd` to its end, whatever happens inside it, and reports how it ended.
    pub fn run_contained(mut cmd: Command) -> io::Result<ChildReport> {
        // Predictable stderr: no backtrace even if the user has RUST_BACKTRACE set.
        cmd.env("RUST_BACKTRACE", "0");
        // Core dumps of deliberate aborts would only fill the disk (and slow the run down).
        // SAFETY: the closure runs in the forked child before exec; setrlimit is
        // async-signal-safe and touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                Ok(())
            });
        }
        let out = cmd.output()?; // Pipes stdout and stderr, waits: never a zombie.
        Ok(ChildReport {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr_gist: stderr_gist(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// The line of a child's stderr that says what happened.
    pub fn stderr_gist(stderr: &str) -> String {
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

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::os::unix::process::ExitStatusExt;

        #[test]
        fn an_aborting_child_is_a_status_not_a_crash_of_ours() {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo started; echo 'it broke' >&2; kill -ABRT $$"]);
            let report = run_contained(cmd).unwrap();
            assert_eq!(report.status.signal(), Some(libc::SIGABRT));
            assert_eq!(report.stdout, "started\n");
            assert_eq!(report.stderr_gist, "it broke");
        }

        #[test]
        fn the_gist_of_a_panic_is_its_message() {
            let stderr = "\nthread 'main' panicked at src/x.rs:1:1:\nworker bug\nnote: ...\n";
            assert_eq!(stderr_gist(stderr), "panic: worker bug");
            let overflow = "thread 'main' has overflowed its stack\nfatal runtime error";
            assert_eq!(stderr_gist(overflow), "\"has overflowed its stack\"");
        }
    }
}

// === Harness: not part of the lesson ===

use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clap::builder::PossibleValuesParser;
use serde::Serialize;
use shared::python::Python;
use shared::report::describe_exit;

use contain::run_contained;
use fault::{Fault, SURVIVED, panic_message};

/// Faults in a worker process versus in a thread: what survives what.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python version (python/isolation.py: the same faults in a
    /// `multiprocessing.Process` and in a `threading.Thread`); its lines join the table.
    #[arg(long)]
    python: bool,
    /// Hidden: be the child and commit this fault.
    #[arg(long, hide = true, value_parser = PossibleValuesParser::new(Fault::ALL.map(Fault::name)))]
    fault: Option<String>,
    /// Hidden: commit the fault in a spawned thread, then try to carry on.
    #[arg(long, hide = true)]
    in_thread: bool,
}

/// One row of the table: a fault, what the parent saw of a worker process, and of a thread.
#[derive(Serialize)]
struct FaultRow {
    fault: &'static str,
    process: String,
    thread: String,
    thread_survived: bool,
}

/// The course's version, run by `--python`.
const PYTHON_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/isolation.py");

/// One fault as `python/isolation.py` saw it.
#[derive(Serialize, serde::Deserialize)]
struct PythonFaultRow {
    fault: String,
    process: String,
    process_contained: bool,
    thread: String,
    thread_survived: bool,
}

/// Why a Python line differs from the Rust one, where it does on purpose.
fn why_python_differs(fault: &str) -> Option<&'static str> {
    match fault {
        "stack-overflow" => Some("Python raises RecursionError long before the C stack ends"),
        "exit" => Some("sys.exit() raises SystemExit: in a thread, it ends only that thread"),
        _ => None,
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(name) = &args.fault {
        let fault = Fault::from_name(name).context("clap checked the name")?;
        if args.in_thread {
            fault::commit_in_a_thread(fault);
        } else {
            fault::commit(fault);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let python_rows = match &python {
        Some(py) => {
            let out = py.run_recipe(PYTHON_RECIPE, &[])?;
            let rows: Vec<PythonFaultRow> = serde_json::from_value(out.json["faults"].clone())
                .context("the recipe's faults list")?;
            Some(rows)
        }
        None => None,
    };
    print_fault_table(args.json, python_rows.as_deref())?;
    // The promise both languages make: a fault in a worker process never reaches the parent.
    if let Some(rows) = &python_rows
        && (rows.len() != Fault::ALL.len() || !rows.iter().all(|r| r.process_contained))
    {
        eprintln!("a Python worker process did not report its fault: see the table");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// This binary, re-executed to commit `fault` (in its main thread, or in a spawned one).
fn fault_child(fault: Fault, in_thread: bool) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("finding our own binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["--fault", fault.name()]);
    if in_thread {
        cmd.arg("--in-thread");
    }
    Ok(cmd)
}

fn print_fault_table(json: bool, python: Option<&[PythonFaultRow]>) -> anyhow::Result<()> {
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

    let mut rows = Vec::new();
    for fault in Fault::ALL {
        let name = fault.name();
        // A worker process that commits the fault in its main thread.
        let child = run_contained(fault_child(fault, false)?)
            .with_context(|| format!("running the {name} child"))?;
        let mut process = describe_exit(child.status);
        if !child.stderr_gist.is_empty() {
            process = format!("{process}, {}", truncate(&child.stderr_gist, 40));
        }
        // A thread that commits the fault, hosted by a child process so that we survive.
        let host = run_contained(fault_child(fault, true)?)
            .with_context(|| format!("running the {name} thread host"))?;
        let thread_survived = host.stdout.contains(SURVIVED);
        let thread = if thread_survived {
            format!(
                "caught at join(), process carried on ({})",
                describe_exit(host.status)
            )
        } else {
            format!("whole process died: {}", describe_exit(host.status))
        };
        rows.push(FaultRow {
            fault: name,
            process,
            thread,
            thread_survived,
        });
        std::thread::sleep(Duration::from_millis(1)); // Keep stderr lines of children in order.
    }

    if json {
        shared::report::print_json(&serde_json::json!({ "faults": rows, "python": python }));
        return Ok(());
    }
    if let Some(python) = python {
        print_with_python(&rows, python);
        return Ok(());
    }
    println!(
        "{:<15} | {:<66} | thread (hosted in a child process)",
        "fault", "worker process: the parent sees"
    );
    println!("{}", "-".repeat(136));
    for r in &rows {
        println!("{:<15} | {:<66} | {}", r.fault, r.process, r.thread);
    }
    let survived = rows.iter().filter(|r| r.thread_survived).count();
    println!();
    println!(
        "{} faults in worker processes, all contained; in threads, {survived} of {} contained (the panic).",
        rows.len(),
        rows.len()
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

/// One table, two lines per fault: what Rust's parent saw, then Python's.
fn print_with_python(rows: &[FaultRow], python: &[PythonFaultRow]) {
    println!(
        "{:<15} {:<7} | {:<56} | thread (hosted in a child process)",
        "fault", "", "worker process: the parent sees"
    );
    println!("{}", "-".repeat(140));
    for r in rows {
        println!(
            "{:<15} {:<7} | {:<56} | {}",
            r.fault,
            "Rust",
            truncate(&r.process, 55),
            r.thread
        );
        if let Some(p) = python.iter().find(|p| p.fault == r.fault) {
            let differs = (p.thread_survived != r.thread_survived)
                .then(|| why_python_differs(&p.fault))
                .flatten()
                .map_or(String::new(), |why| format!("  <- {why}"));
            println!(
                "{:<15} {:<7} | {:<56} | {}{differs}",
                "", "Python", p.process, p.thread
            );
        }
    }
    let contained = python.iter().filter(|p| p.process_contained).count();
    println!();
    println!(
        "Worker processes: every fault contained in both languages (Python: {contained} of {}).",
        python.len()
    );
    println!("Threads: an abort or a SIGKILL ends the whole process in both; Python turns deep");
    println!("recursion and sys.exit() into exceptions that end only the thread, Rust does not.");
}
