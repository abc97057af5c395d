// A plausible wrong solution of patterns/01: the consumers are right (`for item in rx`), but the
// Sender the channel was created with is still alive in this function while it waits for the
// consumers. The channel never closes, so `recv` waits for ever once the queue is drained: the
// classic producer-consumer hang. It can never pass; without a watchdog it hangs the runner.

use crossbeam_channel::{Receiver, Sender, bounded};

pub type Producer = Box<dyn FnOnce(&Sender<u64>) + Send>;

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
                s.spawn(move || rx.iter().collect::<Vec<u64>>())
            })
            .collect();
        for produce in producers {
            let tx = tx.clone();
            s.spawn(move || produce(&tx));
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a consumer panicked"))
            .collect()
    })
}
