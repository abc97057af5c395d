// Reference solution of patterns/01 (see exercise.rs for the statement).

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
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..consumers.max(1))
            .map(|_| {
                let rx: Receiver<u64> = rx.clone();
                // `recv` blocks while the queue is empty, and fails only once the channel is
                // closed AND drained: the one right moment to stop.
                s.spawn(move || rx.iter().collect::<Vec<u64>>())
            })
            .collect();
        for produce in producers {
            let tx = tx.clone();
            s.spawn(move || produce(&tx)); // this clone drops when the producer returns
        }
        // Our own Sender: while it lives the channel never closes and the consumers never end.
        drop(tx);
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a consumer panicked"))
            .collect()
    })
}
