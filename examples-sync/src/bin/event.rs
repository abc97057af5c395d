//! Events and one-time signals: Python's `threading.Event` built on `Mutex<bool>` + `Condvar`
//! (set / clear / wait / wait with timeout), `threading.Timer`, `Barrier`, `OnceLock` /
//! `LazyLock`, and for async code an event on `tokio::sync::watch` beside `Notify`.
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
//!   `while not stop.wait(interval):`, a periodic worker that stops *at once* when asked.
//! - `Timer`: a thread that waits on an event for the delay, then runs the action unless
//!   `cancel()` set the event first: how CPython builds `threading.Timer`.
//! - `Barrier`: N threads meet before the next phase; exactly one is told it is the leader.
//! - `OnceLock` / `LazyLock`: initialise once, from whichever thread comes first, without the
//!   check-then-act race of Python's `if config is None: config = load()` (`--python` counts it).
//! - Async: `asyncio.Event` is a `watch::channel(false)` (`async_event`): the state stays set for
//!   every waiter until `clear()`. `tokio::sync::Notify` is a wake-up, not an event: no set/clear
//!   state, one stored permit at most (`notify_one` before anyone waits), used by one waiter;
//!   `notify_waiters` reaches only the tasks already waiting.
//!
//! # Run
//! ```text
//! cargo run -p examples-sync --bin event
//! cargo run -p examples-sync --bin event -- --workers 8 --tick-ms 5 --json
//! cargo run -p examples-sync --bin event -- --python   # + threading.Event, Timer, asyncio.Event
//! ```
//!
//! # What to observe
//! - All workers are released by one `set()`, each within microseconds to a millisecond.
//! - The periodic worker stops right after `set()` (far below one tick), where a `sleep` loop
//!   would overrun by up to a full tick.
//! - The barrier: no thread begins phase 2 before all have finished phase 1; one leader.
//! - `LazyLock`: 8 threads race to read the config, `load()` runs exactly once (Python's naive
//!   version: 8 times).
//! - The async event lets all 3 waiting tasks through; one `notify_one` lets 1 through.
//! - A cancelled hour-long timer ends at once, its action never run.
//!
//! # Exercises
//! 1. Write the periodic worker with `thread::sleep(tick)` and an `AtomicBool`. Measure its stop
//!    latency with `--tick-ms 500`.
//! 2. Checked: build `Event` yourself, with `wait_timeout` (`cargo run -p shared --bin exercises
//!    -- check sync/02`: loom, stress, watchdog; `notify_one` is the trap).
//! 3. Make the `Event` auto-reset (like a Win32 auto-reset event): `wait` clears it and only one
//!    waiter passes. Which `notify_*` does `set` need now?
//! 4. Add `Timer::reset()` (restart the delay) without a second thread. What does the waiting
//!    loop need to re-check?

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

/// Python's `threading.Timer`: run a function after a delay on its own thread, unless cancelled
/// first. CPython builds it on an `Event` (`finished.wait(interval)`), and so does this one.
mod timer {
    use std::io;
    use std::sync::Arc;
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use crate::event::Event;

    /// A started timer. As in Python, dropping the handle does not stop it: call `cancel`.
    pub struct Timer {
        cancelled: Arc<Event>,
        thread: JoinHandle<bool>,
    }

    /// `threading.Timer(after, action).start()`.
    pub fn start_timer(
        after: Duration,
        action: impl FnOnce() + Send + 'static,
    ) -> io::Result<Timer> {
        let cancelled = Arc::new(Event::new());
        let thread = thread::Builder::new().name("timer".into()).spawn({
            let cancelled = Arc::clone(&cancelled);
            move || {
                // `wait_timeout` returns true when `cancel()` set the event before the delay.
                if cancelled.wait_timeout(after) {
                    return false;
                }
                action();
                true
            }
        })?;
        Ok(Timer { cancelled, thread })
    }

    impl Timer {
        /// Python's `cancel()`: stops a timer still waiting (at once, not at the end of the
        /// delay). Returns whether the action ran anyway (it had already started).
        pub fn cancel(self) -> bool {
            self.cancelled.set();
            self.join()
        }

