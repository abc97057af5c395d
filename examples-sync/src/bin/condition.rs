//! Condition variables: a bounded buffer (Python's `queue.Queue(maxsize)`) built from a `Mutex`
//! and two `Condvar`s, spurious wake-ups handled with `while`, and `notify_one` vs `notify_all`
//! measured.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Conditions").
//!
//! Crates: std only (and `crate::bounded`: copy `src/bounded.rs` and `src/sync.rs`).
//!
//! The buffer lives in `src/bounded.rs`; loom checks it in `tests/loom.rs`, including the proof
//! that the tempting shortcut (one condvar for both sides + `notify_one`) deadlocks. Python's
//! `threading.Condition` is a lock plus a condvar in one object; in Rust the `Condvar` is
//! separate and `wait` takes the `MutexGuard`, so you cannot wait without holding the lock that
//! protects the condition.
//!
//! # Concepts
//! - `wait` releases the mutex and sleeps atomically, and re-locks before returning.
//! - Always wait in a loop on the *condition* (`while buffer.is_full()`), never on the
//!   notification: wake-ups can be spurious, and another thread can take the slot first. std's
//!   `Condvar::wait_while(guard, |s| cond)` is that loop, shown below for the start gate
//!   (Python's `Condition.wait_for(predicate)` is the same loop).
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
//! cargo run --release -p examples-sync --bin condition -- --python   # + threading.Condition
//! RUSTFLAGS="--cfg loom" cargo test -p examples-sync --release --test loom   # the model checks
//! ```
//!
//! # What to observe
//! - Every row delivers every item exactly once (the checksum column).
//! - "futile" wake-ups: woken, condition still false, back to sleep. With 8 idle consumers and
//!   `notify_all`, one push wakes all 8 and 7 go back to sleep: most wake-ups are futile. With
//!   `notify_one` some still are: a consumer that never slept took the item first ("stolen"
//!   wake-ups). That is why the `while` is mandatory.
//! - Throughput follows: futile wake-ups are context switches that do no work, so the
//!   `notify_all` rows are clearly slower than two condvars + `notify_one`.
//! - With as many producers as consumers (`--producers 4 --consumers 4`) few threads sleep at
//!   once and the differences shrink: measure your own shape before "optimizing" signalling.
//! - The bounded capacity is back-pressure: fast producers block instead of filling memory.
//!
//! # Exercises
//! 1. Checked: write the bounded queue yourself (`cargo run -p shared --bin exercises -- check
//!    sync/03`: loom, stress, a watchdog; `if` for `while` and one shared condvar are the traps).
//! 2. Notify while still holding the lock instead of after `drop(state)`. Measure.
//! 3. Add `pop_timeout(d) -> Option<T>` with `Condvar::wait_timeout`, like Python's
//!    `queue.get(timeout=...)`.
//! 4. Compare with `std::sync::mpsc::sync_channel(capacity)` and `crossbeam_channel::bounded`
//!    (see the `queues` example). Why are they faster?

// === Lesson: copy from here ===

/// Producers and consumers through one bounded buffer, all released at once by a start gate.
mod producers_consumers {
    use std::io;
    use std::sync::{Condvar, Mutex, PoisonError};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::bounded::{BoundedBuffer, Signalling, Wakeup};

    /// A start gate with std's `wait_while`: the loop on the condition, written for you.
    struct Gate {
        open: Mutex<bool>,
        changed: Condvar,
    }

    impl Gate {
        fn new() -> Self {
            Gate {
                open: Mutex::new(false),
                changed: Condvar::new(),
            }
        }
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

    /// How one signalling did.
    #[derive(Debug, Clone, Copy)]
    pub struct BufferRun {
        pub items: u64,
        /// Every item arrived exactly once (the sum of all items is right).
        pub checksum_ok: bool,
        pub wakeups: u64,
        pub futile_wakeups: u64,
        pub elapsed: Duration,
    }

    pub fn describe(s: Signalling) -> &'static str {
        match (s.separate_condvars, s.wakeup) {
            (true, Wakeup::One) => "2 condvars, notify_one",
            (true, Wakeup::All) => "2 condvars, notify_all",
            (false, Wakeup::All) => "1 shared condvar, notify_all",
            (false, Wakeup::One) => "1 shared condvar, notify_one (can deadlock)",
        }
    }

