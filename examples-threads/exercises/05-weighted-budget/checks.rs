// Checks of threads/05, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const CAPACITY: u64 = 100;

/// What the holders saw, from their side of the budget.
#[derive(Default)]
struct Holders {
    held: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Holders {
    /// Called right after `acquire(asked)` returned: records the bytes and checks the budget.
    fn enter(&self, asked: u64) -> u64 {
        let bytes = asked.min(CAPACITY);
        let before = self.held.fetch_add(bytes, Ordering::SeqCst);
        let mut v = self.violations.lock().expect("violations");
        if before + bytes > CAPACITY {
            v.push(format!(
                "{} bytes held at once, the budget is {CAPACITY}",
                before + bytes
            ));
        }
        if asked > CAPACITY && before > 0 {
            v.push(format!(
                "a {asked}-byte request ran beside {before} other bytes"
            ));
        }
        bytes
    }

    fn leave(&self, bytes: u64) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
    }

    fn check(&self) -> Check {
        let v = self.violations.lock().expect("violations");
        ensure(
            v.is_empty(),
            "never over the budget; an oversized request alone",
            || v[..v.len().min(3)].join("; "),
        )
    }
}

/// 6 threads × 30 requests of 5 to 60 bytes, one in 40 over the whole budget.
fn never_over_budget(seed: u64, progress: &Progress) -> Check {
    let budget = DecodeBudget::new(CAPACITY);
    let holders = Holders::default();
    let oversized = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let (budget, holders, oversized) = (&budget, &holders, &oversized);
            s.spawn(move || {
                let mut jitter = Jitter::new(seed, t + 1);
                for _ in 0..30 {
                    let asked = if jitter.below(40) == 0 {
                        oversized.fetch_add(1, Ordering::Relaxed);
                        CAPACITY + 1 + jitter.below(500)
                    } else {
                        5 + jitter.below(56)
                    };
                    let permit = budget.acquire(asked);
                    let bytes = holders.enter(asked);
                    jitter.pause();
                    holders.leave(bytes);
                    drop(permit);
                    progress.tick();
                }
            });
        }
    });
    holders.check()?;
    let stats = budget.stats();
    ensure(
        stats.peak <= CAPACITY && stats.peak >= 60,
        "stats: peak is the most bytes admitted at once",
        || format!("{stats:?}"),
    )?;
    let expected = oversized.into_inner();
    ensure(
        stats.oversized == expected,
        "stats: every oversized request counted",
        || {
            format!(
                "{expected} oversized requests, stats say {}",
                stats.oversized
            )
        },
    )
}

/// Waits until `stats().waits` reaches `n`: the waiter is then asleep on the condvar (it counted
/// itself under the lock, which it gives back only by waiting).
fn until_waiting(budget: &DecodeBudget, n: u64) -> Check {
    let deadline = Instant::now() + Duration::from_secs(5);
    while budget.stats().waits < n {
        if Instant::now() > deadline {
            return Err(Failure::property(
                "stats: waits counts every admission that waited",
                format!(
                    "{n} requests are waiting, stats say {}",
                    budget.stats().waits
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// 50 + 50 held; two waiters for 80 queue first, then one for 40; 50 are released: the 40 fits
/// and must be admitted, though the oldest waiters do not fit.
fn the_one_that_fits_is_woken(progress: &Progress) -> Check {
    let budget = Arc::new(DecodeBudget::new(CAPACITY));
    let holders = Arc::new(Holders::default());
    let a = budget.acquire(50);
    holders.enter(50);
    let b = budget.acquire(50);
    holders.enter(50);
    progress.tick();
    let (admitted_tx, admitted_rx) = mpsc::channel();
    let mut waiters = Vec::new();
    for (n, want) in [(1, 80u64), (2, 80), (3, 40)] {
        let (theirs, their_holders, tx) = (budget.clone(), holders.clone(), admitted_tx.clone());
        waiters.push(
            std::thread::Builder::new()
                .name(format!("wants-{want}"))
                .spawn(move || {
                    let permit = theirs.acquire(want);
                    let bytes = their_holders.enter(want);
                    let _ = tx.send(want);
                    std::thread::sleep(Duration::from_millis(2));
                    their_holders.leave(bytes);
                    drop(permit);
                })
                .expect("spawn a waiter"),
        );
        until_waiting(&budget, n)?;
        progress.tick();
    }
    holders.leave(50);
    drop(b); // 50 free: the 40 fits, the 80s do not
    let first = admitted_rx.recv().expect("a waiter is admitted");
    progress.tick();
    holders.check()?;
    ensure(
        first == 40,
        "the waiter that fits is admitted first",
        || format!("a request for {first} bytes got in while only 50 were free"),
    )?;
    holders.leave(50);
    drop(a);
    for _ in 0..2 {
        admitted_rx.recv().expect("each 80 in turn");
        progress.tick();
    }
    for w in waiters {
        w.join().expect("a waiter");
    }
    holders.check()
}

pub fn all() -> Check {
    watchdog(
        "lost-wake-up",
        Duration::from_secs(2),
        the_one_that_fits_is_woken,
    )?;
    watchdog("budget", Duration::from_secs(3), |p| {
        stress(30, |seed| never_over_budget(seed, p))
    })
}
