//! Hello, threads: the whole `std::thread` toolbox in one tour, from `spawn` to `scope`.
//!
//! Course section **8.1 — Threading et multiprocessing** (the `threading.Thread` half).
//!
//! Crates: std only.
//!
//! # Concepts
//! - `thread::spawn` + `JoinHandle::join`: the Rust spelling of `Thread(target=f).start()` /
//!   `.join()`, except that `join` *returns the closure's value* (no shared list to fill in).
//! - `move` closures: a spawned thread may outlive the function that started it, so it must own
//!   what it uses (`'static`). The compiler refuses a borrow instead of letting it dangle.
//! - Thread names and ids (`thread::current()`), and `thread::Builder` for a name and a stack size.
//! - `thread::scope`: threads that are guaranteed to finish before the scope returns, so they may
//!   *borrow* local data: no `Arc`, no `clone`.
//! - A panic in a thread does not crash the process: `join` returns `Err(payload)`.
//! - `available_parallelism()`: how many threads can really run at once (cores, cgroup quota).
//! - When `main` returns, the process ends and every other thread dies where it stands, its
//!   destructors unrun: Python's `daemon=True`. Python *waits* for its default threads; in Rust,
//!   signal a stop and `join` (part 7, each case in a child process; Python's with `--python`,
//!   `python/daemon_threads.py`).
//! - Unlike CPython, there is no GIL: the threads of part 4 really run in parallel
//!   (see `cpu-scaling` for the measurement).
//!
//! # Run
//! ```text
//! cargo run -p examples-threads --bin hello-threads
//! cargo run -p examples-threads --bin hello-threads -- --workers 8 --spawn-count 10000
//! cargo run -p examples-threads --bin hello-threads -- --python    # part 7 in Python too
//! ```
//!
//! # What to observe
//! - The order of the "hello from" lines changes from run to run: the OS scheduler decides.
//!   `join` is what puts order back.
//! - Part 5 prints the default panic message on stderr (`thread 'doomed' panicked at ...`), then
//!   the main thread carries on and reports the payload it got back from `join`.
//! - The cost of spawning and joining a thread: tens of microseconds, several hundred when
//!   every core is busy (figures in the README). Cheap enough for a few hundred long jobs, far
//!   too expensive per tiny task: that is why pools exist (`thread-pool`).
//! - Part 7: the detached ticker prints a few ticks and never its `cleaned up` line; joined, it
//!   cleans up. Python's daemon thread is cut short the same way; its default thread ticks on
//!   after the main thread's last line, until the interpreter has waited for it.
//!
//! # Exercises
//! 1. Remove `move` from the closure in part 2 and read the compiler error: what would go wrong
//!    if it compiled?
//! 2. In part 4, replace `thread::scope` by `thread::spawn`. What do you have to change (hint:
//!    `Arc<[u64]>`), and why does `scope` not need it? Then write part 4 again, at most
//!    `workers` threads, no element dropped, checked:
//!    `cargo run -p shared --bin exercises -- check threads/01`.
//! 3. Set the stack size of part 3 to 16 KiB and make `depth` recurse 100 000 times. What happens,
//!    and why can the main thread not catch it like the panic of part 5?
//! 4. Make the doomed thread of part 5 panic with `std::panic::panic_any(42_u32)` and extend
//!    `panic_message` so it still prints something useful.
//! 5. Run with `--spawn-count 100000` and compare with Python:
//!    `python3 -m timeit -s "import threading" "t=threading.Thread(target=lambda: None); t.start(); t.join()"`.

// === Lesson: copy from here ===

/// The tour, one function per part. Each returns what its threads produced; `main` prints it.
mod tour {
    use std::io;
    use std::thread;
    use std::time::{Duration, Instant};

    /// Part 1: spawn `workers` threads; each returns `(its number, a sum)` through `join`.
    pub fn spawn_and_join(workers: usize) -> thread::Result<Vec<(usize, u64)>> {
        let handles: Vec<thread::JoinHandle<(usize, u64)>> = (0..workers)
            .map(|i| {
                // `move` copies `i` into the closure: each thread gets its own.
                thread::spawn(move || {
                    let me = thread::current();
                    // Unnamed threads have no name; their id is unique for the life of the process.
                    println!(
                        "   hello from worker {i} (name {:?}, id {:?})",
                        me.name(),
                        me.id()
                    );
                    let sum: u64 = (0..=(i as u64 + 1) * 1_000).sum();
                    (i, sum)
                })
            })
            .collect();
        // join() blocks until the thread ends. Err only if the thread panicked (see part 5).
        handles.into_iter().map(|h| h.join()).collect()
    }

