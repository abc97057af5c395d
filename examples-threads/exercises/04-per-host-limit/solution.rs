// Reference solution of threads/04 (see exercise.rs for the statement).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// At most `per_host` requests in flight to any one host; other hosts are never held back.
pub struct HostLimiter {
    per_host: usize,
    /// Requests in flight, per host (a host with none may be absent).
    in_flight: Mutex<HashMap<String, usize>>,
    /// Signalled whenever a request ends: the waiters check their host again.
    released: Condvar,
}

/// One request slot for `host`, given back when dropped.
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct HostPermit<'a> {
    limiter: &'a HostLimiter,
    host: String,
}

impl HostLimiter {
    pub fn new(per_host: usize) -> HostLimiter {
        HostLimiter {
            per_host: per_host.max(1),
            in_flight: Mutex::new(HashMap::new()),
            released: Condvar::new(),
        }
    }

    /// The lock, whatever a panicking holder left (the counts are changed in single statements).
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl HostLimiter {
    /// Blocks while `host` has `per_host` requests in flight, then takes a slot.
    pub fn acquire(&self, host: &str) -> HostPermit<'_> {
        let mut in_flight = self.lock();
        // A loop: wake-ups may be spurious, and a release may have been for another host.
        while in_flight.get(host).copied().unwrap_or(0) >= self.per_host {
            in_flight = self
                .released
                .wait(in_flight)
                .unwrap_or_else(PoisonError::into_inner);
        }
        // Still under the same guard: nobody can have taken the slot since the check.
        *in_flight.entry(host.to_owned()).or_insert(0) += 1;
        HostPermit {
            limiter: self,
            host: host.to_owned(),
        }
    }
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.limiter.lock();
        if let Some(count) = in_flight.get_mut(&self.host) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.host); // the map does not grow with every host ever seen
            }
        }
        drop(in_flight);
        // Every waiter: they wait for different hosts, and only those of this host can go on.
        self.limiter.released.notify_all();
    }
}
