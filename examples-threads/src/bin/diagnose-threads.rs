//! Find what makes threads slow together: a lock convoy (seen in a flame graph from `perf
//! record`) and false sharing (seen in throughput, and in `perf stat` cache counters where the
//! machine has them), each run with the bug (`--bug NAME`) and with its fix (`--fixed`).
//!
//! Course section **8.1 — Threading et multiprocessing** (objective: "déboguer et optimiser du
//! code concurrent": profilers, performance metrics; the course's "contention sur les verrous").
//!
//! Crates: `crossbeam-utils = "0.8"` (`CachePadded`; the harness adds inferno for the SVG)
//!
//! # Concepts
//! - **Lock convoy**: every thread needs one `Mutex` and holds it while it works. The threads
//!   run one at a time, and each hand-over costs a futex sleep and wake-up. `perf record` shows
//!   it: the work sits *under* the function that holds the lock, next to
//!   `Mutex::lock_contended` and the kernel's futex frames. Fix: shorten the critical section
//!   (work outside, only the update inside), then shard the lock if it is still contended.
//! - Counting contended acquisitions (`try_lock` failed, then `lock`) is the cheapest lock
//!   profiler there is; it is how mutrace and parking_lot's lock statistics work.
//! - **False sharing**: two threads write *different* variables that share a 64-byte cache
//!   line; the line ping-pongs between the cores' caches, and each write waits for it.
//!   `CachePadded` gives each value a line of its own. Nothing in the source looks shared.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin diagnose-threads            # every bug, then fix
//! cargo run --release -p examples-threads --bin diagnose-threads -- --bug convoy [--fixed] --json
//! cargo run --release -p examples-threads --features flamegraph --bin diagnose-threads -- \
//!   --bug convoy --flamegraph convoy.svg            # perf record + inferno (root, or paranoid ≤ 1)
//! cargo run --release -p examples-threads --bin diagnose-threads -- --bug false-sharing --perf-stat
//! ```
//!
//! # What to observe
//! - Convoy: most acquisitions are contended with the bug, almost none once the work leaves the
//!   lock; throughput roughly doubles on 2 cores (the bug ran the threads one at a time).
//! - The bug's flame graph: `render` under `GlobalStats::record_holding_lock`, plus
//!   `lock_contended` → `syscall` → the kernel's futex frames; the fix's: `render` alone.
//! - False sharing: the padded counters count several times faster, same totals. `perf stat`
//!   shows the cache misses where the hardware counters are reachable (not in most VMs).
//!
//! # Exercises
//! 1. Run the convoy with `--threads 1`: is there still a convoy? Which figure tells you?
//! 2. Shard with 2 shards, then 64: when does sharding stop helping, and why?
//! 3. Replace `CachePadded` by `#[repr(align(64))]` on a wrapper: same speed? Read why
//!    crossbeam pads to 128 bytes on x86_64 (the adjacent-line prefetcher).
//! 4. Make each thread count into a local variable and add it to the shared counter once at the
//!    end: the fix that needs no padding at all. Measure it.

// === Lesson: copy from here ===

/// A lock convoy: page statistics behind one `Mutex`, the work done while holding it.
mod convoy {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
    use std::thread;
    use std::time::{Duration, Instant};

