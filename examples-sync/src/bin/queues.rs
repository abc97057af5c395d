//! Thread-safe queues: std `mpsc` (unbounded, `sync_channel`, rendezvous `sync_channel(0)`),
//! crossbeam-channel (bounded / unbounded MPMC), crossbeam's lock-free `ArrayQueue` / `SegQueue`,
//! tokio's `mpsc` / `broadcast` / `watch` / `oneshot`: what each is for, and a throughput table
//! (messages/s for SPSC, MPSC and MPMC on this machine).
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Queues thread-safe").
//!
//! Crates: `crossbeam = "0.8"`, `crossbeam-channel = "0.5"`, `anyhow = "1"`,
//! `tokio = { version = "1", features = ["rt-multi-thread", "sync"] }`
//!
//! Python has `queue.Queue` (a deque, a lock and three conditions: `not_empty` and `not_full`,
//! like `src/bounded.rs` here, and `all_tasks_done` for `task_done()`/`join()`, the `join_queue`
//! module below) and `SimpleQueue`. Rust has several, and the choice matters (README table):
//! threads, one consumer: `std::sync::mpsc::sync_channel(n)`; several consumers, `select!`,
//! timeouts: `crossbeam_channel::bounded(n)`; async tasks: `tokio::sync::mpsc::channel(n)`;
//! every consumer sees every message: `broadcast`; only the latest value matters: `watch`; one
//! reply: `oneshot`. Every channel disconnects: when the last sender is dropped, receivers
//! drain what is left, then get `None`/`Err`. That is the shutdown signal; the lock-free queues
//! have none (see `lock_free`: the counter you must add).
//!
//! # Concepts
//! - SPSC / MPSC / MPMC shapes, and which channels support which.
//! - Bounded = back-pressure; unbounded = a memory leak waiting for a slow consumer.
//! - Blocking (park the thread) vs lock-free (never block, the caller decides how to wait).
//! - Disconnection as the end-of-stream signal.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-sync --bin queues
//! cargo run --release -p examples-sync --bin queues -- --messages 1000000 --capacity 64
//! cargo run --release -p examples-sync --bin queues -- --json
//! cargo run --release -p examples-sync --bin queues -- --python   # + queue.Queue, asyncio.Queue
//! ```
//!
//! # What to observe
//! - std's `mpsc` has been crossbeam-channel's algorithm since Rust 1.67: SPSC/MPSC numbers are
//!   in the same range. crossbeam adds several consumers (MPMC), `select!`, timers.
//! - The rendezvous channel is 10–100× slower: every message is a thread hand-off.
//! - The lock-free queues look fastest in a tight benchmark, because nobody ever sleeps: an
//!   empty `pop` spins and yields, burning a core. In a real program where the queue is often
//!   empty, that is 100% CPU for nothing; channels park the thread instead.
//! - MPMC is slower than SPSC on 2 cores: 4 threads share 2 cores and contend on the same slots.
//! - `broadcast`: a slow receiver gets `Lagged(n)`; `watch`: intermediate values are skipped.
//! - `--python`: `queue.Queue` is one to two orders of magnitude slower (every `put`/`get` takes
//!   its lock and the GIL); the C `SimpleQueue` is faster, but unbounded.
//! - `task_done()`/`join()`: `join` returns only once every item was *processed*; here the
//!   done-marker is a guard's `Drop`, so it cannot be forgotten (Python's `join` then hangs).
//!
//! # Exercises
//! 1. Vary `--capacity` (1, 16, 1024, 65536). Where does throughput stop improving? Why does a
//!    tiny capacity hurt?
//! 2. Send `Vec<u8>` of 4 KiB instead of `u64`. What dominates now?
//! 3. Batch: send `Vec<u64>` of 64 values per message. Compare with 64 single sends.
//! 4. Replace the `Backoff::snooze` in `lock_free::recv` by a pure spin
//!    (`std::hint::spin_loop`) and run MPMC. What happens on 2 cores?

