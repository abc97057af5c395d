//! Real-time sensor streams: merge, windowed aggregation, and a slow sink (backpressure vs dropping).
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** (cas pratique "collecte de
//! données capteurs / streaming temps réel"): simulated sensors emit readings at different rates
//! as async `Stream`s; they are merged into one stream, sent through a bounded channel to a sink
//! slower than the sensors together, which aggregates per sensor and per time window
//! (min/mean/max). The pipeline runs twice: waiting when the channel is full (backpressure), then
//! dropping the reading instead.
//!
//! Crates: `tokio = { version = "1", features = ["rt-multi-thread", "macros", "sync", "time", "test-util"] }`,
//! `tokio-stream = "0.1"`, `futures = "0.3"`, `rand = "0.9"`, `rand_chacha = "0.9"`
//! (`test-util` is for the paused-clock tests only)
//!
//! # Concepts
//! - A `Stream` is an async iterator (`async for` in Python): `IntervalStream` + `map` makes a
//!   sensor; `futures::stream::select_all` merges any number of streams fairly.
//! - Event-time windows: a reading belongs to the window of the instant it was *measured*, not of
//!   the instant it was processed, so a late reading still lands in the right window.
//! - A bounded channel between producer and consumer: when it is full, `send().await` waits
//!   (backpressure: nothing is lost, but data gets *old*), `try_send` fails at once (fresh data, but
//!   readings are lost and counted). Which one is right depends on the data: billing events must not
//!   be dropped; a thermometer's reading from 3 s ago is worth less than the current one.
//! - A stream ends when told: `select!` against a deadline, then the channel closes when the
//!   producer drops its `Sender`, and the sink drains what is left.
//!
//! # Run
//! ```text
//! cargo run -p examples-async --bin sensor-stream
//! cargo run -p examples-async --bin sensor-stream -- --duration 5s --sink-ms 2
//! cargo run -p examples-async --bin sensor-stream -- --window 250ms --capacity 8 --json
//! ```
//!
//! # What to observe
//! - `backpressure`: produced = delivered, 0 dropped, but the max age of a reading at the sink grows
//!   with the run (the sensors are paced by the sink).
//! - `drop newest`: readings are dropped, and the max age stays around `capacity × sink time`.
//! - The windows: in drop mode the counts per window are smaller, min/mean/max barely change; in
//!   backpressure mode the last windows are thin or missing: when the run stops, the sink is
//!   still working through readings a second old.
//!
//! # Exercises
//! 1. Add a third policy, "drop oldest": a `tokio::sync::broadcast` channel does exactly that
//!    (a lagging receiver gets `Lagged(n)`). Compare ages.
//! 2. Batch in the sink: take up to 32 readings with `recv_many` and pay the sink cost once.
//! 3. Add a sensor that stops for a second; how would you detect it (a heartbeat per sensor)?
//! 4. Make the window a sliding window (last 1 s, updated every 250 ms).

// === Lesson: copy from here ===

/// Sensors as streams, merged, through a bounded channel, into a slow windowed sink.
mod sensors {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use futures::StreamExt;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use tokio::sync::mpsc;
    use tokio::time::Instant;
    use tokio_stream::wrappers::IntervalStream;

    /// The simulated sensors: name, period, starting value, random-walk step (350 readings/s).
    pub const SENSORS: [(&str, Duration, f64, f64); 3] = [
        ("temp_c", Duration::from_millis(5), 21.0, 0.05),
        ("humidity", Duration::from_millis(10), 45.0, 0.2),
        ("pressure", Duration::from_millis(20), 1013.0, 0.3),
    ];

    #[derive(Debug, Clone, Copy)]
    pub struct Reading {
        pub sensor: &'static str,
        /// When the sensor measured it (the interval's scheduled tick), not when it got
        /// processed.
        pub at: Instant,
        pub value: f64,
    }

    /// What the producer does when the channel is full.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Policy {
        /// `send().await`: wait for room.
        Backpressure,
        /// `try_send`: if full, drop this reading and count it.
        DropNewest,
    }

    /// One sensor's aggregate over one window.
    #[derive(Debug, Default, Clone)]
    pub struct Window {
        pub index: u64,
        pub sensor: &'static str,
        pub count: u64,
        pub min: f64,
        pub mean: f64,
        pub max: f64,
    }

    /// What one run of the pipeline produced, delivered and lost.
    #[derive(Debug)]
    pub struct PipelineReport {
        pub policy: Policy,
        pub produced: u64,
        pub delivered: u64,
        pub dropped: u64,
        /// The oldest a reading was when the sink got it.
        pub max_age: Duration,
        pub windows: Vec<Window>,
    }

    /// One sensor as a stream: a tick every `period`, a seeded random walk for the value.
    pub fn sensor(
        name: &'static str,
        period: Duration,
        start: f64,
        step: f64,
        seed: u64,
    ) -> impl futures::Stream<Item = Reading> + Send + Unpin {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut value = start;
        let mut interval = tokio::time::interval(period);
        // After a stall (backpressure), tick again at once for each missed period: a sensor
        // with a buffer that delivers its backlog. The readings keep their scheduled time.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        IntervalStream::new(interval).map(move |at| {
            value += rng.random_range(-step..=step);
            Reading {
                sensor: name,
                at,
                value,
            }
        })
    }

    /// Runs sensors → channel → sink for `duration` under `policy`.
    pub async fn pipeline(
        policy: Policy,
        duration: Duration,
        window: Duration,
        sink_cost: Duration,
        capacity: usize,
        seed: u64,
    ) -> PipelineReport {
        let start = Instant::now();
        let (tx, rx) = mpsc::channel::<Reading>(capacity.max(1));
        let sink = tokio::spawn(sink(rx, start, window, sink_cost));

        let mut merged = futures::stream::select_all(SENSORS.iter().zip(0u64..).map(
            |(&(name, period, v0, step), i)| sensor(name, period, v0, step, seed.wrapping_add(i)),
        ));
        let deadline = tokio::time::sleep(duration);
        tokio::pin!(deadline);
        let (mut produced, mut dropped) = (0u64, 0u64);
        loop {
            let reading = tokio::select! {
                () = &mut deadline => break,
                r = merged.next() => match r { Some(r) => r, None => break },
            };
            produced += 1;
            match policy {
                Policy::Backpressure => {
                    // Waits while the channel is full; the sensors' intervals fall behind.
                    if tx.send(reading).await.is_err() {
                        break; // the sink is gone
                    }
                }
                Policy::DropNewest => match tx.try_send(reading) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                },
            }
        }
        drop(tx); // closes the channel: the sink drains what is left, then ends
        let (delivered, max_age, windows) = sink.await.unwrap_or_default();
        PipelineReport {
            policy,
            produced,
            delivered,
            dropped,
            max_age,
            windows,
        }
    }

    /// The slow consumer: `sink_cost` per reading (a database insert, say), windowed
    /// aggregation by the time each reading was measured.
    async fn sink(
        mut rx: mpsc::Receiver<Reading>,
        start: Instant,
        window: Duration,
        sink_cost: Duration,
    ) -> (u64, Duration, Vec<Window>) {
        // (count, min, sum, max) per (window, sensor).
        let mut open: BTreeMap<(u64, &'static str), (u64, f64, f64, f64)> = BTreeMap::new();
        let (mut delivered, mut max_age) = (0u64, Duration::ZERO);
        while let Some(r) = rx.recv().await {
            tokio::time::sleep(sink_cost).await;
            delivered += 1;
            max_age = max_age.max(r.at.elapsed());
            let index = u64::try_from((r.at - start).as_nanos() / window.as_nanos().max(1))
                .unwrap_or(u64::MAX);
            let e =
                open.entry((index, r.sensor))
                    .or_insert((0, f64::INFINITY, 0.0, f64::NEG_INFINITY));
            e.0 += 1;
            e.1 = e.1.min(r.value);
            e.2 += r.value;
            e.3 = e.3.max(r.value);
        }
        let windows = open
            .into_iter()
            .map(|((index, sensor), (count, min, sum, max))| Window {
                index,
                sensor,
                count,
                min,
                mean: sum / count as f64,
                max,
            })
            .collect();
        (delivered, max_age, windows)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // Paused time makes the whole pipeline deterministic: intervals and sleeps run on a
        // virtual clock that jumps forward whenever every task is waiting.
        #[tokio::test(start_paused = true)]
        async fn backpressure_loses_nothing_but_readings_get_old() {
            let ms = Duration::from_millis;
            let s = pipeline(Policy::Backpressure, ms(2000), ms(500), ms(4), 32, 1).await;
            assert_eq!(s.dropped, 0);
            assert_eq!(s.produced, s.delivered);
            assert_eq!(s.windows.iter().map(|w| w.count).sum::<u64>(), s.delivered);
            // 350 readings/s into a sink of 250/s: after 2 s the backlog is ~0.8 s old.
            assert!(s.max_age > ms(500), "{s:?}");
        }

        #[tokio::test(start_paused = true)]
        async fn dropping_keeps_data_fresh_and_counts_every_loss() {
            let ms = Duration::from_millis;
            let s = pipeline(Policy::DropNewest, ms(2000), ms(500), ms(4), 32, 1).await;
            assert!(s.dropped > 0, "{s:?}");
            assert_eq!(
                s.produced,
                s.delivered + s.dropped,
                "every reading is delivered or counted as dropped"
            );
            assert_eq!(s.windows.iter().map(|w| w.count).sum::<u64>(), s.delivered);
            // At most a full channel ahead of it: 32 readings x 4 ms (plus one in the sink).
            assert!(s.max_age <= ms(33 * 4 + 1), "{s:?}");
            for w in &s.windows {
                assert!(w.min <= w.mean && w.mean <= w.max, "{w:?}");
            }
        }

        #[tokio::test(start_paused = true)]
        async fn the_largest_seed_does_not_overflow() {
            let ms = Duration::from_millis;
            let s = pipeline(Policy::DropNewest, ms(50), ms(10), ms(1), 4, u64::MAX).await;
            assert!(s.produced > 0);
        }
    }
}