    /// How many requests each page gets, and what their rendering produced.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PageStats {
        pub hits: u64,
        pub bytes: u64,
        pub digest: u64,
    }

    /// The page a request is for, and the CPU work of rendering it (`rounds` mixing steps).
    #[inline(never)] // its own frame in the flame graph
    pub fn render(request: u64, rounds: u32) -> (u64, u64, u64) {
        let mut x = request.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..rounds {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        (request % 64, 1_000 + x % 9_000, x)
    }

    /// How often, and how long, threads found the lock taken.
    #[derive(Debug, Default)]
    pub struct Contention {
        pub contended: AtomicU64,
        pub waited_ns: AtomicU64,
    }

    /// Locks `m`, counting the acquisitions that had to wait and how long they waited. Only the
    /// slow path reads the clock: an uncontended lock costs one failed-or-not `try_lock`.
    fn lock_counted<'a, T>(m: &'a Mutex<T>, contention: &Contention) -> MutexGuard<'a, T> {
        match m.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => {
                let start = Instant::now();
                let guard = m.lock().unwrap_or_else(PoisonError::into_inner);
                let waited = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                contention.contended.fetch_add(1, Ordering::Relaxed);
                contention.waited_ns.fetch_add(waited, Ordering::Relaxed);
                guard
            }
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        }
    }

    fn add(stats: &mut HashMap<u64, PageStats>, (page, bytes, digest): (u64, u64, u64)) {
        let s = stats.entry(page).or_default();
        s.hits += 1;
        s.bytes += bytes;
        s.digest ^= digest;
    }

    /// Where the statistics live, and how a request is recorded.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Design {
        /// The bug: one lock, rendering done while holding it.
        WorkUnderLock,
        /// Fix 1: render first, lock only for the update.
        ShortCriticalSection,
        /// Fix 2: and one lock per shard of pages, so updates to different pages never meet.
        Sharded,
    }

    pub struct GlobalStats {
        shards: Vec<Mutex<HashMap<u64, PageStats>>>,
        design: Design,
        contention: Contention,
        acquisitions: AtomicU64,
    }

    impl GlobalStats {
        pub fn new(design: Design, shards: usize) -> Self {
            let n = if design == Design::Sharded {
                shards.max(1)
            } else {
                1
            };
            GlobalStats {
                shards: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
                design,
                contention: Contention::default(),
                acquisitions: AtomicU64::new(0),
            }
        }

        pub fn record(&self, request: u64, rounds: u32) {
            self.acquisitions.fetch_add(1, Ordering::Relaxed);
            match self.design {
                Design::WorkUnderLock => self.record_holding_lock(request, rounds),
                Design::ShortCriticalSection | Design::Sharded => {
                    let rendered = render(request, rounds);
                    let shard = &self.shards[rendered.0 as usize % self.shards.len()];
                    add(&mut lock_counted(shard, &self.contention), rendered);
                }
            }
        }

        #[inline(never)] // the frame the flame graph points at
        fn record_holding_lock(&self, request: u64, rounds: u32) {
            let mut stats = lock_counted(&self.shards[0], &self.contention);
            let rendered = render(request, rounds); // CPU work while every other thread waits
            add(&mut stats, rendered);
        }

        /// Every page's statistics, merged over the shards.
        pub fn snapshot(&self) -> HashMap<u64, PageStats> {
            let mut all = HashMap::new();
            for shard in &self.shards {
                all.extend(shard.lock().unwrap_or_else(PoisonError::into_inner).iter());
            }
            all
        }
    }

    /// What one run of the load measured.
    #[derive(Clone, Debug)]
    pub struct ConvoyReport {
        pub elapsed: Duration,
        pub requests: u64,
        /// Acquisitions that found the lock taken, and the time all threads spent waiting.
        pub contended: u64,
        pub waited: Duration,
        pub stats: HashMap<u64, PageStats>,
    }

    /// `threads` threads each record `per_thread` requests of `rounds` rendering steps.
    pub fn run_convoy(
        design: Design,
        threads: usize,
        per_thread: u64,
        rounds: u32,
    ) -> ConvoyReport {
        let stats = GlobalStats::new(design, 16);
        let start = Instant::now();
        thread::scope(|s| {
            for t in 0..threads as u64 {
                let stats = &stats;
                s.spawn(move || {
                    for i in 0..per_thread {
                        stats.record(t * per_thread + i, rounds);
                    }
                });
            }
        });
        ConvoyReport {
            elapsed: start.elapsed(),
            requests: stats.acquisitions.load(Ordering::Relaxed),
            contended: stats.contention.contended.load(Ordering::Relaxed),
            waited: Duration::from_nanos(stats.contention.waited_ns.load(Ordering::Relaxed)),
            stats: stats.snapshot(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_design_computes_the_same_statistics() {
            let bug = run_convoy(Design::WorkUnderLock, 3, 200, 50);
            for design in [Design::ShortCriticalSection, Design::Sharded] {
                let fixed = run_convoy(design, 3, 200, 50);
                assert_eq!(fixed.stats, bug.stats, "{design:?}");
                assert_eq!(fixed.requests, 600);
            }
            assert_eq!(bug.stats.values().map(|s| s.hits).sum::<u64>(), 600);
        }
    }
}

/// False sharing: per-thread counters in one cache line, and padded apart.
mod false_sharing {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use crossbeam_utils::CachePadded;

    /// The most threads the counters have slots for.
    pub const SLOTS: usize = 8;

    /// The bug: eight 8-byte counters, one 64-byte cache line (aligned so it is exactly one).
    #[repr(C, align(64))]
    #[derive(Default)]
    pub struct PackedCounters([AtomicU64; SLOTS]);

    /// The fix: each counter on its own cache line (128 bytes on x86_64 and aarch64).
    #[derive(Default)]
    pub struct PaddedCounters([CachePadded<AtomicU64>; SLOTS]);

    /// Per-thread counter slots.
    pub trait Slots: Sync {
        fn slot(&self, i: usize) -> &AtomicU64;
    }
    impl Slots for PackedCounters {
        fn slot(&self, i: usize) -> &AtomicU64 {
            &self.0[i]
        }
    }
    impl Slots for PaddedCounters {
        fn slot(&self, i: usize) -> &AtomicU64 {
            &self.0[i]
        }
    }

    /// `threads` threads (at most [`SLOTS`]) each count `per_thread` events in their own slot.
    /// Returns the time taken and the total counted.
    pub fn count_events(counters: &impl Slots, threads: usize, per_thread: u64) -> (Duration, u64) {
        let threads = threads.clamp(1, SLOTS);
        let start = Instant::now();
        thread::scope(|s| {
            for t in 0..threads {
                let slot = counters.slot(t);
                s.spawn(move || {
                    for _ in 0..per_thread {
                        // No other thread touches this counter: Relaxed is enough, and the
                        // atomic is there only because the slots are shared memory.
                        slot.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        let total = (0..threads)
            .map(|t| counters.slot(t).load(Ordering::Relaxed))
            .sum();
        (start.elapsed(), total)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn line(a: &AtomicU64) -> usize {
            a as *const AtomicU64 as usize / 64
        }

        #[test]
        fn packed_slots_share_one_line_and_padded_ones_do_not() {
            let packed = PackedCounters::default();
            assert!((0..SLOTS).all(|i| line(packed.slot(i)) == line(packed.slot(0))));
            let padded = PaddedCounters::default();
            for i in 1..SLOTS {
                assert_ne!(line(padded.slot(i)), line(padded.slot(i - 1)));
            }
        }

        #[test]
        fn both_layouts_count_everything() {
            assert_eq!(count_events(&PackedCounters::default(), 4, 1_000).1, 4_000);
            assert_eq!(count_events(&PaddedCounters::default(), 4, 1_000).1, 4_000);
        }
    }
}

// === Harness: not part of the lesson ===

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use convoy::{ConvoyReport, Design, run_convoy};
use false_sharing::{PackedCounters, PaddedCounters, count_events};
use shared::cli;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Bug {
    /// Every thread renders pages while holding one `Mutex` (fix: work outside, shard the lock).
    Convoy,
    /// Per-thread counters in one cache line (fix: `CachePadded`).
    FalseSharing,
}

/// Plant a lock convoy or false sharing, then find it with perf and measure the fix.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Run only this pathology's buggy version (with `--fixed`: only its repaired version).
    /// Without `--bug` nor `--fixed`, every pathology runs both ways, with a before/after table.
    #[arg(long, value_enum)]
    bug: Option<Bug>,
    /// Run the repaired version.
    #[arg(long)]
    fixed: bool,
    /// Threads (default: the number of cores; the false-sharing counters have 8 slots).
    #[arg(long, value_parser = cli::usize_in(1, 8))]
    threads: Option<usize>,
    /// Convoy: requests per thread.
    #[arg(long, default_value_t = 20_000, value_parser = cli::u64_in(1, 100_000_000))]
    requests: u64,
    /// Convoy: rendering work per request (mixing rounds, ~1 ns each).
    #[arg(long, default_value_t = 2_000, value_parser = cli::u32_in(1, 10_000_000))]
    rounds: u32,
    /// False sharing: increments per thread.
    #[arg(long, default_value_t = 20_000_000, value_parser = cli::u64_in(1, 10_000_000_000))]
    increments: u64,
    /// Record the run with `perf record` and write a flame graph (SVG) here (feature `flamegraph`).
    #[arg(long)]
    flamegraph: Option<PathBuf>,
    /// Also run each version under `perf stat` (cache and scheduler counters) and print them.
    #[arg(long)]
    perf_stat: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One measured run: which bug, which version, its throughput and what else it measured.
struct Run {
    bug: Bug,
    version: &'static str,
    elapsed: Duration,
    operations: u64,
    contended: Option<u64>,
    /// Share of the threads' time spent waiting for the lock.
    waiting: Option<f64>,
    checksum: u64,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)));
    if let Some(svg) = &args.flamegraph {
        return flamegraph::record(svg, &args);
    }
    let bugs = match args.bug {
        Some(b) => vec![b],
        None => vec![Bug::Convoy, Bug::FalseSharing],
    };
    let mut runs = Vec::new();
    for bug in bugs {
        let versions: &[&str] = match (bug, args.bug.is_some(), args.fixed) {
            (_, _, true) => &["fixed"],
            (_, true, false) => &["bug"],
            (Bug::Convoy, false, false) => &["bug", "short lock", "fixed"],
            (Bug::FalseSharing, false, false) => &["bug", "fixed"],
        };
        for &version in versions {
            if !args.json {
                eprintln!("{bug:?} / {version}: {threads} threads ...");
            }
            runs.push(run_one(bug, version, threads, &args));
        }
    }
    for pair in runs.windows(2) {
        if pair[0].bug == pair[1].bug && pair[0].checksum != pair[1].checksum {
            anyhow::bail!(
                "{:?}: the bug and the fix computed different results",
                pair[0].bug
            );
        }
    }
    if args.json {
        let json: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "bug": format!("{:?}", r.bug), "version": r.version, "threads": threads,
                    "elapsed_ms": r.elapsed.as_secs_f64() * 1e3, "operations": r.operations,
                    "per_second": r.per_second(), "contended": r.contended,
                    "contended_ratio": r.contended.map(|c| c as f64 / r.operations.max(1) as f64),
                    "waiting_ratio": r.waiting,
                    "checksum": r.checksum,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "runs": json }));
    } else {
        print_table(&runs);
    }
    if args.perf_stat {
        perf_stat(&args, threads)?;
    }
    Ok(())
}

fn run_one(bug: Bug, version: &'static str, threads: usize, args: &Args) -> Run {
    match bug {
        Bug::Convoy => {
            let design = match version {
                "bug" => Design::WorkUnderLock,
                "short lock" => Design::ShortCriticalSection,
                _ => Design::Sharded,
            };
            let r: ConvoyReport = run_convoy(design, threads, args.requests, args.rounds);
            let checksum = r
                .stats
                .values()
                .fold(0, |acc, s| acc ^ s.digest ^ s.bytes ^ s.hits);
            Run {
                bug,
                version,
                elapsed: r.elapsed,
                operations: r.requests,
                contended: Some(r.contended),
                waiting: Some(
                    r.waited.as_secs_f64() / (r.elapsed.as_secs_f64() * threads as f64).max(1e-9),
                ),
                checksum,
            }
        }
        Bug::FalseSharing => {
            let (elapsed, total) = if version == "bug" {
                count_events(&PackedCounters::default(), threads, args.increments)
            } else {
                count_events(&PaddedCounters::default(), threads, args.increments)
            };
            Run {
                bug,
                version,
                elapsed,
                operations: total,
                contended: None,
                waiting: None,
                checksum: total,
            }
        }
    }
}

fn print_table(runs: &[Run]) {
    println!(
        "\n{:<14} {:<11} {:>10} {:>14} {:>10} {:>9} {:>9}",
        "pathology", "version", "wall", "ops/s", "waits", "waiting", "speed-up"
    );
    let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.0} %", v * 100.0));
    for r in runs {
        let base = runs
            .iter()
            .find(|b| b.bug == r.bug && b.version == "bug")
            .map_or(1.0, |b| r.per_second() / b.per_second());
        println!(
            "{:<14} {:<11} {:>10} {:>14.0} {:>10} {:>9} {:>8.2}x",
            format!("{:?}", r.bug),
            r.version,
            shared::report::fmt_duration(r.elapsed),
            r.per_second(),
            r.contended.map_or("-".to_string(), |c| c.to_string()),
            percent(r.waiting),
            base
        );
    }
    println!(
        "waits: lock acquisitions that found the lock taken; waiting: share of the threads' \
         time spent in those waits"
    );
}

