//! Semaphores: at most N "downloads" at once, with a counting semaphore built from `Mutex` +
//! `Condvar` (std has none) and RAII permits; then `tokio::sync::Semaphore` for async code.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Locks, RLocks, Semaphores").
//!
//! Crates: `tokio = { version = "1", features = ["rt", "sync", "time"] }` (and `crate::semaphore`:
//! copy `src/semaphore.rs` and `src/sync.rs`)
//!
//! The primitive lives in `src/semaphore.rs` (model-checked by loom in `tests/loom.rs`: permits
//! never exceed the limit, no waiter is left asleep). Python's `threading.Semaphore(3)` with
//! `with sem:` is `let _permit = sem.acquire();` here: the permit is released when it goes out
//! of scope, even on `?` or a panic. The "downloads" are simulated (a sleep of `--download-ms`),
//! so the example runs offline; what matters is how many run at once, counted by a gauge.
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
//! cargo run -p examples-sync --bin semaphore -- --python   # + threading/asyncio.Semaphore
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
//! 1. Checked: add `acquire_timeout(d) -> Option<Permit>`, Python's `acquire(timeout=d)`
//!    (`cargo run -p shared --bin exercises -- check sync/04`: loom, stress and a watchdog).
//! 2. Replace the semaphore by a pool of `--permits` worker threads reading from a channel. Which
//!    version is simpler? Which one can limit two different resources at once?
//! 3. In the async part, use `acquire_many(2)` for "large" downloads. What happens to fairness?
//! 4. Use `tokio::sync::Semaphore::try_acquire` to reject work when saturated (load shedding)
//!    instead of queueing it; count the rejections.

// === Lesson: copy from here ===

/// At most N downloads at once: one thread per download with our semaphore, or one task per
/// download with tokio's.
mod limited_downloads {
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::semaphore::Semaphore;

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

    /// What one way of downloading did.
    #[derive(Debug, Clone, Copy)]
    pub struct DownloadReport {
        pub max_in_flight: usize,
        pub completed: usize,
        pub elapsed: Duration,
    }

    /// `try_acquire`, Python's `sem.acquire(blocking=False)`: on a 1-permit semaphore the first
    /// call gets the permit and the second gets `None`; the dropped permit comes back.
    pub fn try_acquire_grants_one() -> bool {
        let sem = Semaphore::new(1);
        let first = sem.try_acquire();
        let second = sem.try_acquire();
        let exactly_one = first.is_some() && second.is_none();
        drop(first);
        exactly_one && sem.available() == 1
    }

    /// One thread per download, each taking a permit of a `limit`-permit semaphore (or none).
    pub fn download_with_threads(
        downloads: usize,
        limit: Option<usize>,
        download_time: Duration,
    ) -> io::Result<DownloadReport> {
        let semaphore = limit.map(Semaphore::new);
        let gauge = Gauge::default();
        let done = AtomicUsize::new(0);
        let start = Instant::now();
        thread::scope(|s| -> io::Result<()> {
            for i in 0..downloads {
                let (semaphore, gauge, done) = (&semaphore, &gauge, &done);
                thread::Builder::new()
                    .name(format!("download-{i}"))
                    .spawn_scoped(s, move || {
                        // `with sem:` — the permit lives until the end of this closure.
                        let _permit = semaphore.as_ref().map(Semaphore::acquire);
                        gauge.enter();
                        thread::sleep(download_time); // the "download"
                        gauge.leave();
                        done.fetch_add(1, Ordering::SeqCst);
                    })?;
            }
            Ok(())
        })?;
        Ok(DownloadReport {
            max_in_flight: gauge.max.load(Ordering::SeqCst),
            completed: done.load(Ordering::SeqCst),
            elapsed: start.elapsed(),
        })
    }

