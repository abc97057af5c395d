//! A thread pool built by hand (job queue, workers, shutdown in `Drop`, panics contained), then
//! timed against `rayon::ThreadPool` and plain `thread::scope` on the same jobs.
//!
//! Course section **8.1 — Threading et multiprocessing** (`concurrent.futures.ThreadPoolExecutor`;
//! the course's version, on the same jobs: `python/thread_pool.py`, `--python`).
//!
//! Crates: `crossbeam-channel = "0.5"` (the lesson, `mod pool`; the harness adds rayon to compare).
//!
//! # Concepts
//! - A pool = a queue of boxed closures (`Box<dyn FnOnce() + Send>`) + N long-lived workers that
//!   take jobs from it. Threads are created once, not per job (see hello-threads for the cost).
//! - The queue is a *bounded* MPMC channel (crossbeam): every idle worker waits on it directly,
//!   no `Mutex<Receiver>` around a single-consumer channel as in the Rust Book, and `execute`
//!   blocks when the queue is full instead of buffering a million closures.
//! - Shutdown in `Drop`: drop the `Sender`, so each worker's `recv()` fails once the queue is
//!   drained, then join every worker. Leaving a scope shuts the pool down; nothing is leaked.
//! - `catch_unwind`: a panicking job must not kill its worker (a pool that loses a thread per
//!   bug slowly stops). The panic is caught, counted, and the worker takes the next job. This is
//!   what `ThreadPoolExecutor` does when it stores the exception in the `Future`.
//! - Results: the pool is fire-and-forget; jobs send `(index, value)` back on a channel.
//! - Static split (`thread::scope` with one chunk per thread) versus a shared queue (the pool,
//!   rayon's work stealing) when jobs have uneven sizes.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin thread-pool
//! cargo run --release -p examples-threads --bin thread-pool -- --workers 4 --jobs 1000 --panics 5
//! cargo run --release -p examples-threads --bin thread-pool -- --json
//! cargo run --release -p examples-threads --bin thread-pool -- --python   # + ThreadPoolExecutor
//! ```
//!
//! # What to observe
//! - The `--panics` jobs print their panic messages (stderr), yet every other job completes and
//!   the pool reports how many panicked: the workers survived.
//! - Job sizes grow with their index (1× to 4×), so the static split of `thread::scope` gives the
//!   last thread most of the work; the hand-built pool and rayon balance it and finish sooner.
//! - All rows compute the same results (checked), and the pool and rayon are close: for jobs of
//!   milliseconds, the queue's overhead is noise. Try `--rounds 1000` to see it stop being noise.
//! - `--python`: the same values from `ThreadPoolExecutor`, and its pool about as slow as its
//!   plain loop (the GIL), where ours runs about twice as fast as our loop.
//!
//! # Exercises
//! 1. Remove the `catch_unwind` and run with `--panics 2 --workers 2`. What happens to the jobs
//!    submitted after the panics, and to the program?
//! 2. Add `fn execute_with_result<T>(&self, f) -> Receiver<thread::Result<T>>`: a minimal
//!    `Future` that hands back the value or the panic. Checked, with the typical mistakes:
//!    `cargo run -p shared --bin exercises -- check threads/03`.
//! 3. Make `Drop` stop *without* draining the queue (a "shutdown now" flag checked by workers).
//!    When would you want which?
//! 4. Give the pool a queue capacity of 0 (a rendezvous channel): what does `execute` now wait for?

// === Lesson: copy from here ===

/// The hand-built pool. In a real project this module would be its own file (`pool.rs`).
mod pool {
    use std::io;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::{self, JoinHandle};

    use crossbeam_channel::{Receiver, Sender, bounded};

    /// A unit of work: any closure that can move to another thread and runs once.
    type Job = Box<dyn FnOnce() + Send + 'static>;

    /// What the workers did, shared between them and the pool (atomics: no lock needed for counts).
    #[derive(Default)]
    struct Counters {
        completed: AtomicUsize,
        panicked: AtomicUsize,
    }

    /// A fixed set of worker threads taking jobs from one bounded queue.
    pub struct ThreadPool {
        /// `Option` so `Drop` can take and drop it first: that is the shutdown signal.
        sender: Option<Sender<Job>>,
        workers: Vec<JoinHandle<()>>,
        counters: Arc<Counters>,
    }

