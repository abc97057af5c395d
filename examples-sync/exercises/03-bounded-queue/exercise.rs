// Exercise sync/03 — A bounded queue on two condition variables
//
// Concept: Python's `queue.Queue(maxsize)` is a deque, a lock and condition variables:
// `put` waits while the queue is full, `get` waits while it is empty. In Rust the lock owns the
// deque (`Mutex<VecDeque<T>>`) and each "wait until" is a `Condvar`. Two rules make it correct:
// re-check the condition in a `while` loop after every wake-up (a wake-up can be spurious, or
// another thread can take the slot first), and wake the right kind of waiter: with one condvar
// shared by producers and consumers, `notify_one` can wake a producer when only a consumer
// could proceed, and the one wake-up is lost.
//
// Goal: finish `BoundedQueue`: `push` blocks while the queue holds `capacity` items, `pop`
// blocks while it is empty, items come out in FIFO order, and no thread sleeps forever while
// it could proceed.
//
// Hint: one `Condvar` per condition (`not_full`, `not_empty`); `push` waits on `not_full` and
// then notifies `not_empty`, `pop` the other way round. Write the `while` loop around `wait`
// yourself: std's `Condvar::wait_while` does the same, but loom's `Condvar` (which these types
// become under `--cfg loom`) has no `wait_while`. Use the types of `examples_sync::sync`.
//
// Checked by: loom (every interleaving of 2 producers and 2 consumers on a 1-slot queue), a
// stress run with many threads (items conserved, capacity never exceeded, FIFO per producer)
// under a deadlock watchdog.
// Run: cargo run -p shared --bin exercises -- check sync/03

use examples_sync::sync::{Condvar, Mutex};
use std::collections::VecDeque;

pub struct BoundedQueue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    not_full: Condvar,
    not_empty: Condvar,
}

impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        BoundedQueue {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity: capacity.max(1),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
        }
    }

    /// Adds `item` at the back, waiting while the queue is full.
    pub fn push(&self, item: T) {
        todo!("wait on `not_full` while full, push, then wake a consumer")
    }

    /// Takes the item at the front, waiting while the queue is empty.
    pub fn pop(&self) -> T {
        todo!("wait on `not_empty` while empty, pop, then wake a producer")
    }

    /// Items in the queue right now (stale as soon as it returns: for checks and display).
    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