/// `perf stat -x,` on a re-run of this program, one line per counter; `None` when perf is absent.
fn perf_counters(args: &[String]) -> Option<Vec<(String, String)>> {
    let exe = std::env::current_exe().ok()?;
    let events =
        "task-clock,context-switches,cpu-migrations,cache-references,cache-misses,instructions";
    let out = Command::new("perf")
        .args(["stat", "-x", ",", "-e", events, "--"])
        .arg(exe)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "perf stat failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    // CSV lines: value,unit,event,… (value is `<not supported>` when the PMU is not reachable).
    let counters = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 3).then(|| (f[2].to_string(), f[0].to_string()))
        })
        .collect();
    Some(counters)
}

fn perf_stat(args: &Args, threads: usize) -> anyhow::Result<()> {
    let bugs = args
        .bug
        .map_or(vec![Bug::Convoy, Bug::FalseSharing], |b| vec![b]);
    println!("\nlens: perf stat (each version re-run on its own)");
    for bug in bugs {
        for fixed in [false, true] {
            let name = bug
                .to_possible_value()
                .expect("no skipped variant")
                .get_name()
                .to_string();
            let mut child = vec![
                "--bug".to_string(),
                name.clone(),
                "--threads".into(),
                threads.to_string(),
                "--json".into(),
            ];
            child.extend([
                "--requests".into(),
                args.requests.to_string(),
                "--rounds".into(),
                args.rounds.to_string(),
            ]);
            child.extend(["--increments".into(), args.increments.to_string()]);
            if fixed {
                child.push("--fixed".into());
            }
            let Some(counters) = perf_counters(&child) else {
                println!(
                    "perf stat: not available here (install linux-perf; root or kernel.perf_event_paranoid ≤ 1)"
                );
                return Ok(());
            };
            let line: Vec<String> = counters.iter().map(|(e, v)| format!("{e} {v}")).collect();
            println!(
                "{name} {}: {}",
                if fixed { "fixed" } else { "bug" },
                line.join(", ")
            );
        }
    }
    println!(
        "(`<not supported>`: this machine does not expose hardware counters, as in most VMs; \
         `perf stat -e instructions true` tells. The throughput above is the measure then.)"
    );
    Ok(())
}

