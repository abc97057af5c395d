//! Locks: `Mutex` and its guard's scope, poisoning and recovery, `RwLock` (readers in parallel,
//! the writer waits), parking_lot's versions, and `ReentrantMutex`, Python's `RLock`.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Locks, RLocks").
//!
//! Crates: `parking_lot = "0.13"`
//!
//! Python's `with lock:` releases at the end of the block; Rust's `lock()` returns a *guard*
//! that releases when it goes out of scope, and the data is only reachable through the guard,
//! so "forgot to lock" does not compile. "Forgot to unlock" is rare, not impossible: safe code
//! may `std::mem::forget(guard)`, and the mutex stays locked for good (shown below).
//!
//! # Concepts
//! - Guards and scope: hold the lock for the update, not for the slow work around it.
//! - Poisoning: a std `Mutex` whose holder panicked returns `Err(PoisonError)`; you can still
//!   get the data (`into_inner`) and `clear_poison()` once you have repaired it.
//!   parking_lot has no poisoning (a panic just unlocks), nor has Python (`--python` shows it).
//! - `RwLock`: many readers or one writer. Who goes first when both wait is **not promised** by
//!   std. On Linux its futex `RwLock` prefers writers (new readers wait behind a queued writer);
//!   other platforms and versions may differ. parking_lot's `RwLock` documents a fair policy.
//! - parking_lot: `Mutex<()>` in 1 byte, `const fn new`, timeouts (`try_lock_for`), fair
//!   unlock, upgradable reads; std caught up in speed on Linux (futex).
//! - `ReentrantMutex`: a thread may lock it again while holding it (Python's `RLock`). std's
//!   own, `std::sync::ReentrantLock`, is nightly-only (`reentrant_lock`, rust-lang/rust#121440):
//!   std has used it privately for `Stdout` since 2015, and its public API is still being
//!   settled (it never poisons, unlike `Mutex`; in 2024 two threads could hold it at once,
//!   #123458, fixed by naming owners by `ThreadId`). On stable, parking_lot's. Any re-entrant
//!   lock hands out only `&T` (two live guards on one thread would be two `&mut`): add a
//!   `RefCell` to mutate. Needing one often means a lock is held across a call that should not.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-sync --bin locks
//! cargo run --release -p examples-sync --bin locks -- --threads 8 --json
//! cargo run --release -p examples-sync --bin locks -- --python   # + Python's Lock and RLock
//! ```
//!
//! # What to observe
//! - Slow work inside the lock: the threads run one after another (time ≈ threads × work);
//!   outside: in parallel (time ≈ work). Python's `Lock` shows the same (the sleep frees the GIL).
//! - The poisoned mutex: `lock()` fails, the data is still there, `clear_poison()` repairs it.
//! - RwLock readers: N readers holding the lock for 20 ms finish in about 20 ms together.
//! - A reader arriving while a writer waits: `try_read` is refused on Linux (writer
//!   preference of the futex `RwLock`); std promises no policy, another platform may grant it.
//! - A forgotten guard, and a std `Mutex` locked twice on one thread: `try_lock` answers
//!   `WouldBlock` (`lock()` would block forever); the `ReentrantMutex` just counts the nesting.
//!
//! # Exercises
//! 1. Move the `thread::sleep` of the "inside" case after the guard's scope by returning a value
//!    out of the block. Which data does the slow part really need?
//! 2. Poison a `parking_lot::Mutex` the same way. What state is the data in afterwards?
//! 3. Rewrite `nested_report` without the re-entrant lock: lock once at the top and pass
//!    `&mut Vec<String>` down. Which version would you rather debug?
//! 4. Checked: an `RwLock` whose writers never starve under a stream of readers, on any
//!    platform (`cargo run -p shared --bin exercises -- check sync/06`).

// === Lesson: copy from here ===

/// How long a guard lives: around the update only, or around the slow work too (or forever).
mod guard_scope {
    use std::sync::{Mutex, PoisonError, RwLock, TryLockError};
    use std::thread;
    use std::time::{Duration, Instant};

