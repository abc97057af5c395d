//! Hand-built synchronization primitives for course section 8.3, shared by the example binaries
//! (`src/bin/*.rs`) and the loom model checks (`tests/loom.rs`).
//!
//! Python's `threading` module gives you `Lock`, `RLock`, `Semaphore`, `Condition`, `Event` and
//! `queue.Queue`. Rust's std gives you `Mutex`, `RwLock`, `Condvar`, `Barrier`, `OnceLock`,
//! atomics and `mpsc`, and leaves the rest to you or to crates. The missing ones are built here
//! from `Mutex` + `Condvar`, small enough to read in one sitting:
//!
//! | module | Python equivalent | used by |
//! | --- | --- | --- |
//! | [`semaphore`] | `threading.Semaphore` | `cargo run -p examples-sync --bin semaphore` |
//! | [`event`] | `threading.Event` | `cargo run -p examples-sync --bin event` |
//! | [`bounded`] | `queue.Queue(maxsize)` / `Condition` | `cargo run -p examples-sync --bin condition` |
//! | [`ticket`] | (none: a FIFO-fair lock) | `cargo run -p examples-sync --bin starvation` |
//! | [`wakeup`] | `Condition` used wrongly: a lost wake-up, and its fix | `cargo run -p examples-sync --bin diagnose-sync -- --bug lost-wakeup` |
//!
//! Each primitive is written against [`sync`], which re-exports std's types normally and
//! [loom](https://docs.rs/loom)'s under `--cfg loom`, so the very same code is model-checked:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p examples-sync --release --test loom
//! ```
//!
//! (A separate target directory, so the `--cfg loom` build does not invalidate the normal one.)
//!
//! Each primitive's file is a lesson a reader copies, with `sync.rs` (each has the
//! `// === Lesson: copy from here ===` marker after its header). A binary's lesson names it as
//! `crate::semaphore`, as it would in the reader's project; the binary's harness section has
//! `use examples_sync::semaphore;`, so that path resolves here. [`table`] and [`python_peer`]
//! (`--python`: the course's Python recipes of `python/`, run beside the Rust) are harness only.
//!
//! # Rust rejects the data race at compile time
//!
//! The course's race (`counter += 1` from many threads) cannot be written in safe Rust. These
//! snippets are `compile_fail` doc tests: `cargo test -p examples-sync` checks that each one
//! fails to compile. On stable, rustdoc does not check the error code named on the fence
//! (`compile_fail,E0499`: only nightly does), so a snippet broken by a typo would pass too;
//! `tests/compile_errors.rs` compiles each snippet with rustc and checks the code it names.
//!
//! Sharing a plain `&mut` with several threads: two mutable borrows at once (E0499).
//!
//! ```compile_fail,E0499
//! let mut counter = 0u64;
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..1_000_000 {
//!                 counter += 1; // Python's `counter += 1`
//!             }
//!         });
//!     }
//! });
//! ```
//!
//! A global, like Python's `global counter`: touching a `static mut` is `unsafe` (E0133). Safe
//! Rust cannot do it at all; wrapping it in `unsafe { }` compiles, and is undefined behaviour.
//!
//! ```compile_fail,E0133
//! static mut COUNTER: u64 = 0;
//! let handles: Vec<_> = (0..4)
//!     .map(|_| std::thread::spawn(|| {
//!         for _ in 0..1_000_000 {
//!             COUNTER += 1;
//!         }
//!     }))
//!     .collect();
//! for h in handles { h.join().unwrap(); }
//! ```
//!
//! Interior mutability without a lock: `Cell` is not `Sync`, so an `&Cell` cannot cross threads
//! (E0277). `RefCell` and `Rc` are refused the same way.
//!
//! ```compile_fail,E0277
//! use std::cell::Cell;
//! let counter = Cell::new(0u64);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| counter.set(counter.get() + 1));
//!     }
//! });
//! ```
//!
//! What compiles is a version that is correct by construction: an atomic read-modify-write or
//! a lock. (Safe Rust still lets you write a *logical* race, a separate `load` then `store`:
//! `cargo run -p examples-sync --bin race-condition` counts the updates it loses.)
//!
//! ```
//! use std::sync::{Mutex, atomic::{AtomicU64, Ordering}};
//! let atomic = AtomicU64::new(0);
//! let locked = Mutex::new(0u64);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..10_000 {
//!                 atomic.fetch_add(1, Ordering::Relaxed);
//!                 *locked.lock().unwrap() += 1;
//!             }
//!         });
//!     }
//! });
//! assert_eq!(atomic.into_inner(), 40_000);
//! assert_eq!(locked.into_inner().unwrap(), 40_000);
//! ```

pub mod bounded;
pub mod event;
pub mod python_peer;
pub mod semaphore;
pub mod sync;
pub mod table;
pub mod ticket;
pub mod wakeup;
