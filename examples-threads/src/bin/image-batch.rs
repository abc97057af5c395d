//! Image batch: a thumbnail for every image of a folder, on every core (rayon), within a memory
//! budget.
//!
//! Course section **8.1 — Threading et multiprocessing**: "Traiter chaque image d'un dossier sur
//! un cœur différent", the course's case for `multiprocessing.Pool` (its Python version:
//! `python/image_batch.py`, `--python`). In Python the GIL forces one process per core and every
//! task crosses a pipe. Here threads share the job list by reference, results come back as plain
//! values, and a broken file is just an `Err` among the results.
//!
//! Crates: `rayon = "1.12"`
//!
//! # Concepts
//! - A dedicated pool (`rayon::ThreadPoolBuilder`, `--threads`), not the global one: a library
//!   should not decide how many cores the whole program uses.
//! - Dynamic dispatch: jobs enter the pool one at a time and an idle thread takes the next one,
//!   largest files first, so a 12 MP photo among 0.5 MP ones does not leave a core idle at the
//!   end (Python: `Pool.map(chunksize=1)`, one pipe round trip per image).
//! - Errors as values: every item's `Result` is collected; one bad file never stops the batch.
//! - Cooperative cancellation: Ctrl-C or SIGTERM sets a flag; images not started are skipped,
//!   images in flight finish (outputs are written to a temporary name, then renamed), exit 130.
//! - **A decode budget, a concurrency lesson of its own**: a weighted semaphore (`Mutex<u64>` +
//!   `Condvar`) admits images by their estimated decoded size, so two 100 MP images are never
//!   in memory together, and one larger than the whole budget waits, then runs alone. The
//!   thread that *submits* takes the budget, never a pool thread: a rayon thread that waits
//!   inside a job (jpeg-decoder runs rayon inside) may start another job on the same stack, and
//!   blocking there can deadlock.
//! - Progress and the per-image work (`shared::thumbnail`) reach the lesson as closures.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin image-batch                     # 50 seeded samples
//! cargo run --release -p examples-threads --bin image-batch -- --sequential     # + speedup table
//! cargo run --release -p examples-threads --bin image-batch -- --with-broken    # bad files: exit 1
//! cargo run --release -p examples-threads --bin image-batch -- --python   # + Pool(2) and Pillow
//! cargo run --release -p examples-threads --bin image-batch -- ~/Photos /tmp/thumbs --recursive
//! cargo run --release -p examples-threads --bin image-batch -- --memory-budget 64 --json
//! cargo run --release -p examples-threads --bin image-batch -- --name-order --full-decode
//! ```
//!
//! # What to observe
//! - `--sequential` on 2 cores: about 1.9× faster, `cpu` about the same in both rows (the same
//!   CPU time in less wall time), and `agrees: yes` (byte-identical thumbnails).
//! - `--python`: Pool + Pillow write the same files with the same dimensions, in more time.
//! - The per-thread lines: different image counts, similar megapixels; `--name-order`: the run
//!   ends with one core alone on a late big image.
//! - `--with-broken`: each bad file listed with its reason, no output for it, exit code 1.
//! - Two 16-bit 100 MP PNGs (1.2 GB each once decoded): `memory_budget` in `--json` shows they
//!   ran one after the other, and `peak_rss_kib` is about half of what both at once take.
//!
//! # Exercises
//! 1. Replace the pool by a static split (`std::thread::scope` over `jobs.chunks(..)`). Why is
//!    largest-first order the *worst* case for a static split and the best one here?
//! 2. Move `budget.acquire` into the spawned job. Run two big JPEGs with `--memory-budget 16`:
//!    why can it hang now? (Hint: what does a rayon thread do while it waits in a `join`?)
//! 3. With `--memory-budget 16`, read `waits` in `--json`: one submitter admits in job order, so
//!    a big image at the head holds back small ones that would fit. Admit the first job that
//!    fits instead: what can now happen to the big one?
//! 4. Write the decode budget yourself, for waiters of different weights, checked for lost
//!    wake-ups: `cargo run -p shared --bin exercises -- check threads/05`.
//! 5. Run `--threads 4` on 2 cores: throughput stays flat, memory grows. Why?

