//! Condition variables: a bounded buffer (Python's `queue.Queue(maxsize)`) built from a `Mutex`
//! and two `Condvar`s, spurious wake-ups handled with `while`, and `notify_one` vs `notify_all`
//! measured.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Conditions").
//!
//! The buffer lives in `examples-sync/src/bounded.rs`; loom checks it in `tests/loom.rs`,
//! including the proof that the tempting shortcut (one condvar for both sides + `notify_one`)
//! deadlocks. Python's `threading.Condition` is a lock plus a condvar in one object; in Rust the
//! `Condvar` is separate and `wait` takes the `MutexGuard`, so you cannot wait without holding
//! the lock that protects the condition.
//!
//! # Concepts
//! - `wait` releases the mutex and sleeps atomically, and re-locks before returning.
//! - Always wait in a loop on the *condition* (`while buffer.is_full()`), never on the
//!   notification: wake-ups can be spurious, and another thread can take the slot first. std's
//!   `Condvar::wait_while(guard, |s| cond)` is that loop, shown below for the start signal.
//! - One condvar per condition (`not_full`, `not_empty`) lets `notify_one` wake exactly a thread
//!   that can proceed. `notify_all` is always correct but wakes everyone (a thundering herd).
//! - A shared condvar + `notify_one` can wake the wrong side and deadlock: not run here (it would
//!   hang); loom's `shared_condvar_notify_one_deadlocks` finds the schedule.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-sync --bin condition
//! cargo run --release -p examples-sync --bin condition -- --producers 8 --consumers 8 --capacity 4
//! cargo run --release -p examples-sync --bin condition -- --json
//! RUSTFLAGS="--cfg loom" cargo test -p examples-sync --release --test loom   # the model checks
//! ```
//!
//! # What to observe
//! - Every row delivers every item exactly once (the checksum column).
//! - "futile" wake-ups: woken, condition still false, back to sleep. With 8 idle consumers and
//!   `notify_all`, one push wakes all 8 and 7 go back to sleep: the futile share climbs to
//!   70–85% (with one shared condvar, producers and consumers also wake each other). With
//!   `notify_one` some wake-ups are still futile (30–40%): a consumer that never slept took the
//!   item first ("stolen" wake-ups). That is why the `while` is mandatory.
//! - Throughput follows: futile wake-ups are context switches that do no work (`notify_all`
//!   rows 1.5–2.5× slower than two condvars + `notify_one` on the project's 2-core box).
//! - With as many producers as consumers (`--producers 4 --consumers 4`) few threads sleep at
//!   once and the differences shrink: measure your own shape before "optimizing" signalling.
//! - The bounded capacity is back-pressure: fast producers block instead of filling memory.
//!
//! # Exercises
//! 1. Replace a `while` by an `if` in `BoundedBuffer::pop` and run the unit tests and the loom
//!    tests. Which one catches it?
//! 2. Notify while still holding the lock instead of after `drop(state)`. Measure.
//! 3. Add `pop_timeout(d) -> Option<T>` with `Condvar::wait_timeout`, like Python's
//!    `queue.get(timeout=...)`.
//! 4. Compare with `std::sync::mpsc::sync_channel(capacity)` and `crossbeam_channel::bounded`
//!    (see the `queues` example). Why are they faster?

use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::bounded::{BoundedBuffer, Signalling, Wakeup};
use examples_sync::table::{Table, fmt_duration, fmt_rate};
use serde::Serialize;

/// A bounded buffer on Mutex + Condvar; notify_one vs notify_all, one vs two condvars, measured.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Producer threads.
    #[arg(long, default_value_t = 1)]
    producers: u64,
    /// Consumer threads (a pool of workers mostly waiting for jobs: where `notify_all` hurts).
    #[arg(long, default_value_t = 8)]
    consumers: u64,
    /// Items per producer.
    #[arg(long, default_value_t = 40_000)]
    items: u64,
    /// Buffer capacity.
    #[arg(long, default_value_t = 8)]
    capacity: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct RunReport {
    signalling: &'static str,
    items: u64,
    checksum_ok: bool,
    wakeups: u64,
    futile_wakeups: u64,
    elapsed_s: f64,
    items_per_s: f64,
}