    /// Numbers reported by [`ThreadPool::stats`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Stats {
        pub completed: usize,
        pub panicked: usize,
    }

    impl ThreadPool {
        /// Start `size` workers (at least 1) and a queue holding up to `queue_capacity` jobs.
        /// Spawning can fail (thread limit, memory), so this returns `io::Result`, unlike the
        /// Book's `new` that panics.
        pub fn new(size: usize, queue_capacity: usize) -> io::Result<ThreadPool> {
            let (sender, receiver) = bounded::<Job>(queue_capacity);
            let counters = Arc::new(Counters::default());
            let workers = (0..size.max(1))
                .map(|id| {
                    let receiver = receiver.clone();
                    let counters = Arc::clone(&counters);
                    thread::Builder::new()
                        .name(format!("pool-worker-{id}"))
                        .spawn(move || worker_loop(&receiver, &counters))
                })
                .collect::<io::Result<Vec<_>>>()?;
            Ok(ThreadPool {
                sender: Some(sender),
                workers,
                counters,
            })
        }

        /// Queue `job`; blocks while the queue is full (backpressure on the submitter).
        pub fn execute<F>(&self, job: F)
        where
            F: FnOnce() + Send + 'static,
        {
            self.sender
                .as_ref()
                .expect("the sender is only taken in Drop")
                // `send` fails only when every receiver is gone, i.e. every worker has exited;
                // workers exit only after the sender is dropped (in Drop), so not here.
                .send(Box::new(job))
                .expect("workers outlive the pool's sender");
        }

        /// Jobs finished so far, and how many of them panicked.
        pub fn stats(&self) -> Stats {
            Stats {
                completed: self.counters.completed.load(Ordering::Relaxed),
                panicked: self.counters.panicked.load(Ordering::Relaxed),
            }
        }
    }

    /// The loop every worker runs: take a job, run it with panics contained, repeat until the
    /// queue is closed *and* empty.
    fn worker_loop(jobs: &Receiver<Job>, counters: &Counters) {
        // `recv` returns Err only when the channel is empty and every Sender is dropped: the
        // queue is drained before the workers stop.
        while let Ok(job) = jobs.recv() {
            // AssertUnwindSafe: we promise not to observe state the job may have left broken.
            // We do not touch any: the job owned everything it used.
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                counters.panicked.fetch_add(1, Ordering::Relaxed);
            }
            counters.completed.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl ThreadPool {
        /// Stop explicitly: run every queued job, join the workers, and return the final
        /// counts (which only `Drop` could otherwise wait for).
        pub fn shutdown(mut self) -> Stats {
            self.close_and_join();
            self.stats()
        }

        fn close_and_join(&mut self) {
            // 1. Close the queue. Workers finish what is queued, then their `recv` fails.
            drop(self.sender.take());
            // 2. Wait for each of them. A worker cannot panic (jobs are caught), but if one ever
            //    did, `Drop` must not panic in turn (that would abort): report and continue.
            for worker in self.workers.drain(..) {
                let name = worker.thread().name().unwrap_or("worker").to_owned();
                if worker.join().is_err() {
                    eprintln!("{name} panicked outside a job");
                }
            }
        }
    }

    impl Drop for ThreadPool {
        /// Shutdown lives here, so a pool cannot be forgotten running: leaving its scope (or an
        /// early `?` return) drains the queue and joins every worker. Idempotent after `shutdown`.
        fn drop(&mut self) {
            self.close_and_join();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{Stats, ThreadPool};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        use std::thread;
        use std::time::Duration;

        #[test]
        fn every_job_runs_exactly_once() {
            let hits = Arc::new((0..500).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
            let pool = ThreadPool::new(4, 8).unwrap();
            for i in 0..500 {
                let hits = Arc::clone(&hits);
                pool.execute(move || {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            let stats = pool.shutdown();
            assert_eq!(
                stats,
                Stats {
                    completed: 500,
                    panicked: 0
                }
            );
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }

        #[test]
        fn drop_waits_for_queued_and_running_jobs() {
            let done = Arc::new(AtomicUsize::new(0));
            {
                let pool = ThreadPool::new(2, 16).unwrap();
                for _ in 0..10 {
                    let done = Arc::clone(&done);
                    pool.execute(move || {
                        thread::sleep(Duration::from_millis(5));
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
                // `pool` dropped here, with jobs still queued.
            }
            assert_eq!(
                done.load(Ordering::SeqCst),
                10,
                "Drop returned before the jobs finished"
            );
        }

        #[test]
        fn a_panicking_job_does_not_kill_its_worker() {
            // One worker only: if the panic killed it, the jobs after it would never run (and
            // `shutdown` would report fewer completions).
            let pool = ThreadPool::new(1, 4).unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            for i in 0..6 {
                let seen = Arc::clone(&seen);
                if i % 2 == 0 {
                    pool.execute(move || panic!("job {i} fails"));
                } else {
                    pool.execute(move || seen.lock().unwrap().push(i));
                }
            }
            let stats = pool.shutdown();
            assert_eq!(
                stats,
                Stats {
                    completed: 6,
                    panicked: 3
                }
            );
            assert_eq!(*seen.lock().unwrap(), vec![1, 3, 5]);
        }

        #[test]
        fn workers_are_named() {
            let pool = ThreadPool::new(3, 1).unwrap();
            let (tx, rx) = crossbeam_channel::unbounded();
            for _ in 0..30 {
                let tx = tx.clone();
                pool.execute(move || {
                    let _ = tx.send(thread::current().name().map(str::to_owned));
                });
            }
            drop(pool);
            drop(tx);
            for name in rx {
                assert!(name.unwrap().starts_with("pool-worker-"));
            }
        }
    }
}

// === Harness: not part of the lesson ===

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rayon::prelude::*;
use shared::cli;
use shared::python::Python;
use shared::report::{Row, SpeedupTable, fmt_duration, print_json, timed};
use shared::work::cpu_task;

/// The course's version (`ThreadPoolExecutor`), run by `--python`.
const PYTHON_RECIPE: &str = "examples-threads/python/thread_pool.py";
/// `--rounds` without `--python`: the jobs take ~2 to 8 ms each in release.
const DEFAULT_ROUNDS: u32 = 2_000_000;
/// `--rounds` with `--python`: CPython takes ~250 ns a round (Rust ~1 ns).
const DEFAULT_PYTHON_ROUNDS: u32 = 20_000;

/// Compare a hand-built thread pool, rayon::ThreadPool and thread::scope on the same jobs.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Worker threads for every variant [default: available_parallelism].
    #[arg(long, value_parser = cli::usize_in(1, 256))]
    workers: Option<usize>,
    /// Number of jobs.
    #[arg(long, default_value_t = 200, value_parser = cli::usize_in(1, 100_000))]
    jobs: usize,
    /// Base rounds of `cpu_task` per job; job i does 1× to 4× this, growing with i
    /// [default: 2000000, or 20000 with --python: CPython takes ~250 ns a round].
    #[arg(long, value_parser = cli::u32_in(1, MAX_ROUNDS))]
    rounds: Option<u32>,
    /// Extra jobs that panic, submitted to the hand-built pool among the others.
    #[arg(long, default_value_t = 2, value_parser = cli::usize_in(0, 1_000))]
    panics: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/thread_pool.py: a plain loop, then
    /// `ThreadPoolExecutor(workers)`) on the same jobs, panicking ones included; every value must
    /// agree. Needs python3 only.
    #[arg(long)]
    python: bool,
}

/// Largest `--rounds`: the biggest job does 4× this, and must still fit in a `u32`.
const MAX_ROUNDS: u32 = u32::MAX / 4;

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // Find python3 before measuring anything: missing, it is a usage error (exit 2) whose
    // message says what to install.
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    // The `--panics` jobs panic on purpose: one line each on stderr. The default hook would also
    // capture and print a backtrace when RUST_BACKTRACE is set, ~50 ms a panic, and the
    // hand-built pool's row would time the panic hook instead of the pool.
    std::panic::set_hook(Box::new(|info| {
        let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
        eprintln!("thread '{name}' {info}");
    }));
    let default_rounds = if args.python {
        DEFAULT_PYTHON_ROUNDS
    } else {
        DEFAULT_ROUNDS
    };
    let rounds = args.rounds.unwrap_or(default_rounds);
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let workers = args.workers.unwrap_or(cores);
    let jobs = job_sizes(args.jobs, rounds);
    let ideal_of = |base: std::time::Duration| base / workers.min(cores) as u32;

    let mut table = SpeedupTable::new(format!(
        "{} jobs (sizes 1x..4x of {} rounds) on {workers} workers, {cores} cores",
        jobs.len(),
        rounds
    ));

    // Sequential baseline: the reference results.
    let seq = timed(|| {
        jobs.iter()
            .map(|&(seed, r)| cpu_task(seed, r))
            .collect::<Vec<u64>>()
    });
    let expected = seq.value.clone();
    table.push(
        Row::new("sequential", seq.wall)
            .cpu(seq.cpu)
            .note("reference results"),
    );
    let ideal = ideal_of(seq.wall);

    // 1. The hand-built pool.
    let hand = timed(|| run_hand_pool(&jobs, workers, args.panics));
    let (results, stats) = hand.value.context("hand-built pool")?;
    table.push(
        Row::new("hand-built ThreadPool", hand.wall)
            .cpu(hand.cpu)
            .ideal(ideal)
            .agrees(results == expected)
            .note(format!(
                "{} jobs done, {} panicked and were caught",
                stats.completed, stats.panicked
            )),
    );

    // 2. rayon's pool: a dedicated pool of the same size (the global one would use every core).
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("rayon-{i}"))
        .build()
        .context("building the rayon pool")?;
    let ray = timed(|| {
        rayon_pool.install(|| {
            jobs.par_iter()
                .map(|&(seed, r)| cpu_task(seed, r))
                .collect::<Vec<u64>>()
        })
    });
    table.push(
        Row::new("rayon::ThreadPool", ray.wall)
            .cpu(ray.cpu)
            .ideal(ideal)
            .agrees(ray.value == expected)
            .note("work stealing, results in order"),
    );

    // 3. thread::scope with a static split: one contiguous chunk per thread.
    let scoped = timed(|| run_scoped_chunks(&jobs, workers));
    table.push(
        Row::new("thread::scope chunks", scoped.wall)
            .cpu(scoped.cpu)
            .ideal(ideal)
            .agrees(scoped.value == expected)
            .note("static split: the last chunk has the biggest jobs"),
    );

    // 4. The course's ThreadPoolExecutor on the same jobs.
    let python_run = match &python {
        Some(py) => {
            if !args.json {
                println!(
                    "running the Python version ({}) on the same jobs…",
                    py.version
                );
            }
            let run = run_python(py, &jobs, workers, args.panics)?;
            let rust = SideBySide {
                sequential: seq.wall,
                pool: hand.wall,
            };
            Some((run, rust))
        }
        None => None,
    };
    let python_agrees = python_run
        .as_ref()
        .is_none_or(|(p, _)| p.agrees(&expected, args.panics));

    if args.json {
        print_json(&serde_json::json!({
            "example": "thread-pool",
            "workers": workers,
            "jobs": jobs.len(),
            "panicked_jobs": stats.panicked,
            "table": table.to_json(),
            "python": python_run.as_ref().map(|(p, rust)| p.to_json(rust, &expected, args.panics)),
        }));
    } else {
        table.print();
        if let Some((p, rust)) = &python_run {
            println!();
            print!("{}", p.render(rust, &expected, args.panics));
        }
    }
    anyhow::ensure!(table.all_agree(), "a variant computed different results");
    if !python_agrees {
        eprintln!("error: the Python version computed different values");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `python/thread_pool.py` reported.
#[derive(Debug, serde::Deserialize)]
struct PythonPool {
    #[serde(skip)]
    version: String,
    workers: usize,
    raised: usize,
    values: Vec<u64>,
    sequential_values_agree: bool,
    sequential_wall_s: f64,
    sequential_cpu_s: f64,
    pool_wall_s: f64,
    pool_cpu_s: f64,
}

/// The Rust rows the Python ones stand beside.
struct SideBySide {
    sequential: Duration,
    pool: Duration,
}

/// Runs the recipe on exactly these jobs (through a file: a few thousand pairs do not belong
/// on a command line), `workers` threads and `panics` jobs that raise.
fn run_python(
    py: &Python,
    jobs: &[(u64, u32)],
    workers: usize,
    panics: usize,
) -> anyhow::Result<PythonPool> {
    let file = tempfile::NamedTempFile::new().context("creating the jobs file for Python")?;
    serde_json::to_writer(&file, &serde_json::json!({ "jobs": jobs }))
        .context("writing the jobs file for Python")?;
    let path = file.path().to_string_lossy().into_owned();
    let (workers, panics) = (workers.to_string(), panics.to_string());
    let args = [
        "--jobs-file",
        &path,
        "--workers",
        &workers,
        "--panics",
        &panics,
    ];
    let out = py.run_recipe(PYTHON_RECIPE, &args)?;
    let mut run: PythonPool = serde_json::from_value(out.json)
        .context("the Python recipe's JSON does not have the expected fields")?;
    anyhow::ensure!(
        [run.sequential_wall_s, run.pool_wall_s]
            .iter()
            .all(|s| s.is_finite() && *s > 0.0),
        "the recipe reported a time that is not a duration"
    );
    run.version = py.version.clone();
    Ok(run)
}

impl PythonPool {
    /// Every value equal to ours, in job order, and every failing job reported as raised.
    fn agrees(&self, expected: &[u64], panics: usize) -> bool {
        self.values == expected && self.sequential_values_agree && self.raised == panics
    }

    /// One table: each language's loop and pool, each pool against its own loop, and Python's
    /// time against ours.
    fn render(&self, rust: &SideBySide, expected: &[u64], panics: usize) -> String {
        let secs = |s: f64| fmt_duration(Duration::from_secs_f64(s));
        // Speedups with two decimals; Python-over-Rust ratios (tens to hundreds) without.
        let x = |a: f64, b: f64| format!("{:.2}x", a / b);
        let times = |a: f64, b: f64| format!("{:.0}x", a / b);
        let (rs, rp) = (rust.sequential.as_secs_f64(), rust.pool.as_secs_f64());
        let (ps, pp) = (self.sequential_wall_s, self.pool_wall_s);
        let same = if self.agrees(expected, panics) {
            "yes"
        } else {
            "NO"
        };
        let lines = [
            [
                "approach",
                "Rust wall",
                "speedup",
                "Python wall",
                "speedup",
                "Python/Rust",
                "same results",
            ]
            .map(String::from),
            [
                "sequential loop".into(),
                fmt_duration(rust.sequential),
                "1.00x".into(),
                secs(ps),
                "1.00x".into(),
                times(ps, rs),
                same.into(),
            ],
            [
                format!("pool of {}: ours / ThreadPoolExecutor", self.workers),
                fmt_duration(rust.pool),
                x(rs, rp),
                secs(pp),
                x(ps, pp),
                times(pp, rp),
                same.into(),
            ],
        ];
        let widths: Vec<usize> = (0..7)
            .map(|c| {
                lines
                    .iter()
                    .map(|l| l[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!(
            "The same {} jobs in Rust and in {} ({} raised and were stored in their Future)\n",
            expected.len(),
            self.version,
            self.raised
        );
        for (i, l) in lines.iter().enumerate() {
            let mut line = String::new();
            for (c, cell) in l.iter().enumerate() {
                let pad = " ".repeat(widths[c] - cell.chars().count());
                if c == 0 {
                    line.push_str(&format!("{cell}{pad}  "));
                } else {
                    line.push_str(&format!("{pad}{cell}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if i == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 12));
                out.push('\n');
            }
        }
        out.push_str(
            "CPU-bound: the GIL lets one ThreadPoolExecutor worker run Python at a time, so it is no\n\
             faster than the loop. For I/O-bound jobs it is the right tool (see url-downloader).\n",
        );
        out
    }

    fn to_json(&self, rust: &SideBySide, expected: &[u64], panics: usize) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "workers": self.workers,
            "raised": self.raised,
            "values_agree": self.agrees(expected, panics),
            "sequential_wall_s": self.sequential_wall_s,
            "sequential_cpu_s": self.sequential_cpu_s,
            "pool_wall_s": self.pool_wall_s,
            "pool_cpu_s": self.pool_cpu_s,
            "pool_speedup_over_its_loop": self.sequential_wall_s / self.pool_wall_s,
            "time_vs_rust_pool": self.pool_wall_s / rust.pool.as_secs_f64().max(1e-9),
            "time_vs_rust_sequential": self.sequential_wall_s / rust.sequential.as_secs_f64().max(1e-9),
        })
    }
}

/// `(seed, rounds)` for `n` jobs; sizes grow linearly from 1× to 4× `base` so that a static split
/// is unbalanced, as real batches often are (files sorted by size, dates, …).
fn job_sizes(n: usize, base: u32) -> Vec<(u64, u32)> {
    (0..n)
        .map(|i| {
            let factor = 1.0 + 3.0 * i as f64 / n.max(2).saturating_sub(1) as f64;
            (i as u64, (base as f64 * factor) as u32)
        })
        .collect()
}

/// Run every job on the hand-built pool plus `panics` jobs that panic, and gather the results
/// in job order through a channel.
fn run_hand_pool(
    jobs: &[(u64, u32)],
    workers: usize,
    panics: usize,
) -> anyhow::Result<(Vec<u64>, pool::Stats)> {
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, u64)>();
    // Queue capacity 2 × workers: enough to keep every worker fed, small enough that the
    // submitting loop waits instead of boxing every job up front.
    let pool = pool::ThreadPool::new(workers, 2 * workers).context("spawning pool workers")?;
    let panic_every = jobs.len() / (panics + 1);
    let mut panics_left = panics;
    for (i, &(seed, rounds)) in jobs.iter().enumerate() {
        if panics_left > 0 && panic_every > 0 && i > 0 && i % panic_every == 0 {
            panics_left -= 1;
            pool.execute(move || panic!("job {i}b: a bug in one job"));
        }
        let tx = tx.clone();
        // Each job owns a Sender clone and reports its own index: results come back in
        // completion order, we put them back in job order.
        pool.execute(move || {
            // The receiver lives until all results are in, so this cannot fail.
            let _ = tx.send((i, cpu_task(seed, rounds)));
        });
    }
    for _ in 0..panics_left {
        pool.execute(|| panic!("a bug in one job"));
    }
    // Close the queue, let the workers drain it, join them, and read the final counts.
    // (Simply letting `pool` go out of scope would do the same through `Drop`.)
    let stats = pool.shutdown();
    drop(tx); // our own Sender: without this, the loop below would wait forever
    let mut results = vec![0u64; jobs.len()];
    let mut received = 0;
    for (i, v) in rx {
        results[i] = v;
        received += 1;
    }
    anyhow::ensure!(
        received == jobs.len(),
        "{received} of {} results",
        jobs.len()
    );
    Ok((results, stats))
}

/// Split the jobs in `workers` contiguous chunks, one scoped thread per chunk.
fn run_scoped_chunks(jobs: &[(u64, u32)], workers: usize) -> Vec<u64> {
    let chunk = jobs.len().div_ceil(workers).max(1);
    thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(seed, r)| cpu_task(seed, r))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("cpu_task does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::pool::Stats;
    use super::*;

    #[test]
    fn all_variants_agree_with_sequential() {
        let jobs = job_sizes(23, 1_000);
        let expected: Vec<u64> = jobs.iter().map(|&(s, r)| cpu_task(s, r)).collect();
        let (results, stats) = run_hand_pool(&jobs, 3, 2).unwrap();
        assert_eq!(results, expected);
        assert_eq!(
            stats,
            Stats {
                completed: 25,
                panicked: 2
            }
        );
        assert_eq!(run_scoped_chunks(&jobs, 3), expected);
        assert_eq!(run_scoped_chunks(&jobs, 50), expected);
    }

    #[test]
    fn python_agrees_only_with_every_value_and_every_exception() {
        let run = |values: Vec<u64>, raised| PythonPool {
            version: "Python 3.x".into(),
            workers: 2,
            raised,
            values,
            sequential_values_agree: true,
            sequential_wall_s: 2.0,
            sequential_cpu_s: 2.0,
            pool_wall_s: 2.0,
            pool_cpu_s: 2.0,
        };
        let rust = SideBySide {
            sequential: Duration::from_millis(10),
            pool: Duration::from_millis(5),
        };
        assert!(run(vec![1, 2, 3], 2).agrees(&[1, 2, 3], 2));
        assert!(!run(vec![1, 3, 2], 2).agrees(&[1, 2, 3], 2), "job order");
        assert!(
            !run(vec![1, 2, 3], 1).agrees(&[1, 2, 3], 2),
            "a lost exception"
        );
        let text = run(vec![1, 2, 4], 2).render(&rust, &[1, 2, 3], 2);
        assert!(text.contains(" NO"), "{text}");
        assert!(text.contains("400x"), "Python's pool against ours: {text}");
        let json = run(vec![1, 2, 3], 2).to_json(&rust, &[1, 2, 3], 2);
        assert_eq!(json["values_agree"], true);
        assert_eq!(json["pool_speedup_over_its_loop"], 1.0);
    }

    #[test]
    fn job_sizes_grow_from_one_to_four_times_the_base() {
        let jobs = job_sizes(4, 100);
        assert_eq!(jobs, vec![(0, 100), (1, 200), (2, 300), (3, 400)]);
        assert_eq!(job_sizes(1, 100), vec![(0, 100)]);
    }
}
