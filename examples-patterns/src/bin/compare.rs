//! The course's comparison table ("Tableau de comparaison"), measured in Rust instead of asserted.
//!
//! Course section: Module 8 overview and **8.4** (threading vs multiprocessing vs asyncio). Two
//! workloads, six ways each, and every way must compute the same result:
//! sequential (a `for` loop), OS threads (`ThreadPoolExecutor`), worker processes
//! (`multiprocessing.Pool`), async on one thread (`asyncio`), async on all cores, and rayon.
//! - **I/O-bound**: `N` HTTP GETs to a local server (a child process, so its CPU does not count)
//!   that answers each after `L` ms, at most `C` in flight. Ideal time: `ceil(N / C) · L`.
//! - **CPU-bound**: `T` equal CPU tasks. Ideal time: the sequential time divided by the cores.
//!
//! Crates: `rayon = "1.12"`, `tokio = { version = "1.54", features = ["rt", "rt-multi-thread"] }`,
//! `futures = "0.3"`
//!
//! # Concepts
//! - Concurrency (many things in progress) versus parallelism (many things executing): async
//!   gives the first, threads and processes give both, rayon gives parallelism for data.
//! - There is no GIL: Rust threads run Rust code on every core at once, so the row that Python
//!   needs `multiprocessing` for is served by plain threads.
//! - An async runtime is not a CPU accelerator: CPU work on a current-thread runtime is
//!   sequential, and on a multi-thread runtime it blocks the workers that should serve I/O.
//! - Processes pay for isolation: start-up, a copy of the program's memory, pipes for results.
//! - A pool sized for CPU (rayon: one thread per core) is the wrong tool for waiting on I/O.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-patterns --bin compare
//! cargo run --release -p examples-patterns --bin compare -- --requests 500 --latency-ms 20 --concurrency 100
//! cargo run --release -p examples-patterns --bin compare -- --tasks 16 --rounds 100000000   # bigger CPU tasks
//! cargo run --release -p examples-patterns --bin compare -- --only cpu --json
//! cargo run --release -p examples-patterns --bin compare -- --python   # + the course's Python
//! ```
//! Use `--release`: a debug build is ~10× slower on the CPU workload. `--python` runs
//! `python/compare.py` (threading, multiprocessing, asyncio + aiohttp) on the same server and tasks.
//!
//! # What to observe
//! - I/O: threads, processes and both async runtimes come close to the ideal `ceil(N/C)·L`;
//!   rayon (one thread per core) is about `C/cores` times slower; sequential is `N·L`.
//! - I/O CPU column: async spends the least CPU per request; processes the most (each worker
//!   starts a program and opens its own connections).
//! - CPU: threads, processes, the multi-thread runtime and rayon reach ~cores× (the GIL would pin
//!   Python threads to 1×); async on one thread stays at 1×. With `--python` the GIL is a
//!   number: Python's threads stay near 1× where Rust's reach ~cores×.
//! - Peak memory: one process per worker costs megabytes each; a thread costs its stack (touched
//!   pages only); an async task a few hundred bytes.
//!
//! # Exercises
//! 1. Set `--concurrency 1000 --requests 2000 --latency-ms 100`: which approaches still reach the
//!    ideal, and what happens to the memory column of threads and processes?
//! 2. In `on_tasks`, replace `spawn` with `spawn_blocking`: does the time change? Why is
//!    `spawn_blocking` still the right call in a server that also does I/O?
//! 3. Make the CPU tasks unequal (`rounds * (1 + i % 4)`). Which approach suffers from its static
//!    split of work (look at `processes`), and which balances itself (rayon, `on_threads`)?
//! 4. Add a row "threads, one per task" to the CPU table with `T = 1000`: what does
//!    oversubscription cost?

// === Lesson: copy from here ===

/// The same `n` items, six ways. `work(i)` does item `i` and returns a number; results are
/// combined with `wrapping_add`, which does not depend on the order items finish in, so every
/// way must give the same total.
mod six_ways {
    use futures::StreamExt;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    /// A plain loop: the reference.
    pub fn sequential<E>(n: usize, work: impl Fn(usize) -> Result<u64, E>) -> Result<u64, E> {
        (0..n).try_fold(0u64, |acc, i| Ok(acc.wrapping_add(work(i)?)))
    }

