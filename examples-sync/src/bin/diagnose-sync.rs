//! Find the two bugs that never show on your machine: a deadlock in a running process, read
//! from outside with gdb (and from inside with parking_lot's detector, which the code must opt
//! into), and a lost wake-up that shows once in thousands of runs, caught by a seeded stress
//! harness that prints the failing seed and proved fixed by loom. `--bug NAME`, then `--fixed`.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Interblocage",
//! "Complexité de débogage"; objective: "déboguer et optimiser du code concurrent").
//!
//! Crates: `parking_lot = { version = "0.13", features = ["deadlock_detection"] }` (the bank);
//! the stress harness uses `wakeup.rs` and `sync.rs` of this crate's `src/` (copy them too).
//!
//! # Concepts
//! - A hung process keeps its evidence: every thread's stack. `gdb -p PID -batch -ex "thread
//!   apply all bt"` prints them without stopping anything for long and without a line of code
//!   changed. A deadlock reads as two threads parked in `lock`, each called from a function that
//!   already holds the lock the other wants: the two *lock sites*.
//! - parking_lot's `deadlock::check_deadlock()` finds the cycle from inside, with backtraces,
//!   but only in a program built with its `deadlock_detection` feature that runs the check.
//! - A race that loses once in 10,000 runs needs many runs, each different, each replayable: a
//!   seed per run fixes the run's delays, and the harness prints the seeds that failed.
//! - A stress test that passes proves nothing; loom explores every interleaving of a small
//!   model and proves the fix (`tests/loom.rs`, `done_signal_*`).
//!
//! # Run
//! ```text
//! cargo run -p examples-sync --bin diagnose-sync                          # both bugs, both ways
//! cargo run -p examples-sync --bin diagnose-sync -- --bug deadlock [--fixed] [--json]
//! cargo run -p examples-sync --bin diagnose-sync -- --bug deadlock --hang-for 300 &  # then:
//! gdb -p $! -batch -ex "thread apply all bt"                             # root, or ptrace_scope 0
//! cargo run --release -p examples-sync --bin diagnose-sync -- --bug lost-wakeup --runs 100000
//! cargo run --release -p examples-sync --bin diagnose-sync -- --bug lost-wakeup --replay SEED
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p examples-sync --release \
//!   --test loom done_signal
//! ```
//!
//! # What to observe
//! - Deadlock: gdb shows `teller-*` parked in `lock_slow` called from `Bank::transfer`, and
//!   `auditor` parked in `lock_slow` called from `Bank::audit`: two lock sites, file and line.
//!   The detector prints the same two threads. Fixed (one lock order), the run completes.
//! - Lost wake-up: with the bug, some failing seeds per 10,000 runs (from none to a few dozen:
//!   the rate moves with the machine, its load and `--jitter`); none with the fix. Replaying a failing seed fails again
//!   only now and then: the seed fixes the harness's delays, not the OS's scheduling. loom,
//!   which controls the schedule, finds the bug on every run and proves the fix.
//!
//! # Exercises
//! 1. Attach gdb to the fixed run while it works: what are the threads doing?
//! 2. Fix the deadlock with `try_lock_for` and a retry instead of the lock order.
//! 3. Make the stress harness shrink a failing seed's delays to the smallest that still fails.
//! 4. Break `DoneSignal` another way (notify before storing, under the lock): does loom catch it?

// === Lesson: copy from here ===

/// A bank with two locks taken in two orders: a deadlock waiting for the right moment.
mod bank {
    use parking_lot::Mutex;

