//! Deadlock: two threads take two locks in opposite order and block each other forever, on
//! every run. A watchdog detects it, prints who holds and who waits for which lock, and the
//! program exits 2 instead of hanging. Then the three classic fixes, side by side.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Interblocage").
//!
//! Crates: `parking_lot = { version = "0.13", features = ["deadlock_detection"] }`, `anyhow = "1"`
//!
//! Scenarios: `transfer`, two bank transfers (A→B and B→A) that each lock the source account,
//! then the destination; `philosophers`, Dijkstra's dining philosophers (N threads, one fork
//! between neighbours, left fork first: a cycle of N). The first round is *forced* into the
//! fatal interleaving: each thread takes its first lock, then waits at a checkpoint until every
//! other thread holds a lock or is blocked on one. Left to chance, the deadlock would show once
//! in a thousand runs; forced, it shows every time, and the fixes face the very same schedule.
//! Detection: parking_lot's `deadlock::check_deadlock()` finds cycles of parked threads; a small
//! status board names them. A hang with no cycle is caught by `--stall-timeout` (exit 1).
//!
//! # Concepts
//! - The four Coffman conditions: mutual exclusion, hold and wait, no preemption, circular wait.
//!   **ordering** (one global lock order) removes circular wait; **try-lock** (give the first
//!   lock back when the second is busy, back off randomly) removes hold and wait, at the price
//!   of retries; **single-lock** (one coarse lock) removes nesting, and parallelism with it.
//! - Detecting deadlocks at run time (a cycle detector, timeouts) versus preventing them by
//!   design (lock ordering, one lock, message passing).
//! - Why deadlocks are "hard to reproduce", and how forcing an interleaving makes them easy.
//!
//! # Run
//! ```text
//! cargo run -p examples-sync --bin deadlock                     # deadlocks, reports, exits 2, then the fixes
//! cargo run -p examples-sync --bin deadlock -- --fix ordering   # exits 0
//! cargo run -p examples-sync --bin deadlock -- --fix try-lock
//! cargo run -p examples-sync --bin deadlock -- --scenario philosophers --seats 5
//! cargo run -p examples-sync --bin deadlock -- --scenario philosophers --fix ordering --json
//! cargo run -p examples-sync --bin deadlock -- --python   # + the course's Python, same table
//! ```
//!
//! # What to observe
//! - Without `--fix`: "DEADLOCK" within a fraction of a second, every run, with the cycle
//!   (`transfer A->B holds [account A], waits for account B`, and the reverse); exit status 2.
//!   The stuck threads stay parked; the process carries on to show the fixes.
//! - `ordering` and `single-lock` never retry; `try-lock` reports how often a thread gave its
//!   first lock back. `single-lock` is simplest, but runs one transfer or one meal at a time.
//! - The invariant column: money is conserved, every philosopher ate every meal.
//! - `--python` (`python/deadlock.py`): `threading.Lock` deadlocks the same way, on the same
//!   forced schedule, with the same cycle. Python has no cycle detector: its watchdog walks the
//!   wait-for graph the threads report. Each fix completes the same rounds.
//!
//! # Exercises
//! 1. Make `checkpoint` return at once and run the unfixed version 100 times in a shell loop.
//!    How many runs deadlock? That is why such bugs survive testing.
//! 2. The "butler" fix for the philosophers: a semaphore (`crate::semaphore`, src/semaphore.rs)
//!    that lets at most N-1 of them sit down. Which Coffman condition does it remove?
//! 3. In the try-lock fix, remove the random back-off. Run with `--seats 5`: does it livelock?
//! 4. Replace `parking_lot::Mutex` by `std::sync::Mutex` in the unfixed version. What happens
//!    now, and which of the two detectors still fires?
//! 5. Checked: transfers between N accounts by lock ordering, self-transfers and an auditor
//!    included (`cargo run -p shared --bin exercises -- check sync/01`: loom and a watchdog).

// === Lesson: copy from here ===

/// Who holds and who waits for which lock (what a thread dump would show), and the checkpoint
/// that forces the fatal interleaving.
mod board {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
    use std::thread::{self, ThreadId};

