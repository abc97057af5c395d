//! Starvation: greedy threads that re-lock at once keep a polite thread out of an unfair lock;
//! a fair lock (parking_lot's `unlock_fair`, or a ticket lock built here) lets it in.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Famine").
//!
//! The setup: `--greedy` threads loop on "lock, work 20 µs, unlock, lock again"; one polite
//! thread thinks for 20 µs *outside* the lock, then asks for it, `--polite-rounds` times. The run
//! ends when the polite thread is done or after `--limit-ms`, whichever comes first.
//!
//! Why the polite thread starves on an unfair lock: when a greedy thread unlocks, the kernel
//! wakes the sleeping polite thread, which takes microseconds to get a CPU. The greedy thread
//! is already running and re-locks within nanoseconds. The polite thread finds the lock taken
//! and goes back to sleep. Nothing is broken, every thread is "making progress", except one.
//!
//! | lock | policy on unlock | overtakes per wait |
//! | --- | --- | --- |
//! | `std::sync::Mutex` | whoever grabs it first (barging) | unbounded |
//! | `parking_lot::Mutex` | barging, plus a fair hand-over every ~0.5 ms ("eventual fairness") | unbounded, waits bounded in time |
//! | `parking_lot` + `unlock_fair` | hands the lock to the longest-*parked* waiter | bounded once the waiter has parked |
//! | `TicketLock` (`src/ticket.rs`) | strict FIFO by ticket number, taken on arrival | at most one per other thread, provably |
//!
//! Fairness is not free: each fair hand-over forces a context switch where an unfair lock lets
//! the running thread carry on, so total throughput (the greedy column) drops. That is why std
//! and parking_lot are unfair by default: use fairness where a waiter must not wait unboundedly.
//!
//! # Concepts
//! - Starvation vs deadlock: everyone else progresses, one thread never does.
//! - Lock fairness (barging vs hand-over), parking_lot's eventual fairness, FIFO ticket locks.
//! - Measuring it: per-thread acquisition counts, the worst wait, and "overtakes" (how many
//!   acquisitions by others happened while the polite thread was waiting).
//!
//! # Run
//! ```text
//! cargo run --release -p examples-sync --bin starvation
//! cargo run --release -p examples-sync --bin starvation -- --greedy 3 --limit-ms 2000
//! cargo run --release -p examples-sync --bin starvation -- --locks ticket,unlock-fair --json
//! ```
//!
//! # What to observe
//! - `std::sync::Mutex` and `parking_lot::Mutex`: in its worst wait the polite thread is
//!   overtaken hundreds of times (150–900 on the project's 2-core box) and waits tens of
//!   milliseconds for a lock that is held 20 µs at a time. Its share of acquisitions is a
//!   fraction of the greedy threads'. Run it again: the numbers change, the pattern does not.
//! - The ticket lock: never more than `--greedy` overtakes, on any machine, under any load: the
//!   polite thread gets at least one acquisition in `greedy + 1` while it waits. Its worst
//!   wait is a few critical sections, unless the OS deschedules it (then *everyone* waits for
//!   it: the price of strict FIFO, called a lock convoy).
//! - `unlock_fair`: much better than plain unlocks on a quiet machine, but a waiter is only in
//!   the queue once it has parked; while it spins (or is descheduled) before parking, greedy
//!   threads still overtake it. On a loaded box the overtake count shows it.
//!
//! # Exercises
//! 1. Add a `thread::yield_now()` after the greedy unlock. Does `std::sync::Mutex` become fair?
//!    Is it reliable on a busy machine?
//! 2. Give the polite thread a `--think-us 0`: it is now greedy too. What happens to the shares?
//! 3. Readers starving a writer: replace the lock by a `std::sync::RwLock`, make the greedy
//!    threads readers that overlap, and the polite one a writer. Then try `parking_lot::RwLock`.
//! 4. Make the ticket lock spin (an `AtomicU64` pair, no `Condvar`) and run with `--greedy 4` on
//!    2 cores. Why does it collapse?

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex as StdMutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::{Parser, ValueEnum};
use examples_sync::table::{Table, fmt_duration};
use examples_sync::ticket::TicketLock;
use serde::Serialize;