/// The flame-graph lens: `perf record` a re-run of this program, then inferno turns perf's
/// stacks into two SVGs (where the CPU time goes; where threads go to sleep) and the telling
/// frames are printed.
mod flamegraph {
    use super::*;

    /// Frames whose share of the samples tells the story.
    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    const MARKS: [&str; 4] = ["record_holding_lock", "lock_contended", "futex", "render"];

    /// The arguments of the run to record: the same pathology and version, without the lens.
    fn child_args(args: &Args) -> Vec<String> {
        let bug = args.bug.unwrap_or(Bug::Convoy);
        let mut out = vec![
            "--bug".to_string(),
            bug.to_possible_value()
                .expect("no skipped variant")
                .get_name()
                .to_string(),
            "--requests".into(),
            args.requests.to_string(),
            "--rounds".into(),
            args.rounds.to_string(),
            "--increments".into(),
            args.increments.to_string(),
            "--json".into(),
        ];
        if let Some(t) = args.threads {
            out.extend(["--threads".into(), t.to_string()]);
        }
        if args.fixed {
            out.push("--fixed".into());
        }
        out
    }

    /// Runs `perf record` on a child run, and returns `perf script`'s text.
    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    fn perf_script(args: &Args, dir: &Path) -> anyhow::Result<String> {
        use anyhow::Context;
        let data = dir.join("perf.data");
        let exe = std::env::current_exe()?;
        // Two events: cpu-clock samples the running threads 997 times a second (a software
        // event: it works in VMs without hardware counters); sched_switch records every time a
        // thread leaves the CPU, with the stack it left from: where threads wait. DWARF call
        // graphs, because Rust builds omit frame pointers and `-g` alone gives broken stacks.
        let record = Command::new("perf")
            .args([
                "record",
                "-q",
                "-e",
                "cpu-clock/freq=997/",
                "-e",
                "sched:sched_switch",
                "--call-graph",
                "dwarf,16384",
                "-o",
            ])
            .arg(&data)
            .arg("--")
            .arg(&exe)
            .args(child_args(args))
            .stdout(std::process::Stdio::null())
            .output()
            .context("cannot run perf (apt-get install linux-perf)")?;
        anyhow::ensure!(
            record.status.success(),
            "perf record failed (needs root, or kernel.perf_event_paranoid ≤ 1 and access to \
             the sched tracepoints): {}",
            String::from_utf8_lossy(&record.stderr).trim()
        );
        let script = Command::new("perf")
            // Inlined frames would need addr2line on every address: minutes instead of a
            // second, for frames the `#[inline(never)]` functions already name.
            .args(["script", "--no-inline", "-i"])
            .arg(&data)
            .output()
            .context("perf script")?;
        anyhow::ensure!(script.status.success(), "perf script failed");
        Ok(String::from_utf8_lossy(&script.stdout).into_owned())
    }

