// A plausible wrong solution of sync/03: `if` instead of `while`. After a wake-up the condition
// is not re-checked, but another thread may have taken the slot (or the item) in between, or
// the wake-up was spurious: the queue overflows its capacity.

use examples_sync::sync::{Condvar, Mutex};
use std::collections::VecDeque;

pub struct BoundedQueue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    not_full: Condvar,
    not_empty: Condvar,
}

impl<T> BoundedQueue<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedQueue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
        }
    }

    pub fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() >= self.capacity {
            items = self.not_full.wait(items).unwrap_or_else(|e| e.into_inner());
        }
        items.push_back(item);
        drop(items);
        self.not_empty.notify_all();
    }

    pub fn pop(&self) -> T {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        while items.is_empty() {
            items = self.not_empty.wait(items).unwrap_or_else(|e| e.into_inner());
        }
        let item = items.pop_front().expect("checked non-empty");
        drop(items);
        self.not_full.notify_all();
        item
    }

    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
