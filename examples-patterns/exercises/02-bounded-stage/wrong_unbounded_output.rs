// A plausible wrong solution of patterns/02: the output queue is unbounded ("it never blocks,
// so it is faster"). Every item the fast side produces waits in memory in front of the slow
// side: with a large input the process grows until it is killed. Correct results, so it passes
// any test that only checks the output.

use crossbeam_channel::{Receiver, Sender, unbounded};
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
    let (tx, rx): (Sender<U>, Receiver<U>) = unbounded();
    let handle = std::thread::spawn(move || {
        for item in input {
            if tx.send(f(item)).is_err() {
                break;
            }
        }
    });
    (rx, handle)
}