        /// Waits for the timer's thread; returns whether the action ran.
        pub fn join(self) -> bool {
            self.thread.join().unwrap_or(false) // a panicking action counts as not run
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::{AtomicBool, Ordering};

        #[test]
        fn a_timer_fires_and_a_cancelled_one_does_not() {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&ran);
            let fired = start_timer(Duration::ZERO, move || flag.store(true, Ordering::SeqCst));
            assert!(fired.unwrap().join() && ran.load(Ordering::SeqCst));
            // An hour-long timer: only `cancel` can end this test (a hang guard if it fails).
            let late = start_timer(Duration::from_secs(3600), || panic!("cancelled timer ran"));
            assert!(!late.unwrap().cancel());
        }
    }
}

/// `asyncio.Event` for tasks: a `watch::channel(false)`. `tokio::sync::Notify` alone is not an
/// event: it has no set/clear state, and stores at most one permit, which one waiter consumes.
mod async_event {
    use std::time::Duration;

    use tokio::sync::{Notify, watch};

    /// set / clear / is_set / wait / wait with timeout, for async tasks: every waiter sees the
    /// flag, until `clear()`.
    pub struct AsyncEvent {
        flag: watch::Sender<bool>,
    }

    impl AsyncEvent {
        pub fn new() -> Self {
            AsyncEvent {
                flag: watch::Sender::new(false),
            }
        }
        pub fn set(&self) {
            self.flag.send_replace(true); // stores the value even with no receiver yet
        }
        pub fn clear(&self) {
            self.flag.send_replace(false);
        }
        pub fn is_set(&self) -> bool {
            *self.flag.borrow()
        }
        pub async fn wait(&self) {
            let mut rx = self.flag.subscribe();
            // Err only if the sender is gone, and `self` owns it: it cannot be while we wait.
            let _ = rx.wait_for(|set| *set).await;
        }
        /// `False` means we gave up, like `asyncio.wait_for(event.wait(), t)` timing out.
        pub async fn wait_timeout(&self, timeout: Duration) -> bool {
            tokio::time::timeout(timeout, self.wait()).await.is_ok()
        }
    }

    /// What the event and `Notify` do with the same story: set before three tasks wait, then
    /// cleared. Returns (event waiters released of 3, a wait after `clear()` gave up,
    /// `Notify` waiters released of 3 by one `notify_one()` sent before they wait).
    pub async fn event_vs_notify() -> (usize, bool, usize) {
        let patience = Duration::from_millis(50);
        let event = AsyncEvent::new();
        event.set(); // before anybody waits: the state stays
        let mut released = 0;
        for _ in 0..3 {
            released += usize::from(event.wait_timeout(patience).await);
        }
        event.clear();
        let gave_up = !event.is_set() && !event.wait_timeout(patience).await;

        let notify = Notify::new();
        notify.notify_one(); // one stored permit, consumed by the first waiter only
        let mut notified = 0;
        for _ in 0..3 {
            notified += usize::from(
                tokio::time::timeout(patience, notify.notified())
                    .await
                    .is_ok(),
            );
        }
        (released, gave_up, notified)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn an_event_stays_set_a_notify_permit_is_used_once() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            // `timeout` polls the wait before the clock: a set event passes whatever the load.
            assert_eq!(rt.block_on(event_vs_notify()), (3, true, 1));
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use anyhow::{Context, ensure};
use clap::Parser;
use examples_sync::event; // the lesson's `crate::event` (src/event.rs, built on src/sync.rs)
use examples_sync::python_peer;
use examples_sync::table::Table;
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
    /// Also run the course's Python (python/event.py: `threading.Event`, `Barrier`, `Timer`,
    /// a one-time init, `asyncio.Event`) with the same parameters, side by side.
    #[arg(long)]
    python: bool,
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
    timer_fired: bool,
    timer_cancelled_ran: bool,
    /// The `watch<bool>` event, set before 3 tasks wait: how many pass.
    async_event_released: usize,
    async_event_gave_up_after_clear: bool,
    /// One `notify_one()` before 3 tasks wait: how many pass (1: a single stored permit).
    notify_permit_released: usize,
    /// `--python`: the recipe's JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<serde_json::Value>,
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
    (
        r.async_event_released,
        r.async_event_gave_up_after_clear,
        r.notify_permit_released,
    ) = rt.block_on(async_event::event_vs_notify());
    let fired = timer::start_timer(Duration::ZERO, || {}).context("spawning a timer")?;
    let late = timer::start_timer(Duration::from_secs(3600), || {}).context("spawning a timer")?;
    r.timer_fired = fired.join();
    r.timer_cancelled_ran = late.cancel();

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

    if args.python {
        r.python = Some(python_peer::run_recipe(
            "event",
            &[
                "--workers".into(),
                args.workers.to_string(),
                "--tick-ms".into(),
                args.tick_ms.to_string(),
                "--run-ms".into(),
                args.run_ms.to_string(),
            ],
        )?);
    }
    let agreement = r.python.as_ref().map(|py| same_results(&r, py));
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_report(&args, &r);
        if let Some(py) = &r.python {
            print_python(&r, py);
        }
    }
    if let Some(Err(why)) = agreement {
        anyhow::bail!("the Python and Rust results differ: {why}");
    }
    Ok(())
}