    /// The order `audit` takes the two locks in.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum AuditOrder {
        /// The bug: journal, then accounts; `transfer` takes them the other way round.
        JournalThenAccounts,
        /// The fix: the one documented order, accounts then journal, everywhere.
        AccountsThenJournal,
    }

    /// What the journal keeps: how many transfers, and the money they moved.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Journal {
        pub entries: u64,
        pub moved: i64,
    }

    pub struct Bank {
        accounts: Mutex<Vec<i64>>,
        journal: Mutex<Journal>,
        audit_order: AuditOrder,
    }

    impl Bank {
        pub fn new(accounts: usize, balance: i64, audit_order: AuditOrder) -> Self {
            Bank {
                accounts: Mutex::new(vec![balance; accounts.max(2)]),
                journal: Mutex::new(Journal::default()),
                audit_order,
            }
        }

        /// Moves `amount` and writes the journal line. Lock order: accounts, then journal.
        #[inline(never)] // its own frame in a backtrace, even in release builds
        pub fn transfer(&self, from: usize, to: usize, amount: i64) {
            let mut accounts = self.accounts.lock();
            let n = accounts.len();
            accounts[from % n] -= amount;
            accounts[to % n] += amount;
            let mut journal = self.journal.lock();
            journal.entries += 1;
            journal.moved += amount;
        }

        /// The total of all accounts and the journal, read at one instant (both locks held).
        #[inline(never)]
        pub fn audit(&self) -> (i64, Journal) {
            match self.audit_order {
                AuditOrder::JournalThenAccounts => {
                    let journal = self.journal.lock();
                    write_audit_header();
                    let accounts = self.accounts.lock();
                    (accounts.iter().sum(), *journal)
                }
                AuditOrder::AccountsThenJournal => {
                    let accounts = self.accounts.lock();
                    let journal = self.journal.lock();
                    write_audit_header();
                    (accounts.iter().sum(), *journal)
                }
            }
        }
    }

    /// Stands for the I/O an audit does with the journal locked (its header line, to a log):
    /// the millisecond in which a teller takes the accounts lock and the cycle closes.
    fn write_audit_header() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn transfers_conserve_money_and_are_journaled() {
            let bank = Bank::new(4, 100, AuditOrder::AccountsThenJournal);
            std::thread::scope(|s| {
                for t in 0..2 {
                    let bank = &bank;
                    s.spawn(move || {
                        for i in 0..1_000 {
                            bank.transfer(t + i, t + 2 * i + 1, 3);
                            if i % 100 == 0 {
                                assert_eq!(bank.audit().0, 400);
                            }
                        }
                    });
                }
            });
            let (total, journal) = bank.audit();
            assert_eq!((total, journal.entries, journal.moved), (400, 2_000, 6_000));
        }
    }
}

/// The seeded stress harness: run the racy code many times, each run with its own seed.
mod stress {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::Duration;

    use crate::wakeup::{DoneSignal, Publish};

    /// SplitMix64: one seed, a reproducible stream of numbers (no crate needed).
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn spin(n: u64) {
        for _ in 0..n {
            std::hint::spin_loop();
        }
    }

