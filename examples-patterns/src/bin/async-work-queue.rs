//! `asyncio.Queue` in Rust: many worker tasks on one bounded queue, `task_done()` / `join()`,
//! and a clean end.
//!
//! Course section **8.4 Patterns de concurrence — Producer-Consumer**, the asyncio way: one
//! `asyncio.Queue(maxsize)`, N worker tasks looping on `await q.get()` … `q.task_done()`, the
//! producer's `await q.join()`, then the workers cancelled. tokio's `mpsc` has ONE consumer and no
//! `join()`; this lesson builds the missing pieces from tokio's own parts.
//!
//! Crates: `tokio = { version = "1.54", features = ["sync", "time", "rt", "macros", "test-util"] }`
//! (`time`, `macros` and `test-util` are for the paused-clock tests)
//!
//! # Concepts
//! - **Many consumers on one queue.** The receiver sits behind a `tokio::sync::Mutex`: the
//!   worker holding the lock awaits the next item, the others wait their turn for the lock
//!   (FIFO). Cancel-safe: a worker dropped while waiting loses no item. The cost: workers take
//!   turns *waiting*, one at a time; for a hot queue in production, `async-channel` (a true MPMC
//!   channel, also `close()`-able) is the usual crate.
//! - **`task_done()` you cannot forget.** `get()` returns a `Job` guard; dropping it marks the
//!   item done, even when the handler returns early or panics. In asyncio, a handler that raises
//!   before `task_done()` leaves `join()` waiting for ever.
//! - **`join()`** waits until every item put has been marked done: a `watch` channel holds the
//!   count of unfinished items, and `wait_for(|n| *n == 0)` checks it before sleeping, so a
//!   wake-up cannot be missed.
//! - **The end.** asyncio cancels the idle workers after `join()`. Here the producers are
//!   dropped: `get()` returns `None` once the queue is closed and drained, and each worker
//!   returns what it did. No sentinel, no cancellation.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin async-work-queue                     # 200 jobs, 8 workers
//! cargo run -p examples-patterns --bin async-work-queue -- --workers 32 --capacity 4
//! cargo run -p examples-patterns --bin async-work-queue -- --python         # + asyncio.Queue
//! cargo run -p examples-patterns --bin async-work-queue -- --json
//! ```
//!
//! # What to observe
//! - Wall time ≈ jobs × job time / workers: the jobs wait (like HTTP calls), so more workers on
//!   one thread overlap more of the waiting.
//! - Every job is handled exactly once; `join()` returns when the last one is marked done, before
//!   the workers have stopped; the per-worker counts are about even.
//! - With `--python`, the course's `asyncio.Queue` runs the same jobs: the same results, and
//!   about the same time (both wait on timers, not on the language).
//!
//! # Exercises
//! 1. Make a handler fail on job 13 in the Python version, before `task_done()`: what does
//!    `join()` do? Then return early from the Rust handler: what does the `Job` guard do?
//! 2. Replace the `Mutex<Receiver>` with `async-channel`: what changes in `get()`, and in how
//!    the queue is closed?
//! 3. Add `put_nowait`/`get_nowait` (`try_send`, `try_recv`): when is a full queue an error
//!    rather than a reason to wait?

// === Lesson: copy from here ===

/// `asyncio.Queue` with many consumers and `task_done()` / `join()`, on tokio's parts.
mod work_queue {
    use std::ops::Deref;
    use std::sync::Arc;
    use tokio::sync::{Mutex, mpsc, watch};

