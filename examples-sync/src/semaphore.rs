//! A counting semaphore (Python's `threading.Semaphore`) from a `Mutex<usize>` and a `Condvar`.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Locks, RLocks, Semaphores").
//!
//! Crates: std only (copy `sync.rs` with it: this file is written against `crate::sync`).
//!
//! std has no semaphore: most uses are "at most N at once", and a thread pool or a bounded
//! channel usually says that more directly. When you do need one, this is all it takes. In async
//! code use `tokio::sync::Semaphore` instead (it never blocks a runtime thread).
//!
//! The permit is RAII: [`Semaphore::acquire`] returns a [`Permit`] that gives the slot back when
//! dropped, so an early `return`, a `?` or a panic can never leak a slot. That is Python's
//! `with sem:` without the chance of forgetting `release()`. The loom model
//! `semaphore_never_exceeds_its_permits` (`tests/loom.rs`) checks it under every interleaving.

// === Lesson: copy from here ===

use crate::sync::{Condvar, Mutex, lock, wait};

/// A counting semaphore: at most `permits` holders at once.
#[derive(Debug)]
pub struct Semaphore {
    /// Permits not currently handed out.
    available: Mutex<usize>,
    /// Signalled each time a permit comes back.
    released: Condvar,
}

/// Proof that you hold one permit. Dropping it returns the permit.
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    pub fn new(permits: usize) -> Self {
        Semaphore {
            available: Mutex::new(permits),
            released: Condvar::new(),
        }
    }

    /// Blocks until a permit is free, then takes it.
    pub fn acquire(&self) -> Permit<'_> {
        let mut available = lock(&self.available);
        // `while`, not `if`: a wait can return spuriously, and another thread may take the
        // permit between the notification and the moment we get the lock back.
        while *available == 0 {
            available = wait(&self.released, available);
        }
        *available -= 1;
        Permit { semaphore: self }
    }

    /// Takes a permit if one is free right now (Python's `acquire(blocking=False)`).
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut available = lock(&self.available);
        if *available == 0 {
            return None;
        }
        *available -= 1;
        Some(Permit { semaphore: self })
    }

    /// Permits free at this instant (already stale when you read it: for display only).
    pub fn available(&self) -> usize {
        *lock(&self.available)
    }

    fn release(&self) {
        *lock(&self.available) += 1;
        // One permit came back, so one waiter can proceed: `notify_one`. Notifying after the
        // guard is dropped spares the woken thread from blocking on the mutex we still hold.
        self.released.notify_one();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn try_acquire_respects_the_count_and_drop_returns_permits() {
        let sem = Semaphore::new(2);
        let a = sem.try_acquire().expect("first permit");
        let b = sem.try_acquire().expect("second permit");
        assert!(sem.try_acquire().is_none(), "a third permit must not exist");
        assert_eq!(sem.available(), 0);
        drop(a);
        assert_eq!(sem.available(), 1);
        let c = sem.try_acquire().expect("the returned permit");
        drop((b, c));
        assert_eq!(sem.available(), 2);
    }

    #[test]
    fn never_more_holders_than_permits() {
        const LIMIT: usize = 3;
        let sem = Semaphore::new(LIMIT);
        let inside = AtomicUsize::new(0);
        let max_inside = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let _permit = sem.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(max_inside.load(Ordering::SeqCst) <= LIMIT);
        assert_eq!(sem.available(), LIMIT, "every permit came back");
    }

    #[test]
    fn a_panicking_holder_still_returns_its_permit() {
        let sem = Semaphore::new(1);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _permit = sem.acquire();
            panic!("download failed");
        }));
        assert!(result.is_err());
        assert_eq!(sem.available(), 1);
    }
}