    /// Every thread appends to a shared log after some slow work. `inside`: the guard is taken
    /// first and held during the work (a common accident: `let log = log.lock()` at the top).
    /// Returns the elapsed time and the log's length.
    pub fn slow_work(threads: u32, work: Duration, inside: bool) -> (Duration, usize) {
        let log = Mutex::new(Vec::new());
        let start = Instant::now();
        thread::scope(|s| {
            for i in 0..threads {
                let log = &log;
                s.spawn(move || {
                    if inside {
                        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                        thread::sleep(work); // everybody else waits for this
                        log.push(i);
                    } else {
                        thread::sleep(work); // no lock needed to do the work
                        log.lock().unwrap_or_else(PoisonError::into_inner).push(i);
                        // the temporary guard is dropped at the end of the statement
                    }
                });
            }
        });
        let elapsed = start.elapsed();
        (
            elapsed,
            log.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        )
    }

    /// RAII unlocks when the guard is dropped, and safe code can prevent the drop:
    /// `std::mem::forget(guard)` (or `Box::leak`, or an `Rc` cycle holding it) leaves the mutex
    /// locked for good. No undefined behaviour, just a lock nobody will ever release: RAII makes
    /// forgetting to unlock unlikely, not impossible. Returns whether `try_lock` then answers
    /// `WouldBlock`.
    pub fn forgotten_guard_keeps_the_lock() -> bool {
        let mutex = Mutex::new(0u32);
        let guard = mutex.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::forget(guard); // no `unsafe`: the unlock in the guard's `Drop` never runs
        matches!(mutex.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// Readers holding a lock for `work` each: a `Mutex` serializes them, a `RwLock` does not.
    pub fn readers(threads: u32, work: Duration, rw: bool) -> Duration {
        let config = vec![1u8; 1024];
        let (mutex, rwlock) = (Mutex::new(config.clone()), RwLock::new(config));
        let start = Instant::now();
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    if rw {
                        let cfg = rwlock.read().unwrap_or_else(PoisonError::into_inner);
                        thread::sleep(work); // a long read: parsing, rendering, ...
                        std::hint::black_box(cfg.len());
                    } else {
                        let cfg = mutex.lock().unwrap_or_else(PoisonError::into_inner);
                        thread::sleep(work);
                        std::hint::black_box(cfg.len());
                    }
                });
            }
        });
        start.elapsed()
    }

    /// ns per lock+increment+unlock, `threads` threads hammering one std or parking_lot mutex.
    pub fn ns_per_lock(threads: u32, ops: u64, parking: bool) -> f64 {
        let std_lock = Mutex::new(0u64);
        let pl_lock = parking_lot::Mutex::new(0u64);
        let start = Instant::now();
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..ops {
                        if parking {
                            *pl_lock.lock() += 1;
                        } else {
                            *std_lock.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                        }
                    }
                });
            }
        });
        start.elapsed().as_nanos() as f64 / (ops * u64::from(threads)).max(1) as f64
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_thread_logs_once_whatever_the_guard_scope() {
            for inside in [true, false] {
                assert_eq!(slow_work(3, Duration::from_millis(1), inside).1, 3);
            }
        }

        #[test]
        fn a_forgotten_guard_keeps_the_mutex_locked() {
            assert!(forgotten_guard_keeps_the_lock());
        }
    }
}

/// When a holder panics (poisoning), and who goes first when readers and a writer meet.
mod poison_and_priority {
    use std::sync::{Mutex, PoisonError, RwLock, TryLockError};
    use std::thread;
    use std::time::Duration;

