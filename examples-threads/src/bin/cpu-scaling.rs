//! CPU scaling: the same CPU-bound work on 1, 2, … N threads, with speedup and efficiency.
//!
//! Course section **8.1 — Threading et multiprocessing** ("le GIL limite le parallélisme réel").
//!
//! In CPython, the Global Interpreter Lock lets only one thread execute Python bytecode at a time:
//! a CPU-bound loop on 4 threads takes as long as on 1 (often a bit longer, they fight for the
//! lock). The course's answer is `multiprocessing`: one interpreter per core, paying for process
//! start-up and for pickling every argument and result across a pipe. Rust threads have no such
//! lock: each thread runs on its own core and shares memory directly, so the job list below is
//! a plain borrowed slice, and results come back through `join`, with nothing serialized.
//!
//! Crates: std only.
//!
//! # Concepts
//! - Real parallelism with OS threads (`thread::scope`), no processes needed.
//! - Speedup = T(1) / T(k); efficiency = speedup / k (100% = every thread did useful work all
//!   the time). Ideal time = T(1) / min(k, cores).
//! - Oversubscription: past `available_parallelism()` threads, CPU-bound work gets no faster;
//!   the extra threads only take turns on the same cores (efficiency drops to cores/k).
//! - Dynamic work distribution: each thread takes the next job from a shared `AtomicUsize`, so a
//!   thread slowed by a noisy neighbour simply takes fewer jobs.
//! - Checking results: every run must produce the same checksum as the sequential one.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin cpu-scaling
//! cargo run --release -p examples-threads --bin cpu-scaling -- --max-threads 8 --repeat 3
//! cargo run --release -p examples-threads --bin cpu-scaling -- --json
//! ```
//! (Use `--release`: a debug build is ~10× slower and its timings mean little.)
//!
//! # What to observe
//! - 2 threads on 2 cores: speedup close to 2.00× (efficiency ≥ 90%); the `cpu` column stays the
//!   same for every row: parallelism spends the same CPU time, only faster in wall time.
//! - From k = cores + 1 on, wall time stops improving and efficiency falls towards cores/k.
//! - Run `top -H` (or `htop`, then `H`) in another terminal: one line per thread, each near 100%.
//!
//! # Exercises
//! 1. Replace the atomic job counter by a static split (`jobs.chunks(jobs.len().div_ceil(k))`).
//!    Try `--jobs 7`: what happens to efficiency at k = 2, 4, and why?
//! 2. Write the same loop in Python with `threading` and with `multiprocessing.Pool`, time both,
//!    and put the three speedups side by side.
//! 3. Make each job allocate (`vec![0u8; 1 << 20]`) and touch its buffer. Does scaling hold? What
//!    is now shared between threads (the allocator, memory bandwidth)?
//! 4. Run with `--rounds 1000 --jobs 100000`: jobs of ~1 µs. Where does the time go now?

// === Lesson: copy from here ===

