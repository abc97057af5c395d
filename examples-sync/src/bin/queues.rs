//! Thread-safe queues: std `mpsc` (unbounded, `sync_channel`, rendezvous `sync_channel(0)`),
//! crossbeam-channel (bounded / unbounded MPMC), crossbeam's lock-free `ArrayQueue` / `SegQueue`,
//! tokio's `mpsc` / `broadcast` / `watch` / `oneshot`: what each is for, and a throughput table
//! (messages/s for SPSC, MPSC and MPMC on this machine).
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Queues thread-safe").
//!
//! Python has `queue.Queue` (a deque + a lock + two conditions, like `src/bounded.rs` here) and
//! `SimpleQueue`. Rust has several, and the choice matters:
//!
//! | need | use | when full / empty |
//! | --- | --- | --- |
//! | threads, many producers, one consumer | `std::sync::mpsc::sync_channel(n)` | send blocks / recv blocks |
//! | threads, many consumers too (work queue), `select!`, timeouts | `crossbeam_channel::bounded(n)` | send blocks / recv blocks |
//! | hand-off with no buffer (a meeting point) | `sync_channel(0)` / `bounded(0)` | send waits for a recv |
//! | unbounded (only if the producer is bounded by something else) | `mpsc::channel`, `crossbeam_channel::unbounded` | never full: memory grows |
//! | lock-free building block, no blocking at all | `crossbeam::queue::ArrayQueue` / `SegQueue` | `push` fails / `pop` returns `None`: you spin or park yourself |
//! | async tasks | `tokio::sync::mpsc::channel(n)` | `send().await` waits / `recv().await` waits |
//! | every consumer sees every message | `tokio::sync::broadcast` | slow receivers lose old ones (`Lagged`) |
//! | only the latest value matters (config, state) | `tokio::sync::watch` | overwrites, never full |
//! | one reply to one request | `tokio::sync::oneshot` | single use |
//!
//! Every channel above disconnects: when the last sender is dropped, receivers drain what is
//! left and then get `None`/`Err`. That is the shutdown signal; the lock-free queues have none
//! (see `QueueTx`'s `Drop` below for the counter you must add).
//!
//! Measured on the project's 2-core box (release, 1,000,000 `u64` messages, 3 runs, a loaded
//! machine): Python 3.11's `queue.Queue(1024)` (`../shared/peers/py_queues.py`) moves 0.28–0.38
//! M msgs/s, SPSC or 2+2 MPMC; `crossbeam_channel::bounded(1024)` moves 17–25 M/s SPSC and
//! 17–34 M/s MPMC: 50–90× more. (Python's C-implemented, unbounded `SimpleQueue` reaches 7–11
//! M/s, but it has no capacity, so no back-pressure.)
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
//! python3 ../shared/peers/py_queues.py    # Python's queue.Queue, same shapes
//! ```
//!
//! # What to observe
//! - std's `mpsc` has been crossbeam-channel's algorithm since Rust 1.67: SPSC/MPSC numbers are
//!   in the same range. crossbeam adds what std lacks: several consumers (MPMC), `select!`,
//!   `recv_timeout` on any side, `tick`/`after` timers.
//! - The rendezvous channel is 10–100× slower: every message is a thread hand-off.
//! - The lock-free queues look fastest in a tight benchmark, because nobody ever sleeps: an
//!   empty `pop` spins and yields, burning a core. In a real program where the queue is often
//!   empty, that is 100% CPU for nothing; channels park the thread instead.
//! - MPMC is slower than SPSC on 2 cores: 4 threads share 2 cores and contend on the same slots.
//! - `broadcast`: a slow receiver gets `Lagged(n)`; `watch`: intermediate values are skipped.
//!
//! # Exercises
//! 1. Vary `--capacity` (1, 16, 1024, 65536). Where does throughput stop improving? Why does a
//!    tiny capacity hurt?
//! 2. Send `Vec<u8>` of 4 KiB instead of `u64`. What dominates now?
//! 3. Batch: send `Vec<u64>` of 64 values per message. Compare with 64 single sends.
//! 4. Replace the `Backoff::snooze` in `QueueRx::recv` by a pure spin (`std::hint::spin_loop`) and
//!    run MPMC. What happens on 2 cores?

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use crossbeam::queue::{ArrayQueue, SegQueue};
use crossbeam::utils::Backoff;
use examples_sync::table::{Table, fmt_rate};
use serde::Serialize;

