// Exercise threads/05 — A weighted budget without lost wake-ups
//
// Concept: image-batch admits each image by its estimated decoded size, so that two 100 MP
// images are never in memory together: a semaphore counted in bytes (`Mutex` + `Condvar`).
// Waiters want different amounts, and that changes the wake-up rule. When 40 bytes are freed,
// `notify_one` may wake a waiter that wants 80 (it goes back to sleep) while the one that wants
// 40, and would fit, sleeps on: a lost wake-up, and the batch stalls. A request larger than the
// whole budget must not wait forever either: it waits until nothing else is admitted, then runs
// alone.
//
// Goal: write `DecodeBudget::acquire(bytes)` and `Drop for Permit`. `acquire` blocks until the
// bytes fit (a request over `capacity` counts as exactly `capacity`), then admits them and
// returns a permit; dropping the permit releases them. Keep `stats`: `peak` (most bytes admitted
// at once), `waits` (admissions that had to wait, counted once, before waiting), `oversized`.
//
// Hint: clamp first (`bytes.min(capacity)`), count `oversized`, then `while admitted + bytes >
// capacity { wait }` (a loop: another waiter may take the bytes first). On release, every waiter
// must look again: `notify_all`.
//
// Checked by: 30 seeded stress runs of 6 threads (sizes 5 to 60 on a budget of 100, some over
// it), counting held bytes from the holders' side: never over the budget, an oversized request
// alone, the stats right; and a watchdog scenario: two waiters for 80 bytes queue before one for
// 40, then 50 bytes are freed: the 40 must get in. Deterministic on Linux (the futex queue wakes
// the oldest waiter first, so `notify_one` wakes an 80).
// Run: cargo run -p shared --bin exercises -- check threads/05

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// At most `capacity` bytes admitted at once. A request larger than the whole budget takes all
/// of it: it waits until nothing else is admitted, then runs alone.
pub struct DecodeBudget {
    capacity: u64,
    usage: Mutex<Usage>,
    /// Signalled whenever bytes are released: waiters check again whether they fit.
    released: Condvar,
}

struct Usage {
    admitted: u64,
    stats: BudgetStats,
}

/// What the budget saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    pub capacity: u64,
    /// Most bytes admitted at once: never over `capacity`.
    pub peak: u64,
    /// Admissions that had to wait (counted once each, before the first wait).
    pub waits: u64,
    /// Requests larger than the whole budget (each ran alone).
    pub oversized: u64,
}

/// Bytes admitted until this is dropped.
#[must_use = "the bytes are released as soon as the permit is dropped"]
pub struct Permit<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl DecodeBudget {
    pub fn new(capacity: u64) -> DecodeBudget {
        let capacity = capacity.max(1);
        DecodeBudget {
            capacity,
            usage: Mutex::new(Usage {
                admitted: 0,
                stats: BudgetStats {
                    capacity,
                    ..BudgetStats::default()
                },
            }),
            released: Condvar::new(),
        }
    }

    pub fn stats(&self) -> BudgetStats {
        self.lock().stats
    }

    /// The counters change in single statements: a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DecodeBudget {
    /// Blocks until `bytes` fit in the budget (at most `capacity`), then admits them.
    pub fn acquire(&self, bytes: u64) -> Permit<'_> {
        todo!("clamp, count the stats, wait while the bytes do not fit, then admit them")
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        todo!("release self.bytes, then wake the waiters")
    }
}
