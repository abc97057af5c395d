//! Shared state between threads: `Arc<Mutex<_>>`, `Arc<RwLock<_>>` and atomics, and what
//! contention costs, measured on the same work done each way.
//!
//! Course section **8.1 — Threading et multiprocessing** (`threading.Lock`, shared variables).
//!
//! Crates: `parking_lot = "0.13"`
//!
//! # Concepts
//! - `Arc<T>`: shared ownership across threads (reference count updated atomically).
//! - `Mutex<T>` *owns* the data it protects: you cannot touch the counter without the guard, and
//!   the guard unlocks when dropped. Python's `with lock:` is a convention; this is a type rule.
//! - `RwLock<T>`: many readers or one writer. Worth it only when reads are long or very frequent
//!   *and* the lock itself is not the bottleneck: every `read()` still writes to the lock's
//!   shared counter, so tiny read sections on many cores contend anyway (measured below).
//! - Atomics (`AtomicU64::fetch_add`): lock-free for a single word; the cheapest way to share a
//!   counter, but still one cache line bounced between cores.
//! - The real fix for a hot counter: do not share it. Count locally, merge once at the end.
//! - `thread_local!` is Python's `threading.local()`: a value per thread, reachable from any
//!   depth without passing it, created on first use, dropped when its thread ends. On a pool,
//!   it outlives the job: take it (`OPS.take()`) before the thread takes the next one.
//! - Poisoning: a thread that panics while holding a `Mutex` marks it poisoned; the next
//!   `lock()` returns `Err`, and you decide whether the data is still usable.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin shared-state
//! cargo run --release -p examples-threads --bin shared-state -- --threads 8 --ops 1000000
//! cargo run --release -p examples-threads --bin shared-state -- --json
//! ```
//!
//! # What to observe
//! - Table 1 (every operation writes): with 2+ threads, the shared versions are *slower* than one
//!   thread with a plain `u64`. Contention, not work, dominates. The thread-local version scales.
//! - Table 2 (read-mostly, 1 write in 100): `RwLock` does *not* win here, it can even lose to
//!   `Mutex` by a wide margin (figures in the README): each `read()` is an atomic write to the
//!   reader count, so the readers still fight over one cache line, and the critical section is
//!   tiny.
//!   Atomics beat both.
//! - Every row agrees on the final count: correctness is never traded for speed here.
//! - Part 4: as many scratch buffers as threads, each reused on every call.
//!
//! # Exercises
//! 1. Replace the `Mutex<u64>` counter with `static mut` and `unsafe`. Count how many increments
//!    are lost (this is the race `examples-sync` detects); why does Rust make you write `unsafe`?
//! 2. Make the critical section longer (hash 1 KiB inside the lock). At what length does `RwLock`
//!    clearly beat `Mutex` in table 2?
//! 3. Put each thread's slot of a `Vec<AtomicU64>` on its own cache line
//!    (`#[repr(align(64))] struct Padded(AtomicU64)`) and measure false sharing.
//! 4. In the poisoning demo, use `lock().unwrap_or_else(PoisonError::into_inner)`: when is that
//!    the right call, and when would you rather propagate the error?

// === Lesson: copy from here ===

