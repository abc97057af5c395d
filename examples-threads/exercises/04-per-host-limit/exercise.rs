// Exercise threads/04 — A per-host limit for the downloader
//
// Concept: url-downloader runs N worker threads over a list of URLs. Polite clients (browsers,
// crawlers) also cap the requests in flight *per host*: 32 workers, but never more than 4 at
// once on one server, while the other hosts go on at full speed. The state is one map of
// counters behind a `Mutex`, and one `Condvar` that waiters sleep on. The classic bug: checking
// the count under the lock, releasing it, then taking it again to increment. Between the two,
// another thread checks the same count: both get in, one more than the limit.
//
// Goal: write `HostLimiter::acquire(host)`: block while `host` already has `per_host` requests
// in flight, then count one more and return a permit; and `Drop for HostPermit`: count one less
// and wake the waiters. Never more than `per_host` in flight on a host; a full host never delays
// a request to another host; every waiter gets in once a slot of its host is free.
//
// Hint: check and increment under *one* lock guard: `while count >= per_host { guard =
// released.wait(guard) }`, then `+= 1` before the guard drops. One condvar serves every host, so
// a release must wake every waiter (`notify_all`): `notify_one` may wake a waiter of another,
// still full, host.
//
// Checked by: 60 seeded stress runs of 8 workers over 1 to 3 hosts (limit 1 or 2), with a fake fetch
// that counts requests in flight per host and jitters inside: never over the limit, every URL
// once; a watchdog scenario where a full, stuck host must not block another host's requests.
// The racy increment is caught on 20 runs out of 20 here (it overshoots within a few runs).
// Run: cargo run -p shared --bin exercises -- check threads/04

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
        todo!("under one lock guard: wait while the host is full, then count one more")
    }
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        todo!("count one less for self.host, then wake the waiters")
    }
}
