//! The event loop, measured: one blocking call stalls every task on a current-thread runtime.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** (la boucle d'événements):
//! asyncio runs every coroutine on one thread, so a `time.sleep()` or a CPU loop inside a
//! coroutine freezes all the others. A tokio `current_thread` runtime is exactly that model. Here
//! a ticker task wants to run every `--tick-ms` and measures how late each tick is, while another
//! task misbehaves, then behaves.
//!
//! Crates: `tokio = { version = "1", features = ["rt-multi-thread", "macros", "time"] }`,
//! `tokio-util = "0.7"`
//!
//! # Concepts
//! - A task gives the thread back only at an `.await` that is not ready. `std::thread::sleep` and
//!   a CPU loop never do: the ticker is late by the whole blocking duration.
//! - Fixes: `tokio::time::sleep` (waits without blocking), `spawn_blocking` (moves blocking work to
//!   another thread), `yield_now` between small chunks of CPU work (cooperative scheduling).
//! - The multi-thread runtime hides a blocked worker because other workers steal its tasks, until
//!   every worker is blocked: it is a cushion, not a fix.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --bin event-loop
//! cargo run --release -p examples-async --bin event-loop -- --block-ms 500 --tick-ms 5
//! cargo run --release -p examples-async --bin event-loop -- --python   # asyncio's loop beside it
//! ```
//!
//! # What to observe
//! - `blocking std::thread::sleep` and `CPU loop in a task`: max lateness ≈ `--block-ms`.
//! - `tokio::time::sleep`, `spawn_blocking`, `yield_now every 1 ms`: max lateness ≈ 1 ms.
//! - `multi-thread, blocking sleep`: small lateness, but one of two workers was lost meanwhile.
//! - `--python` (`python/event_loop.py`): asyncio's loop stalls the same way under `time.sleep`
//!   and a CPU loop, and `asyncio.sleep`, `to_thread` and `await asyncio.sleep(0)` fix it.
//!
//! # Exercises
//! 1. Run the multi-thread scenario with `worker_threads(1)`: what happens to the ticker?
//! 2. Make the CPU task yield every 10 ms instead of 1 ms and predict the max lateness first.
//! 3. Replace the ticker's `sleep_until` by `tokio::time::interval` with the default
//!    `MissedTickBehavior::Burst` and explain the burst of ticks after a stall.
//! 4. Find the same stall in asyncio: `loop.slow_callback_duration` and `PYTHONASYNCIODEBUG=1`.

// === Lesson: copy from here ===