    /// Folds perf's stacks of one event into `a;b;c weight` lines (inferno's perf collapser).
    #[cfg(feature = "flamegraph")]
    fn collapse(script: &str, event: &str) -> anyhow::Result<String> {
        use inferno::collapse::Collapse;
        let mut options = inferno::collapse::perf::Options::default();
        options.event_filter = Some(event.to_string());
        let mut folded = Vec::new();
        inferno::collapse::perf::Folder::from(options).collapse(script.as_bytes(), &mut folded)?;
        Ok(String::from_utf8(folded)?)
    }

    /// `convoy.svg` → `convoy.off-cpu.svg`.
    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    fn off_cpu_path(svg: &Path) -> PathBuf {
        let stem = svg
            .file_stem()
            .map_or("flamegraph".into(), |s| s.to_string_lossy());
        svg.with_file_name(format!("{stem}.off-cpu.svg"))
    }

    #[cfg(feature = "flamegraph")]
    pub fn record(svg: &Path, args: &Args) -> anyhow::Result<()> {
        use anyhow::Context;
        let dir = tempfile::tempdir()?;
        let script = perf_script(args, dir.path())?;
        let title = format!("diagnose-threads {}", child_args(args).join(" "));
        // Event names as inferno reads them from `perf script`: the modifier stays, and a
        // tracepoint's name is cut at its first colon (`sched:sched_switch` → `sched`).
        let views = [
            (
                "on_cpu",
                "cpu-clock/freq=997/",
                svg.to_path_buf(),
                "where the CPU time goes",
            ),
            (
                "off_cpu",
                "sched",
                off_cpu_path(svg),
                "where threads leave the CPU",
            ),
        ];
        let mut json = serde_json::Map::new();
        for (key, event, path, what) in views {
            let folded = collapse(&script, event)?;
            let mut options = inferno::flamegraph::Options::default();
            options.title = format!("{title}: {what} ({event})");
            let file = std::fs::File::create(&path)
                .with_context(|| format!("create {}", path.display()))?;
            let out = std::io::BufWriter::new(file);
            inferno::flamegraph::from_lines(&mut options, folded.lines(), out)?;
            let shares = stack_shares(&folded);
            if !args.json {
                println!("\nlens: perf record → inferno, {what} ({})", path.display());
                print_shares(&shares);
            }
            json.insert(key.into(), shares.to_json(&path));
        }
        if args.json {
            println!("{}", serde_json::Value::Object(json));
        }
        Ok(())
    }

