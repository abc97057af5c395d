//! Deadlock: two threads take two locks in opposite order and block each other forever, on
//! every run. A watchdog detects it, prints who holds and who waits for which lock, and the
//! program exits non-zero instead of hanging. Then the three classic fixes, side by side.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Interblocage").
//!
//! Scenarios (`--scenario`):
//! - `transfer`: the course's "thread 1 has lock A and wants B, thread 2 has B and wants A", as
//!   two bank transfers (A→B and B→A) that each lock the source account, then the destination.
//! - `philosophers`: Dijkstra's dining philosophers: N threads around a table, one fork (lock)
//!   between neighbours, each takes its left fork then its right one. A cycle of N.
//!
//! A deadlock needs an unlucky interleaving: each thread holding its first lock when the others
//! ask for it. Left to chance, it shows once in a thousand runs and never in the debugger. Here
//! the first round is *forced*: each thread takes its first lock, then waits at a checkpoint
//! until every other thread has at least *tried* to take its own first lock. With opposite
//! orders, all of them hold one lock when they ask for the second: a deadlock on every run. With
//! a consistent order, the second thread is already blocked on the first lock, so the checkpoint
//! lets the holder through: the fixes face the very same schedule and complete.
//!
//! Detection: every lock is a `parking_lot::Mutex`, built with the `deadlock_detection` feature.
//! Every 50 ms the main thread calls `parking_lot::deadlock::check_deadlock()`, which finds
//! cycles of parked threads. The report names the threads through a small status board that
//! each thread updates ("waits for X", "holds X"): what a Java thread dump or
//! `gdb`'s `thread apply all bt` would give you. A hang with no cycle (a lost wake-up, a
//! channel nobody writes to) is caught by the `--stall-timeout` instead.
//!
//! # Concepts
//! - The four Coffman conditions: mutual exclusion, hold and wait, no preemption, circular wait.
//!   Each fix removes one: **ordering** (every thread takes locks in one global order: no
//!   circular wait), **try-lock** (give back the first lock when the second is busy: no hold
//!   and wait, at the price of retries and possible livelock, so back off randomly),
//!   **single-lock** (one coarse lock around everything: no nesting at all, no parallelism
//!   either).
//! - Detecting deadlocks at run time (parking_lot's cycle detector, timeouts) versus preventing
//!   them by design (lock ordering, one lock, message passing).
//! - Why deadlocks are "hard to reproduce", and how forcing an interleaving makes them easy.
//!
//! # Run
//! ```text
//! cargo run -p examples-sync --bin deadlock                     # deadlocks, reports, exits 2, then the fixes
//! cargo run -p examples-sync --bin deadlock -- --fix ordering   # exits 0
//! cargo run -p examples-sync --bin deadlock -- --fix try-lock
//! cargo run -p examples-sync --bin deadlock -- --fix single-lock
//! cargo run -p examples-sync --bin deadlock -- --scenario philosophers --seats 5
//! cargo run -p examples-sync --bin deadlock -- --scenario philosophers --fix ordering --json
//! ```
//!
//! # What to observe
//! - Without `--fix`: "DEADLOCK" within about 100 ms, every run, with a cycle such as
//!   `transfer A->B holds [account A], waits for account B` /
//!   `transfer B->A holds [account B], waits for account A`; exit status 2
//!   (`echo $?`). The stuck threads stay parked; the process carries on to show the fixes.
//! - `ordering` and `single-lock` never retry; `try-lock` reports how many times a thread had to
//!   give its first lock back. `single-lock` is simplest, but only one transfer or one meal runs
//!   at a time, whatever the number of threads.
//! - The invariant line: money is conserved (the sum of balances never changes), every
//!   philosopher ate every meal.
//!
//! # Exercises
//! 1. Remove the forced checkpoint (make `checkpoint` return at once) and run the unfixed
//!    version 100 times in a shell loop. How many runs deadlock? That is why such bugs survive
//!    testing.
//! 2. The "butler" fix for the philosophers: a semaphore (`examples_sync::semaphore`) that lets at
//!    most N-1 of them sit down. Which Coffman condition does it remove?
//! 3. In the try-lock fix, remove the random back-off. Run with `--seats 5`: does it livelock
//!    (retries explode, no progress)?
//! 4. Replace `parking_lot::Mutex` by `std::sync::Mutex` in the unfixed version. What happens
//!    now, and which of the two detectors still fires?

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex as StdMutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use examples_sync::table::{Table, fmt_duration};
use parking_lot::Mutex;
use serde::Serialize;