    /// One run: a waiter and a setter start together, each after its seeded delay (up to
    /// `jitter` spins). Returns `true` when the wake-up was lost: the flag was set and the
    /// waiter still slept `patience` later.
    pub fn lost_wakeup(publish: Publish, seed: u64, jitter: u64, patience: Duration) -> bool {
        let mut state = seed;
        let wait_delay = splitmix(&mut state) % (jitter + 1);
        let set_delay = splitmix(&mut state) % (jitter + 1);
        let signal = Arc::new(DoneSignal::new(publish));
        // A spinning start line, not a `Barrier`: a barrier wakes its sleepers tens of µs
        // apart, which would spread the runs too thin over a window of a few nanoseconds.
        let ready = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let (woke, woken) = mpsc::channel();
        let waiter = {
            let (signal, ready, go) = (Arc::clone(&signal), Arc::clone(&ready), Arc::clone(&go));
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                spin(wait_delay);
                signal.wait();
                let _ = woke.send(());
            })
        };
        while !ready.load(Ordering::Acquire) {
            thread::yield_now(); // the waiter may not be running yet: let it
        }
        go.store(true, Ordering::Release);
        spin(set_delay);
        signal.set();
        let lost = woken.recv_timeout(patience).is_err();
        if lost {
            signal.set(); // a second notification finds the sleeper: the run can end
        }
        let _ = waiter.join();
        lost
    }

    /// What a stress campaign found.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct StressReport {
        pub runs: u64,
        pub failing_seeds: Vec<u64>,
    }

    /// Runs seeds `first_seed..first_seed + runs` until done or `keep_going` says stop;
    /// `on_lost(seed)` hears of each failure as it happens.
    pub fn stress(
        publish: Publish,
        first_seed: u64,
        runs: u64,
        jitter: u64,
        patience: Duration,
        mut keep_going: impl FnMut(u64) -> bool,
        mut on_lost: impl FnMut(u64),
    ) -> StressReport {
        let mut report = StressReport::default();
        for seed in (0..runs).map(|i| first_seed.wrapping_add(i)) {
            if !keep_going(report.runs) {
                break;
            }
            report.runs += 1;
            if lost_wakeup(publish, seed, jitter, patience) {
                report.failing_seeds.push(seed);
                on_lost(seed);
            }
        }
        report
    }

    #[cfg(all(test, not(loom)))]
    mod tests {
        use super::*;

        #[test]
        fn seeds_give_the_same_delays_every_time() {
            let (mut a, mut b) = (42, 42);
            assert_eq!(splitmix(&mut a), splitmix(&mut b));
            assert_ne!(splitmix(&mut a), splitmix(&mut 43));
        }

        #[test]
        fn the_fixed_signal_never_loses_a_wakeup() {
            let report = stress(
                Publish::UnderLock,
                1,
                300,
                200,
                Duration::from_secs(5),
                |_| true,
                |_| {},
            );
            assert_eq!(
                report,
                StressReport {
                    runs: 300,
                    failing_seeds: vec![]
                }
            );
        }
    }
}

// === Harness: not part of the lesson ===

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use bank::{AuditOrder, Bank};
use clap::{Parser, ValueEnum};
use examples_sync::wakeup::{self, Publish};
use shared::cli;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Bug {
    /// Transfers lock accounts then journal; the audit locks journal then accounts.
    Deadlock,
    /// A done flag set without the condition variable's mutex (fix: set it under the mutex).
    LostWakeup,
}

/// Plant a deadlock and a lost wake-up, then find them: gdb, parking_lot's detector, a seeded
/// stress harness, loom.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Run only this pathology's buggy version (with `--fixed`: only its repaired version).
    /// Without `--bug` nor `--fixed`, both pathologies run both ways.
    #[arg(long, value_enum)]
    bug: Option<Bug>,
    /// Run the repaired version.
    #[arg(long)]
    fixed: bool,
    /// Deadlock: transfers per teller thread in the fixed run (the buggy one runs until it hangs).
    #[arg(long, default_value_t = 200_000, value_parser = cli::u64_in(1, 1_000_000_000))]
    transfers: u64,
    /// Deadlock: run the bank in this process, with no lens, and if it hangs stay hung this many
    /// seconds before exiting (status 3): attach gdb to it meanwhile.
    #[arg(long, value_parser = cli::seconds_in(0.1, 3600.0))]
    hang_for: Option<Duration>,
    /// Deadlock, with `--hang-for`: run parking_lot's detector thread in this process.
    #[arg(long)]
    detector: bool,
    /// Lost wake-up: stress runs (one seed each).
    #[arg(long, default_value_t = 10_000, value_parser = cli::u64_in(1, 100_000_000))]
    runs: u64,
    /// Lost wake-up: the first run's seed (run i uses seed + i).
    #[arg(long, default_value_t = 1, value_parser = cli::u64_in(0, u64::MAX - 100_000_000))]
    seed: u64,
    /// Lost wake-up: replay this seed's delays `--runs` times (default runs: 10,000).
    #[arg(long, value_parser = cli::u64_in(0, u64::MAX))]
    replay: Option<u64>,
    /// Lost wake-up: the largest seeded delay, in spin-loop iterations (tens of ns each).
    #[arg(long, default_value_t = 256, value_parser = cli::u64_in(0, 10_000_000))]
    jitter: u64,
    /// Lost wake-up: how long a set flag may leave its waiter asleep before the run counts as
    /// lost, in seconds (a slow thread is not a lost one).
    #[arg(long, default_value = "1", value_parser = cli::seconds_in(0.01, 60.0))]
    patience: Duration,
    /// Print the findings as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(hang_for) = args.hang_for {
        return run_bank_process(&args, hang_for);
    }
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let bugs = args
        .bug
        .map_or(vec![Bug::Deadlock, Bug::LostWakeup], |b| vec![b]);
    let versions: &[bool] = match (args.bug.is_some(), args.fixed) {
        (_, true) => &[true],
        (true, false) => &[false],
        (false, false) => &[false, true],
    };
    let mut json = serde_json::Map::new();
    for bug in bugs {
        for &fixed in versions {
            let key = format!(
                "{}{}",
                if bug == Bug::Deadlock {
                    "deadlock"
                } else {
                    "lost_wakeup"
                },
                if fixed { "_fixed" } else { "" }
            );
            let value = match bug {
                Bug::Deadlock => deadlock_lenses(&args, fixed)?,
                Bug::LostWakeup => stress_lens(&args, fixed, &stop),
            };
            json.insert(key, value);
        }
    }
    if args.json {
        println!("{}", serde_json::Value::Object(json));
    }
    Ok(())
}