// === Lesson: copy from here ===

/// Admission by memory: a weighted semaphore counted in bytes.
mod decode_budget {
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

    /// At most `capacity` bytes admitted at once. A request larger than the whole budget takes
    /// all of it: it waits until nothing else is admitted, then runs alone.
    pub struct DecodeBudget {
        capacity: u64,
        usage: Mutex<Usage>,
        /// Signalled whenever bytes are released: waiters check again whether they fit.
        released: Condvar,
    }

    struct Usage {
        admitted: u64,
        stats: BudgetStats,
    }

    /// What the budget saw, for the report.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct BudgetStats {
        pub capacity: u64,
        /// Most bytes admitted at once: never over `capacity`.
        pub peak: u64,
        /// Admissions that had to wait for others to finish.
        pub waits: u64,
        /// Requests larger than the whole budget (each ran alone).
        pub oversized: u64,
    }

    /// Bytes admitted until this is dropped.
    #[must_use = "the bytes are released as soon as the permit is dropped"]
    pub struct Permit<'a> {
        budget: &'a DecodeBudget,
        bytes: u64,
    }

    impl DecodeBudget {
        pub fn new(capacity: u64) -> DecodeBudget {
            let capacity = capacity.max(1);
            DecodeBudget {
                capacity,
                usage: Mutex::new(Usage {
                    admitted: 0,
                    stats: BudgetStats {
                        capacity,
                        ..BudgetStats::default()
                    },
                }),
                released: Condvar::new(),
            }
        }

        /// Blocks until `bytes` fit in the budget, then admits them.
        pub fn acquire(&self, bytes: u64) -> Permit<'_> {
            let mut usage = self.lock();
            if bytes > self.capacity {
                // Refusing it would be the other policy (a hard limit); here it runs alone.
                usage.stats.oversized += 1;
            }
            let bytes = bytes.min(self.capacity);
            if usage.admitted + bytes > self.capacity {
                usage.stats.waits += 1;
            }
            // A loop, not an `if`: wake-ups may be spurious, and another waiter may have taken
            // the bytes first.
            while usage.admitted + bytes > self.capacity {
                usage = self
                    .released
                    .wait(usage)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            usage.admitted += bytes;
            usage.stats.peak = usage.stats.peak.max(usage.admitted);
            Permit {
                budget: self,
                bytes,
            }
        }

        pub fn stats(&self) -> BudgetStats {
            self.lock().stats
        }

        /// The counters are updated in single statements, so a panic elsewhere cannot leave
        /// them half-changed: a poisoned lock is safe to keep using.
        fn lock(&self) -> MutexGuard<'_, Usage> {
            self.usage.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Drop for Permit<'_> {
        fn drop(&mut self) {
            self.budget.lock().admitted -= self.bytes;
            // notify_all, not notify_one: waiters want different amounts, and the one
            // notify_one picks may not fit while another would.
            self.budget.released.notify_all();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::DecodeBudget;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::thread;
        use std::time::Duration;

        /// 8 threads × 50 requests of 10 to 40 bytes on a budget of 100: the bytes held at
        /// once, counted by the holders themselves, never exceed it.
        #[test]
        fn never_over_budget() {
            let budget = DecodeBudget::new(100);
            let held = AtomicU64::new(0);
            let most = AtomicU64::new(0);
            thread::scope(|s| {
                for t in 0..8u64 {
                    let (budget, held, most) = (&budget, &held, &most);
                    s.spawn(move || {
                        for i in 0..50u64 {
                            let bytes = 10 + (t * 7 + i * 13) % 31;
                            let _permit = budget.acquire(bytes);
                            let now = held.fetch_add(bytes, Ordering::SeqCst) + bytes;
                            most.fetch_max(now, Ordering::SeqCst);
                            thread::yield_now();
                            held.fetch_sub(bytes, Ordering::SeqCst);
                        }
                    });
                }
            });
            assert!(most.load(Ordering::SeqCst) <= 100);
            let stats = budget.stats();
            assert!(stats.peak <= 100 && stats.peak >= 40, "{stats:?}");
            assert!(stats.waits > 0, "8 threads on room for ~4 must have waited");
        }

        /// A request larger than the budget neither deadlocks nor shares it: it waits for the
        /// others, runs alone, then lets them in again.
        #[test]
        fn an_oversized_request_runs_alone_without_deadlock() {
            let budget = DecodeBudget::new(100);
            let small = budget.acquire(30);
            let (tx, rx) = std::sync::mpsc::channel();
            thread::scope(|s| {
                s.spawn(|| {
                    let big = budget.acquire(1_000);
                    tx.send("big admitted").unwrap();
                    thread::sleep(Duration::from_millis(20));
                    drop(big);
                });
                // The big one waits while the small permit is held.
                assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
                drop(small);
                assert_eq!(rx.recv().unwrap(), "big admitted");
                // A small one now waits for the big one, and gets in once it is released.
                let _again = budget.acquire(30);
            });
            let stats = budget.stats();
            assert_eq!((stats.peak, stats.oversized, stats.waits), (100, 1, 2));
        }
    }
}

