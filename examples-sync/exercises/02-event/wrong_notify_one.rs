// A plausible wrong solution of sync/02: `notify_one` in `set`. It is right for one waiter, and
// for several waiters it often looks right too (a waiter that has not gone to sleep yet sees the
// flag by itself); but when two threads are already asleep, one `set()` wakes only one of them
// and the other sleeps on with the flag set: a lost wake-up. An event is a broadcast.

use examples_sync::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct Event {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl Event {
    pub fn new() -> Self {
        Event {
            flag: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    pub fn set(&self) {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_one();
    }

    pub fn clear(&self) {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    pub fn is_set(&self) -> bool {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn wait(&self) {
        let mut flag = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        // Check and sleep under one lock: a `set()` cannot slip in between. `while`: a wake-up
        // can be spurious.
        while !*flag {
            flag = self.changed.wait(flag).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // `None`: a deadline too far to represent; wait as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        let mut flag = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        while !*flag {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            // Only what is left: a spurious wake-up must not restart the full timeout.
            flag = match self.changed.wait_timeout(flag, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}