    /// Part 2: the thread takes ownership of a `Vec`: the caller can no longer use it.
    pub fn move_ownership() -> thread::Result<String> {
        let words: Vec<String> = "threads own their data"
            .split(' ')
            .map(String::from)
            .collect();
        let handle = thread::spawn(move || {
            // `words` now lives here. Without `move` this would be a borrow of a local of the
            // caller, and `spawn` requires 'static: the thread could outlive its stack frame.
            words.join(" ").to_uppercase()
        });
        // println!("{words:?}"); // <- error[E0382]: borrow of moved value: `words`
        handle.join()
    }

    /// Part 3: a named thread with an 8 MiB stack that recurses deeply; returns its name and depth.
    /// Spawning can fail (thread limit, memory), hence the `io::Result`.
    pub fn named_thread_with_big_stack() -> io::Result<thread::Result<(String, u32)>> {
        let handle = thread::Builder::new()
            .name("deep-recursion".into())
            // Spawned threads get 2 MiB by default (RUST_MIN_STACK overrides it). Ask for more
            // when a thread recurses deeply (parsers, tree walks); less for thousands of threads.
            .stack_size(8 * 1024 * 1024)
            .spawn(|| {
                let name = thread::current().name().unwrap_or("?").to_owned();
                (name, depth(20_000))
            })?;
        Ok(handle.join())
    }

    /// Recurses `n` frames deep and returns how deep it went; keeps a little data on each frame
    /// so the compiler cannot turn the recursion into a loop.
    pub fn depth(n: u32) -> u32 {
        let frame = [n; 8];
        if n == 0 {
            0
        } else {
            1 + depth(std::hint::black_box(frame)[0] - 1)
        }
    }

    /// Part 4: `workers` scoped threads sum the chunks of a borrowed slice: no `Arc`, no copy.
    pub fn scoped_sums(data: &[u64], workers: usize) -> Vec<u64> {
        let chunk = data.len().div_ceil(workers).max(1);
        thread::scope(|s| {
            let handles: Vec<_> = data
                .chunks(chunk)
                .enumerate()
                .map(|(i, part)| {
                    thread::Builder::new()
                        .name(format!("summer-{i}"))
                        // `part` is a `&[u64]` borrowed from `data`: allowed because the scope
                        // joins every thread before `scope` returns, so `data` outlives them.
                        .spawn_scoped(s, move || part.iter().sum::<u64>())
                        .expect("spawning a scoped thread (out of memory or thread limit)")
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("summing a slice cannot panic"))
                .collect()
        })
    }

    /// Part 5: a thread panics; `join` hands the payload back and this thread carries on.
    /// Returns the panic's message, or what the thread returned if it did not panic.
    pub fn panic_caught_at_join() -> io::Result<String> {
        let doomed = thread::Builder::new()
            .name("doomed".into())
            .spawn(|| -> u32 {
                let v: Vec<u32> = Vec::new();
                // An out-of-bounds index panics in the thread that did it, and only that thread.
                v[3]
            })?;
        // Caveat: a panic while holding a `Mutex` "poisons" it (see shared-state). And with
        // `panic = "abort"` in Cargo.toml nothing can be caught.
        Ok(match doomed.join() {
            Ok(v) => format!("unexpected: got {v}"),
            Err(payload) => format!("caught at join: {}", panic_message(&*payload)),
        })
    }

    /// The message of a panic payload: `panic!("literal")` carries a `&str`, `panic!("{x}")`
    /// and runtime errors (index out of bounds) a `String`; anything else (`panic_any`) is opaque.
    pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string panic payload>".to_owned()
        }
    }

    /// Part 6: spawn and join `n` empty threads one after the other; the mean cost of one.
    pub fn spawn_join_cost(n: u32) -> thread::Result<Duration> {
        let start = Instant::now();
        for _ in 0..n {
            thread::spawn(|| {}).join()?;
        }
        Ok(start.elapsed() / n.max(1))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn join_returns_each_threads_value() {
            let results = spawn_and_join(3).unwrap();
            assert_eq!(results, vec![(0, 500_500), (1, 2_001_000), (2, 4_501_500)]);
            assert_eq!(move_ownership().unwrap(), "THREADS OWN THEIR DATA");
            let (name, reached) = named_thread_with_big_stack().unwrap().unwrap();
            assert_eq!((name.as_str(), reached), ("deep-recursion", 20_000));
        }

        #[test]
        fn scoped_threads_sum_like_one_thread() {
            let data: Vec<u64> = (1..=1_000).collect();
            for workers in [1, 3, 7, 2_000] {
                let sums = scoped_sums(&data, workers);
                assert_eq!(sums.iter().sum::<u64>(), 500_500, "{workers} workers");
            }
        }

        #[test]
        fn panic_message_reads_str_and_string_payloads() {
            let lit = thread::spawn(|| panic!("literal")).join().unwrap_err();
            assert_eq!(panic_message(&*lit), "literal");
            let fmt = thread::spawn(|| panic!("formatted {}", 42))
                .join()
                .unwrap_err();
            assert_eq!(panic_message(&*fmt), "formatted 42");
            let other = thread::spawn(|| std::panic::panic_any(7_u8))
                .join()
                .unwrap_err();
            assert_eq!(panic_message(&*other), "<non-string panic payload>");
            assert!(
                panic_caught_at_join()
                    .unwrap()
                    .contains("index out of bounds")
            );
        }

        #[test]
        fn depth_counts_frames() {
            assert_eq!(depth(0), 0);
            assert_eq!(depth(1_000), 1_000);
        }
    }
}

