//! Events and one-time signals: Python's `threading.Event` built on `Mutex<bool>` + `Condvar`
//! (set / clear / wait / wait with timeout), `Barrier`, `OnceLock` / `LazyLock`, and
//! `tokio::sync::Notify` for async code.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Conditions et événements").
//!
//! Crates: `tokio = { version = "1", features = ["rt", "sync", "time"] }` (and `crate::event`:
//! copy `src/event.rs` and `src/sync.rs`)
//!
//! # Concepts
//! - `Event`: a flag you can wait for. `set` wakes every waiter (a broadcast); `clear` re-arms it.
//!   loom checks that a `set()` racing with `wait()` is never lost (`tests/loom.rs`).
//! - The stop-flag loop: `while !stop.wait_timeout(interval) { tick() }`, Python's
//!   `while not stop.wait(interval):`, a periodic worker that stops *at once* when asked,
//!   instead of finishing a `sleep(interval)` first.
//! - `Barrier`: N threads meet before the next phase; exactly one is told it is the leader.
//! - `OnceLock` / `LazyLock`: initialise once, from whichever thread comes first, without the
//!   check-then-act race of Python's `if config is None: config = load()`.
//! - `tokio::sync::Notify`: the async wake-up. `notify_one` stores a permit if nobody waits yet,
//!   so a notification sent before `notified().await` is not lost; `notify_waiters` does not.
//!
//! # Run
//! ```text
//! cargo run -p examples-sync --bin event
//! cargo run -p examples-sync --bin event -- --workers 8 --tick-ms 5 --json
//! ```
//!
//! # What to observe
//! - All workers are released by one `set()`, each within microseconds to a millisecond.
//! - The periodic worker ticks about run/tick times and stops right after `set()` (the "stop
//!   latency" is far below one tick), where a `sleep` loop would overrun by up to a full tick.
//! - The barrier: no thread begins phase 2 before all have finished phase 1; one leader.
//! - `LazyLock`: 8 threads race to read the config, `load()` runs exactly once.
//! - `Notify`: the notification sent before the task waits is still received (stored permit).
//!
//! # Exercises
//! 1. Write the periodic worker with `thread::sleep(tick)` and an `AtomicBool`. Measure its stop
//!    latency with `--tick-ms 500`.
//! 2. Make the `Event` auto-reset (like a Win32 auto-reset event): `wait` clears it and only one
//!    waiter passes. Which `notify_*` does `set` need now? Add a loom test.
//! 3. Replace the `Barrier` by a channel: each worker sends "phase 1 done", the leader waits for N
//!    messages then broadcasts. Which is easier to get right with a worker that may fail?
//! 4. Use `tokio::sync::watch` instead of `Notify` to broadcast a "config changed" version number
//!    to several tasks. What does `watch` give that `Notify` does not?

// === Lesson: copy from here ===