/// Two locks taken in opposite order: a deadlock on every run, detected and reported; then the fixes.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which deadlock to stage.
    #[arg(long, value_enum, default_value_t = Scenario::Transfer)]
    scenario: Scenario,
    /// Run only this fix (exit 0 when it completes). Without it: the deadlock, then every fix.
    #[arg(long, value_enum)]
    fix: Option<Fix>,
    /// Philosophers (and forks) around the table, for `--scenario philosophers`.
    #[arg(long, default_value_t = 5)]
    seats: usize,
    /// Rounds per thread: transfers, or meals per philosopher.
    #[arg(long, default_value_t = 2_000)]
    rounds: u64,
    /// Give up (exit 1) if the threads neither finish nor deadlock within this many seconds.
    #[arg(long, default_value_t = 20)]
    stall_timeout: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    Transfer,
    Philosophers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Fix {
    /// Take locks in one global order (lowest index first).
    Ordering,
    /// Take the first lock, `try_lock` the second; on failure release, back off, retry.
    TryLock,
    /// One coarse lock around every two-lock operation.
    SingleLock,
}

impl Fix {
    const ALL: [Fix; 3] = [Fix::Ordering, Fix::TryLock, Fix::SingleLock];
    fn name(self) -> &'static str {
        match self {
            Fix::Ordering => "ordering",
            Fix::TryLock => "try-lock",
            Fix::SingleLock => "single-lock",
        }
    }
}

/// The stage: lock names, thread names, and the pair of locks each thread needs, in the order
/// it naturally takes them.
struct Stage {
    locks: Vec<String>,
    threads: Vec<(String, usize, usize)>,
    initial: i64,
}

impl Stage {
    fn new(scenario: Scenario, seats: usize) -> Self {
        match scenario {
            Scenario::Transfer => Stage {
                locks: vec!["account A".into(), "account B".into()],
                threads: vec![
                    ("transfer A->B".into(), 0, 1),
                    ("transfer B->A".into(), 1, 0),
                ],
                initial: 1_000_000,
            },
            // Philosopher i: left fork i, then right fork i+1 (mod n).
            Scenario::Philosophers => Stage {
                locks: (0..seats).map(|i| format!("fork {i}")).collect(),
                threads: (0..seats)
                    .map(|i| (format!("philosopher {i}"), i, (i + 1) % seats))
                    .collect(),
                initial: 0,
            },
        }
    }
}