    /// What each thread is doing. A std `Mutex` held for a few instructions at a time, so it is
    /// never part of the deadlock it describes.
    #[derive(Default)]
    pub struct Board {
        state: Mutex<BoardState>,
        /// Signalled on every change while some thread is still in its first round (the forced
        /// checkpoint waits on it).
        changed: Condvar,
    }

    #[derive(Default)]
    struct BoardState {
        threads: BTreeMap<usize, ThreadStatus>,
        names: HashMap<ThreadId, usize>,
        /// Threads that have not finished their first round yet.
        first_round_pending: usize,
    }

    #[derive(Default, Clone)]
    struct ThreadStatus {
        name: String,
        holds: Vec<usize>,
        waits_for: Option<usize>,
        first_round_done: bool,
    }

    impl BoardState {
        /// Whether every thread other than `me` is where the forced interleaving needs it:
        /// holding a lock, or asking for a lock that somebody holds (so it is, or will be,
        /// blocked on it).
        fn others_settled(&self, me: usize, n: usize) -> bool {
            let held = |lock: usize| self.threads.values().any(|t| t.holds.contains(&lock));
            self.threads.len() == n
                && self
                    .threads
                    .iter()
                    .filter(|(id, _)| **id != me)
                    .all(|(_, t)| {
                        t.first_round_done || !t.holds.is_empty() || t.waits_for.is_some_and(held)
                    })
        }
    }

    impl Board {
        /// A board for `n` threads.
        pub fn new(n: usize) -> Self {
            Board {
                state: Mutex::new(BoardState {
                    first_round_pending: n,
                    ..Default::default()
                }),
                changed: Condvar::new(),
            }
        }
        fn state(&self) -> MutexGuard<'_, BoardState> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }
        fn update(&self, me: usize, f: impl FnOnce(&mut ThreadStatus)) {
            let mut s = self.state();
            f(s.threads.entry(me).or_default());
            if s.first_round_pending > 0 {
                drop(s);
                self.changed.notify_all();
            }
        }
        pub fn register(&self, me: usize, name: &str) {
            self.state().names.insert(thread::current().id(), me);
            self.update(me, |t| t.name = name.to_string());
        }
        pub fn waiting(&self, me: usize, lock: usize) {
            self.update(me, |t| t.waits_for = Some(lock));
        }
        pub fn acquired(&self, me: usize, lock: usize) {
            self.update(me, |t| {
                t.waits_for = None;
                t.holds.push(lock);
            });
        }
        pub fn released(&self, me: usize, lock: usize) {
            self.update(me, |t| t.holds.retain(|&l| l != lock));
        }
        pub fn first_round_done(&self, me: usize) {
            let mut s = self.state();
            s.first_round_pending = s.first_round_pending.saturating_sub(1);
            drop(s);
            self.update(me, |t| t.first_round_done = true);
        }
        /// The forced interleaving: wait until every other thread holds a lock or is blocked on
        /// one.
        pub fn checkpoint(&self, me: usize, n: usize) {
            let guard = self.state();
            let _guard = self
                .changed
                .wait_while(guard, |s| !s.others_settled(me, n))
                .unwrap_or_else(PoisonError::into_inner);
        }
        /// "name holds [..], waits for .." for each of the `stuck` threads, in thread order.
        pub fn describe(&self, stuck: &[ThreadId], lock_names: &[String]) -> Vec<String> {
            let state = self.state();
            let mut ids: Vec<usize> = stuck
                .iter()
                .filter_map(|t| state.names.get(t).copied())
                .collect();
            ids.sort_unstable();
            let name = |l: usize| lock_names.get(l).map_or("?", String::as_str);
            ids.iter()
                .filter_map(|i| state.threads.get(i))
                .map(|t| {
                    let holds: Vec<&str> = t.holds.iter().map(|&l| name(l)).collect();
                    let waits = t.waits_for.map_or("?", name);
                    format!("{} holds [{}], waits for {waits}", t.name, holds.join(", "))
                })
                .collect()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn describes_who_holds_and_who_waits() {
            let board = Board::new(1);
            board.register(0, "transfer A->B");
            board.waiting(0, 0);
            board.acquired(0, 0);
            board.waiting(0, 1);
            let names = ["account A".to_string(), "account B".to_string()];
            assert_eq!(
                board.describe(&[thread::current().id()], &names),
                ["transfer A->B holds [account A], waits for account B"]
            );
            board.released(0, 0);
            board.first_round_done(0);
            // Alone at the table, a thread is always settled: the checkpoint lets it through.
            board.checkpoint(0, 1);
        }
    }
}

/// Two locks taken in opposite order, and the three fixes: what each thread does.
mod transfers {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::board::Board;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Scenario {
        /// Two transfers, A→B and B→A, each locking its source account, then its destination.
        Transfer,
        /// N philosophers, each taking the fork on its left, then the one on its right.
        Philosophers,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fix {
        /// Take locks in one global order (lowest index first).
        Ordering,
        /// Take the first lock, `try_lock` the second; on failure release, back off, retry.
        TryLock,
        /// One coarse lock around every two-lock operation.
        SingleLock,
    }

