//! async/await from first principles: lazy futures, tasks, `join!`, `select!`, timeouts, cancellation.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio**: coroutines, tasks, the event
//! loop. Every step prints what it did and how long it took, next to what the asyncio reader
//! expects.
//!
//! Crates: `tokio = { version = "1", features = ["rt-multi-thread", "macros", "time", "test-util"] }`,
//! `tokio-util = "0.7"`, `anyhow = "1"` (`test-util` is for the paused-clock tests only)
//!
//! # Concepts (asyncio → tokio)
//! - A coroutine object does nothing until awaited; so does a Rust future, but *more so*: there is
//!   no `asyncio.create_task` implicitly scheduling it. Nothing runs until `.await` or `spawn`.
//! - `await a(); await b()` is sequential; `join!(a(), b())` (≈ `asyncio.gather`) runs both
//!   concurrently *inside the current task*; `try_join!` stops at the first error and drops the rest.
//! - `tokio::spawn` (≈ `create_task`) makes an independent task that the multi-thread runtime may run
//!   on any worker thread; its `JoinHandle` gives the result, or a `JoinError` if it panicked.
//! - `select!` (≈ `asyncio.wait(FIRST_COMPLETED)` + cancelling the others) waits for the first
//!   branch; the losers are *dropped*, which is how Rust cancels: at an `.await` point, with
//!   destructors running. `timeout` is a `select!` against a sleep.
//! - `JoinSet` (≈ `asyncio.TaskGroup`): results in completion order; dropping it aborts the rest.
//! - Cooperative cancellation with a `CancellationToken` lets a task finish cleanly (flush, say
//!   goodbye) instead of being cut at an arbitrary `.await`.
//! - What runs where: tasks on the runtime's worker threads; `spawn_blocking` on a separate pool
//!   for blocking calls (file I/O, CPU work, C libraries).
//!
//! # Run
//! ```text
//! cargo run -p examples-async --bin async-basics
//! cargo run -p examples-async --bin async-basics -- --step-ms 50      # faster
//! cargo run -p examples-async --bin async-basics -- --json
//! ```
//!
//! # What to observe
//! - "created the future: nothing printed yet" then the print happens only at `.await`.
//! - sequential ≈ 2 steps, `join!` ≈ 1 step, 10 spawned tasks ≈ 1 step (not 10).
//! - The `select!` loser prints "dropped before finishing": cancellation is just `Drop`.
//! - Task thread names: `tokio-runtime-worker` for tasks, a different thread for `spawn_blocking`.
//!
//! # Exercises
//! 1. Remove the `.await` after creating `greet(..)` and read the compiler warning
//!    (`unused_must_use`): why does Rust warn where Python only says "coroutine was never awaited"?
//! 2. Replace `join!` by two `tokio::spawn` + awaiting the handles: same time? What changes if one
//!    of them panics?
//! 3. In `select_drops_the_loser`, make the loser write half a file before its sleep: what is on
//!    disk after cancellation? How would a `CancellationToken` fix it?
//! 4. Build the runtime with `new_current_thread()` instead and look at the thread names.

// === Lesson: copy from here ===

/// The building blocks, one small async function each.
mod basics {
    use std::time::Duration;

    use anyhow::Context;
    use tokio::task::JoinSet;
    use tokio::time::sleep;
    use tokio_util::sync::CancellationToken;

    /// Simulated I/O: an async sleep stands for a network round trip.
    pub async fn fetch(name: &str, step: Duration) -> String {
        sleep(step).await;
        format!("data from {name}")
    }

    pub async fn greet(who: &str, verbose: bool) {
        if verbose {
            println!("  hello, {who} (the future is running now)");
        }
    }

    pub async fn failing(step: Duration) -> anyhow::Result<String> {
        sleep(step / 2).await;
        anyhow::bail!("service B is down")
    }

    /// The current thread's name and id: where a task or a blocking closure really runs.
    pub fn thread_name() -> String {
        let t = std::thread::current();
        format!("{}#{:?}", t.name().unwrap_or("unnamed"), t.id())
    }

    /// Prints when dropped, so cancellation is visible.
    struct Noisy(&'static str, bool);

    impl Drop for Noisy {
        fn drop(&mut self) {
            if self.1 {
                println!(
                    "  {} dropped before finishing (its remaining code never runs)",
                    self.0
                );
            }
        }
    }

    /// `select!`: the first branch to finish wins; the other future is dropped where it stands.
    pub async fn select_drops_the_loser(step: Duration, verbose: bool) -> &'static str {
        tokio::select! {
            v = async { sleep(step).await; "fast" } => v,
            v = async {
                let guard = Noisy("slow branch", verbose);
                sleep(step * 5).await;
                std::mem::forget(guard); // only reached if it finished
                "slow"
            } => v,
        }
    }

