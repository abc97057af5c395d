//! Producer-consumer: M producers, N consumers, one bounded channel; backpressure you can watch.
//!
//! Course section **8.4 Patterns de concurrence — Producer-Consumer**. Python's version is
//! `queue.Queue(maxsize)` with `put`/`get` and a sentinel per consumer; here it is a bounded
//! `crossbeam_channel` (multi-producer, multi-consumer) and the sentinel is not needed: when the
//! last `Sender` is dropped the channel is *closed*, and every consumer's `recv` returns an error
//! once the queue is empty. Closing is the shutdown signal.
//!
//! # Concepts
//! - **Bounded queue = backpressure.** When consumers are slower, the queue fills and `send`
//!   blocks: producers are slowed to the consumers' pace instead of filling memory. When
//!   producers are slower, the queue stays empty and consumers wait in `recv`.
//! - **Where the time goes tells you the bottleneck**: producers blocked on a full queue →
//!   consumers are the bottleneck; consumers waiting on an empty queue → producers are.
//!   The program measures both (a `try_send`/`try_recv` first, and time the blocking call only
//!   when it would block).
//! - **Clean shutdown** (Ctrl-C or `--stop-after`): producers stop producing and drop their
//!   senders; consumers drain what is already queued, then see the channel closed. Nothing queued
//!   is lost, so the exactly-once check holds even after an early stop.
//! - **The invariant, checked at the end**: every item produced is consumed exactly once (no
//!   loss, no duplicate), by sorting what the consumers saw and comparing with what was made.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin producer-consumer                    # consumers are the bottleneck
//! cargo run -p examples-patterns --bin producer-consumer -- --consumers 4   # now producers are
//! cargo run -p examples-patterns --bin producer-consumer -- --capacity 1    # a rendezvous-like hand-off
//! cargo run -p examples-patterns --bin producer-consumer -- --stop-after 1  # early stop, still exactly once
//! cargo run --release -p examples-patterns --bin producer-consumer -- --produce-rate 0 --consume-rate 0 --items 1000000
//!                                                 # raw channel throughput (compare: ../shared/peers/py_queues.py)
//! ```
//! Rates are per thread, in items per second; 0 means "as fast as possible".
//!
//! # What to observe
//! - The live bar shows the queue depth: pinned at capacity when consumers are slower, near zero
//!   when producers are. The final report names the bottleneck from the measured blocked times.
//! - Throughput is the smaller of `producers × produce-rate` and `consumers × consume-rate`; the
//!   capacity does not change it (try `--capacity 1` and `--capacity 1000`): a buffer only
//!   absorbs bursts, it cannot make the slow side faster.
//! - With rates at 0, a crossbeam channel moves millions of items per second; Python's
//!   `queue.Queue` moves a few hundred thousand (its lock and the GIL).
//!
//! Measured (release, 2 cores): defaults 1,199 items/s (predicted 1,200; the queue is full 88%
//! of the time, producers blocked 32%: the consumers are the bottleneck); `--consumers 4`:
//! 1,997 items/s (predicted 2,000; the queue is empty 85% of the time: now the producers are).
//! At max speed with 2+2 threads: 16–19 M items/s through `bounded(1024)`, against 0.20 M/s for
//! Python's `queue.Queue(1024)` (`py_queues.py`, same machine).
//!
//! # Exercises
//! 1. Make the queue unbounded (`crossbeam_channel::unbounded()`) with fast producers and slow
//!    consumers, and watch the memory grow with `--items 5000000`. Why is bounded the default?
//! 2. Replace the blocking `send` by `send_timeout(.., 50 ms)` and drop (count) what times out:
//!    a load-shedding producer. Which invariant changes?
//! 3. Give each item a priority and use two channels with `crossbeam_channel::select!` biased to
//!    the urgent one. What happens to low-priority items under load?
//! 4. Make one consumer panic on its 100th item. What does the check report, and how would you
//!    make a crashed consumer's in-flight item not be lost?