fn describe(s: Signalling) -> &'static str {
    match (s.separate_condvars, s.wakeup) {
        (true, Wakeup::One) => "2 condvars, notify_one",
        (true, Wakeup::All) => "2 condvars, notify_all",
        (false, Wakeup::All) => "1 shared condvar, notify_all",
        (false, Wakeup::One) => "1 shared condvar, notify_one (can deadlock)",
    }
}

/// A start gate with std's `wait_while`: the loop on the condition, written for you.
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn wait(&self) {
        let guard = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Returns only when the closure is false; spurious wake-ups just re-check it.
        let _open = self
            .changed
            .wait_while(guard, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }
    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }
}

fn run(args: &Args, signalling: Signalling) -> anyhow::Result<RunReport> {
    let buffer = BoundedBuffer::with_signalling(args.capacity, signalling);
    let gate = Gate {
        open: Mutex::new(false),
        changed: Condvar::new(),
    };
    let n = args.producers * args.items;
    let (sum, elapsed) = thread::scope(|s| -> anyhow::Result<(u64, Duration)> {
        let consumers = (0..args.consumers)
            .map(|i| {
                let (buffer, gate) = (&buffer, &gate);
                thread::Builder::new()
                    .name(format!("consumer-{i}"))
                    .spawn_scoped(s, move || {
                        gate.wait();
                        // `pop` returns None once the buffer is closed and drained.
                        std::iter::from_fn(|| buffer.pop()).sum::<u64>()
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("spawning consumers")?;
        let producers = (0..args.producers)
            .map(|p| {
                let (buffer, gate) = (&buffer, &gate);
                thread::Builder::new()
                    .name(format!("producer-{p}"))
                    .spawn_scoped(s, move || {
                        gate.wait();
                        for i in 0..args.items {
                            // Blocks while full: back-pressure. Fails only after close().
                            buffer
                                .push(p * args.items + i)
                                .expect("closed only after producers end");
                        }
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("spawning producers")?;
        let start = Instant::now();
        gate.open();
        for p in producers {
            p.join()
                .map_err(|_| anyhow::anyhow!("a producer panicked"))?;
        }
        buffer.close(); // tells the consumers there is nothing more to come
        let mut sum = 0;
        for c in consumers {
            sum += c
                .join()
                .map_err(|_| anyhow::anyhow!("a consumer panicked"))?;
        }
        Ok((sum, start.elapsed()))
    })?;
    let stats = buffer.stats();
    Ok(RunReport {
        signalling: describe(signalling),
        items: n,
        checksum_ok: sum == n * (n - 1) / 2,
        wakeups: stats.wakeups,
        futile_wakeups: stats.futile,
        elapsed_s: elapsed.as_secs_f64(),
        items_per_s: n as f64 / elapsed.as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.producers >= 1 && args.consumers >= 1,
        "need producers and consumers"
    );
    ensure!(args.capacity >= 1, "--capacity must be at least 1");
    let runs = [
        Signalling::SEPARATE_NOTIFY_ONE,
        Signalling::SEPARATE_NOTIFY_ALL,
        Signalling::SHARED_NOTIFY_ALL,
    ]
    .into_iter()
    .map(|s| run(&args, s))
    .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(
        runs.iter().all(|r| r.checksum_ok),
        "items were lost or duplicated"
    );

    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "producers": args.producers,
                "consumers": args.consumers,
                "capacity": args.capacity,
                "runs": runs,
            })
        );
        return Ok(());
    }
    println!(
        "{} producers -> buffer of {} -> {} consumers, {} items\n",
        args.producers,
        args.capacity,
        args.consumers,
        args.producers * args.items
    );
    let mut table = Table::new([
        "signalling",
        "checksum",
        "wake-ups",
        "futile",
        "futile %",
        "time",
        "throughput",
    ]);
    for r in &runs {
        table.row([
            r.signalling.to_string(),
            if r.checksum_ok {
                "ok".into()
            } else {
                "WRONG".into()
            },
            r.wakeups.to_string(),
            r.futile_wakeups.to_string(),
            format!(
                "{:.0} %",
                100.0 * r.futile_wakeups as f64 / r.wakeups.max(1) as f64
            ),
            fmt_duration(Duration::from_secs_f64(r.elapsed_s)),
            fmt_rate(r.items_per_s),
        ]);
    }
    table.row([
        describe(Signalling::SHARED_NOTIFY_ONE),
        "not run",
        "-",
        "-",
        "-",
        "-",
        "loom: shared_condvar_notify_one_deadlocks",
    ]);
    table.print();
    Ok(())
}
