// Reference solution of sync/05 (see exercise.rs for the statement).

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
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = tickets.next;
        tickets.next += 1;
        // `while`: woken by every hand-over, each waiter checks whether it is its turn.
        while tickets.serving != ticket {
            tickets = self
                .turn_changed
                .wait(tickets)
                .unwrap_or_else(|e| e.into_inner());
        }
        FairGuard { lock: self, ticket }
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
        self.lock
            .tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .serving += 1;
        // The condvar cannot wake "ticket n+1" only: wake everyone, each re-checks its number.
        self.lock.turn_changed.notify_all();
    }
}

impl Default for FairLock {
    fn default() -> Self {
        Self::new()
    }
}