    #[cfg(not(feature = "flamegraph"))]
    pub fn record(_svg: &Path, _args: &Args) -> anyhow::Result<()> {
        eprintln!(
            "--flamegraph needs the `flamegraph` feature: cargo run --release -p examples-threads \
             --features flamegraph --bin diagnose-threads -- --bug convoy --flamegraph convoy.svg"
        );
        std::process::exit(2);
    }

    /// What one flame graph says: the share of the weight whose stack holds each telling frame,
    /// and the heaviest leaf frames.
    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    struct Shares {
        total: u64,
        marked: [u64; MARKS.len()],
        leaves: Vec<(String, u64)>,
    }

    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    impl Shares {
        fn percent(&self, n: u64) -> f64 {
            n as f64 * 100.0 / self.total.max(1) as f64
        }

        fn to_json(&self, path: &Path) -> serde_json::Value {
            let frames: serde_json::Map<_, _> = MARKS
                .iter()
                .zip(self.marked)
                .map(|(m, n)| (m.to_string(), serde_json::json!(self.percent(n))))
                .collect();
            serde_json::json!({
                "svg": path.display().to_string(), "weight": self.total,
                "stack_share_percent": frames,
            })
        }
    }

    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    fn stack_shares(folded: &str) -> Shares {
        let mut total = 0u64;
        let mut marked = [0u64; MARKS.len()];
        let mut leaves: std::collections::HashMap<&str, u64> = Default::default();
        for line in folded.lines() {
            let Some((stack, weight)) = line.rsplit_once(' ') else {
                continue;
            };
            let weight: u64 = weight.parse().unwrap_or(0);
            total += weight;
            *leaves
                .entry(stack.rsplit(';').next().unwrap_or(stack))
                .or_default() += weight;
            for (i, m) in MARKS.iter().enumerate() {
                if stack.contains(m) {
                    marked[i] += weight;
                }
            }
        }
        let mut leaves: Vec<(String, u64)> = leaves
            .into_iter()
            .map(|(f, n)| (f.to_string(), n))
            .collect();
        leaves.sort_by_key(|l| std::cmp::Reverse(l.1));
        leaves.truncate(5);
        Shares {
            total,
            marked,
            leaves,
        }
    }

    #[cfg_attr(not(feature = "flamegraph"), allow(dead_code))]
    fn print_shares(shares: &Shares) {
        println!("share of the samples whose stack holds:");
        for (m, n) in MARKS.iter().zip(shares.marked) {
            println!("  {:>5.1} %  {m}", shares.percent(n));
        }
        println!("heaviest leaf frames:");
        for (frame, n) in &shares.leaves {
            println!("  {:>5.1} %  {frame}", shares.percent(*n));
        }
    }
}
