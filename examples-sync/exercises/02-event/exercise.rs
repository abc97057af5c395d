// Exercise sync/02 — Python's threading.Event: set, clear, wait, wait with a timeout
//
// Concept: an event is a flag that threads can wait for. `set()` wakes every waiter (it is a
// broadcast, not a hand-off), `clear()` re-arms it, `wait_timeout(t)` gives up after `t` and
// says which happened. The flag lives inside the mutex, so that "the flag is false, so I sleep"
// is one step with respect to `set()`: a waiter that checks, unlocks and only then sleeps can
// miss a `set()` that lands in between (a lost wake-up), and sleep forever.
//
// Goal: finish `Event`: `set`, `clear`, `wait` (returns once the flag is set) and
// `wait_timeout` (true as soon as the flag is set, false once `timeout` has passed without it).
// Several threads may wait at once; every one of them must be released by one `set()`.
//
// Hint: `while !*flag { flag = self.changed.wait(flag)… }` checks and sleeps under one lock
// (write the loop: loom's `Condvar`, which the checks use, has no `wait_while`). `set` must
// wake *all* waiters. For the timeout, compute a deadline once (`checked_add`: a huge timeout
// must not overflow), and on every wake-up wait only for what is left of it.
//
// Checked by: loom (two waiters and a `set()`, every interleaving), a stress run that races
// `set()` against waiters thousands of times under a deadlock watchdog, and timeouts that
// must give up (never before their time) or be released.
// Run: cargo run -p shared --bin exercises -- check sync/02

use examples_sync::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

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

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        todo!("set the flag under the lock, then wake every waiter")
    }

    /// Resets the flag: later waits block again.
    pub fn clear(&self) {
        todo!()
    }

    /// Whether the flag is set right now.
    pub fn is_set(&self) -> bool {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the flag is set.
    pub fn wait(&self) {
        todo!("sleep on `changed` while the flag is false, checking it under the lock")
    }

    /// Blocks until the flag is set (true) or `timeout` has passed (false).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        todo!()
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}