/// The same jobs on `k` threads, each thread taking the next job from a shared counter.
mod scaling {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    /// Runs `work(seed)` for every seed on `k` threads and combines the results with a wrapping
    /// sum (order-independent, so any schedule gives the sequential run's checksum).
    pub fn run_on_threads(seeds: &[u64], k: usize, work: impl Fn(u64) -> u64 + Sync) -> u64 {
        // The next job to take. Relaxed is enough: the counter only hands out distinct indices;
        // the results travel back through `join`, which synchronizes on its own.
        let next = AtomicUsize::new(0);
        thread::scope(|s| {
            let handles: Vec<_> = (0..k)
                .map(|_| {
                    s.spawn(|| {
                        let mut acc = 0u64;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&seed) = seeds.get(i) else { break acc };
                            acc = acc.wrapping_add(work(seed));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("the work does not panic"))
                .fold(0u64, u64::wrapping_add)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::run_on_threads;

        #[test]
        fn every_thread_count_gives_the_sequential_checksum() {
            let work = |seed: u64| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
            let seeds: Vec<u64> = (0..37).collect();
            let sequential = seeds.iter().fold(0u64, |acc, &s| acc.wrapping_add(work(s)));
            for k in [1, 2, 3, 8, 50] {
                assert_eq!(run_on_threads(&seeds, k, work), sequential, "k = {k}");
            }
        }
    }
}

// === Harness: not part of the lesson ===

use std::num::NonZeroUsize;
use std::thread;
use std::time::Duration;

use clap::Parser;
use scaling::run_on_threads;
use shared::cli;
use shared::report::{Row, SpeedupTable, print_json, timed};
use shared::work::cpu_task;

/// Run the same CPU-bound jobs on 1, 2, … N threads and print the speedup and efficiency.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of jobs (the work is the same for every thread count).
    #[arg(long, default_value_t = 96, value_parser = cli::usize_in(1, 1_000_000))]
    jobs: usize,
    /// Rounds of `shared::work::cpu_task` per job (~1 ns each in release: 10 M ≈ 10 ms).
    #[arg(long, default_value_t = 10_000_000, value_parser = cli::u32_in(1, 1_000_000_000))]
    rounds: u32,
    /// Largest thread count tried [default: 2 × available_parallelism, to show oversubscription].
    #[arg(long, value_parser = cli::usize_in(1, 512))]
    max_threads: Option<usize>,
    /// Run each thread count this many times and keep the fastest (less noise).
    #[arg(long, default_value_t = 1, value_parser = cli::u32_in(1, 100))]
    repeat: u32,
    /// Print the figures as one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let max_threads = args.max_threads.unwrap_or(2 * cores);
    let counts = thread_counts(max_threads, cores);
    // The job list: one seed per job. Threads borrow it; nothing is copied or serialized.
    let seeds: Vec<u64> = (0..args.jobs as u64).collect();

    // A speedup measured on a busy machine is a measurement of the other programs too: say so.
    let load = load_average();
    if !args.json {
        println!(
            "{} jobs × {} rounds of cpu_task, {cores} cores available, trying {counts:?} threads",
            args.jobs, args.rounds
        );
        if let Some(load) = load.filter(|&l| l > (cores as f64 / 4.0).max(0.5)) {
            println!(
                "warning: load average {load:.1} before starting: other programs are using the \
                 CPU,\n         so the speedups below will be lower than this machine can do"
            );
        }
    }

    let mut table = SpeedupTable::new(format!(
        "Same CPU-bound work on k threads ({cores} cores; best of {})",
        args.repeat
    ));
    let mut expected = None;
    let mut base_wall = Duration::ZERO;
    let mut efficiencies = Vec::new();
    for &k in &counts {
        // Best of `repeat` runs: scheduling noise only ever makes a run slower.
        let work = |seed| cpu_task(seed, args.rounds);
        let best = (0..args.repeat)
            .map(|_| timed(|| run_on_threads(&seeds, k, work)))
            .min_by_key(|t| t.wall)
            .expect("repeat is at least 1");
        let checksum = best.value;
        let agrees = *expected.get_or_insert(checksum) == checksum;
        if k == 1 {
            base_wall = best.wall;
        }
        let speedup = base_wall.as_secs_f64() / best.wall.as_secs_f64();
        let efficiency = speedup / k as f64;
        efficiencies.push(serde_json::json!({ "threads": k, "efficiency": efficiency }));
        let note = if k > cores {
            format!(
                "efficiency {:>3.0}%  oversubscribed: {k} threads share {cores} cores",
                efficiency * 100.0
            )
        } else {
            format!("efficiency {:>3.0}%", efficiency * 100.0)
        };
        table.push(
            Row::new(
                format!("{k} thread{}", if k == 1 { "" } else { "s" }),
                best.wall,
            )
            .cpu(best.cpu)
            .ideal(base_wall / k.min(cores) as u32)
            .agrees(agrees)
            .note(note),
        );
    }

    if args.json {
        print_json(&serde_json::json!({
            "example": "cpu-scaling",
            "cores": cores,
            "jobs": args.jobs,
            "rounds": args.rounds,
            "checksum": expected,
            "load_average_1m": load,
            "efficiency": efficiencies,
            "table": table.to_json(),
        }));
    } else {
        println!();
        table.print();
        println!(
            "\nNo GIL: Rust threads run CPU-bound code on every core at once, sharing memory. \
             CPython threads\nwould stay near 1.00x here; Python needs `multiprocessing` (one \
             interpreter per core, arguments\nand results pickled through pipes) to get this speedup."
        );
    }
    anyhow::ensure!(
        table.all_agree(),
        "a thread count produced a different checksum"
    );
    Ok(())
}

/// The 1-minute load average (runnable threads, averaged), Linux only.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The thread counts to try: every k up to `max` when that is a short list, otherwise powers of
/// two plus `cores` and `max` (so the knee of the curve is always visible).
fn thread_counts(max: usize, cores: usize) -> Vec<usize> {
    if max <= 8 {
        return (1..=max).collect();
    }
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k <= max)
        .collect();
    counts.extend([cores.min(max), max]);
    counts.sort_unstable();
    counts.dedup();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lesson_agrees_with_cpu_task_run_sequentially() {
        let seeds: Vec<u64> = (0..37).collect();
        let sequential = seeds
            .iter()
            .fold(0u64, |acc, &s| acc.wrapping_add(cpu_task(s, 500)));
        for k in [1, 2, 3] {
            assert_eq!(run_on_threads(&seeds, k, |s| cpu_task(s, 500)), sequential);
        }
    }

    #[test]
    fn thread_counts_cover_one_cores_and_max() {
        assert_eq!(thread_counts(4, 2), vec![1, 2, 3, 4]);
        assert_eq!(thread_counts(1, 8), vec![1]);
        assert_eq!(thread_counts(32, 16), vec![1, 2, 4, 8, 16, 32]);
        assert_eq!(thread_counts(24, 12), vec![1, 2, 4, 8, 12, 16, 24]);
    }
}
