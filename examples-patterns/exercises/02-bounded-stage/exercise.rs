// Exercise patterns/02 — Backpressure: a pipeline stage with a bounded output
//
// Concept: a pipeline is as fast as its slowest stage. When a fast stage feeds a slow one, the
// items between them must wait somewhere: in a bounded queue, the fast stage blocks on `send`
// (backpressure) and memory stays bounded; in an unbounded one, or in a Vec where the stage
// "collects first, sends later", everything produced waits in memory. See examples-patterns'
// pipeline (`--queue`) and producer-consumer.
//
// Goal: write `spawn_stage(input, capacity, f)`: start a thread that takes each item of
// `input` in order, applies `f`, and sends the result downstream through a channel of at most
// `capacity` items; return the downstream `Receiver` and the thread's handle. When `input` is
// closed and drained, the stage ends, which closes its output.
//
// Hint: `crossbeam_channel::bounded(capacity)`, one item at a time: receive, transform, send.
// `send` blocking on a full queue is not a problem to avoid, it is the feature.
//
// Checked by: a fast source and a slow sink through two of your stages, in 12 seeded runs: the
// items in flight between source and sink never exceed the queues' capacities (plus the items
// in hand), every item arrives once and in order, and the sink sees the end (watchdog).
// Run: cargo run -p shared --bin exercises -- check patterns/02

use crossbeam_channel::{Receiver, Sender, bounded};
use std::thread::JoinHandle;

/// Starts a stage thread: `input` → `f` → a queue of at most `capacity` items → the returned
/// `Receiver`.
pub fn spawn_stage<T, U, F>(
    input: Receiver<T>,
    capacity: usize,
    f: F,
) -> (Receiver<U>, JoinHandle<()>)
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Send + 'static,
{
    todo!(
        "create the output channel, spawn the thread that moves items through `f`, return the receiver"
    )
}