/// The batch: every job on a dedicated rayon pool, admitted by the decode budget.
mod parallel_batch {
    use super::decode_budget::DecodeBudget;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    /// What happened to one job.
    #[derive(Debug, PartialEq, Eq)]
    pub enum JobResult<T, E> {
        /// `thread`: the pool's index of the thread that did it.
        Done {
            value: T,
            thread: usize,
        },
        Failed(E),
        /// Stopped before it started.
        Cancelled,
    }

    /// What steers a batch besides its jobs and its work.
    pub struct BatchControl<'a> {
        /// Admits each job by its cost before it enters the pool.
        pub budget: &'a DecodeBudget,
        /// Set by Ctrl-C: jobs not started yet are cancelled.
        pub stop: &'a AtomicBool,
        /// Called once per job, on the thread that finished it (a progress bar's `inc`).
        pub on_item_done: &'a (dyn Fn() + Sync),
    }

    /// Runs `work` on every job on `pool` and returns what happened to each, in job order.
    /// One job's error never stops the others.
    pub fn run_batch<J, T, E>(
        pool: &rayon::ThreadPool,
        jobs: &[J],
        cost: impl Fn(&J) -> u64,
        work: impl Fn(&J) -> Result<T, E> + Sync,
        control: &BatchControl<'_>,
    ) -> Vec<JobResult<T, E>>
    where
        J: Sync,
        T: Send,
        E: Send,
    {
        let (done_tx, done_rx) = mpsc::channel();
        let work = &work;
        // `in_place_scope`: the body runs on *this* thread, the spawned jobs on the pool. This
        // thread is the only one that blocks on the budget; pool threads never wait for it.
        pool.in_place_scope(|scope| {
            for (i, job) in jobs.iter().enumerate() {
                // Acquire pairs with the Release store of the signal handler.
                if control.stop.load(Ordering::Acquire) {
                    break; // the jobs not submitted stay `Cancelled`
                }
                let permit = control.budget.acquire(cost(job));
                let done_tx = done_tx.clone();
                scope.spawn(move |_| {
                    let result = if control.stop.load(Ordering::Acquire) {
                        JobResult::Cancelled
                    } else {
                        match work(job) {
                            Ok(value) => JobResult::Done {
                                value,
                                thread: rayon::current_thread_index().unwrap_or(0),
                            },
                            Err(e) => JobResult::Failed(e),
                        }
                    };
                    drop(permit); // the submitter may admit the next job now
                    (control.on_item_done)();
                    // The receiver outlives the scope: this cannot fail.
                    let _ = done_tx.send((i, result));
                });
            }
        });
        drop(done_tx);
        let mut results: Vec<JobResult<T, E>> = jobs.iter().map(|_| JobResult::Cancelled).collect();
        for (i, result) in done_rx {
            results[i] = result;
        }
        results
    }

    #[cfg(test)]
    mod tests {
        use super::{BatchControl, DecodeBudget, JobResult, run_batch};
        use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

        fn pool(threads: usize) -> rayon::ThreadPool {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
        }

        #[test]
        fn every_job_runs_once_and_errors_are_collected_in_order() {
            let jobs: Vec<u64> = (0..200).collect();
            let budget = DecodeBudget::new(1 << 20);
            let (stop, done) = (AtomicBool::new(false), AtomicUsize::new(0));
            let on_item_done = || {
                done.fetch_add(1, Ordering::Relaxed);
            };
            let control = BatchControl {
                budget: &budget,
                stop: &stop,
                on_item_done: &on_item_done,
            };
            let work = |&j: &u64| if j % 7 == 0 { Err(j) } else { Ok(j * 2) };
            let results = run_batch(&pool(3), &jobs, |_| 1, work, &control);
            for (j, r) in jobs.iter().zip(&results) {
                match r {
                    JobResult::Done { value, thread } => assert!(*value == j * 2 && *thread < 3),
                    JobResult::Failed(e) => assert!(e == j && j % 7 == 0),
                    JobResult::Cancelled => panic!("job {j} cancelled"),
                }
            }
            assert_eq!(done.load(Ordering::Relaxed), 200);
        }

        #[test]
        fn jobs_in_flight_never_exceed_the_budget_and_a_big_one_runs_alone() {
            // Costs 10 on a budget of 25: at most 2 at once; job 20 costs more than everything.
            let jobs: Vec<u64> = (0..40).map(|j| if j == 20 { 1_000 } else { 10 }).collect();
            let budget = DecodeBudget::new(25);
            let (running, most, big_alone) =
                (AtomicU64::new(0), AtomicU64::new(0), AtomicBool::new(false));
            let control = BatchControl {
                budget: &budget,
                stop: &AtomicBool::new(false),
                on_item_done: &|| {},
            };
            let work = |&cost: &u64| -> Result<(), ()> {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if cost > 25 {
                    big_alone.store(now == 1, Ordering::SeqCst);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            };
            let results = run_batch(&pool(4), &jobs, |&c| c, work, &control);
            assert!(results.iter().all(|r| matches!(r, JobResult::Done { .. })));
            assert!(most.load(Ordering::SeqCst) <= 2, "4 threads, room for 2");
            assert!(
                big_alone.load(Ordering::SeqCst),
                "the big job shared the budget"
            );
            assert_eq!(budget.stats().oversized, 1);
        }

        #[test]
        fn a_stop_cancels_every_job_not_started() {
            let jobs: Vec<usize> = (0..50).collect();
            let budget = DecodeBudget::new(1 << 20);
            let stop = AtomicBool::new(false);
            let control = BatchControl {
                budget: &budget,
                stop: &stop,
                on_item_done: &|| {},
            };
            // One thread: jobs run in submission order, and job 5 asks to stop.
            let work = |&j: &usize| -> Result<usize, ()> {
                if j == 5 {
                    stop.store(true, Ordering::Release);
                }
                Ok(j)
            };
            let results = run_batch(&pool(1), &jobs, |_| 1, work, &control);
            assert!(
                results[..=5]
                    .iter()
                    .all(|r| matches!(r, JobResult::Done { .. }))
            );
            assert!(results[6..].iter().all(|r| *r == JobResult::Cancelled));
        }
    }
}