    impl Fix {
        pub const ALL: [Fix; 3] = [Fix::Ordering, Fix::TryLock, Fix::SingleLock];
        pub fn name(self) -> &'static str {
            match self {
                Fix::Ordering => "ordering",
                Fix::TryLock => "try-lock",
                Fix::SingleLock => "single-lock",
            }
        }
    }

    /// What the threads share. Leaked on purpose: after a deadlock the stuck threads keep
    /// borrowing it forever (parking_lot's detector does not wake them), so we detach them.
    pub struct Shared {
        /// One lock per account or fork, plus the coarse lock of the single-lock fix, last.
        pub locks: Vec<Mutex<i64>>,
        pub board: Board,
        /// Times a thread gave its first lock back (the try-lock fix).
        pub retries: AtomicU64,
        /// Rounds finished, all threads together.
        pub completed: AtomicU64,
    }

    /// One thread's work: `rounds` times, take both locks and update both values.
    pub fn take_rounds(
        shared: &Shared,
        scenario: Scenario,
        fix: Option<Fix>,
        me: usize,
        (first, second): (usize, usize),
        rounds: u64,
        n: usize,
    ) {
        let (board, locks) = (&shared.board, &shared.locks);
        let big = locks.len() - 1; // the coarse lock
        let (first, second) = match fix {
            // Every thread agrees on one order: the lower index first.
            Some(Fix::Ordering) => (first.min(second), first.max(second)),
            _ => (first, second),
        };
        let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (me as u64 + 1); // xorshift state
        let mut forced = true; // the first attempt of the first round only
        for round in 0..rounds {
            let coarse = (fix == Some(Fix::SingleLock)).then(|| {
                board.waiting(me, big);
                let all = locks[big].lock();
                board.acquired(me, big);
                all
            });
            loop {
                board.waiting(me, first);
                let mut a = locks[first].lock();
                board.acquired(me, first);
                if forced {
                    board.checkpoint(me, n);
                    forced = false;
                }
                board.waiting(me, second);
                let mut b = if fix == Some(Fix::TryLock) {
                    let Some(b) = locks[second].try_lock() else {
                        // Give the first lock back so the other thread can finish, then wait a
                        // random moment: two threads retrying in lockstep would collide forever
                        // (livelock).
                        drop(a);
                        board.released(me, first);
                        shared.retries.fetch_add(1, Ordering::Relaxed);
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        thread::sleep(Duration::from_micros(rng % 200));
                        continue;
                    };
                    b
                } else {
                    locks[second].lock()
                };
                board.acquired(me, second);
                match scenario {
                    // Move one unit of money: the total must never change.
                    Scenario::Transfer => {
                        *a -= 1;
                        *b += 1;
                    }
                    // Eat: both forks record one more use.
                    Scenario::Philosophers => {
                        *a += 1;
                        *b += 1;
                    }
                }
                drop(b);
                board.released(me, second);
                drop(a);
                board.released(me, first);
                break;
            }
            if let Some(coarse) = coarse {
                drop(coarse);
                board.released(me, big);
            }
            if round == 0 {
                board.first_round_done(me);
            }
            shared.completed.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn one_thread_alone_moves_money_and_conserves_it() {
            let shared = Shared {
                locks: (0..3).map(|_| Mutex::new(100)).collect(),
                board: Board::new(1),
                retries: AtomicU64::new(0),
                completed: AtomicU64::new(0),
            };
            shared.board.register(0, "alone");
            take_rounds(&shared, Scenario::Transfer, None, 0, (1, 0), 10, 1);
            assert_eq!(*shared.locks[0].lock(), 110);
            assert_eq!(*shared.locks[1].lock(), 90);
            assert_eq!(shared.completed.load(Ordering::Relaxed), 10);
        }
    }
}

/// The watchdog: run the threads, and detect the deadlock instead of hanging.
mod watchdog {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail, ensure};
    use parking_lot::Mutex;