/// What each thread is doing, for the deadlock report. A std `Mutex`, held for a few
/// instructions at a time, so it is never part of the deadlock it describes.
#[derive(Default)]
struct Board {
    state: StdMutex<BoardState>,
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
    /// Whether every thread other than `me` is where the forced interleaving needs it: holding
    /// a lock, or asking for a lock that somebody holds (so it is, or will be, blocked on it).
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
    fn new(n: usize) -> Self {
        Board {
            state: StdMutex::new(BoardState {
                first_round_pending: n,
                ..Default::default()
            }),
            changed: Condvar::new(),
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn update(&self, me: usize, f: impl FnOnce(&mut ThreadStatus)) {
        let mut s = self.lock();
        f(s.threads.entry(me).or_default());
        if s.first_round_pending > 0 {
            drop(s);
            self.changed.notify_all();
        }
    }
    fn register(&self, me: usize, name: &str) {
        self.lock().names.insert(thread::current().id(), me);
        self.update(me, |t| t.name = name.to_string());
    }
    fn waiting(&self, me: usize, lock: usize) {
        self.update(me, |t| t.waits_for = Some(lock));
    }
    fn acquired(&self, me: usize, lock: usize) {
        self.update(me, |t| {
            t.waits_for = None;
            t.holds.push(lock);
        });
    }
    fn released(&self, me: usize, lock: usize) {
        self.update(me, |t| t.holds.retain(|&l| l != lock));
    }
    fn first_round_done(&self, me: usize) {
        self.lock().first_round_pending -= 1;
        self.update(me, |t| t.first_round_done = true);
    }
    /// The forced interleaving: wait until every other thread holds a lock or is blocked on one.
    fn checkpoint(&self, me: usize, n: usize) {
        let guard = self.lock();
        let _guard = self
            .changed
            .wait_while(guard, |s| !s.others_settled(me, n))
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// The outcome of one run.
#[derive(Debug, Serialize)]
struct RunReport {
    scenario: Scenario,
    fix: Option<Fix>,
    deadlocked: bool,
    /// The threads in the cycle, as "name holds [..], waits for ..".
    cycle: Vec<String>,
    completed_rounds: u64,
    expected_rounds: u64,
    retries: u64,
    /// Money conserved / every meal eaten; `None` when the run deadlocked.
    invariant_ok: Option<bool>,
    elapsed_s: f64,
}

/// Runs the stage with `fix` (or none) and watches it. Deadlocked threads are left parked
/// forever (parking_lot's detector removes them from their queues): we detach them.
fn run(args: &Args, fix: Option<Fix>) -> anyhow::Result<RunReport> {
    let stage = Stage::new(args.scenario, args.seats);
    ensure!(
        stage.locks.len() >= 2,
        "a deadlock needs at least 2 locks (--seats >= 2)"
    );
    // Leaked on purpose: after a deadlock, the stuck threads keep borrowing the locks forever.
    let locks: &'static [Mutex<i64>] = Vec::leak(
        stage
            .locks
            .iter()
            .map(|_| Mutex::new(stage.initial))
            .collect(),
    );
    let big_lock: &'static Mutex<()> = Box::leak(Box::new(Mutex::new(())));
    let n = stage.threads.len();
    let board: &'static Board = Box::leak(Box::new(Board::new(n)));
    // The coarse lock of the single-lock fix, shown on the board as one more lock.
    let big = stage.locks.len();
    let mut lock_names = stage.locks.clone();
    lock_names.push(match args.scenario {
        Scenario::Transfer => "bank lock".into(),
        Scenario::Philosophers => "table lock".into(),
    });
    let retries: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let completed: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let rounds = args.rounds;
    let scenario = args.scenario;

    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for (me, (name, first, second)) in stage.threads.iter().cloned().enumerate() {
        let handle = thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                board.register(me, &name);
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
                        let all = big_lock.lock();
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
                            match locks[second].try_lock() {
                                Some(b) => b,
                                None => {
                                    // Give the first lock back so the other thread can finish,
                                    // then wait a random moment: two threads retrying in
                                    // lockstep would collide forever (livelock).
                                    drop(a);
                                    board.released(me, first);
                                    retries.fetch_add(1, Ordering::Relaxed);
                                    rng ^= rng << 13;
                                    rng ^= rng >> 7;
                                    rng ^= rng << 17;
                                    thread::sleep(Duration::from_micros(rng % 200));
                                    continue;
                                }
                            }
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
                    completed.fetch_add(1, Ordering::Relaxed);
                }
                Instant::now()
            })
            .context("spawning a worker thread")?;
        handles.push(handle);
    }

