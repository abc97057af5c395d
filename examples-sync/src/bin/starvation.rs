//! Starvation: greedy threads that re-lock at once keep a polite thread out of an unfair lock;
//! a fair lock (parking_lot's `unlock_fair`, or the ticket lock of `src/ticket.rs`) lets it in.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Famine").
//!
//! Crates: `parking_lot = "0.13"` (and `crate::ticket`: copy `src/ticket.rs` and `src/sync.rs`)
//!
//! The setup: `--greedy` threads loop on "lock, work 20 µs, unlock, lock again"; one polite
//! thread thinks for 20 µs *outside* the lock, then asks for it, `--polite-rounds` times. Each
//! lock's run ends when the polite thread is done or after `--limit-ms`, whichever comes first.
//! Why the polite thread starves on an unfair lock: when a greedy thread unlocks, the kernel
//! wakes the sleeping polite thread, which takes microseconds to get a CPU; the greedy thread
//! is already running and re-locks within nanoseconds. Nothing is broken, every thread makes
//! progress, except one. The README's table compares the four locks' policies on unlock.
//!
//! # Concepts
//! - Starvation vs deadlock: everyone else progresses, one thread never does.
//! - Lock fairness: barging (std, parking_lot, with parking_lot's "eventual fairness" every
//!   ~0.5 ms), hand-over to the longest-parked waiter (`unlock_fair`), strict FIFO (ticket).
//! - Fairness is not free: each fair hand-over is a context switch where an unfair lock lets
//!   the running thread carry on, so total throughput (the greedy column) drops.
//! - Measuring it: per-thread acquisitions, the worst wait, and "overtakes" (acquisitions by
//!   others while the polite thread was waiting).
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
//!   overtaken hundreds of times and waits tens of milliseconds for a lock held 20 µs at a time.
//!   Run it again: the numbers change, the pattern does not.
//! - The ticket lock: never more than `--greedy` overtakes, on any machine, under any load. Its
//!   worst wait is a few critical sections, unless the OS deschedules the polite thread (then
//!   *everyone* waits for it: the price of strict FIFO, a lock convoy).
//! - `unlock_fair`: much better on a quiet machine, but a waiter is only in the queue once it
//!   has parked; while it spins before parking, greedy threads still overtake it.
//!
//! # Exercises
//! 1. Add a `thread::yield_now()` after the greedy unlock. Does `std::sync::Mutex` become fair?
//!    Is it reliable on a busy machine?
//! 2. Give the polite thread a `--think-us 0`: it is now greedy too. What happens to the shares?
//! 3. Readers starving a writer: replace the lock by a `std::sync::RwLock`, make the greedy
//!    threads readers that overlap, and the polite one a writer. Then try `parking_lot::RwLock`.
//!    Checked: a writer-first `RwLock` (`cargo run -p shared --bin exercises -- check sync/06`).
//! 4. Make the ticket lock spin (an `AtomicU64` pair, no `Condvar`) and run with `--greedy 4` on
//!    2 cores. Why does it collapse?
//! 5. Checked: write the ticket lock yourself (`cargo run -p shared --bin exercises -- check
//!    sync/05`: loom, spurious wake-ups, a watchdog).

// === Lesson: copy from here ===

