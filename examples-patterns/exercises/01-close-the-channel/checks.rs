// Checks of patterns/01, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Jitter, Progress, exactly_once, stress, watchdog};
use std::time::Duration;

/// Producers that are sometimes slow to start and send in bursts: the queue goes empty while
/// they still have items, which is when a consumer that guesses the end leaves too early.
fn producers(seed: u64, count: usize, items: u64) -> Vec<Producer> {
    (0..count)
        .map(|p| {
            let mut j = Jitter::new(seed, 1 + p as u64);
            let slow_start = Duration::from_micros(200 + j.below(800));
            Box::new(move |tx: &crossbeam_channel::Sender<u64>| {
                std::thread::sleep(slow_start);
                for i in 0..items {
                    if j.below(16) == 0 {
                        std::thread::sleep(Duration::from_micros(50 + j.below(150))); // a lull
                    }
                    j.pause();
                    let _ = tx.send(p as u64 * 1_000_000 + i);
                }
            }) as Producer
        })
        .collect()
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let (count, consumers) = (1 + draw.below(4) as usize, 1 + draw.below(4) as usize);
    let items = draw.below(120);
    // Mostly room for everything (a consumer that leaves early loses items, visibly), now and
    // then a small queue (producers then wait for the consumers: backpressure).
    let capacity = if draw.below(4) == 0 {
        1 + draw.below(8) as usize
    } else {
        count * items as usize + 1
    };
    let got = produce_and_consume(producers(seed, count, items), consumers, capacity);
    progress.tick();
    let expected = (0..count as u64).flat_map(|p| (0..items).map(move |i| p * 1_000_000 + i));
    exactly_once(expected, got).map_err(|mut f| {
        f.detail = format!(
            "{count} producers x {items} items, {consumers} consumers, capacity {capacity}: {}",
            f.detail
        );
        f
    })
}

pub fn all() -> Check {
    watchdog("close-the-channel", Duration::from_secs(3), |p| {
        stress(200, |seed| one_run(seed, p))
    })
}