/// Greedy threads against one polite thread, on unfair and fair locks.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Threads that re-lock immediately after unlocking.
    #[arg(long, default_value_t = 2)]
    greedy: usize,
    /// Times the polite thread wants the lock.
    #[arg(long, default_value_t = 200)]
    polite_rounds: u64,
    /// Work done while holding the lock, in microseconds (every thread).
    #[arg(long, default_value_t = 20)]
    hold_us: u64,
    /// Work the polite thread does outside the lock between two requests, in microseconds.
    #[arg(long, default_value_t = 20)]
    think_us: u64,
    /// Stop each lock's run after this long, even if the polite thread is not done.
    #[arg(long, default_value_t = 1000)]
    limit_ms: u64,
    /// Locks to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = LockKind::ALL)]
    locks: Vec<LockKind>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum LockKind {
    /// `std::sync::Mutex`: unfair.
    Std,
    /// `parking_lot::Mutex`: unfair with eventual fairness.
    ParkingLot,
    /// `parking_lot::Mutex` released with `MutexGuard::unlock_fair`.
    UnlockFair,
    /// The FIFO ticket lock of `examples_sync::ticket`.
    Ticket,
}

impl LockKind {
    const ALL: [LockKind; 4] = [
        LockKind::Std,
        LockKind::ParkingLot,
        LockKind::UnlockFair,
        LockKind::Ticket,
    ];
    fn name(self) -> &'static str {
        match self {
            LockKind::Std => "std::sync::Mutex",
            LockKind::ParkingLot => "parking_lot::Mutex",
            LockKind::UnlockFair => "parking_lot + unlock_fair",
            LockKind::Ticket => "TicketLock (FIFO)",
        }
    }
}

/// The four locks behind one interface: run `f` while holding the lock.
enum AnyLock {
    Std(StdMutex<()>),
    ParkingLot(parking_lot::Mutex<()>),
    UnlockFair(parking_lot::Mutex<()>),
    Ticket(TicketLock<()>),
}

impl AnyLock {
    fn new(kind: LockKind) -> Self {
        match kind {
            LockKind::Std => AnyLock::Std(StdMutex::new(())),
            LockKind::ParkingLot => AnyLock::ParkingLot(parking_lot::Mutex::new(())),
            LockKind::UnlockFair => AnyLock::UnlockFair(parking_lot::Mutex::new(())),
            LockKind::Ticket => AnyLock::Ticket(TicketLock::new(())),
        }
    }

    /// Runs `f` under the lock. The ticket lock also returns how many tickets were ahead of
    /// ours: the exact number of acquisitions that overtook this one.
    fn with(&self, f: impl FnOnce()) -> Option<u64> {
        match self {
            AnyLock::Std(m) => {
                let _guard = m.lock().unwrap_or_else(PoisonError::into_inner);
                f();
                None
            }
            AnyLock::ParkingLot(m) => {
                let _guard = m.lock();
                f();
                None
            }
            AnyLock::UnlockFair(m) => {
                let guard = m.lock();
                f();
                // Hand the lock to the longest-*parked* waiter instead of leaving it up for
                // grabs. (A waiter still spinning before it parks is not in the queue yet.)
                parking_lot::MutexGuard::unlock_fair(guard);
                None
            }
            AnyLock::Ticket(m) => {
                let guard = m.lock();
                f();
                Some(guard.ahead())
            }
        }
    }
}

/// Busy work for `d` (the CPU stays busy, like real work would keep it).
fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[derive(Debug, Serialize)]
struct LockReport {
    lock: LockKind,
    name: &'static str,
    greedy_per_thread: Vec<u64>,
    polite_acquisitions: u64,
    polite_target: u64,
    /// Polite acquisitions / all acquisitions.
    polite_share: f64,
    polite_worst_wait_s: f64,
    polite_mean_wait_s: f64,
    /// Most acquisitions by greedy threads during one polite wait.
    max_overtakes: u64,
    elapsed_s: f64,
    starved: bool,
}