/// Part 7: threads still running when `main` returns. Rust does not wait for them: returning
/// from `main` exits the process, and every other thread stops where it is, its destructors
/// never run (Python's `daemon=True`). To finish them, tell them to stop and `join` them (what
/// Python does for you with its default, non-daemon threads).
mod when_main_returns {
    use std::io::{self, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    /// How `main` ends in [`main_of_the_child`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Ending {
        /// Return with the ticker still running (its `JoinHandle` dropped: detached).
        Detach,
        /// Set the stop flag, then `join`: the ticker finishes its tick and cleans up.
        StopAndJoin,
    }

    /// One line on stdout, flushed at once: the process may end right after it.
    pub fn say(line: &str) {
        let mut out = io::stdout().lock();
        // A closed stdout (the reader went away) is not this demo's problem.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Prints `tick N` every `period`, at most `max_ticks` times or until `stop` is set; then a
    /// guard prints `cleaned up` as it is dropped (files flushed, temporary files removed: the
    /// work a killed thread never does).
    pub fn spawn_ticker(
        period: Duration,
        max_ticks: u32,
        stop: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<u32>> {
        thread::Builder::new().name("ticker".into()).spawn(move || {
            struct Cleanup;
            impl Drop for Cleanup {
                fn drop(&mut self) {
                    say("ticker: cleaned up");
                }
            }
            let _cleanup = Cleanup;
            let mut ticks = 0;
            // Acquire pairs with main's Release store: a stop is seen at the next tick.
            while ticks < max_ticks && !stop.load(Ordering::Acquire) {
                ticks += 1;
                say(&format!("ticker: tick {ticks}"));
                thread::sleep(period);
            }
            ticks
        })
    }

    /// The whole `main` of a program with a background thread: start it, work for `work`, then
    /// end the way `ending` says.
    pub fn main_of_the_child(ending: Ending, period: Duration, work: Duration) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = spawn_ticker(period, 1_000, Arc::clone(&stop))?;
        thread::sleep(work);
        if ending == Ending::StopAndJoin {
            stop.store(true, Ordering::Release);
            let ticks = ticker
                .join()
                .map_err(|_| io::Error::other("the ticker panicked"))?;
            say(&format!("main: joined the ticker after {ticks} ticks"));
        }
        say("main: returning");
        // Detach: `ticker` (the JoinHandle) is dropped here, which does not stop the thread;
        // returning from `main` then ends the process, and the thread with it, mid-sleep.
        Ok(())
    }

    /// What the output of one child says: ticks printed, and whether the cleanup ran.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ChildReport {
        pub ticks: usize,
        pub ticks_after_main_returned: usize,
        pub cleaned_up: bool,
    }

