//! Find a blocking call inside async tasks with the tools people use: tokio-metrics'
//! `TaskMonitor` (slow polls, busy time, scheduling delay) and tokio-console, on a seeded service
//! run with the bug (`--bug blocking`) and with its fix (`--fixed`).
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** (objective: "déboguer et
//! optimiser du code concurrent"; the asyncio trap of a blocking call in a coroutine, found with
//! instruments instead of guessed; `event-loop` shows the trap itself).
//!
//! Crates: `tokio = { version = "1", features = ["rt-multi-thread", "macros", "time", "sync"] }`,
//! `tokio-metrics = { version = "0.5", default-features = false }`
//!
//! # Concepts
//! - A poll should take microseconds. A synchronous call inside `poll` (a blocking client,
//!   `std::fs` on a slow disk, a sync database driver, a password hash) holds the worker thread:
//!   every other task that is ready waits for it. Nothing fails; the service is only slow.
//! - `TaskMonitor::instrument` wraps the futures you spawn and counts, on stable tokio: polls,
//!   *slow* polls (over a threshold, 1 ms here), time spent in polls, and *scheduling delay*
//!   (woken → polled: how long a ready task waited for a worker). A heartbeat task that only
//!   sleeps 1 ms is the canary: its scheduling delay is the runtime's responsiveness.
//! - The runtime's busy ratio (`RuntimeMetrics::worker_total_busy_duration`, stable) says whether
//!   the workers are saturated; with the bug they are, doing nothing useful.
//! - The fix moves the call to `spawn_blocking` (a separate pool made for it); the task yields.
//! - tokio-console shows the same per task, live, but needs a `--cfg tokio_unstable` build.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --bin diagnose-async                  # bug, then fix
//! cargo run --release -p examples-async --bin diagnose-async -- --bug blocking [--fixed] --json
//! # tokio-console (`cargo install tokio-console` once), its own target dir:
//! RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/tokio-unstable cargo run --release \
//!   -p examples-async --features console --bin diagnose-async -- --bug blocking --console \
//!   --requests 2000 --block-ms 1500        # then `tokio-console` in a second terminal
//! ```
//!
//! # What to observe
//! - With the bug: about one slow poll per request, each as long as `--block-ms`; the workers
//!   are busy nearly all the time, and the heartbeat waits milliseconds to be polled.
//! - With the fix: no slow poll (a stray one when the OS preempts a worker), a busy ratio of a
//!   few percent, a heartbeat polled within microseconds, and several times the requests/s.
//! - tokio-console, Tasks view: the handlers' Busy column is almost their whole life and their
//!   poll-time histogram sits at `--block-ms`; with `--block-ms 1500` the warnings line reads
//!   "tasks have never yielded (threshold 1000ms)".
//!
//! # Exercises
//! 1. Replace the sleep in `lookup_blocking` by a CPU loop of the same length: what changes in
//!    the figures, what does not?
//! 2. Run with `--workers 8`: the bug hides (more workers to block). Which figure still shows it?
//! 3. Add `TaskMonitor::intervals()` and print the slow polls of every second: a live alert.
//! 4. Fix with `block_in_place` instead of `spawn_blocking`: compare, and say when it is allowed.

// === Lesson: copy from here ===

/// The service under diagnosis: a request handler with a synchronous call inside.
mod service {
    use std::io;
    use std::time::Duration;

    /// How the handler performs its synchronous look-up.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Lookup {
        /// The bug: called inside the task, so inside `poll`, on a runtime worker thread.
        Inline,
        /// The fix: handed to `spawn_blocking`'s pool; the task yields until it is done.
        Offloaded,
    }

    /// A synchronous call that takes `cost`: stands for a blocking HTTP client, `std::fs` on a
    /// slow disk, a sync database driver. (A sleep, so its length does not depend on the CPU.)
    pub fn lookup_blocking(id: u64, cost: Duration) -> u64 {
        std::thread::sleep(cost);
        id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
    }

    /// One request: look the record up, then write the reply (real async I/O, here a timer).
    pub async fn handle_request(
        id: u64,
        lookup: Lookup,
        cost: Duration,
        reply_io: Duration,
    ) -> io::Result<u64> {
        let record = match lookup {
            // Compiles, passes every functional test, and holds the worker for `cost`.
            Lookup::Inline => lookup_blocking(id, cost),
            // A JoinError means the closure panicked: report it as this request's failure.
            Lookup::Offloaded => tokio::task::spawn_blocking(move || lookup_blocking(id, cost))
                .await
                .map_err(io::Error::other)?,
        };
        tokio::time::sleep(reply_io).await;
        Ok(record)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn both_lookups_answer_the_same() {
            let cost = Duration::from_millis(1);
            let inline = handle_request(7, Lookup::Inline, cost, Duration::ZERO).await;
            let offloaded = handle_request(7, Lookup::Offloaded, cost, Duration::ZERO).await;
            assert_eq!(inline.expect("inline"), offloaded.expect("offloaded"));
        }
    }
}

