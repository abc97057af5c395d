// Reference solution of threads/05 (see exercise.rs for the statement): image-batch's
// `decode_budget` lesson.

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
        let mut usage = self.lock();
        if bytes > self.capacity {
            // Refusing it would be the other policy (a hard limit); here it runs alone.
            usage.stats.oversized += 1;
        }
        let bytes = bytes.min(self.capacity);
        if usage.admitted + bytes > self.capacity {
            usage.stats.waits += 1;
        }
        // A loop, not an `if`: wake-ups may be spurious, and another waiter may have taken the
        // bytes first.
        while usage.admitted + bytes > self.capacity {
            usage = self
                .released
                .wait(usage)
                .unwrap_or_else(PoisonError::into_inner);
        }
        usage.admitted += bytes;
        usage.stats.peak = usage.stats.peak.max(usage.admitted);
        Permit {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.budget.lock().admitted -= self.bytes;
        // notify_all, not notify_one: waiters want different amounts, and the one notify_one
        // picks may not fit while another would.
        self.budget.released.notify_all();
    }
}
