//! Producer-consumer: M producers, N consumers, one bounded channel; backpressure you can watch.
//!
//! Course section **8.4 Patterns de concurrence — Producer-Consumer**. Python's version is
//! `queue.Queue(maxsize)` with `put`/`get` and a sentinel per consumer; here it is a bounded
//! `crossbeam_channel` (multi-producer, multi-consumer) and the sentinel is not needed: when the
//! last `Sender` is dropped the channel is *closed*, and every consumer's `recv` returns an error
//! once the queue is empty. Closing is the shutdown signal.
//!
//! Crates: `crossbeam-channel = "0.5"`
//!
//! # Concepts
//! - **Bounded queue = backpressure.** When consumers are slower, the queue fills and `send`
//!   blocks: producers are slowed to the consumers' pace instead of filling memory. When
//!   producers are slower, the queue stays empty and consumers wait in `recv`.
//! - **Where the time goes names the bottleneck**: producers blocked on a full queue → the
//!   consumers are the bottleneck; consumers waiting on an empty queue → the producers are. Both
//!   are measured (a `try_send`/`try_recv` first; only a call that would block is timed).
//! - **Clean shutdown** (Ctrl-C, SIGTERM or `--stop-after`): producers stop and drop their
//!   senders; consumers drain what is queued, then see the channel closed. Nothing queued is lost.
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
//!                                                 # raw channel throughput
//! cargo run -p examples-patterns --bin producer-consumer -- --python   # + python/producer_consumer.py
//! ```
//! Rates are per thread, in items per second; 0 means "as fast as possible".
//!
//! # What to observe
//! - The live bar shows the queue depth: pinned at capacity when consumers are slower, near zero
//!   when producers are. The final report names the bottleneck from the measured blocked times.
//! - Throughput is the smaller of `producers × produce-rate` and `consumers × consume-rate`; the
//!   capacity does not change it (try `--capacity 1` and `--capacity 1000`): a buffer only
//!   absorbs bursts, it cannot make the slow side faster.
//! - With rates at 0, a crossbeam channel moves millions of items per second, tens of times
//!   more than Python's `queue.Queue` (its lock and the GIL): `--python` runs the course's
//!   version (threads, `queue.Queue(maxsize)`, a sentinel per consumer) beside it. At paced
//!   rates both languages run at the slower side's pace.
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
//! 5. Checked: end the consumers by closing the channel, never on an empty queue
//!    (`cargo run -p shared --bin exercises -- check patterns/01`).

// === Lesson: copy from here ===