    use super::board::Board;
    use super::transfers::{Fix, Scenario, Shared, take_rounds};

    /// What one watched run did.
    #[derive(Debug)]
    pub struct DeadlockRun {
        pub fix: Option<Fix>,
        pub deadlocked: bool,
        /// The threads in the cycle, as "name holds [..], waits for ..".
        pub cycle: Vec<String>,
        pub completed_rounds: u64,
        pub expected_rounds: u64,
        pub retries: u64,
        /// Money conserved / every meal eaten; `None` when the run deadlocked.
        pub invariant_ok: Option<bool>,
        pub elapsed: Duration,
    }

    /// Runs `scenario` with `fix` (or none) for `rounds` rounds per thread, and watches it:
    /// returns when every thread finished or a deadlock cycle was found; an error after
    /// `stall_timeout` without either (a hang the cycle detector cannot see).
    pub fn run_watched(
        scenario: Scenario,
        seats: usize,
        rounds: u64,
        fix: Option<Fix>,
        stall_timeout: Duration,
    ) -> anyhow::Result<DeadlockRun> {
        // (thread name, first lock, second lock), in the order each thread naturally takes them.
        let (mut lock_names, threads, initial): (Vec<String>, Vec<(String, usize, usize)>, i64) =
            match scenario {
                Scenario::Transfer => (
                    vec!["account A".into(), "account B".into(), "bank lock".into()],
                    vec![
                        ("transfer A->B".into(), 0, 1),
                        ("transfer B->A".into(), 1, 0),
                    ],
                    1_000_000,
                ),
                Scenario::Philosophers => (
                    (0..seats).map(|i| format!("fork {i}")).collect(),
                    (0..seats)
                        .map(|i| (format!("philosopher {i}"), i, (i + 1) % seats))
                        .collect(),
                    0,
                ),
            };
        if scenario == Scenario::Philosophers {
            lock_names.push("table lock".into());
        }
        ensure!(
            lock_names.len() >= 3,
            "a deadlock needs at least 2 locks (2 seats or more)"
        );
        let n = threads.len();
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            locks: lock_names.iter().map(|_| Mutex::new(initial)).collect(),
            board: Board::new(n),
            retries: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        }));

        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for (me, (name, first, second)) in threads.into_iter().enumerate() {
            let handle = thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    shared.board.register(me, &name);
                    take_rounds(shared, scenario, fix, me, (first, second), rounds, n);
                    Instant::now()
                })
                .context("spawning a worker thread")?;
            handles.push(handle);
        }

        // The watchdog: poll for completion, a deadlock cycle, or a stall.
        let mut cycle = Vec::new();
        let deadlocked = loop {
            thread::sleep(Duration::from_millis(50));
            if handles.iter().all(|h| h.is_finished()) {
                break false;
            }
            let deadlocks = parking_lot::deadlock::check_deadlock();
            if !deadlocks.is_empty() {
                let stuck: Vec<thread::ThreadId> =
                    deadlocks.iter().flatten().map(|d| d.thread_id()).collect();
                cycle = shared.board.describe(&stuck, &lock_names);
                break true;
            }
            if start.elapsed() > stall_timeout {
                bail!(
                    "no progress and no deadlock cycle after {stall_timeout:?}: a hang the \
                     cycle detector cannot see"
                );
            }
        };
        let mut elapsed = start.elapsed();
        let mut invariant_ok = None;
        if !deadlocked {
            let mut last = start;
            for h in handles {
                let done = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
                last = last.max(done);
            }
            elapsed = last - start;
            // The accounts or forks: every lock but the coarse one.
            let values: Vec<i64> = shared.locks[..shared.locks.len() - 1]
                .iter()
                .map(|m| *m.lock())
                .collect();
            invariant_ok = Some(match scenario {
                Scenario::Transfer => values.iter().sum::<i64>() == initial * 2,
                Scenario::Philosophers => values.iter().all(|&uses| uses as u64 == 2 * rounds),
            });
        }
        Ok(DeadlockRun {
            fix,
            deadlocked,
            cycle,
            completed_rounds: shared.completed.load(Ordering::Relaxed),
            expected_rounds: rounds * n as u64,
            retries: shared.retries.load(Ordering::Relaxed),
            invariant_ok,
            elapsed,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const PATIENCE: Duration = Duration::from_secs(60);

        #[test]
        fn opposite_orders_deadlock_and_the_cycle_is_named() {
            let run = run_watched(Scenario::Transfer, 2, 10, None, PATIENCE).unwrap();
            assert!(run.deadlocked);
            assert_eq!(
                run.cycle,
                [
                    "transfer A->B holds [account A], waits for account B",
                    "transfer B->A holds [account B], waits for account A"
                ]
            );
            assert_eq!(run.invariant_ok, None);
        }

        #[test]
        fn every_fix_completes_and_keeps_the_invariant() {
            for scenario in [Scenario::Transfer, Scenario::Philosophers] {
                for fix in Fix::ALL {
                    let run = run_watched(scenario, 3, 50, Some(fix), PATIENCE).unwrap();
                    assert!(!run.deadlocked, "{scenario:?} {fix:?}");
                    assert_eq!(run.invariant_ok, Some(true), "{scenario:?} {fix:?}");
                    assert_eq!(run.completed_rounds, run.expected_rounds);
                }
            }
        }
    }
}