    /// A queue of at most `capacity` waiting items (`asyncio.Queue(maxsize=capacity)`), split in
    /// two halves: cloneable `Producer`s put, cloneable `Consumer`s get.
    pub fn work_queue<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
        let (tx, rx) = mpsc::channel(capacity);
        let (unfinished, _) = watch::channel(0usize);
        let unfinished = Arc::new(unfinished);
        let producer = Producer {
            tx,
            unfinished: Arc::clone(&unfinished),
        };
        let consumer = Consumer {
            rx: Arc::new(Mutex::new(rx)),
            unfinished,
        };
        (producer, consumer)
    }

    pub struct Producer<T> {
        tx: mpsc::Sender<T>,
        /// Items put and not yet marked done (`asyncio.Queue._unfinished_tasks`).
        unfinished: Arc<watch::Sender<usize>>,
    }

    pub struct Consumer<T> {
        /// One receiver, taken in turns: the lock is held while waiting for the next item.
        rx: Arc<Mutex<mpsc::Receiver<T>>>,
        unfinished: Arc<watch::Sender<usize>>,
    }

    // Written by hand: `#[derive(Clone)]` would require `T: Clone`, which the halves do not need.
    impl<T> Clone for Producer<T> {
        fn clone(&self) -> Self {
            Producer {
                tx: self.tx.clone(),
                unfinished: Arc::clone(&self.unfinished),
            }
        }
    }

    impl<T> Clone for Consumer<T> {
        fn clone(&self) -> Self {
            Consumer {
                rx: Arc::clone(&self.rx),
                unfinished: Arc::clone(&self.unfinished),
            }
        }
    }

    impl<T> Producer<T> {
        /// `await q.put(item)`: waits while the queue is full. Gives the item back if every
        /// consumer is gone.
        pub async fn put(&self, item: T) -> Result<(), T> {
            // Counted before it is visible: a consumer could finish it before we count it,
            // and `join()` would see the count dip below the truth.
            self.unfinished.send_modify(|n| *n += 1);
            match self.tx.send(item).await {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendError(item)) => {
                    self.unfinished.send_modify(|n| *n -= 1);
                    Err(item)
                }
            }
        }

        /// `await q.join()`: waits until every item put so far has been marked done.
        pub async fn join(&self) {
            let mut count = self.unfinished.subscribe();
            // `wait_for` looks at the current value first, then sleeps until it changes: an
            // item finished between our check and our sleep cannot be missed.
            let _ = count.wait_for(|&n| n == 0).await;
        }
    }

    impl<T> Consumer<T> {
        /// `await q.get()`, or `None` once every `Producer` is dropped and the queue is empty.
        /// The item comes in a `Job`: dropping it is `q.task_done()`.
        pub async fn get(&self) -> Option<Job<T>> {
            let item = self.rx.lock().await.recv().await?;
            Some(Job {
                item,
                unfinished: Arc::clone(&self.unfinished),
            })
        }
    }

    /// An item taken from the queue. Dropping it marks it done, on every path: a handler that
    /// returns early, fails or panics cannot leave `join()` waiting for ever.
    pub struct Job<T> {
        item: T,
        unfinished: Arc<watch::Sender<usize>>,
    }

    impl<T> Deref for Job<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.item
        }
    }

    impl<T> Drop for Job<T> {
        fn drop(&mut self) {
            self.unfinished.send_modify(|n| *n -= 1);
        }
    }

    /// The asyncio recipe, whole: `workers` tasks handle `jobs` through a queue of `capacity`;
    /// `on_joined()` runs when `join()` returns. Each worker's results come back, in its order.
    pub async fn run_workers<T, R, F, Fut>(
        jobs: impl IntoIterator<Item = T>,
        workers: usize,
        capacity: usize,
        handle: F,
        on_joined: impl FnOnce(),
    ) -> Vec<Vec<R>>
    where
        T: Clone + Send + 'static, // each handler gets a copy; the guard stays in the worker
        R: Send + 'static,
        F: Fn(usize, T) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = R> + Send,
    {
        let (producer, consumer) = work_queue::<T>(capacity);
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..workers.max(1) {
            let (consumer, handle) = (consumer.clone(), handle.clone());
            tasks.spawn(async move {
                let mut done = Vec::new();
                while let Some(job) = consumer.get().await {
                    done.push(handle(w, T::clone(&job)).await);
                } // `job` dropped at the end of each turn: task_done()
                (w, done)
            });
        }
        drop(consumer); // only the workers hold consumers now
        for job in jobs {
            if producer.put(job).await.is_err() {
                break; // every worker is gone (they panicked): nothing more can be done
            }
        }
        producer.join().await;
        on_joined();
        drop(producer); // closes the queue: idle workers see `None` and return
        let mut results: Vec<Vec<R>> = (0..workers.max(1)).map(|_| Vec::new()).collect();
        while let Some(r) = tasks.join_next().await {
            // A panic in a handler is a bug: let it continue here.
            let (w, done) = r.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            results[w] = done;
        }
        results
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::time::Duration;

        #[tokio::test(start_paused = true)]
        async fn join_waits_for_every_job_to_be_marked_done() {
            let (producer, consumer) = work_queue(8);
            producer.join().await; // nothing put: returns at once, like asyncio
            for i in 0..3 {
                producer.put(i).await.unwrap();
            }
            let a = consumer.get().await.unwrap();
            let b = consumer.get().await.unwrap();
            let joined = tokio::spawn({
                let producer = producer.clone();
                async move { producer.join().await }
            });
            drop(a);
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert!(!joined.is_finished(), "two items are still unfinished");
            let c = consumer.get().await.unwrap();
            drop((b, c));
            tokio::time::timeout(Duration::from_secs(1), joined)
                .await
                .expect("join returns once all are done")
                .unwrap();
        }

        #[tokio::test(start_paused = true)]
        async fn many_consumers_share_the_items_and_get_none_at_the_end() {
            let (producer, consumer) = work_queue(2);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..3 {
                let consumer = consumer.clone();
                tasks.spawn(async move {
                    let mut seen = Vec::new();
                    while let Some(job) = consumer.get().await {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        seen.push(*job);
                    }
                    seen
                });
            }
            for i in 0..30 {
                producer.put(i).await.unwrap();
            }
            producer.join().await;
            drop(producer);
            let mut all: Vec<i32> = tasks.join_all().await.into_iter().flatten().collect();
            all.sort_unstable();
            assert_eq!(all, (0..30).collect::<Vec<_>>());
        }

        #[tokio::test(start_paused = true)]
        async fn a_panicking_handler_still_marks_its_job_done() {
            let (producer, consumer) = work_queue(4);
            producer.put(1).await.unwrap();
            let worker = tokio::spawn(async move {
                let job = consumer.get().await.unwrap();
                assert_eq!(*job, 2, "a bug in the handler");
            });
            assert!(worker.await.is_err(), "the handler panicked");
            tokio::time::timeout(Duration::from_secs(1), producer.join())
                .await
                .expect("the guard marked the job done while unwinding");
        }

        #[tokio::test(start_paused = true)]
        async fn run_workers_handles_every_job_once() {
            let results = run_workers(0..50u64, 4, 3, |_, i| async move { i * 2 }, || {}).await;
            assert_eq!(results.len(), 4);
            let mut all: Vec<u64> = results.into_iter().flatten().collect();
            all.sort_unstable();
            assert_eq!(all, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail};
use clap::Parser;
use examples_patterns::python_peer;
use serde::Serialize;
use shared::cli;
use shared::report::{fmt_duration, print_json};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// asyncio.Queue's worker pattern in Rust: many consumers, task_done/join, a clean end.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Jobs to handle.
    #[arg(long, default_value_t = 200, value_parser = cli::u64_in(0, 1_000_000))]
    jobs: u64,
    /// Worker tasks sharing the queue.
    #[arg(long, default_value_t = 8, value_parser = cli::usize_in(1, 10_000))]
    workers: usize,
    /// Items that may wait in the queue (`maxsize`).
    #[arg(long, default_value_t = 16, value_parser = cli::usize_in(1, 1_000_000))]
    capacity: usize,
    /// How long one job waits (a simulated network call), in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = cli::u64_in(0, 60_000))]
    job_ms: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/async_work_queue.py: `asyncio.Queue`, worker tasks,
    /// `task_done()` / `join()`, then the workers cancelled) on the same jobs, in one table.
    #[arg(long)]
    python: bool,
}

/// What one job computes: any function of its number, so results can be checked.
fn job_value(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9).rotate_left(13) % 1_000_003
}