    /// `JoinSet`: results in completion order, not spawn order.
    pub async fn joinset_completion_order(step: Duration) -> anyhow::Result<Vec<u32>> {
        let mut set = JoinSet::new();
        for (i, tenths) in [(1, 9), (2, 3), (3, 6), (4, 1), (5, 10)] {
            set.spawn(async move {
                sleep(step * tenths / 10).await;
                i
            });
        }
        let mut order = Vec::new();
        while let Some(r) = set.join_next().await {
            order.push(r.context("a task panicked")?);
        }
        Ok(order)
    }

    /// Cooperative cancellation: the worker checks the token between units of work and
    /// finishes cleanly; returns how many units it did.
    pub async fn token_cancellation(step: Duration) -> anyhow::Result<u32> {
        let token = CancellationToken::new();
        let worker = tokio::spawn({
            let token = token.clone();
            async move {
                let mut units = 0;
                loop {
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = sleep(step / 10) => units += 1,
                    }
                }
                // Cleanup runs here, after the loop: flush, close, say goodbye.
                units
            }
        });
        sleep(step).await;
        token.cancel();
        worker.await.context("the worker panicked")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const STEP: Duration = Duration::from_millis(200);

        // Paused time: sleeps complete instantly in virtual time, so these durations are exact.
        #[tokio::test(start_paused = true)]
        async fn join_is_concurrent_and_sequential_is_not() {
            let t = tokio::time::Instant::now();
            let _ = tokio::join!(fetch("A", STEP), fetch("B", STEP));
            assert_eq!(t.elapsed(), STEP);
            let t = tokio::time::Instant::now();
            fetch("A", STEP).await;
            fetch("B", STEP).await;
            assert_eq!(t.elapsed(), STEP * 2);
        }

        #[tokio::test(start_paused = true)]
        async fn try_join_stops_at_the_first_error() {
            let t = tokio::time::Instant::now();
            let r = tokio::try_join!(
                async { Ok::<_, anyhow::Error>(fetch("A", STEP).await) },
                failing(STEP)
            );
            assert!(r.is_err());
            assert_eq!(t.elapsed(), STEP / 2);
        }

        #[tokio::test(start_paused = true)]
        async fn select_and_joinset_orders() {
            assert_eq!(select_drops_the_loser(STEP, false).await, "fast");
            assert_eq!(
                joinset_completion_order(STEP).await.unwrap(),
                vec![4, 2, 3, 1, 5]
            );
        }

        #[tokio::test(start_paused = true)]
        async fn token_stops_the_worker_between_units() {
            let units = token_cancellation(STEP).await.unwrap();
            assert!((9..=10).contains(&units), "{units}");
        }
    }
}

/// The tour: each building block run and timed against what the asyncio reader expects.
mod tour {
    use std::time::{Duration, Instant};

    use anyhow::Context;
    use tokio::time::sleep;

    use super::basics::{
        failing, fetch, greet, joinset_completion_order, select_drops_the_loser, thread_name,
        token_cancellation,
    };

    /// One measured step of the tour.
    #[derive(Debug, Clone)]
    pub struct Step {
        pub name: &'static str,
        pub took: Duration,
        pub expected: Duration,
    }