use anyhow::{Context, Result, bail};
use clap::Parser;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
use indicatif::ProgressBar;
use serde::Serialize;
use shared::report::{fmt_duration, print_json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// M producers, N consumers, one bounded channel; checks that every item is consumed exactly once.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Producer threads.
    #[arg(long, default_value_t = 2)]
    producers: u32,
    /// Consumer threads.
    #[arg(long, default_value_t = 2)]
    consumers: u32,
    /// Items each producer makes (unless stopped early).
    #[arg(long, default_value_t = 1500)]
    items: u64,
    /// Items per second per producer (0 = as fast as possible).
    #[arg(long, default_value_t = 1000.0)]
    produce_rate: f64,
    /// Items per second per consumer (0 = as fast as possible).
    #[arg(long, default_value_t = 600.0)]
    consume_rate: f64,
    /// Queue capacity: how many items may wait between producers and consumers.
    #[arg(long, default_value_t = 64)]
    capacity: usize,
    /// Stop producing after this many seconds (queued items are still consumed).
    #[arg(long)]
    stop_after: Option<f64>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What travels through the queue. `(producer, seq)` is unique, which is what makes the
/// exactly-once check possible; a real item would carry a payload too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    producer: u32,
    seq: u64,
}

/// The knobs of one run (the CLI minus presentation), so tests can drive it directly.
#[derive(Debug, Clone)]
struct Config {
    producers: u32,
    consumers: u32,
    items: u64,
    produce_rate: f64,
    consume_rate: f64,
    capacity: usize,
    /// Producers stop at this instant if they have not finished (`--stop-after`).
    deadline: Option<Instant>,
}

/// What one producer did.
struct ProducerStats {
    produced: u64,
    blocked: Duration,
}

/// What one consumer did: the items it saw (in order), and how long it waited for work.
struct ConsumerStats {
    items: Vec<Item>,
    waited: Duration,
}

/// The outcome of a run, before verification.
struct Outcome {
    producers: Vec<ProducerStats>,
    consumers: Vec<ConsumerStats>,
    wall: Duration,
    stopped_early: bool,
    depth: DepthStats,
}

/// Queue depth sampled every millisecond by the monitor thread.
#[derive(Debug, Default, Clone, Serialize)]
struct DepthStats {
    samples: u64,
    max: usize,
    mean: f64,
    /// Fraction of samples where the queue was full (producers about to block).
    full: f64,
    /// Fraction of samples where the queue was empty (consumers about to wait).
    empty: f64,
}

/// Paces a loop at `rate` iterations per second, on a fixed schedule (not "sleep 1/rate after
/// each item", which drifts by the sleep's overshoot every time).
struct Pace {
    period: Option<Duration>,
    next: Instant,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            period: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: Instant::now(),
        }
    }

    /// Wait for the next slot. An oversleep is caught up on the next item, so the average rate
    /// is exact even though `sleep` always overshoots a little.
    fn wait(&mut self) {
        let Some(period) = self.period else { return };
        self.next += period;
        if let Some(d) = self.next.checked_duration_since(Instant::now()) {
            thread::sleep(d);
        }
    }

    /// Restart the schedule from now, after time spent blocked on the queue: idle time is not
    /// credit (a worker has a speed, not a quota).
    fn restart(&mut self) {
        self.next = Instant::now();
    }
}