    // The watchdog: poll for completion, a deadlock cycle, or a stall.
    let stall = Duration::from_secs(args.stall_timeout);
    let mut cycle = Vec::new();
    let deadlocked = loop {
        thread::sleep(Duration::from_millis(50));
        if handles.iter().all(|h| h.is_finished()) {
            break false;
        }
        let deadlocks = parking_lot::deadlock::check_deadlock();
        if !deadlocks.is_empty() {
            let state = board.lock();
            let mut stuck: Vec<usize> = deadlocks
                .iter()
                .flatten()
                .filter_map(|dead| state.names.get(&dead.thread_id()).copied())
                .collect();
            stuck.sort_unstable();
            for t in stuck.iter().filter_map(|i| state.threads.get(i)) {
                let holds: Vec<&str> = t.holds.iter().map(|&l| lock_names[l].as_str()).collect();
                let waits = t.waits_for.map_or("?", |l| lock_names[l].as_str());
                cycle.push(format!(
                    "{} holds [{}], waits for {}",
                    t.name,
                    holds.join(", "),
                    waits
                ));
            }
            break true;
        }
        if start.elapsed() > stall {
            anyhow::bail!(
                "no progress and no deadlock cycle after {stall:?}: a hang parking_lot cannot see"
            );
        }
    };
    let mut elapsed = start.elapsed();
    let mut invariant_ok = None;
    if !deadlocked {
        let mut last = start;
        for h in handles {
            last = last.max(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?,
            );
        }
        elapsed = last - start;
        let values: Vec<i64> = locks.iter().map(|m| *m.lock()).collect();
        invariant_ok = Some(match args.scenario {
            Scenario::Transfer => values.iter().sum::<i64>() == stage.initial * 2,
            Scenario::Philosophers => values.iter().all(|&uses| uses == 2 * rounds as i64),
        });
    }
    Ok(RunReport {
        scenario: args.scenario,
        fix,
        deadlocked,
        cycle,
        completed_rounds: completed.load(Ordering::Relaxed),
        expected_rounds: rounds * n as u64,
        retries: retries.load(Ordering::Relaxed),
        invariant_ok,
        elapsed_s: elapsed.as_secs_f64(),
    })
}

fn print_deadlock(report: &RunReport) {
    println!(
        "DEADLOCK detected by parking_lot::deadlock::check_deadlock after {} ({} threads in the cycle):",
        fmt_duration(Duration::from_secs_f64(report.elapsed_s)),
        report.cycle.len()
    );
    for line in &report.cycle {
        println!("  {line}");
    }
    println!(
        "  completed {} of {} rounds before it stuck\n",
        report.completed_rounds, report.expected_rounds
    );
}

fn row(table: &mut Table, r: &RunReport) {
    table.row([
        r.fix.map_or("none (opposite order)", Fix::name).to_string(),
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
        fmt_duration(Duration::from_secs_f64(r.elapsed_s)),
    ]);
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let fixes: Vec<Option<Fix>> = match args.fix {
        Some(fix) => vec![Some(fix)],
        None => std::iter::once(None).chain(Fix::ALL.map(Some)).collect(),
    };
    let mut reports = Vec::new();
    for fix in fixes {
        let report = run(&args, fix)?;
        if report.deadlocked && !args.json {
            print_deadlock(&report);
            eprintln!("error: deadlock (the fixes follow; exit status 2)\n");
        }
        reports.push(report);
    }
    let any_deadlock = reports.iter().any(|r| r.deadlocked);
    let all_ok = reports.iter().all(|r| r.invariant_ok != Some(false));

    if args.json {
        println!(
            "{}",
            serde_json::json!({ "scenario": args.scenario, "runs": reports })
        );
    } else {
        let mut table = Table::new([
            "fix",
            "outcome",
            "rounds done",
            "retries",
            "invariant",
            "time",
        ]);
        for r in &reports {
            row(&mut table, r);
        }
        println!(
            "{} ({} threads, {} rounds each, first round forced into the worst interleaving):\n",
            match args.scenario {
                Scenario::Transfer => "two transfers, two accounts",
                Scenario::Philosophers => "dining philosophers",
            },
            reports
                .first()
                .map_or(0, |r| r.expected_rounds / args.rounds.max(1)),
            args.rounds
        );
        table.print();
    }
    ensure!(all_ok, "a fix broke the invariant");
    // Deadlocked threads are still parked; returning from main ends the process anyway.
    Ok(if any_deadlock {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