// === Lesson: copy from here ===

/// Moving `n` numbers from producer threads to consumer threads through any queue, checking
/// that each arrived exactly once.
mod pump {
    use std::thread;
    use std::time::{Duration, Instant};

    use anyhow::ensure;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Shape {
        /// 1 producer, 1 consumer.
        Spsc,
        /// 2 producers, 1 consumer.
        Mpsc,
        /// 2 producers, 2 consumers.
        Mpmc,
    }

    impl Shape {
        pub fn producers(self) -> usize {
            if self == Shape::Spsc { 1 } else { 2 }
        }
        pub fn consumers(self) -> usize {
            if self == Shape::Mpmc { 2 } else { 1 }
        }
    }

    /// Moves `n` messages from the `txs` (one per producer thread) to the `rxs` (one per
    /// consumer thread). Producers send then drop their sender; consumers receive until `recv`
    /// says the channel is disconnected and drained. Returns the elapsed time after checking
    /// that every message arrived exactly once (count and sum).
    pub fn pump<Tx: Send, Rx: Send>(
        n: u64,
        txs: Vec<Tx>,
        rxs: Vec<Rx>,
        send: impl Fn(&Tx, u64) + Sync,
        recv: impl Fn(&Rx) -> Option<u64> + Sync,
    ) -> anyhow::Result<Duration> {
        let producers = txs.len() as u64;
        let per = n / producers.max(1);
        let start = Instant::now();
        let (count, sum) = thread::scope(|s| {
            let (send, recv) = (&send, &recv);
            for (p, tx) in txs.into_iter().enumerate() {
                s.spawn(move || {
                    for i in 0..per {
                        send(&tx, p as u64 * per + i);
                    }
                    // `tx` dropped here: the disconnect signal.
                });
            }
            let consumers: Vec<_> = rxs
                .into_iter()
                .map(|rx| {
                    s.spawn(move || {
                        let (mut count, mut sum) = (0u64, 0u64);
                        while let Some(v) = recv(&rx) {
                            count += 1;
                            sum += v;
                        }
                        (count, sum)
                    })
                })
                .collect();
            consumers.into_iter().fold((0, 0), |(c, s), h| {
                let (c2, s2) = h.join().expect("consumer threads do not panic");
                (c + c2, s + s2)
            })
        });
        let elapsed = start.elapsed();
        let total = per * producers;
        ensure!(count == total, "received {count} of {total} messages");
        ensure!(
            sum == total * total.saturating_sub(1) / 2,
            "messages corrupted or duplicated"
        );
        Ok(elapsed)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_crossbeam_channel_delivers_everything_in_every_shape() {
            for shape in [Shape::Spsc, Shape::Mpsc, Shape::Mpmc] {
                let (tx, rx) = crossbeam_channel::bounded::<u64>(4);
                let sent = pump(
                    1_000,
                    vec![tx; shape.producers()],
                    vec![rx; shape.consumers()],
                    |tx, v| tx.send(v).unwrap(),
                    |rx| rx.recv().ok(),
                );
                assert!(sent.is_ok(), "{shape:?}: {sent:?}");
            }
        }
    }
}

/// A lock-free queue has no "disconnected" state: count the live producers yourself, and let
/// consumers spin politely (crossbeam's `Backoff`) while it is empty.
mod lock_free {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crossbeam::utils::Backoff;

    /// The producer side. The last `QueueTx` dropped tells the consumers to stop.
    pub struct QueueTx<Q> {
        shared: Arc<(Q, AtomicUsize)>,
    }

    impl<Q> QueueTx<Q> {
        pub fn queue(&self) -> &Q {
            &self.shared.0
        }
    }

    impl<Q> Drop for QueueTx<Q> {
        fn drop(&mut self) {
            self.shared.1.fetch_sub(1, Ordering::Release);
        }
    }

