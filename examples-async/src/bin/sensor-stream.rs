//! Real-time sensor streams: merge, windowed aggregation, and a slow sink (backpressure vs dropping).
//!
//! Course section 8.2 (cas pratique "collecte de données capteurs / streaming temps réel"): several
//! simulated sensors emit readings at different rates as async `Stream`s; they are merged into one
//! stream, sent through a bounded channel to a sink that is slower than the sensors together, which
//! aggregates per sensor and per time window (min/mean/max). The same pipeline runs twice: once
//! waiting when the channel is full (backpressure), once dropping the reading instead.
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

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::IntervalStream;

/// Simulated sensors → merged stream → bounded channel → slow windowed sink.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// How long each of the two runs lasts.
    #[arg(long, default_value = "1500ms", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Aggregation window.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Time the sink spends per reading, in milliseconds (sensors produce 350 readings/s).
    #[arg(long, default_value_t = 4)]
    sink_ms: u64,
    /// Capacity of the channel between the sensors and the sink.
    #[arg(long, default_value_t = 32)]
    capacity: usize,
    /// Seed of the simulated sensor values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The simulated sensors: name, period, starting value, random-walk step.
const SENSORS: [(&str, Duration, f64, f64); 3] = [
    ("temp_c", Duration::from_millis(5), 21.0, 0.05),
    ("humidity", Duration::from_millis(10), 45.0, 0.2),
    ("pressure", Duration::from_millis(20), 1013.0, 0.3),
];

#[derive(Debug, Clone, Copy)]
struct Reading {
    sensor: &'static str,
    /// When the sensor measured it (the interval's scheduled tick), not when it got processed.
    at: Instant,
    value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
enum Policy {
    /// `send().await`: wait for room.
    Backpressure,
    /// `try_send`: if full, drop this reading and count it.
    DropNewest,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Window {
    index: u64,
    sensor: &'static str,
    count: u64,
    min: f64,
    mean: f64,
    max: f64,
}

#[derive(Debug, serde::Serialize)]
struct Summary {
    policy: Policy,
    produced: u64,
    delivered: u64,
    dropped: u64,
    max_age_ms: f64,
    windows: Vec<Window>,
}

/// One sensor as a stream: a tick every `period`, a seeded random walk for the value.
fn sensor(
    name: &'static str,
    period: Duration,
    start: f64,
    step: f64,
    seed: u64,
) -> impl futures::Stream<Item = Reading> + Send + Unpin {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut value = start;
    let mut interval = tokio::time::interval(period);
    // After a stall (backpressure), tick again at once for each missed period: a sensor with a
    // buffer that delivers its backlog. The readings keep their scheduled time.
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
            print_summary(&s, args.window);
        }
        results.push(s);
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "duration_s": args.duration.as_secs_f64(), "runs": results })
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
                s.max_age_ms
            );
        }
    }
    Ok(())
}

fn print_summary(s: &Summary, window: Duration) {
    println!(
        "\n{:?}: windows of {window:?} (sensor: min / mean / max, count)",
        s.policy
    );
    let mut by_index: BTreeMap<u64, Vec<&Window>> = BTreeMap::new();
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

/// Run sensors → channel → sink for `duration` under `policy`.
async fn pipeline(
    policy: Policy,
    duration: Duration,
    window: Duration,
    sink_cost: Duration,
    capacity: usize,
    seed: u64,
) -> Summary {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<Reading>(capacity.max(1));
    let sink = tokio::spawn(sink(rx, start, window, sink_cost));

    let mut merged = futures::stream::select_all(
        SENSORS
            .iter()
            .enumerate()
            .map(|(i, &(name, period, v0, step))| sensor(name, period, v0, step, seed + i as u64)),
    );
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
                // Waits while the channel is full; the sensors' intervals fall behind meanwhile.
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
    Summary {
        policy,
        produced,
        delivered,
        dropped,
        max_age_ms: max_age.as_secs_f64() * 1000.0,
        windows,
    }
}

/// The slow consumer: `sink_cost` per reading (a database insert, say), windowed aggregation.
async fn sink(
    mut rx: mpsc::Receiver<Reading>,
    start: Instant,
    window: Duration,
    sink_cost: Duration,
) -> (u64, Duration, Vec<Window>) {
    let mut open: BTreeMap<(u64, &'static str), (u64, f64, f64, f64)> = BTreeMap::new();
    let (mut delivered, mut max_age) = (0u64, Duration::ZERO);
    while let Some(r) = rx.recv().await {
        tokio::time::sleep(sink_cost).await;
        delivered += 1;
        max_age = max_age.max(r.at.elapsed());
        let index = ((r.at - start).as_nanos() / window.as_nanos().max(1)) as u64;
        let e = open
            .entry((index, r.sensor))
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

    // Paused time makes the whole pipeline deterministic: intervals and sleeps run on a virtual
    // clock that jumps forward whenever every task is waiting.
    #[tokio::test(start_paused = true)]
    async fn backpressure_loses_nothing_but_readings_get_old() {
        let s = pipeline(
            Policy::Backpressure,
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_millis(4),
            32,
            1,
        )
        .await;
        assert_eq!(s.dropped, 0);
        assert_eq!(s.produced, s.delivered);
        assert_eq!(s.windows.iter().map(|w| w.count).sum::<u64>(), s.delivered);
        // 350 readings/s into a sink of 250/s: after 2 s the backlog is ~0.8 s old.
        assert!(s.max_age_ms > 500.0, "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_keeps_data_fresh_and_counts_every_loss() {
        let s = pipeline(
            Policy::DropNewest,
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_millis(4),
            32,
            1,
        )
        .await;
        assert!(s.dropped > 0, "{s:?}");
        assert_eq!(
            s.produced,
            s.delivered + s.dropped,
            "every reading is delivered or counted as dropped"
        );
        assert_eq!(s.windows.iter().map(|w| w.count).sum::<u64>(), s.delivered);
        // At most a full channel ahead of it: 32 readings x 4 ms (plus one in the sink).
        assert!(s.max_age_ms <= 33.0 * 4.0 + 1.0, "{s:?}");
        for w in &s.windows {
            assert!(w.min <= w.mean && w.mean <= w.max, "{w:?}");
        }
    }
}
