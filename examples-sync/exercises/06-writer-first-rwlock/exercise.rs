// Exercise sync/06 — A reader-writer lock whose writers never starve
//
// Concept: a reader-writer lock lets many readers in at once, or one writer alone. Who goes
// first when both wait is a policy, and std's `RwLock` promises none (on Linux it happens to
// prefer writers). With *reader* preference, a stream of overlapping readers keeps the lock
// busy forever and a writer never gets in: writer starvation. With *writer* preference, a
// writer that is waiting stops new readers at the door; the readers inside finish, the writer
// goes, then the readers queued behind it.
//
// Goal: finish `WriterFirstRwLock`: `read`, `try_read`, `write` and the two guards' `Drop`.
// Many readers at once, or one writer alone; once a writer waits, no new reader gets in (and
// `try_read` says no); everybody who waits is eventually woken.
//
// Hint: `State` counts the readers inside, whether a writer is inside, and the writers waiting.
// A reader waits on `can_read` while a writer is inside or waiting; a writer counts itself as
// waiting, then waits on `can_write` while anyone is inside. Think about who must be woken when
// the last reader leaves, and when a writer leaves (one writer, or every reader?).
//
// Checked by: loom (a reader inside, a writer queued, two readers arriving: every interleaving
// with 2 preemptions), a stress run of readers and writers (never a writer with anyone else)
// under a deadlock watchdog, and a writer that must pass readers who arrived after it.
// Run: cargo run -p shared --bin exercises -- check sync/06

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
        todo!("wait on `can_read` while a writer is inside or waiting; count yourself in")
    }

    /// Enters as a reader if no writer is inside or waiting, without blocking.
    pub fn try_read(&self) -> Option<ReadGuard<'_>> {
        todo!()
    }

    /// Blocks until nobody is inside, then enters alone. New readers wait while it waits.
    pub fn write(&self) -> WriteGuard<'_> {
        todo!("count yourself as waiting, wait on `can_write` while anyone is inside, enter")
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        todo!("count yourself out; the last reader out wakes a waiting writer")
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        todo!("leave; wake the next writer if one waits, otherwise every waiting reader")
    }
}

impl Default for WriterFirstRwLock {
    fn default() -> Self {
        Self::new()
    }
}