    /// The consumer side.
    pub struct QueueRx<Q> {
        shared: Arc<(Q, AtomicUsize)>,
    }

    /// `producers` senders and `consumers` receivers around `queue`.
    pub fn queue_pair<Q>(
        queue: Q,
        producers: usize,
        consumers: usize,
    ) -> (Vec<QueueTx<Q>>, Vec<QueueRx<Q>>) {
        let shared = Arc::new((queue, AtomicUsize::new(producers)));
        let txs = (0..producers)
            .map(|_| QueueTx {
                shared: shared.clone(),
            })
            .collect();
        let rxs = (0..consumers)
            .map(|_| QueueRx {
                shared: shared.clone(),
            })
            .collect();
        (txs, rxs)
    }

    /// Pushes `v` into a bounded lock-free queue: when full, nothing blocks for us, so back off
    /// and retry. `push` gives the value back on failure.
    pub fn push_or_wait<T>(mut v: T, push: impl Fn(T) -> Result<(), T>) {
        let backoff = Backoff::new();
        while let Err(back) = push(v) {
            v = back;
            backoff.snooze();
        }
    }

    /// Pops with `pop`, or backs off (spin, then yield) while empty; `None` once every producer
    /// is gone and the queue is empty.
    pub fn recv<Q, T>(rx: &QueueRx<Q>, pop: impl Fn(&Q) -> Option<T>) -> Option<T> {
        let backoff = Backoff::new();
        loop {
            if let Some(v) = pop(&rx.shared.0) {
                return Some(v);
            }
            // Check "no producers left" *before* the last pop attempt, or we could miss a
            // message pushed between our empty pop and the producer's exit.
            if rx.shared.1.load(Ordering::Acquire) == 0 {
                return pop(&rx.shared.0);
            }
            backoff.snooze();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crossbeam::queue::ArrayQueue;

        #[test]
        fn consumers_drain_then_stop_when_the_last_producer_leaves() {
            let (txs, rxs) = queue_pair(ArrayQueue::<u64>::new(2), 1, 1);
            for tx in txs {
                push_or_wait(7, |v| tx.queue().push(v));
            } // the only producer is gone
            assert_eq!(recv(&rxs[0], ArrayQueue::pop), Some(7));
            assert_eq!(recv(&rxs[0], ArrayQueue::pop), None);
        }
    }
}

/// Python's `queue.Queue.task_done()` / `join()`: wait until every item put has been
/// *processed*, not just taken. CPython counts `unfinished_tasks` under the queue's lock and
/// waits on a third condition, `all_tasks_done`; here a counter and a `Condvar` sit beside a
/// channel, and the done-marker is a guard: dropping the `Task` (even by a panic) marks it done.
/// (crossbeam's `sync::WaitGroup` is the same idea for "wait until these N are done".)
mod join_queue {
    use std::ops::Deref;
    use std::sync::{Arc, Condvar, Mutex, PoisonError};

    use crossbeam_channel::{Receiver, Sender};

    /// Items put and not yet done.
    #[derive(Default)]
    struct Pending {
        count: Mutex<usize>,
        all_done: Condvar,
    }

    impl Pending {
        fn add(&self) {
            *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        }
        fn done(&self) {
            let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.all_done.notify_all(); // every joiner may go on
            }
        }
    }

    /// The producer side: `put` and `join`. Dropping every `TaskSender` ends the receivers.
    pub struct TaskSender<T> {
        tx: Sender<T>,
        pending: Arc<Pending>,
    }

    /// The consumer side (clone it for several workers).
    pub struct TaskReceiver<T> {
        rx: Receiver<T>,
        pending: Arc<Pending>,
    }

    /// One item being processed; dropping it is `task_done()`.
    pub struct Task<T> {
        item: T,
        pending: Arc<Pending>,
    }

