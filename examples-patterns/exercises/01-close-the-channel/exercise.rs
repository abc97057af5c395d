// Exercise patterns/01 — Ending the consumers: close the channel, drain it, never guess
//
// Concept: in producer-consumer, the end of the stream is a *state of the channel*, not a
// moment when the queue looks empty. With crossbeam (as with std's mpsc), the channel closes
// when the last `Sender` is dropped; `recv()` then returns every item still queued, and only
// after that an error: the consumers' clean exit. An empty queue (`try_recv` says `Empty`)
// only means the producers are slower right now. See examples-patterns' producer-consumer.
//
// Goal: write `produce_and_consume(producers, consumers, capacity)`: run each producer on a
// thread of its own with a clone of the `Sender` of one `bounded(capacity)` channel, and
// `consumers` threads that take items until the channel is closed and drained; return every
// item consumed (any order). It must return once the producers are done: nothing lost, nothing
// twice, no hang.
//
// Hint: who still holds a `Sender` when the producers finish? The channel closes only when
// every clone is gone, including the one you created it with.
//
// Checked by: 200 seeded stress runs with slow-starting, bursty producers (every item exactly
// once), under a watchdog that reports threads waiting for ever on a channel that never closes
// (or on a full queue nobody reads).
// Run: cargo run -p shared --bin exercises -- check patterns/01

use crossbeam_channel::{Receiver, Sender, bounded};

/// A producer: sends its items on the sender it is given, then returns.
pub type Producer = Box<dyn FnOnce(&Sender<u64>) + Send>;

/// Runs the producers and `consumers` consumer threads over one bounded channel; returns every
/// item the consumers received.
pub fn produce_and_consume(
    producers: Vec<Producer>,
    consumers: usize,
    capacity: usize,
) -> Vec<u64> {
    let (tx, rx) = bounded::<u64>(capacity);
    // Scoped threads (std::thread::scope) may borrow; each consumer returns its Vec<u64>.
    todo!(
        "spawn the producers and the consumers; make sure the channel closes when producers finish"
    )
}
