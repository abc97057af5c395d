//! Model checks of the hand-built primitives in `src/` with loom.
//!
//! loom runs each test body many times, once per distinct interleaving of the threads' atomic
//! and lock operations (optionally bounded by `LOOM_MAX_PREEMPTIONS`), and fails if any interleaving breaks an
//! assertion or leaves every thread blocked (a deadlock or a lost wake-up). Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p examples-sync --release --test loom
//! ```
//!
//! Models are tiny on purpose (2–3 threads, a few operations): the number of interleavings
//! grows exponentially, and almost every concurrency bug already shows with two threads.
//! Small enough here to explore exhaustively (see `check`).
#![cfg(loom)]
#![allow(clippy::unwrap_used)]

use examples_sync::bounded::{BoundedBuffer, Signalling};
use examples_sync::event::Event;
use examples_sync::semaphore::Semaphore;
use examples_sync::sync::{Arc, AtomicUsize, Ordering, thread};
use examples_sync::ticket::TicketLock;
use examples_sync::wakeup::{DoneSignal, Publish};

/// Explores every interleaving (no preemption bound): about 30 s for this whole file in release
/// on 2 busy cores. `LOOM_MAX_PREEMPTIONS=3` bounds the search (about 1 s) for a quick run; the
/// deadlock below is found either way.
fn check(f: impl Fn() + Sync + Send + 'static) {
    loom::model::Builder::new().check(f);
}

/// Permits never exceed the limit, and every permit comes back (no waiter is left asleep).
#[test]
fn semaphore_never_exceeds_its_permits() {
    check(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    let _permit = sem.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 1, "{now} holders of a 1-permit semaphore");
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        {
            let _permit = sem.acquire();
            assert_eq!(inside.load(Ordering::SeqCst), 0);
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.available(), 1);
    });
}

/// A `set()` racing with `wait()` is never lost: the waiter always returns.
#[test]
fn event_set_is_never_lost() {
    check(|| {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || event.wait())
            })
            .collect();
        event.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(event.is_set());
    });
}

/// One producer, one consumer, capacity 1: items arrive complete and in order, and `close`
/// ends the consumer.
#[test]
fn bounded_buffer_delivers_in_order() {
    check(|| {
        let buffer = Arc::new(BoundedBuffer::new(1));
        let producer = {
            let buffer = buffer.clone();
            thread::spawn(move || {
                for i in 0..3 {
                    buffer.push(i).unwrap();
                }
                buffer.close();
            })
        };
        let received: Vec<i32> = std::iter::from_fn(|| buffer.pop()).collect();
        producer.join().unwrap();
        assert_eq!(received, vec![0, 1, 2]);
    });
}

/// The schedule that breaks a shared condvar with `notify_one` (see the next test), run with
/// the correct signalling: it always completes.
///
/// The buffer is leaked rather than put in an `Arc`: when loom reports the deadlock it panics,
/// and dropping a loom `Arc` while unwinding aborts the test process (a loom limitation).
fn two_consumers_one_producer(signalling: Signalling) {
    let buffer: &'static BoundedBuffer<i32> =
        Box::leak(Box::new(BoundedBuffer::with_signalling(1, signalling)));
    let consumers: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || buffer.pop()))
        .collect();
    buffer.push(1).unwrap();
    buffer.push(2).unwrap();
    let mut got: Vec<i32> = consumers
        .into_iter()
        .map(|c| c.join().unwrap().expect("one item per consumer"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, vec![1, 2]);
}

#[test]
fn bounded_buffer_two_condvars_never_loses_a_wakeup() {
    check(|| two_consumers_one_producer(Signalling::SEPARATE_NOTIFY_ONE));
}

#[test]
fn bounded_buffer_shared_condvar_with_notify_all_is_correct() {
    check(|| two_consumers_one_producer(Signalling::SHARED_NOTIFY_ALL));
}

/// The deliberately broken variant: loom finds the interleaving where both consumers wait, the
/// producer fills the slot and waits, the first consumer takes the item and its `notify_one`
/// wakes the *other consumer* instead of the producer. Everybody sleeps: loom reports
/// "deadlock". A stress test may run this a million times without hitting it.
#[test]
#[should_panic(expected = "deadlock")]
fn shared_condvar_notify_one_deadlocks() {
    check(|| two_consumers_one_producer(Signalling::SHARED_NOTIFY_ONE));
}

/// The ticket lock excludes, and admits in ticket order (FIFO) under every interleaving.
#[test]
fn ticket_lock_is_exclusive_and_fifo() {
    check(|| {
        let lock = Arc::new(TicketLock::new(Vec::new()));
        let inside = Arc::new(AtomicUsize::new(0));
        let enter = |lock: &TicketLock<Vec<u64>>, inside: &AtomicUsize| {
            let mut guard = lock.lock();
            assert_eq!(
                inside.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders at once"
            );
            let ticket = guard.ticket();
            guard.push(ticket);
            inside.fetch_sub(1, Ordering::SeqCst);
        };
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (lock, inside) = (lock.clone(), inside.clone());
                thread::spawn(move || enter(&lock, &inside))
            })
            .collect();
        enter(&lock, &inside);
        for t in threads {
            t.join().unwrap();
        }
        let order = lock.lock().clone();
        assert_eq!(order, vec![0, 1, 2], "tickets served out of order");
    });
}

/// `diagnose-sync --bug lost-wakeup`: one waiter, one `set()`. Leaked, not in an `Arc`, for the
/// reason given at `two_consumers_one_producer`.
fn waiter_and_setter(publish: Publish) {
    let signal: &'static DoneSignal = Box::leak(Box::new(DoneSignal::new(publish)));
    let waiter = thread::spawn(move || signal.wait());
    signal.set();
    waiter.join().unwrap();
    assert!(signal.is_set());
}

/// The fix: the flag is stored under the condition variable's mutex, so the store happens
/// before the waiter's check or after it sleeps, never in between. Every interleaving ends.
#[test]
fn done_signal_set_under_the_lock_is_never_lost() {
    check(|| waiter_and_setter(Publish::UnderLock));
}

/// The bug the stress harness meets now and then in 10,000 runs: loom finds the interleaving
/// (the waiter sees `false`, the setter stores and notifies nobody, the waiter sleeps) on
/// every run of this test.
#[test]
#[should_panic(expected = "deadlock")]
fn done_signal_set_without_the_lock_loses_the_wakeup() {
    check(|| waiter_and_setter(Publish::WithoutLock));
}