    /// `threads` OS threads take the next index from a shared counter until none is left: the
    /// simplest load balancing there is (`ThreadPoolExecutor` does the same with a queue). The
    /// same function serves the I/O workload (a thread blocks while it waits) and the CPU one.
    pub fn on_threads<E: Send>(
        n: usize,
        threads: usize,
        work: &(dyn Fn(usize) -> Result<u64, E> + Sync),
    ) -> Result<u64, E> {
        let next = AtomicUsize::new(0);
        let one_thread = || -> Result<u64, E> {
            let mut acc = 0u64;
            loop {
                // Relaxed is enough: the counter only hands out distinct indices; no other
                // memory is published through it.
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok(acc);
                }
                acc = acc.wrapping_add(work(i)?);
            }
        };
        thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(one_thread)).collect();
            handles.into_iter().try_fold(0u64, |acc, h| {
                // A panic in `work` is a bug: let it continue in this thread.
                let part = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                Ok(acc.wrapping_add(part))
            })
        })
    }

    /// rayon: work stealing over the current pool (wrap the call in `pool.install(|| ...)` to
    /// choose the pool and so its size).
    pub fn on_rayon<E: Send>(
        n: usize,
        work: impl Fn(usize) -> Result<u64, E> + Sync + Send,
    ) -> Result<u64, E> {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .map(work)
            .try_reduce(|| 0, |a, b| Ok(a.wrapping_add(b)))
    }

    /// At most `c` futures in flight: `buffer_unordered` polls up to `c` at once and yields them
    /// as they finish. The same code runs on both runtimes; only the runtime differs.
    pub async fn on_async<E, F, Fut>(n: usize, c: usize, work: F) -> Result<u64, E>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<u64, E>>,
    {
        let mut results = futures::stream::iter(0..n).map(work).buffer_unordered(c);
        let mut acc = 0u64;
        while let Some(r) = results.next().await {
            acc = acc.wrapping_add(r?);
        }
        Ok(acc)
    }

    /// One task per item on whatever runtime we are in. CPU work in a task never yields: on one
    /// thread the tasks simply run one after another.
    pub async fn on_tasks<F>(n: usize, work: F) -> Result<u64, tokio::task::JoinError>
    where
        F: Fn(usize) -> u64 + Clone + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let work = work.clone();
            set.spawn(async move { work(i) });
        }
        let mut acc = 0u64;
        while let Some(r) = set.join_next().await {
            acc = acc.wrapping_add(r?);
        }
        Ok(acc)
    }

    /// `None`: one thread, the asyncio model. `Some(n)`: `n` worker threads.
    pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match workers {
            None => tokio::runtime::Builder::new_current_thread(),
            Some(n) => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(n.max(1));
                b
            }
        };
        builder.enable_all().build()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::convert::Infallible;

        fn work(i: usize) -> u64 {
            (i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(17)
        }

        #[test]
        fn every_way_gives_the_sequential_total() {
            let ok = |i| Ok::<u64, Infallible>(work(i));
            for n in [0, 1, 7, 100] {
                let expected = sequential(n, ok).unwrap();
                for threads in [1, 3, 16] {
                    assert_eq!(on_threads(n, threads, &ok).unwrap(), expected, "n {n}");
                }
                assert_eq!(on_rayon(n, ok).unwrap(), expected);
                for workers in [None, Some(2)] {
                    let rt = runtime(workers).unwrap();
                    let io = rt
                        .block_on(on_async(n, 4, |i| async move { ok(i) }))
                        .unwrap();
                    assert_eq!(io, expected);
                    assert_eq!(rt.block_on(on_tasks(n, work)).unwrap(), expected);
                }
            }
        }

        #[test]
        fn an_error_in_one_item_is_the_result() {
            let fail_at_5 = |i| if i == 5 { Err(i) } else { Ok(1) };
            assert_eq!(sequential(10, fail_at_5), Err(5));
            assert_eq!(on_threads(10, 3, &fail_at_5), Err(5));
            assert_eq!(on_rayon(10, fail_at_5), Err(5));
            let rt = runtime(None).unwrap();
            assert_eq!(
                rt.block_on(on_async(10, 3, |i| async move { fail_at_5(i) })),
                Err(5)
            );
        }
    }
}

/// The `multiprocessing.Pool` row: this program re-executed as worker processes, each given a
/// static share of the items on its command line, each printing its result on stdout.
/// (`examples-processes/process-pool` builds the real pool: a task queue over pipes, crashed
/// workers replaced.)
mod worker_processes {
    use std::io::{self, BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    /// Starts `count` workers (`command_for(w)` builds worker `w`'s command: typically items
    /// `w, w + count, …`), then reads the one line each prints and waits for it to exit.
    pub fn run_workers(
        count: usize,
        command_for: impl Fn(usize) -> Command,
    ) -> io::Result<Vec<String>> {
        let children = (0..count)
            .map(|w| {
                let mut cmd = command_for(w);
                cmd.stdin(Stdio::null()).stdout(Stdio::piped());
                // `Reaper`: if a later spawn or read fails, every child is killed and waited
                // for when `children` is dropped: an error never leaves orphans behind.
                cmd.spawn().map(Reaper)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut lines = Vec::with_capacity(count);
        for mut child in children {
            let out = child.0.stdout.take().expect("stdout was piped");
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line)?;
            let status = child.0.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!("a worker failed: {status}")));
            }
            lines.push(line);
        }
        Ok(lines)
    }

    /// Kills and reaps a child process when dropped (nothing to do if it was waited for).
    pub struct Reaper(pub Child);

    impl Drop for Reaper {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn each_worker_prints_one_line() {
            let lines = run_workers(3, |w| {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("echo worker {w}")]);
                c
            })
            .unwrap();
            assert_eq!(lines, ["worker 0\n", "worker 1\n", "worker 2\n"]);
            let failed = run_workers(2, |_| Command::new("false"));
            assert!(failed.is_err());
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use shared::cli;
use shared::python::Python;
use shared::report::{self, Row, SpeedupTable, Timed};
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use worker_processes::Reaper;

