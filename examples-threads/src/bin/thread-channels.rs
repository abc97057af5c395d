//! Thread channels: message passing between threads, with backpressure, `select!` and shutdown.
//!
//! Course section **8.1 — Threading et multiprocessing** (`queue.Queue` between threads).
//!
//! Crates: `crossbeam-channel = "0.5"`
//!
//! # Concepts
//! - `std::sync::mpsc::channel`: many producers (`Sender` is `Clone`), one consumer. The Rust
//!   `queue.Queue()`, except that the *end of the stream is in the type system*: when every
//!   `Sender` is dropped, `recv()` returns `Err` and `for msg in rx` ends. No sentinel `None`.
//! - `std::sync::mpsc::sync_channel(cap)`: a bounded queue (`queue.Queue(maxsize=cap)`). When it
//!   is full, `send` blocks: a slow consumer slows the producers down (backpressure) instead of
//!   letting the queue, and memory, grow without limit. Measured below.
//! - `crossbeam_channel::select!`: wait on several channels at once, with a `tick` (periodic
//!   heartbeat) and a timeout (detect a stalled producer), and turn a finished channel into
//!   `never()` so the loop ends when all of them are done.
//! - Shutdown by dropping senders: the consumer does not need to be told; it sees disconnection.
//!
//! # Run
//! ```text
//! cargo run -p examples-threads --bin thread-channels
//! cargo run -p examples-threads --bin thread-channels -- --capacity 1 --consumer-delay-ms 10
//! cargo run -p examples-threads --bin thread-channels -- --capacity 64   # backpressure vanishes
//! cargo run -p examples-threads --bin thread-channels -- --json
//! ```
//!
//! # What to observe
//! - Part 1: each producer's messages arrive in order, but producers interleave.
//! - Part 2: with a bounded channel, the producers spend almost all their time *blocked in
//!   `send`* and the queue never holds more than `capacity` items; with an unbounded channel they
//!   finish at once and the backlog peaks at every message ever sent (that is memory).
//! - Part 3: heartbeats from `tick` while results arrive, one "no message for …" line when the
//!   slow producer stalls past the timeout, then the loop ends by itself when both producers
//!   have dropped their senders.
//!
//! # Exercises
//! 1. In part 1, comment out `drop(tx)`. Why does the program now hang, and which thread is stuck?
//! 2. Give part 2 two consumers. `std::sync::mpsc::Receiver` is not `Clone`; switch to
//!    `crossbeam_channel::bounded`, whose receivers are. Does the producers' blocked time halve?
//! 3. Replace `send` by `try_send` in the bounded producers and count the messages dropped when
//!    the queue is full (load shedding: the other answer to overload).
//! 4. Add a third channel to the `select!` loop: a "stop" channel that makes the loop return early
//!    when the main thread sends on it (or drops it), once it has handled what was already sent.
//!    Checked: `cargo run -p shared --bin exercises -- check threads/06`.

// === Lesson: copy from here ===

/// Part 1: many producers, one consumer, and the end of the stream in the type system.
mod fan_in {
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    use std::thread;

    /// Part 1: `n` producers send `per_producer` numbered messages each through one `mpsc` channel.
    /// Returns the sequence numbers received, grouped by producer.
    pub fn many_producers(
        n: usize,
        per_producer: u32,
    ) -> thread::Result<BTreeMap<usize, Vec<u32>>> {
        let (tx, rx) = mpsc::channel::<(usize, u32)>();
        let mut handles = Vec::new();
        for id in 0..n {
            let tx = tx.clone(); // one Sender per producer
            handles.push(thread::spawn(move || {
                for seq in 0..per_producer {
                    // `send` fails only if the receiver is gone; then there is no one to work for.
                    if tx.send((id, seq)).is_err() {
                        return;
                    }
                    thread::yield_now(); // let the others interleave
                }
                // `tx` is dropped here: this producer is done.
            }));
        }
        // The original Sender must go too, or `for .. in rx` would wait forever for it.
        drop(tx);
        let mut received: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for (id, seq) in rx {
            received.entry(id).or_default().push(seq);
        }
        for h in handles {
            h.join()?;
        }
        Ok(received)
    }

    #[cfg(test)]
    mod tests {
        use super::many_producers;

        #[test]
        fn every_message_arrives_in_order_per_producer() {
            let got = many_producers(4, 50).unwrap();
            assert_eq!(got.len(), 4);
            for seqs in got.values() {
                assert_eq!(*seqs, (0..50).collect::<Vec<_>>());
            }
        }
    }
}