fn run(kind: LockKind, args: &Args) -> anyhow::Result<LockReport> {
    let lock = AnyLock::new(kind);
    let stop = AtomicBool::new(false);
    // Incremented inside the critical section by every thread: a global acquisition clock.
    let acquisitions = AtomicU64::new(0);
    let hold = Duration::from_micros(args.hold_us);
    let think = Duration::from_micros(args.think_us);
    let limit = Duration::from_millis(args.limit_ms);
    let start = Instant::now();

    type Polite = (u64, Duration, Duration, u64);
    let (greedy, polite) = thread::scope(|s| -> anyhow::Result<(Vec<u64>, Polite)> {
        let greedy: Vec<_> = (0..args.greedy)
            .map(|i| {
                thread::Builder::new()
                    .name(format!("greedy-{i}"))
                    .spawn_scoped(s, || {
                        let mut mine = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            // Unlock, then lock again at once: nothing in between gives way.
                            lock.with(|| {
                                acquisitions.fetch_add(1, Ordering::Relaxed);
                                spin_for(hold);
                            });
                            mine += 1;
                        }
                        mine
                    })
            })
            .collect::<Result<_, _>>()
            .context("spawning greedy threads")?;

        let polite = thread::Builder::new()
            .name("polite".into())
            .spawn_scoped(s, || {
                let (mut done, mut worst, mut total_wait, mut max_overtakes) =
                    (0u64, Duration::ZERO, Duration::ZERO, 0u64);
                while done < args.polite_rounds && start.elapsed() < limit {
                    spin_for(think);
                    let asked = Instant::now();
                    let before = acquisitions.load(Ordering::Relaxed);
                    let mut overtakes = 0;
                    let ahead = lock.with(|| {
                        let now = acquisitions.fetch_add(1, Ordering::Relaxed);
                        overtakes = now - before;
                        spin_for(hold);
                    });
                    // Exact for the ticket lock; for the others, the acquisitions counted between
                    // our request and our turn (which includes the wait, nothing else).
                    let overtakes = ahead.unwrap_or(overtakes);
                    let waited = asked.elapsed().saturating_sub(hold);
                    worst = worst.max(waited);
                    total_wait += waited;
                    max_overtakes = max_overtakes.max(overtakes);
                    done += 1;
                }
                // The polite thread decides when the run ends.
                stop.store(true, Ordering::Relaxed);
                (done, worst, total_wait, max_overtakes)
            })
            .context("spawning the polite thread")?;

        let polite = polite
            .join()
            .map_err(|_| anyhow::anyhow!("polite thread panicked"))?;
        let mut per_thread = Vec::new();
        for g in greedy {
            per_thread.push(
                g.join()
                    .map_err(|_| anyhow::anyhow!("greedy thread panicked"))?,
            );
        }
        Ok((per_thread, polite))
    })?;
    let (done, worst, total_wait, max_overtakes) = polite;
    let greedy_total: u64 = greedy.iter().sum();
    Ok(LockReport {
        lock: kind,
        name: kind.name(),
        greedy_per_thread: greedy,
        polite_acquisitions: done,
        polite_target: args.polite_rounds,
        polite_share: done as f64 / (done + greedy_total).max(1) as f64,
        polite_worst_wait_s: worst.as_secs_f64(),
        polite_mean_wait_s: total_wait.as_secs_f64() / done.max(1) as f64,
        max_overtakes,
        elapsed_s: start.elapsed().as_secs_f64(),
        starved: done < args.polite_rounds,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.greedy >= 1, "--greedy must be at least 1");
    ensure!(
        args.polite_rounds >= 1,
        "--polite-rounds must be at least 1"
    );
    if !args.json {
        println!(
            "{} greedy threads + 1 polite thread; hold {} µs, polite thinks {} µs; polite wants \
             {} acquisitions; limit {} ms per lock\n",
            args.greedy, args.hold_us, args.think_us, args.polite_rounds, args.limit_ms
        );
    }
    let reports: Vec<LockReport> = args
        .locks
        .iter()
        .map(|&kind| run(kind, &args))
        .collect::<anyhow::Result<_>>()?;

    if args.json {
        let out = serde_json::json!({
            "greedy": args.greedy,
            "hold_us": args.hold_us,
            "think_us": args.think_us,
            "polite_rounds": args.polite_rounds,
            "limit_ms": args.limit_ms,
            "locks": reports,
        });
        println!("{out}");
        return Ok(());
    }
    let mut table = Table::new([
        "lock",
        "greedy acq. (each)",
        "polite acq.",
        "polite share",
        "worst wait",
        "mean wait",
        "max overtakes",
        "time",
        "verdict",
    ]);
    for r in &reports {
        table.row([
            r.name.to_string(),
            r.greedy_per_thread
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
            format!("{}/{}", r.polite_acquisitions, r.polite_target),
            format!("{:.2} %", 100.0 * r.polite_share),
            fmt_duration(Duration::from_secs_f64(r.polite_worst_wait_s)),
            fmt_duration(Duration::from_secs_f64(r.polite_mean_wait_s)),
            r.max_overtakes.to_string(),
            fmt_duration(Duration::from_secs_f64(r.elapsed_s)),
            if r.starved {
                format!(
                    "STARVED ({} of {} rounds)",
                    r.polite_acquisitions, r.polite_target
                )
            } else if r.max_overtakes <= args.greedy as u64 {
                format!("fair: <= {} overtakes", args.greedy)
            } else {
                format!("overtaken {}x in one wait", r.max_overtakes)
            },
        ]);
    }
    table.print();
    println!(
        "\n'max overtakes': the most greedy acquisitions during one polite wait. A FIFO lock \
         bounds it by the number of greedy threads ({}), so while it waits the polite thread \
         gets at least 1 acquisition in {}; an unfair lock bounds it by nothing. Waits and \
         shares depend on the machine's load; the overtake bound does not.",
        args.greedy,
        args.greedy + 1
    );
    Ok(())
}
