// Checks of sync/03: loom under `--cfg loom`, a stress run with a watchdog otherwise.

#[cfg(not(loom))]
use shared::exercise::Check;

/// Loom: 2 producers (3 items) and 2 consumers on a 1-slot queue, every interleaving (2 preemptions at
/// most, which already holds every lost wake-up of a queue this small). A lost wake-up is a
/// state where every thread is blocked: loom reports it as a deadlock.
#[cfg(loom)]
pub fn model() {
    use examples_sync::sync::{Arc, thread};
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let q = Arc::new(BoundedQueue::new(1));
        // Producer 0 pushes twice, so that it can refill the slot between a wake-up and the
        // moment the woken producer gets the lock back.
        let producers: Vec<_> = [vec![0u32, 1], vec![2]]
            .into_iter()
            .map(|items| {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    for item in items {
                        q.push(item);
                        assert!(
                            q.len() <= 1,
                            "capacity never exceeded: 2 items in a 1-slot queue"
                        );
                    }
                })
            })
            .collect();
        let consumer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.pop())
        };
        let mut got = vec![q.pop(), q.pop()];
        got.push(consumer.join().expect("consumer"));
        for p in producers {
            p.join().expect("producer");
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2], "items conserved");
        assert_eq!(q.len(), 0);
    });
}

#[cfg(not(loom))]
pub fn all() -> Check {
    use shared::exercise::{Jitter, ensure, exactly_once, stress, watchdog};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    watchdog("bounded-queue", Duration::from_secs(3), |progress| {
        stress(40, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let capacity = 1 + draw.below(3) as usize;
            let producers = 1 + draw.below(4) as usize;
            let consumers = 1 + draw.below(4) as usize;
            let per_producer = 300;
            let total = producers * per_producer;
            let q = Arc::new(BoundedQueue::new(capacity));
            let max_len = Arc::new(AtomicUsize::new(0));
            let popped = std::thread::scope(|s| {
                for p in 0..producers {
                    let (q, max_len) = (Arc::clone(&q), Arc::clone(&max_len));
                    s.spawn(move || {
                        let mut j = Jitter::new(seed, 1 + p as u64);
                        for i in 0..per_producer {
                            j.pause();
                            q.push((p, i));
                            max_len.fetch_max(q.len(), Ordering::Relaxed);
                        }
                    });
                }
                // Consumers share out `total` pops, so every one of them ends.
                let handles: Vec<_> = (0..consumers)
                    .map(|c| {
                        let q = Arc::clone(&q);
                        let share = total / consumers + usize::from(c < total % consumers);
                        s.spawn(move || {
                            let mut j = Jitter::new(seed, 100 + c as u64);
                            (0..share)
                                .map(|_| {
                                    j.pause();
                                    let item = q.pop();
                                    progress.tick();
                                    item
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("consumer"))
                    .collect::<Vec<_>>()
            });
            let all: Vec<(usize, usize)> = popped.iter().flatten().copied().collect();
            let expected = (0..producers).flat_map(|p| (0..per_producer).map(move |i| (p, i)));
            exactly_once(expected, all.iter().copied())?;
            let seen_max = max_len.load(Ordering::Relaxed);
            ensure(seen_max <= capacity, "capacity never exceeded", || {
                format!("{seen_max} items in a queue of capacity {capacity}")
            })?;
            // FIFO: each consumer sees each producer's items in increasing order.
            for got in &popped {
                for p in 0..producers {
                    let mine: Vec<usize> = got.iter().filter(|x| x.0 == p).map(|x| x.1).collect();
                    ensure(mine.windows(2).all(|w| w[0] < w[1]), "FIFO order", || {
                        format!("a consumer got producer {p}'s items out of order: {mine:?}")
                    })?;
                }
            }
            Ok(())
        })
    })
}