// === Harness: not part of the lesson ===

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use examples_sync::python_peer;
use examples_sync::table::Table;
use shared::cli;
use shared::report::fmt_duration;
use transfers::{Fix, Scenario};
use watchdog::{DeadlockRun, run_watched};

/// Two locks taken in opposite order: a deadlock on every run, detected and reported; then the fixes.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which deadlock to stage.
    #[arg(long, value_enum, default_value_t = ScenarioFlag::Transfer)]
    scenario: ScenarioFlag,
    /// Run only this fix (exit 0 when it completes). Without it: the deadlock, then every fix.
    #[arg(long, value_enum)]
    fix: Option<FixFlag>,
    /// Philosophers (and forks) around the table, for `--scenario philosophers` (2 to 64).
    #[arg(long, default_value_t = 5, value_parser = cli::usize_in(2, 64))]
    seats: usize,
    /// Rounds per thread: transfers, or meals per philosopher (1 to 1,000,000).
    #[arg(long, default_value_t = 2_000, value_parser = cli::u64_in(1, 1_000_000))]
    rounds: u64,
    /// Give up (exit 1) if the threads neither finish nor deadlock within this many seconds
    /// (1 to 3600).
    #[arg(long, default_value_t = 20, value_parser = cli::u64_in(1, 3600))]
    stall_timeout: u64,
    /// Also run the course's Python (python/deadlock.py: `threading.Lock`, the same forced
    /// interleaving, a wait-for-graph watchdog, the same fixes) with the same parameters.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--scenario`, as clap parses it (the lesson's enum stays free of clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioFlag {
    Transfer,
    Philosophers,
}

/// `--fix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FixFlag {
    /// Take locks in one global order (lowest index first).
    Ordering,
    /// Take the first lock, `try_lock` the second; on failure release, back off, retry.
    TryLock,
    /// One coarse lock around every two-lock operation.
    SingleLock,
}

impl ScenarioFlag {
    fn scenario(self) -> Scenario {
        match self {
            ScenarioFlag::Transfer => Scenario::Transfer,
            ScenarioFlag::Philosophers => Scenario::Philosophers,
        }
    }
    fn name(self) -> &'static str {
        match self {
            ScenarioFlag::Transfer => "transfer",
            ScenarioFlag::Philosophers => "philosophers",
        }
    }
}

impl FixFlag {
    fn name(self) -> &'static str {
        self.fix().name()
    }
    fn fix(self) -> Fix {
        match self {
            FixFlag::Ordering => Fix::Ordering,
            FixFlag::TryLock => Fix::TryLock,
            FixFlag::SingleLock => Fix::SingleLock,
        }
    }
}

