// Checks of sync/06: loom under `--cfg loom`, a writer-first scenario and a stress run under a
// watchdog otherwise.

#[cfg(not(loom))]
use shared::exercise::Check;

/// Loom: a reader inside, a writer queued behind it, then `try_read` and two readers arriving,
/// every interleaving with at most 2 preemptions. The writer must pass the late readers, never
/// share the lock, and nobody may be left asleep (loom reports that as a deadlock).
#[cfg(loom)]
pub fn model() {
    use examples_sync::sync::{Arc, AtomicUsize, Ordering, thread};
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let lock = Arc::new(WriterFirstRwLock::new());
        // Readers inside count 1 each, a writer inside counts 100.
        let inside = Arc::new(AtomicUsize::new(0));
        let first = lock.read();
        inside.fetch_add(1, Ordering::SeqCst);
        let writer = {
            let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
            thread::spawn(move || {
                let _w = lock.write();
                assert_eq!(
                    inside.fetch_add(100, Ordering::SeqCst),
                    0,
                    "a writer shared the lock"
                );
                inside.fetch_sub(100, Ordering::SeqCst);
            })
        };
        // Wait until the writer is queued.
        while lock.state.lock().expect("state").writers_waiting == 0 {
            thread::yield_now();
        }
        assert!(
            lock.try_read().is_none(),
            "try_read let a reader in ahead of a waiting writer"
        );
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
                thread::spawn(move || {
                    let _r = lock.read();
                    assert!(
                        inside.fetch_add(1, Ordering::SeqCst) < 100,
                        "a reader met a writer"
                    );
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        inside.fetch_sub(1, Ordering::SeqCst);
        drop(first);
        writer.join().expect("writer");
        for r in readers {
            r.join().expect("reader");
        }
    });
}

#[cfg(not(loom))]
pub fn all() -> Check {
    use shared::exercise::{Jitter, ensure, stress, watchdog};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex as StdMutex, mpsc};
    use std::time::Duration;

    /// Readers inside count 1 each, a writer inside counts 1000: a total of 1000 or more with
    /// anything else in is a writer sharing the lock.
    const WRITER: usize = 1000;

    watchdog("writer-first-rwlock", Duration::from_secs(3), |progress| {
        let lock = WriterFirstRwLock::new();
        // Readers share: a second reader gets in while the first is still inside.
        {
            let first = lock.read();
            let (tx, rx) = mpsc::channel();
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _second = lock.read(); // blocks forever if readers exclude each other
                    let _ = tx.send(());
                });
                let _ = rx.recv(); // the watchdog reports a hang here
            });
            drop(first);
        }
        progress.tick();

        // Writer first, three times: a reader inside, a writer queued, then readers arrive.
        // The writer goes before them, and every one of them gets in afterwards.
        for _ in 0..3 {
            let order = StdMutex::new(Vec::new());
            let first = lock.read();
            std::thread::scope(|s| -> Check {
                s.spawn(|| {
                    let _w = lock.write();
                    order.lock().expect("order").push("writer");
                });
                while lock
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .writers_waiting
                    == 0
                {
                    std::thread::yield_now(); // until the writer is queued
                }
                let refused = lock.try_read().is_none();
                ensure(refused, "a waiting writer stops new readers", || {
                    "try_read let a reader in while a writer was waiting: writers can starve".into()
                })?;
                for _ in 0..2 {
                    s.spawn(|| {
                        let _r = lock.read();
                        order.lock().expect("order").push("reader");
                    });
                }
                std::thread::sleep(Duration::from_millis(5)); // let the readers queue up
                drop(first);
                Ok(())
            })?;
            let order = order.into_inner().expect("order");
            ensure(
                order.first() == Some(&"writer"),
                "a waiting writer goes before later readers",
                || format!("order of entry: {order:?}"),
            )?;
            progress.tick();
        }

        stress(30, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let readers = 2 + draw.below(3) as usize;
            let writers = 1 + draw.below(2) as usize;
            let lock = Arc::new(WriterFirstRwLock::new());
            let inside = Arc::new(AtomicUsize::new(0));
            let shared = Arc::new(AtomicUsize::new(0));
            std::thread::scope(|s| {
                for t in 0..readers + writers {
                    let (lock, inside, shared) =
                        (Arc::clone(&lock), Arc::clone(&inside), Arc::clone(&shared));
                    s.spawn(move || {
                        let mut j = Jitter::new(seed, 1 + t as u64);
                        let writer = t >= readers;
                        for _ in 0..150 {
                            j.pause();
                            if writer {
                                let _w = lock.write();
                                if inside.fetch_add(WRITER, Ordering::SeqCst) != 0 {
                                    shared.fetch_add(1, Ordering::SeqCst);
                                }
                                j.pause();
                                inside.fetch_sub(WRITER, Ordering::SeqCst);
                            } else {
                                let _r = lock.read();
                                if inside.fetch_add(1, Ordering::SeqCst) >= WRITER {
                                    shared.fetch_add(1, Ordering::SeqCst);
                                }
                                j.pause();
                                inside.fetch_sub(1, Ordering::SeqCst);
                            }
                            progress.tick();
                        }
                    });
                }
            });
            let shared = shared.load(Ordering::SeqCst);
            ensure(shared == 0, "a writer is alone", || {
                format!("{shared} times a writer and someone else were inside together")
            })
        })
    })
}
