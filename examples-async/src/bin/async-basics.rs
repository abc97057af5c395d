//! async/await from first principles: lazy futures, tasks, `join!`, `select!`, timeouts, cancellation.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio**: coroutines, tasks, the event
//! loop. Every step prints what it did and how long it took, next to what the asyncio reader
//! expects; `--python` runs the same steps in asyncio (`python/async_basics.py`).
//!
//! Crates: `tokio = { version = "1", features = ["rt-multi-thread", "macros", "time", "test-util"] }`,
//! `tokio-util = "0.7"`, `futures = "0.3"`, `anyhow = "1"` (`test-util`: paused-clock tests only)
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
//! - `JoinSet` is half of `asyncio.TaskGroup`: results in completion order, dropping it aborts the
//!   rest, but a failed task cancels nothing. `mod groups` adds the other half (`abort_all` at the
//!   first error, or `try_join_all` for futures), `gather(return_exceptions=True)` (`join_all`)
//!   and `shield` (a spawned task: dropping its handle does not cancel it).
//! - `mod guards`, `async with`: a guard held across `.await` is dropped where a cancellation
//!   catches the task; `Drop` cannot await, so async cleanup goes before the end of the block.
//! - Cooperative cancellation with a `CancellationToken` lets a task finish cleanly; what runs
//!   where: tasks on the worker threads, `spawn_blocking` on a pool for blocking calls.
//!
//! # Run
//! ```text
//! cargo run -p examples-async --bin async-basics
//! cargo run -p examples-async --bin async-basics -- --step-ms 50      # faster
//! cargo run -p examples-async --bin async-basics -- --python          # the same steps in asyncio
//! ```
//!
//! # What to observe
//! - "created the future: nothing printed yet" then the print happens only at `.await`.
//! - sequential ≈ 2 steps, `join!` ≈ 1 step, 10 spawned tasks ≈ 1 step (not 10).
//! - The `select!` loser prints "dropped before finishing": cancellation is just `Drop`.
//! - The task group ends at the first error (half a step, not three) with 2 siblings cancelled;
//!   the timed-out query's log says "released while awaiting the rows", 0 connections in use.
//! - `--python`: the same times and outcomes, step by step (asyncio's `gather` raises the first
//!   error but lets the other coroutine run on; `TaskGroup` cancels).
//!
//! # Exercises
//! 1. Fetch three pages at once with `join!`, checked on a paused clock:
//!    `cargo run -p shared --bin exercises -- check async/01`.
//! 2. A timeout that cancels and cleans up with a drop guard: `… check async/02`.
//! 3. TaskGroup semantics on a `JoinSet` (the first error cancels the siblings): `… check async/03`.
//! 4. Replace `join!` by two `tokio::spawn` + awaiting the handles: what if one of them panics?

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

/// asyncio's `TaskGroup`, `gather(return_exceptions=True)` and `shield`, in tokio.
mod groups {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::future::{join_all, try_join_all};
    use tokio::task::{JoinError, JoinSet};
    use tokio::time::{sleep, timeout};

    /// A call to a service: `B` fails after half a step, the others answer after `steps` steps.
    pub async fn service(name: &'static str, step: Duration, steps: u32) -> anyhow::Result<String> {
        if name == "B" {
            sleep(step / 2).await;
            anyhow::bail!("service B is down");
        }
        sleep(step * steps).await;
        Ok(format!("data from {name}"))
    }

    /// Counts the tasks dropped before they finished. A cancelled task's future is dropped at
    /// the `.await` where it waits, and this `Drop` runs right there.
    struct CancelProbe {
        cancelled: Arc<AtomicUsize>,
        finished: bool,
    }

