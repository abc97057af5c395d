// Exercise sync/05 — A fair lock: first come, first served (a ticket lock)
//
// Concept: `std::sync::Mutex` and Python's `Lock` are unfair: on unlock, whichever thread grabs
// the lock first wins, and the thread that just released it (running, caches warm) usually does.
// A thread that re-locks in a loop can keep a sleeping waiter out indefinitely: starvation (the
// `starvation` example measures it). A ticket lock serves threads in arrival order, like a
// bakery's "take a number" machine: `lock` takes the next number and waits until it is served;
// unlocking serves the next number. No waiter is ever overtaken by a later arrival.
//
// Goal: finish `FairLock::lock` and the guard's `Drop`: at most one holder at a time, holders
// admitted in ticket order (0, 1, 2, …), every waiter eventually served, and a waiter that took
// its ticket before a greedy thread re-locks gets in before it.
//
// Hint: `lock` takes `next` (and increments it), then waits on `turn_changed` while `serving`
// is not its ticket. `Drop` increments `serving`, then wakes the waiters: which one is next is
// written on its ticket, not known to the condvar, so wake them all and let each re-check.
//
// Checked by: loom (three threads and a spurious wake-up, every interleaving with 2 preemptions:
// one holder at a time, served in ticket order), a stress run with spurious wake-ups (holders
// counted, tickets served in order) and a polite thread queued behind a greedy one, under a
// deadlock watchdog.
// Run: cargo run -p shared --bin exercises -- check sync/05

use examples_sync::sync::{Condvar, Mutex};

struct Tickets {
    /// The number the next caller takes.
    next: u64,
    /// The number allowed in.
    serving: u64,
}

pub struct FairLock {
    tickets: Mutex<Tickets>,
    /// Signalled whenever `serving` moves on.
    turn_changed: Condvar,
}

/// Proof of holding the lock; dropping it serves the next ticket.
pub struct FairGuard<'a> {
    lock: &'a FairLock,
    ticket: u64,
}

impl FairLock {
    pub fn new() -> Self {
        FairLock {
            tickets: Mutex::new(Tickets {
                next: 0,
                serving: 0,
            }),
            turn_changed: Condvar::new(),
        }
    }

    /// Takes a ticket and blocks until it is served.
    pub fn lock(&self) -> FairGuard<'_> {
        todo!("take `next`, then wait while `serving` is not your ticket")
    }

    /// Tickets taken and not yet done: the holder plus the waiters (0 when free).
    pub fn queued(&self) -> u64 {
        let tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.next - tickets.serving
    }
}

impl FairGuard<'_> {
    /// This holder's ticket.
    pub fn ticket(&self) -> u64 {
        self.ticket
    }
}

impl Drop for FairGuard<'_> {
    fn drop(&mut self) {
        todo!("serve the next ticket and wake the waiters")
    }
}

impl Default for FairLock {
    fn default() -> Self {
        Self::new()
    }
}