    /// A bounded queue of `capacity` with `task_done`/`join`.
    pub fn task_queue<T>(capacity: usize) -> (TaskSender<T>, TaskReceiver<T>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let pending = Arc::new(Pending::default());
        let receiver = TaskReceiver {
            rx,
            pending: Arc::clone(&pending),
        };
        (TaskSender { tx, pending }, receiver)
    }

    impl<T> TaskSender<T> {
        /// Python's `put`: blocks while full. Counted *before* it is sent, so that `join` can
        /// never see zero while an item is on its way. `Err` gives the item back if every
        /// receiver is gone.
        pub fn put(&self, item: T) -> Result<(), T> {
            self.pending.add();
            self.tx.send(item).map_err(|e| {
                self.pending.done();
                e.into_inner()
            })
        }

        /// Python's `join`: blocks until every item put so far has been processed.
        pub fn join(&self) {
            let count = self
                .pending
                .count
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let _idle = self
                .pending
                .all_done
                .wait_while(count, |n| *n > 0)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    impl<T> TaskReceiver<T> {
        /// Python's `get`: blocks while empty; `None` once every sender is dropped and the
        /// queue is drained.
        pub fn get(&self) -> Option<Task<T>> {
            let item = self.rx.recv().ok()?;
            Some(Task {
                item,
                pending: Arc::clone(&self.pending),
            })
        }
    }

    impl<T> Clone for TaskReceiver<T> {
        fn clone(&self) -> Self {
            TaskReceiver {
                rx: self.rx.clone(),
                pending: Arc::clone(&self.pending),
            }
        }
    }

    impl<T> Deref for Task<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.item
        }
    }

    impl<T> Drop for Task<T> {
        fn drop(&mut self) {
            self.pending.done(); // `task_done()`, impossible to forget or to call twice
        }
    }

    /// `workers` threads process `tasks` items; `join` returns once all are processed. Returns
    /// how many were processed when `join` returned (all of them, always).
    pub fn join_when_all_done(workers: usize, tasks: u64) -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        let (tx, rx) = task_queue::<u64>(64);
        let processed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers {
                let (rx, processed) = (rx.clone(), &processed);
                s.spawn(move || {
                    while let Some(task) = rx.get() {
                        std::hint::black_box(*task); // the work on the item
                        processed.fetch_add(1, Ordering::SeqCst);
                    } // `task` dropped at the end of each turn: done
                });
            }
            drop(rx); // only the workers' clones keep the queue's receiving side alive
            for i in 0..tasks {
                tx.put(i).expect("the workers outlive the puts");
            }
            tx.join();
            let at_join = processed.load(Ordering::SeqCst);
            drop(tx); // the workers' `get` now returns None: they end, and the scope joins them
            at_join
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn join_returns_once_every_task_is_done() {
            assert_eq!(join_when_all_done(3, 500), 500);
        }

        #[test]
        fn a_panicking_worker_still_marks_its_task_done() {
            let (tx, rx) = task_queue::<u32>(1);
            tx.put(7).unwrap();
            let worker = std::thread::spawn(move || {
                let task = rx.get().unwrap();
                assert_eq!(*task, 8, "boom"); // panics while holding the task
            });
            assert!(worker.join().is_err());
            tx.join(); // returns: the unwinding dropped the task (a hang guard if it fails)
        }
    }
}

/// tokio's channels: what `broadcast`, `watch` and `oneshot` promise (their point is semantics,
/// not throughput), and `mpsc` between tasks.
mod tokio_channels {
    use std::thread;

    use anyhow::Context;
    use tokio::sync::{broadcast, mpsc, oneshot, watch};

    #[derive(Debug, Clone)]
    pub struct ChannelSemantics {
        pub bounded_try_send_when_full: String,
        pub broadcast_lagged_by: u64,
        pub broadcast_received_after_lag: Vec<u64>,
        pub watch_values_sent: u64,
        pub watch_value_seen: u64,
        pub oneshot_reply: u64,
    }

