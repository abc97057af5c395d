// Checks of patterns/02, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Jitter, Progress, ensure, stress, watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// source (as fast as it can) → bounded(c0) → stage(c1) → stage(c2) → sink (slow). Returns
/// what the sink received and the most items ever in flight between source and sink.
fn run(seed: u64, items: u64, caps: [usize; 3], progress: &Progress) -> (Vec<u64>, usize) {
    let (sent, received, peak) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (src_tx, src_rx) = crossbeam_channel::bounded::<u64>(caps[0]);
    let source = {
        let (sent, received, peak) = (Arc::clone(&sent), Arc::clone(&received), Arc::clone(&peak));
        std::thread::spawn(move || {
            for i in 0..items {
                if src_tx.send(i).is_err() {
                    break;
                }
                let s = sent.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(
                    s.saturating_sub(received.load(Ordering::SeqCst)),
                    Ordering::SeqCst,
                );
            }
        })
    };
    // `Fn` stages: each one's noise behind a Mutex (only its own thread ever locks it).
    let j1 = std::sync::Mutex::new(Jitter::new(seed, 1));
    let (mid, stage1) = spawn_stage(src_rx, caps[1], move |x: u64| {
        j1.lock().expect("jitter").pause();
        x * 3
    });
    let j2 = std::sync::Mutex::new(Jitter::new(seed, 2));
    let (out, stage2) = spawn_stage(mid, caps[2], move |x: u64| {
        j2.lock().expect("jitter").pause();
        x + 1
    });
    let mut got = Vec::new();
    for v in out.iter() {
        let r = received.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(
            sent.load(Ordering::SeqCst).saturating_sub(r),
            Ordering::SeqCst,
        );
        got.push(v);
        progress.tick();
        std::thread::sleep(Duration::from_micros(20)); // the slow sink
    }
    for h in [source, stage1, stage2] {
        h.join().expect("a pipeline thread panicked");
    }
    (got, peak.load(Ordering::SeqCst))
}

pub fn all() -> Check {
    watchdog("bounded-stage", Duration::from_secs(5), |progress| {
        stress(12, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let caps = [
                1 + draw.below(4) as usize,
                1 + draw.below(4) as usize,
                1 + draw.below(4) as usize,
            ];
            let items = 400;
            let (got, peak) = run(seed, items, caps, progress);
            let expected: Vec<u64> = (0..items).map(|x| x * 3 + 1).collect();
            ensure(got.len() as u64 == items, "every item arrives once", || {
                format!("{items} sent, {} received", got.len())
            })?;
            ensure(
                got == expected,
                "items arrive in order, each transformed once",
                || {
                    let i = got
                        .iter()
                        .zip(&expected)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    format!("item {i}: got {}, expected {}", got[i], expected[i])
                },
            )?;
            // Queues of c0, c1 and c2, one item in each stage's hands, one in the source's and
            // one in the sink's as they count it.
            let bound = caps.iter().sum::<usize>() + 4;
            ensure(
                peak <= bound,
                "memory bounded: backpressure reaches the source",
                || {
                    format!(
                        "{peak} items were in flight between the source and the slow sink; queues of \
                     {caps:?} hold at most {bound} with the items in hand: something buffers \
                     without a bound"
                    )
                },
            )
        })
    })
}
