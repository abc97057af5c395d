// A plausible wrong solution of patterns/02: the stage first collects its whole input into a
// Vec, then sends. The queue is bounded, but the Vec is not: the stage drains the queue before
// it as fast as it can, so the backpressure never reaches the source, and everything waits in
// memory inside the stage. (It also holds back every result until the input has ended.)

use crossbeam_channel::{Receiver, Sender, bounded};
use std::thread::JoinHandle;

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
        let results: Vec<U> = input.iter().map(f).collect();
        for r in results {
            if tx.send(r).is_err() {
                break;
            }
        }
    });
    (rx, handle)
}