/// Threading vs processes vs async vs rayon on I/O-bound and CPU-bound work, measured.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// I/O workload: number of HTTP requests (N).
    #[arg(long, default_value_t = 100, value_parser = cli::usize_in(1, 1_000_000))]
    requests: usize,
    /// I/O workload: server latency per request in milliseconds (L).
    #[arg(long, default_value_t = 50, value_parser = cli::u64_in(0, 60_000))]
    latency_ms: u64,
    /// I/O workload: requests in flight at once (C) for threads, processes and async.
    #[arg(long, default_value_t = 50, value_parser = cli::usize_in(1, 1000))]
    concurrency: usize,
    /// I/O workload: body size of each response in bytes.
    #[arg(long, default_value_t = 16 * 1024, value_parser = cli::usize_in(0, 4 << 20))]
    size: usize,
    /// CPU workload: number of equal tasks (T).
    #[arg(long, default_value_t = 64, value_parser = cli::usize_in(1, 1_000_000))]
    tasks: usize,
    /// CPU workload: rounds of `shared::work::cpu_task` per task (task size).
    #[arg(long, default_value_t = 25_000_000, value_parser = cli::u32_in(1, 1_000_000_000))]
    rounds: u32,
    /// Worker threads/processes for the CPU workload (default: one per core).
    #[arg(long, value_parser = cli::usize_in(1, 256))]
    cores: Option<usize>,
    /// Run only one of the workloads.
    #[arg(long, value_enum)]
    only: Option<Workload>,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/compare.py: threading, multiprocessing, asyncio +
    /// aiohttp) on the same server and the same CPU tasks, in the same tables. Needs python3,
    /// and aiohttp for the I/O workload.
    #[arg(long)]
    python: bool,
    /// With --python: Python runs each CPU task with `rounds / python-scale` rounds (pure
    /// Python is a few hundred times slower per round); compare the speedups.
    #[arg(long, default_value_t = 500, value_parser = cli::u32_in(1, 1_000_000_000))]
    python_scale: u32,
    /// Internal: run as a worker process (`--worker io|cpu`), fed by the parent.
    #[arg(long, value_enum, hide = true)]
    worker: Option<Workload>,
    /// Internal: run as the child process that serves the I/O workload.
    #[arg(long, hide = true)]
    serve: bool,
    /// Internal (workers): base URL of the server.
    #[arg(long, hide = true, default_value = "")]
    base_url: String,
    /// Internal (workers): first task index, and the stride between this worker's tasks.
    #[arg(long, hide = true, default_value_t = 0, value_parser = cli::usize_in(0, 1_000_000))]
    start: usize,
    #[arg(long, hide = true, default_value_t = 1, value_parser = cli::usize_in(1, 1_000_000))]
    step: usize,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Io,
    Cpu,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.serve {
        return serve(&args);
    }
    if let Some(kind) = args.worker {
        return worker(kind, &args);
    }
    let cores = args
        .cores
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    // `--python`: find the interpreter (and aiohttp, for the I/O rows) before measuring
    // anything, so a missing package costs nothing but the message saying what to install.
    let python = if args.python {
        let imports: &[&str] = if args.only == Some(Workload::Cpu) {
            &[]
        } else {
            &["aiohttp"]
        };
        match Python::find(imports) {
            Ok(py) => Some(py),
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };

    let io = if args.only != Some(Workload::Cpu) {
        Some(io_table(&args, python.as_ref())?)
    } else {
        None
    };
    let cpu = if args.only != Some(Workload::Io) {
        Some(cpu_table(&args, cores, python.as_ref())?)
    } else {
        None
    };
    let agree = io.iter().chain(cpu.iter()).all(WorkloadReport::all_agree);

    if args.json {
        let mut out = serde_json::json!({
            "cores": cores,
            "params": {
                "requests": args.requests, "latency_ms": args.latency_ms,
                "concurrency": args.concurrency, "size": args.size,
                "tasks": args.tasks, "rounds": args.rounds,
            },
            "io": io.as_ref().map(|w| w.rust.to_json()),
            "cpu": cpu.as_ref().map(|w| w.rust.to_json()),
            "all_agree": agree,
        });
        if let Some(py) = &python {
            out["python"] = serde_json::json!({
                "interpreter": py.version,
                "cpu_scale": args.python_scale,
                "cpu_rounds": python_rounds(&args),
                "io": io.as_ref().and_then(WorkloadReport::python_json),
                "cpu": cpu.as_ref().and_then(WorkloadReport::python_json),
            });
        }
        report::print_json(&out);
    } else {
        for w in io.iter().chain(cpu.iter()) {
            w.print();
            println!();
        }
        interpret(io.as_ref(), cpu.as_ref(), cores);
    }
    if !agree {
        bail!("some approaches computed a different result: see the 'same result' column");
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Measuring one approach
// ------------------------------------------------------------------------------------------------

/// Runs one approach with a fresh peak-memory mark and turns it into a table row.
/// `f` returns `(result, extra_rss_kib)`: the extra is memory that lived in other processes (the
/// workers), added to this process's peak.
fn measure(
    name: &str,
    baseline: Option<u64>,
    f: impl FnOnce() -> Result<(u64, u64)>,
) -> Result<(Row, u64)> {
    report::reset_peak_rss();
    let Timed { value, wall, cpu } = report::timed(f);
    let (result, extra_rss_kib) = value.with_context(|| format!("approach '{name}' failed"))?;
    let mut row = Row::new(name, wall)
        .cpu(cpu)
        .rss(report::peak_rss_kib() + extra_rss_kib);
    if let Some(b) = baseline {
        row = row.agrees(b == result);
    }
    Ok((row, result))
}

/// Combines per-item results so that the order in which items finish does not matter, but every
/// item and its index do.
fn combine(i: usize, value: u64) -> u64 {
    shared::work::cpu_task(value ^ (i as u64).rotate_left(32), 1)
}

// ------------------------------------------------------------------------------------------------
// I/O-bound workload
// ------------------------------------------------------------------------------------------------

fn url(base: &str, i: usize, size: usize) -> String {
    format!("{base}/files/{}?size={size}", shared::server::file_name(i))
}

/// The result of one download: a checksum of its body, after checking it is the expected one.
fn body_digest(i: usize, body: &[u8]) -> Result<u64> {
    let name = shared::server::file_name(i);
    ensure!(
        shared::server::check_body(&name, body),
        "{name}: body differs from what the server sends"
    );
    // FNV-1a: cheap, and enough to tell bodies apart.
    let h = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Ok(combine(i, h ^ body.len() as u64))
}

fn blocking_client(pool: usize) -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

fn blocking_get(
    client: &reqwest::blocking::Client,
    base: &str,
    i: usize,
    size: usize,
) -> Result<u64> {
    let resp = client
        .get(url(base, i, size))
        .send()
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("GET #{i}"))?;
    let body = resp.bytes().with_context(|| format!("reading #{i}"))?;
    body_digest(i, &body)
}

async fn async_get(client: &reqwest::Client, base: &str, i: usize, size: usize) -> Result<u64> {
    let resp = client
        .get(url(base, i, size))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("GET #{i}"))?;
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("reading #{i}"))?;
    body_digest(i, &body)
}

