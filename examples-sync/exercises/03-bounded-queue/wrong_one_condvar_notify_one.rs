// A plausible wrong solution of sync/03: one condition variable for both conditions, and
// `notify_one`. The loops are right, so nothing is ever taken from an empty queue; but a push
// can wake a waiting *producer* (which finds the queue still full and sleeps again) while the
// consumer that could have proceeded is never woken: a lost wake-up, and the program stops.

use examples_sync::sync::{Condvar, Mutex};
use std::collections::VecDeque;

pub struct BoundedQueue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    changed: Condvar,
}

impl<T> BoundedQueue<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedQueue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            changed: Condvar::new(),
        }
    }

    pub fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        while items.len() >= self.capacity {
            items = self.changed.wait(items).unwrap_or_else(|e| e.into_inner());
        }
        items.push_back(item);
        drop(items);
        self.changed.notify_one();
    }

    pub fn pop(&self) -> T {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(item) = items.pop_front() {
                drop(items);
                self.changed.notify_one();
                return item;
            }
            items = self.changed.wait(items).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
