//! Python's `threading.Event` (set / clear / is_set / wait / wait with timeout) from a
//! `Mutex<bool>` and a `Condvar`.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Conditions et événements").
//!
//! Crates: std only (copy `sync.rs` with it: this file is written against `crate::sync`).
//!
//! An event is a flag that threads can wait for. The flag lives inside the mutex so that "check
//! the flag, then sleep" is one atomic step with respect to `set()`: a waiter cannot miss a `set`
//! that lands between its check and its sleep (the *lost wake-up* that a bare `AtomicBool` plus
//! `thread::park` invites if done carelessly). The loom test `event_set_is_never_lost` checks it.
//!
//! In async code, an event is a `tokio::sync::watch::channel(false)` (`async_event` in
//! `src/bin/event.rs`); `tokio::sync::Notify` alone is not one: it has no set/clear state and
//! stores at most one permit, which a single waiter consumes.

// === Lesson: copy from here ===

use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, lock, wait};

/// A settable, clearable flag that threads can wait for.
#[derive(Debug, Default)]
pub struct Event {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Self {
        Event {
            flag: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    /// Sets the flag and wakes every waiter (all of them: an event is a broadcast).
    pub fn set(&self) {
        *lock(&self.flag) = true;
        self.changed.notify_all();
    }

    /// Resets the flag; later `wait()` calls block again.
    pub fn clear(&self) {
        *lock(&self.flag) = false;
    }

    /// Whether the flag is set right now.
    pub fn is_set(&self) -> bool {
        *lock(&self.flag)
    }

    /// Blocks until the flag is set.
    pub fn wait(&self) {
        let mut set = lock(&self.flag);
        while !*set {
            set = wait(&self.changed, set);
        }
    }

    /// Blocks until the flag is set or `timeout` has passed. Returns the flag, like Python's
    /// `Event.wait(timeout)`: `false` means we gave up.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut set = lock(&self.flag);
        while !*set {
            // Re-compute what is left on every turn: a spurious wake-up must not restart the
            // full timeout.
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            set = match self.changed.wait_timeout(set, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn set_clear_is_set() {
        let event = Event::new();
        assert!(!event.is_set());
        event.set();
        assert!(event.is_set());
        event.wait(); // already set: returns at once
        event.clear();
        assert!(!event.is_set());
    }

    #[test]
    fn wait_timeout_gives_up_when_nobody_sets() {
        let event = Event::new();
        assert!(!event.wait_timeout(Duration::from_millis(20)));
    }

    #[test]
    fn every_waiter_is_released_by_one_set() {
        let event = Event::new();
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..4)
                .map(|_| s.spawn(|| event.wait_timeout(Duration::from_secs(30))))
                .collect();
            event.set();
            for w in waiters {
                assert!(w.join().expect("waiter panicked"), "a waiter timed out");
            }
        });
    }
}