/// Table 1: one shared counter, every operation a write, done five ways.
mod counters {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError, RwLock};
    use std::thread;

    /// Spawn `threads` scoped threads running `f` and wait for them (`f` borrows the shared state).
    pub fn run_threads(threads: usize, f: impl Fn() + Sync) {
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(&f);
            }
        });
    }

    pub fn counter_mutex(threads: usize, ops: u64) -> u64 {
        // `Arc` is what `thread::spawn` would need; with `thread::scope` a plain `&Mutex` would do.
        // Kept here because it is the shape you will write with long-lived threads.
        let counter = Arc::new(Mutex::new(0u64));
        run_threads(threads, || {
            for _ in 0..ops {
                // The guard is a temporary: locked and unlocked on this line.
                *counter.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            }
        });
        *counter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn counter_rwlock(threads: usize, ops: u64) -> u64 {
        let counter = Arc::new(RwLock::new(0u64));
        run_threads(threads, || {
            for _ in 0..ops {
                *counter.write().unwrap_or_else(PoisonError::into_inner) += 1;
            }
        });
        *counter.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn counter_parking_lot(threads: usize, ops: u64) -> u64 {
        // parking_lot's lock() returns the guard directly: it has no poisoning.
        let counter = Arc::new(parking_lot::Mutex::new(0u64));
        run_threads(threads, || {
            for _ in 0..ops {
                *counter.lock() += 1;
            }
        });
        *counter.lock()
    }

    pub fn counter_atomic(threads: usize, ops: u64) -> u64 {
        let counter = Arc::new(AtomicU64::new(0));
        run_threads(threads, || {
            for _ in 0..ops {
                // Relaxed: we only need the increments not to be lost, not to order other memory.
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        // The scope joined every thread, which orders all their writes before this load.
        counter.load(Ordering::Relaxed)
    }

    pub fn counter_local_then_merge(threads: usize, ops: u64) -> u64 {
        let total = AtomicU64::new(0);
        run_threads(threads, || {
            let mut local = 0u64;
            for _ in 0..ops {
                local = std::hint::black_box(local + 1);
            }
            total.fetch_add(local, Ordering::Relaxed); // one contended write per thread, not per op
        });
        total.into_inner()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_counter_counts_every_increment() {
            for threads in [1, 3] {
                let expected = threads as u64 * 10_000;
                assert_eq!(counter_mutex(threads, 10_000), expected);
                assert_eq!(counter_rwlock(threads, 10_000), expected);
                assert_eq!(counter_parking_lot(threads, 10_000), expected);
                assert_eq!(counter_atomic(threads, 10_000), expected);
                assert_eq!(counter_local_then_merge(threads, 10_000), expected);
            }
        }
    }
}

/// Table 2: a read-mostly table behind a `Mutex`, an `RwLock`, or atomics.
mod read_mostly {
    use super::counters::run_threads;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError, RwLock};

    /// One write every `WRITE_EVERY` operations.
    pub const WRITE_EVERY: u64 = 100;
    /// Slots in the table.
    pub const SLOTS: usize = 64;

    /// The read-mostly loop shared by the three table variants: `read(slot)` most of the time,
    /// `write(slot)` every `WRITE_EVERY` ops. Returns nothing: the result is the table's final sum.
    fn read_mostly_ops(ops: u64, read: impl Fn(usize) -> u64, write: impl Fn(usize)) {
        let mut acc = 0u64;
        for i in 0..ops {
            let slot = (i as usize).wrapping_mul(31) % SLOTS;
            if i % WRITE_EVERY == 0 {
                write(slot);
            } else {
                acc = acc.wrapping_add(read(slot));
            }
        }
        std::hint::black_box(acc);
    }

    pub fn table_mutex(threads: usize, ops: u64) -> u64 {
        let table = Arc::new(Mutex::new(vec![0u64; SLOTS]));
        let lock = || table.lock().unwrap_or_else(PoisonError::into_inner);
        run_threads(threads, || {
            read_mostly_ops(ops, |s| lock()[s], |s| lock()[s] += 1);
        });
        lock().iter().sum()
    }

    pub fn table_rwlock(threads: usize, ops: u64) -> u64 {
        let table = Arc::new(RwLock::new(vec![0u64; SLOTS]));
        run_threads(threads, || {
            read_mostly_ops(
                ops,
                |s| table.read().unwrap_or_else(PoisonError::into_inner)[s],
                |s| table.write().unwrap_or_else(PoisonError::into_inner)[s] += 1,
            );
        });
        table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .sum()
    }

    pub fn table_atomics(threads: usize, ops: u64) -> u64 {
        let table: Arc<[AtomicU64]> = (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        run_threads(threads, || {
            read_mostly_ops(
                ops,
                |s| table[s].load(Ordering::Relaxed),
                |s| {
                    table[s].fetch_add(1, Ordering::Relaxed);
                },
            );
        });
        table.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn read_mostly_tables_record_every_write() {
            let writes = 4 * 1_000u64.div_ceil(WRITE_EVERY);
            assert_eq!(table_mutex(4, 1_000), writes);
            assert_eq!(table_rwlock(4, 1_000), writes);
            assert_eq!(table_atomics(4, 1_000), writes);
        }
    }
}

/// Part 3: a panic while holding a `Mutex` poisons it.
mod poisoning {
    use std::sync::{Arc, Mutex, PoisonError};
    use std::thread;

    /// A thread panics while holding the lock; the next `lock()` reports the poison, and we choose
    /// to recover the data (a counter cannot be left half-updated by `+= 1`).
    pub fn poisoning_demo() -> Result<String, String> {
        let data = Arc::new(Mutex::new(vec![1, 2, 3]));
        let d = Arc::clone(&data);
        // Silence the default panic message for this deliberate panic only, then restore it.
        let previous_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let joined = thread::spawn(move || {
            let mut guard = d.lock().unwrap_or_else(PoisonError::into_inner);
            guard.push(4);
            panic!("crash while holding the lock");
        })
        .join();
        std::panic::set_hook(previous_hook);
        if joined.is_ok() {
            return Err("the thread was supposed to panic".into());
        }
        let message = match data.lock() {
            Ok(_) => "not poisoned (unexpected)".to_owned(),
            Err(poisoned) => {
                let guard = poisoned.into_inner();
                format!(
                    "a thread panicked holding the Mutex; lock() now returns Err(PoisonError).\n   \
                     into_inner() recovers the data: {:?} (the push before the panic is kept).",
                    *guard
                )
            }
        };
        Ok(message)
    }

    #[cfg(test)]
    mod tests {
        use super::poisoning_demo;

        #[test]
        fn poisoned_mutex_is_reported_and_recovered() {
            let msg = poisoning_demo().unwrap();
            assert!(msg.contains("PoisonError"), "{msg}");
            assert!(msg.contains("[1, 2, 3, 4]"), "{msg}");
        }
    }
}

/// Part 4: `thread_local!`, Python's `threading.local()`: one value per thread, no lock at all.
mod per_thread {
    use super::counters::run_threads;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Barrier, Mutex};

    thread_local! {
        /// Operations this thread has recorded. `const`: no lazy-initialisation check per access.
        static OPS: Cell<u64> = const { Cell::new(0) };
        /// Scratch space each thread reuses from call to call (a per-thread connection or parser
        /// in Python's `threading.local()` recipes): created on first use in each thread, dropped
        /// when the thread ends.
        static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
    }

    /// Called from deep inside code that has no counter to pass around: a `Cell` of this
    /// thread's own, so no atomic, no lock, no shared cache line. (`inline(never)` stands for
    /// "called from far away": inlined into table 1's loop, the compiler would add the whole
    /// loop up at once, and the row would time nothing.)
    #[inline(never)]
    pub fn record_op() {
        OPS.set(OPS.get() + 1);
    }

    /// The count so far on this thread, reset to 0. Take it before the thread ends, or before it
    /// goes back to a pool: a pool's thread-locals outlive the job, and the next job would
    /// inherit the count.
    pub fn take_ops() -> u64 {
        OPS.take()
    }

    /// Table 1's last row: each thread counts in its `thread_local!`, then adds it to the total
    /// once.
    pub fn counter_thread_local(threads: usize, ops: u64) -> u64 {
        let total = AtomicU64::new(0);
        run_threads(threads, || {
            for _ in 0..ops {
                record_op();
            }
            total.fetch_add(take_ops(), Ordering::Relaxed);
        });
        total.into_inner()
    }

    /// Formats `n` in this thread's scratch buffer and returns its length and the buffer's
    /// address (to show that each thread keeps reusing its own).
    fn format_in_scratch(n: u64) -> (usize, usize) {
        SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            buf.extend_from_slice(n.to_string().as_bytes());
            (buf.len(), buf.as_ptr() as usize)
        })
    }

    /// `threads` threads × `calls` calls: how many distinct buffers were used (one per thread),
    /// and whether every thread saw the same buffer on every call.
    pub fn scratch_buffers(threads: usize, calls: u64) -> (usize, bool) {
        let seen = Mutex::new(BTreeSet::new());
        let stable = AtomicU64::new(0);
        // No thread ends (and frees its buffer, whose address the allocator could hand to a
        // thread that starts later) before every thread has made its calls.
        let all_done = Barrier::new(threads);
        run_threads(threads, || {
            let addresses: BTreeSet<usize> = (0..calls).map(|i| format_in_scratch(i).1).collect();
            all_done.wait();
            if addresses.len() == 1 {
                stable.fetch_add(1, Ordering::Relaxed);
            }
            // A poisoned set only means another thread panicked: its addresses still count.
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.extend(addresses);
        });
        let distinct = seen.into_inner().unwrap_or_else(|e| e.into_inner()).len();
        (distinct, stable.into_inner() == threads as u64)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn each_thread_counts_alone_and_the_merge_loses_nothing() {
            assert_eq!(counter_thread_local(4, 10_000), 40_000);
            // This test's thread has a counter of its own, untouched by the four above.
            record_op();
            record_op();
            assert_eq!(take_ops(), 2);
            assert_eq!(take_ops(), 0, "take() resets it");
        }

        #[test]
        fn one_scratch_buffer_per_thread_reused_on_every_call() {
            let (distinct, stable) = scratch_buffers(3, 200);
            assert!(stable, "a thread got a new buffer between two calls");
            assert_eq!(distinct, 3);
            assert_eq!(format_in_scratch(12345).0, 5);
        }
    }
}

// === Harness: not part of the lesson ===

use std::num::NonZeroUsize;
use std::thread;

use clap::Parser;
use counters::{
    counter_atomic, counter_local_then_merge, counter_mutex, counter_parking_lot, counter_rwlock,
};
use per_thread::{counter_thread_local, scratch_buffers};
use read_mostly::{SLOTS, WRITE_EVERY, table_atomics, table_mutex, table_rwlock};
use shared::cli;
use shared::report::{Row, SpeedupTable, Timed, print_json, timed};

/// Measure Mutex, RwLock and atomics on the same shared-counter and read-mostly workloads.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Threads sharing the state [default: available_parallelism].
    #[arg(long, value_parser = cli::usize_in(1, 256))]
    threads: Option<usize>,
    /// Operations per thread.
    #[arg(long, default_value_t = 5_000_000, value_parser = cli::u64_in(1, 1_000_000_000))]
    ops: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = args.threads.unwrap_or(cores);
    let ops = args.ops;
    let expected = threads as u64 * ops;

    // ---- Table 1: every operation is a write (a hit counter) ---------------------------------
    let mut counter = SpeedupTable::new(format!(
        "1. Shared counter: {threads} threads × {ops} increments (every operation writes)"
    ));
    let t = timed(|| {
        let mut n = 0u64;
        for _ in 0..expected {
            n = std::hint::black_box(n + 1);
        }
        n
    });
    counter.push(row("1 thread, plain u64", &t, expected).note("baseline: no sharing at all"));
    let t = timed(|| counter_mutex(threads, ops));
    counter.push(row("Arc<Mutex<u64>>", &t, expected).note("lock + unlock per increment"));
    let t = timed(|| counter_rwlock(threads, ops));
    counter.push(row("Arc<RwLock<u64>>", &t, expected).note("write lock per increment"));
    let t = timed(|| counter_parking_lot(threads, ops));
    counter.push(row("Arc<parking_lot::Mutex>", &t, expected).note("smaller, spins briefly"));
    let t = timed(|| counter_atomic(threads, ops));
    counter
        .push(row("Arc<AtomicU64>", &t, expected).note("fetch_add: no lock, one contended line"));
    let t = timed(|| counter_local_then_merge(threads, ops));
    counter.push(
        row("thread-local + merge", &t, expected).note("the fix: share nothing until the end"),
    );
    let t = timed(|| counter_thread_local(threads, ops));
    counter.push(
        row("thread_local! + merge", &t, expected)
            .note("a Cell per thread (threading.local), reachable from any depth"),
    );

    // ---- Table 2: read-mostly (a lookup table updated now and then) -------------------------
    let writes = threads as u64 * ops.div_ceil(WRITE_EVERY);
    let mut read_mostly = SpeedupTable::new(format!(
        "2. Read-mostly table of {SLOTS} slots: {threads} threads × {ops} ops, 1 write in {WRITE_EVERY}"
    ));
    let t = timed(|| table_mutex(threads, ops));
    read_mostly
        .push(row("Arc<Mutex<Vec<u64>>>", &t, writes).note("readers queue behind each other"));
    let t = timed(|| table_rwlock(threads, ops));
    read_mostly.push(
        row("Arc<RwLock<Vec<u64>>>", &t, writes)
            .note("parallel readers, but read() writes the reader count"),
    );
    let t = timed(|| table_atomics(threads, ops));
    read_mostly.push(row("Arc<[AtomicU64]>", &t, writes).note("plain loads, no lock at all"));

    // ---- Poisoning ----------------------------------------------------------------------------
    let poison = poisoning::poisoning_demo().map_err(anyhow::Error::msg)?;

    // ---- thread_local!: one buffer per thread, reused ------------------------------------------
    let calls = ops.min(100_000);
    let (buffers, stable) = scratch_buffers(threads, calls);

    if args.json {
        print_json(&serde_json::json!({
            "example": "shared-state",
            "threads": threads,
            "ops_per_thread": ops,
            "counter": counter.to_json(),
            "read_mostly": read_mostly.to_json(),
            "thread_local": { "threads": threads, "calls": calls, "buffers": buffers, "one_per_thread": stable },
        }));
    } else {
        counter.print();
        println!();
        read_mostly.print();
        println!("\n3. Poisoning: {poison}");
        println!(
            "\n4. thread_local! (Python's threading.local()): {threads} threads × {calls} calls used \
             {buffers} scratch buffer(s),\n   {}.",
            if stable {
                "one per thread, created on its first use and reused on every call"
            } else {
                "NOT one per thread"
            }
        );
    }
    anyhow::ensure!(
        buffers == threads && stable,
        "thread_local! gave {buffers} buffers to {threads} threads"
    );
    anyhow::ensure!(
        counter.all_agree() && read_mostly.all_agree(),
        "a variant lost updates: this would be a bug in the example"
    );
    Ok(())
}

fn row(name: &str, t: &Timed<u64>, expected: u64) -> Row {
    Row::new(name, t.wall)
        .cpu(t.cpu)
        .agrees(t.value == expected)
}
