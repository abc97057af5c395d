//! Race conditions: the course's `counter += 1` from many threads, the lost updates counted over
//! many runs, and the fixes side by side with zero lost updates.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Conditions de course").
//!
//! Crates: std only.
//!
//! In Python, `counter += 1` is a load, an add and a store; a thread switch between the two loses
//! the other threads' increments. In Rust the literal translation does not compile (a shared
//! `&mut` is E0499, a `static mut` needs `unsafe`, a `Cell` is not `Sync`: the `compile_fail`
//! doc tests of `src/lib.rs`). What safe Rust *does* let you write is a **logical race**: every
//! access is synchronized, but the read-modify-write is split in two synchronized steps. Two
//! racy variants run here (`atomic load + store`, `map get, then insert`), then four fixes
//! (`fetch_add`, `Mutex<u64>`, the map's entry API, thread-local counts summed at `join`).
//!
//! # Concepts
//! - Data race (UB, rejected by the compiler) vs race condition (a logic bug, allowed).
//! - Atomic read-modify-write (`fetch_add`) vs a separate `load` and `store`.
//! - Check-then-act: a decision made under one lock and acted on under another is stale.
//! - The best fix is often not to share: per-thread results combined at `join`.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-sync --bin race-condition
//! cargo run --release -p examples-sync --bin race-condition -- --threads 8 --runs 50
//! cargo run --release -p examples-sync --bin race-condition -- --no-yield   # the natural window only
//! cargo run --release -p examples-sync --bin race-condition -- --json
//! cargo run --release -p examples-sync --bin race-condition -- --python   # + the course's Python
//! cargo run --release -p examples-sync --bin race-condition -- --python --increments 1000000 --runs 3
//! ```
//!
//! # What to observe
//! - The two racy rows lose updates on every run (`runs with losses` = runs/runs), and a
//!   different number each time: the classic "hard to reproduce" bug, made easy to reproduce.
//! - A racy thread yields between its read and its write once every 256 increments: the worst
//!   preemption, on purpose, so the race shows even on one core. With `--no-yield` only the
//!   natural window (nanoseconds) remains: fewer losses, in only some of the runs.
//! - Every fixed row is exact on every run. `fetch_add` still bounces one cache line between
//!   cores, the `Mutex` row pays for contention; the thread-local row shares nothing and is the
//!   fastest.
//! - `--python` adds the course's loop and its variants (`python/race_condition.py`). On
//!   CPython 3.10+ with the GIL, `counter += 1` loses **nothing**, even with
//!   `sys.setswitchinterval(1e-6)`: the interpreter switches threads only at calls and loop
//!   jumps, never inside the statement. It lost updates on 3.9 and older, and does on a
//!   free-threaded build (3.13t+). A read, then a call or `time.sleep(0)`, then the write, loses
//!   updates on every version: the race is real, the GIL only narrows where it can strike.
//!
//! # Exercises
//! 1. Replace `fetch_add(1, Relaxed)` by `fetch_add(1, SeqCst)`. Does the count change? The
//!    time? Why is `Relaxed` enough for a counter read only after `join`?
//! 2. Write the "map get, then insert" bug with `DashMap` or `RwLock<HashMap>`: is it fixed?
//! 3. Add a `compare_exchange` loop variant (`load`, compute, `compare_exchange`, retry) and
//!    count its retries: that is how `fetch_add` on a type without hardware support works.
//! 4. Run `--python --no-yield --increments 1000000`: which Python rows still lose updates,
//!    and what do they have between the read and the write that the others do not?

// === Lesson: copy from here ===