// ---- The deadlock: the bank process, and the lenses pointed at it ---------------------------

/// The "process you did not write": two tellers and an auditor on one bank. Prints its progress
/// every 50 ms; exits 0 when the tellers are done, 3 if still stuck after `hang_for`, 2 when
/// parking_lot's detector (only with `--detector`) finds a cycle.
fn run_bank_process(args: &Args, hang_for: Duration) -> anyhow::Result<()> {
    let order = if args.fixed {
        AuditOrder::AccountsThenJournal
    } else {
        AuditOrder::JournalThenAccounts
    };
    let bank = Arc::new(Bank::new(8, 1_000, order));
    let done = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    if args.detector {
        thread::Builder::new()
            .name("deadlock-detector".into())
            .spawn(detector_loop)?;
    }
    let mut tellers = Vec::new();
    for t in 0..2u64 {
        let (bank, progress) = (Arc::clone(&bank), Arc::clone(&progress));
        // The buggy bank serves until it hangs (it does, at its first audit or so); the
        // fixed one does its `--transfers` and ends.
        let per_teller = if args.fixed { args.transfers } else { u64::MAX };
        tellers.push(
            thread::Builder::new()
                .name(format!("teller-{t}"))
                .spawn(move || {
                    for i in 0..per_teller {
                        bank.transfer(
                            (t + i) as usize,
                            (t * 3 + i * 5 + 1) as usize,
                            1 + (i % 7) as i64,
                        );
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                })?,
        );
    }
    let auditor = {
        let (bank, done, progress) = (Arc::clone(&bank), Arc::clone(&done), Arc::clone(&progress));
        thread::Builder::new()
            .name("auditor".into())
            .spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let (total, _) = bank.audit();
                    assert_eq!(total, 8 * 1_000, "money was created or lost");
                    progress.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(1));
                }
            })?
    };
    let start = Instant::now();
    while !tellers.iter().all(|t| t.is_finished()) {
        println!("progress {}", progress.load(Ordering::Relaxed));
        if start.elapsed() > hang_for {
            eprintln!("still stuck after {hang_for:?}: exiting (status 3)");
            std::process::exit(3);
        }
        thread::sleep(Duration::from_millis(50));
    }
    done.store(true, Ordering::Relaxed);
    let _ = auditor.join();
    let (total, journal) = bank.audit();
    println!("completed {} transfers, total {total}", journal.entries);
    Ok(())
}