    /// What the poisoning demo saw.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PoisonRepair {
        /// `lock()` returned `Err(PoisonError)` after the panic.
        pub was_poisoned: bool,
        /// The half-updated data, seen through the error.
        pub seen: Vec<i64>,
        /// `lock()` is `Ok` again after the repair and `clear_poison()`.
        pub usable_after: bool,
    }

    /// A thread panics halfway through a transfer; the next `lock()` reports it, we repair.
    pub fn poison_and_repair() -> PoisonRepair {
        let balances = Mutex::new(vec![100i64, 0]);
        // Silence the default panic message for this intentional panic.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let joined = thread::scope(|s| {
            s.spawn(|| {
                let mut b = balances.lock().unwrap_or_else(PoisonError::into_inner);
                b[0] -= 50; // debit done...
                panic!("network error before the credit"); // ...credit never happens
            })
            .join()
        });
        std::panic::set_hook(hook);
        assert!(joined.is_err(), "the thread was meant to panic");

        let (was_poisoned, seen) = match balances.lock() {
            Ok(b) => (false, b.clone()),
            Err(poisoned) => {
                // The data is still reachable: inspect it, repair it, then clear the flag.
                let mut b = poisoned.into_inner();
                let seen = b.clone();
                b[1] += 50; // repair: complete the transfer (or roll back, as your domain needs)
                drop(b);
                balances.clear_poison();
                (true, seen)
            }
        };
        let usable_after = balances.lock().is_ok();
        PoisonRepair {
            was_poisoned,
            seen,
            usable_after,
        }
    }

    /// A reader arrives while a writer waits behind an active reader: is it refused?
    ///
    /// std promises no policy ("might or might not block concurrent calls to `read`"). On Linux
    /// (and the other futex platforms) std's `RwLock` makes new readers wait while a writer is
    /// queued, and wakes a writer before the readers: writer preference, so a stream of readers
    /// cannot starve a writer there. That is this implementation, not a promise; where it matters,
    /// use `parking_lot::RwLock`, which documents its fair policy.
    pub fn reader_refused_while_writer_waits() -> bool {
        let lock = RwLock::new(0u32);
        let first_reader = lock.read().unwrap_or_else(PoisonError::into_inner);
        thread::scope(|s| {
            let writer = s.spawn(|| {
                *lock.write().unwrap_or_else(PoisonError::into_inner) += 1;
            });
            // Give the writer time to start waiting. (A demo, not a test: the answer depends on
            // the platform's policy, which std does not promise.)
            thread::sleep(Duration::from_millis(50));
            let refused = matches!(lock.try_read(), Err(TryLockError::WouldBlock));
            drop(first_reader);
            writer.join().expect("the writer only increments");
            refused
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_poisoned_mutex_shows_the_half_update_and_recovers() {
            let r = poison_and_repair();
            assert!(r.was_poisoned);
            assert_eq!(
                r.seen,
                vec![50, 0],
                "the debit happened, the credit did not"
            );
            assert!(r.usable_after);
        }
    }
}

/// Python's `RLock`: a lock the holding thread may take again.
mod reentrancy {
    use std::cell::RefCell;
    use std::sync::{Mutex, PoisonError, TryLockError};

    use parking_lot::ReentrantMutex;

    /// A function that locks, calling another that locks the same lock. Returns the depth
    /// reached (3).
    pub fn nested_report(log: &ReentrantMutex<RefCell<Vec<String>>>, depth: usize) -> usize {
        let guard = log.lock(); // re-entrant: fine while this thread already holds it
        guard.borrow_mut().push(format!("depth {depth}"));
        if depth < 3 {
            // The RefCell borrow above has ended; the lock is still held.
            return nested_report(log, depth + 1);
        }
        depth
    }

    /// A std `Mutex` locked twice on one thread: `lock()` would deadlock or panic, so ask with
    /// `try_lock`. Returns whether it answered `WouldBlock`.
    pub fn std_mutex_refuses_a_second_lock() -> bool {
        let std_mutex = Mutex::new(());
        let _held = std_mutex.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(std_mutex.try_lock(), Err(TryLockError::WouldBlock))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reentrant_lock_nests_and_std_refuses() {
            let log = ReentrantMutex::new(RefCell::new(Vec::new()));
            assert_eq!(nested_report(&log, 0), 3);
            assert_eq!(log.lock().borrow().len(), 4);
            assert!(std_mutex_refuses_a_second_lock());
        }
    }
}

// === Harness: not part of the lesson ===

use std::cell::RefCell;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use anyhow::ensure;
use clap::Parser;
use examples_sync::python_peer;
use examples_sync::table::Table;
use guard_scope::{forgotten_guard_keeps_the_lock, ns_per_lock, readers, slow_work};
use parking_lot::ReentrantMutex;
use poison_and_priority::{poison_and_repair, reader_refused_while_writer_waits};
use reentrancy::{nested_report, std_mutex_refuses_a_second_lock};
use serde::Serialize;
use shared::cli;
use shared::report::fmt_duration;

/// Tour of Mutex, poisoning, RwLock, parking_lot and ReentrantMutex, with measurements.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Threads for the measured parts (2 to 64).
    #[arg(long, default_value_t = 4, value_parser = cli::u32_in(2, 64))]
    threads: u32,
    /// Length of the "slow work" (I/O, a computation) each thread does, in milliseconds
    /// (0 to 1000).
    #[arg(long, default_value_t = 20, value_parser = cli::u64_in(0, 1000))]
    work_ms: u64,
    /// Lock/unlock pairs per thread for the raw speed comparison (100 to 10,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = cli::u64_in(100, 10_000_000))]
    ops: u64,
    /// Also run the course's Python (python/locks.py: `Lock`, `RLock`, an exception inside
    /// `with lock:`) with the same parameters, and print both in one table.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Every figure of the tour (the `--json` output).
#[derive(Debug, Default, Serialize)]
struct LocksReport {
    threads: u32,
    work_ms: u64,
    slow_work_inside_s: f64,
    slow_work_outside_s: f64,
    mutex_readers_s: f64,
    rwlock_readers_s: f64,
    poison_recovered: bool,
    /// The half-updated balances seen after the panic.
    poison_seen: Vec<i64>,
    reader_refused_while_writer_waits: bool,
    std_mutex_refuses_second_lock: bool,
    forgotten_guard_keeps_lock: bool,
    std_mutex_ns_per_op: f64,
    parking_lot_mutex_ns_per_op: f64,
    std_mutex_contended_ns_per_op: f64,
    parking_lot_mutex_contended_ns_per_op: f64,
    reentrant_depth_reached: usize,
    /// `--python`: the recipe's JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<serde_json::Value>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work = Duration::from_millis(args.work_ms);
    let quiet = args.json;
    let say = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    let mut r = LocksReport {
        threads: args.threads,
        work_ms: args.work_ms,
        ..Default::default()
    };

    say("1. Guards and scope: slow work inside or outside the critical section");
    let (inside, logged_in) = slow_work(args.threads, work, true);
    let (outside, logged_out) = slow_work(args.threads, work, false);
    ensure!(
        logged_in == args.threads as usize && logged_out == args.threads as usize,
        "a thread's log entry went missing"
    );
    (r.slow_work_inside_s, r.slow_work_outside_s) = (inside.as_secs_f64(), outside.as_secs_f64());

    say("2. Poisoning: a thread panics while holding a std Mutex");
    let repair = poison_and_repair();
    if repair.was_poisoned {
        say(&format!(
            "  lock() -> Err(PoisonError); data seen through it: {:?} (sum {}, should be 100)",
            repair.seen,
            repair.seen.iter().sum::<i64>()
        ));
    }
    say(&format!(
        "  after repair + clear_poison(): lock() is Ok = {}",
        repair.usable_after
    ));
    r.poison_recovered = repair.was_poisoned && repair.usable_after;
    r.poison_seen = repair.seen.clone();

    say("3. RwLock: readers in parallel, the writer waits");
    r.mutex_readers_s = readers(args.threads, work, false).as_secs_f64();
    r.rwlock_readers_s = readers(args.threads, work, true).as_secs_f64();
    r.reader_refused_while_writer_waits = reader_refused_while_writer_waits();
    say(&format!(
        "  try_read() while a writer waits behind a reader: {}",
        if r.reader_refused_while_writer_waits {
            "WouldBlock (this platform's RwLock prefers writers: Linux's futex one does; std promises no policy)"
        } else {
            "granted (readers first here: a stream of readers can starve the writer; std promises no policy)"
        }
    ));

    say("4. std vs parking_lot: lock + increment + unlock");
    r.std_mutex_ns_per_op = ns_per_lock(1, args.ops, false);
    r.parking_lot_mutex_ns_per_op = ns_per_lock(1, args.ops, true);
    r.std_mutex_contended_ns_per_op = ns_per_lock(args.threads, args.ops / 4, false);
    r.parking_lot_mutex_contended_ns_per_op = ns_per_lock(args.threads, args.ops / 4, true);
    say(&format!(
        "  size_of Mutex<()>: std {} bytes, parking_lot {} byte(s); RwLock<()>: std {}, parking_lot {}",
        size_of::<Mutex<()>>(),
        size_of::<parking_lot::Mutex<()>>(),
        size_of::<RwLock<()>>(),
        size_of::<parking_lot::RwLock<()>>()
    ));

    r.forgotten_guard_keeps_lock = forgotten_guard_keeps_the_lock();
    say(&format!(
        "  std::mem::forget(guard), then try_lock -> {}",
        if r.forgotten_guard_keeps_lock {
            "WouldBlock: locked for good, in safe code"
        } else {
            "Ok?!"
        }
    ));

    say("5. Re-entrancy: Python's RLock");
    r.std_mutex_refuses_second_lock = std_mutex_refuses_a_second_lock();
    say(&format!(
        "  std Mutex locked twice on one thread: try_lock -> {} (lock() would deadlock or panic)",
        if r.std_mutex_refuses_second_lock {
            "WouldBlock"
        } else {
            "Ok?!"
        }
    ));
    let log = ReentrantMutex::new(RefCell::new(Vec::new()));
    r.reentrant_depth_reached = nested_report(&log, 0);
    say(&format!(
        "  parking_lot::ReentrantMutex, locked at each of 4 nested calls: {:?}",
        log.lock().borrow()
    ));

    if args.python {
        let py = python_peer::run_recipe(
            "locks",
            &[
                "--threads".into(),
                args.threads.to_string(),
                "--work-ms".into(),
                args.work_ms.to_string(),
                "--ops".into(),
                args.ops.to_string(),
            ],
        )?;
        r.python = Some(py);
    }
    let agreement = r.python.as_ref().map(|py| same_results(&r, py));

    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!();
        print_table(&args, &r);
        if let Some(py) = &r.python {
            println!();
            print_python_table(&args, &r, py);
        }
    }
    if let Some(Err(why)) = agreement {
        anyhow::bail!("the Python and Rust results differ: {why}");
    }
    Ok(())
}