    /// `producers` threads push `items` numbers each through a buffer of `capacity`, to
    /// `consumers` threads that sum what they pop. Item values are 0..n, so the sum tells
    /// whether each arrived once.
    pub fn pump_through_buffer(
        signalling: Signalling,
        producers: u64,
        consumers: u64,
        items: u64,
        capacity: usize,
    ) -> io::Result<BufferRun> {
        let buffer = BoundedBuffer::with_signalling(capacity, signalling);
        let gate = Gate::new();
        let n = producers * items;
        let (sum, elapsed) = thread::scope(|s| -> io::Result<(u64, Duration)> {
            let consumers = (0..consumers)
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
                .collect::<io::Result<Vec<_>>>()?;
            let producers = (0..producers)
                .map(|p| {
                    let (buffer, gate) = (&buffer, &gate);
                    thread::Builder::new()
                        .name(format!("producer-{p}"))
                        .spawn_scoped(s, move || {
                            gate.wait();
                            for i in 0..items {
                                // Blocks while full: back-pressure. Fails only after close().
                                buffer
                                    .push(p * items + i)
                                    .expect("closed only after producers end");
                            }
                        })
                })
                .collect::<io::Result<Vec<_>>>()?;
            let start = Instant::now();
            gate.open();
            for p in producers {
                p.join().expect("producers only push");
            }
            buffer.close(); // tells the consumers there is nothing more to come
            let sum = consumers
                .into_iter()
                .map(|c| c.join().expect("consumers only pop and add"))
                .sum();
            Ok((sum, start.elapsed()))
        })?;
        let stats = buffer.stats();
        Ok(BufferRun {
            items: n,
            // 0 + 1 + … + (n-1); `saturating_sub`: no items, no sum.
            checksum_ok: sum == n * n.saturating_sub(1) / 2,
            wakeups: stats.wakeups,
            futile_wakeups: stats.futile,
            elapsed,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_correct_signalling_delivers_every_item_once() {
            for s in [
                Signalling::SEPARATE_NOTIFY_ONE,
                Signalling::SEPARATE_NOTIFY_ALL,
                Signalling::SHARED_NOTIFY_ALL,
            ] {
                let run = pump_through_buffer(s, 2, 3, 500, 2).unwrap();
                assert!(run.checksum_ok, "{}", describe(s));
                assert_eq!(run.items, 1_000);
                assert!(run.futile_wakeups <= run.wakeups);
            }
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::bounded::{self, Signalling}; // `bounded`: the lesson's `crate::bounded`
use examples_sync::python_peer;
use examples_sync::table::Table;
use producers_consumers::{BufferRun, describe, pump_through_buffer};
use shared::cli;
use shared::report::{fmt_duration, fmt_rate};

/// A bounded buffer on Mutex + Condvar; notify_one vs notify_all, one vs two condvars, measured.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Producer threads (1 to 64).
    #[arg(long, default_value_t = 1, value_parser = cli::u64_in(1, 64))]
    producers: u64,
    /// Consumer threads, a pool of workers mostly waiting for jobs: where `notify_all` hurts
    /// (1 to 64).
    #[arg(long, default_value_t = 8, value_parser = cli::u64_in(1, 64))]
    consumers: u64,
    /// Items per producer (1 to 1,000,000).
    #[arg(long, default_value_t = 40_000, value_parser = cli::u64_in(1, 1_000_000))]
    items: u64,
    /// Buffer capacity (1 to 1,000,000).
    #[arg(long, default_value_t = 8, value_parser = cli::usize_in(1, 1_000_000))]
    capacity: usize,
    /// Also run the course's Python (python/condition.py: the same buffer on
    /// `threading.Condition`) with the same parameters, in the same table.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn run_json(s: Signalling, r: &BufferRun) -> serde_json::Value {
    serde_json::json!({
        "signalling": describe(s),
        "items": r.items,
        "checksum_ok": r.checksum_ok,
        "wakeups": r.wakeups,
        "futile_wakeups": r.futile_wakeups,
        "elapsed_s": r.elapsed.as_secs_f64(),
        "items_per_s": r.items as f64 / r.elapsed.as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runs = Vec::new();
    for s in [
        Signalling::SEPARATE_NOTIFY_ONE,
        Signalling::SEPARATE_NOTIFY_ALL,
        Signalling::SHARED_NOTIFY_ALL,
    ] {
        let run = pump_through_buffer(s, args.producers, args.consumers, args.items, args.capacity)
            .with_context(|| format!("{}: spawning the threads", describe(s)))?;
        runs.push((s, run));
    }
    ensure!(
        runs.iter().all(|(_, r)| r.checksum_ok),
        "items were lost or duplicated"
    );

    let python = if args.python {
        let json = python_peer::run_recipe(
            "condition",
            &[
                "--producers".into(),
                args.producers.to_string(),
                "--consumers".into(),
                args.consumers.to_string(),
                "--items".into(),
                args.items.to_string(),
                "--capacity".into(),
                args.capacity.to_string(),
            ],
        )?;
        let py_runs = python_runs(&json)?;
        Some((json, py_runs))
    } else {
        None
    };
    // What must agree: the same items, each delivered exactly once, in every signalling.
    let agreement = python.as_ref().map(|(_, py)| -> anyhow::Result<()> {
        ensure!(
            py.len() == runs.len(),
            "Python ran {} signallings",
            py.len()
        );
        for (name, r) in py {
            ensure!(
                r.checksum_ok && r.items == args.producers * args.items,
                "Python, {name}: {} items, checksum ok = {}",
                r.items,
                r.checksum_ok
            );
        }
        Ok(())
    });

    if args.json {
        let runs: Vec<_> = runs.iter().map(|(s, r)| run_json(*s, r)).collect();
        let mut out = serde_json::json!({
            "producers": args.producers,
            "consumers": args.consumers,
            "capacity": args.capacity,
            "runs": runs,
        });
        if let Some((json, _)) = &python {
            out["python"] = json.clone();
        }
        println!("{out}");
        if let Some(Err(why)) = agreement {
            anyhow::bail!("the Python and Rust results differ: {why}");
        }
        return Ok(());
    }
    println!(
        "{} producers -> buffer of {} -> {} consumers, {} items\n",
        args.producers,
        args.capacity,
        args.consumers,
        args.producers * args.items
    );
    let ratio_column = python.is_some().then_some("Python / Rust");
    let mut table = Table::new(
        [
            "signalling",
            "checksum",
            "wake-ups",
            "futile",
            "futile %",
            "time",
            "throughput",
        ]
        .into_iter()
        .chain(ratio_column),
    );
    let mut row = |name: String, r: &BufferRun, ratio: String| {
        table.row([
            name,
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
            fmt_duration(r.elapsed),
            fmt_rate(r.items as f64, r.elapsed, "items"),
            ratio,
        ]);
    };
    // The "Rust: " prefix only when both languages share the table.
    let rust = if python.is_some() { "Rust: " } else { "" };
    for (s, r) in &runs {
        row(format!("{rust}{}", describe(*s)), r, String::new());
    }
    if let Some((_, py)) = &python {
        for ((name, p), (_, r)) in py.iter().zip(&runs) {
            let ratio = python_peer::slower(p.elapsed.as_secs_f64(), r.elapsed.as_secs_f64());
            row(format!("Python: {name}"), p, ratio);
        }
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
    if let Some((json, _)) = &python {
        println!(
            "\nPython: {}, `threading.Condition` (two conditions on one lock, as queue.Queue does; it adds a third, all_tasks_done, for join()).",
            json["interpreter"].as_str().unwrap_or("?")
        );
    }
    if let Some(Err(why)) = agreement {
        anyhow::bail!("the Python and Rust results differ: {why}");
    }
    Ok(())
}

/// The Python recipe's runs, as (signalling, run).
fn python_runs(json: &serde_json::Value) -> anyhow::Result<Vec<(String, BufferRun)>> {
    let runs = json["runs"]
        .as_array()
        .context("the Python recipe's JSON has no `runs`")?;
    runs.iter()
        .map(|r| {
            Ok((
                r["signalling"].as_str().unwrap_or("?").to_string(),
                BufferRun {
                    items: python_peer::u64_field(r, "items")?,
                    checksum_ok: r["checksum_ok"] == true,
                    wakeups: python_peer::u64_field(r, "wakeups")?,
                    futile_wakeups: python_peer::u64_field(r, "futile_wakeups")?,
                    elapsed: std::time::Duration::from_secs_f64(python_peer::f64_field(
                        r,
                        "elapsed_s",
                    )?),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--items", "0"],
            ["--items", "18446744073709551615"],
            ["--capacity", "0"],
            ["--producers", "0"],
            ["--consumers", "-1"],
            ["--consumers", "1e30"],
        ] {
            let err = Args::try_parse_from(["condition", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