// === Harness: not part of the lesson ===

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use decode_budget::DecodeBudget;
use indicatif::ProgressBar;
use parallel_batch::{BatchControl, JobResult, run_batch};
use shared::batch::{
    self, BatchArgs, BatchJob, BatchReport, BudgetFigures, ItemDone, ItemResult, JobOrder, Lanes,
    PreparedBatch, PythonBatch,
};
use shared::report::{Row, SpeedupTable, print_json, timed};
use shared::thumbnail::{self, ThumbOptions};

/// Make a thumbnail of every JPEG/PNG of a folder on all cores (rayon), skipping broken files,
/// within a memory budget.
///
/// Without IN_DIR, generates a seeded folder of photo-like sample images first.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    batch: BatchArgs,
    /// Keep glibc's default of returning every large freed buffer to the kernel (munmap), to
    /// measure what `keep_freed_buffers` saves.
    #[arg(long)]
    default_malloc: bool,
    /// Process the files in name order instead of largest first (to see the tail effect).
    #[arg(long)]
    name_order: bool,
    /// Worker threads of the rayon pool (default: one per core).
    #[arg(long, value_parser = shared::cli::usize_in(1, 256))]
    threads: Option<usize>,
    /// First run the same batch on one thread, then print the speedup and check that both runs
    /// wrote identical files.
    #[arg(long)]
    sequential: bool,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // `--python`: find python3 and Pillow before any work; missing, it is a usage error (exit 2)
    // whose message says what to install.
    let python = match args.batch.python.then(PythonBatch::find).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if !args.default_malloc {
        keep_freed_buffers();
    }
    let opts = args.batch.thumb_options();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let order = if args.name_order {
        JobOrder::Name
    } else {
        JobOrder::LargestFirst
    };
    let PreparedBatch {
        stop,
        folders,
        plan,
    } = PreparedBatch::prepare(&args.batch, "image-batch", order)?;

    let build_pool = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("thumb-{i}"))
            .build()
            .context("building the rayon pool")
    };
    let budget_bytes = args.batch.memory_budget_bytes();
    let run_within_budget = |pool: &rayon::ThreadPool, out_dir: &Path, label: &str| {
        let budget = DecodeBudget::new(budget_bytes);
        let bar = shared::progress::bar(plan.jobs.len() as u64, args.batch.json);
        bar.set_message(label.to_string());
        let results = run_thumbnails(pool, &plan.jobs, out_dir, &opts, &budget, &stop, &bar);
        bar.finish_and_clear();
        (results, budget.stats())
    };

    // --- Optional sequential baseline, into a scratch folder, on a pool of one thread.
    // (Not a plain loop on the main thread: jpeg-decoder spreads one image's colour
    // components over the *current* rayon pool, so only a one-thread pool is truly sequential.)
    let mut table = SpeedupTable::new(format!("{} images, {threads} threads", plan.jobs.len()));
    let mut baseline = None;
    if args.sequential {
        let scratch = tempfile::Builder::new()
            .prefix("image-batch-seq-")
            .tempdir()
            .context("creating a scratch folder for the sequential run")?;
        let one = build_pool(1)?;
        let t = timed(|| run_within_budget(&one, scratch.path(), "sequential").0);
        table.push(
            Row::new("sequential (1 thread)", t.wall)
                .cpu(t.cpu)
                .note("same code on a 1-thread pool"),
        );
        baseline = Some((scratch, t.value, t.wall));
    }

    // --- The parallel run.
    let par_pool = build_pool(threads)?;
    let parallel = timed(|| run_within_budget(&par_pool, &folders.out_dir, "thumbnails"));
    let (results, budget) = parallel.value;
    let budget = BudgetFigures {
        capacity_bytes: budget.capacity,
        peak_bytes: budget.peak,
        waits: budget.waits,
        oversized: budget.oversized,
    };

    let mut identical = None;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rayon_row = || {
        Row::new(format!("rayon ({threads} threads)"), parallel.wall)
            .cpu(parallel.cpu)
            .note("jobs spawned on a local pool")
    };
    if let Some((scratch, seq_results, seq_wall)) = &baseline {
        let same = batch::same_results(
            &plan.jobs,
            seq_results,
            scratch.path(),
            &results,
            &folders.out_dir,
        )?;
        identical = Some(same);
        table.push(
            rayon_row()
                .ideal(seq_wall.div_f64(threads.min(cores) as f64))
                .agrees(same),
        );
    }

    // --- The course's Python (Pool + Pillow) on the same folder, as many workers as threads.
    let interrupted = stop.load(Ordering::Acquire);
    let python_run = match &python {
        Some(py) if !interrupted => {
            if !args.batch.json {
                println!(
                    "running the Python version ({}) on the same folder…",
                    py.version
                );
            }
            let run = PythonBatch::run(py, &args.batch, &folders, &plan, &results, threads)?;
            if baseline.is_none() {
                table.push(rayon_row());
            }
            table.push(run.row(parallel.wall));
            run.print_differences();
            Some(run)
        }
        _ => None,
    };

    // --- Report.
    let lanes = Lanes {
        count: threads,
        count_key: "threads",
        per_lane_key: "per_thread",
        label: "thread thumb-",
    };
    let report = BatchReport::new(&plan, &results, lanes, parallel.wall, parallel.cpu);
    if args.batch.json {
        let mut v = report.to_json(&folders);
        v["speedup"] = if table.rows().is_empty() {
            serde_json::Value::Null
        } else {
            table.to_json()
        };
        v["identical"] = serde_json::json!(identical);
        v["python"] = python_run
            .as_ref()
            .map_or(serde_json::Value::Null, |p| p.to_json(parallel.wall));
        v["memory_budget"] = budget.to_json();
        v["peak_rss_kib"] = shared::report::peak_rss_kib().into();
        print_json(&v);
    } else {
        report.print(&folders);
        budget.print();
        if !table.rows().is_empty() {
            println!();
            table.print();
            if identical == Some(false) {
                println!("sequential and parallel outputs DIFFER (see above)");
            }
            if let Some(p) = &python_run {
                println!(
                    "Python wrote {}: {:.2}x the time of rayon's {} threads.",
                    if p.agrees() {
                        "the same files, with the same dimensions"
                    } else {
                        "DIFFERENT files or dimensions (see above)"
                    },
                    p.wall.as_secs_f64() / parallel.wall.as_secs_f64().max(1e-9),
                    threads
                );
            }
        }
    }
    if interrupted {
        eprintln!("interrupted: the images in flight were finished, the others skipped");
    }
    // Any comparison that was made must agree: sequential vs parallel, Python vs Rust.
    let agrees = match (identical, &python_run) {
        (None, None) => None,
        (same, python) => Some(same != Some(false) && python.as_ref().is_none_or(|p| p.agrees())),
    };
    Ok(batch::exit_code(interrupted, &report, agrees))
}

