//! What a thread and a process cost to create and to keep: spawn latency and memory, measured.
//!
//! Course section **8.1 — Threading et multiprocessing** (*Création plus lente*, *Plus de
//! consommation mémoire*): the course lists both as the price of processes; this measures them.
//!
//! Crates: `anyhow = "1"`, `crossbeam-channel = "0.5"`, `libc = "0.2"` (the harness adds clap and
//! serde).
//!
//! # Concepts
//! - Thread spawn + join: `clone(2)` of a task sharing our memory, plus a stack `mmap`.
//! - Process spawn + wait: std uses `posix_spawn` (a vfork-like clone, no page-table copy), then
//!   the kernel `execve`s the binary, the dynamic loader and Rust's runtime start, and `main`
//!   returns. Re-executing ourselves is what a process pool pays per worker.
//! - Memory: a parked thread costs a few touched stack pages (its 2 MiB stack is *reserved*
//!   virtual memory, not resident). A process costs its own page tables, heap, loader state and
//!   private copies of written pages. RSS counts shared library pages in every process; PSS
//!   (`/proc/PID/smaps_rollup`) splits shared pages between their users and is the fair figure.
//! - Medians of many runs, not means: spawn times have a long tail (page faults, scheduling).
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin spawn-cost
//! cargo run --release -p examples-processes --bin spawn-cost -- --thread-iters 20000 --process-iters 1000
//! cargo run --release -p examples-processes --bin spawn-cost -- --json
//! ```
//!
//! # What to observe
//! - Thread spawn+join in tens of µs (less on an idle machine: the new thread must get a core);
//!   a process of this binary around a millisecond, tens of times more. `python3 -c pass` (if
//!   installed) costs a hundred times more again: what `multiprocessing`'s "spawn" start method
//!   pays per worker before importing anything. Figures: the crate README, *Measured*.
//! - Per idle thread, a few KiB resident; per idle process of this binary, megabytes of RSS but
//!   a small fraction of that in PSS: the binary's code and the C library are shared.
//! - The pinned row: the same spawn with both threads on one core. When it is much faster than
//!   the unpinned row, the cost was waking another (idle) core, not creating the thread; on a
//!   virtual machine that wake-up goes through the hypervisor and can dominate. The "C pthread
//!   only" row is the floor under std; the difference is mostly std's per-thread signal stack.
//! - The "reuse" rows: handing a task to a worker that already exists costs one wake-up. That
//!   is what a pool buys: the spawn is paid once per worker, not once per task. Run it again
//!   under `taskset -c 0`: on a VM every row that wakes the other core gets cheaper.
//! - The conclusion printed at the end: create workers once and reuse them (a pool), and make
//!   each task long compared with the cost of a message to a worker.
//!
//! # Exercises
//! 1. Grow the parent's heap (allocate and touch 1 GiB before measuring) and compare process
//!    spawn with `Command::pre_exec` set (which forces fork+exec instead of posix_spawn): why
//!    does the fork version get slower as the parent grows?
//! 2. Give the parked threads 64 KiB stacks (`thread::Builder::stack_size`): does the RSS per
//!    thread change? Does the virtual size (`VmSize`) change?
//! 3. Measure a `rayon::scope` with one `spawn` against `thread::spawn`: what does reusing a
//!    pool's threads save?
//! 4. Using the figures, how long must a task be for per-task process spawning (no pool) to
//!    cost less than 5% overhead?

// === Lesson: copy from here ===

/// Medians of many runs, not means: spawn times have a long tail (page faults, scheduling).
mod measure {
    use std::time::{Duration, Instant};

    /// The distribution of one operation's duration, in µs.
    #[derive(Clone, Debug)]
    pub struct Timing {
        pub what: String,
        pub iterations: usize,
        pub median_us: f64,
        pub p90_us: f64,
        pub min_us: f64,
    }