/// parking_lot's detector: every 100 ms, look for a cycle of parked threads; print each
/// thread's frames in this file and exit 2.
fn detector_loop() {
    loop {
        thread::sleep(Duration::from_millis(100));
        let cycles = parking_lot::deadlock::check_deadlock();
        if cycles.is_empty() {
            continue;
        }
        println!(
            "parking_lot::deadlock::check_deadlock: {} cycle(s)",
            cycles.len()
        );
        for (i, cycle) in cycles.iter().enumerate() {
            for t in cycle {
                println!("cycle {i}: thread {:?}", t.thread_id());
                for frame in t.backtrace().frames() {
                    for sym in frame.symbols() {
                        let name = sym.name().map(|n| format!("{n:#}")).unwrap_or_default();
                        if name.contains("bank::Bank::") {
                            let file = sym
                                .filename()
                                .map(|f| f.display().to_string())
                                .unwrap_or_default();
                            println!("  at {name} ({file}:{})", sym.lineno().unwrap_or(0));
                        }
                    }
                }
            }
        }
        std::process::exit(2);
    }
}

/// A child bank process whose stdout we read: its progress lines tell whether it is stuck.
struct BankChild {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl BankChild {
    fn start(args: &Args, fixed: bool, detector: bool) -> anyhow::Result<BankChild> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(["--bug", "deadlock", "--hang-for", "60", "--transfers"])
            .arg(args.transfers.to_string());
        if fixed {
            cmd.arg("--fixed");
        }
        if detector {
            cmd.arg("--detector");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start the bank process")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(BankChild { child, lines })
    }