/// Producers, consumers, one bounded queue, and a monitor watching its depth.
mod producer_consumer {
    use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    /// What travels through the queue. `(producer, seq)` is unique, which is what makes the
    /// exactly-once check possible; a real item would carry a payload too.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Item {
        pub producer: u32,
        pub seq: u64,
    }

    #[derive(Debug, Clone)]
    pub struct QueueConfig {
        pub producers: u32,
        pub consumers: u32,
        /// Items each producer makes (unless stopped early).
        pub items: u64,
        /// Items per second per thread; 0 = as fast as possible.
        pub produce_rate: f64,
        pub consume_rate: f64,
        pub capacity: usize,
        /// Producers stop at this instant if they have not finished.
        pub deadline: Option<Instant>,
    }

    pub struct ProducerStats {
        pub produced: u64,
        /// Time spent blocked on a full queue.
        pub blocked: Duration,
    }

    pub struct ConsumerStats {
        /// The items this consumer saw, in order.
        pub items: Vec<Item>,
        /// Time spent waiting on an empty queue.
        pub waited: Duration,
    }

    /// Queue depth, sampled every millisecond by the monitor.
    #[derive(Debug, Default, Clone)]
    pub struct DepthStats {
        pub samples: u64,
        pub max: usize,
        pub mean: f64,
        /// Share of the samples where the queue was full (producers about to block).
        pub full: f64,
        /// Share of the samples where the queue was empty (consumers about to wait).
        pub empty: f64,
    }

    pub struct QueueRun {
        pub producers: Vec<ProducerStats>,
        pub consumers: Vec<ConsumerStats>,
        pub wall: Duration,
        pub stopped_early: bool,
        pub depth: DepthStats,
    }

    /// Paces a loop at `rate` per second on a fixed schedule (not "sleep 1/rate after each
    /// item", which drifts by the sleep's overshoot every time).
    struct Pace {
        period: Option<Duration>,
        next: Instant,
    }

    impl Pace {
        fn new(rate: f64) -> Pace {
            let period = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
            Pace {
                period,
                next: Instant::now(),
            }
        }

        /// Waits for the next slot; an oversleep is caught up on the next item. Sleeps in
        /// short slices until `stop()`: at a slow rate, a stop must not wait a whole period.
        fn wait(&mut self, stop: &dyn Fn() -> bool) {
            let Some(period) = self.period else { return };
            self.next += period;
            while let Some(d) = self.next.checked_duration_since(Instant::now()) {
                if stop() {
                    return;
                }
                thread::sleep(d.min(Duration::from_millis(50)));
            }
        }

        /// Restarts the schedule after time spent blocked: idle time is not credit.
        fn restart(&mut self) {
            self.next = Instant::now();
        }
    }

    fn producer(
        id: u32,
        cfg: &QueueConfig,
        tx: Sender<Item>,
        stop: &AtomicBool,
        made: &AtomicU64,
    ) -> ProducerStats {
        let mut pace = Pace::new(cfg.produce_rate);
        let (mut blocked, mut produced) = (Duration::ZERO, 0);
        let stopping =
            || stop.load(Ordering::Acquire) || cfg.deadline.is_some_and(|d| Instant::now() >= d);
        for seq in 0..cfg.items {
            pace.wait(&stopping); // "making" the item takes 1/rate seconds
            if stopping() {
                break;
            }
            let item = Item { producer: id, seq };
            // Try first, so only the time actually spent blocked on a full queue is counted.
            match tx.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(item)) => {
                    let t = Instant::now();
                    // Blocks until a consumer makes room; fails only if every consumer is gone.
                    if tx.send(item).is_err() {
                        break;
                    }
                    blocked += t.elapsed();
                    pace.restart();
                }
                Err(TrySendError::Disconnected(_)) => break,
            }
            produced += 1;
            made.fetch_add(1, Ordering::Relaxed);
        }
        // `tx` is dropped here. When the last producer's clone drops, the channel closes.
        ProducerStats { produced, blocked }
    }

    fn consumer(cfg: &QueueConfig, rx: Receiver<Item>, consumed: &AtomicU64) -> ConsumerStats {
        let mut pace = Pace::new(cfg.consume_rate);
        let (mut items, mut waited) = (Vec::new(), Duration::ZERO);
        loop {
            let item = match rx.try_recv() {
                Ok(item) => item,
                Err(TryRecvError::Empty) => {
                    let t = Instant::now();
                    // Blocks until an item arrives, or fails once the channel is closed AND
                    // empty: the clean end of the stream, no sentinel needed.
                    let Ok(item) = rx.recv() else { break };
                    waited += t.elapsed();
                    pace.restart();
                    item
                }
                Err(TryRecvError::Disconnected) => break,
            };
            // "Processing" the item takes 1/rate seconds. Never interrupted: what was queued is
            // drained, that is the contract (a second Ctrl-C is the way out).
            pace.wait(&|| false);
            items.push(item);
            consumed.fetch_add(1, Ordering::Relaxed);
        }
        ConsumerStats { items, waited }
    }

    /// Runs producers and consumers to the end (or an early stop). `on_tick(depth, consumed)`
    /// is called about every 100 ms from the monitor thread, for a progress display.
    pub fn run_producer_consumer(
        cfg: &QueueConfig,
        stop: &AtomicBool,
        on_tick: &(dyn Fn(usize, u64) + Sync),
    ) -> std::io::Result<QueueRun> {
        let (tx, rx) = bounded::<Item>(cfg.capacity);
        let (made, consumed, finished) =
            (AtomicU64::new(0), AtomicU64::new(0), AtomicBool::new(false));
        let start = Instant::now();
        // Scoped threads may borrow `cfg`, `stop` and the counters, and the scope joins every
        // thread before returning. Each spawn error returns early: the handles made so far are
        // dropped with `tx`/`rx`, so the threads already started see the channel closed and end.
        let (producers, consumers, depth) = thread::scope(|s| -> std::io::Result<_> {
            let spawn = |name: String| thread::Builder::new().name(name);
            let consumers = (0..cfg.consumers)
                .map(|i| {
                    let rx = rx.clone();
                    spawn(format!("consumer-{i}")).spawn_scoped(s, || consumer(cfg, rx, &consumed))
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            let made = &made;
            let producers = (0..cfg.producers)
                .map(|i| {
                    let tx = tx.clone();
                    spawn(format!("producer-{i}"))
                        .spawn_scoped(s, move || producer(i, cfg, tx, stop, made))
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            // The monitor only reads `len()`: a snapshot, stale at once, fine for a gauge. Its
            // Receiver does not keep the channel open (only Senders do).
            let gauge = rx.clone();
            let (finished, consumed) = (&finished, &consumed);
            let monitor = spawn("monitor".into()).spawn_scoped(s, move || {
                let (mut d, mut sum, mut full, mut empty) =
                    (DepthStats::default(), 0u64, 0u64, 0u64);
                let mut last_tick = Instant::now();
                while !finished.load(Ordering::Acquire) {
                    let len = gauge.len();
                    (d.samples, sum, d.max) = (d.samples + 1, sum + len as u64, d.max.max(len));
                    full += u64::from(len >= cfg.capacity);
                    empty += u64::from(len == 0);
                    if last_tick.elapsed() >= Duration::from_millis(100) {
                        on_tick(len, consumed.load(Ordering::Relaxed));
                        last_tick = Instant::now();
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                let n = d.samples.max(1) as f64;
                (d.mean, d.full, d.empty) = (sum as f64 / n, full as f64 / n, empty as f64 / n);
                d
            });
            // Drop our own ends: with our `tx` alive the channel would never close and the
            // consumers would wait forever (the classic producer-consumer hang).
            drop((tx, rx));
            let producers: Vec<_> = producers
                .into_iter()
                .map(|h| h.join().expect("a producer panicked"))
                .collect();
            let consumers: Vec<_> = consumers
                .into_iter()
                .map(|h| h.join().expect("a consumer panicked"))
                .collect();
            finished.store(true, Ordering::Release);
            let depth = monitor?.join().expect("the monitor panicked");
            Ok((producers, consumers, depth))
        })?;
        let produced: u64 = producers.iter().map(|p| p.produced).sum();
        Ok(QueueRun {
            stopped_early: produced < cfg.items.saturating_mul(u64::from(cfg.producers)),
            producers,
            consumers,
            wall: start.elapsed(),
            depth,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::super::exactly_once::{DeliveryCheck, verify};
        use super::*;
        use std::sync::Arc;

        fn cfg(producers: u32, consumers: u32, items: u64, capacity: usize) -> QueueConfig {
            QueueConfig {
                producers,
                consumers,
                items,
                produce_rate: 0.0,
                consume_rate: 0.0,
                capacity,
                deadline: None,
            }
        }

        fn run_and_verify(cfg: &QueueConfig, stop: &AtomicBool) -> (DeliveryCheck, bool) {
            let out = run_producer_consumer(cfg, stop, &|_, _| {}).unwrap();
            let produced: Vec<u64> = out.producers.iter().map(|p| p.produced).collect();
            let check = verify(&produced, out.consumers.into_iter().flat_map(|c| c.items));
            (check, out.stopped_early)
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
}

/// The check that makes the example trustworthy: every item made was consumed exactly once.
mod exactly_once {
    use super::producer_consumer::Item;

    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct DeliveryCheck {
        pub produced: u64,
        pub consumed: u64,
        pub duplicates: u64,
        pub missing: u64,
        /// Items consumed that no producer claims to have made (would be a bug in the check).
        pub unexpected: u64,
    }

    impl DeliveryCheck {
        pub fn ok(&self) -> bool {
            self.produced == self.consumed
                && self.duplicates == 0
                && self.missing == 0
                && self.unexpected == 0
        }
    }

    /// Producer `p` made items `(p, 0..produced[p])`; compare with everything consumed.
    pub fn verify(produced: &[u64], consumed: impl IntoIterator<Item = Item>) -> DeliveryCheck {
        let mut seen: Vec<Item> = consumed.into_iter().collect();
        seen.sort_unstable();
        let mut check = DeliveryCheck {
            produced: produced.iter().sum(),
            consumed: seen.len() as u64,
            ..DeliveryCheck::default()
        };
        check.duplicates = seen.windows(2).filter(|w| w[0] == w[1]).count() as u64;
        seen.dedup();
        let made = |item: &Item| produced.get(item.producer as usize).copied().unwrap_or(0);
        check.unexpected = seen.iter().filter(|item| item.seq >= made(item)).count() as u64;
        let valid = seen.len() as u64 - check.unexpected;
        check.missing = check.produced - valid.min(check.produced);
        check
    }

    #[cfg(test)]
    mod tests {
        use super::*;

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
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail};
use clap::Parser;
use exactly_once::{DeliveryCheck, verify};
use examples_patterns::python_peer;
use indicatif::ProgressBar;
use producer_consumer::{DepthStats, QueueConfig, run_producer_consumer};
use serde::Serialize;
use shared::cli;
use shared::report::{fmt_duration, print_json};
use std::time::{Duration, Instant};

/// M producers, N consumers, one bounded channel; checks that every item is consumed exactly once.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Producer threads.
    #[arg(long, default_value_t = 2, value_parser = cli::u32_in(1, 256))]
    producers: u32,
    /// Consumer threads.
    #[arg(long, default_value_t = 2, value_parser = cli::u32_in(1, 256))]
    consumers: u32,
    /// Items each producer makes (unless stopped early).
    #[arg(long, default_value_t = 1500, value_parser = cli::u64_in(0, 1_000_000_000))]
    items: u64,
    /// Items per second per producer (0 = as fast as possible).
    #[arg(long, default_value_t = 1000.0, value_parser = cli::f64_in(0.0, 1e9))]
    produce_rate: f64,
    /// Items per second per consumer (0 = as fast as possible).
    #[arg(long, default_value_t = 600.0, value_parser = cli::f64_in(0.0, 1e9))]
    consume_rate: f64,
    /// Queue capacity: how many items may wait between producers and consumers.
    #[arg(long, default_value_t = 64, value_parser = cli::usize_in(1, 1_000_000))]
    capacity: usize,
    /// Stop producing after this many seconds (queued items are still consumed).
    #[arg(long, value_parser = cli::seconds_in(0.0, 86_400.0))]
    stop_after: Option<Duration>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/producer_consumer.py: `queue.Queue(maxsize)`,
    /// threads, a sentinel per consumer) with the same flags, and print both in one table.
    #[arg(long)]
    python: bool,
}

/// The figures of one run, as printed by `--json`.
#[derive(Serialize)]
struct ProducerConsumerReport {
    producers: u32,
    consumers: u32,
    capacity: usize,
    produce_rate: f64,
    consume_rate: f64,
    check: CheckJson,
    exactly_once: bool,
    stopped_early: bool,
    wall_s: f64,
    items_per_s: f64,
    predicted_items_per_s: Option<f64>,
    producers_blocked: f64,
    consumers_waiting: f64,
    bottleneck: &'static str,
    per_consumer: Vec<u64>,
    depth: DepthJson,
    /// `--python`: the recipe's JSON, as it printed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct CheckJson {
    produced: u64,
    consumed: u64,
    duplicates: u64,
    missing: u64,
    unexpected: u64,
}

impl From<&DeliveryCheck> for CheckJson {
    fn from(c: &DeliveryCheck) -> Self {
        CheckJson {
            produced: c.produced,
            consumed: c.consumed,
            duplicates: c.duplicates,
            missing: c.missing,
            unexpected: c.unexpected,
        }
    }
}

#[derive(Serialize)]
struct DepthJson {
    samples: u64,
    max: usize,
    mean: f64,
    full: f64,
    empty: f64,
}

impl From<&DepthStats> for DepthJson {
    fn from(d: &DepthStats) -> Self {
        DepthJson {
            samples: d.samples,
            max: d.max,
            mean: d.mean,
            full: d.full,
            empty: d.empty,
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let python = args.python.then(|| python_peer::python_or_exit(&[]));
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let cfg = QueueConfig {
        producers: args.producers,
        consumers: args.consumers,
        items: args.items,
        produce_rate: args.produce_rate,
        consume_rate: args.consume_rate,
        capacity: args.capacity,
        deadline: args.stop_after.map(|d| Instant::now() + d),
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
    let run = run_producer_consumer(&cfg, &stop, &|len, consumed| {
        bar.set_position(consumed);
        // A text gauge: full = backpressure on producers, empty = consumers starving.
        let filled = len.saturating_mul(30).div_ceil(cap).min(30);
        depth_line.set_message(format!(
            "[{}{}] {len}/{cap}",
            "#".repeat(filled),
            " ".repeat(30 - filled)
        ));
    })
    .context("starting the threads")?;
    bar.finish_and_clear();
    depth_line.finish_and_clear();

    let produced: Vec<u64> = run.producers.iter().map(|p| p.produced).collect();
    let per_consumer: Vec<u64> = run.consumers.iter().map(|c| c.items.len() as u64).collect();
    let blocked: Duration = run.producers.iter().map(|p| p.blocked).sum();
    let waited: Duration = run.consumers.iter().map(|c| c.waited).sum();
    let check = verify(&produced, run.consumers.into_iter().flat_map(|c| c.items));
    let wall = run.wall.as_secs_f64().max(1e-9);
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
    let report = ProducerConsumerReport {
        producers: args.producers,
        consumers: args.consumers,
        capacity: args.capacity,
        produce_rate: args.produce_rate,
        consume_rate: args.consume_rate,
        check: CheckJson::from(&check),
        exactly_once: check.ok(),
        stopped_early: run.stopped_early,
        wall_s: wall,
        items_per_s: check.consumed as f64 / wall,
        predicted_items_per_s: predicted_rate(&args),
        producers_blocked,
        consumers_waiting,
        bottleneck,
        per_consumer,
        depth: DepthJson::from(&run.depth),
        python: None,
    };
    let mut report = report;
    // A stop by Ctrl-C or SIGTERM skips the Python run: the user asked to stop.
    if let Some(py) = python.filter(|_| !stop.load(std::sync::atomic::Ordering::Acquire)) {
        report.python = Some(python_run(&py, &args)?);
    }
    if args.json {
        print_json(&report);
    } else {
        print_report(&report, run.wall);
        if let Some(py) = &report.python {
            print_python_table(&report, py);
        }
    }
    if !report.exactly_once {
        bail!("exactly-once check failed: {check:?}");
    }
    if let Some(py) = &report.python {
        python_agrees(&report, &args, py)?;
    }
    Ok(())
}

/// Runs python/producer_consumer.py with the same flags.
fn python_run(py: &shared::python::Python, args: &Args) -> Result<serde_json::Value> {
    let mut a = vec![
        format!("--producers={}", args.producers),
        format!("--consumers={}", args.consumers),
        format!("--items={}", args.items),
        format!("--produce-rate={}", args.produce_rate),
        format!("--consume-rate={}", args.consume_rate),
        format!("--capacity={}", args.capacity),
    ];
    if let Some(d) = args.stop_after {
        a.push(format!("--stop-after={}", d.as_secs_f64()));
    }
    python_peer::run_recipe(py, "producer_consumer", &a)
}

/// The results that must agree: both exactly once, and (when neither stopped early) the same
/// number of items made and consumed.
fn python_agrees(r: &ProducerConsumerReport, args: &Args, py: &serde_json::Value) -> Result<()> {
    if py["exactly_once"] != true {
        bail!("the Python version lost or duplicated items: {py}");
    }
    let produced = python_peer::u64_field(py, "produced")?;
    let consumed = python_peer::u64_field(py, "consumed")?;
    let full = args.items.saturating_mul(u64::from(args.producers));
    if !r.stopped_early && produced == full && (r.check.consumed, consumed) != (full, full) {
        bail!(
            "Rust consumed {} items, Python {consumed}, of {full}",
            r.check.consumed
        );
    }
    Ok(())
}

fn print_python_table(r: &ProducerConsumerReport, py: &serde_json::Value) {
    let num = |k: &str| py[k].as_f64().unwrap_or(f64::NAN);
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let rows = vec![
        vec![
            "Rust (crossbeam bounded)".into(),
            fmt_duration(Duration::from_secs_f64(r.wall_s)),
            format!("{:.0}", r.items_per_s),
            format!("{}", r.check.consumed),
            pct(r.producers_blocked),
            pct(r.consumers_waiting),
            if r.exactly_once { "yes" } else { "NO" }.into(),
        ],
        vec![
            "Python (queue.Queue)".into(),
            fmt_duration(Duration::try_from_secs_f64(num("wall_s")).unwrap_or_default()),
            format!("{:.0}", num("items_per_s")),
            format!("{}", py["consumed"]),
            pct(num("producers_blocked")),
            pct(num("consumers_waiting")),
            if py["exactly_once"] == true {
                "yes"
            } else {
                "NO"
            }
            .into(),
        ],
    ];
    println!();
    println!(
        "the same run in the course's Python ({}):",
        py["interpreter"].as_str().unwrap_or("python3")
    );
    print!(
        "{}",
        python_peer::table(
            &[
                "version",
                "wall",
                "items/s",
                "consumed",
                "producers blocked",
                "consumers waiting",
                "exactly once",
            ],
            &rows,
        )
    );
    println!(
        "Python / Rust wall time: {} (paced rates: both run at the slower side's pace; at \
         --produce-rate 0 --consume-rate 0 the queue itself is measured)",
        python_peer::ratio(num("wall_s"), r.wall_s)
    );
}

/// The slower side's total rate (a side at 0 = unlimited does not limit).
fn predicted_rate(args: &Args) -> Option<f64> {
    let offered = (args.produce_rate > 0.0).then(|| args.produce_rate * f64::from(args.producers));
    let capacity = (args.consume_rate > 0.0).then(|| args.consume_rate * f64::from(args.consumers));
    match (offered, capacity) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn print_report(r: &ProducerConsumerReport, wall: Duration) {
    if r.stopped_early {
        println!("stopped early: producers stopped, the queue was drained");
    }
    let c = &r.check;
    println!(
        "produced {}, consumed {} (per consumer: {:?}), duplicates {}, missing {}: {}",
        c.produced,
        c.consumed,
        r.per_consumer,
        c.duplicates,
        c.missing,
        if r.exactly_once {
            "every item consumed exactly once"
        } else {
            "CHECK FAILED"
        }
    );
    println!(
        "throughput {:.0} items/s in {}{}",
        r.items_per_s,
        fmt_duration(wall),
        r.predicted_items_per_s
            .map_or(String::new(), |p| format!(" (predicted {p:.0} items/s)")),
    );
    let d = &r.depth;
    println!(
        "queue depth: mean {:.1}/{}, max {}, full {:.0}% of the time, empty {:.0}%",
        d.mean,
        r.capacity,
        d.max,
        d.full * 100.0,
        d.empty * 100.0
    );
    println!(
        "producers blocked on a full queue {:.0}% of their time; consumers waited on an empty one {:.0}%",
        r.producers_blocked * 100.0,
        r.consumers_waiting * 100.0
    );
    println!("bottleneck: {}", r.bottleneck);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn conservation_under_random_rates() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let stop = AtomicBool::new(false);
        for round in 0..6 {
            let c = QueueConfig {
                producers: rng.random_range(1..5),
                consumers: rng.random_range(1..5),
                items: rng.random_range(0..60),
                capacity: rng.random_range(1..10),
                // Fast enough to keep the test short, varied enough to flip the bottleneck.
                produce_rate: [0.0, 2_000.0, 5_000.0][rng.random_range(0..3)],
                consume_rate: [0.0, 2_000.0, 5_000.0][rng.random_range(0..3)],
                deadline: None,
            };
            let run = run_producer_consumer(&c, &stop, &|_, _| {}).unwrap();
            let produced: Vec<u64> = run.producers.iter().map(|p| p.produced).collect();
            let check = verify(&produced, run.consumers.into_iter().flat_map(|c| c.items));
            assert!(check.ok(), "round {round}, {c:?}: {check:?}");
            assert_eq!(check.produced, c.items * u64::from(c.producers));
        }
    }

    #[test]
    fn every_numeric_flag_has_bounds() {
        let parse = |extra: &[&str]| Args::try_parse_from([&["producer-consumer"], extra].concat());
        for bad in [
            &["--stop-after=-1"][..],
            &["--produce-rate", "NaN"],
            &["--consume-rate=-1"],
            &["--capacity", "0"],
            &["--items", "18446744073709551615"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let ok = parse(&["--produce-rate", "0", "--stop-after", "0.5"]).unwrap();
        assert_eq!(ok.stop_after, Some(Duration::from_millis(500)));
        assert_eq!(predicted_rate(&ok), Some(1200.0));
    }
}
