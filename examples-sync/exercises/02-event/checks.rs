// Checks of sync/02: loom under `--cfg loom`, timeouts and a stress race under a watchdog
// otherwise.

#[cfg(not(loom))]
use shared::exercise::Check;

/// Loom: two threads waiting (one with `wait`, one with a long `wait_timeout`: loom never times
/// out) and a `set()` racing them, under every interleaving with at most 2 preemptions. A waiter
/// left asleep with the flag set makes every thread block: loom reports a deadlock.
#[cfg(loom)]
pub fn model() {
    use examples_sync::sync::{Arc, thread};
    use std::time::Duration;
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let event = Arc::new(Event::new());
        let waiter = {
            let event = Arc::clone(&event);
            thread::spawn(move || event.wait())
        };
        let timed = {
            let event = Arc::clone(&event);
            thread::spawn(move || event.wait_timeout(Duration::from_secs(3600)))
        };
        event.set();
        waiter.join().expect("waiter");
        assert!(timed.join().expect("timed waiter"), "released by set()");
        assert!(event.is_set());
        event.clear();
        assert!(!event.is_set(), "clear() re-arms the event");
    });
}

#[cfg(not(loom))]
pub fn all() -> Check {
    use shared::exercise::{Jitter, ensure, stress, watchdog};
    use std::sync::{Arc, Barrier, mpsc};
    use std::time::{Duration, Instant};

    watchdog("event", Duration::from_secs(3), |progress| {
        // Timeouts: give up after the timeout (never before), or return at once when set.
        let event = Event::new();
        let short = Duration::from_millis(2);
        let start = Instant::now();
        let got = event.wait_timeout(short);
        let waited = start.elapsed();
        ensure(!got, "wait_timeout gives up when nobody sets", || {
            "wait_timeout returned true on an event never set".into()
        })?;
        ensure(
            waited >= short,
            "wait_timeout waits its whole timeout",
            || format!("gave up after {waited:?}, before its {short:?}"),
        )?;
        event.set();
        ensure(
            event.is_set() && event.wait_timeout(Duration::from_secs(3600)),
            "set() is seen",
            || "wait_timeout on a set event did not return true".into(),
        )?;
        ensure(
            event.wait_timeout(Duration::MAX),
            "any timeout is accepted",
            || "wait_timeout(Duration::MAX) on a set event did not return true".into(),
        )?;
        event.wait(); // set: returns at once (the watchdog fails it otherwise)
        event.clear();
        ensure(
            !event.is_set() && !event.wait_timeout(Duration::from_millis(1)),
            "clear() re-arms",
            || "after clear(), the event still looks set".into(),
        )?;
        progress.tick();

        // Races: `set()` lands at random moments while 1 to 3 threads start waiting, thousands
        // of times; each round, every waiter must come back. The check-then-wait window is a
        // few dozen nanoseconds: 20 runs caught that wrong solution 19 times in 20 (catch-rate
        // --runs 20), so 60 runs (about 2 s): a miss then needs three misses in a row. loom
        // catches it on every run.
        stress(60, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let waiters = 1 + draw.below(3) as usize;
            let rounds = 400;
            let event = Arc::new(Event::new());
            let start = Arc::new(Barrier::new(waiters + 1));
            let (done_tx, done_rx) = mpsc::channel();
            std::thread::scope(|s| -> Check {
                for w in 0..waiters {
                    let (event, start, done_tx) =
                        (Arc::clone(&event), Arc::clone(&start), done_tx.clone());
                    s.spawn(move || {
                        for _ in 0..rounds {
                            start.wait();
                            let released = if w % 2 == 0 {
                                event.wait();
                                true
                            } else {
                                event.wait_timeout(Duration::from_secs(3600))
                            };
                            progress.tick();
                            if done_tx.send(released).is_err() {
                                return;
                            }
                        }
                    });
                }
                drop(done_tx);
                for _ in 0..rounds {
                    event.clear(); // every waiter is back from the previous round
                    if draw.below(2) == 0 {
                        start.wait();
                        // Set now, or after a few dozen nanoseconds (inside a waiter's check),
                        // or after the waiters have gone to sleep.
                        match draw.below(4) {
                            0 => {}
                            1 => (0..draw.below(300)).for_each(|_| std::hint::spin_loop()),
                            2 => std::thread::yield_now(),
                            _ => std::thread::sleep(Duration::from_micros(1 + draw.below(30))),
                        }
                        event.set();
                    } else {
                        // Aim at the gap between a waiter's check and its sleep: hold the
                        // event's lock while the waiters arrive, release it, and grab it back
                        // the moment it is free again, to set the flag from there.
                        let held = event.flag.lock().unwrap_or_else(|e| e.into_inner());
                        start.wait();
                        std::thread::sleep(Duration::from_micros(20 + draw.below(30)));
                        drop(held);
                        let mut flag = loop {
                            match event.flag.try_lock() {
                                Ok(guard) => break guard,
                                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                                Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
                            }
                        };
                        *flag = true; // what `set()` does, from inside the gap
                        drop(flag);
                        event.changed.notify_all();
                    }
                    for _ in 0..waiters {
                        // A lost wake-up blocks here: the watchdog reports it.
                        let released = done_rx.recv().unwrap_or(false);
                        ensure(released, "wait_timeout returns true once set", || {
                            "a waiter with a 1-hour timeout came back false after set()".into()
                        })?;
                    }
                }
                Ok(())
            })
        })
    })
}
