//! A ticket lock: a mutex that serves threads strictly in arrival order, like a bakery's
//! "take a number" machine. It is the cure for the starvation shown by
//! `cargo run -p examples-sync --bin starvation`.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Famine").
//!
//! Crates: std only (copy `sync.rs` with it: this file is written against `crate::sync`).
//!
//! `std::sync::Mutex` (and Python's `Lock`) are *unfair*: on unlock, whichever thread grabs the
//! lock first wins, and the thread that just released it is usually the fastest (it is running,
//! its caches are warm). A thread that releases and re-locks in a loop can keep a sleeping
//! waiter out indefinitely. A ticket lock gives each caller a number and admits them in order,
//! so a waiter is overtaken by at most one acquisition per other thread.
//!
//! This version is built on `Mutex` + `Condvar` so that waiters sleep instead of spinning (a
//! spinning ticket lock is a disaster when threads outnumber cores: the next ticket holder may
//! not be running). Fairness costs throughput: every hand-over is a wake-up and a context
//! switch, where an unfair lock lets the running thread continue. parking_lot's
//! `MutexGuard::unlock_fair` gives the same hand-over without building anything.

// === Lesson: copy from here ===

use crate::sync::{Condvar, Mutex, MutexGuard, lock, wait};

#[derive(Debug)]
struct Tickets {
    /// The number the next caller will take.
    next: u64,
    /// The number allowed in.
    serving: u64,
}

/// A FIFO-fair mutex protecting a `T`.
#[derive(Debug)]
pub struct TicketLock<T> {
    tickets: Mutex<Tickets>,
    /// Signalled whenever `serving` moves on.
    turn_changed: Condvar,
    /// The data. Only the thread whose ticket is being served ever locks this mutex, so it is
    /// never contended: it is here only to hand out a `&mut T` in safe Rust. A production ticket
    /// lock would use an `UnsafeCell` and an `unsafe impl Sync` instead.
    data: Mutex<T>,
}

/// Access to the data of a [`TicketLock`]; the next ticket is served when it is dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct TicketGuard<'a, T> {
    lock: &'a TicketLock<T>,
    /// `Some` until `drop`, which must release it before admitting the next ticket.
    data: Option<MutexGuard<'a, T>>,
    ticket: u64,
    ahead: u64,
}

impl<T> TicketLock<T> {
    /// A new, unlocked ticket lock.
    pub fn new(value: T) -> Self {
        TicketLock {
            tickets: Mutex::new(Tickets {
                next: 0,
                serving: 0,
            }),
            turn_changed: Condvar::new(),
            data: Mutex::new(value),
        }
    }

    /// Takes a ticket and blocks until it is served.
    pub fn lock(&self) -> TicketGuard<'_, T> {
        let mut tickets = lock(&self.tickets);
        let ticket = tickets.next;
        tickets.next += 1;
        let ahead = ticket - tickets.serving;
        while tickets.serving != ticket {
            tickets = wait(&self.turn_changed, tickets);
        }
        drop(tickets);
        TicketGuard {
            lock: self,
            data: Some(lock(&self.data)),
            ticket,
            ahead,
        }
    }

    /// Tickets taken and not yet finished: the holder plus the waiters (0 when unlocked).
    pub fn queued(&self) -> u64 {
        let tickets = lock(&self.tickets);
        tickets.next - tickets.serving
    }

    /// Consumes the lock, returning the data.
    pub fn into_inner(self) -> T {
        self.data
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T> TicketGuard<'_, T> {
    /// This guard's ticket number (0, 1, 2, … in the order `lock` was called).
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// How many tickets were ahead of ours when we queued: the acquisitions that overtook us.
    /// Never more than the number of other threads, since each holds at most one ticket.
    pub fn ahead(&self) -> u64 {
        self.ahead
    }
}

impl<T> std::ops::Deref for TicketGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data
            .as_ref()
            .expect("data guard is present until drop")
    }
}

impl<T> std::ops::DerefMut for TicketGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data
            .as_mut()
            .expect("data guard is present until drop")
    }
}

impl<T> Drop for TicketGuard<'_, T> {
    fn drop(&mut self) {
        // Release the data first, so the next ticket holder finds it free.
        self.data = None;
        lock(&self.lock.tickets).serving += 1;
        // Every waiter wakes and checks whether it is its turn; only one proceeds. Fine for a
        // handful of threads; a scalable fair lock would give each waiter its own wake-up slot
        // (an MCS or CLH queue lock).
        self.lock.turn_changed.notify_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn mutual_exclusion() {
        let lock = TicketLock::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5_000 {
                        let mut guard = lock.lock();
                        let v = *guard; // a separate read and write: only safe under the lock
                        *guard = v + 1;
                    }
                });
            }
        });
        assert_eq!(lock.into_inner(), 20_000);
    }

    /// Threads queue in a known order while the lock is held; they must enter in that order.
    #[test]
    fn serves_in_arrival_order() {
        let lock = TicketLock::new(Vec::new());
        std::thread::scope(|s| {
            let held = lock.lock();
            for id in 0..5u64 {
                let lock = &lock;
                s.spawn(move || {
                    let mut guard = lock.lock();
                    assert!(guard.ahead() <= 5);
                    guard.push(id);
                });
                // Wait until thread `id` has its ticket before starting the next one.
                while lock.queued() < id + 2 {
                    std::thread::yield_now();
                }
            }
            drop(held);
        });
        assert_eq!(lock.into_inner(), vec![0, 1, 2, 3, 4]);
    }
}