/// What must agree: every worker released, the timeout after `clear()`, one barrier leader, one
/// load under the lock, the timers, and the async event's behaviour.
fn same_results(r: &SignalsReport, py: &serde_json::Value) -> anyhow::Result<()> {
    let pairs: [(&str, serde_json::Value); 9] = [
        ("workers_released", r.workers_released.into()),
        ("timeout_returned_false", r.timeout_returned_false.into()),
        ("barrier_leaders", r.barrier_leaders.into()),
        ("barrier_phase_order_ok", r.barrier_phase_order_ok.into()),
        ("lazy_inits", r.lazy_inits.into()),
        ("timer_fired", r.timer_fired.into()),
        ("timer_cancelled_ran", r.timer_cancelled_ran.into()),
        ("async_event_released", r.async_event_released.into()),
        (
            "async_event_gave_up_after_clear",
            r.async_event_gave_up_after_clear.into(),
        ),
    ];
    for (key, rust) in pairs {
        ensure!(py[key] == rust, "{key}: Rust {rust}, Python {}", py[key]);
    }
    Ok(())
}

fn print_python(r: &SignalsReport, py: &serde_json::Value) {
    let d = |s: f64| fmt_duration(Duration::from_secs_f64(s));
    let num = |k: &str| py[k].as_f64().unwrap_or(f64::NAN);
    let mut table = Table::new(["", "Rust", "Python"]);
    table.row([
        "workers released by one set()".to_string(),
        r.workers_released.to_string(),
        py["workers_released"].to_string(),
    ]);
    table.row([
        "slowest wake-up after set()".to_string(),
        d(r.worst_release_latency_s),
        d(num("worst_release_latency_s")),
    ]);
    table.row([
        "periodic worker stopped after set()".to_string(),
        d(r.stop_latency_s),
        d(num("stop_latency_s")),
    ]);
    table.row([
        "barrier leaders (of all threads)".to_string(),
        r.barrier_leaders.to_string(),
        py["barrier_leaders"].to_string(),
    ]);
    table.row([
        "8 threads load a lazy config: loads".to_string(),
        format!("{} (LazyLock)", r.lazy_inits),
        format!(
            "{} naively (`if config is None`), {} under a lock",
            py["naive_lazy_inits"], py["lazy_inits"]
        ),
    ]);
    table.row([
        "Timer: fired / cancelled one ran".to_string(),
        format!("{} / {}", r.timer_fired, r.timer_cancelled_ran),
        format!("{} / {}", py["timer_fired"], py["timer_cancelled_ran"]),
    ]);
    table.row([
        "async event set before 3 waits: passed".to_string(),
        format!("{} (watch<bool>)", r.async_event_released),
        format!("{} (asyncio.Event)", py["async_event_released"]),
    ]);
    table.row([
        "async event after clear(): gave up".to_string(),
        r.async_event_gave_up_after_clear.to_string(),
        py["async_event_gave_up_after_clear"].to_string(),
    ]);
    println!(
        "\nRust against {}:",
        py["interpreter"].as_str().unwrap_or("Python")
    );
    table.print();
}

fn print_report(args: &Args, r: &SignalsReport) {
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
    println!(
        "   one notify_one() before 3 tasks wait: {} passed (one stored permit, no set state)",
        r.notify_permit_released
    );
    println!("6. An async Event: watch::channel(false) (python: asyncio.Event)");
    println!(
        "   set() before 3 tasks wait: {} passed; after clear(), a wait gave up: {}",
        r.async_event_released, r.async_event_gave_up_after_clear
    );
    println!("7. Timer (python: threading.Timer): a thread waiting on an Event");
    println!(
        "   a 0 ms timer fired: {}; an hour-long timer, cancelled: its action ran = {}",
        r.timer_fired, r.timer_cancelled_ran
    );
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
