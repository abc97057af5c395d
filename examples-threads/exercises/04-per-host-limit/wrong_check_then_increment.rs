// A plausible wrong solution of threads/04: check, release the lock, lock again, increment
// ("hold the lock as briefly as possible"). Between the two guards another thread checks the
// same count and gets in too: two requests where one slot was free. It passes while requests
// rarely overlap; under load the limit is exceeded every few hundred requests.

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
    pub fn acquire(&self, host: &str) -> HostPermit<'_> {
        let mut in_flight = self.lock();
        while in_flight.get(host).copied().unwrap_or(0) >= self.per_host {
            in_flight = self
                .released
                .wait(in_flight)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(in_flight); // the check is done…
        *self.lock().entry(host.to_owned()).or_insert(0) += 1; // …and the slot is taken later
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
        }
        drop(in_flight);
        self.limiter.released.notify_all();
    }
}