/// Throughput of thread-safe queues (SPSC, MPSC, MPMC) and the semantics of tokio's channels.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Messages per run (each run moves this many `u64`s in total).
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Capacity of the bounded queues.
    #[arg(long, default_value_t = 1024)]
    capacity: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Shape {
    /// 1 producer, 1 consumer.
    Spsc,
    /// 2 producers, 1 consumer.
    Mpsc,
    /// 2 producers, 2 consumers.
    Mpmc,
}

impl Shape {
    fn producers(self) -> usize {
        if self == Shape::Spsc { 1 } else { 2 }
    }
    fn consumers(self) -> usize {
        if self == Shape::Mpmc { 2 } else { 1 }
    }
}

/// Moves `n` messages from the `txs` (one per producer thread) to the `rxs` (one per consumer
/// thread). Producers send then drop their sender; consumers receive until `recv` says the
/// channel is disconnected and drained. Returns the elapsed time after checking that every
/// message arrived exactly once (count and sum).
fn pump<Tx: Send, Rx: Send>(
    n: u64,
    txs: Vec<Tx>,
    rxs: Vec<Rx>,
    send: impl Fn(&Tx, u64) + Sync,
    recv: impl Fn(&Rx) -> Option<u64> + Sync,
) -> anyhow::Result<Duration> {
    let producers = txs.len() as u64;
    let per = n / producers;
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
        sum == total * (total - 1) / 2,
        "messages corrupted or duplicated"
    );
    Ok(elapsed)
}

/// The producer side of a lock-free queue. Lock-free queues have no "disconnected" state, so
/// we count live producers ourselves: the last `QueueTx` dropped tells the consumers to stop.
struct QueueTx<Q> {
    shared: Arc<(Q, AtomicUsize)>,
}

impl<Q> Drop for QueueTx<Q> {
    fn drop(&mut self) {
        self.shared.1.fetch_sub(1, Ordering::Release);
    }
}

/// The consumer side: pop, or back off (spin, then yield) while empty.
struct QueueRx<Q> {
    shared: Arc<(Q, AtomicUsize)>,
}

fn queue_pair<Q>(queue: Q, shape: Shape) -> (Vec<QueueTx<Q>>, Vec<QueueRx<Q>>) {
    let shared = Arc::new((queue, AtomicUsize::new(shape.producers())));
    let txs = (0..shape.producers())
        .map(|_| QueueTx {
            shared: shared.clone(),
        })
        .collect();
    let rxs = (0..shape.consumers())
        .map(|_| QueueRx {
            shared: shared.clone(),
        })
        .collect();
    (txs, rxs)
}

/// Pops from a lock-free queue; `None` once every producer is gone and the queue is empty.
fn queue_recv<Q>(rx: &QueueRx<Q>, pop: impl Fn(&Q) -> Option<u64>) -> Option<u64> {
    let backoff = Backoff::new();
    loop {
        if let Some(v) = pop(&rx.shared.0) {
            return Some(v);
        }
        // Check "no producers left" *before* the last pop attempt, or we could miss a message
        // pushed between our empty pop and the producer's exit.
        if rx.shared.1.load(Ordering::Acquire) == 0 {
            return pop(&rx.shared.0);
        }
        backoff.snooze();
    }
}

#[derive(Debug, Serialize)]
struct Row {
    name: &'static str,
    spsc: Option<f64>,
    mpsc: Option<f64>,
    mpmc: Option<f64>,
    /// Messages per run for this row (the rendezvous row runs fewer).
    messages: u64,
}

