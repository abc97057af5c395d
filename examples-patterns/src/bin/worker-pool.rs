//! Worker pool: e-commerce orders (validate → charge → confirmation e-mail) on a fixed set of
//! threads, with retries per step, an overload warning and a graceful stop.
//!
//! Course section **8.4 Patterns de concurrence — Worker Pool** (the course's e-commerce case:
//! "traitement de commandes et envoi d'e-mails"). A storefront takes orders, with a flash-sale
//! burst in the middle, and submits them to the pool; payments go to a fake gateway that
//! sometimes fails, confirmations over TCP to a fake SMTP-like server on `127.0.0.1:0`.
//!
//! Crates: `crossbeam-channel = "0.5"`
//!
//! # Concepts
//! - **A fixed pool** of `--workers` threads sharing one bounded queue: the pool size caps the
//!   concurrency against the gateway and the mail server, whatever the load.
//! - **Retry the step, not the order**, with a limit and exponential backoff: retrying the whole
//!   order after the e-mail failed would charge the customer twice. The gateway's ledger is
//!   checked at the end: no order is ever charged twice.
//! - **Permanent vs transient failures**: an invalid order fails at once; a "try again" is retried.
//! - **Monitoring**: a monitor thread samples the queue depth and warns when it passes
//!   `--warn-depth` (the workers are not keeping up), and again when it recovers.
//! - **Graceful stop** (Ctrl-C, SIGTERM or `--stop-after`): no new orders; each worker finishes
//!   the order in its hands; orders still queued are *reported* as not processed.
//! - **Shutdown lives in `Drop`**: if the submitting thread panics, unwinding drops the pool,
//!   which stops and joins its threads. No thread is left holding the process alive.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin worker-pool                       # 300 orders, 8 workers
//! cargo run -p examples-patterns --bin worker-pool -- --workers 32       # no more overload warning
//! cargo run -p examples-patterns --bin worker-pool -- --workers 2 --stop-after 1   # graceful stop
//! cargo run -p examples-patterns --bin worker-pool -- --fail-rate 0.5 --max-attempts 2
//! cargo run -p examples-patterns --bin worker-pool -- --json
//! cargo run -p examples-patterns --bin worker-pool -- --python   # + ThreadPoolExecutor
//! ```
//!
//! # What to observe
//! - During the burst (the middle third of the orders arrives 4× faster) the queue grows past
//!   the threshold and the monitor warns; after it, the queue drains and the monitor says so.
//! - Orders per worker are even: idle workers pull from the same queue.
//! - With `--stop-after` or Ctrl-C, in-flight orders complete (no half-charged order) and the
//!   rest are listed as not processed; the accounting line still balances.
//! - `--python` runs the course's `ThreadPoolExecutor` on the same orders and seeded failures:
//!   the same counts at about the same speed (I/O-bound), but its queue is unbounded.
//!
//! # Exercises
//! 1. Make the queue unbounded and the burst 20× faster. What grows, and what would a real shop
//!    do instead (reject at the door with "try later", autoscale workers)?
//! 2. Add a per-order deadline: an order older than 2 s when a worker takes it is failed as
//!    "expired" instead of being processed late.
//! 3. Move the e-mail step to its own smaller pool (a second queue). Why is that better when the
//!    mail server is slow but payments are fast?
//! 4. Make the backoff add random jitter. Why do synchronized retries hurt a recovering server?
//! 5. Remove `impl Drop for WorkerPool` and make the storefront panic: what keeps running?
//! 6. Checked: charge each order once under duplicates, retries and crashes (an idempotency
//!    key reserved before the charge: `cargo run -p shared --bin exercises -- check patterns/05`).

// === Lesson: copy from here ===