    /// Follows the progress lines until the process ends (`Ok(lines)`) or makes no progress
    /// for `stall` (`Err(lines)`: it hangs).
    fn watch(&mut self, stall: Duration) -> Result<Vec<String>, Vec<String>> {
        let mut seen = Vec::new();
        let (mut last, mut since) = (None, Instant::now());
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if line.starts_with("progress") {
                        if last.as_ref() != Some(&line) {
                            (last, since) = (Some(line), Instant::now());
                        }
                    } else {
                        seen.push(line);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(seen),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if since.elapsed() > stall {
                return Err(seen);
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One thread of gdb's `thread apply all bt` that waits in a lock called from the bank.
#[derive(Debug, serde::Serialize)]
struct WaitingThread {
    thread: String,
    waits_in: String,
    lock_site: String,
}

/// Reads gdb's backtraces: for each thread parked in a lock, the innermost lock frame and the
/// first frame of the bank (the lock site).
fn waiting_threads(gdb_output: &str) -> Vec<WaitingThread> {
    let mut out = Vec::new();
    for block in gdb_output.split("\nThread ").skip(1) {
        let header = block.lines().next().unwrap_or_default();
        let thread = header.rsplit('"').nth(1).unwrap_or(header).to_string();
        let frames: Vec<&str> = block.lines().filter(|l| l.starts_with('#')).collect();
        let Some(site) = frames.iter().position(|f| f.contains("bank::Bank::")) else {
            continue;
        };
        let Some(lock) = frames[..site].iter().rev().find(|f| f.contains("lock")) else {
            continue;
        };
        out.push(WaitingThread {
            thread,
            waits_in: function_of(lock),
            lock_site: function_and_line(frames[site]),
        });
    }
    out
}

/// `#3  0x… in lock_api::mutex::Mutex<R, T>::lock<R, T> (self=…) at …` → the function, its
/// generic arguments left out: `lock_api::mutex::Mutex::lock`.
fn function_of(frame: &str) -> String {
    let after_in = frame.split_once(" in ").map_or(frame, |(_, r)| r);
    let name = after_in.trim_start_matches(|c: char| c == '#' || c.is_ascii_digit() || c == ' ');
    let name = name.split(" (").next().unwrap_or(name).trim();
    let mut depth = 0usize;
    name.chars()
        .filter(|&c| {
            match c {
                '<' => depth += 1,
                '>' => depth = depth.saturating_sub(1),
                _ => return depth == 0,
            }
            false
        })
        .collect()
}

/// The function and its `file:line`.
fn function_and_line(frame: &str) -> String {
    let place = frame.rsplit_once(" at ").map_or("", |(_, r)| r.trim());
    format!("{} at {place}", function_of(frame))
}

/// The source line a `… at path/file.rs:LINE` lock site points at, if the file is at hand.
fn source_line(site: &str) -> Option<String> {
    let (path, line) = site.rsplit_once(" at ")?.1.rsplit_once(':')?;
    let line: usize = line.trim().parse().ok()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let text = std::fs::read_to_string(root.join(path)).ok()?;
    Some(text.lines().nth(line.checked_sub(1)?)?.trim().to_string())
}

fn deadlock_lenses(args: &Args, fixed: bool) -> anyhow::Result<serde_json::Value> {
    let say = |s: String| {
        if !args.json {
            println!("{s}")
        }
    };
    say(format!(
        "\n== deadlock{}: two tellers and an auditor on one bank, in a child process",
        if fixed {
            " (fixed: one lock order)"
        } else {
            ""
        }
    ));
    let mut child = BankChild::start(args, fixed, false)?;
    let pid = child.child.id();
    match child.watch(Duration::from_millis(1500)) {
        Ok(lines) => {
            let status = child.child.wait()?;
            say(format!(
                "process {pid} finished ({status}): {}",
                lines.join("; ")
            ));
            return Ok(
                serde_json::json!({ "hung": false, "status": status.code(), "output": lines }),
            );
        }
        Err(_) => say(format!(
            "process {pid} makes no progress: attaching gdb to it"
        )),
    }
    let gdb = Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output();
    let gdb_json = match gdb {
        Err(e) => {
            say(format!("gdb: cannot run it ({e}): apt-get install gdb"));
            serde_json::json!({ "available": false, "error": e.to_string() })
        }
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let threads = waiting_threads(&text);
            if threads.is_empty() {
                say(format!(
                    "gdb found no thread waiting in a lock (could it attach? {})",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default()
                ));
            }
            say(format!(
                "lens: gdb -p {pid} -batch -ex \"thread apply all bt\" ({} lines); threads parked in a lock:",
                text.lines().count()
            ));
            for t in &threads {
                let code = source_line(&t.lock_site).unwrap_or_default();
                say(format!(
                    "  thread \"{}\" waits in {}\n      called from {}\n      {code}",
                    t.thread, t.waits_in, t.lock_site
                ));
            }
            serde_json::json!({ "available": true, "threads": threads, "backtrace_lines": text.lines().count() })
        }
    };
    child.kill();

    say("lens: parking_lot::deadlock::check_deadlock (the same program, started with its detector thread)".into());
    let mut with_detector = BankChild::start(args, fixed, true)?;
    let (report, status) = match with_detector.watch(Duration::from_secs(5)) {
        // Its stdout closed: it is exiting, so wait for its status (try_wait could be too early).
        Ok(lines) => (lines, with_detector.child.wait()?.code()),
        Err(lines) => (
            lines,
            with_detector.child.try_wait()?.and_then(|s| s.code()),
        ),
    };
    with_detector.kill();
    for line in &report {
        say(format!("  {line}"));
    }
    Ok(
        serde_json::json!({ "hung": true, "pid": pid, "gdb": gdb_json, "detector": { "status": status, "output": report } }),
    )
}

// ---- The lost wake-up: the stress lens ------------------------------------------------------

fn stress_lens(args: &Args, fixed: bool, stop: &AtomicBool) -> serde_json::Value {
    let publish = if fixed {
        Publish::UnderLock
    } else {
        Publish::WithoutLock
    };
    let say = |s: String| {
        if !args.json {
            println!("{s}")
        }
    };
    let start = Instant::now();
    let (report, mode) = if let Some(seed) = args.replay {
        say(format!(
            "\n== lost wake-up ({publish:?}): replaying seed {seed} {} times",
            args.runs
        ));
        let mut lost = Vec::new();
        let mut runs = 0;
        for _ in 0..args.runs {
            if stop.load(Ordering::Acquire) {
                break;
            }
            runs += 1;
            if stress::lost_wakeup(publish, seed, args.jitter, args.patience) {
                lost.push(seed);
            }
        }
        (
            stress::StressReport {
                runs,
                failing_seeds: lost,
            },
            "replay",
        )
    } else {
        say(format!(
            "\n== lost wake-up ({publish:?}): {} seeded runs from seed {}, delays up to {} spins",
            args.runs, args.seed, args.jitter
        ));
        let report = stress::stress(
            publish,
            args.seed,
            args.runs,
            args.jitter,
            args.patience,
            |_| !stop.load(Ordering::Acquire),
            |seed| {
                if !args.json {
                    println!(
                        "  LOST WAKE-UP with seed {seed}: the flag was set, the waiter slept on. Replay: \
                         cargo run --release -p examples-sync --bin diagnose-sync -- --bug lost-wakeup --replay {seed}"
                    );
                }
            },
        );
        (report, "stress")
    };
    let lost = report.failing_seeds.len();
    say(format!(
        "{} runs in {}: {lost} lost wake-up(s){}",
        report.runs,
        shared::report::fmt_duration(start.elapsed()),
        if lost > 0 {
            format!(", about one in {}", report.runs / lost as u64)
        } else {
            String::new()
        }
    ));
    if !fixed && lost == 0 && !args.json {
        println!(
            "  (none this time: it is rare. More runs, `--jitter`, or loom: RUSTFLAGS=\"--cfg loom\" cargo test -p examples-sync --release --test loom done_signal)"
        );
    }
    let _ = wakeup::DoneSignal::new(publish).is_set(); // the library lesson this lens drives
    serde_json::json!({
        "mode": mode, "publish": format!("{publish:?}"), "runs": report.runs, "lost": lost,
        "failing_seeds": report.failing_seeds.iter().take(100).collect::<Vec<_>>(),
        "jitter": args.jitter, "elapsed_s": start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GDB_SAMPLE: &str = r#"
Thread 3 (Thread 0x7f1 (LWP 12) "teller-0"):
#0  syscall () at ../sysdeps/unix/sysv/linux/x86_64/syscall.S:38
#1  0x000055 in parking_lot_core::thread_parker::imp::ThreadParker::futex_wait (self=0x1, ts=...) at /r/parking_lot_core/src/thread_parker/linux.rs:112
#2  0x000055 in parking_lot::raw_mutex::RawMutex::lock_slow (self=0x2, timeout=...) at /r/parking_lot/src/raw_mutex.rs:262
#3  0x000056 in diagnose_sync::bank::Bank::transfer (self=0x3, from=1, to=2, amount=3) at examples-sync/src/bin/diagnose-sync.rs:97
#4  0x000057 in diagnose_sync::run_bank_process::{closure#0} () at examples-sync/src/bin/diagnose-sync.rs:330

Thread 1 (Thread 0x7f0 (LWP 11) "diagnose-sync"):
#0  0x00007f in clock_nanosleep () from /lib/libc.so.6
"#;

    #[test]
    fn gdb_output_gives_the_thread_its_lock_and_the_lock_site() {
        let threads = waiting_threads(GDB_SAMPLE);
        assert_eq!(threads.len(), 1, "{threads:?}");
        assert_eq!(threads[0].thread, "teller-0");
        assert_eq!(
            threads[0].waits_in,
            "parking_lot::raw_mutex::RawMutex::lock_slow"
        );
        assert_eq!(
            threads[0].lock_site,
            "diagnose_sync::bank::Bank::transfer at examples-sync/src/bin/diagnose-sync.rs:97"
        );
    }
}
