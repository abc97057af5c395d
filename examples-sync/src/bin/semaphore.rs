//! Semaphores: at most N "downloads" at once, with a counting semaphore built from `Mutex` +
//! `Condvar` (std has none) and RAII permits; then `tokio::sync::Semaphore` for async code.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Semaphores").
//!
//! The primitive lives in `examples-sync/src/semaphore.rs` (model-checked by loom in
//! `tests/loom.rs`: permits never exceed the limit, no waiter is left asleep). Python's
//! `threading.Semaphore(3)` with `with sem:` is `let _permit = sem.acquire();` here: the permit
//! is released when it goes out of scope, even on `?` or a panic.
//!
//! The "downloads" are simulated (a sleep of `--download-ms`), so the example runs offline; what
//! matters is how many run at once, counted with an atomic gauge.
//!
//! # Concepts
//! - A counting semaphore: `acquire` blocks while the count is 0; the permit's `Drop` gives it back.
//! - Limiting concurrency (be polite to a server, bound memory, respect a rate plan) without
//!   changing the number of threads or tasks.
//! - Threads vs async: a blocking semaphore parks an OS thread; `tokio::sync::Semaphore` parks a
//!   task and frees the runtime thread. Never block inside async code.
//!
//! # Run
//! ```text
//! cargo run -p examples-sync --bin semaphore
//! cargo run -p examples-sync --bin semaphore -- --downloads 40 --permits 8
//! cargo run -p examples-sync --bin semaphore -- --json
//! ```
//!
//! # What to observe
//! - "max in flight" never exceeds `--permits`, and reaches it.
//! - Time ≈ ceil(downloads / permits) × download time: the limit trades speed for politeness.
//! - Without a limit all downloads run at once: fastest here, and exactly what gets a crawler
//!   banned or a small server knocked over.
//! - The async version needs no thread per download: 1 runtime thread, same limit, same time.
//!
//! # Exercises
//! 1. Add `Semaphore::acquire_timeout(d) -> Option<Permit>` (use `Condvar::wait_timeout` in a loop,
//!    re-computing what is left of the deadline), and a loom test that it never over-grants.
//! 2. Replace the semaphore by a pool of `--permits` worker threads reading from a channel. Which
//!    version is simpler? Which one can limit two different resources at once?
//! 3. In the async part, use `acquire_many(2)` for "large" downloads. What happens to fairness?
//! 4. Use `tokio::sync::Semaphore::try_acquire` to reject work when saturated (load shedding)
//!    instead of queueing it; count the rejections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::semaphore::Semaphore;
use examples_sync::table::{Table, fmt_duration};
use serde::Serialize;

/// Limit concurrent (simulated) downloads with a hand-built semaphore and with tokio's.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Downloads to run.
    #[arg(long, default_value_t = 12)]
    downloads: usize,
    /// How many may run at once.
    #[arg(long, default_value_t = 3)]
    permits: usize,
    /// Duration of one simulated download, in milliseconds.
    #[arg(long, default_value_t = 50)]
    download_ms: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Counts how many downloads are in flight, and the maximum ever seen.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Serialize)]
struct RunReport {
    name: &'static str,
    limit: Option<usize>,
    max_in_flight: usize,
    completed: usize,
    elapsed_s: f64,
}

/// One thread per download; `limit` permits (or none).
fn threads_run(args: &Args, limit: Option<usize>) -> anyhow::Result<RunReport> {
    let semaphore = limit.map(Semaphore::new);
    let gauge = Gauge::default();
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    thread::scope(|s| -> anyhow::Result<()> {
        for i in 0..args.downloads {
            let (semaphore, gauge, done) = (&semaphore, &gauge, &done);
            thread::Builder::new()
                .name(format!("download-{i}"))
                .spawn_scoped(s, move || {
                    // `with sem:` — the permit lives until the end of this closure.
                    let _permit = semaphore.as_ref().map(Semaphore::acquire);
                    gauge.enter();
                    thread::sleep(Duration::from_millis(args.download_ms)); // the "download"
                    gauge.leave();
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .context("spawning a download thread")?;
        }
        Ok(())
    })?;
    Ok(RunReport {
        name: if limit.is_some() {
            "threads + hand-built Semaphore"
        } else {
            "threads, no limit"
        },
        limit,
        max_in_flight: gauge.max.load(Ordering::SeqCst),
        completed: done.load(Ordering::SeqCst),
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// One task per download on a single-threaded runtime, limited by `tokio::sync::Semaphore`.
fn async_run(args: &Args) -> anyhow::Result<RunReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("building the tokio runtime")?;
    let gauge = Arc::new(Gauge::default());
    let start = Instant::now();
    let completed = rt.block_on(async {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(args.permits));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.downloads {
            let (semaphore, gauge) = (semaphore.clone(), gauge.clone());
            let ms = args.download_ms;
            tasks.spawn(async move {
                // An owned permit can move into the task; it is released on drop, like ours.
                let _permit = semaphore
                    .acquire_owned()
                    .await
                    .context("semaphore closed")?;
                gauge.enter();
                tokio::time::sleep(Duration::from_millis(ms)).await; // the task waits, the thread does not
                gauge.leave();
                anyhow::Ok(())
            });
        }
        let mut completed = 0;
        while let Some(result) = tasks.join_next().await {
            result.context("download task panicked")??;
            completed += 1;
        }
        anyhow::Ok(completed)
    })?;
    Ok(RunReport {
        name: "async tasks + tokio::sync::Semaphore",
        limit: Some(args.permits),
        max_in_flight: gauge.max.load(Ordering::SeqCst),
        completed,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.permits >= 1, "--permits must be at least 1");

    // try_acquire: Python's `sem.acquire(blocking=False)`.
    let demo = Semaphore::new(1);
    let first = demo.try_acquire();
    let second = demo.try_acquire();
    ensure!(
        first.is_some() && second.is_none(),
        "try_acquire must grant exactly one permit"
    );
    drop(first);
    ensure!(demo.available() == 1, "a dropped permit must come back");

    let runs = vec![
        threads_run(&args, None)?,
        threads_run(&args, Some(args.permits))?,
        async_run(&args)?,
    ];
    for r in &runs {
        ensure!(
            r.completed == args.downloads,
            "{}: some downloads did not complete",
            r.name
        );
        if let Some(limit) = r.limit {
            ensure!(
                r.max_in_flight <= limit,
                "{}: the limit was exceeded",
                r.name
            );
        }
    }

    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "downloads": args.downloads,
                "permits": args.permits,
                "download_ms": args.download_ms,
                "runs": runs,
            })
        );
        return Ok(());
    }
    println!(
        "{} downloads of {} ms each; try_acquire on a 1-permit semaphore: first Some, second None\n",
        args.downloads, args.download_ms
    );
    let mut table = Table::new(["version", "limit", "max in flight", "time", "ideal"]);
    for r in &runs {
        let waves = r.limit.map_or(1, |l| args.downloads.div_ceil(l)) as u64;
        table.row([
            r.name.to_string(),
            r.limit.map_or("-".into(), |l| l.to_string()),
            r.max_in_flight.to_string(),
            fmt_duration(Duration::from_secs_f64(r.elapsed_s)),
            fmt_duration(Duration::from_millis(waves * args.download_ms)),
        ]);
    }
    table.print();
    Ok(())
}