/// One queue kind in every shape it supports.
fn measure(
    name: &'static str,
    n: u64,
    f: impl Fn(Shape) -> Option<anyhow::Result<Duration>>,
) -> anyhow::Result<Row> {
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
    Ok(Row {
        name,
        spsc: rate(Shape::Spsc)?,
        mpsc: rate(Shape::Mpsc)?,
        mpmc: rate(Shape::Mpmc)?,
        messages: n,
    })
}

fn std_rows(n: u64, cap: usize) -> anyhow::Result<Vec<Row>> {
    // std's Receiver cannot be cloned: MPSC only ("multi-producer, single-consumer").
    let std_unbounded = measure("std mpsc::channel (unbounded)", n, |shape| {
        (shape != Shape::Mpmc).then(|| {
            let (tx, rx) = std::sync::mpsc::channel::<u64>();
            let txs = vec![tx; shape.producers()];
            pump(
                n,
                txs,
                vec![rx],
                |tx, v| tx.send(v).expect("receiver alive"),
                |rx| rx.recv().ok(),
            )
        })
    })?;
    let std_bounded = measure("std mpsc::sync_channel(cap)", n, |shape| {
        (shape != Shape::Mpmc).then(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(cap);
            let txs = vec![tx; shape.producers()];
            pump(
                n,
                txs,
                vec![rx],
                |tx, v| tx.send(v).expect("receiver alive"),
                |rx| rx.recv().ok(),
            )
        })
    })?;
    // Every message is a hand-off between two threads: run 10x fewer.
    let rn = (n / 10).max(1);
    let rendezvous = measure("std mpsc::sync_channel(0)", rn, |shape| {
        (shape != Shape::Mpmc).then(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(0);
            let txs = vec![tx; shape.producers()];
            pump(
                rn,
                txs,
                vec![rx],
                |tx, v| tx.send(v).expect("receiver alive"),
                |rx| rx.recv().ok(),
            )
        })
    })?;
    Ok(vec![std_unbounded, std_bounded, rendezvous])
}

fn crossbeam_rows(n: u64, cap: usize) -> anyhow::Result<Vec<Row>> {
    let bounded = measure("crossbeam_channel::bounded(cap)", n, |shape| {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(cap);
        let txs = vec![tx; shape.producers()];
        let rxs = vec![rx; shape.consumers()];
        Some(pump(
            n,
            txs,
            rxs,
            |tx, v| tx.send(v).expect("receiver alive"),
            |rx| rx.recv().ok(),
        ))
    })?;
    let unbounded = measure("crossbeam_channel::unbounded", n, |shape| {
        let (tx, rx) = crossbeam_channel::unbounded::<u64>();
        let txs = vec![tx; shape.producers()];
        let rxs = vec![rx; shape.consumers()];
        Some(pump(
            n,
            txs,
            rxs,
            |tx, v| tx.send(v).expect("receiver alive"),
            |rx| rx.recv().ok(),
        ))
    })?;
    let array = measure("crossbeam ArrayQueue(cap), spin/yield", n, |shape| {
        let (txs, rxs) = queue_pair(ArrayQueue::<u64>::new(cap), shape);
        Some(pump(
            n,
            txs,
            rxs,
            |tx, v| {
                // Full: nothing blocks for us, so back off and retry.
                let backoff = Backoff::new();
                let mut v = v;
                while let Err(back) = tx.shared.0.push(v) {
                    v = back;
                    backoff.snooze();
                }
            },
            |rx| queue_recv(rx, ArrayQueue::pop),
        ))
    })?;
    let seg = measure("crossbeam SegQueue (unbounded), spin/yield", n, |shape| {
        let (txs, rxs) = queue_pair(SegQueue::<u64>::new(), shape);
        Some(pump(
            n,
            txs,
            rxs,
            |tx, v| tx.shared.0.push(v),
            |rx| queue_recv(rx, SegQueue::pop),
        ))
    })?;
    Ok(vec![bounded, unbounded, array, seg])
}