/// The I/O workload on a runtime: one client, at most `c` requests in flight.
fn io_on_runtime(
    workers: Option<usize>,
    base: &str,
    n: usize,
    c: usize,
    size: usize,
) -> Result<u64> {
    let rt = six_ways::runtime(workers).context("building the runtime")?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(c)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        six_ways::on_async(n, c, |i| async_get(&client, base, i, size)).await
    })
}

fn io_table(args: &Args, python: Option<&Python>) -> Result<WorkloadReport> {
    let server = ServerChild::start(args)?;
    let base = server.base_url.clone();
    let (n, c, size) = (
        args.requests,
        args.concurrency.min(args.requests),
        args.size,
    );
    let latency = Duration::from_millis(args.latency_ms);
    let rounds_of = |width: usize| latency * n.div_ceil(width) as u32;
    let rayon_threads = rayon::current_num_threads();

    let mut t = SpeedupTable::new(format!(
        "I/O-bound: {n} requests, {} ms latency each, concurrency {c}",
        args.latency_ms
    ));

    // Warm-up: the first request pays for connecting and for the server's lazy set-up.
    blocking_get(&blocking_client(1)?, &base, 0, size)?;

    let (row, expected) = measure("sequential", None, || {
        let client = blocking_client(1)?;
        Ok((
            six_ways::sequential(n, |i| blocking_get(&client, &base, i, size))?,
            0,
        ))
    })?;
    t.push(
        row.ideal(rounds_of(1))
            .note("one blocking client, one request at a time"),
    );

    let (row, _) = measure("threads", Some(expected), || {
        let client = blocking_client(c)?;
        Ok((
            six_ways::on_threads(n, c, &|i| blocking_get(&client, &base, i, size))?,
            0,
        ))
    })?;
    t.push(
        row.ideal(rounds_of(c))
            .note(format!("{c} OS threads, blocking client")),
    );

    let (row, _) = measure("processes", Some(expected), || {
        run_worker_processes(Workload::Io, c, args, &base)
    })?;
    t.push(
        row.ideal(rounds_of(c))
            .note(format!("{c} worker processes, blocking client each")),
    );

    let (row, _) = measure("async, 1 thread", Some(expected), || {
        Ok((io_on_runtime(None, &base, n, c, size)?, 0))
    })?;
    t.push(
        row.ideal(rounds_of(c))
            .note("current-thread runtime: the asyncio model"),
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (row, _) = measure("async, multi-thread", Some(expected), || {
        Ok((io_on_runtime(Some(cores), &base, n, c, size)?, 0))
    })?;
    t.push(row.ideal(rounds_of(c)).note("one worker thread per core"));

    let (row, _) = measure("rayon", Some(expected), || {
        let client = blocking_client(rayon_threads)?;
        Ok((
            six_ways::on_rayon(n, |i| blocking_get(&client, &base, i, size))?,
            0,
        ))
    })?;
    t.push(row.ideal(rounds_of(rayon_threads)).note(format!(
        "{rayon_threads} threads: sized for CPU, not for waiting"
    )));

    // The course's Python against the same server, while it still runs.
    let python = python
        .map(|py| python_io_rows(py, &base, n, c, size))
        .transpose()?;
    Ok(WorkloadReport { rust: t, python })
}

// ------------------------------------------------------------------------------------------------
// CPU-bound workload
// ------------------------------------------------------------------------------------------------

fn task(i: usize, rounds: u32) -> u64 {
    combine(i, shared::work::cpu_task(i as u64, rounds))
}

fn cpu_table(args: &Args, cores: usize, python: Option<&Python>) -> Result<WorkloadReport> {
    let (n, rounds) = (args.tasks, args.rounds);
    let work = move |i| task(i, rounds);
    let infallible = move |i| Ok::<u64, Infallible>(work(i));
    let mut t = SpeedupTable::new(format!(
        "CPU-bound: {n} tasks of {rounds} rounds, {cores} cores"
    ));
    // Warm-up: the first timed loop would otherwise also pay for the CPU leaving its idle
    // state (frequency ramp-up, page faults), which makes every later row look a bit better.
    std::hint::black_box(six_ways::sequential(n.min(4), infallible)?);
    let (row, expected) = measure("sequential", None, || {
        Ok((six_ways::sequential(n, infallible)?, 0))
    })?;
    let seq = row.wall;
    let parallel_ideal = seq / cores.min(n) as u32;
    t.push(row.ideal(seq).note("one thread"));

    let (row, _) = measure("threads", Some(expected), || {
        Ok((six_ways::on_threads(n, cores, &infallible)?, 0))
    })?;
    t.push(
        row.ideal(parallel_ideal)
            .note(format!("{cores} OS threads, no GIL")),
    );

    let (row, _) = measure("processes", Some(expected), || {
        run_worker_processes(Workload::Cpu, cores, args, "")
    })?;
    t.push(
        row.ideal(parallel_ideal)
            .note(format!("{cores} worker processes")),
    );

    let (row, _) = measure("async, 1 thread", Some(expected), || {
        let rt = six_ways::runtime(None).context("building the current-thread runtime")?;
        Ok((
            rt.block_on(six_ways::on_tasks(n, work))
                .context("a CPU task panicked")?,
            0,
        ))
    })?;
    t.push(row.ideal(seq).note("tasks take turns on one thread"));

    let (row, _) = measure("async, multi-thread", Some(expected), || {
        let rt = six_ways::runtime(Some(cores)).context("building the multi-thread runtime")?;
        Ok((
            rt.block_on(six_ways::on_tasks(n, work))
                .context("a CPU task panicked")?,
            0,
        ))
    })?;
    t.push(
        row.ideal(parallel_ideal)
            .note("parallel, but blocks the workers I/O would need"),
    );

    let (row, _) = measure("rayon", Some(expected), || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .build()
            .context("building the rayon pool")?;
        Ok((pool.install(|| six_ways::on_rayon(n, infallible))?, 0))
    })?;
    t.push(
        row.ideal(parallel_ideal)
            .note("work stealing over the same cores"),
    );

    let python = python
        .map(|py| python_cpu_rows(py, args, cores))
        .transpose()?;
    Ok(WorkloadReport { rust: t, python })
}