/// One run as JSON (the keys the end-to-end tests and scripts read).
fn run_json(scenario: ScenarioFlag, r: &DeadlockRun) -> serde_json::Value {
    serde_json::json!({
        "scenario": scenario.name(),
        "fix": r.fix.map(Fix::name),
        "deadlocked": r.deadlocked,
        "cycle": r.cycle,
        "completed_rounds": r.completed_rounds,
        "expected_rounds": r.expected_rounds,
        "retries": r.retries,
        "invariant_ok": r.invariant_ok,
        "elapsed_s": r.elapsed.as_secs_f64(),
    })
}

fn print_deadlock(r: &DeadlockRun) {
    println!(
        "DEADLOCK detected by parking_lot::deadlock::check_deadlock after {} ({} threads in the cycle):",
        fmt_duration(r.elapsed),
        r.cycle.len()
    );
    for line in &r.cycle {
        println!("  {line}");
    }
    println!(
        "  completed {} of {} rounds before it stuck\n",
        r.completed_rounds, r.expected_rounds
    );
}

/// One row; `lang` prefixes the fix's name when both languages share the table.
fn row(table: &mut Table, lang: Option<&str>, r: &DeadlockRun, ratio: String) {
    let fix = r.fix.map_or("none (opposite order)", Fix::name);
    table.row([
        lang.map_or_else(|| fix.to_string(), |lang| format!("{lang}: {fix}")),
        if r.deadlocked {
            "DEADLOCK".into()
        } else {
            "completed".into()
        },
        format!("{}/{}", r.completed_rounds, r.expected_rounds),
        r.retries.to_string(),
        match r.invariant_ok {
            None => "-".into(),
            Some(true) => "ok".into(),
            Some(false) => "BROKEN".into(),
        },
        fmt_duration(r.elapsed),
        ratio,
    ]);
}

/// The Python recipe's runs, in the Rust report's shape.
fn python_runs(json: &serde_json::Value) -> anyhow::Result<Vec<DeadlockRun>> {
    let runs = json["runs"]
        .as_array()
        .context("the Python recipe's JSON has no `runs`")?;
    runs.iter()
        .map(|r| {
            let fix = match r["fix"].as_str() {
                None => None,
                Some("ordering") => Some(Fix::Ordering),
                Some("try-lock") => Some(Fix::TryLock),
                Some("single-lock") => Some(Fix::SingleLock),
                Some(other) => anyhow::bail!("the Python recipe ran an unknown fix {other:?}"),
            };
            Ok(DeadlockRun {
                fix,
                deadlocked: r["deadlocked"].as_bool().context("deadlocked")?,
                cycle: serde_json::from_value(r["cycle"].clone()).context("cycle")?,
                completed_rounds: python_peer::u64_field(r, "completed_rounds")?,
                expected_rounds: python_peer::u64_field(r, "expected_rounds")?,
                retries: python_peer::u64_field(r, "retries")?,
                invariant_ok: r["invariant_ok"].as_bool(),
                elapsed: Duration::from_secs_f64(python_peer::f64_field(r, "elapsed_s")?),
            })
        })
        .collect()
}