    /// One task per download on a single-threaded runtime, limited by `tokio::sync::Semaphore`.
    pub fn download_with_tasks(
        downloads: usize,
        permits: usize,
        download_time: Duration,
    ) -> io::Result<DownloadReport> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let gauge = Arc::new(Gauge::default());
        let start = Instant::now();
        let completed = rt.block_on(async {
            let semaphore = Arc::new(tokio::sync::Semaphore::new(permits));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..downloads {
                let (semaphore, gauge) = (semaphore.clone(), gauge.clone());
                tasks.spawn(async move {
                    // An owned permit can move into the task; it is released on drop, like ours.
                    // `acquire_owned` fails only on a closed semaphore, and nobody closes this one.
                    let Ok(_permit) = semaphore.acquire_owned().await else {
                        return false;
                    };
                    gauge.enter();
                    tokio::time::sleep(download_time).await; // the task waits, the thread does not
                    gauge.leave();
                    true
                });
            }
            let mut completed = 0;
            while let Some(result) = tasks.join_next().await {
                // A task that panicked (it cannot here) is simply not counted as completed.
                completed += usize::from(result.unwrap_or(false));
            }
            completed
        });
        Ok(DownloadReport {
            max_in_flight: gauge.max.load(Ordering::SeqCst),
            completed,
            elapsed: start.elapsed(),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_limit_holds_with_threads_and_with_tasks() {
            let ms = Duration::from_millis(2);
            let threads = download_with_threads(10, Some(3), ms).unwrap();
            assert_eq!(threads.completed, 10);
            assert!(threads.max_in_flight <= 3);
            let tasks = download_with_tasks(10, 3, ms).unwrap();
            assert_eq!(tasks.completed, 10);
            assert!(tasks.max_in_flight <= 3);
        }

        #[test]
        fn try_acquire_gives_exactly_one_permit() {
            assert!(try_acquire_grants_one());
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::python_peer;
use examples_sync::semaphore; // the lesson's `crate::semaphore` (src/semaphore.rs, on src/sync.rs)
use examples_sync::table::Table;
use limited_downloads::{
    DownloadReport, download_with_tasks, download_with_threads, try_acquire_grants_one,
};
use shared::cli;
use shared::report::fmt_duration;

/// Limit concurrent (simulated) downloads with a hand-built semaphore and with tokio's.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Downloads to run, one thread each in the threaded versions (1 to 1000).
    #[arg(long, default_value_t = 12, value_parser = cli::usize_in(1, 1000))]
    downloads: usize,
    /// How many may run at once (1 to 1000).
    #[arg(long, default_value_t = 3, value_parser = cli::usize_in(1, 1000))]
    permits: usize,
    /// Duration of one simulated download, in milliseconds (0 to 10,000).
    #[arg(long, default_value_t = 50, value_parser = cli::u64_in(0, 10_000))]
    download_ms: u64,
    /// Also run the course's Python (python/semaphore.py: `threading.Semaphore`,
    /// `asyncio.Semaphore`) with the same parameters, in the same table.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One row: which version, its limit, and what it did.
struct Version {
    name: String,
    limit: Option<usize>,
    report: DownloadReport,
}

fn version_json(v: &Version) -> serde_json::Value {
    serde_json::json!({
        "name": v.name,
        "limit": v.limit,
        "max_in_flight": v.report.max_in_flight,
        "completed": v.report.completed,
        "elapsed_s": v.report.elapsed.as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        try_acquire_grants_one(),
        "try_acquire must grant exactly one permit, and a dropped permit must come back"
    );
    let time = Duration::from_millis(args.download_ms);
    let versions = vec![
        Version {
            name: "threads, no limit".into(),
            limit: None,
            report: download_with_threads(args.downloads, None, time)
                .context("spawning a download thread")?,
        },
        Version {
            name: "threads + hand-built Semaphore".into(),
            limit: Some(args.permits),
            report: download_with_threads(args.downloads, Some(args.permits), time)
                .context("spawning a download thread")?,
        },
        Version {
            name: "async tasks + tokio::sync::Semaphore".into(),
            limit: Some(args.permits),
            report: download_with_tasks(args.downloads, args.permits, time)
                .context("building the tokio runtime")?,
        },
    ];
    for v in &versions {
        ensure!(
            v.report.completed == args.downloads,
            "{}: some downloads did not complete",
            v.name
        );
        if let Some(limit) = v.limit {
            ensure!(
                v.report.max_in_flight <= limit,
                "{}: the limit was exceeded",
                v.name
            );
        }
    }

    let python = if args.python {
        let json = python_peer::run_recipe(
            "semaphore",
            &[
                "--downloads".into(),
                args.downloads.to_string(),
                "--permits".into(),
                args.permits.to_string(),
                "--download-ms".into(),
                args.download_ms.to_string(),
            ],
        )?;
        let runs = python_versions(&json)?;
        Some((json, runs))
    } else {
        None
    };
    // What must agree: every Python download completes, no limit is exceeded, and
    // `acquire(blocking=False)` grants exactly one permit, like `try_acquire`.
    let agreement = python.as_ref().map(|(json, runs)| -> anyhow::Result<()> {
        ensure!(
            json["try_acquire_grants_one"] == true,
            "Python's acquire(blocking=False) did not grant exactly one permit"
        );
        for v in runs {
            ensure!(
                v.report.completed == args.downloads,
                "Python, {}: {} of {} downloads completed",
                v.name,
                v.report.completed,
                args.downloads
            );
            ensure!(
                v.limit.is_none_or(|l| v.report.max_in_flight <= l),
                "Python, {}: the limit was exceeded",
                v.name
            );
        }
        Ok(())
    });

    if args.json {
        let runs: Vec<_> = versions.iter().map(version_json).collect();
        let mut out = serde_json::json!({
            "downloads": args.downloads,
            "permits": args.permits,
            "download_ms": args.download_ms,
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
        "{} downloads of {} ms each; try_acquire on a 1-permit semaphore: first Some, second None\n",
        args.downloads, args.download_ms
    );
    let mut table = Table::new(["version", "limit", "max in flight", "time", "ideal"]);
    let py_rows = python.iter().flat_map(|(_, runs)| runs);
    for (lang, v) in versions
        .iter()
        .map(|v| ("Rust", v))
        .chain(py_rows.map(|v| ("Python", v)))
    {
        let waves = v.limit.map_or(1, |l| args.downloads.div_ceil(l)) as u32;
        table.row([
            format!("{lang}: {}", v.name),
            v.limit.map_or("-".into(), |l| l.to_string()),
            v.report.max_in_flight.to_string(),
            fmt_duration(v.report.elapsed),
            fmt_duration(time * waves),
        ]);
    }
    table.print();
    if let Some((json, _)) = &python {
        println!(
            "\nPython: {}. Both languages wait the same: the limit, not the language, sets the time.",
            json["interpreter"].as_str().unwrap_or("?")
        );
    }
    if let Some(Err(why)) = agreement {
        anyhow::bail!("the Python and Rust results differ: {why}");
    }
    Ok(())
}

/// The Python recipe's runs, as rows of the same table.
fn python_versions(json: &serde_json::Value) -> anyhow::Result<Vec<Version>> {
    let runs = json["runs"]
        .as_array()
        .context("the Python recipe's JSON has no `runs`")?;
    runs.iter()
        .map(|r| {
            Ok(Version {
                name: r["name"].as_str().unwrap_or("?").to_string(),
                limit: r["limit"].as_u64().map(|l| l as usize),
                report: DownloadReport {
                    max_in_flight: python_peer::u64_field(r, "max_in_flight")? as usize,
                    completed: python_peer::u64_field(r, "completed")? as usize,
                    elapsed: Duration::from_secs_f64(python_peer::f64_field(r, "elapsed_s")?),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--downloads", "18446744073709551615"],
            ["--downloads", "0"],
            ["--download-ms", "18446744073709551615"],
            ["--download-ms", "-1"],
            ["--permits", "0"],
            ["--permits", "inf"],
        ] {
            let err = Args::try_parse_from(["semaphore", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