// === Harness: not part of the lesson ===

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sensors::{PipelineReport, Policy, pipeline};
use shared::cli;

/// Simulated sensors → merged stream → bounded channel → slow windowed sink.
#[derive(Parser, Debug)]
#[command(name = "sensor-stream", version)]
struct Args {
    /// How long each of the two runs lasts.
    #[arg(long, default_value = "1500ms", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(3600)))]
    duration: Duration,
    /// Aggregation window.
    #[arg(long, default_value = "500ms", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(3600)))]
    window: Duration,
    /// Time the sink spends per reading, in milliseconds (sensors produce 350 readings/s).
    #[arg(long, default_value_t = 4, value_parser = cli::u64_in(0, 10_000))]
    sink_ms: u64,
    /// Capacity of the channel between the sensors and the sink.
    #[arg(long, default_value_t = 32, value_parser = cli::usize_in(1, 1_000_000))]
    capacity: usize,
    /// Seed of the simulated sensor values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let sink_cost = Duration::from_millis(args.sink_ms);
    let mut results = Vec::new();
    for policy in [Policy::Backpressure, Policy::DropNewest] {
        let s = rt.block_on(pipeline(
            policy,
            args.duration,
            args.window,
            sink_cost,
            args.capacity,
            args.seed,
        ));
        if !args.json {
            print_windows(&s, args.window);
        }
        results.push(s);
    }
    if args.json {
        let runs: Vec<serde_json::Value> = results.iter().map(report_json).collect();
        println!(
            "{}",
            serde_json::json!({ "duration_s": args.duration.as_secs_f64(), "runs": runs })
        );
    } else {
        println!(
            "\n{:<14} {:>9} {:>10} {:>8} {:>12}",
            "policy", "produced", "delivered", "dropped", "max age"
        );
        for s in &results {
            println!(
                "{:<14} {:>9} {:>10} {:>8} {:>9.0} ms",
                format!("{:?}", s.policy),
                s.produced,
                s.delivered,
                s.dropped,
                s.max_age.as_secs_f64() * 1000.0
            );
        }
    }
    Ok(())
}

