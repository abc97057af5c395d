// A plausible wrong solution of patterns/01: a consumer stops as soon as the queue is empty
// (`try_recv` fails). When the producers are momentarily slower than the consumers, the
// consumers leave early: the items sent afterwards are never consumed, or, once the queue is
// full, the producers block for ever on a queue nobody reads. It passes by luck whenever the
// producers happen to stay ahead of the consumers.

use crossbeam_channel::{Receiver, Sender, bounded};

pub type Producer = Box<dyn FnOnce(&Sender<u64>) + Send>;

pub fn produce_and_consume(
    producers: Vec<Producer>,
    consumers: usize,
    capacity: usize,
) -> Vec<u64> {
    let (tx, rx) = bounded::<u64>(capacity);
    std::thread::scope(|s| {
        for produce in producers {
            let tx = tx.clone();
            s.spawn(move || produce(&tx));
        }
        drop(tx);
        let handles: Vec<_> = (0..consumers.max(1))
            .map(|_| {
                let rx: Receiver<u64> = rx.clone();
                s.spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(v) = rx.try_recv() {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a consumer panicked"))
            .collect()
    })
}
