// A plausible wrong solution of sync/04: `if` instead of `while`. Woken by a release, it takes
// the permit without looking again; but another thread may have taken it in between (a stolen
// wake-up), or the wake-up was spurious. Then the count goes below zero: two holders of one
// permit (in a debug build, an overflow panic). It passes every test where the woken thread
// happens to get the lock back first.

use examples_sync::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct Semaphore {
    available: Mutex<usize>,
    released: Condvar,
}

/// One permit; dropping it gives it back.
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    pub fn new(permits: usize) -> Self {
        Semaphore {
            available: Mutex::new(permits),
            released: Condvar::new(),
        }
    }

    /// Blocks until a permit is free, then takes it.
    pub fn acquire(&self) -> Permit<'_> {
        let mut available = self.available.lock().unwrap_or_else(|e| e.into_inner());
        while *available == 0 {
            available = self
                .released
                .wait(available)
                .unwrap_or_else(|e| e.into_inner());
        }
        *available -= 1;
        Permit { semaphore: self }
    }

    /// Takes a permit if one is free within `timeout`; `None` once the timeout has passed.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        let mut available = self.available.lock().unwrap_or_else(|e| e.into_inner());
        if *available == 0 {
            let (guard, result) = self
                .released
                .wait_timeout(available, timeout)
                .unwrap_or_else(|e| e.into_inner());
            if result.timed_out() {
                return None;
            }
            available = guard;
        }
        *available -= 1;
        Some(Permit { semaphore: self })
    }

    /// Permits free right now (stale as soon as it returns: for checks and display).
    pub fn available(&self) -> usize {
        *self.available.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self) {
        *self.available.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.released.notify_one();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}
