//! Events and one-time signals: Python's `threading.Event` built on `Mutex<bool>` + `Condvar`
//! (set / clear / wait / wait with timeout), `Barrier`, `OnceLock` / `LazyLock`, and
//! `tokio::sync::Notify` for async code.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Conditions et événements").
//!
//! The `Event` lives in `examples-sync/src/event.rs` (loom checks that a `set()` racing with
//! `wait()` is never lost). The rest is std and tokio.
//!
//! # Concepts
//! - `Event`: a flag you can wait for. `set` wakes every waiter (a broadcast); `clear` re-arms it.
//! - The stop-flag loop: `while !stop.wait_timeout(interval) { tick() }`, Python's
//!   `while not stop.wait(interval):` — a periodic worker that stops *at once* when asked,
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::event::Event;
use examples_sync::table::fmt_duration;
use serde::Serialize;

/// Event (set/clear/wait/timeout), Barrier, OnceLock/LazyLock and tokio Notify, with numbers.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Worker threads waiting on the start event and meeting at the barrier.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Tick of the periodic worker, in milliseconds.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// How long the periodic worker runs before it is stopped, in milliseconds.
    #[arg(long, default_value_t = 100)]
    run_ms: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default, Serialize)]
struct Report {
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

/// Part 1: workers wait for a start event; one `set()` releases all of them.
fn start_event(workers: usize, r: &mut Report) -> anyhow::Result<()> {
    let start = Event::new();
    let released = AtomicUsize::new(0);
    let set_at: OnceLock<Instant> = OnceLock::new();
    let worst = thread::scope(|s| -> anyhow::Result<Duration> {
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
            .collect::<Result<Vec<_>, _>>()
            .context("spawning workers")?;
        thread::sleep(Duration::from_millis(20)); // let them all block in wait()
        // Record the time first, then set: a worker released by set() always finds the time.
        set_at.get_or_init(Instant::now);
        start.set();
        let mut worst = Duration::ZERO;
        for h in handles {
            worst = worst.max(h.join().map_err(|_| anyhow::anyhow!("worker panicked"))?);
        }
        Ok(worst)
    })?;
    r.workers_released = released.load(Ordering::SeqCst);
    r.worst_release_latency_s = worst.as_secs_f64();
    // clear() re-arms it: a new wait with a timeout gives up and returns false.
    start.clear();
    r.timeout_returned_false = !start.wait_timeout(Duration::from_millis(10));
    Ok(())
}

/// Part 2: a periodic worker that stops as soon as the stop event is set.
fn periodic_worker(tick: Duration, run: Duration, r: &mut Report) {
    let stop = Event::new();
    let (ticks, latency) = thread::scope(|s| {
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
    });
    r.ticks = ticks;
    r.stop_latency_s = latency.as_secs_f64();
}

/// Part 3: two phases separated by a barrier.
fn barrier_phases(workers: usize, r: &mut Report) {
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
    r.barrier_leaders = leaders.load(Ordering::SeqCst);
    r.barrier_phase_order_ok = order_ok.load(Ordering::SeqCst) == workers;
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

/// Part 4: `LazyLock` (init closure fixed at the definition) and `OnceLock` (init chosen at the
/// call site, e.g. from command-line arguments).
fn once_init(r: &mut Report) {
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
    r.lazy_inits = LOADS.load(Ordering::SeqCst);
    r.once_lock_value = port.get().copied().unwrap_or(0);
}

/// Part 5: `tokio::sync::Notify`.
fn async_notify(r: &mut Report) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(async {
        let notify = Arc::new(tokio::sync::Notify::new());
        // Sent before anybody waits: notify_one stores one permit, the next waiter consumes it.
        notify.notify_one();
        let received = tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .is_ok();
        r.notify_stored_permit_received = received;

        // notify_waiters wakes the tasks waiting *now* and stores nothing.
        let reached = Arc::new(AtomicUsize::new(0));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(3);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (notify, reached, ready_tx) = (notify.clone(), reached.clone(), ready_tx.clone());
            tasks.spawn(async move {
                // Register as a waiter *before* saying "ready": `enable()` does that without
                // waiting, so the notify_waiters() below cannot slip in before we listen.
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let _ = ready_tx.send(()).await;
                notified.await;
                reached.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(ready_tx);
        for _ in 0..3 {
            ready_rx
                .recv()
                .await
                .context("a waiting task ended early")?;
        }
        notify.notify_waiters();
        // A hang guard: a task that was not waiting yet would never be woken (nothing stored).
        let joined = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(res) = tasks.join_next().await {
                res.context("a waiting task panicked")?;
            }
            anyhow::Ok(())
        })
        .await;
        if let Ok(result) = joined {
            result?;
        }
        r.notify_waiters_reached = reached.load(Ordering::SeqCst);
        anyhow::Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.workers >= 1, "--workers must be at least 1");
    ensure!(args.tick_ms >= 1, "--tick-ms must be at least 1");
    let mut r = Report::default();
    start_event(args.workers, &mut r)?;
    periodic_worker(
        Duration::from_millis(args.tick_ms),
        Duration::from_millis(args.run_ms),
        &mut r,
    );
    barrier_phases(args.workers, &mut r);
    once_init(&mut r);
    async_notify(&mut r)?;

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
