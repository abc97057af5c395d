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
//! The course's Python, threads then processes on the same jobs: `python/cpu_scaling.py`.
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
//! cargo run --release -p examples-threads --bin cpu-scaling -- --python   # the GIL as a number
//! ```
//! (Use `--release`: a debug build is ~10× slower and its timings mean little.)
//!
//! # What to observe
//! - 2 threads on 2 cores: speedup close to 2.00× (efficiency ≥ 90%); the `cpu` column stays the
//!   same for every row: parallelism spends the same CPU time, only faster in wall time.
//! - From k = cores + 1 on, wall time stops improving and efficiency falls towards cores/k.
//! - Run `top -H` (or `htop`, then `H`) in another terminal: one line per thread, each near 100%.
//! - `--python`: Rust threads near 2× on 2 cores, Python threads near 1× (the GIL), Python
//!   processes near 2× again; the same checksum in every row.
//!
//! # Exercises
//! 1. Replace the atomic job counter by a static split (`jobs.chunks(jobs.len().div_ceil(k))`).
//!    Try `--jobs 7`: what happens to efficiency at k = 2, 4, and why? Then write the shared
//!    cursor yourself, checked: `cargo run -p shared --bin exercises -- check threads/02`.
//! 2. In `python/cpu_scaling.py`, give each Pool task 10 jobs instead of 1 (`chunksize=10`) and
//!    run `--python --jobs 960 --rounds 10000`: what did the pipe round trips cost?
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
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use scaling::run_on_threads;
use shared::cli;
use shared::python::Python;
use shared::report::{Row, SpeedupTable, align_columns, fmt_duration, print_json, timed};
use shared::work::cpu_task;

/// The course's version (`threading`, then `multiprocessing.Pool`), run by `--python`.
const PYTHON_RECIPE: &str = "examples-threads/python/cpu_scaling.py";
/// `--rounds` without `--python`: ~10 ms a job in release.
const DEFAULT_ROUNDS: u32 = 10_000_000;
/// `--rounds` with `--python`: CPython takes ~250 ns a round (~25 ms a job), Rust ~1 ns.
const DEFAULT_PYTHON_ROUNDS: u32 = 100_000;

