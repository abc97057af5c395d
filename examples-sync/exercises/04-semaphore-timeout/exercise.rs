// Exercise sync/04 — A semaphore whose acquire gives up: acquire_timeout
//
// Concept: Python's `sem.acquire(timeout=0.5)` waits for a permit at most half a second and
// says whether it got one. With a `Condvar` the wait is `wait_timeout`, and two things make it
// correct. A wake-up is not a permit: it can be spurious, and another thread can take the permit
// between the notification and the moment the woken thread gets the lock back (a stolen
// wake-up), so re-check the count in a `while` loop. And a timeout is a deadline: after a
// wake-up that found no permit, wait only for what is left of it, not the full timeout again.
//
// Goal: add `Semaphore::acquire_timeout(timeout) -> Option<Permit>`: `Some` as soon as a permit
// is free (at once if one is), `None` once `timeout` has passed without one, never more
// holders than permits, and any `Duration` accepted (a caller may pass `Duration::MAX` to mean
// "as long as it takes").
//
// Hint: `let deadline = Instant::now().checked_add(timeout)` (plain `+` panics on overflow);
// then `while *available == 0 { … wait_timeout(guard, left) … }` and take the permit after the
// loop. `Instant::saturating_duration_since` gives what is left without underflow.
//
// Checked by: loom (three threads on one permit, every interleaving with 2 preemptions: never
// two holders), a stress run (holders counted, every permit back) under a deadlock watchdog,
// and timeouts that must give up, never before their time.
// Run: cargo run -p shared --bin exercises -- check sync/04

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
        todo!("a deadline, a `while` loop on the count with `wait_timeout`, then take the permit")
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