/// What must agree between the languages: every log entry kept, the same half-update seen after
/// a crash inside the lock, a plain lock refusing its holder, a forgotten lock staying locked,
/// and the re-entrant lock nesting as deep.
fn same_results(r: &LocksReport, py: &serde_json::Value) -> anyhow::Result<()> {
    let n = u64::from(r.threads);
    ensure!(
        py["logged"] == serde_json::json!([n, n]),
        "Python's log kept {} entries (expected {n} twice)",
        py["logged"]
    );
    ensure!(
        py["crash_left_balances"] == serde_json::json!(r.poison_seen),
        "after the crash, Rust saw {:?}, Python {}",
        r.poison_seen,
        py["crash_left_balances"]
    );
    for (key, rust) in [
        ("second_lock_refused", r.std_mutex_refuses_second_lock),
        ("forgotten_release_keeps_lock", r.forgotten_guard_keeps_lock),
    ] {
        ensure!(py[key] == rust, "{key}: Rust {rust}, Python {}", py[key]);
    }
    ensure!(
        python_peer::u64_field(py, "reentrant_depth_reached")? == r.reentrant_depth_reached as u64,
        "the re-entrant locks nested to different depths"
    );
    Ok(())
}

/// Rust and Python side by side: the measured rows, then what each language does.
fn print_python_table(args: &Args, r: &LocksReport, py: &serde_json::Value) {
    let n = args.threads;
    let d = |s: f64| fmt_duration(Duration::from_secs_f64(s));
    let num = |k: &str| py[k].as_f64().unwrap_or(f64::NAN);
    let mut table = Table::new(["", "Rust", "Python", "Python / Rust"]);
    for (name, rust, python) in [
        (
            format!("{n} threads, slow work inside the lock"),
            r.slow_work_inside_s,
            num("slow_work_inside_s"),
        ),
        (
            format!("{n} threads, slow work outside the lock"),
            r.slow_work_outside_s,
            num("slow_work_outside_s"),
        ),
        (
            format!("{n} readers, Mutex / Lock"),
            r.mutex_readers_s,
            num("mutex_readers_s"),
        ),
    ] {
        table.row([name, d(rust), d(python), python_peer::slower(python, rust)]);
    }
    table.row([
        format!("{n} readers, RwLock"),
        d(r.rwlock_readers_s),
        "no RwLock in the stdlib".into(),
        "-".into(),
    ]);
    let ns = |v: f64| format!("{v:.1} ns/op");
    for (name, rust, python) in [
        (
            "lock + increment + unlock, 1 thread".to_string(),
            r.std_mutex_ns_per_op,
            num("lock_ns_per_op"),
        ),
        (
            format!("lock + increment + unlock, {n} threads"),
            r.std_mutex_contended_ns_per_op,
            num("lock_contended_ns_per_op"),
        ),
    ] {
        table.row([
            name,
            ns(rust),
            ns(python),
            python_peer::slower(python, rust),
        ]);
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    table.row([
        "a holder crashes mid-update".to_string(),
        format!("poisoned: lock() -> Err, saw {:?}", r.poison_seen),
        format!("no error, no warning, saw {}", py["crash_left_balances"]),
        "-".into(),
    ]);
    table.row([
        "same thread locks twice: refused".to_string(),
        yes_no(r.std_mutex_refuses_second_lock).into(),
        yes_no(py["second_lock_refused"] == true).into(),
        "-".into(),
    ]);
    table.row([
        "forgotten unlock keeps it locked".to_string(),
        format!(
            "{} (mem::forget(guard))",
            yes_no(r.forgotten_guard_keeps_lock)
        ),
        format!(
            "{} (no release())",
            yes_no(py["forgotten_release_keeps_lock"] == true)
        ),
        "-".into(),
    ]);
    table.row([
        "re-entrant lock, depth reached".to_string(),
        format!("{} (ReentrantMutex)", r.reentrant_depth_reached),
        format!("{} (RLock)", py["reentrant_depth_reached"]),
        "-".into(),
    ]);
    println!(
        "Rust (std Mutex) against {} (threading.Lock):",
        py["interpreter"].as_str().unwrap_or("Python")
    );
    table.print();
}

fn print_table(args: &Args, r: &LocksReport) {
    let mut table = Table::new(["measurement", "time", "note"]);
    let d = |s: f64| fmt_duration(Duration::from_secs_f64(s));
    let n = args.threads;
    table.row([
        format!("{n} threads, slow work inside the lock"),
        d(r.slow_work_inside_s),
        format!("~{n} x {} ms: serialized", args.work_ms),
    ]);
    table.row([
        format!("{n} threads, slow work outside the lock"),
        d(r.slow_work_outside_s),
        format!("~{} ms: parallel", args.work_ms),
    ]);
    table.row([
        format!("{n} readers, Mutex"),
        d(r.mutex_readers_s),
        "one at a time".into(),
    ]);
    table.row([
        format!("{n} readers, RwLock"),
        d(r.rwlock_readers_s),
        "all at once".into(),
    ]);
    let ns = |v: f64| format!("{v:.1} ns/op");
    for (name, v, note) in [
        (
            "std Mutex, 1 thread".to_string(),
            r.std_mutex_ns_per_op,
            "uncontended",
        ),
        (
            "parking_lot Mutex, 1 thread".to_string(),
            r.parking_lot_mutex_ns_per_op,
            "uncontended",
        ),
        (
            format!("std Mutex, {n} threads"),
            r.std_mutex_contended_ns_per_op,
            "contended",
        ),
        (
            format!("parking_lot Mutex, {n} threads"),
            r.parking_lot_mutex_contended_ns_per_op,
            "contended",
        ),
    ] {
        table.row([name, ns(v), note.to_string()]);
    }
    table.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--threads", "0"],
            ["--threads", "1"],
            ["--ops", "0"],
            ["--ops", "18446744073709551615"],
            ["--work-ms", "18446744073709551615"],
            ["--work-ms", "-1"],
        ] {
            let err = Args::try_parse_from(["locks", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