/// Run the same CPU-bound jobs on 1, 2, … N threads and print the speedup and efficiency.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of jobs (the work is the same for every thread count).
    #[arg(long, default_value_t = 96, value_parser = cli::usize_in(1, 1_000_000))]
    jobs: usize,
    /// Rounds of `shared::work::cpu_task` per job (~1 ns each in release: 10 M ≈ 10 ms)
    /// [default: 10000000, or 100000 with --python: CPython takes ~250 ns a round].
    #[arg(long, value_parser = cli::u32_in(1, 1_000_000_000))]
    rounds: Option<u32>,
    /// Largest thread count tried [default: 2 × available_parallelism, to show oversubscription].
    #[arg(long, value_parser = cli::usize_in(1, 512))]
    max_threads: Option<usize>,
    /// Run each thread count this many times and keep the fastest (less noise)
    /// [default: 1, or 5 with --python: the Rust runs are then a few milliseconds].
    #[arg(long, value_parser = cli::u32_in(1, 100))]
    repeat: Option<u32>,
    /// Print the figures as one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/cpu_scaling.py) on the same jobs: `threading` on 1
    /// and `cores` threads, then `multiprocessing.Pool(cores)`; checksums must agree. Needs
    /// python3 only.
    #[arg(long)]
    python: bool,
}

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
    let (default_rounds, default_repeat) = if args.python {
        (DEFAULT_PYTHON_ROUNDS, 5)
    } else {
        (DEFAULT_ROUNDS, 1)
    };
    let rounds = args.rounds.unwrap_or(default_rounds);
    let repeat = args.repeat.unwrap_or(default_repeat);
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let max_threads = args.max_threads.unwrap_or(2 * cores);
    let counts = thread_counts(max_threads, cores);
    // The job list: one seed per job. Threads borrow it; nothing is copied or serialized.
    let seeds: Vec<u64> = (0..args.jobs as u64).collect();

    // A speedup measured on a busy machine is a measurement of the other programs too: say so.
    let load = load_average();
    if !args.json {
        println!(
            "{} jobs × {rounds} rounds of cpu_task, {cores} cores available, trying {counts:?} threads",
            args.jobs
        );
        if let Some(load) = load.filter(|&l| l > (cores as f64 / 4.0).max(0.5)) {
            println!(
                "warning: load average {load:.1} before starting: other programs are using the \
                 CPU,\n         so the speedups below will be lower than this machine can do"
            );
        }
    }

    let mut table = SpeedupTable::new(format!(
        "Same CPU-bound work on k threads ({cores} cores; best of {repeat})"
    ));
    let mut expected = None;
    let mut base_wall = Duration::ZERO;
    let mut efficiencies = Vec::new();
    let mut rust_walls = Vec::new();
    for &k in &counts {
        // Best of `repeat` runs: scheduling noise only ever makes a run slower.
        let work = |seed| cpu_task(seed, rounds);
        let best = (0..repeat)
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
        rust_walls.push((k, best.wall));
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

    let expected = expected.context("at least one thread count ran")?;
    let python_run = match &python {
        Some(py) => {
            if !args.json {
                println!(
                    "running the Python version ({}) on the same jobs…",
                    py.version
                );
            }
            // Python's runs take seconds: once each, unless --repeat asks for more.
            let python_repeat = args.repeat.unwrap_or(1);
            Some(run_python(py, args.jobs, rounds, cores, python_repeat)?)
        }
        None => None,
    };
    let gil = python_run
        .as_ref()
        .map(|p| GilTable::new(&rust_walls, p, expected));

    if args.json {
        print_json(&serde_json::json!({
            "example": "cpu-scaling",
            "cores": cores,
            "jobs": args.jobs,
            "rounds": rounds,
            "checksum": expected,
            "load_average_1m": load,
            "efficiency": efficiencies,
            "table": table.to_json(),
            "python": gil.as_ref().map(GilTable::to_json),
        }));
    } else {
        println!();
        table.print();
        println!(
            "\nNo GIL: Rust threads run CPU-bound code on every core at once, sharing memory. \
             CPython threads\nwould stay near 1.00x here; Python needs `multiprocessing` (one \
             interpreter per core, arguments\nand results pickled through pipes) to get this speedup."
        );
        if let Some(gil) = &gil {
            println!();
            print!("{}", gil.render());
        }
    }
    anyhow::ensure!(
        table.all_agree(),
        "a thread count produced a different checksum"
    );
    if gil.as_ref().is_some_and(|g| !g.all_agree()) {
        eprintln!("error: the Python version computed a different checksum");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `python/cpu_scaling.py`: `threads` or `processes`, on `workers`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct PythonRow {
    kind: String,
    workers: usize,
    wall_s: f64,
    cpu_s: f64,
    checksum: u64,
}

/// What the Python version measured.
struct PythonScaling {
    version: String,
    rows: Vec<PythonRow>,
}

/// Runs the recipe on seeds `0..jobs` with `rounds`: threads on 1 and `cores`, processes on
/// `cores`, each the fastest of `repeat` runs.
fn run_python(
    py: &Python,
    jobs: usize,
    rounds: u32,
    cores: usize,
    repeat: u32,
) -> anyhow::Result<PythonScaling> {
    let threads = if cores > 1 {
        format!("1,{cores}")
    } else {
        "1".to_string()
    };
    let (jobs, rounds) = (jobs.to_string(), rounds.to_string());
    let (cores, repeat) = (cores.to_string(), repeat.to_string());
    let args = [
        "--jobs",
        &jobs,
        "--rounds",
        &rounds,
        "--threads",
        &threads,
        "--processes",
        &cores,
        "--repeat",
        &repeat,
    ];
    let out = py.run_recipe(PYTHON_RECIPE, &args)?;
    let rows: Vec<PythonRow> = serde_json::from_value(out.json["rows"].clone())
        .with_context(|| format!("the recipe's rows: {}", out.json["rows"]))?;
    anyhow::ensure!(
        rows.iter()
            .all(|r| r.wall_s.is_finite() && r.wall_s > 0.0 && r.cpu_s.is_finite()),
        "the recipe reported a time that is not a duration: {rows:?}"
    );
    Ok(PythonScaling {
        version: py.version.clone(),
        rows,
    })
}

/// Rust threads beside Python threads and processes on the same jobs, each language's speedup
/// over its own single thread: the GIL as a number.
struct GilTable {
    version: String,
    expected: u64,
    /// (label, Rust wall, Python row)
    rows: Vec<(String, Option<Duration>, PythonRow)>,
    rust_one: Duration,
    python_one: f64,
}

impl GilTable {
    fn new(rust: &[(usize, Duration)], python: &PythonScaling, expected: u64) -> GilTable {
        let rust_of = |k: usize| rust.iter().find(|(n, _)| *n == k).map(|(_, w)| *w);
        let python_one = python
            .rows
            .iter()
            .find(|r| r.kind == "threads" && r.workers == 1)
            .map_or(f64::NAN, |r| r.wall_s);
        let rows = python
            .rows
            .iter()
            .map(|r| {
                let plural = if r.workers == 1 { "" } else { "s" };
                if r.kind == "threads" {
                    let label = format!("{} thread{plural}", r.workers);
                    (label, rust_of(r.workers), r.clone())
                } else {
                    (format!("{} {}", r.workers, r.kind), None, r.clone())
                }
            })
            .collect();
        GilTable {
            version: python.version.clone(),
            expected,
            rows,
            rust_one: rust_of(1).unwrap_or_default(),
            python_one,
        }
    }

    fn all_agree(&self) -> bool {
        self.rows
            .iter()
            .all(|(_, _, p)| p.checksum == self.expected)
    }

    fn render(&self) -> String {
        let speedup = |one: f64, wall: f64| format!("{:.2}x", one / wall);
        let mut lines = vec![vec![
            "workers".to_string(),
            "Rust wall".into(),
            "speedup".into(),
            "Python wall".into(),
            "speedup".into(),
            "same checksum".into(),
            "note".into(),
        ]];
        for (label, rust, p) in &self.rows {
            let (rw, rs) = rust.map_or(("-".into(), "-".into()), |w| {
                (
                    fmt_duration(w),
                    speedup(self.rust_one.as_secs_f64(), w.as_secs_f64()),
                )
            });
            let note = match (p.kind.as_str(), p.workers) {
                ("threads", 1) => "the baseline of each language",
                ("threads", _) => "Python: the GIL runs one thread's bytecode at a time",
                _ => "multiprocessing.Pool: one interpreter per core",
            };
            lines.push(vec![
                label.clone(),
                rw,
                rs,
                fmt_duration(Duration::from_secs_f64(p.wall_s)),
                speedup(self.python_one, p.wall_s),
                if p.checksum == self.expected {
                    "yes"
                } else {
                    "NO"
                }
                .into(),
                note.into(),
            ]);
        }
        let mut out = format!(
            "The GIL as a number: the same jobs in Rust and in {} (checksum {:#018x})\n",
            self.version, self.expected
        );
        out.push_str(&align_columns(&lines));
        if !self.rust_one.is_zero() {
            let ratio = self.python_one / self.rust_one.as_secs_f64();
            out.push_str(&format!(
                "One CPython thread takes {ratio:.0}x the time of one Rust thread on the same jobs.\n"
            ));
        }
        out
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "checksum_agrees": self.all_agree(),
            "rows": self.rows.iter().map(|(label, rust, p)| serde_json::json!({
                "workers": label,
                "rust_wall_s": rust.map(|w| w.as_secs_f64()),
                "rust_speedup": rust.map(|w| self.rust_one.as_secs_f64() / w.as_secs_f64()),
                "python": p,
                "python_speedup": self.python_one / p.wall_s,
            })).collect::<Vec<_>>(),
        })
    }
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
    fn the_gil_table_puts_each_language_against_its_own_single_thread() {
        let row = |kind: &str, workers, wall_s, checksum| PythonRow {
            kind: kind.into(),
            workers,
            wall_s,
            cpu_s: wall_s,
            checksum,
        };
        let python = PythonScaling {
            version: "Python 3.x".into(),
            rows: vec![
                row("threads", 1, 2.0, 7),
                row("threads", 2, 2.0, 7),
                row("processes", 2, 1.0, 8),
            ],
        };
        let rust = [
            (1, Duration::from_millis(10)),
            (2, Duration::from_millis(5)),
        ];
        let gil = GilTable::new(&rust, &python, 7);
        assert!(!gil.all_agree(), "the processes row computed 8, not 7");
        let text = gil.render();
        assert!(text.contains("2 threads"), "{text}");
        assert!(text.contains("2.00x"), "Rust on 2 threads: {text}");
        assert!(text.contains(" NO "), "{text}");
        assert!(text.contains("200x the time"), "{text}");
        let json = gil.to_json();
        assert_eq!(json["rows"][1]["python_speedup"], 1.0);
        assert_eq!(json["rows"][1]["rust_speedup"], 2.0);
        assert_eq!(json["rows"][2]["rust_wall_s"], serde_json::Value::Null);
    }

    #[test]
    fn thread_counts_cover_one_cores_and_max() {
        assert_eq!(thread_counts(4, 2), vec![1, 2, 3, 4]);
        assert_eq!(thread_counts(1, 8), vec![1]);
        assert_eq!(thread_counts(32, 16), vec![1, 2, 4, 8, 16, 32]);
        assert_eq!(thread_counts(24, 12), vec![1, 2, 4, 8, 12, 16, 24]);
    }
}
