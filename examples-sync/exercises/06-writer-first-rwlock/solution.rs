// Reference solution of sync/06 (see exercise.rs for the statement).

use examples_sync::sync::{Condvar, Mutex};

struct State {
    /// Readers holding the lock.
    readers: usize,
    /// A writer holds the lock.
    writer: bool,
    /// Writers waiting for their turn.
    writers_waiting: usize,
}

pub struct WriterFirstRwLock {
    state: Mutex<State>,
    /// Readers wait here.
    can_read: Condvar,
    /// Writers wait here.
    can_write: Condvar,
}

/// Shared access; dropping it lets the reader out.
pub struct ReadGuard<'a> {
    lock: &'a WriterFirstRwLock,
}

/// Exclusive access; dropping it lets the writer out.
pub struct WriteGuard<'a> {
    lock: &'a WriterFirstRwLock,
}

impl WriterFirstRwLock {
    pub fn new() -> Self {
        WriterFirstRwLock {
            state: Mutex::new(State {
                readers: 0,
                writer: false,
                writers_waiting: 0,
            }),
            can_read: Condvar::new(),
            can_write: Condvar::new(),
        }
    }

    /// Blocks while a writer is inside or waiting, then enters as a reader.
    pub fn read(&self) -> ReadGuard<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // A waiting writer closes the door to new readers: that is the writer preference.
        while state.writer || state.writers_waiting > 0 {
            state = self.can_read.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.readers += 1;
        ReadGuard { lock: self }
    }

    /// Enters as a reader if no writer is inside or waiting, without blocking.
    pub fn try_read(&self) -> Option<ReadGuard<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.writer || state.writers_waiting > 0 {
            return None;
        }
        state.readers += 1;
        Some(ReadGuard { lock: self })
    }

    /// Blocks until nobody is inside, then enters alone. New readers wait while it waits.
    pub fn write(&self) -> WriteGuard<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.writers_waiting += 1;
        while state.writer || state.readers > 0 {
            state = self
                .can_write
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.writers_waiting -= 1;
        state.writer = true;
        WriteGuard { lock: self }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.lock.state.lock().unwrap_or_else(|e| e.into_inner());
        state.readers -= 1;
        let wake_writer = state.readers == 0 && state.writers_waiting > 0;
        drop(state);
        if wake_writer {
            // Any one writer can go, and only one can: `notify_one`.
            self.lock.can_write.notify_one();
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.lock.state.lock().unwrap_or_else(|e| e.into_inner());
        state.writer = false;
        let writers_waiting = state.writers_waiting > 0;
        drop(state);
        if writers_waiting {
            self.lock.can_write.notify_one();
        } else {
            // Every waiting reader can go in together: all of them.
            self.lock.can_read.notify_all();
        }
    }
}

impl Default for WriterFirstRwLock {
    fn default() -> Self {
        Self::new()
    }
}
