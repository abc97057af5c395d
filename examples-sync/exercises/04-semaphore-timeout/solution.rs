// Reference solution of sync/04 (see exercise.rs for the statement).

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
        // `None`: a deadline too far to represent (`Duration::MAX`): no deadline at all.
        let deadline = Instant::now().checked_add(timeout);
        let mut available = self.available.lock().unwrap_or_else(|e| e.into_inner());
        // `while`: after any wake-up the permit may be gone again (stolen) or never have come
        // (spurious); the count, not the wake-up, decides.
        while *available == 0 {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return None;
            }
            // Only what is left of the deadline, not the full timeout again.
            available = match self.released.wait_timeout(available, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
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
