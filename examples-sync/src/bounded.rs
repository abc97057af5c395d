//! A bounded blocking buffer (Python's `queue.Queue(maxsize)`, built on `threading.Condition`)
//! from one `Mutex` and two `Condvar`s: `not_full` for producers, `not_empty` for consumers.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** ("Conditions").
//!
//! Crates: std only (copy `sync.rs` with it: this file is written against `crate::sync`).
//!
//! This is the textbook use of condition variables, and it has two classic traps:
//!
//! 1. **Spurious and stolen wake-ups.** A wait can return without a notification, and another
//!    thread can grab the slot between the notification and our re-lock. So every wait sits in a
//!    `while` loop that re-checks the condition (std also offers `Condvar::wait_while`, which is
//!    the same loop). The buffer counts the wake-ups that found the condition still false.
//! 2. **One condition variable + `notify_one` can deadlock.** If producers and consumers share a
//!    single condvar, a `notify_one` meant for a consumer can wake another producer; it goes back
//!    to sleep, and the consumer that should have run never hears about it. With
//!    [`Signalling::SHARED_NOTIFY_ONE`] the loom test `shared_condvar_notify_one_deadlocks`
//!    finds that schedule. A shared condvar is only safe with `notify_all`, at the price of
//!    waking everybody (measured by `cargo run -p examples-sync --bin condition`).
//!
//! In real code, reach for `std::sync::mpsc::sync_channel` or `crossbeam_channel::bounded`:
//! same behaviour, faster, with disconnection built in (`cargo run -p examples-sync --bin queues`).

// === Lesson: copy from here ===

use std::collections::VecDeque;

use crate::sync::{Condvar, Mutex, lock, wait};

/// Whom to wake after a push or a pop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// `notify_one`: wake a single waiter.
    One,
    /// `notify_all`: wake every waiter; all but one usually go back to sleep.
    All,
}

/// How the buffer signals its two conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signalling {
    /// `true`: separate `not_full` / `not_empty` condvars. `false`: one condvar for both.
    pub separate_condvars: bool,
    /// `notify_one` or `notify_all` after each push and pop.
    pub wakeup: Wakeup,
}

impl Signalling {
    /// The right way: two condvars, each change wakes exactly one thread that can use it.
    pub const SEPARATE_NOTIFY_ONE: Signalling = Signalling {
        separate_condvars: true,
        wakeup: Wakeup::One,
    };
    /// Correct, but every change wakes every waiter of that side.
    pub const SEPARATE_NOTIFY_ALL: Signalling = Signalling {
        separate_condvars: true,
        wakeup: Wakeup::All,
    };
    /// One condvar for both sides (Python's single `Condition`): correct only with `notify_all`.
    pub const SHARED_NOTIFY_ALL: Signalling = Signalling {
        separate_condvars: false,
        wakeup: Wakeup::All,
    };
    /// BROKEN on purpose: a shared condvar with `notify_one` can wake the wrong side and deadlock.
    pub const SHARED_NOTIFY_ONE: Signalling = Signalling {
        separate_condvars: false,
        wakeup: Wakeup::One,
    };
}

/// Wake-up statistics of a [`BoundedBuffer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeStats {
    /// Times a waiting thread came back from `wait`.
    pub wakeups: u64,
    /// Of those, the times it found its condition still false and had to wait again.
    pub futile: u64,
}

/// The error of a push into a closed buffer: the item comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed<T>(pub T);

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    stats: WakeStats,
}

/// A FIFO buffer of at most `capacity` items: `push` blocks while full, `pop` blocks while empty.
#[derive(Debug)]
pub struct BoundedBuffer<T> {
    state: Mutex<State<T>>,
    not_full: Condvar,
    not_empty: Condvar,
    capacity: usize,
    signalling: Signalling,
}

impl<T> BoundedBuffer<T> {
    /// A buffer with the recommended signalling (two condvars, `notify_one`).
    pub fn new(capacity: usize) -> Self {
        Self::with_signalling(capacity, Signalling::SEPARATE_NOTIFY_ONE)
    }