/// tokio's mpsc between async tasks on a 2-thread runtime (MPSC only, like std's).
fn tokio_row(n: u64, cap: usize) -> anyhow::Result<Row> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .context("building the tokio runtime")?;
    measure("tokio::sync::mpsc::channel(cap)", n, |shape| {
        (shape != Shape::Mpmc).then(|| {
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(cap);
                let producers = shape.producers() as u64;
                let per = n / producers;
                let start = Instant::now();
                for p in 0..producers {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        for i in 0..per {
                            tx.send(p * per + i).await.expect("receiver alive");
                        }
                    });
                }
                drop(tx);
                let consumer = tokio::spawn(async move {
                    let (mut count, mut sum) = (0u64, 0u64);
                    while let Some(v) = rx.recv().await {
                        count += 1;
                        sum += v;
                    }
                    (count, sum)
                });
                let (count, sum) = consumer.await.context("consumer task panicked")?;
                let total = per * producers;
                ensure!(
                    count == total && sum == total * (total - 1) / 2,
                    "tokio mpsc lost messages"
                );
                Ok(start.elapsed())
            })
        })
    })
}

#[derive(Debug, Serialize)]
struct Semantics {
    bounded_try_send_when_full: String,
    broadcast_lagged_by: u64,
    broadcast_received_after_lag: Vec<u64>,
    watch_values_sent: u64,
    watch_value_seen: u64,
    oneshot_reply: u64,
}

/// The tokio channels whose point is not throughput but semantics.
fn semantics() -> anyhow::Result<Semantics> {
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
        let (btx, mut brx) = tokio::sync::broadcast::channel::<u64>(4);
        for i in 0..10 {
            btx.send(i).context("a receiver exists")?;
        }
        let mut lagged = 0;
        let mut received = Vec::new();
        loop {
            match brx.try_recv() {
                Ok(v) => received.push(v),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => lagged = n,
                Err(_) => break,
            }
        }

        // watch: 100 updates, the receiver only cares about the latest.
        let (wtx, mut wrx) = tokio::sync::watch::channel(0u64);
        for i in 1..=100 {
            wtx.send(i).context("the receiver exists")?;
        }
        wrx.changed().await.context("sender alive")?;
        let seen = *wrx.borrow_and_update();

        // oneshot: one request, one reply, from a plain thread (blocking side) to async.
        let (otx, orx) = tokio::sync::oneshot::channel::<u64>();
        let worker = thread::spawn(move || {
            let _ = otx.send(6 * 7); // Err only if the requester gave up
        });
        let reply = orx.await.context("the worker dropped the reply sender")?;
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("oneshot worker panicked"))?;

        Ok(Semantics {
            bounded_try_send_when_full: full,
            broadcast_lagged_by: lagged,
            broadcast_received_after_lag: received,
            watch_values_sent: 100,
            watch_value_seen: seen,
            oneshot_reply: reply,
        })
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.messages >= 20, "--messages must be at least 20");
    ensure!(args.capacity >= 1, "--capacity must be at least 1");
    let sem = semantics()?;

    let mut rows = std_rows(args.messages, args.capacity)?;
    rows.extend(crossbeam_rows(args.messages, args.capacity)?);
    rows.push(tokio_row(args.messages, args.capacity)?);

    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "messages": args.messages,
                "capacity": args.capacity,
                "cores": thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                "rows": rows,
                "semantics": sem,
            })
        );
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
        "  oneshot: a thread replied {} to an async request\n",
        sem.oneshot_reply
    );

    println!(
        "Throughput, {} u64 messages per run, capacity {} (SPSC = 1->1, MPSC = 2->1, MPMC = 2->2 threads):\n",
        args.messages, args.capacity
    );
    let mut table = Table::new(["queue", "SPSC", "MPSC", "MPMC"]);
    let cell = |r: Option<f64>| r.map_or_else(|| "-".to_string(), fmt_rate);
    for r in &rows {
        table.row([r.name.to_string(), cell(r.spsc), cell(r.mpsc), cell(r.mpmc)]);
    }
    table.print();
    println!(
        "\n(\"-\": that queue has a single receiver. sync_channel(0) runs {} messages.)",
        (args.messages / 10).max(1)
    );
    Ok(())
}