    pub fn read_child_output(stdout: &str) -> ChildReport {
        let mut report = ChildReport {
            ticks: 0,
            ticks_after_main_returned: 0,
            cleaned_up: false,
        };
        let mut main_returned = false;
        for line in stdout.lines() {
            if line.contains(": tick ") {
                report.ticks += 1;
                report.ticks_after_main_returned += usize::from(main_returned);
            } else if line.contains("cleaned up") {
                report.cleaned_up = true;
            } else if line.contains("main: returning") {
                main_returned = true;
            }
        }
        report
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stop_and_join_ends_the_ticker_and_runs_its_cleanup() {
            let stop = Arc::new(AtomicBool::new(false));
            let ticker = spawn_ticker(Duration::from_millis(1), 1_000, Arc::clone(&stop)).unwrap();
            thread::sleep(Duration::from_millis(5));
            stop.store(true, Ordering::Release);
            let ticks = ticker.join().unwrap();
            assert!((1..1_000).contains(&ticks), "{ticks}");
        }

        #[test]
        fn the_report_reads_ticks_order_and_cleanup() {
            let out = "ticker: tick 1\nticker: tick 2\nmain: returning\nticker: tick 3\n\
                       ticker: cleaned up\n";
            let r = read_child_output(out);
            assert_eq!(
                r,
                ChildReport {
                    ticks: 3,
                    ticks_after_main_returned: 1,
                    cleaned_up: true
                }
            );
            assert!(!read_child_output("ticker: tick 1\nmain: returning\n").cleaned_up);
        }
    }
}

// === Harness: not part of the lesson ===

use std::num::NonZeroUsize;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use shared::cli;
use shared::python::Python;
use shared::report::panic_message;
use when_main_returns::{ChildReport, Ending, main_of_the_child, read_child_output};

/// Python's daemon and default threads, run by `--python` (part 7).
const PYTHON_RECIPE: &str = "examples-threads/python/daemon_threads.py";
/// Part 7's child: a tick every 20 ms, `main` ends after 50 ms.
const TICK: Duration = Duration::from_millis(20);
const CHILD_WORK: Duration = Duration::from_millis(50);

/// A guided tour of std::thread: spawn, join, move, names, Builder, scope, panics.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of threads in the spawn/join and scope demos.
    #[arg(long, default_value_t = 4, value_parser = cli::usize_in(1, 256))]
    workers: usize,
    /// How many threads to spawn and join one after the other to measure the cost of a thread.
    #[arg(long, default_value_t = 1000, value_parser = cli::u32_in(1, 1_000_000))]
    spawn_count: u32,
    /// Part 7 in Python too (python/daemon_threads.py): a default thread and a daemon one, still
    /// running when the main thread ends. Needs python3 only.
    #[arg(long)]
    python: bool,
    /// Hidden: be part 7's child process, whose `main` returns with a thread running.
    #[arg(long, hide = true, value_enum)]
    main_returns: Option<ChildEnding>,
}

/// `--main-returns`: how the child's `main` ends.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ChildEnding {
    Detach,
    StopAndJoin,
}

impl ChildEnding {
    fn ending(self) -> Ending {
        match self {
            ChildEnding::Detach => Ending::Detach,
            ChildEnding::StopAndJoin => Ending::StopAndJoin,
        }
    }
}