/// The results that must agree: the same runs, the same deadlock with the same cycle, and the
/// same completed work with the invariant kept.
fn same_results(rust: &[DeadlockRun], python: &[DeadlockRun]) -> Result<(), String> {
    if rust.len() != python.len() {
        return Err(format!(
            "{} Rust runs, {} Python runs",
            rust.len(),
            python.len()
        ));
    }
    for (r, p) in rust.iter().zip(python) {
        let name = r.fix.map_or("no fix", Fix::name);
        if r.fix != p.fix || r.deadlocked != p.deadlocked || r.cycle != p.cycle {
            return Err(format!(
                "{name}: Rust deadlocked={} {:?}, Python deadlocked={} {:?}",
                r.deadlocked, r.cycle, p.deadlocked, p.cycle
            ));
        }
        if !r.deadlocked
            && (r.invariant_ok != p.invariant_ok || r.completed_rounds != p.completed_rounds)
        {
            return Err(format!(
                "{name}: Rust {}/{} rounds, invariant {:?}; Python {}/{} rounds, invariant {:?}",
                r.completed_rounds,
                r.expected_rounds,
                r.invariant_ok,
                p.completed_rounds,
                p.expected_rounds,
                p.invariant_ok
            ));
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let fixes: Vec<Option<Fix>> = match args.fix {
        Some(fix) => vec![Some(fix.fix())],
        None => std::iter::once(None).chain(Fix::ALL.map(Some)).collect(),
    };
    let stall = Duration::from_secs(args.stall_timeout);
    let mut runs = Vec::new();
    for fix in fixes {
        let run = run_watched(
            args.scenario.scenario(),
            args.seats,
            args.rounds,
            fix,
            stall,
        )?;
        if run.deadlocked && !args.json {
            print_deadlock(&run);
            eprintln!("error: deadlock (the fixes follow; exit status 2)\n");
        }
        runs.push(run);
    }
    let any_deadlock = runs.iter().any(|r| r.deadlocked);
    let all_ok = runs.iter().all(|r| r.invariant_ok != Some(false));

    let python = if args.python {
        let mut py_args = vec![
            "--scenario".to_string(),
            args.scenario.name().into(),
            "--seats".into(),
            args.seats.to_string(),
            "--rounds".into(),
            args.rounds.to_string(),
            "--stall-timeout".into(),
            args.stall_timeout.to_string(),
        ];
        if let Some(fix) = args.fix {
            py_args.extend(["--fix".to_string(), fix.name().into()]);
        }
        let json = python_peer::run_recipe("deadlock", &py_args)?;
        let py_runs = python_runs(&json)?;
        Some((json, py_runs))
    } else {
        None
    };
    let agreement = python.as_ref().map(|(_, py)| same_results(&runs, py));

    if args.json {
        let runs: Vec<_> = runs.iter().map(|r| run_json(args.scenario, r)).collect();
        let mut out = serde_json::json!({ "scenario": args.scenario.name(), "runs": runs });
        if let Some((json, _)) = &python {
            out["python"] = json.clone();
            out["python_agrees"] = agreement.as_ref().is_some_and(Result::is_ok).into();
        }
        println!("{out}");
    } else {
        let ratio_column = python.is_some().then_some("Python / Rust");
        let mut table = Table::new(
            [
                "fix",
                "outcome",
                "rounds done",
                "retries",
                "invariant",
                "time",
            ]
            .into_iter()
            .chain(ratio_column),
        );
        for r in &runs {
            row(
                &mut table,
                python.is_some().then_some("Rust"),
                r,
                String::new(),
            );
        }
        if let Some((json, py)) = &python {
            for (p, r) in py.iter().zip(&runs) {
                let ratio = if p.deadlocked {
                    "-".into()
                } else {
                    python_peer::slower(p.elapsed.as_secs_f64(), r.elapsed.as_secs_f64())
                };
                row(&mut table, Some("Python"), p, ratio);
            }
            if let Some(cycle) = py.iter().find(|p| p.deadlocked).map(|p| &p.cycle) {
                println!(
                    "Python ({}): the watchdog found the cycle in the wait-for graph:",
                    json["interpreter"].as_str().unwrap_or("?")
                );
                for line in cycle {
                    println!("  {line}");
                }
                println!();
            }
        }
        println!(
            "{} ({} threads, {} rounds each, first round forced into the worst interleaving):\n",
            match args.scenario {
                ScenarioFlag::Transfer => "two transfers, two accounts",
                ScenarioFlag::Philosophers => "dining philosophers",
            },
            runs.first().map_or(0, |r| r.expected_rounds / args.rounds),
            args.rounds
        );
        table.print();
    }
    ensure!(all_ok, "a fix broke the invariant");
    if let Some(Err(why)) = agreement {
        anyhow::bail!("the Python and Rust results differ: {why}");
    }
    // Deadlocked threads are still parked; returning from main ends the process anyway.
    Ok(if any_deadlock {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--seats", "1"],
            ["--seats", "0"],
            ["--rounds", "0"],
            ["--rounds", "18446744073709551615"],
            ["--stall-timeout", "0"],
            ["--stall-timeout", "1e30"],
        ] {
            let err = Args::try_parse_from(["deadlock", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