/// Part 2: a bounded queue makes fast producers wait for a slow consumer (backpressure).
mod backpressure {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    #[derive(Debug, Clone, Copy)]
    pub enum Queue {
        Bounded(usize),
        Unbounded,
    }

    /// The figures of one backpressure run.
    #[derive(Debug)]
    pub struct BackpressureReport {
        pub channel: String,
        pub received: usize,
        /// Time a producer spent inside `send` (waiting for room in the queue), mean over producers.
        pub producer_blocked: Duration,
        /// A producer's whole running time, mean over producers.
        pub producer_total: Duration,
        /// Most messages ever waiting in the queue at once (sent and not yet received). Sampled by
        /// the producers with two counters, so it can read one more than the queue really held.
        pub peak_backlog: usize,
        pub wall: Duration,
    }

    /// Part 2: fast producers, slow consumer, through a bounded or an unbounded channel.
    pub fn backpressure(
        queue: Queue,
        producers: usize,
        messages: usize,
        consumer_delay: Duration,
    ) -> thread::Result<BackpressureReport> {
        // Both channel kinds behind one small enum, so the producers are the same code.
        enum Tx {
            Bounded(mpsc::SyncSender<Vec<u8>>),
            Unbounded(mpsc::Sender<Vec<u8>>),
        }
        impl Tx {
            fn send(&self, m: Vec<u8>) -> Result<(), mpsc::SendError<Vec<u8>>> {
                match self {
                    Tx::Bounded(tx) => tx.send(m),
                    Tx::Unbounded(tx) => tx.send(m),
                }
            }
            fn clone_sender(&self) -> Tx {
                match self {
                    Tx::Bounded(tx) => Tx::Bounded(tx.clone()),
                    Tx::Unbounded(tx) => Tx::Unbounded(tx.clone()),
                }
            }
        }
        let (tx, rx) = match queue {
            // capacity 0 is legal: a "rendezvous" channel, every send waits for a recv.
            Queue::Bounded(cap) => {
                let (tx, rx) = mpsc::sync_channel(cap);
                (Tx::Bounded(tx), rx)
            }
            Queue::Unbounded => {
                let (tx, rx) = mpsc::channel();
                (Tx::Unbounded(tx), rx)
            }
        };
        // Backlog = sent - received. Counted on the side with atomics, because std channels do not
        // expose their length (crossbeam's do: `rx.len()`).
        let sent = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();

        let mut handles = Vec::new();
        for _ in 0..producers {
            let tx = tx.clone_sender();
            let (sent, peak, received) = (sent.clone(), peak.clone(), received.clone());
            handles.push(thread::spawn(move || -> (Duration, Duration) {
                let began = Instant::now();
                let mut blocked = Duration::ZERO;
                for _ in 0..messages {
                    let msg = vec![0u8; 1024]; // "producing" is instantaneous here
                    let t = Instant::now();
                    if tx.send(msg).is_err() {
                        break; // consumer gone
                    }
                    blocked += t.elapsed();
                    // Sent but not yet received. Counted after `send` returns, so the consumer may
                    // already have taken it: hence the saturating subtraction.
                    let backlog = (sent.fetch_add(1, Ordering::SeqCst) + 1)
                        .saturating_sub(received.load(Ordering::SeqCst));
                    peak.fetch_max(backlog, Ordering::SeqCst);
                }
                (blocked, began.elapsed())
            }));
        }
        drop(tx);

        let mut count = 0;
        for _msg in rx {
            received.fetch_add(1, Ordering::SeqCst);
            count += 1;
            thread::sleep(consumer_delay); // the slow part: a disk, a network, a database
        }
        let mut producer_blocked = Duration::ZERO;
        let mut producer_total = Duration::ZERO;
        for h in handles {
            let (b, t) = h.join()?;
            producer_blocked += b;
            producer_total += t;
        }
        Ok(BackpressureReport {
            channel: match queue {
                Queue::Bounded(cap) => format!("sync_channel({cap})"),
                Queue::Unbounded => "channel() (unbounded)".into(),
            },
            received: count,
            producer_blocked: producer_blocked / producers as u32,
            producer_total: producer_total / producers as u32,
            peak_backlog: peak.load(Ordering::SeqCst),
            wall: start.elapsed(),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::{Queue, backpressure};
        use std::time::Duration;

        #[test]
        fn bounded_queue_never_holds_more_than_capacity_plus_in_flight() {
            let r = backpressure(Queue::Bounded(2), 3, 10, Duration::from_millis(1)).unwrap();
            assert_eq!(r.received, 30, "no message lost");
            assert!(r.peak_backlog <= 2 + 1, "{r:?}");
            let r = backpressure(Queue::Unbounded, 3, 10, Duration::ZERO).unwrap();
            assert_eq!(r.received, 30);
        }
    }
}

/// Part 3: `select!` over two producers, a heartbeat and an idle timeout.
mod select_demo {
    use crossbeam_channel::{Receiver, at, never, select, tick};
    use std::thread;
    use std::time::{Duration, Instant};

    /// Part 3: a `select!` loop over two producers, a heartbeat `tick` and an idle timeout.
    /// Returns the lines it prints (so a test can read them).
    pub fn select_loop(heartbeat: Duration, idle_timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        let stamp = || format!("{:>4} ms", start.elapsed().as_millis());
        // Two producers with their own rhythm. Bounded: the same backpressure rule as part 2.
        let (fast_tx, fast_rx) = crossbeam_channel::bounded::<u32>(8);
        let (slow_tx, slow_rx) = crossbeam_channel::bounded::<u32>(8);
        let fast = thread::spawn(move || {
            for i in 0..8 {
                thread::sleep(Duration::from_millis(30));
                if fast_tx.send(i).is_err() {
                    return;
                }
            }
        });
        let slow = thread::spawn(move || {
            // Three messages, then a stall longer than the idle timeout, then a last one.
            for (i, pause) in [80u64, 80, 80, 450].into_iter().enumerate() {
                thread::sleep(Duration::from_millis(pause));
                if slow_tx.send(i as u32).is_err() {
                    return;
                }
            }
        });

        let mut log = Vec::new();
        let ticker = tick(heartbeat);
        // `Option<Receiver>`: a disconnected channel is replaced by `never()`, a receiver that never
        // fires, so the `select!` keeps the same arms while one producer is finished. Without it,
        // a disconnected receiver is *always ready* (with `Err`) and the loop would spin.
        let mut fast_rx: Option<Receiver<u32>> = Some(fast_rx);
        let mut slow_rx: Option<Receiver<u32>> = Some(slow_rx);
        let (mut got_fast, mut got_slow) = (0, 0);
        let mut last_message = Instant::now();
        while fast_rx.is_some() || slow_rx.is_some() {
            let never_rx = never();
            // The idle timeout is measured from the last *message*; `default(timeout)` would not
            // work here because the ticker makes some arm ready every 100 ms.
            let idle = at(last_message + idle_timeout);
            select! {
                recv(fast_rx.as_ref().unwrap_or(&never_rx)) -> msg => match msg {
                    Ok(_) => {
                        got_fast += 1;
                        last_message = Instant::now();
                    }
                    Err(_) => {
                        log.push(format!("{} fast producer finished (sender dropped) after {got_fast} messages", stamp()));
                        fast_rx = None;
                    }
                },
                recv(slow_rx.as_ref().unwrap_or(&never_rx)) -> msg => match msg {
                    Ok(i) => {
                        got_slow += 1;
                        last_message = Instant::now();
                        log.push(format!("{} slow producer: message {i}", stamp()));
                    }
                    Err(_) => {
                        log.push(format!("{} slow producer finished (sender dropped) after {got_slow} messages", stamp()));
                        slow_rx = None;
                    }
                },
                recv(ticker) -> _ => {
                    log.push(format!("{} tick: {got_fast} fast + {got_slow} slow so far", stamp()));
                },
                recv(idle) -> _ => {
                    log.push(format!("{} timeout: no message for {} ms, is a producer stuck?", stamp(), idle_timeout.as_millis()));
                    last_message = Instant::now(); // re-arm rather than fire on every turn
                },
            }
        }
        for (name, h) in [("fast", fast), ("slow", slow)] {
            if h.join().is_err() {
                log.push(format!("the {name} producer panicked"));
            }
        }
        log.push(format!(
            "{} all senders dropped: loop over ({got_fast} fast + {got_slow} slow)",
            stamp()
        ));
        log
    }

    #[cfg(test)]
    mod tests {
        use super::select_loop;
        use std::time::Duration;

        #[test]
        fn select_loop_ends_when_all_senders_are_dropped() {
            let log = select_loop(Duration::from_millis(100), Duration::from_millis(250));
            let last = log.last().unwrap();
            assert!(
                last.contains("all senders dropped: loop over (8 fast + 4 slow)"),
                "{log:?}"
            );
            assert_eq!(
                log.iter()
                    .filter(|l| l.contains("finished (sender dropped)"))
                    .count(),
                2
            );
        }
    }
}

// === Harness: not part of the lesson ===

use std::time::Duration;

use backpressure::{BackpressureReport, Queue, backpressure};
use clap::Parser;
use shared::cli;
use shared::report::{fmt_duration, panic_message, print_json};

/// Channels between threads: mpsc, bounded backpressure, crossbeam select! with tick and timeout.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Producers in parts 1 and 2.
    #[arg(long, default_value_t = 3, value_parser = cli::usize_in(1, 64))]
    producers: usize,
    /// Messages sent by each producer in part 2.
    #[arg(long, default_value_t = 20, value_parser = cli::usize_in(0, 10_000))]
    messages: usize,
    /// Capacity of the bounded channel in part 2 (0: a rendezvous, every send waits for a recv).
    #[arg(long, default_value_t = 4, value_parser = cli::usize_in(0, 100_000))]
    capacity: usize,
    /// Time the slow consumer of part 2 spends on each message, in milliseconds.
    #[arg(long, default_value_t = 5, value_parser = cli::u64_in(0, 1_000))]
    consumer_delay_ms: u64,
    /// Print the backpressure figures as one JSON object (parts 1 and 3 stay quiet).
    #[arg(long)]
    json: bool,
}

/// A producer's panic, as an error for `?` (ours never panic: they stop when the receiver goes).
fn panicked(payload: Box<dyn std::any::Any + Send>) -> anyhow::Error {
    anyhow::anyhow!("a producer panicked: {}", panic_message(&*payload))
}

fn report_json(r: &BackpressureReport) -> serde_json::Value {
    serde_json::json!({
        "channel": r.channel,
        "received": r.received,
        "producer_blocked_s": r.producer_blocked.as_secs_f64(),
        "producer_total_s": r.producer_total.as_secs_f64(),
        "peak_backlog": r.peak_backlog,
        "wall_s": r.wall.as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let producers = args.producers;

    if !args.json {
        println!(
            "== 1. mpsc: {producers} producers, one consumer, end of stream = senders dropped"
        );
        let received = fan_in::many_producers(producers, 5).map_err(panicked)?;
        for (producer, seqs) in &received {
            println!("   producer {producer}: received {seqs:?} (in order)");
        }
    }

    if !args.json {
        println!(
            "\n== 2. backpressure: {producers} fast producers × {} messages, a consumer taking {} ms each",
            args.messages, args.consumer_delay_ms
        );
    }
    let delay = Duration::from_millis(args.consumer_delay_ms);
    let bounded = backpressure(
        Queue::Bounded(args.capacity),
        producers,
        args.messages,
        delay,
    )
    .map_err(panicked)?;
    let unbounded =
        backpressure(Queue::Unbounded, producers, args.messages, delay).map_err(panicked)?;
    if args.json {
        print_json(&serde_json::json!({
            "example": "thread-channels",
            "producers": producers,
            "messages_per_producer": args.messages,
            "consumer_delay_ms": args.consumer_delay_ms,
            "bounded": report_json(&bounded),
            "unbounded": report_json(&unbounded),
        }));
        return Ok(());
    }
    println!(
        "   {:<22} {:>8} {:>34}  {:>12} {:>10}",
        "channel", "received", "each producer: blocked / running", "peak backlog", "wall"
    );
    for r in [&bounded, &unbounded] {
        println!(
            "   {:<22} {:>8} {:>34}  {:>12} {:>10}",
            r.channel,
            r.received,
            format!(
                "{} / {}",
                fmt_duration(r.producer_blocked),
                fmt_duration(r.producer_total)
            ),
            r.peak_backlog,
            fmt_duration(r.wall),
        );
    }
    println!(
        "   Bounded: producers wait in send() (blocked ≈ running); the backlog stays at the capacity, {}\n   \
         (sampled counters may read one more). Unbounded: producers never wait and everything\n   \
         they produce piles up in memory until the consumer catches up.",
        args.capacity
    );

    println!("\n== 3. crossbeam select!: two producers, a 100 ms tick, a 250 ms idle timeout");
    let log = select_demo::select_loop(Duration::from_millis(100), Duration::from_millis(250));
    for line in log {
        println!("   {line}");
    }
    Ok(())
}