/// Greedy threads against one polite thread, on one lock; what the polite thread got.
mod fairness {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Mutex as StdMutex, PoisonError};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::ticket::TicketLock;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum LockKind {
        /// `std::sync::Mutex`: unfair.
        Std,
        /// `parking_lot::Mutex`: unfair with eventual fairness.
        ParkingLot,
        /// `parking_lot::Mutex` released with `MutexGuard::unlock_fair`.
        UnlockFair,
        /// The FIFO ticket lock of `src/ticket.rs`.
        Ticket,
    }

    impl LockKind {
        pub fn name(self) -> &'static str {
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

        /// Runs `f` under the lock. The ticket lock also returns how many tickets were ahead
        /// of ours: the exact number of acquisitions that overtook this one.
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

    /// The shape of one contest.
    #[derive(Clone, Copy, Debug)]
    pub struct Contest {
        /// Threads that re-lock immediately after unlocking.
        pub greedy: usize,
        /// Times the polite thread wants the lock.
        pub polite_rounds: u64,
        /// Work done while holding the lock (every thread).
        pub hold: Duration,
        /// Work the polite thread does outside the lock between two requests.
        pub think: Duration,
        /// Every thread stops asking for the lock after this long.
        pub limit: Duration,
    }

    /// What the polite thread got from one lock.
    #[derive(Clone, Debug)]
    pub struct ContestReport {
        pub greedy_per_thread: Vec<u64>,
        pub polite_acquisitions: u64,
        pub polite_worst_wait: Duration,
        pub polite_total_wait: Duration,
        /// Most acquisitions by greedy threads during one polite wait.
        pub max_overtakes: u64,
        pub elapsed: Duration,
    }

    impl ContestReport {
        /// The polite thread did not get all its rounds before the limit.
        pub fn starved(&self, contest: &Contest) -> bool {
            self.polite_acquisitions < contest.polite_rounds
        }
    }

    /// Runs `contest.greedy` greedy threads and one polite thread on a lock of `kind`.
    pub fn run_contest(kind: LockKind, contest: &Contest) -> std::io::Result<ContestReport> {
        let lock = AnyLock::new(kind);
        let stop = AtomicBool::new(false);
        // Incremented inside the critical section by every thread: a global acquisition clock.
        let acquisitions = AtomicU64::new(0);
        let start = Instant::now();
        // Greedy threads stop when the polite thread is done, or at the limit: then a starved
        // polite thread gets the lock at last, and the run ends near the limit.
        let over = || stop.load(Ordering::Relaxed) || start.elapsed() >= contest.limit;

        thread::scope(|s| {
            let greedy: Vec<_> = (0..contest.greedy)
                .map(|i| {
                    thread::Builder::new()
                        .name(format!("greedy-{i}"))
                        .spawn_scoped(s, || {
                            let mut mine = 0u64;
                            while !over() {
                                // Unlock, then lock again at once: nothing in between gives way.
                                lock.with(|| {
                                    acquisitions.fetch_add(1, Ordering::Relaxed);
                                    spin_for(contest.hold);
                                });
                                mine += 1;
                            }
                            mine
                        })
                })
                .collect::<Result<_, _>>()?;

            let mut report = ContestReport {
                greedy_per_thread: Vec::new(),
                polite_acquisitions: 0,
                polite_worst_wait: Duration::ZERO,
                polite_total_wait: Duration::ZERO,
                max_overtakes: 0,
                elapsed: Duration::ZERO,
            };
            // The polite thread is this one: it decides when the run ends.
            while report.polite_acquisitions < contest.polite_rounds && !over() {
                spin_for(contest.think);
                let asked = Instant::now();
                let before = acquisitions.load(Ordering::Relaxed);
                let mut overtakes = 0;
                let ahead = lock.with(|| {
                    let now = acquisitions.fetch_add(1, Ordering::Relaxed);
                    overtakes = now - before;
                    spin_for(contest.hold);
                });
                // Exact for the ticket lock; for the others, the acquisitions counted between
                // our request and our turn (which includes the wait, nothing else).
                let overtakes = ahead.unwrap_or(overtakes);
                let waited = asked.elapsed().saturating_sub(contest.hold);
                report.polite_worst_wait = report.polite_worst_wait.max(waited);
                report.polite_total_wait += waited;
                report.max_overtakes = report.max_overtakes.max(overtakes);
                report.polite_acquisitions += 1;
            }
            stop.store(true, Ordering::Relaxed);
            for g in greedy {
                let mine = g.join().expect("greedy threads only count and spin");
                report.greedy_per_thread.push(mine);
            }
            report.elapsed = start.elapsed();
            Ok(report)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn contest(polite_rounds: u64, limit: Duration) -> Contest {
            Contest {
                greedy: 2,
                polite_rounds,
                hold: Duration::from_micros(20),
                think: Duration::from_micros(20),
                limit,
            }
        }

        #[test]
        fn the_ticket_lock_bounds_overtakes_by_the_number_of_greedy_threads() {
            // A generous limit: only a hang guard, the polite thread finishes long before it.
            let c = contest(50, Duration::from_secs(60));
            let r = run_contest(LockKind::Ticket, &c).unwrap();
            assert_eq!(r.polite_acquisitions, 50);
            assert!(!r.starved(&c));
            assert!(r.max_overtakes <= 2, "overtaken {} times", r.max_overtakes);
        }

        #[test]
        fn the_limit_ends_the_run_even_when_the_polite_thread_wants_more() {
            // Each polite round holds the lock 1 ms: a million of them cannot fit in 50 ms, so
            // the run must end on the limit, polite thread unfinished, on every lock.
            let c = Contest {
                hold: Duration::from_millis(1),
                ..contest(1_000_000, Duration::from_millis(50))
            };
            for kind in [LockKind::Std, LockKind::Ticket] {
                let r = run_contest(kind, &c).unwrap();
                assert!(r.starved(&c), "{kind:?}");
                assert_eq!(r.greedy_per_thread.len(), 2);
            }
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use clap::{Parser, ValueEnum};
use examples_sync::table::Table;
use examples_sync::ticket; // the lesson's `crate::ticket` (src/ticket.rs, built on src/sync.rs)
use fairness::{Contest, ContestReport, LockKind, run_contest};
use shared::cli;
use shared::report::fmt_duration;

/// Greedy threads against one polite thread, on unfair and fair locks.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Threads that re-lock immediately after unlocking (1 to 64).
    #[arg(long, default_value_t = 2, value_parser = cli::usize_in(1, 64))]
    greedy: usize,
    /// Times the polite thread wants the lock (1 to 1,000,000).
    #[arg(long, default_value_t = 200, value_parser = cli::u64_in(1, 1_000_000))]
    polite_rounds: u64,
    /// Work done while holding the lock, in microseconds, every thread (0 to 100,000).
    #[arg(long, default_value_t = 20, value_parser = cli::u64_in(0, 100_000))]
    hold_us: u64,
    /// Work the polite thread does outside the lock between two requests, in microseconds
    /// (0 to 100,000).
    #[arg(long, default_value_t = 20, value_parser = cli::u64_in(0, 100_000))]
    think_us: u64,
    /// Stop each lock's run after this long, even if the polite thread is not done, in
    /// milliseconds (1 to 600,000).
    #[arg(long, default_value_t = 1000, value_parser = cli::u64_in(1, 600_000))]
    limit_ms: u64,
    /// Locks to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = LockFlag::ALL)]
    locks: Vec<LockFlag>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--locks`, as clap parses it (the lesson's `LockKind` stays free of clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LockFlag {
    /// `std::sync::Mutex`: unfair.
    Std,
    /// `parking_lot::Mutex`: unfair with eventual fairness.
    ParkingLot,
    /// `parking_lot::Mutex` released with `MutexGuard::unlock_fair`.
    UnlockFair,
    /// The FIFO ticket lock of `src/ticket.rs`.
    Ticket,
}

impl LockFlag {
    const ALL: [LockFlag; 4] = [
        LockFlag::Std,
        LockFlag::ParkingLot,
        LockFlag::UnlockFair,
        LockFlag::Ticket,
    ];
    fn kind(self) -> LockKind {
        match self {
            LockFlag::Std => LockKind::Std,
            LockFlag::ParkingLot => LockKind::ParkingLot,
            LockFlag::UnlockFair => LockKind::UnlockFair,
            LockFlag::Ticket => LockKind::Ticket,
        }
    }
    /// The flag's spelling, also the `lock` key of the JSON output.
    fn id(self) -> &'static str {
        match self {
            LockFlag::Std => "std",
            LockFlag::ParkingLot => "parking-lot",
            LockFlag::UnlockFair => "unlock-fair",
            LockFlag::Ticket => "ticket",
        }
    }
}

fn report_json(flag: LockFlag, r: &ContestReport, c: &Contest) -> serde_json::Value {
    let done = r.polite_acquisitions;
    serde_json::json!({
        "lock": flag.id(),
        "name": flag.kind().name(),
        "greedy_per_thread": r.greedy_per_thread,
        "polite_acquisitions": done,
        "polite_target": c.polite_rounds,
        "polite_share": polite_share(r),
        "polite_worst_wait_s": r.polite_worst_wait.as_secs_f64(),
        "polite_mean_wait_s": r.polite_total_wait.as_secs_f64() / done.max(1) as f64,
        "max_overtakes": r.max_overtakes,
        "elapsed_s": r.elapsed.as_secs_f64(),
        "starved": r.starved(c),
    })
}

/// Polite acquisitions / all acquisitions.
fn polite_share(r: &ContestReport) -> f64 {
    let all = r.polite_acquisitions + r.greedy_per_thread.iter().sum::<u64>();
    r.polite_acquisitions as f64 / all.max(1) as f64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let contest = Contest {
        greedy: args.greedy,
        polite_rounds: args.polite_rounds,
        hold: Duration::from_micros(args.hold_us),
        think: Duration::from_micros(args.think_us),
        limit: Duration::from_millis(args.limit_ms),
    };
    if !args.json {
        println!(
            "{} greedy threads + 1 polite thread; hold {} µs, polite thinks {} µs; polite wants \
             {} acquisitions; limit {} ms per lock\n",
            args.greedy, args.hold_us, args.think_us, args.polite_rounds, args.limit_ms
        );
    }
    let mut reports = Vec::new();
    for &flag in &args.locks {
        let report = run_contest(flag.kind(), &contest)
            .map_err(|e| anyhow::anyhow!("{}: spawning the threads: {e}", flag.id()))?;
        reports.push((flag, report));
    }

    if args.json {
        let locks: Vec<_> = reports
            .iter()
            .map(|(flag, r)| report_json(*flag, r, &contest))
            .collect();
        let out = serde_json::json!({
            "greedy": args.greedy,
            "hold_us": args.hold_us,
            "think_us": args.think_us,
            "polite_rounds": args.polite_rounds,
            "limit_ms": args.limit_ms,
            "locks": locks,
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
    for (flag, r) in &reports {
        let done = r.polite_acquisitions;
        table.row([
            flag.kind().name().to_string(),
            r.greedy_per_thread
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
            format!("{done}/{}", args.polite_rounds),
            format!("{:.2} %", 100.0 * polite_share(r)),
            fmt_duration(r.polite_worst_wait),
            fmt_duration(r.polite_total_wait / u32::try_from(done.max(1)).unwrap_or(u32::MAX)),
            r.max_overtakes.to_string(),
            fmt_duration(r.elapsed),
            if r.starved(&contest) {
                format!("STARVED ({done} of {} rounds)", args.polite_rounds)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--greedy", "0"],
            ["--polite-rounds", "0"],
            ["--hold-us", "18446744073709551615"],
            ["--think-us", "18446744073709551615"],
            ["--hold-us", "-1"],
            ["--limit-ms", "0"],
            ["--limit-ms", "inf"],
        ] {
            let err = Args::try_parse_from(["starvation", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let ok = Args::try_parse_from(["starvation", "--hold-us", "0", "--think-us", "0"]);
        assert!(ok.is_ok());
    }
}