/// One order's way through the shop: validate → charge → e-mail, each step retried on its own.
mod orders {
    use std::num::NonZeroU32;
    use std::thread;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    pub struct Order {
        pub id: u64,
        pub email: String,
        pub amount_cents: u64,
        pub items: u32,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Step {
        Validate,
        Charge,
        Email,
    }

    /// What happened to one order.
    #[derive(Debug, Clone, PartialEq)]
    pub enum OrderStatus {
        Completed {
            retries: u32,
        },
        Failed {
            step: Step,
            reason: String,
            retries: u32,
        },
    }

    impl OrderStatus {
        pub fn retries(&self) -> u32 {
            match self {
                OrderStatus::Completed { retries } | OrderStatus::Failed { retries, .. } => {
                    *retries
                }
            }
        }
    }

    /// The payment service, shared by every worker (hence `Sync`).
    pub trait PaymentGateway: Send + Sync {
        /// Charges the order once. `attempt` counts from 1. A real gateway also takes an
        /// idempotency key (the order id): a charge retried after a lost reply is then not
        /// taken twice.
        fn charge(&self, order: &Order, attempt: u32) -> Result<(), String>;
    }

    /// Sends confirmations. Each worker owns one (`&mut self`): it may keep a connection open.
    pub trait Mailer: Send {
        fn send(&mut self, order: &Order) -> Result<(), String>;
    }

    /// How many times a step is tried, and the first pause between tries (then doubled).
    /// `NonZeroU32`: "try zero times" cannot be expressed, so it cannot be configured.
    #[derive(Debug, Clone, Copy)]
    pub struct RetryPolicy {
        pub attempts: NonZeroU32,
        pub first_backoff: Duration,
    }

    /// Permanent failures: retrying cannot fix them.
    pub fn validate(order: &Order) -> Result<(), String> {
        if !order.email.contains('@') {
            return Err(format!("invalid e-mail {:?}", order.email));
        }
        if order.items == 0 || order.amount_cents == 0 {
            return Err("empty order".into());
        }
        Ok(())
    }

    /// Runs `step(attempt)` until it succeeds or the attempts are used up, sleeping between
    /// tries; counts the retries in `retries`.
    pub fn with_retries(
        policy: RetryPolicy,
        retries: &mut u32,
        mut step: impl FnMut(u32) -> Result<(), String>,
    ) -> Result<(), String> {
        let max = policy.attempts.get();
        let mut delay = policy.first_backoff;
        let mut attempt = 1;
        loop {
            match step(attempt) {
                Ok(()) => return Ok(()),
                Err(e) if attempt == max => return Err(format!("{e} (after {max} attempts)")),
                Err(_) => {
                    *retries += 1;
                    thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    /// One order through the three steps. Each step is retried on its own, so a failed e-mail
    /// never causes a second charge.
    pub fn process_order(
        order: &Order,
        gateway: &dyn PaymentGateway,
        mailer: &mut dyn Mailer,
        policy: RetryPolicy,
    ) -> OrderStatus {
        let mut retries = 0;
        let failed = |step, reason, retries| OrderStatus::Failed {
            step,
            reason,
            retries,
        };
        if let Err(reason) = validate(order) {
            return failed(Step::Validate, reason, retries); // permanent: no retry
        }
        if let Err(reason) = with_retries(policy, &mut retries, |a| gateway.charge(order, a)) {
            return failed(Step::Charge, reason, retries);
        }
        if let Err(reason) = with_retries(policy, &mut retries, |_| mailer.send(order)) {
            // Charged but not confirmed: a real shop queues the e-mail for later, not a refund.
            return failed(Step::Email, reason, retries);
        }
        OrderStatus::Completed { retries }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::collections::HashMap;
        use std::sync::Mutex;

        /// Fails the first `failures` attempts of every order, then charges (once, it checks).
        struct FlakyGateway {
            failures: u32,
            ledger: Mutex<HashMap<u64, u32>>,
        }

        impl PaymentGateway for FlakyGateway {
            fn charge(&self, order: &Order, attempt: u32) -> Result<(), String> {
                if attempt <= self.failures {
                    return Err("503".into());
                }
                *self.ledger.lock().unwrap().entry(order.id).or_insert(0) += 1;
                Ok(())
            }
        }

        /// Fails every other send; records what it delivered.
        #[derive(Default)]
        struct FlakyMailer {
            calls: u32,
            sent: Vec<u64>,
        }

        impl Mailer for FlakyMailer {
            fn send(&mut self, order: &Order) -> Result<(), String> {
                self.calls += 1;
                if self.calls % 2 == 1 {
                    return Err("451 try again later".into());
                }
                self.sent.push(order.id);
                Ok(())
            }
        }

        fn order(id: u64, email: &str) -> Order {
            Order {
                id,
                email: email.into(),
                amount_cents: 100,
                items: 1,
            }
        }

        fn policy(attempts: u32) -> RetryPolicy {
            RetryPolicy {
                attempts: NonZeroU32::new(attempts).unwrap(),
                first_backoff: Duration::from_millis(1),
            }
        }

        fn gateway(failures: u32) -> FlakyGateway {
            FlakyGateway {
                failures,
                ledger: Mutex::default(),
            }
        }

        #[test]
        fn invalid_orders_fail_without_retry() {
            let mut mailer = FlakyMailer::default();
            let status = process_order(&order(1, "nobody"), &gateway(0), &mut mailer, policy(3));
            assert!(matches!(
                status,
                OrderStatus::Failed {
                    step: Step::Validate,
                    retries: 0,
                    ..
                }
            ));
            assert!(mailer.sent.is_empty());
        }

        #[test]
        fn transient_failures_are_retried_and_never_double_charge() {
            let (gw, mut mailer) = (gateway(2), FlakyMailer::default());
            for id in 0..10 {
                let status = process_order(&order(id, "a@b.c"), &gw, &mut mailer, policy(3));
                // 2 charge retries + 1 e-mail retry.
                assert_eq!(status, OrderStatus::Completed { retries: 3 });
            }
            assert_eq!(mailer.sent, (0..10).collect::<Vec<_>>());
            assert!(gw.ledger.lock().unwrap().values().all(|&n| n == 1));
        }

        #[test]
        fn retries_stop_at_the_limit() {
            let (mut retries, mut calls) = (0, 0);
            let r = with_retries(policy(3), &mut retries, |_| {
                calls += 1;
                Err("nope".into())
            });
            assert_eq!((calls, retries), (3, 2));
            assert!(r.unwrap_err().contains("after 3 attempts"));
            let status = process_order(
                &order(2, "a@b.c"),
                &gateway(5),
                &mut FlakyMailer::default(),
                policy(3),
            );
            assert!(matches!(
                status,
                OrderStatus::Failed {
                    step: Step::Charge,
                    ..
                }
            ));
        }
    }
}

/// Watching a queue: its depth every so often, and a warning when it passes a threshold.
mod queue_monitor {
    use crossbeam_channel::{Receiver, RecvTimeoutError};
    use std::time::{Duration, Instant};

    /// One look at the queue by the monitor, with the threshold crossings.
    pub struct QueueSample {
        pub depth: usize,
        pub since_start: Duration,
        /// `Some(true)`: the depth just passed the threshold; `Some(false)`: back under half.
        pub overloaded: Option<bool>,
    }

    /// Samples the queue depth every `every` until `done`'s sender is dropped; reports each
    /// sample, with the crossings of `warn`. Returns (warnings, max depth).
    pub fn monitor_loop<T>(
        gauge: &Receiver<T>,
        done: &Receiver<()>,
        every: Duration,
        warn: usize,
        mut on_sample: impl FnMut(QueueSample),
    ) -> (u64, usize) {
        let started = Instant::now();
        let (mut overloaded, mut warnings, mut max_depth) = (false, 0, 0);
        while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(every) {
            let depth = gauge.len(); // a snapshot, stale at once: fine for a gauge
            max_depth = max_depth.max(depth);
            let crossed = if !overloaded && depth > warn {
                warnings += 1;
                Some(true)
            } else if overloaded && depth <= warn / 2 {
                Some(false) // hysteresis: no warning storm around the threshold
            } else {
                None
            };
            overloaded = crossed.unwrap_or(overloaded);
            let since_start = started.elapsed();
            on_sample(QueueSample {
                depth,
                since_start,
                overloaded: crossed,
            });
        }
        (warnings, max_depth)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crossbeam_channel::{bounded, unbounded};

        #[test]
        fn warns_when_the_queue_passes_the_threshold_and_says_when_it_recovers() {
            let (tx, rx) = unbounded();
            (0..10).for_each(|i| tx.send(i).unwrap());
            let (done_tx, done_rx) = bounded::<()>(0);
            let mut done_tx = Some(done_tx);
            let mut seen = Vec::new();
            let every = Duration::from_millis(1);
            let (warnings, max) = monitor_loop(&rx, &done_rx, every, 4, |s| {
                seen.push((s.depth, s.overloaded));
                for _ in 0..3 {
                    let _ = rx.try_recv(); // the workers take 3 orders
                }
                if seen.len() == 4 {
                    done_tx.take(); // the pool is finished: the monitor ends
                }
            });
            let expected = [(10, Some(true)), (7, None), (4, None), (1, Some(false))];
            assert_eq!(seen, expected, "warn above 4, recover at 2 or less");
            assert_eq!((warnings, max), (1, 10));
        }
    }
}

/// The pool: N worker threads, one bounded queue, a monitor, a stop that finishes what was
/// started and reports what was not.
mod pool {
    use super::orders::{Mailer, Order, OrderStatus, PaymentGateway, RetryPolicy, process_order};
    use super::queue_monitor::{QueueSample, monitor_loop};
    use crossbeam_channel::{Receiver, SendTimeoutError, Sender, bounded};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    pub struct PoolConfig {
        pub workers: usize,
        /// Orders that may wait in the queue: beyond it, `submit` blocks (backpressure).
        pub queue: usize,
        pub retry: RetryPolicy,
        /// The monitor warns when more orders than this are waiting.
        pub warn_depth: usize,
        pub monitor_every: Duration,
    }

    /// When to stop taking orders: a flag (set by the Ctrl-C/SIGTERM handler) or a deadline.
    #[derive(Clone)]
    pub struct StopSignal {
        pub flag: Arc<AtomicBool>,
        pub deadline: Option<Instant>,
    }

    impl StopSignal {
        pub fn requested(&self) -> bool {
            self.flag.load(Ordering::Acquire) || self.deadline.is_some_and(|d| Instant::now() >= d)
        }
    }

    pub struct OrderResult {
        pub id: u64,
        pub worker: usize,
        pub status: OrderStatus,
        /// From entering the queue to done.
        pub latency: Duration,
    }

    pub struct PoolReport {
        pub results: Vec<OrderResult>,
        /// Accepted but never started: a real system leaves them in a durable queue.
        pub not_processed: Vec<u64>,
        pub overload_warnings: u64,
        pub max_queue_depth: usize,
    }

    struct Queued {
        order: Order,
        at: Instant,
    }

    /// Dropping `done` ends the monitor: no flag to forget, even while unwinding.
    struct MonitorThread {
        done: Sender<()>,
        /// Yields (overload warnings, max queue depth).
        thread: JoinHandle<(u64, usize)>,
    }

    pub struct WorkerPool {
        /// `Option` so that closing the queue is `take()`: workers see it closed once drained.
        queue: Option<Sender<Queued>>,
        /// The pool's own receiver: the monitor's depth gauge, and what is left at the end.
        leftover: Receiver<Queued>,
        workers: Vec<JoinHandle<Vec<OrderResult>>>,
        monitor: Option<MonitorThread>,
        stop: StopSignal,
        /// Set by `Drop` without `finish` (a panic): workers stop after their current order.
        halt: Arc<AtomicBool>,
    }

    impl WorkerPool {
        /// Starts the workers and the monitor. `on_sample` runs on the monitor thread.
        pub fn start<G: PaymentGateway + 'static, M: Mailer + 'static>(
            cfg: &PoolConfig,
            gateway: Arc<G>,
            make_mailer: impl Fn(usize) -> M,
            stop: StopSignal,
            on_sample: impl FnMut(QueueSample) + Send + 'static,
        ) -> std::io::Result<WorkerPool> {
            let (tx, rx) = bounded::<Queued>(cfg.queue);
            let (done, done_rx) = bounded::<()>(0);
            let (gauge, every, warn) = (rx.clone(), cfg.monitor_every, cfg.warn_depth);
            let monitor = move || monitor_loop(&gauge, &done_rx, every, warn, on_sample);
            let thread = thread::Builder::new()
                .name("monitor".into())
                .spawn(monitor)?;
            // From here on, a `?` drops a pool that stops and joins what was started.
            let mut pool = WorkerPool {
                queue: Some(tx),
                leftover: rx,
                workers: Vec::new(),
                monitor: Some(MonitorThread { done, thread }),
                stop,
                halt: Arc::default(),
            };
            for id in 0..cfg.workers {
                let (queue, gateway, mailer) =
                    (pool.leftover.clone(), Arc::clone(&gateway), make_mailer(id));
                let (stop, halt, retry) = (pool.stop.clone(), Arc::clone(&pool.halt), cfg.retry);
                let stopping = move || stop.requested() || halt.load(Ordering::Acquire);
                let work = move || worker_loop(id, &queue, &*gateway, mailer, retry, &stopping);
                pool.workers.push(
                    thread::Builder::new()
                        .name(format!("worker-{id:02}"))
                        .spawn(work)?,
                );
            }
            Ok(pool)
        }

        /// Queues an order, blocking while the queue is full (backpressure reaches the
        /// storefront). Gives the order back if a stop is requested meanwhile: once stopping,
        /// workers take nothing new, so a full queue would stay full forever.
        pub fn submit(&self, order: Order) -> Result<(), Order> {
            let queue = self
                .queue
                .as_ref()
                .expect("the queue is only closed by finish or Drop");
            let mut item = Queued {
                order,
                at: Instant::now(),
            };
            loop {
                match queue.send_timeout(item, Duration::from_millis(20)) {
                    Ok(()) => return Ok(()),
                    Err(SendTimeoutError::Timeout(back)) if !self.stop.requested() => item = back,
                    Err(SendTimeoutError::Timeout(back) | SendTimeoutError::Disconnected(back)) => {
                        return Err(back.order);
                    }
                }
            }
        }

        /// No more orders: close the queue, let the workers finish (everything queued, unless
        /// a stop was requested), join them and the monitor, and account for every order.
        pub fn finish(mut self) -> PoolReport {
            drop(self.queue.take());
            let mut results = Vec::new();
            let mut panicked = None;
            for w in self.workers.drain(..) {
                match w.join() {
                    Ok(r) => results.extend(r),
                    Err(payload) => panicked = panicked.or(Some(payload)),
                }
            }
            let (overload_warnings, max_queue_depth) = self.stop_monitor();
            if let Some(payload) = panicked {
                std::panic::resume_unwind(payload); // a bug in a service: not ours to hide
            }
            let not_processed = self.leftover.try_iter().map(|q| q.order.id).collect();
            PoolReport {
                results,
                not_processed,
                overload_warnings,
                max_queue_depth,
            }
        }

        fn stop_monitor(&mut self) -> (u64, usize) {
            self.monitor.take().map_or((0, 0), |m| {
                drop(m.done);
                m.thread.join().unwrap_or((0, 0))
            })
        }
    }

    /// One worker: take an order, process it, repeat, until the queue is closed and drained or
    /// `stopping()`. Checked before taking an order, never in the middle of one: an order that
    /// was started is finished (charged AND confirmed, or failed with a reason).
    fn worker_loop(
        id: usize,
        queue: &Receiver<Queued>,
        gateway: &dyn PaymentGateway,
        mut mailer: impl Mailer,
        retry: RetryPolicy,
        stopping: &dyn Fn() -> bool,
    ) -> Vec<OrderResult> {
        let mut results = Vec::new();
        while !stopping() {
            let Ok(Queued { order, at }) = queue.recv() else {
                break; // closed and drained
            };
            let status = process_order(&order, gateway, &mut mailer, retry);
            let latency = at.elapsed();
            results.push(OrderResult {
                id: order.id,
                worker: id,
                status,
                latency,
            });
        }
        results
    }

    impl Drop for WorkerPool {
        /// Runs when the pool is dropped without `finish`, typically while a panic unwinds the
        /// submitting thread: stop the workers after their current order and join everything.
        /// Every wait in a worker is bounded (the queue wakes on close, the services have
        /// timeouts), so these joins are too.
        fn drop(&mut self) {
            self.halt.store(true, Ordering::Release);
            drop(self.queue.take());
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
            self.stop_monitor();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::num::NonZeroU32;
        use std::panic::{AssertUnwindSafe, catch_unwind};
        use std::sync::atomic::AtomicUsize;
        use std::sync::{Mutex, mpsc};

        /// Charges once per token sent on its gate: the test decides when a charge completes.
        struct GatedGateway(Mutex<mpsc::Receiver<()>>);
        impl PaymentGateway for GatedGateway {
            fn charge(&self, _: &Order, _: u32) -> Result<(), String> {
                let gate = self.0.lock().unwrap();
                gate.recv().map_err(|_| "gate closed".to_string())
            }
        }

        /// Counts the mailers alive: one per running worker.
        struct CountedMailer(Arc<AtomicUsize>);
        impl Mailer for CountedMailer {
            fn send(&mut self, _: &Order) -> Result<(), String> {
                Ok(())
            }
        }
        impl Drop for CountedMailer {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }

        /// A pool whose charges wait for tokens on the returned sender.
        fn start(
            workers: usize,
            live: &Arc<AtomicUsize>,
            stop: StopSignal,
        ) -> (WorkerPool, mpsc::Sender<()>) {
            let cfg = PoolConfig {
                workers,
                queue: 100,
                retry: RetryPolicy {
                    attempts: NonZeroU32::MIN,
                    first_backoff: Duration::ZERO,
                },
                warn_depth: 4,
                monitor_every: Duration::from_millis(5),
            };
            let (tokens, gate) = mpsc::channel();
            let make = |_| {
                live.fetch_add(1, Ordering::SeqCst);
                CountedMailer(Arc::clone(live))
            };
            let gateway = Arc::new(GatedGateway(Mutex::new(gate)));
            (
                WorkerPool::start(&cfg, gateway, make, stop, |_| {}).unwrap(),
                tokens,
            )
        }

        fn order(id: u64) -> Order {
            Order {
                id,
                email: "a@b.c".into(),
                amount_cents: 1,
                items: 1,
            }
        }

        fn never() -> StopSignal {
            StopSignal {
                flag: Arc::default(),
                deadline: None,
            }
        }

        #[test]
        fn every_order_is_processed_once() {
            let live = Arc::new(AtomicUsize::new(0));
            let (pool, tokens) = start(3, &live, never());
            for id in 0..50 {
                tokens.send(()).unwrap();
                pool.submit(order(id)).unwrap();
            }
            let report = pool.finish();
            let mut ids: Vec<u64> = report.results.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..50).collect::<Vec<_>>());
            assert!(report.results.iter().all(|r| r.status.retries() == 0));
            assert!(report.not_processed.is_empty());
            assert_eq!(live.load(Ordering::SeqCst), 0, "every worker has exited");
        }

        #[test]
        fn a_stop_finishes_the_order_in_hand_and_reports_the_queued_ones() {
            let (live, stop) = (Arc::new(AtomicUsize::new(0)), never());
            let (pool, tokens) = start(1, &live, stop.clone());
            for id in 0..10 {
                pool.submit(order(id)).unwrap();
            }
            // The worker holds order 0 (waiting on the gateway), or has not taken it yet.
            stop.flag.store(true, Ordering::Release);
            tokens.send(()).unwrap();
            let report = pool.finish();
            assert!(
                report.results.len() <= 1,
                "nothing new is started after a stop"
            );
            assert_eq!(
                report.results.len() + report.not_processed.len(),
                10,
                "every order accounted for"
            );
        }

        #[test]
        fn a_panic_in_the_submitting_thread_stops_and_joins_every_worker() {
            let live = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = mpsc::channel();
            let l = Arc::clone(&live);
            thread::spawn(move || {
                let unwound = catch_unwind(AssertUnwindSafe(|| {
                    let (pool, tokens) = start(4, &l, never());
                    for id in 0..8 {
                        let _ = tokens.send(());
                        let _ = pool.submit(order(id));
                    }
                    panic!("a bug in the storefront");
                }));
                tx.send(unwound.is_err()).unwrap();
            });
            // A hang guard, not a timing assertion: without `Drop`, this never returns.
            let panicked = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the pool hung");
            assert!(panicked);
            assert_eq!(live.load(Ordering::SeqCst), 0, "a worker outlived the pool");
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail};
use clap::Parser;
use examples_patterns::python_peer;
use orders::{Mailer, Order, OrderStatus, PaymentGateway, RetryPolicy, Step};
use pool::{PoolConfig, PoolReport, StopSignal, WorkerPool};
use queue_monitor::QueueSample;
use serde::Serialize;
use shared::cli;
use shared::report::{fmt_duration, print_json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// E-commerce order processing with a fixed pool of worker threads.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Orders the storefront receives.
    #[arg(long, default_value_t = 300, value_parser = cli::u64_in(0, 1_000_000))]
    orders: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 8, value_parser = cli::usize_in(1, 512))]
    workers: usize,
    /// Orders per second arriving at the storefront (4× during the burst).
    #[arg(long, default_value_t = 250.0, value_parser = cli::f64_in(0.1, 1e6))]
    rate: f64,
    /// Queue capacity between the storefront and the workers.
    #[arg(long, default_value_t = 256, value_parser = cli::usize_in(1, 1_000_000))]
    queue: usize,
    /// Warn when more orders than this are waiting.
    #[arg(long, default_value_t = 40, value_parser = cli::usize_in(0, 1_000_000))]
    warn_depth: usize,
    /// Probability that a payment or an e-mail attempt fails transiently.
    #[arg(long, default_value_t = 0.15, value_parser = cli::probability)]
    fail_rate: f64,
    /// Attempts per step before the order is failed (the backoff doubles: 10 tries wait 5 s).
    #[arg(long, default_value_t = 3, value_parser = cli::u32_in(1, 10))]
    max_attempts: u32,
    /// Stop taking orders after this many seconds (in-flight orders finish).
    #[arg(long, value_parser = cli::seconds_in(0.0, 86_400.0))]
    stop_after: Option<Duration>,
    /// Seed for orders and failures.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/worker_pool.py: a `ThreadPoolExecutor`) on the same
    /// orders and failures, against a mail server of its own, and print both in one table.
    #[arg(long)]
    python: bool,
}

/// Simulated latency of the payment gateway per call.
const CHARGE_LATENCY: Duration = Duration::from_millis(15);
/// First retry delay; doubled after each failed attempt.
const BACKOFF: Duration = Duration::from_millis(5);

fn main() -> Result<()> {
    let args = Args::parse();
    let python = args.python.then(|| python_peer::python_or_exit(&[]));
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let gateway = Arc::new(FakeGateway {
        seed: args.seed,
        fail_rate: args.fail_rate,
        ledger: Mutex::new(HashMap::new()),
    });
    let mail = MailServer::start(args.seed, args.fail_rate)?;
    if !args.json {
        println!(
            "{} orders at {:.0}/s (x4 during the burst), {} workers, queue {}, mail server on {}",
            args.orders, args.rate, args.workers, args.queue, mail.addr
        );
    }
    let start = Instant::now();
    let cfg = PoolConfig {
        workers: args.workers,
        queue: args.queue,
        retry: RetryPolicy {
            attempts: NonZeroU32::new(args.max_attempts).context("--max-attempts is at least 1")?,
            first_backoff: BACKOFF,
        },
        warn_depth: args.warn_depth,
        monitor_every: Duration::from_millis(100),
    };
    let stop = StopSignal {
        flag: stop,
        deadline: args.stop_after.map(|d| start + d),
    };
    let mail_addr = mail.addr;
    let pool = WorkerPool::start(
        &cfg,
        Arc::clone(&gateway),
        |_| TcpMailer {
            addr: mail_addr,
            conn: None,
        },
        stop.clone(),
        overload_printer(args.warn_depth, args.json),
    )
    .context("starting the worker pool")?;

    let submitted = storefront(&pool, &args, &stop);
    let report = pool.finish();
    let wall = start.elapsed();
    let mails = mail.shutdown();
    let ledger = gateway.ledger.lock().unwrap_or_else(|p| p.into_inner());
    let books = OrderBooks::new(
        &report,
        args.orders,
        submitted,
        &ledger,
        &mails,
        args.workers,
        wall,
    );
    // A stop by Ctrl-C or SIGTERM skips the Python run: the user asked to stop.
    let python = match python.filter(|_| !stop.flag.load(Ordering::Acquire)) {
        Some(py) => Some(python_run(&py, &args)?),
        None => None,
    };
    if args.json {
        let mut out = serde_json::to_value(&books).context("serializing the books")?;
        if let Some(py) = &python {
            out["python"] = py.clone();
        }
        print_json(&out);
    } else {
        print_books(&books, &report.not_processed, wall);
        if let Some(py) = &python {
            print_python_table(&books, py, args.workers);
        }
    }
    if let Some(py) = &python {
        python_agrees(&books, py)?;
    }
    if !books.accounted || books.double_charges > 0 || !books.mails_match_completed {
        bail!(
            "an invariant failed: accounted={}, double charges={}, mails match={}",
            books.accounted,
            books.double_charges,
            books.mails_match_completed
        );
    }
    Ok(())
}

/// The storefront: seeded orders arrive at `--rate`, 4× faster for the middle third (the flash
/// sale), until they run out or a stop is requested. Returns how many the pool accepted.
fn storefront(pool: &WorkerPool, args: &Args, stop: &StopSignal) -> u64 {
    let mut submitted = 0;
    let mut next = Instant::now();
    for order in make_orders(args.orders, args.seed) {
        if stop.requested() {
            break;
        }
        let burst = (args.orders / 3..2 * args.orders / 3).contains(&order.id);
        next += Duration::from_secs_f64(1.0 / (args.rate * if burst { 4.0 } else { 1.0 }));
        // In short slices: at a slow rate, Ctrl-C must not wait for the next order.
        while let Some(d) = next.checked_duration_since(Instant::now()) {
            if stop.requested() {
                return submitted;
            }
            thread::sleep(d.min(Duration::from_millis(50)));
        }
        if pool.submit(order).is_err() {
            break; // stopping: an order never accepted is not counted as submitted
        }
        submitted += 1;
    }
    submitted
}

/// The monitor's observer: prints the threshold crossings with the process's CPU and memory.
fn overload_printer(warn_depth: usize, json: bool) -> impl FnMut(QueueSample) + Send + 'static {
    let mut sampler = shared::monitor::Sampler::new();
    let limits = shared::monitor::Thresholds::default_for_machine(1024);
    move |s: QueueSample| {
        let process = sampler.sample(); // every time, so CPU% covers the last interval only
        let t = s.since_start.as_secs_f64();
        match s.overloaded {
            _ if json => {}
            Some(true) => eprintln!(
                "[{t:5.2}s] WARNING overload: {} orders waiting > {warn_depth} (cpu {:.0}%, rss {} MiB){}",
                s.depth,
                process.cpu_percent,
                process.rss_kib / 1024,
                limits
                    .check(&process)
                    .map_or(String::new(), |m| format!("; {m}"))
            ),
            Some(false) => eprintln!("[{t:5.2}s] recovered: {} orders waiting", s.depth),
            None => {}
        }
    }
}

fn make_orders(n: u64, seed: u64) -> impl Iterator<Item = Order> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(move |id| {
        // ~3% of orders are invalid: a typo in the address, or an empty basket.
        let bad = rng.random_range(0..100);
        Order {
            id,
            email: if bad == 0 {
                format!("customer{id}.example.com")
            } else {
                format!("customer{id}@example.com")
            },
            items: if bad == 1 || bad == 2 {
                0
            } else {
                rng.random_range(1..6)
            },
            amount_cents: rng.random_range(500..50_000),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The fake services: a payment gateway and a mail server (a shop has real ones).
// ---------------------------------------------------------------------------------------------

/// A deterministic coin: "does attempt `attempt` of `what` for order `id` fail?". Seeded, so a
/// run can be replayed, and different for every attempt, so retries can succeed.
fn flaky(seed: u64, what: u64, id: u64, attempt: u32, p: f64) -> bool {
    let x = shared::work::cpu_task(
        seed ^ what.rotate_left(17) ^ id.rotate_left(31) ^ u64::from(attempt),
        2,
    );
    ((x >> 11) as f64 / (1u64 << 53) as f64) < p
}

/// Slow, sometimes unavailable, and keeping a ledger of charges so the run can prove that no
/// order was charged twice.
struct FakeGateway {
    seed: u64,
    fail_rate: f64,
    /// order id → successful charges. Locked briefly per call, never across the latency.
    ledger: Mutex<HashMap<u64, u32>>,
}

impl PaymentGateway for FakeGateway {
    fn charge(&self, order: &Order, attempt: u32) -> Result<(), String> {
        thread::sleep(CHARGE_LATENCY); // the network round trip
        if flaky(self.seed, 1, order.id, attempt, self.fail_rate) {
            return Err("503 gateway unavailable".into());
        }
        *self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(order.id)
            .or_insert(0) += 1;
        Ok(())
    }
}

/// A fake SMTP-like mail server: one line per message, `MAIL <id> <email>`, answered with
/// `250 ok` or (transiently) `451 try again later`. One thread per connection: the workers
/// keep their connection open, so there are at most `--workers` of them.
struct MailServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u64>>>,
    accept: Option<thread::JoinHandle<()>>,
}

impl MailServer {
    fn start(seed: u64, fail_rate: f64) -> Result<MailServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the mail server")?;
        let addr = listener.local_addr().context("mail server address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (Arc::clone(&stop), Arc::clone(&received));
        let accept = thread::Builder::new()
            .name("mail-server".into())
            .spawn(move || {
                // Per-id attempt counter, so the failure coin differs on each retry.
                let attempts = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
                for conn in listener.incoming() {
                    if s.load(Ordering::Acquire) {
                        break; // woken by `shutdown`'s connection
                    }
                    let Ok(conn) = conn else { continue };
                    let (r, attempts) = (Arc::clone(&r), Arc::clone(&attempts));
                    // Errors on one connection end that connection only, never the server.
                    let _ = thread::Builder::new()
                        .name("mail-conn".into())
                        .spawn(move || serve_mail(conn, seed, fail_rate, &r, &attempts));
                }
            })
            .context("spawn the mail server")?;
        Ok(MailServer {
            addr,
            stop,
            received,
            accept: Some(accept),
        })
    }

    /// Stop accepting and return the ids of the messages received.
    fn shutdown(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Release);
        // `accept` blocks: wake it with one last connection, then it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn serve_mail(
    conn: TcpStream,
    seed: u64,
    fail_rate: f64,
    received: &Mutex<Vec<u64>>,
    attempts: &Mutex<HashMap<u64, u32>>,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    for line in BufReader::new(conn).lines() {
        let line = line?;
        let mut parts = line.split_whitespace();
        let reply = match (
            parts.next(),
            parts.next().and_then(|id| id.parse::<u64>().ok()),
            parts.next(),
        ) {
            (Some("MAIL"), Some(id), Some(email)) if email.contains('@') => {
                let attempt = {
                    let mut a = attempts.lock().unwrap_or_else(|p| p.into_inner());
                    let n = a.entry(id).or_insert(0);
                    *n += 1;
                    *n
                };
                if flaky(seed, 2, id, attempt, fail_rate) {
                    "451 try again later"
                } else {
                    received.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                    "250 ok"
                }
            }
            _ => "500 syntax error",
        };
        out.write_all(format!("{reply}\n").as_bytes())?;
    }
    Ok(()) // the client closed the connection
}

/// A worker's connection to the mail server, opened on first use and reopened after an error.
struct TcpMailer {
    addr: SocketAddr,
    conn: Option<(BufReader<TcpStream>, TcpStream)>,
}

impl Mailer for TcpMailer {
    fn send(&mut self, order: &Order) -> Result<(), String> {
        let result = self.try_send(order);
        if result.is_err() {
            self.conn = None; // do not reuse a connection in an unknown state
        }
        result
    }
}

impl TcpMailer {
    fn try_send(&mut self, order: &Order) -> Result<(), String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            let w = s.try_clone().map_err(|e| e.to_string())?;
            self.conn = Some((BufReader::new(s), w));
        }
        let (r, w) = self.conn.as_mut().expect("connected just above");
        // One `write_all` per request line, and TCP_NODELAY (set at connect): `writeln!` on a
        // raw socket issues several small writes, and Nagle's algorithm + delayed ACKs then add
        // ~40 ms to every request/reply round trip. A classic, invisible latency bug.
        w.write_all(format!("MAIL {} {}\n", order.id, order.email).as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut reply = String::new();
        r.read_line(&mut reply).map_err(|e| format!("read: {e}"))?;
        match reply.trim_end() {
            r if r.starts_with("250") => Ok(()),
            r => Err(r.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// --python: the course's ThreadPoolExecutor on the same orders
// ---------------------------------------------------------------------------------------------

/// Writes the same seeded orders for python/worker_pool.py, starts a mail server of its own
/// (same seed, same failures), runs the recipe, and adds what that server received.
fn python_run(py: &shared::python::Python, args: &Args) -> Result<serde_json::Value> {
    let dir = tempfile::tempdir().context("a temporary folder for the orders")?;
    let path = dir.path().join("orders.json");
    let orders: Vec<serde_json::Value> = make_orders(args.orders, args.seed)
        .map(|o| {
            serde_json::json!({
                "id": o.id, "email": o.email, "items": o.items, "amount_cents": o.amount_cents,
            })
        })
        .collect();
    std::fs::write(&path, serde_json::to_vec(&orders)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let mail = MailServer::start(args.seed, args.fail_rate)?;
    let mut a = vec![
        path.display().to_string(),
        format!("--mail-addr={}", mail.addr),
        format!("--workers={}", args.workers),
        format!("--rate={}", args.rate),
        format!("--fail-rate={}", args.fail_rate),
        format!("--max-attempts={}", args.max_attempts),
        format!("--seed={}", args.seed),
    ];
    if let Some(d) = args.stop_after {
        a.push(format!("--stop-after={}", d.as_secs_f64()));
    }
    let out = python_peer::run_recipe(py, "worker_pool", &a);
    let mails = mail.shutdown();
    let mut out = out?;
    out["mails_received"] = serde_json::json!(mails.len());
    Ok(out)
}

/// Seeded failures per (order, attempt): the same orders end the same way in both languages,
/// whatever the timing. Compared when neither run was stopped early.
fn python_agrees(b: &OrderBooks, py: &serde_json::Value) -> Result<()> {
    let field = |k: &str| python_peer::u64_field(py, k);
    if field("double_charges")? > 0 {
        bail!("the Python version charged an order twice: {py}");
    }
    if field("mails_received")? != field("completed")? {
        bail!("the Python version's mails do not match its completed orders: {py}");
    }
    if b.stopped_early || field("submitted")? != b.submitted {
        return Ok(());
    }
    let rust = [
        b.completed,
        b.failed_validate,
        b.failed_charge,
        b.failed_email,
        b.retries,
    ];
    let python = [
        field("completed")?,
        field("failed_validate")?,
        field("failed_charge")?,
        field("failed_email")?,
        field("retries")?,
    ];
    if rust != python {
        bail!(
            "the languages disagree on the same orders (completed, failed validate/charge/e-mail, \
             retries): Rust {rust:?}, Python {python:?}"
        );
    }
    Ok(())
}

fn print_python_table(b: &OrderBooks, py: &serde_json::Value, workers: usize) {
    let num = |k: &str| py[k].as_f64().unwrap_or(f64::NAN);
    let int = |k: &str| py[k].as_u64().map_or_else(|| "-".into(), |n| n.to_string());
    let secs = |s: f64| fmt_duration(Duration::try_from_secs_f64(s).unwrap_or_default());
    let rows = vec![
        vec![
            format!("Rust ({workers} threads, bounded queue)"),
            secs(b.wall_s),
            format!("{:.0}", b.orders_per_s),
            b.completed.to_string(),
            format!(
                "{}/{}/{}",
                b.failed_validate, b.failed_charge, b.failed_email
            ),
            b.retries.to_string(),
            format!("{:.0} ms", b.latency_p50_ms),
            format!("{:.0} ms", b.latency_p99_ms),
            b.double_charges.to_string(),
        ],
        vec![
            format!("Python (ThreadPoolExecutor({workers}))"),
            secs(num("wall_s")),
            format!("{:.0}", num("orders_per_s")),
            int("completed"),
            format!(
                "{}/{}/{}",
                int("failed_validate"),
                int("failed_charge"),
                int("failed_email")
            ),
            int("retries"),
            format!("{:.0} ms", num("latency_p50_ms")),
            format!("{:.0} ms", num("latency_p99_ms")),
            int("double_charges"),
        ],
    ];
    println!();
    println!(
        "the same orders in the course's Python ({}):",
        py["interpreter"].as_str().unwrap_or("python3")
    );
    print!(
        "{}",
        python_peer::table(
            &[
                "version",
                "wall",
                "orders/s",
                "completed",
                "failed v/c/e",
                "retries",
                "p50",
                "p99",
                "charged twice",
            ],
            &rows,
        )
    );
    println!(
        "Python / Rust wall time: {} (I/O-bound: both wait on the gateway and the mail server; \
         the executor's queue is unbounded, so a burst waits in memory, not at the storefront)",
        python_peer::ratio(num("wall_s"), b.wall_s)
    );
}

// ---------------------------------------------------------------------------------------------
// The books: every order accounted for, nobody charged twice, one mail per completed order.
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct OrderBooks {
    submitted: u64,
    completed: u64,
    failed_validate: u64,
    failed_charge: u64,
    failed_email: u64,
    not_processed: u64,
    retries: u64,
    accounted: bool,
    double_charges: u64,
    mails_received: u64,
    mails_match_completed: bool,
    overload_warnings: u64,
    max_queue_depth: usize,
    wall_s: f64,
    orders_per_s: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    per_worker: Vec<u64>,
    stopped_early: bool,
}

impl OrderBooks {
    fn new(
        report: &PoolReport,
        offered: u64,
        submitted: u64,
        ledger: &HashMap<u64, u32>,
        mails: &[u64],
        workers: usize,
        wall: Duration,
    ) -> OrderBooks {
        let results = &report.results;
        let count = |f: &dyn Fn(&OrderStatus) -> bool| {
            results.iter().filter(|r| f(&r.status)).count() as u64
        };
        let completed = count(&|s| matches!(s, OrderStatus::Completed { .. }));
        let failed =
            |step| count(&|s| matches!(s, OrderStatus::Failed { step: st, .. } if *st == step));
        let (fv, fc, fe) = (
            failed(Step::Validate),
            failed(Step::Charge),
            failed(Step::Email),
        );
        let not_processed = report.not_processed.len() as u64;
        let mut mailed = mails.to_vec();
        mailed.sort_unstable();
        let mut completed_ids: Vec<u64> = results
            .iter()
            .filter(|r| matches!(r.status, OrderStatus::Completed { .. }))
            .map(|r| r.id)
            .collect();
        completed_ids.sort_unstable();
        let mut latencies: Vec<f64> = results
            .iter()
            .map(|r| r.latency.as_secs_f64() * 1e3)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let mut per_worker = vec![0u64; workers];
        for r in results {
            per_worker[r.worker] += 1;
        }
        OrderBooks {
            submitted,
            completed,
            failed_validate: fv,
            failed_charge: fc,
            failed_email: fe,
            not_processed,
            retries: results.iter().map(|r| u64::from(r.status.retries())).sum(),
            accounted: completed + fv + fc + fe + not_processed == submitted,
            double_charges: ledger.values().filter(|&&n| n > 1).count() as u64,
            mails_received: mails.len() as u64,
            mails_match_completed: mailed == completed_ids,
            overload_warnings: report.overload_warnings,
            max_queue_depth: report.max_queue_depth,
            wall_s: wall.as_secs_f64(),
            orders_per_s: results.len() as f64 / wall.as_secs_f64().max(1e-9),
            latency_p50_ms: pct(0.5),
            latency_p99_ms: pct(0.99),
            per_worker,
            stopped_early: submitted < offered || not_processed > 0,
        }
    }
}

fn print_books(b: &OrderBooks, not_processed: &[u64], wall: Duration) {
    println!("{:<28} {:>6}", "orders submitted", b.submitted);
    println!("{:<28} {:>6}", "  completed", b.completed);
    println!("{:<28} {:>6}", "  failed: invalid order", b.failed_validate);
    println!(
        "{:<28} {:>6}",
        "  failed: payment (gave up)", b.failed_charge
    );
    println!("{:<28} {:>6}", "  failed: e-mail (gave up)", b.failed_email);
    println!("{:<28} {:>6}", "  not processed (queued)", b.not_processed);
    println!("{:<28} {:>6}", "retries", b.retries);
    println!("{:<28} {:>6}", "overload warnings", b.overload_warnings);
    println!("{:<28} {:>6}", "max queue depth", b.max_queue_depth);
    println!(
        "{} orders/s over {}; queue-to-done latency p50 {:.0} ms, p99 {:.0} ms",
        b.orders_per_s.round(),
        fmt_duration(wall),
        b.latency_p50_ms,
        b.latency_p99_ms
    );
    println!("orders per worker: {:?}", b.per_worker);
    println!(
        "checks: every order accounted for: {}; charged twice: {}; mails received {} = completed: {}",
        if b.accounted { "yes" } else { "NO" },
        b.double_charges,
        b.mails_received,
        if b.mails_match_completed { "yes" } else { "NO" }
    );
    if !not_processed.is_empty() {
        let shown: Vec<String> = not_processed.iter().take(10).map(u64::to_string).collect();
        println!(
            "not processed (would be re-queued): {}{}",
            shown.join(", "),
            if not_processed.len() > 10 {
                ", ..."
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(fail_rate: f64) -> FakeGateway {
        FakeGateway {
            seed: 1,
            fail_rate,
            ledger: Mutex::new(HashMap::new()),
        }
    }

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts: NonZeroU32::new(attempts).unwrap(),
            first_backoff: Duration::from_millis(1),
        }
    }

    #[test]
    fn the_fake_services_fail_and_recover_and_never_double_charge() {
        let mail = MailServer::start(3, 0.4).unwrap();
        let gw = gateway(0.4);
        let mut m = TcpMailer {
            addr: mail.addr,
            conn: None,
        };
        let (mut completed, mut retries) = (Vec::new(), 0);
        for order in make_orders(40, 5).filter(|o| orders::validate(o).is_ok()) {
            match orders::process_order(&order, &gw, &mut m, policy(4)) {
                OrderStatus::Completed { retries: r } => {
                    completed.push(order.id);
                    retries += r;
                }
                OrderStatus::Failed { step, .. } => assert_ne!(step, Step::Validate),
            }
        }
        drop(m);
        let mut mails = mail.shutdown();
        mails.sort_unstable();
        assert_eq!(mails, completed, "one mail per completed order");
        assert!(
            retries > 0,
            "with a 40% failure rate some attempts are retried"
        );
        assert!(
            gw.ledger.lock().unwrap().values().all(|&n| n == 1),
            "charged twice"
        );
    }

    #[test]
    fn the_mail_server_refuses_garbage() {
        let mail = MailServer::start(1, 0.0).unwrap();
        let mut s = TcpStream::connect(mail.addr).unwrap();
        s.write_all(b"HELO\nMAIL 7 nobody\n").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        for _ in 0..2 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("500"), "{line}");
        }
        drop((s, r));
        assert!(mail.shutdown().is_empty());
    }

    #[test]
    fn every_numeric_flag_has_bounds() {
        let parse = |extra: &[&str]| Args::try_parse_from([&["worker-pool"], extra].concat());
        for bad in [
            &["--rate", "0"][..],
            &["--rate=-1"],
            &["--rate", "NaN"],
            &["--stop-after", "NaN"],
            &["--stop-after", "1e30"],
            &["--fail-rate", "2"],
            &["--max-attempts", "0"],
            &["--workers", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            parse(&[
                "--stop-after",
                "0",
                "--fail-rate",
                "1",
                "--max-attempts",
                "10"
            ])
            .is_ok()
        );
    }
}