#[derive(Serialize)]
struct QueueReport {
    jobs: u64,
    workers: usize,
    capacity: usize,
    job_ms: u64,
    handled: u64,
    /// Sum of every job's value: the same in every language if every job ran once.
    value_sum: u64,
    exactly_once: bool,
    per_worker: Vec<u64>,
    wall_s: f64,
    /// When `join()` returned (the workers were still alive, idle).
    joined_s: f64,
    ideal_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<serde_json::Value>,
}

#[tokio::main(flavor = "current_thread")] // one thread, like asyncio's event loop
async fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let python = args.python.then(|| python_peer::python_or_exit(&[]));
    let cancel = shared::shutdown::cancel_on_ctrl_c();
    if !args.json {
        // Printed once the signal handlers are installed (the SIGTERM test waits for it).
        println!(
            "{} jobs of {} ms, {} worker tasks on one thread, queue of {}",
            args.jobs, args.job_ms, args.workers, args.capacity
        );
    }
    let job = Duration::from_millis(args.job_ms);
    let joined_at = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let joined = Arc::clone(&joined_at);
    let run = work_queue::run_workers(
        0..args.jobs,
        args.workers,
        args.capacity,
        move |_worker, i| async move {
            tokio::time::sleep(job).await; // the "network call"
            (i, job_value(i))
        },
        move || joined.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed),
    );
    let results = tokio::select! {
        r = run => r,
        () = cancel.cancelled() => {
            eprintln!("interrupted: no figures");
            return Ok(ExitCode::from(130));
        }
    };
    let wall = start.elapsed();
    let mut seen: Vec<u64> = results.iter().flatten().map(|&(i, _)| i).collect();
    seen.sort_unstable();
    let exactly_once = seen.iter().copied().eq(0..args.jobs);
    let rounds = args.jobs.div_ceil(args.workers as u64);
    let mut report = QueueReport {
        jobs: args.jobs,
        workers: args.workers,
        capacity: args.capacity,
        job_ms: args.job_ms,
        handled: seen.len() as u64,
        value_sum: results.iter().flatten().map(|&(_, v)| v).sum(),
        exactly_once,
        per_worker: results.iter().map(|r| r.len() as u64).collect(),
        wall_s: wall.as_secs_f64(),
        joined_s: joined_at.load(Ordering::Relaxed) as f64 / 1e9,
        ideal_s: (job * u32::try_from(rounds).unwrap_or(u32::MAX)).as_secs_f64(),
        python: None,
    };
    if let Some(py) = python {
        let a = vec![
            format!("--jobs={}", args.jobs),
            format!("--workers={}", args.workers),
            format!("--capacity={}", args.capacity),
            format!("--job-ms={}", args.job_ms),
        ];
        let out = tokio::task::spawn_blocking(move || {
            python_peer::run_recipe(&py, "async_work_queue", &a)
        })
        .await
        .context("the Python run panicked")??;
        report.python = Some(out);
    }
    if args.json {
        print_json(&report);
    } else {
        print_report(&report);
    }
    if !report.exactly_once {
        bail!("a job was lost or handled twice: this is a bug");
    }
    if let Some(py) = &report.python {
        let same = py["exactly_once"] == true
            && python_peer::u64_field(py, "handled")? == report.handled
            && python_peer::u64_field(py, "value_sum")? == report.value_sum;
        if !same {
            bail!("the Python version handled different jobs: {py}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &QueueReport) {
    let secs = |s: f64| fmt_duration(Duration::try_from_secs_f64(s).unwrap_or_default());
    println!(
        "handled {} (every job exactly once: {}), values summing to {}",
        r.handled,
        if r.exactly_once { "yes" } else { "NO" },
        r.value_sum
    );
    println!("jobs per worker: {:?}", r.per_worker);
    println!(
        "join() returned at {}, the workers ended at {} (ideal {}: ceil(jobs / workers) x job)",
        secs(r.joined_s),
        secs(r.wall_s),
        secs(r.ideal_s)
    );
    if let Some(py) = &r.python {
        let num = |k: &str| py[k].as_f64().unwrap_or(f64::NAN);
        let rows = vec![
            vec![
                "Rust (mpsc + Mutex + watch)".to_string(),
                secs(r.wall_s),
                r.handled.to_string(),
                r.value_sum.to_string(),
                if r.exactly_once { "yes" } else { "NO" }.to_string(),
            ],
            vec![
                "Python (asyncio.Queue)".to_string(),
                secs(num("wall_s")),
                py["handled"].to_string(),
                py["value_sum"].to_string(),
                if py["exactly_once"] == true {
                    "yes"
                } else {
                    "NO"
                }
                .to_string(),
            ],
        ];
        println!();
        println!(
            "the same jobs in the course's Python ({}):",
            py["interpreter"].as_str().unwrap_or("python3")
        );
        print!(
            "{}",
            python_peer::table(
                &["queue", "wall", "handled", "value sum", "exactly once"],
                &rows
            )
        );
        println!(
            "Python / Rust wall time: {} (the jobs wait on timers: neither language is the limit)",
            python_peer::ratio(num("wall_s"), r.wall_s)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_flag_has_bounds() {
        let parse = |extra: &[&str]| Args::try_parse_from([&["async-work-queue"], extra].concat());
        for bad in [
            &["--workers", "0"][..],
            &["--capacity", "0"],
            &["--job-ms=-1"],
            &["--jobs", "18446744073709551615"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse(&["--jobs", "0", "--job-ms", "0"]).is_ok());
    }

    #[test]
    fn job_values_depend_on_the_job() {
        assert_ne!(job_value(1), job_value(2));
        assert!(job_value(u64::MAX) < 1_000_003);
    }
}