    /// Runs every step; prints what happens when `verbose`; returns the timings.
    pub async fn tour(step: Duration, verbose: bool) -> anyhow::Result<Vec<Step>> {
        let mut steps = Vec::new();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut record = |name, took: Duration, expected: Duration| {
            if verbose {
                println!(
                    "  -> {name}: {:.0} ms (expected ~{:.0} ms)\n",
                    ms(took),
                    ms(expected)
                );
            }
            steps.push(Step {
                name,
                took,
                expected,
            });
        };
        let say = |s: &str| {
            if verbose {
                println!("{s}");
            }
        };

        say("1. futures are lazy");
        let fut = greet("reader", verbose);
        say("  created the future: nothing printed yet");
        fut.await;
        say("");

        say("2. sequential awaits: one after the other");
        let t = Instant::now();
        let a = fetch("A", step).await;
        let b = fetch("B", step).await;
        say(&format!("  got {a:?}, {b:?}"));
        record("sequential", t.elapsed(), step * 2);

        say("3. join!: both at once, inside this task (asyncio.gather)");
        let t = Instant::now();
        let (a, b) = tokio::join!(fetch("A", step), fetch("B", step));
        say(&format!("  got {a:?}, {b:?}"));
        record("join", t.elapsed(), step);

        say("4. try_join!: the first error wins, the other future is dropped");
        let t = Instant::now();
        let r = tokio::try_join!(
            async { Ok::<_, anyhow::Error>(fetch("A", step).await) },
            failing(step)
        );
        say(&format!("  result: {:?}", r.map_err(|e| e.to_string())));
        record("try_join (fails at step/2)", t.elapsed(), step / 2);

        say("5. tokio::spawn: 10 independent tasks on the worker threads");
        let t = Instant::now();
        let handles: Vec<_> = (0..10)
            .map(|i| {
                tokio::spawn(async move {
                    sleep(step).await;
                    (i, thread_name())
                })
            })
            .collect();
        let mut threads = std::collections::BTreeSet::new();
        for h in handles {
            let (_, thread) = h.await.context("a task panicked")?;
            threads.insert(thread);
        }
        say(&format!("  tasks ran on threads: {threads:?}"));
        record("10 spawned tasks", t.elapsed(), step);

        // A panic inside a task is caught by the runtime and handed to whoever awaits the
        // handle. The default hook would print the message (and a backtrace with
        // RUST_BACKTRACE) on stderr; a quiet one-line hook keeps this tour readable.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or("?");
            eprintln!("  (panic hook) a task failed: {message}");
        }));
        let panicked = tokio::spawn(async { panic!("task failure") }).await;
        std::panic::set_hook(default_hook);
        say(&format!(
            "  a panicking task does not kill the program: JoinError::is_panic() = {}\n",
            panicked.as_ref().err().is_some_and(|e| e.is_panic())
        ));

        say("6. select!: the first to finish wins, the loser is dropped (that is cancellation)");
        let t = Instant::now();
        let winner = select_drops_the_loser(step, verbose).await;
        say(&format!("  winner: {winner}"));
        record("select", t.elapsed(), step);

        say("7. timeout: a select! against a sleep");
        let t = Instant::now();
        match tokio::time::timeout(step, fetch("slow service", step * 3)).await {
            Ok(v) => say(&format!("  got {v}")),
            Err(elapsed) => say(&format!("  gave up: {elapsed}")),
        }
        record("timeout", t.elapsed(), step);

        say("8. JoinSet: results in completion order (asyncio.TaskGroup / as_completed)");
        let t = Instant::now();
        let order = joinset_completion_order(step).await?;
        say(&format!("  finished in this order: {order:?}"));
        record("JoinSet of 5", t.elapsed(), step);

        say("9. cooperative cancellation with a CancellationToken");
        let t = Instant::now();
        let done = token_cancellation(step).await?;
        say(&format!(
            "  worker stopped cleanly after {done} units of work"
        ));
        record("token cancel after 1 step", t.elapsed(), step);

        say("10. what runs where: spawn_blocking for blocking code");
        let t = Instant::now();
        let here = thread_name();
        let there = tokio::task::spawn_blocking(move || {
            std::thread::sleep(step); // blocking is fine here: this is the blocking pool
            thread_name()
        })
        .await
        .context("the blocking task panicked")?;
        say(&format!(
            "  async code on {here:?}, blocking closure on {there:?}"
        ));
        record("spawn_blocking", t.elapsed(), step);
        Ok(steps)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn the_whole_tour_runs() {
            let steps = tour(Duration::from_millis(5), false).await.unwrap();
            assert_eq!(steps.len(), 9);
            assert!(steps.iter().all(|s| s.took >= s.expected / 2), "{steps:?}");
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// A tour of async/await in tokio, each step timed.
#[derive(Parser, Debug)]
#[command(name = "async-basics", version)]
struct Args {
    /// Duration of one simulated I/O step, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = shared::cli::u64_in(1, 10_000))]
    step_ms: u64,
    /// Print the measured steps as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `#[tokio::main]` would do the same; spelled out here so the runtime is visible.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the runtime")?;
    let steps = rt.block_on(tour::tour(Duration::from_millis(args.step_ms), !args.json))?;
    if args.json {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let steps: Vec<serde_json::Value> = steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "took_ms": ms(s.took),
                    "expected_ms": ms(s.expected),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "step_ms": args.step_ms, "steps": steps })
        );
    }
    Ok(())
}
