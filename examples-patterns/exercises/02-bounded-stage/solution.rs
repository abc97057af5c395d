// Reference solution of patterns/02 (see exercise.rs for the statement).

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
    let (tx, rx): (Sender<U>, Receiver<U>) = bounded(capacity);
    let handle = std::thread::spawn(move || {
        // One item at a time: at most one item is in this stage's hands.
        for item in input {
            // Blocks while the next stage is behind: backpressure travels upstream.
            if tx.send(f(item)).is_err() {
                break; // the next stage is gone: stop taking work
            }
        }
        // `tx` drops here: the next stage sees the end once it has drained the queue.
    });
    (rx, handle)
}
