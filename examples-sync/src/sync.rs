//! The shim that lets one implementation run on real threads and under the loom model checker.
//!
//! Course section **8.3 — Gestion des verrous et synchronisation** (Défis: "Complexité de
//! débogage": bugs non déterministes, difficiles à reproduire; loom checks every interleaving).
//!
//! Crates: std only. For the model checks: `loom = "0.7"`, under
//! `[target.'cfg(loom)'.dependencies]`.
//!
//! Normal builds re-export `std::sync` and `std::thread`. With `RUSTFLAGS="--cfg loom"` the same
//! names come from `loom`, whose `Mutex`, `Condvar`, atomics and threads record every operation
//! so that `loom::model` can replay the test under every interleaving that matters. This is the
//! pattern tokio and crossbeam use; the only rule is that the primitives built on it
//! (`semaphore.rs`, `event.rs`, `bounded.rs`, `ticket.rs`) never name `std::sync` directly.
//!
//! Copy this file as `src/sync.rs` next to the primitive you copy (`mod sync;` in your crate
//! root): they name it `crate::sync`. The model checks run with `--cfg loom` in RUSTFLAGS (see
//! `tests/loom.rs`).

// === Lesson: copy from here ===

#[cfg(loom)]
pub use loom::{
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
};

#[cfg(not(loom))]
pub use std::{
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
};

use std::sync::PoisonError;

/// Locks `mutex`, ignoring poisoning.
///
/// A std `Mutex` is "poisoned" when a thread panicked while holding it, to warn that the data may
/// be half-updated. The primitives in this crate only hold their lock around a few integer or
/// `VecDeque` updates that cannot panic half-way, so their state is always consistent and a
/// poisoned lock is safe to keep using. (Code that runs *user* closures under a lock should think
/// harder: see `cargo run -p examples-sync --bin locks`.)
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, ignoring poisoning (same reasoning as [`lock`]).
///
/// Like every condition-variable wait, this may return without a matching notification (a
/// *spurious wake-up*), so callers always re-check their condition in a `while` loop.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}