/// The lesson's batch on the thumbnail job; results in the shared harness's terms.
fn run_thumbnails(
    pool: &rayon::ThreadPool,
    jobs: &[BatchJob],
    out_dir: &Path,
    opts: &ThumbOptions,
    budget: &DecodeBudget,
    stop: &AtomicBool,
    bar: &ProgressBar,
) -> Vec<ItemResult> {
    let on_item_done = || bar.inc(1);
    let control = BatchControl {
        budget,
        stop,
        on_item_done: &on_item_done,
    };
    let work = |job: &BatchJob| {
        thumbnail::thumbnail_file(&job.input, &out_dir.join(&job.rel_output), opts)
    };
    run_batch(pool, jobs, |job| job.decode_bytes, work, &control)
        .into_iter()
        .map(|r| match r {
            JobResult::Done { value, thread } => ItemResult::Done {
                done: ItemDone::from(&value),
                lane: thread,
            },
            JobResult::Failed(e) => ItemResult::Failed {
                kind: e.kind().into(),
                reason: e.reason(),
            },
            JobResult::Cancelled => ItemResult::Cancelled,
        })
        .collect()
}

/// Threads share one address space, and that has a cost processes do not pay. glibc's malloc
/// serves every buffer over 128 KiB-32 MiB with a fresh `mmap` and gives it back with `munmap`
/// when freed: a decoded 12 MP photo is a 36 MB buffer, so each image costs thousands of page
/// faults (zeroed pages) and an `munmap` that makes the kernel interrupt the *other* core to
/// flush its TLB (a "TLB shootdown": the other thread uses the same page tables). Keeping freed
/// buffers in the heap for the next image saves most of them (figures in the README). The
/// price: memory is not returned to the OS until exit (fine for a batch; a long-running server
/// would rather reuse its buffers explicitly or use an allocator such as mimalloc or jemalloc).
/// Buffers over 256 MiB (a 100 MP image) are still mapped and returned at once.
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before any other
    // thread exists. Values: serve allocations up to 256 MiB from the heap, trim the heap
    // only when 512 MiB are free at its top.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}