    impl Drop for CancelProbe {
        fn drop(&mut self) {
            if !self.finished {
                self.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `async with asyncio.TaskGroup() as tg:` — the first failure cancels the siblings and the
    /// group waits for them to be gone. A bare `JoinSet` is half of that: dropping it aborts
    /// every task, but `join_next` in a loop waits for all of them, failures or not. The other
    /// half is two lines: on the first error, `abort_all`, then drain. Returns the results, or
    /// the first error and how many siblings it cancelled.
    pub async fn task_group(step: Duration) -> Result<Vec<String>, (anyhow::Error, usize)> {
        let cancelled = Arc::new(AtomicUsize::new(0));
        let mut group = JoinSet::new();
        for (name, steps) in [("A", 1), ("B", 1), ("C", 3)] {
            let cancelled = Arc::clone(&cancelled);
            group.spawn(async move {
                let mut probe = CancelProbe {
                    cancelled,
                    finished: false,
                };
                let result = service(name, step, steps).await;
                probe.finished = true;
                result
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = group.join_next().await {
            // A panicked task is a failure too (TaskGroup treats every exception alike).
            let failure = match joined {
                Ok(Ok(value)) => {
                    results.push(value);
                    continue;
                }
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!("a task panicked: {e}"),
            };
            group.abort_all();
            while group.join_next().await.is_some() {} // wait until every sibling is gone
            return Err((failure, cancelled.load(Ordering::Relaxed)));
        }
        Ok(results)
    }

    /// The same semantics for futures of one task: `try_join_all` polls them together and drops
    /// the others at the first error. No spawn: no `'static` needed, but one task, so one core.
    pub async fn task_group_of_futures(step: Duration) -> anyhow::Result<Vec<String>> {
        try_join_all([("A", 1), ("B", 1), ("C", 3)].map(|(n, s)| service(n, step, s))).await
    }

    /// `gather(*aws, return_exceptions=True)`: everything runs to its end, errors are values.
    pub async fn gather_all(step: Duration) -> Vec<anyhow::Result<String>> {
        join_all(["A", "B", "C"].map(|name| service(name, step, 1))).await
    }

    /// `await asyncio.wait_for(asyncio.shield(save()), t)`: the caller stops waiting, the work
    /// goes on. A spawned task is shielded already: dropping its `JoinHandle` detaches it (only
    /// `abort()` cancels it), so a timeout on `&mut handle` gives up without cancelling. Returns
    /// whether the caller gave up, then what the work returned after all (awaited here only to
    /// show it; a caller that gave up would just go on).
    pub async fn shielded_save(
        step: Duration,
    ) -> (bool, Result<anyhow::Result<String>, JoinError>) {
        let mut save = tokio::spawn(service("the save", step, 1));
        let gave_up = timeout(step / 2, &mut save).await.is_err();
        (gave_up, save.await)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const STEP: Duration = Duration::from_millis(200);

        #[tokio::test(start_paused = true)]
        async fn the_first_error_cancels_the_siblings_at_once() {
            let t = tokio::time::Instant::now();
            let (error, cancelled) = task_group(STEP).await.unwrap_err();
            assert_eq!(error.to_string(), "service B is down");
            assert_eq!(cancelled, 2, "A and C were still running");
            assert_eq!(t.elapsed(), STEP / 2, "nobody waited for C's three steps");
            let t = tokio::time::Instant::now();
            assert!(task_group_of_futures(STEP).await.is_err());
            assert_eq!(t.elapsed(), STEP / 2);
        }

        #[tokio::test(start_paused = true)]
        async fn gather_keeps_every_result_and_waits_for_all() {
            let t = tokio::time::Instant::now();
            let results = gather_all(STEP).await;
            assert_eq!(t.elapsed(), STEP);
            let shown: Vec<String> = results
                .iter()
                .map(|r| r.as_ref().map_or_else(|e| e.to_string(), Clone::clone))
                .collect();
            assert_eq!(shown, ["data from A", "service B is down", "data from C"]);
        }

        #[tokio::test(start_paused = true)]
        async fn a_shielded_task_outlives_the_timeout() {
            let (gave_up, saved) = shielded_save(STEP).await;
            assert!(gave_up);
            assert_eq!(saved.unwrap().unwrap(), "data from the save");
        }
    }
}

/// `async with`: a guard held across `.await`, and what a cancellation does to it.
mod guards {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Duration;

    use tokio::time::{error::Elapsed, sleep, timeout};

    /// A pool of connections, reduced to what shows the lesson: how many are lent, and a log.
    #[derive(Default)]
    pub struct Pool {
        pub in_use: AtomicUsize,
        pub log: Mutex<Vec<String>>,
    }

    /// A borrowed connection (`async with pool.connection() as conn:`), given back in `Drop`:
    /// on return, on `?`, on a panic, and on cancellation.
    pub struct Connection {
        pool: Arc<Pool>,
        /// What the task was doing: shows *where* a cancellation hit it.
        pub stage: &'static str,
    }

    impl Pool {
        pub fn connection(self: &Arc<Self>) -> Connection {
            self.in_use.fetch_add(1, Ordering::Relaxed);
            Connection {
                pool: Arc::clone(self),
                stage: "connected",
            }
        }
    }

    impl Drop for Connection {
        // Synchronous: Python's `__aexit__` may await (a goodbye, a rollback); `Drop` cannot. Do
        // async cleanup before the end of the block, and keep `Drop` as the part that always runs.
        fn drop(&mut self) {
            self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
            let mut log = self.pool.log.lock().unwrap_or_else(PoisonError::into_inner);
            log.push(format!("released while {}", self.stage));
        }
    }

    /// A query cut by a timeout halfway: `timeout` drops the future at its pending `.await`,
    /// and the connection's `Drop` runs right there, before `timeout` returns.
    pub async fn query_with_timeout(pool: &Arc<Pool>, step: Duration) -> Result<String, Elapsed> {
        timeout(step / 2, async {
            let mut conn = pool.connection();
            conn.stage = "sending the query";
            sleep(step / 4).await;
            conn.stage = "awaiting the rows";
            sleep(step).await; // the timeout fires here: nothing below runs
            conn.stage = "done";
            String::from("rows")
        })
        .await
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test(start_paused = true)]
        async fn a_cancelled_task_releases_its_guard_where_it_stood() {
            let pool = Arc::new(Pool::default());
            assert!(
                query_with_timeout(&pool, Duration::from_millis(200))
                    .await
                    .is_err()
            );
            assert_eq!(pool.in_use.load(Ordering::Relaxed), 0, "nothing leaked");
            let log = pool.log.lock().unwrap().clone();
            assert_eq!(log, ["released while awaiting the rows"]);
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
    use super::groups;
    use super::guards;

    /// One measured step of the tour.
    #[derive(Debug, Clone)]
    pub struct Step {
        pub name: &'static str,
        pub took: Duration,
        pub expected: Duration,
        /// What the step found, where it is deterministic ("4 2 3 1 5"); empty otherwise.
        pub outcome: String,
    }

    /// Runs every step; prints what happens when `verbose`; returns the timings.
    pub async fn tour(step: Duration, verbose: bool) -> anyhow::Result<Vec<Step>> {
        let mut steps = Vec::new();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut record = |name, took: Duration, expected: Duration, outcome: String| {
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
                outcome,
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
        record("sequential", t.elapsed(), step * 2, String::new());

        say("3. join!: both at once, inside this task (asyncio.gather)");
        let t = Instant::now();
        let (a, b) = tokio::join!(fetch("A", step), fetch("B", step));
        say(&format!("  got {a:?}, {b:?}"));
        record("join", t.elapsed(), step, String::new());

        say("4. try_join!: the first error wins, the other future is dropped");
        let t = Instant::now();
        let r = tokio::try_join!(
            async { Ok::<_, anyhow::Error>(fetch("A", step).await) },
            failing(step)
        );
        let outcome = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        say(&format!("  result: {outcome}"));
        record("try_join (fails at step/2)", t.elapsed(), step / 2, outcome);

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
        record("10 spawned tasks", t.elapsed(), step, String::new());

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
        record("select", t.elapsed(), step, winner.to_string());

        say("7. timeout: a select! against a sleep");
        let t = Instant::now();
        match tokio::time::timeout(step, fetch("slow service", step * 3)).await {
            Ok(v) => say(&format!("  got {v}")),
            Err(elapsed) => say(&format!("  gave up: {elapsed}")),
        }
        record("timeout", t.elapsed(), step, String::new());

        say("8. JoinSet: results in completion order (asyncio.TaskGroup / as_completed)");
        let t = Instant::now();
        let order = joinset_completion_order(step).await?;
        say(&format!("  finished in this order: {order:?}"));
        let order: Vec<String> = order.iter().map(u32::to_string).collect();
        record("JoinSet of 5", t.elapsed(), step, order.join(" "));

        say("9. cooperative cancellation with a CancellationToken");
        let t = Instant::now();
        let done = token_cancellation(step).await?;
        say(&format!(
            "  worker stopped cleanly after {done} units of work"
        ));
        record(
            "token cancel after 1 step",
            t.elapsed(),
            step,
            String::new(),
        );

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
        record("spawn_blocking", t.elapsed(), step, String::new());

        say("11. a task group (asyncio.TaskGroup): the first error cancels the siblings");
        let t = Instant::now();
        let outcome = match groups::task_group(step).await {
            Ok(_) => "ok".to_string(),
            Err((e, cancelled)) => format!("failed: {e}; {cancelled} cancelled"),
        };
        say(&format!(
            "  {outcome} (JoinSet + abort_all on the first error)"
        ));
        record("task group, first error", t.elapsed(), step / 2, outcome);
        let of_futures = groups::task_group_of_futures(step).await;
        say(&format!(
            "  try_join_all over futures of one task: {:?}\n",
            of_futures.map_err(|e| e.to_string())
        ));

        say("12. gather(return_exceptions=True): join_all, every result kept, errors as values");
        let t = Instant::now();
        let results: Vec<String> = groups::gather_all(step)
            .await
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| format!("error: {e}")))
            .collect();
        say(&format!("  {results:?}"));
        record(
            "gather, errors as values",
            t.elapsed(),
            step,
            results.join(", "),
        );

        say("13. shield: the caller stops waiting, the spawned work goes on");
        let t = Instant::now();
        let (gave_up, saved) = groups::shielded_save(step).await;
        let outcome = format!(
            "gave up: {gave_up}; the save finished: {}",
            saved.is_ok_and(|r| r.is_ok())
        );
        say(&format!("  {outcome}"));
        record("shield", t.elapsed(), step, outcome);

        say("14. async with: a guard held across .await, cancelled by a timeout");
        let t = Instant::now();
        let pool = std::sync::Arc::new(guards::Pool::default());
        let cut = guards::query_with_timeout(&pool, step).await.is_err();
        let log = pool.log.lock().map(|l| l.join("; ")).unwrap_or_default();
        let left = pool.in_use.load(std::sync::atomic::Ordering::Relaxed);
        let outcome = format!("timed out: {cut}; {log}; {left} in use");
        say(&format!("  {outcome}"));
        record("async with, cancelled", t.elapsed(), step / 2, outcome);
        Ok(steps)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn the_whole_tour_runs() {
            let steps = tour(Duration::from_millis(5), false).await.unwrap();
            assert_eq!(steps.len(), 13);
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
    /// Also run the same steps in asyncio (python/async_basics.py) and print both side by side.
    #[arg(long)]
    python: bool,
    /// Print the measured steps as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The asyncio call each step of python/async_basics.py makes.
const ASYNCIO: [(&str, &str); 13] = [
    ("sequential", "await a(); await b()"),
    ("join", "gather(a(), b())"),
    (
        "try_join (fails at step/2)",
        "gather: raises, the other runs on",
    ),
    ("10 spawned tasks", "create_task x 10"),
    ("select", "wait(FIRST_COMPLETED), cancel"),
    ("timeout", "wait_for"),
    ("JoinSet of 5", "as_completed"),
    ("token cancel after 1 step", "an Event checked in the loop"),
    ("spawn_blocking", "to_thread"),
    ("task group, first error", "TaskGroup"),
    ("gather, errors as values", "gather(return_exceptions=True)"),
    ("shield", "wait_for(shield(save()))"),
    ("async with, cancelled", "async with + wait_for"),
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
    // `#[tokio::main]` would do the same; spelled out here so the runtime is visible.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the runtime")?;
    let verbose = !args.json && python.is_none();
    let steps = rt.block_on(tour::tour(Duration::from_millis(args.step_ms), verbose))?;
    drop(rt);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rust_steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "took_ms": ms(s.took),
                "expected_ms": ms(s.expected),
                "outcome": s.outcome,
            })
        })
        .collect();
    let python_run = match &python {
        Some(py) => Some(
            py.run_recipe(
                "examples-async/python/async_basics.py",
                &["--step-ms", &args.step_ms.to_string()],
            )?
            .json,
        ),
        None => None,
    };
    // The outcomes that do not depend on timing must be the same in both languages.
    let mut differences = Vec::new();
    if let Some(p) = &python_run {
        for s in &steps {
            let theirs = p["steps"]
                .as_array()
                .and_then(|v| v.iter().find(|x| x["name"] == s.name));
            let their_outcome = theirs.and_then(|x| x["outcome"].as_str());
            match their_outcome {
                None => differences.push(format!("{}: no such step in Python", s.name)),
                Some(o) if o != s.outcome => {
                    differences.push(format!("{}: Rust {:?}, Python {o:?}", s.name, s.outcome))
                }
                Some(_) => {}
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "step_ms": args.step_ms,
                "steps": rust_steps,
                "python": python_run,
                "differences": differences,
            })
        );
    } else if let Some(p) = &python_run {
        print_side_by_side(&steps, p);
        for d in &differences {
            println!("DIFFERENT: {d}");
        }
    }
    if !differences.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// One row per step: Rust's time, Python's time, the ideal, and the asyncio call.
fn print_side_by_side(steps: &[tour::Step], python: &serde_json::Value) {
    println!(
        "each step in tokio and in asyncio ({}); times in ms\n",
        python["python"].as_str().unwrap_or("python3")
    );
    println!(
        "{:<28} {:>8} {:>8} {:>9}  asyncio",
        "step", "Rust", "Python", "expected"
    );
    println!("{}", "-".repeat(92));
    for s in steps {
        let theirs = python["steps"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["name"] == s.name))
            .and_then(|x| x["took_ms"].as_f64());
        let call = ASYNCIO
            .iter()
            .find(|(name, _)| *name == s.name)
            .map_or("", |(_, call)| call);
        println!(
            "{:<28} {:>8.1} {:>8} {:>9.1}  {call}",
            s.name,
            s.took.as_secs_f64() * 1000.0,
            theirs.map_or_else(|| "-".to_string(), |t| format!("{t:.1}")),
            s.expected.as_secs_f64() * 1000.0,
        );
    }
    println!(
        "\nsame outcomes where they do not depend on timing (failures, orders, cancellations)"
    );
}