/// Runs this binary as part 7's child and returns its stdout. The child ends on its own in
/// ~50 ms; a hang guard kills it after 30 s all the same.
fn run_child(ending: &str) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding this binary to re-run it")?;
    let mut child = Command::new(exe)
        .args(["--main-returns", ending])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the child process")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the child process did not end in 30 s");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let out = child
        .wait_with_output()
        .context("reading the child's output")?;
    anyhow::ensure!(out.status.success(), "the child failed: {:?}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One line of part 7's report.
fn describe(who: &str, r: &ChildReport, what_happened: &str) -> String {
    format!(
        "   {who:<44} {} ticks ({} after main returned), cleanup {}: {what_happened}",
        r.ticks,
        r.ticks_after_main_returned,
        if r.cleaned_up { "ran" } else { "NEVER ran" },
    )
}

/// Python's report of one case, from the recipe's JSON.
fn python_case(json: &serde_json::Value) -> anyhow::Result<ChildReport> {
    let count = |key: &str| {
        json[key]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .with_context(|| format!("the recipe's {key:?}: {json}"))
    };
    Ok(ChildReport {
        ticks: count("ticks")?,
        ticks_after_main_returned: count("ticks_after_main_returned")?,
        cleaned_up: json["cleaned_up"]
            .as_bool()
            .with_context(|| format!("the recipe's \"cleaned_up\": {json}"))?,
    })
}

/// Part 7: each ending in a child process, watched from here (and Python's, with `--python`).
fn part_7(python: Option<&Python>) -> anyhow::Result<()> {
    println!("\n== 7. threads still running when main returns (each case in a child process)");
    let detached = read_child_output(&run_child("detach")?);
    println!(
        "{}",
        describe(
            "Rust: main returns, the thread not joined",
            &detached,
            "killed with the process (like daemon=True)"
        )
    );
    let joined = read_child_output(&run_child("stop-and-join")?);
    println!(
        "{}",
        describe(
            "Rust: stop flag + join(), then main returns",
            &joined,
            "finished before main returned"
        )
    );
    if let Some(py) = python {
        let out = py.run_recipe(PYTHON_RECIPE, &[])?;
        let default = python_case(&out.json["default"])?;
        let daemon = python_case(&out.json["daemon"])?;
        println!(
            "{}",
            describe(
                "Python: Thread(daemon=True)",
                &daemon,
                "killed at interpreter exit"
            )
        );
        println!(
            "{}",
            describe(
                "Python: Thread() (non-daemon, the default)",
                &default,
                "the interpreter waited for it"
            )
        );
    }
    println!("   Rust never waits for a thread it was not told to join: keep the JoinHandle,");
    println!("   signal a stop, join (or use thread::scope). A detached thread can die mid-write.");
    Ok(())
}

/// A thread's panic, as an error for `?`.
fn panicked(what: &str) -> impl FnOnce(Box<dyn std::any::Any + Send>) -> anyhow::Error {
    move |p| anyhow::anyhow!("{what} panicked: {}", panic_message(&*p))
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(ending) = args.main_returns {
        // Part 7's child: this `main` is the lesson's, and returning from it ends the process.
        main_of_the_child(ending.ending(), TICK, CHILD_WORK).context("part 7's child")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Find python3 before anything runs: missing, it is a usage error (exit 2) whose message
    // says what to install.
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let workers = args.workers;

    // `available_parallelism` respects CPU affinity and cgroup quotas (containers), unlike a raw
    // core count. It can fail (exotic platforms), so fall back to 1 rather than crash.
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    println!("== 0. available_parallelism() = {cores} (threads that can run at the same instant)");
    println!(
        "   main thread: name = {:?}, id = {:?}\n",
        thread::current().name(),
        thread::current().id()
    );

    println!("== 1. spawn {workers} threads, each returns a value through join()");
    for (i, sum) in tour::spawn_and_join(workers).map_err(panicked("a worker"))? {
        println!(
            "   worker {i} returned sum(0..={}) = {sum}",
            (i + 1) * 1_000
        );
    }

    println!("\n== 2. move: the thread takes ownership of a Vec (the caller can no longer use it)");
    let shout = tour::move_ownership().map_err(panicked("the thread"))?;
    println!("   the thread gave back: {shout:?}");

    println!(
        "\n== 3. thread::Builder: name + stack size (spawn can fail, so it returns io::Result)"
    );
    let (name, reached) = tour::named_thread_with_big_stack()
        .context("spawning the deep-recursion thread")?
        .map_err(panicked("the thread"))?;
    println!("   thread {name:?} recursed {reached} frames deep on its 8 MiB stack");
    println!(
        "   (names appear in panic messages, debuggers, `top -H` and `ps -L`: name your threads)"
    );

    println!("\n== 4. thread::scope: {workers} threads borrow one local Vec, no Arc, no copy");
    let data: Vec<u64> = (1..=1_000_000).collect();
    let partial_sums = tour::scoped_sums(&data, workers);
    let total: u64 = partial_sums.iter().sum();
    anyhow::ensure!(
        total == data.iter().sum::<u64>(),
        "parallel and sequential sums differ"
    );
    println!("   partial sums: {partial_sums:?}");
    println!("   total = {total} (checked against a sequential sum; `data` is still ours)");

    println!("\n== 5. a thread panics: the process survives, join() returns Err(payload)");
    println!(
        "   (the next stderr line is Rust's default panic message, printed by the dying thread)"
    );
    let caught = tour::panic_caught_at_join().context("spawning the doomed thread")?;
    println!("   {caught}");

    let n = args.spawn_count;
    println!("\n== 6. spawn + join {n} empty threads, one after the other");
    let per_thread = tour::spawn_join_cost(n).map_err(panicked("an empty thread"))?;
    println!(
        "   {:.1} µs per thread (an OS thread: a kernel task plus a stack). Fine for a few hundred long",
        per_thread.as_secs_f64() * 1e6
    );
    println!("   jobs; for many small jobs reuse threads with a pool (see thread-pool, rayon).");

    part_7(python.as_ref())?;
    Ok(ExitCode::SUCCESS)
}