/// A ticker that measures its own lateness, next to a task that blocks the loop (or not).
mod event_loop {
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    /// What the "other" task does with its `block` of work.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Work {
        /// `std::thread::sleep` inside async code: the classic mistake.
        ThreadSleep,
        /// A busy CPU loop inside async code.
        CpuLoop,
        /// The fix for waiting: `tokio::time::sleep`.
        TokioSleep,
        /// The fix for blocking work: run it on the blocking pool.
        SpawnBlocking,
        /// The fix for CPU work that must stay: chop it and `yield_now` every millisecond.
        CpuYielding,
    }

    /// Builds a runtime (one thread, the asyncio model, or two worker threads), runs the ticker
    /// next to `blocks` rounds of `work`, and returns each tick's lateness.
    pub fn run_scenario(
        work: Work,
        multi_thread: bool,
        block: Duration,
        blocks: u32,
        tick: Duration,
    ) -> std::io::Result<Vec<Duration>> {
        let rt = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        };
        Ok(rt.block_on(scenario(work, block, blocks, tick)))
    }

    /// Run the ticker next to a task doing `work`; return each tick's lateness.
    pub async fn scenario(
        work: Work,
        block: Duration,
        blocks: u32,
        tick: Duration,
    ) -> Vec<Duration> {
        let done = CancellationToken::new();
        let ticker = tokio::spawn(ticker(tick, done.clone()));
        // Let the ticker start before the trouble does.
        tokio::time::sleep(tick * 2).await;
        for _ in 0..blocks {
            match work {
                Work::ThreadSleep => std::thread::sleep(block),
                Work::CpuLoop => spin(block),
                Work::TokioSleep => tokio::time::sleep(block).await,
                Work::SpawnBlocking => {
                    // If the blocking pool were gone the work simply did not happen; the
                    // ticker's numbers are still what this scenario shows.
                    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(block)).await;
                }
                Work::CpuYielding => {
                    let end = Instant::now() + block;
                    while Instant::now() < end {
                        spin(Duration::from_millis(1));
                        tokio::task::yield_now().await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        done.cancel();
        ticker.await.unwrap_or_default()
    }

    /// Wake up every `tick` and record how late each wake-up is, until `done`.
    async fn ticker(tick: Duration, done: CancellationToken) -> Vec<Duration> {
        let mut lateness = Vec::new();
        let mut deadline = tokio::time::Instant::now() + tick;
        loop {
            tokio::select! {
                () = done.cancelled() => return lateness,
                () = tokio::time::sleep_until(deadline) => {}
            }
            let now = tokio::time::Instant::now();
            lateness.push(now - deadline);
            // Next deadline from *now*: after a stall we want one late tick, not a burst of
            // catch-ups.
            deadline = now + tick;
        }
    }

    /// Burn CPU for `d` (what a JSON parse, a hash or an image resize does to an event loop).
    fn spin(d: Duration) {
        let end = Instant::now() + d;
        let mut x = 0u64;
        while Instant::now() < end {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    /// The largest and the mean lateness.
    pub fn max_and_mean(lateness: &[Duration]) -> (Duration, Duration) {
        let max = lateness.iter().max().copied().unwrap_or_default();
        let mean = u32::try_from(lateness.len())
            .ok()
            .and_then(|n| lateness.iter().sum::<Duration>().checked_div(n))
            .unwrap_or_default();
        (max, mean)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A lower bound only: a blocked thread cannot run the ticker, so some tick is at least
        /// `block - tick` late. Any extra load on the machine only makes it later.
        #[test]
        fn a_blocking_task_delays_the_ticker_by_the_blocking_time() {
            let (block, tick) = (Duration::from_millis(100), Duration::from_millis(10));
            let lateness = run_scenario(Work::ThreadSleep, false, block, 1, tick).unwrap();
            let (max, _) = max_and_mean(&lateness);
            assert!(max >= block - tick, "max lateness {max:?}");
        }

        #[test]
        fn every_scenario_ticks_and_ends() {
            for work in [
                Work::TokioSleep,
                Work::SpawnBlocking,
                Work::CpuYielding,
                Work::CpuLoop,
            ] {
                let lateness = run_scenario(
                    work,
                    false,
                    Duration::from_millis(20),
                    1,
                    Duration::from_millis(5),
                )
                .unwrap();
                assert!(!lateness.is_empty(), "{work:?}: the ticker never ran");
            }
        }

        #[test]
        fn max_and_mean_of_nothing_is_zero() {
            assert_eq!(max_and_mean(&[]), (Duration::ZERO, Duration::ZERO));
            let ms = Duration::from_millis;
            assert_eq!(max_and_mean(&[ms(1), ms(3)]), (ms(3), ms(2)));
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use event_loop::{Work, max_and_mean, run_scenario};
use shared::cli;

/// A ticker measures its own lateness while another task blocks the event loop (or not).
#[derive(Parser, Debug)]
#[command(name = "event-loop", version)]
struct Args {
    /// How long the misbehaving task blocks each time, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = cli::u64_in(1, 10_000))]
    block_ms: u64,
    /// The ticker's period, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = cli::u64_in(1, 1_000))]
    tick_ms: u64,
    /// How many times the misbehaving task blocks (with a 50 ms async pause in between).
    #[arg(long, default_value_t = 3, value_parser = cli::u32_in(1, 100))]
    blocks: u32,
    /// Also run the same scenarios on asyncio's loop (python/event_loop.py), in one table.
    #[arg(long)]
    python: bool,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One row of the table: how late the ticker was in one scenario.
#[derive(Debug, serde::Serialize)]
struct ScenarioLateness {
    scenario: String,
    ticks: usize,
    max_late_ms: f64,
    mean_late_ms: f64,
}

/// The scenarios: the name printed, the id python/event_loop.py reports under (none: asyncio
/// has no multi-thread loop), what the other task does, and on which runtime.
const SCENARIOS: [(&str, Option<&str>, Work, bool); 6] = [
    (
        "blocking std::thread::sleep",
        Some("thread_sleep"),
        Work::ThreadSleep,
        false,
    ),
    ("CPU loop in a task", Some("cpu_loop"), Work::CpuLoop, false),
    (
        "tokio::time::sleep",
        Some("async_sleep"),
        Work::TokioSleep,
        false,
    ),
    (
        "spawn_blocking(thread::sleep)",
        Some("offload"),
        Work::SpawnBlocking,
        false,
    ),
    (
        "CPU loop, yield_now every 1 ms",
        Some("cpu_yielding"),
        Work::CpuYielding,
        false,
    ),
    (
        "multi-thread, blocking sleep",
        None,
        Work::ThreadSleep,
        true,
    ),
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `--python`: find python3 before any work; missing, it is a usage error that names the fix.
    let python = match args
        .python
        .then(|| shared::python::Python::find(&[]))
        .transpose()
    {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    let block = Duration::from_millis(args.block_ms);
    let tick = Duration::from_millis(args.tick_ms);
    let mut rows = Vec::new();
    let table = !args.json && python.is_none();
    if table {
        println!(
            "a ticker wants to run every {tick:?}; another task does {} x {block:?} of work\n",
            args.blocks
        );
        println!(
            "{:<34} {:>6} {:>14} {:>14}",
            "scenario", "ticks", "max lateness", "mean lateness"
        );
    }
    for (name, _, work, multi_thread) in SCENARIOS {
        let lateness = run_scenario(work, multi_thread, block, args.blocks, tick)
            .context("building a runtime")?;
        let (max, mean) = max_and_mean(&lateness);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let row = ScenarioLateness {
            scenario: name.to_string(),
            ticks: lateness.len(),
            max_late_ms: ms(max),
            mean_late_ms: ms(mean),
        };
        if table {
            println!(
                "{:<34} {:>6} {:>11.1} ms {:>11.2} ms",
                row.scenario, row.ticks, row.max_late_ms, row.mean_late_ms
            );
        }
        rows.push(row);
    }
    let python_run = match &python {
        Some(py) => Some(
            py.run_recipe(
                "examples-async/python/event_loop.py",
                &[
                    "--block-ms",
                    &args.block_ms.to_string(),
                    "--tick-ms",
                    &args.tick_ms.to_string(),
                    "--blocks",
                    &args.blocks.to_string(),
                ],
            )?
            .json,
        ),
        None => None,
    };
    // What cannot depend on the machine: a loop blocked for `block` cannot tick, so in both
    // languages the blocking scenarios have a tick at least `block - tick` late.
    let floor_ms = args.block_ms.saturating_sub(args.tick_ms) as f64;
    let mut differences = Vec::new();
    for (row, (_, id, work, multi)) in rows.iter().zip(SCENARIOS) {
        let blocking = matches!(work, Work::ThreadSleep | Work::CpuLoop) && !multi;
        if !blocking {
            continue;
        }
        if row.max_late_ms < floor_ms {
            differences.push(format!(
                "Rust, {}: never late by the blocking time",
                row.scenario
            ));
        }
        if let Some(p) = python_run.as_ref().and_then(|p| python_row(p, id))
            && p["max_late_ms"].as_f64().unwrap_or(0.0) < floor_ms
        {
            differences.push(format!(
                "Python, {}: never late by the blocking time",
                row.scenario
            ));
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "block_ms": args.block_ms, "tick_ms": args.tick_ms, "scenarios": rows,
                "python": python_run, "differences": differences,
            })
        );
    } else if let Some(p) = &python_run {
        print_side_by_side(&args, &rows, p);
    } else {
        println!("\nlateness = how long after its deadline the ticker actually ran");
    }
    for d in &differences {
        eprintln!("DIFFERENT: {d}");
    }
    if !differences.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn python_row<'a>(
    python: &'a serde_json::Value,
    id: Option<&str>,
) -> Option<&'a serde_json::Value> {
    let id = id?;
    python["scenarios"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)
}

fn print_side_by_side(args: &Args, rows: &[ScenarioLateness], python: &serde_json::Value) {
    println!(
        "a ticker wants to run every {} ms; another task does {} x {} ms of work; tokio's \
         current-thread runtime and asyncio's loop ({})\n",
        args.tick_ms,
        args.blocks,
        args.block_ms,
        python["python"].as_str().unwrap_or("python3")
    );
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>9}  asyncio",
        "scenario (Rust)", "max Rust", "max Py", "mean Rust", "mean Py"
    );
    println!("{}", "-".repeat(112));
    for (row, (_, id, _, _)) in rows.iter().zip(SCENARIOS) {
        let p = python_row(python, id);
        let cell = |key: &str| {
            p.and_then(|p| p[key].as_f64())
                .map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
        };
        println!(
            "{:<32} {:>9.1} {:>9} {:>9.2} {:>9}  {}",
            row.scenario,
            row.max_late_ms,
            cell("max_late_ms"),
            row.mean_late_ms,
            cell("mean_late_ms"),
            p.and_then(|p| p["scenario"].as_str())
                .unwrap_or("(asyncio has one loop thread)")
        );
    }
    println!("\nlateness in ms = how long after its deadline the ticker actually ran");
}