    /// A buffer with the given signalling, to compare them (or to break it on purpose).
    pub fn with_signalling(capacity: usize, signalling: Signalling) -> Self {
        assert!(
            capacity > 0,
            "a bounded buffer needs room for at least one item"
        );
        BoundedBuffer {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                closed: false,
                stats: WakeStats::default(),
            }),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
            capacity,
            signalling,
        }
    }

    /// Adds `item`, blocking while the buffer is full. Fails only if the buffer was closed.
    pub fn push(&self, item: T) -> Result<(), Closed<T>> {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return Err(Closed(item));
            }
            if state.items.len() < self.capacity {
                break;
            }
            state = wait(self.not_full_cv(), state);
            state.stats.wakeups += 1;
            if !state.closed && state.items.len() >= self.capacity {
                state.stats.futile += 1;
            }
        }
        state.items.push_back(item);
        drop(state);
        // Notify after unlocking: the woken consumer does not immediately block on our mutex.
        self.notify(self.not_empty_cv());
        Ok(())
    }

    /// Removes the oldest item, blocking while the buffer is empty. Returns `None` once the
    /// buffer is closed and drained (how consumers learn that production is over).
    pub fn pop(&self) -> Option<T> {
        let mut state = lock(&self.state);
        let item = loop {
            if let Some(item) = state.items.pop_front() {
                break item;
            }
            if state.closed {
                return None;
            }
            state = wait(self.not_empty_cv(), state);
            state.stats.wakeups += 1;
            if !state.closed && state.items.is_empty() {
                state.stats.futile += 1;
            }
        };
        drop(state);
        self.notify(self.not_full_cv());
        Some(item)
    }

    /// Closes the buffer: pushes fail from now on, pops drain what is left then return `None`.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        // Everybody must re-check: `notify_all` on both sides, whatever the policy.
        self.not_full.notify_all();
        self.not_empty.notify_all();
    }

    /// Items buffered right now.
    pub fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// Whether the buffer holds no item right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wake-up counts so far.
    pub fn stats(&self) -> WakeStats {
        lock(&self.state).stats
    }

    fn not_full_cv(&self) -> &Condvar {
        if self.signalling.separate_condvars {
            &self.not_full
        } else {
            &self.not_empty
        }
    }

    fn not_empty_cv(&self) -> &Condvar {
        &self.not_empty
    }

    fn notify(&self, condvar: &Condvar) {
        match self.signalling.wakeup {
            Wakeup::One => condvar.notify_one(),
            Wakeup::All => condvar.notify_all(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_capacity() {
        let buffer = BoundedBuffer::new(2);
        buffer.push(1).unwrap();
        buffer.push(2).unwrap();
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.pop(), Some(1));
        assert_eq!(buffer.pop(), Some(2));
        assert!(buffer.is_empty());
    }

    #[test]
    fn close_drains_then_ends_and_refuses_pushes() {
        let buffer = BoundedBuffer::new(4);
        buffer.push("a").unwrap();
        buffer.close();
        assert_eq!(buffer.push("b"), Err(Closed("b")));
        assert_eq!(buffer.pop(), Some("a"));
        assert_eq!(buffer.pop(), None);
    }

    /// Every correct signalling delivers every item exactly once, many producers and consumers.
    #[test]
    fn every_item_delivered_once_under_each_correct_signalling() {
        for signalling in [
            Signalling::SEPARATE_NOTIFY_ONE,
            Signalling::SEPARATE_NOTIFY_ALL,
            Signalling::SHARED_NOTIFY_ALL,
        ] {
            let buffer = BoundedBuffer::with_signalling(3, signalling);
            let (producers, per_producer) = (3u64, 2_000u64);
            let total: u64 = std::thread::scope(|s| {
                let consumers: Vec<_> = (0..3)
                    .map(|_| s.spawn(|| std::iter::from_fn(|| buffer.pop()).sum::<u64>()))
                    .collect();
                let producer_handles: Vec<_> = (0..producers)
                    .map(|p| {
                        let buffer = &buffer;
                        s.spawn(move || {
                            for i in 0..per_producer {
                                buffer.push(p * per_producer + i).unwrap();
                            }
                        })
                    })
                    .collect();
                for p in producer_handles {
                    p.join().unwrap();
                }
                buffer.close();
                consumers.into_iter().map(|c| c.join().unwrap()).sum()
            });
            let n = producers * per_producer;
            assert_eq!(
                total,
                n * (n - 1) / 2,
                "{signalling:?} lost or duplicated items"
            );
        }
    }
}