/// The lens: the handlers and a heartbeat under `TaskMonitor`, the runtime's busy time.
mod watch {
    use std::future::Future;
    use std::io;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::Semaphore;
    use tokio::task::JoinSet;
    use tokio::time::MissedTickBehavior;
    use tokio_metrics::{TaskMetrics, TaskMonitor};

    use super::service::{Lookup, handle_request};

    /// A poll longer than this is "slow": a healthy poll takes microseconds.
    pub const SLOW_POLL: Duration = Duration::from_millis(1);
    /// A ready task that waits longer than this for a worker had a "long" scheduling delay.
    pub const LONG_DELAY: Duration = Duration::from_millis(1);
    /// The heartbeat's period.
    const HEARTBEAT: Duration = Duration::from_millis(1);

    /// The load: `requests` requests, at most `concurrency` in flight.
    #[derive(Clone, Copy, Debug)]
    pub struct LoadPlan {
        pub requests: u64,
        pub concurrency: usize,
        pub lookup: Lookup,
        pub lookup_cost: Duration,
        pub reply_io: Duration,
    }

    /// What a `TaskMonitor` saw of one group of tasks.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct TaskFigures {
        pub polls: u64,
        pub slow_polls: u64,
        pub mean_slow_poll: Duration,
        pub time_in_polls: Duration,
        pub mean_scheduling_delay: Duration,
        pub long_delays: u64,
    }

    impl From<&TaskMetrics> for TaskFigures {
        fn from(m: &TaskMetrics) -> Self {
            TaskFigures {
                polls: m.total_poll_count,
                slow_polls: m.total_slow_poll_count,
                mean_slow_poll: m.mean_slow_poll_duration(),
                time_in_polls: m.total_poll_duration,
                mean_scheduling_delay: m.mean_scheduled_duration(),
                long_delays: m.total_long_delay_count,
            }
        }
    }

    /// One run of the load, as the instruments saw it.
    #[derive(Clone, Copy, Debug)]
    pub struct LoadReport {
        pub handlers: TaskFigures,
        pub heartbeat: TaskFigures,
        /// The runtime's workers: time busy over time available (stable `RuntimeMetrics`).
        pub busy_ratio: f64,
        pub completed: u64,
        pub elapsed: Duration,
        /// XOR of every answer: the bug and the fix must compute the same.
        pub checksum: u64,
        pub stopped_early: bool,
    }

    fn monitor() -> TaskMonitor {
        let mut builder = TaskMonitor::builder();
        builder
            .with_slow_poll_threshold(SLOW_POLL)
            .with_long_delay_threshold(LONG_DELAY);
        builder.build()
    }

    /// Runs the load on the current runtime (call from inside it) until done or `shutdown`.
    pub async fn run_load(
        plan: LoadPlan,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<LoadReport> {
        let handlers = monitor();
        let heartbeat = monitor();
        let beat = tokio::spawn(heartbeat.instrument(async {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
            }
        }));
        let runtime = tokio::runtime::Handle::current().metrics();
        let workers = runtime.num_workers();
        let busy = || -> Duration {
            (0..workers)
                .map(|w| runtime.worker_total_busy_duration(w))
                .sum()
        };
        let busy_before = busy();
        let start = Instant::now();

        let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        let (mut completed, mut checksum, mut stopped_early) = (0, 0, false);
        let mut reap = |done: Result<io::Result<u64>, tokio::task::JoinError>| -> io::Result<()> {
            checksum ^= done.map_err(io::Error::other)??;
            completed += 1;
            Ok(())
        };
        tokio::pin!(shutdown);
        for id in 0..plan.requests {
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
                () = &mut shutdown => { stopped_early = true; break; }
            };
            in_flight.spawn(handlers.instrument(async move {
                let _permit = permit;
                handle_request(id, plan.lookup, plan.lookup_cost, plan.reply_io).await
            }));
            while let Some(done) = in_flight.try_join_next() {
                reap(done)?;
            }
        }
        while let Some(done) = in_flight.join_next().await {
            reap(done)?;
        }
        let elapsed = start.elapsed();
        beat.abort();
        let busy_ratio =
            (busy() - busy_before).as_secs_f64() / (elapsed.as_secs_f64() * workers as f64);
        Ok(LoadReport {
            handlers: TaskFigures::from(&handlers.cumulative()),
            heartbeat: TaskFigures::from(&heartbeat.cumulative()),
            busy_ratio,
            completed,
            elapsed,
            checksum,
            stopped_early,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn plan(lookup: Lookup) -> LoadPlan {
            LoadPlan {
                requests: 20,
                concurrency: 10,
                lookup,
                lookup_cost: Duration::from_millis(5),
                reply_io: Duration::from_millis(1),
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_monitor_counts_every_blocking_poll_as_slow() {
            let bug = run_load(plan(Lookup::Inline), std::future::pending())
                .await
                .expect("bug");
            // Each request sleeps 5 ms inside one poll: at least one slow poll per request.
            assert!(bug.handlers.slow_polls >= 20, "{bug:?}");
            assert!(
                bug.handlers.mean_slow_poll >= Duration::from_millis(5),
                "{bug:?}"
            );
            let fixed = run_load(plan(Lookup::Offloaded), std::future::pending())
                .await
                .expect("fixed");
            assert_eq!((bug.completed, fixed.completed), (20, 20));
            assert_eq!(bug.checksum, fixed.checksum);
            // Preemption by the OS can make a stray poll slow; a blocking call makes all of them.
            assert!(fixed.handlers.slow_polls <= 5, "{fixed:?}");
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use clap::{Parser, ValueEnum};
use shared::cli;
use watch::{LoadPlan, LoadReport, run_load};

/// The pathologies this example plants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Bug {
    /// A synchronous look-up inside every request task (the fix: `spawn_blocking`).
    Blocking,
}

/// Plant a blocking call in an async service and find it with tokio-metrics (and tokio-console).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Run only this pathology's buggy version (with `--fixed`: only its repaired version).
    /// Without `--bug` nor `--fixed`, both versions run and a before/after table is printed.
    #[arg(long, value_enum)]
    bug: Option<Bug>,
    /// Run the repaired version.
    #[arg(long)]
    fixed: bool,
    /// Requests to serve.
    #[arg(long, default_value_t = 400, value_parser = cli::u64_in(1, 1_000_000))]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50, value_parser = cli::usize_in(1, 10_000))]
    concurrency: usize,
    /// How long the synchronous look-up takes, in milliseconds.
    #[arg(long, default_value_t = 5, value_parser = cli::u64_in(1, 10_000))]
    block_ms: u64,
    /// How long writing a reply waits (async), in milliseconds.
    #[arg(long, default_value_t = 2, value_parser = cli::u64_in(0, 10_000))]
    io_ms: u64,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2, value_parser = cli::usize_in(1, 64))]
    workers: usize,
    /// Serve tokio-console's agent on 127.0.0.1:6669 (a `console` + `tokio_unstable` build).
    #[arg(long)]
    console: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.console {
        start_console()?;
    }
    let variants: Vec<(&str, service::Lookup)> = match (args.bug, args.fixed) {
        (Some(Bug::Blocking), false) => vec![("bug", service::Lookup::Inline)],
        (_, true) => vec![("fixed", service::Lookup::Offloaded)],
        (None, false) => vec![
            ("bug", service::Lookup::Inline),
            ("fixed", service::Lookup::Offloaded),
        ],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    let reports = runtime.block_on(async {
        let stop = shared::shutdown::cancel_on_ctrl_c();
        let mut reports = Vec::new();
        for (name, lookup) in variants {
            if stop.is_cancelled() {
                break;
            }
            let plan = LoadPlan {
                requests: args.requests,
                concurrency: args.concurrency,
                lookup,
                lookup_cost: Duration::from_millis(args.block_ms),
                reply_io: Duration::from_millis(args.io_ms),
            };
            if !args.json {
                eprintln!(
                    "{name}: {} requests, {} in flight, look-up {} ms ({lookup:?}), {} workers ...",
                    args.requests, args.concurrency, args.block_ms, args.workers
                );
            }
            let report = run_load(plan, stop.clone().cancelled_owned()).await?;
            reports.push((name, report));
        }
        anyhow::Ok(reports)
    })?;
    // Blocking-pool threads may still be sleeping in a look-up after a Ctrl-C: do not wait.
    runtime.shutdown_background();

    if args.json {
        let runs: Vec<_> = reports.iter().map(|(n, r)| report_json(n, r)).collect();
        let json = serde_json::json!({
            "bug": "blocking",
            "requests": args.requests,
            "block_ms": args.block_ms,
            "workers": args.workers,
            "slow_poll_threshold_us": watch::SLOW_POLL.as_micros() as u64,
            "runs": runs,
        });
        println!("{json}");
    } else {
        print_table(&reports);
    }
    if let [(_, bug), (_, fixed)] = reports.as_slice()
        && bug.completed == fixed.completed
        && bug.checksum != fixed.checksum
    {
        anyhow::bail!("the bug and the fix computed different answers");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rate(r: &LoadReport) -> f64 {
    r.completed as f64 / r.elapsed.as_secs_f64().max(1e-9)
}

fn report_json(name: &str, r: &LoadReport) -> serde_json::Value {
    serde_json::json!({
        "variant": name,
        "completed": r.completed,
        "stopped_early": r.stopped_early,
        "elapsed_ms": ms(r.elapsed),
        "requests_per_s": rate(r),
        "handler_polls": r.handlers.polls,
        "slow_polls": r.handlers.slow_polls,
        "mean_slow_poll_ms": ms(r.handlers.mean_slow_poll),
        "time_in_handler_polls_ms": ms(r.handlers.time_in_polls),
        "busy_ratio": r.busy_ratio,
        "heartbeat_mean_scheduling_delay_us": r.heartbeat.mean_scheduling_delay.as_secs_f64() * 1e6,
        "heartbeat_long_delays": r.heartbeat.long_delays,
        "heartbeat_polls": r.heartbeat.polls,
        "checksum": r.checksum,
    })
}

fn print_table(reports: &[(&str, LoadReport)]) {
    println!(
        "\nlens: tokio-metrics TaskMonitor (slow poll > {} ms) and RuntimeMetrics",
        ms(watch::SLOW_POLL)
    );
    print!("{:<48}", "figure");
    for (name, _) in reports {
        print!("{name:>14}");
    }
    println!();
    type Cell = fn(&LoadReport) -> String;
    let rows: [(&str, Cell); 8] = [
        ("handlers: polls", |r| r.handlers.polls.to_string()),
        ("handlers: slow polls", |r| {
            r.handlers.slow_polls.to_string()
        }),
        ("handlers: mean slow poll", |r| {
            format!("{:.2} ms", ms(r.handlers.mean_slow_poll))
        }),
        ("runtime: busy ratio (busy / available)", |r| {
            format!("{:.0} %", r.busy_ratio * 100.0)
        }),
        ("heartbeat: mean scheduling delay", |r| {
            format!(
                "{:.0} µs",
                r.heartbeat.mean_scheduling_delay.as_secs_f64() * 1e6
            )
        }),
        ("heartbeat: delays > 1 ms", |r| {
            r.heartbeat.long_delays.to_string()
        }),
        ("requests completed", |r| r.completed.to_string()),
        ("requests/s", |r| format!("{:.0}", rate(r))),
    ];
    for (label, cell) in rows {
        print!("{label:<48}");
        for (_, r) in reports {
            print!("{:>14}", cell(r));
        }
        println!();
    }
    if let [(_, bug), (_, fixed)] = reports {
        println!(
            "\nthe fix: {:.1}x the requests/s; slow polls {} -> {}; heartbeat delay {:.0} -> {:.0} µs",
            rate(fixed) / rate(bug).max(1e-9),
            bug.handlers.slow_polls,
            fixed.handlers.slow_polls,
            bug.heartbeat.mean_scheduling_delay.as_secs_f64() * 1e6,
            fixed.heartbeat.mean_scheduling_delay.as_secs_f64() * 1e6,
        );
    }
}

/// tokio-console's agent: only a build with the `console` feature *and* `--cfg tokio_unstable`
/// has the task instrumentation it reads, so any other build says how to rebuild.
#[cfg(all(feature = "console", tokio_unstable))]
fn start_console() -> anyhow::Result<()> {
    console_subscriber::init();
    eprintln!("tokio-console agent on 127.0.0.1:6669: run `tokio-console` in another terminal");
    Ok(())
}

#[cfg(not(all(feature = "console", tokio_unstable)))]
fn start_console() -> anyhow::Result<()> {
    // A usage error, like a bad flag: exit status 2 and the command that works.
    eprintln!(
        "--console needs a build with the `console` feature and tokio_unstable:\n  \
         RUSTFLAGS=\"--cfg tokio_unstable\" CARGO_TARGET_DIR=target/tokio-unstable cargo run \
         --release -p examples-async --features console --bin diagnose-async -- --bug blocking \
         --console"
    );
    std::process::exit(2);
}