    /// Runs `f` `iters` times (after a short warm-up) and returns the distribution of its duration.
    pub fn measure(
        what: &str,
        iters: usize,
        mut f: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Timing> {
        let iters = iters.max(1);
        for _ in 0..(iters / 20).max(2) {
            f()?; // Warm-up: page cache, dynamic loader, allocator.
        }
        let mut times = Vec::with_capacity(iters);
        for _ in 0..iters {
            let start = Instant::now();
            f()?;
            times.push(start.elapsed());
        }
        times.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Ok(Timing {
            what: what.to_owned(),
            iterations: iters,
            median_us: us(times[iters / 2]),
            p90_us: us(times[iters * 9 / 10]),
            min_us: us(times[0]),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn quantiles_are_ordered_and_errors_stop_the_run() {
            let nap = || {
                std::thread::sleep(Duration::from_micros(50));
                Ok(())
            };
            let t = measure("sleep", 20, nap).unwrap();
            assert!(t.min_us <= t.median_us && t.median_us <= t.p90_us, "{t:?}");
            assert!(t.min_us >= 50.0, "{t:?}");
            assert!(measure("fails", 5, || anyhow::bail!("no")).is_err());
        }
    }
}

/// Creating and ending a thread or a process, the cost a pool pays once per worker.
mod create {
    use std::process::Command;

    use anyhow::{Context, ensure};

    use super::measure::{Timing, measure};

    pub fn std_thread(iters: usize) -> anyhow::Result<Timing> {
        measure("thread spawn + join", iters, || {
            let handle = std::thread::spawn(|| std::hint::black_box(1u64));
            handle.join().expect("an empty thread cannot panic");
            Ok(())
        })
    }

    /// The same with the new thread on the spawning thread's core: no other core has to be
    /// woken. On a VM, waking an idle virtual CPU goes through the hypervisor and can cost more
    /// than the spawn itself; compare the two rows.
    pub fn std_thread_pinned(iters: usize) -> anyhow::Result<Timing> {
        std::thread::spawn(move || -> anyhow::Result<Timing> {
            pin_to_one_cpu()?; // Threads spawned from here inherit the affinity.
            let t = std_thread(iters)?;
            Ok(Timing {
                what: "thread spawn + join (pinned, one core)".into(),
                ..t
            })
        })
        .join()
        .expect("the measuring thread cannot panic")
    }

    /// The floor: the same life cycle through the C library alone. The difference with the std
    /// row is what std adds; the rest is the kernel (and, on a VM, the hypervisor).
    pub fn c_pthread(iters: usize) -> anyhow::Result<Timing> {
        measure(
            "thread spawn + join (C pthread only)",
            iters,
            pthread_spawn_join,
        )
    }

    /// `program args` started and waited for (`Command::status`).
    pub fn process(
        what: &str,
        iters: usize,
        program: &str,
        args: &[&str],
    ) -> anyhow::Result<Timing> {
        measure(what, iters, || {
            let status = Command::new(program).args(args).status();
            let status = status.with_context(|| format!("spawning {program}"))?;
            ensure!(status.success(), "{program} failed: {status}");
            Ok(())
        })
    }

    /// Create and join a thread with the C library directly: no alternate signal stack (std maps
    /// one per thread so that a stack overflow prints a message instead of a bare SIGSEGV, and
    /// unmaps it at exit), no `Thread` handle, no `Arc`'d slot for the result. Only here to
    /// measure the floor under std; use `std::thread` in real code. Mapping, guarding and
    /// unmapping such a stack in a bare pthread makes most of the gap between the two rows.
    fn pthread_spawn_join() -> anyhow::Result<()> {
        extern "C" fn start(_: *mut libc::c_void) -> *mut libc::c_void {
            std::ptr::null_mut()
        }
        let mut thread = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
        let null = std::ptr::null_mut();
        // SAFETY: `thread` is valid for writes; null attributes mean the defaults; `start` is an
        // `extern "C"` function that ignores its (null) argument and touches no Rust state.
        let rc =
            unsafe { libc::pthread_create(thread.as_mut_ptr(), std::ptr::null(), start, null) };
        ensure!(
            rc == 0,
            "pthread_create: {}",
            std::io::Error::from_raw_os_error(rc)
        );
        // SAFETY: pthread_create succeeded, so `thread` is initialised and joinable, joined once.
        let rc = unsafe { libc::pthread_join(thread.assume_init(), std::ptr::null_mut()) };
        ensure!(
            rc == 0,
            "pthread_join: {}",
            std::io::Error::from_raw_os_error(rc)
        );
        Ok(())
    }

    /// Restricts the calling thread to the CPU it is running on now.
    fn pin_to_one_cpu() -> anyhow::Result<()> {
        // SAFETY: sched_getcpu takes no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        let cpu = usize::try_from(cpu).context("sched_getcpu failed")?;
        // SAFETY: cpu_set_t is plain old data (a bit array), so all-zeroes is a valid empty set;
        // CPU_SET writes inside it (cpu < CPU_SETSIZE on any machine this runs on); pid 0 means
        // the calling thread.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn threads_and_processes_are_created_and_ended() {
            for t in [std_thread(20), std_thread_pinned(20), c_pthread(20)] {
                assert!(t.unwrap().median_us > 0.0);
            }
            assert!(process("true", 3, "true", &[]).unwrap().median_us > 0.0);
            assert!(
                process("false", 3, "false", &[]).is_err(),
                "a failed child is an error"
            );
        }
    }
}

/// What a pool pays per task instead of a spawn: waking a worker that already exists.
mod reuse {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    use anyhow::Context;

    use super::measure::{Timing, measure};

    /// Round trip to a thread parked on a channel: send a task, wait for the answer.
    pub fn thread_handoff(iters: usize) -> anyhow::Result<Timing> {
        let (task_tx, task_rx) = std::sync::mpsc::sync_channel::<u64>(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<u64>(1);
        let worker = std::thread::spawn(move || {
            for task in task_rx {
                if done_tx.send(task + 1).is_err() {
                    break;
                }
            }
        });
        let timing = measure("hand-off to a parked thread (channel)", iters, || {
            task_tx.send(1).context("the worker thread is gone")?;
            done_rx.recv().context("the worker thread is gone")?;
            Ok(())
        });
        drop(task_tx); // Closing the channel is the stop signal.
        worker.join().expect("the worker thread cannot panic");
        timing
    }

    /// The worker process of [`process_handoff`]: sends back every 8 bytes it reads.
    pub fn echo_child() -> std::io::Result<()> {
        let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
        let mut task = [0u8; 8];
        while input.read_exact(&mut task).is_ok() {
            output.write_all(&task)?;
            output.flush()?;
        }
        Ok(())
    }

    /// Round trip to a live child process over its pipes: 8 bytes out, 8 bytes back. The child
    /// is `worker` (this binary in its echo mode, or anything that runs [`echo_child`]).
    pub fn process_handoff(mut worker: Command, iters: usize) -> anyhow::Result<Timing> {
        let mut child = worker
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning the echo child")?;
        let mut to_child = child.stdin.take().expect("stdin was piped");
        let mut from_child = child.stdout.take().expect("stdout was piped");
        let timing = measure("hand-off to a live worker process (pipe)", iters, || {
            to_child
                .write_all(&7u64.to_le_bytes())
                .context("writing a task")?;
            let mut answer = [0u8; 8];
            from_child
                .read_exact(&mut answer)
                .context("reading the answer")?;
            Ok(())
        });
        drop(to_child); // EOF: the child's loop ends.
        child.wait().context("reaping the echo child")?;
        timing
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn both_hand_offs_answer_every_task() {
            assert!(thread_handoff(50).unwrap().median_us > 0.0);
            // `cat` is an echo worker too: 8 bytes in, the same 8 bytes out.
            assert!(process_handoff(Command::new("cat"), 50).unwrap().median_us > 0.0);
        }
    }
}

/// What a thread and a process cost to keep: resident memory while they sit idle.
mod memory {
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use anyhow::Context;

    /// Resident memory per idle thread or process, in KiB.
    #[derive(Clone, Debug)]
    pub struct Footprint {
        pub what: String,
        pub count: usize,
        pub rss_kib_each: f64,
        /// Proportional set size: shared pages split between their users (`None` if the
        /// kernel does not say).
        pub pss_kib_each: Option<f64>,
    }

    /// Reads a `Name:   123 kB` line from a /proc file.
    pub fn proc_field(path: &str, name: &str) -> Option<u64> {
        let text = std::fs::read_to_string(path).ok()?;
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    }

    fn our_rss_kib() -> u64 {
        proc_field("/proc/self/status", "VmRSS:").unwrap_or(0)
    }

    /// RSS growth of this process while `count` threads are parked on a channel.
    pub fn threads(count: usize) -> anyhow::Result<Footprint> {
        let before = our_rss_kib();
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(count);
        let handles: Vec<_> = (0..count)
            .map(|_| {
                let (rx, ready_tx) = (rx.clone(), ready_tx.clone());
                std::thread::spawn(move || {
                    let _ = ready_tx.send(());
                    let _ = rx.recv(); // Parked until the sender is dropped.
                })
            })
            .collect();
        for _ in 0..count {
            ready_rx.recv().context("a thread did not start")?;
        }
        let during = our_rss_kib();
        drop(tx);
        for h in handles {
            h.join().expect("a parked thread cannot panic");
        }
        Ok(Footprint {
            what: "thread (parked on a channel)".into(),
            count,
            rss_kib_each: during.saturating_sub(before) as f64 / count as f64,
            pss_kib_each: None,
        })
    }

    /// RSS and PSS of `count` idle copies of `exe arg` (each must block reading its stdin, as
    /// this binary does in its idle mode, or `cat`).
    pub fn processes(exe: &Path, arg: &str, count: usize) -> anyhow::Result<Footprint> {
        let mut children = Vec::with_capacity(count);
        for _ in 0..count {
            let child = Command::new(exe).arg(arg).stdin(Stdio::piped()).spawn();
            children.push(child.context("spawning an idle child")?);
        }
        // Give each child time to reach its `read` (its memory is then what an idle worker holds).
        std::thread::sleep(Duration::from_millis(200));
        let (mut rss, mut pss, mut pss_known) = (0u64, 0u64, true);
        for c in &children {
            rss += proc_field(&format!("/proc/{}/status", c.id()), "VmRSS:").unwrap_or(0);
            match proc_field(&format!("/proc/{}/smaps_rollup", c.id()), "Pss:") {
                Some(p) => pss += p,
                None => pss_known = false,
            }
        }
        // Closing stdin is the "stop" message; then every child is reaped.
        for c in &mut children {
            drop(c.stdin.take());
        }
        for mut c in children {
            c.wait().context("reaping an idle child")?;
        }
        Ok(Footprint {
            what: "process (this binary, blocked on stdin)".into(),
            count,
            rss_kib_each: rss as f64 / count as f64,
            pss_kib_each: pss_known.then(|| pss as f64 / count as f64),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn idle_threads_and_processes_are_measured_and_ended() {
            assert_eq!(threads(8).unwrap().count, 8);
            // `cat -` blocks on its stdin until we close it, like an idle worker.
            let idle = processes(Path::new("cat"), "-", 2).unwrap();
            assert!(idle.rss_kib_each > 0.0, "{idle:?}");
            assert!(proc_field("/proc/self/status", "VmRSS:").is_some());
            assert_eq!(proc_field("/proc/self/status", "NoSuchField:"), None);
        }
    }
}

// === Harness: not part of the lesson ===

use std::io::Read;
use std::process::Command;

use anyhow::Context;
use clap::Parser;
use serde_json::json;
use shared::cli;

use measure::Timing;
use memory::Footprint;

/// Cost of creating threads vs processes (µs, median of many) and their memory footprint.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Thread spawn+join repetitions.
    #[arg(long, default_value_t = 5000, value_parser = cli::usize_in(1, 1_000_000))]
    thread_iters: usize,
    /// Process spawn+wait repetitions (each is ~1 ms).
    #[arg(long, default_value_t = 300, value_parser = cli::usize_in(1, 100_000))]
    process_iters: usize,
    /// How many idle processes to hold for the memory measurement (16× as many threads).
    #[arg(long, default_value_t = 16, value_parser = cli::usize_in(1, 256))]
    idle: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Hidden child modes, checked before clap so that a child does as little as possible:
/// `--child-exit` returns at once; `--child-idle` waits for EOF on stdin; `--child-echo` sends
/// back every 8 bytes it reads (a worker answering tasks).
fn child_mode() -> Option<&'static str> {
    match std::env::args().nth(1).as_deref() {
        Some("--child-exit") => Some("exit"),
        Some("--child-idle") => Some("idle"),
        Some("--child-echo") => Some("echo"),
        _ => None,
    }
}

fn main() -> anyhow::Result<()> {
    match child_mode() {
        Some("exit") => return Ok(()),
        Some("echo") => return reuse::echo_child().context("answering"),
        Some(_) => {
            // Idle worker: block until the parent closes our stdin.
            let mut sink = Vec::new();
            std::io::stdin()
                .read_to_end(&mut sink)
                .context("waiting on stdin")?;
            return Ok(());
        }
        None => {}
    }
    let args = Args::parse();
    let exe = std::env::current_exe().context("finding our own binary")?;
    let exe_str = exe.to_str().context("our own path is not UTF-8")?;

    let std_row = create::std_thread(args.thread_iters)?;
    let pinned = create::std_thread_pinned(args.thread_iters)?;
    let pthread_row = create::c_pthread(args.thread_iters)?;
    let process_row = create::process(
        "process spawn + wait (this binary)",
        args.process_iters,
        exe_str,
        &["--child-exit"],
    )?;
    let (thread, bare, process) = (
        std_row.median_us,
        pthread_row.median_us,
        process_row.median_us,
    );
    let mut spawn = vec![std_row, pinned, pthread_row, process_row];
    spawn.push(create::process(
        "process spawn + wait (/bin/true)",
        args.process_iters,
        "true",
        &[],
    )?);
    // What a Python process pool pays per worker before importing anything (if python3 exists).
    if let Ok(python) = create::process(
        "process spawn + wait (python3 -c pass)",
        (args.process_iters / 10).max(5),
        "python3",
        &["-c", "pass"],
    ) {
        spawn.push(python);
    }
    let mut echo_worker = Command::new(&exe);
    echo_worker.arg("--child-echo");
    let reuse = vec![
        reuse::thread_handoff(args.thread_iters)?,
        reuse::process_handoff(echo_worker, args.thread_iters)?,
    ];
    // Many threads, so that one-off allocations (the thread registry, the channel) are noise.
    let memory = vec![
        memory::threads(args.idle * 16)?,
        memory::processes(&exe, "--child-idle", args.idle)?,
    ];

    if args.json {
        let timings = |rows: &[Timing]| rows.iter().map(timing_json).collect::<Vec<_>>();
        shared::report::print_json(&json!({
            "spawn": timings(&spawn),
            "reuse": timings(&reuse),
            "memory": memory.iter().map(footprint_json).collect::<Vec<_>>(),
            "process_over_thread": process / thread,
            "std_over_pthread_us": thread - bare,
        }));
        return Ok(());
    }
    print_timings("creation", 40, &spawn);
    print_timings("reuse (what a pool pays per task)", 50, &reuse);
    print_memory(&memory);
    print_conclusions(thread, bare, process, &reuse);
    Ok(())
}

fn timing_json(t: &Timing) -> serde_json::Value {
    json!({
        "what": t.what,
        "iterations": t.iterations,
        "median_us": t.median_us,
        "p90_us": t.p90_us,
        "min_us": t.min_us,
    })
}

fn footprint_json(f: &Footprint) -> serde_json::Value {
    json!({
        "what": f.what,
        "count": f.count,
        "rss_kib_each": f.rss_kib_each,
        "pss_kib_each": f.pss_kib_each,
    })
}

/// One table of timings: a title row, then one row per measurement, then a blank line.
fn print_timings(title: &str, width: usize, rows: &[Timing]) {
    println!(
        "{title:<width$} {:>7} {:>11} {:>11} {:>11}",
        "runs", "median", "p90", "min"
    );
    for r in rows {
        println!(
            "{:<width$} {:>7} {:>8.1} µs {:>8.1} µs {:>8.1} µs",
            r.what, r.iterations, r.median_us, r.p90_us, r.min_us
        );
    }
    println!();
}

fn print_memory(memory: &[Footprint]) {
    println!(
        "{:<40} {:>7} {:>14} {:>14}",
        "memory (idle)", "count", "RSS each", "PSS each"
    );
    for m in memory {
        let pss = m
            .pss_kib_each
            .map_or("-".to_owned(), |p| format!("{p:.0} KiB"));
        println!(
            "{:<40} {:>7} {:>10.0} KiB {:>14}",
            m.what, m.count, m.rss_kib_each, pss
        );
    }
    println!();
}

fn print_conclusions(thread: f64, bare: f64, process: f64, reuse: &[Timing]) {
    println!("What it means for a pool:");
    println!(
        "- a process costs {:.0}× a thread to start ({process:.0} µs vs {thread:.1} µs): start workers once, reuse them;",
        process / thread
    );
    println!(
        "- spawning a process per task stays under 1% overhead only for tasks over {:.0} ms;",
        process * 100.0 / 1000.0
    );
    println!(
        "- a bare pthread_create + join takes {bare:.1} µs here, std's spawn {:+.1} µs: std also maps, guards and",
        thread - bare
    );
    println!(
        "  unmaps an alternate signal stack per thread (so a stack overflow is reported, not a bare SIGSEGV):"
    );
    println!(
        "  a few more syscalls, and the unmap makes the kernel flush other cores' TLBs. Reuse threads instead;"
    );
    println!(
        "- a pool pays instead one hand-off per task ({:.1} µs to a thread, {:.1} µs to a process here):",
        reuse[0].median_us, reuse[1].median_us
    );
    println!(
        "  both are wake-ups of a sleeping worker; tasks much shorter than that must be batched;"
    );
    println!(
        "- memory: a thread is nearly free, a process costs its own heap and page tables: size pools to cores, not to tasks."
    );
}
