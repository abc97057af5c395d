// Checks of sync/05: loom under `--cfg loom`, an ordering scenario and a stress run under a
// watchdog otherwise.

#[cfg(not(loom))]
use shared::exercise::Check;

/// Loom: three threads lock once each while a fourth wakes every waiter once for nothing (a
/// spurious wake-up, which any condvar may do), every interleaving with at most 2 preemptions:
/// one holder at a time, tickets served in order, nobody left asleep (loom reports that as a
/// deadlock). Without the spurious wake-up loom would not catch `notify_one`: its condvar wakes
/// waiters in the order they went to sleep, which is ticket order.
#[cfg(loom)]
pub fn model() {
    use examples_sync::sync::{Arc, AtomicUsize, Mutex, Ordering, thread};
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let lock = Arc::new(FairLock::new());
        let served = Arc::new(Mutex::new(Vec::new()));
        let inside = Arc::new(AtomicUsize::new(0));
        let enter = |lock: &FairLock, served: &Mutex<Vec<u64>>, inside: &AtomicUsize| {
            let guard = lock.lock();
            assert_eq!(
                inside.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders at once"
            );
            served.lock().expect("served").push(guard.ticket());
            inside.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
        };
        let others: Vec<_> = (0..2)
            .map(|_| {
                let (lock, served, inside) =
                    (Arc::clone(&lock), Arc::clone(&served), Arc::clone(&inside));
                thread::spawn(move || enter(&lock, &served, &inside))
            })
            .collect();
        let spurious = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || lock.turn_changed.notify_all())
        };
        enter(&lock, &served, &inside);
        spurious.join().expect("spurious waker");
        for t in others {
            t.join().expect("thread");
        }
        let order = served.lock().expect("served").clone();
        assert_eq!(order, [0, 1, 2], "tickets served out of order");
        assert_eq!(lock.queued(), 0);
    });
}

#[cfg(not(loom))]
pub fn all() -> Check {
    use shared::exercise::{Jitter, ensure, stress, watchdog};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    watchdog("fair-lock", Duration::from_secs(3), |progress| {
        // A polite thread queues behind a holder that unlocks and re-locks at once (greedy):
        // first come, first served means the polite thread goes first.
        let lock = FairLock::new();
        let entered = Mutex::new(Vec::new());
        let held = lock.lock();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = lock.lock();
                entered.lock().expect("entered").push("polite");
            });
            while lock.queued() < 2 {
                std::thread::yield_now(); // until the polite thread has its ticket
            }
            drop(held);
            let _again = lock.lock();
            entered.lock().expect("entered").push("greedy");
        });
        let order = entered.into_inner().expect("entered");
        ensure(
            order == ["polite", "greedy"],
            "first come, first served",
            || {
                format!(
                    "a thread that queued while the lock was held got in after the holder re-locked: {order:?}"
                )
            },
        )?;
        progress.tick();

        stress(30, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let threads = 3 + draw.below(3) as usize;
            let per_thread = 100;
            let lock = Arc::new(FairLock::new());
            let served = Arc::new(Mutex::new(Vec::new()));
            let inside = Arc::new(AtomicUsize::new(0));
            let overlap = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicUsize::new(0));
            std::thread::scope(|s| {
                // Spurious wake-ups (legal for any condvar) during the first half of the run,
                // the last one while at least two threads wait: they re-queue in a new order,
                // and a lock that wakes only one of them must still wake the right one.
                let (waker_lock, waker_done) = (Arc::clone(&lock), Arc::clone(&done));
                s.spawn(move || {
                    let mut j = Jitter::new(seed, 500);
                    let total = threads * per_thread;
                    loop {
                        let finished = waker_done.load(Ordering::SeqCst);
                        let crowded = waker_lock.queued() >= 3; // a holder and two waiters
                        waker_lock.turn_changed.notify_all();
                        if finished >= total || (finished >= total / 2 && crowded) {
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(10 + j.below(100)));
                    }
                });
                for t in 0..threads {
                    let (lock, served, inside, overlap, done) = (
                        Arc::clone(&lock),
                        Arc::clone(&served),
                        Arc::clone(&inside),
                        Arc::clone(&overlap),
                        Arc::clone(&done),
                    );
                    s.spawn(move || {
                        let mut j = Jitter::new(seed, 1 + t as u64);
                        for _ in 0..per_thread {
                            j.pause();
                            let guard = lock.lock();
                            if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                                overlap.fetch_add(1, Ordering::SeqCst);
                            }
                            served.lock().expect("served").push(guard.ticket());
                            j.pause();
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(guard);
                            done.fetch_add(1, Ordering::SeqCst);
                            progress.tick();
                        }
                    });
                }
            });
            let overlaps = overlap.load(Ordering::SeqCst);
            ensure(overlaps == 0, "one holder at a time", || {
                format!("{overlaps} times a thread got the lock while another held it")
            })?;
            let order = served.lock().expect("served").clone();
            let misplaced = order.iter().enumerate().find(|(i, t)| *i as u64 != **t);
            ensure(misplaced.is_none(), "tickets served in order", || {
                let (i, t) = misplaced.expect("found above");
                format!("holder number {i} had ticket {t}: served out of turn")
            })?;
            let queued = lock.queued();
            ensure(queued == 0, "every ticket is done", || {
                format!("{queued} tickets still queued after every thread finished")
            })
        })
    })
}