    pub fn channel_semantics() -> anyhow::Result<ChannelSemantics> {
        // A full bounded channel: try_send refuses instead of blocking.
        let (tx, _rx) = crossbeam_channel::bounded::<u64>(1);
        tx.send(1).context("first send fits")?;
        let full = match tx.try_send(2) {
            Err(crossbeam_channel::TrySendError::Full(v)) => format!("Err(Full({v}))"),
            other => format!("{other:?}"),
        };

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .context("building the tokio runtime")?;
        rt.block_on(async {
            // broadcast: capacity 4, 10 messages, a receiver that did not keep up.
            let (btx, mut brx) = broadcast::channel::<u64>(4);
            for i in 0..10 {
                btx.send(i).context("a receiver exists")?;
            }
            let mut lagged = 0;
            let mut received = Vec::new();
            loop {
                match brx.try_recv() {
                    Ok(v) => received.push(v),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => lagged = n,
                    Err(_) => break,
                }
            }

            // watch: 100 updates, the receiver only cares about the latest.
            let (wtx, mut wrx) = watch::channel(0u64);
            for i in 1..=100 {
                wtx.send(i).context("the receiver exists")?;
            }
            wrx.changed().await.context("sender alive")?;
            let seen = *wrx.borrow_and_update();

            // oneshot: one request, one reply, from a plain thread (blocking side) to async.
            let (otx, orx) = oneshot::channel::<u64>();
            let worker = thread::spawn(move || {
                let _ = otx.send(6 * 7); // Err only if the requester gave up
            });
            let reply = orx.await.context("the worker dropped the reply sender")?;
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("oneshot worker panicked"))?;

            Ok(ChannelSemantics {
                bounded_try_send_when_full: full,
                broadcast_lagged_by: lagged,
                broadcast_received_after_lag: received,
                watch_values_sent: 100,
                watch_value_seen: seen,
                oneshot_reply: reply,
            })
        })
    }

    /// tokio's mpsc between async tasks: `producers` tasks send `n` numbers in all to one
    /// consumer task, on `rt`. Returns (messages received, their sum).
    pub fn tokio_pump(
        rt: &tokio::runtime::Runtime,
        n: u64,
        producers: u64,
        capacity: usize,
    ) -> anyhow::Result<(u64, u64)> {
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel::<u64>(capacity);
            let per = n / producers.max(1);
            for p in 0..producers {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        // Err only if the receiver is gone: then there is nobody to send to.
                        if tx.send(p * per + i).await.is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx); // the consumer's `recv` ends once every producer task is done
            let consumer = tokio::spawn(async move {
                let (mut count, mut sum) = (0u64, 0u64);
                while let Some(v) = rx.recv().await {
                    count += 1;
                    sum += v;
                }
                (count, sum)
            });
            consumer.await.context("consumer task panicked")
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn lagged_broadcast_latest_watch_and_oneshot_reply() {
            let s = channel_semantics().unwrap();
            assert_eq!(s.bounded_try_send_when_full, "Err(Full(2))");
            assert_eq!(s.broadcast_lagged_by, 6);
            assert_eq!(s.broadcast_received_after_lag, vec![6, 7, 8, 9]);
            assert_eq!(s.watch_value_seen, 100);
            assert_eq!(s.oneshot_reply, 42);
        }

        #[test]
        fn tokio_pump_delivers_everything() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            assert_eq!(tokio_pump(&rt, 100, 2, 4).unwrap(), (100, 4950));
        }
    }
}

// === Harness: not part of the lesson ===

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use crossbeam::queue::{ArrayQueue, SegQueue};
use examples_sync::python_peer;
use examples_sync::table::Table;
use join_queue::join_when_all_done;
use lock_free::{push_or_wait, queue_pair, recv};
use pump::{Shape, pump};
use serde::Serialize;
use shared::cli;
use shared::report::fmt_rate;
use tokio_channels::{ChannelSemantics, channel_semantics, tokio_pump};

