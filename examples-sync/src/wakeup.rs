//! A "done" signal one thread waits for, written twice: with a lost wake-up (the flag is set
//! without taking the condition variable's mutex) and fixed (one line: set it under the mutex).
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Complexité de
//! débogage"; a bug that shows once in many thousand runs, found by a seeded stress harness in
//! `src/bin/diagnose-sync.rs` and proved fixed by loom in `tests/loom.rs`).
//!
//! Crates: std only (copy `sync.rs` with it: this file is written against `crate::sync`).
//!
//! The waiter checks the flag, then sleeps on the condition variable; `wait` releases the mutex
//! and starts sleeping as one step, *with respect to anyone who takes that mutex*. The racy
//! setter does not take it: it can store `true` and notify in the instant after the waiter saw
//! `false` and before it went to sleep. The notification finds nobody; the waiter sleeps
//! forever on a flag that is already set. Taking the mutex to set the flag closes the window:
//! the store now happens either before the waiter's check (it sees `true`) or after it sleeps
//! (the notification wakes it). An atomic flag does not help; the mutex is about *ordering*.

// === Lesson: copy from here ===

use crate::sync::{AtomicBool, Condvar, Mutex, Ordering, lock, wait};

/// How `set` publishes the flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// The bug: store the flag, notify, never touch the mutex.
    WithoutLock,
    /// The fix: store the flag while holding the mutex, then notify.
    UnderLock,
}

/// A flag set once, that threads can wait for.
#[derive(Debug)]
pub struct DoneSignal {
    done: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
    publish: Publish,
}

impl DoneSignal {
    pub fn new(publish: Publish) -> Self {
        DoneSignal {
            done: AtomicBool::new(false),
            lock: Mutex::new(()),
            changed: Condvar::new(),
            publish,
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        match self.publish {
            Publish::WithoutLock => self.done.store(true, Ordering::SeqCst),
            Publish::UnderLock => {
                let _guard = lock(&self.lock);
                self.done.store(true, Ordering::SeqCst);
            }
        }
        self.changed.notify_all();
    }

    /// Blocks until the flag is set.
    pub fn wait(&self) {
        let mut guard = lock(&self.lock);
        // The window of the bug: between this load seeing `false` and `wait` going to sleep.
        while !self.done.load(Ordering::SeqCst) {
            guard = wait(&self.changed, guard);
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_set_before_the_wait_is_seen_either_way() {
        for publish in [Publish::WithoutLock, Publish::UnderLock] {
            let signal = DoneSignal::new(publish);
            signal.set();
            signal.wait();
            assert!(signal.is_set());
        }
    }

    #[test]
    fn the_fixed_signal_wakes_a_waiting_thread() {
        let signal = Arc::new(DoneSignal::new(Publish::UnderLock));
        let waiter = {
            let signal = Arc::clone(&signal);
            std::thread::spawn(move || signal.wait())
        };
        signal.set();
        waiter.join().expect("the waiter returns");
    }
}