// ------------------------------------------------------------------------------------------------
// Worker processes (the `multiprocessing.Pool` row)
// ------------------------------------------------------------------------------------------------

/// Runs `count` copies of this program in worker mode, worker `w` doing items `w, w + count, …`,
/// and adds up what they print. Returns the combined result and the sum of the workers' peak
/// memory, which lives outside this process.
fn run_worker_processes(
    kind: Workload,
    count: usize,
    args: &Args,
    base: &str,
) -> Result<(u64, u64)> {
    let exe = std::env::current_exe().context("locating this program to re-execute it")?;
    let lines = worker_processes::run_workers(count, |w| {
        let mut cmd = Command::new(&exe);
        cmd.arg("--worker")
            .arg(match kind {
                Workload::Io => "io",
                Workload::Cpu => "cpu",
            })
            .args(["--start", &w.to_string(), "--step", &count.to_string()])
            .args(["--requests", &args.requests.to_string()])
            .args(["--size", &args.size.to_string()])
            .args(["--tasks", &args.tasks.to_string()])
            .args(["--rounds", &args.rounds.to_string()])
            .args(["--base-url", base]);
        cmd
    })
    .context("running the worker processes")?;
    let (mut acc, mut rss) = (0u64, 0u64);
    for line in lines {
        let mut parts = line.split_whitespace().map(str::parse::<u64>);
        match (parts.next(), parts.next()) {
            (Some(Ok(v)), Some(Ok(kib))) => {
                acc = acc.wrapping_add(v);
                rss += kib;
            }
            _ => bail!("a worker printed {line:?}, expected '<result> <peak KiB>'"),
        }
    }
    Ok((acc, rss))
}