/// Throughput of thread-safe queues (SPSC, MPSC, MPMC) and the semantics of tokio's channels.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Messages per run: each run moves this many `u64`s in total (20 to 100,000,000).
    #[arg(long, default_value_t = 200_000, value_parser = cli::u64_in(20, 100_000_000))]
    messages: u64,
    /// Capacity of the bounded queues (1 to 1,048,576).
    #[arg(long, default_value_t = 1024, value_parser = cli::usize_in(1, 1 << 20))]
    capacity: usize,
    /// Also run the course's Python (python/queues.py: `queue.Queue`, `SimpleQueue`,
    /// `asyncio.Queue`, `task_done`/`join`) with the same parameters, in the same table.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One queue kind: messages/s in each shape it supports.
#[derive(Debug, Serialize)]
struct ThroughputRow {
    name: String,
    spsc: Option<f64>,
    mpsc: Option<f64>,
    mpmc: Option<f64>,
    /// Messages per run for this row (the rendezvous row runs fewer).
    messages: u64,
}

/// Measures one queue kind in every shape it supports (`f` returns `None` for the others).
fn measure(
    name: &'static str,
    n: u64,
    f: impl Fn(Shape) -> Option<anyhow::Result<Duration>>,
) -> anyhow::Result<ThroughputRow> {
    let rate = |shape| -> anyhow::Result<Option<f64>> {
        match f(shape) {
            None => Ok(None),
            Some(d) => Ok(Some(
                n as f64
                    / d.with_context(|| format!("{name} {shape:?}"))?
                        .as_secs_f64(),
            )),
        }
    };
    Ok(ThroughputRow {
        name: name.to_string(),
        spsc: rate(Shape::Spsc)?,
        mpsc: rate(Shape::Mpsc)?,
        mpmc: rate(Shape::Mpmc)?,
        messages: n,
    })
}

/// std's channels: `Receiver` cannot be cloned, so MPSC only ("multi-producer, single-consumer").
fn std_rows(n: u64, cap: usize) -> anyhow::Result<Vec<ThroughputRow>> {
    // `None`: unbounded; `Some(c)`: `sync_channel(c)`.
    let run = |n: u64, shape: Shape, bound: Option<usize>| {
        (shape != Shape::Mpmc).then(|| match bound {
            None => {
                let (tx, rx) = std::sync::mpsc::channel::<u64>();
                let send = |tx: &std::sync::mpsc::Sender<u64>, v| tx.send(v).expect("receiver");
                pump(n, vec![tx; shape.producers()], vec![rx], send, |rx| {
                    rx.recv().ok()
                })
            }
            Some(c) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(c);
                let send = |tx: &std::sync::mpsc::SyncSender<u64>, v| tx.send(v).expect("receiver");
                pump(n, vec![tx; shape.producers()], vec![rx], send, |rx| {
                    rx.recv().ok()
                })
            }
        })
    };
    // Every rendezvous message is a hand-off between two threads: run 10x fewer.
    let rn = (n / 10).max(1);
    Ok(vec![
        measure("std mpsc::channel (unbounded)", n, |s| run(n, s, None))?,
        measure("std mpsc::sync_channel(cap)", n, |s| run(n, s, Some(cap)))?,
        measure("std mpsc::sync_channel(0)", rn, |s| run(rn, s, Some(0)))?,
    ])
}