/// Threads waiting for one another: an event, a stop flag, a barrier, a one-time initialisation.
mod thread_signals {
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Barrier, LazyLock, OnceLock};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::event::Event;

    /// Workers wait for a start event; one `set()` releases all of them. Returns how many were
    /// released, the slowest one's wake-up latency, and whether a `wait_timeout` after `clear()`
    /// gave up (it must: nobody sets the event again).
    pub fn start_event(workers: usize) -> io::Result<(usize, Duration, bool)> {
        let start = Event::new();
        let released = AtomicUsize::new(0);
        let set_at: OnceLock<Instant> = OnceLock::new();
        let worst = thread::scope(|s| -> io::Result<Duration> {
            let handles = (0..workers)
                .map(|i| {
                    let (start, released, set_at) = (&start, &released, &set_at);
                    thread::Builder::new()
                        .name(format!("worker-{i}"))
                        .spawn_scoped(s, move || {
                            start.wait();
                            released.fetch_add(1, Ordering::SeqCst);
                            set_at.get().map_or(Duration::ZERO, Instant::elapsed)
                        })
                })
                .collect::<io::Result<Vec<_>>>()?;
            thread::sleep(Duration::from_millis(20)); // let them all block in wait()
            // Record the time first, then set: a worker released by set() always finds it.
            set_at.get_or_init(Instant::now);
            start.set();
            let worst = handles
                .into_iter()
                .map(|h| h.join().expect("workers only wait and count"))
                .max();
            Ok(worst.unwrap_or_default())
        })?;
        // clear() re-arms it: a new wait with a timeout gives up and returns false.
        start.clear();
        let gave_up = !start.wait_timeout(Duration::from_millis(10));
        Ok((released.load(Ordering::SeqCst), worst, gave_up))
    }

    /// A periodic worker that stops as soon as the stop event is set, after running for `run`.
    /// Returns its ticks, and how long it took to stop once asked.
    pub fn periodic_worker(tick: Duration, run: Duration) -> (u64, Duration) {
        let stop = Event::new();
        thread::scope(|s| {
            let worker = s.spawn(|| {
                let mut ticks = 0u64;
                // Python: `while not stop.wait(tick): tick()`
                while !stop.wait_timeout(tick) {
                    ticks += 1; // the periodic job: flush a buffer, send a heartbeat, ...
                }
                (ticks, Instant::now())
            });
            thread::sleep(run);
            let asked = Instant::now();
            stop.set();
            let (ticks, stopped) = worker.join().expect("the periodic worker does not panic");
            (ticks, stopped.saturating_duration_since(asked))
        })
    }

    /// Two phases separated by a barrier. Returns the number of leaders (1) and whether every
    /// thread saw all of phase 1 done when it began phase 2.
    pub fn barrier_phases(workers: usize) -> (usize, bool) {
        let barrier = Barrier::new(workers);
        let phase1_done = AtomicUsize::new(0);
        let order_ok = AtomicUsize::new(0);
        let leaders = AtomicUsize::new(0);
        thread::scope(|s| {
            for i in 0..workers {
                let (barrier, phase1_done, order_ok, leaders) =
                    (&barrier, &phase1_done, &order_ok, &leaders);
                s.spawn(move || {
                    thread::sleep(Duration::from_millis(2 * i as u64)); // uneven phase 1
                    phase1_done.fetch_add(1, Ordering::SeqCst);
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst); // e.g. merge the partial results
                    }
                    // Phase 2: everybody must see all of phase 1 finished.
                    if phase1_done.load(Ordering::SeqCst) == workers {
                        order_ok.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        (
            leaders.load(Ordering::SeqCst),
            order_ok.load(Ordering::SeqCst) == workers,
        )
    }

    static LOADS: AtomicUsize = AtomicUsize::new(0);

    /// A global initialised on first use, by whichever thread gets there first, exactly once.
    static CONFIG: LazyLock<Vec<String>> = LazyLock::new(|| {
        LOADS.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(20)); // a slow load: the other threads wait for it
        vec![
            "max_connections=100".to_string(),
            "timeout_s=30".to_string(),
        ]
    });

    /// 8 threads race for `LazyLock` (init closure fixed at the definition) and `OnceLock`
    /// (init chosen at the call site, e.g. from command-line arguments). Returns how many times
    /// the config was loaded (1) and the `OnceLock`'s value (the first caller's).
    pub fn once_init() -> (usize, u64) {
        let port: OnceLock<u64> = OnceLock::new();
        thread::scope(|s| {
            for i in 0..8u64 {
                let port = &port;
                s.spawn(move || {
                    assert_eq!(CONFIG.len(), 2);
                    port.get_or_init(|| 8000 + i); // first caller wins, the others get its value
                });
            }
        });
        (
            LOADS.load(Ordering::SeqCst),
            port.get().copied().unwrap_or(0),
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn one_set_releases_every_worker() {
            let (released, _, gave_up) = start_event(3).unwrap();
            assert_eq!(released, 3);
            assert!(gave_up, "wait_timeout after clear() must give up");
        }

        #[test]
        fn barrier_has_one_leader_and_phases_in_order() {
            assert_eq!(barrier_phases(3), (1, true));
        }

        #[test]
        fn lazy_config_loads_once() {
            let (loads, port) = once_init();
            assert_eq!(loads, 1);
            assert!((8000..8008).contains(&port));
        }

        #[test]
        fn the_periodic_worker_stops_when_asked() {
            // A tick far longer than the test: only `set()` can end the wait (a hang guard).
            let (ticks, _) = periodic_worker(Duration::from_secs(3600), Duration::ZERO);
            assert_eq!(ticks, 0);
        }
    }
}

/// The async wake-up: `tokio::sync::Notify`, with and without a stored permit.
mod async_notify {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::{Notify, mpsc};
    use tokio::task::JoinSet;

    /// Whether a `notify_one()` sent before anyone waits is received (a stored permit), and how
    /// many of 3 waiting tasks one `notify_waiters()` reaches.
    pub async fn notify_demo() -> Result<(bool, usize), tokio::task::JoinError> {
        let notify = Arc::new(Notify::new());
        // Sent before anybody waits: notify_one stores one permit, the next waiter consumes it.
        notify.notify_one();
        let received = tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .is_ok();

        // notify_waiters wakes the tasks waiting *now* and stores nothing.
        let reached = Arc::new(AtomicUsize::new(0));
        let (ready_tx, mut ready_rx) = mpsc::channel::<()>(3);
        let mut tasks = JoinSet::new();
        for _ in 0..3 {
            let (notify, reached, ready_tx) = (notify.clone(), reached.clone(), ready_tx.clone());
            tasks.spawn(async move {
                // Register as a waiter *before* saying "ready": `enable()` does that without
                // waiting, so the notify_waiters() below cannot slip in before we listen.
                let mut notified = std::pin::pin!(notify.notified());
                notified.as_mut().enable();
                let _ = ready_tx.send(()).await;
                notified.await;
                reached.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(ready_tx);
        // Every task says "ready" once; `None` would mean one ended early (then fewer are reached).
        for _ in 0..3 {
            ready_rx.recv().await;
        }
        notify.notify_waiters();
        // A hang guard: a task that was not waiting yet would never be woken (nothing stored).
        let joined = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(res) = tasks.join_next().await {
                res?;
            }
            Ok::<(), tokio::task::JoinError>(())
        })
        .await;
        if let Ok(result) = joined {
            result?;
        }
        Ok((received, reached.load(Ordering::SeqCst)))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stored_permit_and_waiters_are_reached() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            assert_eq!(rt.block_on(notify_demo()).unwrap(), (true, 3));
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::event; // the lesson's `crate::event` (src/event.rs, built on src/sync.rs)
use serde::Serialize;
use shared::cli;
use shared::report::fmt_duration;

/// Event (set/clear/wait/timeout), Barrier, OnceLock/LazyLock and tokio Notify, with numbers.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Worker threads waiting on the start event and meeting at the barrier (1 to 256).
    #[arg(long, default_value_t = 4, value_parser = cli::usize_in(1, 256))]
    workers: usize,
    /// Tick of the periodic worker, in milliseconds (1 to 10,000).
    #[arg(long, default_value_t = 10, value_parser = cli::u64_in(1, 10_000))]
    tick_ms: u64,
    /// How long the periodic worker runs before it is stopped, in milliseconds (0 to 60,000).
    #[arg(long, default_value_t = 100, value_parser = cli::u64_in(0, 60_000))]
    run_ms: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Every figure of the tour (the `--json` output).
#[derive(Debug, Default, Serialize)]
struct SignalsReport {
    workers_released: usize,
    worst_release_latency_s: f64,
    timeout_returned_false: bool,
    ticks: u64,
    stop_latency_s: f64,
    barrier_leaders: usize,
    barrier_phase_order_ok: bool,
    lazy_inits: usize,
    once_lock_value: u64,
    notify_stored_permit_received: bool,
    notify_waiters_reached: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut r = SignalsReport::default();
    let (released, worst, gave_up) =
        thread_signals::start_event(args.workers).context("spawning the workers")?;
    (r.workers_released, r.timeout_returned_false) = (released, gave_up);
    r.worst_release_latency_s = worst.as_secs_f64();
    let (ticks, stop_latency) = thread_signals::periodic_worker(
        Duration::from_millis(args.tick_ms),
        Duration::from_millis(args.run_ms),
    );
    (r.ticks, r.stop_latency_s) = (ticks, stop_latency.as_secs_f64());
    (r.barrier_leaders, r.barrier_phase_order_ok) = thread_signals::barrier_phases(args.workers);
    (r.lazy_inits, r.once_lock_value) = thread_signals::once_init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("building the tokio runtime")?;
    (r.notify_stored_permit_received, r.notify_waiters_reached) = rt
        .block_on(async_notify::notify_demo())
        .context("a waiting task panicked")?;

    ensure!(
        r.workers_released == args.workers,
        "a worker missed the start event"
    );
    ensure!(
        r.barrier_leaders == 1 && r.barrier_phase_order_ok,
        "barrier broken"
    );
    ensure!(
        r.lazy_inits == 1,
        "LazyLock ran its initializer {} times",
        r.lazy_inits
    );

    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let d = |s: f64| fmt_duration(Duration::from_secs_f64(s));
    println!(
        "1. Event (src/event.rs): {} workers waiting on one start event",
        args.workers
    );
    println!(
        "   set() released {}/{} workers; slowest woke {} after set()",
        r.workers_released,
        args.workers,
        d(r.worst_release_latency_s)
    );
    println!(
        "   after clear(): wait_timeout(10 ms) returned {}",
        !r.timeout_returned_false
    );
    println!(
        "2. Periodic worker: `while !stop.wait_timeout({} ms)`",
        args.tick_ms
    );
    println!(
        "   {} ticks in {} ms; stopped {} after set() (a sleep loop: up to {} ms)",
        r.ticks,
        args.run_ms,
        d(r.stop_latency_s),
        args.tick_ms
    );
    println!("3. Barrier: {} threads, uneven phase 1", args.workers);
    println!(
        "   leaders: {} (exactly one); every thread saw all of phase 1 done: {}",
        r.barrier_leaders, r.barrier_phase_order_ok
    );
    println!("4. LazyLock / OnceLock: 8 threads race for a slow global config");
    println!(
        "   load() ran {} time(s); OnceLock port = {} (the first caller's value)",
        r.lazy_inits, r.once_lock_value
    );
    println!("5. tokio::sync::Notify");
    println!(
        "   notify_one() before anyone waits -> permit stored and received: {}",
        r.notify_stored_permit_received
    );
    println!(
        "   notify_waiters() woke {} of 3 waiting tasks",
        r.notify_waiters_reached
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--workers", "0"],
            ["--tick-ms", "0"],
            ["--tick-ms", "18446744073709551615"],
            ["--run-ms", "18446744073709551615"],
            ["--run-ms", "-1"],
            ["--workers", "NaN"],
        ] {
            let err = Args::try_parse_from(["event", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