/// Worker mode: do items `start, start + step, …` and print `<result> <peak RSS KiB>`.
fn worker(kind: Workload, args: &Args) -> Result<()> {
    let mut acc = 0u64;
    match kind {
        Workload::Cpu => {
            for i in (args.start..args.tasks).step_by(args.step) {
                acc = acc.wrapping_add(task(i, args.rounds));
            }
        }
        Workload::Io => {
            let client = blocking_client(1)?;
            for i in (args.start..args.requests).step_by(args.step) {
                acc = acc.wrapping_add(blocking_get(&client, &args.base_url, i, args.size)?);
            }
        }
    }
    println!("{acc} {}", report::peak_rss_kib());
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// --python: the course's Python in the same tables
// ------------------------------------------------------------------------------------------------

const RECIPE: &str = "examples-patterns/python/compare.py";

/// The course's approaches in the recipe's words, each with the name of its row and the Rust row
/// it answers to (the course's asyncio is one event loop: our current-thread runtime).
const PYTHON_APPROACHES: [(&str, &str, &str); 4] = [
    ("sequential", "Python sequential", "sequential"),
    ("threads", "Python threading", "threads"),
    ("processes", "Python multiprocessing", "processes"),
    ("asyncio", "Python asyncio", "async, 1 thread"),
];

/// One workload's figures: Rust's rows, and Python's when `--python` ran them.
struct WorkloadReport {
    rust: SpeedupTable,
    python: Option<PythonRows>,
}

/// Python's rows of one workload. Speedups are over Python's own sequential row.
struct PythonRows {
    /// Each row with the name of the Rust row it answers to.
    rows: Vec<(Row, &'static str)>,
    /// How many of Python's runs make one of Rust's: 1 for I/O (the same requests), the scale
    /// for CPU (Python ran `rounds / scale` rounds per task).
    scale: f64,
}

impl PythonRows {
    fn speedup(&self, i: usize) -> f64 {
        match (self.rows.first(), self.rows.get(i)) {
            (Some((base, _)), Some((row, _))) if !row.wall.is_zero() => {
                base.wall.as_secs_f64() / row.wall.as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Python's time over Rust's for the same work (scaled up for CPU: per round).
    fn ratio(&self, i: usize, rust: &SpeedupTable) -> Option<f64> {
        let (row, peer) = self.rows.get(i)?;
        let (_, r) = find(rust, peer)?;
        (!r.wall.is_zero()).then(|| row.wall.as_secs_f64() * self.scale / r.wall.as_secs_f64())
    }
}

impl WorkloadReport {
    fn all_agree(&self) -> bool {
        self.rust.all_agree()
            && self
                .python
                .iter()
                .flat_map(|p| &p.rows)
                .all(|(r, _)| r.agrees != Some(false))
    }

    fn python_json(&self) -> Option<serde_json::Value> {
        let py = self.python.as_ref()?;
        let rows: Vec<serde_json::Value> = py
            .rows
            .iter()
            .enumerate()
            .map(|(i, (row, peer))| {
                let mut v = serde_json::to_value(row).expect("a Row always serializes");
                v["speedup"] = serde_json::json!(py.speedup(i));
                v["rust_peer"] = serde_json::json!(peer);
                v["python_over_rust"] = serde_json::json!(py.ratio(i, &self.rust));
                v
            })
            .collect();
        Some(serde_json::json!({ "scale": py.scale, "rows": rows }))
    }

    /// Rust's table as before; with Python, one table for both languages: each language's
    /// speedup is over its own sequential row, and the last figure is Python's time over
    /// Rust's for the same approach and the same work.
    fn print(&self) {
        let Some(py) = &self.python else {
            self.rust.print();
            return;
        };
        let fmt_opt = |d: Option<Duration>| d.map_or_else(|| "-".into(), report::fmt_duration);
        let fmt_kib =
            |k: Option<u64>| k.map_or_else(|| "-".into(), |k| report::fmt_bytes(k * 1024));
        let agree = |a: Option<bool>| match a {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let ratio_header = if py.scale == 1.0 {
            "Python ÷ Rust"
        } else {
            "Python ÷ Rust per round"
        };
        let mut lines = vec![
            [
                "approach",
                "wall",
                "speedup",
                "cpu",
                "peak rss",
                "same result",
                ratio_header,
                "note",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for (i, r) in self.rust.rows().iter().enumerate() {
            lines.push(vec![
                format!("Rust {}", r.name),
                report::fmt_duration(r.wall),
                format!("{:.2}x", self.rust.speedup(i)),
                fmt_opt(r.cpu),
                fmt_kib(r.peak_rss_kib),
                agree(r.agrees).into(),
                String::new(),
                r.note.clone(),
            ]);
        }
        for (i, (r, _)) in py.rows.iter().enumerate() {
            lines.push(vec![
                r.name.clone(),
                report::fmt_duration(r.wall),
                format!("{:.2}x", py.speedup(i)),
                fmt_opt(r.cpu),
                fmt_kib(r.peak_rss_kib),
                agree(r.agrees).into(),
                py.ratio(i, &self.rust)
                    .map_or_else(|| "-".into(), |x| format!("{x:.1}x")),
                r.note.clone(),
            ]);
        }
        println!("{}", self.rust.title());
        if py.scale != 1.0 {
            println!(
                "Python runs each task with 1/{:.0} of the rounds (pure-Python arithmetic): \
                 compare the speedups; the last column is per round",
                py.scale
            );
        }
        print!("{}", report::align_columns(&lines));
    }
}

/// Rounds per task on the Python side.
fn python_rounds(args: &Args) -> u32 {
    (args.rounds / args.python_scale).max(1)
}

/// Runs the recipe once (one approach, one workload, a fresh interpreter: its peak memory is
/// that approach's alone) and turns its JSON into a row checked against `expected`.
fn python_row(
    py: &Python,
    recipe_args: &[String],
    (approach, name, _): (&str, &str, &str),
    expected: u64,
    note: String,
) -> Result<Row> {
    let mut args: Vec<&str> = recipe_args.iter().map(String::as_str).collect();
    args.extend(["--approach", approach]);
    let out = py
        .run_recipe(RECIPE, &args)
        .with_context(|| format!("the Python recipe, {approach}"))?;
    let field = |key: &str| {
        out.json[key]
            .as_f64()
            .with_context(|| format!("{RECIPE} printed no number {key:?}: {}", out.json))
    };
    let result = out.json["result"]
        .as_u64()
        .with_context(|| format!("{RECIPE} printed no integer \"result\": {}", out.json))?;
    let wall = Duration::try_from_secs_f64(field("wall_s")?).context("wall_s")?;
    let cpu = Duration::try_from_secs_f64(field("cpu_s")?.max(0.0)).context("cpu_s")?;
    Ok(Row::new(name, wall)
        .cpu(cpu)
        .rss(field("peak_rss_kib")? as u64)
        .agrees(result == expected)
        .note(note))
}

fn python_io_rows(py: &Python, base: &str, n: usize, c: usize, size: usize) -> Result<PythonRows> {
    // What the recipe must find: the bodies the server sends, checksummed as Python does.
    let expected = (0..n).fold(0u64, |acc, i| {
        let body = shared::server::expected_body(&shared::server::file_name(i), size);
        acc.wrapping_add((i as u64 + 1).wrapping_mul(u64::from(crc32(&body))))
    });
    let recipe_args = [
        "io".to_string(),
        format!("--base-url={base}"),
        format!("--requests={n}"),
        format!("--concurrency={c}"),
        format!("--size={size}"),
    ];
    let notes = [
        "a for loop, urllib".to_string(),
        format!("ThreadPoolExecutor({c}), urllib"),
        format!("Pool({c}), urllib in each process"),
        format!("aiohttp, Semaphore({c}), one event loop"),
    ];
    let rows = PYTHON_APPROACHES
        .into_iter()
        .zip(notes)
        .map(|(a, note)| Ok((python_row(py, &recipe_args, a, expected, note)?, a.2)))
        .collect::<Result<_>>()?;
    Ok(PythonRows { rows, scale: 1.0 })
}

fn python_cpu_rows(py: &Python, args: &Args, cores: usize) -> Result<PythonRows> {
    let (n, rounds) = (args.tasks, python_rounds(args));
    // Python's total for its rounds, computed here: Rust's sequential loop, fewer rounds.
    let expected = six_ways::sequential(n, |i| Ok::<u64, Infallible>(task(i, rounds)))?;
    let recipe_args = [
        "cpu".to_string(),
        format!("--tasks={n}"),
        format!("--rounds={rounds}"),
        format!("--workers={cores}"),
    ];
    let notes = [
        "a for loop".to_string(),
        format!("ThreadPoolExecutor({cores}): one thread runs bytecode at a time (the GIL)"),
        format!("Pool({cores}): a process per core, no shared GIL"),
        "gather on one event loop: tasks take turns".to_string(),
    ];
    let rows = PYTHON_APPROACHES
        .into_iter()
        .zip(notes)
        .map(|(a, note)| Ok((python_row(py, &recipe_args, a, expected, note)?, a.2)))
        .collect::<Result<_>>()?;
    Ok(PythonRows {
        rows,
        scale: f64::from(args.rounds) / f64::from(rounds),
    })
}

/// CRC-32 (IEEE), the checksum Python's `zlib.crc32` computes; bitwise, since only the
/// `--python` check uses it, on a few megabytes.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

// ------------------------------------------------------------------------------------------------
// The local server, in its own process
// ------------------------------------------------------------------------------------------------

/// The I/O workload's server runs in a child process so that the CPU column shows only the
/// client's work. The child serves until its stdin closes, which also happens if we die: no
/// orphan server survives us.
struct ServerChild {
    child: Reaper,
    base_url: String,
}

impl ServerChild {
    fn start(args: &Args) -> Result<ServerChild> {
        let exe = std::env::current_exe().context("locating this program to re-execute it")?;
        let mut child = Reaper(
            Command::new(exe)
                .args(["--serve", "--latency-ms", &args.latency_ms.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting the local server process")?,
        );
        let out = child.0.stdout.take().expect("stdout was piped");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .context("reading the server's address")?;
        let base_url = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("unexpected first line from the server: {line:?}"))?
            .to_string();
        Ok(ServerChild { child, base_url })
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Closing stdin asks the server to stop; `Reaper` kills it if it does not.
        drop(self.child.0.stdin.take());
        let _ = self.child.0.wait();
    }
}

fn serve(args: &Args) -> Result<()> {
    let config = shared::server::ServerConfig::default()
        .latency(Duration::from_millis(args.latency_ms))
        // One runtime thread is plenty for a few thousand idle-waiting requests and leaves the
        // cores to the approaches being measured.
        .worker_threads(1);
    let server = shared::server::TestServer::spawn(config).context("starting the test server")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {}", server.base_url())?;
    out.flush()?;
    // Serve until the parent closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    server.shutdown_blocking();
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// What the numbers say
// ------------------------------------------------------------------------------------------------

fn find<'a>(t: &'a SpeedupTable, name: &str) -> Option<(usize, &'a Row)> {
    t.rows().iter().enumerate().find(|(_, r)| r.name == name)
}

fn interpret(io: Option<&WorkloadReport>, cpu: Option<&WorkloadReport>, cores: usize) {
    println!("What this says (compare with the course's table):");
    if let Some(py) = cpu.and_then(|w| w.python.as_ref().map(|p| (p, &w.rust))) {
        python_says_cpu(py, cores);
    }
    if let Some(py) = io.and_then(|w| w.python.as_ref().map(|p| (p, &w.rust))) {
        python_says_io(py);
    }
    let (io, cpu) = (io.map(|w| &w.rust), cpu.map(|w| &w.rust));
    if let Some(cpu) = cpu {
        if let Some((i, _)) = find(cpu, "threads") {
            println!(
                "- CPU-bound, threads: {:.2}x on {cores} cores. Python threads stay near 1x here \
                 (the GIL runs one thread's bytecode at a time); Rust has no GIL, so the \
                 'Parallélisme réel' and 'CPU intensif' rows are ✅ for threads too.",
                cpu.speedup(i)
            );
        }
        if let Some((i, _)) = find(cpu, "async, 1 thread") {
            println!(
                "- CPU-bound, async on one thread: {:.2}x. Async is concurrency, not \
                 parallelism: CPU work never awaits, so tasks just take turns.",
                cpu.speedup(i)
            );
        }
        if let (Some((ip, p)), Some((it, t))) = (find(cpu, "processes"), find(cpu, "threads")) {
            let start_up = if p.wall > t.wall {
                format!(
                    "{} more wall time (starting programs, pipes)",
                    report::fmt_duration(p.wall - t.wall)
                )
            } else {
                "no measurable start-up cost at this task size".to_string()
            };
            println!(
                "- CPU-bound, processes: {:.2}x vs threads {:.2}x: {start_up}, and {} of \
                 memory (all processes) instead of {}.",
                cpu.speedup(ip),
                cpu.speedup(it),
                report::fmt_bytes(p.peak_rss_kib.unwrap_or(0) * 1024),
                report::fmt_bytes(t.peak_rss_kib.unwrap_or(0) * 1024),
            );
        }
    }
    if let Some(io) = io {
        let best = io
            .rows()
            .iter()
            .filter(|r| r.name != "sequential")
            .min_by_key(|r| r.wall);
        if let Some(best) = best {
            println!(
                "- I/O-bound: fastest was '{}' at {} (ideal {}). Threads, processes and async \
                 all overlap the waiting; the GIL is released while Python waits too, which is \
                 why the course rates threading ✅ for I/O.",
                best.name,
                report::fmt_duration(best.wall),
                best.ideal.map(report::fmt_duration).unwrap_or_default()
            );
        }
        if let (Some((_, a)), Some((_, t))) = (find(io, "async, 1 thread"), find(io, "threads")) {
            println!(
                "- I/O-bound CPU cost: async used {} of CPU, threads {}: waiting is cheap in \
                 both, but a task is far cheaper than a thread when there are thousands.",
                a.cpu.map(report::fmt_duration).unwrap_or_default(),
                t.cpu.map(report::fmt_duration).unwrap_or_default()
            );
        }
        if let Some((i, _)) = find(io, "rayon") {
            println!(
                "- I/O-bound, rayon: {:.2}x only. Its pool has one thread per core, each \
                 blocked while it waits: use async or a larger thread pool for I/O.",
                io.speedup(i)
            );
        }
    }
}

/// The GIL as a number: the same threads, in both languages, on the same CPU tasks.
fn python_says_cpu((py, rust): (&PythonRows, &SpeedupTable), cores: usize) {
    let py_speedup = |name: &str| {
        let i = py.rows.iter().position(|(r, _)| r.name == name)?;
        Some((py.speedup(i), py.ratio(i, rust)))
    };
    let rust_speedup = |name: &str| find(rust, name).map(|(i, _)| rust.speedup(i));
    if let (Some(r), Some((p, _))) = (rust_speedup("threads"), py_speedup("Python threading")) {
        println!(
            "- The GIL, measured: on {cores} cores, threads run the CPU tasks {r:.2}x faster than \
             one thread in Rust, {p:.2}x in Python. Python needs processes for this row:"
        );
    }
    if let Some((p, _)) = py_speedup("Python multiprocessing") {
        println!("  multiprocessing reaches {p:.2}x, at the price of separate interpreters.");
    }
    if let Some((_, Some(ratio))) = py_speedup("Python sequential") {
        println!(
            "- Per round of the same arithmetic, one Python thread takes {ratio:.0}x Rust's \
             time: an interpreter executing bytecode on boxed integers against compiled code."
        );
    }
}

/// I/O: every language overlaps the waiting; what is left is the cost per request.
fn python_says_io((py, rust): (&PythonRows, &SpeedupTable)) {
    let ratios: Vec<String> = py
        .rows
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, (r, peer))| {
            let ratio = py.ratio(i, rust)?;
            Some(format!("{} {ratio:.1}x of Rust {peer}", r.name))
        })
        .collect();
    println!(
        "- I/O-bound in Python: threads, processes and asyncio all overlap the waiting too (the \
         GIL is released while a thread waits). Wall time: {}.",
        ratios.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        // The check value every CRC-32 (IEEE) implementation publishes, and `zlib.crc32(b"")`.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn combine_depends_on_index_and_value() {
        assert_ne!(combine(0, 1), combine(1, 1));
        assert_ne!(combine(0, 1), combine(0, 2));
        assert_eq!(combine(3, 9), combine(3, 9));
    }

    #[test]
    fn digest_rejects_a_wrong_body() {
        let name = shared::server::file_name(4);
        let good = shared::server::expected_body(&name, 1000);
        assert!(body_digest(4, &good).is_ok());
        assert!(body_digest(5, &good).is_err(), "body of #4 is not #5's");
        let mut bad = good.clone();
        bad[10] ^= 1;
        assert!(body_digest(4, &bad).is_err());
    }

    #[test]
    fn every_numeric_flag_has_bounds() {
        let parse = |extra: &[&str]| Args::try_parse_from([&["compare"], extra].concat());
        for bad in [
            &["--tasks", "0"][..],
            &["--cores", "0"],
            &["--concurrency", "1001"],
            &["--step", "0"],
            &["--latency-ms=-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse(&["--cores", "2", "--only", "cpu"]).is_ok());
    }

    #[test]
    fn every_split_of_the_cpu_work_adds_up_to_the_same_result() {
        let (n, rounds) = (10, 100);
        let seq = (0..n).fold(0u64, |a, i| a.wrapping_add(task(i, rounds)));
        for step in 1..=4 {
            let split = (0..step)
                .flat_map(|start| (start..n).step_by(step))
                .fold(0u64, |a, i| a.wrapping_add(task(i, rounds)));
            assert_eq!(split, seq, "step {step}");
        }
    }
}