fn crossbeam_rows(n: u64, cap: usize) -> anyhow::Result<Vec<ThroughputRow>> {
    let channel = |shape: Shape, (tx, rx): (crossbeam_channel::Sender<u64>, _)| {
        let (txs, rxs) = (vec![tx; shape.producers()], vec![rx; shape.consumers()]);
        let send = |tx: &crossbeam_channel::Sender<u64>, v| tx.send(v).expect("receiver alive");
        let recv = |rx: &crossbeam_channel::Receiver<u64>| rx.recv().ok();
        Some(pump(n, txs, rxs, send, recv))
    };
    let bounded = measure("crossbeam_channel::bounded(cap)", n, |shape| {
        channel(shape, crossbeam_channel::bounded(cap))
    })?;
    let unbounded = measure("crossbeam_channel::unbounded", n, |shape| {
        channel(shape, crossbeam_channel::unbounded())
    })?;
    let array = measure("crossbeam ArrayQueue(cap), spin/yield", n, |shape| {
        let (txs, rxs) = queue_pair(
            ArrayQueue::<u64>::new(cap),
            shape.producers(),
            shape.consumers(),
        );
        Some(pump(
            n,
            txs,
            rxs,
            |tx, v| push_or_wait(v, |v| tx.queue().push(v)),
            |rx| recv(rx, ArrayQueue::pop),
        ))
    })?;
    let seg = measure("crossbeam SegQueue (unbounded), spin/yield", n, |shape| {
        let (txs, rxs) = queue_pair(SegQueue::<u64>::new(), shape.producers(), shape.consumers());
        Some(pump(
            n,
            txs,
            rxs,
            |tx, v| tx.queue().push(v),
            |rx| recv(rx, SegQueue::pop),
        ))
    })?;
    Ok(vec![bounded, unbounded, array, seg])
}

/// tokio's mpsc between async tasks on a 2-thread runtime (MPSC only, like std's).
fn tokio_row(n: u64, cap: usize) -> anyhow::Result<ThroughputRow> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .context("building the tokio runtime")?;
    measure("tokio::sync::mpsc::channel(cap)", n, |shape| {
        (shape != Shape::Mpmc).then(|| {
            let producers = shape.producers() as u64;
            let start = Instant::now();
            let (count, sum) = tokio_pump(&rt, n, producers, cap)?;
            let total = n / producers * producers;
            ensure!(
                count == total && sum == total * (total - 1) / 2,
                "tokio mpsc lost messages"
            );
            Ok(start.elapsed())
        })
    })
}

fn semantics_json(s: &ChannelSemantics) -> serde_json::Value {
    serde_json::json!({
        "bounded_try_send_when_full": s.bounded_try_send_when_full,
        "broadcast_lagged_by": s.broadcast_lagged_by,
        "broadcast_received_after_lag": s.broadcast_received_after_lag,
        "watch_values_sent": s.watch_values_sent,
        "watch_value_seen": s.watch_value_seen,
        "oneshot_reply": s.oneshot_reply,
    })
}

/// `task_done`/`join`: workers and items of the demo (the Python recipe uses the same).
const JOIN_WORKERS: usize = 4;
const JOIN_TASKS: u64 = 1000;