/// One run as JSON (the keys scripts read: policy, produced, delivered, dropped, max_age_ms,
/// windows).
fn report_json(s: &PipelineReport) -> serde_json::Value {
    let windows: Vec<serde_json::Value> = s
        .windows
        .iter()
        .map(|w| {
            serde_json::json!({
                "index": w.index, "sensor": w.sensor, "count": w.count,
                "min": w.min, "mean": w.mean, "max": w.max,
            })
        })
        .collect();
    serde_json::json!({
        "policy": format!("{:?}", s.policy),
        "produced": s.produced,
        "delivered": s.delivered,
        "dropped": s.dropped,
        "max_age_ms": s.max_age.as_secs_f64() * 1000.0,
        "windows": windows,
    })
}

fn print_windows(s: &PipelineReport, window: Duration) {
    println!(
        "\n{:?}: windows of {window:?} (sensor: min / mean / max, count)",
        s.policy
    );
    let mut by_index: BTreeMap<u64, Vec<&sensors::Window>> = BTreeMap::new();
    for w in &s.windows {
        by_index.entry(w.index).or_default().push(w);
    }
    for (index, ws) in by_index {
        let cells: Vec<String> = ws
            .iter()
            .map(|w| {
                format!(
                    "{} {:.1}/{:.1}/{:.1} ({})",
                    w.sensor, w.min, w.mean, w.max, w.count
                )
            })
            .collect();
        println!("  window {index}: {}", cells.join(" | "));
    }
}