/// Six ways to count from many threads: two lose updates, four do not.
mod counters {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Barrier, Mutex, PoisonError};
    use std::thread;

    /// How often a racy thread yields between its read and its write (a power of two).
    pub const YIELD_EVERY: u64 = 256;

    /// Keys of the shared map: threads increment them round-robin, so they collide constantly.
    const KEYS: [&str; 4] = ["apple", "banana", "cherry", "date"];

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Variant {
        AtomicLoadStore,
        MapGetThenInsert,
        AtomicFetchAdd,
        Mutex,
        MapEntry,
        ThreadLocal,
    }

    impl Variant {
        pub const ALL: [Variant; 6] = [
            Variant::AtomicLoadStore,
            Variant::MapGetThenInsert,
            Variant::AtomicFetchAdd,
            Variant::Mutex,
            Variant::MapEntry,
            Variant::ThreadLocal,
        ];

        pub fn name(self) -> &'static str {
            match self {
                Variant::AtomicLoadStore => "atomic load + store",
                Variant::MapGetThenInsert => "map get, then insert",
                Variant::AtomicFetchAdd => "atomic fetch_add",
                Variant::Mutex => "Mutex<u64>",
                Variant::MapEntry => "map entry API",
                Variant::ThreadLocal => "thread-local + join",
            }
        }

        pub fn racy(self) -> bool {
            matches!(self, Variant::AtomicLoadStore | Variant::MapGetThenInsert)
        }
    }

    /// `threads` threads each add 1 `increments` times with `variant`; returns the final count
    /// (the sum of all map values for the map variants). Every thread waits on a barrier so they
    /// all start at the same moment. `widen`: yield inside the racy window now and then.
    pub fn count_once(variant: Variant, threads: usize, increments: u64, widen: bool) -> u64 {
        let barrier = Barrier::new(threads);
        // The window between read and write, widened on purpose once every YIELD_EVERY increments.
        let window = |i: u64| {
            if widen && i.is_multiple_of(YIELD_EVERY) {
                thread::yield_now();
            }
        };
        let counter = AtomicU64::new(0);
        let locked = Mutex::new(0u64);
        let map: Mutex<HashMap<&str, u64>> = Mutex::new(HashMap::new());
        // A panicking thread cannot leave these plain counters half-updated: ignore poisoning.
        let lock_map = || map.lock().unwrap_or_else(PoisonError::into_inner);

        let locals: u64 = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (barrier, counter, locked) = (&barrier, &counter, &locked);
                    s.spawn(move || {
                        barrier.wait();
                        let mut local = 0u64;
                        for i in 0..increments {
                            let key = KEYS[(i % KEYS.len() as u64) as usize];
                            match variant {
                                Variant::AtomicLoadStore => {
                                    // BUG: two atomic steps are not one atomic step.
                                    let v = counter.load(Ordering::Relaxed);
                                    window(i);
                                    counter.store(v + 1, Ordering::Relaxed);
                                }
                                Variant::MapGetThenInsert => {
                                    // BUG: the value read under the first guard is stale by
                                    // the time the second guard writes it back.
                                    let v = lock_map().get(key).copied().unwrap_or(0);
                                    window(i);
                                    lock_map().insert(key, v + 1);
                                }
                                Variant::AtomicFetchAdd => {
                                    counter.fetch_add(1, Ordering::Relaxed);
                                }
                                Variant::Mutex => {
                                    *locked.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                                }
                                Variant::MapEntry => {
                                    *lock_map().entry(key).or_insert(0) += 1;
                                }
                                Variant::ThreadLocal => local += 1,
                            }
                        }
                        local
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("counting threads do not panic"))
                .sum()
        });

        match variant {
            Variant::AtomicLoadStore | Variant::AtomicFetchAdd => counter.into_inner(),
            Variant::Mutex => locked.into_inner().unwrap_or_else(PoisonError::into_inner),
            Variant::MapGetThenInsert | Variant::MapEntry => map
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .sum(),
            Variant::ThreadLocal => locals,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn fixed_variants_are_exact() {
            for v in Variant::ALL.into_iter().filter(|v| !v.racy()) {
                assert_eq!(count_once(v, 4, 5_000, true), 20_000, "{}", v.name());
            }
        }

        #[test]
        fn racy_variants_lose_updates_when_the_window_is_widened() {
            // The yield inside the window makes a switch at the worst moment near-certain;
            // summing over a few runs makes a zero practically impossible.
            for v in Variant::ALL.into_iter().filter(|v| v.racy()) {
                let lost: u64 = (0..5)
                    .map(|_| 4 * 20_000 - count_once(v, 4, 20_000, true))
                    .sum();
                assert!(lost > 0, "{} lost nothing in 5 runs", v.name());
            }
        }

        #[test]
        fn a_lost_update_only_ever_makes_the_count_smaller() {
            for v in Variant::ALL {
                assert!(count_once(v, 2, 1_000, false) <= 2_000, "{}", v.name());
            }
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use counters::{Variant, YIELD_EVERY, count_once};
use examples_sync::python_peer;
use examples_sync::table::Table;
use serde::{Deserialize, Serialize};
use shared::cli;
use shared::report::fmt_duration;

/// Count the updates lost by racy counters, and show that the fixes lose none.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Threads incrementing the shared counter at the same time (2 to 64).
    #[arg(long, default_value_t = 4, value_parser = cli::usize_in(2, 64))]
    threads: usize,
    /// Increments per thread (1 to 10,000,000).
    #[arg(long, default_value_t = 50_000, value_parser = cli::u64_in(1, 10_000_000))]
    increments: u64,
    /// Runs of each variant; lost updates are counted on each run (1 to 1000).
    #[arg(long, default_value_t = 10, value_parser = cli::u32_in(1, 1000))]
    runs: u32,
    /// Do not yield inside the racy read-modify-write: only the natural window remains.
    #[arg(long)]
    no_yield: bool,
    /// Also run the course's Python (python/race_condition.py) with the same parameters: the
    /// course's `counter += 1` loop and its variants, in the same table.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// One variant's losses over the runs (the Python recipe prints the same fields).
#[derive(Debug, Serialize, Deserialize)]
struct VariantReport {
    name: String,
    racy: bool,
    expected: u64,
    lost_total: u64,
    lost_min: u64,
    lost_max: u64,
    runs_with_losses: u32,
    mean_run_s: f64,
    /// Python rows only: the Rust row it mirrors, for the time ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mirrors: Option<String>,
}

#[derive(Debug, Serialize)]
struct RaceReport {
    threads: usize,
    increments: u64,
    runs: u32,
    widened_window: bool,
    variants: Vec<VariantReport>,
    /// `--python`: the recipe's whole JSON object (its `variants` have the fields above).
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<serde_json::Value>,
}

/// Runs `variant` `--runs` times and counts what each run lost.
fn measure(variant: Variant, args: &Args) -> VariantReport {
    // At most 64 × 10^7: no overflow.
    let expected = args.threads as u64 * args.increments;
    let mut lost = Vec::with_capacity(args.runs as usize);
    let mut total = Duration::ZERO;
    for _ in 0..args.runs {
        let start = Instant::now();
        let got = count_once(variant, args.threads, args.increments, !args.no_yield);
        total += start.elapsed();
        // A lost update can only make the count smaller (tested in the lesson).
        lost.push(expected.saturating_sub(got));
    }
    VariantReport {
        name: variant.name().to_string(),
        racy: variant.racy(),
        expected,
        lost_total: lost.iter().sum(),
        lost_min: lost.iter().copied().min().unwrap_or(0),
        lost_max: lost.iter().copied().max().unwrap_or(0),
        runs_with_losses: lost.iter().filter(|&&l| l > 0).count() as u32,
        mean_run_s: total.as_secs_f64() / f64::from(args.runs),
        mirrors: None,
    }
}

/// The Python recipe on the same parameters; its variants, checked against the Rust ones.
fn run_python(
    args: &Args,
    rust: &[VariantReport],
) -> anyhow::Result<(serde_json::Value, Vec<VariantReport>)> {
    let mut py_args = vec![
        "--threads".to_string(),
        args.threads.to_string(),
        "--increments".into(),
        args.increments.to_string(),
        "--runs".into(),
        args.runs.to_string(),
    ];
    if args.no_yield {
        py_args.push("--no-yield".into());
    }
    let json = python_peer::run_recipe("race_condition", &py_args)?;
    let variants: Vec<VariantReport> = serde_json::from_value(json["variants"].clone())
        .context("the recipe's `variants` do not have the Rust report's fields")?;
    let expected = args.threads as u64 * args.increments;
    for v in &variants {
        // The results that must agree: the same count expected, and every fix exact in both.
        ensure!(
            v.expected == expected,
            "Python expected {} updates, Rust {expected}",
            v.expected
        );
        ensure!(
            v.racy || v.lost_total == 0,
            "results differ: Python's fix `{}` lost {} updates (Rust's fixes are exact)",
            v.name,
            v.lost_total
        );
        if let Some(m) = &v.mirrors {
            ensure!(
                rust.iter().any(|r| &r.name == m),
                "Python row mirrors an unknown Rust row {m:?}"
            );
        }
    }
    Ok((json, variants))
}

fn verdict(v: &VariantReport) -> &'static str {
    match (v.racy, v.lost_total) {
        (true, 0) => "racy (no loss this time)",
        (true, _) => "RACE: updates lost",
        (false, 0) => "exact",
        (false, _) => "BUG in a fix!",
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.json {
        println!(
            "{} threads x {} increments = {} expected, {} runs per variant{}\n",
            args.threads,
            args.increments,
            args.threads as u64 * args.increments,
            args.runs,
            if args.no_yield {
                " (natural window only)".to_string()
            } else {
                format!(" (racy threads yield inside the window every {YIELD_EVERY} increments)")
            }
        );
    }
    let variants: Vec<VariantReport> = Variant::ALL.iter().map(|&v| measure(v, &args)).collect();
    let fixes_exact = variants.iter().all(|v| v.racy || v.lost_total == 0);
    let python = if args.python {
        Some(run_python(&args, &variants)?)
    } else {
        None
    };

    if args.json {
        let report = RaceReport {
            threads: args.threads,
            increments: args.increments,
            runs: args.runs,
            widened_window: !args.no_yield,
            variants,
            python: python.map(|(json, _)| json),
        };
        println!("{}", serde_json::to_string(&report)?);
        ensure!(fixes_exact, "a fixed variant lost updates");
        return Ok(());
    }

    let ratio_column = python.is_some().then_some("Python / Rust");
    let mut table = Table::new(
        [
            "variant",
            "lost (min..max per run)",
            "lost, % of total",
            "runs with losses",
            "time per run",
            "verdict",
        ]
        .into_iter()
        .chain(ratio_column),
    );
    // The "Rust: " / "Python: " prefixes only when both languages share the table.
    let mut row = |lang: &str, v: &VariantReport, ratio: String| {
        let share = 100.0 * v.lost_total as f64 / (v.expected as f64 * f64::from(args.runs));
        table.row([
            format!("{lang}{}", v.name),
            format!("{}..{}", v.lost_min, v.lost_max),
            format!("{share:.2} %"),
            format!("{}/{}", v.runs_with_losses, args.runs),
            fmt_duration(Duration::from_secs_f64(v.mean_run_s)),
            verdict(v).to_string(),
            ratio,
        ]);
    };
    let rust = if python.is_some() { "Rust: " } else { "" };
    for v in &variants {
        row(rust, v, String::new());
    }
    if let Some((json, py)) = &python {
        for v in py {
            let ratio = v
                .mirrors
                .as_ref()
                .and_then(|m| variants.iter().find(|r| &r.name == m))
                .map_or_else(
                    || "-".into(),
                    |r| python_peer::slower(v.mean_run_s, r.mean_run_s),
                );
            row("Python: ", v, ratio);
        }
        table.print();
        println!(
            "\nPython: {} (GIL enabled: {}, switch interval {} ms). \"Python / Rust\" compares a \
             Python row with the Rust row it mirrors.",
            json["interpreter"].as_str().unwrap_or("?"),
            json["gil_enabled"],
            json["switch_interval_s"].as_f64().unwrap_or(0.0) * 1e3
        );
        println!(
            "CPython (3.10+, with the GIL) switches threads only at calls and loop jumps, never \
             inside `counter += 1`: the course's loop loses nothing here. It lost updates on \
             CPython <= 3.9, and does on a free-threaded build (3.13t+). A read, then a call or \
             `time.sleep(0)`, then the write, loses updates on every version."
        );
    } else {
        table.print();
    }
    println!(
        "\nThe data race itself (`counter += 1` on a shared `&mut` or `static mut`) does not \
         compile: see the compile_fail doc tests in examples-sync/src/lib.rs (their error codes \
         are checked by tests/compile_errors.rs)."
    );
    ensure!(fixes_exact, "a fixed variant lost updates");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_counts_are_refused_by_clap() {
        for bad in [
            ["--threads", "1"],
            ["--threads", "65"],
            ["--increments", "0"],
            ["--increments", "18446744073709551615"],
            ["--runs", "0"],
            ["--runs", "NaN"],
        ] {
            let err = Args::try_parse_from(["race-condition", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        assert!(Args::try_parse_from(["race-condition", "--threads", "64"]).is_ok());
    }
}