fn producer(
    id: u32,
    cfg: &Config,
    tx: Sender<Item>,
    stop: &AtomicBool,
    produced_so_far: &AtomicU64,
) -> ProducerStats {
    let mut pace = Pace::new(cfg.produce_rate);
    let mut blocked = Duration::ZERO;
    let mut produced = 0;
    for seq in 0..cfg.items {
        if stop.load(Ordering::Acquire) || cfg.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        pace.wait(); // "making" the item takes 1/rate seconds
        let item = Item { producer: id, seq };
        // Try first, so only the time actually spent blocked on a full queue is counted.
        match tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(item)) => {
                let t = Instant::now();
                // `send` on a bounded channel blocks until a consumer makes room.
                // It fails only if every receiver is gone (consumers crashed): stop producing.
                if tx.send(item).is_err() {
                    break;
                }
                blocked += t.elapsed();
                pace.restart();
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
        produced += 1;
        produced_so_far.fetch_add(1, Ordering::Relaxed);
    }
    // `tx` is dropped here. When the last producer's clone drops, the channel closes.
    ProducerStats { produced, blocked }
}

fn consumer(cfg: &Config, rx: Receiver<Item>, consumed_so_far: &AtomicU64) -> ConsumerStats {
    let mut pace = Pace::new(cfg.consume_rate);
    let mut items = Vec::new();
    let mut waited = Duration::ZERO;
    loop {
        let item = match rx.try_recv() {
            Ok(item) => item,
            Err(TryRecvError::Empty) => {
                let t = Instant::now();
                // Blocks until an item arrives, or returns Err once the channel is closed AND
                // empty: that is the clean end of the stream, no sentinel needed.
                match rx.recv() {
                    Ok(item) => {
                        waited += t.elapsed();
                        pace.restart();
                        item
                    }
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        pace.wait(); // "processing" the item takes 1/rate seconds
        items.push(item);
        consumed_so_far.fetch_add(1, Ordering::Relaxed);
    }
    ConsumerStats { items, waited }
}

/// Run producers and consumers to completion (or early stop). `on_tick` is called by the
/// monitor about every 100 ms with (queue depth, consumed so far), for the progress bar.
fn run(cfg: &Config, stop: &AtomicBool, on_tick: &(dyn Fn(usize, u64) + Sync)) -> Result<Outcome> {
    let (tx, rx) = bounded::<Item>(cfg.capacity);
    let produced_so_far = AtomicU64::new(0);
    let consumed_so_far = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    let start = Instant::now();

    // Scoped threads may borrow `cfg`, `stop` and the counters: no Arc needed, and the scope
    // joins every thread before returning, even if one panics.
    let (producers, consumers, depth) = thread::scope(|s| -> Result<_> {
        let mut consumer_handles = Vec::new();
        for i in 0..cfg.consumers {
            let rx = rx.clone();
            let consumed = &consumed_so_far;
            consumer_handles.push(
                thread::Builder::new()
                    .name(format!("consumer-{i}"))
                    .spawn_scoped(s, move || consumer(cfg, rx, consumed))
                    .context("spawn consumer")?,
            );
        }
        let mut producer_handles = Vec::new();
        for i in 0..cfg.producers {
            let tx = tx.clone();
            let produced = &produced_so_far;
            producer_handles.push(
                thread::Builder::new()
                    .name(format!("producer-{i}"))
                    .spawn_scoped(s, move || producer(i, cfg, tx, stop, produced))
                    .context("spawn producer")?,
            );
        }
        // The monitor only reads `len()`: a snapshot, already stale when it returns, which is
        // fine for a gauge. Its Receiver clone does not keep the channel open (only Senders
        // do), so it cannot delay the consumers' end of stream.
        let monitor = {
            let rx = rx.clone();
            let (finished, consumed) = (&finished, &consumed_so_far);
            thread::Builder::new()
                .name("monitor".into())
                .spawn_scoped(s, move || {
                    let mut d = DepthStats::default();
                    let mut sum = 0u64;
                    let (mut full, mut empty) = (0u64, 0u64);
                    let mut last_tick = Instant::now();
                    while !finished.load(Ordering::Acquire) {
                        let len = rx.len();
                        d.samples += 1;
                        sum += len as u64;
                        d.max = d.max.max(len);
                        full += u64::from(len >= cfg.capacity);
                        empty += u64::from(len == 0);
                        if last_tick.elapsed() >= Duration::from_millis(100) {
                            on_tick(len, consumed.load(Ordering::Relaxed));
                            last_tick = Instant::now();
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    if d.samples > 0 {
                        let n = d.samples as f64;
                        (d.mean, d.full, d.empty) =
                            (sum as f64 / n, full as f64 / n, empty as f64 / n);
                    }
                    d
                })
                .context("spawn monitor")?
        };
        // Drop main's own handles: otherwise the channel would never close (our `tx`) and the
        // consumers would wait forever. Forgetting this is the classic producer-consumer hang.
        drop(tx);
        drop(rx);

        let producers: Vec<ProducerStats> = producer_handles
            .into_iter()
            .map(|h| h.join().expect("a producer panicked"))
            .collect();
        let consumers: Vec<ConsumerStats> = consumer_handles
            .into_iter()
            .map(|h| h.join().expect("a consumer panicked"))
            .collect();
        finished.store(true, Ordering::Release);
        let depth = monitor.join().expect("the monitor panicked");
        Ok((producers, consumers, depth))
    })?;

    let produced: u64 = producers.iter().map(|p| p.produced).sum();
    Ok(Outcome {
        stopped_early: produced < cfg.items.saturating_mul(u64::from(cfg.producers)),
        producers,
        consumers,
        wall: start.elapsed(),
        depth,
    })
}

/// The exactly-once check.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
struct Check {
    produced: u64,
    consumed: u64,
    duplicates: u64,
    missing: u64,
    /// Items consumed that no producer claims to have made (would be a bug in the check).
    unexpected: u64,
}

impl Check {
    fn ok(&self) -> bool {
        self.produced == self.consumed
            && self.duplicates == 0
            && self.missing == 0
            && self.unexpected == 0
    }
}

/// Producer `p` made items `(p, 0..produced[p])`; compare with everything consumed.
fn verify(produced: &[u64], consumed: impl IntoIterator<Item = Item>) -> Check {
    let mut seen: Vec<Item> = consumed.into_iter().collect();
    seen.sort_unstable();
    let mut check = Check {
        produced: produced.iter().sum(),
        consumed: seen.len() as u64,
        ..Check::default()
    };
    for w in seen.windows(2) {
        check.duplicates += u64::from(w[0] == w[1]);
    }
    seen.dedup();
    for item in &seen {
        let made = produced.get(item.producer as usize).copied().unwrap_or(0);
        check.unexpected += u64::from(item.seq >= made);
    }
    let valid = seen.len() as u64 - check.unexpected;
    check.missing = check.produced - valid.min(check.produced);
    check
}

#[derive(Serialize)]
struct Summary {
    producers: u32,
    consumers: u32,
    capacity: usize,
    produce_rate: f64,
    consume_rate: f64,
    check: Check,
    exactly_once: bool,
    stopped_early: bool,
    wall_s: f64,
    items_per_s: f64,
    predicted_items_per_s: Option<f64>,
    producers_blocked: f64,
    consumers_waiting: f64,
    bottleneck: &'static str,
    per_consumer: Vec<u64>,
    depth: DepthStats,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.producers == 0 || args.consumers == 0 || args.capacity == 0 {
        bail!("--producers, --consumers and --capacity must be at least 1");
    }
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let cfg = Config {
        producers: args.producers,
        consumers: args.consumers,
        items: args.items,
        produce_rate: args.produce_rate,
        consume_rate: args.consume_rate,
        capacity: args.capacity,
        deadline: args
            .stop_after
            .map(|s| Instant::now() + Duration::from_secs_f64(s)),
    };
    let offered = (args.produce_rate > 0.0).then(|| args.produce_rate * f64::from(args.producers));
    let capacity_rate =
        (args.consume_rate > 0.0).then(|| args.consume_rate * f64::from(args.consumers));
    let predicted = match (offered, capacity_rate) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let rate = |r: f64| {
        if r > 0.0 {
            format!("{r:.0}/s")
        } else {
            "max speed".into()
        }
    };
    if !args.json {
        println!(
            "{} producers x {}, {} consumers x {}, queue capacity {}",
            args.producers,
            rate(args.produce_rate),
            args.consumers,
            rate(args.consume_rate),
            args.capacity
        );
    }

    let total = args.items.saturating_mul(u64::from(args.producers));
    // Two lines under one MultiProgress (two independent bars would overwrite each other).
    let mp = shared::progress::multi(args.json);
    let bar = mp.add(ProgressBar::new(total).with_style(shared::progress::bar_style()));
    bar.set_message("consumed");
    let depth_line = mp.add(ProgressBar::new_spinner().with_style(shared::progress::line_style()));
    depth_line.set_prefix("queue");
    let cap = args.capacity;
    let outcome = run(&cfg, &stop, &|len, consumed| {
        bar.set_position(consumed);
        // A text gauge: full = backpressure on producers, empty = consumers starving.
        let filled = (len * 30).div_ceil(cap).min(30);
        depth_line.set_message(format!(
            "[{}{}] {len}/{cap}",
            "#".repeat(filled),
            " ".repeat(30 - filled)
        ));
    })?;
    bar.finish_and_clear();
    depth_line.finish_and_clear();

    let produced: Vec<u64> = outcome.producers.iter().map(|p| p.produced).collect();
    let per_consumer: Vec<u64> = outcome
        .consumers
        .iter()
        .map(|c| c.items.len() as u64)
        .collect();
    let blocked: Duration = outcome.producers.iter().map(|p| p.blocked).sum();
    let waited: Duration = outcome.consumers.iter().map(|c| c.waited).sum();
    let check = verify(
        &produced,
        outcome.consumers.into_iter().flat_map(|c| c.items),
    );
    let wall = outcome.wall.as_secs_f64().max(1e-9);
    // Share of the threads' time spent blocked, per side.
    let producers_blocked = blocked.as_secs_f64() / (wall * f64::from(args.producers));
    let consumers_waiting = waited.as_secs_f64() / (wall * f64::from(args.consumers));
    let bottleneck = if producers_blocked > 0.05 && producers_blocked > consumers_waiting {
        "consumers (producers wait for room in a full queue)"
    } else if consumers_waiting > 0.05 {
        "producers (consumers wait on an empty queue)"
    } else {
        "balanced (neither side waits much)"
    };
    let items_per_s = check.consumed as f64 / wall;
    let exactly_once = check.ok();

    if args.json {
        print_json(&Summary {
            producers: args.producers,
            consumers: args.consumers,
            capacity: args.capacity,
            produce_rate: args.produce_rate,
            consume_rate: args.consume_rate,
            exactly_once,
            stopped_early: outcome.stopped_early,
            wall_s: wall,
            items_per_s,
            predicted_items_per_s: predicted,
            producers_blocked,
            consumers_waiting,
            bottleneck,
            per_consumer,
            depth: outcome.depth,
            check: check.clone(),
        });
    } else {
        if outcome.stopped_early {
            println!("stopped early: producers stopped, the queue was drained");
        }
        println!(
            "produced {}, consumed {} (per consumer: {per_consumer:?}), duplicates {}, missing {}: {}",
            check.produced,
            check.consumed,
            check.duplicates,
            check.missing,
            if exactly_once {
                "every item consumed exactly once"
            } else {
                "CHECK FAILED"
            }
        );
        println!(
            "throughput {items_per_s:.0} items/s in {}{}",
            fmt_duration(outcome.wall),
            predicted.map_or(String::new(), |p| format!(" (predicted {p:.0} items/s)")),
        );
        let d = &outcome.depth;
        println!(
            "queue depth: mean {:.1}/{}, max {}, full {:.0}% of the time, empty {:.0}%",
            d.mean,
            args.capacity,
            d.max,
            d.full * 100.0,
            d.empty * 100.0
        );
        println!(
            "producers blocked on a full queue {:.0}% of their time; consumers waited on an empty one {:.0}%",
            producers_blocked * 100.0,
            consumers_waiting * 100.0
        );
        println!("bottleneck: {bottleneck}");
    }
    if !exactly_once {
        bail!("exactly-once check failed: {check:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::sync::Arc;

    fn cfg(producers: u32, consumers: u32, items: u64, capacity: usize) -> Config {
        Config {
            producers,
            consumers,
            items,
            produce_rate: 0.0,
            consume_rate: 0.0,
            capacity,
            deadline: None,
        }
    }

    fn run_and_verify(cfg: &Config, stop: &AtomicBool) -> (Check, bool) {
        let out = run(cfg, stop, &|_, _| {}).unwrap();
        let produced: Vec<u64> = out.producers.iter().map(|p| p.produced).collect();
        let check = verify(&produced, out.consumers.into_iter().flat_map(|c| c.items));
        (check, out.stopped_early)
    }

    #[test]
    fn verify_detects_loss_duplicates_and_strangers() {
        let it = |producer, seq| Item { producer, seq };
        assert!(verify(&[2, 1], [it(0, 1), it(1, 0), it(0, 0)]).ok());
        let c = verify(&[2], [it(0, 0)]);
        assert_eq!((c.missing, c.ok()), (1, false));
        let c = verify(&[2], [it(0, 0), it(0, 1), it(0, 1)]);
        assert_eq!((c.duplicates, c.ok()), (1, false));
        let c = verify(&[1], [it(0, 0), it(3, 0)]);
        assert_eq!((c.unexpected, c.ok()), (1, false));
    }

    #[test]
    fn every_item_consumed_exactly_once_at_full_speed() {
        let stop = AtomicBool::new(false);
        for (p, c, cap) in [(1, 1, 1), (4, 1, 2), (1, 4, 8), (3, 3, 1000)] {
            let (check, early) = run_and_verify(&cfg(p, c, 5_000, cap), &stop);
            assert!(
                check.ok(),
                "{p} producers, {c} consumers, cap {cap}: {check:?}"
            );
            assert_eq!(check.consumed, 5_000 * u64::from(p));
            assert!(!early);
        }
    }

    #[test]
    fn conservation_under_random_rates() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let stop = AtomicBool::new(false);
        for round in 0..6 {
            let mut c = cfg(
                rng.random_range(1..5),
                rng.random_range(1..5),
                rng.random_range(0..60),
                rng.random_range(1..10),
            );
            // Fast enough to keep the test short, varied enough to flip the bottleneck.
            c.produce_rate = [0.0, 2_000.0, 5_000.0][rng.random_range(0..3)];
            c.consume_rate = [0.0, 2_000.0, 5_000.0][rng.random_range(0..3)];
            let (check, _) = run_and_verify(&c, &stop);
            assert!(check.ok(), "round {round}, {c:?}: {check:?}");
            assert_eq!(check.produced, c.items * u64::from(c.producers));
        }
    }

    #[test]
    fn early_stop_drains_the_queue_and_loses_nothing() {
        // Slow consumers and a big queue: at the stop, many items are still queued.
        let mut c = cfg(3, 2, 1_000_000, 500);
        c.consume_rate = 20_000.0;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let stopper = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            s.store(true, Ordering::Release);
        });
        let (check, early) = run_and_verify(&c, &stop);
        stopper.join().unwrap();
        assert!(early, "the run should have been cut short");
        assert!(check.ok(), "{check:?}");
        assert!(check.produced > 0);
    }

    #[test]
    fn deadline_stops_producers() {
        let mut c = cfg(2, 2, u64::MAX, 16);
        c.produce_rate = 10_000.0;
        c.deadline = Some(Instant::now() + Duration::from_millis(30));
        let (check, early) = run_and_verify(&c, &AtomicBool::new(false));
        assert!(early && check.ok(), "{check:?}");
    }
}