/// The Python recipe's rows (messages/s per shape), checked: every message arrived once, and
/// `join()` returned after every task was done.
fn python_rows(args: &Args) -> anyhow::Result<(serde_json::Value, Vec<ThroughputRow>)> {
    let json = python_peer::run_recipe(
        "queues",
        &[
            "--messages".into(),
            args.messages.to_string(),
            "--capacity".into(),
            args.capacity.to_string(),
        ],
    )?;
    let rows = json["rows"]
        .as_array()
        .context("the Python recipe's JSON has no `rows`")?
        .iter()
        .map(|r| {
            ensure!(
                r["delivered_ok"] == true,
                "results differ: Python's {} lost or duplicated messages",
                r["name"]
            );
            Ok(ThroughputRow {
                name: format!("Python: {}", r["name"].as_str().unwrap_or("?")),
                spsc: r["spsc"].as_f64(),
                mpsc: r["mpsc"].as_f64(),
                mpmc: r["mpmc"].as_f64(),
                messages: args.messages,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(
        json["join"]["done_at_join"] == JOIN_TASKS,
        "results differ: Python's join() returned with {} of {JOIN_TASKS} tasks done",
        json["join"]["done_at_join"]
    );
    Ok((json, rows))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sem = channel_semantics()?;

    let mut rows = std_rows(args.messages, args.capacity)?;
    rows.extend(crossbeam_rows(args.messages, args.capacity)?);
    rows.push(tokio_row(args.messages, args.capacity)?);
    let done_at_join = join_when_all_done(JOIN_WORKERS, JOIN_TASKS);
    ensure!(
        done_at_join == JOIN_TASKS,
        "join() returned with {done_at_join} of {JOIN_TASKS} tasks done"
    );
    let python = if args.python {
        Some(python_rows(&args)?)
    } else {
        None
    };

    if args.json {
        let mut out = serde_json::json!({
            "messages": args.messages,
            "capacity": args.capacity,
            "cores": thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "rows": rows,
            "semantics": semantics_json(&sem),
            "join": { "workers": JOIN_WORKERS, "tasks": JOIN_TASKS, "done_at_join": done_at_join },
        });
        if let Some((json, _)) = &python {
            out["python"] = json.clone();
        }
        println!("{out}");
        return Ok(());
    }
    println!("Semantics:");
    println!(
        "  crossbeam bounded(1), full: try_send(2) -> {}",
        sem.bounded_try_send_when_full
    );
    println!(
        "  broadcast(4), 10 sent, slow receiver: Lagged({}), then received {:?}",
        sem.broadcast_lagged_by, sem.broadcast_received_after_lag
    );
    println!(
        "  watch: {} values sent, receiver saw only the latest: {}",
        sem.watch_values_sent, sem.watch_value_seen
    );
    println!(
        "  oneshot: a thread replied {} to an async request",
        sem.oneshot_reply
    );
    println!(
        "  task_done/join: {JOIN_WORKERS} workers, {JOIN_TASKS} tasks; join() returned with \
         {done_at_join} done\n"
    );

    println!(
        "Throughput, {} u64 messages per run, capacity {} (SPSC = 1->1, MPSC = 2->1, MPMC = 2->2 threads):\n",
        args.messages, args.capacity
    );
    let mut table = Table::new(["queue", "SPSC", "MPSC", "MPMC"]);
    let cell = |r: Option<f64>| {
        r.map_or_else(
            || "-".to_string(),
            |per_s| fmt_rate(per_s, Duration::from_secs(1), "msg"),
        )
    };
    let py_rows = python.iter().flat_map(|(_, rows)| rows);
    for r in rows.iter().chain(py_rows) {
        table.row([r.name.clone(), cell(r.spsc), cell(r.mpsc), cell(r.mpmc)]);
    }
    table.print();
    if let Some((json, py)) = &python {
        // crossbeam's bounded channel against queue.Queue of the same capacity, per shape.
        let cb = rows
            .iter()
            .find(|r| r.name.starts_with("crossbeam_channel::bounded"))
            .context("the crossbeam bounded row")?;
        let q = py.first().context("Python's queue.Queue row")?;
        let ratio = |r: Option<f64>, p: Option<f64>| match (r, p) {
            (Some(r), Some(p)) => python_peer::slower(r, p), // rates: Rust's over Python's
            _ => "-".into(),
        };
        println!(
            "\n{}: {} is {} (SPSC), {} (MPSC), {} (MPMC) faster than {}.",
            json["interpreter"].as_str().unwrap_or("Python"),
            cb.name,
            ratio(cb.spsc, q.spsc),
            ratio(cb.mpsc, q.mpsc),
            ratio(cb.mpmc, q.mpmc),
            q.name
        );
    }
    println!(
        "\n(\"-\": that queue has a single receiver. sync_channel(0) runs {} messages.)",
        (args.messages / 10).max(1)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in [
            ["--messages", "18446744073709551615"],
            ["--messages", "0"],
            ["--messages", "1e30"],
            ["--capacity", "0"],
            ["--capacity", "18446744073709551615"],
            ["--capacity", "-1"],
        ] {
            let err = Args::try_parse_from(["queues", bad[0], bad[1]])
                .expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
