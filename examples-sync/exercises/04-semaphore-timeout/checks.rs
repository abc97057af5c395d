// Checks of sync/04: loom under `--cfg loom`, timeouts and a stress run under a watchdog
// otherwise.

#[cfg(not(loom))]
use shared::exercise::Check;

/// Loom: one permit, three threads taking it with `acquire_timeout` (loom's `wait_timeout`
/// never times out, so a long timeout behaves as `acquire`), every interleaving with at most 2
/// preemptions. A stolen wake-up taken without re-checking makes two holders at once.
#[cfg(loom)]
pub fn model() {
    use examples_sync::sync::{Arc, AtomicUsize, Ordering, thread};
    use std::time::Duration;
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let take = |sem: &Semaphore, inside: &AtomicUsize, timeout: Duration| {
            let permit = sem
                .acquire_timeout(timeout)
                .expect("a permit within the hour");
            let holders = inside.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(holders, 1, "two holders of a 1-permit semaphore");
            inside.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        };
        let others: Vec<_> = [Duration::from_secs(3600), Duration::MAX]
            .into_iter()
            .map(|timeout| {
                let (sem, inside) = (Arc::clone(&sem), Arc::clone(&inside));
                thread::spawn(move || take(&sem, &inside, timeout))
            })
            .collect();
        take(&sem, &inside, Duration::from_secs(3600));
        for t in others {
            t.join().expect("thread");
        }
        assert_eq!(sem.available(), 1, "every permit came back");
    });
}

#[cfg(not(loom))]
pub fn all() -> Check {
    use shared::exercise::{Jitter, ensure, stress, watchdog};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    watchdog("semaphore-timeout", Duration::from_secs(3), |progress| {
        // Timeouts: gives up when every permit is held, never before its time.
        let sem = Semaphore::new(1);
        let held = sem.acquire();
        let short = Duration::from_millis(2);
        let start = Instant::now();
        let got = sem.acquire_timeout(short).is_some();
        let waited = start.elapsed();
        ensure(!got, "never more holders than permits", || {
            "acquire_timeout granted a permit that another holder has".into()
        })?;
        ensure(
            waited >= short,
            "acquire_timeout waits its whole timeout",
            || format!("gave up after {waited:?}, before its {short:?}"),
        )?;
        drop(held);
        let free = sem.acquire_timeout(Duration::ZERO);
        ensure(free.is_some(), "a free permit is taken at once", || {
            "acquire_timeout(0) refused a free permit".into()
        })?;
        drop(free);
        let forever = sem.acquire_timeout(Duration::MAX);
        ensure(forever.is_some(), "any timeout is accepted", || {
            "acquire_timeout(Duration::MAX) did not return the free permit".into()
        })?;
        drop(forever);
        // A permit released while we wait is ours, well before the (long) timeout.
        std::thread::scope(|s| {
            let held = sem.acquire();
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(1));
                drop(held);
            });
            // A lost wake-up stalls here: the watchdog reports it.
            sem.acquire_timeout(Duration::from_secs(3600)).is_some()
        })
        .then_some(())
        .ok_or_else(|| {
            shared::exercise::Failure::property(
                "a released permit wakes a waiter",
                "acquire_timeout(1 h) returned None although a permit came back",
            )
        })?;
        progress.tick();

        // Stress: threads take and give back permits with long and very short timeouts.
        stress(30, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let permits = 1 + draw.below(2) as usize;
            let threads = 2 + draw.below(4) as usize;
            let sem = Arc::new(Semaphore::new(permits));
            let inside = Arc::new(AtomicUsize::new(0));
            let max_inside = Arc::new(AtomicUsize::new(0));
            std::thread::scope(|s| {
                for t in 0..threads {
                    let (sem, inside, max_inside) = (
                        Arc::clone(&sem),
                        Arc::clone(&inside),
                        Arc::clone(&max_inside),
                    );
                    s.spawn(move || {
                        let mut j = Jitter::new(seed, 1 + t as u64);
                        for _ in 0..200 {
                            j.pause();
                            let timeout = if j.below(4) == 0 {
                                Duration::from_micros(j.below(50))
                            } else {
                                Duration::from_secs(3600)
                            };
                            let Some(permit) = sem.acquire_timeout(timeout) else {
                                continue;
                            };
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            max_inside.fetch_max(now, Ordering::SeqCst);
                            j.pause();
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                            progress.tick();
                        }
                    });
                }
            });
            let max = max_inside.load(Ordering::SeqCst);
            ensure(max <= permits, "never more holders than permits", || {
                format!("{max} holders at once of a {permits}-permit semaphore")
            })?;
            let back = sem.available();
            ensure(back == permits, "every permit comes back", || {
                format!("{back} of {permits} permits free at the end")
            })
        })
    })
}
